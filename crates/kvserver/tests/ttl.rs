//! TTLs over HTTP (README, The seed API and The REST API), with the store's clock moved by
//! hand: no test here sleeps.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::test_app::{TestApp, assert_error, header, json_of, v1_path};

/// The `ttl_ms` of `GET /store?key=K`, `None` when the key has no deadline.
async fn seed_ttl_ms(app: &TestApp, key: &str) -> Option<u64> {
    let body = json_of(app.seed_get(key).await, StatusCode::OK, key).await;
    body.get("ttl_ms")
        .map(|ttl| ttl.as_u64().expect("ttl_ms is a number"))
}

/// The `Kv-Ttl-Ms` header of `GET /v1/kv/{key}`.
async fn v1_ttl_ms(app: &TestApp, key: &str) -> Option<u64> {
    let response = app.v1_get(key).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {key}");
    header(&response, "kv-ttl-ms").map(|ms| ms.parse().expect("Kv-Ttl-Ms is a number"))
}

#[actix_web::test]
async fn put_on_store_without_ttl_keeps_the_deadline_a_number_sets_it_and_null_removes_it() {
    let app = TestApp::spawn().await;
    let created = app
        .seed_create(json!({"key": "k", "value": "v0", "ttl": 10}))
        .await;
    assert_eq!(
        json_of(created, StatusCode::CREATED, "create").await["ttl_ms"],
        10_000
    );
    app.advance(1000);

    let kept = app.seed_update(json!({"key": "k", "value": "v1"})).await;
    let kept = json_of(kept, StatusCode::OK, "ttl omitted").await;
    assert_eq!(kept["ttl_ms"], 9000, "omitted keeps the deadline: {kept}");
    assert_eq!(seed_ttl_ms(&app, "k").await, Some(9000));

    let set = app
        .seed_update(json!({"key": "k", "value": "v2", "ttl": 60}))
        .await;
    let set = json_of(set, StatusCode::OK, "ttl 60").await;
    assert_eq!(set["ttl_ms"], 60_000, "a number sets a new deadline: {set}");
    assert_eq!(seed_ttl_ms(&app, "k").await, Some(60_000));

    let removed = app
        .seed_update(json!({"key": "k", "value": "v3", "ttl": null}))
        .await;
    let removed = json_of(removed, StatusCode::OK, "ttl null").await;
    assert!(
        removed.get("ttl_ms").is_none(),
        "null removes the deadline: {removed}"
    );
    app.advance(365 * 24 * 3600 * 1000);
    assert_eq!(seed_ttl_ms(&app, "k").await, None, "alive a year later");
}

#[actix_web::test]
async fn a_kept_deadline_still_expires_at_the_original_time() {
    let app = TestApp::spawn().await;
    let created = app
        .seed_create(json!({"key": "k", "value": "v0", "ttl": 2}))
        .await;
    json_of(created, StatusCode::CREATED, "create").await;
    app.advance(1500);
    let updated = app.seed_update(json!({"key": "k", "value": "v1"})).await;
    json_of(updated, StatusCode::OK, "update keeping the deadline").await;
    app.advance(499);
    assert_eq!(
        seed_ttl_ms(&app, "k").await,
        Some(1),
        "alive until the first deadline"
    );
    app.advance(2);
    assert_eq!(app.seed_get("k").await.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn decimal_seed_ttls_are_seconds_at_millisecond_resolution() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!(0.5), 500, "half a second"),
        (json!(0.001), 1, "one millisecond, the minimum"),
        (json!(1.25), 1250, "a decimal above one"),
        (json!(86400), 86_400_000, "a day as an integer"),
    ];
    for (i, (ttl, ms, why)) in cases.into_iter().enumerate() {
        let key = format!("k{i}");
        let created = app
            .seed_create(json!({"key": key, "value": "v", "ttl": ttl}))
            .await;
        let created = json_of(created, StatusCode::CREATED, why).await;
        assert_eq!(created["ttl_ms"], ms, "{why}: {created}");
    }
}

#[actix_web::test]
async fn post_with_a_null_ttl_creates_a_key_without_a_deadline() {
    let app = TestApp::spawn().await;
    let created = app
        .seed_create(json!({"key": "k", "value": "v", "ttl": null}))
        .await;
    let created = json_of(created, StatusCode::CREATED, "create").await;
    assert!(created.get("ttl_ms").is_none(), "{created}");
}

#[actix_web::test]
async fn a_v1_ttl_round_trip_follows_the_controlled_clock() {
    let app = TestApp::spawn().await;
    let put = app.v1_put("session/1", "?ttl=1500ms", "alice").await;
    let body = json_of(put, StatusCode::CREATED, "PUT with ttl").await;
    assert_eq!(body["ttl_ms"], 1500, "{body}");
    assert_eq!(v1_ttl_ms(&app, "session/1").await, Some(1500));

    app.advance(1499);
    assert_eq!(v1_ttl_ms(&app, "session/1").await, Some(1));
    let listed = json_of(
        app.get("/v1/kv?prefix=session/").await,
        StatusCode::OK,
        "list",
    )
    .await;
    assert_eq!(
        listed["items"][0]["ttl_ms"], 1,
        "listing shows the remaining time: {listed}"
    );

    app.advance(2);
    assert_eq!(
        app.v1_get("session/1").await.status(),
        StatusCode::NOT_FOUND
    );
    let head = app
        .send(app.request(Method::HEAD, &v1_path("session/1", "")))
        .await;
    assert_eq!(head.status(), StatusCode::NOT_FOUND, "HEAD agrees");
}

#[actix_web::test]
async fn v1_put_without_ttl_keeps_the_deadline_ttl_sets_it_and_persist_removes_it() {
    let app = TestApp::spawn().await;
    let put = app.v1_put("k", "?ttl=10s", "v0").await;
    assert_eq!(put.status(), StatusCode::CREATED);
    app.advance(4000);

    let kept = app.v1_put("k", "", "v1").await;
    let kept = json_of(kept, StatusCode::OK, "no ttl").await;
    assert_eq!(kept["ttl_ms"], 6000, "kept: {kept}");
    assert_eq!(v1_ttl_ms(&app, "k").await, Some(6000));

    let set = app.v1_put("k", "?ttl=2h", "v2").await;
    assert_eq!(
        json_of(set, StatusCode::OK, "ttl=2h").await["ttl_ms"],
        7_200_000
    );

    let persisted = app.v1_put("k", "?persist=true", "v3").await;
    let persisted = json_of(persisted, StatusCode::OK, "persist").await;
    assert!(persisted.get("ttl_ms").is_none(), "persisted: {persisted}");
    assert_eq!(v1_ttl_ms(&app, "k").await, None, "no Kv-Ttl-Ms header");

    let not_persisted = app.v1_put("k", "?persist=false&ttl=1s", "v4").await;
    assert_eq!(
        json_of(not_persisted, StatusCode::OK, "persist=false with a ttl").await["ttl_ms"],
        1000
    );
}

#[actix_web::test]
async fn an_unconditional_put_over_an_expired_key_creates_it_whatever_its_ttl_change() {
    // (query, the new key's ttl_ms): on etcd, Keep is a Txn and a set or
    // removed deadline a plain Put; the expired key is still in etcd for both.
    let cases = [("", None), ("?ttl=5s", Some(5000)), ("?persist=true", None)];
    let app = TestApp::spawn().await;
    for (n, (query, ttl_ms)) in cases.into_iter().enumerate() {
        let key = format!("expired{n}");
        let put = app.v1_put(&key, "?ttl=1s", "old").await;
        assert_eq!(put.status(), StatusCode::CREATED, "first PUT of {key}");
        app.advance(1001);

        let put = app.v1_put(&key, query, "new").await;
        let body = json_of(put, StatusCode::CREATED, query).await;
        assert_eq!(body["created"], true, "PUT{query}: {body}");
        assert_eq!(
            body.get("ttl_ms").and_then(|ttl| ttl.as_u64()),
            ttl_ms,
            "PUT{query}: {body}"
        );
        assert_eq!(v1_ttl_ms(&app, &key).await, ttl_ms, "GET after PUT{query}");
        let live = app.v1_put(&key, query, "newer").await;
        let body = json_of(live, StatusCode::OK, query).await;
        assert_eq!(
            body["created"], false,
            "PUT{query} over the live key: {body}"
        );
    }
}

#[actix_web::test]
async fn ttl_query_values_take_seconds_or_a_unit() {
    let app = TestApp::spawn().await;
    let cases = [
        ("1500ms", 1500, "milliseconds"),
        ("30s", 30_000, "seconds"),
        ("30", 30_000, "a bare number is seconds"),
        ("0.5", 500, "decimal seconds"),
        ("1.5s", 1500, "decimal with a unit"),
        ("5m", 300_000, "minutes"),
        ("2h", 7_200_000, "hours"),
        ("7d", 604_800_000, "days"),
        ("1ms", 1, "the minimum"),
    ];
    for (i, (ttl, ms, why)) in cases.into_iter().enumerate() {
        let key = format!("k{i}");
        let put = app.v1_put(&key, &format!("?ttl={ttl}"), "v").await;
        let body = json_of(put, StatusCode::CREATED, why).await;
        assert_eq!(body["ttl_ms"], ms, "{why}: ttl={ttl} gave {body}");
        assert_eq!(v1_ttl_ms(&app, &key).await, Some(ms), "{why}: header");
    }
}

#[actix_web::test]
async fn a_key_lives_through_its_deadline_millisecond_and_is_gone_from_the_next() {
    let app = TestApp::spawn().await;
    let put = app.v1_put("k", "?ttl=1500ms", "v").await;
    assert_eq!(put.status(), StatusCode::CREATED);
    let created = app
        .seed_create(json!({"key": "seed", "value": "v", "ttl": 1.5}))
        .await;
    json_of(created, StatusCode::CREATED, "seed key").await;

    app.advance(1500);
    assert_eq!(v1_ttl_ms(&app, "k").await, Some(0), "alive at the deadline");
    assert_eq!(seed_ttl_ms(&app, "seed").await, Some(0), "seed API agrees");
    assert_eq!(app.info().await["keys"], 2, "counted at the deadline");
    let listed = json_of(app.get("/v1/kv").await, StatusCode::OK, "list").await;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(2),
        "listed at the deadline: {listed}"
    );
    let create = app
        .send(
            app.request(Method::PUT, &v1_path("k", ""))
                .header("If-None-Match", "*")
                .body("new"),
        )
        .await;
    assert_eq!(
        create.status(),
        StatusCode::PRECONDITION_FAILED,
        "blocks a create at the deadline"
    );

    app.advance(1);
    assert_eq!(app.v1_get("k").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.seed_get("seed").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.info().await["keys"], 0, "gone a millisecond later");
}

#[actix_web::test]
async fn an_expired_key_is_not_read_listed_counted_or_blocking_a_create() {
    let app = TestApp::spawn().await;
    let created = app
        .seed_create(json!({"key": "gone", "value": "v", "ttl": 1}))
        .await;
    json_of(created, StatusCode::CREATED, "seed key").await;
    let put = app.v1_put("gone/v1", "?ttl=1s", "v").await;
    assert_eq!(put.status(), StatusCode::CREATED);
    let put = app.v1_put("stays", "", "v").await;
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(app.info().await["keys"], 3);

    app.advance(1001);
    assert_eq!(
        app.info().await["keys"],
        1,
        "/v1/info does not count expired keys"
    );
    let metrics = app
        .get("/metrics")
        .await
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics.lines().any(|line| line == "kv_keys 1"),
        "/metrics does not count expired keys:\n{metrics}"
    );
    let listed = json_of(app.get("/v1/kv").await, StatusCode::OK, "list").await;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    assert_eq!(listed["items"][0]["key"], "stays");

    let recreated = app
        .seed_create(json!({"key": "gone", "value": "new"}))
        .await;
    json_of(recreated, StatusCode::CREATED, "POST over an expired key").await;
    let recreated = app
        .send(
            app.request(Method::PUT, &v1_path("gone/v1", ""))
                .header("If-None-Match", "*")
                .body("new"),
        )
        .await;
    assert_eq!(
        recreated.status(),
        StatusCode::CREATED,
        "If-None-Match: * over an expired key creates"
    );
    let updated = app
        .send(
            app.request(Method::PUT, &v1_path("stays", ""))
                .header("If-Match", "*")
                .body("new"),
        )
        .await;
    assert_eq!(
        updated.status(),
        StatusCode::OK,
        "a live key is still updatable"
    );
}

#[actix_web::test]
async fn ttls_are_exact_to_the_millisecond_up_to_ten_years_on_both_apis() {
    let app = TestApp::spawn().await;
    // Ten 365-day years and one millisecond: within the 10-year maximum
    // (365.25-day years), and where a float loses the last millisecond.
    let exact = 315_360_000_001_u64;
    let v1 = [
        ("315360000001ms", "milliseconds"),
        ("315360000.001", "decimal seconds"),
        ("315360000.001s", "decimal seconds with a unit"),
    ];
    for (i, (ttl, why)) in v1.into_iter().enumerate() {
        let key = format!("v1-{i}");
        let put = app.v1_put(&key, &format!("?ttl={ttl}"), "v").await;
        let put = json_of(put, StatusCode::CREATED, why).await;
        assert_eq!(put["ttl_ms"], exact, "{why}: ttl={ttl}");
        assert_eq!(v1_ttl_ms(&app, &key).await, Some(exact), "{why}: stored");
    }
    let seed = json_of(
        app.send(
            app.request(Method::POST, "/store")
                .body(r#"{"key":"seed","value":"v","ttl":315360000.001}"#),
        )
        .await,
        StatusCode::CREATED,
        "a JSON number of seconds",
    )
    .await;
    assert_eq!(
        seed["ttl_ms"], exact,
        "the seed API reads the number's digits"
    );

    let over = [
        ("?ttl=315576000001ms", "ten years and a millisecond"),
        ("?ttl=315576000.001", "in seconds"),
    ];
    for (query, why) in over {
        let response = app.v1_put("over", query, "v").await;
        assert_error(
            response,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "maximum",
            why,
        )
        .await;
    }
    let response = app
        .send(
            app.request(Method::POST, "/store")
                .body(r#"{"key":"over","value":"v","ttl":315576000.001}"#),
        )
        .await;
    assert_error(
        response,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "maximum",
        "seed ttl over ten years",
    )
    .await;
    let at_max = app.v1_put("max", "?ttl=315576000000ms", "v").await;
    assert_eq!(
        json_of(at_max, StatusCode::CREATED, "the maximum").await["ttl_ms"],
        315_576_000_000_u64
    );
}
