//! The ordered index through the shard table that owns its records: random
//! operation sequences against a `BTreeMap`, with every invariant of the
//! index (and that each reference is one of the table's records, or of
//! those it keeps until their removal is applied) checked after every
//! step, with writes pending or not. These are the tests to run under
//! valgrind.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::ops::Bound;

use hashbrown::DefaultHashBuilder;
use proptest::prelude::*;

use crate::entry::{NO_DEADLINE, Record};
use crate::shard::Table;

/// A table and the model it must agree with: key -> (value, deadline).
struct Harness {
    table: Table,
    model: BTreeMap<String, (Vec<u8>, u64)>,
    hasher: DefaultHashBuilder,
    version: u64,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            table: Table::default(),
            model: BTreeMap::new(),
            hasher: DefaultHashBuilder::default(),
            version: 0,
        }
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// A write as the store makes it: in place when it can, else a new record.
    fn put(&mut self, key: &str, value: &[u8], deadline: u64) {
        self.version += 1;
        let hash = self.hash(key.as_bytes());
        if !self
            .table
            .overwrite(hash, key.as_bytes(), value, self.version, deadline)
        {
            let record = Record::new(key, value);
            record.stamp(self.version, deadline);
            let hasher = self.hasher.clone();
            drop(self.table.put(hash, record, |r| hasher.hash_one(r.key())));
        }
        self.model
            .insert(key.to_owned(), (value.to_vec(), deadline));
    }

    fn remove(&mut self, key: &str) {
        let hash = self.hash(key.as_bytes());
        let removed = self.table.remove(hash, key.as_bytes());
        assert_eq!(removed.is_some(), self.model.remove(key).is_some());
    }

    /// Removes the key only if it is still the record read before.
    fn remove_exact(&mut self, key: &str) {
        let hash = self.hash(key.as_bytes());
        let Some(record) = self.table.get(hash, key.as_bytes()).cloned() else {
            return;
        };
        assert!(self.table.remove_exact(hash, &record));
        self.model.remove(key);
    }

    fn reclaim(&mut self, now: u64) {
        let hasher = self.hasher.clone();
        let (reclaimed, _freed) = self
            .table
            .reclaim_expired(now, |r| hasher.hash_one(r.key()));
        let before = self.model.len();
        self.model
            .retain(|_, (_, deadline)| *deadline == NO_DEADLINE || *deadline >= now);
        assert_eq!(reclaimed, before - self.model.len());
    }

    /// The keys from `start` on, by the index and by the model. Settles the
    /// index first, as a listing does.
    fn range(&mut self, start: Bound<&str>) -> (Vec<String>, Vec<String>) {
        self.table.settle();
        let listed = self
            .table
            .range_from(start.map(str::as_bytes))
            .map(|r| String::from_utf8(r.key().to_vec()).unwrap())
            .collect();
        let expected = self
            .model
            .range::<str, _>((start, Bound::Unbounded))
            .map(|(k, _)| k.clone())
            .collect();
        (listed, expected)
    }

    /// Checks the index's invariants, with writes pending or not; and when
    /// none is (the index settles itself when enough have gathered), that
    /// it lists the model.
    fn check(&self) {
        self.table.check();
        if !self.table.order().is_settled() {
            return;
        }
        let listed: Vec<String> = self
            .table
            .range_from(Bound::Unbounded)
            .map(|r| String::from_utf8(r.key().to_vec()).unwrap())
            .collect();
        let expected: Vec<String> = self.model.keys().cloned().collect();
        assert_eq!(
            listed, expected,
            "the index lists the model's keys in order"
        );
        for r in self.table.range_from(Bound::Unbounded) {
            let key = std::str::from_utf8(r.key()).unwrap();
            assert_eq!(
                r.value(),
                &self.model[key].0[..],
                "{key}: the current value"
            );
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(String, u8, Option<u64>),
    Remove(String),
    RemoveExact(String),
    Reclaim(u64),
    Range(String, bool),
}

/// Keys that share prefixes of every length, are prefixes of each other and
/// hold bytes below and above the hint's zero padding.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-c]{1,4}",
        "user:[0-9]{1,5}",
        "key:0000000[0-9]{5}",
        "[a\u{0}\u{7f}é]{1,10}",
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (key(), any::<u8>(), proptest::option::of(1u64..100)).prop_map(|(k, v, d)| Op::Put(k, v, d)),
        2 => key().prop_map(Op::Remove),
        1 => key().prop_map(Op::RemoveExact),
        1 => (1u64..120).prop_map(Op::Reclaim),
        1 => (key(), any::<bool>()).prop_map(|(k, e)| Op::Range(k, e)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_index_agrees_with_a_btreemap_after_every_operation(
        ops in proptest::collection::vec(op(), 1..1500)
    ) {
        let mut h = Harness::new();
        for op in ops {
            match op {
                // Values of one or two bytes: some writes go in place, some
                // replace the record.
                Op::Put(key, v, deadline) => {
                    let value = vec![v; 1 + (v % 2) as usize];
                    h.put(&key, &value, deadline.unwrap_or(NO_DEADLINE));
                }
                Op::Remove(key) => h.remove(&key),
                Op::RemoveExact(key) => h.remove_exact(&key),
                Op::Reclaim(now) => h.reclaim(now),
                Op::Range(key, excluded) => {
                    let start = match excluded {
                        true => Bound::Excluded(key.as_str()),
                        false => Bound::Included(key.as_str()),
                    };
                    let (listed, expected) = h.range(start);
                    prop_assert_eq!(listed, expected);
                }
            }
            h.check();
        }
    }
}

#[test]
fn keys_written_in_order_fill_whole_blocks() {
    let mut h = Harness::new();
    for i in 0..10_000 {
        h.put(&format!("key:{i:012}"), b"v", NO_DEADLINE);
    }
    h.table.settle();
    h.check();
    let blocks = &h.table.order().blocks;
    assert_eq!(blocks.len(), 10_000usize.div_ceil(super::BLOCK));
    assert!(
        blocks[..blocks.len() - 1]
            .iter()
            .all(|b| b.refs.len() == super::BLOCK)
    );
}

#[test]
fn removing_most_keys_merges_blocks_and_removing_all_empties_the_index() {
    let mut h = Harness::new();
    let keys: Vec<String> = (0..5_000)
        .map(|i| format!("k{:08}", (i * 7919) % 5_000))
        .collect();
    for key in &keys {
        h.put(key, b"v", NO_DEADLINE);
    }
    h.check();
    for key in keys.iter().filter(|k| !k.ends_with('0')) {
        h.remove(key);
    }
    h.table.settle();
    h.check();
    let blocks = h.table.order().blocks.len();
    assert!(
        blocks <= 500 / (super::MERGE_BELOW) + 1,
        "{blocks} blocks for 500 keys"
    );
    for key in keys.iter().filter(|k| k.ends_with('0')) {
        h.remove(key);
    }
    h.table.settle();
    h.check();
    assert_eq!(h.table.order().blocks.len(), 1);
    assert_eq!(h.table.range_from(Bound::Unbounded).count(), 0);
}

#[test]
fn expired_records_leave_the_index_with_the_reclaim_pass() {
    let mut h = Harness::new();
    for i in 0..1_000u64 {
        let deadline = if i % 3 == 0 { NO_DEADLINE } else { 1 + i % 50 };
        h.put(&format!("t/{i:04}"), b"v", deadline);
    }
    h.reclaim(25);
    h.check();
    h.reclaim(1_000);
    h.check();
    assert_eq!(h.model.len(), 334);
}

#[test]
fn an_index_built_at_once_after_a_bulk_load_holds_every_key_and_keeps_working() {
    let mut h = Harness::new();
    let hasher = h.hasher.clone();
    // A load as recovery makes it: puts (some replacing a key), removes, in
    // the hash table only.
    for i in 0..3_000u64 {
        let key = format!("k/{:05}", (i * 7919) % 2_000);
        let record = Record::new(&key, &i.to_le_bytes());
        record.stamp(i + 1, NO_DEADLINE);
        let hash = h.hash(key.as_bytes());
        drop(
            h.table
                .put_unordered(hash, record, |r| hasher.hash_one(r.key())),
        );
        h.model.insert(key, (i.to_le_bytes().to_vec(), NO_DEADLINE));
    }
    for i in (0..2_000).step_by(3) {
        h.remove(&format!("k/{i:05}"));
    }
    h.table.rebuild_order();
    h.check();
    assert!(
        h.table.order().blocks.len() < 2_000 / super::BLOCK + 2,
        "whole blocks"
    );
    // Once built, the index follows every write as usual.
    for i in 0..2_000u64 {
        match i % 3 {
            0 => h.put(&format!("k/{:05}x", i), b"new", NO_DEADLINE),
            1 => h.remove(&format!("k/{i:05}")),
            _ => h.put(&format!("k/{i:05}"), b"longer value", NO_DEADLINE),
        }
    }
    h.check();
}
