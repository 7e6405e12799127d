//! kvserver on a 3-member etcd cluster on loopback: two instances serve the
//! same data, the leader is killed under writes, quorum is lost and comes
//! back, and a CAS-heavy history through both instances is linearizable.
//! On one member: etcd auth, and a stop before kvserver could log in.
//! (cargo feature `etcd`; the harness starts and stops etcd itself.)

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kvserver::backend::EtcdConfig;
use kvserver::backend::etcd::ETCD_DEFAULT_MAX_REQUEST_BYTES;
use kvserver::config::Storage;
use kvserver::{Application, Config};
use reqwest::StatusCode;
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};

use crate::etcd_harness::{EtcdCluster, Timing};
use crate::sequential_store::{Key, Model, Op, Ret, Revisions};
use crate::test_app::v1_path;

/// How long a kvserver waits for etcd before answering 503.
const ETCD_TIMEOUT: Duration = Duration::from_secs(2);

/// A kvserver in this process, on etcd.
pub struct Instance {
    pub base: String,
    pub client: reqwest::Client,
}

impl Instance {
    /// Starts a kvserver on `endpoints` and waits until it is ready.
    async fn start(endpoints: Vec<String>, prefix: &str) -> Instance {
        Instance::start_with_timeout(endpoints, prefix, ETCD_TIMEOUT).await
    }

    /// The same, with another `--etcd-timeout`.
    async fn start_with_timeout(
        endpoints: Vec<String>,
        prefix: &str,
        timeout: Duration,
    ) -> Instance {
        let instance = Instance::spawn(endpoints, prefix, timeout, None);
        instance.wait_until_ready().await;
        instance
    }

    /// Starts a kvserver without waiting for it to be ready; `user` is
    /// `--etcd-user` and its password.
    fn spawn(
        endpoints: Vec<String>,
        prefix: &str,
        timeout: Duration,
        user: Option<(&str, &str)>,
    ) -> Instance {
        Instance::spawn_on(EtcdConfig {
            endpoints,
            prefix: prefix.into(),
            timeout,
            tls: None,
            user: user.map(|(name, password)| (name.into(), password.into())),
            max_request_bytes: ETCD_DEFAULT_MAX_REQUEST_BYTES,
        })
    }

    /// Starts a kvserver on `etcd` without waiting for it to be ready.
    pub fn spawn_on(etcd: EtcdConfig) -> Instance {
        let config = Config {
            storage: Storage::Etcd(etcd),
            workers: 1,
            ..Config::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding port 0");
        let app = Application::build(config, listener).expect("building the app");
        let base = app.url();
        actix_web::rt::spawn(app.run_until(std::future::pending()));
        Instance {
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("a client"),
        }
    }

    pub async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.status("/readyz").await != Some(StatusCode::OK) {
            assert!(Instant::now() < deadline, "kvserver on etcd is not ready");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn status(&self, path: &str) -> Option<StatusCode> {
        let response = self.client.get(format!("{}{path}", self.base)).send();
        response.await.ok().map(|r| r.status())
    }

    /// `PUT /v1/kv/{key}` with optional `If-Match`: the status and the JSON
    /// body (`None` when the connection failed).
    pub async fn put(
        &self,
        key: &str,
        value: &str,
        if_match: Option<u64>,
    ) -> Option<(StatusCode, serde_json::Value)> {
        let mut request = self
            .client
            .put(format!("{}{}", self.base, v1_path(key, "")))
            .body(value.to_owned());
        if let Some(version) = if_match {
            request = request.header("If-Match", format!("\"{version}\""));
        }
        let response = request.send().await.ok()?;
        let status = response.status();
        let body = response.json().await.ok()?;
        Some((status, body))
    }

    /// `GET /v1/kv/{key}`: the value and version, `None` when absent.
    pub async fn get(&self, key: &str) -> Option<(String, u64)> {
        let response = self
            .client
            .get(format!("{}{}", self.base, v1_path(key, "")))
            .send()
            .await
            .expect("the instance answers");
        match response.status() {
            StatusCode::NOT_FOUND => None,
            StatusCode::OK => {
                let version = version_of(&response);
                Some((response.text().await.expect("a value"), version))
            }
            other => panic!(
                "GET {key}: {other} {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }

    /// `DELETE /v1/kv/{key}`: whether a key was removed.
    async fn remove(&self, key: &str) -> bool {
        let response = self
            .client
            .delete(format!("{}{}", self.base, v1_path(key, "")))
            .send()
            .await
            .expect("the instance answers");
        match response.status() {
            StatusCode::NO_CONTENT => true,
            StatusCode::NOT_FOUND => false,
            other => panic!("DELETE {key}: {other}"),
        }
    }
}

fn version_of(response: &reqwest::Response) -> u64 {
    let tag = response.headers()["etag"].to_str().expect("a text ETag");
    tag.trim_matches('"').parse().expect("a numeric ETag")
}

#[actix_web::test]
async fn a_write_through_one_instance_is_read_through_the_other_at_once() {
    let cluster = EtcdCluster::start(3, Timing::Default);
    let one = Instance::start(cluster.endpoints(), "shared/").await;
    let other = Instance::start(cluster.endpoints(), "shared/").await;
    let elsewhere = Instance::start(cluster.endpoints(), "another-kvstore/").await;
    for i in 0..100 {
        let (writer, reader) = if i % 2 == 0 {
            (&one, &other)
        } else {
            (&other, &one)
        };
        let key = format!("k{}", i % 10);
        let value = format!("v{i}");
        let (status, body) = writer.put(&key, &value, None).await.expect("an answer");
        assert!(status.is_success(), "write {i}: {status} {body}");
        let version = body["version"].as_u64().expect("a version");
        assert_eq!(
            reader.get(&key).await,
            Some((value, version)),
            "write {i} read through the other instance right after"
        );
    }
    // A compare-and-swap through one instance at the version the other wrote.
    let (_, version) = other.get("k0").await.expect("k0");
    let (status, body) = one.put("k0", "swapped", Some(version)).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = other.put("k0", "stale", Some(version)).await.unwrap();
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert_eq!(
        body["current_version"],
        body["current_version"].as_u64().unwrap()
    );
    // Another prefix is another kvstore on the same cluster.
    assert_eq!(
        elsewhere.get("k0").await,
        None,
        "prefixes do not share keys"
    );
    assert!(other.remove("k0").await);
    assert_eq!(one.get("k0").await, None, "a delete is seen at once too");
}

#[actix_web::test]
async fn a_key_holds_one_etcd_lease_at_most_and_none_once_it_is_deleted() {
    let cluster = EtcdCluster::start(1, Timing::Fast);
    let kv = Instance::start(cluster.endpoints(), "leases/").await;
    let send = |method: reqwest::Method, path: &str, header: Option<(&str, &str)>| {
        let mut request = kv.client.request(method, format!("{}{path}", kv.base));
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        async move { request.body("v").send().await.expect("an answer").status() }
    };
    // Leases are revoked in the background, right after the answer.
    let leases_become = |want: usize, why: &'static str| {
        let cluster = &cluster;
        async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            while cluster.lease_count() != want {
                assert!(
                    Instant::now() < deadline,
                    "{why}: {} leases, not {want}",
                    cluster.lease_count()
                );
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    use reqwest::Method;

    for _ in 0..5 {
        let status = send(Method::PUT, "/v1/kv/k?ttl=1h", None).await;
        assert!(status.is_success(), "{status}");
    }
    leases_become(1, "a deadline set five times").await;
    let refused = [
        ("If-None-Match", "*"),
        ("If-Match", "\"1\""),
        ("If-Match", "W/\"1\""),
    ];
    for header in refused {
        let status = send(Method::PUT, "/v1/kv/k?ttl=2h", Some(header)).await;
        assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{header:?}");
    }
    let status = send(Method::PUT, "/v1/kv/absent?ttl=2h", Some(("If-Match", "*"))).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    leases_become(1, "conditional writes that failed").await;
    let status = send(Method::PUT, "/v1/kv/k", Some(("If-Match", "*"))).await;
    assert_eq!(status, StatusCode::OK);
    leases_become(1, "a write that keeps the deadline").await;
    assert!(kv.get("k").await.is_some(), "its key keeps its lease");
    let status = send(Method::PUT, "/v1/kv/k?persist=true", None).await;
    assert_eq!(status, StatusCode::OK);
    leases_become(0, "the deadline removed").await;

    let status = send(Method::PUT, "/v1/kv/k?ttl=1h", None).await;
    assert_eq!(status, StatusCode::OK);
    let status = send(Method::DELETE, "/v1/kv/k", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    leases_become(0, "the key deleted").await;
}

/// `etcdctl` against `endpoint`, which must succeed.
fn etcdctl(endpoint: &str, args: &[&str]) {
    let output = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(args)
        .output()
        .expect("running etcdctl (Debian: etcd-client)");
    assert!(
        output.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[actix_web::test]
async fn with_etcd_auth_a_kvserver_logs_in_and_wrong_credentials_are_a_503() {
    let cluster = EtcdCluster::start(1, Timing::Fast);
    let endpoint = cluster.endpoint(0);
    // A user that may only touch its kvstore's prefix, as an operator would
    // set it up.
    for args in [
        &["user", "add", "root:root-pw"][..],
        &["user", "add", "kv:kv-pw"],
        &["role", "add", "kvstore"],
        &[
            "role",
            "grant-permission",
            "kvstore",
            "--prefix=true",
            "readwrite",
            "app/",
        ],
        &["user", "grant-role", "kv", "kvstore"],
        &["auth", "enable"],
    ] {
        etcdctl(&endpoint, args);
    }
    let instance = Instance::spawn(
        vec![endpoint.clone()],
        "app/",
        ETCD_TIMEOUT,
        Some(("kv", "kv-pw")),
    );
    instance.wait_until_ready().await;
    let (status, body) = instance.put("k", "v", None).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = instance.put("t", "v", None).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        instance.get("k").await.map(|(v, _)| v).as_deref(),
        Some("v")
    );
    let response = instance
        .client
        .put(format!("{}/v1/kv/lease?ttl=5s", instance.base))
        .body("v")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "a TTL needs a lease: the user may grant one"
    );

    // The wrong password: the server runs, is not ready, and says why.
    let refused = Instance::spawn(vec![endpoint], "app/", ETCD_TIMEOUT, Some(("kv", "wrong")));
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(refused.status("/healthz").await, Some(StatusCode::OK));
    assert_eq!(
        refused.status("/readyz").await,
        Some(StatusCode::SERVICE_UNAVAILABLE),
        "not ready without a login"
    );
    let (status, body) = refused.put("k", "w", None).await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "unavailable", "{body}");
    assert_eq!(
        instance.get("k").await.map(|(v, _)| v).as_deref(),
        Some("v"),
        "nothing written"
    );
}

#[actix_web::test]
async fn a_kvserver_stopped_before_it_could_log_in_to_etcd_exits() {
    // Nothing listens there: the login kvserver starts with fails, and it
    // tries again every second.
    let nowhere = TcpListener::bind("127.0.0.1:0").expect("binding port 0");
    let config = Config {
        storage: Storage::Etcd(EtcdConfig {
            endpoints: vec![format!("http://{}", nowhere.local_addr().unwrap())],
            prefix: "app/".into(),
            timeout: ETCD_TIMEOUT,
            tls: None,
            user: Some(("kv".into(), "kv-pw".into())),
            max_request_bytes: ETCD_DEFAULT_MAX_REQUEST_BYTES,
        }),
        workers: 1,
        ..Config::default()
    };
    drop(nowhere);
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding port 0");
    let app = Application::build(config, listener).expect("building the app");
    let readyz = format!("{}/readyz", app.url());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = actix_web::rt::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let answer = reqwest::get(readyz).await.expect("kvserver answers");
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    stop.send(()).expect("kvserver is running");
    let stopped = actix_web::rt::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("kvserver stops when told to, without waiting for etcd");
    stopped.expect("the server task").expect("a clean stop");
}

/// What the writers of the failover test saw.
#[derive(Default)]
struct Writes {
    /// Key, value and version of every acknowledged write.
    acknowledged: Vec<(String, String, u64)>,
    /// When each acknowledged write was sent and when it was answered,
    /// since the start.
    timeline: Vec<(Duration, Duration)>,
    /// Writes answered with an error (or no answer).
    failed: usize,
}

/// Writes fresh keys through `instance` until `stop`, one at a time.
async fn write_until(
    instance: Arc<Instance>,
    name: &'static str,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Writes {
    let mut writes = Writes::default();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let key = format!("{name}/{n:06}");
        let value = format!("{name}-{n}");
        let sent = start.elapsed();
        match instance.put(&key, &value, None).await {
            Some((status, body)) if status.is_success() => {
                let version = body["version"].as_u64().expect("a version");
                writes.acknowledged.push((key, value, version));
                writes.timeline.push((sent, start.elapsed()));
            }
            Some((status, body)) => {
                assert_eq!(
                    status,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "a failed write is a 503: {body}"
                );
                assert_eq!(body["code"], "unavailable", "{body}");
                writes.failed += 1;
            }
            None => writes.failed += 1,
        }
    }
    writes
}

/// Sends a fresh write through `instance` every 50 ms, each on its own,
/// until `stop`: when each was sent and answered, and whether it succeeded.
/// Unlike a writer's, a probe is never held up by an earlier write.
async fn probe_until(
    instance: Arc<Instance>,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<(Duration, Duration, bool)> {
    let mut probes = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let instance = instance.clone();
        probes.push(actix_web::rt::spawn(async move {
            let sent = start.elapsed();
            let ok = matches!(
                instance.put(&format!("probe/{n:06}"), "p", None).await,
                Some((status, _)) if status.is_success()
            );
            (sent, start.elapsed(), ok)
        }));
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let mut outcomes = Vec::new();
    for probe in probes {
        outcomes.push(probe.await.expect("a probe"));
    }
    outcomes
}

#[actix_web::test]
async fn killing_the_leader_under_writes_loses_no_acknowledged_write() {
    // etcd's default timing (heartbeat 100 ms, election 1 s), as deployed.
    let cluster = EtcdCluster::start(3, Timing::Default);
    let a = Arc::new(Instance::start(cluster.endpoints(), "failover/").await);
    let b = Arc::new(Instance::start(cluster.endpoints(), "failover/").await);
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let writers = [
        actix_web::rt::spawn(write_until(a.clone(), "a", start, stop.clone())),
        actix_web::rt::spawn(write_until(b.clone(), "b", start, stop.clone())),
    ];
    let probes = actix_web::rt::spawn(probe_until(b.clone(), start, stop.clone()));
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    let leader = cluster.wait_for_leader();
    let killed_at = start.elapsed();
    let mut cluster = cluster;
    cluster.kill(leader);
    // Watched from another thread: the writers share this one.
    let (cluster, elected) = actix_web::rt::task::spawn_blocking(move || {
        let new_leader = cluster.wait_for_leader();
        (cluster, (new_leader, start.elapsed()))
    })
    .await
    .expect("the watching thread");
    let mut cluster = cluster;
    assert_ne!(elected.0, leader, "another member leads");
    // Long enough for an election and a couple of seconds of writes after.
    actix_web::rt::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    let mut failed = 0;
    let mut stalled = Duration::ZERO;
    for writer in writers {
        let writes = writer.await.expect("a writer");
        let after = writes.timeline.iter().filter(|(sent, _)| *sent > killed_at);
        assert!(
            after.count() > 0,
            "writes resume after the leader is killed ({} before)",
            writes.timeline.len()
        );
        // The longest a writer went without an acknowledgement, from the
        // last one before the kill on: a write in flight at the kill may
        // wait out the etcd timeout (its outcome unknown: 503).
        let from = writes
            .timeline
            .iter()
            .rposition(|(_, done)| *done <= killed_at)
            .unwrap_or(0);
        for pair in writes.timeline[from..].windows(2) {
            stalled = stalled.max(pair[1].1 - pair[0].1);
        }
        failed += writes.failed;
        all.extend(writes.acknowledged);
    }
    let probes = probes.await.expect("the prober");
    let window = probes
        .iter()
        .filter(|(sent, _, ok)| *sent >= killed_at && *ok)
        .map(|(_, answered, _)| *answered - killed_at)
        .min()
        .expect("a probe sent after the kill succeeds");
    let probes_failed = probes.iter().filter(|(_, _, ok)| !ok).count();
    // The figures for BENCHMARKS.md (run with --nocapture).
    eprintln!(
        "failover: {} writes acknowledged, {failed} answered 503; leader killed at {killed_at:?}, \
         a new one seen at {:?}; first new write acknowledged {window:?} after the kill \
         ({probes_failed} of {} probes failed); longest writer stall from the kill on {stalled:?}",
        all.len(),
        elected.1,
        probes.len()
    );
    for (key, value, version) in &all {
        assert_eq!(
            a.get(key).await,
            Some((value.clone(), *version)),
            "acknowledged write {key} survives the leader's death"
        );
    }

    // The killed member comes back on its data and catches up: a kvserver
    // that talks to it alone reads what was written while it was down.
    cluster.restart(leader);
    cluster.wait_until_serving(leader);
    let only_it = Instance::start(vec![cluster.endpoint(leader)], "failover/").await;
    let (key, value, version) = all.last().expect("writes").clone();
    assert_eq!(
        only_it.get(&key).await,
        Some((value, version)),
        "the restarted member has the writes it missed"
    );
}

#[actix_web::test]
async fn losing_quorum_turns_writes_into_503_within_the_timeout_and_back() {
    let mut cluster = EtcdCluster::start(3, Timing::Default);
    let instance = Instance::start(cluster.endpoints(), "quorum/").await;
    let (status, _) = instance.put("k", "before", None).await.unwrap();
    assert_eq!(status, StatusCode::CREATED);
    cluster.kill(1);
    cluster.kill(2);
    // One member of three is left: no quorum, no leader for long.
    for (i, value) in ["during", "still during"].into_iter().enumerate() {
        let asked = Instant::now();
        let (status, body) = instance.put("k", value, None).await.expect("an answer");
        let took = asked.elapsed();
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "write {i} without quorum: {body}"
        );
        assert_eq!(body["code"], "unavailable", "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("etcd"),
            "the sentence names etcd: {body}"
        );
        // Bounded: the timeout plus room for a loaded machine, never a hang.
        assert!(
            took < ETCD_TIMEOUT + Duration::from_secs(5),
            "answered after {took:?}"
        );
    }
    assert_eq!(
        instance.status("/readyz").await,
        Some(StatusCode::SERVICE_UNAVAILABLE),
        "not ready without quorum"
    );
    assert_eq!(
        instance.status("/healthz").await,
        Some(StatusCode::OK),
        "alive all the same"
    );
    cluster.restart(1);
    cluster.restart(2);
    cluster.wait_for_leader();
    // The same kvserver, not restarted, writes again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match instance.put("k", "after", None).await {
            Some((StatusCode::OK, _)) => break,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "writes do not come back: {other:?}"
                );
                actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(instance.status("/readyz").await, Some(StatusCode::OK));
    assert_eq!(
        instance.get("k").await.map(|(v, _)| v).as_deref(),
        Some("after")
    );
}

// A linearizability check of a CAS-heavy history through two instances,
// against kvcore's sequential model of the store with two differences that
// `Revisions::Increasing` and `Ret::Removed(_, None)` express: etcd's
// revision is cluster-wide, so a write's version need only be above every
// earlier one, not the next number; and a DELETE answers 204 without the
// revision.

const KEYS: [&str; 2] = ["x", "y/z"];

/// One recorded event of a client: an invocation or a return.
enum Event {
    Invoke(Op),
    Return(Ret),
}

async fn apply(instance: &Instance, op: Op) -> Ret {
    match op {
        Op::Get(key) => Ret::Got(
            instance
                .get(KEYS[key])
                .await
                .map(|(value, version)| (value.parse().expect("a number"), version)),
        ),
        Op::Upsert(key, value) => {
            let (status, body) = instance
                .put(KEYS[key], &value.to_string(), None)
                .await
                .expect("an answer");
            assert!(status.is_success(), "upsert: {status} {body}");
            Ret::Upserted(body["version"].as_u64().unwrap(), body["created"] == true)
        }
        Op::CompareAndSwap(key, expected, value) => {
            let (status, body) = instance
                .put(KEYS[key], &value.to_string(), Some(expected))
                .await
                .expect("an answer");
            Ret::Swapped(match status {
                StatusCode::OK => Ok(body["version"].as_u64().unwrap()),
                StatusCode::PRECONDITION_FAILED => Err(body["current_version"].as_u64()),
                other => panic!("compare-and-swap: {other} {body}"),
            })
        }
        Op::Remove(key) => Ret::Removed(instance.remove(KEYS[key]).await, None),
    }
}

#[actix_web::test]
async fn a_cas_heavy_history_through_two_instances_is_linearizable() {
    const ROUNDS: u64 = 15;
    const CLIENTS: usize = 4;
    const OPS_PER_CLIENT: usize = 10;
    let cluster = EtcdCluster::start(3, Timing::Default);
    // A generous timeout: a 503 (an outcome unknown) has no place in the
    // model, and this test may share a loaded machine with etcd members of
    // other tests.
    let timeout = Duration::from_secs(15);
    let instances = [
        Arc::new(Instance::start_with_timeout(cluster.endpoints(), "lin/", timeout).await),
        Arc::new(Instance::start_with_timeout(cluster.endpoints(), "lin/", timeout).await),
    ];
    for round in 0..ROUNDS {
        for key in KEYS {
            instances[0].remove(key).await;
        }
        let tickets = Arc::new(AtomicU64::new(0));
        let mut clients = Vec::new();
        for client in 0..CLIENTS {
            // Clients alternate between the instances.
            let instance = instances[client % 2].clone();
            let tickets = tickets.clone();
            clients.push(actix_web::rt::spawn(async move {
                let mut rng = ((round * 31 + client as u64) * 2654435761) | 1;
                let mut next = |n: u64| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng % n
                };
                let mut seen: BTreeMap<Key, u64> = BTreeMap::new();
                let mut events = Vec::new();
                for i in 0..OPS_PER_CLIENT {
                    let key = next(KEYS.len() as u64) as Key;
                    let value = (client * 1000 + i) as u32;
                    let op = match next(10) {
                        0..=2 => Op::Get(key),
                        3 => Op::Upsert(key, value),
                        4..=8 => {
                            Op::CompareAndSwap(key, seen.get(&key).copied().unwrap_or(1), value)
                        }
                        _ => Op::Remove(key),
                    };
                    let ticket = tickets.fetch_add(1, Ordering::SeqCst);
                    events.push((ticket, client, Event::Invoke(op)));
                    let ret = apply(&instance, op).await;
                    let ticket = tickets.fetch_add(1, Ordering::SeqCst);
                    events.push((ticket, client, Event::Return(ret.clone())));
                    if let Some(version) = ret.version_seen() {
                        seen.insert(key, version);
                    }
                }
                events
            }));
        }
        let mut events = Vec::new();
        for client in clients {
            events.extend(client.await.expect("a client"));
        }
        events.sort_by_key(|(ticket, ..)| *ticket);
        // Each round starts from absent keys: the model starts empty, at
        // the revision etcd had reached (below every version in the round).
        let mut tester = LinearizabilityTester::new(Model::new(Revisions::Increasing));
        for (_, client, event) in events {
            match event {
                Event::Invoke(op) => tester.on_invoke(client, op),
                Event::Return(ret) => tester.on_return(client, ret),
            }
            .expect("one operation in flight per client");
        }
        assert!(
            tester.is_consistent(),
            "round {round}: the history through two instances is not linearizable: {tester:?}"
        );
    }
}
