//! The one error type of kvcore.

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
}

fn version_mismatch_message(expected: u64, current: Option<u64>) -> String {
    match current {
        Some(current) => format!("version mismatch: expected {expected}, key is at {current}"),
        None => format!("version mismatch: expected {expected}, key does not exist"),
    }
}

/// `Result` with kvcore's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
