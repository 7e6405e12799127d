//! README, kvserver (the APIs and Errors): every malformed request gets the right 4xx with
//! `{"error", "code"}` and a sentence that says what was wrong; never a 5xx,
//! and stored data stays as it was.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::raw_http::RawRequest;
use crate::server_process::ServerProcess;
use crate::test_app::{TestApp, assert_error, json_of};

/// One malformed request and the answer it must get.
struct Case {
    why: String,
    method: Method,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    status: StatusCode,
    code: &'static str,
    says: &'static str,
}

/// A 400 `invalid_request` whose sentence contains `says`.
fn bad(
    why: &str,
    method: Method,
    path: &'static str,
    body: impl Into<Vec<u8>>,
    says: &'static str,
) -> Case {
    Case {
        why: why.to_owned(),
        method,
        path,
        headers: Vec::new(),
        body: body.into(),
        status: StatusCode::BAD_REQUEST,
        code: "invalid_request",
        says,
    }
}

impl Case {
    fn header(mut self, name: &'static str, value: &'static str) -> Case {
        self.headers.push((name, value));
        self
    }

    fn answered(mut self, status: StatusCode, code: &'static str) -> Case {
        self.status = status;
        self.code = code;
        self
    }
}

/// Seed write bodies that are wrong, each sent as POST and as PUT: the body,
/// what the error must say, and why the body is wrong.
#[rustfmt::skip]
fn seed_bodies() -> Vec<(Vec<u8>, &'static str, &'static str)> {
    let nested = format!(r#"{{"key":"k","value":"v","ttl":{}{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
    vec![
        (br#"{"key":"k","value":"#.to_vec(), "not valid JSON", "truncated JSON"),
        (br#"{key:"k",value:"v"}"#.to_vec(), "not valid JSON", "unquoted names"),
        (b"not json".to_vec(), "not valid JSON", "not JSON at all"),
        (b"key=k&value=v".to_vec(), "not valid JSON", "a form body"),
        (br#"{"key":"k","value":"v"} extra"#.to_vec(), "not valid JSON", "trailing text"),
        (b"{\"key\":\"k\xff\",\"value\":\"v\"}".to_vec(), "not valid JSON", "bytes that are not UTF-8"),
        (br#"{"key":"\ud800","value":"v"}"#.to_vec(), "not valid JSON", "a lone surrogate"),
        (nested.into_bytes(), r#""ttl" must be a number of seconds, got an array"#, "nesting deep enough to blow a stack"),
        (b"".to_vec(), "empty", "an empty body"),
        (b"  \n ".to_vec(), "empty", "only whitespace"),
        (b"[1,2]".to_vec(), "must be a JSON object", "an array"),
        (br#""k""#.to_vec(), "must be a JSON object", "a string"),
        (b"null".to_vec(), "must be a JSON object", "null"),
        (br#"{"key":"k","value":1}"#.to_vec(), r#""value" must be a JSON string, got a number"#, "value a number"),
        (br#"{"key":"k","value":{"a":1}}"#.to_vec(), r#""value" must be a JSON string, got an object"#, "value an object"),
        (br#"{"key":"k","value":null}"#.to_vec(), r#""value" must be a JSON string, got null"#, "value null"),
        (br#"{"key":"k","value":true}"#.to_vec(), r#""value" must be a JSON string, got a boolean"#, "value a boolean"),
        (br#"{"key":"k","value":["v"]}"#.to_vec(), r#""value" must be a JSON string, got an array"#, "value an array"),
        (br#"{"key":1,"value":"v"}"#.to_vec(), r#""key" must be a JSON string, got a number"#, "key a number"),
        (br#"{"key":null,"value":"v"}"#.to_vec(), r#""key" must be a JSON string, got null"#, "key null"),
        (br#"{"value":"v"}"#.to_vec(), r#"missing field "key""#, "no key"),
        (br#"{"key":"k"}"#.to_vec(), r#"missing field "value""#, "no value"),
        (br#"{"key":"","value":"v"}"#.to_vec(), "key must not be empty", "an empty key"),
        (br#"{"key":"k","value":"v","ttl":0}"#.to_vec(), "positive", "ttl 0"),
        (br#"{"key":"k","value":"v","ttl":-1}"#.to_vec(), "positive", "ttl negative"),
        (br#"{"key":"k","value":"v","ttl":-0.0}"#.to_vec(), "positive", "ttl negative zero"),
        (br#"{"key":"k","value":"v","ttl":"3"}"#.to_vec(), r#""ttl" must be a number of seconds, got a string"#, "ttl a string"),
        (br#"{"key":"k","value":"v","ttl":true}"#.to_vec(), r#""ttl" must be a number of seconds, got a boolean"#, "ttl a boolean"),
        (br#"{"key":"k","value":"v","ttl":{"s":3}}"#.to_vec(), r#""ttl" must be a number of seconds, got an object"#, "ttl an object"),
        (br#"{"key":"k","value":"v","ttl":1e12}"#.to_vec(), "maximum of 10 years", "ttl huge"),
        (br#"{"key":"k","value":"v","ttl":18446744073709551616}"#.to_vec(), "maximum of 10 years", "ttl past u64"),
        (br#"{"key":"k","value":"v","ttl":1e400}"#.to_vec(), "maximum of 10 years", "ttl past f64, read from its digits"),
        (br#"{"key":"k","value":"v","ttl":1e-400}"#.to_vec(), "minimum of 1 ms", "ttl below f64"),
        (br#"{"key":"k","value":"v","ttl":0.0001}"#.to_vec(), "minimum of 1 ms", "ttl under a millisecond"),
        (br#"{"key":"k","value":"v","extra":1}"#.to_vec(), r#"unknown field "extra""#, "an unknown field"),
        (br#"{"key":"k","value":"v","TTL":3}"#.to_vec(), r#"unknown field "TTL""#, "field names are case-sensitive"),
        (br#"{"key":"k","value":"v","key":"j"}"#.to_vec(), r#""key" is given more than once"#, "two keys"),
        (br#"{"key":"k","value":"v","value":"w"}"#.to_vec(), r#""value" is given more than once"#, "two values"),
        (br#"{"key":"k","value":"v","ttl":1,"ttl":null}"#.to_vec(), r#""ttl" is given more than once"#, "two ttls"),
    ]
}

/// Everything else: queries, paths, headers, routes.
#[rustfmt::skip]
fn other_cases() -> Vec<Case> {
    use Method as M;
    let missing_key = "missing query parameter \"key\"";
    let limit = "limit must be a whole number from 1 to 1000";
    let if_match = "If-Match must be";
    let not_allowed = |case: Case| case.answered(StatusCode::METHOD_NOT_ALLOWED, "invalid_request");
    let no_route = |case: Case| case.answered(StatusCode::NOT_FOUND, "not_found");
    let failed = |case: Case| case.answered(StatusCode::PRECONDITION_FAILED, "version_mismatch");
    vec![
        bad("GET /store without key", M::GET, "/store", "", missing_key),
        bad("GET /store with another parameter", M::GET, "/store?kee=k", "", "unknown query parameter \"kee\""),
        bad("GET /store with a key that is not UTF-8", M::GET, "/store?key=%FF", "", "not valid UTF-8"),
        bad("DELETE /store with a key that is not UTF-8", M::DELETE, "/store?key=k%FE", "", "not valid UTF-8"),
        bad("GET /store with key twice", M::GET, "/store?key=k&key=j", "", "more than once"),
        bad("a listing prefix that is not UTF-8", M::GET, "/v1/kv?prefix=%C3", "", "not valid UTF-8"),
        bad("a parameter name that is not UTF-8", M::GET, "/v1/kv?%FF=1", "", "not valid UTF-8"),
        bad("an unknown parameter on POST /store", M::POST, "/store?x=1", r#"{"key":"k","value":"v"}"#, "unknown query parameter \"x\""),
        bad("an unknown parameter on GET /v1/kv/k", M::GET, "/v1/kv/k?x=1", "", "unknown query parameter \"x\""),
        bad("an unknown parameter on DELETE /v1/kv/k", M::DELETE, "/v1/kv/k?x=1", "", "unknown query parameter \"x\""),
        bad("an unknown parameter on /v1/info", M::GET, "/v1/info?x=1", "", "unknown query parameter \"x\""),
        bad("an unknown parameter on /healthz", M::GET, "/healthz?x=1", "", "takes no query parameters"),
        bad("an unknown parameter on /readyz", M::GET, "/readyz?x=1", "", "takes no query parameters"),
        bad("an unknown parameter on /metrics", M::GET, "/metrics?x=1", "", "takes no query parameters"),
        bad("an unknown parameter on /openapi.json", M::GET, "/openapi.json?x=1", "", "takes no query parameters"),
        bad("DELETE /store without key", M::DELETE, "/store", "", missing_key),
        bad("GET /store with an empty key", M::GET, "/store?key=", "", "key must not be empty"),
        bad("DELETE /store with an empty key", M::DELETE, "/store?key=", "", "key must not be empty"),
        bad("ttl=0", M::PUT, "/v1/kv/k?ttl=0", "x", "positive"),
        bad("ttl negative", M::PUT, "/v1/kv/k?ttl=-5s", "x", "positive"),
        bad("ttl not a number", M::PUT, "/v1/kv/k?ttl=abc", "x", "unknown unit"),
        bad("ttl in years", M::PUT, "/v1/kv/k?ttl=10y", "x", "unknown unit \"y\""),
        bad("ttl in words", M::PUT, "/v1/kv/k?ttl=5%20minutes", "x", "unknown unit"),
        bad("ttl upper-case unit", M::PUT, "/v1/kv/k?ttl=5S", "x", "unknown unit"),
        bad("ttl empty", M::PUT, "/v1/kv/k?ttl=", "x", "not a number"),
        bad("ttl under a millisecond", M::PUT, "/v1/kv/k?ttl=0.1ms", "x", "minimum of 1 ms"),
        bad("ttl over ten years", M::PUT, "/v1/kv/k?ttl=4000d", "x", "maximum of 10 years"),
        bad("ttl and persist", M::PUT, "/v1/kv/k?ttl=1s&persist=true", "x", "either ttl= or persist=true"),
        bad("persist not a boolean", M::PUT, "/v1/kv/k?persist=yes", "x", "persist must be true or false"),
        bad("an unknown PUT parameter", M::PUT, "/v1/kv/k?tll=5", "x", "unknown query parameter \"tll\": this route takes only \"ttl\", \"persist\""),
        bad("an empty key on PUT", M::PUT, "/v1/kv/", "x", "key must not be empty"),
        bad("an empty key on GET", M::GET, "/v1/kv/", "", "key must not be empty"),
        bad("an empty key on DELETE", M::DELETE, "/v1/kv/", "", "key must not be empty"),
        bad("a key that is not UTF-8 on GET", M::GET, "/v1/kv/%FF", "", "not valid UTF-8"),
        bad("a key that is not UTF-8 on PUT", M::PUT, "/v1/kv/%FFk", "x", "not valid UTF-8"),
        bad("If-Match unquoted", M::PUT, "/v1/kv/k", "x", if_match).header("If-Match", "42"),
        failed(bad("If-Match not a version", M::PUT, "/v1/kv/k", "x", "names no version").header("If-Match", "\"abc\"")),
        bad("If-Match a list", M::PUT, "/v1/kv/k", "x", "not a list").header("If-Match", "\"1\", \"2\""),
        bad("If-Match twice is a list", M::PUT, "/v1/kv/k", "x", "not a list").header("If-Match", "\"1\"").header("If-Match", "\"2\""),
        bad("If-Match a list on DELETE", M::DELETE, "/v1/kv/k", "", "not a list").header("If-Match", "\"1\"").header("If-Match", "\"2\""),
        failed(bad("If-Match negative", M::PUT, "/v1/kv/k", "x", "names no version").header("If-Match", "\"-1\"")),
        bad("If-Match on DELETE unquoted", M::DELETE, "/v1/kv/k", "", if_match).header("If-Match", "1"),
        bad("If-Match on GET unquoted", M::GET, "/v1/kv/k", "", if_match).header("If-Match", "1"),
        bad("If-None-Match on GET unclosed", M::GET, "/v1/kv/k", "", "If-None-Match must be").header("If-None-Match", "\"1"),
        bad("If-Match * with a tag", M::PUT, "/v1/kv/k", "x", "cannot be combined").header("If-Match", "*, \"1\""),
        bad("If-Match * twice", M::PUT, "/v1/kv/k", "x", "* only once").header("If-Match", "*").header("If-Match", "*"),
        bad("If-None-Match * twice", M::PUT, "/v1/kv/k", "x", "* only once").header("If-None-Match", "*, *"),
        bad("If-Match * twice on DELETE", M::DELETE, "/v1/kv/k", "", "* only once").header("If-Match", "*, *"),
        bad("If-None-Match on DELETE", M::DELETE, "/v1/kv/k", "", "DELETE does not take If-None-Match").header("If-None-Match", "*"),
        bad("If-None-Match with a version on a write", M::PUT, "/v1/kv/k", "x", "only accepts *").header("If-None-Match", "\"1\""),
        bad("both preconditions", M::PUT, "/v1/kv/k", "x", "either If-Match or If-None-Match").header("If-Match", "*").header("If-None-Match", "*"),
        bad("limit=0", M::GET, "/v1/kv?limit=0", "", limit),
        bad("limit=1001", M::GET, "/v1/kv?limit=1001", "", limit),
        bad("limit=abc", M::GET, "/v1/kv?limit=abc", "", limit),
        bad("limit=-1", M::GET, "/v1/kv?limit=-1", "", limit),
        bad("limit=1.5", M::GET, "/v1/kv?limit=1.5", "", limit),
        bad("limit empty", M::GET, "/v1/kv?limit=", "", limit),
        bad("limit twice", M::GET, "/v1/kv?limit=5&limit=6", "", "query parameter \"limit\" is given more than once"),
        bad("values not a boolean", M::GET, "/v1/kv?values=yes", "", "values must be true or false"),
        bad("an unknown list parameter", M::GET, "/v1/kv?prefx=a", "", "prefx"),
        no_route(bad("no such route", M::GET, "/nope", "", "no route for GET /nope")),
        no_route(bad("no such API version", M::GET, "/v2/kv/k", "", "no route")),
        not_allowed(bad("PATCH /store", M::PATCH, "/store", "{}", "method PATCH is not allowed on /store")),
        not_allowed(bad("POST /v1/kv/k", M::POST, "/v1/kv/k", "x", "not allowed")),
        not_allowed(bad("POST /v1/kv", M::POST, "/v1/kv", "x", "not allowed")),
        not_allowed(bad("DELETE /v1/info", M::DELETE, "/v1/info", "", "not allowed")),
        not_allowed(bad("POST /healthz", M::POST, "/healthz", "", "not allowed")),
    ]
}

#[actix_web::test]
async fn every_malformed_request_gets_a_4xx_that_says_what_was_wrong_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let original = app
        .seed_create(json!({"key": "k", "value": "original", "ttl": 60}))
        .await;
    let original = json_of(original, StatusCode::CREATED, "the key bad requests aim at").await;
    let revision = app.info().await["revision"].clone();

    let mut cases = Vec::new();
    for method in [Method::POST, Method::PUT] {
        for (body, says, why) in seed_bodies() {
            cases.push(bad(
                &format!("{method} /store: {why}"),
                method.clone(),
                "/store",
                body,
                says,
            ));
        }
    }
    cases.extend(other_cases());

    for case in cases {
        let mut request = app.request(case.method.clone(), case.path).body(case.body);
        for (name, value) in case.headers {
            request = request.header(name, value);
        }
        let response = app.send(request).await;
        let why = format!("{} ({} {})", case.why, case.method, case.path);
        assert_error(response, case.status, case.code, case.says, &why).await;
    }

    let after = json_of(
        app.seed_get("k").await,
        StatusCode::OK,
        "after the bad requests",
    )
    .await;
    assert_eq!(after, original, "value, version and deadline untouched");
    assert_eq!(
        app.info().await["revision"],
        revision,
        "no bad request wrote anything"
    );
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    // Not the readiness probe: it answers 503 until the app has attached
    // its storage, and on etcd TestApp::spawn polls it until then.
    let unexpected: Vec<&str> = metrics
        .lines()
        .filter(|line| line.contains("status=\"5") || line.contains("status=\"other\""))
        .filter(|line| !line.contains("route=\"/readyz\""))
        .collect();
    assert!(
        unexpected.is_empty(),
        "no request got a 5xx or an unexpected status: {unexpected:?}"
    );
    assert_eq!(
        app.get("/healthz").await.status(),
        StatusCode::OK,
        "still serving"
    );
}

#[test]
fn requests_actix_cannot_parse_get_a_400_and_no_error_line_in_the_log() {
    let server = ServerProcess::start("info", &[]);
    for n in 0..20 {
        let response = RawRequest::start(
            server.addr,
            &format!("GET /healthz HTTP/1.1\r\nBad Header {n}"),
        )
        .response()
        .expect("an answer");
        assert_eq!(response.status, 400, "{response:?}");
    }
    server.signal("TERM");
    let (status, log) = server.wait_for_exit();
    assert!(status.success());
    let errors: Vec<&String> = log.iter().filter(|line| line.contains("ERROR")).collect();
    assert!(
        errors.is_empty(),
        "a client's malformed requests are not server errors: {errors:?}"
    );
}

/// Sends `bytes` as they are and returns everything the server answers
/// until it closes the connection.
fn exchange(addr: std::net::SocketAddr, bytes: Vec<u8>) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connecting");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .expect("a read timeout");
    stream.write_all(&bytes).expect("sending");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[actix_web::test]
async fn what_actix_answers_before_routing_is_json_too() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n".to_vec(),
            "HTTP/1.1 400 ",
            "could not be parsed",
            "a header without a colon",
        ),
        (
            format!(
                "GET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n",
                "a".repeat(132_000)
            )
            .into_bytes(),
            "HTTP/1.1 431 ",
            "headers are too large",
            "headers over actix's 128 KiB",
        ),
        (
            b"GET /healthz HTTP/1.1\r\nHo".to_vec(),
            "HTTP/1.1 408 ",
            "did not arrive in time",
            "headers that stop halfway (actix waits 5 s)",
        ),
    ];
    let addr = app.addr;
    for (bytes, status, says, why) in cases {
        let answer = actix_web::rt::task::spawn_blocking(move || exchange(addr, bytes))
            .await
            .expect("the client thread");
        assert!(answer.starts_with(status), "{why}: {answer:.300}");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{why}: {head}"
        );
        let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(body["code"], "invalid_request", "{why}: {body}");
        assert!(
            body["error"].as_str().unwrap_or_default().contains(says),
            "{why}: {body}"
        );
    }
}

#[actix_web::test]
async fn a_value_that_looks_like_an_early_error_comes_back_unchanged() {
    // Always on the embedded store: this checks how the connection wrapper
    // follows pipelined responses. On etcd the HEAD's answer is produced
    // after actix-http has parsed the next pipelined request, and actix-http
    // then writes that answer as if it were for the later GET (with its body
    // and its `Connection: close`): an actix-http bug, not the wrapper's,
    // reported with the etcd backend (README, Running on a cluster).
    let app = TestApp::spawn_embedded().await;
    let value = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
    app.v1_put("look-alike", "", value).await;
    // HEAD (a head with a length but no body), then GETs, on one connection.
    let request = "HEAD /v1/kv/look-alike HTTP/1.1\r\nHost: x\r\n\r\n\
                   GET /v1/kv/look-alike HTTP/1.1\r\nHost: x\r\n\r\n\
                   GET /v1/kv/look-alike HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let addr = app.addr;
    let answer = actix_web::rt::task::spawn_blocking(move || exchange(addr, request.into()))
        .await
        .expect("the client thread");
    assert_eq!(
        answer.matches(value).count(),
        2,
        "both values intact: {answer}"
    );
    assert!(!answer.contains("could not be parsed"), "{answer}");
}
