//! The one error type of kvctl. Each variant is a kind of failure a script
//! can tell apart; `main` turns the kind into an exit code, and nothing else
//! decides exit codes.

use std::io;
use std::path::PathBuf;

/// What went wrong. `Display` is one lowercase line for a person; a cause, if
/// any, stays in `source()` and `main` appends it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asked for something kvctl can't do.
    #[error("{0}")]
    Usage(String),

    /// A file or stream named on the command line could not be read.
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file, or `-` for stdin.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The input (an import file, a certificate) is not what kvctl expects.
    #[error("{0}")]
    Input(String),

    /// The server refused the request as malformed or too large (400, 413).
    #[error("the server refused the request: {message}")]
    Invalid {
        /// The server's sentence.
        message: String,
    },

    /// The key is absent or expired.
    #[error("key {key:?} not found")]
    NotFound {
        /// The key.
        key: String,
    },

    /// A condition failed: the key exists (`--if-absent`) or is at another
    /// version (`--if-version`).
    #[error("{message}")]
    ConditionFailed {
        /// What failed, naming the key and versions.
        message: String,
    },

    /// No connection could be made: refused, DNS, TLS.
    #[error("cannot reach the server at {endpoint}: {cause}")]
    Unreachable {
        /// The endpoint tried.
        endpoint: String,
        /// The innermost cause, which is the part a person can act on.
        cause: String,
    },

    /// The server took longer than `--timeout`.
    #[error("the server at {endpoint} did not answer within {timeout} (see --timeout)")]
    Timeout {
        /// The endpoint tried.
        endpoint: String,
        /// The timeout, as a person writes it.
        timeout: String,
    },

    /// The server wants a token, or a different one (401, 403).
    #[error("{message}")]
    Auth {
        /// What the server said, and what to do about it.
        message: String,
    },

    /// The server failed, or answered something kvctl does not understand.
    #[error("the server at {endpoint} answered {status}: {message}")]
    Server {
        /// The endpoint asked.
        endpoint: String,
        /// The HTTP status, as `500 Internal Server Error`.
        status: String,
        /// The server's sentence, or what was wrong with the answer.
        message: String,
    },

    /// Writing the output failed.
    #[error("cannot write the output")]
    Output(#[source] io::Error),

    /// A record of an import failed; the cause decides the exit code.
    #[error("{file} line {line} ({imported} written before it)")]
    Import {
        /// The import file.
        file: String,
        /// 1-based line number.
        line: u64,
        /// How many records were written before this one.
        imported: u64,
        /// What went wrong with this record.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// The error this one stands for when it comes to deciding what happened:
    /// an import failure is whatever its record's failure was.
    pub fn kind(&self) -> &Error {
        match self {
            Error::Import { source, .. } => source.kind(),
            other => other,
        }
    }

    /// Whether this is a closed stdout (`kvctl list | head`), which is not a
    /// failure worth reporting.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self.kind(), Error::Output(err) if err.kind() == io::ErrorKind::BrokenPipe)
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Error {
        // Serializing kvctl's own output only fails when writing does; the
        // conversion keeps the io error's kind, so a broken pipe stays one.
        Error::Output(io::Error::from(err))
    }
}

/// An error and its causes on one line: `a: b: c`.
pub fn with_causes(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        line.push_str(": ");
        line.push_str(&next.to_string());
        cause = next.source();
    }
    line
}
