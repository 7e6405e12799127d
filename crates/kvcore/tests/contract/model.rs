//! Random operation sequences, clock moves and list pages included, run
//! against the store and against a plain `BTreeMap` model of the contract;
//! every answer must agree.

use std::collections::BTreeMap;
use std::time::Duration;

use kvcore::{Condition, Error, MAX_TTL, MIN_TTL, ManualClock, Store, TtlChange, Tuning};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::fixtures::{T0, manual_store_with};

/// Which version a conditional operation expects, resolved against the
/// model when the operation runs.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The key's latest version (even if it expired or was removed).
    Latest,
    /// The version before that.
    Previous,
    /// Any small number.
    Number(u64),
}

#[derive(Debug, Clone, Copy)]
enum Cond {
    Always,
    Absent,
    Present,
    Version(Expect),
}

#[derive(Debug, Clone)]
enum Op {
    Create(String, Vec<u8>, Option<Duration>),
    Update(String, Vec<u8>, TtlChange),
    Upsert(String, Vec<u8>, TtlChange),
    Put(String, Vec<u8>, TtlChange, Cond),
    CompareAndSwap(String, Expect, Vec<u8>, TtlChange),
    Get(String),
    Remove(String),
    RemoveIfVersion(String, Expect),
    ListPage(String, Option<String>, usize),
    ListAll(String, usize),
    Len,
    ReclaimExpired,
    Advance(u64),
}

/// Keys from a tiny alphabet, so they collide and prefix each other.
fn key() -> impl Strategy<Value = String> {
    "[ab/é]{1,3}"
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..4)
}

/// Mostly short valid TTLs, so keys expire within a few clock moves; now
/// and then one outside the allowed range.
fn ttl() -> impl Strategy<Value = Duration> {
    prop_oneof![
        10 => (1u64..=30).prop_map(Duration::from_millis),
        1 => Just(Duration::ZERO),
        1 => Just(Duration::from_micros(999)),
        1 => Just(MAX_TTL + Duration::from_millis(1)),
    ]
}

fn ttl_change() -> impl Strategy<Value = TtlChange> {
    prop_oneof![
        2 => Just(TtlChange::Keep),
        2 => ttl().prop_map(TtlChange::Set),
        1 => Just(TtlChange::Persist),
    ]
}

fn expect() -> impl Strategy<Value = Expect> {
    prop_oneof![
        3 => Just(Expect::Latest),
        1 => Just(Expect::Previous),
        1 => (0u64..40).prop_map(Expect::Number),
    ]
}

fn cond() -> impl Strategy<Value = Cond> {
    prop_oneof![
        Just(Cond::Always),
        Just(Cond::Absent),
        Just(Cond::Present),
        expect().prop_map(Cond::Version),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (key(), value(), proptest::option::of(ttl())).prop_map(|(k, v, t)| Op::Create(k, v, t)),
        2 => (key(), value(), ttl_change()).prop_map(|(k, v, t)| Op::Update(k, v, t)),
        2 => (key(), value(), ttl_change()).prop_map(|(k, v, t)| Op::Upsert(k, v, t)),
        2 => (key(), value(), ttl_change(), cond()).prop_map(|(k, v, t, c)| Op::Put(k, v, t, c)),
        2 => (key(), expect(), value(), ttl_change())
            .prop_map(|(k, e, v, t)| Op::CompareAndSwap(k, e, v, t)),
        3 => key().prop_map(Op::Get),
        1 => key().prop_map(Op::Remove),
        1 => (key(), expect()).prop_map(|(k, e)| Op::RemoveIfVersion(k, e)),
        2 => ("[ab/é]{0,2}", proptest::option::of(key()), 0usize..4)
            .prop_map(|(p, a, l)| Op::ListPage(p, a, l)),
        1 => ("[ab/é]{0,2}", 1usize..4).prop_map(|(p, l)| Op::ListAll(p, l)),
        1 => Just(Op::Len),
        1 => Just(Op::ReclaimExpired),
        3 => (0u64..=12).prop_map(Op::Advance),
    ]
}

fn layout() -> impl Strategy<Value = (Tuning, Option<usize>)> {
    (
        prop_oneof![
            Just(Tuning::Balanced),
            Just(Tuning::ReadHeavy),
            Just(Tuning::WriteHeavy)
        ],
        prop_oneof![Just(None), Just(Some(1)), Just(Some(2))],
    )
}

#[derive(Debug, Clone, PartialEq)]
struct Record {
    value: Vec<u8>,
    version: u64,
    deadline: Option<u64>,
}

/// The contract, sequentially: a map of records (expired ones stay until
/// something replaces them, which is how the model counts expirations).
#[derive(Debug, Default)]
struct Model {
    now: u64,
    revision: u64,
    records: BTreeMap<String, Record>,
    /// Every version each key ever had, oldest first.
    history: BTreeMap<String, Vec<u64>>,
    /// Records that expired and were then replaced or removed.
    expired_and_gone: u64,
}

impl Model {
    fn is_expired(&self, record: &Record) -> bool {
        record.deadline.is_some_and(|d| self.now > d)
    }

    fn live(&self, key: &str) -> Option<&Record> {
        self.records.get(key).filter(|r| !self.is_expired(r))
    }

    fn resolve(&self, key: &str, expect: Expect) -> u64 {
        let versions = self.history.get(key).map(Vec::as_slice).unwrap_or(&[]);
        match expect {
            Expect::Latest => versions.last().copied().unwrap_or(0),
            Expect::Previous => versions.iter().rev().nth(1).copied().unwrap_or(0),
            Expect::Number(n) => n,
        }
    }

    /// Expired records in the store's memory or already reclaimed: after a
    /// full reclaim, exactly what `expired_reclaimed` must count.
    fn expired_total(&self) -> u64 {
        let lingering = self.records.values().filter(|r| self.is_expired(r)).count();
        self.expired_and_gone + lingering as u64
    }

    fn forget(&mut self, key: &str) {
        if self
            .records
            .remove(key)
            .is_some_and(|old| self.is_expired(&old))
        {
            self.expired_and_gone += 1;
        }
    }

    /// Returns the version, whether the key was created and the time left.
    fn write(
        &mut self,
        key: &str,
        value: &[u8],
        ttl: TtlChange,
        cond: Condition,
    ) -> Result<(u64, bool, Option<Duration>), Error> {
        match ttl {
            TtlChange::Set(ttl) if !(MIN_TTL..=MAX_TTL).contains(&ttl) => {
                return Err(Error::InvalidTtl { ttl });
            }
            _ => {}
        }
        let live = self.live(key).cloned();
        let current = live.as_ref().map(|r| r.version);
        match (cond, current) {
            (Condition::Absent, Some(v)) => {
                return Err(Error::AlreadyExists { current_version: v });
            }
            (Condition::Present, None) => return Err(Error::NotFound),
            (Condition::Version(expected), current) if current != Some(expected) => {
                return Err(Error::VersionMismatch { expected, current });
            }
            _ => {}
        }
        self.revision += 1;
        let deadline = match ttl {
            TtlChange::Keep => live.as_ref().and_then(|r| r.deadline),
            TtlChange::Set(ttl) => Some(self.now + ttl.as_millis() as u64),
            TtlChange::Persist => None,
        };
        self.forget(key);
        self.records.insert(
            key.to_owned(),
            Record {
                value: value.to_vec(),
                version: self.revision,
                deadline,
            },
        );
        self.history
            .entry(key.to_owned())
            .or_default()
            .push(self.revision);
        let left = deadline.map(|d| Duration::from_millis(d - self.now));
        Ok((self.revision, live.is_none(), left))
    }

    fn remove(&mut self, key: &str, expected: Option<u64>) -> Result<u64, Error> {
        let current = self.live(key).map(|r| r.version);
        match (expected, current) {
            (None, None) => return Err(Error::NotFound),
            (Some(expected), current) if current != Some(expected) => {
                return Err(Error::VersionMismatch { expected, current });
            }
            _ => {}
        }
        self.revision += 1;
        self.forget(key);
        Ok(self.revision)
    }

    /// The keys (with prefix, after the cursor) a page holds, and its cursor.
    fn page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<String>, Option<String>) {
        let matching: Vec<String> = self
            .records
            .keys()
            .filter(|k| k.starts_with(prefix) && after.is_none_or(|a| k.as_str() > a))
            .filter(|k| self.live(k).is_some())
            .cloned()
            .collect();
        let limit = limit.max(1);
        let page: Vec<String> = matching.iter().take(limit).cloned().collect();
        let next = (matching.len() > limit).then(|| page.last().unwrap().clone());
        (page, next)
    }
}

fn condition(model: &Model, key: &str, cond: Cond) -> Condition {
    match cond {
        Cond::Always => Condition::Always,
        Cond::Absent => Condition::Absent,
        Cond::Present => Condition::Present,
        Cond::Version(expect) => Condition::Version(model.resolve(key, expect)),
    }
}

type Outcome = Result<(u64, bool, Option<Duration>), Error>;

fn written(result: kvcore::Result<kvcore::Written>) -> Outcome {
    result.map(|w| (w.version, w.created, w.ttl))
}

fn version_only(outcome: Outcome) -> Result<u64, Error> {
    outcome.map(|(version, _, _)| version)
}

fn run(
    store: &Store,
    clock: &ManualClock,
    model: &mut Model,
    op: &Op,
) -> Result<(), TestCaseError> {
    match op {
        Op::Create(key, value, ttl) => {
            let change = ttl.map_or(TtlChange::Keep, TtlChange::Set);
            let expected = version_only(model.write(key, value, change, Condition::Absent));
            prop_assert_eq!(store.create(key, value, *ttl), expected);
        }
        Op::Update(key, value, change) => {
            let expected = version_only(model.write(key, value, *change, Condition::Present));
            prop_assert_eq!(store.update(key, value, *change), expected);
        }
        Op::Upsert(key, value, change) => {
            let expected = model.write(key, value, *change, Condition::Always);
            prop_assert_eq!(written(store.upsert(key, value, *change)), expected);
        }
        Op::Put(key, value, change, cond) => {
            let cond = condition(model, key, *cond);
            let expected = model.write(key, value, *change, cond);
            prop_assert_eq!(written(store.put(key, value, *change, cond)), expected);
        }
        Op::CompareAndSwap(key, expect, value, change) => {
            let version = model.resolve(key, *expect);
            let expected =
                version_only(model.write(key, value, *change, Condition::Version(version)));
            prop_assert_eq!(
                store.compare_and_swap(key, version, value, *change),
                expected
            );
        }
        Op::Get(key) => {
            let expected = model.live(key).map(|r| {
                let left = r.deadline.map(|d| Duration::from_millis(d - model.now));
                (r.value.clone(), r.version, r.deadline, left)
            });
            let got = store
                .get(key)
                .unwrap()
                .map(|e| (e.value().to_vec(), e.version(), e.deadline_ms(), e.ttl()));
            prop_assert_eq!(got, expected);
        }
        Op::Remove(key) => {
            let expected = model.remove(key, None);
            prop_assert_eq!(store.remove(key), expected);
        }
        Op::RemoveIfVersion(key, expect) => {
            let version = model.resolve(key, *expect);
            let expected = model.remove(key, Some(version));
            prop_assert_eq!(store.remove_if_version(key, version), expected);
        }
        Op::ListPage(prefix, after, limit) => {
            let page = store.list(prefix, after.as_deref(), *limit);
            for entry in &page.entries {
                let record = model.live(entry.key()).unwrap();
                prop_assert_eq!(
                    (entry.value(), entry.version(), entry.deadline_ms()),
                    (&record.value[..], record.version, record.deadline)
                );
            }
            let keys: Vec<String> = page.entries.iter().map(|e| e.key().to_owned()).collect();
            prop_assert_eq!(
                (keys, page.next),
                model.page(prefix, after.as_deref(), *limit)
            );
        }
        Op::ListAll(prefix, limit) => {
            let mut listed = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = store.list(prefix, cursor.as_deref(), *limit);
                listed.extend(page.entries.iter().map(|e| e.key().to_owned()));
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            let (everything, _) = model.page(prefix, None, usize::MAX);
            prop_assert_eq!(listed, everything);
        }
        Op::Len => {
            let live = model
                .records
                .keys()
                .filter(|k| model.live(k).is_some())
                .count();
            prop_assert_eq!(store.len(), live);
            prop_assert_eq!(store.is_empty(), live == 0);
            prop_assert_eq!(store.stats().revision, model.revision);
        }
        Op::ReclaimExpired => {
            store.reclaim_expired();
            prop_assert_eq!(store.stats().expired_reclaimed, model.expired_total());
            prop_assert_eq!(store.reclaim_expired(), 0);
        }
        Op::Advance(ms) => {
            clock.advance(*ms);
            model.now += ms;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_store_agrees_with_a_btreemap_model_on_random_operation_sequences(
        (tuning, shards) in layout(),
        ops in vec(op(), 1..80),
    ) {
        let builder = Store::builder().tuning(tuning);
        let builder = match shards {
            Some(shards) => builder.shards(shards),
            None => builder,
        };
        let (store, clock) = manual_store_with(builder);
        let mut model = Model { now: T0, ..Model::default() };
        for op in &ops {
            run(&store, &clock, &mut model, op)?;
        }
        run(&store, &clock, &mut model, &Op::ListAll(String::new(), 2))?;
        run(&store, &clock, &mut model, &Op::Len)?;
        run(&store, &clock, &mut model, &Op::ReclaimExpired)?;
    }
}
