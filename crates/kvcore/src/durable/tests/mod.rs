//! Tests that prove the durability promises, mostly on the simulated disk so
//! that crashes and power loss are deterministic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use crate::durable::frame::{self, Decoded, FileKind, FrameReader};
use crate::durable::log;
use crate::durable::sim_disk::SimDisk;
use crate::{
    ActiveExpiry, Error, Fsync, ManualClock, OnCorruption, Store, StoreBuilder, TtlChange,
};

const DIR: &str = "/data";

/// What a store holds: key -> (value, version).
type State = BTreeMap<String, (String, u64)>;

fn builder(disk: &SimDisk, fsync: Fsync, clock: &Arc<ManualClock>) -> StoreBuilder {
    let mut builder = Store::builder()
        .clock(clock.clone())
        .active_expiry(ActiveExpiry::Manual)
        .fsync(fsync);
    builder.disk = Arc::new(disk.clone());
    builder.log_worker = false;
    builder
}

fn open(disk: &SimDisk, fsync: Fsync, clock: &Arc<ManualClock>) -> crate::Result<Store> {
    builder(disk, fsync, clock).open(DIR)
}

fn state(store: &Store) -> State {
    store
        .list("", None, usize::MAX)
        .entries
        .into_iter()
        .map(|e| {
            let value = String::from_utf8_lossy(e.value()).into_owned();
            (e.key().to_owned(), (value, e.version()))
        })
        .collect()
}

fn segment(seq: u64) -> PathBuf {
    Path::new(DIR).join(log::segment_name(seq))
}

/// The frames of a log file, each as (offset, operation, end), up to its
/// end or first damage.
fn frames(disk: &SimDisk, path: &Path) -> Vec<(usize, frame::Op, usize)> {
    let mut reader = FrameReader::open(disk, path, FileKind::Log).expect("a log file");
    let mut frames = Vec::new();
    loop {
        let offset = reader.offset() as usize;
        match reader.next_frame().expect("read") {
            Decoded::Frame(frame, end) => frames.push((offset, frame.op, end as usize)),
            _ => return frames,
        }
    }
}

/// A small deterministic random source (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One step of the crash workload.
#[derive(Debug, Clone)]
enum Step {
    Upsert(String, String),
    Remove(String),
    Cas(String, String),
    Compact,
}

fn workload(seed: u64, len: usize) -> Vec<Step> {
    let mut rng = Rng(seed | 1);
    (0..len)
        .map(|i| {
            let key = format!("k{}", rng.below(8));
            let value = format!("v{i}-{}", "x".repeat(rng.below(300) as usize));
            match rng.below(20) {
                0..=10 => Step::Upsert(key, value),
                11..=14 => Step::Remove(key),
                15..=18 => Step::Cas(key, value),
                _ => Step::Compact,
            }
        })
        .collect()
}

/// Applies `step` to the store; on success also to the model. On failure,
/// returns the state the step would leave if it reached the disk anyway
/// (with version 0 where the version is unknown), or `None` if it changes
/// nothing.
fn apply(store: &Store, model: &mut State, step: &Step) -> Result<(), Option<State>> {
    let mut after = model.clone();
    let result = match step {
        Step::Upsert(key, value) => {
            after.insert(key.clone(), (value.clone(), 0));
            store
                .upsert(key, value, TtlChange::Keep)
                .map(|w| after.insert(key.clone(), (value.clone(), w.version)))
                .map(drop)
        }
        Step::Remove(key) => {
            after.remove(key);
            match store.remove(key) {
                Ok(_) | Err(Error::NotFound) => Ok(()),
                Err(err) => Err(err),
            }
        }
        Step::Cas(key, value) => {
            let expected = model.get(key).map_or(0, |(_, v)| *v);
            if model.contains_key(key) {
                after.insert(key.clone(), (value.clone(), 0));
            }
            match store.compare_and_swap(key, expected, value, TtlChange::Keep) {
                Ok(version) => {
                    after.insert(key.clone(), (value.clone(), version));
                    Ok(())
                }
                Err(Error::VersionMismatch { .. }) => {
                    after = model.clone();
                    Ok(())
                }
                Err(err) => Err(err),
            }
        }
        Step::Compact => store.compact(),
    };
    match result {
        Ok(()) => {
            *model = after;
            Ok(())
        }
        Err(_) => Err(Some(after)),
    }
}

/// Whether a recovered state equals the model, or the model with the one
/// unacknowledged step applied (whose version is unknown, so any version
/// above the model's revision is accepted for it).
fn matches(recovered: &State, model: &State, in_flight: &Option<State>) -> bool {
    if recovered == model {
        return true;
    }
    let Some(in_flight) = in_flight else {
        return false;
    };
    recovered.len() == in_flight.len()
        && recovered
            .iter()
            .all(|(key, (value, version))| match in_flight.get(key) {
                Some((v, 0)) => v == value,
                Some(expected) => expected == &(value.clone(), *version),
                None => false,
            })
}

/// Runs the workload until the simulated machine dies at operation
/// `crash_at`, loses power, and reopens. Returns (model, in-flight, recovered).
fn crash_and_recover(
    steps: &[Step],
    fsync: Fsync,
    crash_at: Option<u64>,
    pick: impl FnMut(usize) -> usize,
) -> (State, Option<State>, State) {
    let disk = SimDisk::default();
    let clock = Arc::new(ManualClock::new(1_000));
    let mut builder = builder(&disk, fsync, &clock);
    builder.thresholds.compaction_floor = 2048;
    let store = builder.open(DIR).expect("fresh open");
    if let Some(at) = crash_at {
        disk.crash_at(at);
    }
    let mut model = State::new();
    let mut in_flight = None;
    for step in steps {
        if let Err(partial) = apply(&store, &mut model, step) {
            in_flight = partial;
            break;
        }
    }
    // Drop syncs what it can; on a crashed disk that fails, as it would.
    drop(store);
    let after = disk.power_loss(pick);
    let reopened = open(&after, fsync, &clock).expect("recovery after a crash succeeds");
    (model, in_flight, state(&reopened))
}

#[test]
fn a_reopened_store_holds_every_acknowledged_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::builder()
        .fsync(Fsync::Always)
        .open(dir.path())
        .expect("open");
    store.create("a", "1", None).expect("create");
    store.upsert("b", "2", TtlChange::Keep).expect("upsert");
    store.update("a", "3", TtlChange::Keep).expect("update");
    store.upsert("gone", "x", TtlChange::Keep).expect("upsert");
    store.remove("gone").expect("remove");
    let before = state(&store);
    drop(store);
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(state(&store), before);
    let report = store.recovery().expect("durable stores report recovery");
    assert_eq!(report.keys, 2);
    assert_eq!(report.log_records, 5);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _first = Store::open(dir.path()).expect("open");
    match Store::open(dir.path()) {
        Err(Error::Locked { dir: locked }) => assert_eq!(locked, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[test]
fn revisions_continue_after_a_restart_even_when_the_last_write_was_a_removal() {
    for compact_first in [false, true] {
        let disk = SimDisk::default();
        let clock = Arc::new(ManualClock::new(1_000));
        let store = open(&disk, Fsync::Always, &clock).expect("open");
        store.upsert("a", "1", TtlChange::Keep).expect("upsert");
        let removal = store.remove("a").expect("remove");
        if compact_first {
            store.compact().expect("compact");
        }
        drop(store);
        let store = open(&disk, Fsync::Always, &clock).expect("reopen");
        let next = store.upsert("a", "2", TtlChange::Keep).expect("upsert");
        assert!(
            next.version > removal,
            "compact_first={compact_first}: version {} reused after removal at {removal}",
            next.version
        );
    }
}

#[test]
fn versions_are_never_reused_after_a_power_cut_takes_back_writes_that_were_seen() {
    // A small reserve makes writes cross reservations; the default one is
    // only ever taken on open (and carried by a snapshot across compaction).
    for reserve in [4, crate::durable::REVISION_RESERVE] {
        for compact in [false, true] {
            for fsync in [Fsync::Never, Fsync::EverySec] {
                let disk = SimDisk::default();
                let clock = Arc::new(ManualClock::new(1_000));
                let mut b = builder(&disk, fsync, &clock);
                b.thresholds.revision_reserve = reserve;
                let store = b.open(DIR).expect("open");
                let mut seen = 0;
                for i in 0..30 {
                    if compact && i == 10 {
                        store.compact().expect("compact");
                    }
                    let key = format!("k{}", i % 7);
                    store.upsert(&key, "v", TtlChange::Keep).expect("upsert");
                    let entry = store.get(&key).expect("get").expect("present");
                    seen = seen.max(entry.version());
                }
                // The machine dies before the store's last sync on drop.
                disk.crash_at(disk.ops() + 1);
                drop(store);
                // Nothing that was not synced survives: the last writes (all
                // of them after the compaction, with the default reserve) are
                // gone, though a reader saw their versions.
                let after = disk.power_loss(|_| 0);
                let store = open(&after, fsync, &clock).expect("reopen");
                let next = store
                    .upsert("k0", "after", TtlChange::Keep)
                    .expect("upsert");
                assert!(
                    next.version > seen,
                    "reserve {reserve}, compact {compact}, {fsync:?}: version {} was already seen (up to {seen})",
                    next.version
                );
            }
        }
    }
}

#[test]
fn the_log_worker_reserves_revisions_before_writers_need_them() {
    let disk = SimDisk::default();
    let clock = Arc::new(ManualClock::new(1_000));
    let mut b = builder(&disk, Fsync::Never, &clock);
    b.thresholds.revision_reserve = 8;
    let store = b.open(DIR).expect("open");
    let syncs = |store: &Store| store.stats().durability.expect("durable").fsyncs;
    // Open reserved revisions 1..=9. Half of that used up, the worker's
    // turn reserves ahead...
    for _ in 0..6 {
        store.upsert("k", "v", TtlChange::Keep).expect("upsert");
    }
    store.inner().maintain_log();
    let before = syncs(&store);
    // ... so the next writes, past the old reservation, wait for no sync.
    for _ in 0..10 {
        store.upsert("k", "v", TtlChange::Keep).expect("upsert");
    }
    assert_eq!(syncs(&store), before);
    // Past the worker's reservation, the writer reserves (and syncs) itself.
    for _ in 0..5 {
        store.upsert("k", "v", TtlChange::Keep).expect("upsert");
    }
    assert_eq!(syncs(&store), before + 1);
}

/// An `everysec` store with its log worker, compacting once the log passes
/// 100 bytes; writers wait for a compaction once it passes 150.
fn small_log_store(disk: &SimDisk) -> crate::Store {
    let clock = Arc::new(ManualClock::new(1_000));
    let mut b = builder(disk, Fsync::EverySec, &clock);
    b.log_worker = true;
    b.thresholds.compaction_floor = 100;
    b.open(DIR).expect("open")
}

/// Waits, polling, until `done` holds; fails naming `what` after `within`.
fn wait_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn with_everysec_a_long_compaction_does_not_hold_back_the_background_sync() {
    let disk = SimDisk::default();
    // The log worker wants to compact once the log holds both writes below
    // (a header, a reservation and a frame each: 111 bytes), which is still
    // below the size at which writers wait for a compaction (150).
    let store = small_log_store(&disk);
    let durable = store.inner().durable.as_ref().expect("durable");
    let synced_within = |what: &str| {
        wait_until(Duration::from_secs(5), what, || !durable.log.has_unsynced());
    };
    // A compaction that takes as long as this test: the log worker's next
    // turn waits on it.
    let compaction = durable.hold_compaction();
    store.upsert("a", "1", TtlChange::Keep).expect("upsert");
    synced_within("the first write");
    store.upsert("b", "2", TtlChange::Keep).expect("upsert");
    synced_within("a write made while a compaction runs");
    drop(compaction);
}

#[test]
fn writes_may_wait_tells_while_the_log_is_at_its_cap_and_clears_once_compacted() {
    let disk = SimDisk::default();
    // Writers wait once the segment is over 150 bytes; each write below adds
    // about 40.
    let store = small_log_store(&disk);
    let durable = store.inner().durable.as_ref().expect("durable");
    assert!(!store.writes_may_wait(), "an empty log has room");
    let compaction = durable.hold_compaction();
    // Each write checks for room before it appends, so none of these waits:
    // the one that crosses the cap is the last to go through.
    for key in ["a", "b", "c", "d", "e"] {
        if store.writes_may_wait() {
            break;
        }
        store.upsert(key, "1", TtlChange::Keep).expect("upsert");
    }
    assert!(
        store.writes_may_wait(),
        "log at {} bytes with the compaction held",
        durable.log.segment_bytes()
    );
    drop(compaction);
    wait_until(Duration::from_secs(10), "a compaction making room", || {
        !store.writes_may_wait()
    });
    // And the write that would have waited goes through.
    store.upsert("f", "1", TtlChange::Keep).expect("upsert");
}

#[test]
fn deadlines_survive_a_restart_and_keys_that_expired_meanwhile_are_gone() {
    let disk = SimDisk::default();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let store = open(&disk, Fsync::Always, &clock).expect("open");
    store
        .create("short", "s", Some(Duration::from_secs(10)))
        .expect("create");
    store
        .create("long", "l", Some(Duration::from_secs(3600)))
        .expect("create");
    // An older value without a deadline must not come back either.
    store
        .upsert("replaced", "old", TtlChange::Keep)
        .expect("upsert");
    store.compact().expect("compact");
    store
        .upsert("replaced", "new", TtlChange::Set(Duration::from_secs(5)))
        .expect("upsert");
    drop(store);
    clock.advance(20_000);
    let store = open(&disk, Fsync::Always, &clock).expect("reopen");
    assert!(store.get("short").expect("get").is_none());
    assert!(store.get("replaced").expect("get").is_none());
    let long = store.get("long").expect("get").expect("still alive");
    assert_eq!(long.ttl(), Some(Duration::from_secs(3600 - 20)));
    assert_eq!(store.recovery().expect("report").expired_dropped, 2);
}

#[test]
fn with_always_no_acknowledged_write_is_lost_across_random_crashes() {
    let steps = workload(42, 120);
    let mut rng = Rng(7);
    for round in 0..200 {
        let crash_at = 2 + rng.below(400);
        let mut picks = Rng(round + 1);
        let (model, in_flight, recovered) =
            crash_and_recover(&steps, Fsync::Always, Some(crash_at), |max| {
                picks.below(max as u64 + 1) as usize
            });
        assert!(
            matches(&recovered, &model, &in_flight),
            "round {round}, crash at op {crash_at}:\nmodel {model:?}\nrecovered {recovered:?}"
        );
    }
}

#[test]
fn with_never_the_same_test_detects_lost_writes() {
    let steps = workload(42, 120);
    let mut lost = 0;
    for crash_at in (50..400).step_by(25) {
        // Power fails before the OS wrote back anything unsynced.
        let (model, in_flight, recovered) =
            crash_and_recover(&steps, Fsync::Never, Some(crash_at), |_| 0);
        if !matches(&recovered, &model, &in_flight) {
            lost += 1;
        }
    }
    assert!(lost > 0, "the crash test must be able to see lost writes");
}

#[test]
fn a_crash_at_every_persistence_step_recovers_a_consistent_state() {
    let steps = workload(99, 60);
    // Count the disk operations of a full run, then crash at each of them:
    // appends, syncs, segment creation, snapshot writes, syncs, renames,
    // removals and directory syncs all get their turn.
    let disk = SimDisk::default();
    let clock = Arc::new(ManualClock::new(1_000));
    let mut b = builder(&disk, Fsync::Always, &clock);
    b.thresholds.compaction_floor = 2048;
    let store = b.open(DIR).expect("open");
    let opened_at = disk.ops();
    let mut model = State::new();
    for step in &steps {
        apply(&store, &mut model, step).expect("no crash in the reference run");
    }
    let total = disk.ops();
    drop(store);
    assert!(
        total - opened_at > 100,
        "the workload touches the disk often"
    );
    for crash_at in opened_at + 1..=total {
        for keep in [0, usize::MAX] {
            let (model, in_flight, recovered) =
                crash_and_recover(&steps, Fsync::Always, Some(crash_at), |max| keep.min(max));
            assert!(
                matches(&recovered, &model, &in_flight),
                "crash at op {crash_at} (keep {keep}):\nmodel {model:?}\nrecovered {recovered:?}"
            );
        }
    }
}

/// Writes `count` keys, one frame each, and returns the disk and the byte
/// offsets where each frame of segment 1 starts (plus the end): first the
/// revision reservation written on open, then one frame per key.
fn written_log(count: usize) -> (SimDisk, Vec<usize>) {
    let disk = SimDisk::default();
    let clock = Arc::new(ManualClock::new(1_000));
    let store = open(&disk, Fsync::Always, &clock).expect("open");
    for i in 0..count {
        store
            .upsert(&format!("key{i}"), format!("value{i}"), TtlChange::Keep)
            .expect("upsert");
    }
    drop(store);
    let frames = frames(&disk, &segment(1));
    let mut offsets: Vec<usize> = frames.iter().map(|&(offset, _, _)| offset).collect();
    offsets.extend(frames.last().map(|&(_, _, end)| end));
    assert_eq!(offsets.len(), count + 2);
    (disk, offsets)
}

#[test]
fn cutting_the_last_frame_anywhere_recovers_the_frames_before_it() {
    let (disk, offsets) = written_log(5);
    let bytes = disk.contents(&segment(1)).expect("segment");
    let last_start = offsets[5];
    let clock = Arc::new(ManualClock::new(1_000));
    for cut in last_start..bytes.len() {
        let copy = disk.power_loss(|max| max);
        copy.set_contents(&segment(1), bytes[..cut].to_vec());
        let store = open(&copy, Fsync::Always, &clock).expect("a torn tail is forgiven");
        let keys: Vec<String> = state(&store).into_keys().collect();
        assert_eq!(keys, ["key0", "key1", "key2", "key3"], "cut at {cut}");
        let torn = store.recovery().expect("report").torn_tail.clone();
        if cut == last_start {
            assert_eq!(torn, None, "a cut at a frame boundary is a clean end");
        } else {
            let torn = torn.expect("reported");
            assert_eq!(torn.offset, last_start as u64, "cut at {cut}");
            assert_eq!(
                torn.bytes_dropped,
                (cut - last_start) as u64,
                "cut at {cut}"
            );
        }
        drop(store);
        // The torn bytes are cut off the file; the reopened store's own
        // revision reservation follows the last whole frame.
        let after = copy.contents(&segment(1)).expect("segment");
        assert_eq!(after[..last_start], bytes[..last_start], "cut at {cut}");
        assert_eq!(
            frames(&copy, &segment(1)).last(),
            Some(&(last_start, frame::Op::Reserve, after.len())),
            "cut at {cut}: the torn bytes are gone"
        );
    }
}

#[test]
fn a_flipped_bit_in_any_earlier_frame_refuses_to_open_unless_truncation_is_asked() {
    let (disk, offsets) = written_log(4);
    let bytes = disk.contents(&segment(1)).expect("segment");
    let clock = Arc::new(ManualClock::new(1_000));
    // Every frame but the last: the reservation and the first three keys.
    for at in offsets[0]..offsets[4] {
        let frame = offsets.iter().rposition(|&o| o <= at).expect("frame");
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x04;
        let copy = disk.power_loss(|max| max);
        copy.set_contents(&segment(1), damaged);
        match open(&copy, Fsync::Always, &clock) {
            Err(Error::Corrupt { file, offset, .. }) => {
                assert_eq!(file, segment(1), "byte {at}");
                assert_eq!(offset, offsets[frame] as u64, "byte {at}");
            }
            other => panic!("byte {at}: expected Corrupt, got {other:?}"),
        }
        let store = builder(&copy, Fsync::Always, &clock)
            .on_corruption(OnCorruption::TruncateLog)
            .open(DIR)
            .expect("truncation opens");
        assert_eq!(
            state(&store).len(),
            frame.saturating_sub(1),
            "byte {at}: the keys of the frames before the damage"
        );
        let cut = store
            .recovery()
            .expect("report")
            .truncated_corruption
            .clone();
        assert_eq!(
            cut.map(|c| c.offset),
            Some(offsets[frame] as u64),
            "byte {at}"
        );
    }
}

#[test]
fn a_failed_sync_refuses_every_later_write() {
    let disk = SimDisk::default();
    let clock = Arc::new(ManualClock::new(1_000));
    let store = open(&disk, Fsync::Always, &clock).expect("open");
    // The next operations are the append (succeeds) and the sync (fails).
    disk.crash_at(disk.ops() + 2);
    assert!(matches!(
        store.upsert("a", "1", TtlChange::Keep),
        Err(Error::Io { .. })
    ));
    assert_eq!(
        store.upsert("b", "2", TtlChange::Keep),
        Err(Error::StorageFailed)
    );
    assert_eq!(store.remove("a"), Err(Error::StorageFailed));
}

#[test]
fn the_directory_stays_within_two_and_a_half_times_the_live_data_plus_the_floor() {
    let disk = SimDisk::default();
    let clock = Arc::new(ManualClock::new(1_000));
    let floor = 16 * 1024;
    let mut b = builder(&disk, Fsync::Never, &clock);
    b.thresholds.compaction_floor = floor;
    let store = b.open(DIR).expect("open");
    let mut rng = Rng(5);
    let mut compactions = 0;
    for i in 0..20_000u64 {
        let key = format!("key{}", rng.below(200));
        store
            .upsert(&key, vec![b'v'; 100 + (i % 50) as usize], TtlChange::Keep)
            .expect("upsert");
        store.inner().maintain_log();
        let stats = store.stats().durability.expect("durable");
        compactions = stats.compactions;
        let live: usize = store
            .list("", None, usize::MAX)
            .entries
            .iter()
            .map(|e| e.key().len() + e.value().len() + 33)
            .sum();
        let bound = 5 * live as u64 / 2 + floor + 4096;
        assert!(
            (disk.total_bytes() as u64) <= bound,
            "after {i} writes: {} bytes on disk, bound {bound}",
            disk.total_bytes()
        );
    }
    assert!(compactions > 10, "compaction ran ({compactions} times)");
}

#[test]
fn leftovers_of_an_interrupted_compaction_are_removed_on_open() {
    let disk = SimDisk::default();
    let clock = Arc::new(ManualClock::new(1_000));
    let store = open(&disk, Fsync::Always, &clock).expect("open");
    store.upsert("a", "1", TtlChange::Keep).expect("upsert");
    store.compact().expect("compact");
    store.upsert("b", "2", TtlChange::Keep).expect("upsert");
    store.compact().expect("compact");
    let expected = state(&store);
    drop(store);
    let store = open(&disk, Fsync::Always, &clock).expect("reopen");
    assert_eq!(state(&store), expected);
    let names: Vec<String> = disk
        .names()
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect();
    assert_eq!(
        names,
        [
            log::segment_name(3),
            crate::durable::snapshot::snapshot_name(3)
        ],
        "only the latest snapshot and its log remain"
    );
}

/// Operations of the model-based durability property.
#[derive(Debug, Clone)]
enum Op {
    Upsert(u8, u8),
    Remove(u8),
    Compact,
    Restart,
    Advance(u16),
    UpsertWithTtl(u8, u8, u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..6u8, any::<u8>()).prop_map(|(k, v)| Op::Upsert(k, v)),
        2 => (0..6u8).prop_map(Op::Remove),
        1 => Just(Op::Compact),
        1 => Just(Op::Restart),
        1 => (1..3000u16).prop_map(Op::Advance),
        2 => (0..6u8, any::<u8>(), 1..3000u16).prop_map(|(k, v, t)| Op::UpsertWithTtl(k, v, t)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_operations_snapshots_and_restarts_match_a_model(ops in prop::collection::vec(op(), 1..60)) {
        let disk = SimDisk::default();
        let clock = Arc::new(ManualClock::new(1_000_000));
        let mut store = open(&disk, Fsync::Always, &clock).expect("open");
        // key -> (value, deadline or 0)
        let mut model: BTreeMap<String, (String, u64)> = BTreeMap::new();
        let mut disk = disk;
        for op in ops {
            let now = crate::Clock::now_ms(&*clock);
            model.retain(|_, (_, deadline)| *deadline == 0 || *deadline >= now);
            match op {
                Op::Upsert(k, v) => {
                    let key = format!("k{k}");
                    store.upsert(&key, v.to_string(), TtlChange::Keep).expect("upsert");
                    let deadline = model.get(&key).map_or(0, |(_, d)| *d);
                    model.insert(key, (v.to_string(), deadline));
                }
                Op::UpsertWithTtl(k, v, ttl) => {
                    let key = format!("k{k}");
                    store
                        .upsert(
                            &key,
                            v.to_string(),
                            TtlChange::Set(Duration::from_millis(ttl.into())),
                        )
                        .expect("upsert");
                    model.insert(key, (v.to_string(), now + u64::from(ttl)));
                }
                Op::Remove(k) => {
                    let key = format!("k{k}");
                    let removed = store.remove(&key).is_ok();
                    prop_assert_eq!(removed, model.remove(&key).is_some());
                }
                Op::Compact => store.compact().expect("compact"),
                Op::Restart => {
                    drop(store);
                    // Power loss with `always` must not matter.
                    disk = disk.power_loss(|max| max / 2);
                    store = open(&disk, Fsync::Always, &clock).expect("reopen");
                }
                Op::Advance(ms) => clock.advance(ms.into()),
            }
            let now = crate::Clock::now_ms(&*clock);
            let expected: BTreeMap<String, String> = model
                .iter()
                .filter(|(_, (_, d))| *d == 0 || *d >= now)
                .map(|(k, (v, _))| (k.clone(), v.clone()))
                .collect();
            let actual: BTreeMap<String, String> =
                state(&store).into_iter().map(|(k, (v, _))| (k, v)).collect();
            prop_assert_eq!(actual, expected);
        }
    }
}

/// Runs a future to completion on this thread (kvcore has no runtime).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

#[test]
fn acks_resolve_as_futures_once_the_sync_thread_has_synced_many_writers_at_once() {
    let disk = SimDisk::default();
    let clock = Arc::new(ManualClock::new(1_000));
    let store = open(&disk, Fsync::Always, &clock).expect("open");
    let opened_at = disk.ops();
    // Many writes applied and logged before anyone waits: one sync can then
    // acknowledge them all.
    let acks: Vec<_> = (0..50)
        .map(|i| {
            let (written, ack) = store
                .put_acked(
                    &format!("k{i}"),
                    "v",
                    TtlChange::Keep,
                    crate::Condition::Always,
                )
                .expect("put");
            assert!(written.created);
            ack
        })
        .collect();
    let (_, removal) = store.remove_acked("k0", None).expect("remove");
    for ack in acks {
        block_on(ack).expect("acknowledged");
    }
    block_on(removal).expect("acknowledged");
    let syncs = disk.ops() - opened_at - 51;
    assert!(
        syncs < 10,
        "51 writes took {syncs} syncs: group commit batches them"
    );
    // Acknowledged means synced: a power loss keeping only synced bytes
    // keeps every one of them.
    drop(store);
    let after = disk.power_loss(|_| 0);
    let reopened = open(&after, Fsync::Always, &clock).expect("reopen");
    assert_eq!(state(&reopened).len(), 49);
}

#[test]
fn an_ack_denied_by_a_failed_sync_reports_the_cause() {
    let disk = SimDisk::default();
    let clock = Arc::new(ManualClock::new(1_000));
    let store = open(&disk, Fsync::Always, &clock).expect("open");
    // The append succeeds, the sync thread's sync fails.
    disk.crash_at(disk.ops() + 2);
    let (_, ack) = store
        .put_acked("a", "1", TtlChange::Keep, crate::Condition::Always)
        .expect("logged");
    assert!(matches!(block_on(ack), Err(Error::Io { .. })));
    assert_eq!(
        store.upsert("b", "2", TtlChange::Keep),
        Err(Error::StorageFailed)
    );
}

mod faults;
mod fuzz;
mod power_loss;
