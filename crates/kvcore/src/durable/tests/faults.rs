//! Faults a data directory must survive without losing or refusing what it
//! acknowledged: transient errors during compaction, damage told apart from
//! a torn tail, truncation that never reuses versions, files of other
//! formats, the disk bound under sustained writes, and closing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use super::{DIR, builder, frames, open, segment, state};
use crate::durable::frame::{self, FILE_HEADER, FileKind};
use crate::durable::sim_disk::{SimDisk, SimOp};
use crate::durable::snapshot;
use crate::{ActiveExpiry, Error, Fsync, ManualClock, OnCorruption, Store, TtlChange};

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_000))
}

#[test]
fn a_transient_failure_during_compaction_leaves_the_store_writable_and_the_next_one_succeeds() {
    let cases = [
        (SimOp::Create, "kvlog", "creating the next segment"),
        (SimOp::SyncDir, DIR, "syncing the directory"),
        (SimOp::Create, ".tmp", "creating the snapshot"),
        (SimOp::Sync, ".tmp", "syncing the snapshot"),
        (SimOp::Rename, "kvsnap", "renaming the snapshot into place"),
    ];
    for (op, path, what) in cases {
        let disk = SimDisk::default();
        let clock = clock();
        let store = open(&disk, Fsync::Always, &clock).expect("open");
        store.upsert("a", "1", TtlChange::Keep).expect("upsert");
        disk.fail_once(op, path);
        assert!(store.compact().is_err(), "{what}: the compaction fails");
        assert!(
            !disk.failure_pending(),
            "{what}: the planned failure happened"
        );
        store
            .upsert("b", "2", TtlChange::Keep)
            .unwrap_or_else(|err| panic!("{what}: still writable, got {err}"));
        let leftovers: Vec<_> = disk
            .names()
            .into_iter()
            .filter(|p| snapshot::is_temporary(&p.file_name().unwrap().to_string_lossy()))
            .collect();
        assert_eq!(
            leftovers,
            Vec::<std::path::PathBuf>::new(),
            "{what}: temporary snapshot removed"
        );
        store
            .compact()
            .unwrap_or_else(|err| panic!("{what}: a later compaction succeeds, got {err}"));
        store.upsert("c", "3", TtlChange::Keep).expect("upsert");
        let expected = state(&store);
        drop(store);
        let reopened = open(&disk, Fsync::Always, &clock).expect("reopen");
        assert_eq!(state(&reopened), expected, "{what}: nothing lost");
    }
}

#[test]
fn a_failed_sync_of_the_log_during_compaction_still_fails_the_store() {
    // The log holds acknowledged (with `everysec`: visible) writes: a sync
    // that fails may have lost them, so nothing more is acknowledged.
    let disk = SimDisk::default();
    let store = open(&disk, Fsync::EverySec, &clock()).expect("open");
    store.upsert("a", "1", TtlChange::Keep).expect("upsert");
    disk.fail_once(SimOp::Sync, "kvlog");
    assert!(store.compact().is_err());
    assert_eq!(
        store.upsert("b", "2", TtlChange::Keep),
        Err(Error::StorageFailed)
    );
}

#[test]
fn a_durable_store_clamps_its_value_limit_to_what_a_log_record_can_hold() {
    let disk = SimDisk::default();
    let store = builder(&disk, Fsync::Never, &clock())
        .max_value_bytes(usize::MAX)
        .open(DIR)
        .expect("open");
    let limits = store.limits();
    assert_eq!(
        limits.max_value_bytes,
        frame::max_value_bytes(limits.max_key_bytes)
    );
    assert!(limits.max_value_bytes < 1 << 31, "{limits:?}");
    // In memory nothing needs reading back: the limit stays as set.
    let memory = Store::builder().max_value_bytes(usize::MAX).build();
    assert_eq!(memory.limits().max_value_bytes, usize::MAX);
}

#[test]
fn truncating_a_corrupt_log_never_hands_out_a_version_again() {
    let disk = SimDisk::default();
    let clock = clock();
    let mut b = builder(&disk, Fsync::Always, &clock);
    // Reserve a few revisions at a time, so that reservations lie beyond
    // the damage too.
    b.thresholds.revision_reserve = 4;
    let store = b.open(DIR).expect("open");
    let mut highest = 0;
    for i in 0..40 {
        highest = store
            .upsert(&format!("k{i}"), "v", TtlChange::Keep)
            .expect("upsert")
            .version;
    }
    drop(store);
    // Damage a frame early in the log: everything after it is cut off.
    let path = segment(1);
    let third = frames(&disk, &path)[3].0;
    let mut bytes = disk.contents(&path).expect("segment");
    bytes[third + 20] ^= 0x40;
    disk.set_contents(&path, bytes);
    let mut b = builder(&disk, Fsync::Always, &clock);
    b.thresholds.revision_reserve = 4;
    let store = b
        .on_corruption(OnCorruption::TruncateLog)
        .open(DIR)
        .expect("truncation opens");
    assert!(
        store
            .recovery()
            .expect("report")
            .truncated_corruption
            .is_some()
    );
    let next = store
        .upsert("k0", "again", TtlChange::Keep)
        .expect("upsert")
        .version;
    assert!(
        next > highest,
        "the first write after the cut takes {next}, but {highest} was handed out before"
    );
}

/// A log of `count` small writes on the simulated disk, closed.
fn small_log(count: usize) -> SimDisk {
    let disk = SimDisk::default();
    let store = open(&disk, Fsync::Always, &clock()).expect("open");
    for i in 0..count {
        store
            .upsert(&format!("key{i}"), "value", TtlChange::Keep)
            .expect("upsert");
    }
    store.close().expect("close");
    disk
}

#[test]
fn damage_followed_by_valid_frames_is_corruption_and_says_what_it_is() {
    // A whole frame in the middle reads as zeros (a lost sector), or its
    // payload is garbage.
    let cases = [
        ("a zero-filled hole followed by valid frames", 0, 0x00),
        ("a checksum mismatch followed by valid frames", 12, 0x5a),
    ];
    for (reason, from, fill) in cases {
        let disk = small_log(6);
        let path = segment(1);
        let frames = frames(&disk, &path);
        let (start, _, end) = frames[2];
        let mut bytes = disk.contents(&path).expect("segment");
        bytes[start + from..end].fill(fill);
        disk.set_contents(&path, bytes);
        match open(&disk, Fsync::Always, &clock()) {
            Err(Error::Corrupt {
                file,
                offset,
                reason: found,
            }) => {
                assert_eq!((file, offset), (path.clone(), start as u64));
                assert_eq!(found, reason);
            }
            other => panic!("expected {reason:?}, got {other:?}"),
        }
    }
}

#[test]
fn several_damaged_frames_at_the_end_with_nothing_valid_after_are_a_torn_tail() {
    // Write-back out of order: of the last two frames, a sector of the
    // first is zeros and the second is cut short.
    let disk = small_log(6);
    let path = segment(1);
    let frames = frames(&disk, &path);
    let (start, _, end) = frames[frames.len() - 2];
    let mut bytes = disk.contents(&path).expect("segment");
    bytes[start + 14..end].fill(0);
    bytes.truncate(bytes.len() - 3);
    disk.set_contents(&path, bytes);
    let store = open(&disk, Fsync::Always, &clock()).expect("a torn tail is cut off");
    let torn = store
        .recovery()
        .expect("report")
        .torn_tail
        .clone()
        .expect("reported");
    assert_eq!((torn.file, torn.offset), (path, start as u64));
    assert_eq!(state(&store).len(), 4, "the keys before the torn frames");
}

#[test]
fn log_and_snapshot_files_start_with_a_magic_and_version_and_others_are_refused() {
    let disk = small_log(3);
    let store = open(&disk, Fsync::Always, &clock()).expect("open");
    store.compact().expect("compact");
    store.close().expect("close");
    let log = segment(2);
    let snap = Path::new(DIR).join(snapshot::snapshot_name(2));
    assert_eq!(
        disk.contents(&log).unwrap()[..FILE_HEADER],
        FileKind::Log.header()
    );
    assert_eq!(
        disk.contents(&snap).unwrap()[..FILE_HEADER],
        FileKind::Snapshot.header()
    );
    // A newer format: refused, naming the file.
    for path in [&log, &snap] {
        let original = disk.contents(path).unwrap();
        let mut newer = original.clone();
        newer[4] = 9;
        disk.set_contents(path, newer);
        match open(&disk, Fsync::Always, &clock()) {
            Err(Error::Corrupt {
                file,
                offset: 0,
                reason,
            }) => {
                assert_eq!(&file, path);
                assert!(reason.contains("format version"), "{reason}");
            }
            other => panic!("{path:?}: expected a refusal, got {other:?}"),
        }
        disk.set_contents(path, original);
    }
    // A snapshot where a log belongs.
    let original = disk.contents(&log).unwrap();
    disk.set_contents(&log, disk.contents(&snap).unwrap());
    assert!(matches!(
        open(&disk, Fsync::Always, &clock()),
        Err(Error::Corrupt { .. })
    ));
    disk.set_contents(&log, original);
    let store = open(&disk, Fsync::Always, &clock()).expect("the files as written open");
    assert_eq!(state(&store).len(), 3);
}

#[test]
fn a_log_written_before_files_had_a_header_still_opens() {
    let disk = small_log(3);
    let path = segment(1);
    let bytes = disk.contents(&path).unwrap();
    disk.set_contents(&path, bytes[FILE_HEADER..].to_vec());
    let store = open(&disk, Fsync::Always, &clock()).expect("format 0 opens");
    assert_eq!(state(&store).len(), 3);
    store
        .upsert("more", "x", TtlChange::Keep)
        .expect("and grows");
    store.close().expect("close");
    let store = open(&disk, Fsync::Always, &clock()).expect("reopen");
    assert_eq!(state(&store).len(), 4);
}

#[test]
fn recovery_reads_files_a_chunk_at_a_time_not_whole() {
    let disk = SimDisk::default();
    let clock = clock();
    let mut b = builder(&disk, Fsync::Never, &clock);
    b.thresholds.compaction_floor = 64 << 20;
    let store = b.open(DIR).expect("open");
    let value = vec![b'v'; 4096];
    for i in 0..2_000 {
        store
            .upsert(&format!("k{}", i % 500), &value, TtlChange::Keep)
            .expect("upsert");
    }
    store.compact().expect("compact");
    for i in 0..1_000 {
        store
            .upsert(&format!("k{}", i % 500), &value, TtlChange::Keep)
            .expect("upsert");
    }
    store.close().expect("close");
    assert!(disk.total_bytes() > 4 << 20, "files larger than the chunk");
    let reopened = open(&disk, Fsync::Never, &clock).expect("reopen");
    assert_eq!(reopened.len(), 500);
    assert!(
        disk.largest_read() <= 1 << 20,
        "the largest single read was {} bytes",
        disk.largest_read()
    );
}

#[test]
fn the_disk_bound_holds_while_four_writers_overwrite_large_values_without_pause() {
    let disk = SimDisk::default();
    let clock = clock();
    let floor: u64 = 256 << 10;
    let mut b = builder(&disk, Fsync::Never, &clock);
    b.thresholds.compaction_floor = floor;
    b.log_worker = true;
    let store = b.open(DIR).expect("open");
    let value_bytes = 16 << 10;
    let keys = 40;
    let stop = Arc::new(AtomicBool::new(false));
    let largest = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (disk, stop, largest) = (disk.clone(), stop.clone(), largest.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                largest.fetch_max(disk.total_bytes(), Ordering::AcqRel);
                thread::yield_now();
            }
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                let value = vec![b'a' + t as u8; value_bytes];
                for i in 0..1_500 {
                    let key = format!("key{}", (i * 4 + t) % keys);
                    store.upsert(&key, &value, TtlChange::Keep).expect("upsert");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer");
    }
    stop.store(true, Ordering::Release);
    sampler.join().expect("sampler");
    let compactions = store.stats().durability.expect("durable").compactions;
    // Live data: one frame per key. The promise: three times the live data
    // plus three times the floor, and a frame per writer in flight.
    let live = keys * (value_bytes + 33 + 6) as u64;
    let bound = 3 * live + 3 * floor + 4 * (value_bytes as u64 + 64);
    let largest = largest.load(Ordering::Acquire) as u64;
    assert!(
        largest <= bound,
        "the directory reached {largest} bytes, bound {bound} (live {live}, {compactions} compactions)"
    );
    assert!(compactions > 5, "compactions ran ({compactions})");
}

#[test]
fn closing_a_store_releases_its_directory_at_once_and_refuses_later_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    for round in 0..20 {
        let store = Store::builder()
            .fsync(Fsync::EverySec)
            .open(dir.path())
            .expect("open");
        let clone = store.clone();
        store
            .upsert("round", format!("{round}"), TtlChange::Keep)
            .expect("upsert");
        store.close().expect("close");
        assert_eq!(
            clone.upsert("late", "x", TtlChange::Keep),
            Err(Error::Closed),
            "a clone of a closed store takes no writes"
        );
        assert!(
            clone.get("round").expect("get").is_some(),
            "but still reads"
        );
        // Opened again at once, while the clone still exists.
        let reopened = Store::open(dir.path()).expect("reopen right after close");
        assert_eq!(
            reopened.get("round").unwrap().unwrap().value(),
            format!("{round}").as_bytes()
        );
        drop(reopened);
        // Dropping the last handle releases it at once too.
        drop(clone);
        Store::open(dir.path()).expect("reopen right after drop");
    }
}

#[test]
fn data_files_and_the_directory_are_the_owners_alone() {
    let parent = tempfile::tempdir().expect("temp dir");
    let dir = parent.path().join("data");
    let store = Store::builder()
        .active_expiry(ActiveExpiry::Manual)
        .open(&dir)
        .expect("open");
    store.upsert("a", "1", TtlChange::Keep).expect("upsert");
    store.compact().expect("compact");
    store.close().expect("close");
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "the directory");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{path:?}");
        files += 1;
    }
    assert!(files >= 3, "LOCK, a snapshot and a log segment");
}
