//! Logging: `log` + `env_logger`, with `RUST_LOG` choosing levels (default
//! `info`).
//!
//! Lines go through an in-memory buffer that a background thread flushes
//! every 100 ms (and `flush` at exit), so the request log costs a worker a
//! memcpy, not a `write(2)` that could block it on a slow disk. A line may
//! thus appear up to 100 ms late, and the last 100 ms are lost if the process
//! is killed with SIGKILL. Lines are plain text, without colours (env_logger
//! is built without them): escape codes would only clutter a log file.

use std::io::{self, BufWriter, Write};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::Duration;

use env_logger::{Env, Target};

/// How long a line may wait in the buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// How much the buffer holds before a line has to wait for a write.
const BUFFER_BYTES: usize = 64 * 1024;

type Buffer<W> = Arc<Mutex<BufWriter<W>>>;

/// The buffer in front of stderr, for `flush`.
static STDERR_BUFFER: OnceLock<Buffer<io::Stderr>> = OnceLock::new();

/// What env_logger writes to: the shared buffer. env_logger flushes its
/// target after every line, so `flush` here does nothing: writing the buffer
/// out is the flusher thread's job (and `flush`'s, at exit).
struct Buffered<W: Write>(Buffer<W>);

impl<W: Write> Write for Buffered<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        lock(&self.0).write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn lock<W: Write>(buffer: &Buffer<W>) -> std::sync::MutexGuard<'_, BufWriter<W>> {
    buffer.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A logger writing into `buffer`, with `RUST_LOG` choosing levels.
fn logger<W: Write + Send + 'static>(buffer: Buffer<W>) -> env_logger::Logger {
    env_logger::Builder::from_env(Env::default().default_filter_or("info"))
        .target(Target::Pipe(Box::new(Buffered(buffer))))
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
    let buffer = STDERR_BUFFER
        .get_or_init(|| {
            Arc::new(Mutex::new(BufWriter::with_capacity(
                BUFFER_BYTES,
                io::stderr(),
            )))
        })
        .clone();
    let logger = logger(buffer.clone());
    log::set_max_level(logger.filter());
    if log::set_boxed_logger(Box::new(Demoting(logger))).is_err() {
        return;
    }
    let flusher = thread::Builder::new()
        .name("log-flush".into())
        .spawn(move || {
            loop {
                thread::sleep(FLUSH_EVERY);
                let _ = lock(&buffer).flush();
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
        let _ = lock(buffer).flush();
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

    #[test]
    fn actix_connection_errors_are_logged_at_debug_not_error() {
        let sink = Sink::default();
        let buffer = Arc::new(Mutex::new(BufWriter::new(sink.clone())));
        let logger = Demoting(
            env_logger::Builder::new()
                .parse_filters("info")
                .target(Target::Pipe(Box::new(Buffered(buffer.clone()))))
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
        lock(&buffer).flush().unwrap();
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
    fn lines_wait_in_the_buffer_until_it_is_flushed() {
        let sink = Sink::default();
        let buffer = Arc::new(Mutex::new(BufWriter::with_capacity(
            BUFFER_BYTES,
            sink.clone(),
        )));
        let logger = logger(buffer.clone());
        for n in 0..100 {
            logger.log(
                &log::Record::builder()
                    .level(log::Level::Error)
                    .target("kvserver")
                    .args(format_args!("request {n}"))
                    .build(),
            );
        }
        // env_logger flushed its target after every line; none reached the sink.
        assert!(sink.0.lock().unwrap().is_empty());

        lock(&buffer).flush().unwrap();
        let writes = sink.0.lock().unwrap().clone();
        assert_eq!(writes.len(), 1, "one write for the whole buffer");
        let text = String::from_utf8(writes.concat()).unwrap();
        assert_eq!(text.lines().count(), 100);
        assert!(text.lines().last().unwrap().ends_with("request 99"));
    }
}
