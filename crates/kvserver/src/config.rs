//! The server's typed configuration. Only `cli.rs` knows about flags and
//! environment variables; everything past `main` receives a [`Config`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kvcore::{Clock, Eviction, Fsync, OnCorruption, SystemClock, Tuning};

use crate::auth::Tokens;
use crate::tls::Tls;

/// Where the data lives.
#[derive(Debug, Clone, Default)]
pub enum Storage {
    /// A kvcore store in this process: in memory, or in `data_dir`. The default.
    #[default]
    Embedded,
    /// An etcd v3 cluster (cargo feature `etcd`).
    #[cfg(feature = "etcd")]
    Etcd(crate::backend::EtcdConfig),
}

/// Everything the server needs to know to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the data lives. Default: the embedded store.
    pub storage: Storage,
    /// Where data is kept; `None` keeps it in memory only. Default `None`.
    pub data_dir: Option<PathBuf>,
    /// When the log is synced (with a data directory). Default everysec.
    pub fsync: Fsync,
    /// What to do about a log damaged before its end. Default: refuse to start.
    pub on_corruption: OnCorruption,
    /// Accepted bearer tokens; `None` serves everyone (only allowed on
    /// loopback unless explicitly asked for). Default `None`.
    pub tokens: Option<Tokens>,
    /// Serve `/metrics` and `/v1/info` without a token. Default false: they
    /// need a token with `admin:` on every key.
    pub open_metrics: bool,
    /// Serve HTTPS with this certificate and key; `None` serves plain HTTP.
    /// Default `None`.
    pub tls: Option<Tls>,
    /// Shard layout preset of the embedded store. Default balanced.
    pub tuning: Tuning,
    /// The store's memory bound in bytes; `None` for none. Default `None`.
    pub max_memory: Option<u64>,
    /// What a write over `max_memory` does. Default reject.
    pub eviction: Eviction,
    /// Longest key accepted, in bytes. Default 1024.
    pub max_key_bytes: usize,
    /// Longest value accepted, in bytes. Default 1 MiB.
    pub max_value_bytes: usize,
    /// Longest request body accepted, in bytes. Default 2 MiB, room for a
    /// 1 MiB value in the seed API's JSON with escapes.
    pub max_body_bytes: usize,
    /// Where a `/v1/kv` listing page stops (with `next`) once its JSON
    /// reaches this many bytes, whatever `limit` asked for; a page always
    /// holds at least one item. Default 4 MiB.
    pub list_page_bytes: usize,
    /// How long in-flight requests may take to finish after SIGTERM. Default 30 s.
    pub shutdown_timeout: Duration,
    /// How long a client may take to send a request body. Default 10 s.
    pub body_timeout: Duration,
    /// Worker threads. Default: one per core.
    pub workers: usize,
    /// Connections the server keeps open at once, over all workers. Default:
    /// what the file-descriptor limit allows, minus room for files.
    pub max_connections: usize,
    /// Changes the embedded store keeps so that a `/v1/watch` can start in
    /// the past (or resume with `Last-Event-ID`) rather than be told
    /// `compacted`. Default 10,000 (at most 64 MiB of keys and values).
    pub watch_history: usize,
    /// How often a quiet `/v1/watch` stream gets a keep-alive comment, so
    /// that proxies and clients can tell it from a dead connection.
    /// Default 15 s.
    pub watch_keepalive: Duration,
    /// Where the store reads the time. Tests swap in a manual clock.
    pub clock: Arc<dyn Clock>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            storage: Storage::Embedded,
            data_dir: None,
            fsync: Fsync::default(),
            on_corruption: OnCorruption::default(),
            tokens: None,
            open_metrics: false,
            tls: None,
            tuning: Tuning::default(),
            max_memory: None,
            eviction: Eviction::default(),
            max_key_bytes: 1024,
            max_value_bytes: 1024 * 1024,
            max_body_bytes: 2 * 1024 * 1024,
            list_page_bytes: 4 * 1024 * 1024,
            shutdown_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_connections: 25_000,
            watch_history: 10_000,
            watch_keepalive: Duration::from_secs(15),
            clock: Arc::new(SystemClock),
        }
    }
}
