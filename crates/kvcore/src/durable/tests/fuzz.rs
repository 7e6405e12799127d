//! Fuzzing the decoder and recovery: whatever bytes the files hold, opening
//! never panics, refuses damage with `Corrupt` (naming the file), and a
//! store that opened accepts writes that a reopen reads back.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;

use super::{DIR, builder, segment, state};
use crate::durable::disk::Disk;
use crate::durable::frame::FileKind;
use crate::durable::sim_disk::SimDisk;
use crate::durable::snapshot;
use crate::{Error, Fsync, ManualClock, OnCorruption, Store, TtlChange};

/// Opens the disk with the given choice about damage.
fn open_with(disk: &SimDisk, on_corruption: OnCorruption) -> crate::Result<Store> {
    let clock = Arc::new(ManualClock::new(1_000));
    builder(disk, Fsync::Always, &clock)
        .on_corruption(on_corruption)
        .open(DIR)
}

/// What a store that opened must still do: take a write, and hand it back
/// after a reopen.
fn check_writable_and_readable(disk: &SimDisk, store: Store) {
    store
        .upsert("fuzz/after", "written", TtlChange::Keep)
        .expect("an opened store takes writes");
    let before = state(&store);
    store.close().expect("close");
    let reopened = open_with(disk, OnCorruption::Refuse).expect("what it wrote opens again");
    assert_eq!(
        state(&reopened),
        before,
        "the reopened store holds what it acknowledged"
    );
}

/// Opening refuses (naming a file of the directory) or succeeds; with
/// truncation asked, only a damaged snapshot may still refuse.
fn open_and_check(disk: &SimDisk, damaged: &Path) {
    for on_corruption in [OnCorruption::Refuse, OnCorruption::TruncateLog] {
        let copy = disk.power_loss(|max| max);
        match open_with(&copy, on_corruption) {
            Ok(store) => check_writable_and_readable(&copy, store),
            Err(Error::Corrupt {
                file,
                offset,
                reason,
            }) => {
                assert_eq!(file, damaged, "the damaged file is named");
                let is_snapshot =
                    snapshot::snapshot_seq(&file.file_name().unwrap_or_default().to_string_lossy())
                        .is_some();
                // A header naming another format is never cut away: the
                // file may be a newer kvstore's.
                let other_format = offset == 0 && reason.contains("format version");
                assert!(
                    on_corruption == OnCorruption::Refuse || is_snapshot || other_format,
                    "truncation opens any damaged log ({file:?} at {offset}: {reason})"
                );
            }
            Err(other) => panic!("damage must be reported as Corrupt, got {other}"),
        }
    }
}

/// A directory written by a store: a snapshot and a log with a few keys.
fn written_directory(keys: u8, compact_after: u8) -> SimDisk {
    let disk = SimDisk::default();
    let store = open_with(&disk, OnCorruption::Refuse).expect("open");
    for i in 0..keys {
        let value = vec![b'a' + i % 26; usize::from(i) * 7];
        store
            .upsert(&format!("key{i}"), value, TtlChange::Keep)
            .expect("upsert");
        if i == compact_after {
            store.compact().expect("compact");
        }
        if i % 5 == 4 {
            store.remove(&format!("key{}", i - 1)).expect("remove");
        }
    }
    store.close().expect("close");
    disk
}

/// A change to a file's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bits: u8 },
    Zero { at: usize, len: usize },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Duplicate { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        (any::<usize>(), 1..600usize).prop_map(|(at, len)| Mutation::Zero { at, len }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1..200usize).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let len = bytes.len().max(1);
    match mutation {
        Mutation::Flip { at, bits } => {
            if let Some(byte) = bytes.get_mut(at % len) {
                *byte ^= bits;
            }
        }
        Mutation::Zero { at, len: n } => {
            let start = (at % len).min(bytes.len());
            let end = (start + n).min(bytes.len());
            bytes[start..end].fill(0);
        }
        Mutation::Truncate { at } => bytes.truncate(at % len),
        Mutation::Insert { at, bytes: extra } => {
            let at = (at % len).min(bytes.len());
            bytes.splice(at..at, extra.iter().copied());
        }
        Mutation::Duplicate { at, len: n } => {
            let start = (at % len).min(bytes.len());
            let end = (start + n).min(bytes.len());
            let copy = bytes[start..end].to_vec();
            bytes.splice(end..end, copy);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_as_the_log_never_panic_and_are_refused_or_opened_whole(
        body in prop::collection::vec(any::<u8>(), 0..2048),
        with_header in any::<bool>(),
    ) {
        let disk = SimDisk::default();
        let path = segment(1);
        let mut bytes = if with_header { FileKind::Log.header().to_vec() } else { Vec::new() };
        bytes.extend(body);
        // A log file as a crash might leave one, alone in the directory.
        drop(disk.open_append(&path).expect("create"));
        disk.sync_dir(Path::new(DIR)).expect("sync");
        disk.set_contents(&path, bytes);
        open_and_check(&disk, &path);
    }

    #[test]
    fn damaging_a_written_directory_never_panics_nor_loses_later_writes(
        keys in 1..30u8,
        compact_after in 0..30u8,
        mutations in prop::collection::vec(mutation(), 1..4),
        target_snapshot in any::<bool>(),
    ) {
        let disk = written_directory(keys, compact_after);
        let files: Vec<PathBuf> = disk.names();
        let wanted = if target_snapshot { ".kvsnap" } else { ".kvlog" };
        let target = files
            .iter()
            .filter(|p| p.to_string_lossy().ends_with(wanted))
            .max()
            .or_else(|| files.iter().filter(|p| p.to_string_lossy().ends_with(".kvlog")).max())
            .cloned()
            .expect("a log segment");
        let mut bytes = disk.contents(&target).expect("file");
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        disk.set_contents(&target, bytes);
        open_and_check(&disk, &target);
    }
}
