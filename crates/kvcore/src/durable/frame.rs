//! How a change is framed on disk, in log segments and snapshots alike, and
//! how a file of frames is read back: streamed, never whole, and with damage
//! told apart from a write cut short by a crash.
//!
//! A file opens with an 8-byte header: a 4-byte magic (`KVLG` for a log
//! segment, `KVSN` for a snapshot) and the format version (u32). Files
//! written before the header existed start with a frame and are read as
//! format 0.
//!
//! A frame is `length: u32 | crc32(length): u32 | crc32(payload): u32 |
//! payload`, little-endian. The length has its own checksum so that a damaged
//! length is told apart from a frame cut short at the end of the file. The
//! payload is
//! `op: u8 | revision: u64 | deadline_ms: u64 | key_len: u32 | key | value`.

use std::io;
use std::path::Path;

use crate::durable::disk::{Disk, DiskReader};
use crate::error::{Error, Result};

/// What a frame records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// The key now holds this value (and deadline) at this revision.
    Put = 1,
    /// The key was removed at this revision.
    Remove = 2,
    /// Last frame of a snapshot: `revision` is the store's revision and
    /// `deadline_ms` the number of `Put` frames before it.
    SnapshotEnd = 3,
    /// Revisions up to `revision` may be handed out: a reopened store
    /// continues above it.
    Reserve = 4,
}

/// One decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    pub(crate) op: Op,
    pub(crate) revision: u64,
    pub(crate) deadline_ms: u64,
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
}

/// The kinds of file that hold frames, each with its magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Log,
    Snapshot,
}

impl FileKind {
    fn magic(self) -> [u8; 4] {
        match self {
            FileKind::Log => *b"KVLG",
            FileKind::Snapshot => *b"KVSN",
        }
    }

    /// The header a new file of this kind starts with.
    pub(crate) fn header(self) -> [u8; FILE_HEADER] {
        let mut header = [0; FILE_HEADER];
        header[..4].copy_from_slice(&self.magic());
        header[4..].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        header
    }
}

/// Bytes of a file's header.
pub(crate) const FILE_HEADER: usize = 8;
/// The format this build writes.
const FORMAT_VERSION: u32 = 1;

const HEADER: usize = 12;
const FIXED: usize = 1 + 8 + 8 + 4;
/// No frame payload is larger than this; a length above it is corruption.
const MAX_PAYLOAD: usize = 1 << 31;

/// The largest value a frame can hold next to a key of `key_bytes`: what a
/// durable store's value limit is clamped to, so that everything it
/// acknowledges can be read back.
pub(crate) fn max_value_bytes(key_bytes: usize) -> usize {
    MAX_PAYLOAD - FIXED - key_bytes.min(max_key_bytes())
}

/// The largest key a frame can hold.
pub(crate) fn max_key_bytes() -> usize {
    // Keys are limited far below this in practice; half a frame leaves room
    // for a value.
    MAX_PAYLOAD / 2
}

/// Appends the frame's bytes to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, frame: &Frame<'_>) {
    let payload_len = FIXED + frame.key.len() + frame.value.len();
    debug_assert!(payload_len <= MAX_PAYLOAD, "limits keep frames decodable");
    let start = out.len();
    let len_bytes = (payload_len as u32).to_le_bytes();
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&crc32fast::hash(&len_bytes).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(frame.op as u8);
    out.extend_from_slice(&frame.revision.to_le_bytes());
    out.extend_from_slice(&frame.deadline_ms.to_le_bytes());
    out.extend_from_slice(&(frame.key.len() as u32).to_le_bytes());
    out.extend_from_slice(frame.key);
    out.extend_from_slice(frame.value);
    let crc = crc32fast::hash(&out[start + HEADER..]);
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

/// What lies at an offset of a file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    /// A valid frame, and the offset of the next one.
    Frame(Frame<'a>, u64),
    /// The clean end of the file.
    End,
    /// Damage with no valid frame after it: the tail of a write cut short by
    /// a crash (or zeros the file system extended it with).
    Torn(&'static str),
    /// Damage with valid frames after it, or a frame that checks out but
    /// cannot be meant (an unknown operation): never a crash's doing alone.
    Corrupt(&'static str),
}

/// Bytes read from the file at a time.
const CHUNK: usize = 1 << 20;

/// Reads the frames of one file in order, through a window of the file, so
/// that memory stays at a chunk (or the largest frame), whatever the file's
/// size.
pub(crate) struct FrameReader {
    source: Box<dyn DiskReader>,
    len: u64,
    /// Where the next frame starts.
    offset: u64,
    window: Vec<u8>,
    window_start: u64,
    /// The file is a header cut short: its creation was interrupted.
    torn_header: bool,
}

impl FrameReader {
    /// Opens `path` as a file of `kind`: checks its header. A file too short
    /// to hold one (a creation cut short) reads as empty.
    pub(crate) fn open(disk: &dyn Disk, path: &Path, kind: FileKind) -> Result<FrameReader> {
        let source = read_io(path, disk.open_read(path))?;
        let len = source.len();
        let mut reader = FrameReader {
            source,
            len,
            offset: 0,
            window: Vec::new(),
            window_start: 0,
            torn_header: false,
        };
        let corrupt = |reason| Error::Corrupt {
            file: path.to_owned(),
            offset: 0,
            reason,
        };
        let head = read_io(path, reader.bytes(0, FILE_HEADER.min(len as usize)))?.to_vec();
        let magic = kind.magic();
        let ours = match head.len() {
            0 => false,
            1..4 => magic.starts_with(&head),
            _ => head[..4] == magic,
        };
        if ours && head.len() < FILE_HEADER {
            reader.torn_header = true;
        } else if ours {
            let version = u32::from_le_bytes(head[4..8].try_into().unwrap_or_default());
            if version != FORMAT_VERSION {
                return Err(corrupt(
                    "unsupported format version (written by a newer kvstore?)",
                ));
            }
            reader.offset = FILE_HEADER as u64;
        } else if head.len() >= 4 && head[..4] == other(kind).magic() {
            return Err(corrupt(
                "a file of the wrong kind (log and snapshot swapped?)",
            ));
        }
        // Otherwise: format 0, frames from the first byte.
        Ok(reader)
    }

    /// The file's length.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Where the next frame starts (after a `Torn` or `Corrupt`: where the
    /// damage starts).
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Decodes the next frame.
    pub(crate) fn next_frame(&mut self) -> io::Result<Decoded<'_>> {
        let offset = self.offset;
        if self.torn_header {
            return Ok(Decoded::Torn("a file header cut short"));
        }
        if offset >= self.len {
            return Ok(Decoded::End);
        }
        let damaged = |this: &mut FrameReader, zeros: &'static str, other: &'static str| {
            this.classify_damage(offset, zeros, other)
        };
        if self.len - offset < HEADER as u64 {
            return damaged(self, "zeros at the end", "a frame header cut short");
        }
        let header: [u8; HEADER] = self
            .bytes(offset, HEADER)?
            .try_into()
            .unwrap_or([0; HEADER]);
        let word =
            |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().unwrap_or_default());
        if crc32fast::hash(&header[..4]) != word(4) {
            return damaged(
                self,
                "a zero-filled hole followed by valid frames",
                "a damaged frame length followed by valid frames",
            );
        }
        let len = word(0) as usize;
        if !(FIXED..=MAX_PAYLOAD).contains(&len) {
            return Ok(Decoded::Corrupt("impossible frame length"));
        }
        if offset + (HEADER + len) as u64 > self.len {
            // The length checks out, so the frame really is longer than
            // what reached the file.
            return Ok(Decoded::Torn("a frame cut short"));
        }
        let crc = word(8);
        let payload_ok = crc32fast::hash(self.bytes(offset + HEADER as u64, len)?) == crc;
        if !payload_ok {
            return damaged(
                self,
                "a zero-filled hole followed by valid frames",
                "a checksum mismatch followed by valid frames",
            );
        }
        let (op, key_len) = {
            let payload = self.bytes(offset + HEADER as u64, len)?;
            let key_len = u32::from_le_bytes(payload[17..21].try_into().unwrap_or_default());
            (payload[0], key_len as usize)
        };
        let op = match op {
            1 => Op::Put,
            2 => Op::Remove,
            3 => Op::SnapshotEnd,
            4 => Op::Reserve,
            _ => return Ok(Decoded::Corrupt("unknown operation")),
        };
        if key_len > len - FIXED {
            return Ok(Decoded::Corrupt("key length beyond the frame"));
        }
        let next = offset + (HEADER + len) as u64;
        self.offset = next;
        // In the window already: no read.
        let payload = self.bytes(offset + HEADER as u64, len)?;
        let u64_at =
            |at: usize| u64::from_le_bytes(payload[at..at + 8].try_into().unwrap_or_default());
        let frame = Frame {
            op,
            revision: u64_at(1),
            deadline_ms: u64_at(9),
            key: &payload[FIXED..FIXED + key_len],
            value: &payload[FIXED + key_len..],
        };
        Ok(Decoded::Frame(frame, next))
    }

    /// Damage at `at`: a torn tail if nothing valid follows it, otherwise
    /// corruption, named `zeros` when the damage starts with zeros.
    fn classify_damage(
        &mut self,
        at: u64,
        zeros: &'static str,
        other: &'static str,
    ) -> io::Result<Decoded<'static>> {
        if self.next_valid_frame(at + 1)?.is_none() {
            return Ok(Decoded::Torn("an incomplete or damaged final frame"));
        }
        let starts_with_zeros = self
            .bytes(at, 4.min((self.len - at) as usize))?
            .iter()
            .all(|&b| b == 0);
        Ok(Decoded::Corrupt(if starts_with_zeros {
            zeros
        } else {
            other
        }))
    }

    /// The first valid frame starting at or after `from`: its offset, end
    /// and revision, found by trying every offset (only damaged files get
    /// here).
    fn next_valid_frame(&mut self, from: u64) -> io::Result<Option<(u64, u64, u64)>> {
        let mut at = from;
        while at + HEADER as u64 <= self.len {
            // Scan a chunk for a plausible header; only those are read whole.
            let take = (CHUNK as u64).min(self.len - at) as usize;
            let chunk = self.bytes(at, take)?.to_vec();
            for i in 0..=chunk.len() - HEADER {
                let word = |at: usize| {
                    u32::from_le_bytes(chunk[at..at + 4].try_into().unwrap_or_default())
                };
                if crc32fast::hash(&chunk[i..i + 4]) != word(i + 4) {
                    continue;
                }
                let len = word(i) as usize;
                let start = at + i as u64;
                let end = start + (HEADER + len) as u64;
                if !(FIXED..=MAX_PAYLOAD).contains(&len) || end > self.len {
                    continue;
                }
                let payload = self.bytes(start + HEADER as u64, len)?;
                if crc32fast::hash(payload) == word(i + 8) {
                    let revision = u64::from_le_bytes(payload[1..9].try_into().unwrap_or_default());
                    return Ok(Some((start, end, revision)));
                }
            }
            at += (chunk.len() - (HEADER - 1)) as u64;
        }
        Ok(None)
    }

    /// The highest revision of any valid frame from `from` on: what a cut
    /// made at damage drops, so that revisions continue above it.
    pub(crate) fn max_revision_from(&mut self, from: u64) -> io::Result<u64> {
        let mut highest = 0;
        let mut at = from;
        while let Some((_, end, revision)) = self.next_valid_frame(at)? {
            highest = highest.max(revision);
            at = end;
        }
        Ok(highest)
    }

    /// `count` bytes at `at`, through the window.
    fn bytes(&mut self, at: u64, count: usize) -> io::Result<&[u8]> {
        let end = at + count as u64;
        let window_end = self.window_start + self.window.len() as u64;
        if at < self.window_start || end > window_end {
            let take = (count.max(CHUNK) as u64).min(self.len - at) as usize;
            self.window.clear();
            self.window.resize(take, 0);
            self.source.read_exact_at(at, &mut self.window)?;
            self.window_start = at;
        }
        let from = (at - self.window_start) as usize;
        Ok(&self.window[from..from + count])
    }
}

/// A failed read of `path`, as recovery reports it.
pub(crate) fn read_io<T>(path: &Path, result: io::Result<T>) -> Result<T> {
    result.map_err(|err| Error::io(format!("could not read {}", path.display()), err))
}

fn other(kind: FileKind) -> FileKind {
    match kind {
        FileKind::Log => FileKind::Snapshot,
        FileKind::Snapshot => FileKind::Log,
    }
}
