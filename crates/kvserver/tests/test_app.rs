//! The real app on port 0, a client for it, a clock the test moves, and the
//! assertions most tests share. (zero-to-production's `spawn_app`.)
//!
//! The same tests run on both backends: a test whose name starts with
//! `on_etcd::` (the contract modules included again under `on_etcd` in
//! main.rs) gets an app on an etcd member of its own, the others an app on
//! the embedded store.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use kvcore::ManualClock;
use kvserver::{Application, Config};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

/// Where every test's manual clock starts: an ordinary wall-clock time.
const START_MS: u64 = 1_700_000_000_000;

/// A running app and what a test needs to talk to it.
pub struct TestApp {
    /// The listener's address.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, or `https://` with TLS.
    pub base: String,
    /// The store's clock: only [`TestApp::advance`] moves it.
    pub clock: Arc<ManualClock>,
    /// A client that keeps connections open, as real clients do.
    pub client: reqwest::Client,
    /// The etcd member the app stores in, for a test on etcd: kept running
    /// as long as the app, stopped with it.
    #[cfg(feature = "etcd")]
    _etcd: Option<crate::etcd_harness::EtcdCluster>,
}

/// Whether this test runs on etcd: it is one of the contract tests included
/// again under `on_etcd` (libtest names each test's thread after its path).
pub fn on_etcd() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|name| name.starts_with("on_etcd::"))
}

impl TestApp {
    /// Starts the app with the default configuration and a manual clock.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    /// Starts the app on the embedded store, whatever the test's name: for
    /// the few tests of the HTTP layer that a remote backend's timing
    /// changes (each says why).
    pub async fn spawn_embedded() -> TestApp {
        TestApp::spawn_on(false, |_| {}).await
    }

    /// Starts the app after `adjust` changed the configuration.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::spawn_on(on_etcd(), adjust).await
    }

    /// Compacts the etcd member's history up to `revision` (a test on
    /// etcd only): a watch from before it gets etcd's "compacted".
    #[cfg(feature = "etcd")]
    pub fn compact_etcd(&self, revision: u64) {
        let cluster = self._etcd.as_ref().expect("a test on etcd");
        cluster.compact(revision);
    }

    async fn spawn_on(etcd: bool, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let clock = Arc::new(ManualClock::new(START_MS));
        let mut config = Config {
            clock: clock.clone(),
            workers: 2,
            ..Config::default()
        };
        adjust(&mut config);
        #[cfg(feature = "etcd")]
        let etcd = etcd.then(|| {
            use crate::etcd_harness::{EtcdCluster, Timing};
            assert!(
                config.data_dir.is_none(),
                "a contract test on etcd sets no data directory"
            );
            let cluster = EtcdCluster::start(1, Timing::Fast);
            config.storage = cluster.storage();
            cluster
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding port 0");
        let app = Application::build(config, listener).expect("building the app");
        let (addr, base) = (app.local_addr(), app.url());
        actix_web::rt::spawn(app.run_until(std::future::pending()));
        #[cfg(feature = "etcd")]
        let on_etcd = etcd.is_some();
        #[cfg(not(feature = "etcd"))]
        let on_etcd = etcd;
        let app = TestApp {
            addr,
            base,
            clock,
            client: reqwest::Client::new(),
            #[cfg(feature = "etcd")]
            _etcd: etcd,
        };
        // etcd is connected in the background: wait until it serves.
        if on_etcd {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while app.get("/readyz").await.status() != StatusCode::OK {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the app on etcd is not ready"
                );
                actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        app
    }

    /// Lets `ms` milliseconds pass for the store.
    pub fn advance(&self, ms: u64) {
        self.clock.advance(ms);
    }

    /// A request to a path (with its query string) on the app.
    pub fn request(&self, method: Method, path_and_query: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path_and_query}", self.base))
    }

    /// Sends a request and fails the test if the connection fails.
    pub async fn send(&self, request: RequestBuilder) -> Response {
        request.send().await.expect("the server answers")
    }

    /// `GET` a path.
    pub async fn get(&self, path_and_query: &str) -> Response {
        self.send(self.request(Method::GET, path_and_query)).await
    }

    /// `POST /store` with a JSON body, as the seed README does.
    pub async fn seed_create(&self, body: Value) -> Response {
        self.send(self.request(Method::POST, "/store").json(&body))
            .await
    }

    /// `PUT /store` with a JSON body.
    pub async fn seed_update(&self, body: Value) -> Response {
        self.send(self.request(Method::PUT, "/store").json(&body))
            .await
    }

    /// `GET /store?key=K`.
    pub async fn seed_get(&self, key: &str) -> Response {
        self.send(self.request(Method::GET, "/store").query(&[("key", key)]))
            .await
    }

    /// `PUT /v1/kv/{key}` with the key percent-encoded and `query` appended.
    pub async fn v1_put(
        &self,
        key: &str,
        query: &str,
        value: impl Into<reqwest::Body>,
    ) -> Response {
        self.send(self.request(Method::PUT, &v1_path(key, query)).body(value))
            .await
    }

    /// `GET /v1/kv/{key}` with the key percent-encoded.
    pub async fn v1_get(&self, key: &str) -> Response {
        self.get(&v1_path(key, "")).await
    }

    /// `GET /v1/info` as JSON.
    pub async fn info(&self) -> Value {
        json_of(self.get("/v1/info").await, StatusCode::OK, "GET /v1/info").await
    }
}

/// `/v1/kv/{key}{query}` with every byte of the key that is not alphanumeric
/// percent-encoded, `/` included: the server decodes it back.
pub fn v1_path(key: &str, query: &str) -> String {
    format!(
        "/v1/kv/{}{query}",
        utf8_percent_encode(key, NON_ALPHANUMERIC)
    )
}

/// Checks the status and returns the JSON body.
pub async fn json_of(response: Response, status: StatusCode, why: &str) -> Value {
    let actual = response.status();
    let body = response.text().await.expect("reading the body");
    assert_eq!(actual, status, "{why}: body {body}");
    serde_json::from_str(&body)
        .unwrap_or_else(|err| panic!("{why}: body {body:?} is not JSON: {err}"))
}

/// Checks that `response` is the error the contract describes: this status,
/// a JSON body `{"error": <sentence>, "code": code}`, and an error sentence
/// that contains `says`. Returns the body for further checks.
pub async fn assert_error(
    response: Response,
    status: StatusCode,
    code: &str,
    says: &str,
    why: &str,
) -> Value {
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap_or("").to_owned());
    let body = json_of(response, status, why).await;
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "{why}: errors are JSON"
    );
    assert_eq!(body["code"], code, "{why}: code in {body}");
    let sentence = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{why}: \"error\" is not a string in {body}"));
    assert!(
        sentence.contains(says),
        "{why}: the error {sentence:?} should say {says:?}"
    );
    body
}

/// The `ETag` header of a response.
pub fn etag(response: &Response) -> String {
    header(response, "etag").expect("an ETag header")
}

/// A response header as text, if present.
pub fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().expect("a text header").to_owned())
}
