//! The append-only log: how a write is framed on disk, how it reaches the
//! operating system before the call returns, and when it is synced.
//!
//! A frame is `length: u32 | crc32(length): u32 | crc32(payload): u32 |
//! payload`, little-endian. The length has its own checksum so that a damaged
//! length is told apart from a frame cut short at the end of the file. The
//! payload is
//! `op: u8 | revision: u64 | deadline_ms: u64 | key_len: u32 | key | value`.
//! Snapshots use the same frames.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::disk::{Disk, DiskFile};
use crate::error::{Error, Result};

/// How often the log is synced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// Before a write returns. Concurrent writers share one sync.
    Always,
    /// At least once a second, in the background. The default.
    #[default]
    EverySec,
    /// Never explicitly: the operating system writes back when it likes.
    Never,
}

impl Fsync {
    /// The name used in configuration (`always`, `everysec`, `never`).
    pub fn name(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::EverySec => "everysec",
            Fsync::Never => "never",
        }
    }
}

impl std::str::FromStr for Fsync {
    type Err = String;

    fn from_str(name: &str) -> Result<Fsync, String> {
        match name {
            "always" => Ok(Fsync::Always),
            "everysec" => Ok(Fsync::EverySec),
            "never" => Ok(Fsync::Never),
            other => Err(format!(
                "unknown fsync policy {other:?}: expected always, everysec or never"
            )),
        }
    }
}

/// What a frame records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// The key now holds this value (and deadline) at this revision.
    Put = 1,
    /// The key was removed at this revision.
    Remove = 2,
    /// Last frame of a snapshot: `revision` is the store's revision and
    /// `deadline_ms` the number of `Put` frames before it.
    SnapshotEnd = 3,
    /// Revisions up to `revision` may be handed out: a reopened store
    /// continues above it.
    Reserve = 4,
}

/// One decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    pub(crate) op: Op,
    pub(crate) revision: u64,
    pub(crate) deadline_ms: u64,
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
}

const HEADER: usize = 12;
const FIXED: usize = 1 + 8 + 8 + 4;
/// No frame is larger than this; a length above it is corruption.
const MAX_PAYLOAD: usize = 1 << 31;

/// Appends the frame's bytes to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, frame: &Frame<'_>) {
    let payload_len = FIXED + frame.key.len() + frame.value.len();
    let start = out.len();
    let len_bytes = (payload_len as u32).to_le_bytes();
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&crc32fast::hash(&len_bytes).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(frame.op as u8);
    out.extend_from_slice(&frame.revision.to_le_bytes());
    out.extend_from_slice(&frame.deadline_ms.to_le_bytes());
    out.extend_from_slice(&(frame.key.len() as u32).to_le_bytes());
    out.extend_from_slice(frame.key);
    out.extend_from_slice(frame.value);
    let crc = crc32fast::hash(&out[start + HEADER..]);
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

/// What lies at an offset of a file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    /// A valid frame, and the offset of the next one.
    Frame(Frame<'a>, usize),
    /// The clean end of the file.
    End,
    /// An incomplete final frame: a write cut short by a crash.
    Torn,
    /// A damaged frame with more data after it.
    Corrupt(&'static str),
}

/// Decodes the frame at `offset`.
pub(crate) fn decode(bytes: &[u8], offset: usize) -> Decoded<'_> {
    let rest = &bytes[offset.min(bytes.len())..];
    if rest.is_empty() {
        return Decoded::End;
    }
    // A crash can leave the file extended with zeros that were never
    // written: a tail of zeros is a torn write, not corruption.
    if rest.iter().all(|&b| b == 0) || rest.len() < HEADER {
        return Decoded::Torn;
    }
    let word = |at: usize| u32::from_le_bytes(rest[at..at + 4].try_into().unwrap_or_default());
    if crc32fast::hash(&rest[..4]) != word(4) {
        return Decoded::Corrupt("damaged frame length");
    }
    let len = word(0) as usize;
    let crc = word(8);
    if !(FIXED..=MAX_PAYLOAD).contains(&len) {
        return Decoded::Corrupt("impossible frame length");
    }
    let Some(payload) = rest.get(HEADER..HEADER + len) else {
        return Decoded::Torn;
    };
    let is_last = rest.len() == HEADER + len;
    if crc32fast::hash(payload) != crc {
        // A final frame whose bytes did not all reach the disk.
        return if is_last {
            Decoded::Torn
        } else {
            Decoded::Corrupt("checksum mismatch")
        };
    }
    let op = match payload[0] {
        1 => Op::Put,
        2 => Op::Remove,
        3 => Op::SnapshotEnd,
        4 => Op::Reserve,
        _ => return Decoded::Corrupt("unknown operation"),
    };
    let u64_at = |at: usize| u64::from_le_bytes(payload[at..at + 8].try_into().unwrap_or_default());
    let key_len = u32::from_le_bytes(payload[17..21].try_into().unwrap_or_default()) as usize;
    if key_len > len - FIXED {
        return Decoded::Corrupt("key length beyond the frame");
    }
    let frame = Frame {
        op,
        revision: u64_at(1),
        deadline_ms: u64_at(9),
        key: &payload[FIXED..FIXED + key_len],
        value: &payload[FIXED + key_len..],
    };
    Decoded::Frame(frame, offset + HEADER + len)
}

/// File name of log segment `seq`.
pub(crate) fn segment_name(seq: u64) -> String {
    format!("log-{seq:020}.kvlog")
}

/// The sequence number of a log segment's file name.
pub(crate) fn segment_seq(name: &str) -> Option<u64> {
    name.strip_prefix("log-")?
        .strip_suffix(".kvlog")?
        .parse()
        .ok()
}

/// The log being written: one current segment, appended under a mutex.
pub(crate) struct Log {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    policy: Fsync,
    appender: Mutex<Appender>,
    /// Log sequence numbers are byte counts over all segments since open.
    /// `written` is handed to the OS; `synced` is durable.
    written: AtomicU64,
    sync: Mutex<SyncState>,
    /// Wakes blocking waiters when `synced` moves or the log fails.
    synced_changed: Condvar,
    /// Wakes the sync thread (`Fsync::Always`) when someone wants a sync.
    sync_wanted: Condvar,
    /// Set by the first failed write or sync; from then on writes are refused.
    failed: AtomicBool,
    /// That first failure, for the writers whose acknowledgement it denied.
    failure: Mutex<Option<Error>>,
    fsyncs: AtomicU64,
}

struct Appender {
    file: Arc<dyn DiskFile>,
    seq: u64,
    /// Bytes in the current segment.
    segment_bytes: u64,
    scratch: Vec<u8>,
}

/// Group commit: writers say which LSN they wait for; one sync thread syncs
/// everything written so far, covering all of them at once, while the next
/// batch gathers.
struct SyncState {
    synced: u64,
    /// The highest LSN a writer waits for; above `synced`, the sync thread
    /// has work.
    wanted: u64,
    /// Asynchronous waiters, woken once `synced` reaches their LSN (or the
    /// log fails).
    wakers: Vec<(u64, Waker)>,
}

impl Log {
    /// Continues segment `seq`, which already holds `segment_bytes`.
    pub(crate) fn open(
        disk: Arc<dyn Disk>,
        dir: &Path,
        seq: u64,
        segment_bytes: u64,
        policy: Fsync,
    ) -> Result<Log> {
        let path = dir.join(segment_name(seq));
        let file = disk
            .open_append(&path)
            .map_err(|err| Error::io(format!("could not open log {}", path.display()), err))?;
        disk.sync_dir(dir)
            .map_err(|err| Error::io(format!("could not sync directory {}", dir.display()), err))?;
        Ok(Log {
            disk,
            dir: dir.to_owned(),
            policy,
            appender: Mutex::new(Appender {
                file,
                seq,
                segment_bytes,
                scratch: Vec::new(),
            }),
            written: AtomicU64::new(0),
            sync: Mutex::new(SyncState {
                synced: 0,
                wanted: 0,
                wakers: Vec::new(),
            }),
            synced_changed: Condvar::new(),
            sync_wanted: Condvar::new(),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            fsyncs: AtomicU64::new(0),
        })
    }

    /// The sync policy.
    pub(crate) fn policy(&self) -> Fsync {
        self.policy
    }

    /// Writes a frame to the OS. Returns its log sequence number, to pass to
    /// [`Log::wait_durable`] once the caller has released its locks.
    pub(crate) fn append(&self, frame: &Frame<'_>) -> Result<u64> {
        self.check_healthy()?;
        let mut appender = self.appender.lock();
        let appender = &mut *appender;
        appender.scratch.clear();
        encode(&mut appender.scratch, frame);
        if let Err(err) = appender.file.append(&appender.scratch) {
            // Part of the frame may be on disk: nothing may follow it.
            return Err(self.fail(Error::io("could not append to the log", err)));
        }
        let len = appender.scratch.len() as u64;
        appender.segment_bytes += len;
        // Raised under the appender lock, so LSNs grow in file order.
        Ok(self.written.fetch_add(len, Ordering::AcqRel) + len)
    }

    /// With [`Fsync::Always`], returns once `lsn` is durable: the sync
    /// thread syncs for every writer waiting at that moment at once. Other
    /// policies return at once.
    pub(crate) fn wait_durable(&self, lsn: u64) -> Result<()> {
        if self.policy != Fsync::Always {
            return Ok(());
        }
        let mut state = self.sync.lock();
        loop {
            if state.synced >= lsn {
                return Ok(());
            }
            if self.failed.load(Ordering::Acquire) {
                return Err(self.failure());
            }
            self.want(&mut state, lsn);
            self.synced_changed.wait(&mut state);
        }
    }

    /// The asynchronous [`Log::wait_durable`]: ready once `lsn` is durable,
    /// otherwise `cx`'s waker is woken when it is.
    pub(crate) fn poll_durable(&self, lsn: u64, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.policy != Fsync::Always {
            return Poll::Ready(Ok(()));
        }
        let mut state = self.sync.lock();
        if state.synced >= lsn {
            return Poll::Ready(Ok(()));
        }
        if self.failed.load(Ordering::Acquire) {
            return Poll::Ready(Err(self.failure()));
        }
        state.wakers.push((lsn, cx.waker().clone()));
        self.want(&mut state, lsn);
        Poll::Pending
    }

    fn want(&self, state: &mut SyncState, lsn: u64) {
        if state.wanted < lsn {
            state.wanted = lsn;
            self.sync_wanted.notify_one();
        }
    }

    /// One turn of the sync thread: waits up to `idle` for a writer to want
    /// a sync, then syncs everything written so far. Returns whether it
    /// synced.
    pub(crate) fn sync_for_waiters(&self, idle: Duration) -> bool {
        {
            let mut state = self.sync.lock();
            if state.wanted <= state.synced {
                self.sync_wanted.wait_for(&mut state, idle);
            }
            if self.failed.load(Ordering::Acquire) {
                drop(state);
                // Answer every waiter: their writes will never be acknowledged.
                self.settle(None);
                return false;
            }
            if state.wanted <= state.synced {
                return false;
            }
        }
        let synced = self.sync_current().ok();
        self.settle(synced);
        true
    }

    /// Records a sync that covered `synced` (or a failure: `None`) and wakes
    /// everyone it answers.
    fn settle(&self, synced: Option<u64>) {
        let failed = self.failed.load(Ordering::Acquire);
        let ready: Vec<Waker> = {
            let mut state = self.sync.lock();
            if let Some(synced) = synced {
                state.synced = state.synced.max(synced);
            }
            let covered = state.synced;
            let (ready, waiting) = std::mem::take(&mut state.wakers)
                .into_iter()
                .partition(|(lsn, _)| failed || *lsn <= covered);
            state.wakers = waiting;
            ready.into_iter().map(|(_, waker)| waker).collect()
        };
        self.synced_changed.notify_all();
        for waker in ready {
            waker.wake();
        }
    }

    /// Syncs whatever has been written (the background sync and shutdown).
    pub(crate) fn sync_now(&self) -> Result<()> {
        self.check_healthy()?;
        let synced = self.sync_current();
        self.settle(synced.as_ref().ok().copied());
        synced.map(drop)
    }

    /// Whether bytes were written since the last sync.
    pub(crate) fn has_unsynced(&self) -> bool {
        self.sync.lock().synced < self.written.load(Ordering::Acquire)
    }

    /// Syncs performed since open.
    pub(crate) fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// Bytes in the current segment.
    pub(crate) fn segment_bytes(&self) -> u64 {
        self.appender.lock().segment_bytes
    }

    /// Starts a new segment: syncs the current one, then directs every later
    /// write to segment `seq + 1`. Returns the new sequence number.
    pub(crate) fn rotate(&self) -> Result<u64> {
        self.check_healthy()?;
        let failed = |err| self.fail(err);
        // Most of the segment is synced while writers go on (with `everysec`
        // it can hold a second of writes); under the lock, only what they
        // added meanwhile.
        let current = self.appender.lock().file.clone();
        current
            .sync()
            .map_err(|err| failed(Error::io("could not sync the log", err)))?;
        let mut appender = self.appender.lock();
        // Everything written so far is synced before the switch, so that a
        // sync of the new segment later covers all earlier LSNs too.
        let written = self.written.load(Ordering::Acquire);
        appender
            .file
            .sync()
            .map_err(|err| failed(Error::io("could not sync the log", err)))?;
        let seq = appender.seq + 1;
        let path = self.dir.join(segment_name(seq));
        let file = self.disk.create(&path).map_err(|err| {
            failed(Error::io(
                format!("could not create {}", path.display()),
                err,
            ))
        })?;
        self.disk.sync_dir(&self.dir).map_err(|err| {
            failed(Error::io(
                format!("could not sync directory {}", self.dir.display()),
                err,
            ))
        })?;
        appender.file = file;
        appender.seq = seq;
        appender.segment_bytes = 0;
        drop(appender);
        self.settle(Some(written));
        Ok(seq)
    }

    /// Marks the log failed (remembering the first cause) and returns `err`.
    fn fail(&self, err: Error) -> Error {
        self.failure.lock().get_or_insert_with(|| err.clone());
        self.failed.store(true, Ordering::Release);
        err
    }

    /// What a writer waiting for an acknowledgement learns after a failure:
    /// the first cause.
    fn failure(&self) -> Error {
        self.failure.lock().clone().unwrap_or(Error::StorageFailed)
    }

    /// Refuses writes after a storage failure.
    pub(crate) fn check_healthy(&self) -> Result<()> {
        if self.failed.load(Ordering::Acquire) {
            return Err(Error::StorageFailed);
        }
        Ok(())
    }

    /// Syncs the current segment; returns the LSN it covers.
    fn sync_current(&self) -> Result<u64> {
        let (file, written) = {
            let appender = self.appender.lock();
            (appender.file.clone(), self.written.load(Ordering::Acquire))
        };
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        if let Err(err) = file.sync() {
            // The kernel may have dropped the dirty pages: retrying and then
            // acknowledging could acknowledge lost data. Refuse instead.
            return Err(self.fail(Error::io("could not sync the log", err)));
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame<'a>(key: &'a [u8], value: &'a [u8]) -> Frame<'a> {
        Frame {
            op: Op::Put,
            revision: 7,
            deadline_ms: 99,
            key,
            value,
        }
    }

    #[test]
    fn frames_round_trip() {
        let mut bytes = Vec::new();
        encode(&mut bytes, &frame(b"key", b"value"));
        encode(&mut bytes, &frame(b"k2", b""));
        let Decoded::Frame(first, next) = decode(&bytes, 0) else {
            panic!("first frame");
        };
        assert_eq!(first, frame(b"key", b"value"));
        let Decoded::Frame(second, end) = decode(&bytes, next) else {
            panic!("second frame");
        };
        assert_eq!(second, frame(b"k2", b""));
        assert_eq!(decode(&bytes, end), Decoded::End);
    }

    #[test]
    fn every_cut_of_the_last_frame_is_torn() {
        let mut bytes = Vec::new();
        encode(&mut bytes, &frame(b"a", b"1"));
        let first_end = bytes.len();
        encode(&mut bytes, &frame(b"b", b"2"));
        for cut in first_end + 1..bytes.len() {
            assert_eq!(
                decode(&bytes[..cut], first_end),
                Decoded::Torn,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_flipped_bit_before_the_end_is_corruption() {
        let mut bytes = Vec::new();
        encode(&mut bytes, &frame(b"a", b"1"));
        let first_end = bytes.len();
        encode(&mut bytes, &frame(b"b", b"2"));
        for at in 0..first_end {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            assert!(
                matches!(decode(&damaged, 0), Decoded::Corrupt(_)),
                "flip at {at}"
            );
        }
    }
}
