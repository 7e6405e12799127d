//! Writes waiting to reach the blocks: a new key's reference is appended to
//! `fresh`, a removed record to `gone`, and neither searches the index. When
//! enough have gathered, or before a listing reads the shard, they are
//! sorted by key and applied in that order ([`Ordered::settle`]).
//!
//! Applied one at a time as they came, each write found its block through
//! a cold directory and then read a cold block (at 1M keys, a create cost
//! 3-4x what it did before the index; BENCHMARKS.md, "Ordered listing").
//! Applied in key order, consecutive writes walk the directory and the
//! blocks forwards, so most of what they read is already in the cache.

use std::cmp::Ordering;
use std::collections::VecDeque;

use crate::entry::Record;
use crate::record_ref::RecordRef;

use super::directory::lead;
use super::{BLOCK, Ordered};

/// Pending writes per block of the index before they are applied: the more
/// land in one block, the more of its cost (reading it into the cache,
/// shifting its tail) they share.
const PER_BLOCK: usize = if cfg!(test) { 1 } else { 8 };

/// Fewest pending writes that make a shard settle, whatever its size.
const MIN_PENDING: usize = if cfg!(test) { 3 } else { 32 };

/// Most pending writes: bounds the work of one settle (a writer or a lister
/// waits for it) and the memory of the buffers (8 bytes an entry).
const MAX_PENDING: usize = if cfg!(test) { 40 } else { 1024 };

/// Most key and value bytes the records in `gone` may hold: they are out of
/// the table but not yet freed, so this bounds the memory a shard holds
/// beyond what the store counts. A store with a memory bound sets less
/// (see `StoreBuilder::new_shards`).
pub(crate) const GONE_BYTES: usize = if cfg!(test) { 64 } else { 64 << 10 };

impl Ordered {
    /// Adds a reference to a record put in the table under a key it did not
    /// hold.
    pub(crate) fn insert(&mut self, new: RecordRef) {
        self.fresh.push_back(new);
        self.settle_if_full();
    }

    /// Removes the reference to `record`, which the table is letting go.
    /// Until the removal is applied, a handle kept here holds the record
    /// alive, so the reference stays readable.
    pub(crate) fn remove(&mut self, record: &Record) {
        if self.is_empty() {
            // Not built yet (a recovery loading the table, see
            // `Table::put_unordered`): no reference to remove.
            return;
        }
        self.push_gone(record);
        self.settle_if_full();
    }

    /// Replaces the reference to `old` by `new`, a record of the same key.
    pub(crate) fn replace(&mut self, old: &Record, new: RecordRef) {
        debug_assert_eq!(old.key(), new.key());
        self.push_gone(old);
        self.fresh.push_back(new);
        self.settle_if_full();
    }

    /// Settles once the records in `gone` hold more than `bytes` of keys
    /// and values.
    pub(crate) fn limit_gone(&mut self, bytes: usize) {
        self.gone_limit = bytes;
    }

    pub(crate) fn gone_limit(&self) -> usize {
        self.gone_limit
    }

    /// Whether no write is pending: only then can the index be read.
    pub(crate) fn is_settled(&self) -> bool {
        self.fresh.is_empty() && self.gone.is_empty()
    }

    /// Applies every pending write to the blocks: first the removals, then
    /// the new references, each in byte order of their keys, a block's run
    /// of them at a time (the block found once, then hot in the cache for
    /// the rest of its run). Out of line: a write calls it once in hundreds.
    #[inline(never)]
    pub(crate) fn settle(&mut self) {
        let mut fresh = std::mem::take(&mut self.fresh);
        let mut gone = std::mem::take(&mut self.gone);
        self.gone_bytes = 0;
        if !gone.is_empty() && !fresh.is_empty() {
            cancel(&mut fresh, &mut gone);
        }
        gone.sort_unstable_by(|a, b| by_key(a.key(), b.key()));
        let mut i = 0;
        while i < gone.len() {
            let at = self.route(gone[i].key());
            let end = i + self.run_len(at, gone[i..].iter().map(Record::key));
            let removed = self.blocks[at].remove_all(&gone[i..end]);
            debug_assert_eq!(removed, end - i, "a record gone was not in the index");
            self.after_removal(at);
            i = end;
        }
        // Dropped now that no reference to them remains.
        gone.clear();
        fresh
            .make_contiguous()
            .sort_unstable_by(|a, b| by_key(a.key(), b.key()));
        while let Some(first) = fresh.front() {
            let at = self.route(first.key());
            let run = self.run_len(at, fresh.iter().map(RecordRef::key));
            let block = &mut self.blocks[at];
            if block.refs.len() + run <= BLOCK {
                for new in fresh.drain(..run) {
                    block.insert(new);
                }
            } else {
                // The block splits: one at a time, each routed.
                for new in fresh.drain(..run) {
                    self.insert_now(new);
                }
            }
        }
        // The buffers keep their room for the next writes.
        self.fresh = fresh;
        self.gone = gone;
    }

    /// How many of `keys` (in order, the first of them in block `at`) go
    /// to block `at`: those below the next block's bound.
    fn run_len<'k>(&self, at: usize, keys: impl Iterator<Item = &'k [u8]>) -> usize {
        match at + 1 < self.bounds.len() {
            true => {
                let next = self.bounds.get(at + 1);
                keys.take_while(|key| *key < next).count()
            }
            false => keys.count(),
        }
    }

    fn push_gone(&mut self, record: &Record) {
        self.gone_bytes += record.payload_len();
        self.gone.push(record.clone());
    }

    fn settle_if_full(&mut self) {
        let room = (self.blocks.len() * PER_BLOCK).clamp(MIN_PENDING, MAX_PENDING);
        if self.fresh.len() + self.gone.len() >= room || self.gone_bytes > self.gone_limit {
            self.settle();
        }
    }
}

/// Byte order, with most pairs decided by their first 16 bytes as integers
/// (cheaper than a `memcmp` call).
fn by_key(a: &[u8], b: &[u8]) -> Ordering {
    lead(a).cmp(&lead(b)).then_with(|| a.cmp(b))
}

/// Drops from both buffers the records put and let go since the last
/// settle: they never reached the blocks. Sorts both by address and walks
/// them together, keeping the rest at the front of each.
fn cancel(fresh: &mut VecDeque<RecordRef>, gone: &mut Vec<Record>) {
    fresh
        .make_contiguous()
        .sort_unstable_by_key(RecordRef::addr);
    gone.sort_unstable_by_key(Record::addr);
    let (mut i, mut j, mut kept_fresh, mut kept_gone) = (0, 0, 0, 0);
    while i < fresh.len() || j < gone.len() {
        let f = fresh.get(i).map_or(usize::MAX, RecordRef::addr);
        let g = gone.get(j).map_or(usize::MAX, Record::addr);
        match f.cmp(&g) {
            Ordering::Less => {
                fresh.swap(kept_fresh, i);
                (kept_fresh, i) = (kept_fresh + 1, i + 1);
            }
            Ordering::Greater => {
                gone.swap(kept_gone, j);
                (kept_gone, j) = (kept_gone + 1, j + 1);
            }
            Ordering::Equal => (i, j) = (i + 1, j + 1),
        }
    }
    fresh.truncate(kept_fresh);
    // After `fresh` let go of its references to them.
    gone.truncate(kept_gone);
}
