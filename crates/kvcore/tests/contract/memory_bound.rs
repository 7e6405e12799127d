//! A store given a memory bound never holds more: `reject` refuses writes
//! (reads and removals keep working), `evict-lru` removes the least recently
//! used keys, `evict-ttl` the nearest deadlines; an evicted key stays gone
//! after a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kvcore::{ActiveExpiry, Error, EventKind, Eviction, ManualClock, Store, TtlChange};

use super::fixtures::{T0, manual_store_with, ms};

const KIB: u64 = 1024;

fn value(i: usize, len: usize) -> Vec<u8> {
    let mut v = vec![b'v'; len];
    v[..8].copy_from_slice(&(i as u64).to_le_bytes());
    v
}

/// Creates `key-0000`, `key-0001`, ... with 100-byte values until the
/// bound refuses one; returns how many went in.
fn fill_until_full(store: &Store) -> usize {
    for i in 0.. {
        match store.create(&format!("key-{i:04}"), value(i, 100), None) {
            Ok(_) => {}
            Err(Error::MemoryFull {
                needed,
                used,
                bound,
            }) => {
                assert!(used <= bound, "{used} held over the bound {bound}");
                assert!(used + needed > bound, "refused a write that fitted");
                return i;
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    unreachable!()
}

#[test]
fn reject_refuses_writes_that_do_not_fit_and_keeps_reads_deletes_and_data() {
    let (store, _) = manual_store_with(Store::builder().max_memory(64 * KIB));
    let stored = fill_until_full(&store);
    assert!(
        stored > 300,
        "64 KiB holds hundreds of 100-byte values, got {stored}"
    );
    let stats = store.stats().memory;
    assert_eq!(stats.bound, Some(64 * KIB));
    assert_eq!(stats.eviction, Eviction::Reject);
    assert_eq!(stats.evicted, 0);
    assert!(stats.used <= 64 * KIB);

    // Every stored value reads back intact.
    for i in 0..stored {
        let entry = store.get(&format!("key-{i:04}")).unwrap().expect("stored");
        assert_eq!(entry.value(), value(i, 100));
    }
    // A same-size overwrite needs no room; a larger value does.
    store
        .upsert("key-0000", value(7, 100), TtlChange::Keep)
        .unwrap();
    assert!(matches!(
        store.upsert("key-0001", value(1, 4000), TtlChange::Keep),
        Err(Error::MemoryFull { .. })
    ));
    assert_eq!(
        store.get("key-0001").unwrap().unwrap().value(),
        value(1, 100)
    );
    // A delete works and makes room: the key can be written again (its
    // table has a free slot now, so only the record needs room).
    store.remove("key-0002").unwrap();
    assert!(store.get("key-0002").unwrap().is_none());
    store.create("key-0002", value(2, 100), None).unwrap();
    assert_eq!(store.len(), stored);
}

#[test]
fn a_write_larger_than_the_whole_bound_is_refused_under_every_policy() {
    for policy in [Eviction::Reject, Eviction::EvictLru, Eviction::EvictTtl] {
        let (store, _) = manual_store_with(Store::builder().max_memory(8 * KIB).eviction(policy));
        store.create("small", "v", Some(ms(1000))).unwrap();
        let err = store.create("big", vec![0u8; 9000], None).unwrap_err();
        assert!(matches!(err, Error::MemoryFull { bound, .. } if bound == 8 * KIB));
        assert!(
            store.get("small").unwrap().is_some(),
            "{policy:?} evicted for nothing"
        );
    }
}

#[test]
fn expired_keys_make_room_before_a_write_is_refused() {
    let (store, clock) = manual_store_with(Store::builder().max_memory(16 * KIB));
    for i in 0.. {
        if store
            .create(&format!("t{i}"), value(i, 100), Some(ms(10)))
            .is_err()
        {
            break;
        }
    }
    clock.advance(11);
    store.create("fresh", value(0, 100), None).unwrap();
    assert_eq!(
        store.stats().memory.evicted,
        0,
        "expired keys are not evictions"
    );
}

#[test]
fn lru_evicts_cold_keys_and_keeps_the_hot_ones() {
    let (store, _) = manual_store_with(
        Store::builder()
            .max_memory(128 * KIB)
            .eviction(Eviction::EvictLru),
    );
    let hot: Vec<String> = (0..50).map(|i| format!("hot-{i:02}")).collect();
    for (i, key) in hot.iter().enumerate() {
        store.create(key, value(i, 100), None).unwrap();
    }
    let cold = 5000;
    for i in 0..cold {
        store
            .create(&format!("cold-{i:05}"), value(i, 100), None)
            .unwrap();
        if i % 10 == 0 {
            for key in &hot {
                store.get(key).unwrap();
            }
        }
        assert!(store.stats().memory.used <= 128 * KIB);
    }
    let stats = store.stats().memory;
    assert!(stats.evicted > 3000, "evicted only {}", stats.evicted);
    let hot_left = hot
        .iter()
        .filter(|k| store.get(k).unwrap().is_some())
        .count();
    assert!(hot_left >= 48, "only {hot_left} of 50 hot keys survived");
    // The oldest cold keys went first.
    let old_left = (0..2000)
        .filter(|i| store.get(&format!("cold-{i:05}")).unwrap().is_some())
        .count();
    assert!(
        old_left <= 20,
        "{old_left} of the 2000 oldest cold keys stayed"
    );
    let newest_left = (cold - 200..cold)
        .filter(|i| store.get(&format!("cold-{i:05}")).unwrap().is_some())
        .count();
    assert!(
        newest_left >= 180,
        "only {newest_left} of the 200 newest stayed"
    );
}

#[test]
fn ttl_evicts_the_nearest_deadlines_first_and_never_a_key_without_one() {
    let (store, _) = manual_store_with(
        Store::builder()
            .max_memory(64 * KIB)
            .eviction(Eviction::EvictTtl),
    );
    // 200 keys with deadlines in a scrambled order (1000 + 7919i mod 400 s).
    let deadline = |i: usize| ms(1000 + ((i * 7919) % 400) as u64 * 1000);
    for i in 0..200 {
        store
            .create(&format!("t{i:04}"), value(i, 100), Some(deadline(i)))
            .unwrap();
    }
    // Then keys without one until 50 timed keys had to go.
    let mut forever = 0;
    while store.stats().memory.evicted < 50 {
        store
            .create(&format!("p{forever:04}"), value(forever, 100), None)
            .unwrap();
        forever += 1;
    }
    for i in 0..forever {
        assert!(store.get(&format!("p{i:04}")).unwrap().is_some());
    }
    // Whatever is left expires no earlier than whatever was evicted.
    let (mut kept, mut gone) = (vec![], vec![]);
    for i in 0..200 {
        match store.get(&format!("t{i:04}")).unwrap() {
            Some(entry) => kept.push(entry.deadline_ms().unwrap()),
            None => gone.push(T0 + deadline(i).as_millis() as u64),
        }
    }
    let latest_gone = gone.iter().max().unwrap();
    let earliest_kept = kept.iter().min().unwrap();
    assert!(
        latest_gone <= earliest_kept,
        "evicted a key expiring at {latest_gone} but kept one at {earliest_kept}"
    );
    assert_eq!(store.stats().memory.evicted, gone.len() as u64);
}

#[test]
fn ttl_with_no_deadline_to_evict_refuses_like_reject() {
    let (store, _) = manual_store_with(
        Store::builder()
            .max_memory(16 * KIB)
            .eviction(Eviction::EvictTtl),
    );
    let stored = fill_until_full(&store);
    assert_eq!(store.len(), stored);
    assert_eq!(store.stats().memory.evicted, 0);
}

#[test]
fn concurrent_writers_never_take_the_store_over_its_bound() {
    for policy in [Eviction::Reject, Eviction::EvictLru] {
        let bound = 256 * KIB;
        let store = Store::builder()
            .max_memory(bound)
            .eviction(policy)
            .active_expiry(ActiveExpiry::Manual)
            .build();
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (store, done) = (store.clone(), done.clone());
            std::thread::spawn(move || {
                let mut peak = 0;
                while !done.load(Ordering::Relaxed) {
                    peak = peak.max(store.stats().memory.used);
                }
                peak
            })
        };
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                    for i in 0..5000 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let len = (x % 2000) as usize + 8;
                        let key = format!("w{t}-{}", x % 3000);
                        match store.upsert(&key, value(i, len), TtlChange::Keep) {
                            Ok(_) | Err(Error::MemoryFull { .. }) => {}
                            Err(other) => panic!("unexpected error {other}"),
                        }
                        if i % 7 == 0 {
                            let _ = store.remove(&key);
                        }
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        let peak = watcher.join().unwrap();
        assert!(
            peak <= bound,
            "{policy:?}: {peak} bytes held, bound {bound}"
        );
        assert!(
            peak > bound / 2,
            "{policy:?}: the test never came near the bound"
        );
        if policy == Eviction::EvictLru {
            assert!(store.stats().memory.evicted > 0);
        }
    }
}

#[test]
fn an_unbounded_store_still_reports_what_it_holds() {
    let (store, _) = manual_store_with(Store::builder());
    let empty = store.stats().memory;
    assert_eq!((empty.used, empty.bound, empty.evicted), (0, None, 0));
    store.create("a", value(0, 100), None).unwrap();
    let one = store.stats().memory.used;
    // A 101-byte record (160 bytes) and a first table (4 buckets).
    assert!((160..=256).contains(&one), "{one}");
    store.remove("a").unwrap();
    assert!(
        store.stats().memory.used < one,
        "a removal gives the record back"
    );
}

#[test]
fn an_evicted_key_stays_gone_after_a_restart() {
    for policy in [Eviction::EvictLru, Eviction::EvictTtl] {
        evicted_keys_stay_gone_after_a_restart(policy);
    }
}

fn evicted_keys_stay_gone_after_a_restart(policy: Eviction) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let open = |bound: Option<u64>| {
        let builder = Store::builder()
            .clock(clock.clone())
            .active_expiry(ActiveExpiry::Manual)
            .fsync(kvcore::Fsync::Always)
            .eviction(policy);
        let builder = match bound {
            Some(bound) => builder.max_memory(bound),
            None => builder,
        };
        builder.open(dir.path()).unwrap()
    };
    let store = open(Some(16 * KIB));
    for i in 0..500 {
        // Deadlines an hour or more away: nothing expires in this test.
        let ttl = ms(3_600_000 + (i as u64 * 7919) % 1000);
        store
            .create(&format!("k{i:04}"), value(i, 100), Some(ttl))
            .unwrap();
    }
    let evicted = store.stats().memory.evicted;
    assert!(evicted > 250, "{policy:?}: {evicted}");
    let present: Vec<bool> = (0..500)
        .map(|i| store.get(&format!("k{i:04}")).unwrap().is_some())
        .collect();
    let used = store.stats().memory.used;
    drop(store);

    let store = open(None);
    for (i, was_present) in present.iter().enumerate() {
        let entry = store.get(&format!("k{i:04}")).unwrap();
        assert_eq!(
            entry.is_some(),
            *was_present,
            "{policy:?}: k{i:04} after the restart"
        );
        if let Some(entry) = entry {
            assert_eq!(entry.value(), value(i, 100));
        }
    }
    assert_eq!(store.len() as u64, 500 - evicted);
    // Recovery counts what it loaded the way the writes did (tables may
    // have grown differently on the way, so within one table's worth).
    let recounted = store.stats().memory.used;
    assert!(recounted.abs_diff(used) < 8 * KIB, "{recounted} vs {used}");
}

#[test]
fn an_eviction_policy_without_a_bound_evicts_nothing() {
    // The builder's eviction without a bound is documented as no effect.
    let store = Store::builder()
        .eviction(Eviction::EvictLru)
        .active_expiry(ActiveExpiry::Manual)
        .build();
    for i in 0..100 {
        store.create(&format!("k{i}"), [0u8; 1000], None).unwrap();
    }
    assert_eq!(store.stats().memory.evicted, 0);
}

#[test]
fn an_eviction_reaches_watchers_as_a_delete_with_a_revision_of_its_own() {
    let (store, _) = manual_store_with(
        Store::builder()
            .max_memory(8 * KIB)
            .eviction(Eviction::EvictLru)
            .watch_history(10_000),
    );
    let mut watcher = store.watch("", None).expect("watch");
    let mut written = Vec::new();
    // Well past the bound: the later creates evict the earlier keys.
    for i in 0..200 {
        let key = format!("key-{i:04}");
        let version = store
            .create(&key, value(i, 100), None)
            .expect("room is made");
        written.push((version, key));
    }
    let evicted = store.stats().memory.evicted;
    assert!(evicted > 0, "nothing was evicted");
    let mut deletes = Vec::new();
    let mut last = 0;
    while last < written.last().expect("writes").0 {
        let event = watcher
            .recv_timeout(ms(2_000))
            .expect("the watcher is not cut off")
            .expect("every change arrives within 2 s");
        assert!(event.revision() > last, "in revision order");
        last = event.revision();
        match event.kind() {
            EventKind::Delete => deletes.push(event.key().to_owned()),
            EventKind::Put => {
                assert!(written.iter().any(|(v, k)| *v == last && k == event.key()));
            }
            EventKind::Expire => panic!("nothing expires here"),
        }
    }
    assert_eq!(
        deletes.len() as u64,
        evicted,
        "one delete event per eviction"
    );
    for key in &deletes {
        assert!(store.get(key).expect("get").is_none(), "{key} is gone");
    }
}

/// The watch history's copies of keys and values are memory the store
/// holds: they count against the bound, and give way to keys when a write
/// does not fit, so a history costs no key its place.
#[test]
fn the_watch_history_counts_against_the_bound_and_gives_way_to_keys() {
    let bounded = |history: usize| {
        manual_store_with(Store::builder().max_memory(64 * KIB).watch_history(history)).0
    };
    let plain = bounded(0);
    let watched = bounded(10_000);
    let fit = fill_until_full(&plain);
    let fit_watched = fill_until_full(&watched);
    // Each store has its own hash seed, so its tables grow at other
    // moments: a few keys either way. A history that did not give way
    // would hold about half the bound.
    assert!(
        fit_watched * 10 >= fit * 9 && fit_watched * 10 <= fit * 11,
        "{fit_watched} keys fit with a history, {fit} without"
    );
    let memory = watched.stats().memory;
    assert!(memory.used <= 64 * KIB, "{} held", memory.used);
    // The history kept only what fitted beside the keys: a watch from the
    // start is told where it now begins.
    match watched.watch("", Some(0)) {
        Err(Error::Compacted { oldest, .. }) => assert!(oldest > 100, "oldest {oldest}"),
        other => panic!("expected Compacted, got {other:?}"),
    }

    // Without a bound the history's bytes are counted all the same.
    let (unbounded, _) = manual_store_with(Store::builder().watch_history(10_000));
    let (alone, _) = manual_store_with(Store::builder());
    for store in [&unbounded, &alone] {
        for i in 0..100 {
            store
                .create(&format!("key-{i:04}"), value(i, 100), None)
                .unwrap();
        }
    }
    let (with, without) = (unbounded.stats().memory.used, alone.stats().memory.used);
    assert!(
        with >= without + 100 * 100,
        "100 events of 100-byte values: {with} held against {without}"
    );
}
