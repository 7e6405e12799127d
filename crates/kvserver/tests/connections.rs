//! Connections stay below the file-descriptor limit: a flood of idle
//! connections neither crashes the server nor makes it fail with "too many
//! open files"; once the idle ones are cut off, requests are served again.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::server_process::ServerProcess;

const FD_LIMIT: u32 = 256;

#[test]
fn a_flood_of_idle_connections_over_the_fd_limit_is_absorbed_and_served_afterwards() {
    // The shell lowers the limit for the server alone, then becomes it.
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!(
            "ulimit -n {FD_LIMIT} && exec \"$0\" --addr 127.0.0.1:0 --workers 2",
        ))
        .arg(env!("CARGO_BIN_EXE_kvserver"));
    let mut server = ServerProcess::spawn(command, "info");
    let addr = server.addr;

    // Twice the limit in idle connections: the server may accept at most
    // what its limit leaves room for; the rest wait in the kernel's backlog.
    let idle: Vec<TcpStream> = (0..2 * FD_LIMIT)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    assert!(
        idle.len() > FD_LIMIT as usize,
        "the flood got through to the kernel"
    );

    // Idle connections send no headers and are cut off after actix's
    // 5 s header timeout; then a real request gets its turn.
    let started = Instant::now();
    let status = loop {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        if answer.starts_with("HTTP/1.1 200") {
            break answer;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no answer after the flood: {answer:?}"
        );
    };
    assert!(status.contains("\"ok\""));
    drop(idle);

    assert!(server.is_running(), "the server is still running");
    let log = server.kill_9().join("\n");
    assert!(
        !log.contains("Too many open files") && !log.contains("os error 24"),
        "the server ran out of file descriptors:\n{log}"
    );
}
