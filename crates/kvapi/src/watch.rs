//! The change feed on the wire: `GET /v1/watch` answers with Server-Sent
//! Events, one per change: `id:` is the revision (so that a client's
//! `Last-Event-ID` resumes right after it), `event:` the kind, and `data:`
//! a [`WatchEvent`] as JSON, values as text or base64 like a listing's.

use std::borrow::Cow;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::value::{Encoding, decode_value, encode_value};

/// The content type of the stream.
pub const EVENT_STREAM: &str = "text/event-stream";

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchKind {
    /// Created or replaced; the event carries the value.
    Put,
    /// Removed.
    Delete,
    /// Removed by the server once it noticed the deadline had passed.
    Expire,
}

impl WatchKind {
    /// The name on the wire (also the SSE `event:` field).
    pub fn as_str(self) -> &'static str {
        match self {
            WatchKind::Put => "put",
            WatchKind::Delete => "delete",
            WatchKind::Expire => "expire",
        }
    }
}

/// The `data:` of one event.
///
/// ```
/// use kvapi::{WatchEvent, WatchKind};
/// let event = WatchEvent::new(7, "app/a", WatchKind::Put, Some(b"on"), None);
/// assert_eq!(
///     serde_json::to_string(&event).unwrap(),
///     r#"{"revision":7,"key":"app/a","kind":"put","value":"on"}"#
/// );
/// let gone = WatchEvent::new(8, "app/a", WatchKind::Delete, None, None);
/// assert_eq!(
///     serde_json::to_string(&gone).unwrap(),
///     r#"{"revision":8,"key":"app/a","kind":"delete"}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchEvent<'a> {
    /// The revision of the change (also the SSE `id:`).
    pub revision: u64,
    /// The key.
    pub key: Cow<'a, str>,
    /// What happened.
    pub kind: WatchKind,
    /// The new value of a put: text, or base64 when `encoding` says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Cow<'a, str>>,
    /// [`Encoding::Base64`] when the value is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    /// Milliseconds the put's key had left, as of the put; absent without a
    /// deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
}

impl<'a> WatchEvent<'a> {
    /// The event of a change to `key` at `revision`; `value` for a put.
    pub fn new(
        revision: u64,
        key: &'a str,
        kind: WatchKind,
        value: Option<&'a [u8]>,
        ttl: Option<Duration>,
    ) -> WatchEvent<'a> {
        let (value, encoding) = match value.map(encode_value) {
            Some((text, encoding)) => (Some(text), encoding),
            None => (None, None),
        };
        WatchEvent {
            revision,
            key: Cow::Borrowed(key),
            kind,
            value,
            encoding,
            ttl_ms: crate::ttl_ms(ttl),
        }
    }

    /// The put's value as bytes; `None` for a delete or an expiry.
    pub fn value_bytes(&self) -> Option<Result<Vec<u8>, base64::DecodeError>> {
        self.value
            .as_deref()
            .map(|text| decode_value(text, self.encoding))
    }

    /// The time the put's key had left, if it has a deadline.
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl_ms.map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_values_travel_as_base64_and_read_back() {
        let event = WatchEvent::new(
            3,
            "k",
            WatchKind::Put,
            Some(&[0xff, 0]),
            Some(Duration::from_millis(1500)),
        );
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"revision":3,"key":"k","kind":"put","value":"/wA=","encoding":"base64","ttl_ms":1500}"#
        );
        let read: WatchEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(read.value_bytes().unwrap().unwrap(), [0xff, 0]);
        assert_eq!(read.ttl(), Some(Duration::from_millis(1500)));
        for kind in [WatchKind::Put, WatchKind::Delete, WatchKind::Expire] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
    }
}
