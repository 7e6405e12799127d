//! `GET /v1/watch` (README, Watching changes): Server-Sent Events with the
//! revision as `id:`, `Last-Event-ID` resuming exactly, 410 `compacted`,
//! read permission on the whole prefix, keep-alive comments, metrics, and
//! a graceful shutdown that ends the streams at once.

use std::time::{Duration, Instant};

use kvserver::auth::{Grant, Tokens, create_token};
use kvserver::{Application, Config};
use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::test_app::{TestApp, assert_error, header};

/// One parsed SSE message: its fields, or a comment.
#[derive(Debug, Clone, PartialEq)]
enum Message {
    Event { id: u64, kind: String, data: Value },
    Comment(String),
}

/// Reads an SSE response message by message.
pub(crate) struct Sse {
    response: Response,
    buffer: String,
    /// The last `id:` sent without data (a watch from now says where it
    /// starts that way); `next` takes such messages in passing.
    resume: Option<u64>,
}

impl Sse {
    pub(crate) async fn open(response: Response) -> Sse {
        assert_eq!(response.status(), StatusCode::OK, "the stream opens");
        assert_eq!(
            header(&response, "content-type").as_deref(),
            Some("text/event-stream")
        );
        Sse {
            response,
            buffer: String::new(),
            resume: None,
        }
    }

    /// The next message, or `None` once the stream has ended; fails the
    /// test after 10 s without one.
    async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let text: String = self.buffer.drain(..end + 2).collect();
                let text = text.trim_end();
                if let Some(id) = text.strip_prefix("id: ").filter(|id| !id.contains('\n')) {
                    self.resume = Some(id.parse().expect("a numeric id"));
                    continue;
                }
                return Some(parse(text));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("a message within 10 s")
                .expect("reading the stream");
            match chunk {
                Some(bytes) => self
                    .buffer
                    .push_str(std::str::from_utf8(&bytes).expect("UTF-8")),
                None => return None,
            }
        }
    }

    /// The next event, skipping comments.
    pub(crate) async fn event(&mut self) -> (u64, String, Value) {
        loop {
            match self.next().await.expect("the stream goes on") {
                Message::Event { id, kind, data } => return (id, kind, data),
                Message::Comment(_) => {}
            }
        }
    }
}

fn parse(text: &str) -> Message {
    if let Some(comment) = text.strip_prefix(": ") {
        assert!(!comment.contains('\n'), "one comment line: {text:?}");
        return Message::Comment(comment.to_owned());
    }
    let mut id = None;
    let mut kind = None;
    let mut data = None;
    for line in text.lines() {
        let (field, value) = line.split_once(": ").expect("field: value");
        match field {
            "id" => id = Some(value.parse().expect("a numeric id")),
            "event" => kind = Some(value.to_owned()),
            "data" => data = Some(serde_json::from_str(value).expect("JSON data")),
            other => panic!("unexpected field {other:?} in {text:?}"),
        }
    }
    Message::Event {
        id: id.expect("an id"),
        kind: kind.expect("an event name"),
        data: data.expect("data"),
    }
}

async fn put(app: &TestApp, key: &str, value: impl Into<reqwest::Body>) -> u64 {
    let response = app.v1_put(key, "", value).await;
    assert!(
        response.status().is_success(),
        "{key}: {}",
        response.status()
    );
    let etag = header(&response, "etag").expect("an ETag");
    etag.trim_matches('"').parse().expect("a numeric ETag")
}

#[actix_web::test]
async fn changes_under_the_prefix_arrive_as_events_with_the_revision_as_id() {
    let app = TestApp::spawn().await;
    let mut stream = Sse::open(app.get("/v1/watch?prefix=app/").await).await;
    assert!(
        matches!(stream.next().await, Some(Message::Comment(_))),
        "the stream opens with a comment, so the client sees it start"
    );
    let v1 = put(&app, "app/a", "on").await;
    put(&app, "other", "x").await;
    let v2 = put(&app, "app/bin", vec![0xffu8, 0]).await;
    let deleted = app
        .send(app.request(reqwest::Method::DELETE, "/v1/kv/app%2Fa"))
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let (id, kind, data) = stream.event().await;
    assert_eq!((id, kind.as_str()), (v1, "put"));
    assert_eq!(
        data,
        serde_json::json!({"revision": v1, "key": "app/a", "kind": "put", "value": "on"})
    );
    let (id, _, data) = stream.event().await;
    assert_eq!(id, v2, "the other prefix is left out");
    assert_eq!(data["value"], "/wA=");
    assert_eq!(data["encoding"], "base64", "binary values as base64");
    let (id, kind, data) = stream.event().await;
    assert_eq!((id, kind.as_str()), (v2 + 1, "delete"));
    assert_eq!(data.get("value"), None, "a delete has no value");
}

#[actix_web::test]
async fn an_expiry_is_an_event_once_the_server_notices_it() {
    let app = TestApp::spawn().await;
    let mut stream = Sse::open(app.get("/v1/watch").await).await;
    let v1 = app.v1_put("session", "?ttl=1s", "x").await;
    assert_eq!(v1.status(), StatusCode::CREATED);
    let (_, kind, data) = stream.event().await;
    assert_eq!(kind, "put");
    assert_eq!(data["ttl_ms"], 1000);
    app.advance(1001);
    // A read notices the expiry (the background pass would too).
    assert_eq!(app.v1_get("session").await.status(), StatusCode::NOT_FOUND);
    let (_, kind, data) = stream.event().await;
    assert_eq!(
        (kind.as_str(), &data["key"]),
        ("expire", &Value::from("session"))
    );
}

#[actix_web::test]
async fn keys_that_expire_together_are_events_with_ids_of_their_own() {
    let app = TestApp::spawn().await;
    let mut stream = Sse::open(app.get("/v1/watch?prefix=batch/").await).await;
    // Written at one instant of the store's clock: the same deadline to
    // the millisecond.
    let keys: Vec<String> = (0..5).map(|i| format!("batch/{i}")).collect();
    for key in &keys {
        let written = app.v1_put(key, "?ttl=1s", "x").await;
        assert_eq!(written.status(), StatusCode::CREATED);
        assert_eq!(stream.event().await.1, "put");
    }
    app.advance(1001);
    // Nobody reads them: the background pass (embedded) or the keys' etcd
    // leases (on etcd) remove them. Each removal is a revision and an id of
    // its own, so Last-Event-ID can resume between any two of them.
    let mut expired = Vec::new();
    let mut last_id = 0;
    for _ in &keys {
        let (id, kind, data) = stream.event().await;
        assert_eq!(kind, "expire", "{data}");
        assert!(id > last_id, "ids grow strictly: {id} after {last_id}");
        assert_eq!(data["revision"], id, "the id is the event's revision");
        last_id = id;
        expired.push(data["key"].as_str().expect("a key").to_owned());
    }
    expired.sort();
    assert_eq!(expired, keys);
}

#[actix_web::test]
async fn a_watch_catches_up_on_a_history_of_large_values() {
    let app = TestApp::spawn().await;
    // 6 MiB of values: on etcd, more than one answer of the history held
    // under gRPC's default limit of 4 MiB, which ended such a watch at once.
    let value = "x".repeat(1024 * 1024);
    let mut revisions = Vec::new();
    for i in 0..6 {
        revisions.push(put(&app, &format!("big/{i}"), value.clone()).await);
    }
    let mut stream = Sse::open(app.get("/v1/watch?prefix=big/&from=0").await).await;
    for revision in revisions {
        let (id, kind, data) = stream.event().await;
        assert_eq!((id, kind.as_str()), (revision, "put"));
        assert_eq!(data["value"].as_str().map(str::len), Some(value.len()));
    }
}

/// A watch from now sends, after its opening comment, an `id:` without
/// data: the revision it starts after. A client that loses the stream
/// before any event resumes from there and misses nothing written in
/// between (from a later "now" it would).
#[actix_web::test]
async fn a_watch_from_now_says_where_it_starts_so_a_reconnect_misses_nothing() {
    let app = TestApp::spawn().await;
    let before = put(&app, "app/before", "0").await;
    let mut stream = Sse::open(app.get("/v1/watch?prefix=app/").await).await;
    assert!(
        matches!(stream.next().await, Some(Message::Comment(_))),
        "the opening comment"
    );
    // The id arrives before any event: ask for one more message than there
    // is, with a keep-alive or an event to come (the put below).
    let during = put(&app, "app/during", "1").await;
    assert_eq!(stream.event().await.0, during);
    let start = stream.resume.expect("an id sent before any event");
    assert!(
        (before..during).contains(&start),
        "it starts after {before} and before {during}: {start}"
    );
    drop(stream);
    let missed = put(&app, "app/missed", "2").await;
    let resumed = app
        .send(
            app.request(reqwest::Method::GET, "/v1/watch?prefix=app/")
                .header("Last-Event-ID", start.to_string()),
        )
        .await;
    let mut stream = Sse::open(resumed).await;
    assert_eq!(
        stream.event().await.0,
        during,
        "resumed after where it started"
    );
    assert_eq!(
        stream.event().await.0,
        missed,
        "and nothing written since is lost"
    );
}

#[actix_web::test]
async fn last_event_id_resumes_exactly_after_that_revision() {
    let app = TestApp::spawn().await;
    let mut revisions = Vec::new();
    for i in 0..5 {
        revisions.push(put(&app, &format!("k{i}"), "v").await);
    }
    let resumed = app
        .send(
            app.request(reqwest::Method::GET, "/v1/watch?from=0")
                .header("Last-Event-ID", revisions[2].to_string()),
        )
        .await;
    let mut stream = Sse::open(resumed).await;
    assert_eq!(
        stream.event().await.0,
        revisions[3],
        "Last-Event-ID wins over from"
    );
    assert_eq!(stream.event().await.0, revisions[4]);
    let mut from_query = Sse::open(app.get("/v1/watch?from=0").await).await;
    assert_eq!(
        from_query.event().await.0,
        revisions[0],
        "from=0: the whole history"
    );
}

/// A revision the embedded store has not reached was seen before a restart
/// that lost it (in memory, or the last second of a crash under
/// `everysec`): its numbers will be given to other changes, so resuming
/// from it would skip them silently. (etcd waits for a future revision, as
/// its own watch does: its revisions are never lost.)
#[actix_web::test]
async fn a_revision_the_embedded_store_has_not_reached_is_410_compacted() {
    let app = TestApp::spawn_embedded().await;
    let latest = put(&app, "k", "v").await;
    for request in [
        app.request(reqwest::Method::GET, "/v1/watch")
            .header("Last-Event-ID", (latest + 100).to_string()),
        app.request(
            reqwest::Method::GET,
            &format!("/v1/watch?from={}", latest + 1),
        ),
    ] {
        let body = assert_error(
            app.send(request).await,
            StatusCode::GONE,
            "compacted",
            "past this server's latest: it restarted without the changes it had",
            "a revision after the latest",
        )
        .await;
        assert_eq!(body["oldest_revision"], 0, "{body}");
    }
    let mut stream = Sse::open(app.get(&format!("/v1/watch?from={latest}")).await).await;
    let next = put(&app, "k", "w").await;
    assert_eq!(
        stream.event().await.0,
        next,
        "the latest revision itself is fine"
    );
}

#[actix_web::test]
async fn a_revision_the_history_no_longer_holds_is_410_compacted() {
    let app = TestApp::spawn_with(|config| config.watch_history = 2).await;
    let mut versions = Vec::new();
    for i in 0..5 {
        versions.push(put(&app, &format!("k{i}"), "v").await);
    }
    // The embedded store keeps the last 2 changes; etcd keeps what was not
    // compacted away.
    #[cfg(feature = "etcd")]
    if crate::test_app::on_etcd() {
        app.compact_etcd(versions[3]);
    }
    let body = assert_error(
        app.get(&format!("/v1/watch?from={}", versions[0])).await,
        StatusCode::GONE,
        "compacted",
        "no longer kept",
        "from an old revision",
    )
    .await;
    assert_eq!(
        body["oldest_revision"], versions[2],
        "the changes of the last two puts are kept"
    );
    let mut stream = Sse::open(app.get(&format!("/v1/watch?from={}", versions[2])).await).await;
    assert_eq!(
        stream.event().await.0,
        versions[3],
        "from the oldest it named"
    );
}

#[actix_web::test]
async fn head_answers_like_get_without_the_stream() {
    let app = TestApp::spawn_with(|config| config.watch_history = 2).await;
    let head = app
        .send(app.request(reqwest::Method::HEAD, "/v1/watch?prefix=k"))
        .await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        crate::test_app::header(&head, "content-type").as_deref(),
        Some("text/event-stream")
    );
    assert!(head.bytes().await.expect("no body").is_empty());

    let mut versions = Vec::new();
    for i in 0..5 {
        versions.push(put(&app, &format!("k{i}"), "v").await);
    }
    #[cfg(feature = "etcd")]
    if crate::test_app::on_etcd() {
        app.compact_etcd(versions[3]);
    }
    // The history is trimmed by the pass that hands events to watchers
    // while one (the HEAD's above, gone since) is counted: HEAD says 410
    // once that pass ran, and GET says the same.
    let compacted = format!("/v1/watch?from={}", versions[0]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let head = app
            .send(app.request(reqwest::Method::HEAD, &compacted))
            .await;
        if head.status() == StatusCode::GONE {
            break;
        }
        assert_eq!(head.status(), StatusCode::OK);
        assert!(std::time::Instant::now() < deadline, "HEAD never said 410");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        app.get(&compacted).await.status(),
        StatusCode::GONE,
        "GET says the same"
    );
    let head = app
        .send(app.request(reqwest::Method::HEAD, "/v1/watch?from=x"))
        .await;
    assert_eq!(head.status(), StatusCode::BAD_REQUEST, "a malformed from");
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics.lines().any(|line| line == "kv_watchers 0"),
        "HEAD opens no stream:\n{metrics}"
    );
}

#[actix_web::test]
async fn malformed_watch_requests_are_400() {
    let app = TestApp::spawn().await;
    let cases = [
        ("/v1/watch?from=x", None, "from must be a revision"),
        ("/v1/watch?from=-1", None, "from must be a revision"),
        ("/v1/watch?since=1", None, "unknown query parameter"),
        ("/v1/watch", Some("abc"), "Last-Event-ID must be a revision"),
    ];
    for (path, last_event_id, says) in cases {
        let mut request = app.request(reqwest::Method::GET, path);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        assert_error(
            app.send(request).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            says,
            path,
        )
        .await;
    }
}

/// On etcd a watch from a revision no one has reached waits for it (etcd's
/// own watch does, its revisions are never lost), even from the largest
/// numbers; the embedded store answers 410 (see
/// `a_revision_the_embedded_store_has_not_reached_is_410_compacted`).
#[actix_web::test]
async fn a_watch_from_beyond_every_revision_waits_for_it_on_etcd_and_is_410_embedded() {
    let app =
        TestApp::spawn_with(|config| config.watch_keepalive = Duration::from_millis(50)).await;
    for from in [u64::MAX, i64::MAX as u64] {
        let response = app.get(&format!("/v1/watch?from={from}")).await;
        if !crate::test_app::on_etcd() {
            assert_error(
                response,
                StatusCode::GONE,
                "compacted",
                "no longer kept",
                "embedded",
            )
            .await;
            continue;
        }
        let mut stream = Sse::open(response).await;
        stream.next().await;
        put(&app, "k", "v").await;
        assert_eq!(
            stream.next().await,
            Some(Message::Comment("keep-alive".into())),
            "from {from}: no event, no end, only keep-alives"
        );
    }
}

#[actix_web::test]
async fn a_quiet_stream_gets_keep_alive_comments() {
    let app =
        TestApp::spawn_with(|config| config.watch_keepalive = Duration::from_millis(50)).await;
    let mut stream = Sse::open(app.get("/v1/watch").await).await;
    stream.next().await;
    assert_eq!(
        stream.next().await,
        Some(Message::Comment("keep-alive".into()))
    );
}

#[actix_web::test]
async fn watch_metrics_count_open_streams_and_events_sent() {
    let app = TestApp::spawn_with(|config| {
        config.open_metrics = true;
        // A client that went away is noticed when the next write to it
        // fails: an event or a keep-alive.
        config.watch_keepalive = Duration::from_millis(100);
    })
    .await;
    let metric = |text: &str, name: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    };
    let mut stream = Sse::open(app.get("/v1/watch").await).await;
    put(&app, "k", "v").await;
    stream.event().await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(metric(&text, "kv_watchers"), 1.0);
    assert_eq!(metric(&text, "kv_watch_events_sent_total"), 1.0);
    assert_eq!(metric(&text, "kv_watchers_cut_off_total"), 0.0);
    drop(stream);
    let started = Instant::now();
    loop {
        let text = app.get("/metrics").await.text().await.unwrap();
        if metric(&text, "kv_watchers") == 0.0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a closed stream is no longer counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A server with one token, stopped by the returned sender.
async fn server_with(
    config: Config,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    actix_web::rt::task::JoinHandle<()>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let app = Application::build(config, listener).unwrap();
    let base = app.url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = actix_web::rt::spawn(async move {
        let _ = app
            .run_until(async move {
                let _ = stopped.await;
            })
            .await;
    });
    (base, stop, running)
}

#[actix_web::test]
async fn watching_needs_read_permission_on_the_whole_prefix() {
    let grants = [Grant::parse("read:app/").unwrap()];
    let (token, line) = create_token("watcher", &grants).unwrap();
    let config = Config {
        tokens: Some(Tokens::parse(&line).unwrap()),
        workers: 1,
        ..Config::default()
    };
    let (base, _stop, _running) = server_with(config).await;
    let client = reqwest::Client::new();
    let watch = |prefix: &str| {
        client
            .get(format!("{base}/v1/watch?prefix={prefix}"))
            .bearer_auth(&token)
            .send()
    };
    assert_error(
        watch("").await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
        "",
        "every key: more than the token may read",
    )
    .await;
    assert_error(
        watch("ap").await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
        "",
        "a prefix wider than the grant",
    )
    .await;
    Sse::open(watch("app/config/").await.unwrap()).await;
    let anonymous = client.get(format!("{base}/v1/watch")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_graceful_shutdown_ends_watch_streams_at_once() {
    let config = Config {
        workers: 1,
        shutdown_timeout: Duration::from_secs(30),
        ..Config::default()
    };
    let (base, stop, running) = server_with(config).await;
    let response = reqwest::get(format!("{base}/v1/watch")).await.unwrap();
    let mut stream = Sse::open(response).await;
    stream.next().await;
    let started = Instant::now();
    stop.send(()).unwrap();
    let mut said_why = false;
    while let Some(message) = stream.next().await {
        said_why |= matches!(&message, Message::Comment(text) if text.contains("shutting down"));
    }
    assert!(said_why, "the last comment says why the stream ends");
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the server stops without waiting out its 30 s timeout")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "ended promptly, not after the shutdown timeout"
    );
}
