//! Recovery: what opening a data directory found, and the replay of the
//! snapshot and the log segments into the store's tables.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::log::{self, Decoded, Frame, Op};

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

/// Replay state shared by the snapshot and the log segments.
pub(crate) struct Replay<'a, 'b> {
    pub(crate) now_ms: u64,
    pub(crate) apply: &'a mut dyn FnMut(Replayed<'_>),
    pub(crate) report: &'b mut RecoveryReport,
}

impl Replay<'_, '_> {
    /// Applies one frame.
    pub(crate) fn frame(&mut self, frame: &Frame<'_>, path: &Path) -> Result<()> {
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
            Op::SnapshotEnd | Op::Reserve => {}
        }
        Ok(())
    }

    /// Replays a segment; returns the offset where valid frames end.
    pub(crate) fn segment(
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
                    if frame.op != Op::Reserve {
                        self.report.log_records += 1;
                    }
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
