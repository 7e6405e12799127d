//! Fuzzing of request parsing (issue 12): keys, TTLs, ETags, JSON bodies,
//! the Authorization header and the auth file, each a proptest over
//! generated inputs against the real app on port 0 (the toolchain is stable
//! only, so no cargo-fuzz). Every case is bounded, so the whole module runs
//! in CI with the other tests. What each property holds: no 5xx, every
//! error is `{"error", "code"}` JSON, and what was accepted reads back
//! exactly as the input meant it.
//!
//! The store's clock is the manual one of [`TestApp`], so TTLs are compared
//! to the millisecond with no slack: no time passes between write and read.

use std::future::Future;

use actix_web::rt::{System, SystemRunner};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseResult, TestRunner};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::test_app::TestApp;

/// The Authorization header and the auth file.
mod auth;
/// Seed API bodies: any JSON, any bytes.
mod bodies;
/// If-Match and If-None-Match of every shape.
mod etags;
/// Keys of any shape, and keys that are not UTF-8.
mod keys;
/// TTLs in the query and in JSON, to the millisecond.
mod ttls;

/// The default `max_key_bytes`.
const KEY_LIMIT: usize = 1024;

/// The error codes the product contract names (section 4 of PRODUCT.md,
/// kept outside this repository): the README's Errors list, plus
/// `compacted` and `insufficient_storage`, which kvserver does not send yet.
const CODES: &[&str] = &[
    "not_found",
    "already_exists",
    "version_mismatch",
    "invalid_request",
    "payload_too_large",
    "unauthorized",
    "forbidden",
    "unavailable",
    "compacted",
    "insufficient_storage",
    "internal",
];

/// One app, started once for a property and shared by its cases, and a
/// runtime to drive each case's requests on.
struct Fuzz {
    system: SystemRunner,
    /// Leaked, so each case's future may borrow it: the app runs until the
    /// test binary exits anyway.
    app: &'static TestApp,
}

impl Fuzz {
    fn start(adjust: impl FnOnce(&mut kvserver::Config)) -> Fuzz {
        let system = System::new();
        let app = Box::leak(Box::new(system.block_on(TestApp::spawn_with(adjust))));
        Fuzz { system, app }
    }

    /// Runs `property` on `cases` inputs from `strategy`; a failure panics
    /// with the minimal input proptest shrank it to.
    fn check<S, F>(
        &self,
        cases: u32,
        strategy: S,
        property: impl Fn(&'static TestApp, S::Value) -> F,
    ) where
        S: Strategy,
        F: Future<Output = TestCaseResult>,
    {
        run_cases(cases, strategy, |input| {
            self.system.block_on(property(self.app, input))
        });
    }
}

/// Runs a property without a server.
fn run_cases<S: Strategy>(cases: u32, strategy: S, property: impl Fn(S::Value) -> TestCaseResult) {
    let config = ProptestConfig {
        cases,
        // The shrunk input is in the panic message; nothing to persist.
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if let Err(failure) = TestRunner::new(config).run(&strategy, property) {
        panic!("{failure}");
    }
}

/// A response read whole.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    async fn of(request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the server answers");
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.bytes().await.expect("reading the body").to_vec(),
        }
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|value| value.to_str().expect("a text header").to_owned())
    }

    fn json(&self, why: &str) -> Result<Value, TestCaseError> {
        serde_json::from_slice(&self.body).map_err(|err| {
            TestCaseError::fail(format!(
                "{why}: {} body {:?} is not JSON: {err}",
                self.status,
                String::from_utf8_lossy(&self.body)
            ))
        })
    }

    /// Fails unless this is a 4xx whose body is `{"error": <text>, "code":
    /// <a code of the contract>}`.
    fn refusal(&self, why: &str) -> TestCaseResult {
        prop_assert!(
            self.status.is_client_error(),
            "{}: expected a 4xx, got {} {:?}",
            why,
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        self.error_body(why)
    }

    /// Fails on a 5xx, and on an error without the contract's JSON body.
    fn no_server_error(&self, why: &str) -> TestCaseResult {
        prop_assert!(
            !self.status.is_server_error(),
            "{}: {} {:?}",
            why,
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        if self.status.is_client_error() {
            self.error_body(why)?;
        }
        Ok(())
    }

    fn error_body(&self, why: &str) -> TestCaseResult {
        let content_type = self.header("content-type");
        prop_assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "{}: errors are JSON",
            why
        );
        let body = self.json(why)?;
        prop_assert!(
            body["error"].is_string(),
            "{}: no error sentence in {}",
            why,
            body
        );
        let code = body["code"].as_str().unwrap_or_default();
        prop_assert!(
            CODES.contains(&code),
            "{}: code {:?} in {}",
            why,
            code,
            body
        );
        Ok(())
    }
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

/// Whether kvserver must store `key`: non-empty, within the key limit, and
/// not `.` or `..` (README, The REST API: kvserver refuses to create them).
fn storable(key: &str) -> bool {
    !key.is_empty() && key.len() <= KEY_LIMIT && key != "." && key != ".."
}
