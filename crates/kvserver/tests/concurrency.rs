//! Many clients at once: compare-and-swap read-modify-write loops and racing
//! creates. Every write is atomic; a lost update would show in the count.

use futures_util::future::{join, join_all};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::test_app::{TestApp, etag};

const WRITERS: usize = 8;
const INCREMENTS_EACH: usize = 25;

/// One writer's tally.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    increments: usize,
    conflicts: usize,
}

/// Reads the counter, writes it plus one with `If-Match`, and on 412 reads
/// again, until `INCREMENTS_EACH` increments went through.
async fn increment_loop(app: &TestApp) -> Tally {
    let mut tally = Tally::default();
    let mut attempts = 0;
    while tally.increments < INCREMENTS_EACH {
        attempts += 1;
        assert!(attempts < 100_000, "no progress: {tally:?}");
        let current = app.v1_get("counter").await;
        assert_eq!(current.status(), StatusCode::OK);
        let tag = etag(&current);
        let value: u64 = current
            .text()
            .await
            .expect("a body")
            .parse()
            .expect("a number");
        let written = app
            .send(
                app.request(Method::PUT, "/v1/kv/counter")
                    .header("If-Match", tag)
                    .body((value + 1).to_string()),
            )
            .await;
        match written.status() {
            StatusCode::OK => tally.increments += 1,
            StatusCode::PRECONDITION_FAILED => tally.conflicts += 1,
            other => panic!("an If-Match write answered {other}"),
        }
    }
    tally
}

#[actix_web::test]
async fn concurrent_if_match_read_modify_write_loops_never_lose_an_increment() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.v1_put("counter", "", "0").await.status(),
        StatusCode::CREATED
    );

    let tallies = join_all((0..WRITERS).map(|_| increment_loop(&app))).await;

    let increments: usize = tallies.iter().map(|tally| tally.increments).sum();
    let conflicts: usize = tallies.iter().map(|tally| tally.conflicts).sum();
    let last = app.v1_get("counter").await.text().await.expect("a body");
    assert_eq!(
        last,
        increments.to_string(),
        "the counter equals the successful increments ({conflicts} conflicts)"
    );
    assert_eq!(increments, WRITERS * INCREMENTS_EACH);
    assert!(
        conflicts > 0,
        "{WRITERS} interleaved writers should have met at least one conflict"
    );
}

#[actix_web::test]
async fn two_writers_holding_the_same_etag_cannot_both_win() {
    let app = TestApp::spawn().await;
    let tag = etag(&app.v1_put("k", "", "base").await);
    let write = |value: &'static str| {
        app.send(
            app.request(Method::PUT, "/v1/kv/k")
                .header("If-Match", tag.clone())
                .body(value),
        )
    };
    let (first, second) = join(write("first"), write("second")).await;
    let mut statuses = [first.status(), second.status()];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::PRECONDITION_FAILED],
        "exactly one swap succeeds"
    );
}

#[actix_web::test]
async fn racing_creates_have_exactly_one_winner() {
    let app = TestApp::spawn().await;
    const RACERS: usize = 16;

    let v1 = join_all((0..RACERS).map(|i| {
        app.send(
            app.request(Method::PUT, "/v1/kv/v1-race")
                .header("If-None-Match", "*")
                .body(i.to_string()),
        )
    }))
    .await;
    let created = v1
        .iter()
        .filter(|r| r.status() == StatusCode::CREATED)
        .count();
    let refused = v1
        .iter()
        .filter(|r| r.status() == StatusCode::PRECONDITION_FAILED)
        .count();
    assert_eq!((created, refused), (1, RACERS - 1), "If-None-Match: *");

    let seed = join_all(
        (0..RACERS).map(|i| app.seed_create(json!({"key": "seed-race", "value": i.to_string()}))),
    )
    .await;
    let created = seed
        .iter()
        .filter(|r| r.status() == StatusCode::CREATED)
        .count();
    let refused = seed
        .iter()
        .filter(|r| r.status() == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, refused), (1, RACERS - 1), "POST /store");
}
