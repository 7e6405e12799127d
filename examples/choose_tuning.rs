//! Choosing a tuning: runs the same short workload against each preset and
//! prints operations per second, so you can see which suits your mix.
//! (For real numbers, use the criterion benchmark: see BENCHMARKS.md.)
//!
//! Run: `cargo run --release -p examples --bin choose_tuning [read-percent]`

use std::thread;
use std::time::{Duration, Instant};

use kvcore::{Store, TtlChange, Tuning};

const KEYS: u64 = 100_000;
const RUN_FOR: Duration = Duration::from_millis(300);

fn main() {
    let read_percent: u64 = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .filter(|percent| *percent <= 100)
        .unwrap_or(95);
    let threads = thread::available_parallelism().map_or(2, |n| n.get());
    println!("{read_percent}% gets, {threads} threads, {KEYS} keys");
    for tuning in [Tuning::Balanced, Tuning::ReadHeavy, Tuning::WriteHeavy] {
        let store = Store::builder().tuning(tuning).build();
        for i in 0..KEYS {
            store
                .upsert(&format!("key-{i:012}"), i.to_le_bytes(), TtlChange::Keep)
                .expect("valid key and value");
        }
        let ops: u64 = thread::scope(|scope| {
            let workers: Vec<_> = (0..threads as u64)
                .map(|seed| {
                    let store = &store;
                    scope.spawn(move || run(store, seed, read_percent))
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
        });
        let per_second = ops as f64 / RUN_FOR.as_secs_f64();
        println!("{:>12}: {:>12.0} ops/s", tuning.name(), per_second);
    }
}

/// Mixed gets and sets on random keys until the time is up; returns the count.
fn run(store: &Store, seed: u64, read_percent: u64) -> u64 {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        // xorshift64: cheap and good enough to spread keys.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let started = Instant::now();
    let mut ops: u64 = 0;
    while started.elapsed() < RUN_FOR {
        for _ in 0..256 {
            let key = format!("key-{:012}", next() % KEYS);
            if next() % 100 < read_percent {
                let _ = store.get(&key);
            } else {
                let _ = store.upsert(&key, ops.to_le_bytes(), TtlChange::Keep);
            }
            ops += 1;
        }
    }
    ops
}
