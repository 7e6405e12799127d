//! kvapi: kvstore's wire format, defined once. kvserver writes it and kvctl
//! reads it (and the other way round) through these types, so the two
//! cannot drift apart; kvserver's `openapi.json` is checked against them.
//!
//! ```
//! use kvapi::{Entry, ErrorBody, ErrorCode};
//!
//! // What `GET /store?key=greeting` answers...
//! let entry = Entry::new("greeting", b"hello", 1, None);
//! let json = serde_json::to_string(&entry)?;
//! assert_eq!(json, r#"{"key":"greeting","value":"hello","version":1}"#);
//!
//! // ...and what a client reads back.
//! let read: Entry = serde_json::from_str(&json)?;
//! assert_eq!(read.value_bytes().unwrap(), b"hello");
//!
//! // Every error has the same shape.
//! let error: ErrorBody = serde_json::from_str(r#"{"error":"key \"k\" not found","code":"not_found","key":"k"}"#)?;
//! assert_eq!(error.code, ErrorCode::NotFound);
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! Types borrow what they can (`Cow<str>`), so a server writes a body
//! without copying keys or values; a client reads owned ones.
//!
//! # Modules
//!
//! - `seed`: the `/store` bodies: [`StoreWrite`], [`Entry`], [`Deleted`].
//! - `kv`: the `/v1/kv` bodies: [`Written`], [`ListPage`] of [`ListItem`]s,
//!   and [`PageWriter`], which writes a page item by item.
//! - `info`: [`Info`] and the health bodies ([`Health`]).
//! - `error`: [`ErrorBody`] and [`ErrorCode`].
//! - `value`: values as JSON text or base64 ([`Encoding`]).
//! - `watch`: the `/v1/watch` event stream's [`WatchEvent`].
//! - `condition`: what a `/v1` write asks for besides its value:
//!   [`Condition`] (precondition headers) and [`TtlChange`] (query).
//! - `header`: header names ([`ETAG`], [`TTL_MS`], ...).
//! - `etag`: ETags and `If-Match` / `If-None-Match` ([`Tags`]) as RFC 9110
//!   reads them.
//! - [`url`]: the paths and query parameter names, and [`url::ListQuery`].
//! - `ttl`: [`parse_duration`], the duration syntax of queries and flags,
//!   and [`parse_ttl`], a duration within the TTL bounds [`MIN_TTL`] and
//!   [`MAX_TTL`].
//!
//! Dependencies: serde, serde_json and base64 only; no HTTP stack and no
//! storage engine.

#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

mod condition;
mod error;
mod etag;
mod header;
mod info;
mod kv;
mod seed;
pub mod ttl;
pub mod url;
mod value;
mod watch;

pub use condition::{Condition, TtlChange, WriteCondition};
pub use error::{ErrorBody, ErrorCode};
pub use etag::{Tag, Tags, format_etag, parse_etag};
pub use header::{ETAG, IF_MATCH, IF_NONE_MATCH, JSON, LAST_EVENT_ID, OCTET_STREAM, TTL_MS};
pub use info::{Health, HealthStatus, Info, InfoLimits, InfoMemory, LogFigures};
pub use kv::{DEFAULT_LIST_LIMIT, ListItem, ListPage, MAX_LIST_LIMIT, PageWriter, Written};
pub use seed::{Deleted, Entry, StoreTtl, StoreWrite};
pub use ttl::{DurationError, MAX_TTL, MIN_TTL, parse_duration, parse_ttl};
pub use value::{Encoding, decode_value, encode_value};
pub use watch::{EVENT_STREAM, WatchEvent, WatchKind};

/// A time left as the wire carries it: whole milliseconds (`ttl_ms`,
/// `Kv-Ttl-Ms`), rounded down.
pub fn ttl_ms(ttl: Option<std::time::Duration>) -> Option<u64> {
    ttl.map(|ttl| ttl.as_millis() as u64)
}
