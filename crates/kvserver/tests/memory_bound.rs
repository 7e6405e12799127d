//! README, Memory bound: `--max-memory` with `--eviction`. A write the bound
//! refuses is a 507 `insufficient_storage` naming the bytes used and the
//! bound; reads and deletes keep working; `/v1/info` and `/metrics` show
//! used, bound and evictions; `evict-ttl` takes the nearest deadlines and
//! never a key without one; an eviction is a `delete` event to watchers and
//! stays gone after a restart.

use std::collections::HashSet;
use std::time::Duration;

use kvcore::Eviction;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::server_process::ServerProcess;
use crate::test_app::{TestApp, assert_error, json_of, v1_path};
use crate::watch::Sse;

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

#[actix_web::test]
async fn evict_ttl_takes_the_nearest_deadlines_and_refuses_once_only_keys_without_one_are_left() {
    let app = bounded(Eviction::EvictTtl).await;
    let value = "v".repeat(500);
    // 60 keys with deadlines in a scrambled order (3600 + 37i mod 400 s),
    // which fit; then keys without one until 30 timed keys had to go.
    let ttl_s = |i: u64| 3600 + (i * 37) % 400;
    for i in 0..60 {
        let query = format!("?ttl={}s", ttl_s(i));
        let response = app.v1_put(&format!("t{i}"), &query, value.clone()).await;
        assert_eq!(response.status(), StatusCode::CREATED, "t{i}");
    }
    let evicted = || async { app.info().await["memory"]["evicted_keys"].as_u64().unwrap() };
    assert_eq!(evicted().await, 0, "60 such keys fit in 64 KiB");
    let mut forever = 0;
    while evicted().await < 30 {
        let response = app.v1_put(&format!("p{forever}"), "", value.clone()).await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "evict-ttl makes room for p{forever}"
        );
        forever += 1;
    }

    let (mut kept, mut gone) = (vec![], vec![]);
    for i in 0..60 {
        match app.v1_get(&format!("t{i}")).await.status() {
            StatusCode::OK => kept.push(ttl_s(i)),
            StatusCode::NOT_FOUND => gone.push(ttl_s(i)),
            other => panic!("t{i}: {other}"),
        }
    }
    assert_eq!(gone.len() as u64, evicted().await);
    let latest_gone = gone.iter().max().unwrap();
    let earliest_kept = kept.iter().min().unwrap();
    assert!(
        latest_gone <= earliest_kept,
        "evicted a key with a {latest_gone} s TTL but kept one with {earliest_kept} s"
    );

    // More keys without a deadline push out the rest, then are refused.
    let refused = loop {
        let response = app.v1_put(&format!("p{forever}"), "", value.clone()).await;
        if response.status() != StatusCode::CREATED {
            break response;
        }
        forever += 1;
        assert!(
            forever < 1000,
            "the bound never refused a key without a TTL"
        );
    };
    assert_error(
        refused,
        StatusCode::INSUFFICIENT_STORAGE,
        "insufficient_storage",
        "--max-memory",
        "no key with a deadline is left to evict",
    )
    .await;
    assert_eq!(evicted().await, 60, "every timed key, and only those");
    for i in 0..forever {
        let status = app.v1_get(&format!("p{i}")).await.status();
        assert_eq!(status, StatusCode::OK, "p{i} has no deadline");
    }
}

#[actix_web::test]
async fn an_eviction_reaches_watchers_as_a_delete_with_an_id_of_its_own() {
    let app = bounded(Eviction::EvictLru).await;
    let mut stream = Sse::open(app.get("/v1/watch?prefix=k").await).await;
    let value = "v".repeat(500);
    for i in 0..300 {
        let response = app.v1_put(&format!("k{i}"), "", value.clone()).await;
        assert_eq!(response.status(), StatusCode::CREATED, "k{i}");
    }
    let evicted = app.info().await["memory"]["evicted_keys"].as_u64().unwrap();
    assert!(evicted > 100, "64 KiB holds far fewer than 300 such keys");

    let (mut ids, mut deleted) = (HashSet::new(), HashSet::new());
    let mut last = 0;
    while ids.len() < 300 + evicted as usize {
        let (id, kind, data) = stream.event().await;
        assert!(id > last, "ids increase: {id} after {last}");
        last = id;
        ids.insert(id);
        if kind == "delete" {
            deleted.insert(data["key"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        deleted.len() as u64,
        evicted,
        "one delete event per eviction"
    );
    for key in &deleted {
        assert_eq!(
            app.v1_get(key).await.status(),
            StatusCode::NOT_FOUND,
            "{key}"
        );
    }
}

/// With `--data-dir`, an evicted key is logged as a removal: a restart
/// (graceful, or a kill -9 with `--fsync always`) does not bring it back.
#[test]
fn an_evicted_key_stays_gone_after_a_restart() {
    for (fsync, kill) in [("everysec", false), ("always", true)] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().to_str().expect("UTF-8");
        let flags = [
            "--data-dir",
            path,
            "--fsync",
            fsync,
            "--max-memory",
            "256KiB",
            "--eviction",
            "evict-lru",
            "--max-value-bytes",
            "4096",
            "--max-body-bytes",
            "8192",
        ];
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let server = ServerProcess::start("info", &flags);
        let base = format!("http://{}", server.addr);
        for i in 0..1000 {
            let response = client
                .put(format!("{base}/v1/kv/k{i}"))
                .body("v".repeat(1000))
                .send()
                .expect("PUT");
            assert_eq!(response.status(), StatusCode::CREATED, "k{i}");
        }
        let present = |base: &str| -> Vec<bool> {
            (0..1000)
                .map(|i| {
                    let response = client
                        .get(format!("{base}/v1/kv/k{i}"))
                        .send()
                        .expect("GET");
                    match response.status() {
                        StatusCode::OK => true,
                        StatusCode::NOT_FOUND => false,
                        other => panic!("k{i}: {other}"),
                    }
                })
                .collect()
        };
        let before = present(&base);
        let held = before.iter().filter(|&&p| p).count();
        assert!(
            held > 50 && held < 500,
            "{fsync}: 256 KiB holds {held} of 1000 keys"
        );
        if kill {
            server.kill_9();
        } else {
            server.signal("TERM");
            let (status, _) = server.wait_for_exit();
            assert!(status.success());
        }

        let server = ServerProcess::start("info", &flags);
        let base = format!("http://{}", server.addr);
        assert_eq!(
            present(&base),
            before,
            "{fsync}: the same keys after the restart"
        );
    }
}
