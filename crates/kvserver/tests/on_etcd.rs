//! The HTTP contract again, from the same files as the embedded store's
//! tests, with every test's app on an etcd member of its own (cargo feature
//! `etcd`; needs the etcd binary). `TestApp` picks the backend from the
//! test's name (`on_etcd::...`). Tests that start the binary themselves
//! check the HTTP layer and keep the embedded store in both copies.

#[path = "concurrency.rs"]
mod concurrency;
#[path = "limits.rs"]
mod limits;
#[path = "listing.rs"]
mod listing;
#[path = "malformed_input.rs"]
mod malformed_input;
#[path = "operations.rs"]
mod operations;
#[path = "seed_api.rs"]
mod seed_api;
#[path = "ttl.rs"]
mod ttl;
#[path = "v1_kv.rs"]
mod v1_kv;
#[path = "watch.rs"]
mod watch;
