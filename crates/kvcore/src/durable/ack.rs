//! The acknowledgement of a write: ready once the write is as durable as the
//! store's fsync policy promises.
//!
//! With [`Fsync::Always`](crate::Fsync::Always) a dedicated thread syncs the
//! log for every writer waiting at that moment at once (group commit); an
//! `Ack` waits for it, blocking ([`Ack::wait`]) or as a future, so a server
//! can await durability without parking a thread per request. kvcore itself
//! runs no async runtime: the future is plain `std`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

use crate::durable::log::Log;
use crate::error::{Error, Result};

/// How long the sync thread sleeps when nobody waits, before it checks that
/// the log is still open (closing wakes it anyway).
const SYNCER_IDLE: Duration = Duration::from_millis(100);

/// A write's acknowledgement: resolves once the write is durable as far as
/// the fsync policy promises (at once in memory, with `everysec` or `never`).
/// Dropping it does not undo the write, which is already visible.
#[must_use = "a write is only acknowledged once its Ack resolves"]
pub struct Ack(Option<(Arc<Log>, u64)>);

impl Ack {
    /// Already acknowledged.
    pub(crate) fn done() -> Ack {
        Ack(None)
    }

    /// Acknowledged once `lsn` is synced (under `Fsync::Always`).
    pub(crate) fn pending(log: Arc<Log>, lsn: u64) -> Ack {
        Ack(Some((log, lsn)))
    }

    /// Blocks until the write is acknowledged.
    pub fn wait(self) -> Result<()> {
        match self.0 {
            Some((log, lsn)) => log.wait_durable(lsn),
            None => Ok(()),
        }
    }
}

impl Future for Ack {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match &self.0 {
            Some((log, lsn)) => log.poll_durable(*lsn, cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl fmt::Debug for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some((_, lsn)) => f.debug_tuple("Ack").field(lsn).finish(),
            None => f.write_str("Ack(done)"),
        }
    }
}

/// Starts the sync thread of an `Fsync::Always` log. It runs until the log
/// is closed ([`Log::close`] wakes it).
pub(crate) fn spawn_syncer(log: Arc<Log>) -> Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("kvcore-sync".into())
        .spawn(move || {
            while !log.is_closed() {
                log.sync_for_waiters(SYNCER_IDLE);
            }
        })
        .map_err(|err| Error::io("could not start the log's sync thread", err))
}
