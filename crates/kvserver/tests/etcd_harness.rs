//! Real etcd members on loopback, started and stopped by the tests: free
//! ports, each member's data in a temporary directory, `kill -9` and restart
//! with the same data, or TLS on a member's client port. Needs the `etcd`
//! binary (Debian: etcd-server).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a member may take to start or a cluster to elect a leader.
const PATIENCE: Duration = Duration::from_secs(20);

/// Raft timing of the members.
#[derive(Debug, Clone, Copy)]
pub enum Timing {
    /// etcd's defaults (heartbeat 100 ms, election timeout 1 s): what an
    /// operator runs, for failover figures.
    Default,
    /// Heartbeat 10 ms, election timeout 50 ms: a single member that is
    /// ready in a tenth of a second, for the contract tests. (Not for
    /// several members: on a loaded machine they hold needless elections.)
    Fast,
}

/// A cluster of etcd members on loopback. Dropping it kills every member
/// and removes their data.
pub struct EtcdCluster {
    dir: TempDir,
    timing: Timing,
    members: Vec<Member>,
    tls: Option<ClientTls>,
}

struct Member {
    name: String,
    /// Plain HTTP: the client URL without TLS, and the harness's own view
    /// of a member with TLS.
    client_port: u16,
    peer_port: u16,
    /// The `https://` client URL's port, with TLS.
    tls_port: u16,
    child: Option<Child>,
}

/// TLS on the members' client URLs: their certificate and key, and the CA
/// that client certificates must come from (`--client-cert-auth`).
pub struct ClientTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

/// Ports nobody listens on right now.
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("binding port 0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("an address").port())
        .collect()
}

impl EtcdCluster {
    /// Starts `size` members and waits until the cluster has a leader.
    pub fn start(size: usize, timing: Timing) -> EtcdCluster {
        EtcdCluster::start_with(size, timing, None)
    }

    /// One member whose client URL is `https://` with `tls` (the harness
    /// still watches it over a plain HTTP port of its own).
    pub fn start_tls(tls: ClientTls) -> EtcdCluster {
        EtcdCluster::start_with(1, Timing::Fast, Some(tls))
    }

    fn start_with(size: usize, timing: Timing, tls: Option<ClientTls>) -> EtcdCluster {
        let ports = free_ports(3 * size);
        let members = (0..size)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: ports[3 * i],
                peer_port: ports[3 * i + 1],
                tls_port: ports[3 * i + 2],
                child: None,
            })
            .collect();
        let mut cluster = EtcdCluster {
            dir: tempfile::tempdir().expect("a temporary directory"),
            timing,
            members,
            tls,
        };
        for i in 0..size {
            cluster.launch(i, "new");
        }
        cluster.wait_for_leader();
        cluster
    }

    fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(&self.members[i].name)
    }

    fn launch(&mut self, i: usize, state: &str) {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect();
        let member = &self.members[i];
        let plain = format!("http://127.0.0.1:{}", member.client_port);
        let client = self.endpoint(i);
        let listen = if self.tls.is_some() {
            format!("{plain},{client}")
        } else {
            plain
        };
        let peer = format!("http://127.0.0.1:{}", member.peer_port);
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", member.name)))
            .expect("creating the member's log");
        let mut command = Command::new("etcd");
        command
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(self.data_dir(i))
            .args(["--listen-client-urls", &listen])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", "kvserver-tests"])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(tls) = &self.tls {
            command
                .arg("--cert-file")
                .arg(&tls.cert)
                .arg("--key-file")
                .arg(&tls.key)
                .arg("--trusted-ca-file")
                .arg(&tls.client_ca)
                .arg("--client-cert-auth");
        }
        if let Timing::Fast = self.timing {
            command.args(["--heartbeat-interval", "10", "--election-timeout", "50"]);
        }
        let child = command.spawn().unwrap_or_else(|err| {
            panic!("starting etcd ({err}): the etcd tests need the etcd binary (Debian: apt-get install etcd-server)")
        });
        self.members[i].child = Some(child);
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    /// One member's client URL: `https://` with TLS.
    pub fn endpoint(&self, i: usize) -> String {
        match self.tls {
            Some(_) => format!("https://127.0.0.1:{}", self.members[i].tls_port),
            None => format!("http://127.0.0.1:{}", self.members[i].client_port),
        }
    }

    /// kvserver's storage on this cluster as the contract tests use it:
    /// prefix `kvstore/`, a 3 s timeout, etcd's default request size.
    pub fn storage(&self) -> kvserver::config::Storage {
        kvserver::config::Storage::Etcd(kvserver::backend::EtcdConfig {
            endpoints: self.endpoints(),
            prefix: "kvstore/".into(),
            timeout: Duration::from_secs(3),
            tls: None,
            user: None,
            max_request_bytes: kvserver::backend::etcd::ETCD_DEFAULT_MAX_REQUEST_BYTES,
        })
    }

    /// Compacts the cluster's history up to `revision`: a watch from
    /// before it gets etcd's "compacted".
    pub fn compact(&self, revision: u64) {
        let body = format!("{{\"revision\": \"{revision}\", \"physical\": true}}");
        http(
            self.members[0].client_port,
            "POST",
            "/v3/kv/compaction",
            &body,
        )
        .expect("etcd compacts its history");
    }

    /// How many leases the cluster holds.
    pub fn lease_count(&self) -> usize {
        let body = http(
            self.members[0].client_port,
            "POST",
            "/v3/lease/leases",
            "{}",
        )
        .expect("etcd lists its leases");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON from etcd");
        json["leases"].as_array().map_or(0, Vec::len)
    }

    /// Kills member `i` with SIGKILL: no goodbye to its peers.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts member `i` again on its data directory.
    pub fn restart(&mut self, i: usize) {
        assert!(self.members[i].child.is_none(), "member {i} is running");
        self.launch(i, "existing");
    }

    /// The index of the leader as the running members report it, once they
    /// agree on one.
    pub fn wait_for_leader(&self) -> usize {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(leader) = self.leader() {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "the etcd cluster has no leader after {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The leader's index, if every running member names the same one and
    /// it is running.
    pub fn leader(&self) -> Option<usize> {
        let mut ids = Vec::new();
        let mut leaders = Vec::new();
        for member in &self.members {
            if member.child.is_none() {
                ids.push(None);
                continue;
            }
            let status = status_of(member.client_port)?;
            ids.push(Some(status.0));
            leaders.push(status.1);
        }
        let leader = *leaders.first()?;
        if leader == 0 || leaders.iter().any(|&l| l != leader) {
            return None;
        }
        ids.iter().position(|id| *id == Some(leader))
    }

    /// Waits until member `i` answers a linearizable read (it has caught up
    /// with a leader).
    pub fn wait_until_serving(&self, i: usize) {
        let deadline = Instant::now() + PATIENCE;
        while http(
            self.members[i].client_port,
            "POST",
            "/v3/kv/range",
            r#"{"key":"AA=="}"#,
        )
        .is_none_or(|body| !body.contains("header"))
        {
            assert!(
                Instant::now() < deadline,
                "etcd member {i} does not serve after {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// A member's own id and the leader id it reports, from etcd's JSON gateway.
fn status_of(port: u16) -> Option<(u64, u64)> {
    let body = http(port, "POST", "/v3/maintenance/status", "{}")?;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    let id = |value: &serde_json::Value| value.as_str()?.parse::<u64>().ok();
    Some((id(&json["header"]["member_id"])?, id(&json["leader"])?))
}

/// One HTTP/1.1 request to a member's client port; the body of a 200.
pub fn http(port: u16, method: &str, path: &str, body: &str) -> Option<String> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    // etcd's gateway answers with a length; a chunked answer is undone here.
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut plain = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            if size == 0 {
                break;
            }
            plain.push_str(after.get(..size)?);
            rest = after.get(size + 2..)?;
        }
        return Some(plain);
    }
    Some(body.to_owned())
}
