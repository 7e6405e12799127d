//! Prometheus metrics: requests by route and status, latency, and store
//! figures read at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use std::sync::Arc;

use actix_web::http::Method;

use crate::backend::Backend;
use crate::error::ApiError;

/// The server's metrics registry.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    keys: IntGauge,
    revision: IntGauge,
    expired: Tracked,
    log_bytes: IntGauge,
    snapshot_bytes: IntGauge,
    fsyncs: Tracked,
    compactions: Tracked,
    memory_used: IntGauge,
    memory_bound: IntGauge,
    evicted: Tracked,
    /// `/v1/watch` streams open now.
    pub watchers: IntGauge,
    /// Events written to `/v1/watch` streams.
    pub watch_events: IntCounter,
    /// `/v1/watch` streams ended because the client fell behind.
    pub watchers_cut_off: IntCounter,
}

/// A counter that follows a total kept elsewhere (in the store): at each
/// scrape it grows by the difference from the last total seen, since a
/// Prometheus counter can only be incremented.
struct Tracked {
    counter: IntCounter,
    seen: AtomicU64,
}

impl Tracked {
    fn new(registry: &Registry, name: &str, help: &str) -> anyhow::Result<Tracked> {
        let counter = IntCounter::new(name, help)?;
        registry.register(Box::new(counter.clone()))?;
        Ok(Tracked {
            counter,
            seen: AtomicU64::new(0),
        })
    }

    fn follow(&self, total: u64) {
        let before = self.seen.fetch_max(total, Ordering::Relaxed);
        self.counter.inc_by(total.saturating_sub(before));
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> anyhow::Result<Metrics> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "kv_http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "kv_http_request_duration_seconds",
                "Time from request to response, by route",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0,
            ]),
            &["route"],
        )?;
        let keys = IntGauge::new("kv_keys", "Live keys in the store")?;
        let revision = IntGauge::new("kv_revision", "Latest revision handed out")?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(keys.clone()))?;
        registry.register(Box::new(revision.clone()))?;
        let log_bytes = IntGauge::new("kv_log_bytes", "Bytes in the current log segment")?;
        let snapshot_bytes = IntGauge::new("kv_snapshot_bytes", "Bytes in the latest snapshot")?;
        registry.register(Box::new(log_bytes.clone()))?;
        registry.register(Box::new(snapshot_bytes.clone()))?;
        let expired = Tracked::new(
            &registry,
            "kv_expired_keys_total",
            "Expired keys whose memory was reclaimed",
        )?;
        let fsyncs = Tracked::new(&registry, "kv_fsyncs_total", "Log syncs to stable storage")?;
        let compactions = Tracked::new(
            &registry,
            "kv_compactions_total",
            "Log compactions into a snapshot",
        )?;
        let memory_used = IntGauge::new(
            "kv_memory_used_bytes",
            "Bytes the store holds by its own accounting (records, hash tables)",
        )?;
        let memory_bound = IntGauge::new(
            "kv_memory_bound_bytes",
            "The store's memory bound (--max-memory); 0 without one",
        )?;
        registry.register(Box::new(memory_used.clone()))?;
        registry.register(Box::new(memory_bound.clone()))?;
        let evicted = Tracked::new(
            &registry,
            "kv_evicted_keys_total",
            "Keys evicted to stay under the memory bound",
        )?;
        let watchers = IntGauge::new("kv_watchers", "Open /v1/watch streams")?;
        let watch_events = IntCounter::new(
            "kv_watch_events_sent_total",
            "Events written to /v1/watch streams",
        )?;
        let watchers_cut_off = IntCounter::new(
            "kv_watchers_cut_off_total",
            "/v1/watch streams ended because the client fell behind",
        )?;
        registry.register(Box::new(watchers.clone()))?;
        registry.register(Box::new(watch_events.clone()))?;
        registry.register(Box::new(watchers_cut_off.clone()))?;
        Ok(Metrics {
            memory_used,
            memory_bound,
            evicted,
            watchers,
            watch_events,
            watchers_cut_off,
            registry,
            requests,
            latency,
            keys,
            revision,
            expired,
            log_bytes,
            snapshot_bytes,
            fsyncs,
            compactions,
        })
    }

    /// Counts one finished request. `route` must come from a fixed set (the
    /// routes' patterns, or `unmatched`); the method is folded into one.
    pub fn observe(&self, method: &Method, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[method_label(method), route, status_label(status)])
            .inc();
        self.latency
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition, with store figures refreshed (when storage is
    /// serving: during recovery, or while a cluster does not answer, the
    /// request metrics are shown with the last store figures).
    pub async fn render(&self, backend: Option<&Arc<dyn Backend>>) -> Result<String, ApiError> {
        if let Some(backend) = backend
            && let Ok(info) = backend.info().await
        {
            self.keys.set(info.keys as i64);
            self.revision.set(info.revision as i64);
            self.expired.follow(info.expired_reclaimed);
            self.memory_used.set(info.memory.used as i64);
            self.memory_bound.set(info.memory.bound.unwrap_or(0) as i64);
            self.evicted.follow(info.memory.evicted);
            if let Some(log) = info.log {
                self.log_bytes.set(log.log_bytes as i64);
                self.snapshot_bytes.set(log.snapshot_bytes as i64);
                self.fsyncs.follow(log.fsyncs);
                self.compactions.follow(log.compactions);
            }
        }
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut text)
            .map_err(|err| ApiError::Internal(err.into()))?;
        String::from_utf8(text).map_err(|err| ApiError::Internal(err.into()))
    }
}

/// Methods as a fixed set of labels: any other method a client makes up
/// counts as `other`, so unauthenticated junk cannot grow `/metrics`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Status codes as static labels, so no string is allocated per request.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        204 => "204",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        409 => "409",
        410 => "410",
        412 => "412",
        413 => "413",
        500 => "500",
        503 => "503",
        507 => "507",
        _ => "other",
    }
}
