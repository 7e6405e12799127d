//! What survives a power cut while writers and compactions run: a prefix of
//! history (README, Durability), on a disk that may lose, zero or reorder
//! whatever was not synced.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use super::{DIR, Rng, builder};
use crate::durable::sim_disk::SimDisk;
use crate::{Error, Fsync, ManualClock, OnCorruption, Store, TtlChange};

/// One write of the workload: its key, and when it started and was
/// acknowledged on a clock shared by every thread (ticks, not time).
#[derive(Debug, Clone)]
struct Write {
    key: String,
    started: u64,
    acked: u64,
}

/// Two writers create keys of their own (values of up to a few sectors, so
/// that frames straddle sectors) while a third thread compacts over and
/// over; the power goes out after `writes` acknowledged writes. Returns the
/// writes acknowledged before the cut (with their ticks), the tick of the
/// cut, and the disk as power returns.
fn write_until_the_power_goes(
    fsync: Fsync,
    writes: u64,
    seed: u64,
    scrambled: bool,
) -> (Vec<Write>, u64, SimDisk) {
    let disk = SimDisk::default();
    let clock = Arc::new(ManualClock::new(1_000));
    let mut b = builder(&disk, fsync, &clock);
    b.thresholds.compaction_floor = 4096;
    let store = b.open(DIR).expect("open");
    let ticks = Arc::new(AtomicU64::new(1));
    let acked_count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|t| {
            let (store, ticks, acked_count, stop) = (
                store.clone(),
                ticks.clone(),
                acked_count.clone(),
                stop.clone(),
            );
            thread::spawn(move || {
                let mut rng = Rng(seed * 7 + t + 1);
                let mut done = Vec::new();
                for i in 0.. {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let key = format!("w{t}/{i:05}");
                    let value = vec![b'a' + t as u8; rng.below(1500) as usize];
                    let started = ticks.fetch_add(1, Ordering::AcqRel);
                    match store.create(&key, &value, None) {
                        Ok(_) => {}
                        // The disk went away under a write in flight.
                        Err(_) => break,
                    }
                    let acked = ticks.fetch_add(1, Ordering::AcqRel);
                    acked_count.fetch_add(1, Ordering::AcqRel);
                    done.push(Write {
                        key,
                        started,
                        acked,
                    });
                }
                done
            })
        })
        .collect();
    let compactor = {
        let (store, stop) = (store.clone(), stop.clone());
        thread::spawn(move || {
            // Pauses between compactions leave writes unsynced after one,
            // where the cut can find them.
            while !stop.load(Ordering::Acquire) {
                let _ = store.compact();
                thread::sleep(std::time::Duration::from_micros(500));
            }
        })
    };
    while acked_count.load(Ordering::Acquire) < writes {
        thread::yield_now();
    }
    // The cut: everything acknowledged before this tick was acknowledged
    // before the power went.
    let cut = ticks.fetch_add(1, Ordering::AcqRel);
    let mut rng = Rng(seed | 1);
    let after = match scrambled {
        false => disk.power_loss(|max| rng.below(max as u64 + 1) as usize),
        true => disk.power_loss_scrambled(|| rng.next()),
    };
    stop.store(true, Ordering::Release);
    let mut acked = Vec::new();
    for writer in writers {
        acked.extend(writer.join().expect("writer"));
    }
    compactor.join().expect("compactor");
    drop(store);
    // Writes acknowledged after the cut may or may not be on the copy.
    (acked, cut, after)
}

/// Opens the disk after the power cut; if the log is damaged before its
/// end (sectors written out of order), as an operator would: accepting the
/// cut at the damage.
fn reopen(disk: &SimDisk, fsync: Fsync) -> Store {
    let clock = Arc::new(ManualClock::new(1_000));
    match builder(disk, fsync, &clock).open(DIR) {
        Ok(store) => store,
        Err(Error::Corrupt { .. }) => builder(disk, fsync, &clock)
            .on_corruption(OnCorruption::TruncateLog)
            .open(DIR)
            .expect("opens once the damage is cut off"),
        Err(err) => panic!("recovery failed: {err}"),
    }
}

/// Checks the promise: if a write survived, every write acknowledged before
/// it started survived too; with `always`, every write acknowledged before
/// the cut survived.
fn check_prefix(fsync: Fsync, scrambled: bool) {
    for round in 0..24u64 {
        let (acked, cut, disk) =
            write_until_the_power_goes(fsync, 200 + round * 53, round + 1, scrambled);
        let store = reopen(&disk, fsync);
        let survived = |w: &Write| store.get(&w.key).expect("get").is_some();
        let context = format!("{fsync:?}, scrambled {scrambled}, round {round}");
        let latest_survivor = acked
            .iter()
            .filter(|w| survived(w))
            .map(|w| w.started)
            .max()
            .unwrap_or(0);
        for w in &acked {
            if w.acked < latest_survivor {
                assert!(
                    survived(w),
                    "{context}: {} was acknowledged (tick {}) before a write that survived \
                     started (tick {latest_survivor}), but is lost",
                    w.key,
                    w.acked
                );
            }
            if fsync == Fsync::Always && w.acked < cut {
                assert!(
                    survived(w),
                    "{context}: {} was acknowledged and lost",
                    w.key
                );
            }
        }
        // The recovered store takes writes, above every version it shows.
        store
            .upsert("after", "x", TtlChange::Keep)
            .expect("writable after recovery");
    }
}

#[test]
fn with_always_every_acknowledged_write_survives_a_power_cut_during_compactions() {
    check_prefix(Fsync::Always, false);
    check_prefix(Fsync::Always, true);
}

#[test]
fn with_everysec_a_power_cut_during_compactions_keeps_a_prefix_of_history() {
    check_prefix(Fsync::EverySec, false);
    check_prefix(Fsync::EverySec, true);
}

#[test]
fn with_never_a_power_cut_during_compactions_keeps_a_prefix_of_history() {
    check_prefix(Fsync::Never, false);
    check_prefix(Fsync::Never, true);
}
