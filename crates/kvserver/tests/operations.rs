//! README, Operations: `/healthz`, `/readyz`, `/metrics`, `/v1/info`.

use std::time::{Duration, Instant};

use kvcore::Tuning;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::test_app::{TestApp, header, json_of, on_etcd};

#[actix_web::test]
async fn healthz_and_readyz_answer_200_once_serving() {
    let app = TestApp::spawn().await;
    let health = json_of(app.get("/healthz").await, StatusCode::OK, "/healthz").await;
    assert_eq!(health, json!({"status": "ok"}));
    let ready = json_of(app.get("/readyz").await, StatusCode::OK, "/readyz").await;
    assert_eq!(ready, json!({"status": "ready"}));
}

#[actix_web::test]
async fn metrics_count_requests_by_route_and_status_with_latency_and_keys() {
    let app = TestApp::spawn().await;
    app.seed_create(json!({"key": "a", "value": "1"})).await;
    app.seed_create(json!({"key": "a", "value": "1"})).await;
    app.seed_get("missing").await;
    app.v1_put("b", "", "2").await;
    app.v1_put("c/d", "", "3").await;
    app.get("/no/such/path/12345").await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = header(&response, "content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.expect("the text format");
    let lines: Vec<&str> = text.lines().collect();

    let expected = [
        (
            r#"kv_http_requests_total{method="POST",route="/store",status="201"} 1"#,
            "a create",
        ),
        (
            r#"kv_http_requests_total{method="POST",route="/store",status="409"} 1"#,
            "a conflict",
        ),
        (
            r#"kv_http_requests_total{method="GET",route="/store",status="404"} 1"#,
            "a miss",
        ),
        (
            r#"kv_http_requests_total{method="PUT",route="/v1/kv/{key:.*}",status="201"} 2"#,
            "two keys on one route",
        ),
        (
            "# TYPE kv_http_request_duration_seconds histogram",
            "a latency histogram",
        ),
        (
            r#"kv_http_request_duration_seconds_count{route="/store"} 3"#,
            "latency by route",
        ),
        ("kv_keys 3", "live keys"),
        ("# TYPE kv_expired_keys_total counter", "expirations"),
    ];
    for (line, why) in expected {
        assert!(lines.contains(&line), "{why}: no line {line:?} in:\n{text}");
    }
    assert!(
        lines.iter().any(|line| line
            .starts_with(r#"kv_http_request_duration_seconds_bucket{route="/store",le="#)),
        "histogram buckets:\n{text}"
    );
    assert!(
        !text.contains("12345") && !text.contains("c/d"),
        "labels are route patterns, never raw paths or keys:\n{text}"
    );
}

#[actix_web::test]
async fn metrics_count_expired_keys_once_their_memory_is_reclaimed() {
    let app = TestApp::spawn().await;
    for key in ["a", "b"] {
        app.v1_put(key, "?ttl=1s", "v").await;
    }
    app.advance(1001);
    // Expiry itself is immediate (see the ttl module); the reclaim pass runs
    // in the background on real time, so poll for its count, boundedly.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = app.get("/metrics").await.text().await.expect("metrics");
        if text.lines().any(|line| line == "kv_expired_keys_total 2") {
            assert!(text.lines().any(|line| line == "kv_keys 0"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "no expirations counted:\n{text}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn info_shows_version_uptime_keys_limits_tuning_and_durability() {
    let app = TestApp::spawn_with(|config| {
        config.tuning = Tuning::ReadHeavy;
        config.max_key_bytes = 100;
    })
    .await;
    app.v1_put("a", "", "1").await;
    app.v1_put("b", "", "2").await;
    let info = app.info().await;
    assert_eq!(info["name"], "kvstore");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert!(info["uptime_seconds"].is_u64(), "{info}");
    assert_eq!(info["keys"], 2);
    if on_etcd() {
        assert_eq!(info["backend"], "etcd");
        assert_eq!(info["tuning"], "none", "etcd's layout is its own");
        assert_eq!(info["durability"], "raft", "etcd replicates every write");
    } else {
        assert_eq!(info["backend"], "embedded");
        assert_eq!(info["tuning"], "read-heavy", "the configured tuning");
        assert_eq!(info["durability"], "memory", "no --data-dir");
    }
    assert_eq!(
        info["limits"],
        json!({"max_key_bytes": 100, "max_value_bytes": 1024 * 1024, "max_body_bytes": 2 * 1024 * 1024})
    );
}

#[actix_web::test]
async fn other_methods_get_a_json_405_naming_the_allowed_ones() {
    let app = TestApp::spawn().await;
    let cases = [
        (Method::PUT, "/healthz", "GET, HEAD"),
        (Method::PUT, "/readyz", "GET, HEAD"),
        (Method::PUT, "/metrics", "GET, HEAD"),
        (Method::PUT, "/v1/info", "GET, HEAD"),
        (Method::POST, "/v1/kv", "GET, HEAD"),
        (Method::POST, "/v1/kv/k", "PUT, GET, HEAD, DELETE"),
        (Method::PATCH, "/store", "POST, GET, HEAD, PUT, DELETE"),
    ];
    for (method, path, allow) in cases {
        let response = app.send(app.request(method.clone(), path)).await;
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(
            response
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        let body: serde_json::Value = response.json().await.expect("a JSON error");
        assert_eq!(body["code"], "invalid_request", "{method} {path}");
    }
}

#[actix_web::test]
async fn head_answers_every_get_route_like_get_without_the_body() {
    let app = TestApp::spawn().await;
    app.v1_put("k", "", "value").await;
    let paths = [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/info",
        "/v1/kv",
        "/v1/kv/k",
        "/store?key=k",
        "/openapi.json",
    ];
    for path in paths {
        let get = app.get(path).await;
        let (status, length) = (get.status(), header(&get, "content-length"));
        let head = app.send(app.request(Method::HEAD, path)).await;
        assert_eq!(head.status(), status, "HEAD {path} answers as GET does");
        assert_eq!(status, StatusCode::OK, "GET {path}");
        if path != "/metrics" && path != "/v1/info" {
            // These two change between requests (counters, uptime).
            assert_eq!(
                header(&head, "content-length"),
                length,
                "HEAD {path} announces GET's length"
            );
        }
        let body = head.bytes().await.expect("reading HEAD's body");
        assert!(body.is_empty(), "HEAD {path} has no body");
    }
}

#[actix_web::test]
async fn made_up_methods_are_counted_as_other_and_never_grow_the_metrics() {
    let app = TestApp::spawn().await;
    for n in 0..20 {
        let method = Method::from_bytes(format!("JUNK{n}").as_bytes()).expect("a token");
        for path in ["/healthz", "/no/such/route"] {
            let status = app.send(app.request(method.clone(), path)).await.status();
            assert!(status.is_client_error(), "{method} {path}: {status}");
        }
    }
    let text = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        !text.contains("JUNK"),
        "a method a client made up is not a label:\n{text}"
    );
    let other: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("kv_http_requests_total{method=\"other\""))
        .collect();
    let counted: u64 = other
        .iter()
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(
        counted, 40,
        "every junk request counted as other: {other:?}"
    );
}
