//! One lock-guarded slice of the key space, and the tuning that decides how
//! many there are.

use std::ops::Bound;

use hashbrown::HashTable;
use parking_lot::{RwLock, RwLockReadGuard};

use crate::entry::{NO_DEADLINE, Record};
use crate::ordered::Ordered;
use crate::record_ref::RecordRef;

/// How the store is laid out for its workload.
///
/// All three presets currently stand for the same layout: 64 shards, each a
/// `parking_lot::RwLock` around its table. The `throughput` benchmark (see
/// BENCHMARKS.md) found nothing in shard count (16 to 256) or lock kind
/// (reader-writer or exclusive) that made one mix faster at the expense of
/// the other on a 2-core machine: with keys spread evenly, two threads meet
/// on a shard about once in 64 operations, so neither fewer collisions nor
/// sharing a shard among readers shows. The names stay so that configuration
/// keeps working and a layout that does earn one can be given to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Tuning {
    /// A middle ground for mixed or unknown workloads.
    #[default]
    Balanced,
    /// Mostly reads (say 95% gets). Currently the same layout as `Balanced`.
    ReadHeavy,
    /// Many writes (say half the operations). Currently the same layout as
    /// `Balanced`.
    WriteHeavy,
}

/// The concrete layout a [`Tuning`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) shards: usize,
}

impl Tuning {
    pub(crate) fn layout(self) -> Layout {
        // Enough shards that threads rarely meet on one (two threads: 1 in
        // 64 operations) while a scan of every shard (len, list, the reclaim
        // pass) stays cheap.
        match self {
            Tuning::Balanced | Tuning::ReadHeavy | Tuning::WriteHeavy => Layout { shards: 64 },
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

/// A shard: a hash table behind a reader-writer lock.
///
/// A reader-writer lock rather than a mutex: uncontended, the two cost the
/// same (callgrind: 9 instructions a get apart), and readers that do meet on
/// a shard, or meet a `list` or reclaim scan holding it, need not queue.
///
/// Aligned to 128 bytes (two cache lines, the unit the adjacent-line
/// prefetcher moves) so that threads locking neighbouring shards do not
/// write to one line.
#[repr(align(128))]
pub(crate) struct Shard(RwLock<Table>);

impl Shard {
    pub(crate) fn new() -> Shard {
        Shard(RwLock::new(Table::default()))
    }

    /// Runs `f` with shared access. The guard never leaves this function, so
    /// no caller can hold a shard locked.
    #[inline]
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Table) -> R) -> R {
        f(&self.0.read())
    }

    /// Runs `f` with exclusive access.
    #[inline]
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut Table) -> R) -> R {
        f(&mut self.0.write())
    }
}

/// Runs `f` with shared access to every shard at once, so that it sees the
/// whole store at one instant (what makes `len` linearizable; `f` should be
/// short: writers wait while it runs).
/// The shards are locked in order and all held until `f` returns; no other
/// operation holds more than one shard, so this cannot deadlock. Writers
/// wait while `f` runs.
pub(crate) fn read_all<R>(shards: &[Shard], f: impl FnOnce(&[&Table]) -> R) -> R {
    let guards: Vec<RwLockReadGuard<'_, Table>> = shards.iter().map(|s| s.0.read()).collect();
    let tables: Vec<&Table> = guards.iter().map(|guard| &**guard).collect();
    f(&tables)
}

/// The records of one shard, found by hash and key bytes, and in byte order
/// of their keys.
///
/// The ordered index holds uncounted references to the records the hash
/// table owns (see `record_ref`): every method that takes a record out of
/// the table takes its reference out of the index in the same call, so a
/// reference never outlives its record.
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
    #[allow(unsafe_code)]
    pub(crate) fn put(
        &mut self,
        hash: u64,
        record: Record,
        rehash: impl Fn(&Record) -> u64,
    ) -> Option<Record> {
        self.note_deadline(record.deadline_ms());
        match self
            .records
            .entry(hash, |r| r.key() == record.key(), rehash)
        {
            // SAFETY (both arms): the record goes into the table here, and
            // the table drops its reference from the index whenever it lets
            // the record go (`put` replacing it, `remove`, `remove_exact`,
            // `reclaim_expired`), so the reference is never read after.
            hashbrown::hash_table::Entry::Occupied(mut slot) => {
                self.order
                    .replace(slot.get(), unsafe { RecordRef::new(&record) });
                Some(std::mem::replace(slot.get_mut(), record))
            }
            hashbrown::hash_table::Entry::Vacant(slot) => {
                self.order.insert(unsafe { RecordRef::new(&record) });
                slot.insert(record);
                None
            }
        }
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
        match self
            .records
            .entry(hash, |r| r.key() == record.key(), rehash)
        {
            hashbrown::hash_table::Entry::Occupied(mut slot) => {
                Some(std::mem::replace(slot.get_mut(), record))
            }
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert(record);
                None
            }
        }
    }

    /// Builds the ordered index afresh from the records the table holds.
    #[allow(unsafe_code)]
    pub(crate) fn rebuild_order(&mut self) {
        // SAFETY: each reference is of a record the table holds; from here
        // on the table drops a record's reference whenever it lets the
        // record go (see `put`). The old index is dropped first; dropping
        // references never drops records.
        self.order = Ordered::new();
        let refs = self
            .records
            .iter()
            .map(|r| unsafe { RecordRef::new(r) })
            .collect();
        self.order = Ordered::from_unordered(refs);
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

    /// Drops every expired record and returns how many; gives table memory
    /// back when the table has become mostly empty.
    pub(crate) fn reclaim_expired(
        &mut self,
        now_ms: u64,
        rehash: impl Fn(&Record) -> u64,
    ) -> usize {
        let before = self.records.len();
        let mut earliest = u64::MAX;
        let order = &mut self.order;
        self.records.retain(|r| {
            if r.is_expired(now_ms) {
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
        before - self.records.len()
    }

    /// Visits every record, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Record> {
        self.records.iter()
    }

    /// Visits the records from `start` on, in byte order of their keys
    /// (expired ones included). Costs a search of the index, then one step
    /// a record.
    pub(crate) fn range_from(&self, start: Bound<&[u8]>) -> impl Iterator<Item = &Record> {
        self.order.range_from(start).map(RecordRef::record)
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
        let mut records: Vec<&Record> = self.records.iter().collect();
        records.sort_by(|a, b| a.key().cmp(b.key()));
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
