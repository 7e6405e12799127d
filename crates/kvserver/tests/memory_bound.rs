//! README, Memory bound: `--max-memory` with `--eviction`. A write the bound
//! refuses is a 507 `insufficient_storage` naming the bytes used and the
//! bound; reads and deletes keep working; `/v1/info` and `/metrics` show
//! used, bound and evictions.

use kvcore::Eviction;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::test_app::{TestApp, assert_error, json_of, v1_path};

const BOUND: u64 = 64 * 1024;

async fn bounded(eviction: Eviction) -> TestApp {
    TestApp::spawn_with(|config| {
        config.max_memory = Some(BOUND);
        config.eviction = eviction;
        config.max_value_bytes = 4096;
        config.max_body_bytes = 8192;
    })
    .await
}

#[actix_web::test]
async fn a_write_over_the_bound_is_a_507_naming_used_and_bound_and_reads_and_deletes_work() {
    let app = bounded(Eviction::Reject).await;
    let value = "v".repeat(500);
    let mut stored = 0;
    let refused = loop {
        let response = app.v1_put(&format!("k{stored}"), "", value.clone()).await;
        if response.status() != StatusCode::CREATED {
            break response;
        }
        stored += 1;
        assert!(stored < 1000, "64 KiB never filled up");
    };
    let body = assert_error(
        refused,
        StatusCode::INSUFFICIENT_STORAGE,
        "insufficient_storage",
        "--max-memory",
        "a write over the bound",
    )
    .await;
    assert_eq!(body["limit"], BOUND, "{body}");
    let used = body["used"].as_u64().expect("used bytes");
    let needed = body["size"].as_u64().expect("bytes needed");
    assert!(used <= BOUND && used + needed > BOUND, "{body}");

    // The seed API answers the same. A new key's shard may still have room
    // where the refused one's table had to grow (shards are picked by a
    // hash seeded per process), so write until one is refused.
    let mut extra = 0;
    let seed = loop {
        let response = app
            .seed_create(json!({"key": format!("seed{extra}"), "value": value.clone()}))
            .await;
        if response.status() != StatusCode::CREATED {
            break response;
        }
        extra += 1;
        assert!(extra < 1000, "the seed API never filled up");
    };
    assert_error(
        seed,
        StatusCode::INSUFFICIENT_STORAGE,
        "insufficient_storage",
        "the store is full",
        "POST /store over the bound",
    )
    .await;

    // Everything stored reads back; a delete works and makes room again.
    for i in 0..stored {
        let response = app.v1_get(&format!("k{i}")).await;
        assert_eq!(response.status(), StatusCode::OK, "k{i}");
        assert_eq!(response.text().await.unwrap(), value);
    }
    let deleted = app
        .send(app.request(Method::DELETE, &v1_path("k0", "")))
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let again = app.v1_put("k0", "", value.clone()).await;
    assert_eq!(again.status(), StatusCode::CREATED);

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("kv_http_requests_total") && l.contains("status=\"507\"")),
        "507s are counted by status:\n{metrics}"
    );
}

#[actix_web::test]
async fn info_and_metrics_show_used_bound_and_evicted_keys() {
    let app = bounded(Eviction::EvictLru).await;
    let value = "v".repeat(500);
    for i in 0..400 {
        let response = app.v1_put(&format!("k{i}"), "", value.clone()).await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "evict-lru makes room"
        );
    }
    let info = app.info().await;
    let memory = &info["memory"];
    assert_eq!(memory["bound_bytes"], BOUND, "{info}");
    assert_eq!(memory["eviction"], "evict-lru");
    let used = memory["used_bytes"].as_u64().unwrap();
    assert!(used > BOUND / 2 && used <= BOUND, "{info}");
    let evicted = memory["evicted_keys"].as_u64().unwrap();
    assert!(evicted > 200, "{info}");
    assert_eq!(info["keys"].as_u64().unwrap(), 400 - evicted);

    let text = app.get("/metrics").await.text().await.unwrap();
    let value_of = |name: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in\n{text}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value_of("kv_memory_bound_bytes"), BOUND);
    assert_eq!(value_of("kv_evicted_keys_total"), evicted);
    assert!(value_of("kv_memory_used_bytes") <= BOUND);
}

#[actix_web::test]
async fn info_without_a_bound_shows_what_the_store_holds_and_a_null_bound() {
    let app = TestApp::spawn().await;
    app.v1_put("a", "", "1").await;
    let info = json_of(app.get("/v1/info").await, StatusCode::OK, "info").await;
    let memory = &info["memory"];
    assert!(memory["used_bytes"].as_u64().unwrap() > 0, "{info}");
    assert_eq!(memory["bound_bytes"], serde_json::Value::Null);
    assert_eq!(memory["eviction"], "reject");
    assert_eq!(memory["evicted_keys"], 0);
}
