//! README, Errors and Configuration: key, value and body limits are configurable, shown by
//! `/v1/info`, and a request over one gets a 413 naming the limit and the size.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::raw_http::{RawRequest, RawResponse};
use crate::server_process::ServerProcess;
use crate::test_app::{TestApp, assert_error, json_of, v1_path};

const KEY_LIMIT: usize = 16;
const VALUE_LIMIT: usize = 32;
const BODY_LIMIT: usize = 128;

async fn small_limits() -> TestApp {
    TestApp::spawn_with(|config| {
        config.max_key_bytes = KEY_LIMIT;
        config.max_value_bytes = VALUE_LIMIT;
        config.max_body_bytes = BODY_LIMIT;
    })
    .await
}

/// Asserts a 413 whose JSON names what was too large, its size and the limit.
async fn assert_too_large(
    response: reqwest::Response,
    what: &str,
    size: usize,
    limit: usize,
    why: &str,
) {
    let says = format!("{what} is {size} bytes, over the limit of {limit} bytes");
    let body = assert_error(
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &says,
        why,
    )
    .await;
    assert_eq!(body["limit"], limit, "{why}: {body}");
    assert_eq!(body["size"], size, "{why}: {body}");
}

#[actix_web::test]
async fn a_request_over_a_limit_gets_413_naming_the_limit_and_the_size() {
    let app = small_limits().await;
    let long_key = "k".repeat(KEY_LIMIT + 1);
    let long_value = "v".repeat(VALUE_LIMIT + 1);
    let wide_value = "é".repeat(VALUE_LIMIT / 2 + 1);
    let long_body = format!(
        r#"{{"key":"k","value":"v","pad":"{}"}}"#,
        " ".repeat(BODY_LIMIT)
    );
    let body_size = long_body.len();
    let revision = app.info().await["revision"].clone();

    let cases = [
        (
            app.request(Method::POST, "/store")
                .json(&json!({"key": long_key, "value": "v"})),
            ("key", KEY_LIMIT + 1, KEY_LIMIT),
            "POST /store with a long key",
        ),
        (
            app.request(Method::PUT, "/store")
                .json(&json!({"key": long_key, "value": "v"})),
            ("key", KEY_LIMIT + 1, KEY_LIMIT),
            "PUT /store with a long key",
        ),
        (
            app.request(Method::POST, "/store")
                .json(&json!({"key": "k", "value": long_value})),
            ("value", VALUE_LIMIT + 1, VALUE_LIMIT),
            "POST /store with a long value",
        ),
        (
            app.request(Method::POST, "/store")
                .json(&json!({"key": "k", "value": wide_value})),
            ("value", VALUE_LIMIT + 2, VALUE_LIMIT),
            "sizes are bytes, not characters",
        ),
        (
            app.request(Method::POST, "/store").body(long_body.clone()),
            ("request body", body_size, BODY_LIMIT),
            "POST /store with a long body",
        ),
        (
            app.request(Method::PUT, "/store").body(long_body),
            ("request body", body_size, BODY_LIMIT),
            "PUT /store with a long body",
        ),
        (
            app.request(Method::PUT, &v1_path("k", ""))
                .body(long_value.clone()),
            ("value", VALUE_LIMIT + 1, VALUE_LIMIT),
            "PUT /v1/kv with a long value",
        ),
        (
            app.request(Method::PUT, &v1_path(&long_key, "")).body("v"),
            ("key", KEY_LIMIT + 1, KEY_LIMIT),
            "PUT /v1/kv with a long key",
        ),
    ];
    for (request, (what, size, limit), why) in cases {
        assert_too_large(app.send(request).await, what, size, limit, why).await;
    }
    assert_eq!(
        app.info().await["revision"],
        revision,
        "nothing was written"
    );
    assert_eq!(app.seed_get("k").await.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn reading_or_deleting_an_oversize_key_is_a_4xx_not_a_5xx() {
    let app = small_limits().await;
    let long_key = "k".repeat(KEY_LIMIT + 1);
    let cases = [
        (
            app.request(Method::GET, "/store")
                .query(&[("key", &long_key)]),
            "GET /store",
        ),
        (
            app.request(Method::DELETE, "/store")
                .query(&[("key", &long_key)]),
            "DELETE /store",
        ),
        (
            app.request(Method::GET, &v1_path(&long_key, "")),
            "GET /v1/kv",
        ),
        (
            app.request(Method::DELETE, &v1_path(&long_key, "")),
            "DELETE /v1/kv",
        ),
    ];
    for (request, why) in cases {
        let response = app.send(request).await;
        let status = response.status();
        assert!(
            matches!(
                status,
                StatusCode::NOT_FOUND | StatusCode::PAYLOAD_TOO_LARGE
            ),
            "{why}: {status}"
        );
    }
}

#[actix_web::test]
async fn a_request_exactly_at_each_limit_is_accepted() {
    let app = small_limits().await;
    let key = "k".repeat(KEY_LIMIT);
    let value = "v".repeat(VALUE_LIMIT);
    let created = app.seed_create(json!({"key": key, "value": value})).await;
    json_of(
        created,
        StatusCode::CREATED,
        "seed at the key and value limits",
    )
    .await;

    let put = app.v1_put(&"x".repeat(KEY_LIMIT), "", value.clone()).await;
    assert_eq!(
        put.status(),
        StatusCode::CREATED,
        "v1 at the key and value limits"
    );

    let body = format!(r#"{{"key":"b","value":"{}"}}"#, "w".repeat(VALUE_LIMIT));
    let padded = format!("{body:<BODY_LIMIT$}");
    assert_eq!(padded.len(), BODY_LIMIT);
    let created = app
        .send(app.request(Method::POST, "/store").body(padded))
        .await;
    json_of(created, StatusCode::CREATED, "a body exactly at the limit").await;
}

/// `PUT /v1/kv/chunked` with three chunks of 20 bytes and no length, as the
/// app answers it.
async fn put_three_chunks_of_20_bytes(app: &TestApp) -> RawResponse {
    let addr = app.addr;
    actix_web::rt::task::spawn_blocking(move || {
        let mut request = RawRequest::start(
            addr,
            "PUT /v1/kv/chunked HTTP/1.1\r\nTransfer-Encoding: chunked",
        );
        let chunk = format!("{:x}\r\n{}\r\n", 20, "c".repeat(20));
        // The server may answer and close before the rest is sent.
        for _ in 0..3 {
            if request.send(chunk.as_bytes()).is_err() {
                break;
            }
        }
        let _ = request.send(b"0\r\n\r\n");
        request.response()
    })
    .await
    .expect("the client thread")
    .expect("a response before the connection closed")
}

#[actix_web::test]
async fn a_chunked_body_without_a_length_is_cut_off_at_the_limit() {
    let app = small_limits().await;
    // Three chunks of 20 bytes pass the 32-byte value limit on the second.
    let response = put_three_chunks_of_20_bytes(&app).await;
    assert_eq!(response.status, 413, "{response:?}");
    let body: serde_json::Value = serde_json::from_slice(&response.body).expect("a JSON body");
    assert_eq!(body["code"], "payload_too_large");
    assert_eq!(body["limit"], VALUE_LIMIT);
    assert!(
        body["size"]
            .as_u64()
            .is_some_and(|size| size > VALUE_LIMIT as u64),
        "the size seen so far is over the limit: {body}"
    );
    assert_eq!(app.v1_get("chunked").await.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_v1_body_is_bounded_by_the_body_limit_as_well_as_the_value_limit() {
    // small_limits: value 32 bytes, body 128; here the body limit is smaller.
    let value_limit_smaller = small_limits().await;
    let body_limit_smaller = TestApp::spawn_with(|config| {
        config.max_value_bytes = 1024;
        config.max_body_bytes = 16;
    })
    .await;
    let cases = [
        (
            &value_limit_smaller,
            BODY_LIMIT + 1,
            ("request body", BODY_LIMIT),
            "over both limits: the body limit is named",
        ),
        (
            &value_limit_smaller,
            VALUE_LIMIT + 1,
            ("value", VALUE_LIMIT),
            "within the body limit, over the value limit",
        ),
        (
            &body_limit_smaller,
            17,
            ("request body", 16),
            "over a body limit below the value limit",
        ),
        (
            &body_limit_smaller,
            1025,
            ("request body", 16),
            "over both limits, the body limit the smaller",
        ),
    ];
    for (app, size, (what, limit), why) in cases {
        let response = app.v1_put("k", "", vec![b'x'; size]).await;
        assert_too_large(response, what, size, limit, why).await;
    }
    assert_eq!(
        value_limit_smaller.v1_get("k").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        body_limit_smaller.v1_get("k").await.status(),
        StatusCode::NOT_FOUND
    );

    // Without a declared length, reading stops at the smaller limit.
    let response = put_three_chunks_of_20_bytes(&body_limit_smaller).await;
    assert_eq!(response.status, 413, "{response:?}");
    let body: serde_json::Value = serde_json::from_slice(&response.body).expect("a JSON body");
    assert_eq!(body["limit"], 16, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|error| error.starts_with("request body is ")),
        "{body}"
    );

    let at_limit = body_limit_smaller.v1_put("k", "", vec![b'x'; 16]).await;
    assert_eq!(
        at_limit.status(),
        StatusCode::CREATED,
        "a body exactly at the body limit"
    );
}

#[actix_web::test]
async fn the_default_limits_take_a_1_mib_value_and_refuse_one_byte_more() {
    let app = TestApp::spawn().await;
    let mib = 1024 * 1024;
    let put = app.v1_put("big", "", vec![b'x'; mib]).await;
    assert_eq!(put.status(), StatusCode::CREATED, "1 MiB through /v1");
    let created = app
        .seed_create(json!({"key": "big-seed", "value": "y".repeat(mib)}))
        .await;
    assert_eq!(
        created.status(),
        StatusCode::CREATED,
        "1 MiB through /store"
    );

    let over = app.v1_put("bigger", "", vec![b'x'; mib + 1]).await;
    assert_error(
        over,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &format!("value is {} bytes, over the limit of {mib} bytes", mib + 1),
        "1 MiB + 1 through /v1",
    )
    .await;
    let over = app
        .seed_create(json!({"key": "bigger-seed", "value": "y".repeat(mib + 1)}))
        .await;
    assert_error(
        over,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "value",
        "1 MiB + 1 through /store",
    )
    .await;
}

#[actix_web::test]
async fn info_shows_the_configured_limits() {
    let app = small_limits().await;
    let info = app.info().await;
    assert_eq!(
        info["limits"],
        json!({
            "max_key_bytes": KEY_LIMIT,
            "max_value_bytes": VALUE_LIMIT,
            "max_body_bytes": BODY_LIMIT,
        }),
        "{info}"
    );
}

#[test]
fn a_declared_content_length_reserves_no_memory_before_the_bytes_arrive() {
    // Two GiB declared, ten bytes sent: the server may hold what arrived,
    // not what was promised. Measured on the real binary as its peak
    // virtual size, which an allocation raises even if never touched.
    const DECLARED: u64 = 2 << 30;
    let limit = DECLARED.to_string();
    let server = ServerProcess::start(
        "info,kvserver::request=warn",
        &[
            "--max-body-bytes",
            &limit,
            "--max-value-bytes",
            &limit,
            "--body-timeout",
            "1s",
        ],
    );
    let put = |key: &str, declared: u64, body: &[u8]| {
        let mut request = RawRequest::start(
            server.addr,
            &format!(
                "PUT /v1/kv/{key} HTTP/1.1\r\nContent-Length: {declared}\r\nExpect: 100-continue"
            ),
        );
        request.wait_for_continue();
        request.send(body).expect("sending the body");
        request.response().expect("a response").status
    };
    // Every worker thread serves a request first, so that its allocator
    // arena exists before the baseline is taken.
    for n in 0..4 {
        assert_eq!(put(&format!("warm{n}"), 2, b"ok"), 201, "a warm-up write");
    }
    let before = server.status_kb("VmPeak");
    for n in 0..2 {
        assert_eq!(
            put(&format!("promised{n}"), DECLARED, b"0123456789"),
            408,
            "the rest never comes"
        );
    }
    let grown_mib = server.status_kb("VmPeak").saturating_sub(before) / 1024;
    assert!(
        grown_mib < 512,
        "the peak virtual size grew by {grown_mib} MiB for bodies of 10 bytes"
    );
}

#[actix_web::test]
async fn expect_100_continue_over_a_limit_gets_413_instead_of_continue() {
    let app = small_limits().await;
    let cases = [
        (
            format!(
                "PUT /v1/kv/k HTTP/1.1\r\nContent-Length: {}",
                VALUE_LIMIT + 1
            ),
            "value",
            VALUE_LIMIT,
            "a /v1 value over the value limit",
        ),
        (
            format!(
                "PUT /v1/kv/k HTTP/1.1\r\nContent-Length: {}",
                BODY_LIMIT + 1
            ),
            "request body",
            BODY_LIMIT,
            "a /v1 body over the body limit",
        ),
        (
            format!("POST /store HTTP/1.1\r\nContent-Length: {}", BODY_LIMIT + 1),
            "request body",
            BODY_LIMIT,
            "a seed body over the body limit",
        ),
    ];
    for (head, what, limit, why) in cases {
        let addr = app.addr;
        let head = format!("{head}\r\nExpect: 100-continue");
        let answer =
            actix_web::rt::task::spawn_blocking(move || RawRequest::start(addr, &head).read_all())
                .await
                .expect("the client thread");
        let text = String::from_utf8_lossy(&answer).into_owned();
        assert!(
            text.starts_with("HTTP/1.1 413 "),
            "{why}: 413 first, no 100 Continue: {text}"
        );
        assert!(!text.contains("100 Continue"), "{why}: {text}");
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        let body: serde_json::Value = serde_json::from_str(body).expect("a JSON error");
        assert_eq!(body["code"], "payload_too_large", "{why}: {body}");
        assert_eq!(body["limit"], limit, "{why}: {body}");
        assert!(
            body["error"].as_str().unwrap_or_default().starts_with(what),
            "{why}: {body}"
        );
    }
    let within = RawRequest::start(
        app.addr,
        &format!("PUT /v1/kv/k HTTP/1.1\r\nContent-Length: {VALUE_LIMIT}\r\nExpect: 100-continue"),
    );
    let mut within = within;
    within.wait_for_continue();
    within
        .send(&[b'v'; VALUE_LIMIT])
        .expect("sending the value");
    assert_eq!(
        within.response().expect("a response").status,
        201,
        "within the limits"
    );
}
