//! The one error type of kvcore.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What can go wrong in a store operation.
///
/// Every variant is something a caller can act on: fix the input, re-read and
/// retry, or report the conflict. `Display` is one lowercase sentence fragment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key is the empty string.
    #[error("key must not be empty")]
    EmptyKey,
    /// The key is longer than the store's `max_key_bytes`.
    #[error("key is {size} bytes, over the limit of {limit} bytes")]
    KeyTooLarge {
        /// Length of the offending key in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The value is longer than the store's `max_value_bytes`.
    #[error("value is {size} bytes, over the limit of {limit} bytes")]
    ValueTooLarge {
        /// Length of the offending value in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The TTL is shorter than 1 ms or longer than 10 years.
    #[error("ttl of {ttl:?} is outside the allowed range of 1 ms to 10 years")]
    InvalidTtl {
        /// The rejected TTL.
        ttl: Duration,
    },
    /// The key is absent (or expired).
    #[error("key not found")]
    NotFound,
    /// `create` found the key already present.
    #[error("key already exists")]
    AlreadyExists {
        /// Version of the entry that is in the way.
        current_version: u64,
    },
    /// A conditional write expected another version.
    #[error("{}", version_mismatch_message(*.expected, *.current))]
    VersionMismatch {
        /// The version the caller expected.
        expected: u64,
        /// The key's current version, or `None` when the key is absent.
        current: Option<u64>,
    },
    /// Reading or writing the data directory failed.
    #[error("{action}")]
    Io {
        /// What the store was doing.
        action: String,
        /// The operating system's error.
        #[source]
        source: IoCause,
    },
    /// A file in the data directory is damaged.
    #[error("{} is corrupt at offset {offset}: {reason}", file.display())]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the first damaged frame.
        offset: u64,
        /// What is wrong there.
        reason: &'static str,
    },
    /// Another process has the data directory open.
    #[error("data directory {} is in use by another process", dir.display())]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// An earlier write or sync failed; the store refuses writes from then
    /// on rather than risk acknowledging data the disk dropped.
    #[error("writes are refused after an earlier storage failure")]
    StorageFailed,
    /// The store's memory bound leaves no room for the write, and the
    /// eviction policy could not make any (see
    /// [`StoreBuilder::max_memory`](crate::StoreBuilder::max_memory)).
    /// Reads and removals still work; a removal makes room.
    #[error("memory bound reached: {used} of {bound} bytes used, the write needs {needed} more")]
    MemoryFull {
        /// Bytes the write would add.
        needed: u64,
        /// Bytes the store held when it gave up.
        used: u64,
        /// The bound, in bytes.
        bound: u64,
    },
    /// The store was closed ([`Store::close`](crate::Store::close)): a
    /// durable store takes no more writes.
    #[error("the store is closed")]
    Closed,
    /// A watch asked for changes after a revision the history no longer
    /// holds (etcd's "compacted").
    #[error(
        "the watch history no longer holds the changes after revision {requested}; the oldest revision a watch can start from is {oldest}"
    )]
    Compacted {
        /// The revision the watch asked to start after.
        requested: u64,
        /// The oldest revision a watch can start from: every change after
        /// it is still kept.
        oldest: u64,
    },
    /// A watcher fell behind: its buffer filled up, so the store stopped
    /// feeding it rather than hold writers up or buffer without bound.
    #[error(
        "the watcher fell behind and was cut off (its buffer of {buffer} events is full); watch again from revision {resume_from}"
    )]
    WatcherCutOff {
        /// Watching again from this revision misses nothing and repeats
        /// nothing: every event up to it was delivered.
        resume_from: u64,
        /// The buffer's size, in events.
        buffer: usize,
    },
}

impl Error {
    pub(crate) fn io(action: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            action: action.into(),
            source: IoCause(Arc::new(source)),
        }
    }
}

/// An operating-system error, shareable so that [`Error`] stays `Clone`.
/// Two causes are equal when their kinds and messages are.
#[derive(Debug, Clone)]
pub struct IoCause(pub Arc<io::Error>);

impl fmt::Display for IoCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for IoCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for IoCause {
    fn eq(&self, other: &IoCause) -> bool {
        self.0.kind() == other.0.kind() && self.0.to_string() == other.0.to_string()
    }
}

impl Eq for IoCause {}

fn version_mismatch_message(expected: u64, current: Option<u64>) -> String {
    match current {
        Some(current) => format!("version mismatch: expected {expected}, key is at {current}"),
        None => format!("version mismatch: expected {expected}, key does not exist"),
    }
}

/// `Result` with kvcore's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
