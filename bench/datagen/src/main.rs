//! Writes a kvcore data directory for the benchmarks in `bench/`:
//!
//! ```text
//! datagen DIR KEYS VALUE_BYTES LAYOUT
//! ```
//!
//! Keys are `key:` and a 12-digit number, `key:000000000000` ..
//! (16 bytes, the key names redis-benchmark uses with `-r`); every value is
//! VALUE_BYTES of `x`, as redis-benchmark's `-d`. LAYOUT is one of
//!
//! - `snapshot`: every key in a snapshot, an empty log (what the server
//!   holds after a compaction);
//! - `log`: every key in the log only, no snapshot (one record per key);
//! - `snapshot+log`: every key in a snapshot, then overwrites in the log
//!   until it is half as large as the snapshot: the most the server keeps
//!   before its automatic compaction folds the log into a new snapshot.
//!
//! The store is opened with `Fsync::Never` and synced once at the end.
//! kvcore compacts automatically from a background thread that first looks
//! at the log 500 ms after the store opens. To leave a log uncompacted, the
//! log layouts write in bursts of at most 200 ms, each in a freshly opened
//! store, and check that no compaction ran.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use kvcore::{Fsync, Store, TtlChange};

/// Well inside the 500 ms before kvcore's log worker first looks.
const BURST: Duration = Duration::from_millis(200);

fn key(i: u64) -> String {
    format!("key:{i:012}")
}

fn open(dir: &Path) -> kvcore::Result<Store> {
    Store::builder().fsync(Fsync::Never).open(dir)
}

/// Writes keys `from..to` with `value`, in bursts, each in a freshly opened
/// store. Stops early once the log reaches `log_limit` bytes; returns the
/// number of keys written.
fn write_bursts(
    dir: &Path,
    from: u64,
    to: u64,
    value: &[u8],
    log_limit: u64,
) -> kvcore::Result<u64> {
    let mut next = from;
    while next < to {
        let store = open(dir)?;
        let started = Instant::now();
        let mut log_bytes = 0;
        while next < to && started.elapsed() < BURST && log_bytes < log_limit {
            // 256 writes between clock and size checks.
            for _ in 0..256 {
                if next == to {
                    break;
                }
                store.upsert(&key(next), value, TtlChange::Keep)?;
                next += 1;
            }
            log_bytes = durability(&store).log_bytes;
        }
        let figures = durability(&store);
        if figures.compactions != 0 {
            eprintln!(
                "datagen: a compaction ran during a burst; the log was folded into a snapshot"
            );
            std::process::exit(1);
        }
        store.flush()?;
        drop(store);
        if figures.log_bytes >= log_limit {
            break;
        }
    }
    Ok(next - from)
}

fn durability(store: &Store) -> kvcore::DurabilityStats {
    store
        .stats()
        .durability
        .expect("a store opened from a directory")
}

fn run(dir: &Path, keys: u64, value_bytes: usize, layout: &str) -> kvcore::Result<()> {
    let value = vec![b'x'; value_bytes];
    let started = Instant::now();
    match layout {
        "snapshot" | "snapshot+log" => {
            let store = open(dir)?;
            for i in 0..keys {
                store.upsert(&key(i), &value, TtlChange::Keep)?;
            }
            store.compact()?;
            store.flush()?;
            let snapshot_bytes = durability(&store).snapshot_bytes;
            drop(store);
            if layout == "snapshot+log" {
                // kvcore compacts once the log outgrows half the snapshot:
                // this is the longest log a running server leaves behind.
                let written = write_bursts(dir, 0, keys, &value, snapshot_bytes / 2)?;
                eprintln!("datagen: {written} overwrites in the log");
            }
        }
        "log" => {
            write_bursts(dir, 0, keys, &value, u64::MAX)?;
        }
        other => {
            eprintln!("datagen: unknown layout {other:?} (snapshot, log, snapshot+log)");
            std::process::exit(2);
        }
    }
    let store = open(dir)?;
    let figures = durability(&store);
    eprintln!(
        "datagen: {} keys in {} ({layout}): snapshot {} bytes, log {} bytes; written in {:.1} s",
        store.len(),
        dir.display(),
        figures.snapshot_bytes,
        figures.log_bytes,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [dir, keys, value_bytes, layout] => keys
            .parse::<u64>()
            .ok()
            .zip(value_bytes.parse::<usize>().ok())
            .map(|(keys, value_bytes)| (Path::new(dir), keys, value_bytes, layout.as_str())),
        _ => None,
    };
    let Some((dir, keys, value_bytes, layout)) = parsed else {
        eprintln!("usage: datagen DIR KEYS VALUE_BYTES snapshot|log|snapshot+log");
        return ExitCode::from(2);
    };
    match run(dir, keys, value_bytes, layout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("datagen: {err}");
            ExitCode::FAILURE
        }
    }
}
