//! Bodies of `POST` and `PUT /store`: the usual shape with odd fields, any
//! JSON, any bytes, under any Content-Type.

use proptest::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::keys::key;
use super::ttls::json_ttl;
use super::{Answer, Fuzz, encode, storable};

/// Any JSON value, small.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Seed write bodies: objects whose fields are mostly the right ones (as
/// text, so a field can come twice), any JSON at all, and any bytes.
fn seed_body() -> impl Strategy<Value = Vec<u8>> {
    let field_value = prop_oneof![
        3 => ".{0,12}".prop_map(|text| json!(text).to_string()),
        1 => json_value().prop_map(|value| value.to_string()),
        1 => json_ttl(),
    ];
    let name = prop_oneof![
        4 => prop::sample::select(vec!["key", "value", "ttl"]).prop_map(str::to_owned),
        1 => ".{0,6}",
    ];
    let object = prop::collection::vec((name, field_value), 0..5).prop_map(|fields| {
        let fields: Vec<String> = fields
            .iter()
            .map(|(name, value)| format!("{}:{value}", json!(name)))
            .collect();
        format!("{{{}}}", fields.join(",")).into_bytes()
    });
    // The usual shape, fields in any order, with something odd half the time.
    let usual = (
        key(),
        ".{0,12}",
        prop::option::of(prop_oneof![Just("null".to_owned()), json_ttl()]),
        prop::option::of((name_of_extra(), json_value())),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(key, value, ttl, extra, rotation)| {
            let mut fields = vec![
                format!("\"key\":{}", json!(key)),
                format!("\"value\":{}", json!(value)),
            ];
            fields.extend(ttl.map(|ttl| format!("\"ttl\":{ttl}")));
            fields.extend(extra.map(|(name, value)| format!("{}:{value}", json!(name))));
            let turn = rotation.index(fields.len());
            fields.rotate_left(turn);
            format!("{{{}}}", fields.join(",")).into_bytes()
        });
    prop_oneof![
        4 => usual,
        3 => object,
        2 => json_value().prop_map(|value| value.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ]
}

/// A field a seed body may or may not take.
fn name_of_extra() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["key", "value", "ttl", "Key", "version"]).prop_map(str::to_owned),
        ".{0,6}",
    ]
}

#[test]
fn any_seed_body_is_either_a_readable_entry_or_a_json_4xx() {
    let fuzz = Fuzz::start(|_| {});
    let content_type = prop::sample::select(vec![
        None,
        Some("application/json"),
        Some("application/x-www-form-urlencoded"),
        Some("text/plain; charset=utf-8"),
    ]);
    fuzz.check(
        256,
        (any::<bool>(), seed_body(), content_type),
        |app, (create, body, content_type)| async move {
            let method = if create { Method::POST } else { Method::PUT };
            let why = format!("{method} /store {:?}", String::from_utf8_lossy(&body));
            let mut request = app.request(method, "/store").body(body.clone());
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let answer = Answer::of(request).await;
            if !answer.status.is_success() {
                return answer.refusal(&why);
            }
            let entry = answer.json(&why)?;
            let key = entry["key"]
                .as_str()
                .unwrap_or_else(|| panic!("{why}: no key in {entry}"));
            let sent: Value = serde_json::from_slice(&body).expect("an accepted body is JSON");
            prop_assert_eq!(Some(key), sent["key"].as_str(), "{}: the key written", why);
            prop_assert!(storable(key), "{}: key {:?} accepted", why, key);
            let got =
                Answer::of(app.request(Method::GET, &format!("/store?key={}", encode(key)))).await;
            prop_assert_eq!(got.status, StatusCode::OK, "{}: read back", why);
            let read = got.json(&why)?;
            prop_assert_eq!(
                &read["value"],
                &sent["value"],
                "{}: the value written reads back",
                why
            );
            prop_assert_eq!(&read["version"], &entry["version"], "{}", why);
            Ok(())
        },
    );
}
