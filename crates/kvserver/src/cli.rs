//! Command-line flags, each with a `KV_*` environment twin.

use std::path::PathBuf;
use std::time::Duration;

use std::net::ToSocketAddrs;

use clap::{Parser, Subcommand};
use kvcore::{Eviction, Fsync, OnCorruption, Tuning};

use crate::auth::{Grant, Tokens};
use crate::config::{Config, Storage};
use crate::tls::Tls;
use kvapi::parse_duration;

/// kvstore's HTTP server: the seed `/store` API and the `/v1` REST API over an
/// embedded kvcore store, or over an etcd v3 cluster (--backend etcd).
///
/// Every flag can also be set through the environment variable shown with it;
/// a flag on the command line wins.
#[derive(Debug, Parser)]
#[command(name = "kvserver", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Without a command, kvserver serves.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on. Binding anything but loopback needs auth.
    #[arg(long, env = "KV_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,

    /// Where data lives: embedded (a kvcore store in this process, the
    /// default) or etcd (an etcd v3 cluster given by --etcd-endpoints, shared
    /// by any number of kvservers; needs a kvserver built with the cargo
    /// feature `etcd`).
    #[arg(long, env = "KV_BACKEND", default_value = "embedded", value_parser = ["embedded", "etcd"])]
    pub backend: String,

    /// With --backend etcd: the client URLs of the cluster's members,
    /// comma-separated (http://host:2379, or https:// with TLS).
    #[arg(
        long,
        env = "KV_ETCD_ENDPOINTS",
        value_delimiter = ',',
        value_name = "URLS"
    )]
    pub etcd_endpoints: Vec<String>,

    /// With --backend etcd: prepended to every key in etcd, so several
    /// kvstores can share a cluster [default: kvstore/].
    #[arg(long, env = "KV_ETCD_PREFIX")]
    pub etcd_prefix: Option<String>,

    /// With --backend etcd: how long one request may wait for the cluster
    /// (retries included) before it is answered 503 [default: 3s].
    #[arg(long, env = "KV_ETCD_TIMEOUT", value_parser = parse_duration)]
    pub etcd_timeout: Option<Duration>,

    /// With --backend etcd: the cluster's --max-request-bytes, which bounds
    /// the largest value [default: 1572864, etcd's own].
    #[arg(long, env = "KV_ETCD_MAX_REQUEST_BYTES")]
    pub etcd_max_request_bytes: Option<usize>,

    /// With --backend etcd and https:// endpoints: PEM file of the CA that
    /// signed the members' certificates.
    #[arg(long, env = "KV_ETCD_CA_CERT", value_name = "PEM")]
    pub etcd_ca_cert: Option<PathBuf>,

    /// With --backend etcd and https:// endpoints: a client certificate (PEM)
    /// for clusters that check them (--client-cert-auth). Needs --etcd-key.
    #[arg(long, env = "KV_ETCD_CERT", value_name = "PEM")]
    pub etcd_cert: Option<PathBuf>,

    /// The PEM private key of --etcd-cert.
    #[arg(long, env = "KV_ETCD_KEY", value_name = "PEM")]
    pub etcd_key: Option<PathBuf>,

    /// With --backend etcd: the etcd user kvserver logs in as, when the
    /// cluster has auth enabled. Needs --etcd-password-file.
    #[arg(long, env = "KV_ETCD_USER")]
    pub etcd_user: Option<String>,

    /// The file holding --etcd-user's password (its first line), so that the
    /// password is not on the command line. Must not be readable by group or
    /// others.
    #[arg(long, env = "KV_ETCD_PASSWORD_FILE")]
    pub etcd_password_file: Option<PathBuf>,

    /// Directory for the log and snapshots. Without it, data lives in memory
    /// only and does not survive a restart.
    #[arg(long, env = "KV_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// When the log is synced to disk: always (before each write is
    /// acknowledged), everysec (at least once a second), or never (left to the
    /// OS). Only with --data-dir [default: everysec].
    #[arg(long, env = "KV_FSYNC", value_parser = parse_fsync)]
    pub fsync: Option<Fsync>,

    /// If the log is damaged before its end, cut it at the first bad record
    /// (losing that record and everything after it) instead of refusing to
    /// start. For an operator who accepts the loss. Only with --data-dir.
    #[arg(long, env = "KV_TRUNCATE_CORRUPT_LOG")]
    pub truncate_corrupt_log: bool,

    /// File of accepted bearer tokens (one `NAME SHA256 GRANT...` per line;
    /// make lines with `kvserver token create`). Must not be readable by group
    /// or others.
    #[arg(long, env = "KV_AUTH_FILE")]
    pub auth_file: Option<PathBuf>,

    /// Serve without authentication on an address other than loopback.
    /// Anyone who can reach the address can read and write everything. Not
    /// with --auth-file.
    #[arg(long, env = "KV_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,

    /// Accept tokens over plain HTTP on an address other than loopback, where
    /// they cross the network in clear text (like kvctl's --insecure). Without
    /// it such a server refuses to start: give it --tls-cert and --tls-key, or
    /// put a TLS proxy in front and bind loopback.
    #[arg(long, env = "KV_ALLOW_INSECURE_TOKENS")]
    pub allow_insecure_tokens: bool,

    /// Serve /metrics and /v1/info without a token (by default they need a
    /// token with admin: on every key). Only with --auth-file.
    #[arg(long, env = "KV_OPEN_METRICS")]
    pub open_metrics: bool,

    /// Serve HTTPS with the certificate chain in this PEM file (the server's
    /// certificate first, then any intermediates). Needs --tls-key.
    #[arg(long, env = "KV_TLS_CERT", value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM file with the private key of --tls-cert (PKCS#8, PKCS#1 or
    /// SEC1). Needs --tls-cert.
    #[arg(long, env = "KV_TLS_KEY", value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Store layout preset: balanced, read-heavy (reads share nothing,
    /// writes cost more) or write-heavy (256 shards). See the README's
    /// "Tuning" for what each changes and measured. Only with the embedded
    /// backend [default: balanced].
    #[arg(long, env = "KV_TUNING", value_parser = parse_tuning)]
    pub tuning: Option<Tuning>,

    /// Bound the memory the store holds (records and hash tables, as the
    /// allocator rounds them), e.g. 512MiB, 2GiB, 1000000 (bytes). Units:
    /// B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB (powers of 1000). A write
    /// that does not fit is refused with 507 or makes room, as --eviction
    /// says [default: no bound].
    #[arg(long, env = "KV_MAX_MEMORY", value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u64>,

    /// What a write over --max-memory does: reject (507 insufficient_storage;
    /// reads and deletes still work), evict-lru (remove the least recently
    /// used keys) or evict-ttl (remove the keys with the nearest deadline;
    /// refuse when no key has one). Only with --max-memory [default: reject].
    #[arg(long, env = "KV_EVICTION", value_parser = parse_eviction)]
    pub eviction: Option<Eviction>,

    /// Longest key accepted, in bytes.
    #[arg(long, env = "KV_MAX_KEY_BYTES", default_value_t = 1024)]
    pub max_key_bytes: usize,

    /// Longest value accepted, in bytes.
    #[arg(long, env = "KV_MAX_VALUE_BYTES", default_value_t = 1024 * 1024)]
    pub max_value_bytes: usize,

    /// Longest request body accepted, in bytes; at least --max-value-bytes.
    #[arg(long, env = "KV_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// How long in-flight requests may run after SIGTERM/SIGINT before the
    /// server exits anyway (e.g. 30s, 1500ms).
    #[arg(long, env = "KV_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Changes kept so that a watch can start in the past or resume after a
    /// dropped connection (0: watches start from now only). Only with the
    /// embedded backend (on etcd, etcd's own history serves) [default: 10000].
    #[arg(long, env = "KV_WATCH_HISTORY")]
    pub watch_history: Option<usize>,

    /// How long a client may take to send a request body before it is cut off.
    #[arg(long, env = "KV_BODY_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub body_timeout: Duration,

    /// Worker threads, 1 to 256 [default: one per core].
    #[arg(long, env = "KV_WORKERS")]
    pub workers: Option<usize>,

    /// Most connections open at once, at least --workers [default: what the
    /// file-descriptor limit allows].
    #[arg(long, env = "KV_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
}

/// What kvserver can do besides serving.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// Token commands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a new random token. Prints the token on the first line (give it
    /// to the client; it is not stored anywhere) and its auth-file line on
    /// the second (append it to the file given to --auth-file).
    ///
    /// Example: kvserver token create --name app --allow write:app/ --allow read:shared/
    Create {
        /// A name for the token, shown in 403 messages (no spaces).
        #[arg(long)]
        name: String,
        /// A permission, LEVEL:PREFIX with LEVEL read, write or admin; an
        /// empty prefix means every key. Repeat for more.
        #[arg(long = "allow", required = true, value_parser = Grant::parse)]
        grants: Vec<Grant>,
    },
}

/// More worker threads than this only cost memory: each is a thread with
/// its own runtime, and requests are short.
const MAX_WORKERS: usize = 256;

fn parse_tuning(text: &str) -> Result<Tuning, String> {
    text.parse()
}

fn parse_fsync(text: &str) -> Result<Fsync, String> {
    text.parse()
}

fn parse_eviction(text: &str) -> Result<Eviction, String> {
    text.parse()
}

/// A byte size: digits, then optionally a unit (`512MiB`, `2 GB`, `4096`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits.parse().map_err(|_| {
        format!("{text:?} is not a size: expected a whole number and a unit, e.g. 512MiB")
    })?;
    let unit_bytes: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "unknown size unit {unit:?}: expected B, KiB, MiB, GiB, TiB, KB, MB, GB or TB (e.g. 512MiB)"
            ));
        }
    };
    number
        .checked_mul(unit_bytes)
        .ok_or_else(|| format!("{text:?} is too large"))
}

impl Cli {
    /// The typed configuration these flags describe. `fd_limit` is the
    /// process's file-descriptor limit, which bounds connections.
    pub fn into_config(self, fd_limit: u64) -> Result<Config, String> {
        let defaults = Config::default();
        let workers = match self.workers {
            Some(n) if !(1..=MAX_WORKERS).contains(&n) => {
                return Err(format!(
                    "--workers must be between 1 and {MAX_WORKERS}, got {n}"
                ));
            }
            Some(n) => n,
            None => defaults.workers.min(MAX_WORKERS),
        };
        // Keep 64 descriptors for the listener, log files and the runtime.
        let allowed = fd_limit.saturating_sub(64).max(16) as usize;
        let max_connections = match self.max_connections {
            Some(0) => {
                return Err("--max-connections must be at least 1".into());
            }
            Some(n) if n > allowed => {
                return Err(format!(
                    "--max-connections {n} is over what the file-descriptor limit ({fd_limit}) allows: at most {allowed}"
                ));
            }
            Some(n) if n < workers => {
                return Err(format!(
                    "--max-connections {n} is below --workers {workers}: each worker needs at least one connection"
                ));
            }
            Some(n) => n,
            None => allowed.min(defaults.max_connections).max(workers),
        };
        // The backend first: a flag of the other one is named as such.
        let storage = self.storage()?;
        if self.data_dir.is_none() {
            if self.fsync.is_some() {
                return Err(
                    "--fsync has no effect without --data-dir: data in memory is never synced"
                        .into(),
                );
            }
            if self.truncate_corrupt_log {
                return Err(
                    "--truncate-corrupt-log has no effect without --data-dir: there is no log to cut"
                        .into(),
                );
            }
        }
        if self.eviction.is_some() && self.max_memory.is_none() {
            return Err(
                "--eviction has no effect without --max-memory: a store without a bound never evicts"
                    .into(),
            );
        }
        if let Some(bound) = self.max_memory
            && bound < self.max_value_bytes as u64
        {
            return Err(format!(
                "--max-memory {bound} is below --max-value-bytes {}: a value that large could never be stored; \
                 raise --max-memory or lower --max-value-bytes",
                self.max_value_bytes
            ));
        }
        if self.max_body_bytes < self.max_value_bytes {
            return Err(format!(
                "--max-body-bytes {} is below --max-value-bytes {}: a value that large could never arrive; \
                 raise --max-body-bytes or lower --max-value-bytes",
                self.max_body_bytes, self.max_value_bytes
            ));
        }
        // Before the auth file is read: a contradiction is named as such,
        // whatever the file holds.
        if self.allow_unauthenticated && self.auth_file.is_some() {
            return Err(
                "--allow-unauthenticated has no effect with --auth-file: every request needs a token from the file; \
                 give one or the other"
                    .into(),
            );
        }
        if self.allow_unauthenticated && is_loopback(&self.addr)? {
            return Err(format!(
                "--allow-unauthenticated has no effect on the loopback address {}: a server without --auth-file \
                 serves loopback without authentication already; the flag is for other addresses",
                self.addr
            ));
        }
        if self.open_metrics && self.auth_file.is_none() {
            return Err(
                "--open-metrics has no effect without --auth-file: without tokens /metrics and /v1/info are open already"
                    .into(),
            );
        }
        let tokens = match &self.auth_file {
            Some(path) => Some(Tokens::load(path).map_err(|err| format!("{err:#}"))?),
            None => None,
        };
        if tokens.is_none() && !self.allow_unauthenticated && !is_loopback(&self.addr)? {
            return Err(format!(
                "refusing to serve {} without authentication: anyone who can reach it could read and write everything. \
                 Give tokens with --auth-file FILE (see `kvserver token create --help`), \
                 or pass --allow-unauthenticated to accept that",
                self.addr
            ));
        }
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                Some(Tls::load(cert, key).map_err(|err| format!("{:#}", anyhow::Error::new(err)))?)
            }
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together: give both, or neither".into()),
        };
        let clear_text_tokens = tokens.is_some() && tls.is_none() && !is_loopback(&self.addr)?;
        if self.allow_insecure_tokens && !clear_text_tokens {
            return Err(
                "--allow-insecure-tokens has no effect here: it is for --auth-file without TLS on an address other than loopback"
                    .into(),
            );
        }
        if clear_text_tokens && !self.allow_insecure_tokens {
            return Err(format!(
                "refusing to accept tokens over plain HTTP on {}: they would cross the network in clear text. \
                 Serve HTTPS with --tls-cert and --tls-key, or pass --allow-insecure-tokens for a network you trust",
                self.addr
            ));
        }
        if self.max_key_bytes == 0 || self.max_key_bytes > u32::MAX as usize {
            return Err("--max-key-bytes must be between 1 and 4294967295".into());
        }
        Ok(Config {
            data_dir: self.data_dir,
            fsync: self.fsync.unwrap_or_default(),
            tokens,
            open_metrics: self.open_metrics,
            tls,
            on_corruption: if self.truncate_corrupt_log {
                OnCorruption::TruncateLog
            } else {
                OnCorruption::Refuse
            },
            tuning: self.tuning.unwrap_or_default(),
            max_memory: self.max_memory,
            eviction: self.eviction.unwrap_or_default(),
            storage,
            max_key_bytes: self.max_key_bytes,
            max_value_bytes: self.max_value_bytes,
            max_body_bytes: self.max_body_bytes,
            shutdown_timeout: self.shutdown_timeout,
            body_timeout: self.body_timeout,
            watch_history: self.watch_history.unwrap_or(10_000),
            workers,
            max_connections,
            ..defaults
        })
    }
}

impl Cli {
    /// The storage backend the flags choose, with the flags that only make
    /// sense for the other one refused.
    fn storage(&self) -> Result<Storage, String> {
        let etcd_flags = [
            ("--etcd-endpoints", !self.etcd_endpoints.is_empty()),
            ("--etcd-prefix", self.etcd_prefix.is_some()),
            ("--etcd-timeout", self.etcd_timeout.is_some()),
            (
                "--etcd-max-request-bytes",
                self.etcd_max_request_bytes.is_some(),
            ),
            ("--etcd-ca-cert", self.etcd_ca_cert.is_some()),
            ("--etcd-cert", self.etcd_cert.is_some()),
            ("--etcd-key", self.etcd_key.is_some()),
            ("--etcd-user", self.etcd_user.is_some()),
            ("--etcd-password-file", self.etcd_password_file.is_some()),
        ];
        if self.backend == "embedded" {
            if let Some((flag, _)) = etcd_flags.iter().find(|(_, given)| *given) {
                return Err(format!(
                    "{flag} has no effect with the embedded backend: pass --backend etcd to use an etcd cluster"
                ));
            }
            return Ok(Storage::Embedded);
        }
        let embedded_flags = [
            ("--data-dir", self.data_dir.is_some()),
            ("--fsync", self.fsync.is_some()),
            ("--truncate-corrupt-log", self.truncate_corrupt_log),
            ("--tuning", self.tuning.is_some()),
            ("--max-memory", self.max_memory.is_some()),
            ("--watch-history", self.watch_history.is_some()),
        ];
        if let Some((flag, _)) = embedded_flags.iter().find(|(_, given)| *given) {
            return Err(format!(
                "{flag} has no effect with --backend etcd: etcd keeps the data (see its own --data-dir and flags)"
            ));
        }
        self.etcd_storage()
    }

    #[cfg(not(feature = "etcd"))]
    fn etcd_storage(&self) -> Result<Storage, String> {
        Err(
            "--backend etcd needs a kvserver built with the etcd backend: \
             cargo build --release -p kvserver --features etcd (which needs protoc, Debian package protobuf-compiler)"
                .into(),
        )
    }

    #[cfg(feature = "etcd")]
    fn etcd_storage(&self) -> Result<Storage, String> {
        use crate::backend::etcd::{ETCD_DEFAULT_MAX_REQUEST_BYTES, EtcdConfig, EtcdTls};

        if self.etcd_endpoints.is_empty() {
            return Err(
                "--backend etcd needs --etcd-endpoints: the client URLs of the cluster's members, comma-separated"
                    .into(),
            );
        }
        for endpoint in &self.etcd_endpoints {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(format!(
                    "--etcd-endpoints {endpoint:?} is not a URL: write http://HOST:PORT (or https:// with TLS)"
                ));
            }
        }
        let https = self
            .etcd_endpoints
            .iter()
            .filter(|e| e.starts_with("https://"))
            .count();
        let tls_flags =
            self.etcd_ca_cert.is_some() || self.etcd_cert.is_some() || self.etcd_key.is_some();
        if https != 0 && https != self.etcd_endpoints.len() {
            return Err(
                "--etcd-endpoints mixes http:// and https://: use one scheme for every member"
                    .into(),
            );
        }
        if tls_flags && https == 0 {
            return Err(
                "--etcd-ca-cert, --etcd-cert and --etcd-key have no effect with http:// endpoints: use https:// URLs in --etcd-endpoints"
                    .into(),
            );
        }
        let tls = if https == 0 {
            None
        } else {
            let identity_pem = match (&self.etcd_cert, &self.etcd_key) {
                (Some(cert), Some(key)) => {
                    Some((read_certificates("--etcd-cert", cert)?, read_key(key)?))
                }
                (None, None) => None,
                _ => {
                    return Err(
                        "--etcd-cert and --etcd-key go together: give both, or neither".into(),
                    );
                }
            };
            let ca_pem = self
                .etcd_ca_cert
                .as_ref()
                .map(|ca| read_certificates("--etcd-ca-cert", ca))
                .transpose()?;
            Some(EtcdTls {
                ca_pem,
                identity_pem,
            })
        };
        let user = match (&self.etcd_user, &self.etcd_password_file) {
            (Some(name), Some(file)) => Some((name.clone(), read_password(file)?)),
            (None, None) => None,
            _ => {
                return Err(
                    "--etcd-user and --etcd-password-file go together: give both, or neither"
                        .into(),
                );
            }
        };
        let timeout = self.etcd_timeout.unwrap_or(Duration::from_secs(3));
        if timeout < Duration::from_millis(100) {
            return Err(format!(
                "--etcd-timeout {timeout:?} is too short for any cluster to answer: give at least 100ms"
            ));
        }
        let config = EtcdConfig {
            endpoints: self.etcd_endpoints.clone(),
            prefix: self
                .etcd_prefix
                .clone()
                .unwrap_or_else(|| "kvstore/".into()),
            timeout,
            tls,
            user,
            max_request_bytes: self
                .etcd_max_request_bytes
                .unwrap_or(ETCD_DEFAULT_MAX_REQUEST_BYTES),
        };
        let fits = config.max_value_bytes(self.max_key_bytes);
        if self.max_value_bytes > fits {
            return Err(format!(
                "--max-value-bytes {} is over what etcd accepts in one request: at most {fits} with --max-key-bytes {} \
                 and --etcd-max-request-bytes {} (raise etcd's --max-request-bytes and this flag together, or lower --max-value-bytes)",
                self.max_value_bytes, self.max_key_bytes, config.max_request_bytes
            ));
        }
        Ok(Storage::Etcd(config))
    }
}

/// A PEM file of certificates for TLS towards etcd (`--etcd-ca-cert`,
/// `--etcd-cert`), checked at start-up: etcd-client reads it only when it
/// connects, where a mistake looks like a cluster that cannot be reached.
#[cfg(feature = "etcd")]
fn read_certificates(flag: &str, path: &std::path::Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let unreadable = |err: std::io::Error| format!("cannot read {flag} {shown}: {err}");
    let pem = std::fs::read(path).map_err(unreadable)?;
    if crate::tls::certificates(&pem)
        .map_err(unreadable)?
        .is_empty()
    {
        return Err(format!(
            "{flag} {shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(pem)
}

/// The PEM private key of `--etcd-cert`, checked at start-up likewise.
#[cfg(feature = "etcd")]
fn read_key(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let unreadable = |err: std::io::Error| format!("cannot read --etcd-key {shown}: {err}");
    let pem = std::fs::read(path).map_err(unreadable)?;
    match crate::tls::pem_private_key(&pem).map_err(unreadable)? {
        Some(_) => Ok(pem),
        None => Err(format!(
            "--etcd-key {shown} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)"
        )),
    }
}

/// The first line of a password file that only its owner can read.
#[cfg(feature = "etcd")]
fn read_password(path: &std::path::Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let metadata = std::fs::metadata(path)
        .map_err(|err| format!("cannot read --etcd-password-file {shown}: {err}"))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "--etcd-password-file {shown} is readable by group or others: chmod 600 it"
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read --etcd-password-file {shown}: {err}"))?;
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        return Err(format!(
            "--etcd-password-file {shown} is empty: put the password on its first line"
        ));
    }
    Ok(password.to_owned())
}

/// Whether every address `addr` resolves to is a loopback address.
fn is_loopback(addr: &str) -> Result<bool, String> {
    let resolved: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve --addr {addr}: {err}"))?
        .collect();
    Ok(!resolved.is_empty() && resolved.iter().all(|a| a.ip().is_loopback()))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_and_decimal_units() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("2 GiB"), Ok(2 << 30));
        assert_eq!(parse_size("256mb"), Ok(256_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1KB"), Ok(1000));
        assert!(
            parse_size("12 parsecs")
                .unwrap_err()
                .contains("unknown size unit")
        );
        assert!(parse_size("MiB").unwrap_err().contains("not a size"));
        assert!(parse_size("1.5GiB").is_err());
        assert!(
            parse_size("99999999999TiB")
                .unwrap_err()
                .contains("too large")
        );
    }
}
