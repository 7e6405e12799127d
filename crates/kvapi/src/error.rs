//! The body of every 4xx and 5xx answer:
//! `{"error": "<sentence>", "code": "<code>", ...fields that help}`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// The machine-readable kind of an error, `"code"` in its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The key (or the route) does not exist.
    NotFound,
    /// A create found the key present.
    AlreadyExists,
    /// A conditional write or delete found another version.
    VersionMismatch,
    /// The request is malformed; the sentence says how.
    InvalidRequest,
    /// A key, value or body is over a configured limit.
    PayloadTooLarge,
    /// No token, or one the server does not know.
    Unauthorized,
    /// The token lacks the permission.
    Forbidden,
    /// The server is not ready, or its storage refuses writes.
    Unavailable,
    /// A watch asked for history the server no longer holds.
    Compacted,
    /// A memory bound refuses the write.
    InsufficientStorage,
    /// The server's fault; the body says nothing more.
    Internal,
}

impl ErrorCode {
    /// Every code, in the order the product contract lists them.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::VersionMismatch,
        ErrorCode::InvalidRequest,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::Unavailable,
        ErrorCode::Compacted,
        ErrorCode::InsufficientStorage,
        ErrorCode::Internal,
    ];

    /// The code as it is written on the wire: `"not_found"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::VersionMismatch => "version_mismatch",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Compacted => "compacted",
            ErrorCode::InsufficientStorage => "insufficient_storage",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of an error. Fields after `code` are present only when
/// they help with this error, in this order.
///
/// ```
/// use kvapi::{ErrorBody, ErrorCode};
/// let body = ErrorBody {
///     key: Some("k".into()),
///     ..ErrorBody::new("key \"k\" not found", ErrorCode::NotFound)
/// };
/// assert_eq!(
///     serde_json::to_string(&body).unwrap(),
///     r#"{"error":"key \"k\" not found","code":"not_found","key":"k"}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody<'a> {
    /// A sentence a person understands.
    pub error: Cow<'a, str>,
    /// What kind of error it is.
    pub code: ErrorCode,
    /// The key the request was about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Cow<'a, str>>,
    /// On a failed condition, the key's current version: `Some(None)` (JSON
    /// `null`) when the key does not exist, `None` when the field is absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "present_or_null"
    )]
    pub current_version: Option<Option<u64>>,
    /// The configured limit that was exceeded, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// The size that exceeded it, in bytes (a lower bound when a body was
    /// cut off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// With `insufficient_storage`: the bytes the store holds (`limit` is
    /// its bound, `size` what the write needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
    /// On `compacted`, the oldest revision a watch can start from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_revision: Option<u64>,
}

impl<'a> ErrorBody<'a> {
    /// A body with only the sentence and the code.
    pub fn new(error: impl Into<Cow<'a, str>>, code: ErrorCode) -> ErrorBody<'a> {
        ErrorBody {
            error: error.into(),
            code,
            key: None,
            current_version: None,
            limit: None,
            size: None,
            used: None,
            oldest_revision: None,
        }
    }
}

/// `Option<Option<u64>>` as an optional field that may be `null`: a field
/// that is present reads as `Some`, whatever it holds.
mod present_or_null {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Option<u64>>, s: S) -> Result<S::Ok, S::Error> {
        // The absent case is skipped before this is called.
        value.flatten().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
        Option::<u64>::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_written_as_its_name() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()), "{code:?}");
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
    }

    #[test]
    fn helpful_fields_appear_only_when_set_and_in_a_fixed_order() {
        let cases = [
            (
                ErrorBody::new("bad", ErrorCode::InvalidRequest),
                r#"{"error":"bad","code":"invalid_request"}"#,
            ),
            (
                ErrorBody {
                    key: Some("k".into()),
                    current_version: Some(None),
                    ..ErrorBody::new("gone", ErrorCode::VersionMismatch)
                },
                r#"{"error":"gone","code":"version_mismatch","key":"k","current_version":null}"#,
            ),
            (
                ErrorBody {
                    key: Some("k".into()),
                    current_version: Some(Some(3)),
                    ..ErrorBody::new("there", ErrorCode::AlreadyExists)
                },
                r#"{"error":"there","code":"already_exists","key":"k","current_version":3}"#,
            ),
            (
                ErrorBody {
                    limit: Some(10),
                    size: Some(11),
                    ..ErrorBody::new("big", ErrorCode::PayloadTooLarge)
                },
                r#"{"error":"big","code":"payload_too_large","limit":10,"size":11}"#,
            ),
            (
                ErrorBody {
                    limit: Some(100),
                    size: Some(8),
                    used: Some(96),
                    ..ErrorBody::new("full", ErrorCode::InsufficientStorage)
                },
                r#"{"error":"full","code":"insufficient_storage","limit":100,"size":8,"used":96}"#,
            ),
        ];
        for (body, json) in cases {
            assert_eq!(serde_json::to_string(&body).unwrap(), json);
            let read: ErrorBody = serde_json::from_str(json).unwrap();
            assert_eq!(read, body, "{json} reads back, null included");
        }
    }
}
