//! export and import.

use serde_json::json;

use crate::support::{Server, temp_dir};

#[test]
fn export_writes_one_json_line_per_key_with_absolute_deadlines() {
    let server = Server::start();
    server.ok(&["set", "plain", "text"]);
    server.ok(&["set", "session", "s", "--ttl", "1h"]);
    server
        .kvctl(&["set", "bin"])
        .stdin(vec![0xde, 0xad, 0xbe, 0xef])
        .run()
        .success();
    let records = server.ok(&["export"]).json_lines();
    assert_eq!(records.len(), 3);
    assert_eq!(
        records[0],
        json!({"key": "bin", "value": "3q2+7w==", "encoding": "base64"})
    );
    assert_eq!(records[1], json!({"key": "plain", "value": "text"}));
    let expires_at: jiff::Timestamp = records[2]["expires_at"].as_str().unwrap().parse().unwrap();
    let left = expires_at.as_millisecond() - jiff::Timestamp::now().as_millisecond();
    assert!(
        (3_500_000..=3_600_000).contains(&left),
        "deadline an hour away: {records:?}"
    );
}

#[test]
fn export_of_a_prefix_follows_pages() {
    let server = Server::start();
    for n in 0..5 {
        server.ok(&["set", &format!("p/{n}"), "v"]);
    }
    server.ok(&["set", "q", "v"]);
    let records = server
        .ok(&["export", "p/", "--page-size", "2"])
        .json_lines();
    let keys: Vec<_> = records.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["p/0", "p/1", "p/2", "p/3", "p/4"]);
}

#[test]
fn binary_values_round_trip_through_export_and_import() {
    let (source, target) = (Server::start(), Server::start());
    let values: Vec<(&str, Vec<u8>)> = vec![
        ("every-byte", (0..=255).collect()),
        ("invalid-utf8", vec![0xc3, 0x28, 0xff]),
        ("nul", vec![0]),
        ("text", "héllo\n".as_bytes().to_vec()),
        ("empty", Vec::new()),
    ];
    for (key, value) in &values {
        source
            .kvctl(&["set", key])
            .stdin(value.clone())
            .run()
            .success();
    }
    let file = temp_dir().join("dump.jsonl");
    std::fs::write(&file, source.ok(&["export"]).stdout).unwrap();
    let import = target.ok(&["import", file.to_str().unwrap()]);
    assert_eq!(
        import.stdout(),
        format!("imported 5 keys from {}\n", file.display())
    );
    for (key, value) in &values {
        assert_eq!(&target.ok(&["get", key, "--raw"]).stdout, value, "{key}");
    }
}

#[test]
fn import_restores_deadlines_and_skips_keys_whose_deadline_passed() {
    let server = Server::start();
    let now = jiff::Timestamp::now().as_millisecond();
    let at = |offset_ms: i64| {
        jiff::Timestamp::from_millisecond(now + offset_ms)
            .unwrap()
            .to_string()
    };
    let file = temp_dir().join("dump.jsonl");
    let lines = [
        json!({"key": "in-an-hour", "value": "v", "expires_at": at(3_600_000)}),
        json!({"key": "expired", "value": "v", "expires_at": at(-1000)}),
        json!({"key": "forever", "value": "v"}),
    ];
    let text: String = lines.iter().map(|line| format!("{line}\n\n")).collect();
    std::fs::write(&file, text).unwrap();
    let import = server.ok(&["-o", "json", "import", file.to_str().unwrap()]);
    assert_eq!(
        import.json(),
        json!({"file": file.to_str().unwrap(), "imported": 2, "skipped_existing": 0, "skipped_expired": 1})
    );
    let ttl_ms = server.ok(&["-o", "json", "ttl", "in-an-hour"]).json()["ttl_ms"]
        .as_u64()
        .unwrap();
    assert!((3_500_000..=3_600_000).contains(&ttl_ms), "{ttl_ms}");
    server.kvctl(&["get", "expired"]).run().fails(1, &[]);
    assert_eq!(
        server.ok(&["-o", "json", "ttl", "forever"]).json()["ttl_ms"],
        json!(null)
    );
}

#[test]
fn import_replaces_existing_keys_as_the_file_has_them() {
    let server = Server::start();
    server.ok(&["set", "k", "old", "--ttl", "1h"]);
    let file = temp_dir().join("dump.jsonl");
    std::fs::write(&file, "{\"key\":\"k\",\"value\":\"new\"}\n").unwrap();
    server.ok(&["import", file.to_str().unwrap()]);
    assert_eq!(server.ok(&["get", "k"]).stdout(), "new\n");
    let ttl = server.ok(&["-o", "json", "ttl", "k"]).json();
    assert_eq!(
        ttl["ttl_ms"],
        json!(null),
        "the file's key has no deadline, so neither has the store's"
    );
}

#[test]
fn import_if_absent_leaves_existing_keys_and_counts_them() {
    let server = Server::start();
    server.ok(&["set", "a", "kept"]);
    let file = temp_dir().join("dump.jsonl");
    std::fs::write(
        &file,
        "{\"key\":\"a\",\"value\":\"from file\"}\n{\"key\":\"b\",\"value\":\"from file\"}\n",
    )
    .unwrap();
    let import = server.ok(&["import", "--if-absent", file.to_str().unwrap()]);
    assert_eq!(
        import.stdout(),
        format!(
            "imported 1 key from {} (skipped 1 already present)\n",
            file.display()
        )
    );
    assert_eq!(server.ok(&["get", "a"]).stdout(), "kept\n");
    assert_eq!(server.ok(&["get", "b"]).stdout(), "from file\n");
}

#[test]
fn import_reads_stdin_when_the_file_is_a_dash() {
    let server = Server::start();
    let import = server
        .kvctl(&["import", "-"])
        .stdin("{\"key\":\"k\",\"value\":\"v\"}\n")
        .run()
        .success();
    assert_eq!(import.stdout(), "imported 1 key from stdin\n");
    assert_eq!(server.ok(&["get", "k"]).stdout(), "v\n");
}

#[test]
fn import_output_is_clean_when_piped() {
    let server = Server::start();
    let file = temp_dir().join("dump.jsonl");
    let lines: String = (0..50)
        .map(|n| format!("{{\"key\":\"k{n}\",\"value\":\"v\"}}\n"))
        .collect();
    std::fs::write(&file, lines).unwrap();
    let import = server.kvctl(&["import", file.to_str().unwrap()]).run();
    assert_eq!(import.stderr, "", "no progress bar when stderr is a pipe");
    assert_eq!(
        import.stdout(),
        format!("imported 50 keys from {}\n", file.display())
    );
    assert_eq!(import.code, 0);
}

#[test]
fn import_stops_at_a_malformed_line_naming_it_with_exit_2() {
    let server = Server::start();
    let file = temp_dir().join("dump.jsonl");
    let cases = [
        (
            "{\"key\":\"b\",\"value\":\"v\"}\nnot json\n",
            "line 2 (1 written before it)",
            "not an export record",
        ),
        (
            "{\"key\":\"b\",\"value\":\"v\",\"ttl\":5}\n",
            "line 1",
            "unknown field `ttl`",
        ),
        (
            "{\"key\":\"b\",\"value\":\"!!\",\"encoding\":\"base64\"}\n",
            "line 1",
            "not valid base64",
        ),
        (
            "{\"key\":\"b\",\"value\":\"v\",\"expires_at\":\"soon\"}\n",
            "line 1",
            "RFC 3339",
        ),
    ];
    for (content, at, why) in cases {
        std::fs::write(&file, content).unwrap();
        server
            .kvctl(&["import", file.to_str().unwrap()])
            .run()
            .fails(2, &[at, why]);
    }
}

#[test]
fn import_of_a_missing_file_exits_2_naming_it() {
    let server = Server::start();
    server
        .kvctl(&["import", "/nonexistent/dump.jsonl"])
        .run()
        .fails(2, &["cannot read /nonexistent/dump.jsonl", "No such file"]);
}

#[test]
fn import_shows_a_progress_bar_on_a_terminal() {
    let server = Server::start();
    let file = temp_dir().join("dump.jsonl");
    let lines: String = (0..3)
        .map(|n| format!("{{\"key\":\"k{n}\",\"value\":\"v\"}}\n"))
        .collect();
    std::fs::write(&file, lines).unwrap();
    // script(1) (Debian's bsdutils) runs kvctl on a pseudo-terminal.
    let command = format!(
        "'{}' --endpoint {} import '{}'",
        env!("CARGO_BIN_EXE_kvctl"),
        server.endpoint,
        file.display()
    );
    let output = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script(1) from bsdutils runs kvctl on a terminal");
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{screen}");
    assert!(screen.contains("importing "), "a bar was drawn: {screen}");
    assert!(screen.contains("3 keys"), "it counts keys: {screen}");
    assert!(screen.contains("imported 3 keys from"), "{screen}");
}
