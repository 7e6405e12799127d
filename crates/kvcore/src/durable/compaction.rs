//! Compaction: folding the log into a new snapshot, and the disk bound it
//! keeps under sustained writes.
//!
//! Compaction starts when the current segment is larger than its threshold:
//! [`COMPACTION_FLOOR`] or half the last snapshot, whichever is larger. A
//! writer whose frame crosses it wakes the log worker at once. If writers
//! outrun the compaction and the segment reaches its cap (the threshold
//! plus half the floor), they wait, outside every lock, until a compaction
//! starts a new segment. So the directory holds at most the old snapshot,
//! the old segment (up to its cap), the new snapshot being written and the
//! new segment (up to its cap): at most about three times the live data
//! plus three times the floor (24 MiB), whatever the write rate. A restart
//! replays at most the snapshot and a segment at its cap.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::durable::frame::{Frame, Op};
use crate::durable::snapshot::{self, SnapshotWriter};
use crate::durable::{Durable, log};
use crate::entry::Record;
use crate::error::Result;

/// The smallest compaction threshold (see the module docs).
pub(crate) const COMPACTION_FLOOR: u64 = 8 << 20;

/// How long a writer waits for room before it looks again (a compaction
/// that ends, well or not, wakes it earlier).
const ROOM_RECHECK: Duration = Duration::from_millis(100);

/// What compaction shares with writers.
pub(crate) struct State {
    /// Size of the last snapshot written or loaded.
    snapshot_bytes: AtomicU64,
    /// Compactions finished since open.
    finished: AtomicU64,
    /// One compaction at a time.
    running: Mutex<()>,
    /// A writer has woken the log worker for this segment.
    requested: AtomicBool,
    /// The last attempt failed: writers stop waiting for room (the log may
    /// outgrow its cap until an attempt succeeds).
    failed: AtomicBool,
    /// Writers waiting for room.
    room: Mutex<()>,
    room_made: Condvar,
}

impl State {
    pub(crate) fn new(snapshot_bytes: u64) -> State {
        State {
            snapshot_bytes: AtomicU64::new(snapshot_bytes),
            finished: AtomicU64::new(0),
            running: Mutex::new(()),
            requested: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            room: Mutex::new(()),
            room_made: Condvar::new(),
        }
    }

    fn wake_writers(&self) {
        let _room = self.room.lock();
        self.room_made.notify_all();
    }
}

impl Durable {
    /// The segment size that starts a compaction.
    fn threshold(&self) -> u64 {
        let half_snapshot = self.compaction.snapshot_bytes.load(Ordering::Relaxed) / 2;
        self.thresholds.compaction_floor.max(half_snapshot)
    }

    /// The segment size writers wait at, while a compaction makes room.
    fn cap(&self) -> u64 {
        self.threshold() + self.thresholds.compaction_floor / 2
    }

    /// Whether the log has grown enough to be folded into a snapshot.
    pub(crate) fn needs_compaction(&self) -> bool {
        self.log.segment_bytes() > self.threshold()
    }

    /// After an append: wakes the log worker once the segment crosses the
    /// threshold (once per segment).
    pub(crate) fn request_compaction_if_due(&self) {
        if self.needs_compaction()
            && let Some(worker) = self.worker.get()
            && !self.compaction.requested.swap(true, Ordering::AcqRel)
        {
            worker.wake();
        }
    }

    /// Called by a writer before it takes any lock: waits while the segment
    /// is at its cap and a compaction is on its way. Without a log worker,
    /// or after a failed compaction, there is nothing to wait for.
    pub(crate) fn wait_for_room(&self) {
        if !self.must_wait_for_room() {
            return;
        }
        self.request_compaction_if_due();
        let mut room = self.compaction.room.lock();
        while self.must_wait_for_room() {
            self.compaction.room_made.wait_for(&mut room, ROOM_RECHECK);
        }
    }

    /// Whether a writer arriving now would wait in [`Durable::wait_for_room`].
    pub(crate) fn must_wait_for_room(&self) -> bool {
        self.log.segment_bytes() > self.cap()
            && self.worker.get().is_some()
            && !self.compaction.failed.load(Ordering::Acquire)
            && self.log.check_healthy().is_ok()
    }

    /// Holds off every compaction while the guard lives.
    #[cfg(test)]
    pub(crate) fn hold_compaction(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.compaction.running.lock()
    }

    /// Compactions finished since open.
    pub(crate) fn compactions(&self) -> u64 {
        self.compaction.finished.load(Ordering::Relaxed)
    }

    /// Size of the last snapshot written or loaded.
    pub(crate) fn snapshot_bytes(&self) -> u64 {
        self.compaction.snapshot_bytes.load(Ordering::Relaxed)
    }

    /// Folds the log into a new snapshot. `collect` gathers the live records
    /// of one shard at a time (by index, until it returns `None`);
    /// `current` reads the store's revision as the new segment begins, and
    /// `revision` the revision to record once they are all written.
    ///
    /// A failure leaves the old snapshot and log in use and the store
    /// writable (only a failed sync of the log fails the store): the log
    /// worker tries again later.
    pub(crate) fn compact(
        &self,
        collect: impl FnMut(usize) -> Option<Vec<Record>>,
        current: impl FnOnce() -> u64,
        revision: impl FnOnce() -> u64,
    ) -> Result<()> {
        let _one_at_a_time = self.compaction.running.lock();
        let result = self.compact_once(collect, current, revision);
        self.compaction
            .failed
            .store(result.is_err(), Ordering::Release);
        self.compaction.wake_writers();
        result
    }

    fn compact_once(
        &self,
        mut collect: impl FnMut(usize) -> Option<Vec<Record>>,
        current: impl FnOnce() -> u64,
        revision: impl FnOnce() -> u64,
    ) -> Result<()> {
        // Writes from here on go to the new segment; the snapshot taken after
        // the switch holds at least everything before it.
        let seq = self.log.rotate()?;
        // A `Reserve` frame that changes no reservation (it is below the
        // current one) but tells recovery that every revision handed out
        // before this segment began is at most this one: the change feed
        // can be refilled from this segment for every revision after it.
        self.log.append(&Frame {
            op: Op::Reserve,
            revision: current(),
            deadline_ms: 0,
            key: b"",
            value: b"",
        })?;
        self.compaction.requested.store(false, Ordering::Release);
        self.compaction.wake_writers();
        // Dropped on any error below: the temporary file is removed.
        let mut writer = SnapshotWriter::create(self.disk.clone(), &self.dir, seq)?;
        let mut shard = 0;
        while let Some(records) = collect(shard) {
            for record in &records {
                writer.put(record)?;
            }
            shard += 1;
        }
        // Shards are copied one after another, so the snapshot may hold a
        // write to a late shard without an earlier write to a shard already
        // copied. Every write it holds was logged before it applied: syncing
        // the log now makes all of them, and everything before them,
        // durable before the snapshot can stand in for the log. A power cut
        // then leaves a prefix of history either way.
        self.log.sync_now()?;
        let bytes = writer.finish(revision())?;
        self.compaction
            .snapshot_bytes
            .store(bytes, Ordering::Relaxed);
        self.compaction.finished.fetch_add(1, Ordering::Relaxed);
        // The new snapshot is in place: older files are no longer needed.
        // Failing to remove them costs only disk space until the next
        // compaction or open removes them.
        let Ok(names) = self.disk.list(&self.dir) else {
            return Ok(());
        };
        for name in names {
            let old = log::segment_seq(&name).is_some_and(|s| s < seq)
                || snapshot::snapshot_seq(&name).is_some_and(|s| s < seq);
            if old {
                let _ = self.disk.remove(&self.dir.join(&name));
            }
        }
        let _ = self.disk.sync_dir(&self.dir);
        Ok(())
    }
}
