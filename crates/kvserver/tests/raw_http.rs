//! HTTP/1.1 by hand over a blocking `TcpStream`, for what a polite client
//! library will not do: send a body slowly, stop halfway, hold a request in
//! flight while the server shuts down.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long any single read may block before the test gives up on it.
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// A request being sent by hand.
pub struct RawRequest {
    stream: TcpStream,
}

/// What came back: the status line's code, the head, and the body.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code of the final response.
    pub status: u16,
    /// Everything before the blank line.
    pub head: String,
    /// Everything after it.
    pub body: Vec<u8>,
}

impl RawRequest {
    /// Connects and sends the request line and headers (ending in the blank
    /// line); `Host` and `Connection: close` are added. No body yet.
    pub fn start(addr: SocketAddr, head: &str) -> RawRequest {
        let mut stream = TcpStream::connect(addr).expect("connecting");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("setting a read timeout");
        let head = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).expect("sending the head");
        RawRequest { stream }
    }

    /// Waits for `100 Continue`: proof that the server has read the headers
    /// and is now running the request. Needs `Expect: 100-continue` in the head.
    pub fn wait_for_continue(&mut self) {
        let expected = b"HTTP/1.1 100 Continue\r\n\r\n";
        let mut got = vec![0; expected.len()];
        self.stream
            .read_exact(&mut got)
            .expect("reading 100 Continue");
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected),
            "the server accepts the request before its body"
        );
    }

    /// Sends some body bytes.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Whether the server closes the connection (end of stream or reset)
    /// once its response has been read, rather than keeping it open: reads
    /// and discards until then, failing only after the read timeout.
    pub fn closed_by_server(mut self) -> bool {
        let mut chunk = [0; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(err) if err.kind() == ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }

    /// Everything the server sends until it closes the connection.
    pub fn read_all(mut self) -> Vec<u8> {
        let mut bytes = Vec::new();
        match self.stream.read_to_end(&mut bytes) {
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::ConnectionReset => {}
            Err(err) => panic!("reading until the server closes: {err}"),
        }
        bytes
    }

    /// A second handle on the connection, for a writer thread.
    pub fn try_clone(&self) -> RawRequest {
        RawRequest {
            stream: self.stream.try_clone().expect("cloning the stream"),
        }
    }

    /// Reads the final response: its head, then as many body bytes as its
    /// `Content-Length` says, or everything until the server closes the
    /// connection. `None` when the server closed (or reset) the connection
    /// without answering.
    pub fn response(mut self) -> Option<RawResponse> {
        let mut bytes = Vec::new();
        let mut chunk = [0; 4096];
        loop {
            if let Some(response) = complete(&bytes) {
                return Some(response);
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                // A reset after the response still leaves the response.
                Err(err) if err.kind() == ErrorKind::ConnectionReset => break,
                Err(err) => panic!("reading the response: {err}"),
            }
        }
        if bytes.is_empty() {
            return None;
        }
        let (head, body) = split(&bytes)
            .unwrap_or_else(|| panic!("a response head in {:?}", String::from_utf8_lossy(&bytes)));
        Some(response(head, body))
    }
}

/// The response in `bytes` once all of it arrived, going by `Content-Length`.
fn complete(bytes: &[u8]) -> Option<RawResponse> {
    let (head, body) = split(bytes)?;
    let length: usize = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })?;
    (body.len() >= length).then(|| response(head, &body[..length]))
}

/// The final response's head and what follows it, skipping an interim
/// `100 Continue`.
fn split(bytes: &[u8]) -> Option<(String, &[u8])> {
    let bytes = bytes
        .strip_prefix(b"HTTP/1.1 100 Continue\r\n\r\n".as_slice())
        .unwrap_or(bytes);
    let end = bytes.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    Some((head, &bytes[end + 4..]))
}

fn response(head: String, body: &[u8]) -> RawResponse {
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("a status line in {head:?}"));
    RawResponse {
        status,
        head,
        body: body.to_vec(),
    }
}
