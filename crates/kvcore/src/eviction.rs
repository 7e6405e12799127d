//! Making room under the memory bound: what a write that does not fit does,
//! for each [`Eviction`] policy.
//!
//! Every policy first reclaims expired keys, which are gone already. Then
//! `reject` fails the write; `evict-lru` and `evict-ttl` remove live keys
//! until the write fits. An eviction removes a key through
//! [`Inner::remove_logged`], the path a delete takes: it takes a revision
//! and a durable store logs it as a removal, so a restart never brings the
//! key back.
//!
//! Room is made with no lock held; each eviction takes one shard's write
//! lock, like a delete. A write that still does not fit (a concurrent
//! writer took the room) makes room again, up to [`MAX_ATTEMPTS`] times.

use std::cell::Cell;
use std::hash::BuildHasher;

use parking_lot::Mutex;

use crate::entry::{NO_DEADLINE, Record};
use crate::error::{Error, Result};
use crate::memory::Eviction;
use crate::store::Inner;
use crate::watch::{Event, EventKind};

/// How many times one write makes room before it gives up with
/// [`Error::MemoryFull`].
pub(crate) const MAX_ATTEMPTS: u32 = 16;

/// Rounds one call to make room may run, whatever concurrent writers do;
/// the write then tries again (see [`MAX_ATTEMPTS`]).
const MAX_ROUNDS: usize = 1 << 20;

/// Keys sampled per eviction (Redis's `maxmemory-samples` default).
const SAMPLES: usize = 5;

/// The best candidates kept between evictions (Redis's eviction pool size).
const POOL: usize = 16;

/// An eviction candidate, found again by hash and address; `stamp` is its
/// LRU stamp when sampled, so a key used since is not evicted on old news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Candidate {
    shard: usize,
    hash: u64,
    addr: usize,
    stamp: u32,
}

/// The oldest keys sampled so far, oldest last. A candidate holds no
/// reference to its record, so a pooled key that is removed is freed at
/// once; a stale candidate is skipped when it comes up.
#[derive(Debug, Default)]
pub(crate) struct Pool(Mutex<Vec<Candidate>>);

impl Inner {
    /// Makes room for `needed` more bytes, as the policy says; fails with
    /// [`Error::MemoryFull`] when it cannot (or `attempt` is over
    /// [`MAX_ATTEMPTS`]). A write that lost the room it made to concurrent
    /// writers makes more the next time: twice as much per attempt, up to 16
    /// times `needed`, so that it is not outrun attempt after attempt.
    // Cold and out of line: a write that fits never comes here, and the
    // eviction loops inlined into the write path made every write slower.
    #[cold]
    #[inline(never)]
    pub(crate) fn make_room(&self, needed: u64, attempt: u32) -> Result<()> {
        let bound = self.memory.bound().unwrap_or(u64::MAX);
        let full = || self.memory.full(needed);
        if needed > bound || attempt > MAX_ATTEMPTS {
            return Err(full());
        }
        let room = (needed << (attempt.max(1) - 1).min(4)).min(bound);
        let now = self.clock.now_ms();
        for shard in self.shards.iter() {
            if shard.read(|t| t.may_have_expired(now)) {
                self.reclaim_shard(shard, now);
            }
        }
        // The watch history's oldest events give way before any key.
        self.feed.shed(&self.memory, room);
        // Room made once counts even if a concurrent writer takes it before
        // this one tries again: the retry makes room again, up to
        // MAX_ATTEMPTS times. Only a policy that ran out of keys to evict
        // (or may evict none) refuses here.
        let made = self.memory.fits(room)
            || match self.memory.stats().eviction {
                Eviction::Reject => false,
                Eviction::EvictLru => self.evict_lru(room)?,
                Eviction::EvictTtl => self.evict_ttl(room)?,
            };
        match made || self.memory.fits(needed) {
            true => Ok(()),
            false => Err(full()),
        }
    }

    /// Evicts approximately least recently used keys until `needed` fits
    /// (true) or the store is empty (false). Each round samples [`SAMPLES`]
    /// neighbouring keys of a random shard from a random bucket, merges them
    /// into the pool, and evicts the pool's oldest.
    fn evict_lru(&self, needed: u64) -> Result<bool> {
        let shards = self.shards.len();
        let mut empty_rounds = 0;
        for _ in 0..MAX_ROUNDS {
            if self.memory.fits(needed) {
                return Ok(true);
            }
            let index = random() as usize % shards;
            let mut sampled = [None; SAMPLES];
            let mut n = 0;
            self.shards[index].read(|t| {
                t.sample(random() as usize, SAMPLES, |r| {
                    sampled[n] = Some(Candidate {
                        shard: index,
                        hash: self.hash(r.key()),
                        addr: r.addr(),
                        stamp: r.accessed(),
                    });
                    n += 1;
                })
            });
            let oldest = {
                let mut pool = self.memory.pool().0.lock();
                for candidate in sampled.into_iter().flatten() {
                    if !pool.iter().any(|c| c.addr == candidate.addr) {
                        pool.push(candidate);
                    }
                }
                // Youngest first, so the oldest pops off the end.
                pool.sort_by_key(|c| self.memory.age(c.stamp));
                let excess = pool.len().saturating_sub(POOL);
                pool.drain(..excess);
                pool.pop()
            };
            let Some(victim) = oldest else {
                // Only an empty store samples nothing, shard after shard.
                empty_rounds += 1;
                if empty_rounds > 2 * shards {
                    return Ok(false);
                }
                continue;
            };
            empty_rounds = 0;
            self.evict(victim.shard, victim.hash, victim.addr, |r| {
                r.accessed() == victim.stamp
            })?;
        }
        Ok(self.memory.fits(needed))
    }

    /// Evicts keys in deadline order, nearest first, until `needed` fits
    /// (true) or no key has a deadline (false). Picks the shard with the earliest deadline
    /// bound, sorts its keys by deadline and evicts them up to the next
    /// shard's bound, so the order holds across shards.
    fn evict_ttl(&self, needed: u64) -> Result<bool> {
        for _ in 0..MAX_ROUNDS {
            if self.memory.fits(needed) {
                return Ok(true);
            }
            let (mut first, mut first_deadline, mut second_deadline) = (None, u64::MAX, u64::MAX);
            for (index, shard) in self.shards.iter().enumerate() {
                let deadline = shard.read(|t| t.earliest_deadline());
                if deadline < first_deadline {
                    second_deadline = first_deadline;
                    (first, first_deadline) = (Some(index), deadline);
                } else if deadline < second_deadline {
                    second_deadline = deadline;
                }
            }
            let Some(index) = first else {
                return Ok(false);
            };
            let removed = self.shards[index].write(|t| {
                let mut timed: Vec<Record> = t
                    .iter()
                    .filter(|r| r.deadline_ms() != NO_DEADLINE)
                    .cloned()
                    .collect();
                timed.sort_unstable_by_key(Record::deadline_ms);
                let mut removed = Vec::new();
                let mut next = u64::MAX;
                for record in &timed {
                    if self.memory.fits(needed) || record.deadline_ms() > second_deadline {
                        next = record.deadline_ms();
                        break;
                    }
                    let hash = self.hash(record.key());
                    let (version, _, gone) = self.remove_logged(t, hash, record.key())?;
                    self.memory.count_evicted(1);
                    self.publish_eviction(version, record.key());
                    removed.extend(gone);
                }
                // Every record was seen: the bound is now exact.
                t.set_earliest_deadline(next);
                Ok::<_, Error>((removed, timed))
            })?;
            // Free the evicted records after the lock.
            drop(removed);
        }
        Ok(self.memory.fits(needed))
    }

    /// Evicts the record at `addr` in shard `shard` if it is still stored
    /// and `still` holds for it.
    fn evict(
        &self,
        shard: usize,
        hash: u64,
        addr: usize,
        still: impl FnOnce(&Record) -> bool,
    ) -> Result<()> {
        let removed = self.shards[shard].write(|t| {
            let Some(record) = t.find_exact(hash, addr).filter(|r| still(r)).cloned() else {
                return Ok(None);
            };
            let (version, _, removed) = self.remove_logged(t, hash, record.key())?;
            self.memory.count_evicted(1);
            self.publish_eviction(version, record.key());
            Ok::<_, Error>(removed)
        })?;
        // Freed after the lock.
        drop(removed);
        Ok(())
    }

    /// Tells watchers of an eviction, as a delete: the key is gone for good.
    /// Published under the shard lock (evictions are rare, and the feed must
    /// hear of every revision taken).
    fn publish_eviction(&self, revision: u64, key: &[u8]) {
        if self.feed.is_active() {
            let key = std::str::from_utf8(key).unwrap_or_default();
            self.feed.publish(
                revision,
                Some(Event::gone(revision, key, EventKind::Delete)),
                &self.memory,
            );
        }
    }
}

/// A per-thread xorshift generator: where to sample. Not shared, so
/// evicting threads write no common cache line for it.
fn random() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            std::collections::hash_map::RandomState::new().hash_one(0u8) | 1,
        );
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::{ActiveExpiry, Eviction, ManualClock, Store, TtlChange};

    /// The counter must always equal what the tables hold, whatever mix of
    /// creates, resizes, overwrites, removals, expiries and evictions ran.
    #[test]
    fn the_counter_matches_what_the_tables_hold_after_every_kind_of_change() {
        for (bound, policy) in [
            (None, Eviction::Reject),
            (Some(40_000), Eviction::Reject),
            (Some(40_000), Eviction::EvictLru),
            (Some(40_000), Eviction::EvictTtl),
        ] {
            let clock = Arc::new(ManualClock::new(1_000_000));
            let mut builder = Store::builder()
                .clock(clock.clone())
                .active_expiry(ActiveExpiry::Manual)
                .eviction(policy);
            if let Some(bound) = bound {
                builder = builder.max_memory(bound);
            }
            let store = builder.build();
            let mut x = 88172645463325252u64;
            for i in 0..4000u64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let key = format!("k{}", x % 500);
                let len = (x >> 20) as usize % 300;
                let ttl = match (x >> 40) % 3 {
                    0 => TtlChange::Set(Duration::from_millis(1 + (x >> 50) % 50)),
                    1 => TtlChange::Persist,
                    _ => TtlChange::Keep,
                };
                let _ = match (x >> 8) % 5 {
                    0 => store.remove(&key).map(drop),
                    1 => store.get(&key).map(drop),
                    _ => store.upsert(&key, vec![1u8; len], ttl).map(drop),
                };
                if i % 97 == 0 {
                    clock.advance(7);
                }
                if i % 501 == 0 {
                    store.reclaim_expired();
                }
                let inner = store.inner();
                let held: u64 = inner
                    .shards
                    .iter()
                    .map(|s| s.read(|t| t.held_bytes()))
                    .sum();
                assert_eq!(
                    inner.memory.used(),
                    held,
                    "{policy:?} {bound:?} after op {i}"
                );
                if let Some(bound) = bound {
                    assert!(held <= bound);
                }
            }
        }
    }
}
