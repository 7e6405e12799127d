//! The one door from HTTP routes to storage.
//!
//! Routes only see [`Backend`]; the embedded kvcore store is the default
//! implementation ([`EmbeddedBackend`]), an etcd v3 cluster the other
//! (`EtcdBackend`, with the cargo feature `etcd`). Either slots in through
//! [`crate::Application::build_with_backend`] without touching a route.

mod embedded;
#[cfg(feature = "etcd")]
pub mod etcd;

pub use embedded::EmbeddedBackend;
#[cfg(feature = "etcd")]
pub use etcd::{EtcdBackend, EtcdConfig, EtcdTls};

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use kvcore::{Condition, EventKind, TtlChange};

/// A value as read from storage.
#[derive(Debug, Clone)]
pub struct StoredEntry {
    /// The key.
    pub key: String,
    /// The value's bytes (shared, not copied, for the embedded store).
    pub value: Bytes,
    /// Revision of the key's last write.
    pub version: u64,
    /// Time left before expiry, if the key has a deadline.
    pub ttl: Option<Duration>,
}

/// The outcome of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteResult {
    /// The key's new version.
    pub version: u64,
    /// True when the key did not exist before.
    pub created: bool,
    /// Time left before expiry after the write, if any.
    pub ttl: Option<Duration>,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct ListPage {
    /// Entries in byte order of their keys.
    pub entries: Vec<StoredEntry>,
    /// The last key of this page when more may follow.
    pub next_after: Option<String>,
}

/// One change, as a watch delivers it.
#[derive(Debug, Clone)]
pub struct Change {
    /// The revision of the change.
    pub revision: u64,
    /// The key.
    pub key: String,
    /// What happened.
    pub kind: EventKind,
    /// The new value of a put; `None` otherwise.
    pub value: Option<Bytes>,
    /// Time the put's key had left, as of the put.
    pub ttl: Option<Duration>,
}

/// The changes under a prefix, in revision order. It ends after its first
/// error: [`kvcore::Error::WatcherCutOff`] when the consumer fell behind
/// (watch again from the last revision seen), [`kvcore::Error::Closed`]
/// when storage shuts down.
pub type ChangeStream = BoxStream<'static, kvcore::Result<Change>>;

/// A watch as the backend started it.
pub struct Watch {
    /// The changes, in revision order.
    pub changes: ChangeStream,
    /// The revision the changes come after: `from` when one was given;
    /// from now, the revision the backend had reached when the watch
    /// began. Watching again after it misses nothing, so a client that
    /// loses the stream before its first event still knows where to resume.
    pub after: u64,
}

/// What can go wrong in a backend operation.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The store's own answer: a missing key, a failed condition, a limit,
    /// a failing disk.
    #[error(transparent)]
    Store(#[from] kvcore::Error),
    /// Storage cannot be reached or cannot decide right now (an etcd
    /// cluster down or without quorum); the sentence says which and is
    /// shown to the client. Retrying later may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// A failure that is the server's fault. The cause goes to the log only.
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// `Result` with [`BackendError`].
pub type BackendResult<T> = std::result::Result<T, BackendError>;

/// Figures for `/v1/info` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendInfo {
    /// Which backend serves: `embedded` or `etcd`.
    pub backend: &'static str,
    /// Live keys.
    pub keys: usize,
    /// Expired keys reclaimed so far.
    pub expired_reclaimed: u64,
    /// Latest revision.
    pub revision: u64,
    /// Tuning preset name.
    pub tuning: &'static str,
    /// Durability mode: `memory`, or the fsync policy of the data directory
    /// (`always`, `everysec`, `never`).
    pub durability: &'static str,
    /// Log figures, when there is a data directory.
    pub log: Option<LogFigures>,
    /// Longest key accepted, in bytes.
    pub max_key_bytes: usize,
    /// Longest value accepted, in bytes.
    pub max_value_bytes: usize,
    /// Memory held, bound and evictions.
    pub memory: MemoryFigures,
}

/// The memory bound's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryFigures {
    /// Bytes held by the store's own accounting.
    pub used: u64,
    /// The bound; `None` without one.
    pub bound: Option<u64>,
    /// The eviction policy's name (`reject`, `evict-lru`, `evict-ttl`).
    pub eviction: &'static str,
    /// Keys evicted since start.
    pub evicted: u64,
}

/// Figures about the log and snapshots of a durable backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogFigures {
    /// Bytes in the current log segment.
    pub log_bytes: u64,
    /// Bytes in the latest snapshot.
    pub snapshot_bytes: u64,
    /// Log syncs since start.
    pub fsyncs: u64,
    /// Compactions since start.
    pub compactions: u64,
}

/// Storage as the routes see it. Errors are kvcore's where the store
/// decided (every backend maps its answers onto them), or
/// [`BackendError::Unavailable`] when storage could not be reached.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Reads a key; `None` when absent or expired.
    async fn get(&self, key: &str) -> BackendResult<Option<StoredEntry>>;
    /// Writes a key if `condition` holds.
    async fn put(
        &self,
        key: &str,
        value: Bytes,
        ttl: TtlChange,
        condition: Condition,
    ) -> BackendResult<WriteResult>;
    /// Removes a key, optionally only at a given version. Returns the revision
    /// of the removal.
    async fn remove(&self, key: &str, expected_version: Option<u64>) -> BackendResult<u64>;
    /// Lists keys with a prefix after a key, at most `limit`.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> BackendResult<ListPage>;
    /// Follows the changes to keys under `prefix` after revision `from`
    /// (`None`: from now). Fails with [`kvcore::Error::Compacted`] when the
    /// backend no longer holds the changes after `from`. A consumer that
    /// falls behind is cut off rather than slowing writers.
    async fn watch(&self, prefix: &str, from: Option<u64>) -> BackendResult<Watch>;
    /// Current figures and limits.
    async fn info(&self) -> BackendResult<BackendInfo>;
    /// Whether storage can serve right now, for `/readyz`: always for the
    /// embedded store once recovered; for a cluster, whether it answers a
    /// linearizable read within the timeout.
    async fn ready(&self) -> BackendResult<()> {
        Ok(())
    }
    /// Makes every acknowledged write durable as far as the backend promises
    /// and lets go of the storage (the embedded store's data directory, so
    /// that it can be opened again at once, even while a worker thread still
    /// drops its handle); called once at shutdown.
    async fn close(&self) -> anyhow::Result<()>;
}
