//! A counter shared by several threads, incremented with a compare-and-swap
//! retry loop: read the value and its version, write only if the version is
//! still the one read, otherwise read again.
//!
//! Run: `cargo run -p examples --bin cas_counter`

use std::thread;

use kvcore::{Error, Store, TtlChange};

const THREADS: usize = 4;
const INCREMENTS: usize = 1000;

fn increment(store: &Store, key: &str) -> Result<u32, Error> {
    let mut retries = 0;
    loop {
        let entry = store.get(key)?.expect("the counter exists");
        let count: u64 = std::str::from_utf8(entry.value())
            .ok()
            .and_then(|text| text.parse().ok())
            .expect("the counter holds a number");
        let next = (count + 1).to_string();
        match store.compare_and_swap(key, entry.version(), next, TtlChange::Keep) {
            Ok(_) => return Ok(retries),
            // Someone else wrote first: read again and retry.
            Err(Error::VersionMismatch { .. }) => retries += 1,
            Err(other) => return Err(other),
        }
    }
}

fn main() -> Result<(), Error> {
    let store = Store::new();
    store.create("counter", "0", None)?;

    let retries: u32 = thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    (0..INCREMENTS)
                        .map(|_| increment(&store, "counter"))
                        .sum::<Result<u32, Error>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("worker panicked"))
            .sum::<Result<u32, Error>>()
    })?;

    let entry = store.get("counter")?.expect("the counter exists");
    let total = String::from_utf8_lossy(entry.value()).into_owned();
    println!(
        "{THREADS} threads x {INCREMENTS} increments = {total} ({retries} retries after conflicts)"
    );
    assert_eq!(total, (THREADS * INCREMENTS).to_string());
    Ok(())
}
