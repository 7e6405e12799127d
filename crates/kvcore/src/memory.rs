//! The memory bound: what the store counts as held, the [`Eviction`]
//! policy, and the counter every write reserves its bytes from.
//!
//! # What is counted
//!
//! The bytes the allocator hands out for the store's own structures, as
//! glibc's malloc rounds them (the `memory` bench checks the total against
//! the process's resident set):
//!
//! - each record: one allocation of refcount (8) + header (24) + slice
//!   length (8) + key + value bytes, padded to 8, plus malloc's 8-byte chunk
//!   header, rounded up to 16 with a 32-byte minimum (16-byte key and value:
//!   80 bytes). Allocations of 128 KiB and more are counted as whole pages,
//!   as when malloc maps them.
//! - each key's entry in its shard's ordered index (the listing order):
//!   16 bytes a key, for an 8-byte record reference and a 4-byte hint in
//!   blocks kept between half full and full, and the buffers of writes
//!   waiting to reach the blocks (13.5 bytes measured at 1M keys).
//! - each shard's hash table: its bucket array (8 bytes a bucket), one
//!   control byte a bucket plus 16, rounded like any allocation. A table
//!   keeps its buckets after keys are removed, so they stay counted until
//!   the reclaim pass shrinks it.
//! - each event the watch history keeps: its own copy of the key and value
//!   (an allocation like a record's) and its slot. The history gives way
//!   first: a write that does not fit drops the oldest events already
//!   handed to watchers before any key is evicted or the write refused, and
//!   an event that takes the store over its bound (it is counted after its
//!   write, so it cannot be refused) drops older ones at once.
//!
//! Not counted: the moment a reclaim pass shrinks a mostly empty table,
//! when the smaller table is allocated before the larger one is freed; the
//! fixed cost of a store (the shards, ~10 KiB, and the
//! background threads' stacks), a record that a reader still holds after
//! it was removed or replaced (it is freed when the reader drops it), events
//! a watcher holds in its buffer after the history dropped them (at most its
//! `watch_buffer` events), and, for a durable store, the log's write buffer.
//!
//! # How the bound holds
//!
//! A write reserves the bytes it adds before it inserts anything, under its
//! shard's lock: its record, minus the record it replaces, plus (for a new
//! key in a full table) the whole new table the insert will allocate, since
//! old and new table briefly coexist. The reservation is one
//! compare-and-swap on a store-wide counter that never passes the bound, so
//! concurrent writers cannot exceed it together. What was reserved but not
//! used (a table that rehashed in place) is given back at once.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::eviction::Pool;

/// The memory figures of [`Stats`](crate::Stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryStats {
    /// Bytes the store holds by its own accounting (see
    /// [`StoreBuilder::max_memory`](crate::StoreBuilder::max_memory)).
    pub used: u64,
    /// The bound; `None` without one.
    pub bound: Option<u64>,
    /// What a write that does not fit does.
    pub eviction: Eviction,
    /// Keys evicted since the store opened.
    pub evicted: u64,
}

/// What a store with a memory bound does with a write that does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Eviction {
    /// Refuse the write with [`Error::MemoryFull`](crate::Error::MemoryFull);
    /// reads and removals keep working, and a removal makes room.
    #[default]
    Reject,
    /// Remove the least recently used keys (read or written), approximately:
    /// each eviction samples a few keys and keeps the 16 oldest seen in a
    /// pool, as Redis's `allkeys-lru` does.
    EvictLru,
    /// Remove the keys with the nearest deadline first. Keys without a
    /// deadline are never evicted: when no key has one, the write is refused
    /// as with [`Eviction::Reject`] (Redis's `volatile-ttl` does the same).
    EvictTtl,
}

impl Eviction {
    /// The name used in configuration and reports (`evict-lru`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Eviction::Reject => "reject",
            Eviction::EvictLru => "evict-lru",
            Eviction::EvictTtl => "evict-ttl",
        }
    }
}

impl std::str::FromStr for Eviction {
    type Err = String;

    fn from_str(name: &str) -> Result<Eviction, String> {
        match name {
            "reject" => Ok(Eviction::Reject),
            "evict-lru" => Ok(Eviction::EvictLru),
            "evict-ttl" => Ok(Eviction::EvictTtl),
            other => Err(format!(
                "unknown eviction policy {other:?}: expected reject, evict-lru or evict-ttl"
            )),
        }
    }
}

/// The LRU clock moves once every this many revisions. Writers publish it
/// (one store in 64 writes), so that readers, who compare it with a record's
/// stamp, find its cache line unchanged almost always.
const CLOCK_SHIFT: u32 = 6;

/// The store's memory figures: the counter writes reserve from, the bound,
/// the policy and the LRU clock.
pub(crate) struct Memory {
    /// Bytes held by the store's own accounting (see the module docs).
    /// Alone on its cache lines: writes that change a size update it.
    used: Used,
    bound: Option<u64>,
    policy: Eviction,
    /// True when reads and writes must stamp records (`evict-lru` with a
    /// bound): the one thing the read path looks at.
    lru: bool,
    /// The LRU clock (revision >> [`CLOCK_SHIFT`]).
    clock: AtomicU32,
    /// What evicting threads write, on lines of its own so that readers
    /// looking at `lru` and `clock` do not miss on every eviction.
    evictions: Evictions,
}

#[repr(align(128))]
struct Used(AtomicU64);

#[repr(align(128))]
struct Evictions {
    /// Keys evicted since the store opened.
    evicted: AtomicU64,
    /// `evict-lru`'s candidates (see `eviction.rs`).
    pool: Pool,
}

/// The write does not fit under the bound: it needs `needed` more bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoRoom {
    pub(crate) needed: u64,
}

impl Memory {
    pub(crate) fn new(bound: Option<u64>, policy: Eviction) -> Memory {
        Memory {
            used: Used(AtomicU64::new(0)),
            bound,
            policy,
            lru: bound.is_some() && policy == Eviction::EvictLru,
            clock: AtomicU32::new(0),
            evictions: Evictions {
                evicted: AtomicU64::new(0),
                pool: Pool::default(),
            },
        }
    }

    pub(crate) fn stats(&self) -> MemoryStats {
        MemoryStats {
            used: self.used(),
            bound: self.bound,
            eviction: self.policy,
            evicted: self.evicted(),
        }
    }

    pub(crate) fn used(&self) -> u64 {
        self.used.0.load(Ordering::Relaxed)
    }

    pub(crate) fn bound(&self) -> Option<u64> {
        self.bound
    }

    pub(crate) fn evicted(&self) -> u64 {
        self.evictions.evicted.load(Ordering::Relaxed)
    }

    pub(crate) fn count_evicted(&self, keys: u64) {
        self.evictions.evicted.fetch_add(keys, Ordering::Relaxed);
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.evictions.pool
    }

    /// Whether `bytes` more would fit right now.
    pub(crate) fn fits(&self, bytes: u64) -> bool {
        self.bound
            .is_none_or(|bound| self.used().saturating_add(bytes) <= bound)
    }

    /// Adds `bytes` to what is held, unless that would pass the bound.
    #[inline]
    pub(crate) fn reserve(&self, bytes: u64) -> Result<(), NoRoom> {
        if bytes == 0 {
            return Ok(());
        }
        let Some(bound) = self.bound else {
            self.used.0.fetch_add(bytes, Ordering::Relaxed);
            return Ok(());
        };
        self.used
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&total| total <= bound)
            })
            .map(drop)
            .map_err(|_| NoRoom { needed: bytes })
    }

    /// Adds `bytes` to what is held even past the bound: for what cannot be
    /// refused (an event of a write already made), which gives way at once
    /// while nothing more fits (`!fits(0)`: the store is over its bound).
    #[inline]
    pub(crate) fn charge(&self, bytes: u64) {
        self.used.0.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Takes `bytes` off what is held.
    #[inline]
    pub(crate) fn release(&self, bytes: u64) {
        if bytes > 0 {
            self.used.0.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Settles a write: it reserved `reserved` bytes, then really added
    /// `added` and freed `freed` (`added - freed` is never more than
    /// `reserved`); gives back the difference.
    #[inline]
    pub(crate) fn settle(&self, reserved: u64, added: u64, freed: u64) {
        self.release((reserved + freed).saturating_sub(added));
    }

    /// The error for a write that needs `needed` bytes more than fit.
    #[cold]
    pub(crate) fn full(&self, needed: u64) -> crate::Error {
        crate::Error::MemoryFull {
            needed,
            used: self.used(),
            bound: self.bound.unwrap_or(u64::MAX),
        }
    }

    /// Sets the count outright (after a durable store replayed its files).
    pub(crate) fn set_used(&self, bytes: u64) {
        self.used.0.store(bytes, Ordering::Relaxed);
    }

    /// The LRU clock to stamp an access with, when records are stamped.
    #[inline]
    pub(crate) fn lru_clock(&self) -> Option<u32> {
        self.lru.then(|| self.clock.load(Ordering::Relaxed))
    }

    /// Moves the LRU clock along with the revisions; called with each
    /// revision a write takes.
    #[inline]
    pub(crate) fn advance(&self, revision: u64) {
        if self.lru && revision.trailing_zeros() >= CLOCK_SHIFT {
            self.clock
                .store((revision >> CLOCK_SHIFT) as u32, Ordering::Relaxed);
        }
    }

    /// How long ago, in clock ticks, a record stamped `stamp` was used.
    /// Wrapping: a key idle for 2^32 ticks (2^38 writes) looks fresh again.
    pub(crate) fn age(&self, stamp: u32) -> u32 {
        self.clock.load(Ordering::Relaxed).wrapping_sub(stamp)
    }
}

/// Allocations this large are counted as whole pages (glibc maps them).
const MMAP_THRESHOLD: u64 = 128 * 1024;
const PAGE: u64 = 4096;

/// The bytes malloc takes for a request of `bytes`.
pub(crate) fn allocation(bytes: u64) -> u64 {
    if bytes >= MMAP_THRESHOLD {
        return (bytes + 16).div_ceil(PAGE) * PAGE;
    }
    ((bytes + 8).div_ceil(16) * 16).max(32)
}

/// Refcount, header and slice length in front of a record's bytes.
const RECORD_PREFIX: u64 = 40;

/// A key's share of its shard's ordered index (`ordered.rs`): an 8-byte
/// record reference and a 4-byte hint, in blocks kept between half full and
/// full (12 to 24 bytes a key), plus the buffers of pending writes (at most
/// 16 KiB a shard); 13.5 measured at 1M keys (BENCHMARKS.md).
const ORDER_ENTRY: u64 = 16;

/// The bytes an event of the watch history takes: its own record (a copy
/// of the key and, for a put, the value) and its slot in the history.
pub(crate) fn event_bytes(payload: usize) -> u64 {
    record_allocation(payload) + std::mem::size_of::<crate::watch::Event>() as u64
}

/// The bytes a key of `payload` key and value bytes takes: its record and
/// its entry in the ordered index.
pub(crate) fn record_bytes(payload: usize) -> u64 {
    record_allocation(payload) + ORDER_ENTRY
}

/// The bytes a record's own allocation takes.
fn record_allocation(payload: usize) -> u64 {
    allocation((RECORD_PREFIX + payload as u64).div_ceil(8) * 8)
}

/// The bytes a hash table of `buckets` buckets takes: an 8-byte slot and a
/// control byte each, plus a group (16) of trailing control bytes.
pub(crate) fn table_bytes(buckets: usize) -> u64 {
    match buckets {
        0 => 0,
        n => allocation(n as u64 * 9 + 16),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_record_takes_the_glibc_chunk_the_memory_bench_measured() {
        // 16-byte key + 16-byte value: 72 bytes asked, an 80-byte chunk.
        assert_eq!(record_allocation(32), 80);
        assert_eq!(record_allocation(0), 48);
        assert_eq!(record_allocation(33), 96);
        assert_eq!(record_allocation(1 << 20), (1 << 20) + PAGE);
        assert_eq!(record_bytes(32), 80 + ORDER_ENTRY);
    }

    #[test]
    fn the_bound_is_never_passed_and_a_release_makes_room() {
        let memory = Memory::new(Some(100), Eviction::Reject);
        assert_eq!(memory.reserve(60), Ok(()));
        assert_eq!(memory.reserve(41), Err(NoRoom { needed: 41 }));
        assert_eq!(memory.used(), 60);
        assert_eq!(memory.reserve(40), Ok(()));
        memory.release(50);
        assert!(memory.fits(50));
        assert!(!memory.fits(51));
    }

    #[test]
    fn the_clock_moves_every_64_revisions_and_only_under_lru() {
        let lru = Memory::new(Some(1), Eviction::EvictLru);
        lru.advance(63);
        assert_eq!(lru.lru_clock(), Some(0));
        lru.advance(128);
        assert_eq!(lru.lru_clock(), Some(2));
        assert_eq!(lru.age(1), 1);
        let unbounded = Memory::new(None, Eviction::EvictLru);
        unbounded.advance(128);
        assert_eq!(unbounded.lru_clock(), None);
    }

    #[test]
    fn policies_read_back_from_their_names() {
        for policy in [Eviction::Reject, Eviction::EvictLru, Eviction::EvictTtl] {
            assert_eq!(policy.name().parse::<Eviction>(), Ok(policy));
        }
        assert!("lru".parse::<Eviction>().is_err());
    }
}
