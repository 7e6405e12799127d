//! Bearer-token auth (README, Security): 401 and 403, prefix
//! permissions checked against a reference model, tokens kept out of logs,
//! and the secure default for non-loopback addresses.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use kvserver::auth::{Grant, Level, Tokens, create_token};
use kvserver::{Application, Config};
use proptest::prelude::*;
use reqwest::StatusCode;
use reqwest::blocking::Client;

use crate::server_process::{ServerProcess, exit_of};

/// A server with one token holding `grants`, running on its own thread.
struct AuthServer {
    base: String,
    token: String,
    stop: Option<std::sync::mpsc::Sender<()>>,
}

impl AuthServer {
    fn start(grants: &[Grant], open_metrics: bool) -> AuthServer {
        let (token, line) = create_token("tester", grants).expect("token");
        let tokens = Tokens::parse(&line).expect("the printed line parses");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port 0");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let config = Config {
                    tokens: Some(tokens),
                    open_metrics,
                    workers: 1,
                    ..Config::default()
                };
                let app = Application::build(config, listener).expect("app");
                let shutdown = async move {
                    // Polls the std channel without blocking the runtime.
                    while stopped.try_recv() == Err(std::sync::mpsc::TryRecvError::Empty) {
                        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
                    }
                };
                let _ = app.run_until(shutdown).await;
            });
        });
        AuthServer {
            base,
            token,
            stop: Some(stop),
        }
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        drop(self.stop.take());
    }
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// One request the permission matrix tries.
#[derive(Debug, Clone)]
enum Op {
    SeedGet(String),
    SeedCreate(String),
    SeedUpdate(String),
    SeedDelete(String),
    V1Get(String),
    V1Head(String),
    V1Put(String),
    V1Delete(String),
    /// A key sent with its slashes percent-encoded.
    V1PutEncoded(String),
    List(String),
}

const KEYS: &[&str] = &[
    "app", "app/", "app0", "app/x", "app/x/y", "ap", "b", "b/app/", "",
];
const PREFIXES: &[&str] = &["", "app", "app/", "app/x", "app0", "b", "a"];

fn encode(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl Op {
    fn needs(&self) -> Level {
        match self {
            Op::SeedGet(_) | Op::V1Get(_) | Op::V1Head(_) | Op::List(_) => Level::Read,
            _ => Level::Write,
        }
    }

    fn send(&self, server: &AuthServer, client: &Client) -> StatusCode {
        let base = &server.base;
        let request = match self {
            Op::SeedGet(k) => client.get(format!("{base}/store?key={}", encode(k))),
            Op::SeedCreate(k) => client
                .post(format!("{base}/store"))
                .body(serde_json::json!({"key": k, "value": "v"}).to_string()),
            Op::SeedUpdate(k) => client
                .put(format!("{base}/store"))
                .body(serde_json::json!({"key": k, "value": "v"}).to_string()),
            Op::SeedDelete(k) => client.delete(format!("{base}/store?key={}", encode(k))),
            // Slashes stay literal here, as clients usually send them.
            Op::V1Get(k) => client.get(format!("{base}/v1/kv/{k}")),
            Op::V1Head(k) => client.head(format!("{base}/v1/kv/{k}")),
            Op::V1Put(k) => client.put(format!("{base}/v1/kv/{k}")).body("v"),
            Op::V1Delete(k) => client.delete(format!("{base}/v1/kv/{k}")),
            Op::V1PutEncoded(k) => client.put(format!("{base}/v1/kv/{}", encode(k))).body("v"),
            Op::List(p) => client.get(format!("{base}/v1/kv?prefix={}", encode(p))),
        };
        request
            .bearer_auth(&server.token)
            .send()
            .expect("the server answers")
            .status()
    }
}

/// The reference model: may a token with `grants` do `op`?
fn model_allows(grants: &[Grant], op: &Op) -> bool {
    if let Op::List(prefix) = op {
        return grants.iter().any(|g| prefix.starts_with(&g.prefix));
    }
    let key = match op {
        Op::SeedGet(k)
        | Op::SeedCreate(k)
        | Op::SeedUpdate(k)
        | Op::SeedDelete(k)
        | Op::V1Get(k)
        | Op::V1Head(k)
        | Op::V1Put(k)
        | Op::V1Delete(k)
        | Op::V1PutEncoded(k) => k,
        Op::List(_) => unreachable!("handled above"),
    };
    // The most specific matching prefix decides; of several grants on it,
    // the highest level.
    let matching = || grants.iter().filter(|g| key.starts_with(&g.prefix));
    let longest = matching().map(|g| g.prefix.len()).max();
    let level = matching()
        .filter(|g| Some(g.prefix.len()) == longest)
        .map(|g| g.level)
        .max();
    level.is_some_and(|level| level >= op.needs())
}

fn grant() -> impl Strategy<Value = Grant> {
    (
        prop_oneof![Just(Level::Read), Just(Level::Write), Just(Level::Admin)],
        prop::sample::select(PREFIXES),
    )
        .prop_map(|(level, prefix)| Grant {
            level,
            prefix: prefix.to_owned(),
        })
}

fn op() -> impl Strategy<Value = Op> {
    let key = prop::sample::select(KEYS).prop_map(str::to_owned);
    let prefix = prop::sample::select(PREFIXES).prop_map(str::to_owned);
    prop_oneof![
        key.clone().prop_map(Op::SeedGet),
        key.clone().prop_map(Op::SeedCreate),
        key.clone().prop_map(Op::SeedUpdate),
        key.clone().prop_map(Op::SeedDelete),
        key.clone().prop_map(Op::V1Get),
        key.clone().prop_map(Op::V1Head),
        key.clone().prop_map(Op::V1Put),
        key.clone().prop_map(Op::V1Delete),
        key.prop_map(Op::V1PutEncoded),
        prefix.prop_map(Op::List),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn permission_decisions_match_the_reference_model(
        grants in prop::collection::vec(grant(), 1..4),
        ops in prop::collection::vec(op(), 1..25),
    ) {
        let server = AuthServer::start(&grants, false);
        let client = client();
        for op in &ops {
            let status = op.send(&server, &client);
            let allowed = model_allows(&grants, op);
            prop_assert_ne!(status, StatusCode::UNAUTHORIZED, "{:?}: a valid token is never 401", op);
            prop_assert!(!status.is_server_error(), "{:?}: {}", op, status);
            if allowed {
                prop_assert_ne!(status, StatusCode::FORBIDDEN, "{:?} with {:?} should be allowed", op, grants);
            } else {
                // An empty key is refused as malformed before any permission
                // question comes up; everything else must be a 403.
                let empty_key = matches!(op, Op::V1Get(k) | Op::V1Head(k) | Op::V1Put(k)
                    | Op::V1Delete(k) | Op::V1PutEncoded(k) | Op::SeedGet(k)
                    | Op::SeedCreate(k) | Op::SeedUpdate(k) | Op::SeedDelete(k) if k.is_empty());
                if !empty_key {
                    prop_assert_eq!(status, StatusCode::FORBIDDEN, "{:?} with {:?} should be refused", op, grants);
                }
            }
        }
    }
}

#[test]
fn missing_or_unknown_tokens_get_401_with_a_bearer_challenge() {
    let server = AuthServer::start(&[Grant::parse("admin:").expect("grant")], false);
    let client = client();
    let cases: [(Option<&str>, &str); 3] = [
        (None, "no Authorization header"),
        (Some("Bearer kvs_not_a_real_token"), "unknown token"),
        (Some("Basic dXNlcjpwYXNz"), "not a bearer token"),
    ];
    for (header, why) in cases {
        let mut request = client.get(format!("{}/v1/kv/app", server.base));
        if let Some(header) = header {
            request = request.header("Authorization", header);
        }
        let response = request.send().expect("answer");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{why}");
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap_or("")),
            Some("Bearer"),
            "{why}"
        );
        let body: serde_json::Value = response.json().expect("json");
        assert_eq!(body["code"], "unauthorized", "{why}");
    }
}

#[test]
fn grants_on_the_same_prefix_give_the_higher_level_whatever_their_order() {
    let cases = [
        (["admin:", "read:"], "", Level::Admin, "admin, then read"),
        (["read:", "admin:"], "", Level::Admin, "read, then admin"),
        (
            ["write:app/", "read:app/"],
            "app/x",
            Level::Write,
            "write, then read",
        ),
        (
            ["read:app/", "write:app/"],
            "app/x",
            Level::Write,
            "read, then write",
        ),
    ];
    for (grants, key, level, why) in cases {
        let grants: Vec<Grant> = grants
            .iter()
            .map(|g| Grant::parse(g).expect("grant"))
            .collect();
        let (token, line) = create_token("tied", &grants).expect("token");
        let found = Tokens::parse(&line)
            .expect("the line parses")
            .find(&token)
            .expect("the token matches its line");
        assert_eq!(found.level_on(key), Some(level), "{why}: {line}");
    }

    // Over HTTP: /v1/info needs admin on every key.
    let client = client();
    for grants in [["admin:", "read:"], ["read:", "admin:"]] {
        let grants: Vec<Grant> = grants
            .iter()
            .map(|g| Grant::parse(g).expect("grant"))
            .collect();
        let server = AuthServer::start(&grants, false);
        let status = client
            .get(format!("{}/v1/info", server.base))
            .bearer_auth(&server.token)
            .send()
            .expect("answer")
            .status();
        assert_eq!(status, StatusCode::OK, "/v1/info with {grants:?}");
    }
}

#[test]
fn the_bearer_scheme_is_matched_without_regard_to_case() {
    let server = AuthServer::start(&[Grant::parse("admin:").expect("grant")], false);
    let client = client();
    let token = &server.token;
    let cases = [
        (
            format!("Bearer {token}"),
            StatusCode::OK,
            "the usual spelling",
        ),
        (format!("bearer {token}"), StatusCode::OK, "lower case"),
        (format!("BEARER {token}"), StatusCode::OK, "upper case"),
        (format!("bEaReR {token}"), StatusCode::OK, "mixed case"),
        (
            format!("Bearer   {token}"),
            StatusCode::OK,
            "several spaces",
        ),
        (
            format!("Bearer{token}"),
            StatusCode::UNAUTHORIZED,
            "no space",
        ),
        ("bearer".to_owned(), StatusCode::UNAUTHORIZED, "no token"),
        (
            "bearer   ".to_owned(),
            StatusCode::UNAUTHORIZED,
            "only spaces",
        ),
        (
            format!("Bearerx {token}"),
            StatusCode::UNAUTHORIZED,
            "another scheme",
        ),
    ];
    for (header, status, why) in cases {
        let response = client
            .get(format!("{}/v1/info", server.base))
            .header("Authorization", header)
            .send()
            .expect("answer");
        assert_eq!(response.status(), status, "{why}");
    }
}

#[test]
fn a_token_in_the_query_string_is_refused_even_when_valid() {
    let server = AuthServer::start(&[Grant::parse("admin:").expect("grant")], false);
    let client = client();
    for name in ["token", "access_token", "TOKEN"] {
        let response = client
            .get(format!(
                "{}/store?key=a&{name}={}",
                server.base, server.token
            ))
            .bearer_auth(&server.token)
            .send()
            .expect("answer");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{name}");
    }
}

#[actix_web::test]
async fn a_token_in_the_query_string_is_refused_without_auth_too() {
    let app = crate::test_app::TestApp::spawn().await;
    for path in [
        "/store?key=a&token=x",
        "/v1/kv/a?access_token=x",
        "/v1/kv?TOKEN=x",
    ] {
        crate::test_app::assert_error(
            app.get(path).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "not accepted in the query string",
            path,
        )
        .await;
    }
}

#[test]
fn two_authorization_headers_are_refused() {
    let server = AuthServer::start(&[Grant::parse("admin:").expect("grant")], false);
    let response = client()
        .get(format!("{}/v1/kv/a", server.base))
        .header("Authorization", format!("Bearer {}", server.token))
        .header("Authorization", "Bearer kvs_other")
        .send()
        .expect("answer");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().expect("a JSON error");
    assert_eq!(body["code"], "invalid_request", "{body}");
}

#[test]
fn two_auth_file_lines_with_the_same_token_hash_are_refused() {
    let (_, line) = create_token("t", &[Grant::parse("read:").expect("grant")]).expect("token");
    let twin = line.replacen("t ", "u ", 1).replace("read:", "admin:");
    let (dir, path) = auth_file(&[line, twin], 0o600);
    let mut command = Command::new(env!("CARGO_BIN_EXE_kvserver"));
    command
        .args(["--addr", "127.0.0.1:0", "--auth-file"])
        .arg(&path);
    let (status, stderr) = exit_of(command);
    assert!(!status.success());
    assert!(stderr.contains("same hash"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn health_and_readiness_are_open_and_metrics_and_info_need_admin() {
    let reader = AuthServer::start(&[Grant::parse("read:").expect("grant")], false);
    let client = client();
    for path in ["/healthz", "/readyz"] {
        let status = client
            .get(format!("{}{path}", reader.base))
            .send()
            .expect("answer")
            .status();
        assert_eq!(status, StatusCode::OK, "{path} needs no token");
    }
    for path in ["/metrics", "/v1/info"] {
        let bare = client
            .get(format!("{}{path}", reader.base))
            .send()
            .expect("answer");
        assert_eq!(
            bare.status(),
            StatusCode::UNAUTHORIZED,
            "{path} without a token"
        );
        let read_only = client
            .get(format!("{}{path}", reader.base))
            .bearer_auth(&reader.token)
            .send()
            .expect("answer");
        assert_eq!(
            read_only.status(),
            StatusCode::FORBIDDEN,
            "{path} with a read token"
        );
    }
    let admin = AuthServer::start(&[Grant::parse("admin:").expect("grant")], false);
    for path in ["/metrics", "/v1/info"] {
        let response = client
            .get(format!("{}{path}", admin.base))
            .bearer_auth(&admin.token)
            .send()
            .expect("answer");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{path} with an admin token"
        );
    }
    let open = AuthServer::start(&[Grant::parse("read:x").expect("grant")], true);
    for path in ["/metrics", "/v1/info"] {
        let status = client
            .get(format!("{}{path}", open.base))
            .send()
            .expect("answer")
            .status();
        assert_eq!(status, StatusCode::OK, "{path} with --open-metrics");
    }
}

/// A token file in a fresh directory, with the given mode.
pub fn auth_file(lines: &[String], mode: u32) -> (std::path::PathBuf, std::path::PathBuf) {
    // Tests run in parallel: each file gets a directory of its own.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "kvserver-auth-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("tokens");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    (dir, path)
}

#[test]
fn no_token_or_hash_appears_in_the_log_even_at_trace_level() {
    let (writer, writer_line) =
        create_token("writer", &[Grant::parse("write:app/").expect("grant")]).expect("token");
    let (admin, admin_line) =
        create_token("admin", &[Grant::parse("admin:").expect("grant")]).expect("token");
    let (dir, path) = auth_file(&[writer_line.clone(), admin_line.clone()], 0o600);
    let server = ServerProcess::start("trace", &["--auth-file", path.to_str().expect("utf8")]);
    let base = format!("http://{}", server.addr);
    let client = client();
    let forged = "kvs_forged_token_that_is_not_in_the_file";
    for token in [writer.as_str(), admin.as_str(), forged] {
        let _ = client
            .put(format!("{base}/v1/kv/app/k"))
            .bearer_auth(token)
            .body("secret-value")
            .send();
        let _ = client
            .get(format!("{base}/v1/kv/app/k"))
            .bearer_auth(token)
            .send();
        let _ = client
            .get(format!("{base}/metrics"))
            .bearer_auth(token)
            .send();
        let _ = client
            .get(format!("{base}/store?key=app/k&token={token}"))
            .send();
        let _ = client
            .post(format!("{base}/store"))
            .bearer_auth(token)
            .body(r#"{"key":"app/j","value":"secret-value"}"#)
            .send();
    }
    server.signal("TERM");
    let (status, log) = server.wait_for_exit();
    assert!(status.success());
    let log = log.join("\n");
    assert!(log.contains("/v1/kv/app/k"), "requests were logged at all");
    let hash = |line: &str| line.split_whitespace().nth(1).expect("hash").to_owned();
    for secret in [
        writer,
        admin,
        forged.to_owned(),
        hash(&writer_line),
        hash(&admin_line),
    ] {
        assert!(!log.contains(&secret), "the log contains {secret}");
    }
    assert!(!log.contains("secret-value"), "the log contains a value");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_non_loopback_address_without_auth_refuses_to_start_naming_both_ways_out() {
    let output = Command::new(env!("CARGO_BIN_EXE_kvserver"))
        .args(["--addr", "0.0.0.0:0"])
        .env_remove("KV_AUTH_FILE")
        .env_remove("KV_ALLOW_UNAUTHENTICATED")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--auth-file"), "{stderr}");
    assert!(stderr.contains("--allow-unauthenticated"), "{stderr}");
}

#[test]
fn an_auth_file_other_users_can_read_or_write_is_refused() {
    let (_, line) = create_token("t", &[Grant::parse("read:").expect("grant")]).expect("token");
    for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o622] {
        let (dir, path) = auth_file(std::slice::from_ref(&line), mode);
        let mut command = Command::new(env!("CARGO_BIN_EXE_kvserver"));
        command
            .args(["--addr", "127.0.0.1:0", "--auth-file"])
            .arg(&path);
        let (status, stderr) = exit_of(command);
        assert!(!status.success(), "mode {mode:o}");
        assert!(stderr.contains("chmod 600"), "mode {mode:o}: {stderr}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn token_create_prints_a_token_and_a_line_the_server_accepts() {
    let output = Command::new(env!("CARGO_BIN_EXE_kvserver"))
        .args([
            "token",
            "create",
            "--name",
            "app",
            "--allow",
            "write:app/",
            "--allow",
            "read:",
        ])
        .output()
        .expect("runs");
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).expect("utf8");
    let mut lines = stdout.lines();
    let (token, line) = (lines.next().expect("token"), lines.next().expect("line"));
    let tokens = Tokens::parse(line).expect("the line parses");
    let found = tokens.find(token).expect("the token matches its line");
    assert_eq!(found.level_on("app/x"), Some(Level::Write));
    assert_eq!(found.level_on("other"), Some(Level::Read));
}
