//! README, The seed API: the seed API at `/store`, kept exactly as the Python demo
//! served it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::test_app::{TestApp, assert_error, json_of};

/// A request the way curl sends it: a body as typed, and a Content-Type only
/// when the command says `-H`.
async fn curl(
    app: &TestApp,
    method: Method,
    path_and_query: &str,
    body: Option<&str>,
    content_type: Option<&str>,
) -> reqwest::Response {
    let mut request = app.request(method, path_and_query);
    if let Some(body) = body {
        request = request.body(body.to_owned());
    }
    if let Some(content_type) = content_type {
        request = request.header("Content-Type", content_type);
    }
    app.send(request).await
}

/// The Content-Types the README's commands arrive with: as written, and as
/// curl sends them when `-H` is left off (`-d` implies a form type).
const AS_TYPED: [(&str, &str); 2] = [
    ("application/json", "as written"),
    (
        "application/x-www-form-urlencoded",
        "without -H, as curl -d sends it",
    ),
];

#[actix_web::test]
async fn the_seed_readme_curl_commands_work_unchanged() {
    let app = TestApp::spawn().await;
    for (content_type, how) in AS_TYPED {
        let json = Some(content_type);

        // curl -X POST http://localhost:8080/store -d '{"key":"P", "value":"PhysicsX"}' -H "Content-Type: application/json"
        let response = curl(
            &app,
            Method::POST,
            "/store",
            Some(r#"{"key":"P", "value":"PhysicsX"}"#),
            json,
        )
        .await;
        let created = json_of(response, StatusCode::CREATED, &format!("POST {how}")).await;
        let v1 = created["version"].as_u64().expect("a numeric version");
        assert_eq!(
            created,
            json!({"key": "P", "value": "PhysicsX", "version": v1}),
            "{how}: the entry JSON, without ttl_ms when there is no deadline"
        );

        // curl "http://localhost:8080/store?key=P"
        let response = curl(&app, Method::GET, "/store?key=P", None, None).await;
        let read = json_of(response, StatusCode::OK, "GET /store?key=P").await;
        assert_eq!(
            read, created,
            "{how}: a read returns what the create returned"
        );

        // curl -X PUT http://localhost:8080/store -d '{"key":"P", "value":"PhysicsXKeyValueStore"}' -H "Content-Type: application/json"
        let response = curl(
            &app,
            Method::PUT,
            "/store",
            Some(r#"{"key":"P", "value":"PhysicsXKeyValueStore"}"#),
            json,
        )
        .await;
        let updated = json_of(response, StatusCode::OK, &format!("PUT {how}")).await;
        let v2 = updated["version"].as_u64().expect("a numeric version");
        assert!(
            v2 > v1,
            "{how}: an update takes a higher version ({v2} after {v1})"
        );
        assert_eq!(
            updated,
            json!({"key": "P", "value": "PhysicsXKeyValueStore", "version": v2}),
            "{how}"
        );
        let response = curl(&app, Method::GET, "/store?key=P", None, None).await;
        assert_eq!(
            json_of(response, StatusCode::OK, "GET after PUT").await,
            updated,
            "{how}: a read sees the update"
        );

        // curl -X DELETE "http://localhost:8080/store?key=P"
        let response = curl(&app, Method::DELETE, "/store?key=P", None, None).await;
        assert_eq!(
            json_of(response, StatusCode::OK, "DELETE /store?key=P").await,
            json!({"key": "P", "deleted": true}),
            "{how}"
        );
        let response = curl(&app, Method::GET, "/store?key=P", None, None).await;
        let body = assert_error(
            response,
            StatusCode::NOT_FOUND,
            "not_found",
            "not found",
            "GET after DELETE",
        )
        .await;
        assert_eq!(body["key"], "P", "{how}: a 404 names the key");
    }
}

#[actix_web::test]
async fn the_seed_ttl_example_works_as_written_and_the_key_then_behaves_as_absent() {
    let app = TestApp::spawn().await;
    for (content_type, how) in AS_TYPED {
        // curl -X POST http://localhost:8080/store \
        //   -d '{"key":"session", "value":"PhysicsX", "ttl":3}' \
        //   -H "Content-Type: application/json"
        let response = curl(
            &app,
            Method::POST,
            "/store",
            Some(r#"{"key":"session", "value":"PhysicsX", "ttl":3}"#),
            Some(content_type),
        )
        .await;
        // The second round also shows an expired key does not block a create.
        let created = json_of(response, StatusCode::CREATED, &format!("POST {how}")).await;
        assert_eq!(
            created["ttl_ms"], 3000,
            "{how}: the remaining time in ms: {created}"
        );

        app.advance(1000);
        let read = json_of(app.seed_get("session").await, StatusCode::OK, "after 1 s").await;
        assert_eq!(
            read["ttl_ms"], 2000,
            "{how}: the remaining time counts down"
        );

        app.advance(1999);
        let read = json_of(app.seed_get("session").await, StatusCode::OK, "1 ms before").await;
        assert_eq!(read["ttl_ms"], 1, "{how}: alive up to its deadline");

        app.advance(2);
        let absent = [
            (app.seed_get("session").await, "GET"),
            (
                app.seed_update(json!({"key": "session", "value": "x"}))
                    .await,
                "PUT",
            ),
            (
                app.send(app.request(Method::DELETE, "/store?key=session"))
                    .await,
                "DELETE",
            ),
        ];
        for (response, why) in absent {
            assert_error(
                response,
                StatusCode::NOT_FOUND,
                "not_found",
                "session",
                &format!("{how}: {why} after expiry"),
            )
            .await;
        }
    }
}

#[actix_web::test]
async fn a_json_body_is_accepted_whatever_the_content_type_says() {
    let app = TestApp::spawn().await;
    let cases = [
        (None, "no Content-Type at all"),
        (
            Some("application/x-www-form-urlencoded"),
            "curl -d without -H sends a form type",
        ),
        (Some("text/plain"), "a text type"),
        (
            Some("application/json; charset=utf-8"),
            "JSON with a charset",
        ),
        (Some("application/octet-stream"), "a binary type"),
    ];
    for (i, (content_type, why)) in cases.into_iter().enumerate() {
        let key = format!("ct{i}");
        let body = format!(r#"{{"key":"{key}", "value":"first"}}"#);
        let response = curl(&app, Method::POST, "/store", Some(&body), content_type).await;
        let created = json_of(response, StatusCode::CREATED, why).await;
        assert_eq!(created["value"], "first", "{why}");

        let body = format!(r#"{{"key":"{key}", "value":"second"}}"#);
        let response = curl(&app, Method::PUT, "/store", Some(&body), content_type).await;
        let updated = json_of(response, StatusCode::OK, why).await;
        assert_eq!(updated["value"], "second", "{why}");
    }
}

#[actix_web::test]
async fn creating_a_key_that_exists_is_a_409_that_keeps_the_stored_value() {
    let app = TestApp::spawn().await;
    let created = app.seed_create(json!({"key": "k", "value": "one"})).await;
    let created = json_of(created, StatusCode::CREATED, "first create").await;

    let again = app
        .seed_create(json!({"key": "k", "value": "two", "ttl": 5}))
        .await;
    let body = assert_error(
        again,
        StatusCode::CONFLICT,
        "already_exists",
        "already exists",
        "second create",
    )
    .await;
    assert_eq!(body["key"], "k", "names the key: {body}");
    assert_eq!(
        body["current_version"], created["version"],
        "says the version"
    );

    let read = json_of(app.seed_get("k").await, StatusCode::OK, "read back").await;
    assert_eq!(read, created, "value, version and deadline untouched");
}

#[actix_web::test]
async fn updating_reading_or_deleting_a_missing_key_is_a_404_naming_the_key() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            app.seed_update(json!({"key": "ghost", "value": "boo"}))
                .await,
            "PUT",
        ),
        (app.seed_get("ghost").await, "GET"),
        (
            app.send(app.request(Method::DELETE, "/store?key=ghost"))
                .await,
            "DELETE",
        ),
    ];
    for (response, why) in cases {
        let body = assert_error(response, StatusCode::NOT_FOUND, "not_found", "ghost", why).await;
        assert_eq!(body["key"], "ghost", "{why}: {body}");
    }
    assert_error(
        app.seed_get("ghost").await,
        StatusCode::NOT_FOUND,
        "not_found",
        "ghost",
        "a failed PUT does not create the key",
    )
    .await;
}

#[actix_web::test]
async fn empty_values_and_unusual_keys_round_trip() {
    let app = TestApp::spawn().await;
    let cases = [
        ("e", "", "an empty value"),
        ("a/b/c", "slashes", "a key with slashes"),
        ("with space", "s", "a key with a space"),
        ("a+b&c=d?e#f", "q", "a key with query-string characters"),
        ("ключ ✓", "u", "a non-ASCII key"),
        ("quote\"back\\slash", "j", "a key with JSON escapes"),
        (
            "v",
            "line\nbreak \u{1F600} \"quoted\"",
            "a value with escapes",
        ),
    ];
    for (key, value, why) in cases {
        let created = app.seed_create(json!({"key": key, "value": value})).await;
        let created = json_of(created, StatusCode::CREATED, why).await;
        assert_eq!(created["key"], key, "{why}");
        let read = json_of(app.seed_get(key).await, StatusCode::OK, why).await;
        assert_eq!(read["value"], value, "{why}");
        let deleted = app
            .send(app.request(Method::DELETE, "/store").query(&[("key", key)]))
            .await;
        assert_eq!(
            json_of(deleted, StatusCode::OK, why).await,
            json!({"key": key, "deleted": true}),
            "{why}"
        );
    }
}

#[actix_web::test]
async fn a_percent_encoded_slash_in_the_query_is_the_same_key() {
    let app = TestApp::spawn().await;
    let created = app.seed_create(json!({"key": "a/b", "value": "v"})).await;
    json_of(created, StatusCode::CREATED, "create a/b").await;
    for (path, why) in [
        ("/store?key=a%2Fb", "encoded slash"),
        ("/store?key=a/b", "plain slash"),
        ("/store?key=a%2fb", "lower-case escape"),
    ] {
        let read = json_of(app.get(path).await, StatusCode::OK, why).await;
        assert_eq!(read["key"], "a/b", "{why}");
    }
}

#[actix_web::test]
async fn a_value_that_is_not_utf8_reads_back_as_base64_with_its_encoding() {
    let app = TestApp::spawn().await;
    let bytes = vec![0xff, 0x00, 0xfe, b'A'];
    let put = app.v1_put("bin", "", bytes).await;
    assert_eq!(put.status(), StatusCode::CREATED);

    let read = json_of(app.seed_get("bin").await, StatusCode::OK, "GET /store").await;
    assert_eq!(read["value"], "/wD+QQ==", "standard base64: {read}");
    assert_eq!(read["encoding"], "base64", "{read}");

    let text = app.v1_put("text", "", "plain").await;
    assert_eq!(text.status(), StatusCode::CREATED);
    let read = json_of(app.seed_get("text").await, StatusCode::OK, "GET text").await;
    assert!(
        read.get("encoding").is_none(),
        "UTF-8 stays a string: {read}"
    );
}

#[actix_web::test]
async fn every_write_takes_a_higher_version_also_after_delete_and_recreate() {
    let app = TestApp::spawn().await;
    let mut versions = Vec::new();
    let mut record = |body: Value| versions.push(body["version"].as_u64().expect("a version"));
    record(
        json_of(
            app.seed_create(json!({"key": "k", "value": "1"})).await,
            StatusCode::CREATED,
            "create",
        )
        .await,
    );
    record(
        json_of(
            app.seed_create(json!({"key": "other", "value": "x"})).await,
            StatusCode::CREATED,
            "another key",
        )
        .await,
    );
    record(
        json_of(
            app.seed_update(json!({"key": "k", "value": "2"})).await,
            StatusCode::OK,
            "update",
        )
        .await,
    );
    let deleted = app.send(app.request(Method::DELETE, "/store?key=k")).await;
    assert_eq!(deleted.status(), StatusCode::OK);
    record(
        json_of(
            app.seed_create(json!({"key": "k", "value": "3"})).await,
            StatusCode::CREATED,
            "recreate",
        )
        .await,
    );
    assert!(
        versions.windows(2).all(|pair| pair[0] < pair[1]),
        "strictly increasing across keys and a delete: {versions:?}"
    );
}
