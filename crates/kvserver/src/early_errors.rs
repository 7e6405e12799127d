//! JSON bodies for the errors actix-http answers before any route runs.
//!
//! actix-http's HTTP/1 connection handler answers a request it cannot parse
//! (400), headers that take too long (408) and headers too large (431)
//! itself, with an empty body and no hook to change it. [`EarlyErrors`] sits
//! between that handler and the socket and gives those responses the JSON
//! body every other error has.
//!
//! It follows the response stream to know where each response begins: a
//! head, then as many body bytes as its `content-length` says, none for a
//! 1xx, 204 or 304, and none for the answer to a `HEAD` request, which the
//! app records in the connection's [`Ledger`] (a response to `HEAD` carries
//! the length its `GET` would have). A head with status 400, 408 or 431 and
//! `content-length: 0` is never the app's (its errors all have a JSON
//! body), so only actix's own are rewritten; a value that happens to hold
//! such bytes is inside a body and never looked at. Anything it cannot
//! follow (a chunked response, which kvserver never sends) turns the
//! rewriting off for the rest of the connection rather than guess.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest response head followed; past it the rewriting is turned off.
const MAX_HEAD: usize = 64 * 1024;

/// Per connection, in order: whether each response the app produced
/// answers a `HEAD` request (and so has no body on the wire).
#[derive(Clone, Default)]
pub struct Ledger(Rc<RefCell<VecDeque<bool>>>);

impl Ledger {
    /// Records the app's next response; `head_only` for a `HEAD` request.
    pub fn record(&self, head_only: bool) {
        self.0.borrow_mut().push_back(head_only);
    }

    fn next(&self) -> bool {
        self.0.borrow_mut().pop_front().unwrap_or(false)
    }
}

/// Where the response stream is.
enum Scan {
    /// Collecting a response head.
    Head(BytesMut),
    /// Inside a body, this many bytes left.
    Body(u64),
    /// Not followed any more: bytes pass unchanged.
    Off,
}

/// A connection whose early error responses get a JSON body.
pub struct EarlyErrors<T> {
    io: T,
    ledger: Ledger,
    scan: Scan,
    /// Accepted from actix, not yet written to `io`.
    out: BytesMut,
}

impl<T> EarlyErrors<T> {
    /// Wraps a connection.
    pub fn new(io: T) -> EarlyErrors<T> {
        EarlyErrors {
            io,
            ledger: Ledger::default(),
            scan: Scan::Head(BytesMut::new()),
            out: BytesMut::new(),
        }
    }

    /// The ledger the app records its responses in, for this connection.
    pub fn ledger(&self) -> Ledger {
        self.ledger.clone()
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// Follows `bytes` through the response stream into `out`, rewriting
    /// early error heads.
    fn take_in(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.scan {
                Scan::Off => {
                    self.out.extend_from_slice(bytes);
                    return;
                }
                Scan::Body(left) => {
                    let n = (*left).min(bytes.len() as u64) as usize;
                    self.out.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    *left -= n as u64;
                    if *left == 0 {
                        self.scan = Scan::Head(BytesMut::new());
                    }
                }
                Scan::Head(head) => {
                    // The end of the head may straddle what was collected.
                    let before = head.len();
                    let start = before.saturating_sub(3);
                    head.extend_from_slice(bytes);
                    let Some(end) = find(&head[start..], b"\r\n\r\n").map(|at| start + at + 4)
                    else {
                        if head.len() > MAX_HEAD {
                            let collected = std::mem::take(head);
                            self.out.extend_from_slice(&collected);
                            self.scan = Scan::Off;
                        }
                        return;
                    };
                    head.truncate(end);
                    let complete = std::mem::take(head);
                    self.scan = self.follow(&complete);
                    // What follows the head goes round again.
                    bytes = &bytes[end - before..];
                }
            }
        }
    }

    /// Writes a complete head into `out` (rewritten if it is an early
    /// error) and says what follows it.
    fn follow(&mut self, head: &[u8]) -> Scan {
        let text = String::from_utf8_lossy(head);
        let status: u16 = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let lower = text.to_ascii_lowercase();
        let length = lower.lines().find_map(|line| {
            line.strip_prefix("content-length:")
                .and_then(|value| value.trim().parse::<u64>().ok())
        });
        let chunked = lower.contains("\r\ntransfer-encoding:");
        if (100..200).contains(&status) {
            self.out.extend_from_slice(head);
            return Scan::Head(BytesMut::new());
        }
        if let (Some(sentence), Some(0)) = (early_error(status), length) {
            let body = kvapi::ErrorBody::new(sentence, kvapi::ErrorCode::InvalidRequest);
            // Strings and a code: serialising cannot fail.
            let body = serde_json::to_string(&body).expect("an error body serialises");
            let rewritten = text.replacen(
                "content-length: 0\r\n",
                &format!(
                    "content-length: {}\r\ncontent-type: application/json\r\n",
                    body.len()
                ),
                1,
            );
            if rewritten != text {
                self.out.extend_from_slice(rewritten.as_bytes());
                self.out.extend_from_slice(body.as_bytes());
                return Scan::Head(BytesMut::new());
            }
        }
        self.out.extend_from_slice(head);
        let head_only = self.ledger.next();
        match (chunked, length) {
            _ if head_only || status == 204 || status == 304 => Scan::Head(BytesMut::new()),
            (false, Some(0)) => Scan::Head(BytesMut::new()),
            (false, Some(n)) => Scan::Body(n),
            _ => Scan::Off,
        }
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>
    where
        T: AsyncWrite + Unpin,
    {
        while !self.out.is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, &self.out) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.out.advance(n),
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// The sentence for a status actix answers before routing.
fn early_error(status: u16) -> Option<&'static str> {
    match status {
        400 => Some("the request could not be parsed as HTTP/1.1"),
        408 => Some("the request headers did not arrive in time"),
        431 => Some("the request headers are too large"),
        _ => None,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

impl<T: AsyncRead + Unpin> AsyncRead for EarlyErrors<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for EarlyErrors<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Bytes held from before must go first; until they have, take no
        // more (the caller retries when the socket can take them).
        if this.poll_drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        this.take_in(bytes);
        // Written as far as the socket takes them now; the rest on the
        // next write or flush, which actix always makes.
        let _ = this.poll_drain(cx)?;
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.poll_drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.poll_drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EARLY_400: &str =
        "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: D\r\n\r\n";

    /// Feeds `stream` in chunks of `size` and returns what would be written.
    fn rewrite(stream: &str, head_only: &[bool], size: usize) -> String {
        let mut wrapper = EarlyErrors::new(());
        for &entry in head_only {
            wrapper.ledger.record(entry);
        }
        for chunk in stream.as_bytes().chunks(size) {
            wrapper.take_in(chunk);
        }
        String::from_utf8(wrapper.out.to_vec()).expect("text")
    }

    #[test]
    fn only_an_early_error_at_a_response_boundary_is_rewritten() {
        let body = EARLY_400; // a value that looks like one
        let stream = format!(
            "HTTP/1.1 100 Continue\r\n\r\n\
             HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}\
             HTTP/1.1 200 OK\r\ncontent-length: 47\r\n\r\n\
             HTTP/1.1 204 No Content\r\n\r\n\
             HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{{}}\
             {EARLY_400}",
            body.len()
        );
        let json =
            r#"{"error":"the request could not be parsed as HTTP/1.1","code":"invalid_request"}"#;
        let rewritten = EARLY_400.replace(
            "content-length: 0\r\n",
            &format!(
                "content-length: {}\r\ncontent-type: application/json\r\n",
                json.len()
            ),
        );
        let expected = stream.replacen(
            &format!("{{}}{EARLY_400}"),
            &format!("{{}}{rewritten}{json}"),
            1,
        );
        // Ledger: the 200 with a body, the HEAD answer, the 204, the 404.
        let ledger = [false, true, false, false];
        for size in [1, 2, 3, 5, 7, 64, stream.len()] {
            assert_eq!(
                rewrite(&stream, &ledger, size),
                expected,
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn a_chunked_response_turns_the_rewriting_off() {
        let stream = format!("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{EARLY_400}");
        assert_eq!(rewrite(&stream, &[false], 4), stream);
    }
}
