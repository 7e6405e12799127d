//! Recorded concurrent histories of get / upsert / compare-and-swap / remove
//! on a few keys, checked by stateright's [`LinearizabilityTester`] against a
//! sequential model of the store; and hand-made histories that show the
//! checker does reject what is not linearizable.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;

use kvcore::{ActiveExpiry, Error, Store, TtlChange, Tuning};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};

use super::sequential_store::{Key, Model, Op, Ret, Revisions, Value};

const KEYS: [&str; 3] = ["a", "b", "a/b"];

/// Runs `op` on the store and translates the answer for the model.
fn apply(store: &Store, op: &Op) -> Ret {
    let value_of = |bytes: &[u8]| Value::from_le_bytes(bytes.try_into().unwrap());
    match *op {
        Op::Get(key) => Ret::Got(
            store
                .get(KEYS[key])
                .unwrap()
                .map(|e| (value_of(e.value()), e.version())),
        ),
        Op::Upsert(key, value) => {
            let written = store
                .upsert(KEYS[key], value.to_le_bytes(), TtlChange::Keep)
                .unwrap();
            Ret::Upserted(written.version, written.created)
        }
        Op::CompareAndSwap(key, expected, value) => Ret::Swapped(
            match store.compare_and_swap(KEYS[key], expected, value.to_le_bytes(), TtlChange::Keep)
            {
                Ok(version) => Ok(version),
                Err(Error::VersionMismatch { current, .. }) => Err(current),
                Err(other) => panic!("compare-and-swap failed: {other}"),
            },
        ),
        Op::Remove(key) => match store.remove(KEYS[key]) {
            Ok(version) => Ret::Removed(true, Some(version)),
            Err(Error::NotFound) => Ret::Removed(false, None),
            Err(other) => panic!("remove failed: {other}"),
        },
    }
}

/// One recorded event: an invocation or a return, by one thread.
enum Event {
    Invoke(usize, Op),
    Return(usize, Ret),
}

/// Runs `threads` threads of `ops_per_thread` random operations each on a
/// fresh store and returns the history in real-time order.
fn record_history(store: &Store, threads: usize, ops_per_thread: usize, seed: u64) -> Vec<Event> {
    // Each event takes a ticket from one counter: an invocation's ticket is
    // taken before the operation starts and a return's after it ends, so
    // ticket order never contradicts real-time order.
    let tickets = AtomicU64::new(0);
    let events = Mutex::new(Vec::new());
    let barrier = Barrier::new(threads);
    thread::scope(|scope| {
        for thread_id in 0..threads {
            let (tickets, events, barrier) = (&tickets, &events, &barrier);
            scope.spawn(move || {
                let mut rng = seed.wrapping_mul(31).wrapping_add(thread_id as u64) | 1;
                let mut next = |n: u64| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng % n
                };
                // The version this thread last saw per key: what a real
                // compare-and-swap caller would expect.
                let mut seen: BTreeMap<Key, u64> = BTreeMap::new();
                let mut mine = Vec::with_capacity(2 * ops_per_thread);
                barrier.wait();
                for i in 0..ops_per_thread {
                    let key = next(KEYS.len() as u64) as Key;
                    let value = (thread_id * 1000 + i) as Value;
                    let op = match next(10) {
                        0..=3 => Op::Get(key),
                        4..=5 => Op::Upsert(key, value),
                        6..=8 => {
                            Op::CompareAndSwap(key, seen.get(&key).copied().unwrap_or(0), value)
                        }
                        _ => Op::Remove(key),
                    };
                    // Now and then hand the core over inside the recorded
                    // interval, so operations overlap even on a machine with
                    // fewer free cores than threads.
                    let (yield_before, yield_after) = (next(3) == 0, next(3) == 0);
                    mine.push((
                        tickets.fetch_add(1, Ordering::SeqCst),
                        Event::Invoke(thread_id, op),
                    ));
                    if yield_before {
                        thread::yield_now();
                    }
                    let ret = apply(store, &op);
                    if yield_after {
                        thread::yield_now();
                    }
                    mine.push((
                        tickets.fetch_add(1, Ordering::SeqCst),
                        Event::Return(thread_id, ret.clone()),
                    ));
                    if let Some(version) = ret.version_seen() {
                        seen.insert(key, version);
                    }
                }
                events.lock().unwrap().extend(mine);
            });
        }
    });
    let mut events = events.into_inner().unwrap();
    events.sort_by_key(|(ticket, _)| *ticket);
    events.into_iter().map(|(_, event)| event).collect()
}

fn check(history: Vec<Event>) -> LinearizabilityTester<usize, Model> {
    let mut tester = LinearizabilityTester::new(Model::new(Revisions::Consecutive));
    for event in history {
        match event {
            Event::Invoke(thread_id, op) => tester.on_invoke(thread_id, op),
            Event::Return(thread_id, ret) => tester.on_return(thread_id, ret),
        }
        .expect("a well-formed history: one operation in flight per thread");
    }
    tester
}

#[test]
fn concurrent_histories_of_reads_writes_and_swaps_are_linearizable() {
    const ROUNDS: u64 = 100;
    const THREADS: usize = 3;
    const OPS_PER_THREAD: usize = 12;
    for round in 0..ROUNDS {
        // Vary the layout: each preset (today all three are the same 64
        // reader-writer-locked shards, see shard.rs), and every key behind
        // one lock.
        let builder = match round % 4 {
            0 => Store::builder().tuning(Tuning::Balanced),
            1 => Store::builder().tuning(Tuning::ReadHeavy),
            2 => Store::builder().tuning(Tuning::WriteHeavy),
            _ => Store::builder().shards(1),
        };
        let store = builder.active_expiry(ActiveExpiry::Manual).build();
        let history = record_history(&store, THREADS, OPS_PER_THREAD, round);
        let tester = check(history);
        assert!(
            tester.is_consistent(),
            "round {round}: the store's history is not linearizable: {tester:?}"
        );
    }
}

/// Thread 0 creates `a` = 1 at version 1 before anything else happens.
fn after_a_is_created(tester: &mut LinearizabilityTester<usize, Model>) {
    tester
        .on_invret(0, Op::Upsert(0, 1), Ret::Upserted(1, true))
        .unwrap();
}

#[test]
fn the_checker_rejects_histories_that_are_not_linearizable() {
    type Build = fn(&mut LinearizabilityTester<usize, Model>) -> Result<(), String>;
    let cases: &[(&str, Build)] = &[
        ("a read after a finished write misses it", |t| {
            after_a_is_created(t);
            t.on_invret(1, Op::Get(0), Ret::Got(None))?;
            Ok(())
        }),
        (
            "two reads in sequence see a new value and then the old one",
            |t| {
                after_a_is_created(t);
                t.on_invoke(0, Op::Upsert(0, 2))?;
                t.on_invret(1, Op::Get(0), Ret::Got(Some((2, 2))))?;
                t.on_invret(2, Op::Get(0), Ret::Got(Some((1, 1))))?;
                t.on_return(0, Ret::Upserted(2, false))?;
                Ok(())
            },
        ),
        ("a swap succeeds against a version already replaced", |t| {
            after_a_is_created(t);
            t.on_invret(0, Op::Upsert(0, 2), Ret::Upserted(2, false))?;
            t.on_invret(1, Op::CompareAndSwap(0, 1, 3), Ret::Swapped(Ok(3)))?;
            Ok(())
        }),
        (
            "two concurrent swaps at the same version both succeed",
            |t| {
                after_a_is_created(t);
                t.on_invoke(1, Op::CompareAndSwap(0, 1, 2))?;
                t.on_invoke(2, Op::CompareAndSwap(0, 1, 3))?;
                t.on_return(1, Ret::Swapped(Ok(2)))?;
                t.on_return(2, Ret::Swapped(Ok(3)))?;
                Ok(())
            },
        ),
        ("versions go backwards across keys", |t| {
            t.on_invret(0, Op::Upsert(0, 1), Ret::Upserted(2, true))?;
            t.on_invret(1, Op::Upsert(1, 2), Ret::Upserted(1, true))?;
            Ok(())
        }),
        ("a removed key is read back", |t| {
            after_a_is_created(t);
            t.on_invret(0, Op::Remove(0), Ret::Removed(true, Some(2)))?;
            t.on_invret(1, Op::Get(0), Ret::Got(Some((1, 1))))?;
            Ok(())
        }),
    ];
    for (message, build) in cases {
        let mut tester = LinearizabilityTester::new(Model::new(Revisions::Consecutive));
        build(&mut tester).unwrap();
        assert!(!tester.is_consistent(), "accepted: {message}");
    }
}

#[test]
fn the_checker_accepts_either_outcome_of_a_read_racing_a_write() {
    // A read that overlaps a write may see the old value or the new one; it
    // is the sequence of reads and the versions that must make sense.
    let cases = [
        ("the read sees the old value", Some((1, 1))),
        ("the read sees the new value", Some((2, 2))),
    ];
    for (message, seen) in cases {
        let mut tester = LinearizabilityTester::new(Model::new(Revisions::Consecutive));
        after_a_is_created(&mut tester);
        tester.on_invoke(0, Op::Upsert(0, 2)).unwrap();
        tester.on_invret(1, Op::Get(0), Ret::Got(seen)).unwrap();
        tester.on_return(0, Ret::Upserted(2, false)).unwrap();
        assert!(tester.is_consistent(), "rejected: {message}");
    }
}
