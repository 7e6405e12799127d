//! kvctl's tests that talk to a kvserver, again from the same files, with
//! each test's kvserver on an etcd member of its own (cargo feature `etcd`;
//! needs the etcd binary). `support::Server` picks the backend from the
//! test's name (`on_etcd::...`), as kvserver's `TestApp` does. Left out:
//! `credentials` (nothing reaches a server), `tls` and `tooling` (HTTPS,
//! health, help and completions do not depend on the backend).

#[path = "failures.rs"]
mod failures;
#[path = "keys.rs"]
mod keys;
#[path = "listing.rs"]
mod listing;
#[path = "transfer.rs"]
mod transfer;
#[path = "watch.rs"]
mod watch;
