//! One lock-guarded slice of the key space, and the tuning that decides how
//! many there are.

use std::ops::Bound;
use std::sync::PoisonError;

use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard, ShardedLockWriteGuard};
use hashbrown::HashTable;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::entry::{NO_DEADLINE, Record};
use crate::memory;
use crate::ordered::Ordered;
use crate::record_ref::RecordRef;

/// How the store is laid out for its workload.
///
/// Each preset is its own layout. On the 2-core machine this was measured
/// on, none beat the others on its own mix by more than the noise, so each
/// is what it changes; README "Tuning" and BENCHMARKS.md give the measured
/// costs and the mechanism by which each is meant to pay off with more cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Tuning {
    /// 64 shards, one reader-writer lock each.
    #[default]
    Balanced,
    /// 64 shards, each with a lock slot per reading thread
    /// (`crossbeam_utils::sync::ShardedLock`): a reader writes only its own
    /// thread's slot, never a lock word other readers write; a writer locks
    /// all eight slots.
    ReadHeavy,
    /// 256 shards, one reader-writer lock each: writers meet on a shard a
    /// quarter as often, for more fixed memory and more shards for `len`,
    /// listing and the reclaim pass to visit.
    WriteHeavy,
}

/// The concrete layout a [`Tuning`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) shards: usize,
    /// The lock around each shard.
    pub(crate) lock: LockKind,
}

impl Tuning {
    pub(crate) fn layout(self) -> Layout {
        // Enough shards that threads rarely meet on one (two threads: 1 in
        // 64 operations) while a scan of every shard (len, list, the reclaim
        // pass) stays cheap.
        match self {
            Tuning::Balanced => Layout {
                shards: 64,
                lock: LockKind::Shared,
            },
            Tuning::ReadHeavy => Layout {
                shards: 64,
                lock: LockKind::PerReader,
            },
            Tuning::WriteHeavy => Layout {
                shards: 256,
                lock: LockKind::Shared,
            },
        }
    }

    /// The name used in configuration and reports (`read-heavy`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Tuning::Balanced => "balanced",
            Tuning::ReadHeavy => "read-heavy",
            Tuning::WriteHeavy => "write-heavy",
        }
    }
}

impl std::str::FromStr for Tuning {
    type Err = String;

    fn from_str(name: &str) -> Result<Tuning, String> {
        match name {
            "balanced" => Ok(Tuning::Balanced),
            "read-heavy" => Ok(Tuning::ReadHeavy),
            "write-heavy" => Ok(Tuning::WriteHeavy),
            other => Err(format!(
                "unknown tuning {other:?}: expected balanced, read-heavy or write-heavy"
            )),
        }
    }
}

/// A shard: a hash table behind a lock of the layout's kind.
///
/// Aligned to 128 bytes (two cache lines, the unit the adjacent-line
/// prefetcher moves) so that threads locking neighbouring shards do not
/// write to one line.
#[repr(align(128))]
pub(crate) struct Shard(Lock);

/// How a shard's table is guarded.
enum Lock {
    /// One reader-writer lock. Uncontended it costs what a mutex does
    /// (callgrind: 9 instructions a get apart), and readers that do meet on
    /// a shard, or meet a `list` or reclaim scan holding it, need not queue.
    /// But every reader writes the lock word: two cores reading one shard
    /// pass its cache line back and forth.
    Shared(RwLock<Table>),
    /// A lock per reading thread (`crossbeam_utils::sync::ShardedLock`): a
    /// reader writes only its own thread's slot, a writer locks all eight.
    PerReader(ShardedLock<Table>),
}

impl Shard {
    /// A shard whose ordered index keeps at most `gone_bytes` of removed
    /// records until it settles (see `ordered/pending.rs`).
    pub(crate) fn new(kind: LockKind, gone_bytes: usize) -> Shard {
        let mut table = Table::default();
        table.order.limit_gone(gone_bytes);
        Shard(match kind {
            LockKind::Shared => Lock::Shared(RwLock::new(table)),
            LockKind::PerReader => Lock::PerReader(ShardedLock::new(table)),
        })
    }

    /// Runs `f` with shared access. The guard never leaves this function, so
    /// no caller can hold a shard locked. Always inlined, like `write`.
    #[inline(always)]
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Table) -> R) -> R {
        // Unlike `write`, `f` is small: a copy of it for each lock kind
        // measured fewer instructions a get than a guard matched twice.
        match &self.0 {
            Lock::Shared(lock) => f(&lock.read()),
            Lock::PerReader(lock) => read_per_reader_with(lock, f),
        }
    }

    /// Runs `f` with exclusive access. Always inlined: a write's closure
    /// is most of the write, and a call through it cost ~90 instructions
    /// an upsert once the write path grew (callgrind). The lock is taken
    /// first and `f` called once, after the match on the lock's kind, so
    /// that `f` is compiled (and inlined) once.
    #[inline(always)]
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut Table) -> R) -> R {
        let mut guard = match &self.0 {
            Lock::Shared(lock) => WriteGuard::Shared(lock.write()),
            Lock::PerReader(lock) => WriteGuard::PerReader(write_per_reader(lock)),
        };
        f(&mut guard)
    }

    /// Runs `f` with shared access to the table with its ordered index
    /// settled (no write pending, see `ordered/pending.rs`): when writes are
    /// pending, applies them under the write lock first, a bounded amount of
    /// work, then lets `f` read.
    pub(crate) fn read_ordered<R>(&self, f: impl FnOnce(&Table) -> R) -> R {
        match &self.0 {
            Lock::Shared(lock) => {
                let table = lock.read();
                if table.order.is_settled() {
                    return f(&table);
                }
                drop(table);
                let mut table = lock.write();
                table.order.settle();
                // Downgraded without letting a writer in between, so that
                // `f` finds the index settled, and with other readers
                // admitted while it reads.
                f(&RwLockWriteGuard::downgrade(table))
            }
            Lock::PerReader(lock) => {
                let table = read_per_reader(lock);
                if table.order.is_settled() {
                    return f(&table);
                }
                drop(table);
                // This lock cannot be downgraded: `f` reads under the write
                // lock.
                let mut table = write_per_reader(lock);
                table.order.settle();
                f(&table)
            }
        }
    }

    #[inline(always)]
    fn guard(&self) -> ReadGuard<'_> {
        match &self.0 {
            Lock::Shared(lock) => ReadGuard::Shared(lock.read()),
            Lock::PerReader(lock) => ReadGuard::PerReader(read_per_reader(lock)),
        }
    }
}

// The eight-slot lock's code out of line, so that it does not crowd the
// single lock's path where both are inlined into a caller. A panic under a
// lock is a bug that has already been reported, and the table is never left
// half-changed, so a poisoned lock is used as it is.

#[inline(never)]
fn read_per_reader(lock: &ShardedLock<Table>) -> ShardedLockReadGuard<'_, Table> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

#[cold]
#[inline(never)]
fn read_per_reader_with<R>(lock: &ShardedLock<Table>, f: impl FnOnce(&Table) -> R) -> R {
    f(&read_per_reader(lock))
}

#[inline(never)]
fn write_per_reader(lock: &ShardedLock<Table>) -> ShardedLockWriteGuard<'_, Table> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

enum WriteGuard<'a> {
    Shared(RwLockWriteGuard<'a, Table>),
    PerReader(ShardedLockWriteGuard<'a, Table>),
}

impl std::ops::Deref for WriteGuard<'_> {
    type Target = Table;

    #[inline(always)]
    fn deref(&self) -> &Table {
        match self {
            WriteGuard::Shared(guard) => guard,
            WriteGuard::PerReader(guard) => guard,
        }
    }
}

impl std::ops::DerefMut for WriteGuard<'_> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut Table {
        match self {
            WriteGuard::Shared(guard) => guard,
            WriteGuard::PerReader(guard) => guard,
        }
    }
}

/// Which lock a layout puts around each shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockKind {
    Shared,
    PerReader,
}

enum ReadGuard<'a> {
    Shared(RwLockReadGuard<'a, Table>),
    PerReader(ShardedLockReadGuard<'a, Table>),
}

impl std::ops::Deref for ReadGuard<'_> {
    type Target = Table;

    #[inline(always)]
    fn deref(&self) -> &Table {
        match self {
            ReadGuard::Shared(guard) => guard,
            ReadGuard::PerReader(guard) => guard,
        }
    }
}

/// Runs `f` with shared access to every shard at once, so that it sees the
/// whole store at one instant (what makes `len` linearizable; `f` should be
/// short: writers wait while it runs).
/// The shards are locked in order and all held until `f` returns; no other
/// operation holds more than one shard, so this cannot deadlock. Writers
/// wait while `f` runs.
pub(crate) fn read_all<R>(shards: &[Shard], f: impl FnOnce(&[&Table]) -> R) -> R {
    let guards: Vec<ReadGuard<'_>> = shards.iter().map(Shard::guard).collect();
    let tables: Vec<&Table> = guards.iter().map(|guard| &**guard).collect();
    f(&tables)
}

/// The records of one shard, found by hash and key bytes, and in byte order
/// of their keys.
///
/// The ordered index holds uncounted references to the records the hash
/// table owns (see `record_ref`): every method that takes a record out of
/// the table hands it to the index in the same call, which keeps it alive
/// until its reference is out, so a reference never outlives its record.
pub(crate) struct Table {
    records: HashTable<Record>,
    order: Ordered,
    /// No record here has a deadline before this (`u64::MAX` when none has
    /// one). A lower bound, not exact: it lets the reclaim pass skip shards
    /// with nothing to do, and is tightened whenever a pass visits.
    earliest_deadline: u64,
}

impl Table {
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn get(&self, hash: u64, key: &[u8]) -> Option<&Record> {
        self.records.find(hash, |r| r.key() == key)
    }

    /// Overwrites the key's record in its own allocation (see
    /// [`Record::overwrite`]); returns whether it could.
    pub(crate) fn overwrite(
        &mut self,
        hash: u64,
        key: &[u8],
        value: &[u8],
        version: u64,
        deadline_ms: u64,
    ) -> bool {
        let Some(record) = self.records.find_mut(hash, |r| r.key() == key) else {
            return false;
        };
        if !record.overwrite(value, version, deadline_ms) {
            return false;
        }
        self.note_deadline(deadline_ms);
        true
    }

    /// Inserts or replaces the record for its key; returns the one replaced.
    /// A replacement never grows the table (hashbrown's `entry` would make
    /// room for an insert first), so that only a new key needs the room
    /// `growth_bytes` counts.
    #[allow(unsafe_code)]
    pub(crate) fn put(
        &mut self,
        hash: u64,
        record: Record,
        rehash: impl Fn(&Record) -> u64,
    ) -> Option<Record> {
        self.note_deadline(record.deadline_ms());
        // SAFETY (both cases): the record goes into the table here, and
        // whenever the table lets the record go (`put` replacing it,
        // `remove`, `remove_exact`, `reclaim_expired`) it hands it to the
        // index, which holds a counted handle to it until the reference is
        // gone, so the reference is never read after the record is freed.
        if let Some(slot) = self.records.find_mut(hash, |r| r.key() == record.key()) {
            self.order.replace(slot, unsafe { RecordRef::new(&record) });
            return Some(std::mem::replace(slot, record));
        }
        self.order.insert(unsafe { RecordRef::new(&record) });
        self.records.insert_unique(hash, record, rehash);
        None
    }

    /// Like [`Table::put`], but leaves the ordered index to
    /// [`Table::rebuild_order`]: for recovery, which loads every key before
    /// anyone can list and then builds the order once (sorting is cheaper
    /// than a search of the index per key). Once the index holds anything,
    /// this is `put`.
    pub(crate) fn put_unordered(
        &mut self,
        hash: u64,
        record: Record,
        rehash: impl Fn(&Record) -> u64,
    ) -> Option<Record> {
        if !self.order.is_empty() {
            return self.put(hash, record, rehash);
        }
        // The index holds no reference, so replacing a record here leaves
        // none dangling.
        self.note_deadline(record.deadline_ms());
        if let Some(slot) = self.records.find_mut(hash, |r| r.key() == record.key()) {
            return Some(std::mem::replace(slot, record));
        }
        self.records.insert_unique(hash, record, rehash);
        None
    }

    /// Builds the ordered index afresh from the records the table holds.
    #[allow(unsafe_code)]
    pub(crate) fn rebuild_order(&mut self) {
        // SAFETY: each reference is of a record the table holds; from here
        // on the table hands a record to the index whenever it lets the
        // record go (see `put`). The old index is dropped first; dropping
        // references never drops records.
        let gone_limit = self.order.gone_limit();
        self.order = Ordered::new();
        let refs = self
            .records
            .iter()
            .map(|r| unsafe { RecordRef::new(r) })
            .collect();
        self.order = Ordered::from_unordered(refs);
        self.order.limit_gone(gone_limit);
    }

    pub(crate) fn remove(&mut self, hash: u64, key: &[u8]) -> Option<Record> {
        let slot = self.records.find_entry(hash, |r| r.key() == key).ok()?;
        let record = slot.remove().0;
        self.order.remove(&record);
        Some(record)
    }

    /// Removes `record` if it is still the one stored for its key.
    pub(crate) fn remove_exact(&mut self, hash: u64, record: &Record) -> bool {
        match self.records.find_entry(hash, |r| r.same_as(record)) {
            Ok(slot) => {
                self.order.remove(&slot.remove().0);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether some record here may have expired by `now_ms`.
    pub(crate) fn may_have_expired(&self, now_ms: u64) -> bool {
        now_ms > self.earliest_deadline
    }

    /// Drops every expired record; gives table memory back when the table
    /// has become mostly empty. Returns how many records went and the bytes
    /// freed (records and table, see `memory.rs`).
    pub(crate) fn reclaim_expired(
        &mut self,
        now_ms: u64,
        rehash: impl Fn(&Record) -> u64,
    ) -> (usize, u64) {
        let before = self.records.len();
        let table_before = self.table_bytes();
        let mut freed = 0;
        let mut earliest = u64::MAX;
        let order = &mut self.order;
        self.records.retain(|r| {
            if r.is_expired(now_ms) {
                freed += memory::record_bytes(r.payload_len());
                // Out of the index first: `retain` drops the record.
                order.remove(r);
                return false;
            }
            if r.deadline_ms() != NO_DEADLINE {
                earliest = earliest.min(r.deadline_ms());
            }
            true
        });
        self.earliest_deadline = earliest;
        // Shrink only when three quarters are unused, so a table that hovers
        // around a size does not grow and shrink over and over.
        if self.records.capacity() > 64 && self.records.len() < self.records.capacity() / 4 {
            self.records.shrink_to(self.records.len() * 2, rehash);
        }
        let table_freed = table_before.saturating_sub(self.table_bytes());
        (before - self.records.len(), freed + table_freed)
    }

    /// The bytes this table's bucket array takes (see `memory.rs`).
    pub(crate) fn table_bytes(&self) -> u64 {
        // A table that never allocated reports one bucket (a shared
        // static); it takes nothing.
        match self.records.capacity() {
            0 => 0,
            _ => memory::table_bytes(self.records.num_buckets()),
        }
    }

    /// The bytes this table and its records take (see `memory.rs`).
    pub(crate) fn held_bytes(&self) -> u64 {
        let records: u64 = self
            .records
            .iter()
            .map(|r| memory::record_bytes(r.payload_len()))
            .sum();
        records + self.table_bytes()
    }

    /// The bytes inserting one more key may allocate: a whole new bucket
    /// array when this one is full (old and new coexist while it moves),
    /// else nothing.
    pub(crate) fn growth_bytes(&self) -> u64 {
        match self.records.len() == self.records.capacity() {
            true => memory::table_bytes((self.records.num_buckets() * 2).max(4)),
            false => 0,
        }
    }

    /// The record at `addr` under `hash`, if it is still stored.
    pub(crate) fn find_exact(&self, hash: u64, addr: usize) -> Option<&Record> {
        self.records.find(hash, |r| r.addr() == addr)
    }

    /// Calls `visit` on up to `count` records, in bucket order from bucket
    /// `start` (taken modulo the bucket count), wrapping around once.
    pub(crate) fn sample(&self, start: usize, count: usize, mut visit: impl FnMut(&Record)) {
        let buckets = self.records.num_buckets();
        if buckets == 0 {
            return;
        }
        let mut seen = 0;
        for step in 0..buckets {
            if let Some(record) = self.records.get_bucket((start + step) % buckets) {
                visit(record);
                seen += 1;
                if seen == count {
                    return;
                }
            }
        }
    }

    /// The lower bound on this table's deadlines (`u64::MAX` when none).
    pub(crate) fn earliest_deadline(&self) -> u64 {
        self.earliest_deadline
    }

    /// Sets the earliest deadline after a caller visited every record.
    pub(crate) fn set_earliest_deadline(&mut self, deadline_ms: u64) {
        self.earliest_deadline = deadline_ms;
    }

    /// Visits every record, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Record> {
        self.records.iter()
    }

    /// Visits the records from `start` on, in byte order of their keys
    /// (expired ones included). Costs a search of the index, then one step
    /// a record. The index must be settled (see [`Shard::read_ordered`]).
    pub(crate) fn range_from(&self, start: Bound<&[u8]>) -> impl Iterator<Item = &Record> {
        self.order.range_from(start).map(RecordRef::record)
    }

    /// Applies the ordered index's pending writes. For tests; the store
    /// settles through [`Shard::read_ordered`].
    #[cfg(test)]
    pub(crate) fn settle(&mut self) {
        self.order.settle();
    }

    /// The ordered index, for its tests.
    #[cfg(test)]
    pub(crate) fn order(&self) -> &Ordered {
        &self.order
    }

    /// Checks that the ordered index holds exactly this table's records, in
    /// order; panics otherwise. For tests.
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let records: Vec<&Record> = self.records.iter().collect();
        self.order.check(&records);
    }

    fn note_deadline(&mut self, deadline_ms: u64) {
        if deadline_ms != NO_DEADLINE {
            self.earliest_deadline = self.earliest_deadline.min(deadline_ms);
        }
    }
}

impl Default for Table {
    fn default() -> Table {
        Table {
            records: HashTable::new(),
            order: Ordered::new(),
            earliest_deadline: u64::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, TtlChange};

    #[test]
    fn each_preset_is_its_own_layout() {
        let presets = [Tuning::Balanced, Tuning::ReadHeavy, Tuning::WriteHeavy];
        let layouts = presets.map(Tuning::layout);
        assert_ne!(layouts[0], layouts[1]);
        assert_ne!(layouts[0], layouts[2]);
        assert_ne!(layouts[1], layouts[2]);
        assert_eq!(layouts[1].lock, LockKind::PerReader);
        for tuning in presets {
            let store = Store::builder().tuning(tuning).build();
            assert_eq!(store.stats().shards, tuning.layout().shards);
            assert_eq!(store.tuning(), tuning);
        }
    }

    #[test]
    fn a_listing_applies_the_pending_writes_first_under_either_lock() {
        for tuning in [Tuning::Balanced, Tuning::ReadHeavy] {
            let store = Store::builder().tuning(tuning).shards(1).build();
            for i in (0..100).rev() {
                store
                    .create(&format!("k{i:03}"), "v", None)
                    .expect("create");
            }
            store.remove("k050").expect("remove");
            let page = store.list("k", None, 1000);
            let listed: Vec<&str> = page.entries.iter().map(|e| e.key()).collect();
            let expected: Vec<String> = (0..100)
                .filter(|&i| i != 50)
                .map(|i| format!("k{i:03}"))
                .collect();
            assert_eq!(listed, expected, "{}", tuning.name());
        }
    }

    #[test]
    fn with_a_memory_bound_removed_records_wait_for_the_index_within_a_64th_of_it() {
        // In tests a shard keeps up to 64 bytes of removed records
        // (GONE_BYTES) and settles at 3 pending writes; a bound of 64 * 32
        // bytes on one shard lowers the 64 to 32.
        let bounded = Store::builder().shards(1).max_memory(64 * 32).build();
        let unbounded = Store::builder().shards(1).build();
        let settled = |store: &Store| store.inner().shards[0].read(|t| t.order.is_settled());
        for store in [&bounded, &unbounded] {
            for key in ["k0", "k1", "k2"] {
                store.create(key, [0u8; 15], None).expect("create");
            }
            assert!(settled(store), "three creates settle");
            // Two records of 17 key and value bytes each: 34 bytes.
            store.remove("k0").expect("remove");
            store.remove("k1").expect("remove");
        }
        assert!(settled(&bounded), "34 bytes are over a 64th of the bound");
        assert!(!settled(&unbounded), "34 bytes wait without a bound");
    }

    #[test]
    fn the_per_reader_lock_serves_readers_on_many_threads_and_writers_between_them() {
        let store = Store::builder().tuning(Tuning::ReadHeavy).shards(1).build();
        store.upsert("k", "0", TtlChange::Keep).expect("upsert");
        std::thread::scope(|scope| {
            // More readers than the lock has slots, so some share one.
            for _ in 0..12 {
                scope.spawn(|| {
                    for _ in 0..2_000 {
                        let entry = store.get("k").expect("get").expect("present");
                        let n: u32 = std::str::from_utf8(entry.value())
                            .expect("utf-8")
                            .parse()
                            .expect("a number");
                        assert!(n <= 500);
                    }
                });
            }
            scope.spawn(|| {
                for n in 1..=500u32 {
                    store
                        .upsert("k", n.to_string(), TtlChange::Keep)
                        .expect("upsert");
                }
            });
        });
        let last = store.get("k").expect("get").expect("present");
        assert_eq!(last.value(), b"500");
    }
}
