//! How to reach the server: where it is, the token, the timeout, and which
//! CAs to trust. Checked when the command line is parsed.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The server's base URL: `http` or `https`, no query, no trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(String);

impl Endpoint {
    /// Checks an endpoint given on the command line.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        const EXAMPLE: &str = "e.g. http://127.0.0.1:8080";
        let url = reqwest::Url::parse(text)
            .map_err(|err| format!("{text:?} is not a URL ({err}); {EXAMPLE}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "{text:?} must start with http:// or https:// and name a host; {EXAMPLE}"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{text:?} must not have a query or fragment; {EXAMPLE}"
            ));
        }
        Ok(Endpoint(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// The URL of `path` (which starts with `/`) on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A bearer token. Its `Debug` never shows it, so it can't leak into a log or
/// an error message by accident.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Wraps a token.
    pub fn new(token: String) -> Token {
        Token(token)
    }

    /// The token itself, for the `Authorization` header only.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Where the server is.
    pub endpoint: Endpoint,
    /// Sent as `Authorization: Bearer` when present.
    pub token: Option<Token>,
    /// Bound on each request, from connecting to the last byte of the answer.
    pub timeout: Duration,
    /// A PEM file of extra CA certificates to trust for `https`.
    pub ca_cert: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_http_urls() {
        let cases = [
            (
                "http://127.0.0.1:8080",
                Ok("http://127.0.0.1:8080"),
                "plain",
            ),
            (
                "http://127.0.0.1:8080/",
                Ok("http://127.0.0.1:8080"),
                "trailing slash",
            ),
            (
                "https://kv.example/api/",
                Ok("https://kv.example/api"),
                "with a base path",
            ),
            ("127.0.0.1:8080", Err("http://"), "no scheme"),
            ("ftp://host", Err("http://"), "wrong scheme"),
            ("http://host/?a=b", Err("query"), "query"),
            ("not a url", Err("not a URL"), "garbage"),
        ];
        for (text, expected, why) in cases {
            match (Endpoint::parse(text), expected) {
                (Ok(endpoint), Ok(want)) => assert_eq!(endpoint.to_string(), want, "{why}"),
                (Err(err), Err(needle)) => assert!(err.contains(needle), "{why}: {err}"),
                (got, want) => panic!("{why}: {text} gave {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let token = Token::new("s3cret".into());
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}
