//! Key and value size limits: the empty key, keys and values over the limit,
//! and exactly at it.

use kvcore::{Condition, Error, Limits, Store, TtlChange};

use super::fixtures::{manual_store, manual_store_with};

/// An operation that takes a key, with everything else fixed.
type KeyOp = (&'static str, fn(&Store, &str) -> Result<(), Error>);

/// Every operation that takes a key.
const KEY_OPS: &[KeyOp] = &[
    ("create", |s, k| s.create(k, "v", None).map(drop)),
    ("get", |s, k| s.get(k).map(drop)),
    ("update", |s, k| s.update(k, "v", TtlChange::Keep).map(drop)),
    ("upsert", |s, k| s.upsert(k, "v", TtlChange::Keep).map(drop)),
    ("put", |s, k| {
        s.put(k, "v", TtlChange::Keep, Condition::Always).map(drop)
    }),
    ("compare_and_swap", |s, k| {
        s.compare_and_swap(k, 1, "v", TtlChange::Keep).map(drop)
    }),
    ("remove", |s, k| s.remove(k).map(drop)),
    ("remove_if_version", |s, k| {
        s.remove_if_version(k, 1).map(drop)
    }),
];

#[test]
fn every_operation_refuses_the_empty_key() {
    let (store, _) = manual_store();
    for (op, run) in KEY_OPS {
        assert_eq!(run(&store, ""), Err(Error::EmptyKey), "{op}");
    }
    assert_eq!(store.stats().revision, 0, "nothing was written");
}

#[test]
fn every_operation_refuses_a_key_over_the_limit() {
    let (store, _) = manual_store();
    let key = "k".repeat(1025);
    for (op, run) in KEY_OPS {
        assert_eq!(
            run(&store, &key),
            Err(Error::KeyTooLarge {
                size: 1025,
                limit: 1024
            }),
            "{op}"
        );
    }
    assert_eq!(store.stats().revision, 0, "nothing was written");
}

#[test]
fn keys_are_measured_in_bytes_and_may_be_exactly_at_the_limit() {
    // (message, configured max_key_bytes or the default, key, key too large?)
    let cases: &[(&str, Option<usize>, String, bool)] = &[
        ("a one-byte key", None, "k".into(), false),
        (
            "1024 bytes under the default limit",
            None,
            "k".repeat(1024),
            false,
        ),
        (
            "1025 bytes under the default limit",
            None,
            "k".repeat(1025),
            true,
        ),
        (
            "512 two-byte characters are 1024 bytes",
            None,
            "é".repeat(512),
            false,
        ),
        (
            "513 two-byte characters are 1026 bytes",
            None,
            "é".repeat(513),
            true,
        ),
        (
            "a limit of 8 takes 8 bytes",
            Some(8),
            "12345678".into(),
            false,
        ),
        (
            "a limit of 8 refuses 9 bytes",
            Some(8),
            "123456789".into(),
            true,
        ),
        (
            "a limit of 8 refuses two four-byte characters and one more",
            Some(8),
            "🔑🔑a".into(),
            true,
        ),
    ];
    for (message, limit, key, too_large) in cases {
        let builder = match limit {
            Some(limit) => Store::builder().max_key_bytes(*limit),
            None => Store::builder(),
        };
        let (store, _) = manual_store_with(builder);
        let result = store.create(key, "v", None);
        if *too_large {
            assert_eq!(
                result,
                Err(Error::KeyTooLarge {
                    size: key.len(),
                    limit: limit.unwrap_or(1024)
                }),
                "{message}"
            );
            assert!(store.is_empty(), "{message}");
        } else {
            let version = result.unwrap_or_else(|e| panic!("{message}: {e}"));
            assert_eq!(
                store.get(key).unwrap().unwrap().version(),
                version,
                "{message}"
            );
            assert_eq!(store.list("", None, 10).entries[0].key(), key, "{message}");
        }
    }
}

/// A write of a value, on a store that holds `k` at version `current`.
type ValueOp = (&'static str, fn(&Store, u64, &[u8]) -> Result<(), Error>);

/// Every operation that takes a value.
const VALUE_OPS: &[ValueOp] = &[
    ("create", |s, _, v| s.create("new", v, None).map(drop)),
    ("update", |s, _, v| {
        s.update("k", v, TtlChange::Keep).map(drop)
    }),
    ("upsert", |s, _, v| {
        s.upsert("k", v, TtlChange::Keep).map(drop)
    }),
    ("put", |s, _, v| {
        s.put("k", v, TtlChange::Keep, Condition::Present).map(drop)
    }),
    ("compare_and_swap", |s, current, v| {
        s.compare_and_swap("k", current, v, TtlChange::Keep)
            .map(drop)
    }),
];

#[test]
fn values_may_be_exactly_at_the_limit_and_no_larger() {
    const MIB: usize = 1024 * 1024;
    // (message, configured max_value_bytes or the default, value size, too large?)
    let cases: &[(&str, Option<usize>, usize, bool)] = &[
        ("an empty value under the default limit", None, 0, false),
        ("exactly 1 MiB under the default limit", None, MIB, false),
        (
            "1 MiB and one byte under the default limit",
            None,
            MIB + 1,
            true,
        ),
        ("a limit of 16 takes 16 bytes", Some(16), 16, false),
        ("a limit of 16 refuses 17 bytes", Some(16), 17, true),
        ("a limit of 0 takes an empty value", Some(0), 0, false),
        ("a limit of 0 refuses one byte", Some(0), 1, true),
    ];
    for (message, limit, size, too_large) in cases {
        let value = vec![b'x'; *size];
        for (op, run) in VALUE_OPS {
            let builder = match limit {
                Some(limit) => Store::builder().max_value_bytes(*limit),
                None => Store::builder(),
            };
            let (store, _) = manual_store_with(builder);
            let current = store.create("k", "", None).unwrap();

            let result = run(&store, current, &value);

            if *too_large {
                assert_eq!(
                    result,
                    Err(Error::ValueTooLarge {
                        size: *size,
                        limit: limit.unwrap_or(MIB)
                    }),
                    "{op}: {message}"
                );
                assert_eq!(store.stats().revision, current, "{op}: {message}: no write");
                assert_eq!(
                    store.get("k").unwrap().unwrap().value(),
                    b"",
                    "{op}: {message}"
                );
            } else {
                result.unwrap_or_else(|e| panic!("{op}: {message}: {e}"));
                let written = store.get(if *op == "create" { "new" } else { "k" });
                assert_eq!(
                    written.unwrap().unwrap().value().len(),
                    *size,
                    "{op}: {message}"
                );
            }
        }
    }
}

#[test]
fn limits_reports_what_the_builder_set() {
    assert_eq!(
        manual_store().0.limits(),
        Limits {
            max_key_bytes: 1024,
            max_value_bytes: 1024 * 1024
        },
        "the defaults"
    );
    let (store, _) = manual_store_with(Store::builder().max_key_bytes(10).max_value_bytes(20));
    assert_eq!(
        store.limits(),
        Limits {
            max_key_bytes: 10,
            max_value_bytes: 20
        }
    );
    let (store, _) = manual_store_with(Store::builder().max_key_bytes(usize::MAX));
    assert_eq!(
        store.limits().max_key_bytes,
        u32::MAX as usize,
        "key lengths are capped at u32::MAX"
    );
}
