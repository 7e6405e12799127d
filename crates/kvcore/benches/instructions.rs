//! A driver for counting instructions per operation with callgrind.
//!
//! It fills a map with 100k keys (16-byte keys and values), then runs 100k
//! random gets in `gets` and 100k random upserts in `sets`, each a function of
//! its own so that `callgrind_annotate --inclusive=yes` shows their totals:
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p kvcore --bench instructions --no-run
//! valgrind --tool=callgrind --callgrind-out-file=cg.out \
//!     /work/target-bench/release/deps/instructions-<hash> kvcore
//! callgrind_annotate --inclusive=yes cg.out | grep -E 'instructions::(gets|sets)'
//! ```
//!
//! The argument picks the map: `kvcore` (balanced), `kvcore-ttl` (every key
//! with a TTL), `kvcore-read-heavy`, `kvcore-write-heavy` or `dashmap`. Divide the totals by 100k. Run by `cargo bench` without an
//! argument, it only checks that every driver runs.

use std::hint::black_box;
use std::time::Duration;

use kvcore::{ActiveExpiry, Store, TtlChange, Tuning};

const KEYS: usize = 100_000;
const OPS: usize = 100_000;

fn key(i: usize) -> String {
    format!("key:{i:012}")
}

/// The i-th draw of a fixed xorshift sequence, as a key index.
fn draws(seed: u64) -> impl Iterator<Item = usize> {
    let mut state = seed;
    std::iter::repeat_with(move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (((r & 0xFFFF_FFFF) * KEYS as u64) >> 32) as usize
    })
}

#[inline(never)]
fn gets(get: impl Fn(&str) -> usize, keys: &[String]) -> usize {
    draws(12345).take(OPS).map(|i| get(&keys[i])).sum()
}

#[inline(never)]
fn sets(set: impl Fn(&str, &[u8]), keys: &[String]) {
    for i in draws(777).take(OPS) {
        set(&keys[i], &[1u8; 16]);
    }
}

fn main() {
    let keys: Vec<String> = (0..KEYS).map(key).collect();
    let which = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let drivers = match which.as_deref() {
        Some(one) => vec![one.to_owned()],
        None => vec![
            "kvcore".into(),
            "kvcore-ttl".into(),
            "kvcore-read-heavy".into(),
            "kvcore-write-heavy".into(),
            "dashmap".into(),
        ],
    };
    for driver in drivers {
        match driver.as_str() {
            "kvcore" | "kvcore-ttl" | "kvcore-read-heavy" | "kvcore-write-heavy" => {
                let ttl = (driver == "kvcore-ttl").then_some(Duration::from_secs(3600));
                let tuning = match driver.as_str() {
                    "kvcore-read-heavy" => Tuning::ReadHeavy,
                    "kvcore-write-heavy" => Tuning::WriteHeavy,
                    _ => Tuning::Balanced,
                };
                let store = Store::builder()
                    .tuning(tuning)
                    .active_expiry(ActiveExpiry::Manual)
                    .build();
                for k in &keys {
                    store.create(k, [b'v'; 16], ttl).expect("fresh key");
                }
                let get = |k: &str| store.get(k).ok().flatten().map_or(0, |e| e.value().len());
                assert_eq!(black_box(gets(get, &keys)), OPS * 16);
                sets(
                    |k, v| {
                        store.upsert(k, v, TtlChange::Keep).expect("upsert");
                    },
                    &keys,
                );
            }
            "dashmap" => {
                let map = dashmap::DashMap::new();
                for k in &keys {
                    map.insert(k.clone(), vec![b'v'; 16]);
                }
                let get = |k: &str| map.get(k).map_or(0, |v| v.len());
                assert_eq!(black_box(gets(get, &keys)), OPS * 16);
                sets(
                    |k, v| {
                        map.insert(k.to_owned(), v.to_vec());
                    },
                    &keys,
                );
            }
            other => panic!("unknown driver {other}: expected kvcore, kvcore-ttl or dashmap"),
        }
    }
}
