//! The data-model promises that reach across a restart of a durable store:
//! versions are never reused, deadlines are absolute, and keys that expired
//! while the store was closed are gone.

use std::path::Path;
use std::sync::Arc;

use kvcore::{ActiveExpiry, Error, ManualClock, Store, TtlChange};

use super::fixtures::{T0, ms};

/// Opens `dir` on `clock` with no background reclaimer. Dropping the last
/// handle of a store releases its directory at once, so a reopen right
/// after a drop succeeds.
fn open(dir: &Path, clock: &Arc<ManualClock>) -> Store {
    Store::builder()
        .clock(clock.clone())
        .active_expiry(ActiveExpiry::Manual)
        .open(dir)
        .expect("the data directory opens")
}

#[test]
fn versions_are_never_reused_after_a_durable_store_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));

    let store = open(dir.path(), &clock);
    let kept = store.create("kept", "v", None).unwrap();
    store.create("gone", "v", None).unwrap();
    let last = store.remove("gone").unwrap();
    drop(store);

    let store = open(dir.path(), &clock);
    // Above, not exactly at, the last version: a reopened store continues
    // above the revisions the last run had reserved.
    assert!(
        store.stats().revision >= last,
        "the revision continues above every version handed out, removals included"
    );
    assert_eq!(store.get("kept").unwrap().unwrap().version(), kept);
    assert!(store.get("gone").unwrap().is_none());
    let recreated = store.create("gone", "again", None).unwrap();
    assert!(
        recreated > last,
        "a key recreated after the restart takes a new version ({recreated} after {last})"
    );
}

#[test]
fn deadlines_survive_a_restart_and_keys_that_expired_meanwhile_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));

    let store = open(dir.path(), &clock);
    store.create("short", "v", Some(ms(100))).unwrap();
    store.create("long", "v", Some(ms(10_000))).unwrap();
    store.create("forever", "v", None).unwrap();
    store.create("kept-ttl", "v", Some(ms(5_000))).unwrap();
    store.update("kept-ttl", "v2", TtlChange::Keep).unwrap();
    drop(store);

    // Time passes while the store is closed.
    clock.set(T0 + 101);
    let store = open(dir.path(), &clock);

    assert!(
        store.get("short").unwrap().is_none(),
        "expired while closed"
    );
    let cases = [
        (
            "a long ttl keeps its absolute deadline",
            "long",
            Some(T0 + 10_000),
        ),
        ("a key without deadline", "forever", None),
        ("a deadline kept by an update", "kept-ttl", Some(T0 + 5_000)),
    ];
    for (message, key, deadline) in cases {
        let entry = store.get(key).unwrap().expect(message);
        assert_eq!(entry.deadline_ms(), deadline, "{message}");
    }
    assert_eq!(store.len(), 3);
}

#[test]
fn a_data_directory_opens_in_one_store_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let _first = open(dir.path(), &clock);

    let second = Store::builder().clock(clock).open(dir.path());
    let Err(error) = second else {
        panic!("a second store opened the same directory");
    };
    assert_eq!(
        error,
        Error::Locked {
            dir: dir.path().to_owned()
        }
    );
    assert!(error.to_string().contains("in use"), "{error}");
}

#[test]
fn a_reopened_store_lists_every_key_in_order_and_keeps_listing_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let store = open(dir.path(), &clock);
    for i in (0..600).rev() {
        store.create(&format!("k/{i:04}"), "v", None).unwrap();
    }
    for i in (0..600).step_by(4) {
        store.remove(&format!("k/{i:04}")).unwrap();
    }
    store.compact().unwrap();
    // Some keys in the snapshot, some only in the log after it.
    store.upsert("k/0001", "again", TtlChange::Keep).unwrap();
    store.create("k/9999", "logged", None).unwrap();
    drop(store);

    let store = open(dir.path(), &clock);
    let mut expected: Vec<String> = (0..600)
        .filter(|i| i % 4 != 0)
        .map(|i| format!("k/{i:04}"))
        .collect();
    expected.push("k/9999".into());
    let listed: Vec<String> = store
        .list("k/", None, usize::MAX)
        .entries
        .iter()
        .map(|e| e.key().to_owned())
        .collect();
    assert_eq!(listed, expected, "every recovered key, in byte order");
    store.create("k/0000", "new", None).unwrap();
    store.remove("k/0001").unwrap();
    let first: Vec<String> = store
        .list("k/", None, 2)
        .entries
        .iter()
        .map(|e| e.key().to_owned())
        .collect();
    assert_eq!(
        first,
        ["k/0000", "k/0002"],
        "writes after recovery are listed"
    );
}
