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
use crate::durable::recovery::{OnCorruption, RecoveryReport, Removal, Replayed};
use crate::durable::{self, Change, Durable, frame, upkeep};
use crate::entry::Record;
use crate::error::Result;
use crate::expiry::{self, ActiveExpiry};
use crate::memory::{Eviction, Memory};
use crate::ordered::GONE_BYTES;
use crate::shard::{Shard, Tuning};
use crate::store::{Inner, Revision, Store, shard_index};
use crate::watch::{Event, EventKind, Feed, WatchConfig};

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
    max_memory: Option<u64>,
    eviction: Eviction,
    watch: WatchConfig,
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
            max_memory: None,
            eviction: Eviction::default(),
            watch: WatchConfig::default(),
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

    /// Bounds the memory the store holds to `bytes`: a write that would
    /// take it over makes room as [`eviction`](StoreBuilder::eviction) says
    /// or fails with [`Error::MemoryFull`](crate::Error::MemoryFull). Reads
    /// and removals always work.
    ///
    /// What counts: every record as the allocator rounds it (a 16-byte key
    /// with a 16-byte value takes 80 bytes) and every shard's hash table
    /// (9 bytes a bucket, up to half of them empty), the figure
    /// [`Stats::memory`](crate::Stats::memory) reports, bounded or not. The
    /// process also holds the store's fixed structures, the allocator's free
    /// lists and whatever else the program allocates.
    ///
    /// A durable store that recovers more than the bound opens anyway; its
    /// writes then make room first. Default: no bound.
    pub fn max_memory(mut self, bytes: u64) -> StoreBuilder {
        self.max_memory = Some(bytes);
        self
    }

    /// What a write that does not fit under
    /// [`max_memory`](StoreBuilder::max_memory) does. Has no effect without
    /// a bound. Default: [`Eviction::Reject`].
    pub fn eviction(mut self, eviction: Eviction) -> StoreBuilder {
        self.eviction = eviction;
        self
    }

    /// How many of the latest changes the store keeps, so that a
    /// [`Store::watch`] can start in the past (and, for a store opened with
    /// [`open`](StoreBuilder::open), refill them from the log at a restart).
    /// A watch from a revision older than the history fails with
    /// [`Error::Compacted`](crate::Error::Compacted). Default: 0, no history:
    /// a watch starts from now (or from the latest revision), and a store
    /// that is never watched spends nothing on events. With a history every
    /// write copies its key and value into an event (see BENCHMARKS.md for
    /// the cost).
    pub fn watch_history(mut self, events: usize) -> StoreBuilder {
        self.watch.history_events = events;
        self
    }

    /// The most bytes of keys and values (plus 64 bytes an event) the
    /// history keeps, whatever [`watch_history`](StoreBuilder::watch_history)
    /// allows. Default: 64 MiB.
    pub fn watch_history_bytes(mut self, bytes: usize) -> StoreBuilder {
        self.watch.history_bytes = bytes;
        self
    }

    /// How many events a watcher buffers before it is cut off with
    /// [`Error::WatcherCutOff`](crate::Error::WatcherCutOff) (values below 1
    /// count as 1). Default: 1024.
    pub fn watch_buffer(mut self, events: usize) -> StoreBuilder {
        self.watch.buffer = events.max(1);
        self
    }

    /// Builds an in-memory store and, unless told otherwise, starts its
    /// reclaimer.
    pub fn build(self) -> Store {
        let shards = self.new_shards();
        let feed = Feed::new(self.watch, 0, 0, Vec::new());
        self.assemble(shards, None, feed)
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
        let now_ms = self.clock.now_ms();
        let watched = self.watch.history_events > 0;
        // The log's changes, for the watch history.
        let mut events = Vec::new();
        // Keys whose deadline passed while the store was closed and that no
        // later change brought back: their expiry is an event of this run.
        let mut expired_while_closed = std::collections::BTreeSet::new();
        let (durable, mut report) = {
            let hash = |key: &[u8]| std::hash::BuildHasher::hash_one(&hasher, key);
            let mut apply = |change: Replayed<'_>| match change {
                Replayed::Put {
                    key,
                    value,
                    revision,
                    deadline_ms,
                    logged,
                } => {
                    if watched {
                        expired_while_closed.remove(key);
                        if logged {
                            let ttl = (deadline_ms != crate::entry::NO_DEADLINE).then(|| {
                                std::time::Duration::from_millis(deadline_ms.saturating_sub(now_ms))
                            });
                            events.push(Event::put(revision, key, value, deadline_ms, ttl));
                        }
                    }
                    let record = Record::new(key, value);
                    record.stamp(revision, deadline_ms);
                    let h = hash(key.as_bytes());
                    shards[shard_index(h, shards.len())]
                        .write(|t| t.put_unordered(h, record, |r| hash(r.key())));
                }
                Replayed::Remove {
                    key,
                    revision,
                    logged,
                    why,
                } => {
                    if watched {
                        match why {
                            Removal::ExpiredWhileClosed => {
                                expired_while_closed.insert(key.to_owned());
                            }
                            Removal::Deleted | Removal::Expired => {
                                expired_while_closed.remove(key);
                            }
                        }
                        if logged && why != Removal::ExpiredWhileClosed {
                            let kind = match why {
                                Removal::Deleted => EventKind::Delete,
                                _ => EventKind::Expire,
                            };
                            events.push(Event::gone(revision, key, kind));
                        }
                    }
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
        let floor = durable.history_floor;
        events.retain(|e| e.revision() > floor);
        events.sort_unstable_by_key(Event::revision);
        // An expiry that happened while the store was closed is noticed
        // now: it takes a revision of this run, and is logged like any
        // expiry so that the next restart does not report it again.
        for key in expired_while_closed {
            report.revision += 1;
            // Not waited for: the sync threads do not run yet. An expiry
            // lost to a crash is noticed again at the next open.
            let _unsynced = durable.log(Change::Expire {
                key: key.as_bytes(),
                revision: report.revision,
            })?;
            events.push(Event::gone(report.revision, &key, EventKind::Expire));
        }
        let feed = Feed::new(self.watch, report.revision, floor, events);
        let (fsync, log_worker) = (self.fsync, self.log_worker);
        let held: u64 = shards.iter().map(|s| s.read(|t| t.held_bytes())).sum();
        let store = self.assemble(shards, Some((durable, report, hasher)), feed);
        let history = store.inner().feed.kept_bytes();
        store.inner().memory.set_used(held + history);
        // On failure the store is dropped, which closes it.
        upkeep::spawn_log_threads(store.inner(), &store.inner().threads, fsync, log_worker)?;
        Ok(store)
    }

    fn new_shards(&self) -> Box<[Shard]> {
        let layout = self.tuning.layout();
        let count = self.shards.unwrap_or(layout.shards);
        // Removed records the ordered index still refers to are freed when
        // it settles and are not counted until then: with a bound, at most
        // 1/64 of it in all.
        let gone_bytes = match self.max_memory {
            Some(bound) => GONE_BYTES.min((bound / 64 / count as u64) as usize),
            None => GONE_BYTES,
        };
        (0..count)
            .map(|_| Shard::new(layout.lock, gone_bytes))
            .collect()
    }

    fn assemble(
        self,
        shards: Box<[Shard]>,
        durable: Option<(Durable, RecoveryReport, DefaultHashBuilder)>,
        feed: Feed,
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
            memory: Memory::new(self.max_memory, self.eviction),
            reclaim_cursor: AtomicUsize::new(0),
            durable,
            recovery,
            threads: Threads::default(),
            feed,
        });
        let threads = &inner.threads;
        if let ActiveExpiry::Background { interval } = self.active_expiry {
            expiry::spawn_reclaimer(&inner, threads, interval);
        }
        Store::from_inner(inner)
    }
}
