//! The bodies of the seed API at `/store`: the write body
//! `{"key", "value", "ttl"?}`, the entry `{"key", "value", "encoding"?,
//! "version", "ttl_ms"?}` and the delete answer `{"key", "deleted": true}`.

use std::borrow::Cow;
use std::time::Duration;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use crate::ttl;
use crate::value::{Encoding, decode_value, encode_value};

/// The body of `POST /store` and `PUT /store`.
///
/// Read it with [`StoreWrite::from_json`], which says in a sentence what is
/// wrong with a body (kvserver answers 400 with that sentence).
///
/// ```
/// use std::time::Duration;
/// use kvapi::{StoreTtl, StoreWrite};
/// let write = StoreWrite::from_json(br#"{"key": "k", "value": "v", "ttl": 0.5}"#).unwrap();
/// assert_eq!(write.ttl, StoreTtl::Seconds(Duration::from_millis(500)));
/// assert_eq!(serde_json::to_string(&write).unwrap(), r#"{"key":"k","value":"v","ttl":0.5}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreWrite<'a> {
    /// The key.
    pub key: Cow<'a, str>,
    /// The value: always a JSON string on this API.
    pub value: Cow<'a, str>,
    /// The `ttl` field.
    pub ttl: StoreTtl,
}

/// The `ttl` field of a seed write: omitted, `null`, or seconds.
///
/// On `PUT /store`, omitted keeps the key's deadline and `null` removes it;
/// on `POST /store` both mean no deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreTtl {
    /// No `ttl` field.
    Omitted,
    /// `"ttl": null`.
    Null,
    /// `"ttl": <seconds>`, read exactly from the number's digits, within
    /// [`MIN_TTL`](crate::MIN_TTL)..=[`MAX_TTL`](crate::MAX_TTL).
    Seconds(Duration),
}

impl StoreWrite<'_> {
    /// Reads and checks a write body, whatever Content-Type it came with.
    /// The error is a sentence for the client: what is missing or of the
    /// wrong type, or why the TTL is refused.
    pub fn from_json(bytes: &[u8]) -> Result<StoreWrite<'static>, String> {
        parse(bytes)
    }
}

impl Serialize for StoreWrite<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = if self.ttl == StoreTtl::Omitted { 2 } else { 3 };
        let mut object = serializer.serialize_struct("StoreWrite", fields)?;
        object.serialize_field("key", &self.key)?;
        object.serialize_field("value", &self.value)?;
        match self.ttl {
            StoreTtl::Omitted => object.skip_field("ttl")?,
            StoreTtl::Null => object.serialize_field("ttl", &())?,
            StoreTtl::Seconds(ttl) => {
                // The exact decimal, not a float that could round it.
                let number = serde_json::value::RawValue::from_string(seconds_text(ttl))
                    .map_err(serde::ser::Error::custom)?;
                object.serialize_field("ttl", &number)?
            }
        }
        object.end()
    }
}

/// A duration as a JSON number of seconds, exactly: `0.5`, `30`, `0.0015`.
fn seconds_text(ttl: Duration) -> String {
    let nanos = ttl.subsec_nanos();
    if nanos == 0 {
        return ttl.as_secs().to_string();
    }
    let fraction = format!("{nanos:09}");
    format!("{}.{}", ttl.as_secs(), fraction.trim_end_matches('0'))
}

/// A key and its value, as the seed API answers a read or a write.
///
/// ```
/// let entry = kvapi::Entry::new("k", b"v", 7, None);
/// assert_eq!(
///     serde_json::to_string(&entry).unwrap(),
///     r#"{"key":"k","value":"v","version":7}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry<'a> {
    /// The key.
    pub key: Cow<'a, str>,
    /// The value as text, or base64 when `encoding` says so (a value
    /// written through `/v1` that is not UTF-8).
    pub value: Cow<'a, str>,
    /// [`Encoding::Base64`] when the value is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    /// The revision of the key's last write.
    pub version: u64,
    /// Milliseconds left before the key expires; absent without a deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
}

impl<'a> Entry<'a> {
    /// The entry of `key` holding `value` at `version`, with `ttl` left.
    /// Borrows the key, and the value when it is UTF-8.
    pub fn new(key: &'a str, value: &'a [u8], version: u64, ttl: Option<Duration>) -> Entry<'a> {
        let (value, encoding) = encode_value(value);
        Entry {
            key: Cow::Borrowed(key),
            value,
            encoding,
            version,
            ttl_ms: crate::ttl_ms(ttl),
        }
    }

    /// The time left until the key's deadline, if it has one.
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl_ms.map(Duration::from_millis)
    }

    /// The value's bytes.
    pub fn value_bytes(&self) -> Result<Vec<u8>, base64::DecodeError> {
        decode_value(&self.value, self.encoding)
    }
}

/// The answer to `DELETE /store?key=K`: `{"key": K, "deleted": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted<'a> {
    /// The key removed.
    pub key: Cow<'a, str>,
    /// Always `true`.
    pub deleted: bool,
}

impl<'a> Deleted<'a> {
    /// The answer for `key`.
    pub fn new(key: &'a str) -> Deleted<'a> {
        Deleted {
            key: Cow::Borrowed(key),
            deleted: true,
        }
    }
}

fn parse(bytes: &[u8]) -> Result<StoreWrite<'static>, String> {
    const SHAPE: &str = r#"{"key": "...", "value": "...", "ttl": seconds (optional)}"#;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(format!(
            "request body is empty: expected a JSON object {SHAPE}"
        ));
    }
    let Fields(fields) = serde_json::from_slice(bytes).map_err(|_| {
        // Not an object, or not JSON: the full parse says which.
        match serde_json::from_slice::<Box<serde_json::value::RawValue>>(bytes) {
            Ok(json) => format!(
                "request body must be a JSON object {SHAPE}, got {}",
                raw_kind(json.get().trim())
            ),
            Err(err) => format!("request body is not valid JSON: {err}"),
        }
    })?;
    // Each known field once: a name given twice would leave the client
    // guessing which of its values was written.
    let (mut key, mut value, mut ttl) = (None, None, None);
    for (name, raw) in &fields {
        let slot = match name.as_str() {
            "key" => &mut key,
            "value" => &mut value,
            "ttl" => &mut ttl,
            unknown => {
                return Err(format!(
                    "unknown field {unknown:?}: expected only \"key\", \"value\" and \"ttl\""
                ));
            }
        };
        if slot.replace(raw.get()).is_some() {
            return Err(format!("{name:?} is given more than once"));
        }
    }
    let key = string_field(key, "key")?;
    let value = string_field(value, "value")?;
    let ttl = match ttl {
        None => StoreTtl::Omitted,
        Some("null") => StoreTtl::Null,
        // Read from the number's text, exactly, whatever its size: no
        // float in between (`1e400` is too long, not unreadable).
        Some(number) if raw_kind(number) == "a number" => {
            StoreTtl::Seconds(ttl::from_seconds(number)?)
        }
        Some(other) => {
            return Err(format!(
                "\"ttl\" must be a number of seconds, got {}",
                raw_kind(other)
            ));
        }
    };
    Ok(StoreWrite {
        key: key.into(),
        value: value.into(),
        ttl,
    })
}

/// The top-level fields of a JSON object in the order written, names
/// given twice included, each value's JSON text as the client wrote it.
struct Fields(Vec<(String, Box<serde_json::value::RawValue>)>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Fields, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Fields;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields, A::Error> {
                let mut fields = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    fields.push((name, map.next_value()?));
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// A string field's text, from its JSON text.
fn string_field(raw: Option<&str>, name: &str) -> Result<String, String> {
    let raw = raw.ok_or_else(|| format!("missing field {name:?}"))?;
    match raw_kind(raw) {
        "a string" => serde_json::from_str(raw)
            .map_err(|err| format!("request body is not valid JSON: {name:?}: {err}")),
        other => Err(format!("{name:?} must be a JSON string, got {other}")),
    }
}

/// How a person would name the type of a JSON value's text (valid JSON,
/// no surrounding space).
fn raw_kind(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        Some(b'"') => "a string",
        Some(b'[') => "an array",
        Some(b'{') => "an object",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_body_reads_its_three_fields() {
        let cases = [
            (r#"{"key":"k","value":"v"}"#, StoreTtl::Omitted, "no ttl"),
            (
                r#"{"key":"k","value":"v","ttl":null}"#,
                StoreTtl::Null,
                "null ttl",
            ),
            (
                r#"{"ttl":315360000.001,"value":"v","key":"k"}"#,
                StoreTtl::Seconds(Duration::from_millis(315_360_000_001)),
                "any order, ttl exact",
            ),
        ];
        for (json, ttl, why) in cases {
            let write = StoreWrite::from_json(json.as_bytes()).expect(why);
            assert_eq!(
                (write.key.as_ref(), write.value.as_ref(), write.ttl),
                ("k", "v", ttl),
                "{why}"
            );
        }
    }

    #[test]
    fn a_bad_write_body_is_refused_with_a_sentence() {
        let cases = [
            ("", "request body is empty", "empty"),
            ("{", "not valid JSON", "not JSON"),
            ("[]", "must be a JSON object", "an array"),
            (
                r#"{"key":"k","value":"v","x":1}"#,
                "unknown field \"x\"",
                "unknown field",
            ),
            (r#"{"value":"v"}"#, "missing field \"key\"", "no key"),
            (
                r#"{"key":"k","value":3}"#,
                "\"value\" must be a JSON string, got a number",
                "number value",
            ),
            (
                r#"{"key":"k","value":"v","ttl":"3"}"#,
                "must be a number of seconds",
                "string ttl",
            ),
            (r#"{"key":"k","value":"v","ttl":0}"#, "positive", "zero ttl"),
            (
                r#"{"key":"k","value":"v","ttl":1,"ttl":2}"#,
                "more than once",
                "two ttls",
            ),
            (
                r#"{"key":"k","key":"j","value":"v"}"#,
                "\"key\" is given more than once",
                "two keys",
            ),
            (
                r#"{"key":"k","value":"v","value":"w"}"#,
                "\"value\" is given more than once",
                "two values",
            ),
            (
                r#"{"key":"k","value":"v","ttl":1e400}"#,
                "longer than the maximum of 10 years",
                "a ttl past f64, read from its digits",
            ),
            (
                r#"{"key":"k","value":"v","ttl":[[[]]]}"#,
                "\"ttl\" must be a number of seconds, got an array",
                "an array ttl",
            ),
            (
                r#"{"key":"\ud800","value":"v"}"#,
                "not valid JSON",
                "a lone surrogate",
            ),
        ];
        for (json, needle, why) in cases {
            let err = StoreWrite::from_json(json.as_bytes()).expect_err(why);
            assert!(err.contains(needle), "{why}: {err}");
        }
    }

    #[test]
    fn a_write_body_serialises_to_what_it_reads_from() {
        let cases = [
            StoreTtl::Omitted,
            StoreTtl::Null,
            StoreTtl::Seconds(Duration::from_secs(30)),
            StoreTtl::Seconds(Duration::from_micros(1500)),
            StoreTtl::Seconds(Duration::from_millis(315_360_000_001)),
        ];
        for ttl in cases {
            let write = StoreWrite {
                key: "k".into(),
                value: "v".into(),
                ttl,
            };
            let json = serde_json::to_vec(&write).unwrap();
            assert_eq!(StoreWrite::from_json(&json), Ok(write), "{ttl:?}");
        }
    }

    #[test]
    fn an_entry_is_written_in_the_seed_api_order() {
        let binary = Entry::new("b", &[0xff, 0xfe], 2, Some(Duration::from_millis(1500)));
        let json = serde_json::to_string(&binary).unwrap();
        assert_eq!(
            json,
            r#"{"key":"b","value":"//4=","encoding":"base64","version":2,"ttl_ms":1500}"#
        );
        let read: Entry = serde_json::from_str(&json).unwrap();
        assert_eq!(read.value_bytes().unwrap(), vec![0xff, 0xfe]);
        assert_eq!(
            serde_json::to_string(&Deleted::new("k")).unwrap(),
            r#"{"key":"k","deleted":true}"#
        );
    }
}
