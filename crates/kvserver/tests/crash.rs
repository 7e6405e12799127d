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
