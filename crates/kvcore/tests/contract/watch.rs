//! The change feed: events in revision order, from a revision or from now,
//! the bounded history, expiry as an event, slow watchers cut off, and a
//! model test of all of it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kvcore::{Error, Event, EventKind, Store, TtlChange, Watcher};
use proptest::prelude::*;

use super::fixtures::{manual_store_with, ms};

/// Waits (at most 10 s) until `watcher` has returned every event up to
/// `revision`, collecting them; a watcher cut off is watched again from
/// where it says, as a client would.
fn drain_to(store: &Store, watcher: &mut Watcher, revision: u64, into: &mut Vec<Event>) {
    let started = Instant::now();
    while watcher.progress() < revision {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "watcher of {:?} stuck at {} short of {revision}",
            watcher.prefix(),
            watcher.progress()
        );
        match watcher.recv_timeout(ms(20)) {
            Ok(Some(event)) => into.push(event),
            Ok(None) => {}
            Err(Error::WatcherCutOff { resume_from, .. }) => {
                let prefix = watcher.prefix().to_owned();
                *watcher = store
                    .watch(&prefix, Some(resume_from))
                    .expect("a watcher cut off can watch again from where it was cut");
            }
            Err(err) => panic!("unexpected watch error {err}"),
        }
    }
}

/// One event as the test compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    revision: u64,
    key: String,
    kind: EventKind,
    value: Option<Vec<u8>>,
}

fn seen(event: &Event) -> Seen {
    Seen {
        revision: event.revision(),
        key: event.key().to_owned(),
        kind: event.kind(),
        value: event.value().map(<[u8]>::to_vec),
    }
}

#[test]
fn a_watcher_sees_puts_deletes_and_expiries_under_its_prefix_in_order() {
    let (store, clock) = manual_store_with(Store::builder());
    let mut watcher = store.watch("app/", None).unwrap();
    let v1 = store
        .create("app/a", "1", Some(Duration::from_millis(10)))
        .unwrap();
    store.create("other", "x", None).unwrap();
    let v2 = store.upsert("app/b", "2", TtlChange::Keep).unwrap().version;
    let v3 = store.remove("app/b").unwrap();
    clock.advance(11);
    assert!(store.get("app/a").unwrap().is_none());
    let expired_at = store.stats().revision;
    let mut events = Vec::new();
    drain_to(&store, &mut watcher, expired_at, &mut events);
    let got: Vec<(u64, &str, EventKind, Option<&[u8]>)> = events
        .iter()
        .map(|e| (e.revision(), e.key(), e.kind(), e.value()))
        .collect();
    assert_eq!(
        got,
        [
            (v1, "app/a", EventKind::Put, Some(&b"1"[..])),
            (v2, "app/b", EventKind::Put, Some(&b"2"[..])),
            (v3, "app/b", EventKind::Delete, None),
            (expired_at, "app/a", EventKind::Expire, None),
        ],
        "the other prefix is left out; the expiry takes the next revision when a read notices it"
    );
    assert_eq!(events[0].ttl(), Some(ms(10)), "a put carries its ttl");
}

#[test]
fn an_unwatched_store_without_history_gives_expiries_no_revision() {
    let (store, clock) = manual_store_with(Store::builder());
    store.create("k", "v", Some(ms(1))).unwrap();
    clock.advance(2);
    assert!(store.get("k").unwrap().is_none());
    assert_eq!(
        store.stats().revision,
        1,
        "nobody watches and no history is kept: nothing to number"
    );
}

#[test]
fn a_watch_from_a_revision_replays_the_history_and_an_older_one_is_compacted() {
    let (store, _clock) = manual_store_with(Store::builder().watch_history(3));
    for i in 1..=5 {
        store
            .upsert(&format!("k{i}"), "v", TtlChange::Keep)
            .unwrap();
    }
    // Nobody watches: the history keeps exactly the last 3 events (3, 4, 5).
    assert_eq!(store.watch_bounds(), (2, 5));
    let mut watcher = store.watch("", Some(2)).unwrap();
    let mut events = Vec::new();
    drain_to(&store, &mut watcher, 5, &mut events);
    let revisions: Vec<u64> = events.iter().map(Event::revision).collect();
    assert_eq!(revisions, [3, 4, 5], "everything after revision 2");
    match store.watch("", Some(1)) {
        Err(Error::Compacted { requested, oldest }) => {
            assert_eq!((requested, oldest), (1, 2));
        }
        other => panic!("expected compacted, got {other:?}"),
    }
    // A revision the store has not reached was seen in another life of it
    // (before a restart that lost it): the numbers after it will be other
    // changes, so the watch is refused rather than silently skip them.
    match store.watch("", Some(7)) {
        Err(Error::Compacted { requested, oldest }) => {
            assert_eq!((requested, oldest), (7, 2));
        }
        other => panic!("expected compacted for a revision not reached, got {other:?}"),
    }
    // The latest revision itself is fine: the watch starts after it.
    let mut latest = store.watch("", Some(5)).unwrap();
    store.upsert("k6", "v", TtlChange::Keep).unwrap();
    let mut events = Vec::new();
    drain_to(&store, &mut latest, 6, &mut events);
    assert_eq!(events.iter().map(Event::revision).collect::<Vec<_>>(), [6]);
}

#[test]
fn a_slow_watcher_is_cut_off_without_holding_writers_and_resumes_exactly() {
    let (store, _clock) = manual_store_with(Store::builder().watch_history(1000).watch_buffer(4));
    let mut slow = store.watch("", None).unwrap();
    for i in 0..50 {
        store
            .upsert(&format!("k{i}"), "v", TtlChange::Keep)
            .unwrap();
    }
    // The writes finished without anyone reading: the watcher holds its
    // four, then says where to resume.
    let started = Instant::now();
    let resume_from = loop {
        match slow.recv_timeout(ms(50)) {
            Ok(Some(_)) => {}
            Ok(None) => assert!(started.elapsed() < Duration::from_secs(10), "never cut off"),
            Err(Error::WatcherCutOff {
                resume_from,
                buffer,
            }) => {
                assert_eq!(buffer, 4);
                break resume_from;
            }
            Err(err) => panic!("unexpected {err}"),
        }
    };
    assert_eq!(resume_from, 4, "it held revisions 1 to 4");
    assert!(
        slow.next().is_none(),
        "a cut-off watcher yields nothing more"
    );
    let mut again = store.watch("", Some(resume_from)).unwrap();
    let mut events = Vec::new();
    drain_to(&store, &mut again, 50, &mut events);
    assert_eq!(
        events.first().map(Event::revision),
        Some(5),
        "the rest, from revision 5"
    );
}

#[test]
fn writes_racing_on_many_shards_reach_watchers_in_revision_order_without_gaps() {
    // Revisions are taken under different shard locks, so events reach the
    // history out of order; watchers must still get 1, 2, 3, ... exactly.
    let store = Store::builder().watch_history(100_000).build();
    let mut watcher = store.watch("", None).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..2_000 {
                    let key = format!("t{t}/{}", i % 50);
                    if i % 7 == 0 {
                        let _ = store.remove(&key);
                    } else {
                        store.upsert(&key, [i as u8], TtlChange::Keep).unwrap();
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let last = store.stats().revision;
    let mut events = Vec::new();
    drain_to(&store, &mut watcher, last, &mut events);
    let revisions: Vec<u64> = events.iter().map(Event::revision).collect();
    let expected: Vec<u64> = (1..=last).collect();
    assert_eq!(revisions, expected, "every revision once, in order");
}

#[test]
fn closing_the_store_ends_its_watchers() {
    let (store, _clock) = manual_store_with(Store::builder());
    let mut watcher = store.watch("", None).unwrap();
    store.clone().close().unwrap();
    assert_eq!(
        watcher.recv_timeout(Duration::from_secs(5)).unwrap_err(),
        Error::Closed
    );
    assert_eq!(store.watch("", None).unwrap_err(), Error::Closed);
}

#[test]
fn the_notify_callback_fires_when_events_arrive() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (store, _clock) = manual_store_with(Store::builder());
    let mut watcher = store.watch("k", None).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    watcher.on_ready(move || {
        counted.fetch_add(1, Ordering::SeqCst);
    });
    store.upsert("k", "v", TtlChange::Keep).unwrap();
    let started = Instant::now();
    while calls.load(Ordering::SeqCst) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never notified"
        );
        std::thread::yield_now();
    }
    assert_eq!(watcher.try_recv().unwrap().map(|e| e.revision()), Some(1));
}

#[test]
fn a_durable_store_refills_its_history_from_the_log_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Store::builder()
            .watch_history(100)
            .open(dir.path())
            .expect("open")
    };
    let store = open();
    store.upsert("a", "1", TtlChange::Keep).unwrap();
    store.upsert("b", "2", TtlChange::Keep).unwrap();
    store.remove("a").unwrap();
    store.close().unwrap();
    let store = open();
    let mut watcher = store.watch("", Some(1)).unwrap();
    let mut events = Vec::new();
    drain_to(&store, &mut watcher, 3, &mut events);
    let got: Vec<(u64, &str, EventKind)> = events
        .iter()
        .map(|e| (e.revision(), e.key(), e.kind()))
        .collect();
    assert_eq!(got, [(2, "b", EventKind::Put), (3, "a", EventKind::Delete)]);
    store.compact().unwrap();
    store.upsert("c", "3", TtlChange::Keep).unwrap();
    let after_compaction = store.stats().revision;
    store.close().unwrap();
    let store = open();
    assert!(
        matches!(store.watch("", Some(1)), Err(Error::Compacted { .. })),
        "the snapshot replaced what came before it"
    );
    let (oldest, _) = store.watch_bounds();
    assert!(
        oldest < after_compaction,
        "the write after the compaction is kept"
    );
    let mut watcher = store.watch("", Some(oldest)).unwrap();
    let mut events = Vec::new();
    drain_to(&store, &mut watcher, after_compaction, &mut events);
    assert_eq!(
        events.last().map(|e| (e.revision(), e.key().to_owned())),
        Some((after_compaction, "c".to_owned()))
    );
}

// ---- The model test ----

#[derive(Debug, Clone)]
enum Op {
    /// Upsert with a TTL in ms, or without a deadline.
    Upsert(String, u8, Option<u64>),
    Create(String, u8),
    /// Update keeping the deadline.
    Update(String, u8),
    Remove(String),
    Get(String),
    Advance(u64),
    Reclaim,
    /// A new watcher on a prefix, from a fraction of the current revision
    /// (`None`: from now).
    Watch(String, Option<u8>),
    /// Drop watcher `i` (modulo) and watch again from its progress.
    Reconnect(usize),
    /// Take what watcher `i` has so far.
    Drain(usize),
}

fn key() -> impl Strategy<Value = String> {
    "[ab]{1,2}"
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (key(), any::<u8>(), proptest::option::of(1u64..20)).prop_map(|(k, v, t)| Op::Upsert(k, v, t)),
        2 => (key(), any::<u8>()).prop_map(|(k, v)| Op::Create(k, v)),
        2 => (key(), any::<u8>()).prop_map(|(k, v)| Op::Update(k, v)),
        2 => key().prop_map(Op::Remove),
        2 => key().prop_map(Op::Get),
        3 => (0u64..15).prop_map(Op::Advance),
        1 => Just(Op::Reclaim),
        2 => ("[ab]{0,1}", proptest::option::of(any::<u8>())).prop_map(|(p, f)| Op::Watch(p, f)),
        1 => (0usize..8).prop_map(Op::Reconnect),
        2 => (0usize..8).prop_map(Op::Drain),
    ]
}

/// The contract's events, computed sequentially from the operations.
#[derive(Default)]
struct Model {
    now: u64,
    revision: u64,
    /// Value and deadline of each key the store holds (expired ones stay
    /// until the store notices them, as in the store).
    records: BTreeMap<String, (Vec<u8>, Option<u64>)>,
    /// Every event so far, in revision order.
    log: Vec<Seen>,
}

impl Model {
    fn expired(&self, key: &str) -> bool {
        self.records
            .get(key)
            .is_some_and(|(_, deadline)| deadline.is_some_and(|d| self.now > d))
    }

    fn live(&self, key: &str) -> bool {
        self.records.contains_key(key) && !self.expired(key)
    }

    fn event(&mut self, key: &str, kind: EventKind, value: Option<Vec<u8>>) -> u64 {
        self.revision += 1;
        self.log.push(Seen {
            revision: self.revision,
            key: key.to_owned(),
            kind,
            value,
        });
        self.revision
    }

    /// The store notices an expired record: it goes, with an event.
    fn notice(&mut self, key: &str) {
        if self.expired(key) {
            self.records.remove(key);
            self.event(key, EventKind::Expire, None);
        }
    }

    fn put(&mut self, key: &str, value: u8, deadline: Option<u64>) -> u64 {
        self.notice(key);
        self.records.insert(key.to_owned(), (vec![value], deadline));
        self.event(key, EventKind::Put, Some(vec![value]))
    }
}

/// A watcher under test and everything it returned.
struct Follower {
    prefix: String,
    from: u64,
    watcher: Watcher,
    got: Vec<Event>,
}

fn run(ops: Vec<Op>, buffer: usize) -> Result<(), TestCaseError> {
    let (store, clock) =
        manual_store_with(Store::builder().watch_history(100_000).watch_buffer(buffer));
    let mut model = Model {
        now: super::fixtures::T0,
        ..Model::default()
    };
    let mut followers: Vec<Follower> = Vec::new();
    for op in ops {
        match op {
            Op::Upsert(key, value, ttl) => {
                let change = ttl.map_or(TtlChange::Persist, |t| TtlChange::Set(ms(t)));
                let version = store.upsert(&key, [value], change).unwrap().version;
                let expected = model.put(&key, value, ttl.map(|t| model.now + t));
                prop_assert_eq!(version, expected, "upsert {}", key);
            }
            Op::Create(key, value) => {
                let result = store.create(&key, [value], None);
                if model.live(&key) {
                    prop_assert!(
                        matches!(result, Err(Error::AlreadyExists { .. })),
                        "create of a live key"
                    );
                } else {
                    let expected = model.put(&key, value, None);
                    prop_assert_eq!(result.unwrap(), expected, "create {}", key);
                }
            }
            Op::Update(key, value) => {
                let result = store.update(&key, [value], TtlChange::Keep);
                if model.live(&key) {
                    let deadline = model.records[&key].1;
                    let expected = model.put(&key, value, deadline);
                    prop_assert_eq!(result.unwrap(), expected, "update {}", key);
                } else {
                    // An update of an expired key fails and leaves it for
                    // later: no event.
                    prop_assert_eq!(result.unwrap_err(), Error::NotFound);
                }
            }
            Op::Remove(key) => {
                let result = store.remove(&key);
                if model.live(&key) {
                    model.records.remove(&key);
                    let expected = model.event(&key, EventKind::Delete, None);
                    prop_assert_eq!(result.unwrap(), expected, "remove {}", key);
                } else {
                    model.notice(&key);
                    prop_assert_eq!(result.unwrap_err(), Error::NotFound);
                }
            }
            Op::Get(key) => {
                let live = store.get(&key).unwrap().is_some();
                prop_assert_eq!(live, model.live(&key));
                model.notice(&key);
            }
            Op::Advance(n) => {
                clock.advance(n);
                model.now += n;
            }
            Op::Reclaim => {
                // The pass numbers expiries in the shards' own order: the
                // model knows which keys, not in which order.
                let before = model.revision;
                let mut expired: Vec<String> = model
                    .records
                    .keys()
                    .filter(|k| model.expired(k))
                    .cloned()
                    .collect();
                store.reclaim_expired();
                let mut reference = store.watch("", Some(before)).unwrap();
                let mut got = Vec::new();
                drain_to(
                    &store,
                    &mut reference,
                    before + expired.len() as u64,
                    &mut got,
                );
                prop_assert_eq!(store.stats().revision, before + expired.len() as u64);
                let mut keys: Vec<String> = got.iter().map(|e| e.key().to_owned()).collect();
                keys.sort();
                expired.sort();
                prop_assert_eq!(&keys, &expired, "the pass expires exactly the expired keys");
                for event in &got {
                    prop_assert_eq!(event.kind(), EventKind::Expire);
                    model.records.remove(event.key());
                    model.revision += 1;
                    prop_assert_eq!(event.revision(), model.revision);
                    model.log.push(seen(event));
                }
            }
            Op::Watch(prefix, fraction) => {
                let from = fraction.map(|f| model.revision * u64::from(f) / 255);
                let watcher = store.watch(&prefix, from).unwrap();
                followers.push(Follower {
                    prefix,
                    from: from.unwrap_or(model.revision),
                    watcher,
                    got: Vec::new(),
                });
            }
            Op::Reconnect(i) if !followers.is_empty() => {
                let count = followers.len();
                let follower = &mut followers[i % count];
                let progress = follower.watcher.progress();
                follower.watcher = store.watch(&follower.prefix, Some(progress)).unwrap();
            }
            Op::Drain(i) if !followers.is_empty() => {
                let count = followers.len();
                let follower = &mut followers[i % count];
                while let Ok(Some(event)) = follower.watcher.try_recv() {
                    follower.got.push(event);
                }
            }
            Op::Reconnect(_) | Op::Drain(_) => {}
        }
    }
    for follower in &mut followers {
        drain_to(
            &store,
            &mut follower.watcher,
            model.revision,
            &mut follower.got,
        );
        let got: Vec<Seen> = follower.got.iter().map(seen).collect();
        let expected: Vec<Seen> = model
            .log
            .iter()
            .filter(|e| e.revision > follower.from && e.key.starts_with(&follower.prefix))
            .cloned()
            .collect();
        prop_assert_eq!(
            got,
            expected,
            "watcher of {:?} from {}: exactly the model's events, in order, across reconnects",
            follower.prefix,
            follower.from
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn watchers_see_exactly_the_models_events_for_their_prefix(
        ops in proptest::collection::vec(op(), 1..80),
        buffer in 1usize..6,
    ) {
        run(ops, buffer)?;
    }
}
