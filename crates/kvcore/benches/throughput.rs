//! Throughput of kvcore's tuning presets next to std, dashmap and moka.
//!
//! 100k keys of 16 bytes with 16-byte values; 1 and 2 threads; a 95/5 and a
//! 50/50 get/upsert mix. Every get hits a present key and every set replaces
//! one. Each thread picks keys with its own xorshift generator, so the only
//! state threads share is the map under test.
//!
//! Threads are spawned once per sample and released together by a barrier;
//! each times its own operations and the sample takes the slowest thread, so
//! spawning is never timed. One criterion "element" is one operation of every
//! thread: the reported rate is operations per second summed over threads.
//!
//! The machine is shared and noisy, and criterion measures one benchmark
//! after another, so a burst of someone else's work lands on whichever
//! contender runs at that moment. After the criterion groups the run
//! therefore measures again in *paired rounds*: every round builds every
//! contender afresh, in a random order, then runs each once for ~15 ms, back
//! to back in another random order, and each ratio is taken within a round.
//! The medians of those ratios (and how many rounds each side won) are the
//! figures BENCHMARKS.md quotes. Paired rounds are timed twice: by the wall
//! clock, and by each thread's time on a CPU, which leaves out the time
//! other people's processes held the cores. `kvcore-balanced-again` is a
//! second store of the default preset, so `balanced / balanced` is an A/A
//! comparison: the noise floor of the run it is printed with.
//!
//! Keys are drawn in two ways, each a workload of its own: *uniform* (every
//! key equally likely) and *zipf* (YCSB's default skew, θ = 0.99: the most
//! popular key takes about 8% of the operations, the top 1% of keys about
//! 60%), where threads meet on the same hot shards and records.
//!
//! `KVCORE_BENCH_WATCH=1` compares the change feed's cost instead: the
//! balanced store as it ships (no history), the same with a history of
//! 10,000 events (every write copies its key and value into an event), and
//! with that history and one idle watcher (a prefix no key has: the
//! dispatcher thread wakes and scans every event), next to write-heavy for
//! the A/A noise floor.
//!
//! Criterion times samples by the wall clock; `KVCORE_BENCH_CLOCK=cpu` makes
//! it use thread CPU time too. `KVCORE_BENCH_ROUNDS` sets the paired rounds
//! (default 40); `KVCORE_BENCH_KEYS=uniform` or `=zipf` runs one key
//! distribution only.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Barrier, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use kvcore::{ActiveExpiry, Store, TtlChange, Tuning};

const KEYS: usize = 100_000;
const KEY_BYTES: usize = 16;
/// Long enough never to expire during a run (moka's, and one kvcore store's).
const TTL: Duration = Duration::from_secs(3600);
/// Paired rounds per mix and thread count (`KVCORE_BENCH_ROUNDS` overrides).
const ROUNDS: usize = 40;
/// Wall time each contender gets in one paired round.
const ROUND_SLICE: Duration = Duration::from_millis(15);

/// A get/upsert mix: `get_percent` of operations are gets.
#[derive(Clone, Copy)]
struct Mix {
    name: &'static str,
    get_percent: u32,
}

const MIXES: [Mix; 2] = [
    Mix {
        name: "get95-set5",
        get_percent: 95,
    },
    Mix {
        name: "get50-set50",
        get_percent: 50,
    },
];

const THREADS: [usize; 2] = [1, 2];

/// YCSB's Zipf exponent.
const ZIPF_THETA: f64 = 0.99;
/// Entries in the table a zipf draw picks from.
const ZIPF_TABLE: usize = 1 << 16;

/// How a thread picks the key of its next operation.
enum Dist {
    Uniform,
    /// Key indices at evenly spaced quantiles of the Zipf distribution over
    /// key ranks; a draw picks one entry at random. Ranks are scattered over
    /// the key space (a multiplicative permutation), so the popular keys
    /// are not neighbours.
    Zipf(Box<[u32]>),
}

impl Dist {
    fn zipf() -> Dist {
        let weights: Vec<f64> = (1..=KEYS).map(|r| (r as f64).powf(-ZIPF_THETA)).collect();
        let total: f64 = weights.iter().sum();
        let mut table = Vec::with_capacity(ZIPF_TABLE);
        let (mut rank, mut cumulative) = (0usize, weights[0] / total);
        for slot in 0..ZIPF_TABLE {
            let quantile = (slot as f64 + 0.5) / ZIPF_TABLE as f64;
            while cumulative < quantile && rank + 1 < KEYS {
                rank += 1;
                cumulative += weights[rank] / total;
            }
            // 48271 is coprime with KEYS (100,000 = 2^5 * 5^5): a bijection.
            table.push(((rank as u64 * 48_271) % KEYS as u64) as u32);
        }
        Dist::Zipf(table.into_boxed_slice())
    }

    fn name(&self) -> &'static str {
        match self {
            Dist::Uniform => "uniform",
            Dist::Zipf(_) => "zipf",
        }
    }

    /// The key index for 32 random bits.
    #[inline]
    fn pick(&self, bits: u64) -> usize {
        match self {
            // Multiply-shift: uniform over the keys.
            Dist::Uniform => ((bits * KEYS as u64) >> 32) as usize,
            Dist::Zipf(table) => table[bits as usize % ZIPF_TABLE] as usize,
        }
    }
}

const PRESETS: [Tuning; 3] = [Tuning::Balanced, Tuning::ReadHeavy, Tuning::WriteHeavy];

/// What every contender offers the workload.
trait Contender: Sync {
    /// Reads the value of a present key; returns something derived from its
    /// bytes so the read cannot be optimized away (0 on a miss).
    fn get(&self, key: &str) -> usize;
    /// Creates or replaces `key`.
    fn set(&self, key: &str, value: &[u8]);
}

/// Touches the value's bytes the way a caller would.
fn digest(value: &[u8]) -> usize {
    value.len() + value.last().copied().unwrap_or(0) as usize
}

impl Contender for Store {
    fn get(&self, key: &str) -> usize {
        match Store::get(self, key) {
            Ok(Some(entry)) => digest(entry.value()),
            _ => 0,
        }
    }

    fn set(&self, key: &str, value: &[u8]) {
        let written = self.upsert(key, value, TtlChange::Keep);
        debug_assert!(written.is_ok());
    }
}

/// A store with a watcher that never matches, kept as long as the store.
struct Watched {
    store: Store,
    _watcher: kvcore::Watcher,
}

impl Contender for Watched {
    fn get(&self, key: &str) -> usize {
        Contender::get(&self.store, key)
    }

    fn set(&self, key: &str, value: &[u8]) {
        Contender::set(&self.store, key, value)
    }
}

impl Contender for RwLock<HashMap<String, Vec<u8>>> {
    fn get(&self, key: &str) -> usize {
        let map = self.read().unwrap_or_else(|e| e.into_inner());
        map.get(key).map_or(0, |v| digest(v))
    }

    fn set(&self, key: &str, value: &[u8]) {
        let mut map = self.write().unwrap_or_else(|e| e.into_inner());
        map.insert(key.to_owned(), value.to_vec());
    }
}

impl Contender for dashmap::DashMap<String, Vec<u8>> {
    fn get(&self, key: &str) -> usize {
        dashmap::DashMap::get(self, key).map_or(0, |v| digest(&v))
    }

    fn set(&self, key: &str, value: &[u8]) {
        self.insert(key.to_owned(), value.to_vec());
    }
}

impl Contender for moka::sync::Cache<String, Arc<[u8]>> {
    fn get(&self, key: &str) -> usize {
        moka::sync::Cache::get(self, key).map_or(0, |v| digest(&v))
    }

    fn set(&self, key: &str, value: &[u8]) {
        self.insert(key.to_owned(), Arc::from(value));
    }
}

/// The key space: `KEYS` keys of `KEY_BYTES` bytes in one string, so reading
/// a key costs the harness no pointer chase of its own.
struct Keys(String);

impl Keys {
    fn new() -> Keys {
        let mut all = String::with_capacity(KEYS * KEY_BYTES);
        for i in 0..KEYS {
            all.push_str(&format!("key:{i:012}"));
        }
        Keys(all)
    }

    fn get(&self, i: usize) -> &str {
        &self.0[i * KEY_BYTES..(i + 1) * KEY_BYTES]
    }
}

/// xorshift64*: cheap, and private to each thread.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // Any non-zero state works; spread small seeds over the bits.
        Rng(seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn value_for(i: u64) -> [u8; 16] {
    let mut value = [b'v'; 16];
    value[..8].copy_from_slice(&i.to_le_bytes());
    value
}

/// One mix at one thread count over the shared key space.
#[derive(Clone, Copy)]
struct Workload<'k> {
    keys: &'k Keys,
    dist: &'k Dist,
    mix: Mix,
    threads: usize,
}

impl Workload<'_> {
    fn name(&self) -> String {
        format!(
            "{}/{}/{}-threads",
            self.dist.name(),
            self.mix.name,
            self.threads
        )
    }

    /// Runs `ops` operations on each of `threads` fresh threads and returns
    /// the times of the slowest, from the moment the barrier released them.
    fn run(&self, map: &impl Contender, seed: u64, ops: u64) -> Timing {
        let barrier = Barrier::new(self.threads);
        thread::scope(|s| {
            let workers: Vec<_> = (0..self.threads)
                .map(|t| {
                    let barrier = &barrier;
                    let seed = seed.wrapping_mul(64).wrapping_add(t as u64);
                    s.spawn(move || {
                        barrier.wait();
                        self.run_thread(map, seed, ops)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("bench thread panicked"))
                .fold(Timing::default(), |slowest, t| Timing {
                    wall: slowest.wall.max(t.wall),
                    cpu: slowest.cpu.max(t.cpu),
                })
        })
    }

    fn run_thread(&self, map: &impl Contender, seed: u64, ops: u64) -> Timing {
        let mut rng = Rng::new(seed);
        let (mut gets, mut hits) = (0u64, 0u64);
        let cpu_start = thread_cpu_time();
        let start = Instant::now();
        for _ in 0..ops {
            let r = rng.next();
            // Low 32 bits pick the key, high bits the op.
            let key = self.keys.get(self.dist.pick(r & 0xFFFF_FFFF));
            if ((r >> 32) as u32) % 100 < self.mix.get_percent {
                gets += 1;
                hits += u64::from(map.get(key) > 0);
            } else {
                map.set(key, &value_for(r));
            }
        }
        let wall = start.elapsed();
        let cpu = match (cpu_start, thread_cpu_time()) {
            (Some(from), Some(to)) => to.saturating_sub(from),
            _ => wall,
        };
        assert_eq!(hits, gets, "every get must hit a present key");
        black_box(hits);
        Timing { wall, cpu }
    }
}

/// How long a sample took: on the wall clock, and on the CPU.
#[derive(Clone, Copy, Default)]
struct Timing {
    wall: Duration,
    /// Time the thread actually ran (from the scheduler's accounting), so
    /// time spent preempted by other people's work on this shared machine is
    /// left out. It also leaves out time parked waiting for a lock, which
    /// flatters the most contended contenders (std's single lock, dashmap's
    /// 8 shards here), never kvcore.
    cpu: Duration,
}

/// This thread's time on a CPU so far, from `/proc/thread-self/schedstat`
/// (first field, nanoseconds); `None` where that file does not exist.
fn thread_cpu_time() -> Option<Duration> {
    // The kernel brings that figure up to date only at a tick or a trip
    // through the scheduler; a yield is such a trip, so the reading is exact.
    thread::yield_now();
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// A filled contender, its type erased once per sample, not per op.
type Runner<'a> = Box<dyn Fn(&Workload<'_>, u64, u64) -> Timing + 'a>;

/// Builds and fills a fresh contender.
type Build<'a> = Box<dyn Fn() -> Runner<'a> + 'a>;

fn runner<'a>(map: impl Contender + 'a) -> Runner<'a> {
    Box::new(move |w: &Workload<'_>, seed, ops| w.run(&map, seed, ops))
}

/// Every contender, by name. The presets hold keys without a TTL, like the
/// maps they are compared with; one more store shows what a TTL on every key
/// costs (a clock read per get).
fn contenders(keys: &Keys) -> Vec<(String, Build<'_>)> {
    if std::env::var("KVCORE_BENCH_WATCH").is_ok_and(|w| w == "1") {
        return watch_contenders(keys);
    }
    let mut builds: Vec<(String, Build<'_>)> = PRESETS
        .iter()
        .map(|&tuning| {
            let build: Build<'_> = Box::new(move || runner(kvcore_store(tuning, keys, None)));
            (format!("kvcore-{}", tuning.name()), build)
        })
        .collect();
    // A second store of the default preset: the A/A column, this run's own
    // noise floor.
    builds.push((
        "kvcore-balanced-again".into(),
        Box::new(move || runner(kvcore_store(Tuning::Balanced, keys, None))),
    ));
    builds.push((
        "kvcore-balanced-ttl".into(),
        Box::new(move || runner(kvcore_store(Tuning::Balanced, keys, Some(TTL)))),
    ));
    builds.push((
        "std-rwlock".into(),
        Box::new(move || {
            let map = RwLock::new(HashMap::new());
            fill(&map, keys);
            runner(map)
        }),
    ));
    builds.push((
        "dashmap".into(),
        Box::new(move || {
            let map = dashmap::DashMap::new();
            fill(&map, keys);
            runner(map)
        }),
    ));
    builds.push((
        "moka".into(),
        Box::new(move || {
            let map = moka::sync::Cache::builder().time_to_live(TTL).build();
            fill(&map, keys);
            map.run_pending_tasks();
            runner(map)
        }),
    ));
    builds
}

/// History in events of the `kvcore-history` contenders.
const HISTORY: usize = 10_000;

/// See `KVCORE_BENCH_WATCH` in the module docs.
fn watch_contenders(keys: &Keys) -> Vec<(String, Build<'_>)> {
    let plain = |tuning| -> Build<'_> {
        Box::new(move || {
            runner(kvcore_store_with(
                Store::builder().tuning(tuning),
                keys,
                None,
            ))
        })
    };
    vec![
        ("kvcore-balanced".into(), plain(Tuning::Balanced)),
        ("kvcore-write-heavy".into(), plain(Tuning::WriteHeavy)),
        (
            "kvcore-history".into(),
            Box::new(move || {
                runner(kvcore_store_with(
                    Store::builder().watch_history(HISTORY),
                    keys,
                    None,
                ))
            }),
        ),
        (
            "kvcore-watched".into(),
            Box::new(move || {
                let store = kvcore_store_with(Store::builder().watch_history(HISTORY), keys, None);
                let watcher = store.watch("no-such-prefix/", None).expect("watch");
                runner(Watched {
                    store,
                    _watcher: watcher,
                })
            }),
        ),
    ]
}

fn kvcore_store(tuning: Tuning, keys: &Keys, ttl: Option<Duration>) -> Store {
    kvcore_store_with(Store::builder().tuning(tuning), keys, ttl)
}

fn kvcore_store_with(builder: kvcore::StoreBuilder, keys: &Keys, ttl: Option<Duration>) -> Store {
    let store = builder
        // Nothing expires during a run: keep the reclaimer's thread out of
        // the measurement.
        .active_expiry(ActiveExpiry::Manual)
        .build();
    for i in 0..KEYS {
        store
            .create(keys.get(i), value_for(i as u64), ttl)
            .expect("fresh key");
    }
    store
}

fn fill(map: &impl Contender, keys: &Keys) {
    for i in 0..KEYS {
        map.set(keys.get(i), &value_for(i as u64));
    }
}

fn main() {
    let keys = &Keys::new();
    let builds = contenders(keys);
    let only = std::env::var("KVCORE_BENCH_KEYS").unwrap_or_default();
    let dists: Vec<Dist> = [Dist::Uniform, Dist::zipf()]
        .into_iter()
        .filter(|d| only.is_empty() || only == d.name())
        .collect();
    let workloads: Vec<Workload<'_>> = dists
        .iter()
        .flat_map(|dist| {
            MIXES.iter().flat_map(move |&mix| {
                THREADS.iter().map(move |&threads| Workload {
                    keys,
                    dist,
                    mix,
                    threads,
                })
            })
        })
        .collect();

    let mut criterion = Criterion::default().configure_from_args();
    let by_cpu = std::env::var("KVCORE_BENCH_CLOCK").is_ok_and(|c| c == "cpu");
    let mut seed = 0u64;
    let built: Vec<(&String, Runner<'_>)> =
        builds.iter().map(|(name, build)| (name, build())).collect();
    for w in &workloads {
        let mut group = criterion.benchmark_group(w.name());
        group.throughput(Throughput::Elements(w.threads as u64));
        for (name, run) in &built {
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_custom(|iters| {
                    seed += 1;
                    let took = run(w, seed, iters);
                    if by_cpu { took.cpu } else { took.wall }
                })
            });
        }
        group.finish();
    }
    criterion.final_summary();
    drop(built);

    // `cargo bench` passes --bench; `cargo test --benches` does not, and
    // only wants to know that the benchmarks run.
    if std::env::args().any(|a| a == "--bench") {
        let rounds = std::env::var("KVCORE_BENCH_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(ROUNDS);
        paired_rounds(&workloads, &builds, rounds);
    }
}

/// Rates (operations per second) of every contender, one row per round,
/// by one of the two clocks.
struct Rounds {
    names: Vec<String>,
    rates: Vec<Vec<f64>>,
}

impl Rounds {
    fn column(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    fn median_rate(&self, name: &str) -> Option<f64> {
        let c = self.column(name)?;
        median(self.rates.iter().map(|row| row[c]).collect())
    }

    /// Median over rounds of `a / b`, and the share of rounds `a` won.
    fn ratio(&self, a: &str, b: &str) -> Option<(f64, f64)> {
        let (a, b) = (self.column(a)?, self.column(b)?);
        let ratios: Vec<f64> = self.rates.iter().map(|row| row[a] / row[b]).collect();
        let won = ratios.iter().filter(|r| **r > 1.0).count() as f64 / ratios.len() as f64;
        Some((median(ratios)?, won))
    }
}

/// `0..n` in a random order (Fisher-Yates).
fn shuffled(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    order
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// Every round builds every contender afresh, so that what a single build
/// happens to get (its hash seed, where its hot records landed in memory)
/// varies from round to round and washes out in the median instead of
/// biasing every round the same way. Two identical layouts measured against
/// each other (the A/A column) showed such a bias of up to 1.3x when one
/// build served all rounds, and of up to 1.25x with fresh builds made in a
/// fixed order.
fn paired_rounds(workloads: &[Workload<'_>], builds: &[(String, Build<'_>)], rounds: usize) {
    let names: Vec<String> = builds.iter().map(|(n, _)| n.clone()).collect();
    let mut wall_results = Vec::new();
    let mut cpu_results = Vec::new();
    for (wi, w) in workloads.iter().enumerate() {
        // Size each contender's slice once, so all get about the same time:
        // from a second probe, once caches and clocks are warm (sizing from
        // a cold first run gave whichever contender came first shorter
        // slices, and lower rates, in every round).
        let ops: Vec<u64> = builds
            .iter()
            .map(|(_, build)| {
                let run = build();
                let probe = 50_000;
                run(w, 1, probe);
                let took = run(w, 2, probe).cpu.as_secs_f64().max(1e-6);
                ((probe as f64 * ROUND_SLICE.as_secs_f64() / took) as u64).max(1_000)
            })
            .collect();
        let mut wall = vec![vec![0.0; builds.len()]; rounds];
        let mut cpu = vec![vec![0.0; builds.len()]; rounds];
        for round in 0..rounds {
            // Built in a random order too: where a build lands in memory
            // depends on what was allocated and freed before it.
            let mut rng = Rng::new((wi * rounds + round) as u64);
            let mut contenders: Vec<Option<Runner<'_>>> = builds.iter().map(|_| None).collect();
            for c in shuffled(builds.len(), &mut rng) {
                contenders[c] = Some(builds[c].1());
            }
            let contenders: Vec<Runner<'_>> = contenders.into_iter().flatten().collect();
            // A fresh random order every round: rotating a fixed order
            // left each contender always following the same one (the one
            // after moka ran on the caches moka left behind, every time).
            for c in shuffled(contenders.len(), &mut rng) {
                let took = contenders[c](w, (round * 31 + c) as u64, ops[c]);
                let total = (ops[c] * w.threads as u64) as f64;
                wall[round][c] = total / took.wall.as_secs_f64();
                cpu[round][c] = total / took.cpu.as_secs_f64().max(1e-9);
            }
        }
        wall_results.push((
            w,
            Rounds {
                names: names.clone(),
                rates: wall,
            },
        ));
        cpu_results.push((
            w,
            Rounds {
                names: names.clone(),
                rates: cpu,
            },
        ));
    }
    println!("\n# Paired rounds ({rounds} rounds of ~{ROUND_SLICE:?} per contender and workload)");
    print_tables(&wall_results, "wall-clock time");
    print_tables(&cpu_results, "thread CPU time (time preempted left out)");
}

fn print_tables(results: &[(&Workload<'_>, Rounds)], clock: &str) {
    let names = &results[0].1.names;
    println!("\n## By {clock}: median throughput, million operations per second\n");
    println!("| keys | mix | threads | {} |", names.join(" | "));
    println!("|---|---|---:|{}", "---:|".repeat(names.len()));
    for (w, r) in results {
        let cells: Vec<String> = names
            .iter()
            .map(|n| {
                r.median_rate(n)
                    .map_or("-".into(), |x| format!("{:.2}", x / 1e6))
            })
            .collect();
        println!(
            "| {} | {} | {} | {} |",
            w.dist.name(),
            w.mix.name,
            w.threads,
            cells.join(" | ")
        );
    }
    let show = |ratio: Option<(f64, f64)>| {
        ratio.map_or("-".into(), |(r, won)| {
            format!("{r:.2}x ({:.0}%)", won * 100.0)
        })
    };
    if names.iter().any(|n| n == "kvcore-watched") {
        println!(
            "\n## By {clock}: the change feed's cost, median ratios (share of rounds the first one won)\n"
        );
        println!(
            "| keys | mix | threads | history / balanced | watched / balanced | balanced / write-heavy (A/A) |"
        );
        println!("|---|---|---:|---:|---:|---:|");
        for (w, r) in results {
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                w.dist.name(),
                w.mix.name,
                w.threads,
                show(r.ratio("kvcore-history", "kvcore-balanced")),
                show(r.ratio("kvcore-watched", "kvcore-balanced")),
                show(r.ratio("kvcore-balanced", "kvcore-write-heavy")),
            );
        }
        return;
    }
    println!("\n## By {clock}: median ratios (share of rounds the first one won)\n");
    println!(
        "| keys | mix | threads | read-heavy / balanced | write-heavy / balanced | read-heavy / write-heavy | balanced / balanced (A/A) | best preset | best / dashmap | best / moka | best / std-rwlock |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|");
    for (w, r) in results {
        let best = PRESETS
            .iter()
            .map(|t| format!("kvcore-{}", t.name()))
            .filter_map(|n| Some((r.median_rate(&n)?, n)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, n)| n)
            .unwrap_or_default();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            w.dist.name(),
            w.mix.name,
            w.threads,
            show(r.ratio("kvcore-read-heavy", "kvcore-balanced")),
            show(r.ratio("kvcore-write-heavy", "kvcore-balanced")),
            show(r.ratio("kvcore-read-heavy", "kvcore-write-heavy")),
            show(r.ratio("kvcore-balanced", "kvcore-balanced-again")),
            best.trim_start_matches("kvcore-"),
            show(r.ratio(&best, "dashmap")),
            show(r.ratio(&best, "moka")),
            show(r.ratio(&best, "std-rwlock")),
        );
    }
}
