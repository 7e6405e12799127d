//! The URLs of the API: the paths kvserver serves and the names of their
//! query parameters. kvserver registers its routes with these same
//! literals (its OpenAPI tests read them from its source), and kvserver's
//! `wire_format` tests check these against `openapi.json`.

/// The seed API: `POST`, `GET`, `PUT` and `DELETE /store`.
pub const STORE: &str = "/store";

/// `GET /v1/kv`: a listing page.
pub const KV: &str = "/v1/kv";

/// `/v1/kv/{key}`: one key, the key percent-encoded after this prefix.
pub const KV_KEY_PREFIX: &str = "/v1/kv/";

/// `GET /v1/info`.
pub const INFO: &str = "/v1/info";

/// `GET /v1/watch`: the change feed, as Server-Sent Events.
pub const WATCH: &str = "/v1/watch";

/// `GET /healthz`: alive.
pub const HEALTHZ: &str = "/healthz";

/// `GET /readyz`: recovered and serving.
pub const READYZ: &str = "/readyz";

/// `?key=` of `GET` and `DELETE /store`.
pub const KEY: &str = "key";

/// `?ttl=` of a `/v1` write: a duration (see [`crate::ttl::parse_ttl`]).
pub const TTL: &str = "ttl";

/// `?persist=true` of a `/v1` write: remove the deadline.
pub const PERSIST: &str = "persist";

/// `?prefix=` of a listing.
pub const PREFIX: &str = "prefix";

/// `?cursor=` of a listing: the `next` of the page before.
pub const CURSOR: &str = "cursor";

/// `?limit=` of a listing (see [`DEFAULT_LIST_LIMIT`](crate::DEFAULT_LIST_LIMIT)).
pub const LIMIT: &str = "limit";

/// `?values=true` of a listing: include the values.
pub const VALUES: &str = "values";

/// `?from=` of a watch: the revision after which the events start.
pub const FROM: &str = "from";

/// The query of `GET /v1/kv`.
///
/// ```
/// use kvapi::url::ListQuery;
/// let query = ListQuery { prefix: "user/", cursor: None, limit: 100, values: true };
/// assert_eq!(
///     query.pairs(),
///     [("limit", "100".to_owned()), ("prefix", "user/".to_owned()), ("values", "true".to_owned())]
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListQuery<'a> {
    /// Only keys that start with this; empty for all (and then not sent).
    pub prefix: &'a str,
    /// The `next` of the page before, if any.
    pub cursor: Option<&'a str>,
    /// Most keys on the page, at most [`MAX_LIST_LIMIT`](crate::MAX_LIST_LIMIT).
    pub limit: usize,
    /// Whether to include each key's value.
    pub values: bool,
}

impl ListQuery<'_> {
    /// The query parameters, only those that say something.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![(LIMIT, self.limit.to_string())];
        if !self.prefix.is_empty() {
            pairs.push((PREFIX, self.prefix.to_owned()));
        }
        if let Some(cursor) = self.cursor {
            pairs.push((CURSOR, cursor.to_owned()));
        }
        if self.values {
            pairs.push((VALUES, "true".to_owned()));
        }
        pairs
    }
}
