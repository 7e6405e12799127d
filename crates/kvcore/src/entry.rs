//! One stored key: its bytes, its version and its deadline.
//!
//! A [`Record`] is a single reference-counted allocation holding the header,
//! the key and the value back to back, behind an 8-byte thin pointer. That
//! keeps a hash table slot at 8 bytes and a key at one allocation, and lets a
//! reader take the value out of a shard by bumping a reference count instead
//! of copying bytes under the lock.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use triomphe::ThinArc;

/// Deadline value meaning "no deadline". Real deadlines are `now + ttl` with
/// `ttl >= 1 ms`, so they are never zero.
pub(crate) const NO_DEADLINE: u64 = 0;

/// Records up to this many key and value bytes are assembled on the stack.
const SMALL_RECORD: usize = 256;

pub(crate) struct Header {
    // Version and deadline are atomics only so that they can be filled in
    // under the shard lock after the record was allocated outside of it.
    // Once the record is in a table they change only through
    // `Record::overwrite`, under the shard's write lock and while nobody
    // else holds the record.
    version: AtomicU64,
    deadline_ms: AtomicU64,
    key_len: u32,
    /// The LRU clock at the last read or write (`evict-lru` only; see
    /// `memory.rs`). It sits in what was the header's padding, so a record
    /// costs no more bytes with it.
    accessed: AtomicU32,
}

/// The stored form of an entry. Cloning bumps a reference count.
#[derive(Clone)]
pub(crate) struct Record(pub(crate) ThinArc<Header, u8>);

impl Record {
    /// Allocates a record; version and deadline are set later with [`Record::stamp`].
    pub(crate) fn new(key: &str, value: &[u8]) -> Record {
        let header = Header {
            version: AtomicU64::new(0),
            deadline_ms: AtomicU64::new(NO_DEADLINE),
            // Fits: keys are checked against max_key_bytes, itself a u32.
            key_len: key.len() as u32,
            accessed: AtomicU32::new(0),
        };
        // Lay key and value out back to back, then let triomphe copy them in
        // one memcpy. Feeding the bytes through an iterator cost ~20
        // instructions a byte: over half of a 16+16-byte upsert (callgrind,
        // see BENCHMARKS.md). Small records use a stack buffer.
        let len = key.len() + value.len();
        if len <= SMALL_RECORD {
            let mut bytes = [0u8; SMALL_RECORD];
            bytes[..key.len()].copy_from_slice(key.as_bytes());
            bytes[key.len()..len].copy_from_slice(value);
            Record(ThinArc::from_header_and_slice(header, &bytes[..len]))
        } else {
            let mut bytes = Vec::with_capacity(len);
            bytes.extend_from_slice(key.as_bytes());
            bytes.extend_from_slice(value);
            Record(ThinArc::from_header_and_slice(header, &bytes))
        }
    }

    /// Sets version and deadline. Only called before the record is shared.
    pub(crate) fn stamp(&self, version: u64, deadline_ms: u64) {
        let header = &self.0.header.header;
        header.version.store(version, Ordering::Relaxed);
        header.deadline_ms.store(deadline_ms, Ordering::Relaxed);
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.0.slice[..self.key_len()]
    }

    pub(crate) fn value(&self) -> &[u8] {
        &self.0.slice[self.key_len()..]
    }

    pub(crate) fn version(&self) -> u64 {
        self.0.header.header.version.load(Ordering::Relaxed)
    }

    pub(crate) fn deadline_ms(&self) -> u64 {
        self.0.header.header.deadline_ms.load(Ordering::Relaxed)
    }

    /// True from the first millisecond after the deadline.
    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        let deadline = self.deadline_ms();
        deadline != NO_DEADLINE && now_ms > deadline
    }

    /// Writes a new value, version and deadline into this record's own
    /// allocation, if that is possible: the value is as long as the old one
    /// and this is the only handle to the record (no reader holds a clone,
    /// so no one can see the bytes change). Returns whether it did. Call
    /// only under the shard's write lock, which keeps new clones from
    /// appearing meanwhile.
    ///
    /// An overwrite this way costs no allocation and no free: about half
    /// the instructions of an upsert of a 16-byte value (callgrind).
    pub(crate) fn overwrite(&mut self, value: &[u8], version: u64, deadline_ms: u64) -> bool {
        let key_len = self.key_len();
        self.0.with_arc_mut(|arc| {
            if arc.slice().len() != key_len + value.len() {
                return false;
            }
            // Unique only if no reader holds a clone (`Acquire`: their last
            // reads of the old bytes happen before these writes).
            let Some(record) = triomphe::Arc::get_mut(arc) else {
                return false;
            };
            record.slice_mut()[key_len..].copy_from_slice(value);
            let header = record.header();
            header.version.store(version, Ordering::Relaxed);
            header.deadline_ms.store(deadline_ms, Ordering::Relaxed);
            true
        })
    }

    /// Notes an access at LRU clock `clock`. Reads the stamp first and
    /// writes only when the clock has moved, so that readers of a hot key
    /// do not write its cache line on every read.
    #[inline]
    pub(crate) fn touch(&self, clock: u32) {
        let accessed = &self.0.header.header.accessed;
        if accessed.load(Ordering::Relaxed) != clock {
            accessed.store(clock, Ordering::Relaxed);
        }
    }

    /// The LRU clock at the last access (see [`Record::touch`]).
    pub(crate) fn accessed(&self) -> u32 {
        self.0.header.header.accessed.load(Ordering::Relaxed)
    }

    /// Bytes of key and value.
    pub(crate) fn payload_len(&self) -> usize {
        self.0.slice.len()
    }

    /// The allocation's address: with the hash, it finds this record again
    /// without holding a handle to it (eviction candidates).
    pub(crate) fn addr(&self) -> usize {
        self.0.ptr() as usize
    }

    /// Whether two handles point at the same allocation, i.e. the same write.
    /// A record overwritten in place stays the same allocation, but never
    /// while another handle to it exists, so a handle kept to compare with
    /// still tells whether the key was written since it was taken.
    pub(crate) fn same_as(&self, other: &Record) -> bool {
        self.0.ptr() == other.0.ptr()
    }

    fn key_len(&self) -> usize {
        self.0.header.header.key_len as usize
    }
}

/// A key's value, version and deadline as read at one instant.
///
/// It shares the stored bytes with the store (no copy was made to read it), so
/// holding it is cheap, and it stays valid after the key is overwritten or
/// removed.
#[derive(Clone)]
pub struct Entry {
    record: Record,
    read_at_ms: u64,
}

impl Entry {
    pub(crate) fn new(record: Record, read_at_ms: u64) -> Entry {
        Entry { record, read_at_ms }
    }

    /// The key.
    pub fn key(&self) -> &str {
        // Records are only ever built from `&str` keys.
        std::str::from_utf8(self.record.key()).unwrap_or_default()
    }

    /// The value's bytes.
    pub fn value(&self) -> &[u8] {
        self.record.value()
    }

    /// The revision of the write that produced this value.
    pub fn version(&self) -> u64 {
        self.record.version()
    }

    /// The absolute deadline in milliseconds since the Unix epoch, if any.
    pub fn deadline_ms(&self) -> Option<u64> {
        match self.record.deadline_ms() {
            NO_DEADLINE => None,
            deadline => Some(deadline),
        }
    }

    /// Time left before the key expires, as of the read; `None` without a deadline.
    /// Zero means this is the key's last millisecond.
    pub fn ttl(&self) -> Option<Duration> {
        self.deadline_ms()
            .map(|deadline| Duration::from_millis(deadline.saturating_sub(self.read_at_ms)))
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key())
            .field("value_len", &self.value().len())
            .field("version", &self.version())
            .field("deadline_ms", &self.deadline_ms())
            .finish()
    }
}

impl AsRef<[u8]> for Entry {
    /// The value's bytes, so an `Entry` can back a zero-copy buffer.
    fn as_ref(&self) -> &[u8] {
        self.value()
    }
}
