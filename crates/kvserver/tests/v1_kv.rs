//! README, The REST API: one key at a time through `/v1/kv/{key}`: raw values,
//! ETags, preconditions, HEAD, DELETE, percent-encoded keys.

use reqwest::{Method, StatusCode};

use crate::test_app::{TestApp, assert_error, etag, header, json_of, v1_path};

/// `PUT /v1/kv/{key}` with one precondition header.
async fn put_if(
    app: &TestApp,
    key: &str,
    name: &str,
    value: &str,
    body: &str,
) -> reqwest::Response {
    app.send(
        app.request(Method::PUT, &v1_path(key, ""))
            .header(name, value)
            .body(body.to_owned()),
    )
    .await
}

/// The raw value of a key, or the status when it is not 200.
async fn read(app: &TestApp, key: &str) -> Result<Vec<u8>, StatusCode> {
    let response = app.v1_get(key).await;
    match response.status() {
        StatusCode::OK => Ok(response.bytes().await.expect("a body").to_vec()),
        status => Err(status),
    }
}

#[actix_web::test]
async fn put_creates_with_201_then_replaces_with_200_and_returns_the_etag_and_metadata() {
    let app = TestApp::spawn().await;
    let created = app.v1_put("config", "", "v1").await;
    let tag = etag(&created);
    let body = json_of(created, StatusCode::CREATED, "first PUT").await;
    let version = body["version"].as_u64().expect("a version");
    assert_eq!(
        tag,
        format!("\"{version}\""),
        "the ETag is the quoted version"
    );
    assert_eq!(body["key"], "config");
    assert_eq!(body["created"], true);
    assert!(body.get("ttl_ms").is_none(), "no deadline: {body}");

    let replaced = app.v1_put("config", "", "v2").await;
    let tag = etag(&replaced);
    let body = json_of(replaced, StatusCode::OK, "second PUT").await;
    let newer = body["version"].as_u64().expect("a version");
    assert!(newer > version);
    assert_eq!(tag, format!("\"{newer}\""));
    assert_eq!(body["created"], false);
}

#[actix_web::test]
async fn get_returns_the_raw_bytes_as_octet_stream_with_etag_and_ttl_header() {
    let app = TestApp::spawn().await;
    let value: Vec<u8> = (0..=255).collect();
    let put = app.v1_put("bytes", "?ttl=1m", value.clone()).await;
    let put_tag = etag(&put);

    let got = app.v1_get("bytes").await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(
        header(&got, "content-type").as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(etag(&got), put_tag, "the ETag of the write");
    assert_eq!(header(&got, "kv-ttl-ms").as_deref(), Some("60000"));
    assert_eq!(
        got.bytes().await.expect("a body").to_vec(),
        value,
        "every byte"
    );

    let put = app.v1_put("plain", "", "").await;
    assert_eq!(
        put.status(),
        StatusCode::CREATED,
        "an empty value is allowed"
    );
    let got = app.v1_get("plain").await;
    assert_eq!(
        header(&got, "kv-ttl-ms"),
        None,
        "no header without a deadline"
    );
    assert_eq!(got.bytes().await.expect("a body").len(), 0);
}

#[actix_web::test]
async fn head_answers_like_get_without_the_body() {
    let app = TestApp::spawn().await;
    let put = app.v1_put("k", "?ttl=30s", "hello").await;
    let tag = etag(&put);
    let head = app.send(app.request(Method::HEAD, "/v1/kv/k")).await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(etag(&head), tag);
    assert_eq!(
        header(&head, "content-type").as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(header(&head, "kv-ttl-ms").as_deref(), Some("30000"));
    assert!(head.bytes().await.expect("no body").is_empty());

    let conditional = app
        .send(
            app.request(Method::HEAD, "/v1/kv/k")
                .header("If-None-Match", tag),
        )
        .await;
    assert_eq!(
        conditional.status(),
        StatusCode::NOT_MODIFIED,
        "HEAD honours If-None-Match"
    );

    let missing = app.send(app.request(Method::HEAD, "/v1/kv/missing")).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn if_none_match_with_the_current_etag_gives_304() {
    let app = TestApp::spawn().await;
    let put = app.v1_put("k", "", "v1").await;
    let old = etag(&put);
    let put = app.v1_put("k", "", "v2").await;
    let current = etag(&put);
    let cases = [
        (
            current.clone(),
            StatusCode::NOT_MODIFIED,
            "the current ETag",
        ),
        (
            format!("W/{current}"),
            StatusCode::NOT_MODIFIED,
            "its weak form",
        ),
        (
            format!("\"999999\", {current}"),
            StatusCode::NOT_MODIFIED,
            "a list holding it",
        ),
        ("*".to_owned(), StatusCode::NOT_MODIFIED, "any version"),
        (old, StatusCode::OK, "an older ETag"),
        ("\"999999\"".to_owned(), StatusCode::OK, "another ETag"),
    ];
    for (if_none_match, status, why) in cases {
        let response = app
            .send(
                app.request(Method::GET, "/v1/kv/k")
                    .header("If-None-Match", &if_none_match),
            )
            .await;
        assert_eq!(
            response.status(),
            status,
            "{why}: If-None-Match: {if_none_match}"
        );
        assert_eq!(etag(&response), current, "{why}: the ETag is always sent");
        let body = response.bytes().await.expect("a body");
        let expected: &[u8] = if status == StatusCode::OK { b"v2" } else { b"" };
        assert_eq!(&body[..], expected, "{why}: a 304 has no body");
    }
}

#[actix_web::test]
async fn if_none_match_star_creates_only_and_is_a_412_when_the_key_exists() {
    let app = TestApp::spawn().await;
    let created = put_if(&app, "k", "If-None-Match", "*", "first").await;
    assert_eq!(created.status(), StatusCode::CREATED, "absent: created");

    let refused = put_if(&app, "k", "If-None-Match", "*", "second").await;
    let body = assert_error(
        refused,
        StatusCode::PRECONDITION_FAILED,
        "already_exists",
        "already exists",
        "present: refused",
    )
    .await;
    assert!(body["current_version"].is_u64(), "says the version: {body}");
    assert_eq!(
        read(&app, "k").await,
        Ok(b"first".to_vec()),
        "the value stays"
    );
}

#[actix_web::test]
async fn if_match_star_updates_only_and_is_a_412_when_the_key_is_absent() {
    let app = TestApp::spawn().await;
    let refused = put_if(&app, "k", "If-Match", "*", "v").await;
    assert_error(
        refused,
        StatusCode::PRECONDITION_FAILED,
        "not_found",
        "does not exist",
        "absent: refused",
    )
    .await;
    assert_eq!(
        read(&app, "k").await,
        Err(StatusCode::NOT_FOUND),
        "nothing was created"
    );

    app.v1_put("k", "", "v1").await;
    let updated = put_if(&app, "k", "If-Match", "*", "v2").await;
    assert_eq!(updated.status(), StatusCode::OK, "present: updated");
    assert_eq!(read(&app, "k").await, Ok(b"v2".to_vec()));
}

#[actix_web::test]
async fn if_match_with_a_version_is_compare_and_swap() {
    let app = TestApp::spawn().await;
    let v1 = etag(&app.v1_put("k", "", "v1").await);
    let v2_response = put_if(&app, "k", "If-Match", &v1, "v2").await;
    assert_eq!(
        v2_response.status(),
        StatusCode::OK,
        "the current version: swapped"
    );
    let v2 = etag(&v2_response);

    let stale = put_if(&app, "k", "If-Match", &v1, "lost").await;
    let body = assert_error(
        stale,
        StatusCode::PRECONDITION_FAILED,
        "version_mismatch",
        "version",
        "a stale version",
    )
    .await;
    assert_eq!(
        format!("\"{}\"", body["current_version"]),
        v2,
        "says the current version"
    );
    assert_eq!(
        read(&app, "k").await,
        Ok(b"v2".to_vec()),
        "the stale write did nothing"
    );

    let absent = put_if(&app, "nothing", "If-Match", "\"1\"", "v").await;
    assert_eq!(
        absent.status(),
        StatusCode::PRECONDITION_FAILED,
        "an absent key"
    );
    assert_eq!(read(&app, "nothing").await, Err(StatusCode::NOT_FOUND));
}

#[actix_web::test]
async fn version_zero_names_no_key_so_if_match_zero_on_an_absent_key_is_a_412() {
    // No write takes revision 0; etcd compares an absent key's mod_revision
    // as 0, which must not let a CAS against "0" create or delete it.
    let app = TestApp::spawn().await;
    let put = put_if(&app, "nothing", "If-Match", "\"0\"", "v").await;
    let body = assert_error(
        put,
        StatusCode::PRECONDITION_FAILED,
        "version_mismatch",
        "does not exist",
        "PUT If-Match \"0\" on an absent key",
    )
    .await;
    assert_eq!(body["current_version"], serde_json::Value::Null, "{body}");
    assert_eq!(read(&app, "nothing").await, Err(StatusCode::NOT_FOUND));

    let delete = app
        .send(
            app.request(Method::DELETE, "/v1/kv/nothing")
                .header("If-Match", "\"0\""),
        )
        .await;
    assert_error(
        delete,
        StatusCode::PRECONDITION_FAILED,
        "version_mismatch",
        "does not exist",
        "DELETE If-Match \"0\" on an absent key",
    )
    .await;
}

#[actix_web::test]
async fn delete_is_204_then_404() {
    let app = TestApp::spawn().await;
    app.v1_put("k", "", "v").await;
    let deleted = app.send(app.request(Method::DELETE, "/v1/kv/k")).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(deleted.bytes().await.expect("a body").is_empty());
    assert_eq!(read(&app, "k").await, Err(StatusCode::NOT_FOUND));

    let again = app.send(app.request(Method::DELETE, "/v1/kv/k")).await;
    assert_error(
        again,
        StatusCode::NOT_FOUND,
        "not_found",
        "\"k\"",
        "deleting twice",
    )
    .await;
}

#[actix_web::test]
async fn delete_with_if_match_removes_only_the_expected_version() {
    let app = TestApp::spawn().await;
    let v1 = etag(&app.v1_put("k", "", "v1").await);
    let v2 = etag(&app.v1_put("k", "", "v2").await);

    let delete_if = |tag: String| {
        app.request(Method::DELETE, "/v1/kv/k")
            .header("If-Match", tag)
    };
    let stale = app.send(delete_if(v1)).await;
    assert_error(
        stale,
        StatusCode::PRECONDITION_FAILED,
        "version_mismatch",
        "version",
        "a stale version",
    )
    .await;
    assert_eq!(read(&app, "k").await, Ok(b"v2".to_vec()), "still there");

    let current = app.send(delete_if(v2.clone())).await;
    assert_eq!(
        current.status(),
        StatusCode::NO_CONTENT,
        "the current version"
    );
    assert_eq!(read(&app, "k").await, Err(StatusCode::NOT_FOUND));

    // With any If-Match, an absent key fails the precondition, as on PUT.
    for tag in [v2, "*".to_string()] {
        let absent = app.send(delete_if(tag.clone())).await;
        assert_eq!(
            absent.status(),
            StatusCode::PRECONDITION_FAILED,
            "If-Match {tag} on an absent key"
        );
    }
    let plain = app.send(app.request(Method::DELETE, "/v1/kv/k")).await;
    assert_eq!(plain.status(), StatusCode::NOT_FOUND, "no condition: 404");
}

#[actix_web::test]
async fn percent_encoded_and_plain_slashes_name_the_same_key() {
    let app = TestApp::spawn().await;
    let put = app
        .send(app.request(Method::PUT, "/v1/kv/a%2Fb").body("one"))
        .await;
    assert_eq!(put.status(), StatusCode::CREATED);
    let plain = app.get("/v1/kv/a/b").await;
    assert_eq!(plain.status(), StatusCode::OK, "a/b is the key a%2Fb wrote");
    assert_eq!(plain.text().await.expect("text"), "one");

    let put = app
        .send(app.request(Method::PUT, "/v1/kv/a/b").body("two"))
        .await;
    assert_eq!(put.status(), StatusCode::OK, "replaces, not creates");
    let seed = json_of(app.seed_get("a/b").await, StatusCode::OK, "seed API").await;
    assert_eq!(seed["value"], "two", "the seed API sees the same key");
}

#[actix_web::test]
async fn keys_in_paths_are_percent_decoded() {
    let app = TestApp::spawn().await;
    let cases = [
        ("/v1/kv/a%2Fb%2Fc", "a/b/c", "encoded slashes"),
        ("/v1/kv/dir/", "dir/", "a trailing slash"),
        ("/v1/kv/a//b", "a//b", "an empty segment"),
        ("/v1/kv/with%20space", "with space", "an encoded space"),
        ("/v1/kv/a+b", "a+b", "a plus stays a plus in a path"),
        (
            "/v1/kv/q%3Fmark%23hash",
            "q?mark#hash",
            "query and fragment characters",
        ),
        ("/v1/kv/pct%25", "pct%", "an encoded percent sign"),
        ("/v1/kv/%E2%9C%93", "\u{2713}", "UTF-8 bytes"),
        (
            "/v1/kv/caf\u{e9}",
            "caf\u{e9}",
            "UTF-8 the client encoded itself",
        ),
    ];
    for (path, key, why) in cases {
        let put = app.send(app.request(Method::PUT, path).body(why)).await;
        let body = json_of(put, StatusCode::CREATED, why).await;
        assert_eq!(body["key"], key, "{why}: {path}");
        let seed = json_of(app.seed_get(key).await, StatusCode::OK, why).await;
        assert_eq!(seed["value"], why, "{why}: the same key through /store");
    }
}

#[actix_web::test]
async fn if_match_compares_strongly_and_only_the_exact_version_text_matches() {
    let app = TestApp::spawn().await;
    let current = etag(&app.v1_put("k", "", "v1").await);
    let version = current.trim_matches('"').to_owned();
    let never = [
        (format!("W/{current}"), "a weak tag never matches If-Match"),
        (format!("\"+{version}\""), "a plus sign is not the version"),
        (
            format!("\"0{version}\""),
            "a leading zero is not the version",
        ),
    ];
    for (tag, why) in &never {
        for method in [Method::PUT, Method::DELETE, Method::GET, Method::HEAD] {
            let response = app
                .send(
                    app.request(method.clone(), "/v1/kv/k")
                        .header("If-Match", tag)
                        .body("overwritten"),
                )
                .await;
            assert_eq!(
                response.status(),
                StatusCode::PRECONDITION_FAILED,
                "{why}: {method} If-Match: {tag}"
            );
            if method != Method::HEAD {
                let body: serde_json::Value = response.json().await.expect("a JSON error");
                assert_eq!(body["code"], "version_mismatch", "{why}: {method}");
                assert_eq!(
                    body["current_version"].to_string(),
                    version,
                    "{why}: {method} names the current version"
                );
            }
        }
    }
    assert_eq!(read(&app, "k").await, Ok(b"v1".to_vec()), "nothing changed");
    let (tag, why) = (&current, "the current version itself matches");
    for (method, status) in [
        (Method::GET, StatusCode::OK),
        (Method::HEAD, StatusCode::OK),
        (Method::PUT, StatusCode::OK),
    ] {
        let response = app
            .send(
                app.request(method.clone(), "/v1/kv/k")
                    .header("If-Match", tag)
                    .body("v1"),
            )
            .await;
        assert_eq!(response.status(), status, "{why}: {method}");
    }
}

#[actix_web::test]
async fn get_with_if_match_serves_only_a_listed_current_version() {
    let app = TestApp::spawn().await;
    let old = etag(&app.v1_put("k", "", "v1").await);
    let current = etag(&app.v1_put("k", "", "v2").await);
    let cases = [
        (current.clone(), StatusCode::OK, "the current version"),
        ("*".to_owned(), StatusCode::OK, "any version"),
        (
            format!("{old}, {current}"),
            StatusCode::OK,
            "a list holding it",
        ),
        (
            old.clone(),
            StatusCode::PRECONDITION_FAILED,
            "an older version",
        ),
        (
            format!("W/{current}"),
            StatusCode::PRECONDITION_FAILED,
            "its weak form",
        ),
    ];
    for (if_match, status, why) in cases {
        let response = app
            .send(
                app.request(Method::GET, "/v1/kv/k")
                    .header("If-Match", &if_match),
            )
            .await;
        assert_eq!(response.status(), status, "{why}: If-Match: {if_match}");
    }
    let missing = app
        .send(
            app.request(Method::GET, "/v1/kv/gone")
                .header("If-Match", "*"),
        )
        .await;
    assert_eq!(
        missing.status(),
        StatusCode::NOT_FOUND,
        "preconditions apply only to what would have been a 2xx (RFC 9110 §13.2.1)"
    );
}
