//! Credentials kvctl refuses before sending anything: a token that cannot go
//! in an HTTP header, and an endpoint carrying a user name or password
//! (which reqwest would otherwise send as Basic auth). Either is a usage
//! error (exit 2) whose one line never shows the secret.

use std::sync::mpsc::Receiver;
use std::time::Duration;

use crate::support::{fake_server, json_response, kvctl};

/// A server that would accept anything, so a request that got through
/// would succeed instead of failing the way the test expects.
fn accepting_server() -> (String, Receiver<String>) {
    fake_server(json_response("200 OK", r#"{"status":"ok"}"#))
}

fn assert_nothing_sent(requests: &Receiver<String>) {
    // Every kvctl has exited; a request one of them sent would be here by now.
    if let Ok(request) = requests.recv_timeout(Duration::from_millis(300)) {
        panic!("kvctl sent a request: {request}");
    }
}

#[test]
fn a_token_that_cannot_go_in_a_header_is_a_usage_error_from_flag_or_environment() {
    let (endpoint, requests) = accepting_server();
    let cases = [
        ("s3cret\nhalf", "a line feed", "a newline inside"),
        (
            "s3cret-whole\n",
            "a line feed",
            "a trailing newline (echo > file)",
        ),
        ("s3cret-crlf\r\n", "a carriage return", "a CRLF line end"),
        ("s3cret\tx", "a tab", "a tab"),
        (
            "s3cret\u{1b}[31m",
            "a control character",
            "an escape sequence",
        ),
        ("s3cret\u{7f}", "a control character", "DEL"),
        ("s3crét", "a non-ASCII character", "a non-ASCII letter"),
    ];
    for (token, what, why) in cases {
        let by_flag = kvctl(&["--token", token, "health"])
            .endpoint(&endpoint)
            .run();
        let by_env = kvctl(&["health"])
            .endpoint(&endpoint)
            .env("KVCTL_TOKEN", token)
            .run();
        for (outcome, source) in [(by_flag, "--token"), (by_env, "KVCTL_TOKEN")] {
            let outcome = outcome.fails(2, &["token", what, "printable ASCII"]);
            assert!(
                !outcome.stderr.contains("s3cr"),
                "{why} by {source}: the token is never printed: {outcome:?}"
            );
        }
    }
    assert_nothing_sent(&requests);
}

#[test]
fn a_token_of_printable_ascii_is_still_sent() {
    let (endpoint, requests) = accepting_server();
    kvctl(&["health"])
        .endpoint(&endpoint)
        .env("KVCTL_TOKEN", "kvs_AZaz09-._~+/=")
        .run()
        .success();
    let request = requests.recv().unwrap();
    assert!(
        request.contains("authorization: Bearer kvs_AZaz09-._~+/=\r\n"),
        "{request}"
    );
}

#[test]
fn an_endpoint_with_a_user_or_password_is_refused_without_printing_the_password() {
    let (endpoint, requests) = accepting_server();
    let authority = endpoint.strip_prefix("http://").unwrap();
    let cases = [
        (
            format!("http://alice:pw-s3cret@{authority}"),
            "user and password",
        ),
        (format!("http://:pw-s3cret@{authority}"), "password only"),
        (format!("http://alice@{authority}"), "user only"),
        (
            format!("http://alice:pw%2Fs3cret@{authority}/"),
            "escaped password, trailing slash",
        ),
        (
            format!("http://alice:pw-s3cret@{authority}/?a=b"),
            "and a query",
        ),
        (
            "http://alice:pw-s3cret@127.0.0.1:99999".to_owned(),
            "not a URL (port out of range)",
        ),
        (
            "ftp://alice:pw-s3cret@127.0.0.1:21".to_owned(),
            "another scheme",
        ),
    ];
    for (url, why) in cases {
        let by_flag = kvctl(&["health"]).endpoint(&url).run();
        let by_env = kvctl(&["health"]).env("KVCTL_ENDPOINT", &url).run();
        for (outcome, source) in [(by_flag, "--endpoint"), (by_env, "KVCTL_ENDPOINT")] {
            assert_eq!(outcome.code, 2, "{why} by {source}: {outcome:?}");
            let outcome = outcome.fails(2, &["--endpoint"]);
            assert!(
                !outcome.stderr.contains("s3cret"),
                "{why} by {source}: the password is never printed: {outcome:?}"
            );
        }
    }
    assert_nothing_sent(&requests);
    kvctl(&["health"])
        .endpoint(&format!("http://alice:pw-s3cret@{authority}"))
        .run()
        .fails(2, &["user name or password", "Basic auth", "KVCTL_TOKEN"]);
}
