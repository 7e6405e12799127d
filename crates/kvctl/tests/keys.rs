//! set, get, del, update and ttl.

use serde_json::json;

use crate::support::{Server, temp_dir, version_in};

#[test]
fn set_creates_a_key_and_get_prints_its_value() {
    let server = Server::start();
    let set = server.ok(&["set", "greeting", "hello"]);
    let version = version_in(&set.stdout());
    assert_eq!(
        set.stdout(),
        format!("created greeting (version {version})\n")
    );
    assert_eq!(server.ok(&["get", "greeting"]).stdout(), "hello\n");
    assert_eq!(
        server.ok(&["-o", "json", "get", "greeting"]).json()["version"],
        json!(version),
        "the version the key has"
    );
}

#[test]
fn set_replaces_the_value_of_an_existing_key() {
    let server = Server::start();
    let first = server
        .ok(&["-o", "json", "set", "greeting", "hello"])
        .json();
    let set = server
        .ok(&["-o", "json", "set", "greeting", "bonjour"])
        .json();
    assert_eq!(
        (&set["key"], &set["created"]),
        (&json!("greeting"), &json!(false))
    );
    assert!(
        set["version"].as_u64().unwrap() > first["version"].as_u64().unwrap(),
        "a new version: {first} then {set}"
    );
    assert_eq!(server.ok(&["get", "greeting"]).stdout(), "bonjour\n");
}

#[test]
fn set_reads_the_value_from_stdin_when_it_is_omitted_or_a_dash() {
    let server = Server::start();
    let cases = [
        (vec!["set", "omitted"], "omitted value"),
        (vec!["set", "dash", "-"], "dash"),
    ];
    for (args, why) in cases {
        server
            .kvctl(&args)
            .stdin("line one\nline two\n")
            .run()
            .success();
        let key = args[1];
        let raw = server.ok(&["get", key, "--raw"]);
        assert_eq!(
            raw.stdout(),
            "line one\nline two\n",
            "{why}: kept byte for byte"
        );
    }
}

#[test]
fn set_reads_the_value_byte_for_byte_from_an_at_file() {
    let server = Server::start();
    let file = temp_dir().join("value.bin");
    let bytes: Vec<u8> = (0..=255).collect();
    std::fs::write(&file, &bytes).unwrap();
    server.ok(&["set", "blob", &format!("@{}", file.display())]);
    assert_eq!(server.ok(&["get", "blob", "--raw"]).stdout, bytes);
}

#[test]
fn set_with_if_absent_creates_once_then_fails_with_exit_3() {
    let server = Server::start();
    let set = server.ok(&["set", "lock", "me", "--if-absent"]);
    let version = format!("version {}", version_in(&set.stdout()));
    server
        .kvctl(&["set", "lock", "you", "--if-absent"])
        .run()
        .fails(3, &["\"lock\" already exists", &version]);
    assert_eq!(server.ok(&["get", "lock"]).stdout(), "me\n");
}

#[test]
fn set_with_if_version_swaps_only_the_matching_version() {
    let server = Server::start();
    let counter = version_in(&server.ok(&["set", "counter", "1"]).stdout());
    let other = version_in(&server.ok(&["set", "other", "x"]).stdout());
    server
        .kvctl(&["set", "counter", "2", "--if-version", &other.to_string()])
        .run()
        .fails(
            3,
            &[&format!("\"counter\" is at version {counter}, not {other}")],
        );
    server
        .kvctl(&["set", "absent", "2", "--if-version", &counter.to_string()])
        .run()
        .fails(3, &["\"absent\" does not exist"]);
    let swapped = server.ok(&["set", "counter", "2", "--if-version", &counter.to_string()]);
    let version = version_in(&swapped.stdout());
    assert_eq!(
        swapped.stdout(),
        format!("updated counter (version {version})\n")
    );
    assert!(version > other, "newer than any version before it");
}

#[test]
fn set_with_a_ttl_gives_the_key_a_deadline_that_ttl_reports() {
    let server = Server::start();
    let set = server.ok(&["set", "session", "s", "--ttl", "2h"]);
    let version = version_in(&set.stdout());
    assert_eq!(
        set.stdout(),
        format!("created session (version {version}, expires in 2h)\n")
    );
    let ttl = server.ok(&["ttl", "session"]);
    assert!(ttl.stdout().starts_with("expires in 1h 59m"), "{ttl:?}");
    let ttl_ms = server.ok(&["-o", "json", "ttl", "session"]).json()["ttl_ms"]
        .as_u64()
        .unwrap();
    assert!((7_100_000..=7_200_000).contains(&ttl_ms), "{ttl_ms}");
}

#[test]
fn ttl_of_a_key_without_a_deadline_says_it_never_expires() {
    let server = Server::start();
    server.ok(&["set", "forever", "v"]);
    assert_eq!(
        server.ok(&["ttl", "forever"]).stdout(),
        "forever has no TTL: it never expires\n"
    );
    let json = server.ok(&["-o", "json", "ttl", "forever"]).json();
    assert_eq!(json, json!({"key": "forever", "ttl_ms": null}));
}

#[test]
fn ttl_of_a_missing_key_exits_1() {
    let server = Server::start();
    server
        .kvctl(&["ttl", "nope"])
        .run()
        .fails(1, &["\"nope\" not found"]);
}

#[test]
fn get_of_a_missing_key_exits_1_with_one_line_naming_it() {
    let server = Server::start();
    server
        .kvctl(&["get", "nope"])
        .run()
        .fails(1, &["key \"nope\" not found"]);
}

#[test]
fn get_raw_prints_the_exact_bytes_and_text_escapes_binary() {
    let server = Server::start();
    let bytes = b"\xff\x00bin\n".to_vec();
    server
        .kvctl(&["set", "bin"])
        .stdin(bytes.clone())
        .run()
        .success();
    assert_eq!(server.ok(&["get", "bin", "--raw"]).stdout, bytes);
    assert_eq!(server.ok(&["get", "bin"]).stdout(), "\\xff\\x00bin\\n\n");
}

#[test]
fn get_as_json_carries_the_value_version_and_ttl() {
    let server = Server::start();
    let set_text = server.ok(&["set", "text", "héllo", "--ttl", "1h"]);
    let set_bin = server
        .kvctl(&["set", "bin"])
        .stdin(vec![0xff, 0xfe])
        .run()
        .success();
    let text = server.ok(&["-o", "json", "get", "text"]).json();
    assert_eq!(
        (&text["key"], &text["value"], &text["version"]),
        (
            &json!("text"),
            &json!("héllo"),
            &json!(version_in(&set_text.stdout()))
        )
    );
    assert!(text["ttl_ms"].as_u64().unwrap() > 3_500_000, "{text}");
    assert_eq!(text.get("encoding"), None);
    let bin = server.ok(&["-o", "json", "get", "bin"]).json();
    assert_eq!(
        bin,
        json!({"key": "bin", "value": "//4=", "encoding": "base64", "version": version_in(&set_bin.stdout())})
    );
}

#[test]
fn del_removes_the_key_and_exits_1_when_it_is_absent() {
    let server = Server::start();
    server.ok(&["set", "gone", "soon"]);
    assert_eq!(server.ok(&["del", "gone"]).stdout(), "deleted gone\n");
    server
        .kvctl(&["get", "gone"])
        .run()
        .fails(1, &["\"gone\" not found"]);
    server
        .kvctl(&["del", "gone"])
        .run()
        .fails(1, &["\"gone\" not found"]);
}

#[test]
fn del_with_if_version_deletes_only_the_matching_version() {
    let server = Server::start();
    let version = version_in(&server.ok(&["set", "k", "v"]).stdout());
    let other = version + 6;
    server
        .kvctl(&["del", "k", "--if-version", &other.to_string()])
        .run()
        .fails(3, &[&format!("\"k\" is at version {version}, not {other}")]);
    let deleted = server.ok(&[
        "-o",
        "json",
        "del",
        "k",
        "--if-version",
        &version.to_string(),
    ]);
    assert_eq!(deleted.json(), json!({"key": "k", "deleted": true}));
}

#[test]
fn update_replaces_an_existing_key_and_keeps_its_ttl() {
    let server = Server::start();
    let set = server.ok(&["set", "session", "old", "--ttl", "1h"]);
    let update = server.ok(&["update", "session", "new"]);
    let version = version_in(&update.stdout());
    assert!(
        update.stdout().starts_with(&format!(
            "updated session (version {version}, expires in 59m"
        )),
        "{update:?}"
    );
    assert!(version > version_in(&set.stdout()), "a new version");
    assert_eq!(server.ok(&["get", "session"]).stdout(), "new\n");
}

#[test]
fn update_with_persist_removes_the_ttl_and_with_ttl_sets_a_new_one() {
    let server = Server::start();
    server.ok(&["set", "session", "v", "--ttl", "1h"]);
    server.ok(&["update", "session", "v", "--persist"]);
    assert_eq!(
        server.ok(&["-o", "json", "ttl", "session"]).json()["ttl_ms"],
        json!(null)
    );
    server.ok(&["update", "session", "v", "--ttl", "5m"]);
    let ttl = server.ok(&["ttl", "session"]).stdout();
    assert!(
        ttl.starts_with("expires in 4m") || ttl == "expires in 5m\n",
        "{ttl}"
    );
}

#[test]
fn update_reads_its_value_from_a_file_or_stdin() {
    let server = Server::start();
    server.ok(&["set", "k", "v"]);
    let file = temp_dir().join("new.txt");
    std::fs::write(&file, "from a file").unwrap();
    server.ok(&["update", "k", &format!("@{}", file.display())]);
    assert_eq!(server.ok(&["get", "k"]).stdout(), "from a file\n");
    server
        .kvctl(&["update", "k", "-"])
        .stdin("from stdin")
        .run()
        .success();
    assert_eq!(server.ok(&["get", "k"]).stdout(), "from stdin\n");
}

#[test]
fn update_of_a_missing_key_exits_1_and_creates_nothing() {
    let server = Server::start();
    server
        .kvctl(&["update", "nope", "v"])
        .run()
        .fails(1, &["\"nope\" not found"]);
    server.kvctl(&["get", "nope"]).run().fails(1, &[]);
}

#[test]
fn keys_with_slashes_spaces_and_any_unicode_round_trip() {
    let server = Server::start();
    let keys = [
        ("a/b/c", "slashes"),
        ("/leading/and/trailing/", "slashes at the ends"),
        ("with space", "a space"),
        ("q?x=1#frag", "URL syntax"),
        ("100%", "a percent sign"),
        ("ключ/日本", "non-ASCII"),
        ("...", "dots that are not a dot segment"),
    ];
    for (key, why) in keys {
        server.ok(&["set", key, why]);
        let got = server.ok(&["-o", "json", "get", key]).json();
        assert_eq!(
            (&got["key"], &got["value"]),
            (&json!(key), &json!(why)),
            "{why}"
        );
    }
    let listed: Vec<_> = server
        .ok(&["-o", "json", "list"])
        .json_lines()
        .into_iter()
        .map(|item| item["key"].as_str().unwrap().to_owned())
        .collect();
    let mut expected: Vec<_> = keys.iter().map(|(key, _)| key.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected);
}

#[test]
fn an_empty_value_is_a_value() {
    let server = Server::start();
    server.ok(&["set", "empty", ""]);
    assert_eq!(server.ok(&["get", "empty", "--raw"]).stdout, b"");
    assert_eq!(
        server.ok(&["-o", "json", "get", "empty"]).json()["value"],
        json!("")
    );
}
