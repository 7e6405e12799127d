//! kvcore: an embedded, concurrent key-value store with TTLs, versions and
//! compare-and-swap.
//!
//! ```
//! use std::time::Duration;
//! use kvcore::{Error, Store, TtlChange};
//!
//! let store = Store::new();
//! let v1 = store.create("session/42", "alice", Some(Duration::from_secs(30)))?;
//!
//! let entry = store.get("session/42")?.expect("just created");
//! assert_eq!(entry.value(), b"alice");
//! assert_eq!(entry.version(), v1);
//! assert!(entry.ttl().is_some());
//!
//! // Compare-and-swap: only succeeds against the version we read.
//! let v2 = store.compare_and_swap("session/42", v1, "bob", TtlChange::Keep)?;
//! assert!(matches!(
//!     store.compare_and_swap("session/42", v1, "eve", TtlChange::Keep),
//!     Err(Error::VersionMismatch { current: Some(v), .. }) if v == v2
//! ));
//!
//! let page = store.list("session/", None, 100);
//! assert_eq!(page.entries.len(), 1);
//! assert!(page.next.is_none());
//! # Ok::<(), kvcore::Error>(())
//! ```
//!
//! # Semantics
//!
//! - Keys are non-empty UTF-8 strings ordered as bytes; values are bytes.
//! - Every successful write takes the next number of one store-wide,
//!   strictly increasing revision; a key's version is the revision of its last
//!   write.
//! - A key whose deadline has passed is gone from the first millisecond after
//!   it: nothing returns it, counts it, lists it, or lets it block a create.
//!   A background pass ([`ActiveExpiry`]) gives its memory back.
//! - Every point operation, and `len`, is atomic and linearizable. A listing
//!   page reads the shards one at a time: it lists exactly once every key
//!   left alone while it runs ([`Store::list`] says precisely what a page is).
//!   No lock guard is ever handed out.
//! - Every change is an [`Event`] that [`Store::watch`] delivers in revision
//!   order. A watched store (one with a history, or that a watcher came to)
//!   numbers each expiry it notices with a revision too, like a delete.
//!
//! # Modules
//!
//! - `store`: the [`Store`] handle and its operations.
//! - `builder`: [`StoreBuilder`] (what [`Store::builder`] returns) and
//!   [`Limits`].
//! - `shard`: one lock-guarded slice of the keys; [`Tuning`] lives here.
//! - `entry`: the stored record and the [`Entry`] a read returns.
//! - `expiry`: TTLs, [`TtlChange`], and the reclaim pass.
//! - `listing`: prefix listing in pages, merged from every shard.
//! - `ordered`: each shard's keys in byte order, beside its hash table.
//! - `record_ref`: the uncounted record references `ordered` holds (the one
//!   module with `unsafe` code).
//! - `memory`: the memory bound's accounting and [`Eviction`] policy;
//!   `eviction`: how a write that does not fit makes room.
//! - `clock`: [`Clock`], with [`SystemClock`] and [`ManualClock`].
//! - `durable/`: the data directory of a store opened with [`Store::open`]
//!   (log, snapshots, recovery, compaction, [`Ack`]); its `mod.rs` maps it.
//! - `watch`: the change feed: [`Event`]s in revision order, the bounded
//!   history, and [`Watcher`]s (see [`Store::watch`]).
//! - `background`: the store's background threads, stopped by
//!   [`Store::close`].
//! - `error`: the [`Error`] enum.

#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

mod background;
mod builder;
mod clock;
mod durable;
mod entry;
mod error;
mod eviction;
mod expiry;
mod listing;
mod memory;
mod ordered;
mod record_ref;
mod shard;
mod store;
mod watch;

pub use builder::{Limits, StoreBuilder};
pub use clock::{Clock, ManualClock, SystemClock};
pub use durable::ack::Ack;
pub use durable::log::Fsync;
pub use durable::recovery::{OnCorruption, RecoveryReport, Truncation};
pub use entry::Entry;
pub use error::{Error, IoCause, Result};
pub use expiry::{ActiveExpiry, MAX_TTL, MIN_TTL, TtlChange};
pub use listing::Page;
pub use memory::{Eviction, MemoryStats};
pub use shard::Tuning;
pub use store::{Condition, DurabilityStats, Stats, Store, Written};
pub use watch::{Event, EventKind, Watcher};
