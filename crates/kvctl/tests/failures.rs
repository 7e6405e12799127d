//! Every way a command fails, and the exit code it gets.

use crate::support::{
    Server, fake_server, json_response, kvctl, silent_server, temp_dir, unreachable_endpoint,
};

#[test]
fn an_unreachable_endpoint_exits_4_naming_the_endpoint() {
    let endpoint = unreachable_endpoint();
    for args in [
        vec!["get", "k"],
        vec!["set", "k", "v"],
        vec!["health"],
        vec!["list"],
    ] {
        kvctl(&args).endpoint(&endpoint).run().fails(
            4,
            &[&format!("cannot reach the server at {endpoint}"), "refused"],
        );
    }
}

#[test]
fn a_server_answering_500_exits_4_with_the_servers_message() {
    let response = json_response(
        "500 Internal Server Error",
        r#"{"error":"internal error","code":"internal"}"#,
    );
    let (endpoint, _) = fake_server(response);
    for args in [
        vec!["get", "k"],
        vec!["set", "k", "v"],
        vec!["del", "k"],
        vec!["export"],
    ] {
        kvctl(&args).endpoint(&endpoint).run().fails(
            4,
            &[&format!(
                "the server at {endpoint} answered 500 Internal Server Error: internal error"
            )],
        );
    }
}

#[test]
fn a_server_that_does_not_answer_in_time_exits_4_naming_the_timeout() {
    let endpoint = silent_server();
    kvctl(&["--timeout", "300ms", "get", "k"])
        .endpoint(&endpoint)
        .run()
        .fails(
            4,
            &[&format!(
                "the server at {endpoint} did not answer within 300ms"
            )],
        );
}

#[test]
fn a_server_that_refuses_the_token_exits_4_saying_what_to_do() {
    let response = json_response(
        "401 Unauthorized",
        r#"{"error":"missing or unknown token","code":"unauthorized"}"#,
    );
    let (endpoint, _) = fake_server(response);
    // `ttl` asks with HEAD, whose answer has no body to explain itself.
    for args in [["get", "k"], ["ttl", "k"]] {
        kvctl(&args).endpoint(&endpoint).run().fails(
            4,
            &["401 Unauthorized: missing or unknown token", "KVCTL_TOKEN"],
        );
    }
    let response = json_response(
        "403 Forbidden",
        r#"{"error":"read only","code":"forbidden"}"#,
    );
    let (endpoint, _) = fake_server(response);
    for args in [vec!["set", "k", "v"], vec!["ttl", "k"]] {
        kvctl(&args)
            .endpoint(&endpoint)
            .run()
            .fails(4, &["not allowed", "403 Forbidden: read only"]);
    }
}

#[test]
fn the_token_is_sent_as_a_bearer_header_and_never_printed() {
    let response = json_response(
        "401 Unauthorized",
        r#"{"error":"unknown token","code":"unauthorized"}"#,
    );
    let (endpoint, requests) = fake_server(response);
    let from_flag = kvctl(&["--token", "s3cret-flag", "get", "k"])
        .endpoint(&endpoint)
        .run();
    let from_env = kvctl(&["get", "k"])
        .endpoint(&endpoint)
        .env("KVCTL_TOKEN", "s3cret-env")
        .run();
    for (outcome, token) in [(from_flag, "s3cret-flag"), (from_env, "s3cret-env")] {
        let request = requests.recv().unwrap();
        assert!(
            request.contains(&format!("authorization: Bearer {token}\r\n")),
            "{request}"
        );
        assert!(
            !outcome.stderr.contains(token) && !outcome.stdout().contains(token),
            "{outcome:?}"
        );
    }
    let help = kvctl(&["--help"])
        .env("KVCTL_TOKEN", "s3cret-help")
        .run()
        .success();
    assert!(
        !help.stdout().contains("s3cret-help"),
        "help hides the token's value"
    );
}

#[test]
fn the_endpoint_comes_from_kvctl_endpoint_when_no_flag_is_given() {
    let server = Server::start();
    let other = unreachable_endpoint();
    server.ok(&["set", "k", "v"]);
    let get = kvctl(&["get", "k"])
        .env("KVCTL_ENDPOINT", &server.endpoint)
        .run()
        .success();
    assert_eq!(get.stdout(), "v\n");
    kvctl(&["get", "k"])
        .env("KVCTL_ENDPOINT", &server.endpoint)
        .endpoint(&other)
        .run()
        .fails(4, &[&other]);
}

#[test]
fn a_wrong_endpoint_path_is_a_server_error_not_a_missing_key() {
    let server = Server::start();
    let endpoint = format!("{}/not-the-api", server.endpoint);
    kvctl(&["get", "k"]).endpoint(&endpoint).run().fails(
        4,
        &["answered 404 Not Found: no route for GET /not-the-api/v1/kv/k"],
    );
}

#[test]
fn requests_the_server_refuses_as_malformed_or_too_large_exit_2() {
    let server = Server::start_with(kvserver::Config {
        max_value_bytes: 8,
        max_key_bytes: 8,
        ..kvserver::Config::default()
    });
    let cases = [
        (
            vec!["set", "k", "123456789"],
            "value is 9 bytes, over the limit of 8 bytes",
            "value too large",
        ),
        (
            vec!["set", "123456789", "v"],
            "key is 9 bytes, over the limit of 8 bytes",
            "key too large",
        ),
    ];
    for (args, needle, why) in cases {
        let outcome = server.kvctl(&args).run();
        assert_eq!(outcome.code, 2, "{why}: {outcome:?}");
        outcome.fails(2, &["the server refused the request", needle]);
    }
}

#[test]
fn usage_errors_exit_2_with_one_line_pointing_at_help() {
    let server = Server::start();
    let cases = [
        (vec!["set"], "<KEY>", "a missing argument"),
        (
            vec!["set", "k", "v", "--if-absent", "--if-version", "3"],
            "cannot be used with",
            "conflicting flags",
        ),
        (
            vec!["update", "k", "v", "--ttl", "5s", "--persist"],
            "cannot be used with",
            "ttl and persist",
        ),
        (
            vec!["set", "k", "v", "--ttl", "10y"],
            "unknown unit",
            "a bad TTL",
        ),
        (
            vec!["set", "k", "v", "--ttl", "0.5ms"],
            "minimum of 1 ms",
            "a TTL under a millisecond",
        ),
        (
            vec!["set", "k", "v", "--ttl", "315576000001ms"],
            "maximum of 10 years",
            "ten years and a millisecond, refused before anything is sent",
        ),
        (
            vec!["get", "k", "--bogus"],
            "unexpected argument '--bogus'",
            "an unknown flag",
        ),
        (
            vec!["-o", "yaml", "get", "k"],
            "invalid value 'yaml'",
            "an unknown format",
        ),
        (
            vec!["--endpoint", "localhost:8080", "get", "k"],
            "must start with http:// or https://",
            "an endpoint without a scheme",
        ),
        (
            vec!["--timeout", "soon", "get", "k"],
            "--timeout",
            "a bad timeout",
        ),
        (vec!["get", ""], "a value is required", "an empty key"),
        (
            vec!["get", ".."],
            "can't be used over HTTP",
            "a dot-segment key",
        ),
        (
            vec!["list", "--page-size", "1001"],
            "1001",
            "a page over the server's maximum",
        ),
        (
            vec!["frobnicate"],
            "unrecognized subcommand",
            "an unknown command",
        ),
    ];
    for (args, needle, why) in cases {
        let outcome = server.kvctl(&args).run();
        assert_eq!(outcome.code, 2, "{why}: {outcome:?}");
        outcome.fails(2, &[needle]);
    }
    let outcome = server
        .kvctl(&["set", "k", "v", "--if-absent", "--if-version", "3"])
        .run();
    assert!(
        outcome.stderr.contains("see 'kvctl set --help'"),
        "{outcome:?}"
    );
}

#[test]
fn unreadable_inputs_exit_2_naming_the_file() {
    let server = Server::start();
    let not_pem = temp_dir().join("not.pem");
    std::fs::write(&not_pem, "this is not a certificate").unwrap();
    let not_pem_flag = format!("--cacert={}", not_pem.display());
    let cases = [
        (
            vec!["set", "k", "@/nonexistent/value.bin"],
            "cannot read /nonexistent/value.bin",
            "a missing @file",
        ),
        (
            vec!["--cacert", "/nonexistent/ca.pem", "health"],
            "cannot read /nonexistent/ca.pem",
            "a missing CA file",
        ),
        (
            vec![not_pem_flag.as_str(), "health"],
            "no PEM certificate found",
            "a CA file without certificates",
        ),
    ];
    for (args, needle, why) in cases {
        let outcome = server.kvctl(&args).run();
        assert_eq!(outcome.code, 2, "{why}: {outcome:?}");
        outcome.fails(2, &[needle]);
    }
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let server = Server::start();
    for n in 0..50 {
        server.ok(&["set", &format!("key/{n:03}"), "v"]);
    }
    // `kvctl list | head -1`: the reader goes away after the first line.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kvctl"))
        .args(["--endpoint", &server.endpoint, "list", "--page-size", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 8];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

#[test]
fn a_server_out_of_memory_exits_4_saying_the_store_is_full() {
    // --max-memory bounds the embedded store; etcd has its own quota.
    let server = Server::start_embedded(kvserver::Config {
        max_memory: Some(16 * 1024),
        ..kvserver::Config::default()
    });
    let value = "v".repeat(2000);
    for i in 0.. {
        assert!(i < 100, "a 16 KiB bound never filled up");
        let outcome = server.kvctl(&["set", &format!("k{i}"), &value]).run();
        if outcome.code != 0 {
            outcome.fails(
                4,
                &[
                    "answered 507 Insufficient Storage",
                    "the store is full",
                    "--max-memory",
                ],
            );
            break;
        }
    }
    // Reads still work against the full server.
    server.ok(&["get", "k0"]);
}
