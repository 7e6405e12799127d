//! Keys of any shape, in the path of `/v1/kv/{key}` and in `?key=` and the
//! JSON body of the seed API.

use percent_encoding::{NON_ALPHANUMERIC, percent_encode};
use proptest::prelude::*;
use proptest::test_runner::TestCaseResult;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{Answer, Fuzz, KEY_LIMIT, encode, storable};
use crate::test_app::{TestApp, v1_path};

/// Keys of every shape: short ones of any character (control characters,
/// `/`, `%`, `+`, spaces, unicode), and long ones around the key limit.
pub(super) fn key() -> impl Strategy<Value = String> {
    let tricky = prop::sample::select(vec![
        '/', '%', '+', ' ', '?', '#', '&', '=', '.', '\0', '\n', '\r', '\t', '\u{7f}', 'é',
        '\u{FFFD}', '\u{200B}', '😀', 'a',
    ]);
    let char = prop_oneof![3 => tricky, 2 => any::<char>()];
    let short = prop::collection::vec(char, 0..12).prop_map(String::from_iter);
    let long = (short.clone(), KEY_LIMIT - 4..KEY_LIMIT + 4).prop_map(|(start, bytes)| {
        let filler = bytes.saturating_sub(start.len());
        format!("{start}{}", "k".repeat(filler))
    });
    prop_oneof![
        4 => short,
        1 => long,
        1 => prop::sample::select(vec![
            String::new(),
            ".".into(),
            "..".into(),
            "./".into(),
            "..a".into(),
        ]),
    ]
}

/// Byte strings that are not UTF-8.
pub(super) fn not_utf8() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(any::<u8>(), 0..8),
        prop::sample::select(vec![
            vec![0xFF],
            vec![0xC3],
            vec![0xE2, 0x82],
            vec![0xED, 0xA0, 0x80],
            vec![0xC0, 0xAF],
        ]),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(before, bad, after)| [before, bad, after].concat())
        .prop_filter("not UTF-8", |bytes| std::str::from_utf8(bytes).is_err())
}

/// A value of arbitrary bytes.
pub(super) fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..48)
}

async fn key_is_listed(app: &TestApp, key: &str, why: &str) -> TestCaseResult {
    let listing = Answer::of(app.request(
        Method::GET,
        &format!("/v1/kv?prefix={}&limit=1", encode(key)),
    ))
    .await;
    prop_assert_eq!(listing.status, StatusCode::OK, "{}: listing", why);
    let listing = listing.json(why)?;
    // The key itself is the first key with itself as the prefix.
    prop_assert_eq!(
        listing["items"][0]["key"].as_str(),
        Some(key),
        "{}: listing {}",
        why,
        listing
    );
    Ok(())
}

async fn any_key_round_trips(
    app: &TestApp,
    (key, bytes, text): (String, Vec<u8>, String),
) -> TestCaseResult {
    let why = format!("key {key:?} ({} bytes)", key.len());
    let put = Answer::of(
        app.request(Method::PUT, &v1_path(&key, ""))
            .body(bytes.clone()),
    )
    .await;
    if !storable(&key) {
        put.refusal(&format!("PUT /v1 {why}"))?;
    } else {
        prop_assert!(
            put.status.is_success(),
            "PUT /v1 {}: {} {:?}",
            why,
            put.status,
            String::from_utf8_lossy(&put.body)
        );
        let got = Answer::of(app.request(Method::GET, &v1_path(&key, ""))).await;
        prop_assert_eq!(got.status, StatusCode::OK, "GET /v1 {}", why);
        prop_assert_eq!(&got.body, &bytes, "GET /v1 {} reads the bytes written", why);
        key_is_listed(app, &key, &why).await?;
    }

    // The seed API: the key in a JSON body, then in ?key=. A key /v1
    // refused must not be created here either; a stored one is updated.
    let method = if storable(&key) {
        Method::PUT
    } else {
        Method::POST
    };
    let seed = Answer::of(
        app.request(method, "/store")
            .json(&json!({"key": key, "value": text})),
    )
    .await;
    if !storable(&key) {
        return seed.refusal(&format!("POST /store {why}"));
    }
    prop_assert_eq!(
        seed.status,
        StatusCode::OK,
        "PUT /store {}: {:?}",
        why,
        String::from_utf8_lossy(&seed.body)
    );
    let got = Answer::of(app.request(Method::GET, &format!("/store?key={}", encode(&key)))).await;
    prop_assert_eq!(got.status, StatusCode::OK, "GET /store {}", why);
    let entry = got.json(&why)?;
    prop_assert_eq!(
        entry["key"].as_str(),
        Some(key.as_str()),
        "GET /store {}",
        why
    );
    prop_assert_eq!(
        entry["value"].as_str(),
        Some(text.as_str()),
        "GET /store {}",
        why
    );
    key_is_listed(app, &key, &why).await
}

#[test]
fn any_key_is_either_stored_and_read_back_exactly_or_refused_with_a_json_4xx() {
    let fuzz = Fuzz::start(|_| {});
    fuzz.check(256, (key(), value(), ".{0,16}"), any_key_round_trips);
}

#[test]
fn keys_that_are_not_utf8_once_percent_decoded_are_400_on_every_route() {
    let fuzz = Fuzz::start(|_| {});
    fuzz.check(96, not_utf8(), |app, bytes| async move {
        let encoded = percent_encode(&bytes, NON_ALPHANUMERIC).to_string();
        let requests = [
            (Method::PUT, format!("/v1/kv/{encoded}")),
            (Method::GET, format!("/v1/kv/{encoded}")),
            (Method::DELETE, format!("/v1/kv/{encoded}")),
            (Method::GET, format!("/store?key={encoded}")),
            (Method::DELETE, format!("/store?key={encoded}")),
            (Method::GET, format!("/v1/kv?prefix={encoded}")),
        ];
        for (method, path) in requests {
            let why = format!("{method} {path}");
            let answer = Answer::of(app.request(method, &path).body("v")).await;
            prop_assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", why);
            answer.refusal(&why)?;
        }
        Ok(())
    });
}
