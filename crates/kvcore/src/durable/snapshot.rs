//! Snapshots: the whole live data set in one file, so the log can be cut.
//!
//! A snapshot is written under a temporary name, synced, renamed into place
//! and the directory synced, so a crash never leaves a half snapshot in use;
//! one abandoned on the way (an error, a store closing) is removed.
//! Snapshot `N` holds everything written before log segment `N` began (and
//! possibly some of what segment `N` holds: replaying a key's frames in order
//! on top of it gives the same result).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::durable::disk::{Disk, DiskFile};
use crate::durable::frame::{self, Decoded, FileKind, Frame, FrameReader, Op};
use crate::entry::Record;
use crate::error::{Error, Result};

/// Buffered bytes written to the file at a time.
const CHUNK: usize = 1 << 20;

/// File name of snapshot `seq`.
pub(crate) fn snapshot_name(seq: u64) -> String {
    format!("snap-{seq:020}.kvsnap")
}

/// The sequence number of a snapshot's file name.
pub(crate) fn snapshot_seq(name: &str) -> Option<u64> {
    name.strip_prefix("snap-")?
        .strip_suffix(".kvsnap")?
        .parse()
        .ok()
}

/// Whether a file name is a snapshot that was never finished.
pub(crate) fn is_temporary(name: &str) -> bool {
    name.starts_with("snap-") && name.ends_with(".tmp")
}

/// A snapshot being written.
pub(crate) struct SnapshotWriter {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    seq: u64,
    temporary: PathBuf,
    file: Arc<dyn DiskFile>,
    buffer: Vec<u8>,
    records: u64,
    bytes: u64,
    /// Renamed into place: nothing to clean up.
    finished: bool,
}

impl SnapshotWriter {
    /// Starts snapshot `seq` under a temporary name.
    pub(crate) fn create(disk: Arc<dyn Disk>, dir: &Path, seq: u64) -> Result<SnapshotWriter> {
        let temporary = dir.join(format!("snap-{seq:020}.tmp"));
        let file = disk
            .create(&temporary)
            .map_err(|err| Error::io(format!("could not create {}", temporary.display()), err))?;
        Ok(SnapshotWriter {
            disk,
            dir: dir.to_owned(),
            seq,
            temporary,
            file,
            buffer: FileKind::Snapshot.header().to_vec(),
            records: 0,
            bytes: 0,
            finished: false,
        })
    }

    /// Adds a live record.
    pub(crate) fn put(&mut self, record: &Record) -> Result<()> {
        frame::encode(
            &mut self.buffer,
            &Frame {
                op: Op::Put,
                revision: record.version(),
                deadline_ms: record.deadline_ms(),
                key: record.key(),
                value: record.value(),
            },
        );
        self.records += 1;
        if self.buffer.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// Seals the snapshot: end frame, sync, rename into place, sync the
    /// directory. Returns its size in bytes.
    pub(crate) fn finish(mut self, revision: u64) -> Result<u64> {
        frame::encode(
            &mut self.buffer,
            &Frame {
                op: Op::SnapshotEnd,
                revision,
                deadline_ms: self.records,
                key: b"",
                value: b"",
            },
        );
        self.flush()?;
        let path = self.dir.join(snapshot_name(self.seq));
        self.file.sync().map_err(|err| {
            Error::io(format!("could not sync {}", self.temporary.display()), err)
        })?;
        self.disk
            .rename(&self.temporary, &path)
            .map_err(|err| Error::io(format!("could not rename to {}", path.display()), err))?;
        self.finished = true;
        self.disk.sync_dir(&self.dir).map_err(|err| {
            Error::io(
                format!("could not sync directory {}", self.dir.display()),
                err,
            )
        })?;
        Ok(self.bytes)
    }

    fn flush(&mut self) -> Result<()> {
        self.file.append(&self.buffer).map_err(|err| {
            Error::io(format!("could not write {}", self.temporary.display()), err)
        })?;
        self.bytes += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if !self.finished {
            // Best effort: a leftover is also removed on the next open.
            let _ = self.disk.remove(&self.temporary);
        }
    }
}

/// Reads a snapshot, streaming, handing each stored frame (and its offset)
/// to `apply`; returns the store revision it recorded and the file's size. Any damage is an error naming
/// the offset: snapshots are synced before they are renamed into place, so
/// unlike the log they have no torn tail to forgive.
pub(crate) fn read(
    disk: &dyn Disk,
    path: &Path,
    mut apply: impl FnMut(&Frame<'_>, u64) -> Result<()>,
) -> Result<(u64, u64)> {
    let mut reader = FrameReader::open(disk, path, FileKind::Snapshot)?;
    let corrupt = |offset: u64, reason: &'static str| Error::Corrupt {
        file: path.to_owned(),
        offset,
        reason,
    };
    let mut records = 0;
    loop {
        let offset = reader.offset();
        let len = reader.len();
        match frame::read_io(path, reader.next_frame())? {
            Decoded::Frame(frame, next) => match frame.op {
                Op::Put => {
                    apply(&frame, offset)?;
                    records += 1;
                }
                Op::SnapshotEnd if frame.deadline_ms == records && next == len => {
                    return Ok((frame.revision, len));
                }
                Op::SnapshotEnd => {
                    return Err(corrupt(offset, "snapshot end does not match its contents"));
                }
                Op::Remove => return Err(corrupt(offset, "removal inside a snapshot")),
                Op::Reserve => return Err(corrupt(offset, "reservation inside a snapshot")),
            },
            Decoded::End | Decoded::Torn(_) => return Err(corrupt(offset, "snapshot ends early")),
            Decoded::Corrupt(reason) => return Err(corrupt(offset, reason)),
        }
    }
}
