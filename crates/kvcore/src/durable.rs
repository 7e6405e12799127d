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

use crate::disk::Disk;
use crate::error::{Error, Result};
use crate::log::{self, Decoded, Frame, Fsync, Log, Op};
use crate::snapshot::{self, SnapshotWriter};

/// What to do when the log is damaged before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnCorruption {
    /// Refuse to open, naming the file and offset. The default.
    #[default]
    Refuse,
    /// Cut the log at the first bad frame, dropping it and everything after
    /// it, and open. For an operator who accepts that loss.
    TruncateLog,
}

/// What recovery found when a durable store was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Keys live after recovery.
    pub keys: usize,
    /// Frames read from the snapshot.
    pub snapshot_records: u64,
    /// Frames replayed from the log.
    pub log_records: u64,
    /// Keys dropped because their deadline passed while the store was closed.
    pub expired_dropped: u64,
    /// The revision the store continues from.
    pub revision: u64,
    /// An incomplete final frame that was cut off.
    pub torn_tail: Option<Truncation>,
    /// Damage cut off under [`OnCorruption::TruncateLog`].
    pub truncated_corruption: Option<Truncation>,
    /// Time taken to recover.
    pub duration: Duration,
}

/// A cut made to a log file during recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The file cut.
    pub file: PathBuf,
    /// Where it was cut.
    pub offset: u64,
    /// Bytes dropped from that file.
    pub bytes_dropped: u64,
}

/// A change replayed during recovery, applied to the store's tables.
pub(crate) enum Replayed<'a> {
    Put {
        key: &'a str,
        value: &'a [u8],
        revision: u64,
        deadline_ms: u64,
    },
    Remove {
        key: &'a str,
    },
}

/// Compaction starts when the current segment is larger than this or half
/// the last snapshot, whichever is larger. So the directory holds at most the
/// snapshot, a log half its size (or this floor), and a new snapshot while
/// one is written: about two and a half times the live data, plus this
/// floor; and a restart replays at most about one and a half times the live
/// records (1M keys recover in well under a second; see BENCHMARKS.md).
pub(crate) const COMPACTION_FLOOR: u64 = 8 << 20;

/// An open data directory.
pub(crate) struct Durable {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    pub(crate) log: Arc<Log>,
    snapshot_bytes: AtomicU64,
    compaction_floor: u64,
    compactions: AtomicU64,
    /// One compaction at a time.
    compacting: parking_lot::Mutex<()>,
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
        compaction_floor: u64,
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
        report.duration = started.elapsed();
        let durable = Durable {
            disk,
            dir: dir.to_owned(),
            log,
            snapshot_bytes: AtomicU64::new(snapshot_bytes),
            compaction_floor,
            compactions: AtomicU64::new(0),
            compacting: parking_lot::Mutex::new(()),
            _lock: lock,
        };
        Ok((durable, report))
    }

    /// Whether the log has grown enough to be folded into a snapshot.
    pub(crate) fn needs_compaction(&self) -> bool {
        let threshold = self
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

    /// Compactions finished since open.
    pub(crate) fn compactions(&self) -> u64 {
        self.compactions.load(Ordering::Relaxed)
    }

    /// Size of the last snapshot written or loaded.
    pub(crate) fn snapshot_bytes(&self) -> u64 {
        self.snapshot_bytes.load(Ordering::Relaxed)
    }
}

/// Replay state shared by the snapshot and the log segments.
struct Replay<'a, 'b> {
    now_ms: u64,
    apply: &'a mut dyn FnMut(Replayed<'_>),
    report: &'b mut RecoveryReport,
}

impl Replay<'_, '_> {
    /// Applies one frame.
    fn frame(&mut self, frame: &Frame<'_>, path: &Path) -> Result<()> {
        let key = std::str::from_utf8(frame.key).map_err(|_| Error::Corrupt {
            file: path.to_owned(),
            offset: 0,
            reason: "key is not UTF-8",
        })?;
        self.report.revision = self.report.revision.max(frame.revision);
        match frame.op {
            Op::Put if frame.deadline_ms != 0 && frame.deadline_ms < self.now_ms => {
                // Expired while the store was closed: gone, and it must not
                // leave an older value of the key standing either.
                self.report.expired_dropped += 1;
                (self.apply)(Replayed::Remove { key });
            }
            Op::Put => (self.apply)(Replayed::Put {
                key,
                value: frame.value,
                revision: frame.revision,
                deadline_ms: frame.deadline_ms,
            }),
            Op::Remove => (self.apply)(Replayed::Remove { key }),
            Op::SnapshotEnd => {}
        }
        Ok(())
    }

    /// Replays a segment; returns the offset where valid frames end.
    fn segment(
        &mut self,
        bytes: &[u8],
        path: &Path,
        is_last: bool,
        on_corruption: OnCorruption,
    ) -> Result<usize> {
        let mut offset = 0;
        loop {
            match log::decode(bytes, offset) {
                Decoded::Frame(frame, next) => {
                    let mut located = self.frame(&frame, path);
                    if let Err(Error::Corrupt { offset: at, .. }) = &mut located {
                        *at = offset as u64;
                    }
                    located?;
                    self.report.log_records += 1;
                    offset = next;
                }
                Decoded::End => return Ok(offset),
                // Only the segment being written when the process stopped can
                // end in a torn frame; older ones were synced whole.
                Decoded::Torn if is_last => return Ok(offset),
                Decoded::Torn | Decoded::Corrupt(_)
                    if on_corruption == OnCorruption::TruncateLog =>
                {
                    return Ok(offset);
                }
                Decoded::Torn => {
                    return Err(Error::Corrupt {
                        file: path.to_owned(),
                        offset: offset as u64,
                        reason: "segment ends in an incomplete frame but is not the last",
                    });
                }
                Decoded::Corrupt(reason) => {
                    return Err(Error::Corrupt {
                        file: path.to_owned(),
                        offset: offset as u64,
                        reason,
                    });
                }
            }
        }
    }
}

/// How often the log worker wakes: often enough that an `everysec` store
/// syncs at least once a second.
const LOG_WORKER_TICK: Duration = Duration::from_millis(500);

/// Runs background log duties (the `everysec` sync, compaction) until the
/// store is gone. Like the reclaimer, it holds only a `Weak`.
pub(crate) fn spawn_log_worker(
    store: std::sync::Weak<crate::store::Inner>,
    stop: std::sync::mpsc::Receiver<()>,
) {
    use std::sync::mpsc::RecvTimeoutError;
    let spawned = std::thread::Builder::new()
        .name("kvcore-log".into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(LOG_WORKER_TICK) {
                let Some(store) = store.upgrade() else { break };
                store.maintain_log();
            }
        });
    // Without the thread, `always` and `never` behave the same; `everysec`
    // falls back to the syncs of compaction and shutdown.
    drop(spawned);
}
