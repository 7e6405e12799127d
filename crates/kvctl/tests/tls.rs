//! HTTPS and tokens: `--cacert` against a kvserver serving TLS with a
//! private CA, and the refusal to send a token over plain http to another
//! host unless `--insecure` is given.
//!
//! Every connection here stays on this machine: "another host" is
//! `0.0.0.0`, which kvctl counts as remote (it is not loopback) but which
//! Linux connects to locally, so even a broken refusal sends nothing out.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::support::{Server, fake_server, json_response, kvctl, temp_dir};

/// A private CA's certificate file, and a kvserver serving HTTPS on
/// `127.0.0.1` with a certificate it signed.
struct TlsServer {
    server: Server,
    ca_file: PathBuf,
}

/// A CA certificate and the means to sign with it.
fn new_ca(name: &str) -> (rcgen::Certificate, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let certificate = params.self_signed(&key).unwrap();
    (certificate, Issuer::new(params, key))
}

/// Writes a CA certificate where `--cacert` can read it.
fn ca_file(certificate: &rcgen::Certificate) -> PathBuf {
    let path = temp_dir().join("ca.pem");
    std::fs::write(&path, certificate.pem()).unwrap();
    path
}

impl TlsServer {
    fn start() -> TlsServer {
        let (ca, issuer) = new_ca("kvstore test CA");
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &issuer).unwrap();
        let dir = temp_dir();
        let (cert_file, key_file) = (dir.join("server.crt"), dir.join("server.key"));
        std::fs::write(&cert_file, certificate.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        let tls = kvserver::Tls::load(&cert_file, &key_file).unwrap();
        let server = Server::start_with(kvserver::Config {
            tls: Some(tls),
            ..kvserver::Config::default()
        });
        assert!(server.endpoint.starts_with("https://127.0.0.1:"));
        TlsServer {
            server,
            ca_file: ca_file(&ca),
        }
    }
}

#[test]
fn cacert_with_the_servers_ca_works_against_an_https_server() {
    let tls = TlsServer::start();
    let cacert = format!("--cacert={}", tls.ca_file.display());
    tls.server.ok(&[&cacert, "set", "greeting", "hello"]);
    let get = tls.server.ok(&[&cacert, "get", "greeting"]);
    assert_eq!(get.stdout(), "hello\n");
    let health = tls.server.ok(&[&cacert, "health"]);
    assert!(health.stdout().contains(&tls.server.endpoint), "{health:?}");
}

#[test]
fn a_server_certificate_from_an_untrusted_ca_exits_4_saying_what_to_do() {
    let tls = TlsServer::start();
    let (stranger, _) = new_ca("some other CA");
    let wrong = format!("--cacert={}", ca_file(&stranger).display());
    let reach = format!("cannot reach the server at {}", tls.server.endpoint);
    for (args, why) in [
        (vec![wrong.as_str(), "get", "greeting"], "another CA"),
        (vec!["get", "greeting"], "only the built-in roots"),
    ] {
        let outcome = tls.server.kvctl(&args).run();
        assert_eq!(outcome.code, 4, "{why}: {outcome:?}");
        outcome.fails(4, &[&reach, "not signed by a CA kvctl trusts", "--cacert"]);
    }
}

#[test]
fn a_token_is_not_sent_over_plain_http_to_another_host() {
    // Counted as another host, connected to locally if kvctl ever tried.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("http://0.0.0.0:{}", listener.local_addr().unwrap().port());
    let refusal = format!("refusing to send the token over plain http to {endpoint}");
    let runs = [
        kvctl(&["--token", "s3cret", "get", "k"]).endpoint(&endpoint),
        kvctl(&["set", "k", "v"])
            .endpoint(&endpoint)
            .env("KVCTL_TOKEN", "s3cret"),
        kvctl(&["health"])
            .endpoint(&endpoint)
            .env("KVCTL_TOKEN", "s3cret"),
    ];
    for run in runs {
        let started = Instant::now();
        let outcome = run.run();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "refused at once: {outcome:?}"
        );
        let outcome = outcome.fails(2, &[&refusal, "https://", "--insecure"]);
        assert!(!outcome.stderr.contains("s3cret"), "{outcome:?}");
    }
    // kvctl has exited, so a connection it made would be waiting here.
    match listener.accept() {
        Err(err) if err.kind() == ErrorKind::WouldBlock => {}
        other => panic!("kvctl connected before refusing: {other:?}"),
    }
}

#[test]
fn insecure_sends_the_token_over_plain_http_anyway() {
    let response = json_response(
        "404 Not Found",
        r#"{"error":"key not found","code":"not_found","key":"k"}"#,
    );
    let (local, requests) = fake_server(response);
    let endpoint = local.replace("127.0.0.1", "0.0.0.0");
    kvctl(&["--token", "s3cret", "--insecure", "get", "k"])
        .endpoint(&endpoint)
        .run()
        .fails(1, &["key \"k\" not found"]);
    let request = requests.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        request.contains("authorization: Bearer s3cret\r\n"),
        "{request}"
    );
}

#[test]
fn a_server_certificate_for_another_name_exits_4_saying_so() {
    let tls = TlsServer::start();
    let cacert = format!("--cacert={}", tls.ca_file.display());
    // The certificate names 127.0.0.1 only; localhost is the same server.
    let endpoint = tls.server.endpoint.replace("127.0.0.1", "localhost");
    kvctl(&[&cacert, "get", "greeting"])
        .endpoint(&endpoint)
        .run()
        .fails(
            4,
            &[
                &format!("cannot reach the server at {endpoint}"),
                "certificate is for another name",
            ],
        );
}
