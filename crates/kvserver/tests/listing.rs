//! README, The REST API: `GET /v1/kv?prefix=P&cursor=C&limit=N`, in pages.

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::test_app::{TestApp, assert_error, json_of, v1_path};

/// One page, as JSON.
async fn page(app: &TestApp, query: &[(&str, &str)]) -> Value {
    let response = app
        .send(app.request(Method::GET, "/v1/kv").query(query))
        .await;
    json_of(response, StatusCode::OK, &format!("list {query:?}")).await
}

/// The keys of a page's items.
fn keys_of(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items is an array")
        .iter()
        .map(|item| item["key"].as_str().expect("a string key").to_owned())
        .collect()
}

/// Follows `next` to the end, checking each page's size; returns every key.
async fn list_all(app: &TestApp, prefix: &str, limit: usize) -> Vec<String> {
    let limit_text = limit.to_string();
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let mut query = vec![("prefix", prefix), ("limit", limit_text.as_str())];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor));
        }
        let page = page(app, &query).await;
        let keys = keys_of(&page);
        assert!(
            keys.len() <= limit,
            "at most {limit} items, got {}",
            keys.len()
        );
        all.extend(keys);
        match &page["next"] {
            Value::Null => return all,
            Value::String(next) => cursor = Some(next.clone()),
            other => panic!("next is a string or null, got {other}"),
        }
    }
    panic!("the listing never ended")
}

/// Writes each key with its own name as the value, a few at a time.
async fn put_keys(app: &TestApp, keys: &[String]) {
    for chunk in keys.chunks(32) {
        let puts = join_all(chunk.iter().map(|key| app.v1_put(key, "", key.clone()))).await;
        for (key, put) in chunk.iter().zip(puts) {
            assert_eq!(put.status(), StatusCode::CREATED, "PUT {key}");
        }
    }
}

/// Keys with slashes, prefixes of each other, and bytes either side of `/`.
fn awkward_keys() -> Vec<String> {
    let mut keys: Vec<String> = (0..40)
        .flat_map(|i| {
            [
                format!("k/{i:02}"),
                format!("k/{i:02}/child"),
                format!("k{i:02}"),
            ]
        })
        .collect();
    keys.extend(
        [
            "k", "k/", "k//", "k.", "k-", "k/ü", "k/a b", "k/%2F", "ü", "a", "z/z/z",
        ]
        .map(String::from),
    );
    keys
}

#[actix_web::test]
async fn pages_list_every_key_exactly_once_in_byte_order() {
    let app = TestApp::spawn().await;
    let mut expected = awkward_keys();
    put_keys(&app, &expected).await;
    expected.sort();

    for limit in [1, 7, 100, 1000] {
        let listed = list_all(&app, "", limit).await;
        assert_eq!(
            listed, expected,
            "limit {limit}: every key once, in byte order"
        );
    }
    let under_k_slash: Vec<String> = expected
        .iter()
        .filter(|key| key.starts_with("k/"))
        .cloned()
        .collect();
    assert_eq!(
        list_all(&app, "k/", 7).await,
        under_k_slash,
        "with a prefix"
    );
}

#[actix_web::test]
async fn the_prefix_filter_lists_only_keys_that_start_with_it() {
    let app = TestApp::spawn().await;
    let all = [
        "users",
        "users/",
        "users/1",
        "users/1/photo",
        "users/2",
        "usersx",
        "user",
        "u",
        "other/users/1",
        "ü/1",
        "a b/1",
    ]
    .map(String::from);
    put_keys(&app, &all).await;
    let cases: [(&str, &[&str], &str); 7] = [
        (
            "users/",
            &["users/", "users/1", "users/1/photo", "users/2"],
            "a directory-like prefix",
        ),
        (
            "users/1",
            &["users/1", "users/1/photo"],
            "a key and its children",
        ),
        (
            "users",
            &[
                "users",
                "users/",
                "users/1",
                "users/1/photo",
                "users/2",
                "usersx",
            ],
            "a plain prefix",
        ),
        ("ü", &["ü/1"], "a non-ASCII prefix"),
        ("a b", &["a b/1"], "a prefix with a space"),
        ("nothing", &[], "no match"),
        (
            "",
            &[
                "a b/1",
                "other/users/1",
                "u",
                "user",
                "users",
                "users/",
                "users/1",
                "users/1/photo",
                "users/2",
                "usersx",
                "ü/1",
            ],
            "everything",
        ),
    ];
    for (prefix, expected, why) in cases {
        assert_eq!(
            list_all(&app, prefix, 2).await,
            expected,
            "{why}: prefix {prefix:?}"
        );
    }
}

#[actix_web::test]
async fn limit_defaults_to_100_and_takes_1_to_1000() {
    let app = TestApp::spawn().await;
    let keys: Vec<String> = (0..1001).map(|i| format!("n/{i:04}")).collect();
    put_keys(&app, &keys).await;
    let cases = [
        (None, 100, "the default"),
        (Some("1"), 1, "the smallest"),
        (Some("1000"), 1000, "the largest"),
        (Some("250"), 250, "in between"),
    ];
    for (limit, count, why) in cases {
        let query: Vec<(&str, &str)> = limit.map(|limit| ("limit", limit)).into_iter().collect();
        let page = page(&app, &query).await;
        assert_eq!(keys_of(&page).len(), count, "{why}");
        assert!(page["next"].is_string(), "{why}: more keys follow");
    }
    let rest = page(&app, &[("prefix", "n/1000")]).await;
    assert_eq!(keys_of(&rest), ["n/1000"]);
    assert!(rest["next"].is_null(), "the last page says so");
}

#[actix_web::test]
async fn a_listing_never_repeats_or_skips_a_key_that_stays_unchanged_while_others_change() {
    let app = TestApp::spawn().await;
    let stable: Vec<String> = (0..60).map(|i| format!("s/{i:03}")).collect();
    let doomed: Vec<String> = (0..60).map(|i| format!("s/{i:03}-doomed")).collect();
    put_keys(&app, &stable).await;
    put_keys(&app, &doomed).await;

    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut round = 0;
    loop {
        let mut query = vec![("prefix", "s/"), ("limit", "9")];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.as_str()));
        }
        let page = page(&app, &query).await;
        seen.extend(keys_of(&page));
        // Between pages: delete keys on both sides of the cursor, add new
        // ones on both sides, rewrite a key already listed.
        for key in [&doomed[round], &doomed[59 - round]] {
            app.send(app.request(Method::DELETE, &v1_path(key, "")))
                .await;
        }
        for key in [
            format!("s/{round:03}-new"),
            format!("s/{:03}-new", 59 - round),
        ] {
            app.v1_put(&key, "", "new").await;
        }
        round += 1;
        match &page["next"] {
            Value::String(next) => cursor = Some(next.clone()),
            _ => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        seen, sorted,
        "pages follow byte order and never repeat a key"
    );
    for key in &stable {
        assert!(
            seen.contains(key),
            "{key} existed unchanged throughout and was skipped"
        );
    }
}

#[actix_web::test]
async fn items_carry_key_version_size_and_ttl_only_with_a_deadline() {
    let app = TestApp::spawn().await;
    let put = json_of(
        app.v1_put("a", "?ttl=1m", "hello").await,
        StatusCode::CREATED,
        "a",
    )
    .await;
    let version = put["version"].clone();
    app.v1_put("b", "", "").await;
    let listed = page(&app, &[]).await;
    assert_eq!(
        listed["items"][0],
        serde_json::json!({"key": "a", "version": version, "size": 5, "ttl_ms": 60000})
    );
    assert_eq!(listed["items"][1]["size"], 0);
    assert!(listed["items"][1].get("ttl_ms").is_none(), "{listed}");
    assert!(
        listed["items"][0].get("value").is_none(),
        "no values unless asked"
    );
    assert!(listed["next"].is_null());
}

#[actix_web::test]
async fn values_true_adds_each_value_as_a_string_or_base64_with_its_encoding() {
    let app = TestApp::spawn().await;
    app.v1_put("bin", "", vec![0xff_u8, 0xfe, 0x00]).await;
    app.v1_put("empty", "", "").await;
    app.v1_put("text", "", "héllo").await;
    let listed = page(&app, &[("values", "true")]).await;
    let items = &listed["items"];
    assert_eq!(items[0]["key"], "bin");
    assert_eq!(items[0]["value"], "//4A", "binary is base64: {listed}");
    assert_eq!(items[0]["encoding"], "base64");
    assert_eq!(items[1]["value"], "", "an empty value is an empty string");
    assert!(items[1].get("encoding").is_none());
    assert_eq!(items[2]["value"], "héllo");
    assert!(items[2].get("encoding").is_none(), "text is a plain string");

    let without = page(&app, &[("values", "false")]).await;
    assert!(
        without["items"][0].get("value").is_none(),
        "values=false leaves them out"
    );
}

#[actix_web::test]
async fn a_cursor_the_server_did_not_hand_out_is_a_400() {
    let app = TestApp::spawn().await;
    app.v1_put("k", "", "v").await;
    let cases = [
        ("!!!", "not base64"),
        ("_w", "base64 of bytes that are not UTF-8"),
        ("a b", "a space"),
        ("a===", "bad padding"),
    ];
    for (cursor, why) in cases {
        let response = app
            .send(
                app.request(Method::GET, "/v1/kv")
                    .query(&[("cursor", cursor)]),
            )
            .await;
        assert_error(
            response,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "cursor",
            why,
        )
        .await;
    }
}

/// Follows `next` with `values=true` to the end; returns every key and the
/// largest page body seen, in bytes.
async fn list_values(app: &TestApp) -> (Vec<String>, Vec<usize>) {
    let mut keys = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("values", "true"), ("limit", "1000")];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor));
        }
        let response = app
            .send(app.request(Method::GET, "/v1/kv").query(&query))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.bytes().await.expect("a page");
        sizes.push(body.len());
        let page: Value = serde_json::from_slice(&body).expect("a JSON page");
        for item in page["items"].as_array().expect("items") {
            let value = item["value"].as_str().expect("a value");
            assert_eq!(value.len() as u64, item["size"], "the whole value");
            keys.push(item["key"].as_str().expect("a key").to_owned());
        }
        match &page["next"] {
            Value::Null => return (keys, sizes),
            Value::String(next) => cursor = Some(next.clone()),
            other => panic!("next is a string or null, got {other}"),
        }
    }
}

#[actix_web::test]
async fn a_page_of_values_stops_at_the_byte_budget_and_next_continues_exactly() {
    const BUDGET: usize = 64 * 1024;
    const VALUE: usize = 16 * 1024;
    let app = TestApp::spawn_with(|config| config.list_page_bytes = BUDGET).await;
    let keys: Vec<String> = (0..40).map(|n| format!("big/{n:02}")).collect();
    for key in &keys {
        app.v1_put(key, "", "v".repeat(VALUE)).await;
    }
    let (listed, sizes) = list_values(&app).await;
    assert_eq!(listed, keys, "every key once, in order, across the pages");
    assert!(
        sizes.len() >= 40 * VALUE / BUDGET,
        "pages stopped: {sizes:?}"
    );
    for size in &sizes {
        assert!(
            *size <= BUDGET + VALUE + 200,
            "a page is at most the budget and one item: {sizes:?}"
        );
    }
    let without_values = page(&app, &[("limit", "1000")]).await;
    assert_eq!(keys_of(&without_values), keys, "small items fit one page");
    assert!(without_values["next"].is_null());
}

#[actix_web::test]
async fn by_default_a_page_of_one_mib_values_stops_near_four_mib() {
    let app = TestApp::spawn().await;
    // 65 MiB: more than one answer kvserver reads from etcd (64 MiB).
    let keys: Vec<String> = (0..65).map(|n| format!("mib/{n:02}")).collect();
    for key in &keys {
        app.v1_put(key, "", "x".repeat(1024 * 1024)).await;
    }
    let (listed, sizes) = list_values(&app).await;
    assert_eq!(listed, keys, "every key once, in order");
    assert!(
        sizes.len() >= 13,
        "65 MiB of values take pages of about 4 MiB: {sizes:?}"
    );
    let largest = sizes.iter().max().copied().unwrap_or_default();
    assert!(
        largest <= 5 * 1024 * 1024 + 4096,
        "a page is at most 4 MiB and one value: {sizes:?}"
    );
}
