//! Clients that send their body slowly: cut off after the configured body
//! timeout, while everyone else is served. These tests take real time (about
//! a second): they test a real timeout, not a TTL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::StatusCode;

use crate::raw_http::{RawRequest, RawResponse};
use crate::test_app::TestApp;

const BODY_TIMEOUT: Duration = Duration::from_secs(1);
/// One byte per tick: a 100-byte body would take 10 s.
const TICK: Duration = Duration::from_millis(100);
const DECLARED: usize = 100;

/// What happened to a trickling client.
struct Trickled {
    response: Option<RawResponse>,
    elapsed: Duration,
    bytes_sent: usize,
}

/// Sends the head, waits for the server to take the request, then sends one
/// body byte per tick until the server answers, closes the connection, or
/// the body is complete. The clock starts when the server took the request.
fn trickle(app_addr: std::net::SocketAddr, head: &str, body: &'static [u8]) -> Trickled {
    let mut request = RawRequest::start(app_addr, &format!("{head}\r\nExpect: 100-continue"));
    request.wait_for_continue();
    let mut writer = request.try_clone();
    let answered = Arc::new(AtomicBool::new(false));
    let stop = answered.clone();
    let started = Instant::now();
    let sender = std::thread::spawn(move || {
        let mut sent = 0;
        for byte in body {
            if stop.load(Ordering::Acquire) || writer.send(std::slice::from_ref(byte)).is_err() {
                break;
            }
            sent += 1;
            std::thread::sleep(TICK);
        }
        sent
    });
    let response = request.response();
    let elapsed = started.elapsed();
    answered.store(true, Ordering::Release);
    let bytes_sent = sender.join().expect("the sender thread");
    Trickled {
        response,
        elapsed,
        bytes_sent,
    }
}

#[actix_web::test]
async fn a_client_that_trickles_its_body_is_cut_off_after_the_body_timeout() {
    let app = TestApp::spawn_with(|config| config.body_timeout = BODY_TIMEOUT).await;
    let cases = [
        (
            format!("PUT /v1/kv/slow HTTP/1.1\r\nContent-Length: {DECLARED}"),
            "a /v1 PUT",
        ),
        (
            format!(
                "POST /store HTTP/1.1\r\nContent-Length: {DECLARED}\r\nContent-Type: application/json"
            ),
            "a seed POST",
        ),
    ];
    let body: &'static [u8] = &[b' '; DECLARED];
    let clients = join_all(cases.iter().map(|(head, _)| {
        let (addr, head) = (app.addr, head.clone());
        actix_web::rt::task::spawn_blocking(move || trickle(addr, &head, body))
    }));
    let (outcomes, health) = futures_util::future::join(clients, async {
        // Meanwhile, other clients are served as usual.
        actix_web::rt::time::sleep(BODY_TIMEOUT / 2).await;
        app.get("/healthz").await.status()
    })
    .await;
    assert_eq!(
        health,
        StatusCode::OK,
        "a slow client does not hold up the others"
    );

    for (outcome, (_, why)) in outcomes.into_iter().zip(cases) {
        let outcome = outcome.expect("the client thread");
        assert!(
            outcome.elapsed >= BODY_TIMEOUT - Duration::from_millis(50),
            "{why}: cut off after {:?}, before the timeout",
            outcome.elapsed
        );
        assert!(
            outcome.elapsed < BODY_TIMEOUT * 4 && outcome.bytes_sent < DECLARED / 2,
            "{why}: cut off only after {:?} and {} bytes",
            outcome.elapsed,
            outcome.bytes_sent
        );
        if let Some(response) = outcome.response {
            assert_eq!(response.status, 408, "{why}: {response:?}");
            assert!(
                response
                    .head
                    .to_ascii_lowercase()
                    .contains("connection: close"),
                "{why}: the server hangs up on a slow client: {response:?}"
            );
            let body: serde_json::Value =
                serde_json::from_slice(&response.body).expect("a JSON error");
            assert!(
                body["error"]
                    .as_str()
                    .is_some_and(|error| error.contains("did not arrive within 1 s")),
                "{why}: {body}"
            );
        }
    }
    assert_eq!(
        app.v1_get("slow").await.status(),
        StatusCode::NOT_FOUND,
        "nothing was stored"
    );
}

#[actix_web::test]
async fn a_body_that_arrives_slowly_but_within_the_timeout_is_accepted() {
    let app = TestApp::spawn_with(|config| config.body_timeout = BODY_TIMEOUT * 3).await;
    let addr = app.addr;
    let outcome = actix_web::rt::task::spawn_blocking(move || {
        trickle(
            addr,
            "PUT /v1/kv/patient HTTP/1.1\r\nContent-Length: 5",
            b"12345",
        )
    })
    .await
    .expect("the client thread");
    let response = outcome.response.expect("a response");
    assert_eq!(response.status, 201, "{response:?}");
    let value = app.v1_get("patient").await.text().await.expect("a value");
    assert_eq!(value, "12345");
}

#[actix_web::test]
async fn a_chunked_body_that_stalls_gets_its_answer_and_the_connection_is_closed() {
    let app = TestApp::spawn_with(|config| config.body_timeout = BODY_TIMEOUT).await;
    let cases = [
        ("PUT /v1/kv/stalled HTTP/1.1", 408, "a /v1 PUT cut off"),
        (
            "POST /store HTTP/1.1\r\nContent-Type: application/json",
            408,
            "a seed POST cut off",
        ),
        (
            "PUT /v1/kv/stalled?ttl=never HTTP/1.1",
            400,
            "a PUT refused before its body is read",
        ),
    ];
    for (head, status, why) in cases {
        let addr = app.addr;
        let head = format!("{head}\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue");
        let (response, closed) = actix_web::rt::task::spawn_blocking(move || {
            let mut request = RawRequest::start(addr, &head);
            request.wait_for_continue();
            // One chunk begun, never finished, and nothing more.
            request
                .send(b"a\r\n{\"ke")
                .expect("sending part of a chunk");
            let reader = request.try_clone();
            let response = request.response();
            (response, reader.closed_by_server())
        })
        .await
        .expect("the client thread");
        let response = response.unwrap_or_else(|| panic!("{why}: no response"));
        assert_eq!(response.status, status, "{why}: {response:?}");
        let body: serde_json::Value = serde_json::from_slice(&response.body).expect("a JSON error");
        assert_eq!(body["code"], "invalid_request", "{why}: {body}");
        assert!(
            closed,
            "{why}: the server closes the connection instead of waiting for the rest"
        );
    }
    assert_eq!(
        app.v1_get("stalled").await.status(),
        StatusCode::NOT_FOUND,
        "nothing was stored"
    );
}
