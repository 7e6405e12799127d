//! One line of an export file:
//! `{"key": K, "value": V, "encoding": "base64"?, "expires_at": T?}`.
//!
//! Deadlines are absolute (RFC 3339, UTC, millisecond precision), so an
//! export imported an hour later gives its keys an hour less, and a key
//! whose deadline passed in between is not brought back. Values that are not
//! UTF-8 are base64 with `"encoding": "base64"`, as in the server's listings.
//! Versions are not kept: the target store numbers its own writes.

use std::time::Duration;

use jiff::Timestamp;
use kvapi::{Encoding, decode_value, encode_value};
use serde::{Deserialize, Serialize};

/// A key, its value and its deadline, as one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The key.
    pub key: String,
    /// The value: text, or base64 when `encoding` says so.
    pub value: String,
    /// `"base64"` when the value is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// When the key expires, as an RFC 3339 UTC time; absent if never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// A record's deadline, seen from a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// The key never expires.
    Never,
    /// The key expires this long from now.
    In(Duration),
    /// The deadline has passed: the key is gone.
    Passed,
}

impl Record {
    /// The record of a key that, at `now`, has `value` and `ttl` left.
    pub fn new(key: String, value: &[u8], ttl: Option<Duration>, now: Timestamp) -> Record {
        let (value, encoding) = encode_value(value);
        let expires_at = ttl.map(|ttl| {
            let millis = now
                .as_millisecond()
                .saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
            Timestamp::from_millisecond(millis)
                .unwrap_or(Timestamp::MAX)
                .to_string()
        });
        Record {
            key,
            value: value.into_owned(),
            encoding: encoding.map(|encoding| encoding.as_str().to_owned()),
            expires_at,
        }
    }

    /// The value's bytes.
    pub fn value(&self) -> Result<Vec<u8>, String> {
        // The encoding stays a string here so an unknown one is named.
        let encoding = match self.encoding.as_deref() {
            None => None,
            Some(name) => Some(Encoding::from_name(name).ok_or_else(|| {
                format!(
                    "unknown encoding {name:?} for {:?}: only \"base64\" is known",
                    self.key
                )
            })?),
        };
        decode_value(&self.value, encoding)
            .map_err(|err| format!("the value of {:?} is not valid base64 ({err})", self.key))
    }

    /// The deadline as seen at `now`. Less than a millisecond left counts
    /// as passed: the store's TTLs are whole milliseconds of at least one.
    pub fn deadline(&self, now: Timestamp) -> Result<Deadline, String> {
        let Some(text) = &self.expires_at else {
            return Ok(Deadline::Never);
        };
        let at: Timestamp = text.parse().map_err(|err| {
            format!(
                "expires_at {text:?} of {:?} is not an RFC 3339 time like 2030-01-01T00:00:00Z ({err})",
                self.key
            )
        })?;
        let left = at.as_millisecond().saturating_sub(now.as_millisecond());
        Ok(match u64::try_from(left) {
            Ok(ms) if ms >= 1 => Deadline::In(Duration::from_millis(ms)),
            _ => Deadline::Passed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_ttl_becomes_an_absolute_deadline_and_back() {
        let exported_at = at("2030-01-01T00:00:00Z");
        let record = Record::new(
            "k".into(),
            b"v",
            Some(Duration::from_millis(90_500)),
            exported_at,
        );
        assert_eq!(record.expires_at.as_deref(), Some("2030-01-01T00:01:30.5Z"));
        let cases = [
            (
                "2030-01-01T00:00:00Z",
                Deadline::In(Duration::from_millis(90_500)),
                "at once",
            ),
            (
                "2030-01-01T00:01:00Z",
                Deadline::In(Duration::from_millis(30_500)),
                "a minute later",
            ),
            (
                "2030-01-01T00:01:30.499Z",
                Deadline::In(Duration::from_millis(1)),
                "one ms left",
            ),
            (
                "2030-01-01T00:01:30.500Z",
                Deadline::Passed,
                "at the deadline",
            ),
            ("2031-01-01T00:00:00Z", Deadline::Passed, "long after"),
        ];
        for (now, expected, why) in cases {
            assert_eq!(record.deadline(at(now)), Ok(expected), "{why}");
        }
    }

    #[test]
    fn keys_without_a_deadline_never_expire() {
        let record = Record::new("k".into(), b"v", None, Timestamp::now());
        assert_eq!(record.expires_at, None);
        assert_eq!(record.deadline(Timestamp::MAX), Ok(Deadline::Never));
    }

    #[test]
    fn binary_values_travel_as_base64_and_text_as_text() {
        let now = Timestamp::now();
        let binary = Record::new("b".into(), &[0, 159, 146, 150], None, now);
        assert_eq!(binary.encoding.as_deref(), Some("base64"));
        assert_eq!(binary.value(), Ok(vec![0, 159, 146, 150]));
        let text = Record::new("t".into(), "héllo".as_bytes(), None, now);
        assert_eq!((text.value.as_str(), text.encoding), ("héllo", None));
    }

    #[test]
    fn malformed_records_say_what_is_wrong() {
        let cases = [
            (
                r#"{"key":"k","value":"%%%","encoding":"base64"}"#,
                "base64",
                "bad base64",
            ),
            (
                r#"{"key":"k","value":"v","encoding":"hex"}"#,
                "unknown encoding",
                "bad encoding",
            ),
            (
                r#"{"key":"k","value":"v","expires_at":"tomorrow"}"#,
                "RFC 3339",
                "bad time",
            ),
        ];
        for (line, needle, why) in cases {
            let record: Record = serde_json::from_str(line).unwrap();
            let err = record
                .value()
                .and_then(|_| record.deadline(Timestamp::now()).map(|_| ()))
                .expect_err(why);
            assert!(err.contains(needle), "{why}: {err}");
        }
        let unknown = serde_json::from_str::<Record>(r#"{"key":"k","value":"v","ttl":3}"#);
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));
    }
}
