//! The JSON bodies of the operational endpoints: `GET /v1/info`,
//! `GET /healthz` and `GET /readyz`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// The answer to `GET /v1/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info<'a> {
    /// Always `"kvstore"`.
    pub name: Cow<'a, str>,
    /// The server's release version.
    pub version: Cow<'a, str>,
    /// The storage backend: `embedded` (kvcore in the server's process) or
    /// `etcd` (an etcd v3 cluster).
    pub backend: Cow<'a, str>,
    /// Whole seconds since the server started.
    pub uptime_seconds: u64,
    /// Live keys.
    pub keys: u64,
    /// The latest revision handed out (0 before the first write).
    pub revision: u64,
    /// Expired keys whose memory was reclaimed.
    pub expired_keys_reclaimed: u64,
    /// `balanced`, `read-heavy` or `write-heavy`.
    pub tuning: Cow<'a, str>,
    /// `memory` without a data directory, otherwise the fsync policy
    /// (`always`, `everysec`, `never`).
    pub durability: Cow<'a, str>,
    /// The configured limits.
    pub limits: InfoLimits,
    /// Log and snapshot figures with a data directory; `null` in memory.
    pub log: Option<LogFigures>,
    /// Memory held, its bound and evictions.
    pub memory: InfoMemory,
}

/// The memory figures `/v1/info` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoMemory {
    /// Bytes the store holds by its own accounting (records as the
    /// allocator rounds them, hash tables).
    pub used_bytes: u64,
    /// The bound (`--max-memory`); `null` without one.
    pub bound_bytes: Option<u64>,
    /// What a write over the bound does: `reject`, `evict-lru` or
    /// `evict-ttl`.
    pub eviction: Cow<'static, str>,
    /// Keys evicted since the server started.
    pub evicted_keys: u64,
}

/// The limits `/v1/info` shows, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoLimits {
    /// The longest key.
    pub max_key_bytes: u64,
    /// The largest value.
    pub max_value_bytes: u64,
    /// The largest request body.
    pub max_body_bytes: u64,
}

/// The durable store's log and snapshot figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFigures {
    /// Bytes in the current log segment.
    pub log_bytes: u64,
    /// Bytes in the latest snapshot.
    pub snapshot_bytes: u64,
    /// Log syncs since start.
    pub fsyncs: u64,
    /// Compactions since start.
    pub compactions: u64,
}

/// The answer to `GET /healthz` (`{"status": "ok"}`) and `GET /readyz`
/// (`{"status": "ready"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// What the endpoint reports.
    pub status: HealthStatus,
}

/// What a health endpoint reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// `/healthz`: the process answers.
    Ok,
    /// `/readyz`: storage is recovered and serving.
    Ready,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_written_in_its_documented_order_with_a_null_log_in_memory() {
        let info = Info {
            name: "kvstore".into(),
            version: "0.1.0".into(),
            backend: "embedded".into(),
            uptime_seconds: 1,
            keys: 2,
            revision: 3,
            expired_keys_reclaimed: 4,
            tuning: "balanced".into(),
            durability: "memory".into(),
            limits: InfoLimits {
                max_key_bytes: 5,
                max_value_bytes: 6,
                max_body_bytes: 7,
            },
            log: None,
            memory: InfoMemory {
                used_bytes: 8,
                bound_bytes: None,
                eviction: "reject".into(),
                evicted_keys: 0,
            },
        };
        let json = serde_json::to_string(&info).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"{"name":"kvstore","version":"0.1.0","backend":"embedded","uptime_seconds":1,"#,
                r#""keys":2,"revision":3,"#,
                r#""expired_keys_reclaimed":4,"tuning":"balanced","durability":"memory","#,
                r#""limits":{"max_key_bytes":5,"max_value_bytes":6,"max_body_bytes":7},"log":null,"#,
                r#""memory":{"used_bytes":8,"bound_bytes":null,"eviction":"reject","evicted_keys":0}}"#
            )
        );
        assert_eq!(serde_json::from_str::<Info>(&json).unwrap(), info);
    }

    #[test]
    fn health_bodies_name_their_status() {
        for (status, json) in [
            (HealthStatus::Ok, r#"{"status":"ok"}"#),
            (HealthStatus::Ready, r#"{"status":"ready"}"#),
        ] {
            assert_eq!(serde_json::to_string(&Health { status }).unwrap(), json);
        }
    }
}
