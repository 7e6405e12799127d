//! Prometheus metrics: requests by route and status, latency, and store
//! figures read at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::backend::Backend;
use crate::error::ApiError;

/// The server's metrics registry.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    keys: IntGauge,
    revision: IntGauge,
    expired: IntCounter,
    /// The store's reclaim count at the last scrape; the counter grows by the
    /// difference, since a Prometheus counter can only be incremented.
    expired_seen: AtomicU64,
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
        let expired = IntCounter::new(
            "kv_expired_keys_total",
            "Expired keys whose memory was reclaimed",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(keys.clone()))?;
        registry.register(Box::new(revision.clone()))?;
        registry.register(Box::new(expired.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            keys,
            revision,
            expired,
            expired_seen: AtomicU64::new(0),
        })
    }

    /// Counts one finished request.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[method, route, status_label(status)])
            .inc();
        self.latency
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition, with store figures refreshed.
    pub async fn render(&self, backend: &dyn Backend) -> Result<String, ApiError> {
        let info = backend.info().await;
        self.keys.set(info.keys as i64);
        self.revision.set(info.revision as i64);
        let before = self
            .expired_seen
            .fetch_max(info.expired_reclaimed, Ordering::Relaxed);
        self.expired
            .inc_by(info.expired_reclaimed.saturating_sub(before));
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut text)
            .map_err(|err| ApiError::Internal(err.into()))?;
        String::from_utf8(text).map_err(|err| ApiError::Internal(err.into()))
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
        412 => "412",
        413 => "413",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}
