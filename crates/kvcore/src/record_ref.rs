//! A reference from a shard's ordered index to a record its hash table owns.
//!
//! The index needs the key bytes of the records it orders, but must not hold
//! a counted handle: a second handle would make every record shared, and
//! [`Record::overwrite`] (the allocation-free update path) only writes into
//! a record nobody else holds. So the index holds an *uncounted* alias: the
//! same 8-byte pointer as the table's [`Record`], wrapped so that it is never
//! dropped and so never gives a count back it did not take.
//!
//! This is the only module of kvcore with `unsafe` code (the one call to
//! [`RecordRef::new`], in `shard.rs`, promises its contract).
//!
//! # Invariant
//!
//! A `RecordRef` is only read while the record it aliases is alive. The
//! shard's `Table` keeps that true: it changes its hash table and its ordered
//! index together, under the shard's write lock (`&mut Table`), and hands a
//! record to the index in the same call that takes it out of the table: the
//! index keeps a counted handle to it (`Ordered::remove`, in `gone`) until
//! it has removed the record's reference, so the record cannot be freed
//! while a reference to it remains. A reader borrows the `Table` (`&Table`,
//! the shard's read lock), so no record it reaches through the index can be
//! removed, let alone freed, while it reads. The table's tests check after
//! every operation of a random sequence that each reference points to a
//! record the table holds or the index keeps (`Table::check`), and they run
//! under valgrind (see BENCHMARKS.md, "Ordered listing").

#![allow(unsafe_code)]

use std::mem::ManuallyDrop;

use triomphe::ThinArc;

use crate::entry::Record;

/// An uncounted alias of a [`Record`] owned by someone else.
pub(crate) struct RecordRef(ManuallyDrop<Record>);

impl RecordRef {
    /// An alias of `record` that does not hold a reference count.
    ///
    /// # Safety
    ///
    /// The caller must stop using the alias (every method below reads the
    /// record) before the last counted handle of `record` is dropped.
    pub(crate) unsafe fn new(record: &Record) -> RecordRef {
        // SAFETY: `ptr()` is the pointer `into_raw` would return for this
        // ThinArc, which is what `from_raw` requires. The result is wrapped in
        // `ManuallyDrop` and never dropped, so the reference count it did not
        // take is never given back; the caller keeps the record alive while
        // the alias is used.
        let alias = unsafe { ThinArc::from_raw(record.0.ptr()) };
        RecordRef(ManuallyDrop::new(Record(alias)))
    }

    /// The record, borrowed for as long as this reference is.
    #[inline]
    pub(crate) fn record(&self) -> &Record {
        &self.0
    }

    /// The record's key.
    #[inline]
    pub(crate) fn key(&self) -> &[u8] {
        self.0.key()
    }

    /// The record's address (see [`Record::addr`]; reads no record).
    #[inline]
    pub(crate) fn addr(&self) -> usize {
        self.0.addr()
    }

    /// Whether this aliases `record`'s allocation (compares pointers only:
    /// reads no record).
    #[inline]
    pub(crate) fn is(&self, record: &Record) -> bool {
        self.0.same_as(record)
    }
}
