//! The append-only log: how a write reaches the operating system before the
//! call returns, and when it is synced (group commit). Frames are in
//! `frame.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::durable::disk::{Disk, DiskFile};
use crate::durable::frame::{self, FileKind, Frame};
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
    /// Set by [`Log::close`]; from then on writes are refused.
    closed: AtomicBool,
    /// Bytes in the current segment (also in the appender), readable without
    /// its lock: writers check it to trigger and wait for compaction.
    segment_len: AtomicU64,
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
    /// Continues segment `seq`, which already holds `segment_bytes` (an
    /// empty segment gets its header).
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
        let mut written = 0;
        let mut segment_bytes = segment_bytes;
        if segment_bytes == 0 {
            let header = FileKind::Log.header();
            file.append(&header)
                .map_err(|err| Error::io(format!("could not write {}", path.display()), err))?;
            written = header.len() as u64;
            segment_bytes = written;
        }
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
            written: AtomicU64::new(written),
            sync: Mutex::new(SyncState {
                synced: 0,
                wanted: 0,
                wakers: Vec::new(),
            }),
            synced_changed: Condvar::new(),
            sync_wanted: Condvar::new(),
            failed: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            segment_len: AtomicU64::new(segment_bytes),
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
        let mut appender = self.appender.lock();
        // Checked under the lock, so that nothing is appended after `close`.
        self.check_healthy()?;
        let appender = &mut *appender;
        appender.scratch.clear();
        frame::encode(&mut appender.scratch, frame);
        if let Err(err) = appender.file.append(&appender.scratch) {
            // Part of the frame may be on disk: nothing may follow it.
            return Err(self.fail(Error::io("could not append to the log", err)));
        }
        let len = appender.scratch.len() as u64;
        appender.segment_bytes += len;
        self.segment_len
            .store(appender.segment_bytes, Ordering::Release);
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
            if self.is_stopped() {
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
        if self.is_stopped() {
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
            if self.is_stopped() {
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
        let failed = self.is_stopped();
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
        self.segment_len.load(Ordering::Acquire)
    }

    /// Syncs what was written and refuses every later write
    /// ([`Error::Closed`]); waiters are answered. Idempotent.
    pub(crate) fn close(&self) -> Result<()> {
        {
            // Under the appender lock: no frame is appended after this, so
            // the sync below covers every write the log took.
            let _appender = self.appender.lock();
            if self.closed.swap(true, Ordering::AcqRel) {
                return Ok(());
            }
        }
        let synced = match self.failed.load(Ordering::Acquire) {
            true => Err(self.failure()),
            false => self.sync_current(),
        };
        self.settle(synced.as_ref().ok().copied());
        {
            // Under the lock, so that a waiter between its check and its
            // wait cannot miss the wake-up.
            let _state = self.sync.lock();
            self.sync_wanted.notify_all();
        }
        self.settle(None);
        synced.map(drop)
    }

    /// Whether the log was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Failed or closed: no write will be synced from now on.
    fn is_stopped(&self) -> bool {
        self.failed.load(Ordering::Acquire) || self.closed.load(Ordering::Acquire)
    }

    /// Starts a new segment: syncs the current one, then directs every later
    /// write to segment `seq + 1`. Returns the new sequence number.
    ///
    /// Only a failed sync of the current segment (acknowledged writes) fails
    /// the log. A failure to create the new segment leaves the current one
    /// in use, synced, and the log healthy: the caller may try again later.
    pub(crate) fn rotate(&self) -> Result<u64> {
        self.check_healthy()?;
        let failed = |err| self.fail(Error::io("could not sync the log", err));
        // Most of the segment is synced while writers go on (with `everysec`
        // it can hold a second of writes); under the lock, only what they
        // added meanwhile.
        let current = self.appender.lock().file.clone();
        current.sync().map_err(failed)?;
        let mut appender = self.appender.lock();
        // Everything written so far is synced before the switch, so that a
        // sync of the new segment later covers all earlier LSNs too.
        let written = self.written.load(Ordering::Acquire);
        appender.file.sync().map_err(failed)?;
        let seq = appender.seq + 1;
        let path = self.dir.join(segment_name(seq));
        let file = self.start_segment(&path).inspect_err(|_| {
            // Best effort: an orphan is replaced by the next attempt, and
            // ignored on open (it holds no frame).
            let _ = self.disk.remove(&path);
        })?;
        let header = FileKind::Log.header().len() as u64;
        appender.file = file;
        appender.seq = seq;
        appender.segment_bytes = header;
        self.segment_len.store(header, Ordering::Release);
        self.written.fetch_add(header, Ordering::AcqRel);
        drop(appender);
        self.settle(Some(written));
        Ok(seq)
    }

    /// Creates a segment file with its header, durably named.
    fn start_segment(&self, path: &Path) -> Result<Arc<dyn DiskFile>> {
        let io = |what: &str, err| Error::io(format!("{what} {}", path.display()), err);
        let file = self
            .disk
            .create(path)
            .map_err(|err| io("could not create", err))?;
        file.append(&FileKind::Log.header())
            .map_err(|err| io("could not write", err))?;
        self.disk
            .sync_dir(&self.dir)
            .map_err(|err| io("could not sync the directory of", err))?;
        Ok(file)
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
        let closed = self.closed.load(Ordering::Acquire);
        let fallback = if closed {
            Error::Closed
        } else {
            Error::StorageFailed
        };
        self.failure.lock().clone().unwrap_or(fallback)
    }

    /// Refuses writes after a storage failure.
    pub(crate) fn check_healthy(&self) -> Result<()> {
        if self.failed.load(Ordering::Acquire) {
            return Err(Error::StorageFailed);
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
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
