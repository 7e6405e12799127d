//! Prefix listing in byte order, a page at a time.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::entry::{Entry, Record};

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page {
    /// The entries, in byte order of their keys.
    pub entries: Vec<Entry>,
    /// Pass this as `after` to get the next page; `None` when the listing is
    /// complete.
    pub next: Option<String>,
}

/// Most entries a collector allocates room for up front.
const PRESIZED_PAGE: usize = 1024;

/// Keeps the `limit + 1` smallest matching keys seen so far; the extra one
/// tells whether another page follows.
pub(crate) struct Collector<'a> {
    prefix: &'a [u8],
    after: Option<&'a [u8]>,
    limit: usize,
    /// A max-heap on the key, so the largest kept key is the one to evict.
    kept: BinaryHeap<ByKey>,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(prefix: &'a str, after: Option<&'a str>, limit: usize) -> Collector<'a> {
        Collector {
            prefix: prefix.as_bytes(),
            after: after.map(str::as_bytes),
            limit,
            // A caller may pass a huge limit to mean "everything": size the
            // heap for a typical page and let it grow, never for the limit.
            kept: BinaryHeap::with_capacity(limit.min(PRESIZED_PAGE) + 1),
        }
    }

    pub(crate) fn offer(&mut self, record: &Record) {
        let key = record.key();
        if !key.starts_with(self.prefix) || self.after.is_some_and(|after| key <= after) {
            return;
        }
        if self.kept.len() > self.limit {
            // Full: only a key smaller than the largest kept one gets in.
            match self.kept.peek() {
                Some(largest) if key < largest.0.key() => {
                    self.kept.pop();
                }
                _ => return,
            }
        }
        self.kept.push(ByKey(record.clone()));
    }

    pub(crate) fn finish(self, now_ms: u64) -> Page {
        let mut records = self.kept.into_sorted_vec();
        let next = if records.len() > self.limit {
            records.truncate(self.limit);
            records
                .last()
                .map(|last| Entry::new(last.0.clone(), now_ms).key().to_owned())
        } else {
            None
        };
        let entries = records
            .into_iter()
            .map(|r| Entry::new(r.0, now_ms))
            .collect();
        Page { entries, next }
    }
}

struct ByKey(Record);

impl PartialEq for ByKey {
    fn eq(&self, other: &ByKey) -> bool {
        self.0.key() == other.0.key()
    }
}

impl Eq for ByKey {}

impl PartialOrd for ByKey {
    fn partial_cmp(&self, other: &ByKey) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByKey {
    fn cmp(&self, other: &ByKey) -> Ordering {
        self.0.key().cmp(other.0.key())
    }
}
