//! kvserver: the kvstore HTTP service.
//!
//! `main.rs` only parses flags and wires things; everything else lives here
//! so tests can start the real app on port 0:
//!
//! - `app`: [`Application`] (bound listener in, shutdown signal in) and the
//!   shared [`AppState`].
//! - `routes`: `seed` (`/store`), `v1` (`/v1/kv`, `/v1/info`), `ops`
//!   (`/healthz`, `/readyz`, `/metrics`).
//! - `backend`: the [`Backend`] trait routes talk to, and the embedded store.
//! - `error`: [`ApiError`], the one place HTTP statuses are decided.
//! - `body`, `query`: reading bodies under limits, strict query strings.
//!   The bodies, headers, ETags and TTL syntax themselves are kvapi's.
//! - `config`, `cli`: typed [`Config`], and the flags that produce it.
//! - `tls`: [`Tls`], the certificate and key HTTPS is served with.
//! - `metrics`: the Prometheus registry.
//! - `logging`: env_logger behind a buffer flushed in the background.
//! - `early_errors`: JSON bodies for what actix answers before routing.

pub mod app;
pub mod auth;
pub mod backend;
pub mod body;
pub mod cli;
pub mod config;
pub mod early_errors;
pub mod error;
pub mod logging;
pub mod metrics;
pub mod query;
pub mod routes;
pub mod tls;

pub use app::{AppState, Application, shutdown_signal};
pub use backend::{Backend, EmbeddedBackend};
pub use config::Config;
pub use error::ApiError;
pub use tls::{Tls, TlsError};
