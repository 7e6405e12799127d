//! Prefix listing in byte order, a page at a time.
//!
//! Each shard keeps its keys in order (see `ordered`), so a page merges the
//! next few keys of every shard instead of scanning the store. A shard is
//! read in batches, each under that shard's read lock alone, taken and
//! released on its own: a writer waits for at most one batch of one shard
//! (and, when writes to the shard's index are pending, for one settle of
//! them, see `ordered/pending.rs`).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::ops::Bound;

use crate::clock::Clock;
use crate::entry::{Entry, Record};
use crate::shard::Shard;

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page {
    /// The entries, in byte order of their keys.
    pub entries: Vec<Entry>,
    /// Pass this as `after` to get the next page; `None` when the listing is
    /// complete.
    pub next: Option<String>,
}

/// Fewest records a batch reads from a shard: below this, a small page
/// would pay for a lock and a search per record.
const MIN_BATCH: usize = 8;

/// A batch goes through at most this many times its size in records, live
/// or expired.
const SCAN_FACTOR: usize = 4;

/// Most records a batch reads: bounds how long a shard's lock is held (and
/// how much a caller asking for "everything" reads ahead).
const MAX_BATCH: usize = 1024;

/// The page of at most `limit` (at least 1) live keys that start with
/// `prefix` and come after `after`, merged from every shard.
pub(crate) fn page(
    shards: &[Shard],
    clock: &dyn Clock,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Page {
    let prefix = prefix.as_bytes();
    // Where the listing starts: just after the cursor, or at the prefix if
    // the cursor sorts before every key with the prefix.
    let start = match after.map(str::as_bytes) {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    };
    // Keys are spread evenly over shards by their hash: a fair share of the
    // page from each, with room for the unevenness, usually takes one batch.
    let batch = (limit.div_ceil(shards.len()).saturating_mul(2)).clamp(MIN_BATCH, MAX_BATCH);
    let mut cursors: Vec<Cursor> = Vec::with_capacity(shards.len());
    let mut heads = BinaryHeap::with_capacity(shards.len());
    for (index, shard) in shards.iter().enumerate() {
        let mut cursor = Cursor::read(shard, clock, prefix, start, batch);
        if let Some(head) = cursor.head(index, shard, clock, prefix) {
            heads.push(head);
        }
        cursors.push(cursor);
    }
    let mut entries = Vec::with_capacity(limit.min(MAX_BATCH));
    while entries.len() < limit {
        let Some(Reverse(head)) = heads.pop() else {
            break;
        };
        let cursor = &mut cursors[head.shard];
        let now = cursor.now_ms;
        if let Some(next) = cursor.head(head.shard, &shards[head.shard], clock, prefix) {
            heads.push(next);
        }
        entries.push(Entry::new(head.record, now));
    }
    // Another page follows if some shard still has a matching key.
    let next = match heads.is_empty() {
        true => None,
        false => entries.last().map(|e| e.key().to_owned()),
    };
    Page { entries, next }
}

/// The records read from one shard and not yet merged.
struct Cursor {
    records: std::vec::IntoIter<Record>,
    /// The clock as read under the shard's lock, when `records` were read.
    now_ms: u64,
    /// The last record the read went through (taken, or skipped as expired),
    /// when the shard may hold more matching keys after it; `None` when the
    /// read reached the end of the prefix.
    resume: Option<Record>,
    /// The size of the next batch.
    batch: usize,
}

impl Cursor {
    /// Reads up to `batch` live records from `start` on whose keys start
    /// with `prefix`, under the shard's read lock. It goes through at most
    /// [`SCAN_FACTOR`] times `batch` records, so that a run of expired keys
    /// not yet reclaimed cannot hold the lock for long.
    fn read(
        shard: &Shard,
        clock: &dyn Clock,
        prefix: &[u8],
        start: Bound<&[u8]>,
        batch: usize,
    ) -> Cursor {
        shard.read_ordered(|table| {
            // The clock is read under the lock, as a write reads it under
            // its own: a key is judged expired at an instant it was held.
            let now_ms = clock.now_ms();
            let mut records = Vec::with_capacity(batch);
            let mut resume = None;
            let mut last: Option<&Record> = None;
            // Keys with the prefix are contiguous in byte order, and `start`
            // is at or after the first of them: stop at the first without.
            let matching = table
                .range_from(start)
                .take_while(|r| r.key().starts_with(prefix));
            for (scanned, record) in matching.enumerate() {
                if records.len() == batch || scanned == batch * SCAN_FACTOR {
                    resume = last.cloned();
                    break;
                }
                last = Some(record);
                if !record.is_expired(now_ms) {
                    // Bumps a reference count; no bytes are copied under the
                    // lock.
                    records.push(record.clone());
                }
            }
            Cursor {
                records: records.into_iter(),
                now_ms,
                resume,
                batch: MAX_BATCH.min(batch * 2),
            }
        })
    }

    /// The next record of this cursor, ready for the merge heap. When the
    /// batch is used up and the shard may have more, reads on from where the
    /// last read stopped, at a new instant of that shard.
    fn head(
        &mut self,
        index: usize,
        shard: &Shard,
        clock: &dyn Clock,
        prefix: &[u8],
    ) -> Option<Reverse<Head>> {
        loop {
            if let Some(record) = self.records.next() {
                return Some(Reverse(Head {
                    record,
                    shard: index,
                }));
            }
            let from = self.resume.take()?;
            *self = Cursor::read(
                shard,
                clock,
                prefix,
                Bound::Excluded(from.key()),
                self.batch,
            );
        }
    }
}

/// A shard's smallest unmerged record; ordered by key for the merge.
struct Head {
    record: Record,
    shard: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Head) -> bool {
        self.record.key() == other.record.key()
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Head) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Head) -> Ordering {
        self.record.key().cmp(other.record.key())
    }
}
