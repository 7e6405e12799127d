//! How well `evict-lru` approximates LRU: hit rates on a zipf trace.
//!
//! A cache-aside loop over one key universe: each request reads its key and,
//! on a miss, writes it (16-byte keys and values). Keys are drawn with YCSB's
//! Zipfian generator (θ = 0.99, ranks scattered over the key space). A kvcore
//! store bounded by `max_memory` with `evict-lru` runs the trace first; its
//! average key count after warm-up is then the capacity, in keys, of an
//! exact LRU (a map plus an ordered index by last use) and of random
//! eviction, which replay the same trace. The first fifth of the trace warms
//! the caches and is not counted.
//!
//! `cargo bench -p kvcore --bench eviction` prints the table; under
//! `cargo test` (no `--bench` argument) it runs a short trace as a smoke test.

use std::collections::{BTreeMap, HashMap};

use kvcore::{ActiveExpiry, Eviction, Store};

const THETA: f64 = 0.99;

/// YCSB's ZipfianGenerator (Gray et al., "Quickly generating billion-record
/// synthetic databases"): rank 0 is the most popular.
struct Zipf {
    items: u64,
    alpha: f64,
    zetan: f64,
    eta: f64,
    half_pow_theta: f64,
    rng: u64,
}

impl Zipf {
    fn new(items: u64, seed: u64) -> Zipf {
        let zeta = |n: u64| (1..=n).map(|i| (i as f64).powf(-THETA)).sum::<f64>();
        let zetan = zeta(items);
        let zeta2 = zeta(2);
        Zipf {
            items,
            alpha: 1.0 / (1.0 - THETA),
            zetan,
            eta: (1.0 - (2.0 / items as f64).powf(1.0 - THETA)) / (1.0 - zeta2 / zetan),
            half_pow_theta: 0.5f64.powf(THETA),
            rng: seed | 1,
        }
    }

    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The next key: its rank, scattered by a multiplicative bijection so
    /// that popular keys are not neighbours.
    fn next(&mut self) -> u64 {
        let u = self.uniform();
        let uz = u * self.zetan;
        let rank = if uz < 1.0 {
            0
        } else if uz < 1.0 + self.half_pow_theta {
            1
        } else {
            ((self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64)
                .min(self.items - 1)
        };
        // 48271 is prime and does not divide the universe sizes used here.
        (rank * 48_271) % self.items
    }
}

fn key(i: u64) -> String {
    format!("key:{i:012}")
}

struct Outcome {
    hit_rate: f64,
    mean_keys: f64,
}

/// The kvcore store bounded by `bound` bytes with `evict-lru`.
fn run_kvcore(trace: &[u64], bound: u64) -> Outcome {
    let store = Store::builder()
        .max_memory(bound)
        .eviction(Eviction::EvictLru)
        .active_expiry(ActiveExpiry::Manual)
        .build();
    let warm = trace.len() / 5;
    let (mut hits, mut samples, mut keys_sum) = (0u64, 0u64, 0u64);
    for (n, &i) in trace.iter().enumerate() {
        let k = key(i);
        let hit = store.get(&k).expect("a valid key").is_some();
        if !hit {
            store
                .create(&k, [b'v'; 16], None)
                .expect("evict-lru makes room");
        }
        if n >= warm {
            hits += hit as u64;
            if n % 1000 == 0 {
                samples += 1;
                keys_sum += store.len() as u64;
            }
        }
    }
    Outcome {
        hit_rate: hits as f64 / (trace.len() - warm) as f64,
        mean_keys: keys_sum as f64 / samples as f64,
    }
}

/// Exact LRU holding at most `capacity` keys.
fn run_exact_lru(trace: &[u64], capacity: usize) -> f64 {
    let warm = trace.len() / 5;
    let mut last_use: HashMap<u64, u64> = HashMap::new();
    let mut by_age: BTreeMap<u64, u64> = BTreeMap::new();
    let mut hits = 0u64;
    for (tick, &i) in trace.iter().enumerate() {
        let tick = tick as u64;
        let hit = match last_use.insert(i, tick) {
            Some(previous) => {
                by_age.remove(&previous);
                true
            }
            None => false,
        };
        by_age.insert(tick, i);
        if last_use.len() > capacity {
            let (_, oldest) = by_age.pop_first().expect("over capacity, so not empty");
            last_use.remove(&oldest);
        }
        if tick as usize >= warm {
            hits += hit as u64;
        }
    }
    hits as f64 / (trace.len() - warm) as f64
}

/// Random eviction holding at most `capacity` keys: the floor any policy
/// that looks at recency should beat.
fn run_random(trace: &[u64], capacity: usize) -> f64 {
    let warm = trace.len() / 5;
    let mut slots: Vec<u64> = Vec::with_capacity(capacity + 1);
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut hits = 0u64;
    for (n, &i) in trace.iter().enumerate() {
        let hit = index.contains_key(&i);
        if !hit {
            if slots.len() == capacity {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let victim = (rng % capacity as u64) as usize;
                index.remove(&slots[victim]);
                slots[victim] = i;
                index.insert(i, victim);
            } else {
                index.insert(i, slots.len());
                slots.push(i);
            }
        }
        if n >= warm {
            hits += hit as u64;
        }
    }
    hits as f64 / (trace.len() - warm) as f64
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (universe, requests, bounds): (u64, usize, &[u64]) = if full {
        (1_000_000, 5_000_000, &[1 << 20, 8 << 20, 32 << 20])
    } else {
        (10_000, 50_000, &[64 << 10])
    };
    let mut zipf = Zipf::new(universe, 42);
    let trace: Vec<u64> = (0..requests).map(|_| zipf.next()).collect();
    println!(
        "\nHit rates on a zipf trace (theta {THETA}): {requests} requests over {universe} keys, \
         get then create on a miss; the first fifth warms up.\n"
    );
    println!(
        "| bound | keys held (mean) | kvcore evict-lru | exact LRU | random | kvcore misses / exact LRU misses |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for &bound in bounds {
        let kvcore = run_kvcore(&trace, bound);
        let capacity = kvcore.mean_keys.round() as usize;
        let exact = run_exact_lru(&trace, capacity);
        let random = run_random(&trace, capacity);
        println!(
            "| {} KiB | {capacity} | {:.2}% | {:.2}% | {:.2}% | {:.3} |",
            bound >> 10,
            kvcore.hit_rate * 100.0,
            exact * 100.0,
            random * 100.0,
            (1.0 - kvcore.hit_rate) / (1.0 - exact),
        );
        assert!(
            kvcore.hit_rate > random,
            "evict-lru should beat random eviction"
        );
    }
}
