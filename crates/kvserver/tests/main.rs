//! kvserver's black-box tests, one binary. Each module is one topic of the
//! HTTP contract (README, kvserver). Every test talks real HTTP to
//! the real app on port 0, or to the real binary where signals are the point.

/// Bearer tokens: 401/403, prefix permissions against a model, no secrets in logs, secure defaults.
mod auth;
#[cfg(feature = "etcd")]
mod etcd_harness;
mod raw_http;
/// kvcore's sequential model of the store, for the cluster's
/// linearizability check (which numbers versions the etcd way only).
#[cfg(feature = "etcd")]
#[allow(dead_code)]
#[path = "../../kvcore/tests/contract/sequential_store.rs"]
mod sequential_store;
mod server_process;
mod test_app;

/// kvserver on a 3-member etcd cluster: two instances, leader killed under writes, quorum lost and back, linearizability; etcd auth; a stop before etcd answered.
#[cfg(feature = "etcd")]
mod cluster;
/// Many clients at once: compare-and-swap loops and racing creates.
mod concurrency;
/// Idle connections over the fd limit: absorbed, then served again.
mod connections;
/// kill -9 under concurrent writes, against the real binary: nothing acknowledged is lost.
mod crash;
/// kvserver on an etcd member with TLS and client certificates: the right CA serves, a wrong CA or no certificate is a 503.
#[cfg(feature = "etcd")]
mod etcd_tls;
/// Request parsing fuzzed (proptest): keys, TTLs, ETags, JSON bodies, Authorization, auth files.
mod fuzz;
/// Key, value and body limits: 413 naming the limit and the size.
mod limits;
/// Listing in pages: byte order, prefixes, limits, cursors, values.
mod listing;
/// Malformed requests of every kind: the right 4xx, a useful sentence, no change.
mod malformed_input;
/// `--max-memory`: 507 when full, eviction, used/bound/evicted in info and metrics.
mod memory_bound;
/// `/healthz`, `/readyz`, `/metrics`, `/v1/info`.
mod operations;
/// The seed API at `/store`: the README's curl commands, entry JSON, any Content-Type.
mod seed_api;
/// The binary under SIGTERM and SIGINT, and its request log.
mod shutdown;
/// Clients that trickle their body are cut off after the body timeout.
mod slow_clients;
/// Flags checked at start-up, alone and against each other: one sentence, printed once.
mod startup;
/// HTTPS: trusted and untrusted CAs, host names, plain HTTP refused, certificate mistakes at start-up.
mod tls;
/// TTLs on both APIs with a manual clock: keep, set, remove, expire.
mod ttl;
/// One key through `/v1/kv/{key}`: raw bytes, ETags, preconditions, HEAD, DELETE, encoded keys.
mod v1_kv;
/// `/v1/watch`: Server-Sent Events, Last-Event-ID, 410 compacted, auth, keep-alive, shutdown.
mod watch;
/// openapi.json against kvapi, the one definition of the wire format: bodies, names, limits.
mod wire_format;

/// The HTTP contract again, from the same files, each test's app on etcd.
/// (Loading the files twice is the point: one source, two backends.)
#[cfg(feature = "etcd")]
#[allow(clippy::duplicate_mod)]
mod on_etcd;
