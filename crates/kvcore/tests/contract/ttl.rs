//! Deadlines at the millisecond, TTL changes on writes, and expired keys that
//! block nothing. Time moves only by hand ([`ManualClock`](kvcore::ManualClock)).

use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use kvcore::{Condition, Error, MAX_TTL, MIN_TTL, Store, TtlChange};

use super::fixtures::{T0, manual_store, ms};

/// A store holding `k` with a 100 ms TTL created at `T0` (deadline
/// `T0 + 100`), with the clock moved to `now`. Returns the store and the
/// key's version.
fn key_with_deadline_at(now: u64) -> (Store, u64) {
    let (store, clock) = manual_store();
    let version = store.create("k", "v", Some(ms(100))).unwrap();
    clock.set(now);
    (store, version)
}

#[test]
fn a_key_is_alive_at_exactly_its_deadline_and_gone_one_millisecond_after() {
    // Each way of looking at `k`: true when it found the key alive.
    type Look = fn(&Store, u64) -> bool;
    let looks: &[(&str, Look)] = &[
        ("get returns it", |s, _| s.get("k").unwrap().is_some()),
        ("list shows it", |s, _| {
            !s.list("", None, 10).entries.is_empty()
        }),
        ("len counts it", |s, _| s.len() == 1),
        ("is_empty is false", |s, _| !s.is_empty()),
        ("stats count it", |s, _| s.stats().keys == 1),
        ("create is refused", |s, _| {
            s.create("k", "x", None).is_err()
        }),
        ("update finds it", |s, _| {
            s.update("k", "x", TtlChange::Keep).is_ok()
        }),
        ("upsert replaces it", |s, _| {
            !s.upsert("k", "x", TtlChange::Keep).unwrap().created
        }),
        ("put with present finds it", |s, _| {
            s.put("k", "x", TtlChange::Keep, Condition::Present).is_ok()
        }),
        ("compare-and-swap at its version applies", |s, v| {
            s.compare_and_swap("k", v, "x", TtlChange::Keep).is_ok()
        }),
        ("remove finds it", |s, _| s.remove("k").is_ok()),
        ("remove at its version applies", |s, v| {
            s.remove_if_version("k", v).is_ok()
        }),
    ];
    for (message, look) in looks {
        let (store, version) = key_with_deadline_at(T0 + 100);
        assert!(look(&store, version), "at the deadline: {message}");

        let (store, version) = key_with_deadline_at(T0 + 101);
        assert!(
            !look(&store, version),
            "1 ms after the deadline: not {message}"
        );
    }
}

#[test]
fn an_entry_shows_its_absolute_deadline_and_the_time_left() {
    let (store, clock) = manual_store();
    store.create("k", "v", Some(ms(1000))).unwrap();
    let cases = [
        ("just created", 0, 1000),
        ("a quarter in", 250, 750),
        ("at the deadline, the last millisecond", 1000, 0),
    ];
    for (message, elapsed, left) in cases {
        clock.set(T0 + elapsed);
        let entry = store.get("k").unwrap().expect(message);
        assert_eq!(entry.deadline_ms(), Some(T0 + 1000), "{message}");
        assert_eq!(entry.ttl(), Some(ms(left)), "{message}");
    }
}

#[test]
fn a_one_millisecond_ttl_lives_through_the_next_millisecond_only() {
    let (store, clock) = manual_store();
    store.create("k", "v", Some(ms(1))).unwrap();
    assert_eq!(
        store.get("k").unwrap().unwrap().ttl(),
        Some(ms(1)),
        "when written"
    );
    clock.advance(1);
    assert_eq!(
        store.get("k").unwrap().unwrap().ttl(),
        Some(ms(0)),
        "its deadline"
    );
    clock.advance(1);
    assert!(store.get("k").unwrap().is_none(), "1 ms after its deadline");
}

/// A write with a TTL change on a store that holds `k` at `current`.
type TtlWrite = (
    &'static str,
    fn(&Store, u64, TtlChange) -> Result<u64, Error>,
);

/// Every write that takes a TTL change on a present key.
const TTL_WRITES: &[TtlWrite] = &[
    ("update", |s, _, t| s.update("k", "w", t)),
    ("upsert", |s, _, t| s.upsert("k", "w", t).map(|w| w.version)),
    ("compare_and_swap", |s, v, t| {
        s.compare_and_swap("k", v, "w", t)
    }),
    ("put if present", |s, _, t| {
        s.put("k", "w", t, Condition::Present).map(|w| w.version)
    }),
    ("put at a version", |s, v, t| {
        s.put("k", "w", t, Condition::Version(v)).map(|w| w.version)
    }),
    ("put always", |s, _, t| {
        s.put("k", "w", t, Condition::Always).map(|w| w.version)
    }),
];

#[test]
fn ttls_from_1_ms_to_10_years_are_accepted_and_others_refused() {
    assert_eq!(MIN_TTL, ms(1));
    let year = Duration::from_secs(365 * 24 * 3600);
    assert!(MAX_TTL >= year * 10 && MAX_TTL < year * 10 + Duration::from_secs(3 * 24 * 3600));

    // (message, ttl, the deadline it gives, in ms after now, or None if refused)
    let cases: &[(&str, Duration, Option<u64>)] = &[
        ("zero", Duration::ZERO, None),
        ("one nanosecond", Duration::from_nanos(1), None),
        ("just under 1 ms", Duration::from_micros(999), None),
        ("exactly 1 ms", ms(1), Some(1)),
        (
            "1.5 ms keeps whole milliseconds",
            Duration::from_micros(1500),
            Some(1),
        ),
        ("one minute", Duration::from_secs(60), Some(60_000)),
        (
            "exactly 10 years",
            MAX_TTL,
            Some(MAX_TTL.as_millis() as u64),
        ),
        ("10 years and 1 ns", MAX_TTL + Duration::from_nanos(1), None),
        ("10 years and 1 ms", MAX_TTL + ms(1), None),
        ("the largest Duration", Duration::MAX, None),
    ];
    for (message, ttl, deadline) in cases {
        // create takes the TTL on a new key.
        let (store, _) = manual_store();
        let result = store.create("k", "v", Some(*ttl));
        check_ttl_outcome(
            &store,
            result,
            *ttl,
            *deadline,
            &format!("create: {message}"),
        );

        for (op, write) in TTL_WRITES {
            let (store, _) = manual_store();
            let current = store.create("k", "v", None).unwrap();
            let result = write(&store, current, TtlChange::Set(*ttl));
            check_ttl_outcome(&store, result, *ttl, *deadline, &format!("{op}: {message}"));
        }
    }
}

fn check_ttl_outcome(
    store: &Store,
    result: Result<u64, Error>,
    ttl: Duration,
    deadline: Option<u64>,
    message: &str,
) {
    match deadline {
        Some(after) => {
            let version = result.unwrap_or_else(|e| panic!("{message}: {e}"));
            let entry = store.get("k").unwrap().unwrap();
            assert_eq!(entry.version(), version, "{message}");
            assert_eq!(entry.deadline_ms(), Some(T0 + after), "{message}");
        }
        None => {
            assert_eq!(result, Err(Error::InvalidTtl { ttl }), "{message}");
            let revision = store.stats().revision;
            let entry = store.get("k").unwrap();
            assert!(
                entry.is_none_or(|e| e.version() == revision && e.deadline_ms().is_none()),
                "{message}: the key is as it was"
            );
        }
    }
}

#[test]
fn update_without_ttl_keeps_the_existing_deadline() {
    let (store, clock) = manual_store();
    store.create("k", "v1", Some(ms(1000))).unwrap();
    clock.advance(400);
    store.update("k", "v2", TtlChange::Keep).unwrap();

    let entry = store.get("k").unwrap().unwrap();
    assert_eq!(entry.value(), b"v2");
    assert_eq!(
        entry.deadline_ms(),
        Some(T0 + 1000),
        "not pushed back by the write"
    );
    clock.set(T0 + 1001);
    assert!(
        store.get("k").unwrap().is_none(),
        "and it still expires on time"
    );
}

#[test]
fn every_write_keeps_sets_or_removes_the_deadline_as_told() {
    // (message, TTL change, deadline after the write at T0 + 100)
    let changes: &[(&str, TtlChange, Option<u64>)] = &[
        ("keep", TtlChange::Keep, Some(T0 + 1000)),
        ("set 50 ms", TtlChange::Set(ms(50)), Some(T0 + 150)),
        (
            "set 1 hour",
            TtlChange::Set(ms(3_600_000)),
            Some(T0 + 3_600_100),
        ),
        ("persist", TtlChange::Persist, None),
    ];
    for (change_name, change, deadline) in changes {
        for (op, write) in TTL_WRITES {
            let message = format!("{op} with {change_name}");
            let (store, clock) = manual_store();
            let current = store.create("k", "v", Some(ms(1000))).unwrap();
            clock.set(T0 + 100);

            write(&store, current, *change).unwrap_or_else(|e| panic!("{message}: {e}"));

            let entry = store.get("k").unwrap().unwrap();
            assert_eq!(entry.deadline_ms(), *deadline, "{message}");
            assert_eq!(
                entry.ttl(),
                deadline.map(|d| ms(d - (T0 + 100))),
                "{message}: time left"
            );
        }
    }
}

#[test]
fn keep_and_persist_on_a_key_without_deadline_leave_it_without_one() {
    for (change_name, change) in [("keep", TtlChange::Keep), ("persist", TtlChange::Persist)] {
        for (op, write) in TTL_WRITES {
            let (store, clock) = manual_store();
            let current = store.create("k", "v", None).unwrap();
            write(&store, current, change).unwrap();
            clock.advance(MAX_TTL.as_millis() as u64 * 2);
            let entry = store.get("k").unwrap();
            assert_eq!(
                entry.expect("never expires").deadline_ms(),
                None,
                "{op} with {change_name}"
            );
        }
    }
}

#[test]
fn the_write_result_reports_the_time_left() {
    let (store, clock) = manual_store();
    let cases = [
        (
            "a new key with a ttl",
            TtlChange::Set(ms(5000)),
            0,
            Some(ms(5000)),
        ),
        (
            "keep, a second later",
            TtlChange::Keep,
            1000,
            Some(ms(4000)),
        ),
        ("a new ttl", TtlChange::Set(ms(300)), 0, Some(ms(300))),
        ("persist", TtlChange::Persist, 0, None),
        ("keep without a deadline", TtlChange::Keep, 1000, None),
    ];
    for (message, change, elapsed, ttl) in cases {
        clock.advance(elapsed);
        let written = store.upsert("k", "v", change).unwrap();
        assert_eq!(written.ttl, ttl, "{message}");
    }
}

#[test]
fn keep_on_a_new_key_means_no_deadline() {
    let (store, _) = manual_store();
    type Write = (&'static str, &'static str, fn(&Store, &str));
    let writes: [Write; 3] = [
        ("create without a ttl", "a", |s, k| {
            s.create(k, "v", None).unwrap();
        }),
        ("upsert with keep", "b", |s, k| {
            s.upsert(k, "v", TtlChange::Keep).unwrap();
        }),
        ("put if absent with keep", "c", |s, k| {
            s.put(k, "v", TtlChange::Keep, Condition::Absent).unwrap();
        }),
    ];
    for (message, key, write) in writes {
        write(&store, key);
        assert_eq!(
            store.get(key).unwrap().unwrap().deadline_ms(),
            None,
            "{message}"
        );
    }
}

#[test]
fn a_write_over_an_expired_key_does_not_inherit_its_deadline() {
    let (store, clock) = manual_store();
    store.create("k", "old", Some(ms(10))).unwrap();
    clock.advance(11);

    let written = store.upsert("k", "new", TtlChange::Keep).unwrap();
    assert!(written.created, "an expired key counts as absent");
    assert_eq!(written.ttl, None);
    clock.advance(1_000_000);
    let entry = store
        .get("k")
        .unwrap()
        .expect("no deadline, so still there");
    assert_eq!(entry.value(), b"new");
}

/// What each operation does to an expired key `k` that was at `version`.
type OnExpired = (&'static str, fn(&Store, u64));

#[test]
fn an_expired_key_blocks_nothing() {
    let cases: &[OnExpired] = &[
        ("get returns none", |s, _| {
            assert!(s.get("k").unwrap().is_none())
        }),
        ("create succeeds without the old deadline", |s, v| {
            let created = s.create("k", "new", None).unwrap();
            assert!(created > v);
            let entry = s.get("k").unwrap().unwrap();
            assert_eq!((entry.value(), entry.deadline_ms()), (&b"new"[..], None));
        }),
        ("put if absent succeeds", |s, _| {
            assert!(
                s.put("k", "new", TtlChange::Keep, Condition::Absent)
                    .unwrap()
                    .created
            );
        }),
        ("update says not found", |s, _| {
            assert_eq!(
                s.update("k", "new", TtlChange::Persist),
                Err(Error::NotFound)
            );
        }),
        ("put if present says not found", |s, _| {
            assert_eq!(
                s.put("k", "new", TtlChange::Persist, Condition::Present),
                Err(Error::NotFound)
            );
        }),
        (
            "compare-and-swap at its old version says there is no current one",
            |s, v| {
                assert_eq!(
                    s.compare_and_swap("k", v, "new", TtlChange::Persist),
                    Err(Error::VersionMismatch {
                        expected: v,
                        current: None
                    })
                );
            },
        ),
        ("remove says not found", |s, _| {
            assert_eq!(s.remove("k"), Err(Error::NotFound))
        }),
        (
            "remove at its old version says there is no current one",
            |s, v| {
                assert_eq!(
                    s.remove_if_version("k", v),
                    Err(Error::VersionMismatch {
                        expected: v,
                        current: None
                    })
                );
            },
        ),
        ("list skips it", |s, _| {
            let page = s.list("", None, 10);
            let keys: Vec<_> = page.entries.iter().map(|e| e.key()).collect();
            assert_eq!(keys, ["live"]);
        }),
        ("len and stats skip it", |s, _| {
            assert_eq!(s.len(), 1);
            assert_eq!(s.stats().keys, 1);
        }),
    ];
    for (message, check) in cases {
        let (store, clock) = manual_store();
        let version = store.create("k", "old", Some(ms(10))).unwrap();
        store.create("live", "v", None).unwrap();
        clock.advance(11);

        let outcome = panic::catch_unwind(AssertUnwindSafe(|| check(&store, version)));
        assert!(outcome.is_ok(), "on an expired key: {message}");
    }
}

#[test]
fn each_expired_key_is_counted_once_however_it_is_reclaimed() {
    // (message, action on expired `k`, whether the action itself reclaims
    //  it: checked when stated, else left to the implementation)
    type Action = fn(&Store, u64);
    let cases: &[(&str, Action, Option<bool>)] = &[
        ("get", |s, _| _ = s.get("k"), Some(true)),
        (
            "create over it",
            |s, _| _ = s.create("k", "v", None),
            Some(true),
        ),
        (
            "upsert over it",
            |s, _| _ = s.upsert("k", "v", TtlChange::Keep),
            Some(true),
        ),
        ("remove", |s, _| _ = s.remove("k"), Some(true)),
        (
            "remove at its version",
            |s, v| _ = s.remove_if_version("k", v),
            Some(true),
        ),
        ("len", |s, _| _ = s.len(), Some(true)),
        ("stats", |s, _| _ = s.stats(), Some(true)),
        (
            "reclaim_expired",
            |s, _| _ = s.reclaim_expired(),
            Some(true),
        ),
        (
            "update",
            |s, _| _ = s.update("k", "v", TtlChange::Keep),
            None,
        ),
        (
            "compare-and-swap",
            |s, v| _ = s.compare_and_swap("k", v, "v", TtlChange::Keep),
            None,
        ),
        ("list", |s, _| _ = s.list("", None, 10), None),
        ("nothing", |_, _| {}, Some(false)),
    ];
    for (message, action, reclaims) in cases {
        let (store, clock) = manual_store();
        let version = store.create("k", "v", Some(ms(10))).unwrap();
        store.create("persistent", "v", None).unwrap();
        clock.advance(11);

        action(&store, version);
        let left_for_the_pass = store.reclaim_expired();
        if let Some(reclaims) = reclaims {
            assert_eq!(left_for_the_pass, usize::from(!reclaims), "{message}");
        }
        assert_eq!(
            store.stats().expired_reclaimed,
            1,
            "{message}: counted once"
        );
        assert_eq!(store.reclaim_expired(), 0, "{message}: nothing left");
        assert!(store.get("persistent").unwrap().is_some(), "{message}");
    }
}

#[test]
fn reclaim_expired_frees_expired_keys_and_leaves_live_ones() {
    let (store, clock) = manual_store();
    for i in 0..5 {
        store
            .create(&format!("short/{i}"), "v", Some(ms(10)))
            .unwrap();
        store
            .create(&format!("long/{i}"), "v", Some(ms(100)))
            .unwrap();
        store.create(&format!("persistent/{i}"), "v", None).unwrap();
    }
    assert_eq!(store.reclaim_expired(), 0, "nothing has expired yet");

    clock.set(T0 + 50);
    assert_eq!(store.reclaim_expired(), 5, "the short ones");
    assert_eq!(store.reclaim_expired(), 0, "already reclaimed");
    assert_eq!(store.stats().expired_reclaimed, 5);
    assert_eq!(store.len(), 10);

    clock.set(T0 + 101);
    assert_eq!(store.reclaim_expired(), 5, "the long ones");
    let stats = store.stats();
    assert_eq!((stats.keys, stats.expired_reclaimed), (5, 10));
    assert_eq!(store.list("persistent/", None, 10).entries.len(), 5);
}

#[test]
fn expired_keys_in_a_single_shard_are_reclaimed_too() {
    let (store, clock) = super::fixtures::manual_store_with(Store::builder().shards(1));
    for i in 0..200 {
        let ttl = if i % 2 == 0 { Some(ms(10 + i)) } else { None };
        store.create(&format!("k{i}"), "v", ttl).unwrap();
    }
    clock.set(T0 + 10 + 100);
    // Deadlines T0+10 .. T0+208 on even keys: those up to T0+109 expired.
    assert_eq!(store.reclaim_expired(), 50);
    assert_eq!(store.len(), 150);
    clock.set(T0 + 1000);
    assert_eq!(store.len(), 100);
    assert_eq!(store.stats().expired_reclaimed, 100);
}
