//! Bearer tokens with permissions on key prefixes.
//!
//! The auth file holds one token per line: `NAME SHA256-HEX GRANT...`, where
//! a grant is `read:PREFIX`, `write:PREFIX` or `admin:PREFIX` (the prefix
//! percent-encoded, empty for every key). `#` starts a comment. Only the
//! SHA-256 of a token is stored; `kvserver token create` makes a token and
//! prints its line.
//!
//! For a key, the grant with the longest matching prefix decides: with
//! `write:app/ read:app/config/`, `app/x` is writable and `app/config/x`
//! only readable. Of several grants on the same prefix, the highest level
//! counts, whatever their order. `write` includes `read`; `admin` includes
//! both.

use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::error::ApiError;

/// What a grant allows, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Get, head and list.
    Read,
    /// Read, plus create, update and delete.
    Write,
    /// Everything, including `/metrics` and `/v1/info` with an empty prefix.
    Admin,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::Write => "write",
            Level::Admin => "admin",
        }
    }
}

/// A permission on every key that starts with `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// What is allowed.
    pub level: Level,
    /// Keys it covers; empty for all.
    pub prefix: String,
}

impl Grant {
    /// Reads `read:PREFIX`, `write:PREFIX` or `admin:PREFIX` (percent-encoded prefix).
    pub fn parse(text: &str) -> Result<Grant, String> {
        let (level, prefix) = text
            .split_once(':')
            .ok_or_else(|| format!("grant {text:?} is not LEVEL:PREFIX (e.g. write:app/)"))?;
        let level = match level {
            "read" => Level::Read,
            "write" => Level::Write,
            "admin" => Level::Admin,
            other => {
                return Err(format!(
                    "grant {text:?} has unknown level {other:?}: use read, write or admin"
                ));
            }
        };
        let prefix = percent_decode_str(prefix)
            .decode_utf8()
            .map_err(|_| format!("grant {text:?} has a prefix that is not UTF-8"))?
            .into_owned();
        Ok(Grant { level, prefix })
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Slashes stay readable; everything else unusual is encoded so the
        // line still splits on whitespace.
        let encoded = utf8_percent_encode(&self.prefix, NON_ALPHANUMERIC)
            .to_string()
            .replace("%2F", "/")
            .replace("%2D", "-")
            .replace("%5F", "_")
            .replace("%2E", ".");
        write!(f, "{}:{encoded}", self.level.name())
    }
}

/// One token of the auth file.
#[derive(Debug, Clone)]
pub struct Token {
    /// Who holds it (shown in errors, never the token itself).
    pub name: String,
    hash: [u8; 32],
    grants: Vec<Grant>,
}

impl Token {
    /// The level this token has on `key`: the longest matching grant's, and
    /// of several grants on that same prefix, the highest.
    pub fn level_on(&self, key: &str) -> Option<Level> {
        // Two matching prefixes of one length are the same prefix. Ranking
        // the level second makes a tie go to the higher level: `max_by_key`
        // alone would pick the last such grant, so line order would decide.
        self.grants
            .iter()
            .filter(|g| key.as_bytes().starts_with(g.prefix.as_bytes()))
            .max_by_key(|g| (g.prefix.len(), g.level))
            .map(|g| g.level)
    }

    /// Whether the token may read every key that starts with `prefix`: some
    /// grant covers the whole prefix (every level includes reading).
    pub fn may_list(&self, prefix: &str) -> bool {
        self.grants
            .iter()
            .any(|g| prefix.as_bytes().starts_with(g.prefix.as_bytes()))
    }
}

/// The tokens the server accepts.
#[derive(Debug, Clone)]
pub struct Tokens {
    tokens: Vec<Arc<Token>>,
}

impl Tokens {
    /// Loads an auth file, refusing one that group or others can read (they
    /// would learn the hashes) or write (they could add a token).
    pub fn load(path: &Path) -> anyhow::Result<Tokens> {
        let metadata = fs::metadata(path)
            .map_err(|err| anyhow::anyhow!("cannot read auth file {}: {err}", path.display()))?;
        let mode = metadata.permissions().mode();
        if mode & 0o066 != 0 {
            anyhow::bail!(
                "auth file {} is readable or writable by other users (mode {:o}); run: chmod 600 {}",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
        let text = fs::read_to_string(path)
            .map_err(|err| anyhow::anyhow!("cannot read auth file {}: {err}", path.display()))?;
        Tokens::parse(&text).map_err(|err| anyhow::anyhow!("auth file {}: {err}", path.display()))
    }

    /// Parses the auth file's text.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut tokens: Vec<Arc<Token>> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(name), Some(hash)) = (fields.next(), fields.next()) else {
                return Err(format!("line {line_no}: expected NAME SHA256-HEX GRANT..."));
            };
            let hash = parse_hash(hash)
                .ok_or_else(|| format!("line {line_no}: the hash must be 64 hex digits"))?;
            let grants = fields
                .map(Grant::parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| format!("line {line_no}: {err}"))?;
            if grants.is_empty() {
                return Err(format!("line {line_no}: token {name:?} has no grants"));
            }
            if tokens.iter().any(|t| t.name == name) {
                return Err(format!("line {line_no}: token name {name:?} is used twice"));
            }
            // One token with two lines would get whichever matched last.
            if let Some(other) = tokens.iter().find(|t| t.hash == hash) {
                return Err(format!(
                    "line {line_no}: token {name:?} has the same hash as token {:?}: one token, two entries",
                    other.name
                ));
            }
            tokens.push(Arc::new(Token {
                name: name.to_owned(),
                hash,
                grants,
            }));
        }
        if tokens.is_empty() {
            return Err("no tokens: every request would be refused".into());
        }
        Ok(Tokens { tokens })
    }

    /// The token whose hash matches. Every entry is compared, in constant
    /// time, so the time taken says nothing about which one matched.
    pub fn find(&self, presented: &str) -> Option<Arc<Token>> {
        let hash = sha256(presented);
        let mut found = None;
        for token in &self.tokens {
            if bool::from(token.hash.ct_eq(&hash)) {
                found = Some(token.clone());
            }
        }
        found
    }
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    // Hex digits only: `from_str_radix` alone would take a sign ("+9").
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(hash)
}

/// The SHA-256 of a token, as the auth file stores it.
fn sha256(token: &str) -> [u8; 32] {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    hash
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random token and its auth-file line.
pub fn create_token(name: &str, grants: &[Grant]) -> Result<(String, String), String> {
    if name.is_empty() || name.contains(char::is_whitespace) || name.contains('#') {
        return Err(format!(
            "token name {name:?} must be non-empty, without spaces or #"
        ));
    }
    if grants.is_empty() {
        return Err("give at least one --allow LEVEL:PREFIX".into());
    }
    let mut secret = [0u8; 32];
    // ring's error says nothing more than that it failed.
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| "no randomness available from the operating system".to_string())?;
    let token = format!("kvs_{}", URL_SAFE_NO_PAD.encode(secret));
    let hash = sha256(&token);
    let grants: Vec<String> = grants.iter().map(Grant::to_string).collect();
    let line = format!("{name} {} {}", hex(&hash), grants.join(" "));
    Ok((token, line))
}

/// Query parameters that look like a token. A token in a URL ends up in
/// logs, histories and proxies, so such requests are refused.
const TOKEN_PARAMETERS: &[&str] = &["token", "access_token", "api_key", "apikey", "auth"];

/// Whether a query parameter's name looks like a token (`token`, `access_token`,
/// `api_key`, `apikey`, `auth`), in any case.
pub fn is_token_parameter(name: &str) -> bool {
    TOKEN_PARAMETERS
        .iter()
        .any(|token| token.eq_ignore_ascii_case(name))
}

/// The 400 for a token in the query string.
pub fn token_in_query() -> ApiError {
    ApiError::InvalidRequest(
        "tokens are not accepted in the query string (URLs end up in logs); send Authorization: Bearer <token>".into(),
    )
}

/// Who is calling, as established from the `Authorization` header.
#[derive(Debug, Clone)]
pub enum Caller {
    /// Auth is not configured: everyone may do everything.
    Anyone,
    /// A token from the auth file.
    Token(Arc<Token>),
}

impl Caller {
    /// 403 unless the caller has `level` on `key`.
    pub fn require(&self, level: Level, key: &str) -> Result<(), ApiError> {
        match self {
            Caller::Anyone => Ok(()),
            Caller::Token(token) if token.level_on(key) >= Some(level) => Ok(()),
            Caller::Token(token) => Err(ApiError::Forbidden {
                message: format!(
                    "token {:?} may not {} key {key:?}",
                    token.name,
                    match level {
                        Level::Read => "read",
                        Level::Write => "write",
                        Level::Admin => "administer",
                    }
                ),
            }),
        }
    }

    /// 403 unless the caller may read every key under `prefix`.
    pub fn require_listing(&self, prefix: &str) -> Result<(), ApiError> {
        match self {
            Caller::Anyone => Ok(()),
            Caller::Token(token) if token.may_list(prefix) => Ok(()),
            Caller::Token(token) => Err(ApiError::Forbidden {
                message: format!(
                    "token {:?} may not list prefix {prefix:?}: it cannot read every key under it",
                    token.name
                ),
            }),
        }
    }

    /// 403 unless the caller is an administrator of the whole key space.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        self.require(Level::Admin, "")
            .map_err(|_| ApiError::Forbidden {
                message: "this endpoint needs a token with admin: on every key (an empty prefix)"
                    .into(),
            })
    }
}

impl Caller {
    /// Establishes the caller of `request`: 401 without a known token (when
    /// auth is on), 400 for a token in the query string.
    pub fn of(request: &HttpRequest) -> Result<Caller, ApiError> {
        identify(request)
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Caller, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(identify(request))
    }
}

fn identify(request: &HttpRequest) -> Result<Caller, ApiError> {
    // Both refusals hold with auth off too: a client that sends a token in
    // the URL should learn it at once, not when auth is turned on.
    let in_query = request
        .query_string()
        .split('&')
        .any(|pair| is_token_parameter(pair.split('=').next().unwrap_or_default()));
    if in_query {
        return Err(token_in_query());
    }
    let mut headers = request
        .headers()
        .get_all(actix_web::http::header::AUTHORIZATION);
    let header = headers.next();
    if headers.next().is_some() {
        return Err(ApiError::InvalidRequest(
            "send one Authorization header, not several".into(),
        ));
    }
    let tokens = request
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.tokens.clone());
    let Some(tokens) = tokens else {
        return Ok(Caller::Anyone);
    };
    let header = header.ok_or(ApiError::Unauthorized {
        message: "missing Authorization: Bearer <token> header".into(),
    })?;
    let presented = header
        .to_str()
        .ok()
        .and_then(bearer_token)
        .ok_or(ApiError::Unauthorized {
            message: "the Authorization header must be Bearer <token>".into(),
        })?;
    tokens
        .find(presented)
        .map(Caller::Token)
        .ok_or(ApiError::Unauthorized {
            message: "unknown token".into(),
        })
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is
/// case-insensitive (RFC 7235 section 2.1), and any run of spaces may
/// separate it from the token.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(grants: &[&str]) -> Token {
        Token {
            name: "t".into(),
            hash: [0; 32],
            grants: grants
                .iter()
                .map(|g| Grant::parse(g).expect("grant"))
                .collect(),
        }
    }

    #[test]
    fn the_most_specific_prefix_decides() {
        let t = token(&["write:app/", "read:app/config/", "admin:ops"]);
        let cases = [
            ("app/x", Some(Level::Write), "under app/"),
            (
                "app/config/x",
                Some(Level::Read),
                "the longer read grant wins",
            ),
            ("app", None, "app without the slash is not under app/"),
            ("app0", None, "a sibling of app/"),
            ("ops", Some(Level::Admin), "exact prefix"),
            ("ops/x", Some(Level::Admin), "under ops"),
            ("other", None, "no grant"),
        ];
        for (key, level, why) in cases {
            assert_eq!(t.level_on(key), level, "{why}: {key}");
        }
    }

    #[test]
    fn a_listing_needs_a_grant_covering_the_whole_prefix() {
        let t = token(&["read:app/"]);
        assert!(t.may_list("app/"));
        assert!(t.may_list("app/sub"));
        assert!(!t.may_list("app"), "app also matches app0");
        assert!(!t.may_list(""));
    }

    #[test]
    fn a_created_token_is_found_by_its_file_line() {
        let grants = [Grant::parse("write:my app/").expect("grant")];
        let (secret, line) = create_token("app", &grants).expect("token");
        let tokens = Tokens::parse(&line).expect("the printed line parses");
        let found = tokens.find(&secret).expect("the token matches");
        assert_eq!(found.name, "app");
        assert_eq!(found.level_on("my app/k"), Some(Level::Write));
        assert!(tokens.find("kvs_wrong").is_none());
        assert!(!line.contains(&secret), "only the hash is in the file");
    }

    #[test]
    fn bad_auth_files_say_which_line_is_wrong() {
        let hash = "a".repeat(64);
        let cases = [
            ("app".to_string(), "line 1"),
            (format!("app {hash}"), "no grants"),
            ("app abc write:x".to_string(), "64 hex"),
            (format!("app {hash} fly:x"), "unknown level"),
            (format!("a {hash} read:\na {hash} read:"), "used twice"),
            (format!("a {hash} read:\nb {hash} write:"), "same hash"),
            ("# only a comment".to_string(), "no tokens"),
        ];
        for (text, needle) in cases {
            let err = Tokens::parse(&text).expect_err(&text);
            assert!(err.contains(needle), "{text:?} gave {err:?}");
        }
    }
}
