//! Values in JSON: a value that is UTF-8 travels as a JSON string; any
//! other bytes travel as base64 with `"encoding": "base64"` beside them.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// How a value's bytes are written in its JSON string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Standard base64 with padding (RFC 4648 §4).
    Base64,
}

impl Encoding {
    /// The name on the wire: `"base64"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Base64 => "base64",
        }
    }

    /// The encoding named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Encoding> {
        match name {
            "base64" => Some(Encoding::Base64),
            _ => None,
        }
    }
}

/// A value as JSON carries it: the text itself when it is UTF-8 (borrowed,
/// no copy), otherwise base64 and [`Encoding::Base64`].
///
/// ```
/// use kvapi::{Encoding, encode_value};
/// assert_eq!(encode_value(b"hi"), ("hi".into(), None));
/// assert_eq!(encode_value(&[0xff, 0xfe]), ("//4=".into(), Some(Encoding::Base64)));
/// ```
pub fn encode_value(value: &[u8]) -> (Cow<'_, str>, Option<Encoding>) {
    match std::str::from_utf8(value) {
        Ok(text) => (Cow::Borrowed(text), None),
        Err(_) => (Cow::Owned(STANDARD.encode(value)), Some(Encoding::Base64)),
    }
}

/// The bytes of a value that JSON carried as `text` with `encoding`. The
/// error is base64's own, for the caller to name the key.
///
/// ```
/// use kvapi::{Encoding, decode_value};
/// assert_eq!(decode_value("//4=", Some(Encoding::Base64)).unwrap(), vec![0xff, 0xfe]);
/// assert_eq!(decode_value("hi", None).unwrap(), b"hi");
/// ```
pub fn decode_value(
    text: &str,
    encoding: Option<Encoding>,
) -> Result<Vec<u8>, base64::DecodeError> {
    match encoding {
        None => Ok(text.as_bytes().to_vec()),
        Some(Encoding::Base64) => STANDARD.decode(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_travels_as_itself_and_other_bytes_as_base64() {
        let cases: [(&[u8], &str, Option<Encoding>, &str); 4] = [
            (b"hello", "hello", None, "ASCII"),
            ("héllo".as_bytes(), "héllo", None, "UTF-8"),
            (b"", "", None, "empty"),
            (
                &[0, 159, 146, 150],
                "AJ+Slg==",
                Some(Encoding::Base64),
                "not UTF-8",
            ),
        ];
        for (bytes, text, encoding, why) in cases {
            let (encoded, got) = encode_value(bytes);
            assert_eq!((encoded.as_ref(), got), (text, encoding), "{why}");
            assert_eq!(
                decode_value(&encoded, got).unwrap(),
                bytes,
                "{why}: round trip"
            );
        }
    }

    #[test]
    fn the_encoding_is_named_base64_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&Encoding::Base64).unwrap(),
            "\"base64\""
        );
        assert_eq!(
            Encoding::from_name(Encoding::Base64.as_str()),
            Some(Encoding::Base64)
        );
        assert_eq!(Encoding::from_name("hex"), None);
        assert!(serde_json::from_str::<Encoding>("\"hex\"").is_err());
        assert!(decode_value("%%%", Some(Encoding::Base64)).is_err());
    }
}
