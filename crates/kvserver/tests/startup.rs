//! README, Configuration: flags are checked, and against each other, before the
//! server starts. A mistake stops it with one sentence naming the flag,
//! printed once, with no Rust debug output.

use std::process::Command;

use kvserver::auth::{Grant, create_token};

use crate::auth::auth_file;
use crate::server_process::{ServerProcess, exit_of};

/// The binary on a port of its own, with no `KV_*` variables from the
/// test's environment and the given flags and environment.
fn kvserver(flags: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kvserver"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("KV_")) {
        command.env_remove(name);
    }
    command
        .env("RUST_LOG", "info")
        .args(flags)
        .envs(env.iter().copied());
    command
}

/// Runs a command that must refuse to start, and returns its stderr after
/// checking that `says` appears in it exactly once.
fn refused(command: Command, says: &str, why: &str) -> String {
    let (status, stderr) = exit_of(command);
    assert!(!status.success(), "{why}: exit 0: {stderr}");
    assert_eq!(
        stderr.matches(says).count(),
        1,
        "{why}: {says:?} printed once in:\n{stderr}"
    );
    assert!(!stderr.contains("listening on"), "{why}: {stderr}");
    assert!(!stderr.contains("panicked"), "{why}: a panic: {stderr}");
    for debug in ["Os {", "kind:", "Error {", "Some(", "\\\""] {
        assert!(
            !stderr.contains(debug),
            "{why}: debug output {debug:?}: {stderr}"
        );
    }
    stderr
}

/// Flags, environment, what the error says, and why it is wrong.
type Case = (
    Vec<&'static str>,
    Vec<(&'static str, &'static str)>,
    &'static str,
    &'static str,
);

#[test]
fn flag_mistakes_stop_the_server_with_one_sentence_naming_the_flag() {
    let local = ["--addr", "127.0.0.1:0"];
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        (vec!["--workers", "0"], vec![], "--workers must be between 1 and 256, got 0", "no workers"),
        (vec!["--workers", "1000"], vec![], "--workers must be between 1 and 256, got 1000", "too many workers (used to panic)"),
        (vec![], vec![("KV_WORKERS", "1000")], "--workers must be between 1 and 256", "the env twin is checked alike"),
        (vec!["--max-connections", "0"], vec![], "--max-connections must be at least 1", "no connections"),
        (vec!["--workers", "4", "--max-connections", "2"], vec![], "--max-connections 2 is below --workers 4", "fewer connections than workers"),
        (vec!["--max-value-bytes", "4194304"], vec![], "--max-body-bytes 2097152 is below --max-value-bytes 4194304", "a value that could never arrive"),
        (vec!["--max-body-bytes", "10", "--max-value-bytes", "11"], vec![], "--max-body-bytes 10 is below --max-value-bytes 11", "both given"),
        (vec!["--fsync", "always"], vec![], "--fsync has no effect without --data-dir", "fsync in memory"),
        (vec![], vec![("KV_FSYNC", "never")], "--fsync has no effect without --data-dir", "KV_FSYNC in memory"),
        (vec!["--truncate-corrupt-log"], vec![], "--truncate-corrupt-log has no effect without --data-dir", "no log to cut"),
        (vec!["--allow-insecure-tokens"], vec![], "--allow-insecure-tokens has no effect here", "no tokens, loopback"),
        (vec!["--allow-unauthenticated"], vec![], "--allow-unauthenticated has no effect on the loopback address 127.0.0.1:0", "loopback needs no permission to go without auth"),
        (vec![], vec![("KV_ALLOW_UNAUTHENTICATED", "true")], "--allow-unauthenticated has no effect on the loopback address", "its env twin on loopback"),
        (vec!["--allow-unauthenticated", "--auth-file", "tokens"], vec![], "--allow-unauthenticated has no effect with --auth-file", "tokens and no auth at once"),
        (vec!["--open-metrics"], vec![], "--open-metrics has no effect without --auth-file", "without tokens everything is open"),
        (vec![], vec![("KV_OPEN_METRICS", "true")], "--open-metrics has no effect without --auth-file", "its env twin without tokens"),
        (vec!["--eviction", "evict-lru"], vec![], "--eviction has no effect without --max-memory", "evicting without a bound"),
        (vec![], vec![("KV_EVICTION", "evict-ttl")], "--eviction has no effect without --max-memory", "KV_EVICTION without a bound"),
        (vec!["--max-memory", "512KiB"], vec![], "--max-memory 524288 is below --max-value-bytes 1048576", "a bound below one value"),
        (vec!["--max-memory", "12 parsecs"], vec![], "unknown size unit", "a size in made-up units"),
        (vec![], vec![("KV_MAX_MEMORY", "lots")], "is not a size", "KV_MAX_MEMORY is parsed alike"),
        (vec!["--max-memory", "1GiB", "--eviction", "lru"], vec![], "unknown eviction policy", "a made-up policy"),
        (vec!["--etcd-endpoints", "http://127.0.0.1:2379"], vec![], "--etcd-endpoints has no effect with the embedded backend", "etcd flags need --backend etcd"),
        (vec![], vec![("KV_ETCD_PREFIX", "app/")], "--etcd-prefix has no effect with the embedded backend", "the env twin is checked alike"),
        (vec!["--backend", "etcd", "--data-dir", "d"], vec![], "--data-dir has no effect with --backend etcd", "etcd keeps the data"),
        (vec!["--backend", "etcd", "--tuning", "balanced"], vec![], "--tuning has no effect with --backend etcd", "the embedded store's layout"),
        (vec!["--backend", "etcd", "--max-memory", "1GiB"], vec![], "--max-memory has no effect with --backend etcd", "the embedded store's bound"),
        (vec!["--backend", "etcd"], vec![("KV_WATCH_HISTORY", "5")], "--watch-history has no effect with --backend etcd", "etcd keeps its own history"),
        (vec![], vec![("KV_BACKEND", "etcd"), ("KV_FSYNC", "always")], "--fsync has no effect with --backend etcd", "env twins"),
        (vec!["--backend", "zookeeper"], vec![], "invalid value 'zookeeper' for '--backend", "an unknown backend"),
    ];
    #[cfg(not(feature = "etcd"))]
    let cases = [
        cases,
        vec![(
            vec![
                "--backend",
                "etcd",
                "--etcd-endpoints",
                "http://127.0.0.1:2379",
            ],
            vec![],
            "--backend etcd needs a kvserver built with the etcd backend",
            "built without the feature",
        )],
    ]
    .concat();
    #[cfg(feature = "etcd")]
    let cases = [
        cases,
        vec![
            (
                vec!["--backend", "etcd"],
                vec![],
                "--backend etcd needs --etcd-endpoints",
                "no cluster given",
            ),
            (
                vec!["--backend", "etcd", "--etcd-endpoints", "127.0.0.1:2379"],
                vec![],
                "--etcd-endpoints \"127.0.0.1:2379\" is not a URL",
                "a URL, not an address",
            ),
            (
                vec![
                    "--backend",
                    "etcd",
                    "--etcd-endpoints",
                    "http://a:1,https://b:2",
                ],
                vec![],
                "--etcd-endpoints mixes http:// and https://",
                "one scheme",
            ),
            (
                vec![
                    "--backend",
                    "etcd",
                    "--etcd-endpoints",
                    "http://a:1",
                    "--etcd-ca-cert",
                    "ca.pem",
                ],
                vec![],
                "have no effect with http:// endpoints",
                "TLS flags need https",
            ),
            (
                vec![
                    "--backend",
                    "etcd",
                    "--etcd-endpoints",
                    "http://a:1",
                    "--etcd-user",
                    "kv",
                ],
                vec![],
                "--etcd-user and --etcd-password-file go together",
                "a user needs a password",
            ),
            (
                vec![
                    "--backend",
                    "etcd",
                    "--etcd-endpoints",
                    "http://a:1",
                    "--max-value-bytes",
                    "1600000",
                    "--max-body-bytes",
                    "4000000",
                ],
                vec![],
                "--max-value-bytes 1600000 is over what etcd accepts in one request",
                "etcd's request limit",
            ),
            (
                vec![
                    "--backend",
                    "etcd",
                    "--etcd-endpoints",
                    "http://a:1",
                    "--etcd-timeout",
                    "10ms",
                ],
                vec![],
                "--etcd-timeout 10ms is too short",
                "a timeout no cluster meets",
            ),
        ],
    ]
    .concat();
    for (flags, env, says, why) in cases {
        let mut command = kvserver(&local, &env);
        command.args(&flags);
        refused(command, says, why);
    }
}

#[test]
fn a_bind_failure_is_printed_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("its address").to_string();
    let stderr = refused(
        kvserver(&["--addr", &addr], &[]),
        &format!("binding {addr}"),
        "a port in use",
    );
    assert!(stderr.contains("in use"), "says why: {stderr}");
}

#[test]
fn tokens_over_plain_http_off_loopback_need_allow_insecure_tokens() {
    let (_, line) = create_token("t", &[Grant::parse("read:").expect("grant")]).expect("token");
    let (dir, path) = auth_file(std::slice::from_ref(&line), 0o600);
    let path = path.to_str().expect("a UTF-8 path");
    let flags = ["--addr", "0.0.0.0:0", "--auth-file", path];
    let stderr = refused(
        kvserver(&flags, &[]),
        "refusing to accept tokens over plain HTTP on 0.0.0.0:0",
        "a token would cross the network in clear text",
    );
    assert!(stderr.contains("--allow-insecure-tokens"), "{stderr}");
    assert!(stderr.contains("--tls-cert"), "{stderr}");
    for (extra, env, why) in [
        (vec!["--allow-insecure-tokens"], vec![], "the flag"),
        (
            vec![],
            vec![("KV_ALLOW_INSECURE_TOKENS", "true")],
            "its env twin",
        ),
    ] {
        let mut command = kvserver(&flags, &env);
        command.args(&extra);
        let server = ServerProcess::spawn(command, "info");
        assert!(server.addr.port() != 0, "{why}: it serves");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn max_memory_and_eviction_reach_the_store_from_flags_and_the_environment() {
    for (flags, env, bound, eviction) in [
        (
            vec!["--max-memory", "64MiB", "--eviction", "evict-lru"],
            vec![],
            64u64 << 20,
            "evict-lru",
        ),
        (
            vec![],
            vec![("KV_MAX_MEMORY", "2GB"), ("KV_EVICTION", "evict-ttl")],
            2_000_000_000,
            "evict-ttl",
        ),
        (vec!["--max-memory", "1048576"], vec![], 1 << 20, "reject"),
    ] {
        let mut command = kvserver(&["--addr", "127.0.0.1:0"], &env);
        command.args(&flags);
        let mut server = ServerProcess::spawn(command, "info");
        server.wait_for_log(&format!("memory: bound {bound} bytes"));
        let info: serde_json::Value =
            reqwest::blocking::get(format!("{}://{}/v1/info", server.scheme, server.addr))
                .and_then(|response| response.json())
                .expect("GET /v1/info");
        assert_eq!(info["memory"]["bound_bytes"], bound, "{flags:?} {env:?}");
        assert_eq!(info["memory"]["eviction"], eviction, "{flags:?} {env:?}");
        server.signal("TERM");
        let (status, _) = server.wait_for_exit();
        assert!(status.success());
    }
}

/// README, "Memory bound": a bounded server limits glibc malloc to one arena
/// before it starts a thread (its RSS under evict-lru churn), unless the
/// operator's environment chose; an unbounded one keeps glibc's default.
/// Either way it serves writes from many connections at once.
#[test]
fn a_bounded_server_limits_malloc_arenas_and_serves_concurrent_writes() {
    let limited = if cfg!(all(target_os = "linux", target_env = "gnu")) {
        "malloc arenas: 1 (memory bound set)"
    } else {
        "malloc arenas: not limited (not glibc)"
    };
    for (flags, env, says) in [
        (
            vec!["--max-memory", "8MiB", "--eviction", "evict-lru"],
            vec![],
            limited,
        ),
        (vec![], vec![("KV_MAX_MEMORY", "8MiB")], limited),
        (
            vec!["--max-memory", "8MiB"],
            vec![("MALLOC_ARENA_MAX", "2")],
            "malloc arenas: set by MALLOC_ARENA_MAX or GLIBC_TUNABLES",
        ),
        (
            vec![],
            vec![],
            "malloc arenas: glibc default (no memory bound)",
        ),
    ] {
        let mut command = kvserver(&["--addr", "127.0.0.1:0"], &env);
        command.args(&flags);
        let mut server = ServerProcess::spawn(command, "info");
        server.wait_for_log(says);
        let base = format!("{}://{}", server.scheme, server.addr);
        let writers: Vec<_> = (0..8)
            .map(|writer| {
                let base = base.clone();
                std::thread::spawn(move || {
                    let client = reqwest::blocking::Client::new();
                    for round in 0..20usize {
                        let value = vec![b'v'; 16 << (round % 12)];
                        let key = format!("{base}/v1/kv/w{writer}/{round}");
                        let put = client.put(&key).body(value.clone()).send().expect("PUT");
                        assert!(put.status().is_success(), "PUT {key}: {}", put.status());
                        let got = client.get(&key).send().expect("GET");
                        assert!(got.status().is_success(), "GET {key}: {}", got.status());
                        assert_eq!(got.bytes().expect("a body").len(), value.len(), "{key}");
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().expect("a writer thread");
        }
        server.signal("TERM");
        let (status, _) = server.wait_for_exit();
        assert!(status.success(), "{flags:?} {env:?}");
    }
}

/// README, Durability: a log damaged before its end stops start-up with a
/// message naming the file, the offset and the flag that cuts the log there;
/// with `--truncate-corrupt-log` the server starts, keeping what came before.
#[test]
fn a_damaged_log_stops_start_up_naming_the_file_the_offset_and_the_flag_that_cuts_it() {
    let dir = std::env::temp_dir().join(format!("kvserver-damaged-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data_dir = dir.to_str().expect("a UTF-8 temporary path");
    let durable = ["--addr", "127.0.0.1:0", "--data-dir", data_dir];
    let mut server = ServerProcess::spawn(kvserver(&durable, &[]), "info");
    server.wait_for_log("ready:");
    let base = format!("{}://{}", server.scheme, server.addr);
    let client = reqwest::blocking::Client::new();
    for i in 0..20 {
        let put = client
            .put(format!("{base}/v1/kv/k{i}"))
            .body(format!("value {i}"))
            .send()
            .expect("PUT");
        assert!(put.status().is_success(), "PUT k{i}: {}", put.status());
    }
    server.signal("TERM");
    assert!(server.wait_for_exit().0.success(), "a clean stop");

    let log = std::fs::read_dir(&dir)
        .expect("the data directory")
        .map(|entry| entry.expect("an entry").path())
        .find(|path| path.extension().is_some_and(|e| e == "kvlog"))
        .expect("a log segment");
    let mut bytes = std::fs::read(&log).expect("the log");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&log, &bytes).expect("damaging the log");

    let mut command = kvserver(&durable, &[]);
    command.env("RUST_LOG", "error");
    let (status, stderr) = exit_of(command);
    assert!(!status.success(), "a damaged log was opened: {stderr}");
    let name = log.file_name().expect("a name").to_string_lossy();
    assert!(stderr.contains(&*name), "names the file: {stderr}");
    assert!(
        stderr.contains("is corrupt at offset"),
        "and the offset: {stderr}"
    );
    assert_eq!(
        stderr.matches("--truncate-corrupt-log").count(),
        1,
        "names the flag that starts anyway, once: {stderr}"
    );

    let mut command = kvserver(&durable, &[]);
    command.arg("--truncate-corrupt-log");
    let mut server = ServerProcess::spawn(command, "info");
    server.wait_for_log("recovery: --truncate-corrupt-log cut");
    server.wait_for_log("ready:");
    let base = format!("{}://{}", server.scheme, server.addr);
    let first = client.get(format!("{base}/v1/kv/k0")).send().expect("GET");
    assert_eq!(
        first.text().expect("a body"),
        "value 0",
        "kept before the cut"
    );
    server.signal("TERM");
    assert!(server.wait_for_exit().0.success(), "a clean stop");
    let _ = std::fs::remove_dir_all(dir);
}

/// A log segment whose header is refused (here a snapshot's magic) is not
/// damage `--truncate-corrupt-log` mends, so the message does not offer it.
#[test]
fn a_log_of_the_wrong_kind_is_refused_without_offering_a_flag_that_cannot_help() {
    let dir = std::env::temp_dir().join(format!("kvserver-wrong-kind-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a data directory");
    let log = dir.join("log-00000000000000000001.kvlog");
    let mut bytes = b"KVSN".to_vec();
    bytes.extend_from_slice(&[0x5a; 60]);
    std::fs::write(&log, &bytes).expect("a log of the wrong kind");
    let data_dir = dir.to_str().expect("a UTF-8 temporary path");
    for flags in [vec![], vec!["--truncate-corrupt-log"]] {
        let mut command = kvserver(&["--addr", "127.0.0.1:0", "--data-dir", data_dir], &[]);
        command.args(&flags).env("RUST_LOG", "error");
        let (status, stderr) = exit_of(command);
        assert!(!status.success(), "{flags:?}: opened: {stderr}");
        assert!(
            stderr.contains("a file of the wrong kind"),
            "{flags:?}: {stderr}"
        );
        assert!(
            !stderr.contains("pass --truncate-corrupt-log"),
            "{flags:?}: offers a flag that does not help: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
