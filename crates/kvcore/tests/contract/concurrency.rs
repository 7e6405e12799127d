//! Many threads at once: counters built from compare-and-swap loops, racing
//! creates and removes, versions under contention, mixed operations, listing
//! and reclaiming while others write.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use kvcore::{ActiveExpiry, Error, ManualClock, Store, TtlChange, Tuning};

use super::fixtures::{T0, manual_store_with, ms};

const THREADS: usize = 4;

/// Every layout, with a one-shard store that puts every key behind one lock.
fn stores() -> Vec<(String, Store)> {
    let mut stores: Vec<(String, Store)> =
        [Tuning::Balanced, Tuning::ReadHeavy, Tuning::WriteHeavy]
            .into_iter()
            .map(|tuning| {
                let (store, _) = manual_store_with(Store::builder().tuning(tuning));
                (tuning.name().to_owned(), store)
            })
            .collect();
    let (store, _) = manual_store_with(Store::builder().shards(1));
    stores.push(("one shard".to_owned(), store));
    stores
}

/// A small deterministic generator, so each thread's mix is reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn read_counter(store: &Store, key: &str) -> (u64, u64) {
    let entry = store.get(key).unwrap().expect("counters are never removed");
    let bytes: [u8; 8] = entry.value().try_into().expect("an 8-byte counter");
    (u64::from_le_bytes(bytes), entry.version())
}

#[test]
fn counters_built_from_compare_and_swap_retry_loops_add_up_exactly() {
    const COUNTERS: usize = 3;
    const INCREMENTS: usize = 300;
    for (name, store) in stores() {
        for c in 0..COUNTERS {
            store
                .create(&format!("counter/{c}"), 0u64.to_le_bytes(), None)
                .unwrap();
        }
        let barrier = Barrier::new(THREADS);
        thread::scope(|scope| {
            for t in 0..THREADS {
                let (store, barrier) = (&store, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    for i in 0..INCREMENTS {
                        let key = format!("counter/{}", (t + i) % COUNTERS);
                        loop {
                            let (value, version) = read_counter(store, &key);
                            let next = (value + 1).to_le_bytes();
                            match store.compare_and_swap(&key, version, next, TtlChange::Keep) {
                                Ok(_) => break,
                                Err(Error::VersionMismatch { .. }) => continue,
                                Err(other) => panic!("{other}"),
                            }
                        }
                    }
                });
            }
        });
        for c in 0..COUNTERS {
            let expected = (0..THREADS)
                .flat_map(|t| (0..INCREMENTS).map(move |i| (t + i) % COUNTERS))
                .filter(|&counter| counter == c)
                .count() as u64;
            let (value, _) = read_counter(&store, &format!("counter/{c}"));
            assert_eq!(
                value, expected,
                "{name}: counter {c} lost or doubled an increment"
            );
        }
        assert_eq!(
            store.stats().revision,
            (COUNTERS + THREADS * INCREMENTS) as u64,
            "{name}: one revision per successful write, none for a failed one"
        );
    }
}

#[test]
fn concurrent_creates_of_the_same_key_have_exactly_one_winner() {
    const ROUNDS: usize = 100;
    for (name, store) in stores() {
        let barrier = Barrier::new(THREADS);
        let results: Vec<Vec<Result<u64, Error>>> = thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (store, barrier) = (&store, &barrier);
                    scope.spawn(move || {
                        (0..ROUNDS)
                            .map(|round| {
                                barrier.wait();
                                store.create(&format!("race/{round}"), t.to_string(), None)
                            })
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for round in 0..ROUNDS {
            let winners: Vec<(usize, u64)> = (0..THREADS)
                .filter_map(|t| results[t][round].as_ref().ok().map(|v| (t, *v)))
                .collect();
            let [(winner, version)] = winners[..] else {
                panic!("{name}: round {round} had winners {winners:?}");
            };
            for (t, result) in results.iter().enumerate().filter(|(t, _)| *t != winner) {
                assert_eq!(
                    result[round],
                    Err(Error::AlreadyExists {
                        current_version: version
                    }),
                    "{name}: round {round}, thread {t} lost to the winner"
                );
            }
            let entry = store.get(&format!("race/{round}")).unwrap().unwrap();
            assert_eq!(
                entry.value(),
                winner.to_string().as_bytes(),
                "{name}: round {round}"
            );
            assert_eq!(entry.version(), version, "{name}: round {round}");
        }
    }
}

#[test]
fn concurrent_removes_of_the_same_key_have_exactly_one_winner() {
    const ROUNDS: usize = 100;
    for (name, store) in stores() {
        let versions: Vec<u64> = (0..ROUNDS)
            .map(|round| store.create(&format!("doomed/{round}"), "v", None).unwrap())
            .collect();
        let barrier = Barrier::new(THREADS);
        let wins: Vec<usize> = thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (store, barrier, versions) = (&store, &barrier, &versions);
                    scope.spawn(move || {
                        (0..ROUNDS)
                            .map(|round| {
                                barrier.wait();
                                let key = format!("doomed/{round}");
                                // Half the threads remove unconditionally, half at the version.
                                let result = if t % 2 == 0 {
                                    store
                                        .remove(&key)
                                        .map_err(|e| assert_eq!(e, Error::NotFound))
                                } else {
                                    store.remove_if_version(&key, versions[round]).map_err(|e| {
                                        assert_eq!(
                                            e,
                                            Error::VersionMismatch {
                                                expected: versions[round],
                                                current: None
                                            }
                                        )
                                    })
                                };
                                usize::from(result.is_ok())
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let per_thread: Vec<Vec<usize>> =
                handles.into_iter().map(|h| h.join().unwrap()).collect();
            (0..ROUNDS)
                .map(|round| per_thread.iter().map(|wins| wins[round]).sum())
                .collect()
        });
        assert!(
            wins.iter().all(|&w| w == 1),
            "{name}: winners per round {wins:?}"
        );
        assert!(store.is_empty(), "{name}");
    }
}

#[test]
fn every_successful_write_takes_its_own_version_in_order() {
    const WRITES: usize = 1000;
    for (name, store) in stores() {
        let barrier = Barrier::new(THREADS);
        let per_thread: Vec<Vec<u64>> = thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (store, barrier) = (&store, &barrier);
                    scope.spawn(move || {
                        let mut rng = Rng::new(t as u64);
                        barrier.wait();
                        (0..WRITES)
                            .filter_map(|i| {
                                let key = format!("k{}", rng.below(8));
                                match rng.below(3) {
                                    0 => store.remove(&key).ok(),
                                    1 => store.create(&key, i.to_string(), None).ok(),
                                    _ => Some(
                                        store.upsert(&key, "v", TtlChange::Keep).unwrap().version,
                                    ),
                                }
                            })
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (t, versions) in per_thread.iter().enumerate() {
            assert!(
                versions.windows(2).all(|w| w[0] < w[1]),
                "{name}: thread {t} saw a version go back"
            );
        }
        let all: BTreeSet<u64> = per_thread.iter().flatten().copied().collect();
        let total: usize = per_thread.iter().map(Vec::len).sum();
        assert_eq!(all.len(), total, "{name}: a version was handed out twice");
        let revision = store.stats().revision;
        assert_eq!(
            all,
            (1..=revision).collect(),
            "{name}: every revision up to the latest belongs to one successful write"
        );
    }
}

#[test]
fn mixed_operations_leave_every_threads_own_keys_exactly_as_it_wrote_them() {
    const OPS: usize = 1500;
    for (name, store) in stores() {
        let stable: Vec<String> = (0..30).map(|i| format!("stable/{i:02}")).collect();
        for key in &stable {
            store.create(key, "untouched", None).unwrap();
        }
        let writers_done = AtomicBool::new(false);
        let barrier = Barrier::new(THREADS + 1);
        let models: Vec<BTreeMap<String, (String, u64)>> = thread::scope(|scope| {
            // A lister pages through keys nobody touches while the others churn.
            let lister = scope.spawn(|| {
                barrier.wait();
                let mut listings = 0;
                while !writers_done.load(Ordering::Acquire) || listings == 0 {
                    let mut listed = Vec::new();
                    let mut cursor: Option<String> = None;
                    loop {
                        let page = store.list("stable/", cursor.as_deref(), 7);
                        listed.extend(page.entries.iter().map(|e| e.key().to_owned()));
                        match page.next {
                            Some(next) => cursor = Some(next),
                            None => break,
                        }
                    }
                    assert_eq!(
                        listed, stable,
                        "{name}: a listing repeated or skipped a key"
                    );
                    listings += 1;
                }
            });
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (store, barrier) = (&store, &barrier);
                    scope.spawn(move || {
                        let mut rng = Rng::new(100 + t as u64);
                        let mut model = BTreeMap::new();
                        barrier.wait();
                        for i in 0..OPS {
                            let own = format!("own/{t}/{}", rng.below(6));
                            let shared = format!("shared/{}", rng.below(4));
                            let value = format!("{t}:{i}");
                            run_one_mixed_op(store, &mut rng, &own, &shared, &value, &mut model);
                        }
                        model
                    })
                })
                .collect();
            let models = handles.into_iter().map(|h| h.join().unwrap()).collect();
            writers_done.store(true, Ordering::Release);
            lister.join().unwrap();
            models
        });

        for (t, model) in models.iter().enumerate() {
            let page = store.list(&format!("own/{t}/"), None, 100);
            let listed: BTreeMap<String, (String, u64)> = page
                .entries
                .iter()
                .map(|e| {
                    let value = String::from_utf8(e.value().to_vec()).unwrap();
                    (e.key().to_owned(), (value, e.version()))
                })
                .collect();
            assert_eq!(&listed, model, "{name}: thread {t}'s own keys");
        }
        let shared = store.list("shared/", None, 100).entries.len();
        let own: usize = models.iter().map(BTreeMap::len).sum();
        assert_eq!(store.len(), stable.len() + shared + own, "{name}");
    }
}

/// One random operation on a key only this thread touches (checked against
/// `model`) or on a key every thread touches (checked for sanity only).
fn run_one_mixed_op(
    store: &Store,
    rng: &mut Rng,
    own: &str,
    shared: &str,
    value: &str,
    model: &mut BTreeMap<String, (String, u64)>,
) {
    let current = model.get(own).map(|(_, version)| *version);
    match rng.below(8) {
        0 => {
            let result = store.create(own, value, None);
            match current {
                None => {
                    model.insert(own.into(), (value.into(), result.unwrap()));
                }
                Some(v) => assert_eq!(result, Err(Error::AlreadyExists { current_version: v })),
            }
        }
        1 => {
            let result = store.update(own, value, TtlChange::Keep);
            match current {
                Some(_) => {
                    model.insert(own.into(), (value.into(), result.unwrap()));
                }
                None => assert_eq!(result, Err(Error::NotFound)),
            }
        }
        2 => {
            let expected = current.unwrap_or(1);
            let result = store.compare_and_swap(own, expected, value, TtlChange::Keep);
            match current {
                Some(_) => {
                    model.insert(own.into(), (value.into(), result.unwrap()));
                }
                None => assert_eq!(
                    result,
                    Err(Error::VersionMismatch {
                        expected,
                        current: None
                    })
                ),
            }
        }
        3 => {
            let result = store.remove(own);
            match model.remove(own) {
                Some(_) => assert!(result.is_ok()),
                None => assert_eq!(result, Err(Error::NotFound)),
            }
        }
        4 => {
            let entry = store.get(own).unwrap();
            let seen = entry.map(|e| (String::from_utf8(e.value().to_vec()).unwrap(), e.version()));
            assert_eq!(seen.as_ref(), model.get(own));
        }
        5 => {
            let written = store.upsert(shared, value, TtlChange::Keep).unwrap();
            let _ = store.compare_and_swap(shared, written.version, value, TtlChange::Keep);
        }
        6 => {
            if let Some(entry) = store.get(shared).unwrap() {
                let _ = store.remove_if_version(shared, entry.version());
            }
        }
        _ => {
            let page = store.list("shared/", None, 2);
            assert!(page.entries.len() <= 2);
            assert!(page.entries.windows(2).all(|w| w[0].key() < w[1].key()));
        }
    }
}

#[test]
fn expired_keys_are_counted_once_while_readers_writers_and_the_reclaimer_race() {
    const KEYS_PER_WRITER: usize = 400;
    let clock = Arc::new(ManualClock::new(T0));
    let store = Store::builder()
        .clock(clock.clone())
        .active_expiry(ActiveExpiry::Manual)
        .build();
    let writers_done = AtomicBool::new(false);
    thread::scope(|scope| {
        let writers: Vec<_> = (0..2)
            .map(|t| {
                let (store, clock) = (&store, &clock);
                scope.spawn(move || {
                    for i in 0..KEYS_PER_WRITER {
                        // Each key is written once; every fourth lives forever.
                        let ttl = (i % 4 != 0).then(|| ms(1 + (i % 7) as u64));
                        store.create(&format!("w{t}/{i}"), "v", ttl).unwrap();
                        if i % 10 == 0 {
                            clock.advance(1);
                        }
                    }
                })
            })
            .collect();
        // Readers reclaim expired keys lazily, one at a time...
        scope.spawn(|| {
            let mut rng = Rng::new(7);
            while !writers_done.load(Ordering::Acquire) {
                let key = format!("w{}/{}", rng.below(2), rng.below(KEYS_PER_WRITER as u64));
                let _ = store.get(&key).unwrap();
            }
        });
        // ...while passes reclaim them in bulk.
        scope.spawn(|| {
            while !writers_done.load(Ordering::Acquire) {
                store.reclaim_expired();
                let _ = store.len();
            }
        });
        for writer in writers {
            writer.join().unwrap();
        }
        writers_done.store(true, Ordering::Release);
    });

    clock.advance(1000);
    store.reclaim_expired();
    let stats = store.stats();
    let with_ttl = 2 * (KEYS_PER_WRITER - KEYS_PER_WRITER / 4);
    assert_eq!(
        stats.expired_reclaimed, with_ttl as u64,
        "each expired key counted once"
    );
    assert_eq!(
        stats.keys,
        2 * KEYS_PER_WRITER / 4,
        "the keys without a deadline"
    );
}

/// A token moves from key to key: each step creates the next key, then
/// removes the one before, so at every instant one or two consecutive keys
/// exist. A count sees the store at one instant (every shard held at once
/// for the moment it takes to add up their sizes), so it finds one or two.
/// A listing reads each shard at an instant of its own (README, "Listing"):
/// every key it returns was live at some instant during the call, so it lies
/// between the token's position before the call and after it.
#[test]
fn a_count_sees_one_instant_and_a_listing_only_keys_live_during_it() {
    const STEPS: usize = 20_000;
    let store = Store::builder().active_expiry(ActiveExpiry::Manual).build();
    let key = |i: usize| format!("token/{i:06}");
    store.create(&key(0), "x", None).unwrap();
    let done = AtomicBool::new(false);
    // The last key created; the one before it may still exist.
    let progress = AtomicUsize::new(0);
    thread::scope(|scope| {
        scope.spawn(|| {
            for i in 1..=STEPS {
                store.create(&key(i), "x", None).unwrap();
                progress.store(i, Ordering::Release);
                store.remove(&key(i - 1)).unwrap();
            }
            done.store(true, Ordering::Release);
        });
        let mut looks = 0;
        while !done.load(Ordering::Acquire) || looks < 100 {
            looks += 1;
            // Every key below `before - 1` was removed before the listing
            // began; none above `after + 1` was created before it ended.
            let before = progress.load(Ordering::Acquire);
            let page = store.list("token/", None, 10);
            let after = progress.load(Ordering::Acquire);
            let seen: Vec<usize> = page
                .entries
                .iter()
                .map(|e| e.key()["token/".len()..].parse().unwrap())
                .collect();
            assert!(
                seen.windows(2).all(|w| w[0] < w[1]),
                "listing {looks}: keys out of order: {seen:?}"
            );
            assert!(
                seen.iter()
                    .all(|&i| before.saturating_sub(1) <= i && i <= after + 1),
                "listing {looks} saw {seen:?}, keys not live during it ({before}..={after})"
            );
            let count = store.len();
            assert!((1..=2).contains(&count), "count {looks} was {count}");
        }
    });
}
