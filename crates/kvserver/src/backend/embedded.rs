//! The embedded kvcore store: the default backend, in the server's process.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use kvcore::{Condition, Store, TtlChange, Watcher};

use super::{
    Backend, BackendInfo, BackendResult, Change, ChangeStream, ListPage, LogFigures, MemoryFigures,
    StoredEntry, Watch, WriteResult,
};

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
        // commit instead of parking a thread per request. A write that would
        // wait for a compaction to make room in the log waits on a blocking
        // thread instead, so the worker keeps serving reads meanwhile.
        let (written, ack) = if self.store.writes_may_wait() {
            let store = self.store.clone();
            let key = key.to_owned();
            match tokio::task::spawn_blocking(move || store.put_acked(&key, &value, ttl, condition))
                .await
            {
                Ok(applied) => applied?,
                Err(failed) if failed.is_panic() => std::panic::resume_unwind(failed.into_panic()),
                // Cancelled before it ran: the runtime is shutting down.
                Err(_) => return Err(kvcore::Error::Closed.into()),
            }
        } else {
            self.store.put_acked(key, &value, ttl, condition)?
        };
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

    async fn watch(&self, prefix: &str, from: Option<u64>) -> BackendResult<Watch> {
        let watcher = self.store.watch(prefix, from)?;
        // Taken before any event is read: everything up to it is behind
        // the watch, everything after it comes through it.
        let after = from.unwrap_or_else(|| watcher.progress());
        let waker: Arc<Mutex<Option<Waker>>> = Arc::default();
        let theirs = waker.clone();
        // Called on the store's dispatcher thread: wakes the task polling
        // this stream, so no thread waits per watcher.
        watcher.on_ready(move || {
            if let Some(waker) = lock(&theirs).take() {
                waker.wake();
            }
        });
        let changes: ChangeStream = Box::pin(Changes {
            watcher,
            waker,
            ended: false,
        });
        Ok(Watch { changes, after })
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
            memory: MemoryFigures {
                used: stats.memory.used,
                bound: stats.memory.bound,
                eviction: stats.memory.eviction.name(),
                evicted: stats.memory.evicted,
            },
        })
    }

    async fn close(&self) -> anyhow::Result<()> {
        // Closes every clone: syncs the log and releases the directory.
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.close())
            .await
            .map_err(anyhow::Error::new)?
            .map_err(anyhow::Error::new)
    }
}

/// A kvcore watcher as a stream, woken by the watcher's notify callback.
struct Changes {
    watcher: Watcher,
    waker: Arc<Mutex<Option<Waker>>>,
    ended: bool,
}

/// A watch event's value, shared with the store's event (no copy).
struct EventValue(kvcore::Event);

impl AsRef<[u8]> for EventValue {
    fn as_ref(&self) -> &[u8] {
        self.0.value().unwrap_or_default()
    }
}

impl Stream for Changes {
    type Item = kvcore::Result<Change>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        // Look, register, look again: an event that arrives between the
        // first look and the registration still wakes the task.
        for _ in 0..2 {
            match this.watcher.try_recv() {
                Ok(Some(event)) => {
                    return Poll::Ready(Some(Ok(Change {
                        revision: event.revision(),
                        key: event.key().to_owned(),
                        kind: event.kind(),
                        ttl: event.ttl(),
                        value: event
                            .value()
                            .is_some()
                            .then(|| Bytes::from_owner(EventValue(event))),
                    })));
                }
                Ok(None) => *lock(&this.waker) = Some(cx.waker().clone()),
                Err(err) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(err)));
                }
            }
        }
        Poll::Pending
    }
}

/// The waker slot, whatever a panic elsewhere left in it.
fn lock(slot: &Mutex<Option<Waker>>) -> std::sync::MutexGuard<'_, Option<Waker>> {
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
