//! A simulated disk for tests: it keeps what was synced apart from what was
//! only written, can be told to fail from a given operation on (the moment
//! of a crash), and can then "lose power": keep the synced bytes, the
//! directory as it was last synced, and of each file's unsynced tail what
//! the test picks: a sector-aligned prefix, or (as a real disk's write-back
//! may leave it) a file extended by some sectors, each of which reached the
//! disk or reads as zeros, in any order.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::durable::disk::{Disk, DiskFile, DiskReader};

const SECTOR: usize = 512;

#[derive(Debug, Clone, Default)]
pub(crate) struct SimDisk {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    files: HashMap<u64, Contents>,
    names: BTreeMap<PathBuf, u64>,
    /// The directory as of the last `sync_dir`.
    durable_names: BTreeMap<PathBuf, u64>,
    next_inode: u64,
    /// Mutating operations so far.
    ops: u64,
    /// From this operation on, everything fails: the machine is down.
    crash_at: Option<u64>,
    /// One operation of this kind, on a path containing this text, fails
    /// once: a transient error.
    fail_once: Option<(SimOp, String)>,
    /// The most bytes one read asked for.
    largest_read: usize,
}

/// The operations a test can make fail once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SimOp {
    Create,
    Append,
    Sync,
    Rename,
    SyncDir,
}

#[derive(Debug, Default, Clone)]
struct Contents {
    data: Vec<u8>,
    /// The content as of the last sync.
    durable: Vec<u8>,
}

impl State {
    /// Counts a mutating operation; fails once the crash point is reached.
    fn step(&mut self) -> io::Result<()> {
        self.ops += 1;
        match self.crash_at {
            Some(at) if self.ops >= at => Err(io::Error::other("simulated crash")),
            _ => Ok(()),
        }
    }

    /// [`State::step`] for an operation of kind `op` on `path`, which may
    /// be the one planned to fail once.
    fn step_on(&mut self, op: SimOp, path: &Path) -> io::Result<()> {
        self.step()?;
        if let Some((kind, text)) = &self.fail_once
            && *kind == op
            && path.to_string_lossy().contains(text.as_str())
        {
            self.fail_once = None;
            return Err(io::Error::other(format!("simulated {op:?} failure")));
        }
        Ok(())
    }

    fn path_of(&self, inode: u64) -> PathBuf {
        self.names
            .iter()
            .find(|&(_, &i)| i == inode)
            .map(|(path, _)| path.clone())
            .unwrap_or_default()
    }

    fn inode(&self, path: &Path) -> io::Result<u64> {
        self.names
            .get(path)
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{path:?}")))
    }

    fn new_file(&mut self, path: &Path) -> u64 {
        self.next_inode += 1;
        let inode = self.next_inode;
        self.files.insert(inode, Contents::default());
        self.names.insert(path.to_owned(), inode);
        inode
    }
}

impl SimDisk {
    /// Every mutating operation from the `at`-th on (counting from 1) fails.
    pub(crate) fn crash_at(&self, at: u64) {
        self.state.lock().crash_at = Some(at);
    }

    /// The next operation `op` on a path containing `path_text` fails (once).
    pub(crate) fn fail_once(&self, op: SimOp, path_text: &str) {
        self.state.lock().fail_once = Some((op, path_text.to_owned()));
    }

    /// Whether a planned one-time failure has not happened yet.
    pub(crate) fn failure_pending(&self) -> bool {
        self.state.lock().fail_once.is_some()
    }

    /// The most bytes any single read asked for so far.
    pub(crate) fn largest_read(&self) -> usize {
        self.state.lock().largest_read
    }

    /// Mutating operations performed so far.
    pub(crate) fn ops(&self) -> u64 {
        self.state.lock().ops
    }

    /// The disk as it is after power returns: the synced directory, each file
    /// with its synced bytes plus a sector-aligned prefix of the rest chosen
    /// by `pick(max_sectors) -> sectors`. Operations work again afterwards.
    pub(crate) fn power_loss(&self, mut pick: impl FnMut(usize) -> usize) -> SimDisk {
        self.power_loss_with(|sectors| vec![true; pick(sectors).min(sectors)])
    }

    /// [`SimDisk::power_loss`] where write-back was out of order: each file
    /// keeps some of its unsynced sectors, any of them, and the ones it lost
    /// before the last one it kept read as zeros. `random` drives the choice.
    pub(crate) fn power_loss_scrambled(&self, mut random: impl FnMut() -> u64) -> SimDisk {
        self.power_loss_with(|sectors| {
            let extent = (random() % (sectors as u64 + 1)) as usize;
            (0..extent).map(|_| random().is_multiple_of(2)).collect()
        })
    }

    /// The general power loss: `fate(unsynced_sectors)` says, for each
    /// sector the file still reaches, whether its bytes arrived (`true`) or
    /// it reads as zeros.
    fn power_loss_with(&self, mut fate: impl FnMut(usize) -> Vec<bool>) -> SimDisk {
        let state = self.state.lock();
        let mut files = HashMap::new();
        for inode in state.durable_names.values() {
            let contents = &state.files[inode];
            let mut data = contents.durable.clone();
            if contents.data.starts_with(&contents.durable) {
                let tail = &contents.data[contents.durable.len()..];
                for (sector, arrived) in tail.chunks(SECTOR).zip(fate(tail.len().div_ceil(SECTOR)))
                {
                    match arrived {
                        true => data.extend_from_slice(sector),
                        false => data.resize(data.len() + sector.len(), 0),
                    }
                }
            }
            files.insert(
                *inode,
                Contents {
                    durable: data.clone(),
                    data,
                },
            );
        }
        SimDisk {
            state: Arc::new(Mutex::new(State {
                files,
                names: state.durable_names.clone(),
                durable_names: state.durable_names.clone(),
                next_inode: state.next_inode,
                ops: 0,
                crash_at: None,
                fail_once: None,
                largest_read: 0,
            })),
        }
    }

    /// A file's current bytes.
    pub(crate) fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.state.lock();
        let inode = state.names.get(path)?;
        Some(state.files[inode].data.clone())
    }

    /// Replaces a file's bytes, durably (to plant damage).
    pub(crate) fn set_contents(&self, path: &Path, bytes: Vec<u8>) {
        let mut state = self.state.lock();
        let inode = state.inode(path).expect("file exists");
        state.files.insert(
            inode,
            Contents {
                durable: bytes.clone(),
                data: bytes,
            },
        );
    }

    /// Names of the files that exist now.
    pub(crate) fn names(&self) -> Vec<PathBuf> {
        self.state.lock().names.keys().cloned().collect()
    }

    /// Total bytes of all files.
    pub(crate) fn total_bytes(&self) -> usize {
        let state = self.state.lock();
        state
            .names
            .values()
            .map(|i| state.files[i].data.len())
            .sum()
    }
}

/// A file opened for reading: its bytes at that moment.
struct SimReader {
    disk: SimDisk,
    bytes: Vec<u8>,
}

impl DiskReader for SimReader {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_exact_at(&self, at: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut state = self.disk.state.lock();
        state.largest_read = state.largest_read.max(buf.len());
        drop(state);
        self.bytes.read_exact_at(at, buf)
    }
}

struct SimFile {
    disk: SimDisk,
    inode: u64,
}

impl DiskFile for SimFile {
    fn append(&self, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.disk.state.lock();
        let path = state.path_of(self.inode);
        state.step_on(SimOp::Append, &path)?;
        let contents = state.files.get_mut(&self.inode).expect("inode exists");
        contents.data.extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut state = self.disk.state.lock();
        let path = state.path_of(self.inode);
        state.step_on(SimOp::Sync, &path)?;
        let contents = state.files.get_mut(&self.inode).expect("inode exists");
        contents.durable = contents.data.clone();
        Ok(())
    }
}

impl Disk for SimDisk {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.state.lock();
        Ok(state
            .names
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| path.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn DiskReader>> {
        let state = self.state.lock();
        let inode = state.inode(path)?;
        Ok(Box::new(SimReader {
            disk: self.clone(),
            bytes: state.files[&inode].data.clone(),
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Arc<dyn DiskFile>> {
        let mut state = self.state.lock();
        let inode = match state.names.get(path) {
            Some(&inode) => inode,
            None => {
                state.step()?;
                state.new_file(path)
            }
        };
        Ok(Arc::new(SimFile {
            disk: self.clone(),
            inode,
        }))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn DiskFile>> {
        let mut state = self.state.lock();
        state.step_on(SimOp::Create, path)?;
        let inode = state.new_file(path);
        Ok(Arc::new(SimFile {
            disk: self.clone(),
            inode,
        }))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        state.step()?;
        let inode = state.inode(path)?;
        let contents = state.files.get_mut(&inode).expect("inode exists");
        contents.data.truncate(len as usize);
        contents.durable = contents.data.clone();
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.step_on(SimOp::Rename, to)?;
        let inode = state.inode(from)?;
        state.names.remove(from);
        state.names.insert(to.to_owned(), inode);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.step()?;
        state.inode(path)?;
        state.names.remove(path);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.step_on(SimOp::SyncDir, dir)?;
        state.durable_names = state.names.clone();
        Ok(())
    }

    fn lock(&self, _dir: &Path) -> io::Result<Box<dyn Send + Sync>> {
        Ok(Box::new(()))
    }
}
