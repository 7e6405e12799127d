//! Configuring a store: layout, limits, clock, expiry, and (with
//! [`StoreBuilder::open`]) durability.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use hashbrown::DefaultHashBuilder;

use crate::background::Threads;
use crate::clock::{Clock, SystemClock};
use crate::durable::disk::{Disk, RealDisk};
use crate::durable::log::Fsync;
use crate::durable::recovery::{OnCorruption, RecoveryReport, Replayed};
use crate::durable::{self, Durable, frame, upkeep};
use crate::entry::Record;
use crate::error::Result;
use crate::expiry::{self, ActiveExpiry};
use crate::shard::{Shard, Tuning};
use crate::store::{Inner, Revision, Store, shard_index};

/// Size limits a store enforces on every write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest key accepted, in bytes. Default 1024.
    pub max_key_bytes: usize,
    /// Longest value accepted, in bytes. Default 1 MiB.
    pub max_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_key_bytes: 1024,
            max_value_bytes: 1024 * 1024,
        }
    }
}

/// Configures and builds a [`Store`]: [`build`](StoreBuilder::build) for one
/// that lives in memory, [`open`](StoreBuilder::open) for one kept in a
/// directory.
#[derive(Debug)]
pub struct StoreBuilder {
    tuning: Tuning,
    shards: Option<usize>,
    limits: Limits,
    clock: Arc<dyn Clock>,
    active_expiry: ActiveExpiry,
    fsync: Fsync,
    on_corruption: OnCorruption,
    pub(crate) disk: Arc<dyn Disk>,
    pub(crate) thresholds: durable::Thresholds,
    /// Tests that count disk operations turn the log worker off.
    pub(crate) log_worker: bool,
}

impl Default for StoreBuilder {
    fn default() -> StoreBuilder {
        StoreBuilder {
            tuning: Tuning::default(),
            shards: None,
            limits: Limits::default(),
            clock: Arc::new(SystemClock),
            active_expiry: ActiveExpiry::default(),
            fsync: Fsync::default(),
            on_corruption: OnCorruption::default(),
            disk: Arc::new(RealDisk),
            thresholds: durable::Thresholds::default(),
            log_worker: true,
        }
    }
}

impl StoreBuilder {
    /// Chooses a layout for the workload. Default: [`Tuning::Balanced`].
    pub fn tuning(mut self, tuning: Tuning) -> StoreBuilder {
        self.tuning = tuning;
        self
    }

    /// Sets the number of shards explicitly, overriding the tuning's choice
    /// (the tuning still picks the lock). Values below 1 count as 1.
    /// Default: whatever the tuning picks.
    pub fn shards(mut self, shards: usize) -> StoreBuilder {
        self.shards = Some(shards.max(1));
        self
    }

    /// Longest key accepted, in bytes (at most `u32::MAX`). Default 1024.
    pub fn max_key_bytes(mut self, bytes: usize) -> StoreBuilder {
        self.limits.max_key_bytes = bytes.min(u32::MAX as usize);
        self
    }

    /// Longest value accepted, in bytes. Default 1 MiB. A store opened
    /// with [`open`](StoreBuilder::open) clamps it to what one log record
    /// can hold (just under 2 GiB), so that everything it acknowledges can
    /// be read back; [`Store::limits`] shows the value in force.
    pub fn max_value_bytes(mut self, bytes: usize) -> StoreBuilder {
        self.limits.max_value_bytes = bytes;
        self
    }

    /// Where the store reads the time. Default: [`SystemClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> StoreBuilder {
        self.clock = clock;
        self
    }

    /// How expired keys' memory is reclaimed. Default: a background thread
    /// every 100 ms ([`ActiveExpiry::default`]).
    pub fn active_expiry(mut self, active_expiry: ActiveExpiry) -> StoreBuilder {
        self.active_expiry = active_expiry;
        self
    }

    /// When an opened store syncs its log. Default: [`Fsync::EverySec`].
    /// Ignored by [`build`](StoreBuilder::build).
    pub fn fsync(mut self, fsync: Fsync) -> StoreBuilder {
        self.fsync = fsync;
        self
    }

    /// What [`open`](StoreBuilder::open) does about a log damaged before its
    /// end. Default: [`OnCorruption::Refuse`].
    pub fn on_corruption(mut self, on_corruption: OnCorruption) -> StoreBuilder {
        self.on_corruption = on_corruption;
        self
    }

    /// Builds an in-memory store and, unless told otherwise, starts its
    /// reclaimer.
    pub fn build(self) -> Store {
        let shards = self.new_shards();
        self.assemble(shards, None)
    }

    /// Opens a durable store kept in `dir` (created if missing): recovers the
    /// latest snapshot and the log, then logs every write before it returns.
    /// The recovery is described by [`Store::recovery`].
    ///
    /// Fails with [`Error::Locked`](crate::Error::Locked) if another store
    /// has the directory open, and with
    /// [`Error::Corrupt`](crate::Error::Corrupt) if a file is damaged before
    /// its end (unless [`OnCorruption::TruncateLog`] was chosen).
    pub fn open(mut self, dir: impl AsRef<Path>) -> Result<Store> {
        let limits = &mut self.limits;
        limits.max_key_bytes = limits.max_key_bytes.min(frame::max_key_bytes());
        limits.max_value_bytes = limits
            .max_value_bytes
            .min(frame::max_value_bytes(limits.max_key_bytes));
        let shards = self.new_shards();
        let hasher = DefaultHashBuilder::default();
        let (durable, mut report) = {
            let hash = |key: &[u8]| std::hash::BuildHasher::hash_one(&hasher, key);
            let mut apply = |change: Replayed<'_>| match change {
                Replayed::Put {
                    key,
                    value,
                    revision,
                    deadline_ms,
                } => {
                    let record = Record::new(key, value);
                    record.stamp(revision, deadline_ms);
                    let h = hash(key.as_bytes());
                    shards[shard_index(h, shards.len())]
                        .write(|t| t.put_unordered(h, record, |r| hash(r.key())));
                }
                Replayed::Remove { key } => {
                    let h = hash(key.as_bytes());
                    shards[shard_index(h, shards.len())].write(|t| t.remove(h, key.as_bytes()));
                }
            };
            Durable::open(
                self.disk.clone(),
                dir.as_ref(),
                self.fsync,
                self.on_corruption,
                self.thresholds,
                self.clock.now_ms(),
                &mut apply,
            )?
        };
        // Every key is in; order each shard once (see `Table::put_unordered`).
        for shard in shards.iter() {
            shard.write(|t| t.rebuild_order());
        }
        report.keys = shards.iter().map(|s| s.read(|t| t.len())).sum();
        let (fsync, log_worker) = (self.fsync, self.log_worker);
        let store = self.assemble(shards, Some((durable, report, hasher)));
        // On failure the store is dropped, which closes it.
        upkeep::spawn_log_threads(store.inner(), &store.inner().threads, fsync, log_worker)?;
        Ok(store)
    }

    fn new_shards(&self) -> Box<[Shard]> {
        let layout = self.tuning.layout();
        let count = self.shards.unwrap_or(layout.shards);
        (0..count).map(|_| Shard::new()).collect()
    }

    fn assemble(
        self,
        shards: Box<[Shard]>,
        durable: Option<(Durable, RecoveryReport, DefaultHashBuilder)>,
    ) -> Store {
        let (durable, recovery, hasher) = match durable {
            Some((durable, report, hasher)) => (Some(durable), Some(report), hasher),
            None => (None, None, DefaultHashBuilder::default()),
        };
        let revision = recovery.as_ref().map_or(0, |r| r.revision);
        let inner = Arc::new(Inner {
            shards,
            hasher,
            revision: Revision(AtomicU64::new(revision)),
            clock: self.clock,
            limits: self.limits,
            tuning: self.tuning,
            expired_reclaimed: AtomicU64::new(0),
            reclaim_cursor: AtomicUsize::new(0),
            durable,
            recovery,
            threads: Threads::default(),
        });
        let threads = &inner.threads;
        if let ActiveExpiry::Background { interval } = self.active_expiry {
            expiry::spawn_reclaimer(&inner, threads, interval);
        }
        Store::from_inner(inner)
    }
}
