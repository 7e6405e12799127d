//! The `Store` handle and its operations.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

use std::hash::BuildHasher;

use hashbrown::DefaultHashBuilder;

use crate::clock::{Clock, SystemClock};
use crate::entry::{Entry, NO_DEADLINE, Record};
use crate::error::{Error, Result};
use crate::expiry::{self, ActiveExpiry, TtlChange};
use crate::listing::{self, Page};
use crate::shard::{Shard, Table, Tuning};

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
}

/// Configures and builds a [`Store`].
#[derive(Debug)]
pub struct StoreBuilder {
    tuning: Tuning,
    shards: Option<usize>,
    limits: Limits,
    clock: Arc<dyn Clock>,
    active_expiry: ActiveExpiry,
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

    /// Longest value accepted, in bytes. Default 1 MiB.
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

    /// Builds the store and, unless told otherwise, starts its reclaimer.
    pub fn build(self) -> Store {
        let layout = self.tuning.layout();
        let shards = self.shards.unwrap_or(layout.shards);
        let (stop, stopped) = channel();
        let inner = Arc::new(Inner {
            shards: (0..shards).map(|_| Shard::new(layout.lock)).collect(),
            hasher: DefaultHashBuilder::default(),
            revision: AtomicU64::new(0),
            clock: self.clock,
            limits: self.limits,
            tuning: self.tuning,
            expired_reclaimed: AtomicU64::new(0),
            reclaim_cursor: AtomicUsize::new(0),
            _stop_reclaimer: stop,
        });
        if let ActiveExpiry::Background { interval } = self.active_expiry {
            expiry::spawn_reclaimer(Arc::downgrade(&inner), interval, stopped);
        }
        Store { inner }
    }
}

/// A concurrent key-value store. Cloning is cheap: clones share the data.
///
/// Every operation is atomic and linearizable; none hands out a lock guard,
/// so a caller cannot deadlock the store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    shards: Box<[Shard]>,
    hasher: DefaultHashBuilder,
    /// The store-wide revision. Taken under the shard lock of the write it
    /// numbers, so a key's versions increase in the order its writes apply.
    revision: AtomicU64,
    clock: Arc<dyn Clock>,
    limits: Limits,
    tuning: Tuning,
    expired_reclaimed: AtomicU64,
    /// Shard where the next background pass starts, so a pass cut short by
    /// its time budget does not starve the shards after it.
    reclaim_cursor: AtomicUsize,
    /// Dropped with the store, which disconnects and stops the reclaimer.
    _stop_reclaimer: Sender<()>,
}

impl Store {
    /// A store with every default: balanced tuning, default limits, the
    /// system clock and background expiry.
    pub fn new() -> Store {
        Store::builder().build()
    }

    /// Starts configuring a store.
    pub fn builder() -> StoreBuilder {
        StoreBuilder {
            tuning: Tuning::default(),
            shards: None,
            limits: Limits::default(),
            clock: Arc::new(SystemClock),
            active_expiry: ActiveExpiry::default(),
        }
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
        // while the lock is held.
        let Some(record) = shard.read(|t| t.get(hash, key.as_bytes()).cloned()) else {
            return Ok(None);
        };
        if record.deadline_ms() == NO_DEADLINE {
            return Ok(Some(Entry::new(record, 0)));
        }
        let now = self.inner.clock.now_ms();
        if record.is_expired(now) {
            // Lazy reclaim: remove it unless a writer replaced it meanwhile.
            if shard.write(|t| t.remove_exact(hash, &record)) {
                self.inner.count_reclaimed(1);
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
    /// `after` (exclusive), at most `limit` of them (at least 1 is assumed).
    ///
    /// A page costs a scan of the whole store: keys are hashed, not sorted.
    pub fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Page {
        let now = self.inner.clock.now_ms();
        let mut collector = listing::Collector::new(prefix, after, limit.max(1));
        for shard in self.inner.shards.iter() {
            shard.read(|t| {
                for record in t.iter().filter(|r| !r.is_expired(now)) {
                    collector.offer(record);
                }
            });
        }
        collector.finish(now)
    }

    /// Number of live keys. Expired keys are reclaimed first, so they are
    /// never counted.
    pub fn len(&self) -> usize {
        let now = self.inner.clock.now_ms();
        self.inner
            .shards
            .iter()
            .map(|shard| {
                if shard.read(|t| t.may_have_expired(now)) {
                    self.inner.reclaim_shard(shard, now);
                }
                shard.read(Table::len)
            })
            .sum()
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
            revision: self.inner.revision.load(Ordering::Acquire),
            shards: self.inner.shards.len(),
            tuning: self.inner.tuning,
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
        let inner = &*self.inner;
        inner.check_key(key)?;
        inner.check_value(value)?;
        let now = inner.clock.now_ms();
        let new_deadline = match ttl {
            TtlChange::Set(ttl) => expiry::deadline_after(now, ttl)?,
            TtlChange::Keep | TtlChange::Persist => NO_DEADLINE,
        };
        // Allocate and copy before taking the lock; only the version and the
        // deadline depend on what the shard holds.
        let record = Record::new(key, value);
        let hash = inner.hash(key.as_bytes());
        let shard = inner.shard(hash);
        let (written, replaced) = shard.write(|t| {
            let stored = t.get(hash, key.as_bytes());
            let current = stored.filter(|r| !r.is_expired(now));
            let found_expired = stored.is_some() && current.is_none();
            check(condition, current)?;
            let current_deadline = current.map_or(NO_DEADLINE, Record::deadline_ms);
            let version = inner.next_revision();
            let deadline = expiry::resolve(ttl, new_deadline, current_deadline);
            record.stamp(version, deadline);
            let written = Written {
                version,
                created: current.is_none(),
                ttl: (deadline != NO_DEADLINE)
                    .then(|| Duration::from_millis(deadline.saturating_sub(now))),
            };
            let replaced = t.put(hash, record, |r| inner.hash(r.key()));
            if found_expired {
                inner.count_reclaimed(1);
            }
            Ok::<_, Error>((written, replaced))
        })?;
        // The replaced record may be the last reference to its bytes: free it
        // after the lock is released.
        drop(replaced);
        Ok(written)
    }

    fn remove_when(&self, key: &str, condition: Condition) -> Result<u64> {
        let inner = &*self.inner;
        inner.check_key(key)?;
        let now = inner.clock.now_ms();
        let hash = inner.hash(key.as_bytes());
        let (result, removed) = inner.shard(hash).write(|t| {
            let stored = t.get(hash, key.as_bytes());
            let current = stored.filter(|r| !r.is_expired(now));
            if let Err(err) = check(condition, current) {
                if stored.is_some() && current.is_none() {
                    inner.count_reclaimed(1);
                    return (Err(err), t.remove(hash, key.as_bytes()));
                }
                return (Err(err), None);
            }
            let version = inner.next_revision();
            (Ok(version), t.remove(hash, key.as_bytes()))
        });
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
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn shard(&self, hash: u64) -> &Shard {
        // Bits 24..56 pick the shard: hashbrown uses the low bits for the
        // bucket and the top seven for its tag, so keys sharing a shard
        // still differ in both. Multiply-shift maps onto any shard count.
        let bits = (hash >> 24) as u32 as u64;
        &self.shards[((bits * self.shards.len() as u64) >> 32) as usize]
    }

    fn next_revision(&self) -> u64 {
        self.revision.fetch_add(1, Ordering::AcqRel) + 1
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

    fn count_reclaimed(&self, n: usize) {
        if n > 0 {
            self.expired_reclaimed
                .fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    fn reclaim_shard(&self, shard: &Shard, now_ms: u64) -> usize {
        let reclaimed = shard.write(|t| {
            if t.may_have_expired(now_ms) {
                t.reclaim_expired(now_ms, |r| self.hash(r.key()))
            } else {
                0
            }
        });
        self.count_reclaimed(reclaimed);
        reclaimed
    }

    /// One background pass: visits shards round-robin, skipping those with
    /// nothing expired, until every shard was seen or `until` has passed.
    pub(crate) fn reclaim_expired_for(&self, until: Instant) {
        let now = self.clock.now_ms();
        let count = self.shards.len();
        let start = self.reclaim_cursor.load(Ordering::Relaxed);
        for step in 0..count {
            let index = (start + step) % count;
            let shard = &self.shards[index];
            // A shared look first, so idle shards cost readers nothing.
            if shard.read(|t| t.may_have_expired(now)) {
                self.reclaim_shard(shard, now);
            }
            if Instant::now() >= until {
                self.reclaim_cursor
                    .store((index + 1) % count, Ordering::Relaxed);
                return;
            }
        }
    }
}
