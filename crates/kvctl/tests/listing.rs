//! list: byte order, pages, limits, JSON.

use serde_json::json;

use crate::support::{Server, version_in};

fn keys_of(outcome: &crate::support::Outcome) -> Vec<String> {
    outcome
        .json_lines()
        .into_iter()
        .map(|item| item["key"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn list_shows_keys_in_byte_order_with_size_version_and_ttl() {
    let server = Server::start();
    let [bob, carol, session] = [
        &["set", "user/2", "bob"][..],
        &["set", "user/10", "carol-long-value"],
        &["set", "session", "s", "--ttl", "1h"],
    ]
    .map(|args| version_in(&server.ok(args).stdout()));
    let listing = server.ok(&["list"]).stdout();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 3, "{listing}");
    assert!(
        lines[0].starts_with(&format!(
            "session   1 bytes  version {session}  expires in 59m"
        )),
        "{listing}"
    );
    assert_eq!(lines[1], format!("user/10  16 bytes  version {carol}"));
    assert_eq!(lines[2], format!("user/2    3 bytes  version {bob}"));
}

#[test]
fn list_follows_pages_until_the_listing_is_complete() {
    let server = Server::start();
    let mut expected = Vec::new();
    for n in 0..7 {
        let key = format!("page/{n}");
        server.ok(&["set", &key, "v"]);
        expected.push(key);
    }
    server.ok(&["set", "pagf", "not under the prefix"]);
    let listed = server.ok(&["-o", "json", "list", "page/", "--page-size", "2"]);
    assert_eq!(keys_of(&listed), expected, "four pages of 2, 2, 2 and 1");
    let all = server.ok(&["-o", "json", "list", "--page-size", "3"]);
    assert_eq!(keys_of(&all).len(), 8);
}

#[test]
fn list_limit_stops_after_that_many_keys() {
    let server = Server::start();
    for n in 0..5 {
        server.ok(&["set", &format!("k{n}"), "v"]);
    }
    let cases = [
        (
            vec!["--limit", "3"],
            vec!["k0", "k1", "k2"],
            "within one page",
        ),
        (
            vec!["--limit", "3", "--page-size", "2"],
            vec!["k0", "k1", "k2"],
            "across pages",
        ),
        (
            vec!["--limit", "9"],
            vec!["k0", "k1", "k2", "k3", "k4"],
            "more than there are",
        ),
    ];
    for (flags, expected, why) in cases {
        let args: Vec<&str> = ["-o", "json", "list"].into_iter().chain(flags).collect();
        assert_eq!(keys_of(&server.ok(&args)), expected, "{why}");
    }
}

#[test]
fn list_as_json_prints_one_document_per_key() {
    let server = Server::start();
    let a = version_in(&server.ok(&["set", "a", "12345"]).stdout());
    server.ok(&["set", "b", "x", "--ttl", "1h"]);
    let items = server.ok(&["-o", "json", "list"]).json_lines();
    assert_eq!(items[0], json!({"key": "a", "version": a, "size": 5}));
    assert_eq!(
        (&items[1]["key"], &items[1]["size"]),
        (&json!("b"), &json!(1))
    );
    assert!(items[1]["ttl_ms"].as_u64().unwrap() > 3_500_000);
}

#[test]
fn list_of_an_empty_prefix_prints_nothing_and_succeeds() {
    let server = Server::start();
    server.ok(&["set", "a", "v"]);
    assert_eq!(server.ok(&["list", "nothing/"]).stdout(), "");
}
