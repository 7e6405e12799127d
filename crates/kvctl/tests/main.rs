//! kvctl's integration tests: the real binary against a real kvserver
//! started in this process on port 0, or against small fake servers for
//! the failures a real one won't produce on demand.
//!
//! - `keys`: set, get, del, update and ttl; values from stdin and `@file`.
//! - `listing`: list, its pages, limits and JSON.
//! - `transfer`: export and import, binary values and deadlines.
//! - `failures`: every way a command fails, and its exit code.
//! - `credentials`: tokens that cannot go in a header, and endpoints with
//!   a user name or password, refused before anything is sent.
//! - `tls`: `--cacert` against an HTTPS kvserver, and tokens kept off plain
//!   http to other hosts (`--insecure`).
//! - `tooling`: health, completions, help.
//! - `watch`: the change feed, reconnecting across a restart, Ctrl-C.
//! - `on_etcd` (cargo feature `etcd`): the modules that talk to a kvserver
//!   again, each test's kvserver on an etcd member of its own.

mod credentials;
/// kvserver's harness: etcd members on loopback, started by the tests
/// (kvserver's cluster tests use the parts these tests do not).
#[cfg(feature = "etcd")]
#[path = "../../kvserver/tests/etcd_harness.rs"]
#[allow(dead_code)]
mod etcd_harness;
mod failures;
mod keys;
mod listing;
mod support;
mod tls;
mod tooling;
mod transfer;
mod watch;

/// The same files again, each test's kvserver on etcd. (Loading them twice
/// is the point: one source, two backends.)
#[cfg(feature = "etcd")]
#[allow(clippy::duplicate_mod)]
mod on_etcd;
