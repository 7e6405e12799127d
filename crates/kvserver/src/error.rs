//! The one error type of the HTTP layer and its translation to responses.
//!
//! Every 4xx and 5xx leaves the server as
//! `{"error": "<sentence>", "code": "<code>", ...}`. Status codes are decided
//! here and nowhere else.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use kvapi::{ErrorBody, ErrorCode};

use crate::backend::BackendError;

/// An error that becomes an HTTP response.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The key is absent or expired.
    #[error("key {key:?} not found")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// A create found the key present.
    #[error("key {key:?} already exists")]
    AlreadyExists {
        /// The key.
        key: String,
        /// Its current version.
        current_version: u64,
        /// 412 for a `/v1` precondition, 409 for the seed API.
        status: StatusCode,
    },
    /// A conditional write or delete found another version.
    #[error("{message}")]
    VersionMismatch {
        /// The key.
        key: String,
        /// What the store said.
        message: String,
        /// The current version, if the key exists.
        current_version: Option<u64>,
    },
    /// A `/v1` `If-Match: *` found no key.
    #[error("key {key:?} does not exist, and If-Match requires it to")]
    PreconditionAbsent {
        /// The key.
        key: String,
    },
    /// The request is malformed; the message says how.
    #[error("{0}")]
    InvalidRequest(String),
    /// Something is over a configured limit.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    PayloadTooLarge {
        /// What was too large: `key`, `value`, `request body`.
        what: &'static str,
        /// Its size, or a lower bound when the body was cut off.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The route does not exist.
    #[error("no route for {method} {path}")]
    NoRoute {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
    },
    /// The route exists but not for this method.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
        /// The methods the path serves, for the `Allow` header.
        allow: &'static str,
    },
    /// The client took too long to send its body.
    #[error("the request body did not arrive within {seconds} s")]
    BodyTimeout {
        /// The configured bound.
        seconds: u64,
    },
    /// No token, or one the server does not know.
    #[error("{message}")]
    Unauthorized {
        /// What was wrong with the credentials (never the token itself).
        message: String,
    },
    /// The token lacks the permission.
    #[error("{message}")]
    Forbidden {
        /// Which permission was missing.
        message: String,
    },
    /// The store's memory bound leaves no room for the write.
    #[error(
        "the store is full: {used} of its {bound} bytes are used and the write needs {needed} more; delete keys, or raise --max-memory"
    )]
    InsufficientStorage {
        /// Bytes the write needed.
        needed: u64,
        /// Bytes held.
        used: u64,
        /// The bound.
        bound: u64,
    },
    /// A watch asked for changes the history no longer holds.
    #[error("{}", compacted_message(*requested, *oldest))]
    Compacted {
        /// The revision asked for.
        requested: u64,
        /// The oldest revision a watch can start from.
        oldest: u64,
    },
    /// Not ready to serve yet.
    #[error("the server is not ready yet")]
    Unavailable,
    /// Storage cannot be reached or cannot decide (an etcd cluster down or
    /// without quorum); the sentence says which. Retrying later may succeed.
    #[error("{0}")]
    StorageUnavailable(String),
    /// The disk failed under the store, which now refuses writes. The cause
    /// goes to the log only.
    #[error(
        "storage is failing and refuses writes; the operator must check the server's disk and restart it"
    )]
    StorageFailing(#[source] anyhow::Error),
    /// A failure that is the server's fault. The cause goes to the log only.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// Translates a store error about `key`. `exists_status` is the status a
    /// failed create gets (409 on the seed API, 412 for `/v1` preconditions).
    pub fn from_store(err: kvcore::Error, key: &str, exists_status: StatusCode) -> ApiError {
        use kvcore::Error as E;
        let key = key.to_owned();
        match err {
            E::EmptyKey => ApiError::InvalidRequest("key must not be empty".into()),
            E::KeyTooLarge { size, limit } => ApiError::PayloadTooLarge {
                what: "key",
                size,
                limit,
            },
            E::ValueTooLarge { size, limit } => ApiError::PayloadTooLarge {
                what: "value",
                size,
                limit,
            },
            E::InvalidTtl { .. } => ApiError::InvalidRequest(err.to_string()),
            E::NotFound => ApiError::NotFound { key },
            E::AlreadyExists { current_version } => ApiError::AlreadyExists {
                key,
                current_version,
                status: exists_status,
            },
            E::VersionMismatch { current, .. } => ApiError::VersionMismatch {
                key,
                message: err.to_string(),
                current_version: current,
            },
            E::MemoryFull {
                needed,
                used,
                bound,
            } => ApiError::InsufficientStorage {
                needed,
                used,
                bound,
            },
            E::Compacted { requested, oldest } => ApiError::Compacted { requested, oldest },
            E::StorageFailed | E::Closed | E::Io { .. } | E::Corrupt { .. } | E::Locked { .. } => {
                ApiError::StorageFailing(anyhow::Error::new(err))
            }
            other => ApiError::Internal(anyhow::Error::new(other)),
        }
    }

    /// Translates a backend error about `key`: the store's own answers as
    /// [`ApiError::from_store`] does, an unreachable cluster as 503.
    pub fn from_backend(err: BackendError, key: &str, exists_status: StatusCode) -> ApiError {
        match err {
            BackendError::Store(err) => ApiError::from_store(err, key, exists_status),
            BackendError::Unavailable(message) => ApiError::StorageUnavailable(message),
            BackendError::Internal(cause) => ApiError::Internal(cause),
        }
    }

    /// The machine-readable code of the JSON body.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::NotFound { .. } | ApiError::NoRoute { .. } => ErrorCode::NotFound,
            ApiError::PreconditionAbsent { .. } => ErrorCode::NotFound,
            ApiError::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            ApiError::VersionMismatch { .. } => ErrorCode::VersionMismatch,
            ApiError::InvalidRequest(_)
            | ApiError::MethodNotAllowed { .. }
            | ApiError::BodyTimeout { .. } => ErrorCode::InvalidRequest,
            ApiError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            ApiError::Unavailable
            | ApiError::StorageUnavailable(_)
            | ApiError::StorageFailing(_) => ErrorCode::Unavailable,
            ApiError::Unauthorized { .. } => ErrorCode::Unauthorized,
            ApiError::Forbidden { .. } => ErrorCode::Forbidden,
            ApiError::InsufficientStorage { .. } => ErrorCode::InsufficientStorage,
            ApiError::Compacted { .. } => ErrorCode::Compacted,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The JSON body: the sentence, the code, and the fields that help.
    pub fn body(&self) -> ErrorBody<'_> {
        let mut body = ErrorBody::new(self.to_string(), self.code());
        match self {
            ApiError::NotFound { key } | ApiError::PreconditionAbsent { key } => {
                body.key = Some(key.into());
            }
            ApiError::AlreadyExists {
                key,
                current_version,
                ..
            } => {
                body.key = Some(key.into());
                body.current_version = Some(Some(*current_version));
            }
            ApiError::VersionMismatch {
                key,
                current_version,
                ..
            } => {
                body.key = Some(key.into());
                body.current_version = Some(*current_version);
            }
            ApiError::PayloadTooLarge { limit, size, .. } => {
                body.limit = Some(*limit as u64);
                body.size = Some(*size as u64);
            }
            ApiError::InsufficientStorage {
                needed,
                used,
                bound,
            } => {
                body.limit = Some(*bound);
                body.size = Some(*needed);
                body.used = Some(*used);
            }
            ApiError::Compacted { oldest, .. } => {
                body.oldest_revision = Some(*oldest);
            }
            _ => {}
        }
        body
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound { .. } | ApiError::NoRoute { .. } => StatusCode::NOT_FOUND,
            ApiError::AlreadyExists { status, .. } => *status,
            ApiError::VersionMismatch { .. } | ApiError::PreconditionAbsent { .. } => {
                StatusCode::PRECONDITION_FAILED
            }
            ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable
            | ApiError::StorageUnavailable(_)
            | ApiError::StorageFailing(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::InsufficientStorage { .. } => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Compacted { .. } => StatusCode::GONE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::StorageFailing(cause) = self {
            log::error!("storage failure: {cause:#}");
        }
        if let ApiError::Internal(cause) = self {
            // The body stays opaque; the whole chain goes to the log.
            log::error!("internal error: {cause:#}");
        }
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized { .. }) {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let ApiError::MethodNotAllowed { allow, .. } = self {
            response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
        }
        if matches!(self, ApiError::BodyTimeout { .. }) {
            response.insert_header((header::CONNECTION, HeaderValue::from_static("close")));
        }
        response.json(self.body())
    }
}

/// Shorthand for a 400 with a message.
pub fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::InvalidRequest(message.into())
}

/// The sentence of a 410: the history dropped the changes asked for, or (a
/// revision at or past the oldest one kept, which the store would have
/// served) the store never reached that revision: it restarted without the
/// changes a client saw.
fn compacted_message(requested: u64, oldest: u64) -> String {
    let hint = format!("watch from revision {oldest} or later, or from now (no from)");
    if requested >= oldest {
        format!(
            "revision {requested} is past this server's latest: it restarted without the changes it had (in memory, or the last second of a crash), and the changes after that revision are no longer kept; {hint}"
        )
    } else {
        format!("the changes after revision {requested} are no longer kept; {hint}")
    }
}
