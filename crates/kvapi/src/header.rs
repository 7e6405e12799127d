//! The names of the headers kvstore's HTTP API reads and writes, as they
//! are spelled on the wire (header names compare case-insensitively).

/// The version of the key a response is about, as an entity tag
/// (`"<version>"`, see [`format_etag`](crate::format_etag)).
pub const ETAG: &str = "ETag";

/// Milliseconds left before the key expires, on `GET` and `HEAD` of
/// `/v1/kv/{key}`; absent when the key has no deadline.
pub const TTL_MS: &str = "Kv-Ttl-Ms";

/// `*` (the key must exist) or an entity tag (compare-and-swap).
pub const IF_MATCH: &str = "If-Match";

/// `*` on a write (the key must not exist); entity tags on a read (304 when
/// one matches).
pub const IF_NONE_MATCH: &str = "If-None-Match";

/// The content type of JSON bodies.
pub const JSON: &str = "application/json";

/// The content type of a raw value on `GET /v1/kv/{key}`.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// The revision a `/v1/watch` client saw last: the stream resumes right
/// after it (Server-Sent Events send it when they reconnect).
pub const LAST_EVENT_ID: &str = "Last-Event-ID";
