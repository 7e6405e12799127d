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
use crate::shard::{self, Shard, Tuning};

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
    /// Shard where the next background pass starts, so a pass cut short by
    /// its time budget does not starve the shards after it.
    pub(crate) reclaim_cursor: AtomicUsize,
    /// The data directory of a durable store.
    pub(crate) durable: Option<Durable>,
    /// What opening the data directory recovered.
    pub(crate) recovery: Option<RecoveryReport>,
    /// The background threads, stopped and joined by [`Inner::close`].
    pub(crate) threads: Threads,
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
            let record = t.get(hash, key.as_bytes())?.clone();
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
        let inner = &*self.inner;
        inner.check_key(key)?;
        inner.check_value(value)?;
        if let Some(durable) = &inner.durable {
            // Before any lock: compaction takes shard locks to make room.
            durable.wait_for_room();
        }
        let hash = inner.hash(key.as_bytes());
        let shard = inner.shard(hash);
        let (written, replaced, ack) = shard.write(|t| {
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
            let current_deadline = current.map_or(NO_DEADLINE, Record::deadline_ms);
            let version = inner.next_revision();
            let deadline = expiry::resolve(ttl, new_deadline, current_deadline);
            let written = Written {
                version,
                created: current.is_none(),
                ttl: (deadline != NO_DEADLINE)
                    .then(|| Duration::from_millis(deadline.saturating_sub(now))),
            };
            let ack = inner.log(Change::Put {
                key: key.as_bytes(),
                value,
                revision: version,
                deadline_ms: deadline,
            })?;
            // A value of the old one's length goes into the old record's
            // allocation when no reader holds it; otherwise a new record
            // replaces it (allocated under the lock: only creates, size
            // changes and keys being read at this instant get here).
            let replaced = if t.overwrite(hash, key.as_bytes(), value, version, deadline) {
                None
            } else {
                let record = Record::new(key, value);
                record.stamp(version, deadline);
                t.put(hash, record, |r| inner.hash(r.key()))
            };
            if found_expired {
                inner.count_reclaimed(1);
            }
            Ok::<_, Error>((written, replaced, ack))
        })?;
        // The replaced record may be the last reference to its bytes: free it
        // after the lock is released.
        drop(replaced);
        // The wait for the sync (with `always`) happens without the shard.
        Ok((written, ack))
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
                    return (Err(err), t.remove(hash, key.as_bytes()));
                }
                return (Err(err), None);
            }
            let version = inner.next_revision();
            let logged = match current {
                Some(_) => inner.log(Change::Remove {
                    key: key.as_bytes(),
                    revision: version,
                }),
                None => Ok(Ack::done()),
            };
            match logged {
                Ok(ack) => (Ok((version, ack)), t.remove(hash, key.as_bytes())),
                Err(err) => (Err(err), None),
            }
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
    /// Logs a change of a durable store (see [`Durable::log`]); in memory,
    /// acknowledged at once.
    fn log(&self, change: Change<'_>) -> Result<Ack> {
        match &self.durable {
            Some(durable) => durable.log(change),
            None => Ok(Ack::done()),
        }
    }

    /// See [`Store::close`]. Idempotent.
    pub(crate) fn close(&self) -> Result<()> {
        // The log first: its sync thread ends when it closes, and a
        // compaction under way stops at its next step.
        let synced = self.durable.as_ref().map_or(Ok(()), Durable::close_log);
        self.threads.stop_and_join();
        if let Some(durable) = &self.durable {
            durable.unlock();
        }
        synced
    }

    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn shard(&self, hash: u64) -> &Shard {
        &self.shards[shard_index(hash, self.shards.len())]
    }

    fn next_revision(&self) -> u64 {
        self.revision.0.fetch_add(1, Ordering::AcqRel) + 1
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
