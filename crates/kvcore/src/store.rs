//! The `Store` handle and its operations.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use std::hash::BuildHasher;

use hashbrown::DefaultHashBuilder;

use crate::background::Threads;
use crate::builder::{Limits, StoreBuilder};
use crate::clock::Clock;
use crate::durable::ack::Ack;
use crate::durable::log::Fsync;
use crate::durable::recovery::RecoveryReport;
use crate::durable::{Change, Durable};
use crate::entry::{Entry, NO_DEADLINE, Record};
use crate::error::{Error, Result};
use crate::expiry::{self, TtlChange};
use crate::listing::{self, Page};
use crate::memory::{self, Memory, MemoryStats, NoRoom};
use crate::shard::{self, Shard, Table, Tuning};
use crate::watch::{Event, EventKind, Feed, Watcher};

/// The outcome of a successful write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Written {
    /// The revision this write took; the key's new version.
    pub version: u64,
    /// True when the key was absent (or expired) before the write.
    pub created: bool,
    /// Time left before the key expires, as of the write; `None` without a
    /// deadline (a kept deadline counts).
    pub ttl: Option<Duration>,
}

/// What must hold for [`Store::put`] to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Nothing: create or replace ([`Store::upsert`]).
    Always,
    /// The key is absent or expired ([`Store::create`]).
    Absent,
    /// The key is present ([`Store::update`]).
    Present,
    /// The key is present at this version ([`Store::compare_and_swap`]).
    Version(u64),
}

/// Figures about a store, read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Live keys (expired keys are never counted).
    pub keys: usize,
    /// Expired keys whose memory has been reclaimed since the store started,
    /// whether by the background pass or on access.
    pub expired_reclaimed: u64,
    /// The latest revision handed out; 0 before the first write.
    pub revision: u64,
    /// Number of shards.
    pub shards: usize,
    /// The tuning preset the store was built with.
    pub tuning: Tuning,
    /// Log and snapshot figures; `None` for an in-memory store.
    pub durability: Option<DurabilityStats>,
    /// Memory held, the bound and evictions.
    pub memory: MemoryStats,
}

/// Figures about a durable store's files.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DurabilityStats {
    /// The sync policy.
    pub fsync: Fsync,
    /// Bytes in the current log segment.
    pub log_bytes: u64,
    /// Size of the latest snapshot.
    pub snapshot_bytes: u64,
    /// Log syncs performed since open.
    pub fsyncs: u64,
    /// Compactions (snapshots written) since open.
    pub compactions: u64,
}

/// A concurrent key-value store. Cloning is cheap: clones share the data.
///
/// Every point operation, and `len`, is atomic and linearizable; a listing
/// page reads shard by shard (see [`Store::list`]). None hands out a lock
/// guard, so a caller cannot deadlock the store.
///
/// Dropping the last clone closes the store ([`Store::close`]).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    /// Shared by the user's clones only (never by a background thread):
    /// the last one dropped closes the store.
    _open: Arc<Opened>,
}

/// Closes the store when the last user handle goes.
struct Opened(Arc<Inner>);

impl Drop for Opened {
    fn drop(&mut self) {
        // An error cannot be reported from here; `Store::close` reports it.
        let _ = self.0.close();
    }
}

pub(crate) struct Inner {
    pub(crate) shards: Box<[Shard]>,
    pub(crate) hasher: DefaultHashBuilder,
    /// The store-wide revision. Taken under the shard lock of the write it
    /// numbers, so a key's versions increase in the order its writes apply.
    pub(crate) revision: Revision,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) limits: Limits,
    pub(crate) tuning: Tuning,
    pub(crate) expired_reclaimed: AtomicU64,
    /// What the store holds, its bound and eviction policy (`memory.rs`).
    pub(crate) memory: Memory,
    /// Shard where the next background pass starts, so a pass cut short by
    /// its time budget does not starve the shards after it.
    pub(crate) reclaim_cursor: AtomicUsize,
    /// The data directory of a durable store.
    pub(crate) durable: Option<Durable>,
    /// What opening the data directory recovered.
    pub(crate) recovery: Option<RecoveryReport>,
    /// The background threads, stopped and joined by [`Inner::close`].
    pub(crate) threads: Threads,
    /// The change feed: history and watchers.
    pub(crate) feed: Feed,
}

/// The revision counter, alone on its cache lines: every write on any core
/// increments it, and it would otherwise share a line with the fields every
/// operation reads (the shard table, the hasher's seed, the clock, the
/// limits), so that each write would evict them from the other cores.
/// Aligned to 128 bytes like a shard, for the adjacent-line prefetcher.
#[repr(align(128))]
pub(crate) struct Revision(pub(crate) AtomicU64);

impl Store {
    /// A store with every default: balanced tuning, default limits, the
    /// system clock and background expiry.
    pub fn new() -> Store {
        Store::builder().build()
    }

    /// Starts configuring a store.
    pub fn builder() -> StoreBuilder {
        StoreBuilder::default()
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Store {
        Store {
            _open: Arc::new(Opened(inner.clone())),
            inner,
        }
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// Opens a durable store in `dir` with every other default; see
    /// [`StoreBuilder::open`].
    pub fn open(dir: impl AsRef<std::path::Path>) -> Result<Store> {
        Store::builder().open(dir)
    }

    /// What recovery found when this store was opened; `None` in memory.
    pub fn recovery(&self) -> Option<&RecoveryReport> {
        self.inner.recovery.as_ref()
    }

    /// Writes a snapshot now and drops the log it covers, instead of waiting
    /// for the log to outgrow the last snapshot. A no-op in memory.
    pub fn compact(&self) -> Result<()> {
        match &self.inner.durable {
            Some(durable) => self.inner.compact(durable),
            None => Ok(()),
        }
    }

    /// Syncs every acknowledged write to stable storage now, whatever the
    /// fsync policy. A no-op for an in-memory store.
    pub fn flush(&self) -> Result<()> {
        match &self.inner.durable {
            Some(durable) => durable.log.sync_now(),
            None => Ok(()),
        }
    }

    /// True while a durable store's log is at its size bound and writes wait
    /// for a compaction to make room (see README, "Durability"). A server
    /// that runs writes on an event loop can then hand them to a thread that
    /// may block instead. Always false in memory.
    pub fn writes_may_wait(&self) -> bool {
        self.inner
            .durable
            .as_ref()
            .is_some_and(Durable::must_wait_for_room)
    }

    /// Closes the store, for this handle and every clone of it: stops and
    /// joins the background threads, syncs the log and releases the data
    /// directory, so that it can be opened again at once. Returns the
    /// sync's error, if any. Dropping the last clone does the same.
    ///
    /// Afterwards, writes to a durable store fail with [`Error::Closed`];
    /// reads still answer from memory. An in-memory store only loses its
    /// background reclaimer (expired keys are still never returned).
    pub fn close(self) -> Result<()> {
        self.inner.close()
    }

    /// Stores `value` under `key` if the key is absent (or expired), with an
    /// optional TTL. Returns the new version; [`Error::AlreadyExists`] otherwise.
    pub fn create(&self, key: &str, value: impl AsRef<[u8]>, ttl: Option<Duration>) -> Result<u64> {
        let ttl = ttl.map_or(TtlChange::Keep, TtlChange::Set);
        Ok(self
            .write(key, value.as_ref(), ttl, Condition::Absent)?
            .version)
    }

    /// Replaces the value of a present key. Returns the new version;
    /// [`Error::NotFound`] when the key is absent.
    pub fn update(&self, key: &str, value: impl AsRef<[u8]>, ttl: TtlChange) -> Result<u64> {
        Ok(self
            .write(key, value.as_ref(), ttl, Condition::Present)?
            .version)
    }

    /// Creates or replaces the key, whichever applies.
    pub fn upsert(&self, key: &str, value: impl AsRef<[u8]>, ttl: TtlChange) -> Result<Written> {
        self.write(key, value.as_ref(), ttl, Condition::Always)
    }

    /// The general conditional write behind `create`, `update`, `upsert` and
    /// `compare_and_swap`: applies only when `condition` holds, failing with
    /// [`Error::AlreadyExists`], [`Error::NotFound`] or
    /// [`Error::VersionMismatch`] as the case may be. With
    /// [`Condition::Absent`], [`TtlChange::Keep`] means no deadline.
    pub fn put(
        &self,
        key: &str,
        value: impl AsRef<[u8]>,
        ttl: TtlChange,
        condition: Condition,
    ) -> Result<Written> {
        self.write(key, value.as_ref(), ttl, condition)
    }

    /// [`Store::put`] without waiting for durability: the write is applied
    /// and logged, and the returned [`Ack`] resolves once it is as durable as
    /// the fsync policy promises. For servers that await many writes at once
    /// instead of parking a thread on each.
    pub fn put_acked(
        &self,
        key: &str,
        value: impl AsRef<[u8]>,
        ttl: TtlChange,
        condition: Condition,
    ) -> Result<(Written, Ack)> {
        self.write_acked(key, value.as_ref(), ttl, condition)
    }

    /// [`Store::remove`] (or, with `expected`, [`Store::remove_if_version`])
    /// without waiting for durability; see [`Store::put_acked`].
    pub fn remove_acked(&self, key: &str, expected: Option<u64>) -> Result<(u64, Ack)> {
        let condition = expected.map_or(Condition::Present, Condition::Version);
        self.remove_when_acked(key, condition)
    }

    /// Replaces the value only if the key's version is `expected`.
    /// Returns the new version; [`Error::VersionMismatch`] (with the current
    /// version, if any) otherwise.
    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: u64,
        value: impl AsRef<[u8]>,
        ttl: TtlChange,
    ) -> Result<u64> {
        let written = self.write(key, value.as_ref(), ttl, Condition::Version(expected))?;
        Ok(written.version)
    }

    /// Reads a key: `None` when absent or expired.
    ///
    /// Fails only when `key` could never be stored (empty or too long).
    pub fn get(&self, key: &str) -> Result<Option<Entry>> {
        self.inner.check_key(key)?;
        let hash = self.inner.hash(key.as_bytes());
        let shard = self.inner.shard(hash);
        // Cloning the record bumps a reference count; the value is not copied
        // while the lock is held. The clock is read under the lock too (only
        // for keys with a deadline): expiry is judged while the record is
        // still the key's current one, or a writer could persist it in
        // between and this read would report a live key absent.
        let Some((record, now)) = shard.read(|t| {
            let record = t.get(hash, key.as_bytes())?;
            if let Some(clock) = self.inner.memory.lru_clock() {
                record.touch(clock);
            }
            let record = record.clone();
            let now = match record.deadline_ms() {
                NO_DEADLINE => 0,
                _ => self.inner.clock.now_ms(),
            };
            Some((record, now))
        }) else {
            return Ok(None);
        };
        if record.is_expired(now) {
            // Lazy reclaim: remove it unless a writer replaced it meanwhile.
            let expired = shard.write(|t| {
                t.remove_exact(hash, &record)
                    .then(|| self.inner.number_expiry(record.key()))
            });
            let Some(expired) = expired else {
                return Ok(None);
            };
            self.inner.count_reclaimed(1);
            self.inner
                .memory
                .release(memory::record_bytes(record.payload_len()));
            if let Some(revision) = expired {
                self.inner.publish_expiry(revision, key);
            }
            return Ok(None);
        }
        Ok(Some(Entry::new(record, now)))
    }

    /// Removes a present key. Returns the revision of the removal;
    /// [`Error::NotFound`] when the key is absent.
    pub fn remove(&self, key: &str) -> Result<u64> {
        self.remove_when(key, Condition::Present)
    }

    /// Removes the key only if its version is `expected`. Returns the revision
    /// of the removal; [`Error::VersionMismatch`] otherwise.
    pub fn remove_if_version(&self, key: &str, expected: u64) -> Result<u64> {
        self.remove_when(key, Condition::Version(expected))
    }

    /// The next keys, in byte order, that start with `prefix` and come after
    /// `after` (exclusive), at most `limit` of them (a `limit` of 0 counts as
    /// 1, so that a paging loop always moves on).
    ///
    /// A page costs a search in each shard's ordered index plus the keys it
    /// reads: O(shards * log n + page), whatever the size of the store.
    ///
    /// What a page is: every shard is read on its own, under its own lock
    /// (in batches, each at one instant of that shard), never all shards at
    /// once, so writers wait for at most one batch of one shard. So a page is
    /// not one instant of the whole store. It holds, in byte order, keys each
    /// of which was live, with the value returned, at the instant its shard
    /// was read; a key that exists unchanged for the whole page (or the whole
    /// paging loop) is listed exactly once; a key created or removed while
    /// the page is read may or may not be in it. Expired keys are never
    /// listed.
    pub fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Page {
        listing::page(
            &self.inner.shards,
            &*self.inner.clock,
            prefix,
            after,
            limit.max(1),
        )
    }

    /// Follows the changes to every key that starts with `prefix` (empty:
    /// every key), in revision order: each put, delete and expiry after
    /// revision `from`, or, with `None`, after the latest revision.
    ///
    /// Changes before now come from the history
    /// ([`StoreBuilder::watch_history`]); [`Error::Compacted`] (carrying the
    /// oldest revision a watch can start from) when it no longer holds
    /// `from`, and when `from` is a revision this store has not reached: a
    /// revision seen before a restart that lost it (an in-memory store, or
    /// the last writes of a crash under `Fsync::EverySec`), whose number
    /// the store will give to other changes. An expiry is reported when the
    /// store notices it (on an access to the key or in the background
    /// pass), not at the deadline itself. See [`Watcher`] for how a watcher that falls behind is cut
    /// off. Fails with [`Error::Closed`] once the store is closed.
    ///
    /// ```
    /// use kvcore::{EventKind, Store, TtlChange};
    /// let store = Store::new();
    /// let mut watcher = store.watch("app/", None)?;
    /// store.upsert("app/a", "1", TtlChange::Keep)?;
    /// store.upsert("other", "x", TtlChange::Keep)?;
    /// store.remove("app/a")?;
    /// let put = watcher.recv()?;
    /// assert_eq!((put.kind(), put.key(), put.value()), (EventKind::Put, "app/a", Some(&b"1"[..])));
    /// assert_eq!(watcher.recv()?.kind(), EventKind::Delete);
    /// # Ok::<(), kvcore::Error>(())
    /// ```
    pub fn watch(&self, prefix: &str, from: Option<u64>) -> Result<Watcher> {
        let inner = &self.inner;
        let shared = inner
            .feed
            .watch(prefix, from, || inner.revision.0.load(Ordering::SeqCst))?;
        inner.feed.ensure_dispatcher(|| {
            // The dispatcher also looks every second, in case a wake-up was
            // missed; without it (if the thread cannot start) nothing is
            // delivered.
            inner.threads.spawn_periodic(
                "kvcore-watch",
                Duration::from_secs(1),
                inner.clone(),
                |inner| inner.feed.dispatch(&inner.memory),
            )
        });
        Ok(Watcher::new(shared))
    }

    /// The oldest revision a [`Store::watch`] can start from, and the latest
    /// revision whose changes are all published to watchers.
    pub fn watch_bounds(&self) -> (u64, u64) {
        self.inner.feed.bounds()
    }

    /// Number of live keys, counted at one instant (every shard held).
    /// Expired keys are never counted; their memory is reclaimed first.
    pub fn len(&self) -> usize {
        let now = self.inner.clock.now_ms();
        for shard in self.inner.shards.iter() {
            if shard.read(|t| t.may_have_expired(now)) {
                self.inner.reclaim_shard(shard, now);
            }
        }
        shard::read_all(&self.inner.shards, |tables| {
            let now = self.inner.clock.now_ms();
            tables
                .iter()
                .map(|t| match t.may_have_expired(now) {
                    true => t.iter().filter(|r| !r.is_expired(now)).count(),
                    false => t.len(),
                })
                .sum()
        })
    }

    /// True when the store holds no live key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reclaims the memory of every expired key now; returns how many.
    /// The background pass does this on its own unless it was turned off.
    pub fn reclaim_expired(&self) -> usize {
        let now = self.inner.clock.now_ms();
        self.inner
            .shards
            .iter()
            .map(|shard| self.inner.reclaim_shard(shard, now))
            .sum()
    }

    /// Current figures.
    pub fn stats(&self) -> Stats {
        Stats {
            keys: self.len(),
            expired_reclaimed: self.inner.expired_reclaimed.load(Ordering::Relaxed),
            revision: self.inner.revision.0.load(Ordering::Acquire),
            shards: self.inner.shards.len(),
            tuning: self.inner.tuning,
            durability: self.inner.durable.as_ref().map(|d| DurabilityStats {
                fsync: d.log.policy(),
                log_bytes: d.log.segment_bytes(),
                snapshot_bytes: d.snapshot_bytes(),
                fsyncs: d.log.fsyncs(),
                compactions: d.compactions(),
            }),
            memory: self.inner.memory.stats(),
        }
    }

    /// The limits this store enforces.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// The tuning this store was built with.
    pub fn tuning(&self) -> Tuning {
        self.inner.tuning
    }

    fn write(
        &self,
        key: &str,
        value: &[u8],
        ttl: TtlChange,
        condition: Condition,
    ) -> Result<Written> {
        let (written, ack) = self.write_acked(key, value, ttl, condition)?;
        ack.wait()?;
        Ok(written)
    }

    fn write_acked(
        &self,
        key: &str,
        value: &[u8],
        ttl: TtlChange,
        condition: Condition,
    ) -> Result<(Written, Ack)> {
        self.write_attempt(key, value, ttl, condition, 0)
    }

    /// Attempt number `attempt` (from 0) at a write. A write that does not
    /// fit under the memory bound changes nothing and goes to
    /// [`Store::retry_with_room`], which makes room with no lock held (or
    /// fails, as the policy says) and calls this again.
    ///
    /// The retry is a call out of line rather than a loop here: in a loop,
    /// or with the write's closure reached from two places, the compiler
    /// shaped the common path around the rare one (~100 instructions an
    /// upsert, callgrind).
    fn write_attempt(
        &self,
        key: &str,
        value: &[u8],
        ttl: TtlChange,
        condition: Condition,
        attempt: u32,
    ) -> Result<(Written, Ack)> {
        let inner = &*self.inner;
        inner.check_key(key)?;
        inner.check_value(value)?;
        if let Some(durable) = &inner.durable {
            // Before any lock: compaction takes shard locks to make room.
            durable.wait_for_room();
        }
        let hash = inner.hash(key.as_bytes());
        let shard = inner.shard(hash);
        // Revisions this write took: an expiry it noticed, and its own (with
        // whether the feed wants its event). Set under the lock; the events
        // are made and published after it is released.
        let mut expired = None;
        let mut taken = None;
        let mut no_room = None;
        let applied = shard.write(|t| {
            self.write_in(
                t,
                hash,
                key,
                value,
                ttl,
                condition,
                &mut no_room,
                &mut expired,
                &mut taken,
            )
        });
        if let Some(revision) = expired {
            inner.publish_expiry(revision, key);
        }
        if let Some(needed) = no_room {
            // No revision was taken: the reservation comes first.
            return self.retry_with_room(key, value, ttl, condition, needed, attempt);
        }
        let (written, replaced, ack, deadline) = match applied {
            Ok(done) => done,
            Err(err) => {
                if let Some((version, true)) = taken {
                    // The revision was taken but the log refused the write.
                    inner.feed.publish(version, None, &inner.memory);
                }
                return Err(err);
            }
        };
        // The replaced record may be the last reference to its bytes: free it
        // after the lock is released.
        drop(replaced);
        if let Some((version, true)) = taken {
            let event = Event::put(version, key, value, deadline, written.ttl);
            inner.feed.publish(version, Some(event), &inner.memory);
        }
        // The wait for the sync (with `always`) happens without the shard.
        Ok((written, ack))
    }

    /// Makes room for a write that did not fit, then tries it again.
    #[cold]
    #[inline(never)]
    fn retry_with_room(
        &self,
        key: &str,
        value: &[u8],
        ttl: TtlChange,
        condition: Condition,
        needed: u64,
        attempt: u32,
    ) -> Result<(Written, Ack)> {
        self.inner.make_room(needed, attempt + 1)?;
        self.write_attempt(key, value, ttl, condition, attempt + 1)
    }

    /// The body of [`Store::write_attempt`], under the shard's write lock: a
    /// function of its own (always inlined) rather than a closure, which the
    /// compiler stopped inlining once it grew, at ~90 instructions an upsert.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn write_in(
        &self,
        t: &mut Table,
        hash: u64,
        key: &str,
        value: &[u8],
        ttl: TtlChange,
        condition: Condition,
        no_room: &mut Option<u64>,
        expired: &mut Option<u64>,
        taken: &mut Option<(u64, bool)>,
    ) -> Result<(Written, Option<Record>, Ack, u64)> {
        let inner = &*self.inner;
        let stored = t.get(hash, key.as_bytes());
        // The clock is read under the lock: whether the stored record has
        // expired is judged at the instant this write holds the key, so
        // no other caller can see it expire before the write applies.
        // It is read only when a deadline is involved: a system clock
        // read costs as much as the rest of a small write.
        let now = match (ttl, stored) {
            (TtlChange::Set(_), _) => inner.clock.now_ms(),
            (_, Some(r)) if r.deadline_ms() != NO_DEADLINE => inner.clock.now_ms(),
            _ => 0,
        };
        let new_deadline = match ttl {
            TtlChange::Set(ttl) => expiry::deadline_after(now, ttl)?,
            TtlChange::Keep | TtlChange::Persist => NO_DEADLINE,
        };
        let current = stored.filter(|r| !r.is_expired(now));
        let found_expired = stored.is_some() && current.is_none();
        check(condition, current)?;
        // Reserve what this write adds before anything changes (see
        // `memory.rs`): its record, less the one it replaces, and for a
        // new key in a full table the table it grows into. A record of
        // the same size (the common overwrite) changes nothing.
        let payload = key.len() + value.len();
        let (adds, frees) = match stored {
            Some(r) if r.payload_len() == payload => (0, 0),
            Some(r) => (
                memory::record_bytes(payload),
                memory::record_bytes(r.payload_len()),
            ),
            None => (memory::record_bytes(payload), 0),
        };
        let growth = if stored.is_none() {
            t.growth_bytes()
        } else {
            0
        };
        let reserved = (adds + growth).saturating_sub(frees);
        if let Err(NoRoom { needed }) = inner.memory.reserve(reserved) {
            *no_room = Some(needed);
            return Err(inner.memory.full(needed));
        }
        let table_before = if growth > 0 { t.table_bytes() } else { 0 };
        let current_deadline = current.map_or(NO_DEADLINE, Record::deadline_ms);
        if found_expired {
            // The replaced record expired: that is a change of its own,
            // before this write's (numbered only in a watched store).
            *expired = inner.number_expiry(key.as_bytes());
        }
        let version = inner.next_revision();
        *taken = Some((version, inner.feed.is_active()));
        inner.memory.advance(version);
        let deadline = expiry::resolve(ttl, new_deadline, current_deadline);
        let written = Written {
            version,
            created: current.is_none(),
            ttl: (deadline != NO_DEADLINE)
                .then(|| Duration::from_millis(deadline.saturating_sub(now))),
        };
        let logged = inner.log(Change::Put {
            key: key.as_bytes(),
            value,
            revision: version,
            deadline_ms: deadline,
        });
        let ack = match logged {
            Ok(ack) => ack,
            Err(err) => {
                inner.memory.release(reserved);
                return Err(err);
            }
        };
        // A value of the old one's length goes into the old record's
        // allocation when no reader holds it; otherwise a new record
        // replaces it (allocated under the lock: only creates, size
        // changes and keys being read at this instant get here).
        let replaced = if t.overwrite(hash, key.as_bytes(), value, version, deadline) {
            // Only under `evict-lru`: the lookup is not free.
            if let Some(clock) = inner.memory.lru_clock()
                && let Some(record) = t.get(hash, key.as_bytes())
            {
                record.touch(clock);
            }
            None
        } else {
            let record = Record::new(key, value);
            record.stamp(version, deadline);
            if let Some(clock) = inner.memory.lru_clock() {
                record.touch(clock);
            }
            t.put(hash, record, |r| inner.hash(r.key()))
        };
        if growth > 0 {
            let grown = t.table_bytes().saturating_sub(table_before);
            inner.memory.settle(reserved, adds + grown, frees);
        } else {
            inner.memory.settle(reserved, adds, frees);
        }
        if found_expired {
            inner.count_reclaimed(1);
        }
        Ok((written, replaced, ack, deadline))
    }

    fn remove_when(&self, key: &str, condition: Condition) -> Result<u64> {
        let (version, ack) = self.remove_when_acked(key, condition)?;
        ack.wait()?;
        Ok(version)
    }

    fn remove_when_acked(&self, key: &str, condition: Condition) -> Result<(u64, Ack)> {
        let inner = &*self.inner;
        inner.check_key(key)?;
        let hash = inner.hash(key.as_bytes());
        let mut expired = None;
        let mut taken = None;
        let (result, removed) = inner.shard(hash).write(|t| {
            let stored = t.get(hash, key.as_bytes());
            // As in `write`: the clock under the lock, and only for a deadline.
            let now = match stored {
                Some(r) if r.deadline_ms() != NO_DEADLINE => inner.clock.now_ms(),
                _ => 0,
            };
            let current = stored.filter(|r| !r.is_expired(now));
            if let Err(err) = check(condition, current) {
                if stored.is_some() && current.is_none() {
                    inner.count_reclaimed(1);
                    expired = inner.number_expiry(key.as_bytes());
                    let removed = t.remove(hash, key.as_bytes());
                    if let Some(r) = &removed {
                        inner.memory.release(memory::record_bytes(r.payload_len()));
                    }
                    return (Err(err), removed);
                }
                return (Err(err), None);
            }
            // `check` passed, so the key is present and live.
            match inner.remove_logged(t, hash, key.as_bytes()) {
                Ok((version, ack, removed)) => {
                    taken = Some((version, true));
                    (Ok((version, ack)), removed)
                }
                Err(err) => (Err(err), None),
            }
        });
        if let Some(revision) = expired {
            inner.publish_expiry(revision, key);
        }
        if let Some((version, watched)) = taken
            && inner.feed.is_active()
        {
            let event =
                (watched && result.is_ok()).then(|| Event::gone(version, key, EventKind::Delete));
            inner.feed.publish(version, event, &inner.memory);
        }
        drop(removed);
        result
    }
}

/// Checks a write's condition against the live record (`None` if absent).
fn check(condition: Condition, current: Option<&Record>) -> Result<()> {
    match (condition, current) {
        (Condition::Always, _) | (Condition::Absent, None) | (Condition::Present, Some(_)) => {
            Ok(())
        }
        (Condition::Absent, Some(r)) => Err(Error::AlreadyExists {
            current_version: r.version(),
        }),
        (Condition::Present, None) => Err(Error::NotFound),
        (Condition::Version(expected), current) => match current.map(Record::version) {
            Some(version) if version == expected => Ok(()),
            current => Err(Error::VersionMismatch { expected, current }),
        },
    }
}

impl Default for Store {
    fn default() -> Store {
        Store::new()
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("tuning", &self.inner.tuning)
            .field("shards", &self.inner.shards.len())
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// Logs a change of a durable store (see [`Durable::log`]); in memory,
    /// acknowledged at once.
    fn log(&self, change: Change<'_>) -> Result<Ack> {
        match &self.durable {
            Some(durable) => durable.log(change),
            None => Ok(Ack::done()),
        }
    }

    /// Removes a live key as a logged change: takes the next revision, logs
    /// the removal (a durable store never brings the key back) and gives its
    /// memory back. The one removal path a delete and an eviction share.
    /// Returns the revision, the log's acknowledgement and the removed
    /// record, to be dropped after the lock.
    pub(crate) fn remove_logged(
        &self,
        t: &mut Table,
        hash: u64,
        key: &[u8],
    ) -> Result<(u64, Ack, Option<Record>)> {
        let version = self.next_revision();
        self.memory.advance(version);
        let ack = match self.log(Change::Remove {
            key,
            revision: version,
        }) {
            Ok(ack) => ack,
            Err(err) => {
                // The revision was taken but the log refused the removal:
                // a hole in the feed, so that watchers do not wait for it.
                if self.feed.is_active() {
                    self.feed.publish(version, None, &self.memory);
                }
                return Err(err);
            }
        };
        let removed = t.remove(hash, key);
        if let Some(record) = &removed {
            self.memory
                .release(memory::record_bytes(record.payload_len()));
        }
        Ok((version, ack, removed))
    }

    /// See [`Store::close`]. Idempotent.
    pub(crate) fn close(&self) -> Result<()> {
        // The log first: its sync thread ends when it closes, and a
        // compaction under way stops at its next step.
        let synced = self.durable.as_ref().map_or(Ok(()), Durable::close_log);
        self.feed.close();
        self.threads.stop_and_join();
        if let Some(durable) = &self.durable {
            durable.unlock();
        }
        synced
    }

    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(crate) fn shard(&self, hash: u64) -> &Shard {
        &self.shards[shard_index(hash, self.shards.len())]
    }

    /// The next revision. Sequentially consistent, like the feed's
    /// `active` flag read after it: a watcher that starts reads the
    /// revision after setting the flag, so every revision is either counted
    /// by the watcher as before it or taken by a writer that sees the flag.
    fn next_revision(&self) -> u64 {
        self.revision.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Numbers the expiry of `key`, noticed under its shard's write lock,
    /// if the store is watched: it takes a revision, and a durable store
    /// logs it (as a remove marked expired) so that the feed survives a
    /// restart. An unwatched store's expiries take no revision. The event
    /// is published with [`Inner::publish_expiry`] once the lock is
    /// released.
    pub(crate) fn number_expiry(&self, key: &[u8]) -> Option<u64> {
        if !self.feed.is_active() {
            return None;
        }
        let revision = self.next_revision();
        // The key is gone from memory whatever the log says: a failure here
        // fails the log, and the next write reports it.
        let _ = self.log(Change::Expire { key, revision });
        Some(revision)
    }

    /// Publishes the expiry numbered by [`Inner::number_expiry`].
    pub(crate) fn publish_expiry(&self, revision: u64, key: &str) {
        self.feed.publish(
            revision,
            Some(Event::gone(revision, key, EventKind::Expire)),
            &self.memory,
        );
    }

    fn check_key(&self, key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        if key.len() > self.limits.max_key_bytes {
            return Err(Error::KeyTooLarge {
                size: key.len(),
                limit: self.limits.max_key_bytes,
            });
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> Result<()> {
        if value.len() > self.limits.max_value_bytes {
            return Err(Error::ValueTooLarge {
                size: value.len(),
                limit: self.limits.max_value_bytes,
            });
        }
        Ok(())
    }
}

/// The shard a hash belongs to. Bits 24..56 pick it: hashbrown uses the low
/// bits for the bucket and the top seven for its tag, so keys sharing a shard
/// still differ in both. Multiply-shift maps onto any shard count.
pub(crate) fn shard_index(hash: u64, shards: usize) -> usize {
    let bits = (hash >> 24) as u32 as u64;
    ((bits * shards as u64) >> 32) as usize
}
