//! The keys of one shard in byte order, beside its hash table, so that a
//! listing page reads only the keys it returns.
//!
//! The order is a sorted list of blocks of up to [`BLOCK`] record references
//! ([`RecordRef`], 8 bytes each), found through a directory of each block's
//! lower bound (an owned copy of a key). Reading a key through a reference
//! costs a cache miss (the record lives elsewhere on the heap), so the
//! searches avoid it:
//!
//! - the directory holds its bounds itself, back to back in one buffer
//!   (`directory.rs`): finding the block reads no record;
//! - every key of a block starts with the block's `prefix` (after a split,
//!   the longest its first and last key share), and beside each reference
//!   sits a 4-byte *hint*, the key's four bytes after that prefix. A search
//!   compares hints first and reads records only among keys whose hints tie
//!   with the key looked for (usually none: with two bytes, keys of decimal
//!   digits tied six at a time; with three, the record reads of ties were
//!   still most of a create's time in the index, and a fourth byte took a
//!   quarter off a create at 1M keys, BENCHMARKS.md);
//! - removing a record finds it by its address, in a pass over its block's
//!   references: no record is read at all.
//!
//! Memory: 12 bytes a key in a full block, plus per block its header, its
//! prefix and its bound (about 1.5 bytes a key in all), plus the buffers of
//! pending writes (`pending.rs`: 8 bytes a write, at most 1024 a buffer).
//! Keys inserted in order fill blocks completely (a block that is full when
//! a key is appended after its last one starts a new block, instead of
//! splitting in half).

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::ops::Bound;

use crate::entry::Record;
use crate::record_ref::RecordRef;

mod directory;
mod pending;
#[cfg(test)]
mod tests;

use directory::{Directory, lead};
pub(crate) use pending::GONE_BYTES;

/// Most references a block holds. 128: what a block costs besides its
/// entries (its header, two allocations, its prefix and its bound) is spread
/// over many keys, and the directory a write searches first stays small,
/// while an insert still shifts at most 1.4 KB.
const BLOCK: usize = 128;

/// A block this small after a removal is merged into a neighbour, if the two
/// fit in three quarters of a block (so the result is not split right away).
const MERGE_BELOW: usize = BLOCK / 4;

/// The ordered references of one shard.
///
/// Writes of new keys and removes are not applied to the blocks one at a
/// time: they wait in `fresh` and `gone` (`pending.rs`) until enough have
/// gathered, or until a listing reads the shard, and are then applied in
/// key order ([`Ordered::settle`]). Only a settled index can be read.
pub(crate) struct Ordered {
    /// Bound `i` is at most every key of `blocks[i]` and greater than every
    /// key of the blocks before it. Bound 0 is empty (below every key).
    bounds: Directory,
    /// Never empty; only `blocks[0]` may hold no reference (an empty shard).
    blocks: Vec<Block>,
    /// References to records put in the table since the last settle, not
    /// yet in the blocks, in no order (a queue: a settle takes them from
    /// the front once sorted).
    fresh: VecDeque<RecordRef>,
    /// Records taken out of the table since the last settle, whose
    /// references are still in the blocks or in `fresh`. These are counted
    /// handles: they keep the records alive as long as a reference to them
    /// remains.
    gone: Vec<Record>,
    /// The key and value bytes of the records in `gone`.
    gone_bytes: usize,
    /// A settle comes once `gone_bytes` is above this.
    gone_limit: usize,
}

struct Block {
    /// Every key in the block starts with these bytes.
    prefix: Box<[u8]>,
    /// `hints[i]` is [`hint`] of `refs[i]`'s key after `prefix`.
    hints: Vec<Hint>,
    /// In byte order of their keys.
    refs: Vec<RecordRef>,
}

impl Ordered {
    pub(crate) fn new() -> Ordered {
        Ordered {
            bounds: Directory::new(),
            blocks: vec![Block::empty()],
            fresh: VecDeque::new(),
            gone: Vec::new(),
            gone_bytes: 0,
            gone_limit: pending::GONE_BYTES,
        }
    }

    /// An index of `refs`, given in any order: sorts them, then fills whole
    /// blocks. For a table loaded all at once (recovery), where inserting
    /// one key at a time would search the index for each.
    pub(crate) fn from_unordered(refs: Vec<RecordRef>) -> Ordered {
        // Sorted by the keys' first 16 bytes first, held beside each
        // reference, so that most comparisons read no record.
        let mut keyed: Vec<(u128, RecordRef)> =
            refs.into_iter().map(|r| (lead(r.key()), r)).collect();
        keyed.sort_unstable_by(|(a, ra), (b, rb)| a.cmp(b).then_with(|| ra.key().cmp(rb.key())));
        let mut ordered = Ordered::new();
        let mut sorted = keyed.into_iter().map(|(_, r)| r).peekable();
        while sorted.peek().is_some() {
            let mut block = Block::empty();
            block.refs = sorted.by_ref().take(BLOCK).collect();
            let (first, last) = (&block.refs[0], &block.refs[block.refs.len() - 1]);
            let shared = common_prefix(first.key(), last.key());
            block.set_prefix(shared);
            if ordered.is_empty() {
                ordered.blocks[0] = block;
            } else {
                ordered
                    .bounds
                    .insert(ordered.bounds.len(), block.refs[0].key());
                ordered.blocks.push(block);
            }
        }
        ordered
    }

    /// Whether the index holds no reference.
    pub(crate) fn is_empty(&self) -> bool {
        self.blocks.len() == 1 && self.blocks[0].refs.is_empty() && self.fresh.is_empty()
    }

    /// Adds a reference to a key not in the blocks, now.
    fn insert_now(&mut self, new: RecordRef) {
        let key = new.key();
        let mut at = self.route(key);
        let block = &self.blocks[at];
        if block.refs.len() == BLOCK {
            let last = block.refs.last().map(RecordRef::key);
            if at + 1 == self.blocks.len() && last.is_some_and(|last| key > last) {
                // Appending after the last key of the last block (keys written
                // in order): start a new block and leave this one full.
                self.bounds.insert(self.bounds.len(), key);
                self.blocks.push(Block::empty());
                at += 1;
            } else {
                self.split(at);
                if key >= self.bounds.get(at + 1) {
                    at += 1;
                }
            }
        }
        self.blocks[at].insert(new);
    }

    /// After references were removed from block `at`: drops it if it is
    /// empty, or merges it into a neighbour if it became small.
    fn after_removal(&mut self, at: usize) {
        let left = self.blocks[at].refs.len();
        if left == 0 && self.blocks.len() > 1 {
            self.blocks.remove(at);
            // The first block's bound stays the bottom of the key space: when
            // the first block goes, the second takes its bound.
            self.bounds.remove(at.max(1));
        } else if left < MERGE_BELOW {
            self.merge_around(at);
        }
    }

    /// The references from `start` on, in byte order of their keys.
    pub(crate) fn range_from(&self, start: Bound<&[u8]>) -> impl Iterator<Item = &RecordRef> {
        debug_assert!(self.is_settled(), "reading an index with writes pending");
        let (at, pos) = match start {
            Bound::Unbounded => (0, 0),
            Bound::Included(key) | Bound::Excluded(key) => {
                let at = self.route(key);
                let pos = match (self.blocks[at].search(key), start) {
                    (Ok(pos), Bound::Excluded(_)) => pos + 1,
                    (Ok(pos) | Err(pos), _) => pos,
                };
                (at, pos)
            }
        };
        self.blocks[at].refs[pos..]
            .iter()
            .chain(self.blocks[at + 1..].iter().flat_map(|b| b.refs.iter()))
    }

    /// The block whose key range holds `key`.
    fn route(&self, key: &[u8]) -> usize {
        self.bounds.route(key)
    }

    /// Splits the full block `at` in two halves.
    fn split(&mut self, at: usize) {
        let left = &mut self.blocks[at];
        let half = left.refs.len() / 2;
        let mut right = Block {
            prefix: left.prefix.clone(),
            hints: left.hints.split_off(half),
            refs: left.refs.split_off(half),
        };
        left.sharpen();
        right.sharpen();
        self.bounds.insert(at + 1, right.refs[0].key());
        self.blocks.insert(at + 1, right);
    }

    /// Merges the small block `at` with a neighbour if both fit in three
    /// quarters of a block.
    fn merge_around(&mut self, at: usize) {
        let fits = |a: &Block, b: &Block| a.refs.len() + b.refs.len() <= BLOCK * 3 / 4;
        let first = if at + 1 < self.blocks.len() && fits(&self.blocks[at], &self.blocks[at + 1]) {
            at
        } else if at > 0 && fits(&self.blocks[at - 1], &self.blocks[at]) {
            at - 1
        } else {
            return;
        };
        let second = self.blocks.remove(first + 1);
        self.bounds.remove(first + 1);
        self.blocks[first].append(second);
    }

    /// Checks every invariant of the index against the records its table
    /// holds (in any order); panics on the first one broken. For tests.
    #[cfg(test)]
    pub(crate) fn check(&self, table: &[&Record]) {
        use std::collections::HashSet;
        let in_table: HashSet<usize> = table.iter().map(|r| r.addr()).collect();
        let fresh: HashSet<usize> = self.fresh.iter().map(RecordRef::addr).collect();
        let gone: HashSet<usize> = self.gone.iter().map(Record::addr).collect();
        assert_eq!(fresh.len(), self.fresh.len(), "a fresh reference twice");
        assert_eq!(gone.len(), self.gone.len(), "a record gone twice");
        assert!(
            gone.is_disjoint(&in_table),
            "a record gone is still in the table"
        );
        assert!(
            fresh
                .iter()
                .all(|f| in_table.contains(f) || gone.contains(f)),
            "a fresh reference to a record nobody holds"
        );
        let gone_bytes: usize = self.gone.iter().map(Record::payload_len).sum();
        assert_eq!(self.gone_bytes, gone_bytes);
        // The blocks hold the table's records and those gone, but for the
        // fresh ones.
        let mut expected: Vec<&Record> = table
            .iter()
            .copied()
            .chain(&self.gone)
            .filter(|r| !fresh.contains(&r.addr()))
            .collect();
        expected.sort_by(|a, b| a.key().cmp(b.key()));
        assert_eq!(self.bounds.len(), self.blocks.len());
        assert!(
            self.bounds.get(0).is_empty(),
            "the first bound is the bottom"
        );
        let mut seen = 0;
        for (i, block) in self.blocks.iter().enumerate() {
            assert!(block.refs.len() <= BLOCK);
            assert!(!block.refs.is_empty() || self.blocks.len() == 1);
            assert_eq!(block.hints.len(), block.refs.len());
            for (r, &h) in block.refs.iter().zip(&block.hints) {
                let key = r.key();
                assert!(
                    r.is(expected[seen]),
                    "reference {seen} is not the table's record"
                );
                assert!(
                    key.starts_with(&block.prefix),
                    "key outside its block's prefix"
                );
                assert_eq!(h, hint(key, block.prefix.len()), "stale hint");
                assert!(key >= self.bounds.get(i), "key below its block's bound");
                if i + 1 < self.bounds.len() {
                    let next = self.bounds.get(i + 1);
                    assert!(key < next, "key at or above the next block's bound");
                    assert!(self.bounds.get(i) < next, "bounds in order");
                }
                seen += 1;
            }
        }
        assert_eq!(seen, expected.len(), "every record is in the index once");
    }
}

impl Block {
    fn empty() -> Block {
        Block {
            prefix: Box::default(),
            hints: Vec::new(),
            refs: Vec::new(),
        }
    }

    /// Where `key` is (`Ok`) or would go (`Err`).
    fn search(&self, key: &[u8]) -> Result<usize, usize> {
        if !key.starts_with(&self.prefix) {
            // Every key here starts with the prefix, so one that does not is
            // below them all or above them all, as it compares to the prefix.
            return match key.cmp(&self.prefix) {
                Ordering::Less => Err(0),
                _ => Err(self.refs.len()),
            };
        }
        let (lo, hi) = self.tied(hint(key, self.prefix.len()));
        // Only keys whose hints tie are read.
        match self.refs[lo..hi].binary_search_by(|r| r.key().cmp(key)) {
            Ok(pos) => Ok(lo + pos),
            Err(pos) => Err(lo + pos),
        }
    }

    /// The positions whose hint is `h`.
    fn tied(&self, h: Hint) -> (usize, usize) {
        let lo = self.hints.partition_point(|&x| x < h);
        let hi = lo + self.hints[lo..].partition_point(|&x| x == h);
        (lo, hi)
    }

    /// Removes the references to `records` in one pass over the block,
    /// comparing addresses (no hint searched, no record read); returns how
    /// many it found.
    fn remove_all(&mut self, records: &[Record]) -> usize {
        let mut keep = [true; BLOCK];
        let mut found = 0;
        for (slot, r) in keep.iter_mut().zip(&self.refs) {
            if records.iter().any(|gone| r.is(gone)) {
                *slot = false;
                found += 1;
            }
        }
        let mut i = 0;
        self.hints.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        let mut i = 0;
        self.refs.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        found
    }

    fn insert(&mut self, new: RecordRef) {
        let key = new.key();
        if self.refs.is_empty() {
            self.prefix = key.into();
        } else if !key.starts_with(&self.prefix) {
            // The new key leaves the prefix: shorten it to what they share.
            let shared = common_prefix(&self.prefix, key);
            self.set_prefix(shared);
        }
        let pos = self.search(key).unwrap_or_else(|pos| pos);
        debug_assert!(self.search(key).is_err(), "key already in the index");
        self.hints.insert(pos, hint(key, self.prefix.len()));
        self.refs.insert(pos, new);
    }

    /// Lengthens the prefix to what the first and last key share (after a
    /// split, each half's keys usually share more), so that the hints tell
    /// the keys apart. Reads two records, and every record when the prefix
    /// grows.
    fn sharpen(&mut self) {
        let (Some(first), Some(last)) = (self.refs.first(), self.refs.last()) else {
            return;
        };
        let shared = common_prefix(first.key(), last.key());
        if shared > self.prefix.len() {
            self.set_prefix(shared);
        }
    }

    /// Appends `next`, whose keys all come after this block's.
    fn append(&mut self, next: Block) {
        if self.refs.is_empty() {
            *self = next;
            return;
        }
        let shared = common_prefix(&self.prefix, &next.prefix);
        let same_prefix = shared == self.prefix.len() && shared == next.prefix.len();
        self.refs.extend(next.refs);
        if same_prefix {
            self.hints.extend(next.hints);
        } else {
            self.set_prefix(shared);
        }
    }

    /// Makes the prefix the first `len` bytes of the keys (which all share
    /// them) and recomputes the hints: reads every record.
    fn set_prefix(&mut self, len: usize) {
        self.prefix = match self.refs.first() {
            Some(first) => first.key()[..len].into(),
            None => Box::default(),
        };
        // In place, so the vector keeps its capacity.
        self.hints.resize(self.refs.len(), Hint::default());
        for (h, r) in self.hints.iter_mut().zip(&self.refs) {
            *h = hint(r.key(), len);
        }
    }
}

/// A key's four bytes after its block's prefix, as a big-endian integer.
type Hint = u32;

/// The four bytes of `key` after its first `at`, zero where the key is
/// shorter, as an integer. For keys sharing their first `at` bytes, a
/// smaller hint means a smaller key; equal hints decide nothing.
#[inline]
fn hint(key: &[u8], at: usize) -> Hint {
    match key.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => {
            let byte = |i: usize| key.get(at + i).copied().unwrap_or(0);
            u32::from_be_bytes([byte(0), byte(1), byte(2), byte(3)])
        }
    }
}

/// How many leading bytes `a` and `b` share.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
