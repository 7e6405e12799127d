//! Prefix listing in byte order, a page at a time.
//!
//! Each shard keeps its keys in order (see `ordered`), so a page merges the
//! next few keys of every shard instead of scanning the store. A shard is
//! read in batches, each under that shard's read lock alone, taken and
//! released on its own: a writer waits for at most one batch of one shard.

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
        if let Some(head) = cursor.head(index) {
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
        let mut next = cursor.head(head.shard);
        if next.is_none() && !cursor.done {
            // This shard's batch is used up, but it has more: read on from
            // the key just taken, at a new instant of this shard.
            let from = Bound::Excluded(head.record.key());
            *cursor = Cursor::read(
                &shards[head.shard],
                clock,
                prefix,
                from,
                MAX_BATCH.min(batch * 2),
            );
            next = cursor.head(head.shard);
        }
        if let Some(next) = next {
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
    /// True when the shard had no further matching live key at that instant.
    done: bool,
}

impl Cursor {
    /// Reads up to `batch` live records from `start` on whose keys start
    /// with `prefix`, under the shard's read lock.
    fn read(
        shard: &Shard,
        clock: &dyn Clock,
        prefix: &[u8],
        start: Bound<&[u8]>,
        batch: usize,
    ) -> Cursor {
        shard.read(|table| {
            // The clock is read under the lock, as a write reads it under
            // its own: a key is judged expired at an instant it was held.
            let now_ms = clock.now_ms();
            let mut records = Vec::with_capacity(batch);
            let mut done = true;
            // Keys with the prefix are contiguous in byte order, and `start`
            // is at or after the first of them: stop at the first without.
            let matching = table
                .range_from(start)
                .take_while(|r| r.key().starts_with(prefix))
                .filter(|r| !r.is_expired(now_ms));
            for record in matching {
                if records.len() == batch {
                    done = false;
                    break;
                }
                // Bumps a reference count; no bytes are copied under the lock.
                records.push(record.clone());
            }
            Cursor {
                records: records.into_iter(),
                now_ms,
                done,
            }
        })
    }

    /// The next record of this cursor, ready for the merge heap.
    fn head(&mut self, shard: usize) -> Option<Reverse<Head>> {
        let record = self.records.next()?;
        Some(Reverse(Head { record, shard }))
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
