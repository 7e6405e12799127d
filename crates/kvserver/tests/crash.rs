//! kill -9 against the real binary under concurrent writes: after every
//! restart, every acknowledged write is there, whatever the fsync policy
//! (README, Durability: a killed process loses nothing acknowledged).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::server_process::ServerProcess;

const KILLS: u32 = 50;
const WRITERS: usize = 4;
const KEYS_PER_WRITER: u64 = 16;

/// The real kvserver binary, started on a free port.
struct Server {
    process: ServerProcess,
    base: String,
}

impl Server {
    fn start(data_dir: &Path, fsync: &str) -> Server {
        let dir = data_dir.to_str().expect("a UTF-8 temporary path");
        let process = ServerProcess::start("info", &["--fsync", fsync, "--data-dir", dir]);
        let base = format!("{}://{}", process.scheme, process.addr);
        let server = Server { process, base };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let client = client();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = client
                .get(format!("{}/readyz", self.base))
                .send()
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "kvserver did not become ready");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill_9(self) {
        self.process.kill_9();
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kvserver-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Writes counters to its own keys until the server stops answering;
/// records each acknowledged value.
fn writer(
    base: String,
    id: usize,
    acked: Arc<Mutex<HashMap<String, u64>>>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let client = client();
    let mut state = seed | 1;
    while !stop.load(Ordering::Relaxed) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let key = format!("w{id}-{}", state % KEYS_PER_WRITER);
        let next = acked.lock().expect("lock").get(&key).map_or(1, |v| v + 1);
        let response = client
            .put(format!("{base}/v1/kv/{key}"))
            .body(next.to_string())
            .send();
        match response {
            Ok(r) if r.status().is_success() => {
                acked.lock().expect("lock").insert(key, next);
            }
            // The server was killed: whatever was in flight is unacknowledged.
            _ => return,
        }
    }
}

/// Every acknowledged value is there; a key may also hold the one write
/// after it that was in flight when the server died.
fn check(base: &str, acked: &HashMap<String, u64>, round: u32) {
    let client = client();
    for (key, &value) in acked {
        let response = client
            .get(format!("{base}/v1/kv/{key}"))
            .send()
            .expect("GET after restart");
        assert!(
            response.status().is_success(),
            "round {round}: acknowledged key {key} is missing ({})",
            response.status()
        );
        let stored: u64 = response.text().expect("body").parse().expect("a counter");
        assert!(
            stored == value || stored == value + 1,
            "round {round}: {key} holds {stored}, but {value} was acknowledged"
        );
    }
}

#[test]
fn kill_9_under_concurrent_writes_loses_no_acknowledged_write() {
    let dir = temp_dir("kill9");
    let policies = ["always", "everysec", "never"];
    let acked = Arc::new(Mutex::new(HashMap::new()));
    let mut seed = 0x2545_F491_4F6C_DD1D_u64;
    for round in 0..KILLS {
        let server = Server::start(&dir, policies[round as usize % policies.len()]);
        {
            let acked = acked.lock().expect("lock").clone();
            check(&server.base, &acked, round);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|id| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                let (base, acked, stop) = (server.base.clone(), acked.clone(), stop.clone());
                let seed = seed;
                thread::spawn(move || writer(base, id, acked, stop, seed))
            })
            .collect();
        // Let writes flow for a while, different each round, then kill.
        thread::sleep(Duration::from_millis(30 + (seed >> 33) % 120));
        server.kill_9();
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.join().expect("writer thread");
        }
    }
    let server = Server::start(&dir, "always");
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.values().sum::<u64>() > u64::from(KILLS),
        "writes were acknowledged between the kills"
    );
    check(&server.base, &acked, KILLS);
    server.kill_9();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A data directory whose last log segment ends in a damaged record (20
/// bytes of garbage after a write made with `always`).
fn directory_with_a_damaged_last_record(name: &str) -> (PathBuf, PathBuf) {
    let dir = temp_dir(name);
    let store = kvcore::Store::builder()
        .fsync(kvcore::Fsync::Always)
        .open(&dir)
        .expect("open");
    store
        .upsert("kept", "v", kvcore::TtlChange::Keep)
        .expect("upsert");
    store.close().expect("close");
    let segment = std::fs::read_dir(&dir)
        .expect("list")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "kvlog"))
        .max()
        .expect("a log segment");
    let mut bytes = std::fs::read(&segment).expect("read");
    bytes.extend([0x5a; 20]);
    std::fs::write(&segment, bytes).expect("write");
    (dir, segment)
}

#[test]
fn a_damaged_last_record_is_cut_and_logged_at_error_with_always_and_warn_otherwise() {
    for (fsync, level) in [("always", "ERROR"), ("everysec", "WARN")] {
        let (dir, segment) = directory_with_a_damaged_last_record(&format!("damaged-{fsync}"));
        let offset = std::fs::metadata(&segment).expect("size").len() - 20;
        let data = dir.to_str().expect("a UTF-8 temporary path");
        let mut process = ServerProcess::start("info", &["--fsync", fsync, "--data-dir", data]);
        let line = process.wait_for_log("recovery: cut");
        assert!(line.contains(level), "{fsync}: logged at {level}: {line}");
        let name = segment.file_name().unwrap().to_string_lossy().into_owned();
        assert!(line.contains(&name), "{fsync}: names the file: {line}");
        assert!(
            line.contains(&format!("offset {offset}")),
            "{fsync}: names the offset {offset}: {line}"
        );
        process.signal("TERM");
        let (status, _) = process.wait_for_exit();
        assert!(status.success(), "{fsync}: exits cleanly");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
