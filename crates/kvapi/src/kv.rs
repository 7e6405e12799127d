//! The JSON bodies of `/v1/kv`: the answer to a write
//! `{"key", "version", "created", "ttl_ms"?}` and the listing page
//! `{"items": [{"key", "version", "size", "ttl_ms"?, "value"?, "encoding"?}],
//! "next"}`. A read answers with the raw value and headers, no JSON.

use std::borrow::Cow;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::value::{Encoding, decode_value, encode_value};

/// The keys a listing page holds without `limit=`.
pub const DEFAULT_LIST_LIMIT: usize = 100;

/// The most keys a listing page holds: the largest `limit=`.
pub const MAX_LIST_LIMIT: usize = 1000;

/// The answer to `PUT /v1/kv/{key}` (201 created, 200 replaced).
///
/// ```
/// let written = kvapi::Written::new("k", 3, true, None);
/// assert_eq!(
///     serde_json::to_string(&written).unwrap(),
///     r#"{"key":"k","version":3,"created":true}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written<'a> {
    /// The key written.
    pub key: Cow<'a, str>,
    /// The key's new version.
    pub version: u64,
    /// Whether the key was created rather than replaced.
    pub created: bool,
    /// Milliseconds left before the key expires; absent without a deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
}

impl<'a> Written<'a> {
    /// The answer for a write of `key` that made `version`.
    pub fn new(key: &'a str, version: u64, created: bool, ttl: Option<Duration>) -> Written<'a> {
        Written {
            key: Cow::Borrowed(key),
            version,
            created,
            ttl_ms: crate::ttl_ms(ttl),
        }
    }

    /// The time left until the key's deadline, if it has one.
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl_ms.map(Duration::from_millis)
    }
}

/// One key of a listing page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListItem<'a> {
    /// The key.
    pub key: Cow<'a, str>,
    /// The revision of the key's last write.
    pub version: u64,
    /// The value's length in bytes.
    pub size: u64,
    /// Milliseconds left before the key expires; absent without a deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// The value, only with `values=true`: text, or base64 when `encoding`
    /// says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Cow<'a, str>>,
    /// [`Encoding::Base64`] when the value is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
}

impl<'a> ListItem<'a> {
    /// The item of `key` holding `value`; the value itself is included only
    /// `with_value`. Borrows the key, and the value when it is UTF-8.
    pub fn new(
        key: &'a str,
        value: &'a [u8],
        version: u64,
        ttl: Option<Duration>,
        with_value: bool,
    ) -> ListItem<'a> {
        let (value_text, encoding) = if with_value {
            let (text, encoding) = encode_value(value);
            (Some(text), encoding)
        } else {
            (None, None)
        };
        ListItem {
            key: Cow::Borrowed(key),
            version,
            size: value.len() as u64,
            ttl_ms: crate::ttl_ms(ttl),
            value: value_text,
            encoding,
        }
    }

    /// The time left until the key's deadline, if it has one.
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl_ms.map(Duration::from_millis)
    }

    /// The value's bytes, when the listing included values.
    pub fn value_bytes(&self) -> Option<Result<Vec<u8>, base64::DecodeError>> {
        self.value
            .as_deref()
            .map(|text| decode_value(text, self.encoding))
    }
}

/// One page of `GET /v1/kv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPage<'a> {
    /// Keys in byte order.
    pub items: Vec<ListItem<'a>>,
    /// The opaque cursor of the next page; `None` (JSON `null`) when the
    /// listing is complete.
    pub next: Option<String>,
}

/// Writes a [`ListPage`] item by item, so a server can stop at a byte
/// budget without holding the page twice. The bytes are those
/// `serde_json::to_vec(&ListPage { .. })` writes.
///
/// ```
/// use kvapi::{ListItem, PageWriter};
/// let mut page = PageWriter::new();
/// page.push(&ListItem::new("a", b"v", 1, None, false)).unwrap();
/// assert_eq!(
///     page.finish(None).unwrap(),
///     br#"{"items":[{"key":"a","version":1,"size":1}],"next":null}"#
/// );
/// ```
#[derive(Debug)]
pub struct PageWriter {
    body: Vec<u8>,
    items: usize,
}

impl PageWriter {
    /// An empty page.
    pub fn new() -> PageWriter {
        PageWriter {
            body: br#"{"items":["#.to_vec(),
            items: 0,
        }
    }

    /// The bytes written so far.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    /// Whether no item was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// The items pushed so far.
    pub fn items(&self) -> usize {
        self.items
    }

    /// Appends an item.
    pub fn push(&mut self, item: &ListItem<'_>) -> Result<(), serde_json::Error> {
        if self.items > 0 {
            self.body.push(b',');
        }
        serde_json::to_writer(&mut self.body, item)?;
        self.items += 1;
        Ok(())
    }

    /// Closes the page with the cursor of the next one.
    pub fn finish(mut self, next: Option<&str>) -> Result<Vec<u8>, serde_json::Error> {
        self.body.extend_from_slice(br#"],"next":"#);
        serde_json::to_writer(&mut self.body, &next)?;
        self.body.push(b'}');
        Ok(self.body)
    }
}

impl Default for PageWriter {
    fn default() -> PageWriter {
        PageWriter::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_answer_names_the_ttl_only_when_there_is_one() {
        let cases = [
            (
                Written::new("k", 1, true, None),
                r#"{"key":"k","version":1,"created":true}"#,
            ),
            (
                Written::new("k", 2, false, Some(Duration::from_micros(1_500_900))),
                r#"{"key":"k","version":2,"created":false,"ttl_ms":1500}"#,
            ),
        ];
        for (written, json) in cases {
            assert_eq!(serde_json::to_string(&written).unwrap(), json);
            assert_eq!(serde_json::from_str::<Written>(json).unwrap(), written);
        }
    }

    #[test]
    fn list_items_carry_values_only_when_asked() {
        let ttl = Some(Duration::from_millis(9));
        let cases = [
            (
                ListItem::new("a", b"text", 1, ttl, false),
                r#"{"key":"a","version":1,"size":4,"ttl_ms":9}"#,
            ),
            (
                ListItem::new("a", b"text", 1, None, true),
                r#"{"key":"a","version":1,"size":4,"value":"text"}"#,
            ),
            (
                ListItem::new("b", &[0xff], 2, ttl, true),
                r#"{"key":"b","version":2,"size":1,"ttl_ms":9,"value":"/w==","encoding":"base64"}"#,
            ),
        ];
        for (item, json) in cases {
            assert_eq!(serde_json::to_string(&item).unwrap(), json);
            assert_eq!(serde_json::from_str::<ListItem>(json).unwrap(), item);
        }
        let binary = ListItem::new("b", &[0xff], 2, None, true);
        assert_eq!(binary.value_bytes().unwrap().unwrap(), vec![0xff]);
    }

    #[test]
    fn the_page_writer_writes_what_serde_writes_for_the_page() {
        let items = [
            ListItem::new("a", b"x", 1, None, true),
            ListItem::new("b", &[0xff], 2, Some(Duration::from_millis(5)), true),
        ];
        for next in [None, Some("Yg")] {
            for count in 0..=items.len() {
                let mut writer = PageWriter::new();
                for item in &items[..count] {
                    writer.push(item).unwrap();
                }
                assert_eq!(writer.items(), count);
                let page = ListPage {
                    items: items[..count].to_vec(),
                    next: next.map(str::to_owned),
                };
                assert_eq!(
                    writer.finish(next).unwrap(),
                    serde_json::to_vec(&page).unwrap(),
                    "{count} items, next {next:?}"
                );
            }
        }
    }
}
