//! HTTPS with `--tls-cert` and `--tls-key` (README, Security): a client
//! that trusts the server's CA gets the whole API; one that trusts another
//! CA, or asks for another host name, is refused; plain HTTP gets nothing;
//! certificate mistakes stop the server at start-up, naming the file.
//! Certificates are made here with rcgen, for `127.0.0.1` and `kv.test`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use reqwest::StatusCode;
use serde_json::json;

use kvserver::Tls;

use crate::server_process::ServerProcess;
use crate::test_app::{TestApp, json_of};

/// A private CA, as an operator would make one for kvserver (or for etcd,
/// in the `etcd_tls` tests).
pub struct TestCa {
    certificate: rcgen::Certificate,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, written to PEM files.
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("a CA key");
        let certificate = params.self_signed(&key).expect("a CA certificate");
        TestCa {
            certificate,
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` (host names or IP addresses) signed
    /// by this CA, in a fresh directory.
    pub fn issue(&self, names: &[&str]) -> CertFiles {
        self.sign(names, "kvserver", ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate for `name`, signed by this CA, in a fresh
    /// directory. (For the `etcd_tls` tests: etcd checks them.)
    #[cfg_attr(not(feature = "etcd"), allow(dead_code))]
    pub fn issue_client(&self, name: &str) -> CertFiles {
        self.sign(&[], name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn sign(&self, names: &[&str], common_name: &str, usage: ExtendedKeyUsagePurpose) -> CertFiles {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("valid names");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("a key");
        let certificate = params.signed_by(&key, &self.issuer).expect("a certificate");
        let dir = temp_dir();
        let files = CertFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, certificate.pem()).expect("writing the certificate");
        std::fs::write(&files.key, key.serialize_pem()).expect("writing the key");
        files
    }

    /// The CA certificate in PEM.
    pub fn pem(&self) -> String {
        self.certificate.pem()
    }

    /// The CA certificate in a PEM file of its own.
    #[cfg_attr(not(feature = "etcd"), allow(dead_code))]
    pub fn file(&self) -> PathBuf {
        let path = temp_dir().join("ca.pem");
        std::fs::write(&path, self.pem()).expect("writing the CA certificate");
        path
    }

    /// The CA certificate, as a client's trust root.
    fn root(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(self.pem().as_bytes()).expect("a PEM root")
    }
}

impl CertFiles {
    fn load(&self) -> Tls {
        Tls::load(&self.cert, &self.key).expect("the files load")
    }
}

/// An HTTPS client that trusts `ca` only, not the built-in roots.
fn client_trusting(ca: &TestCa) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca.root())
}

/// An app serving HTTPS with `files`.
async fn spawn_tls(files: &CertFiles) -> TestApp {
    let tls = files.load();
    TestApp::spawn_with(|config| config.tls = Some(tls)).await
}

/// Every message in an error's chain, joined: reqwest wraps the TLS verdict
/// a few layers down.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

fn temp_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "kvserver-tls-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

#[actix_web::test]
async fn a_client_trusting_the_ca_uses_the_seed_api_and_v1_over_https() {
    let ca = TestCa::new("kvstore test CA");
    let mut app = spawn_tls(&ca.issue(&["127.0.0.1", "localhost"])).await;
    assert!(app.base.starts_with("https://127.0.0.1:"), "{}", app.base);
    app.client = client_trusting(&ca).build().expect("a client");

    let created = json_of(
        app.seed_create(json!({"key": "greeting", "value": "hello"}))
            .await,
        StatusCode::CREATED,
        "POST /store over https",
    )
    .await;
    assert_eq!(created["value"], "hello");
    let read = json_of(app.seed_get("greeting").await, StatusCode::OK, "GET /store").await;
    assert_eq!(read["value"], "hello");

    let put = app.v1_put("bin/key", "", vec![0u8, 1, 2, 255]).await;
    assert_eq!(put.status(), StatusCode::CREATED, "PUT /v1/kv over https");
    let got = app.v1_get("bin/key").await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(
        got.bytes().await.expect("a body").as_ref(),
        &[0u8, 1, 2, 255],
        "the exact bytes come back"
    );
}

#[actix_web::test]
async fn a_client_trusting_another_ca_is_refused() {
    let ca = TestCa::new("kvstore test CA");
    let stranger = TestCa::new("some other CA");
    let app = spawn_tls(&ca.issue(&["127.0.0.1"])).await;
    let client = client_trusting(&stranger).build().expect("a client");
    let err = client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect_err("a certificate from an unknown CA is refused");
    assert!(chain(&err).contains("UnknownIssuer"), "{}", chain(&err));
}

#[actix_web::test]
async fn a_certificate_for_another_host_name_is_refused() {
    let ca = TestCa::new("kvstore test CA");
    let app = spawn_tls(&ca.issue(&["kv.test"])).await;
    let port = app.addr.port();
    // Both names lead to the app, on loopback; only the certificate differs.
    let client = client_trusting(&ca)
        .resolve("kv.test", app.addr)
        .resolve("other.test", app.addr)
        .build()
        .expect("a client");

    let named = client
        .get(format!("https://kv.test:{port}/healthz"))
        .send()
        .await
        .expect("the name on the certificate is accepted");
    assert_eq!(named.status(), StatusCode::OK);

    let err = client
        .get(format!("https://other.test:{port}/healthz"))
        .send()
        .await
        .expect_err("another name is refused");
    assert!(
        chain(&err).contains("not valid for name \"other.test\""),
        "{}",
        chain(&err)
    );
}

#[actix_web::test]
async fn plain_http_to_the_tls_port_gets_no_http_answer() {
    let ca = TestCa::new("kvstore test CA");
    let app = spawn_tls(&ca.issue(&["127.0.0.1"])).await;
    let plain = format!("http://{}/healthz", app.addr);
    reqwest::get(&plain)
        .await
        .expect_err("plain HTTP gets no HTTP response");

    let answer = actix_web::rt::task::spawn_blocking(move || raw_exchange(app.addr))
        .await
        .expect("the raw exchange");
    assert!(
        !answer.starts_with(b"HTTP/"),
        "the TLS port answered plain HTTP: {:?}",
        String::from_utf8_lossy(&answer)
    );
}

/// Sends a plain HTTP request and returns whatever comes back before the
/// connection closes.
fn raw_exchange(addr: SocketAddr) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: kv\r\nConnection: close\r\n\r\n")
        .expect("sending");
    let mut answer = Vec::new();
    // A reset after the alert is an answer too.
    let _ = stream.read_to_end(&mut answer);
    answer
}

#[test]
fn the_binary_serves_https_and_logs_an_https_address() {
    let ca = TestCa::new("kvstore test CA");
    let files = ca.issue(&["127.0.0.1"]);
    let server = ServerProcess::start(
        "info",
        &[
            "--tls-cert",
            files.cert.to_str().expect("a UTF-8 path"),
            "--tls-key",
            files.key.to_str().expect("a UTF-8 path"),
        ],
    );
    assert_eq!(server.scheme, "https");
    let client = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca.root())
        .build()
        .expect("a client");
    let response = client
        .get(format!("https://{}/healthz", server.addr))
        .send()
        .expect("the server answers over https");
    assert_eq!(response.status(), StatusCode::OK);
}

#[test]
fn certificate_mistakes_stop_the_server_at_start_up_naming_the_file() {
    let ca = TestCa::new("kvstore test CA");
    let files = ca.issue(&["127.0.0.1"]);
    let other = ca.issue(&["127.0.0.1"]);
    let dir = temp_dir();
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "not a certificate\n").expect("writing");
    let truncated = dir.join("truncated.pem");
    let cert_text = std::fs::read_to_string(&files.cert).expect("reading");
    std::fs::write(&truncated, &cert_text[..cert_text.len() / 2]).expect("writing");
    let missing = dir.join("missing.pem");
    let path = |path: &PathBuf| path.to_str().expect("a UTF-8 path").to_owned();

    let cases: [(Vec<String>, Vec<String>, &str); 6] = [
        (
            vec![
                "--tls-cert".into(),
                path(&missing),
                "--tls-key".into(),
                path(&files.key),
            ],
            vec![path(&missing), "certificate".into()],
            "a missing certificate file",
        ),
        (
            vec![
                "--tls-cert".into(),
                path(&not_pem),
                "--tls-key".into(),
                path(&files.key),
            ],
            vec![path(&not_pem), "no PEM certificate".into()],
            "a certificate file without PEM",
        ),
        (
            vec![
                "--tls-cert".into(),
                path(&truncated),
                "--tls-key".into(),
                path(&files.key),
            ],
            vec![path(&truncated), "certificate".into()],
            "a certificate cut in half",
        ),
        (
            vec![
                "--tls-cert".into(),
                path(&files.key),
                "--tls-key".into(),
                path(&files.cert),
            ],
            vec![path(&files.key), "no PEM certificate".into()],
            "key and certificate swapped",
        ),
        (
            vec![
                "--tls-cert".into(),
                path(&files.cert),
                "--tls-key".into(),
                path(&not_pem),
            ],
            vec![path(&not_pem), "no PEM private key".into()],
            "a key file without a key",
        ),
        (
            vec![
                "--tls-cert".into(),
                path(&files.cert),
                "--tls-key".into(),
                path(&other.key),
            ],
            vec![path(&files.cert), path(&other.key)],
            "a key that belongs to another certificate",
        ),
    ];
    for (flags, needles, why) in cases {
        let output = kvserver_command().args(&flags).output().expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{why}: {stderr}");
        for needle in needles {
            assert!(stderr.contains(&needle), "{why}: {needle:?} in {stderr}");
        }
        assert!(!stderr.contains("listening on"), "{why}: {stderr}");
    }
}

#[test]
fn tls_cert_and_key_go_together_from_flags_and_environment() {
    let ca = TestCa::new("kvstore test CA");
    let files = ca.issue(&["127.0.0.1"]);
    let cert = files.cert.to_str().expect("a UTF-8 path");
    let key = files.key.to_str().expect("a UTF-8 path");
    let cases = [
        (
            kvserver_command_with(&["--tls-cert", cert]),
            "--tls-key",
            "only --tls-cert",
        ),
        (
            kvserver_command_with(&["--tls-key", key]),
            "--tls-cert",
            "only --tls-key",
        ),
        (
            {
                let mut command = kvserver_command();
                command.env("KV_TLS_CERT", cert);
                command
            },
            "--tls-key",
            "only KV_TLS_CERT",
        ),
    ];
    for (mut command, needle, why) in cases {
        let output = command.output().expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{why}: a usage error: {stderr}"
        );
        assert!(stderr.contains(needle), "{why}: {stderr}");
    }
}

/// The binary on a port of its own, with no `KV_*` variables from the
/// test's environment.
fn kvserver_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kvserver"));
    command.args(["--addr", "127.0.0.1:0"]);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("KV_")) {
        command.env_remove(name);
    }
    command
}

fn kvserver_command_with(flags: &[&str]) -> Command {
    let mut command = kvserver_command();
    command.args(flags);
    command
}
