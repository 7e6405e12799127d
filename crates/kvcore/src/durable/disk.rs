//! The few file-system operations durability needs, behind a trait, so that
//! tests can run the same code on a simulated disk that loses power.

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Data files are readable and writable by their owner only; the directory
/// (when kvcore creates it) is the owner's too.
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// A file being appended to.
pub(crate) trait DiskFile: Send + Sync {
    /// Hands all of `bytes` to the operating system (`write(2)`), at the end.
    fn append(&self, bytes: &[u8]) -> io::Result<()>;
    /// Makes everything appended so far durable (`fdatasync(2)`).
    fn sync(&self) -> io::Result<()>;
}

/// A file being read, at any offset.
pub(crate) trait DiskReader: Send {
    /// The file's length when it was opened.
    fn len(&self) -> u64;
    /// Fills `buf` from offset `at`.
    fn read_exact_at(&self, at: u64, buf: &mut [u8]) -> io::Result<()>;
}

/// A directory of files, as durability uses it.
pub(crate) trait Disk: Send + Sync + fmt::Debug {
    /// Creates the directory (and parents) if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names of the files in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens a file for reading.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn DiskReader>>;
    /// Opens a file for appending, creating it empty if missing.
    fn open_append(&self, path: &Path) -> io::Result<Arc<dyn DiskFile>>;
    /// Creates a file, replacing any file of that name, for appending.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn DiskFile>>;
    /// Shortens a file to `len` bytes and syncs it.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Renames a file, replacing the target.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Deletes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes creations, renames and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on the directory for this process's lifetime
    /// of the returned guard; fails if another holder has it.
    fn lock(&self, dir: &Path) -> io::Result<Box<dyn Send + Sync>>;
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RealDisk;

struct RealFile(File);

impl DiskFile for RealFile {
    fn append(&self, bytes: &[u8]) -> io::Result<()> {
        (&self.0).write_all(bytes)
    }

    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

struct RealReader {
    file: File,
    len: u64,
}

impl DiskReader for RealReader {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, at: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, at)
    }
}

/// A file's bytes held in memory (the simulated disk's files).
impl DiskReader for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }

    fn read_exact_at(&self, at: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(at).unwrap_or(usize::MAX);
        let bytes = self
            .get(start..)
            .and_then(|rest| rest.get(..buf.len()))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

impl Disk for RealDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn DiskReader>> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Box::new(RealReader { file, len }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Arc<dyn DiskFile>> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(FILE_MODE)
            .open(path)?;
        Ok(Arc::new(RealFile(file)))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn DiskFile>> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(path)?;
        Ok(Arc::new(RealFile(file)))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn lock(&self, dir: &Path) -> io::Result<Box<dyn Send + Sync>> {
        let path: PathBuf = dir.join("LOCK");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(FILE_MODE)
            .open(&path)?;
        // An advisory lock held for as long as the file stays open; the OS
        // drops it if the process dies, so a crash never leaves it stuck.
        file.try_lock().map_err(|err| match err {
            fs::TryLockError::WouldBlock => io::Error::new(
                io::ErrorKind::WouldBlock,
                "the directory is locked by another process",
            ),
            fs::TryLockError::Error(err) => err,
        })?;
        Ok(Box::new(file))
    }
}
