//! The embedded kvcore store: the default backend, in the server's process.

use async_trait::async_trait;
use bytes::Bytes;
use kvcore::{Condition, Store, TtlChange};

use super::{Backend, BackendInfo, BackendResult, ListPage, LogFigures, StoredEntry, WriteResult};

/// The embedded kvcore store as a backend.
#[derive(Debug, Clone)]
pub struct EmbeddedBackend {
    store: Store,
}

impl EmbeddedBackend {
    /// Serves `store`.
    pub fn new(store: Store) -> EmbeddedBackend {
        EmbeddedBackend { store }
    }
}

fn stored(entry: kvcore::Entry) -> StoredEntry {
    StoredEntry {
        key: entry.key().to_owned(),
        version: entry.version(),
        ttl: entry.ttl(),
        // Shares the store's allocation: no copy of the value.
        value: Bytes::from_owner(entry),
    }
}

#[async_trait]
impl Backend for EmbeddedBackend {
    async fn get(&self, key: &str) -> BackendResult<Option<StoredEntry>> {
        Ok(self.store.get(key)?.map(stored))
    }

    async fn put(
        &self,
        key: &str,
        value: Bytes,
        ttl: TtlChange,
        condition: Condition,
    ) -> BackendResult<WriteResult> {
        // The write applies and is logged on this worker; with
        // `fsync=always` the worker then awaits the sync thread's group
        // commit instead of parking a thread per request.
        let (written, ack) = self.store.put_acked(key, &value, ttl, condition)?;
        ack.await?;
        Ok(WriteResult {
            version: written.version,
            created: written.created,
            ttl: written.ttl,
        })
    }

    async fn remove(&self, key: &str, expected_version: Option<u64>) -> BackendResult<u64> {
        let (version, ack) = self.store.remove_acked(key, expected_version)?;
        ack.await?;
        Ok(version)
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> BackendResult<ListPage> {
        let page = self.store.list(prefix, after, limit);
        Ok(ListPage {
            entries: page.entries.into_iter().map(stored).collect(),
            next_after: page.next,
        })
    }

    async fn info(&self) -> BackendResult<BackendInfo> {
        let stats = self.store.stats();
        let limits = self.store.limits();
        Ok(BackendInfo {
            backend: "embedded",
            keys: stats.keys,
            expired_reclaimed: stats.expired_reclaimed,
            revision: stats.revision,
            tuning: stats.tuning.name(),
            durability: stats
                .durability
                .as_ref()
                .map_or("memory", |d| d.fsync.name()),
            log: stats.durability.as_ref().map(|d| LogFigures {
                log_bytes: d.log_bytes,
                snapshot_bytes: d.snapshot_bytes,
                fsyncs: d.fsyncs,
                compactions: d.compactions,
            }),
            max_key_bytes: limits.max_key_bytes,
            max_value_bytes: limits.max_value_bytes,
        })
    }

    async fn flush(&self) -> anyhow::Result<()> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .map_err(anyhow::Error::new)?
            .map_err(anyhow::Error::new)
    }
}
