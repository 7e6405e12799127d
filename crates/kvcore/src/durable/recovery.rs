//! Recovery: what opening a data directory found, and the replay of the
//! snapshot and the log segments into the store's tables, streamed a chunk
//! at a time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::durable::disk::Disk;
use crate::durable::frame::{Decoded, FileKind, Frame, FrameReader, Op, read_io};
use crate::durable::{log, snapshot};
use crate::error::{Error, Result};

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
    /// The revision the store continues from: the highest revision, or
    /// revision reservation, found on disk. Revisions skip ahead on a
    /// restart, so that none is handed out twice even if a power cut took
    /// back writes that were already seen.
    pub revision: u64,
    /// An incomplete or damaged final frame (with nothing valid after it)
    /// that was cut off: a write the crash cut short. Under
    /// [`Fsync::Always`](crate::Fsync::Always) it was never acknowledged
    /// unless the disk lost synced bytes, which an operator wants to hear.
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
    /// Bytes dropped from that file (and from the later segments removed
    /// with it, after a truncated corruption).
    pub bytes_dropped: u64,
    /// What was found there.
    pub reason: &'static str,
}

/// A change replayed during recovery, applied to the store's tables.
/// `logged` tells a change read from the log (an event the change feed can
/// replay) from a record of the snapshot (state, not an event).
pub(crate) enum Replayed<'a> {
    Put {
        key: &'a str,
        value: &'a [u8],
        revision: u64,
        deadline_ms: u64,
        logged: bool,
    },
    Remove {
        key: &'a str,
        revision: u64,
        logged: bool,
        why: Removal,
    },
}

/// Why recovery removes a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    /// A delete.
    Deleted,
    /// An expiry the store noticed while it ran (and logged).
    Expired,
    /// A put whose deadline passed while the store was closed.
    ExpiredWhileClosed,
}

/// What recovery leaves for the log to continue.
pub(crate) struct Recovered {
    pub(crate) report: RecoveryReport,
    /// The segment to continue and its valid length.
    pub(crate) tail: (u64, u64),
    /// Size of the snapshot loaded (0 without one).
    pub(crate) snapshot_bytes: u64,
    /// The snapshot loaded: segments before it are leftovers.
    pub(crate) snapshot_seq: Option<u64>,
    /// Every change after this revision is in the log segments: 0 without
    /// a snapshot (the log goes back to the first write); with one, the
    /// first `Reserve` frame of the first segment, whose revision is at
    /// least every revision handed out before the segment began (a
    /// compaction writes one right after it starts the segment), or the
    /// snapshot's revision if the segment has none.
    pub(crate) history_floor: u64,
}

/// Replays the latest snapshot and the log segments after it (`names`: the
/// directory's files) through `apply`. With `truncate` the log is cut at
/// its first damage, and the revision skips `skip_on_truncation` beyond the
/// highest revision found anywhere, the cut-off part included.
pub(crate) fn recover(
    disk: &dyn Disk,
    dir: &Path,
    names: &[String],
    on_corruption: OnCorruption,
    skip_on_truncation: u64,
    now_ms: u64,
    apply: &mut dyn FnMut(Replayed<'_>),
) -> Result<Recovered> {
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
        logged: false,
        first_reserve: None,
    };

    let snapshot_seq = names.iter().filter_map(|n| snapshot::snapshot_seq(n)).max();
    let mut snapshot_bytes = 0;
    if let Some(seq) = snapshot_seq {
        let path = dir.join(snapshot::snapshot_name(seq));
        let (revision, bytes) = snapshot::read(disk, &path, |frame, offset| {
            replay.report.snapshot_records += 1;
            replay.frame(frame, &path, offset)
        })?;
        snapshot_bytes = bytes;
        replay.report.revision = replay.report.revision.max(revision);
    }

    let snapshot_revision = replay.report.revision;
    replay.logged = true;
    let first_live = snapshot_seq.unwrap_or(0);
    let mut segments: Vec<u64> = names
        .iter()
        .filter_map(|n| log::segment_seq(n))
        .filter(|&seq| seq >= first_live)
        .collect();
    segments.sort_unstable();
    let mut tail = (first_live.max(1), 0);
    let mut history_floor = None;
    for (index, &seq) in segments.iter().enumerate() {
        let path = dir.join(log::segment_name(seq));
        let is_last = index + 1 == segments.len();
        let mut reader = FrameReader::open(disk, &path, FileKind::Log)?;
        let damage = replay.segment(&mut reader, &path)?;
        if index == 0 {
            history_floor = Some(match snapshot_seq {
                None => 0,
                Some(_) => replay
                    .first_reserve
                    .unwrap_or(snapshot_revision)
                    .min(snapshot_revision),
            });
        }
        tail = (seq, reader.offset());
        let Some((reason, torn)) = damage else {
            continue;
        };
        let offset = reader.offset();
        let cut = Truncation {
            file: path.clone(),
            offset,
            bytes_dropped: reader.len() - offset,
            reason,
        };
        // Only the segment being written when the process stopped can end
        // in a torn frame; older ones were synced whole.
        if torn && is_last {
            truncate(disk, &path, offset)?;
            replay.report.torn_tail = Some(cut);
            break;
        }
        if on_corruption == OnCorruption::Refuse {
            return Err(Error::Corrupt {
                file: path,
                offset,
                reason: match torn {
                    true => "a segment that is not the last ends in a damaged frame",
                    false => reason,
                },
            });
        }
        // The operator accepts the loss: cut here and drop every later
        // segment, but continue above any revision they held, so that no
        // version handed out before is handed out again.
        let mut highest = read_io(&path, reader.max_revision_from(offset))?;
        let mut dropped = cut.bytes_dropped;
        for &later in &segments[index + 1..] {
            let path = dir.join(log::segment_name(later));
            let mut reader = FrameReader::open(disk, &path, FileKind::Log)?;
            highest = highest.max(read_io(&path, reader.max_revision_from(0))?);
            dropped += reader.len();
            disk.remove(&path)
                .map_err(|err| Error::io(format!("could not remove {}", path.display()), err))?;
        }
        truncate(disk, &path, offset)?;
        // The reservation that covered the lost part may itself be lost:
        // skip a whole reservation beyond anything found.
        replay.report.revision = replay
            .report
            .revision
            .max(highest)
            .saturating_add(skip_on_truncation);
        replay.report.truncated_corruption = Some(Truncation {
            bytes_dropped: dropped,
            ..cut
        });
        break;
    }
    Ok(Recovered {
        history_floor: history_floor.unwrap_or(report.revision),
        report,
        tail,
        snapshot_bytes,
        snapshot_seq,
    })
}

fn truncate(disk: &dyn Disk, path: &Path, len: u64) -> Result<()> {
    disk.truncate(path, len)
        .map_err(|err| Error::io(format!("could not truncate {}", path.display()), err))
}

/// Replay state shared by the snapshot and the log segments.
struct Replay<'a, 'b> {
    now_ms: u64,
    apply: &'a mut dyn FnMut(Replayed<'_>),
    report: &'b mut RecoveryReport,
    /// Replaying the log (not the snapshot).
    logged: bool,
    /// The revision of the first `Reserve` frame of the log.
    first_reserve: Option<u64>,
}

impl Replay<'_, '_> {
    /// Applies one frame, found at `offset` of `path`.
    fn frame(&mut self, frame: &Frame<'_>, path: &Path, offset: u64) -> Result<()> {
        let key = std::str::from_utf8(frame.key).map_err(|_| Error::Corrupt {
            file: path.to_owned(),
            offset,
            reason: "key is not UTF-8",
        })?;
        self.report.revision = self.report.revision.max(frame.revision);
        let (revision, logged) = (frame.revision, self.logged);
        match frame.op {
            Op::Put if frame.deadline_ms != 0 && frame.deadline_ms < self.now_ms => {
                // Expired while the store was closed: gone, and it must not
                // leave an older value of the key standing either.
                self.report.expired_dropped += 1;
                (self.apply)(Replayed::Remove {
                    key,
                    revision,
                    logged,
                    why: Removal::ExpiredWhileClosed,
                });
            }
            Op::Put => (self.apply)(Replayed::Put {
                key,
                value: frame.value,
                revision,
                deadline_ms: frame.deadline_ms,
                logged,
            }),
            Op::Remove => (self.apply)(Replayed::Remove {
                key,
                revision,
                logged,
                why: match frame.deadline_ms {
                    0 => Removal::Deleted,
                    _ => Removal::Expired,
                },
            }),
            Op::Reserve if self.logged && self.first_reserve.is_none() => {
                self.first_reserve = Some(frame.revision);
            }
            Op::SnapshotEnd | Op::Reserve => {}
        }
        Ok(())
    }

    /// Replays a segment up to its end or its first damage, which it returns
    /// (the reason, and whether it is a torn tail); the reader stops there.
    fn segment(
        &mut self,
        reader: &mut FrameReader,
        path: &Path,
    ) -> Result<Option<(&'static str, bool)>> {
        loop {
            let offset = reader.offset();
            match read_io(path, reader.next_frame())? {
                Decoded::Frame(frame, _) => {
                    self.frame(&frame, path, offset)?;
                    if frame.op != Op::Reserve {
                        self.report.log_records += 1;
                    }
                }
                Decoded::End => return Ok(None),
                Decoded::Torn(reason) => return Ok(Some((reason, true))),
                Decoded::Corrupt(reason) => return Ok(Some((reason, false))),
            }
        }
    }
}
