//! kvserver on an etcd member that serves its clients over TLS only and
//! checks their certificates (`--client-cert-auth`), configured through
//! kvserver's own flags (`--etcd-ca-cert`, `--etcd-cert`, `--etcd-key`).
//! With the member's CA and a client certificate that CA signed, kvserver
//! serves; with another CA, or without a client certificate, it runs but
//! is not ready, and a request is a 503 `unavailable` naming etcd (and,
//! for a member kvserver does not trust, `--etcd-ca-cert`).
//! A certificate or key file that holds no certificate or key stops
//! start-up, naming the flag and the file. Certificates are made here with
//! rcgen (the `tls` tests' CA).

use clap::Parser;
use kvserver::backend::EtcdConfig;
use kvserver::cli::Cli;
use kvserver::config::Storage;
use reqwest::StatusCode;

use crate::cluster::Instance;
use crate::etcd_harness::{ClientTls, EtcdCluster};
use crate::tls::TestCa;

/// A member with TLS on its client URL, its certificate and the client
/// certificates it accepts both from `ca`.
fn tls_member(ca: &TestCa) -> EtcdCluster {
    let files = ca.issue(&["127.0.0.1"]);
    EtcdCluster::start_tls(ClientTls {
        cert: files.cert,
        key: files.key,
        client_ca: ca.file(),
    })
}

/// What `kvserver --backend etcd --etcd-endpoints ENDPOINT FLAGS...` makes
/// of its flags at start-up: a configuration, or the sentence it stops with.
fn start_up(endpoint: &str, flags: &[&str]) -> Result<kvserver::Config, String> {
    let args = [
        "kvserver",
        "--backend",
        "etcd",
        "--etcd-endpoints",
        endpoint,
    ];
    let args = args
        .iter()
        .chain(["--etcd-timeout", "2s"].iter())
        .chain(flags);
    let cli = Cli::try_parse_from(args).expect("the flags parse");
    cli.into_config(1024)
}

/// The etcd configuration of flags that agree.
fn etcd_flags(endpoint: &str, flags: &[&str]) -> EtcdConfig {
    match start_up(endpoint, flags).expect("the flags agree").storage {
        Storage::Etcd(etcd) => etcd,
        other => panic!("--backend etcd, not {other:?}"),
    }
}

fn path(file: &std::path::Path) -> &str {
    file.to_str().expect("a UTF-8 path")
}

#[actix_web::test]
async fn with_the_members_ca_and_a_client_certificate_kvserver_serves() {
    let ca = TestCa::new("etcd test CA");
    let cluster = tls_member(&ca);
    let endpoint = cluster.endpoint(0);
    assert!(endpoint.starts_with("https://"), "{endpoint}");
    let (ca_file, client) = (ca.file(), ca.issue_client("kvserver"));
    let instance = Instance::spawn_on(etcd_flags(
        &endpoint,
        &[
            "--etcd-ca-cert",
            path(&ca_file),
            "--etcd-cert",
            path(&client.cert),
            "--etcd-key",
            path(&client.key),
        ],
    ));
    instance.wait_until_ready().await;
    let (status, body) = instance.put("k", "over TLS", None).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        instance.get("k").await.map(|(value, _)| value).as_deref(),
        Some("over TLS")
    );
}

#[actix_web::test]
async fn with_another_ca_or_without_a_client_certificate_requests_are_a_503_naming_etcd() {
    let ca = TestCa::new("etcd test CA");
    let cluster = tls_member(&ca);
    let endpoint = cluster.endpoint(0);
    let (ca_file, client) = (ca.file(), ca.issue_client("kvserver"));
    let stranger = TestCa::new("some other CA");
    let (stranger_file, stranger_client) = (stranger.file(), stranger.issue_client("kvserver"));
    let cases = [
        (
            vec![
                "--etcd-ca-cert",
                path(&stranger_file),
                "--etcd-cert",
                path(&client.cert),
                "--etcd-key",
                path(&client.key),
            ],
            "the member's certificate is from a CA kvserver does not trust",
            "kvserver does not trust the certificate of etcd at",
        ),
        (
            vec!["--etcd-ca-cert", path(&ca_file)],
            "no client certificate",
            // The member just closes the connection: kvserver cannot tell
            // why, etcd's log says "bad certificate".
            "etcd at",
        ),
        (
            vec![
                "--etcd-ca-cert",
                path(&ca_file),
                "--etcd-cert",
                path(&stranger_client.cert),
                "--etcd-key",
                path(&stranger_client.key),
            ],
            "a client certificate from a CA the member does not trust",
            "etcd at",
        ),
    ];
    for (flags, why, says) in cases {
        let refused = Instance::spawn_on(etcd_flags(&endpoint, &flags));
        assert_eq!(
            refused.status("/healthz").await,
            Some(StatusCode::OK),
            "{why}: alive"
        );
        assert_eq!(
            refused.status("/readyz").await,
            Some(StatusCode::SERVICE_UNAVAILABLE),
            "{why}: not ready"
        );
        // kvserver attaches etcd in the background: until then a request is
        // only "not ready yet".
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let (status, body) = loop {
            let (status, body) = refused.put("k", "v", None).await.unwrap();
            if body["error"] != "the server is not ready yet" {
                break (status, body);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{why}: never connected"
            );
            actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{why}: {body}");
        assert_eq!(body["code"], "unavailable", "{why}: {body}");
        let sentence = body["error"].as_str().unwrap_or_default();
        assert!(
            sentence.contains(&format!("{says} {endpoint}")),
            "{why}: the error should say {says:?} and name the member: {body}"
        );
    }
}

#[test]
fn certificate_file_mistakes_stop_start_up_naming_the_flag_and_the_file() {
    let ca = TestCa::new("etcd test CA");
    let (ca_file, client) = (ca.file(), ca.issue_client("kvserver"));
    let dir = client.cert.parent().expect("a directory").to_owned();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let cut = dir.join("cut.pem");
    let key = std::fs::read_to_string(&client.key).unwrap();
    std::fs::write(&cut, &key[..key.len() / 2]).unwrap();
    let missing = dir.join("missing.pem");
    let (ca_file, cert, key) = (path(&ca_file), path(&client.cert), path(&client.key));
    let (garbage, cut, missing) = (path(&garbage), path(&cut), path(&missing));
    let cases = [
        (
            vec!["--etcd-ca-cert", garbage],
            format!("--etcd-ca-cert {garbage} holds no PEM certificate"),
            "a CA file without a certificate",
        ),
        (
            vec!["--etcd-ca-cert", key],
            format!("--etcd-ca-cert {key} holds no PEM certificate"),
            "a key given as the CA",
        ),
        (
            vec!["--etcd-ca-cert", missing],
            format!("cannot read --etcd-ca-cert {missing}"),
            "no such file",
        ),
        (
            vec!["--etcd-cert", garbage, "--etcd-key", key],
            format!("--etcd-cert {garbage} holds no PEM certificate"),
            "a client certificate file without a certificate",
        ),
        (
            vec!["--etcd-cert", cert, "--etcd-key", cert],
            format!("--etcd-key {cert} holds no PEM private key"),
            "the certificate given as the key",
        ),
        (
            vec![
                "--etcd-ca-cert",
                ca_file,
                "--etcd-cert",
                cert,
                "--etcd-key",
                cut,
            ],
            format!("cannot read --etcd-key {cut}: a PEM block has no"),
            "a key file cut short",
        ),
    ];
    for (flags, says, why) in cases {
        let refused = start_up("https://127.0.0.1:2379", &flags)
            .err()
            .unwrap_or_else(|| panic!("{why}: kvserver should not start"));
        assert!(
            refused.contains(&says),
            "{why}: {refused:?} should say {says:?}"
        );
    }
}
