//! The background duties of a durable store: the log worker (reserving
//! revisions ahead of the writers, compaction) and, with `everysec`, the
//! sync thread. The sync has a thread of its own so that a long compaction
//! never stretches the window of unsynced writes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::background::Threads;
use crate::durable::log::Fsync;
use crate::durable::{Durable, ack};
use crate::error::Result;
use crate::store::Inner;

/// How often the log worker wakes to reserve revisions and compact (a
/// writer wakes it earlier when the log needs compacting).
const LOG_WORKER_TICK: Duration = Duration::from_millis(500);

/// How often the `everysec` sync thread wakes: often enough that a write is
/// synced within a second.
const EVERYSEC_TICK: Duration = Duration::from_millis(500);

/// Starts the log threads of a durable store (with `log_worker` false, only
/// the group-commit thread that `always` needs): without the worker,
/// `everysec` falls back to the syncs of compaction and close, reservations
/// are made by the writers themselves, and compaction runs only when asked.
pub(crate) fn spawn_log_threads(
    store: &Arc<Inner>,
    threads: &Threads,
    fsync: Fsync,
    log_worker: bool,
) -> Result<()> {
    let Some(durable) = &store.durable else {
        return Ok(());
    };
    if fsync == Fsync::Always {
        // Stopped by closing the log, not by its signal.
        let handle = ack::spawn_syncer(durable.log.clone())?;
        threads.adopt(Default::default(), handle);
    }
    if !log_worker {
        return Ok(());
    }
    let worker = threads.spawn_periodic(
        "kvcore-log",
        LOG_WORKER_TICK,
        store.clone(),
        Inner::maintain_log,
    );
    durable.attach_worker(worker);
    if fsync == Fsync::EverySec {
        threads.spawn_periodic(
            "kvcore-everysec",
            EVERYSEC_TICK,
            store.clone(),
            Inner::sync_in_background,
        );
    }
    Ok(())
}

/// How the store drives its data directory: the one place where durability
/// reaches into the store's tables (to copy them into a snapshot).
impl Inner {
    /// Folds the log of `durable` into a snapshot of the tables.
    pub(crate) fn compact(&self, durable: &Durable) -> Result<()> {
        let now = self.clock.now_ms();
        durable.compact(
            |index| {
                let shard = self.shards.get(index)?;
                // Cloning records is cheap (a reference count each) and keeps
                // file I/O out of the shard lock.
                Some(shard.read(|t| t.iter().filter(|r| !r.is_expired(now)).cloned().collect()))
            },
            || self.revision.0.load(Ordering::SeqCst),
            // Not below the reservation: after a power cut, the store must
            // continue above every revision it may have handed out.
            || {
                let revision = self.revision.0.load(Ordering::Acquire);
                revision.max(durable.reserved())
            },
        )
    }

    /// The log worker's duties: reserving revisions ahead of the writers,
    /// and compaction, as long as the log needs it (writers may be waiting
    /// for room).
    pub(crate) fn maintain_log(&self) {
        let Some(durable) = &self.durable else {
            return;
        };
        // A failure marks the log failed; the next write reports it.
        let _ = durable.reserve_ahead(self.revision.0.load(Ordering::Acquire));
        while durable.needs_compaction() && durable.log.check_healthy().is_ok() {
            // A failed compaction leaves the old snapshot and log in place and
            // is tried again on a later tick.
            if self.compact(durable).is_err() {
                break;
            }
        }
    }

    /// The `everysec` sync thread's duty.
    fn sync_in_background(&self) {
        if let Some(durable) = &self.durable
            && durable.log.has_unsynced()
        {
            // A failure marks the log failed and refuses later writes; there
            // is no one to return it to here.
            let _ = durable.log.sync_now();
        }
    }
}
