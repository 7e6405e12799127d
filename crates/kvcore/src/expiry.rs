//! Deadlines: how a TTL becomes one, how a write changes one, and the
//! background pass that reclaims the memory of keys nobody reads again.
//!
//! Expiry is exact without the pass: every operation compares a record's
//! deadline with the clock and treats an expired record as absent (the lazy
//! check). The pass only gives memory back.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::background::Threads;
use crate::entry::{NO_DEADLINE, Record};
use crate::error::{Error, Result};
use crate::shard::Shard;
use crate::store::Inner;

/// The longest TTL accepted: 10 years of 365.25 days.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 36525 * 24 * 60 * 60 / 100);

/// The shortest TTL accepted.
pub const MIN_TTL: Duration = Duration::from_millis(1);

/// What a write does to the key's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TtlChange {
    /// Keep the current deadline (none if the key is new). An update never
    /// silently drops a TTL.
    #[default]
    Keep,
    /// Expire this long after the write.
    Set(Duration),
    /// Remove the deadline: the key lives until removed.
    Persist,
}

/// Checks a TTL and turns it into an absolute deadline.
pub(crate) fn deadline_after(now_ms: u64, ttl: Duration) -> Result<u64> {
    if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
        return Err(Error::InvalidTtl { ttl });
    }
    // Sub-millisecond parts are dropped: the store keeps millisecond deadlines.
    Ok(now_ms.saturating_add(ttl.as_millis() as u64))
}

/// The deadline a write leaves behind, given the one it replaces.
pub(crate) fn resolve(change: TtlChange, set_to: u64, current: u64) -> u64 {
    match change {
        TtlChange::Keep => current,
        TtlChange::Set(_) => set_to,
        TtlChange::Persist => NO_DEADLINE,
    }
}

/// When and how hard the store reclaims expired keys in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveExpiry {
    /// A background thread wakes every `interval` and spends at most a tenth
    /// of it reclaiming, so it uses at most 10% of one core. It stops when the
    /// last `Store` handle is dropped.
    Background {
        /// Time between two passes.
        interval: Duration,
    },
    /// No thread: call [`Store::reclaim_expired`](crate::Store::reclaim_expired)
    /// yourself. Expired keys are still invisible, only their memory lingers.
    Manual,
}

impl Default for ActiveExpiry {
    /// A pass every 100 ms.
    fn default() -> ActiveExpiry {
        ActiveExpiry::Background {
            interval: Duration::from_millis(100),
        }
    }
}

/// Runs the background pass until the store is closed.
pub(crate) fn spawn_reclaimer(store: &Arc<Inner>, threads: &Threads, interval: Duration) {
    let budget = interval / 10;
    // Without the thread the store still answers correctly (expiry is
    // checked on every access); only memory reclaim falls back to the lazy
    // path.
    threads.spawn_periodic("kvcore-reclaim", interval, store.clone(), move |store| {
        store.reclaim_expired_for(Instant::now() + budget);
    });
}

/// The reclaim pass over the store's shards.
impl Inner {
    pub(crate) fn count_reclaimed(&self, n: usize) {
        if n > 0 {
            self.expired_reclaimed
                .fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    pub(crate) fn reclaim_shard(&self, shard: &Shard, now_ms: u64) -> usize {
        let (reclaimed, freed, expiries) = shard.write(|t| {
            if !t.may_have_expired(now_ms) {
                return (0, 0, Vec::new());
            }
            // A watched store numbers each expiry under the lock, like a
            // write (a second look at the records, only when watched).
            let expiries: Vec<(u64, Record)> = match self.feed.is_active() {
                true => t
                    .iter()
                    .filter(|r| r.is_expired(now_ms))
                    .filter_map(|r| Some((self.number_expiry(r.key())?, r.clone())))
                    .collect(),
                false => Vec::new(),
            };
            let (reclaimed, freed) = t.reclaim_expired(now_ms, |r| self.hash(r.key()));
            (reclaimed, freed, expiries)
        });
        self.memory.release(freed);
        for (revision, record) in expiries {
            let key = std::str::from_utf8(record.key()).unwrap_or_default();
            self.publish_expiry(revision, key);
        }
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
