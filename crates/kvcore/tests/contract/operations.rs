//! Every operation, its result and its error, one key at a time.

use kvcore::{Condition, Error, Store, TtlChange, Tuning};

use super::fixtures::manual_store;

#[test]
fn create_stores_a_new_key_and_returns_its_version() {
    let (store, _) = manual_store();
    let version = store.create("k", "v", None).unwrap();

    let entry = store.get("k").unwrap().expect("just created");
    assert_eq!(entry.key(), "k");
    assert_eq!(entry.value(), b"v");
    assert_eq!(entry.version(), version);
    assert_eq!(entry.deadline_ms(), None);
    assert_eq!(entry.ttl(), None);
}

#[test]
fn create_of_a_present_key_fails_with_already_exists_and_changes_nothing() {
    let (store, _) = manual_store();
    let v1 = store.create("k", "first", None).unwrap();

    assert_eq!(
        store.create("k", "second", None),
        Err(Error::AlreadyExists {
            current_version: v1
        })
    );
    let entry = store.get("k").unwrap().unwrap();
    assert_eq!(entry.value(), b"first");
    assert_eq!(entry.version(), v1);
}

#[test]
fn get_of_an_absent_key_is_none() {
    let (store, _) = manual_store();
    assert!(store.get("never-written").unwrap().is_none());

    store.create("k", "v", None).unwrap();
    store.remove("k").unwrap();
    assert!(store.get("k").unwrap().is_none(), "a removed key");
}

#[test]
fn update_replaces_the_value_and_version_of_a_present_key() {
    let (store, _) = manual_store();
    let v1 = store.create("k", "old", None).unwrap();
    let v2 = store.update("k", "new", TtlChange::Keep).unwrap();

    assert!(v2 > v1);
    let entry = store.get("k").unwrap().unwrap();
    assert_eq!(entry.value(), b"new");
    assert_eq!(entry.version(), v2);
}

#[test]
fn update_of_an_absent_key_is_not_found_and_creates_nothing() {
    let (store, _) = manual_store();
    assert_eq!(
        store.update("k", "v", TtlChange::Keep),
        Err(Error::NotFound)
    );
    assert!(store.get("k").unwrap().is_none());

    store.create("k", "v", None).unwrap();
    store.remove("k").unwrap();
    assert_eq!(
        store.update("k", "v", TtlChange::Keep),
        Err(Error::NotFound),
        "a removed key"
    );
}

#[test]
fn upsert_creates_an_absent_key_and_replaces_a_present_one_saying_which() {
    let (store, _) = manual_store();
    let first = store.upsert("k", "one", TtlChange::Keep).unwrap();
    assert!(first.created);
    assert_eq!(first.ttl, None);

    let second = store.upsert("k", "two", TtlChange::Keep).unwrap();
    assert!(!second.created);
    assert!(second.version > first.version);

    let entry = store.get("k").unwrap().unwrap();
    assert_eq!(entry.value(), b"two");
    assert_eq!(entry.version(), second.version);
}

#[test]
fn remove_deletes_a_present_key_and_takes_a_revision() {
    let (store, _) = manual_store();
    let v1 = store.create("k", "v", None).unwrap();

    let removal = store.remove("k").unwrap();
    assert!(removal > v1);
    assert_eq!(store.stats().revision, removal);
    assert!(store.get("k").unwrap().is_none());
    assert_eq!(store.remove("k"), Err(Error::NotFound), "removing it twice");
    assert_eq!(
        store.remove("never-written"),
        Err(Error::NotFound),
        "a key never written"
    );
}

/// A store holding `k` written twice: returns the store, the first (now
/// stale) version and the current one.
fn key_written_twice() -> (Store, u64, u64) {
    let (store, _) = manual_store();
    let stale = store.create("k", "one", None).unwrap();
    let current = store.update("k", "two", TtlChange::Keep).unwrap();
    (store, stale, current)
}

/// Picks an expected version from a key's (stale, current) versions.
type PickVersion = fn(u64, u64) -> u64;

/// The expected versions a conditional write or removal is tried with:
/// (message, expected version from (stale, current), succeeds).
const EXPECTED_VERSIONS: &[(&str, PickVersion, bool)] = &[
    ("the current version", |_, current| current, true),
    ("an older version of the key", |stale, _| stale, false),
    (
        "a version not handed out yet",
        |_, current| current + 100,
        false,
    ),
    ("version zero", |_, _| 0, false),
];

#[test]
fn compare_and_swap_applies_only_at_the_expected_version() {
    for (message, expected, succeeds) in EXPECTED_VERSIONS {
        let (store, stale, current) = key_written_twice();
        let expected = expected(stale, current);
        let result = store.compare_and_swap("k", expected, "three", TtlChange::Keep);
        let entry = store.get("k").unwrap().unwrap();
        if *succeeds {
            let version = result.unwrap_or_else(|e| panic!("{message}: {e}"));
            assert!(version > current, "{message}");
            assert_eq!(entry.value(), b"three", "{message}");
            assert_eq!(entry.version(), version, "{message}");
        } else {
            assert_eq!(
                result,
                Err(Error::VersionMismatch {
                    expected,
                    current: Some(current)
                }),
                "{message}"
            );
            assert_eq!(entry.value(), b"two", "{message}: value unchanged");
            assert_eq!(entry.version(), current, "{message}: version unchanged");
        }
    }
}

#[test]
fn compare_and_swap_on_an_absent_key_reports_no_current_version() {
    let (store, _) = manual_store();
    assert_eq!(
        store.compare_and_swap("k", 1, "v", TtlChange::Keep),
        Err(Error::VersionMismatch {
            expected: 1,
            current: None
        }),
        "a key never written"
    );

    let version = store.create("k", "v", None).unwrap();
    store.remove("k").unwrap();
    assert_eq!(
        store.compare_and_swap("k", version, "v", TtlChange::Keep),
        Err(Error::VersionMismatch {
            expected: version,
            current: None
        }),
        "a removed key, with the version it had"
    );
    assert!(store.get("k").unwrap().is_none(), "nothing was created");
}

#[test]
fn remove_if_version_removes_only_at_the_expected_version() {
    for (message, expected, succeeds) in EXPECTED_VERSIONS {
        let (store, stale, current) = key_written_twice();
        let expected = expected(stale, current);
        let result = store.remove_if_version("k", expected);
        if *succeeds {
            let removal = result.unwrap_or_else(|e| panic!("{message}: {e}"));
            assert!(removal > current, "{message}");
            assert!(store.get("k").unwrap().is_none(), "{message}");
        } else {
            assert_eq!(
                result,
                Err(Error::VersionMismatch {
                    expected,
                    current: Some(current)
                }),
                "{message}"
            );
            let entry = store.get("k").unwrap().expect("still there");
            assert_eq!(entry.version(), current, "{message}");
        }
    }

    let (store, _) = manual_store();
    assert_eq!(
        store.remove_if_version("k", 7),
        Err(Error::VersionMismatch {
            expected: 7,
            current: None
        }),
        "an absent key"
    );
}

#[test]
fn put_with_each_condition_behaves_like_the_operation_it_stands_for() {
    // (message, key present before, condition from the current version,
    //  outcome from the current version: Ok(created) or the error)
    type ConditionFor = fn(Option<u64>) -> Condition;
    type Outcome = fn(Option<u64>) -> Result<bool, Error>;
    let cases: &[(&str, bool, ConditionFor, Outcome)] = &[
        (
            "always, key absent: creates",
            false,
            |_| Condition::Always,
            |_| Ok(true),
        ),
        (
            "always, key present: replaces",
            true,
            |_| Condition::Always,
            |_| Ok(false),
        ),
        (
            "absent, key absent: creates",
            false,
            |_| Condition::Absent,
            |_| Ok(true),
        ),
        (
            "absent, key present: already exists",
            true,
            |_| Condition::Absent,
            |current| {
                Err(Error::AlreadyExists {
                    current_version: current.unwrap(),
                })
            },
        ),
        (
            "present, key present: replaces",
            true,
            |_| Condition::Present,
            |_| Ok(false),
        ),
        (
            "present, key absent: not found",
            false,
            |_| Condition::Present,
            |_| Err(Error::NotFound),
        ),
        (
            "current version: replaces",
            true,
            |current| Condition::Version(current.unwrap()),
            |_| Ok(false),
        ),
        (
            "another version, key present: mismatch naming the current one",
            true,
            |current| Condition::Version(current.unwrap() + 1),
            |current| {
                Err(Error::VersionMismatch {
                    expected: current.unwrap() + 1,
                    current,
                })
            },
        ),
        (
            "a version, key absent: mismatch naming none",
            false,
            |_| Condition::Version(1),
            |_| {
                Err(Error::VersionMismatch {
                    expected: 1,
                    current: None,
                })
            },
        ),
    ];
    for (message, present, condition, outcome) in cases {
        let (store, _) = manual_store();
        let current = present.then(|| store.create("k", "before", None).unwrap());
        let revision_before = store.stats().revision;

        let result = store.put("k", "after", TtlChange::Keep, condition(current));

        let expected = outcome(current);
        assert_eq!(
            result.as_ref().map(|w| w.created).map_err(Clone::clone),
            expected,
            "{message}"
        );
        let value = store.get("k").unwrap().map(|e| e.value().to_vec());
        match result {
            Ok(written) => {
                assert_eq!(value.as_deref(), Some(&b"after"[..]), "{message}");
                assert_eq!(written.version, store.stats().revision, "{message}");
            }
            Err(_) => {
                let before = present.then_some(&b"before"[..]);
                assert_eq!(value.as_deref(), before, "{message}: unchanged");
                assert_eq!(store.stats().revision, revision_before, "{message}");
            }
        }
    }
}

#[test]
fn failed_operations_take_no_revision() {
    let (store, _) = manual_store();
    let version = store.create("k", "v", None).unwrap();
    let failures: Vec<(&str, Result<u64, Error>)> = vec![
        ("create of a present key", store.create("k", "v", None)),
        (
            "update of an absent key",
            store.update("absent", "v", TtlChange::Keep),
        ),
        ("remove of an absent key", store.remove("absent")),
        (
            "compare-and-swap at a wrong version",
            store.compare_and_swap("k", version + 1, "v", TtlChange::Keep),
        ),
        (
            "remove at a wrong version",
            store.remove_if_version("k", version + 1),
        ),
        ("create with an empty key", store.create("", "v", None)),
        (
            "upsert with a zero ttl",
            store
                .upsert("k", "v", TtlChange::Set(std::time::Duration::ZERO))
                .map(|w| w.version),
        ),
    ];
    for (message, result) in failures {
        assert!(result.is_err(), "{message} should fail");
        assert_eq!(store.stats().revision, version, "{message}");
    }
    assert_eq!(
        store.create("other", "v", None),
        Ok(version + 1),
        "the next write takes the revision after the last successful one"
    );
}

#[test]
fn versions_increase_strictly_across_all_keys_and_operations() {
    let (store, _) = manual_store();
    let a = store.create("a", "1", None).unwrap();
    let b = store.create("b", "1", None).unwrap();
    let versions = [
        ("create a", a),
        ("create b", b),
        ("update a", store.update("a", "2", TtlChange::Keep).unwrap()),
        (
            "upsert c",
            store.upsert("c", "1", TtlChange::Keep).unwrap().version,
        ),
        (
            "compare-and-swap b",
            store
                .compare_and_swap("b", b, "2", TtlChange::Keep)
                .unwrap(),
        ),
        (
            "put d",
            store
                .put("d", "1", TtlChange::Keep, Condition::Absent)
                .unwrap()
                .version,
        ),
        ("remove a", store.remove("a").unwrap()),
        (
            "remove c at its version",
            store
                .remove_if_version("c", store.get("c").unwrap().unwrap().version())
                .unwrap(),
        ),
    ];
    for pair in versions.windows(2) {
        let [(before, earlier), (after, later)] = pair else {
            unreachable!()
        };
        assert!(
            later > earlier,
            "{after} ({later}) must come after {before} ({earlier})"
        );
    }
    assert_eq!(store.stats().revision, versions.last().unwrap().1);
    assert_eq!(
        store.get("b").unwrap().unwrap().version(),
        versions[4].1,
        "a key's version is the revision of its last write, whatever came after"
    );
}

#[test]
fn versions_are_never_reused_after_delete_and_recreate() {
    let (store, _) = manual_store();
    let mut seen = Vec::new();
    for round in 0..20 {
        let created = store.create("k", format!("round {round}"), None).unwrap();
        let removed = store.remove("k").unwrap();
        seen.extend([created, removed]);
    }
    let recreated = store.create("k", "last", None).unwrap();
    assert!(
        seen.iter().all(|&old| recreated > old),
        "a recreated key takes a version above every earlier one"
    );
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
}

#[test]
fn empty_values_are_allowed() {
    let (store, _) = manual_store();
    store.create("k", "", None).unwrap();
    assert_eq!(store.get("k").unwrap().unwrap().value(), b"");
    store.update("k", b"", TtlChange::Keep).unwrap();
    assert_eq!(store.get("k").unwrap().unwrap().value(), b"");
}

#[test]
fn values_are_arbitrary_bytes() {
    let (store, _) = manual_store();
    let bytes: &[u8] = &[0, 255, 0xC3, 0x28, 0, 10, 13];
    store.create("k", bytes, None).unwrap();
    let entry = store.get("k").unwrap().unwrap();
    assert_eq!(entry.value(), bytes);
    assert_eq!(
        entry.as_ref(),
        bytes,
        "an entry derefs to its value's bytes"
    );
}

#[test]
fn keys_may_hold_any_character() {
    let keys = [
        ("a slash inside", "users/42/name"),
        ("only a slash", "/"),
        ("leading and trailing slashes", "/a/"),
        ("spaces", "a key with spaces"),
        ("a NUL character", "a\0b"),
        ("a newline", "line\nbreak"),
        ("two-byte characters", "clé"),
        ("four-byte characters", "🔑"),
        ("percent signs and query characters", "a%2Fb?c=d&e#f"),
    ];
    let (store, _) = manual_store();
    for (message, key) in keys {
        let version = store
            .create(key, key, None)
            .unwrap_or_else(|e| panic!("{message}: {e}"));
        let entry = store.get(key).unwrap().expect(message);
        assert_eq!(entry.key(), key, "{message}");
        assert_eq!(entry.value(), key.as_bytes(), "{message}");
        assert_eq!(entry.version(), version, "{message}");
    }
    assert_eq!(store.len(), keys.len(), "every key is distinct");
}

#[test]
fn an_entry_read_earlier_keeps_its_value_after_the_key_changes() {
    let (store, _) = manual_store();
    store.create("k", "old", None).unwrap();
    let before = store.get("k").unwrap().unwrap();

    store.update("k", "new", TtlChange::Keep).unwrap();
    assert_eq!(before.value(), b"old", "after an update");
    store.remove("k").unwrap();
    assert_eq!(before.value(), b"old", "after a remove");
    assert_eq!(before.key(), "k");
}

#[test]
fn the_debug_form_of_an_entry_shows_the_value_size_not_the_value() {
    let (store, _) = manual_store();
    store.create("k", "secret-value", None).unwrap();
    let shown = format!("{:?}", store.get("k").unwrap().unwrap());
    assert!(!shown.contains("secret-value"), "{shown}");
    assert!(shown.contains("12"), "the size is shown: {shown}");
}

#[test]
fn clones_of_a_store_share_the_same_keys() {
    let (store, _) = manual_store();
    let clone = store.clone();
    store.create("k", "v", None).unwrap();
    assert_eq!(clone.get("k").unwrap().unwrap().value(), b"v");
    clone.remove("k").unwrap();
    assert!(store.get("k").unwrap().is_none());
}

#[test]
fn len_and_is_empty_count_live_keys() {
    let (store, _) = manual_store();
    assert_eq!(store.len(), 0);
    assert!(store.is_empty());

    for key in ["a", "b", "c"] {
        store.create(key, "v", None).unwrap();
    }
    assert_eq!(store.len(), 3);
    assert!(!store.is_empty());

    store.upsert("a", "replaced", TtlChange::Keep).unwrap();
    assert_eq!(store.len(), 3, "replacing a key does not add one");
    store.remove("b").unwrap();
    assert_eq!(store.len(), 2);
    store.remove("a").unwrap();
    store.remove("c").unwrap();
    assert!(store.is_empty());
}

#[test]
fn stats_report_keys_the_latest_revision_and_the_configuration() {
    let (store, _) =
        super::fixtures::manual_store_with(Store::builder().tuning(Tuning::WriteHeavy).shards(3));
    let empty = store.stats();
    assert_eq!(empty.keys, 0);
    assert_eq!(empty.revision, 0, "no revision before the first write");
    assert_eq!(empty.expired_reclaimed, 0);
    assert_eq!(empty.shards, 3, "an explicit shard count wins");
    assert_eq!(empty.tuning, Tuning::WriteHeavy);
    assert_eq!(store.tuning(), Tuning::WriteHeavy);

    store.create("a", "v", None).unwrap();
    let last = store.create("b", "v", None).unwrap();
    let stats = store.stats();
    assert_eq!(stats.keys, 2);
    assert_eq!(stats.revision, last);
}

#[test]
fn a_shard_count_of_zero_counts_as_one() {
    let (store, _) = super::fixtures::manual_store_with(Store::builder().shards(0));
    assert_eq!(store.stats().shards, 1);
    store.create("a", "v", None).unwrap();
    store.create("b", "v", None).unwrap();
    assert_eq!(store.len(), 2);
}

#[test]
fn every_tuning_gives_the_same_answers() {
    for tuning in [Tuning::Balanced, Tuning::ReadHeavy, Tuning::WriteHeavy] {
        let name = tuning.name();
        let (store, _) = super::fixtures::manual_store_with(Store::builder().tuning(tuning));
        assert_eq!(store.tuning(), tuning, "{name}");
        let v1 = store.create("k", "1", None).unwrap();
        assert_eq!(
            store.create("k", "1", None).map_err(|_| ()),
            Err(()),
            "{name}"
        );
        let v2 = store
            .compare_and_swap("k", v1, "2", TtlChange::Keep)
            .unwrap();
        assert_eq!(store.get("k").unwrap().unwrap().version(), v2, "{name}");
        assert_eq!(store.list("", None, 10).entries.len(), 1, "{name}");
        store.remove_if_version("k", v2).unwrap();
        assert!(store.is_empty(), "{name}");
    }
}

#[test]
fn tuning_names_parse_back_and_unknown_names_are_refused() {
    for tuning in [Tuning::Balanced, Tuning::ReadHeavy, Tuning::WriteHeavy] {
        assert_eq!(
            tuning.name().parse::<Tuning>(),
            Ok(tuning),
            "{}",
            tuning.name()
        );
    }
    let refused = "fast".parse::<Tuning>().unwrap_err();
    assert!(
        refused.contains("fast"),
        "the message names the input: {refused}"
    );
}

#[test]
fn a_default_store_works_on_the_system_clock() {
    for (message, store) in [
        ("Store::new", Store::new()),
        ("Store::default", Store::default()),
    ] {
        let version = store
            .create("k", "v", Some(std::time::Duration::from_secs(3600)))
            .unwrap();
        let entry = store.get("k").unwrap().expect(message);
        assert_eq!(entry.version(), version, "{message}");
        assert!(
            entry.ttl().unwrap() <= std::time::Duration::from_secs(3600),
            "{message}"
        );
        assert_eq!(store.limits(), kvcore::Limits::default(), "{message}");
    }
}

#[test]
fn error_messages_are_lowercase_and_end_without_a_period() {
    let cases = [
        (Error::EmptyKey, "key must not be empty"),
        (
            Error::KeyTooLarge {
                size: 1025,
                limit: 1024,
            },
            "key is 1025 bytes, over the limit of 1024 bytes",
        ),
        (
            Error::ValueTooLarge {
                size: 2_000_000,
                limit: 1_048_576,
            },
            "value is 2000000 bytes, over the limit of 1048576 bytes",
        ),
        (
            Error::InvalidTtl {
                ttl: std::time::Duration::ZERO,
            },
            "ttl of 0ns is outside the allowed range of 1 ms to 10 years",
        ),
        (Error::NotFound, "key not found"),
        (
            Error::AlreadyExists { current_version: 3 },
            "key already exists",
        ),
        (
            Error::VersionMismatch {
                expected: 3,
                current: Some(5),
            },
            "version mismatch: expected 3, key is at 5",
        ),
        (
            Error::VersionMismatch {
                expected: 3,
                current: None,
            },
            "version mismatch: expected 3, key does not exist",
        ),
    ];
    for (error, message) in cases {
        let shown = error.to_string();
        assert_eq!(shown, message, "{error:?}");
        assert!(shown.starts_with(|c: char| c.is_lowercase()), "{shown}");
        assert!(!shown.ends_with('.'), "{shown}");
        assert!(std::error::Error::source(&error).is_none(), "{error:?}");
    }
}

#[test]
fn storage_error_messages_name_the_file_and_keep_the_cause_apart() {
    let cases = [
        (
            Error::Corrupt {
                file: "data/log.000001".into(),
                offset: 4096,
                reason: "bad checksum",
            },
            "data/log.000001 is corrupt at offset 4096: bad checksum",
        ),
        (
            Error::Locked { dir: "data".into() },
            "data directory data is in use by another process",
        ),
        (
            Error::StorageFailed,
            "writes are refused after an earlier storage failure",
        ),
    ];
    for (error, message) in cases {
        assert_eq!(error.to_string(), message, "{error:?}");
    }

    // An I/O error says what the store was doing; the OS error is its source,
    // not part of the message.
    let io = Error::Io {
        action: "could not sync the log".into(),
        source: kvcore::IoCause(std::sync::Arc::new(std::io::Error::other("disk on fire"))),
    };
    assert_eq!(io.to_string(), "could not sync the log");
    let source = std::error::Error::source(&io).expect("the cause is kept");
    assert_eq!(source.to_string(), "disk on fire");
}

/// A write of a value as long as the old one reuses the old record's memory
/// when nobody holds it; an entry a reader holds must never see that.
#[test]
fn an_entry_held_across_same_length_overwrites_keeps_what_it_read() {
    let (store, _) = manual_store();
    let first = store.upsert("k", "aaaa", TtlChange::Keep).unwrap().version;
    let held = store.get("k").unwrap().unwrap();
    let second = store.upsert("k", "bbbb", TtlChange::Keep).unwrap().version;
    assert_eq!((held.value(), held.version()), (&b"aaaa"[..], first));
    let now = store.get("k").unwrap().unwrap();
    assert_eq!((now.value(), now.version()), (&b"bbbb"[..], second));
    drop((held, now));

    // Nobody holds it now: these overwrite in place, and still read back
    // exactly, with versions still rising.
    let third = store.upsert("k", "cccc", TtlChange::Keep).unwrap().version;
    let fourth = store
        .compare_and_swap("k", third, "dddd", TtlChange::Keep)
        .unwrap();
    assert!(first < second && second < third && third < fourth);
    let last = store.get("k").unwrap().unwrap();
    assert_eq!((last.value(), last.version()), (&b"dddd"[..], fourth));
    assert_eq!(store.len(), 1);
}

/// A deadline given by a same-length overwrite is found by the reclaim pass
/// like any other.
#[test]
fn a_ttl_set_by_a_same_length_overwrite_is_reclaimed() {
    let (store, clock) = manual_store();
    store.upsert("k", "aaaa", TtlChange::Keep).unwrap();
    store
        .upsert("k", "bbbb", TtlChange::Set(super::fixtures::ms(1_000)))
        .unwrap();
    assert_eq!(store.reclaim_expired(), 0, "not yet expired");
    clock.advance(1_001);
    assert_eq!(store.reclaim_expired(), 1);
    assert_eq!(store.stats().keys, 0, "the memory came back without a read");
}
