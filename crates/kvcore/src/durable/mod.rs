//! Durability: the data directory of a store opened with
//! [`Store::open`](crate::Store::open). An in-memory store never reaches
//! this module.
//!
//! - `mod.rs` (here): [`Durable`], the open directory: its lock, opening it,
//!   revision reservations, and the one entry point a write uses,
//!   [`Durable::log`] ("log this change, give me its acknowledgement").
//! - `frame.rs`: how a change is framed on disk and read back.
//! - `log.rs`: the append-only log and its group commit.
//! - `ack.rs`: [`Ack`], a write's acknowledgement.
//! - `snapshot.rs`: snapshot files. `compaction.rs`: folding the log into a
//!   snapshot, and the disk bound.
//! - `recovery.rs`: replaying the directory on open.
//! - `upkeep.rs`: the background threads (log worker, `everysec` sync), and
//!   the one `impl Inner` block where durability reaches into the tables.
//! - `disk.rs`: the file-system operations used, behind a trait;
//!   `sim_disk.rs`: the simulated disk the tests crash (tests only).
//!
//! Files: `LOCK`, `snap-<seq>.kvsnap` (at most one after a compaction
//! finishes), `log-<seq>.kvlog` segments. Snapshot `N` pairs with segments
//! `N` and later; older files are leftovers of a compaction that was cut
//! short and are removed on open.

pub(crate) mod ack;
mod compaction;
pub(crate) mod disk;
pub(crate) mod frame;
pub(crate) mod log;
pub(crate) mod recovery;
#[cfg(test)]
pub(crate) mod sim_disk;
pub(crate) mod snapshot;
#[cfg(test)]
mod tests;
pub(crate) mod upkeep;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::Mutex;

use crate::background::Signal;
use crate::durable::ack::Ack;
use crate::durable::disk::Disk;
use crate::durable::frame::{Frame, Op};
use crate::durable::log::{Fsync, Log};
use crate::durable::recovery::{OnCorruption, RecoveryReport, Replayed};
use crate::error::{Error, Result};

pub(crate) use compaction::COMPACTION_FLOOR;

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

/// A change to log.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change<'a> {
    /// `key` holds `value` (with a deadline, or 0) from `revision` on.
    Put {
        key: &'a [u8],
        value: &'a [u8],
        revision: u64,
        deadline_ms: u64,
    },
    /// `key` was removed at `revision`.
    Remove { key: &'a [u8], revision: u64 },
    /// `key` was found expired and removed at `revision` (logged only while
    /// the store is watched, so that the change feed survives a restart).
    Expire { key: &'a [u8], revision: u64 },
}

/// `deadline_ms` of a `Remove` frame that records an expiry rather than a
/// delete (a delete's is 0). A log written before expiries were logged has
/// none, and an older reader takes such a frame for a plain remove.
pub(crate) const EXPIRED_MARK: u64 = 1;

/// An open data directory.
pub(crate) struct Durable {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    pub(crate) log: Arc<Log>,
    thresholds: Thresholds,
    /// The highest revision a synced `Reserve` frame covers.
    reserved: AtomicU64,
    /// One reservation at a time.
    reserving: Mutex<()>,
    /// Compaction state (see `compaction.rs`).
    compaction: compaction::State,
    /// Wakes the log worker (compaction), once it runs.
    worker: OnceLock<Arc<Signal>>,
    /// Held until the store is closed; released by the OS if the process
    /// dies.
    lock: Mutex<Option<Box<dyn Send + Sync>>>,
    /// Every change after this revision is in the log (see
    /// `Recovered::history_floor`): the change feed can be refilled from it.
    pub(crate) history_floor: u64,
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
        let lock = disk.lock(dir).map_err(|err| match err.kind() {
            std::io::ErrorKind::WouldBlock => Error::Locked {
                dir: dir.to_owned(),
            },
            _ => io("could not lock data directory", err),
        })?;
        let names = disk
            .list(dir)
            .map_err(|err| io("could not list data directory", err))?;
        // After a truncated corruption, skip two reservations: the one that
        // covered the lost writes may be lost with them.
        let skip = thresholds.revision_reserve.saturating_mul(2);
        let recovered = recovery::recover(&*disk, dir, &names, on_corruption, skip, now_ms, apply)?;
        remove_leftovers(&*disk, dir, &names, recovered.snapshot_seq)?;
        disk.sync_dir(dir)
            .map_err(|err| io("could not sync data directory", err))?;

        let (seq, segment_bytes) = recovered.tail;
        let log = Arc::new(Log::open(disk.clone(), dir, seq, segment_bytes, fsync)?);
        let mut report = recovered.report;
        let durable = Durable {
            disk,
            dir: dir.to_owned(),
            log,
            thresholds,
            reserved: AtomicU64::new(report.revision),
            reserving: Mutex::new(()),
            compaction: compaction::State::new(recovered.snapshot_bytes),
            worker: OnceLock::new(),
            lock: Mutex::new(Some(lock)),
            history_floor: recovered.history_floor,
        };
        // The revisions of writes lost to a power cut may have been seen:
        // continue above anything the last run may have handed out, and
        // reserve ahead for this one.
        durable.reserve_through(report.revision + 1)?;
        report.duration = started.elapsed();
        Ok((durable, report))
    }

    /// Logs a change and returns its acknowledgement: resolved at once,
    /// or (with [`Fsync::Always`]) once it is synced. Called under the shard
    /// lock of the write, before the write applies, so that a key's frames
    /// reach the log in the order its writes apply and a write the log
    /// refused never becomes visible. The frame is written only once a
    /// synced reservation covers its revision.
    pub(crate) fn log(&self, change: Change<'_>) -> Result<Ack> {
        let frame = match change {
            Change::Put {
                key,
                value,
                revision,
                deadline_ms,
            } => Frame {
                op: Op::Put,
                revision,
                deadline_ms,
                key,
                value,
            },
            Change::Remove { key, revision } => Frame {
                op: Op::Remove,
                revision,
                deadline_ms: 0,
                key,
                value: b"",
            },
            Change::Expire { key, revision } => Frame {
                op: Op::Remove,
                revision,
                deadline_ms: EXPIRED_MARK,
                key,
                value: b"",
            },
        };
        self.reserve_through(frame.revision)?;
        let lsn = self.log.append(&frame)?;
        self.request_compaction_if_due();
        Ok(match self.log.policy() {
            Fsync::Always => Ack::pending(self.log.clone(), lsn),
            _ => Ack::done(),
        })
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
    pub(crate) fn reserve_ahead(&self, revision: u64) -> Result<()> {
        self.reserve_through(revision.saturating_add(self.thresholds.revision_reserve / 2))
    }

    /// Remembers the log worker's signal, so that writers can wake it for
    /// a compaction (and wait for one, see `compaction.rs`).
    pub(crate) fn attach_worker(&self, worker: Arc<Signal>) {
        let _ = self.worker.set(worker);
    }

    /// Syncs and closes the log: later writes fail with [`Error::Closed`].
    pub(crate) fn close_log(&self) -> Result<()> {
        self.log.close()
    }

    /// Releases the directory's lock, once nothing touches its files any
    /// more (the background threads are joined).
    pub(crate) fn unlock(&self) {
        self.lock.lock().take();
    }
}

/// Removes what a compaction cut short left behind: segments older than the
/// snapshot, older snapshots, and unfinished temporary snapshots.
fn remove_leftovers(
    disk: &dyn Disk,
    dir: &Path,
    names: &[String],
    snapshot_seq: Option<u64>,
) -> Result<()> {
    let first_live = snapshot_seq.unwrap_or(0);
    for name in names {
        let stale = log::segment_seq(name).is_some_and(|seq| seq < first_live)
            || snapshot::snapshot_seq(name).is_some_and(|seq| Some(seq) < snapshot_seq)
            || snapshot::is_temporary(name);
        if stale {
            let path = dir.join(name);
            disk.remove(&path)
                .map_err(|err| Error::io(format!("could not remove {}", path.display()), err))?;
        }
    }
    Ok(())
}
