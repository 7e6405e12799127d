//! One lock-guarded slice of the key space, and the tuning that decides how
//! many there are and which lock guards them.

use hashbrown::HashTable;
use parking_lot::{Mutex, RwLock};

use crate::entry::{NO_DEADLINE, Record};

/// How the store is laid out for its workload. Each preset is backed by the
/// `tuning` benchmark on its own mix (see BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Tuning {
    /// A middle ground for mixed or unknown workloads.
    #[default]
    Balanced,
    /// Mostly reads (say 95% gets): readers share a shard.
    ReadHeavy,
    /// Many writes (say half the operations): cheaper exclusive locking.
    WriteHeavy,
}

/// Which lock guards a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockKind {
    /// `parking_lot::RwLock`: concurrent readers, exclusive writers.
    ReadWrite,
    /// `parking_lot::Mutex`: everyone exclusive, but each acquisition is cheaper.
    Exclusive,
}

/// The concrete layout a [`Tuning`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) shards: usize,
    pub(crate) lock: LockKind,
}

impl Tuning {
    pub(crate) fn layout(self) -> Layout {
        match self {
            Tuning::Balanced => Layout {
                shards: 64,
                lock: LockKind::ReadWrite,
            },
            Tuning::ReadHeavy => Layout {
                shards: 64,
                lock: LockKind::ReadWrite,
            },
            Tuning::WriteHeavy => Layout {
                shards: 256,
                lock: LockKind::Exclusive,
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

/// A shard: a hash table behind the lock its layout chose.
pub(crate) enum Shard {
    ReadWrite(RwLock<Table>),
    Exclusive(Mutex<Table>),
}

impl Shard {
    pub(crate) fn new(lock: LockKind) -> Shard {
        match lock {
            LockKind::ReadWrite => Shard::ReadWrite(RwLock::new(Table::default())),
            LockKind::Exclusive => Shard::Exclusive(Mutex::new(Table::default())),
        }
    }

    /// Runs `f` with shared access. The guard never leaves this function, so
    /// no caller can hold a shard locked.
    #[inline]
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Table) -> R) -> R {
        match self {
            Shard::ReadWrite(lock) => f(&lock.read()),
            Shard::Exclusive(lock) => f(&lock.lock()),
        }
    }

    /// Runs `f` with exclusive access.
    #[inline]
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut Table) -> R) -> R {
        match self {
            Shard::ReadWrite(lock) => f(&mut lock.write()),
            Shard::Exclusive(lock) => f(&mut lock.lock()),
        }
    }
}

/// The records of one shard, found by hash and key bytes.
pub(crate) struct Table {
    records: HashTable<Record>,
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

    /// Inserts or replaces the record for its key; returns the one replaced.
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
            hashbrown::hash_table::Entry::Occupied(mut slot) => {
                Some(std::mem::replace(slot.get_mut(), record))
            }
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert(record);
                None
            }
        }
    }

    pub(crate) fn remove(&mut self, hash: u64, key: &[u8]) -> Option<Record> {
        let slot = self.records.find_entry(hash, |r| r.key() == key).ok()?;
        Some(slot.remove().0)
    }

    /// Removes `record` if it is still the one stored for its key.
    pub(crate) fn remove_exact(&mut self, hash: u64, record: &Record) -> bool {
        match self.records.find_entry(hash, |r| r.same_as(record)) {
            Ok(slot) => {
                slot.remove();
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
        self.records.retain(|r| {
            if r.is_expired(now_ms) {
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

    /// Visits every record.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Record> {
        self.records.iter()
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
            earliest_deadline: u64::MAX,
        }
    }
}
