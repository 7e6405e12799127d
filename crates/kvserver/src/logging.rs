//! Logging: `log` + `env_logger`, with `RUST_LOG` choosing levels (default
//! `info`).
//!
//! Lines go through an in-memory buffer that a background thread writes out
//! every 100 ms (and `flush` at exit), so logging costs a worker a memcpy
//! under a short lock, never a `write(2)`: the flusher swaps the buffer for
//! an empty one and writes outside the lock, so a slow or stuck stderr stalls
//! only the flusher. A line may thus appear up to 100 ms late, and the last
//! 100 ms are lost if the process is killed with SIGKILL.
//!
//! When the buffer is full (`BUFFER_BYTES` waiting, stderr not keeping up)
//! a new line is dropped rather than making the worker wait, and counted:
//! the next write-out ends with a line saying how many were dropped. Lines
//! are plain text, without colours (env_logger is built without them):
//! escape codes would only clutter a log file.

use std::io::{self, Write};
use std::mem;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::Duration;

use env_logger::{Env, Target};

/// How long a line may wait in the buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// How many bytes may wait before new lines are dropped: 100 ms of request
/// lines (about 120 bytes each) at over 300,000 requests a second.
const BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Lines waiting to be written out, and how many were dropped since the
/// last write-out.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    dropped: u64,
}

type Buffer = Arc<Mutex<Pending>>;

/// The buffer in front of stderr, for `flush`.
static STDERR_BUFFER: OnceLock<Buffer> = OnceLock::new();

/// What env_logger writes to: the shared buffer, `limit` bytes at most.
/// env_logger hands over each line in one `write_all`, so a line is kept or
/// dropped whole. env_logger flushes its target after every line, so `flush`
/// here does nothing: writing out is the flusher thread's job (and `flush`'s,
/// at exit).
struct Buffered {
    buffer: Buffer,
    limit: usize,
}

impl Write for Buffered {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut pending = lock(&self.buffer);
        if pending.bytes.len() + bytes.len() > self.limit {
            pending.dropped += 1;
        } else {
            pending.bytes.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn lock(buffer: &Buffer) -> std::sync::MutexGuard<'_, Pending> {
    buffer.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes out what is waiting in `buffer`, using `spare` as the next empty
/// buffer. The lock is held only for the swap: the write to `out` happens
/// outside it, so loggers never wait for `out`.
fn drain(buffer: &Buffer, spare: &mut Vec<u8>, out: &mut impl Write) -> io::Result<()> {
    let dropped = {
        let mut pending = lock(buffer);
        mem::swap(&mut pending.bytes, spare);
        mem::take(&mut pending.dropped)
    };
    let written = out.write_all(spare);
    spare.clear();
    written?;
    if dropped > 0 {
        writeln!(
            out,
            "kvserver: {dropped} log lines dropped: the log buffer was full (stderr not keeping up)"
        )?;
    }
    out.flush()
}

/// A logger writing into `buffer`, with `RUST_LOG` choosing levels.
fn logger(buffer: Buffer, limit: usize) -> env_logger::Logger {
    env_logger::Builder::from_env(Env::default().default_filter_or("info"))
        .target(Target::Pipe(Box::new(Buffered { buffer, limit })))
        .build()
}

/// Where actix's HTTP/1 connection handling logs. It reports a client's
/// malformed request ("stream error: request parse error: ...") at ERROR,
/// once per request: any client could flood the log at the level operators
/// alert on. Such records are passed on at DEBUG instead
/// (`RUST_LOG=actix_http=debug` shows them); kvserver's own errors keep
/// their level.
const CLIENT_ERROR_TARGET: &str = "actix_http::h1";

/// env_logger, with actix's per-connection errors demoted to DEBUG.
struct Demoting(env_logger::Logger);

impl Demoting {
    fn level_of(metadata: &log::Metadata<'_>) -> log::Level {
        if metadata.target().starts_with(CLIENT_ERROR_TARGET)
            && metadata.level() < log::Level::Debug
        {
            log::Level::Debug
        } else {
            metadata.level()
        }
    }
}

impl log::Log for Demoting {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        let level = Demoting::level_of(metadata);
        self.0.enabled(
            &log::Metadata::builder()
                .level(level)
                .target(metadata.target())
                .build(),
        )
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = Demoting::level_of(record.metadata());
        if level == record.level() {
            return self.0.log(record);
        }
        self.0.log(
            &log::Record::builder()
                .level(level)
                .target(record.target())
                .args(*record.args())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }

    fn flush(&self) {
        self.0.flush();
    }
}

/// Installs the logger and starts its flushing thread. Call once, first.
pub fn init() {
    let buffer = STDERR_BUFFER.get_or_init(Buffer::default).clone();
    let logger = logger(buffer.clone(), BUFFER_BYTES);
    log::set_max_level(logger.filter());
    if log::set_boxed_logger(Box::new(Demoting(logger))).is_err() {
        return;
    }
    let flusher = thread::Builder::new()
        .name("log-flush".into())
        .spawn(move || {
            let mut spare = Vec::new();
            loop {
                thread::sleep(FLUSH_EVERY);
                let _ = drain(&buffer, &mut spare, &mut io::stderr().lock());
            }
        });
    if flusher.is_err() {
        // Without the thread lines would sit in the buffer until exit.
        eprintln!("kvserver: could not start the log flusher; logging may be delayed");
    }
}

/// Writes out whatever is buffered.
pub fn flush() {
    if let Some(buffer) = STDERR_BUFFER.get() {
        let _ = drain(buffer, &mut Vec::new(), &mut io::stderr().lock());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::Log;

    /// A sink that records each `write` call it receives.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(bytes.to_vec());
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn record(n: usize) -> String {
        format!("request {n}")
    }

    fn log_lines(logger: &impl Log, count: usize) {
        for n in 0..count {
            logger.log(
                &log::Record::builder()
                    .level(log::Level::Error)
                    .target("kvserver")
                    .args(format_args!("{}", record(n)))
                    .build(),
            );
        }
    }

    #[test]
    fn actix_connection_errors_are_logged_at_debug_not_error() {
        let buffer = Buffer::default();
        let logger = Demoting(
            env_logger::Builder::new()
                .parse_filters("info")
                .target(Target::Pipe(Box::new(Buffered {
                    buffer: buffer.clone(),
                    limit: BUFFER_BYTES,
                })))
                .build(),
        );
        let record = |target: &'static str| {
            log::Record::builder()
                .level(log::Level::Error)
                .target(target)
                .args(format_args!("stream error: request parse error"))
                .build()
        };
        logger.log(&record("actix_http::h1::dispatcher"));
        logger.log(&record("kvserver::app"));
        let sink = Sink::default();
        drain(&buffer, &mut Vec::new(), &mut sink.clone()).unwrap();
        let text = String::from_utf8(sink.0.lock().unwrap().concat()).unwrap();
        assert_eq!(text.lines().count(), 1, "only kvserver's own error: {text}");
        assert!(text.contains("ERROR kvserver::app"), "{text}");
        let debug = Demoting(
            env_logger::Builder::new()
                .parse_filters("info,actix_http=debug")
                .build(),
        );
        assert!(
            debug.enabled(record("actix_http::h1::dispatcher").metadata()),
            "still there at debug"
        );
    }

    #[test]
    fn lines_wait_in_the_buffer_until_it_is_drained() {
        let buffer = Buffer::default();
        let logger = logger(buffer.clone(), BUFFER_BYTES);
        let sink = Sink::default();
        log_lines(&logger, 100);
        // env_logger flushed its target after every line; none reached the sink.
        assert!(sink.0.lock().unwrap().is_empty());

        drain(&buffer, &mut Vec::new(), &mut sink.clone()).unwrap();
        let writes = sink.0.lock().unwrap().clone();
        assert_eq!(writes.len(), 1, "one write for the whole buffer");
        let text = String::from_utf8(writes.concat()).unwrap();
        assert_eq!(text.lines().count(), 100);
        assert!(text.lines().last().unwrap().ends_with("request 99"));
    }

    #[test]
    fn a_full_buffer_drops_whole_lines_and_says_how_many() {
        // Room for about ten lines; nothing drains while a hundred arrive,
        // as when stderr is stuck: the logger must not wait for room.
        let buffer = Buffer::default();
        let line_bytes = 80;
        let logger = logger(buffer.clone(), 10 * line_bytes);
        log_lines(&logger, 100);

        let sink = Sink::default();
        drain(&buffer, &mut Vec::new(), &mut sink.clone()).unwrap();
        let text = String::from_utf8(sink.0.lock().unwrap().concat()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let (report, kept) = lines.split_last().unwrap();
        assert!(kept.len() >= 5 && kept.len() < 100, "{text}");
        for (n, line) in kept.iter().enumerate() {
            assert!(line.ends_with(&record(n)), "whole lines, in order: {text}");
        }
        assert_eq!(
            *report,
            format!(
                "kvserver: {} log lines dropped: the log buffer was full (stderr not keeping up)",
                100 - kept.len()
            )
        );

        // The count starts again, and lines are kept again once drained.
        log_lines(&logger, 1);
        let sink = Sink::default();
        drain(&buffer, &mut Vec::new(), &mut sink.clone()).unwrap();
        let text = String::from_utf8(sink.0.lock().unwrap().concat()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
    }
}
