//! Prefix listing: byte order, pages, cursors, limits, and listings that
//! cover every key exactly once while other writes go on.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use kvcore::{Clock, Page, Store, TtlChange};

use super::fixtures::{manual_store, manual_store_with, ms};

fn keys(page: &Page) -> Vec<&str> {
    page.entries.iter().map(|e| e.key()).collect()
}

/// A store holding each of `keys`, with the key as its value.
fn store_with(keys: &[&str]) -> Store {
    let (store, _) = manual_store();
    for key in keys {
        store.create(key, key, None).unwrap();
    }
    store
}

/// Follows a listing to its end; panics if a page breaks the page rules.
fn list_all(store: &Store, prefix: &str, limit: usize) -> Vec<String> {
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list(prefix, cursor.as_deref(), limit);
        assert!(
            page.entries.len() <= limit,
            "a page holds at most the limit"
        );
        listed.extend(page.entries.iter().map(|e| e.key().to_owned()));
        match page.next {
            Some(next) => {
                assert_eq!(page.entries.len(), limit, "only a full page has a next one");
                assert_eq!(Some(next.as_str()), listed.last().map(String::as_str));
                cursor = Some(next);
            }
            None => return listed,
        }
    }
}

#[test]
fn list_returns_the_keys_with_the_prefix_in_byte_order() {
    let store = store_with(&["b", "a/2", "a/10", "a", "a/1", "ab", "a0", "A", "é", "z"]);
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "an empty prefix lists everything, uppercase before lowercase and ASCII before é",
            "",
            &["A", "a", "a/1", "a/10", "a/2", "a0", "ab", "b", "z", "é"],
        ),
        (
            "a prefix includes the key equal to it; '/' sorts before '0'",
            "a",
            &["a", "a/1", "a/10", "a/2", "a0", "ab"],
        ),
        ("a prefix ending in a slash", "a/", &["a/1", "a/10", "a/2"]),
        (
            "digits compare as bytes, not numbers",
            "a/1",
            &["a/1", "a/10"],
        ),
        ("prefixes are case sensitive", "A", &["A"]),
        ("a multi-byte prefix", "é", &["é"]),
        ("a prefix nothing starts with", "c", &[]),
        ("a prefix longer than every key", "a/10/x", &[]),
    ];
    for (message, prefix, expected) in cases {
        let page = store.list(prefix, None, 100);
        assert_eq!(keys(&page), *expected, "{message}");
        assert_eq!(page.next, None, "{message}: everything fit in one page");
    }
}

#[test]
fn listed_entries_carry_value_and_version() {
    let (store, _) = manual_store();
    let version = store.create("k", "value", None).unwrap();
    let page = store.list("k", None, 10);
    let entry = &page.entries[0];
    assert_eq!(entry.key(), "k");
    assert_eq!(entry.value(), b"value");
    assert_eq!(entry.version(), version);
    assert_eq!(entry.ttl(), None);
}

#[test]
fn pages_cover_every_key_exactly_once_in_order() {
    let all: Vec<String> = (0..23).map(|i| format!("key/{i:03}")).collect();
    let (store, _) = manual_store();
    for key in &all {
        store.create(key, "v", None).unwrap();
    }
    store.create("other", "v", None).unwrap();
    for (message, limit) in [
        ("one key a page", 1),
        ("a limit that divides nothing evenly", 7),
        ("a limit that leaves one key for the last page", 22),
        ("a limit equal to the key count", 23),
        ("a limit above the key count", 100),
    ] {
        assert_eq!(list_all(&store, "key/", limit), all, "{message}");
    }
}

#[test]
fn the_cursor_is_exclusive_and_need_not_be_a_stored_key() {
    let store = store_with(&["a", "b", "c", "d"]);
    let cases: &[(&str, &str, &[&str])] = &[
        ("after a stored key", "b", &["c", "d"]),
        ("after a key between stored ones", "bb", &["c", "d"]),
        ("after a key below all", "0", &["a", "b", "c", "d"]),
        ("after the last key", "d", &[]),
        ("after a key above all", "zzz", &[]),
    ];
    for (message, after, expected) in cases {
        let page = store.list("", Some(after), 10);
        assert_eq!(keys(&page), *expected, "{message}");
        assert_eq!(page.next, None, "{message}");
    }
}

#[test]
fn a_full_last_page_is_not_followed_by_an_empty_one() {
    let store = store_with(&["a", "b", "c", "d"]);
    let first = store.list("", None, 2);
    assert_eq!(keys(&first), ["a", "b"]);
    assert_eq!(first.next.as_deref(), Some("b"));
    let second = store.list("", first.next.as_deref(), 2);
    assert_eq!(keys(&second), ["c", "d"]);
    assert_eq!(second.next, None, "nothing is left after d");
}

#[test]
fn a_limit_of_zero_counts_as_one() {
    let store = store_with(&["a", "b"]);
    let page = store.list("", None, 0);
    assert_eq!(keys(&page), ["a"]);
    assert_eq!(page.next.as_deref(), Some("a"));
}

#[test]
fn a_limit_above_the_key_count_returns_every_key_in_one_page() {
    let store = store_with(&["a", "b", "c"]);
    for (message, limit) in [
        ("one more than the key count", 4),
        ("a million", 1_000_000),
        ("half of usize::MAX", usize::MAX / 2),
        ("usize::MAX, meaning everything", usize::MAX),
    ] {
        let page = store.list("", None, limit);
        assert_eq!(keys(&page), ["a", "b", "c"], "{message}");
        assert_eq!(page.next, None, "{message}");
    }
}

#[test]
fn a_listing_never_repeats_or_skips_a_key_left_alone_while_others_change() {
    let (store, _) = manual_store();
    let stable: BTreeSet<String> = (0..40).map(|i| format!("k{i:02}")).collect();
    for key in &stable {
        store.create(key, "stable", None).unwrap();
    }
    let churn = |round: usize| format!("k{:02}x", (round * 7) % 40);

    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    let mut round = 0;
    loop {
        let page = store.list("k", cursor.as_deref(), 3);
        listed.extend(page.entries.iter().map(|e| e.key().to_owned()));
        // Between pages: keys appear before and after the cursor, and go.
        round += 1;
        store.upsert(&churn(round), "new", TtlChange::Keep).unwrap();
        store
            .upsert("k", "before every stable key", TtlChange::Keep)
            .unwrap();
        if round % 3 == 0 {
            let _ = store.remove(&churn(round - 2));
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }

    assert!(
        listed.windows(2).all(|w| w[0] < w[1]),
        "keys come in strictly increasing order, so none repeats: {listed:?}"
    );
    let listed: BTreeSet<String> = listed.into_iter().collect();
    let missing: Vec<_> = stable.difference(&listed).collect();
    assert!(missing.is_empty(), "stable keys skipped: {missing:?}");
}

/// Pages are read shard by shard, each shard at its own instant (README,
/// "Listing"): still, while writers create, overwrite, expire and remove keys
/// between and beside them, every key left alone is listed exactly once, in
/// order, and no key listed had expired before the page was asked for.
#[test]
fn paging_lists_each_unchanged_key_once_while_writers_create_expire_and_remove_others() {
    const STABLE: usize = 2_000;
    let (store, clock) = manual_store();
    let stable: BTreeSet<String> = (0..STABLE).map(|i| format!("k/{i:05}/s")).collect();
    for key in &stable {
        store.create(key, "stable", None).unwrap();
    }
    let done = AtomicBool::new(false);
    thread::scope(|scope| {
        for t in 0..2u64 {
            let (store, clock, done) = (&store, &clock, &done);
            scope.spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                let mut next = || {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x
                };
                while !done.load(Ordering::Acquire) {
                    let i = next() % STABLE as u64;
                    // Keys just before, just after and between stable keys.
                    let churn = [
                        format!("k/{i:05}"),
                        format!("k/{i:05}/c{t}"),
                        format!("k/{i:05}/s{t}"),
                    ];
                    let key = &churn[(next() % 3) as usize];
                    match next() % 4 {
                        0 => _ = store.remove(key),
                        1 => _ = store.upsert(key, "ttl", TtlChange::Set(ms(1 + next() % 5))),
                        2 => clock.advance(1),
                        _ => _ = store.upsert(key, "new", TtlChange::Keep),
                    }
                }
            });
        }
        for limit in [1, 7, 64, 1000] {
            let mut listed = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let asked_at = clock.now_ms();
                let page = store.list("k/", cursor.as_deref(), limit);
                for entry in &page.entries {
                    assert!(
                        entry.deadline_ms().is_none_or(|d| d >= asked_at),
                        "limit {limit}: {} had expired before the page was asked for",
                        entry.key()
                    );
                }
                listed.extend(page.entries.iter().map(|e| e.key().to_owned()));
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            assert!(
                listed.windows(2).all(|w| w[0] < w[1]),
                "limit {limit}: keys come in strictly increasing order"
            );
            let stable_listed = listed.iter().filter(|k| stable.contains(*k)).count();
            assert_eq!(
                stable_listed, STABLE,
                "limit {limit}: each stable key exactly once"
            );
        }
        done.store(true, Ordering::Release);
    });
}

/// prefix, after, limit; then the keys and the `next` expected.
type ListCase<'a> = (
    &'a str,
    Option<&'a str>,
    usize,
    &'a [&'a str],
    Option<&'a str>,
);

/// A page reads a shard a few keys at a time and goes through only so many
/// expired keys (not yet reclaimed) under one lock; it reads on past them.
#[test]
fn a_long_run_of_expired_keys_not_yet_reclaimed_is_skipped() {
    let (store, clock) = manual_store_with(Store::builder().shards(1));
    for i in 0..5_000 {
        store
            .create(&format!("a/{i:05}"), "x", Some(ms(10)))
            .unwrap();
    }
    for key in ["a/x1", "a/x2", "b"] {
        store.create(key, key, None).unwrap();
    }
    clock.advance(11);
    let cases: &[ListCase] = &[
        ("", None, 10, &["a/x1", "a/x2", "b"], None),
        ("a/", None, 1, &["a/x1"], Some("a/x1")),
        ("a/", Some("a/x1"), 1, &["a/x2"], None),
        ("a/", Some("a/00100"), 2, &["a/x1", "a/x2"], None),
    ];
    for &(prefix, after, limit, expected, next) in cases {
        let page = store.list(prefix, after, limit);
        let message = format!("list({prefix:?}, {after:?}, {limit})");
        assert_eq!(keys(&page), expected, "{message}");
        assert_eq!(page.next.as_deref(), next, "{message}");
    }
}
