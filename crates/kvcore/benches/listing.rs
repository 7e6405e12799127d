//! Listing and what it costs the writes around it, on one store of N keys.
//!
//! The store holds N keys `key:` + 12 digits (even numbers only, inserted
//! in a random order) with 16-byte values and a one-hour TTL, as the memory
//! bench's. Then, one after another:
//!
//! - `create` / `remove`: 100k keys with odd numbers (so each lands between
//!   existing keys, anywhere in the order) created, then removed; ns each;
//! - `churn`: 400k steps, each creating an odd key and removing the one
//!   created 100k steps before; ns a step (a create and a remove). Unlike
//!   the two above, it is long enough that writes a store defers (kvcore
//!   buffers up to 1024 a shard before ordering them) are mostly paid
//!   within it;
//! - `replace`: 100k upserts of existing keys, each with a value of another
//!   length than the stored one, so each replaces the key's record; ns each;
//! - `page100` / `page1000`: pages of 100 and 1000 keys from a random
//!   cursor; the median µs of a page;
//! - `get` / `upsert`: one thread on random existing keys, same-length
//!   values; ns each;
//! - `upsert2`: two threads upserting at once; ns per operation of the pair;
//! - `write_idle` / `write_listing`: the p50/p99/max µs of one thread's
//!   upserts, alone and while another thread pages through the whole store
//!   (1000 keys a page) over and over.
//!
//! It prints one `name value` line per figure. `bench/listing.sh` builds
//! this file against two commits and runs the two binaries in alternation,
//! so that old and new are compared in the same run (see BENCHMARKS.md,
//! "Ordered listing"). `KVCORE_LIST_KEYS` sets N (default 1,000,000 with
//! `--bench`; under `cargo test` a 20,000-key smoke run);
//! `KVCORE_LIST_WRITES_ONLY=1` stops after the churn (to profile the
//! writes alone). `KVCORE_LIST_FLOOR=1` builds no store: it runs the same
//! creates and removes on a hash map alone and on a `BTreeMap` (`floor_*`
//! figures), the least that keeping keys in order costs.

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use kvcore::{ActiveExpiry, Store, TtlChange};

const TTL: Duration = Duration::from_secs(3600);
const EXTRA: usize = 100_000;

/// xorshift64: cheap, and the same sequence in both builds.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn key(n: usize) -> String {
    format!("key:{n:012}")
}

fn value(i: usize) -> [u8; 16] {
    let mut value = [b'v'; 16];
    value[..8].copy_from_slice(&(i as u64).to_le_bytes());
    value
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let keys: usize = std::env::var("KVCORE_LIST_KEYS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(if bench { 1_000_000 } else { 20_000 });
    let extra = EXTRA.min(keys);
    let slice = if bench {
        Duration::from_secs(1)
    } else {
        Duration::from_millis(50)
    };
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut order: Vec<usize> = (0..keys).collect();
    for i in (1..keys).rev() {
        order.swap(i, rng.below(i + 1));
    }
    // Creates and removes between existing keys.
    let odd: Vec<String> = (0..extra).map(|_| key(2 * rng.below(keys) + 1)).collect();
    println!("keys {keys}");
    if std::env::var_os("KVCORE_LIST_FLOOR").is_some() {
        floor(&order, &odd);
        return;
    }
    let store = Store::builder().active_expiry(ActiveExpiry::Manual).build();
    for &i in &order {
        store.create(&key(2 * i), value(i), Some(TTL)).unwrap();
    }

    // Timed by the wall clock and by this thread's time on a CPU (which
    // leaves out the time other processes held the core).
    let (started, cpu) = (Instant::now(), thread_cpu_time());
    let mut created = 0;
    for k in &odd {
        created += usize::from(store.create(k, value(0), Some(TTL)).is_ok());
    }
    println!("create_ns {:.0}", per_op(started.elapsed(), odd.len()));
    println!(
        "create_cpu_ns {:.0}",
        per_op(thread_cpu_time() - cpu, odd.len())
    );
    let (started, cpu) = (Instant::now(), thread_cpu_time());
    let mut removed = 0;
    for k in &odd {
        removed += usize::from(store.remove(k).is_ok());
    }
    println!("remove_ns {:.0}", per_op(started.elapsed(), odd.len()));
    println!(
        "remove_cpu_ns {:.0}",
        per_op(thread_cpu_time() - cpu, odd.len())
    );
    assert_eq!(created, removed, "every key created was removed");
    assert_eq!(store.len(), keys);

    // Churn: each step creates a key and removes the one created `extra`
    // steps before. A store may defer part of a write's work (kvcore's
    // ordered index buffers up to 1024 writes a shard); over 4 * `extra`
    // steps, what is still deferred at the end is a small share of what
    // was timed, unlike in the phases above.
    let churn: Vec<String> = (0..4 * extra)
        .map(|_| key(2 * rng.below(keys) + 1))
        .collect();
    let (started, cpu) = (Instant::now(), thread_cpu_time());
    for (i, k) in churn.iter().enumerate() {
        black_box(store.create(k, value(i), Some(TTL)).is_ok());
        if i >= extra {
            black_box(store.remove(&churn[i - extra]).is_ok());
        }
    }
    println!("churn_ns {:.0}", per_op(started.elapsed(), churn.len()));
    println!(
        "churn_cpu_ns {:.0}",
        per_op(thread_cpu_time() - cpu, churn.len())
    );
    for k in &churn[churn.len() - extra..] {
        black_box(store.remove(k).is_ok());
    }
    // Replacing: upserts of existing keys with values of another length
    // each time, so that every write replaces the key's record instead of
    // overwriting it in place.
    let existing: Vec<String> = (0..extra).map(|_| key(2 * rng.below(keys))).collect();
    let (started, cpu) = (Instant::now(), thread_cpu_time());
    for (i, k) in existing.iter().enumerate() {
        let value = [b'r'; 18];
        black_box(
            store
                .upsert(k, &value[..17 + i % 2], TtlChange::Keep)
                .is_ok(),
        );
    }
    println!(
        "replace_ns {:.0}",
        per_op(started.elapsed(), existing.len())
    );
    println!(
        "replace_cpu_ns {:.0}",
        per_op(thread_cpu_time() - cpu, existing.len())
    );
    if std::env::var_os("KVCORE_LIST_WRITES_ONLY").is_some() {
        // For a profiler: the writes alone.
        return;
    }

    for limit in [100, 1000] {
        let mut times = Vec::new();
        let started = Instant::now();
        while times.len() < 5 || (started.elapsed() < slice && times.len() < 2000) {
            let cursor = key(2 * rng.below(keys));
            let t = Instant::now();
            let page = store.list("key:", Some(&cursor), limit);
            times.push(t.elapsed());
            black_box(page);
        }
        times.sort();
        println!(
            "page{limit}_us {:.1}",
            times[times.len() / 2].as_secs_f64() * 1e6
        );
    }

    println!("get_ns {:.1}", point(&store, keys, 1, slice, false));
    println!("upsert_ns {:.1}", point(&store, keys, 1, slice, true));
    println!("upsert2_ns {:.1}", point(&store, keys, 2, slice, true));

    for (name, listing) in [("write_idle", false), ("write_listing", true)] {
        let (p50, p99, max) = writes_while(&store, keys, slice, listing);
        println!("{name}_p50_us {p50:.2}");
        println!("{name}_p99_us {p99:.2}");
        println!("{name}_max_us {max:.1}");
    }
}

/// What keeping keys in order costs a create and a remove at the least,
/// whatever the store: the same creates and removes (`odd`, among the keys
/// of `order`) on a hash map alone (hashbrown, the crate of kvcore's
/// tables) and on std's `BTreeMap`, the usual ordered map, each holding
/// the same keys. A store that keeps both pays about the sum.
fn floor(order: &[usize], odd: &[String]) {
    // Prints `floor_<name>_cpu_ns`: this thread's CPU time per key of `odd`
    // that `op` takes.
    let timed = |name: &str, op: &mut dyn FnMut(&[u8])| {
        let cpu = thread_cpu_time();
        for k in odd {
            op(k.as_bytes());
        }
        let ns = per_op(thread_cpu_time() - cpu, odd.len());
        println!("floor_{name}_cpu_ns {ns:.0}");
    };
    let mut hash: hashbrown::HashMap<Box<[u8]>, [u8; 16]> = hashbrown::HashMap::new();
    let mut tree: std::collections::BTreeMap<Box<[u8]>, [u8; 16]> = Default::default();
    for &i in order {
        let k: Box<[u8]> = key(2 * i).into_bytes().into();
        hash.insert(k.clone(), value(i));
        tree.insert(k, value(i));
    }
    timed("hash_create", &mut |k| {
        black_box(hash.insert(k.into(), value(0)));
    });
    timed("hash_remove", &mut |k| {
        black_box(hash.remove(k));
    });
    timed("btree_create", &mut |k| {
        black_box(tree.insert(k.into(), value(0)));
    });
    timed("btree_remove", &mut |k| {
        black_box(tree.remove(k));
    });
    // The kindest case for a B-tree: the keys (all 16 bytes here) inside
    // its nodes, so a comparison reads no other memory, and a pointer-sized
    // value, as an index of references to records would hold.
    drop(tree);
    let inline = |k: &[u8]| -> [u8; 16] { k.try_into().expect("16-byte keys") };
    let mut tree: std::collections::BTreeMap<[u8; 16], usize> = order
        .iter()
        .map(|&i| (inline(key(2 * i).as_bytes()), i))
        .collect();
    timed("btree_inline_create", &mut |k| {
        black_box(tree.insert(inline(k), 0));
    });
    timed("btree_inline_remove", &mut |k| {
        black_box(tree.remove(&inline(k)));
    });
}

/// This thread's time on a CPU so far, from `/proc/thread-self/schedstat`
/// (zero where that file does not exist). A yield first: the kernel brings
/// the figure up to date at a trip through the scheduler.
fn thread_cpu_time() -> Duration {
    thread::yield_now();
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|stat| stat.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

fn per_op(elapsed: Duration, ops: usize) -> f64 {
    elapsed.as_secs_f64() * 1e9 / ops as f64
}

/// ns per operation of `threads` threads doing gets or upserts for `slice`.
fn point(store: &Store, keys: usize, threads: usize, slice: Duration, upsert: bool) -> f64 {
    let barrier = Barrier::new(threads);
    let ops: Vec<(usize, Duration)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut rng = Rng(0x9E37_79B9 + t as u64);
                    let names: Vec<String> = (0..4096).map(|_| key(2 * rng.below(keys))).collect();
                    barrier.wait();
                    let started = Instant::now();
                    let mut ops = 0;
                    while started.elapsed() < slice {
                        for _ in 0..256 {
                            let k = &names[rng.below(names.len())];
                            if upsert {
                                black_box(store.upsert(k, value(ops), TtlChange::Keep).unwrap());
                            } else {
                                black_box(store.get(k).unwrap());
                            }
                            ops += 1;
                        }
                    }
                    (ops, started.elapsed())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total: usize = ops.iter().map(|(n, _)| n).sum();
    let longest = ops.iter().map(|(_, d)| *d).max().unwrap_or_default();
    longest.as_secs_f64() * 1e9 / total as f64
}

/// p50, p99 and max µs of one thread's upserts for `slice`, with or without
/// another thread paging through the store meanwhile.
fn writes_while(store: &Store, keys: usize, slice: Duration, listing: bool) -> (f64, f64, f64) {
    let done = AtomicBool::new(false);
    thread::scope(|scope| {
        if listing {
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let mut cursor: Option<String> = None;
                    while !done.load(Ordering::Relaxed) {
                        let page = store.list("key:", cursor.as_deref(), 1000);
                        match page.next {
                            Some(next) => cursor = Some(next),
                            None => break,
                        }
                    }
                }
            });
        }
        let mut rng = Rng(0xDEAD_BEEF);
        let mut times = Vec::with_capacity(1 << 20);
        let started = Instant::now();
        while started.elapsed() < slice {
            let k = key(2 * rng.below(keys));
            let t = Instant::now();
            black_box(
                store
                    .upsert(&k, value(times.len()), TtlChange::Keep)
                    .unwrap(),
            );
            times.push(t.elapsed());
        }
        done.store(true, Ordering::Relaxed);
        times.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        (
            us(times[times.len() / 2]),
            us(times[times.len() * 99 / 100]),
            us(times[times.len() - 1]),
        )
    })
}
