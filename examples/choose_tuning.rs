//! Choosing a tuning: runs the same short workloads against each preset on
//! this machine and prints what each one changes and what it measured here,
//! as a ratio to `balanced`. Presets run in turns, in a rotating order, and
//! the median of the rounds is shown, so a burst of other work on the machine
//! does not land on one preset only. (For figures to publish, use the
//! criterion benchmark: see BENCHMARKS.md.)
//!
//! Run: `cargo run --release -p examples --bin choose_tuning [read-percent]`
//! (without an argument: a 95% and a 50% read mix).

use std::thread;
use std::time::{Duration, Instant};

use kvcore::{Store, TtlChange, Tuning};

const KEYS: u64 = 100_000;
/// Keys that take half of the operations in the "hot keys" pattern.
const HOT_KEYS: u64 = 100;
const TURN: Duration = Duration::from_millis(100);
const ROUNDS: usize = 5;
const PRESETS: [Tuning; 3] = [Tuning::Balanced, Tuning::ReadHeavy, Tuning::WriteHeavy];

fn main() {
    let mixes: Vec<u64> = match std::env::args().nth(1).and_then(|arg| arg.parse().ok()) {
        Some(percent) if percent <= 100 => vec![percent],
        _ => vec![95, 50],
    };
    let threads = thread::available_parallelism().map_or(2, |n| n.get());
    println!("{threads} threads, {KEYS} keys of 16 bytes, 8-byte values, {ROUNDS} rounds\n");
    for tuning in PRESETS {
        println!("{:>12}: {}", tuning.name(), what_it_changes(tuning));
    }
    let stores: Vec<Store> = PRESETS.iter().map(|&t| filled(t)).collect();
    for read_percent in mixes {
        for hot in [false, true] {
            let keys = if hot { "hot keys" } else { "uniform keys" };
            println!("\n{read_percent}% gets, {keys}:");
            let mut rates: Vec<Vec<f64>> = vec![Vec::new(); PRESETS.len()];
            for round in 0..ROUNDS {
                for turn in 0..PRESETS.len() {
                    let p = (round + turn) % PRESETS.len();
                    rates[p].push(measure(&stores[p], threads, read_percent, hot));
                }
            }
            let medians: Vec<f64> = rates.iter_mut().map(|r| median(r)).collect();
            for (p, tuning) in PRESETS.iter().enumerate() {
                println!(
                    "{:>12}: {:>12.0} ops/s  {:.2}x balanced",
                    tuning.name(),
                    medians[p],
                    medians[p] / medians[0]
                );
            }
        }
    }
}

fn what_it_changes(tuning: Tuning) -> &'static str {
    match tuning {
        Tuning::ReadHeavy => {
            "a lock slot per reading thread, small values copied out: reads share nothing, writes lock 8 slots"
        }
        Tuning::WriteHeavy => "256 shards: writers meet a quarter as often; more shards to scan",
        _ => "64 shards, one reader-writer lock each, zero-copy reads",
    }
}

fn filled(tuning: Tuning) -> Store {
    let store = Store::builder().tuning(tuning).build();
    for i in 0..KEYS {
        store
            .upsert(&key(i), i.to_le_bytes(), TtlChange::Keep)
            .expect("valid key and value");
    }
    store
}

fn key(i: u64) -> String {
    format!("key-{i:012}")
}

/// Operations per second of `threads` threads on `store` for one turn.
fn measure(store: &Store, threads: usize, read_percent: u64, hot: bool) -> f64 {
    let ops: u64 = thread::scope(|scope| {
        let workers: Vec<_> = (0..threads as u64)
            .map(|seed| scope.spawn(move || run(store, seed, read_percent, hot)))
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    });
    ops as f64 / TURN.as_secs_f64()
}

/// Mixed gets and sets until the turn is over; returns the count.
fn run(store: &Store, seed: u64, read_percent: u64, hot: bool) -> u64 {
    let mut state = (seed + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        // xorshift64: cheap and good enough to spread keys.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // Keys are formatted before the clock starts.
    let names: Vec<String> = (0..4096).map(|_| key(next() % KEYS)).collect();
    let hot_names: Vec<String> = (0..HOT_KEYS).map(|i| key(i * (KEYS / HOT_KEYS))).collect();
    let started = Instant::now();
    let mut ops: u64 = 0;
    while started.elapsed() < TURN {
        for _ in 0..256 {
            let r = next();
            let key = match hot && r & 1 == 0 {
                true => &hot_names[(r >> 1) as usize % hot_names.len()],
                false => &names[(r >> 1) as usize % names.len()],
            };
            if (r >> 32) % 100 < read_percent {
                let _ = store.get(key);
            } else {
                let _ = store.upsert(key, ops.to_le_bytes(), TtlChange::Keep);
            }
            ops += 1;
        }
    }
    ops
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
