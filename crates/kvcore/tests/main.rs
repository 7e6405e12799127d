//! kvcore's public-API tests, one binary. Each module is one topic of the
//! data-model contract (README, Semantics).
//!
//! The topic files live in `tests/contract/`: Cargo would build every file
//! directly under `tests/` as a test binary of its own.

mod contract {
    mod fixtures;

    /// Many threads at once: CAS counters, racing creates, mixed operations.
    mod concurrency;
    /// Versions and deadlines across a restart of a durable store.
    mod durability;
    /// Expiry is judged at the instant an operation holds the key.
    mod expiry_races;
    /// Key and value size limits: the empty key, over the limit, exactly at it.
    mod limits;
    /// Recorded concurrent histories checked by stateright's linearizability tester.
    mod linearizability;
    /// Prefix listing: byte order, pages, cursors, limits.
    mod listing;
    /// The memory bound and its eviction policies.
    mod memory_bound;
    /// Random operation sequences against a `BTreeMap` model (proptest).
    mod model;
    /// Every operation, its result and its error, one key at a time.
    mod operations;
    /// The background reclaimer gives expired keys' memory back by itself.
    mod reclaimer;
    /// The store as a sequential object for the linearizability checker
    /// (kvserver's cluster tests include it too).
    pub(crate) mod sequential_store;
    /// Deadlines at the millisecond, TTL changes, expired keys blocking nothing.
    mod ttl;
    /// The change feed: events in order, history, expiries, slow watchers, a model.
    mod watch;
}
