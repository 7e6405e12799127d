//! The change feed in kvcore: events per second delivered to 100 watchers,
//! and what following them costs the writer.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p kvcore --bench watch
//! ```
//!
//! A store with a history longer than a round (so that a watcher cut off
//! can always resume) and 10,000 keys of 16 bytes
//! (16-byte values). In each of `KVCORE_BENCH_ROUNDS` (default 10) paired
//! rounds, one writer thread upserts `WRITES` random keys twice, in a random
//! order: once with no watcher, once with 100 watchers of every key, each
//! draining on a thread of its own (a watcher that is cut off watches again
//! from where it was cut off, and the cuts are counted). The round's figures:
//! the writer's rate with watchers over its rate without (within the round;
//! by the wall clock, which on 2 cores counts the CPU the 100 watcher
//! threads take from the writer, and by the writer's own CPU time, which
//! is what watching adds to each write),
//! and the events per second the watchers received in all, from the first
//! write until the last watcher has every event. Medians over rounds.
//! `cargo test --benches` runs one small round to check that it works.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use kvcore::{ActiveExpiry, Error, Store, TtlChange};

const KEYS: u64 = 10_000;
const WATCHERS: usize = 100;

fn store() -> Store {
    let store = Store::builder()
        .watch_history(1_000_000)
        .active_expiry(ActiveExpiry::Manual)
        .build();
    for i in 0..KEYS {
        store
            .upsert(&format!("key:{i:012}"), [0u8; 16], TtlChange::Keep)
            .expect("fill");
    }
    store
}

/// This thread's time on a CPU so far (see the throughput bench).
fn thread_cpu_time() -> Duration {
    thread::yield_now();
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(
        stat.split_whitespace()
            .next()
            .and_then(|ns| ns.parse().ok())
            .unwrap_or(0),
    )
}

/// Upserts `writes` random keys; returns the time it took, by the wall
/// clock and on the writer's CPU.
fn write(store: &Store, writes: u64, seed: u64) -> (Duration, Duration) {
    let mut state = seed | 1;
    let cpu = thread_cpu_time();
    let started = Instant::now();
    for n in 0..writes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let key = format!("key:{:012}", state % KEYS);
        store
            .upsert(&key, n.to_le_bytes().repeat(2), TtlChange::Keep)
            .expect("upsert");
    }
    (started.elapsed(), thread_cpu_time() - cpu)
}

struct Watched {
    /// The writer's time, by the wall clock and on its CPU.
    writer: (Duration, Duration),
    /// From the first write until every watcher had every event.
    delivered: Duration,
    events: u64,
    cut_off: u64,
}

fn watched_round(writes: u64, seed: u64) -> Watched {
    let store = store();
    let from = store.stats().revision;
    let last = from + writes;
    let events = Arc::new(AtomicU64::new(0));
    let cut_off = Arc::new(AtomicU64::new(0));
    let watchers: Vec<_> = (0..WATCHERS)
        .map(|_| {
            let mut watcher = store.watch("", Some(from)).expect("watch");
            let (store, events, cut_off) = (store.clone(), events.clone(), cut_off.clone());
            thread::spawn(move || {
                let mut received = 0;
                loop {
                    match watcher.recv() {
                        Ok(event) => {
                            received += 1;
                            if event.revision() == last {
                                break;
                            }
                        }
                        Err(Error::WatcherCutOff { resume_from, .. }) => {
                            cut_off.fetch_add(1, Ordering::Relaxed);
                            watcher = store.watch("", Some(resume_from)).expect("resume");
                        }
                        Err(err) => panic!("watch failed: {err}"),
                    }
                }
                events.fetch_add(received, Ordering::Relaxed);
            })
        })
        .collect();
    let started = Instant::now();
    let writer = write(&store, writes, seed);
    for watcher in watchers {
        watcher.join().expect("watcher thread");
    }
    Watched {
        writer,
        delivered: started.elapsed(),
        events: events.load(Ordering::Relaxed),
        cut_off: cut_off.load(Ordering::Relaxed),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let (rounds, writes) = match benching {
        true => (
            std::env::var("KVCORE_BENCH_ROUNDS")
                .ok()
                .and_then(|r| r.parse().ok())
                .unwrap_or(10),
            100_000,
        ),
        false => (1, 2_000),
    };
    let mut ratios = Vec::new();
    let mut cpu_ratios = Vec::new();
    let mut rates = Vec::new();
    let mut cuts = Vec::new();
    for round in 0..rounds {
        let seed = round as u64 * 7919 + 1;
        // Alternate which side goes first, so neither always runs on
        // caches the other warmed.
        let (alone, watched) = if round % 2 == 0 {
            let alone = write(&store(), writes, seed);
            (alone, watched_round(writes, seed))
        } else {
            let watched = watched_round(writes, seed);
            (write(&store(), writes, seed), watched)
        };
        assert_eq!(
            watched.events,
            writes * WATCHERS as u64,
            "every watcher got every event once"
        );
        ratios.push(alone.0.as_secs_f64() / watched.writer.0.as_secs_f64());
        cpu_ratios.push(alone.1.as_secs_f64() / watched.writer.1.as_secs_f64().max(1e-9));
        rates.push(watched.events as f64 / watched.delivered.as_secs_f64());
        cuts.push(watched.cut_off as f64);
    }
    println!(
        "{rounds} rounds of {writes} writes, {WATCHERS} watchers of every key:\n\
         writer rate with watchers / without, wall clock: median {:.2}x\n\
         writer rate with watchers / without, writer's CPU time: median {:.2}x\n\
         events delivered per second (all watchers): median {:.0} ({:.0} per watcher)\n\
         watchers cut off and resumed per round: median {:.0}",
        median(ratios),
        median(cpu_ratios),
        median(rates.clone()),
        median(rates) / WATCHERS as f64,
        median(cuts),
    );
}
