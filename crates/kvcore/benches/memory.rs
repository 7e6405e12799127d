//! Heap bytes per key: 1M keys of 16 bytes, 16-byte values, each with a TTL.
//!
//! Each structure is measured in a fresh child process (this binary run
//! again with `--measure NAME`), as the growth of the process's resident set
//! (`VmRSS` in `/proc/self/status`) while the keys go in. That counts what the
//! allocator really takes from the system, chunk headers, size-class rounding,
//! free lists and hash-table slack included, which summing requested sizes in
//! a counting allocator would miss.
//!
//! For kvcore rows the table also shows the store's own count of what it
//! holds (`Stats::memory.used`, what a `max_memory` bound is checked
//! against), to show how close the accounting is to what the process took.
//!
//! `cargo bench -p kvcore --bench memory` prints a table; under `cargo test`
//! (no `--bench` argument) it runs the same code on 10k keys as a smoke test.

use std::collections::HashMap;
use std::hint::black_box;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvcore::{Eviction, Store, Tuning};

const KEYS: usize = 1_000_000;
const SMOKE_KEYS: usize = 10_000;
const TTL: Duration = Duration::from_secs(3600);

/// What each contender is, in the order of the table.
const CONTENDERS: [(&str, &str); 8] = [
    ("kvcore-balanced", "kvcore `Store`, balanced tuning"),
    (
        "kvcore-bound-reject",
        "kvcore `Store`, `max_memory(1 GiB)`, reject (nothing refused)",
    ),
    (
        "kvcore-bound-lru",
        "kvcore `Store`, `max_memory(1 GiB)`, evict-lru (nothing evicted)",
    ),
    ("kvcore-read-heavy", "kvcore `Store`, read-heavy tuning"),
    ("kvcore-write-heavy", "kvcore `Store`, write-heavy tuning"),
    (
        "dashmap",
        "`DashMap<String, (Vec<u8>, u64, Option<Instant>)>` (value, version, deadline)",
    ),
    (
        "std-hashmap",
        "`HashMap<String, (Vec<u8>, u64, Option<Instant>)>`, one table",
    ),
    (
        "moka",
        "moka `sync::Cache<String, Arc<[u8]>>` with time_to_live",
    ),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--measure") {
        let name = &args[at + 1];
        let keys = args[at + 2].parse().expect("key count");
        let (delta, counted) = measure(name, keys);
        println!("{delta} {counted}");
        return;
    }
    let keys = if args.iter().any(|a| a == "--bench") {
        KEYS
    } else {
        SMOKE_KEYS
    };
    let exe = std::env::current_exe().expect("own path");
    println!("\nHeap bytes per key: {keys} keys, 16-byte keys and values, TTL {TTL:?}.");
    println!("Each row is a fresh process; bytes = growth of VmRSS / keys.\n");
    println!("| structure | bytes per key | vs Redis 7 (104) | kvcore's own count |");
    println!("|---|---:|---:|---:|");
    for (name, what) in CONTENDERS {
        let out = Command::new(&exe)
            .args(["--measure", name, &keys.to_string()])
            .output()
            .expect("run a measuring child");
        assert!(out.status.success(), "measuring {name} failed: {out:?}");
        let printed = String::from_utf8_lossy(&out.stdout);
        let mut figures = printed
            .split_whitespace()
            .map(|n| n.parse::<u64>().expect("child prints two numbers"));
        let (delta, counted) = (figures.next().unwrap(), figures.next().unwrap());
        let per_key = delta as f64 / keys as f64;
        let counted = match counted {
            0 => "-".to_owned(),
            n => format!("{:.1}", n as f64 / keys as f64),
        };
        println!(
            "| {what} | {per_key:.1} | {:.2}x | {counted} |",
            per_key / 104.0
        );
    }
}

/// The resident set of this process, in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kb * 1024
}

/// Fills one structure with `keys` keys and returns how many bytes the
/// resident set grew by, and for kvcore what the store counted itself.
/// The structure stays alive until after the reading.
fn measure(name: &str, keys: usize) -> (u64, u64) {
    let mut key = String::with_capacity(16);
    let mut next_key = |i: usize| {
        use std::fmt::Write;
        key.clear();
        write!(key, "key:{i:012}").expect("write to a String");
        debug_assert_eq!(key.len(), 16);
        key.clone()
    };
    let value = |i: usize| -> [u8; 16] {
        let mut value = [b'v'; 16];
        value[..8].copy_from_slice(&(i as u64).to_le_bytes());
        value
    };
    // Warm up the allocator and the formatting machinery before the baseline.
    black_box(next_key(0));
    let before = resident_bytes();
    let mut counted = 0;
    let after = match name {
        "kvcore-balanced"
        | "kvcore-read-heavy"
        | "kvcore-write-heavy"
        | "kvcore-bound-reject"
        | "kvcore-bound-lru" => {
            let builder = match name {
                "kvcore-bound-reject" => Store::builder().max_memory(1 << 30),
                "kvcore-bound-lru" => Store::builder()
                    .max_memory(1 << 30)
                    .eviction(Eviction::EvictLru),
                _ => {
                    let tuning: Tuning = name["kvcore-".len()..].parse().expect("a tuning name");
                    Store::builder().tuning(tuning)
                }
            };
            let store = builder.build();
            for i in 0..keys {
                store
                    .create(&next_key(i), value(i), Some(TTL))
                    .expect("create a fresh key");
            }
            let after = resident_bytes();
            assert_eq!(store.len(), keys);
            let stats = store.stats();
            assert_eq!(stats.memory.evicted, 0);
            counted = stats.memory.used;
            black_box(store);
            after
        }
        "dashmap" => {
            let map = dashmap::DashMap::new();
            for i in 0..keys {
                map.insert(
                    next_key(i),
                    (value(i).to_vec(), i as u64, Some(Instant::now() + TTL)),
                );
            }
            let after = resident_bytes();
            assert_eq!(map.len(), keys);
            black_box(map);
            after
        }
        "std-hashmap" => {
            let mut map = HashMap::new();
            for i in 0..keys {
                map.insert(
                    next_key(i),
                    (value(i).to_vec(), i as u64, Some(Instant::now() + TTL)),
                );
            }
            let after = resident_bytes();
            assert_eq!(map.len(), keys);
            black_box(map);
            after
        }
        "moka" => {
            let cache = moka::sync::Cache::builder().time_to_live(TTL).build();
            for i in 0..keys {
                cache.insert(next_key(i), Arc::<[u8]>::from(value(i)));
            }
            cache.run_pending_tasks();
            let after = resident_bytes();
            assert_eq!(cache.entry_count(), keys as u64);
            black_box(cache);
            after
        }
        other => panic!("unknown structure {other}"),
    };
    (after.saturating_sub(before), counted)
}
