//! Logging: `log` + `env_logger`, with `RUST_LOG` choosing levels (default
//! `info`).
//!
//! Lines go through an in-memory buffer that a background thread flushes
//! every 100 ms (and `flush` at exit), so the request log costs a worker a
//! memcpy, not a `write(2)` that could block it on a slow disk. A line may
//! thus appear up to 100 ms late, and the last 100 ms are lost if the process
//! is killed with SIGKILL.

use std::io::{self, BufWriter, IsTerminal, Stderr, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use env_logger::{Env, Target, WriteStyle};

/// How long a line may wait in the buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

type Buffer = Arc<Mutex<BufWriter<Stderr>>>;

/// What env_logger writes to: the shared buffer.
struct Buffered(Buffer);

impl Write for Buffered {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}

/// Installs the logger and starts its flushing thread. Call once, first.
pub fn init() {
    let buffer: Buffer = Arc::new(Mutex::new(BufWriter::with_capacity(
        64 * 1024,
        io::stderr(),
    )));
    // Colours only for a person at a terminal; a log file gets plain text
    // without the cost of stripping escape codes from every line.
    let style = if io::stderr().is_terminal() {
        WriteStyle::Auto
    } else {
        WriteStyle::Never
    };
    env_logger::Builder::from_env(Env::default().default_filter_or("info"))
        .target(Target::Pipe(Box::new(Buffered(buffer.clone()))))
        .write_style(style)
        .init();
    let flusher = thread::Builder::new()
        .name("log-flush".into())
        .spawn(move || {
            loop {
                thread::sleep(FLUSH_EVERY);
                let _ = buffer
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .flush();
            }
        });
    if flusher.is_err() {
        // Without the thread lines would sit in the buffer until exit.
        eprintln!("kvserver: could not start the log flusher; logging may be delayed");
    }
}

/// Writes out whatever is buffered.
pub fn flush() {
    log::logger().flush();
}
