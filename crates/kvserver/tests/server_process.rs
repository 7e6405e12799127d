//! The real `kvserver` binary as a child process: its address read from the
//! log, signals sent with `kill`, its stderr log collected line by line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// How long start-up, a log line or an exit may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// A running server process. Killed on drop if the test did not stop it.
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http` or `https`, as its log says.
    pub scheme: String,
    lines: Receiver<String>,
    log: Vec<String>,
}

impl ServerProcess {
    /// Starts the binary on `127.0.0.1:0` with `RUST_LOG=rust_log` and extra
    /// flags, and waits for its `listening on` line.
    pub fn start(rust_log: &str, flags: &[&str]) -> ServerProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kvserver"));
        command
            .args(["--addr", "127.0.0.1:0", "--workers", "2"])
            .args(flags);
        ServerProcess::spawn(command, rust_log)
    }

    /// Runs `command`, which starts the binary itself or through a shell that
    /// `exec`s it (to set limits first), with `RUST_LOG=rust_log`, and waits
    /// for its `listening on` line.
    pub fn spawn(mut command: Command, rust_log: &str) -> ServerProcess {
        command
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // The test's own environment must not configure the server.
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("KV_")) {
            command.env_remove(name);
        }
        let mut child = command.spawn().expect("starting kvserver");
        let stderr = child.stderr.take().expect("piped stderr");
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = ServerProcess {
            child,
            addr: "127.0.0.1:0".parse().expect("an address"),
            scheme: String::new(),
            lines,
            log: Vec::new(),
        };
        // `listening on http://ADDR`, or `https://ADDR` with TLS.
        let line = server.wait_for_log("listening on http");
        let (_, url) = line
            .split_once("listening on ")
            .expect("the line holds the address");
        let (scheme, address) = url.split_once("://").expect("the address has a scheme");
        server.scheme = scheme.to_owned();
        server.addr = address
            .trim()
            .parse()
            .unwrap_or_else(|err| panic!("{address:?} is not an address: {err}"));
        server
    }

    /// Waits for a log line containing `needle` and returns it.
    pub fn wait_for_log(&mut self, needle: &str) -> String {
        if let Some(line) = self.log.iter().find(|line| line.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no log line with {needle:?} in:\n{}", self.log.join("\n"))
                }
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "the server exited before logging {needle:?}:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// Sends a signal (`TERM`, `INT`) with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit, then returns its status and whole log.
    pub fn wait_for_exit(mut self) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("polling the child") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit; log:\n{}",
                self.log.join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.whole_log())
    }

    /// Whether the process is still running.
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A figure of `/proc/PID/status` in kB, e.g. `VmPeak`.
    pub fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("reading /proc/PID/status");
        status
            .lines()
            .find_map(|line| {
                let value = line.strip_prefix(field)?.strip_prefix(':')?;
                value.trim().strip_suffix("kB")?.trim().parse().ok()
            })
            .unwrap_or_else(|| panic!("no {field} in {status}"))
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("polling the child").is_none()
    }

    /// Kills the process with SIGKILL (no shutdown code runs), waits for it,
    /// and returns its whole log.
    pub fn kill_9(mut self) -> Vec<String> {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
        self.whole_log()
    }

    /// The log so far and the rest of it, once the process has exited.
    fn whole_log(&mut self) -> Vec<String> {
        // The pipe closes with the process: the reader thread ends.
        while let Ok(line) = self.lines.recv_timeout(PATIENCE) {
            self.log.push(line);
        }
        std::mem::take(&mut self.log)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // A failed test must not leave a server behind; a no-op after exit.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The index of the first line containing `needle`, failing the test if none.
pub fn position(log: &[String], needle: &str) -> usize {
    log.iter()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no log line with {needle:?} in:\n{}", log.join("\n")))
}

/// Runs a command that is expected to exit by itself (a start-up refusal)
/// and returns its exit status and stderr. One that is still running after
/// the patience is killed and fails the test, instead of hanging it.
pub fn exit_of(mut command: Command) -> (ExitStatus, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting kvserver");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (sender, ended) = channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        let _ = sender.send(text);
    });
    // stderr closes when the process exits.
    let text = match ended.recv_timeout(PATIENCE) {
        Ok(text) => text,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("expected kvserver to refuse to start, but it is still running");
        }
    };
    (child.wait().expect("waiting for kvserver"), text)
}
