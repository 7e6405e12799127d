//! `kvctl watch`: one line per change, JSON with `-o json`, reconnecting by
//! itself from the last revision across a server restart, exit 0 on
//! Ctrl-C, exit 4 when the history no longer holds `--from`.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{Backend, Server, kvctl, temp_dir, version_in, wait_until_ready};

/// A kvserver the test can stop and start again on the same port and the
/// same data: a data directory, or on etcd the same member.
struct Restartable {
    addr: String,
    config: kvserver::Config,
    _backend: Backend,
    running: Option<(
        tokio::sync::oneshot::Sender<()>,
        std::thread::JoinHandle<()>,
    )>,
}

impl Restartable {
    fn start() -> Restartable {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let backend = Backend::for_this_test();
        let data_dir = (!backend.is_etcd()).then(temp_dir);
        let config = backend.configure(kvserver::Config {
            data_dir,
            workers: 1,
            open_metrics: true,
            ..kvserver::Config::default()
        });
        let mut server = Restartable {
            addr,
            config,
            _backend: backend,
            running: None,
        };
        server.start_again();
        server
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn start_again(&mut self) {
        self.running = Some(serve(&self.addr, self.config.clone()));
    }

    /// While this server is stopped, writes `key` through another kvserver
    /// on the same data (the directory, or the etcd member), then stops it.
    fn write_elsewhere(&self, key: &str, value: &str) {
        assert!(self.running.is_none(), "stopped first");
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let (stop, thread) = serve(&addr, self.config.clone());
        kvctl(&["set", key, value])
            .endpoint(&format!("http://{addr}"))
            .run()
            .success();
        let _ = stop.send(());
        thread.join().unwrap();
    }

    /// Stops gracefully and waits until the port and the directory are free.
    fn stop(&mut self) {
        let (stop, thread) = self.running.take().expect("running");
        let _ = stop.send(());
        thread.join().unwrap();
    }
}

/// A kvserver on `addr` with `config`, once ready; send on the channel to
/// stop it gracefully, then join the thread.
fn serve(
    addr: &str,
    config: kvserver::Config,
) -> (
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    // A stopped server's socket may take a moment to be released.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let listener = loop {
        match TcpListener::bind(addr) {
            Ok(listener) => break listener,
            Err(err) if std::time::Instant::now() < deadline => {
                assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(err) => panic!("binding {addr} again: {err}"),
        }
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = kvserver::Application::build(config, listener).unwrap();
            let _ = app
                .run_until(async move {
                    let _ = stopped.await;
                })
                .await;
        })
    });
    // A data directory is recovered, etcd connected, in the background.
    wait_until_ready(&format!("http://{addr}"));
    (stop, thread)
}

/// `kvctl watch` running in the background, its lines arriving on a channel.
struct Watching {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watching {
    fn start(endpoint: &str, args: &[&str]) -> Watching {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kvctl"))
            .args(["--endpoint", endpoint])
            .args(args)
            .env_remove("KVCTL_ENDPOINT")
            .env_remove("KVCTL_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting kvctl watch");
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Watching { child, lines }
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(15))
            .expect("a line from kvctl watch within 15 s")
    }

    /// Sends SIGINT, as Ctrl-C does, and returns the exit code.
    fn interrupt(mut self) -> i32 {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = self.child.wait().unwrap();
        status
            .code()
            .expect("kvctl exited by itself, not by the signal")
    }
}

/// Waits until `kvctl watch` has its stream open: a write made before that
/// would be before "now".
fn wait_for_watchers(endpoint: &str, count: u64) {
    for _ in 0..300 {
        let metrics = reqwest::blocking::get(format!("{endpoint}/metrics"))
            .and_then(|r| r.text())
            .unwrap_or_default();
        if metrics
            .lines()
            .any(|line| line == format!("kv_watchers {count}"))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("kvctl watch never opened its stream");
}

#[test]
fn watch_prints_one_line_per_change_and_exits_0_on_ctrl_c() {
    let server = Server::start_with(kvserver::Config {
        open_metrics: true,
        ..kvserver::Config::default()
    });
    let watching = Watching::start(&server.endpoint, &["watch", "app/"]);
    wait_for_watchers(&server.endpoint, 1);
    let set = server.ok(&["set", "app/mode", "on", "--ttl", "1h"]);
    let other = server.ok(&["set", "other", "x"]);
    server.ok(&["del", "app/mode"]);
    let put = watching.line();
    let version = version_in(&set.stdout());
    assert!(
        put.starts_with(&format!("{version} put    app/mode = \"on\"  expires in")),
        "{put:?}"
    );
    let delete = watching.line();
    let (revision, rest) = delete.split_once(' ').unwrap();
    assert_eq!(
        rest, "delete app/mode",
        "the other prefix is left out: {delete:?}"
    );
    assert!(
        revision.parse::<u64>().unwrap() > version_in(&other.stdout()),
        "the delete comes after the other write: {delete:?}"
    );
    assert_eq!(watching.interrupt(), 0, "Ctrl-C ends a watch successfully");
}

#[test]
fn watch_reconnects_by_itself_from_the_last_revision_across_a_restart() {
    let mut server = Restartable::start();
    let endpoint = server.endpoint();
    let set = kvctl(&["set", "before", "0"])
        .endpoint(&endpoint)
        .run()
        .success();
    let watching = Watching::start(&endpoint, &["-o", "json", "watch", "--from", "0"]);
    let first: serde_json::Value = serde_json::from_str(&watching.line()).unwrap();
    assert_eq!(
        first,
        serde_json::json!({"revision": version_in(&set.stdout()), "key": "before", "kind": "put", "value": "0"}),
        "--from 0 replays the history"
    );
    // The stream ends with the server; kvctl keeps trying until it is back.
    server.stop();
    server.start_again();
    kvctl(&["set", "after", "1"])
        .endpoint(&endpoint)
        .run()
        .success();
    let next: serde_json::Value = serde_json::from_str(&watching.line()).unwrap();
    assert_eq!(
        (next["key"].as_str(), next["kind"].as_str()),
        (Some("after"), Some("put")),
        "the change after the restart, and not \"before\" again: {next}"
    );
    assert_eq!(watching.interrupt(), 0);
    server.stop();
}

/// A watch from now that loses its stream before its first event resumes
/// after the revision it started at (the server says which), not from a
/// later now: a change made while kvctl was away is still printed.
#[test]
fn watch_from_now_reconnects_from_where_it_started_and_misses_nothing() {
    let mut server = Restartable::start();
    let endpoint = server.endpoint();
    kvctl(&["set", "before", "0"])
        .endpoint(&endpoint)
        .run()
        .success();
    let watching = Watching::start(&endpoint, &["watch"]);
    wait_for_watchers(&endpoint, 1);
    server.stop();
    server.write_elsewhere("meanwhile", "1");
    server.start_again();
    let line = watching.line();
    let (_, rest) = line.split_once(' ').unwrap();
    assert_eq!(
        rest, "put    meanwhile = \"1\"",
        "the change made while kvctl was away: {line:?}"
    );
    assert_eq!(watching.interrupt(), 0);
    server.stop();
}

#[test]
fn watch_from_a_revision_the_server_no_longer_keeps_exits_4() {
    let server = Server::start_with(kvserver::Config {
        watch_history: 1,
        ..kvserver::Config::default()
    });
    let versions: Vec<u64> = ["a", "b", "c"]
        .iter()
        .map(|key| version_in(&server.ok(&["set", key, "v"]).stdout()))
        .collect();
    // The embedded store keeps the last change; etcd keeps what was not
    // compacted away.
    #[cfg(feature = "etcd")]
    if crate::support::on_etcd() {
        server.compact_etcd(versions[2]);
    }
    let outcome = server.kvctl(&["watch", "--from", "0"]).run();
    assert_eq!(outcome.code, 4, "{outcome:?}");
    let oldest = format!("revision {}", versions[1]);
    assert!(
        outcome.stderr.contains("410") && outcome.stderr.contains(&oldest),
        "one line naming where a watch can start ({oldest}): {:?}",
        outcome.stderr
    );
    assert_eq!(outcome.stderr.lines().count(), 1);
}

/// An in-memory server that restarts starts its revisions again from 0: the
/// revision kvctl would resume after is one the new store has not reached,
/// and the numbers after it will be other changes. kvctl says so and exits
/// 4 instead of waiting there and skipping them. (The embedded store only:
/// etcd's revisions survive a kvserver restart.)
#[test]
fn watch_exits_4_when_an_in_memory_server_restarted_and_its_revisions_began_again() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let endpoint = format!("http://{addr}");
    let config = kvserver::Config {
        workers: 1,
        ..kvserver::Config::default()
    };
    let (stop, thread) = serve(&addr, config.clone());
    for key in ["a", "b", "c"] {
        kvctl(&["set", key, "v"])
            .endpoint(&endpoint)
            .run()
            .success();
    }
    let mut watching = Watching::start(&endpoint, &["watch", "--from", "0"]);
    for _ in 0..3 {
        watching.line();
    }
    let _ = stop.send(());
    thread.join().unwrap();
    let (stop, thread) = serve(&addr, config);

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = watching.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kvctl watch kept waiting on a server whose revisions began again"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(4), "{status:?}");
    let _ = stop.send(());
    thread.join().unwrap();
}
