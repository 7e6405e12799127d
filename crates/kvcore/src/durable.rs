//! The data directory: its lock, recovery on open (latest snapshot, then the
//! log), and compaction of the log into a new snapshot.
//!
//! Files: `LOCK`, `snap-<seq>.kvsnap` (at most one after a compaction
//! finishes), `log-<seq>.kvlog` segments. Snapshot `N` pairs with segments
//! `N` and later; older files are leftovers of a compaction that was cut
//! short and are removed on open.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::ack::Ack;
use crate::disk::Disk;
use crate::entry::Record;
use crate::error::{Error, Result};
use crate::log::{self, Decoded, Frame, Fsync, Log, Op};
use crate::recovery::{OnCorruption, RecoveryReport, Replay, Replayed, Truncation};
use crate::snapshot::{self, SnapshotWriter};
use crate::store::{Inner, spawn_periodic};

/// Compaction starts when the current segment is larger than this or half
/// the last snapshot, whichever is larger. So the directory holds at most the
/// snapshot, a log half its size (or this floor), and a new snapshot while
/// one is written: about two and a half times the live data, plus this
/// floor; and a restart replays at most about one and a half times the live
/// records (1M keys recover in well under a second; see BENCHMARKS.md).
pub(crate) const COMPACTION_FLOOR: u64 = 8 << 20;

/// How far ahead of the store's revision the log reserves revisions. A
/// revision is handed out only once a synced `Reserve` frame covers it, and a
/// reopened store continues above the highest reservation it finds, so no
/// version is ever handed out twice, not even after a power loss took back
/// writes that readers had already seen (with any fsync policy). The price:
/// one small synced frame per this many writes (written ahead by the log
/// worker), and a restart skips up to this many revisions.
pub(crate) const REVISION_RESERVE: u64 = 1 << 20;

/// The sizes that drive a data directory's upkeep (tests make them small).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Thresholds {
    /// See [`COMPACTION_FLOOR`].
    pub(crate) compaction_floor: u64,
    /// See [`REVISION_RESERVE`].
    pub(crate) revision_reserve: u64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            compaction_floor: COMPACTION_FLOOR,
            revision_reserve: REVISION_RESERVE,
        }
    }
}

/// An open data directory.
pub(crate) struct Durable {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    pub(crate) log: Arc<Log>,
    snapshot_bytes: AtomicU64,
    thresholds: Thresholds,
    compactions: AtomicU64,
    /// The highest revision a synced `Reserve` frame covers.
    reserved: AtomicU64,
    /// One reservation at a time.
    reserving: parking_lot::Mutex<()>,
    /// One compaction at a time.
    pub(crate) compacting: parking_lot::Mutex<()>,
    /// Held for the store's lifetime; released by the OS if the process dies.
    _lock: Box<dyn Send + Sync>,
}

impl Durable {
    /// Opens (or creates) `dir`, replays it through `apply`, and opens the
    /// log for appending.
    pub(crate) fn open(
        disk: Arc<dyn Disk>,
        dir: &Path,
        fsync: Fsync,
        on_corruption: OnCorruption,
        thresholds: Thresholds,
        now_ms: u64,
        apply: &mut dyn FnMut(Replayed<'_>),
    ) -> Result<(Durable, RecoveryReport)> {
        let started = Instant::now();
        let io = |what: &str, err| Error::io(format!("{what} {}", dir.display()), err);
        disk.create_dir_all(dir)
            .map_err(|err| io("could not create data directory", err))?;
        let lock = disk.lock(dir).map_err(|err| {
            if err.kind() == std::io::ErrorKind::WouldBlock {
                Error::Locked {
                    dir: dir.to_owned(),
                }
            } else {
                io("could not lock data directory", err)
            }
        })?;
        let names = disk
            .list(dir)
            .map_err(|err| io("could not list data directory", err))?;

        let mut report = RecoveryReport {
            keys: 0,
            snapshot_records: 0,
            log_records: 0,
            expired_dropped: 0,
            revision: 0,
            torn_tail: None,
            truncated_corruption: None,
            duration: Duration::ZERO,
        };
        let mut replay = Replay {
            now_ms,
            apply,
            report: &mut report,
        };

        let snapshot_seq = names.iter().filter_map(|n| snapshot::snapshot_seq(n)).max();
        let mut snapshot_bytes = 0;
        if let Some(seq) = snapshot_seq {
            let path = dir.join(snapshot::snapshot_name(seq));
            let bytes = disk
                .read(&path)
                .map_err(|err| Error::io(format!("could not read {}", path.display()), err))?;
            snapshot_bytes = bytes.len() as u64;
            let mut failure = None;
            let revision = snapshot::read(&bytes, &path, |frame| {
                if failure.is_none() {
                    failure = replay.frame(frame, &path).err();
                    replay.report.snapshot_records += 1;
                }
            })?;
            if let Some(err) = failure {
                return Err(err);
            }
            replay.report.revision = replay.report.revision.max(revision);
        }
        let first_live = snapshot_seq.unwrap_or(0);

        let mut segments: Vec<u64> = names.iter().filter_map(|n| log::segment_seq(n)).collect();
        segments.sort_unstable();
        let mut tail = (first_live.max(1), 0);
        let mut cut_after = None;
        for (index, &seq) in segments.iter().enumerate() {
            let path = dir.join(log::segment_name(seq));
            if seq < first_live {
                continue;
            }
            if cut_after.is_some() {
                // Everything after a truncated corruption goes with it.
                disk.remove(&path).map_err(|err| {
                    Error::io(format!("could not remove {}", path.display()), err)
                })?;
                continue;
            }
            let bytes = disk
                .read(&path)
                .map_err(|err| Error::io(format!("could not read {}", path.display()), err))?;
            let is_last = index + 1 == segments.len();
            let end = replay.segment(&bytes, &path, is_last, on_corruption)?;
            if end < bytes.len() {
                let truncation = Truncation {
                    file: path.clone(),
                    offset: end as u64,
                    bytes_dropped: (bytes.len() - end) as u64,
                };
                disk.truncate(&path, end as u64).map_err(|err| {
                    Error::io(format!("could not truncate {}", path.display()), err)
                })?;
                if matches!(log::decode(&bytes, end), Decoded::Torn) && is_last {
                    replay.report.torn_tail = Some(truncation);
                } else {
                    replay.report.truncated_corruption = Some(truncation);
                    cut_after = Some(seq);
                }
            }
            tail = (seq, end as u64);
        }

        // Leftovers of a compaction cut short: older segments and snapshots,
        // and an unfinished temporary snapshot.
        for name in &names {
            let stale = log::segment_seq(name).is_some_and(|seq| seq < first_live)
                || snapshot::snapshot_seq(name).is_some_and(|seq| Some(seq) < snapshot_seq)
                || snapshot::is_temporary(name);
            if stale {
                let path = dir.join(name);
                disk.remove(&path).map_err(|err| {
                    Error::io(format!("could not remove {}", path.display()), err)
                })?;
            }
        }
        disk.sync_dir(dir)
            .map_err(|err| io("could not sync data directory", err))?;

        let (seq, segment_bytes) = tail;
        let log = Arc::new(Log::open(disk.clone(), dir, seq, segment_bytes, fsync)?);
        if fsync == Fsync::Always {
            crate::ack::spawn_syncer(Arc::downgrade(&log))?;
        }
        let durable = Durable {
            disk,
            dir: dir.to_owned(),
            log,
            snapshot_bytes: AtomicU64::new(snapshot_bytes),
            thresholds,
            compactions: AtomicU64::new(0),
            reserved: AtomicU64::new(report.revision),
            reserving: parking_lot::Mutex::new(()),
            compacting: parking_lot::Mutex::new(()),
            _lock: lock,
        };
        // The revisions of writes lost to a power cut may have been seen:
        // continue above anything the last run may have handed out, and
        // reserve ahead for this one.
        durable.reserve_through(report.revision + 1)?;
        report.duration = started.elapsed();
        Ok((durable, report))
    }

    /// Whether the log has grown enough to be folded into a snapshot.
    pub(crate) fn needs_compaction(&self) -> bool {
        let threshold = self
            .thresholds
            .compaction_floor
            .max(self.snapshot_bytes.load(Ordering::Relaxed) / 2);
        self.log.segment_bytes() > threshold
    }

    /// Folds the log into a new snapshot. `collect` gathers the live records
    /// of one shard at a time (by index, until it returns `None`);
    /// `revision` reads the store's revision once they are all written.
    pub(crate) fn compact(
        &self,
        mut collect: impl FnMut(usize) -> Option<Vec<crate::entry::Record>>,
        revision: impl FnOnce() -> u64,
    ) -> Result<()> {
        let _one_at_a_time = self.compacting.lock();
        // Writes from here on go to the new segment; the snapshot taken after
        // the switch holds at least everything before it.
        let seq = self.log.rotate()?;
        let mut writer = SnapshotWriter::create(self.disk.clone(), &self.dir, seq)?;
        let mut shard = 0;
        while let Some(records) = collect(shard) {
            for record in &records {
                writer.put(record)?;
            }
            shard += 1;
        }
        let bytes = writer.finish(revision())?;
        self.snapshot_bytes.store(bytes, Ordering::Relaxed);
        // The new snapshot is in place: older files are no longer needed.
        let names = self
            .disk
            .list(&self.dir)
            .map_err(|err| Error::io(format!("could not list {}", self.dir.display()), err))?;
        for name in names {
            let old = log::segment_seq(&name).is_some_and(|s| s < seq)
                || snapshot::snapshot_seq(&name).is_some_and(|s| s < seq);
            if old {
                let path = self.dir.join(&name);
                self.disk.remove(&path).map_err(|err| {
                    Error::io(format!("could not remove {}", path.display()), err)
                })?;
            }
        }
        self.disk
            .sync_dir(&self.dir)
            .map_err(|err| Error::io(format!("could not sync {}", self.dir.display()), err))?;
        self.compactions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Makes sure a synced reservation covers `revision` before it is
    /// handed out, writing and syncing a new one (`revision` plus the
    /// reserve) if not. Called under the shard lock of the write it numbers;
    /// the log worker reserves ahead, so that writers rarely wait here.
    pub(crate) fn reserve_through(&self, revision: u64) -> Result<()> {
        if revision <= self.reserved.load(Ordering::Acquire) {
            return Ok(());
        }
        let _one_at_a_time = self.reserving.lock();
        if revision <= self.reserved.load(Ordering::Acquire) {
            return Ok(());
        }
        let reserved = revision.saturating_add(self.thresholds.revision_reserve);
        self.log.append(&Frame {
            op: Op::Reserve,
            revision: reserved,
            deadline_ms: 0,
            key: b"",
            value: b"",
        })?;
        self.log.sync_now()?;
        self.reserved.store(reserved, Ordering::Release);
        Ok(())
    }

    /// The highest revision a synced reservation covers.
    pub(crate) fn reserved(&self) -> u64 {
        self.reserved.load(Ordering::Acquire)
    }

    /// Reserves ahead once `revision` has used up half the reservation.
    fn reserve_ahead(&self, revision: u64) -> Result<()> {
        self.reserve_through(revision.saturating_add(self.thresholds.revision_reserve / 2))
    }

    /// Compactions finished since open.
    pub(crate) fn compactions(&self) -> u64 {
        self.compactions.load(Ordering::Relaxed)
    }

    /// Size of the last snapshot written or loaded.
    pub(crate) fn snapshot_bytes(&self) -> u64 {
        self.snapshot_bytes.load(Ordering::Relaxed)
    }
}

/// How often the log worker wakes to reserve revisions and compact.
const LOG_WORKER_TICK: Duration = Duration::from_millis(500);

/// How often the `everysec` sync thread wakes: often enough that a write is
/// synced within a second.
const EVERYSEC_TICK: Duration = Duration::from_millis(500);

/// Starts the background log duties of a durable store: the log worker
/// (reserving revisions ahead, compaction) and, with `everysec`, the sync
/// thread. The sync has a thread of its own so that a long compaction never
/// stretches the window of unsynced writes.
pub(crate) fn spawn_log_threads(
    store: std::sync::Weak<Inner>,
    fsync: Fsync,
    stop_worker: std::sync::mpsc::Receiver<()>,
    stop_sync: std::sync::mpsc::Receiver<()>,
) {
    // Without the threads, `everysec` falls back to the syncs of compaction
    // and shutdown, and reservations are made by the writers themselves.
    spawn_periodic(
        "kvcore-log",
        LOG_WORKER_TICK,
        stop_worker,
        store.clone(),
        Inner::maintain_log,
    );
    if fsync == Fsync::EverySec {
        spawn_periodic(
            "kvcore-everysec",
            EVERYSEC_TICK,
            stop_sync,
            store,
            Inner::sync_in_background,
        );
    }
}

/// How the store uses its data directory: logging writes under the shard
/// lock, acknowledging them, and the background duties.
impl Inner {
    /// Writes the frame of a put to the log of a durable store; returns the
    /// position to wait on, or `None` in memory.
    pub(crate) fn log_put(
        &self,
        key: &[u8],
        value: &[u8],
        revision: u64,
        deadline_ms: u64,
    ) -> Result<Option<u64>> {
        self.log_write(&Frame {
            op: Op::Put,
            revision,
            deadline_ms,
            key,
            value,
        })
    }

    /// Logs the removal of `record`'s key at `revision`.
    pub(crate) fn log_removal(&self, record: &Record, revision: u64) -> Result<Option<u64>> {
        self.log_write(&Frame {
            op: Op::Remove,
            revision,
            deadline_ms: 0,
            key: record.key(),
            value: b"",
        })
    }

    /// Appends a write's frame once a synced reservation covers its
    /// revision; `None` in memory.
    fn log_write(&self, frame: &Frame<'_>) -> Result<Option<u64>> {
        let Some(durable) = &self.durable else {
            return Ok(None);
        };
        durable.reserve_through(frame.revision)?;
        durable.log.append(frame).map(Some)
    }

    /// The acknowledgement of a write logged at `lsn`.
    pub(crate) fn ack(&self, lsn: Option<u64>) -> Ack {
        match (&self.durable, lsn) {
            (Some(durable), Some(lsn)) if durable.log.policy() == Fsync::Always => {
                Ack::pending(durable.log.clone(), lsn)
            }
            _ => Ack::done(),
        }
    }

    /// The log worker's duties: reserving revisions ahead of the writers,
    /// and compaction.
    pub(crate) fn maintain_log(&self) {
        let Some(durable) = &self.durable else {
            return;
        };
        // A failure marks the log failed; the next write reports it.
        let _ = durable.reserve_ahead(self.revision.0.load(Ordering::Acquire));
        if durable.needs_compaction() {
            // A failed compaction leaves the old snapshot and log in place and
            // is tried again on a later tick.
            let _ = self.compact(durable);
        }
    }

    /// The `everysec` sync thread's duty.
    pub(crate) fn sync_in_background(&self) {
        if let Some(durable) = &self.durable
            && durable.log.has_unsynced()
        {
            // A failure marks the log failed and refuses later writes; there
            // is no one to return it to here.
            let _ = durable.log.sync_now();
        }
    }

    pub(crate) fn compact(&self, durable: &Durable) -> Result<()> {
        {
            let now = self.clock.now_ms();
            durable.compact(
                |index| {
                    let shard = self.shards.get(index)?;
                    // Cloning records is cheap (a reference count each) and keeps
                    // file I/O out of the shard lock.
                    Some(shard.read(|t| t.iter().filter(|r| !r.is_expired(now)).cloned().collect()))
                },
                // Not below the reservation: after a power cut, the store
                // must continue above every revision it may have handed out.
                || {
                    let revision = self.revision.0.load(Ordering::Acquire);
                    revision.max(durable.reserved())
                },
            )
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: make what was acknowledged durable. An
        // error cannot be reported from here; `Store::flush` reports it.
        if let Some(durable) = &self.durable {
            let _ = durable.log.sync_now();
        }
    }
}
