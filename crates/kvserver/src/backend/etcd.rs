//! The etcd v3 backend: kvserver as a stateless tier over an etcd cluster,
//! which does the replication and the failover (README, "Running on a
//! cluster").
//!
//! How the contract maps onto etcd:
//!
//! - Key `K` is etcd key `PREFIX + K` (`--etcd-prefix`), so several kvstores
//!   can share one cluster.
//! - A key's version is its etcd `mod_revision`: store-wide, strictly
//!   increasing, never reused, as the embedded store's revisions are.
//! - Conditional writes and deletes are one etcd `Txn` each, comparing
//!   `create_revision` (absent) or `mod_revision` (a version). So is a
//!   plain write, which keeps the key's deadline (compared: no lease); one
//!   that sets or removes the deadline is a `Put`, which etcd serves faster.
//! - TTLs are kept to the millisecond: the exact deadline travels with the
//!   value in an envelope (a 10-byte header, module `envelope`), every read
//!   drops a key past it, and an etcd lease of the key's own, of the TTL
//!   rounded up to whole seconds and with an id that carries the deadline,
//!   reclaims the key some time after. A conditional write on a key with a
//!   deadline first reads it, so an expired key that etcd still holds is
//!   absent for it too.
//! - Reads are linearizable (etcd's default), so a write through one
//!   kvserver is read through any other right after.
//! - Every call is bounded by the configured timeout: a cluster that is down
//!   or without quorum is [`BackendError::Unavailable`] (503), never a hang.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity, KeyValue,
    KvClient, LeaseGrantOptions, LeaseTimeToLiveOptions, PutOptions, TlsOptions, Txn, TxnOp,
    TxnOpResponse, TxnResponse, WatchClient,
};
use kvcore::{Clock, Condition, TtlChange};

use super::{
    Backend, BackendError, BackendInfo, BackendResult, ListPage, MemoryFigures, StoredEntry, Watch,
    WriteResult,
};

/// etcd's default `--max-request-bytes`: the largest request it accepts.
pub const ETCD_DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// Room in a request for what is not the value: the key twice (the write
/// and its comparison), the envelope's header, protobuf framing and etcd's
/// own request header.
const REQUEST_OVERHEAD_BYTES: usize = 1024;

/// Largest gRPC message kvserver reads from etcd: one batch of a listing
/// (see [`EtcdBackend::list`]) fits well under it.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Keys per batch when `/v1/info` counts them.
const INFO_BATCH: i64 = 10_000;

/// Bytes of values a listing gathers before it ends its page early (with a
/// cursor): the route's own page budget is 4 MiB of JSON by default.
const LIST_PAGE_VALUE_BYTES: usize = 4 * 1024 * 1024;

/// How to reach etcd and how long to wait for it.
#[derive(Clone)]
pub struct EtcdConfig {
    /// Client URLs of the cluster's members (`http://host:2379`, or
    /// `https://` with TLS).
    pub endpoints: Vec<String>,
    /// Prepended to every key: the kvstore's namespace in the cluster.
    pub prefix: String,
    /// Bound on every call, retries included. Default 3 s.
    pub timeout: Duration,
    /// TLS towards etcd; `None` with `http://` endpoints.
    pub tls: Option<EtcdTls>,
    /// etcd user name and password, when the cluster has auth enabled.
    pub user: Option<(String, String)>,
    /// The cluster's `--max-request-bytes`. Default etcd's, 1.5 MiB.
    pub max_request_bytes: usize,
}

impl std::fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password is never printed.
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("tls", &self.tls.is_some())
            .field("user", &self.user.as_ref().map(|(name, _)| name))
            .field("max_request_bytes", &self.max_request_bytes)
            .finish()
    }
}

impl EtcdConfig {
    /// The largest value that fits in one etcd request next to a key of
    /// `max_key_bytes`.
    pub fn max_value_bytes(&self, max_key_bytes: usize) -> usize {
        self.max_request_bytes.saturating_sub(
            2 * (self.prefix.len() + max_key_bytes) + envelope::HEADER + REQUEST_OVERHEAD_BYTES,
        )
    }
}

/// PEM files for TLS towards etcd, read at start-up.
#[derive(Debug, Clone, Default)]
pub struct EtcdTls {
    /// CA certificates that sign the members' certificates; without it the
    /// system's roots are not consulted, so give it for a private CA.
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate and its key, for clusters that check them.
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
}

/// An etcd v3 cluster as a backend.
pub struct EtcdBackend {
    /// The runtime the client's connections live on.
    runtime: ClientRuntime,
    /// One client per member, in the order of `--etcd-endpoints`.
    members: Vec<Member>,
    /// The member calls go to, until one fails to reach it.
    preferred: AtomicUsize,
    prefix: Vec<u8>,
    endpoints: String,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    max_key_bytes: usize,
    max_value_bytes: usize,
    /// Expired keys this instance deleted on access.
    reclaimed: Arc<AtomicU64>,
    /// The low bits of the next lease id (see `lease_for`).
    next_lease: AtomicU64,
}

/// A client of one member. etcd forwards what needs the leader, so any
/// member serves; a member that cannot be reached is left for the next one
/// (etcd-client's own balancing across endpoints keeps sending a share of
/// the calls to a dead member, as measured in the failover test).
struct Member {
    /// Lease calls.
    client: Client,
    /// KV calls, with a response limit large enough for a listing batch.
    kv: KvClient,
    /// Watches, with the same response limit: an event carries a value and
    /// its previous one.
    watch: WatchClient,
}

/// A thread of its own running the etcd client's connections, so that they
/// neither compete with one HTTP worker's requests nor stall when a caller
/// blocks its thread. Stops when the backend is dropped.
struct ClientRuntime {
    handle: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl ClientRuntime {
    fn start() -> BackendResult<ClientRuntime> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| BackendError::Internal(anyhow::Error::new(err)))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("etcd-client".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let _ = stopped.await;
                });
            })
            .map_err(|err| BackendError::Internal(anyhow::Error::new(err)))?;
        Ok(ClientRuntime {
            handle,
            _stop: stop,
        })
    }
}

impl EtcdBackend {
    /// Connects to the cluster. Without auth this opens no connection yet
    /// (the first call does, and every call reconnects as needed); with auth
    /// it logs in, which fails when the cluster cannot be reached.
    pub async fn connect(
        config: &EtcdConfig,
        clock: Arc<dyn Clock>,
        max_key_bytes: usize,
        max_value_bytes: usize,
    ) -> BackendResult<EtcdBackend> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(config.timeout)
            .with_timeout(config.timeout)
            // A member cut off from the leader answers "no leader" at once
            // rather than waiting out the timeout.
            .with_require_leader(true)
            // A connection that stops answering (a member cut off without
            // a reset) is dropped within seconds, not when the OS gives up.
            // etcd sends GOAWAY to clients that ping more often than its
            // --grpc-keepalive-min-time (5 s) or while no call is open.
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(false);
        if let Some(tls) = &config.tls {
            let mut tls_options = TlsOptions::new();
            if let Some(ca) = &tls.ca_pem {
                tls_options = tls_options.ca_certificate(Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &tls.identity_pem {
                tls_options = tls_options.identity(Identity::from_pem(cert, key));
            }
            options = options.with_tls(tls_options);
        }
        if let Some((name, password)) = &config.user {
            options = options.with_user(name.clone(), password.clone());
        }
        let endpoints = config.endpoints.join(",");
        let runtime = ClientRuntime::start()?;
        let mut members = Vec::with_capacity(config.endpoints.len());
        for endpoint in &config.endpoints {
            // Connected on the client's runtime: the connections' tasks stay
            // there. Without auth nothing is sent yet.
            let connecting = runtime
                .handle
                .spawn(Client::connect([endpoint.clone()], Some(options.clone())));
            let client = match tokio::time::timeout(config.timeout, connecting).await {
                Ok(Ok(Ok(client))) => client,
                Ok(Ok(Err(err))) => return Err(classify(err, endpoint)),
                Ok(Err(err)) => return Err(BackendError::Internal(anyhow::Error::new(err))),
                Err(_) => return Err(timed_out(endpoint, config.timeout)),
            };
            let kv = client
                .kv_client()
                .max_decoding_message_size(MAX_RESPONSE_BYTES);
            let watch = client
                .watch_client()
                .max_decoding_message_size(MAX_RESPONSE_BYTES);
            members.push(Member { client, kv, watch });
        }
        Ok(EtcdBackend {
            runtime,
            members,
            preferred: AtomicUsize::new(0),
            prefix: config.prefix.clone().into_bytes(),
            endpoints,
            timeout: config.timeout,
            clock,
            max_key_bytes,
            max_value_bytes: max_value_bytes.min(config.max_value_bytes(max_key_bytes)),
            reclaimed: Arc::new(AtomicU64::new(0)),
            // Instances start at different points, so that their leases for
            // the same deadline rarely try the same ids.
            next_lease: AtomicU64::new(RandomState::new().hash_one(std::process::id())),
        })
    }

    /// Deletes an expired key etcd still holds, if nothing wrote it since
    /// it was read (its lease would reclaim it a little later), and counts
    /// it. In the background: the caller already treats it as absent.
    fn reclaim(&self, full: Vec<u8>, mod_revision: u64) {
        let mut kv = self.member().kv.clone();
        let (reclaimed, timeout) = (self.reclaimed.clone(), self.timeout);
        self.runtime.handle.spawn(async move {
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    full.clone(),
                    CompareOp::Equal,
                    mod_revision as i64,
                )])
                .and_then([TxnOp::delete(full, None)]);
            if let Ok(Ok(response)) = tokio::time::timeout(timeout, kv.txn(txn)).await
                && response.succeeded()
            {
                reclaimed.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    /// Revokes, in the background, a lease no key holds any more: the one
    /// of a key a write replaced or a delete removed, or one granted for a
    /// write that did not happen. Left alone, it would stay in etcd until
    /// its TTL ran out (up to 10 years), one more for every write of a key
    /// with a deadline. Each key has a lease of its own (see `lease_for`),
    /// so revoking it deletes no key; a lease from before that (an id that
    /// is a bare deadline, which keys with the same deadline shared) is
    /// left to its TTL. A failure leaves it to its TTL too.
    fn release(&self, lease: i64) {
        self.revoke_in_background(lease, false);
    }

    /// Revokes, in the background, the lease granted for a write that etcd
    /// refused, once etcd confirms that no key holds it. A refusal comes
    /// after any resend of a call that failed in transit; should such a
    /// call have been applied after all, the key it wrote holds this lease,
    /// and revoking it would delete that key.
    fn release_unused(&self, lease: i64) {
        self.revoke_in_background(lease, true);
    }

    fn revoke_in_background(&self, lease: i64, only_if_unused: bool) {
        if (lease as u64) < FIRST_OWN_LEASE_ID {
            return;
        }
        let mut leases = self.member().client.lease_client();
        let timeout = self.timeout;
        self.runtime.handle.spawn(async move {
            let _ = tokio::time::timeout(timeout, async {
                if only_if_unused {
                    let options = LeaseTimeToLiveOptions::new().with_keys();
                    match leases.time_to_live(lease, Some(options)).await {
                        Ok(held) if held.keys().is_empty() => {}
                        _ => return,
                    }
                }
                let _ = leases.revoke(lease).await;
            })
            .await;
        });
    }

    /// The etcd key of a kvstore key.
    fn full_key(&self, key: &str) -> Vec<u8> {
        let mut full = Vec::with_capacity(self.prefix.len() + key.len());
        full.extend_from_slice(&self.prefix);
        full.extend_from_slice(key.as_bytes());
        full
    }

    fn check_key(&self, key: &str) -> Result<(), kvcore::Error> {
        if key.is_empty() {
            return Err(kvcore::Error::EmptyKey);
        }
        if key.len() > self.max_key_bytes {
            return Err(kvcore::Error::KeyTooLarge {
                size: key.len(),
                limit: self.max_key_bytes,
            });
        }
        Ok(())
    }

    /// Makes the member after `chosen` the preferred one, unless another
    /// call moved on already.
    fn move_on(&self, chosen: usize) {
        let _ = self.preferred.compare_exchange(
            chosen,
            (chosen + 1) % self.members.len(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// The member calls go to now.
    fn member(&self) -> &Member {
        &self.members[self.preferred.load(Ordering::Relaxed) % self.members.len()]
    }

    /// Runs `call` on the preferred member until it succeeds, fails for
    /// good, or the timeout ends. A member that cannot be reached, or has
    /// no leader, hands over to the next one. `retry_ambiguous`: whether a
    /// failure that may have been applied (a timeout inside etcd, a
    /// connection lost mid-call) is retried too; only for calls that change
    /// nothing.
    async fn bounded<T, F, Fut>(&self, retry_ambiguous: bool, mut call: F) -> BackendResult<T>
    where
        F: FnMut(&Member) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(10);
        loop {
            let chosen = self.preferred.load(Ordering::Relaxed) % self.members.len();
            let outcome = tokio::time::timeout_at(deadline, call(&self.members[chosen])).await;
            let err = match outcome {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(err)) => err,
                Err(_) => {
                    // The member did not answer in time: the next call tries
                    // another one.
                    self.move_on(chosen);
                    return Err(timed_out(&self.endpoints, self.timeout));
                }
            };
            // etcd's simple auth tokens expire when unused for a while (its
            // --auth-token-ttl): log in again and resend (etcd refused the
            // call before doing anything).
            if let etcd_client::Error::GRpcStatus(status) = &err
                && status.message().contains("invalid auth token")
                && tokio::time::Instant::now() < deadline
            {
                let _ =
                    tokio::time::timeout_at(deadline, self.members[chosen].client.refresh_token())
                        .await;
                continue;
            }
            let retry = match failure(&err) {
                Failure::NotApplied => true,
                Failure::Ambiguous => retry_ambiguous,
                Failure::Final => false,
            };
            if !matches!(failure(&err), Failure::Final) {
                self.move_on(chosen);
            }
            if !retry || tokio::time::Instant::now() + pause >= deadline {
                return Err(classify(err, &self.endpoints));
            }
            // Straight to another member the first time round; then wait
            // a little, for an election to finish.
            if self.members.len() == 1 || pause > Duration::from_millis(10) {
                tokio::time::sleep(pause).await;
            }
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// The key as etcd holds it, expired or not; a linearizable read.
    async fn read_raw(&self, full: &[u8]) -> BackendResult<Option<Raw>> {
        let mut response = self
            .bounded(true, |member| {
                let mut kv = member.kv.clone();
                let full = full.to_vec();
                async move { kv.get(full, None).await }
            })
            .await?;
        response
            .take_kvs()
            .into_iter()
            .next()
            .map(Raw::of)
            .transpose()
    }

    /// A lease of its own for a key that expires at `deadline`, `ttl` from
    /// now: the TTL rounded up to whole seconds (etcd may lengthen it to its
    /// minimum). Its id carries the deadline (see [`lease_deadline`]), so a
    /// listing of keys alone (`/v1/info`'s count) can tell expired keys
    /// from live ones. No two keys share a lease: etcd deletes a lease's
    /// keys in one revision, and each expiry must be a watch event with a
    /// revision, and so an SSE `id:`, of its own.
    async fn lease_for(&self, deadline: u64, ttl: Duration) -> BackendResult<i64> {
        let seconds = ttl.as_millis().div_ceil(1000).max(1) as i64;
        let high = deadline.min(MAX_LEASE_DEADLINE) << LEASE_SPREAD_BITS;
        // An id another write took (the same deadline to the millisecond,
        // through this instance or another) is refused; the next is tried.
        for _ in 0..16 {
            let low = self.next_lease.fetch_add(1, Ordering::Relaxed) & LEASE_SPREAD_MASK;
            let id = (high | low) as i64;
            let granted = self
                .bounded(false, |member| {
                    let mut lease = member.client.lease_client();
                    let options = LeaseGrantOptions::new().with_id(id);
                    async move { lease.grant(seconds, Some(options)).await }
                })
                .await;
            match granted {
                Ok(response) => return Ok(response.id()),
                Err(BackendError::Internal(cause))
                    if format!("{cause:#}").contains("lease already exists") => {}
                Err(err) => return Err(err),
            }
        }
        Err(BackendError::Internal(anyhow::anyhow!(
            "no free etcd lease id near deadline {deadline}"
        )))
    }

    /// Runs a transaction (not retried once it may have been applied).
    async fn txn(&self, txn: Txn) -> BackendResult<TxnResponse> {
        self.bounded(false, |member| {
            let mut kv = member.kv.clone();
            let txn = txn.clone();
            async move { kv.txn(txn).await }
        })
        .await
    }

    fn entry(&self, key: String, raw: Raw, now_ms: u64) -> StoredEntry {
        StoredEntry {
            key,
            version: raw.mod_revision,
            ttl: raw
                .deadline
                .map(|deadline| Duration::from_millis(deadline.saturating_sub(now_ms))),
            value: raw.value,
        }
    }
}

/// A key as etcd holds it.
#[derive(Debug)]
struct Raw {
    mod_revision: u64,
    lease: i64,
    deadline: Option<u64>,
    value: Bytes,
}

impl Raw {
    fn of(kv: KeyValue) -> BackendResult<Raw> {
        let (mod_revision, lease) = (kv.mod_revision() as u64, kv.lease());
        let (key, value) = kv.into_key_value();
        let (deadline, value) = envelope::open(value).ok_or_else(|| {
            BackendError::Internal(anyhow::anyhow!(
                "etcd key {:?} does not hold a kvserver value (written by another client under the same prefix?)",
                String::from_utf8_lossy(&key)
            ))
        })?;
        Ok(Raw {
            mod_revision,
            lease,
            deadline,
            value,
        })
    }

    /// Whether the key is past its deadline at `now_ms`: a key lives
    /// through its deadline's millisecond and is gone from the next one,
    /// as in kvcore.
    fn expired(&self, now_ms: u64) -> bool {
        self.deadline.is_some_and(|deadline| deadline < now_ms)
    }
}

mod watch;

/// The value stored in etcd: a 10-byte header, then the value's bytes.
///
/// The header is the format byte `0x01`, a flags byte (bit 0: the key has a
/// deadline) and the deadline in milliseconds since the Unix epoch as a
/// big-endian u64 (0 without one).
mod envelope {
    use bytes::Bytes;

    /// Bytes before the value.
    pub const HEADER: usize = 10;
    const FORMAT: u8 = 1;
    const HAS_DEADLINE: u8 = 1;

    /// The envelope of `value` with `deadline`.
    pub fn seal(value: &[u8], deadline: Option<u64>) -> Vec<u8> {
        let mut sealed = Vec::with_capacity(HEADER + value.len());
        sealed.push(FORMAT);
        sealed.push(if deadline.is_some() { HAS_DEADLINE } else { 0 });
        sealed.extend_from_slice(&deadline.unwrap_or(0).to_be_bytes());
        sealed.extend_from_slice(value);
        sealed
    }

    /// The deadline and the value; `None` when `sealed` is not an envelope.
    pub fn open(sealed: Vec<u8>) -> Option<(Option<u64>, Bytes)> {
        if sealed.len() < HEADER || sealed[0] != FORMAT || sealed[1] & !HAS_DEADLINE != 0 {
            return None;
        }
        let deadline = u64::from_be_bytes(sealed[2..HEADER].try_into().ok()?);
        let deadline = (sealed[1] & HAS_DEADLINE != 0).then_some(deadline);
        Some((deadline, Bytes::from(sealed).slice(HEADER..)))
    }
}

/// How sure it is that a failed call changed nothing.
enum Failure {
    /// Refused before reaching a decision: safe to send again.
    NotApplied,
    /// The call may or may not have been applied.
    Ambiguous,
    /// An answer, not a failure to reach one: retrying will not help.
    Final,
}

fn failure(err: &etcd_client::Error) -> Failure {
    use etcd_client::Error as E;
    match err {
        E::TransportError(_) | E::IoError(_) => Failure::NotApplied,
        E::GRpcStatus(status) => {
            let message = status.message();
            if message.contains("no leader")
                || message.contains("too many requests")
                || message.contains("not capable")
                || message.contains("error trying to connect")
                || message.contains("tcp connect error")
                || message.contains("Connection refused")
            {
                Failure::NotApplied
            } else if unavailable_status(status) {
                Failure::Ambiguous
            } else {
                Failure::Final
            }
        }
        _ => Failure::Final,
    }
}

fn unavailable_status(status: &tonic::Status) -> bool {
    use tonic::Code;
    // A connection that broke mid-call (the member was killed, say).
    let transport = std::error::Error::source(status)
        .is_some_and(|source| source.downcast_ref::<tonic::transport::Error>().is_some());
    transport
        || matches!(
            status.code(),
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted
        )
        || status
            .message()
            .starts_with("etcdserver: request timed out")
        || status.message().contains("leader changed")
}

/// The error a failed call becomes.
fn classify(err: etcd_client::Error, endpoints: &str) -> BackendError {
    use etcd_client::Error as E;
    match &err {
        E::TransportError(_) | E::IoError(_) => BackendError::Unavailable(format!(
            "cannot reach etcd at {endpoints}: {err}; retry once the cluster is back"
        )),
        // A member whose certificate kvserver does not trust (another CA,
        // another name): waiting will not help, the configuration must change.
        E::GRpcStatus(status) if status.message().contains("invalid peer certificate") => {
            BackendError::Unavailable(format!(
                "kvserver does not trust the certificate of etcd at {endpoints} ({}); the operator must check --etcd-ca-cert",
                status.message()
            ))
        }
        E::GRpcStatus(status)
            if unavailable_status(status) || status.message().contains("no leader") =>
        {
            BackendError::Unavailable(format!(
                "etcd at {endpoints} cannot serve the request ({}); it may be down or without quorum, retry later",
                status.message()
            ))
        }
        E::GRpcStatus(status) if status.message().contains("database space exceeded") => {
            BackendError::Unavailable(format!(
                "etcd at {endpoints} is full and refuses writes (NOSPACE alarm); \
                 the operator must compact and defragment etcd and disarm the alarm"
            ))
        }
        E::GRpcStatus(status)
            if matches!(
                status.code(),
                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
            ) || status.message().contains("auth") =>
        {
            BackendError::Unavailable(format!(
                "etcd at {endpoints} refused kvserver's credentials ({}); the operator must check --etcd-user",
                status.message()
            ))
        }
        _ => BackendError::Internal(anyhow::Error::new(err).context("etcd call")),
    }
}

fn timed_out(endpoints: &str, timeout: Duration) -> BackendError {
    BackendError::Unavailable(format!(
        "etcd at {endpoints} did not answer within {timeout:?}; it may be down or without quorum, retry later"
    ))
}

/// Whether an etcd error says the request was over its size limit.
fn too_large(err: &BackendError) -> bool {
    matches!(err, BackendError::Internal(cause) if format!("{cause:#}").contains("request is too large"))
}

/// Whether etcd's answer was over `MAX_RESPONSE_BYTES` (tonic refuses to
/// decode it).
fn response_too_large(err: &BackendError) -> bool {
    matches!(err, BackendError::Internal(cause) if format!("{cause:#}").contains("decoded message length too large"))
}

/// A lease id is its key's deadline (ms since the epoch) shifted left by
/// these bits; the low bits tell apart the leases of keys with the same
/// deadline.
const LEASE_SPREAD_BITS: u32 = 20;
const LEASE_SPREAD_MASK: u64 = (1 << LEASE_SPREAD_BITS) - 1;
/// The latest deadline an id holds (the year 2248); later ones are cut to it.
const MAX_LEASE_DEADLINE: u64 = (i64::MAX as u64) >> LEASE_SPREAD_BITS;

/// Lease ids below this are deadlines themselves, as kvserver gave them
/// before it gave each key a lease of its own (keys with the same deadline
/// shared one): a deadline in ms fits 44 bits until the year 2527, and a
/// shifted one is at least 2^44 for any deadline after 1970.
const FIRST_OWN_LEASE_ID: u64 = 1 << 44;

/// The deadline a lease id carries (see `lease_for`), in either form (see
/// [`FIRST_OWN_LEASE_ID`]).
fn lease_deadline(id: i64) -> u64 {
    let id = id as u64;
    if id < FIRST_OWN_LEASE_ID {
        id
    } else {
        id >> LEASE_SPREAD_BITS
    }
}

/// The smallest key greater than every key starting with `prefix`, or
/// `[0]` (etcd's "to the end") when there is none.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The revision a response's header carries.
fn revision_of(header: Option<&etcd_client::ResponseHeader>) -> BackendResult<u64> {
    header.map(|h| h.revision() as u64).ok_or_else(|| {
        BackendError::Internal(anyhow::anyhow!("etcd answered without a response header"))
    })
}

/// The key a transaction's else branch read (its one `get`).
fn else_read(response: &TxnResponse) -> BackendResult<Option<Raw>> {
    for op in response.op_responses() {
        if let TxnOpResponse::Get(mut get) = op {
            return get.take_kvs().into_iter().next().map(Raw::of).transpose();
        }
    }
    Err(BackendError::Internal(anyhow::anyhow!(
        "etcd's transaction answer lacks its read"
    )))
}

/// The previous value a transaction's put replaced, if any.
fn replaced(response: &TxnResponse) -> BackendResult<Option<Raw>> {
    for op in response.op_responses() {
        if let TxnOpResponse::Put(mut put) = op {
            return put.take_prev_key().map(Raw::of).transpose();
        }
    }
    Ok(None)
}

/// The condition checked against the live key, as the embedded store does.
fn check(condition: Condition, current: Option<&Raw>) -> Result<(), kvcore::Error> {
    match (condition, current) {
        (Condition::Always, _) | (Condition::Absent, None) | (Condition::Present, Some(_)) => {
            Ok(())
        }
        (Condition::Absent, Some(raw)) => Err(kvcore::Error::AlreadyExists {
            current_version: raw.mod_revision,
        }),
        (Condition::Present, None) => Err(kvcore::Error::NotFound),
        (Condition::Version(expected), current) => match current.map(|raw| raw.mod_revision) {
            Some(version) if version == expected => Ok(()),
            current => Err(kvcore::Error::VersionMismatch { expected, current }),
        },
    }
}

/// A put that returns the key it replaced, under `lease` (0: none).
fn put_options(lease: i64) -> PutOptions {
    let options = PutOptions::new().with_prev_key();
    if lease == 0 {
        options
    } else {
        options.with_lease(lease)
    }
}

/// The comparison that a key exists. etcd compares an absent key as one
/// with every revision 0, so a comparison of `mod_revision` with a version
/// needs this beside it: `If-Match: "0"` must not match an absent key.
fn present(full: &[u8]) -> Compare {
    Compare::create_revision(full.to_vec(), CompareOp::Greater, 0)
}

/// The comparison that a key is still as `observed` (or still absent).
fn unchanged(full: &[u8], observed: Option<&Raw>) -> Compare {
    match observed {
        None => Compare::create_revision(full.to_vec(), CompareOp::Equal, 0),
        Some(raw) => {
            Compare::mod_revision(full.to_vec(), CompareOp::Equal, raw.mod_revision as i64)
        }
    }
}

#[async_trait]
impl Backend for EtcdBackend {
    async fn get(&self, key: &str) -> BackendResult<Option<StoredEntry>> {
        self.check_key(key)?;
        let full = self.full_key(key);
        let raw = self.read_raw(&full).await?;
        let now = self.clock.now_ms();
        match raw {
            Some(raw) if raw.expired(now) => {
                self.reclaim(full, raw.mod_revision);
                Ok(None)
            }
            raw => Ok(raw.map(|raw| self.entry(key.to_owned(), raw, now))),
        }
    }

    async fn put(
        &self,
        key: &str,
        value: Bytes,
        ttl: TtlChange,
        condition: Condition,
    ) -> BackendResult<WriteResult> {
        self.check_key(key)?;
        if value.len() > self.max_value_bytes {
            return Err(kvcore::Error::ValueTooLarge {
                size: value.len(),
                limit: self.max_value_bytes,
            }
            .into());
        }
        let full = self.full_key(key);
        // The deadline is fixed before the lease is granted, so the lease
        // (counted from the grant) never ends before it.
        let now = self.clock.now_ms();
        let (set_deadline, set_lease) = match ttl {
            TtlChange::Set(ttl) => {
                if !(kvcore::MIN_TTL..=kvcore::MAX_TTL).contains(&ttl) {
                    return Err(kvcore::Error::InvalidTtl { ttl }.into());
                }
                let deadline = now.saturating_add(ttl.as_millis() as u64);
                (Some(deadline), self.lease_for(deadline, ttl).await?)
            }
            TtlChange::Keep | TtlChange::Persist => (None, 0),
        };
        // The write, and the lease of the key it replaced when the write
        // did not keep it (0 when none).
        let written = async {
            let put_op = |deadline: Option<u64>, lease: i64| {
                TxnOp::put(
                    full.clone(),
                    envelope::seal(&value, deadline),
                    Some(put_options(lease)),
                )
            };
            let outcome = |header: Option<&etcd_client::ResponseHeader>,
                           created: bool,
                           deadline: Option<u64>,
                           now: u64,
                           replaced_lease: i64|
             -> BackendResult<(WriteResult, i64)> {
                let version = revision_of(header)?;
                let ttl =
                    deadline.map(|deadline| Duration::from_millis(deadline.saturating_sub(now)));
                let written = WriteResult {
                    version,
                    created,
                    ttl,
                };
                Ok((written, replaced_lease))
            };

            let value_too_large = |err: BackendError| {
                if too_large(&err) {
                    kvcore::Error::ValueTooLarge {
                        size: value.len(),
                        limit: self.max_value_bytes,
                    }
                    .into()
                } else {
                    err
                }
            };

            // An unconditional write that sets the deadline (or removes it)
            // needs nothing from the key it replaces but whether it was live,
            // which the previous value tells: a plain Put, which etcd serves
            // faster than the same write as a Txn (BENCHMARKS.md, "kvserver on
            // etcd": 1.25x at 2 connections through etcd's own gateway).
            if let (Condition::Always, TtlChange::Set(_) | TtlChange::Persist) = (condition, ttl) {
                let options = put_options(set_lease);
                let sealed = envelope::seal(&value, set_deadline);
                let mut response = self
                    .bounded(false, |member| {
                        let mut kv = member.kv.clone();
                        let (full, sealed, options) =
                            (full.clone(), sealed.clone(), options.clone());
                        async move { kv.put(full, sealed, Some(options)).await }
                    })
                    .await
                    .map_err(value_too_large)?;
                let previous = response.take_prev_key().map(Raw::of).transpose()?;
                let created = previous
                    .as_ref()
                    .is_none_or(|previous| previous.expired(now));
                let replaced_lease = previous.map_or(0, |previous| previous.lease);
                return outcome(
                    response.header(),
                    created,
                    set_deadline,
                    now,
                    replaced_lease,
                );
            }

            // Otherwise a Txn. First attempt, one round trip, for the common
            // case of a key without a deadline: compare what the condition
            // needs, plus "no lease" (a key without a deadline cannot be
            // expired), so Keep keeps nothing. Otherwise the else branch reads
            // the key.
            let no_lease = Compare::lease(full.clone(), CompareOp::Equal, 0);
            let compares = match (condition, ttl) {
                // Keep: Set and Persist went as a plain Put above.
                (Condition::Always, _) => vec![no_lease],
                (Condition::Absent, _) => {
                    vec![Compare::create_revision(full.clone(), CompareOp::Equal, 0)]
                }
                (Condition::Present, _) => vec![present(&full), no_lease],
                (Condition::Version(version), _) => vec![
                    Compare::mod_revision(full.clone(), CompareOp::Equal, version as i64),
                    present(&full),
                    no_lease,
                ],
            };
            let first = Txn::new()
                .when(compares)
                .and_then([put_op(set_deadline, set_lease)])
                .or_else([TxnOp::get(full.clone(), None)]);
            let response = self.txn(first).await.map_err(value_too_large)?;
            if response.succeeded() {
                // The replaced key, if any, had no lease, so was live.
                let created = match replaced(&response)? {
                    None => true,
                    Some(previous) => previous.expired(now),
                };
                return outcome(response.header(), created, set_deadline, now, 0);
            }
            let mut observed = else_read(&response)?;

            // The key has a deadline (or the condition failed): decide on the
            // live key, and write only if etcd still holds what was decided on
            // (an expired key etcd has not reclaimed yet is compared by its
            // revision too, so it is replaced only if nothing wrote it since).
            let give_up = tokio::time::Instant::now() + self.timeout;
            loop {
                let now = self.clock.now_ms();
                let current = observed.as_ref().filter(|raw| !raw.expired(now));
                check(condition, current)?;
                let (deadline, lease) = match ttl {
                    TtlChange::Set(_) => (set_deadline, set_lease),
                    TtlChange::Persist => (None, 0),
                    TtlChange::Keep => current.map_or((None, 0), |raw| (raw.deadline, raw.lease)),
                };
                let created = current.is_none();
                let txn = Txn::new()
                    .when([unchanged(&full, observed.as_ref())])
                    .and_then([put_op(deadline, lease)])
                    .or_else([TxnOp::get(full.clone(), None)]);
                match self.txn(txn).await {
                    Ok(response) if response.succeeded() => {
                        // A kept deadline keeps its lease: nothing to release.
                        let replaced_lease = match observed.as_ref().map_or(0, |raw| raw.lease) {
                            kept if kept == lease => 0,
                            replaced => replaced,
                        };
                        return outcome(response.header(), created, deadline, now, replaced_lease);
                    }
                    Ok(response) => observed = else_read(&response)?,
                    // The kept lease ran out between the read and the write: the
                    // key is gone (or going); read it again.
                    Err(BackendError::Internal(cause))
                        if format!("{cause:#}").contains("requested lease not found") =>
                    {
                        observed = self.read_raw(&full).await?;
                    }
                    Err(err) => return Err(err),
                }
                if tokio::time::Instant::now() >= give_up {
                    return Err(timed_out(&self.endpoints, self.timeout));
                }
            }
        }
        .await;
        match &written {
            Ok((_, replaced_lease)) => self.release(*replaced_lease),
            // The store's answer (a failed condition, a value etcd refused):
            // nothing was written, so no key holds the lease granted for it.
            // Any other failure may have been applied, with that lease.
            Err(BackendError::Store(_)) => self.release_unused(set_lease),
            _ => {}
        }
        written.map(|(written, _)| written)
    }

    async fn remove(&self, key: &str, expected_version: Option<u64>) -> BackendResult<u64> {
        self.check_key(key)?;
        let full = self.full_key(key);
        let no_lease = Compare::lease(full.clone(), CompareOp::Equal, 0);
        let compares = match expected_version {
            Some(version) => vec![
                Compare::mod_revision(full.clone(), CompareOp::Equal, version as i64),
                present(&full),
                no_lease,
            ],
            None => vec![present(&full), no_lease],
        };
        let delete = || TxnOp::delete(full.clone(), None);
        let read = || TxnOp::get(full.clone(), None);
        // One round trip for a key without a deadline, as for writes.
        let response = self
            .txn(
                Txn::new()
                    .when(compares)
                    .and_then([delete()])
                    .or_else([read()]),
            )
            .await?;
        if response.succeeded() {
            return revision_of(response.header());
        }
        let mut observed = else_read(&response)?;
        let condition = expected_version.map_or(Condition::Present, Condition::Version);
        let give_up = tokio::time::Instant::now() + self.timeout;
        loop {
            let now = self.clock.now_ms();
            check(condition, observed.as_ref().filter(|raw| !raw.expired(now)))?;
            let txn = Txn::new()
                .when([unchanged(&full, observed.as_ref())])
                .and_then([delete()])
                .or_else([read()]);
            let response = self.txn(txn).await?;
            if response.succeeded() {
                if let Some(removed) = &observed {
                    self.release(removed.lease);
                }
                return revision_of(response.header());
            }
            observed = else_read(&response)?;
            if tokio::time::Instant::now() >= give_up {
                return Err(timed_out(&self.endpoints, self.timeout));
            }
        }
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> BackendResult<ListPage> {
        let full_prefix = self.full_key(prefix);
        let end = prefix_end(&full_prefix);
        let mut start = match after.map(|after| self.full_key(after)) {
            Some(mut after) if after >= full_prefix => {
                after.push(0);
                after
            }
            _ if full_prefix.is_empty() => vec![0],
            _ => full_prefix.clone(),
        };
        // One more than asked for tells whether another page follows.
        let want = limit.saturating_add(1);
        let mut entries: Vec<StoredEntry> = Vec::new();
        let mut value_bytes = 0usize;
        let mut batch = want.min(64);
        loop {
            let options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(batch as i64);
            let answer = self
                .bounded(true, |member| {
                    let mut kv = member.kv.clone();
                    let (start, options) = (start.clone(), options.clone());
                    async move { kv.get(start, Some(options)).await }
                })
                .await;
            let mut response = match answer {
                Ok(response) => response,
                // Large values made the batch more than kvserver reads from
                // etcd at once (MAX_RESPONSE_BYTES): the same keys again,
                // half as many at a time. One key always fits.
                Err(err) if batch > 1 && response_too_large(&err) => {
                    batch /= 2;
                    continue;
                }
                Err(err) => return Err(err),
            };
            let more = response.more();
            let kvs = response.take_kvs();
            let Some(last) = kvs.last() else { break };
            start = last.key().to_vec();
            start.push(0);
            let now = self.clock.now_ms();
            for kv in kvs {
                let Some(key) = kv
                    .key()
                    .strip_prefix(self.prefix.as_slice())
                    .and_then(|key| std::str::from_utf8(key).ok())
                    .map(str::to_owned)
                else {
                    continue;
                };
                let full = kv.key().to_vec();
                let raw = Raw::of(kv)?;
                if raw.expired(now) {
                    self.reclaim(full, raw.mod_revision);
                    continue;
                }
                value_bytes += raw.value.len();
                entries.push(self.entry(key, raw, now));
                if entries.len() == want {
                    break;
                }
                // Values add up past what one page shows: stop here, with a
                // cursor, as the route would at its byte budget.
                if value_bytes >= LIST_PAGE_VALUE_BYTES {
                    let next_after = entries.last().map(|entry| entry.key.clone());
                    return Ok(ListPage {
                        entries,
                        next_after,
                    });
                }
            }
            if entries.len() == want || !more {
                break;
            }
            // Size the next batch by the values seen so far, so that large
            // values come a few at a time and small ones many at a time.
            let average = (value_bytes / entries.len().max(1)).max(1);
            let room = (LIST_PAGE_VALUE_BYTES - value_bytes) / average + 1;
            batch = (want - entries.len()).min(room).clamp(1, 1000);
        }
        let next_after = if entries.len() > limit {
            entries.truncate(limit);
            entries.last().map(|entry| entry.key.clone())
        } else {
            None
        };
        Ok(ListPage {
            entries,
            next_after,
        })
    }

    async fn watch(&self, prefix: &str, from: Option<u64>) -> BackendResult<Watch> {
        watch::start(self, prefix, from).await
    }

    async fn info(&self) -> BackendResult<BackendInfo> {
        // Live keys are counted from a listing of keys alone: a key's lease
        // id carries its deadline (see `lease_for`). The cost is proportional to
        // the number of keys, as etcd's own count would be.
        let end = prefix_end(&self.prefix);
        let mut start = if self.prefix.is_empty() {
            vec![0]
        } else {
            self.prefix.clone()
        };
        let (mut keys, mut revision) = (0usize, None);
        loop {
            let options = GetOptions::new()
                .with_range(end.clone())
                .with_keys_only()
                .with_limit(INFO_BATCH);
            // One consistent count, however many batches.
            let options = match revision {
                Some(revision) => options.with_revision(revision),
                None => options,
            };
            let mut response = self
                .bounded(true, |member| {
                    let mut kv = member.kv.clone();
                    let (start, options) = (start.clone(), options.clone());
                    async move { kv.get(start, Some(options)).await }
                })
                .await?;
            if revision.is_none() {
                revision = Some(revision_of(response.header())? as i64);
            }
            let more = response.more();
            let kvs = response.take_kvs();
            let now = self.clock.now_ms();
            for kv in &kvs {
                if kv.lease() == 0 || lease_deadline(kv.lease()) >= now {
                    keys += 1;
                } else {
                    self.reclaim(kv.key().to_vec(), kv.mod_revision() as u64);
                }
            }
            match kvs.last() {
                Some(last) if more => {
                    start = last.key().to_vec();
                    start.push(0);
                }
                _ => break,
            }
        }
        let status = self
            .bounded(true, |member| {
                let mut maintenance = member.client.maintenance_client();
                async move { maintenance.status().await }
            })
            .await?;
        Ok(BackendInfo {
            backend: "etcd",
            keys,
            expired_reclaimed: self.reclaimed.load(Ordering::Relaxed),
            revision: revision.unwrap_or(0) as u64,
            tuning: "none",
            durability: "raft",
            log: None,
            max_key_bytes: self.max_key_bytes,
            max_value_bytes: self.max_value_bytes,
            // etcd's database on the member that answered, and its own
            // --quota-backend-bytes (reported by etcd 3.5 and later; a
            // write over it is refused, a 503 saying so).
            memory: MemoryFigures {
                used: status.db_size().max(0) as u64,
                bound: (status.db_size_quota() > 0).then_some(status.db_size_quota() as u64),
                eviction: "reject",
                evicted: 0,
            },
        })
    }

    async fn ready(&self) -> BackendResult<()> {
        // A linearizable read needs the leader and a quorum: exactly what a
        // write needs too.
        let options = GetOptions::new().with_count_only();
        let key = if self.prefix.is_empty() {
            vec![0]
        } else {
            self.prefix.clone()
        };
        self.bounded(true, |member| {
            let mut kv = member.kv.clone();
            let (key, options) = (key.clone(), options.clone());
            async move { kv.get(key, Some(options)).await }
        })
        .await?;
        Ok(())
    }

    async fn close(&self) -> anyhow::Result<()> {
        // Every acknowledged write is already on a majority of the cluster;
        // the connections close with the last handle.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_id_tells_its_keys_deadline_in_either_form() {
        let deadline = 1_796_000_000_123; // December 2026, in ms
        let id = (deadline << LEASE_SPREAD_BITS | 12_345) as i64;
        assert_eq!(lease_deadline(id), deadline, "a lease of its own");
        assert_eq!(
            lease_deadline(deadline as i64),
            deadline,
            "a lease from before, whose id is the deadline"
        );
        let latest = (MAX_LEASE_DEADLINE << LEASE_SPREAD_BITS | LEASE_SPREAD_MASK) as i64;
        assert_eq!(lease_deadline(latest), MAX_LEASE_DEADLINE);
    }
}
