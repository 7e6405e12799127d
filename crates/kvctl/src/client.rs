//! A typed, blocking client for kvserver's `/v1` API: one method per
//! operation, typed answers, and every HTTP failure translated into an
//! [`Error`] here and nowhere else.

use std::time::Duration;

use kvapi::url::{self, ListQuery};
pub use kvapi::{Condition, TtlChange};
use kvapi::{ErrorBody, ErrorCode, ListPage, Written};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header::HeaderMap;

pub use crate::config::{ClientConfig, Endpoint, Token, TokenOverHttp};
use crate::duration;
use crate::error::Error;

/// Everything but RFC 3986's unreserved characters is escaped in a key, `/`
/// included, so a key is always exactly one path segment.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The most keys the server returns in one page.
pub const MAX_PAGE: usize = kvapi::MAX_LIST_LIMIT;

/// A key's metadata, from the headers of a read (`ETag`, `Kv-Ttl-Ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The revision of the key's last write.
    pub version: u64,
    /// The time left until the key's deadline, if it has one.
    pub ttl: Option<Duration>,
}

/// A key's value and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The exact bytes.
    pub value: Vec<u8>,
    /// Version and deadline.
    pub meta: Meta,
}

/// A connection to one kvserver.
#[derive(Debug)]
pub struct Client {
    http: reqwest::blocking::Client,
    config: ClientConfig,
}

impl Client {
    /// Builds a client. Refuses a token that would cross the network in
    /// clear text (see [`TokenOverHttp`]) and reads the CA file now, so both
    /// are reported before any request.
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        config.check_token_transport()?;
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("kvctl/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_cert {
            let pem = std::fs::read(path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            let bad = |why: String| Error::Input(format!("--cacert {}: {why}", path.display()));
            let certificates =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| bad(err.to_string()))?;
            if certificates.is_empty() {
                return Err(bad("no PEM certificate found in the file".into()));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|err| Error::Input(root_cause(&err)))?;
        Ok(Client { http, config })
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.config.endpoint
    }

    /// Writes `value` under `key` when `condition` holds; the answer is
    /// the server's.
    pub fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: Condition,
        ttl: TtlChange,
    ) -> Result<Written<'static>, Error> {
        let mut request = self.http.put(self.key_url(key)?).body(value);
        if let Some(parameter) = ttl.query() {
            request = request.query(&[parameter]);
        }
        if let Some(header) = condition.header() {
            request = request.header(header.0, header.1);
        }
        let expected = match condition {
            Condition::Version(version) => Some(version),
            _ => None,
        };
        let response = self.send(request)?;
        if !matches!(response.status(), StatusCode::OK | StatusCode::CREATED) {
            return Err(self.failure(response, Some(key), expected));
        }
        self.json(response)
    }

    /// The key's value and metadata.
    pub fn get(&self, key: &str) -> Result<Entry, Error> {
        let response = self.send(self.http.get(self.key_url(key)?))?;
        if response.status() != StatusCode::OK {
            return Err(self.failure(response, Some(key), None));
        }
        let meta = self.meta(response.headers())?;
        let value = response.bytes().map_err(|err| self.transport(err))?;
        Ok(Entry {
            value: value.to_vec(),
            meta,
        })
    }

    /// The key's metadata, without its value.
    pub fn head(&self, key: &str) -> Result<Meta, Error> {
        let response = self.send(self.http.head(self.key_url(key)?))?;
        match response.status() {
            StatusCode::OK => self.meta(response.headers()),
            // A HEAD answer has no body to tell a missing key from a missing
            // route; on this path only keys can be missing.
            StatusCode::NOT_FOUND => Err(Error::NotFound { key: key.into() }),
            // Nor the server's sentence (401, 403, 503...): GET has it, and
            // a GET that fails carries no value either.
            _ => {
                let response = self.send(self.http.get(self.key_url(key)?))?;
                match response.status() {
                    StatusCode::OK => self.meta(response.headers()),
                    _ => Err(self.failure(response, Some(key), None)),
                }
            }
        }
    }

    /// Removes the key, only at `expected` version when given.
    pub fn remove(&self, key: &str, expected: Option<u64>) -> Result<(), Error> {
        let mut request = self.http.delete(self.key_url(key)?);
        if let Some(version) = expected {
            request = request.header(kvapi::IF_MATCH, kvapi::format_etag(version));
        }
        let response = self.send(request)?;
        if response.status() != StatusCode::NO_CONTENT {
            return Err(self.failure(response, Some(key), expected));
        }
        Ok(())
    }

    /// One page of the keys starting with `prefix`, after `cursor`. `limit`
    /// is at most [`MAX_PAGE`]; `values` asks for the values too (decode
    /// them with [`ListItem::value_bytes`](kvapi::ListItem::value_bytes)).
    pub fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
        values: bool,
    ) -> Result<ListPage<'static>, Error> {
        let query = ListQuery {
            prefix,
            cursor,
            limit,
            values,
        };
        let request = self
            .http
            .get(self.config.endpoint.url(url::KV))
            .query(&query.pairs());
        let response = self.send(request)?;
        if response.status() != StatusCode::OK {
            return Err(self.failure(response, None, None));
        }
        self.json(response)
    }

    /// Opens the change feed under `prefix` (`GET /v1/watch`), resuming
    /// after revision `after` (sent as `Last-Event-ID`) or from now; the
    /// answer is the event stream (Server-Sent Events). Reading it is
    /// bounded by `--timeout` per read, which the server's keep-alive
    /// comments keep from running out.
    pub fn watch(&self, prefix: &str, after: Option<u64>) -> Result<Response, Error> {
        let mut request = self.http.get(self.config.endpoint.url(url::WATCH));
        if !prefix.is_empty() {
            request = request.query(&[(url::PREFIX, prefix)]);
        }
        if let Some(after) = after {
            request = request.header(kvapi::LAST_EVENT_ID, after.to_string());
        }
        let response = self.send(request)?;
        if response.status() != StatusCode::OK {
            return Err(self.failure(response, None, None));
        }
        Ok(response)
    }

    /// Whether the server is alive (`GET /healthz`).
    pub fn health(&self) -> Result<(), Error> {
        let response = self.send(self.http.get(self.config.endpoint.url(url::HEALTHZ)))?;
        if response.status() != StatusCode::OK {
            return Err(self.failure(response, None, None));
        }
        Ok(())
    }

    fn key_url(&self, key: &str) -> Result<String, Error> {
        if key.is_empty() {
            return Err(Error::Usage("a key must not be empty".into()));
        }
        // URL parsers resolve `.` and `..` segments (escaped or not) before
        // the request leaves, so these two keys can't be named in a path.
        if key == "." || key == ".." {
            return Err(Error::Usage(format!(
                "key {key:?} can't be used over HTTP: URLs resolve it as a relative path"
            )));
        }
        let encoded = utf8_percent_encode(key, KEY);
        Ok(self
            .config
            .endpoint
            .url(&format!("{}{encoded}", url::KV_KEY_PREFIX)))
    }

    fn send(&self, mut request: RequestBuilder) -> Result<Response, Error> {
        if let Some(token) = &self.config.token {
            // reqwest marks the header sensitive, so it is never printed.
            request = request.bearer_auth(token.secret());
        }
        request.send().map_err(|err| self.transport(err))
    }

    /// A failure to talk to the server at all.
    fn transport(&self, err: reqwest::Error) -> Error {
        let endpoint = self.config.endpoint.to_string();
        if err.is_timeout() {
            Error::Timeout {
                endpoint,
                timeout: duration::format(self.config.timeout),
            }
        } else {
            let cause = match certificate_hint(&err) {
                Some(hint) => format!("{}; {hint}", root_cause(&err)),
                None => root_cause(&err),
            };
            Error::Unreachable { endpoint, cause }
        }
    }

    fn meta(&self, headers: &HeaderMap) -> Result<Meta, Error> {
        let version = headers
            .get(kvapi::ETAG)
            .and_then(|tag| tag.to_str().ok())
            .and_then(kvapi::parse_etag)
            .ok_or_else(|| self.unexpected("the answer has no ETag with the key's version"))?;
        let ttl = match headers.get(kvapi::TTL_MS) {
            None => None,
            Some(ms) => Some(
                ms.to_str()
                    .ok()
                    .and_then(|ms| ms.parse().ok())
                    .map(Duration::from_millis)
                    .ok_or_else(|| self.unexpected("the Kv-Ttl-Ms header is not a number"))?,
            ),
        };
        Ok(Meta { version, ttl })
    }

    fn json<T: serde::de::DeserializeOwned>(&self, response: Response) -> Result<T, Error> {
        let status = response.status();
        let bytes = response.bytes().map_err(|err| self.transport(err))?;
        serde_json::from_slice(&bytes).map_err(|err| Error::Server {
            endpoint: self.config.endpoint.to_string(),
            status: status_text(status),
            message: format!("the answer is not the JSON kvctl expects ({err})"),
        })
    }

    /// A successful answer kvctl can't make sense of.
    pub(crate) fn unexpected(&self, message: impl Into<String>) -> Error {
        Error::Server {
            endpoint: self.config.endpoint.to_string(),
            status: status_text(StatusCode::OK),
            message: message.into(),
        }
    }

    /// Translates an unsuccessful answer about `key` (written with `expected`
    /// version, if any) into an error. This is where HTTP statuses and the
    /// server's error codes get their meaning.
    fn failure(&self, response: Response, key: Option<&str>, expected: Option<u64>) -> Error {
        let status = response.status();
        let bytes = response.bytes().unwrap_or_default();
        let body = serde_json::from_slice::<ErrorBody>(&bytes).ok();
        let said = match &body {
            Some(body) => body.error.clone().into_owned(),
            // Not kvstore's error body (a proxy's, say): its sentence, if any.
            None => serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|json| json.get("error")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| "(no explanation in the answer)".into()),
        };
        let code = body.as_ref().map(|body| body.code);
        let body_key = body.as_ref().and_then(|body| body.key.clone());
        let current_version = body
            .as_ref()
            .and_then(|body| body.current_version.flatten());
        let shown = key.unwrap_or_default();
        match (status, code) {
            // A `not_found` without a key is a missing route: a wrong endpoint,
            // not a missing key.
            (_, Some(ErrorCode::NotFound)) if body_key.is_some() => Error::NotFound {
                key: body_key.unwrap_or_default().into_owned(),
            },
            (_, Some(ErrorCode::AlreadyExists)) => Error::ConditionFailed {
                message: match current_version {
                    Some(version) => format!("key {shown:?} already exists (version {version})"),
                    None => format!("key {shown:?} already exists"),
                },
            },
            (_, Some(ErrorCode::VersionMismatch)) => Error::ConditionFailed {
                message: match (current_version, expected) {
                    (Some(current), Some(expected)) => {
                        format!("key {shown:?} is at version {current}, not {expected}")
                    }
                    (None, Some(expected)) => {
                        format!("key {shown:?} does not exist, so it is not at version {expected}")
                    }
                    _ => format!("key {shown:?}: {said}"),
                },
            },
            (StatusCode::UNAUTHORIZED, _) => Error::Auth {
                message: format!(
                    "the server at {} wants a valid token (401 Unauthorized: {said}); pass --token or set KVCTL_TOKEN",
                    self.config.endpoint
                ),
            },
            (StatusCode::FORBIDDEN, _) => Error::Auth {
                message: format!("the token is not allowed to do this (403 Forbidden: {said})"),
            },
            (StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE, _) => {
                Error::Invalid { message: said }
            }
            _ => Error::Server {
                endpoint: self.config.endpoint.to_string(),
                status: status_text(status),
                message: said,
            },
        }
    }
}

/// A status as people read it: `500 Internal Server Error`.
fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// The innermost cause of an error: for a refused connection that is
/// "Connection refused (os error 111)", which says more than the layers
/// wrapped around it.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// What to do about a server certificate kvctl refused, if that is what
/// `err` comes down to. rustls' own words name the check, not the remedy.
fn certificate_hint(err: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    use rustls::CertificateError as Problem;
    let mut cause = Some(err);
    while let Some(err) = cause {
        if let Some(rustls::Error::InvalidCertificate(problem)) = err.downcast_ref() {
            return Some(match problem {
                Problem::UnknownIssuer => {
                    "the server's certificate is not signed by a CA kvctl trusts \
                     (for a private CA, pass its certificate with --cacert)"
                }
                Problem::NotValidForName | Problem::NotValidForNameContext { .. } => {
                    "the server's certificate is for another name: \
                     use one it names in --endpoint"
                }
                Problem::Expired | Problem::ExpiredContext { .. } => {
                    "the server's certificate has expired"
                }
                _ => "the server's certificate is not acceptable",
            });
        }
        // The TLS stream reports rustls' error inside io::Errors, whose
        // `source()` skips the error they wrap.
        cause = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as _),
            None => err.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_escaped_path_segment() {
        let client = Client::new(ClientConfig {
            endpoint: Endpoint::parse("http://h").unwrap(),
            token: None,
            timeout: Duration::from_secs(1),
            ca_cert: None,
            token_over_http: TokenOverHttp::LoopbackOnly,
        })
        .unwrap();
        let cases = [
            ("plain", "http://h/v1/kv/plain"),
            ("a/b", "http://h/v1/kv/a%2Fb"),
            ("sp ace?#%", "http://h/v1/kv/sp%20ace%3F%23%25"),
            ("é", "http://h/v1/kv/%C3%A9"),
            ("a.b-c_d~", "http://h/v1/kv/a.b-c_d~"),
            ("...", "http://h/v1/kv/..."),
        ];
        for (key, url) in cases {
            assert_eq!(client.key_url(key).unwrap(), url, "{key}");
        }
        for key in ["", ".", ".."] {
            assert!(
                matches!(client.key_url(key), Err(Error::Usage(_))),
                "{key:?}"
            );
        }
    }
}
