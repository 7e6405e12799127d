//! How to reach the server: where it is, the token, the timeout, and which
//! CAs to trust. Checked when the command line is parsed, and before the
//! first request.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

use crate::error::Error;

/// The server's base URL: `http` or `https`, no query, no trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    base: String,
    /// Plain `http` to a host that is not this machine: whatever is sent
    /// crosses the network in clear text.
    clear_text: bool,
}

impl Endpoint {
    /// Checks an endpoint given on the command line. The error never repeats
    /// a password the text may hold.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        const EXAMPLE: &str = "e.g. http://127.0.0.1:8080";
        let shown = without_userinfo(text);
        let url = reqwest::Url::parse(text)
            .map_err(|err| format!("{shown:?} is not a URL ({err}); {EXAMPLE}"))?;
        // reqwest would send `user:password@` as Basic auth, in clear text
        // over http; kvctl's only credential is the bearer token.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "{shown:?} must not hold a user name or password (user:password@): \
                 kvctl never sends Basic auth; give a token with KVCTL_TOKEN or --token"
            ));
        }
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "{shown:?} must start with http:// or https:// and name a host; {EXAMPLE}"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{shown:?} must not have a query or fragment; {EXAMPLE}"
            ));
        }
        Ok(Endpoint {
            base: url.as_str().trim_end_matches('/').to_owned(),
            clear_text: url.scheme() == "http" && !is_loopback(&url),
        })
    }

    /// The URL of `path` (which starts with `/`) on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Whether requests cross a network unencrypted: plain `http` to a host
    /// other than `localhost`, `127.0.0.0/8` or `::1`.
    pub fn is_clear_text(&self) -> bool {
        self.clear_text
    }
}

/// `text` with whatever stands before an `@` in its authority replaced by
/// `***`, so an error can show an endpoint without its password, even one
/// that does not parse as a URL.
fn without_userinfo(text: &str) -> String {
    let start = text.find("://").map_or(0, |scheme| scheme + 3);
    let authority_len = text[start..]
        .find(['/', '?', '#'])
        .unwrap_or(text.len() - start);
    match text[start..start + authority_len].rfind('@') {
        Some(at) => format!("{}***{}", &text[..start], &text[start + at..]),
        None => text.to_owned(),
    }
}

/// Whether the URL's host is this machine by its name or address alone,
/// without asking DNS: `localhost`, `127.0.0.0/8`, `::1`. Any other name
/// counts as remote, even one that happens to resolve to loopback.
fn is_loopback(url: &Url) -> bool {
    // The URL parser has lowercased names, normalised IPv4 forms such as
    // `127.1`, and put IPv6 addresses in brackets.
    let Some(host) = url.host_str() else {
        return false;
    };
    if let Some(ipv6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return ipv6.parse::<Ipv6Addr>().is_ok_and(|ip| {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|ip| ip.is_loopback())
        });
    }
    match host.parse::<Ipv4Addr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host == "localhost",
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base)
    }
}

/// A bearer token. Its `Debug` never shows it, so it can't leak into a log or
/// an error message by accident.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Checks a token given on the command line. It goes into an HTTP header,
    /// so it must be one line of printable ASCII: a line break (from a file
    /// read with CRLF, say) would end the header, and other control or
    /// non-ASCII characters cannot be carried reliably. The error says what
    /// is wrong and where, never the token.
    pub fn new(token: String) -> Result<Token, Error> {
        let bad = token
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_graphic() || *c == ' '));
        if let Some((index, c)) = bad {
            let what = match c {
                '\n' => "a line feed (\\n)",
                '\r' => "a carriage return (\\r)",
                '\t' => "a tab",
                c if c.is_control() => "a control character",
                _ => "a non-ASCII character",
            };
            return Err(Error::Usage(format!(
                "the token (from --token or KVCTL_TOKEN) has {what} at character {}: \
                 a token must be one line of printable ASCII",
                index + 1
            )));
        }
        Ok(Token(token))
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
    /// Whether the token may cross a network in clear text.
    pub token_over_http: TokenOverHttp,
}

/// Whether a token may be sent over plain `http` to a host that is not this
/// machine, where anyone on the network path can read it and use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenOverHttp {
    /// Only over `https`, or over `http` to loopback. The default.
    #[default]
    LoopbackOnly,
    /// Anywhere, in clear text (`--insecure`).
    Anywhere,
}

impl ClientConfig {
    /// Refuses, before anything is sent, a token that would cross the
    /// network in clear text without `--insecure`.
    pub fn check_token_transport(&self) -> Result<(), Error> {
        let exposed = self.token.is_some() && self.endpoint.is_clear_text();
        if exposed && self.token_over_http == TokenOverHttp::LoopbackOnly {
            return Err(Error::Usage(format!(
                "refusing to send the token over plain http to {}: anyone on the network could read it; \
                 use an https:// endpoint (with --cacert for a private CA), or pass --insecure to send it anyway",
                self.endpoint
            )));
        }
        Ok(())
    }
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
            (
                "http://u:pw@h",
                Err("\"http://***@h\" must not hold a user"),
                "userinfo",
            ),
            (
                "http://u@h/a@b",
                Err("\"http://***@h/a@b\" must not"),
                "an @ in the path",
            ),
            (
                "http://u:pw@h:99999",
                Err("\"http://***@h:99999\" is not"),
                "bad port",
            ),
        ];
        for (text, expected, why) in cases {
            match (Endpoint::parse(text), expected) {
                (Ok(endpoint), Ok(want)) => assert_eq!(endpoint.to_string(), want, "{why}"),
                (Err(err), Err(needle)) => assert!(err.contains(needle), "{why}: {err}"),
                (got, want) => panic!("{why}: {text} gave {got:?}, wanted {want:?}"),
            }
        }
    }

    fn config(endpoint: &str, token: Option<&str>, token_over_http: TokenOverHttp) -> ClientConfig {
        ClientConfig {
            endpoint: Endpoint::parse(endpoint).unwrap(),
            token: token.map(|token| Token::new(token.into()).unwrap()),
            timeout: Duration::from_secs(1),
            ca_cert: None,
            token_over_http,
        }
    }

    #[test]
    fn a_token_is_refused_over_plain_http_to_anything_but_loopback() {
        // Decisions only: nothing here connects anywhere.
        let loopback = [
            ("http://127.0.0.1:8080", "loopback address"),
            ("http://127.8.9.10:8080", "anywhere in 127/8"),
            ("http://localhost:8080", "localhost"),
            ("http://LOCALHOST:8080", "localhost in capitals"),
            ("http://[::1]:8080", "IPv6 loopback"),
            ("http://[::ffff:127.0.0.1]:8080", "IPv4-mapped loopback"),
            ("https://192.0.2.1:8443", "https"),
            ("https://kv.example", "https to a name"),
        ];
        for (endpoint, why) in loopback {
            let sent = config(endpoint, Some("s3cret"), TokenOverHttp::LoopbackOnly);
            assert!(sent.check_token_transport().is_ok(), "{why}: {endpoint}");
        }
        let remote = [
            ("http://192.0.2.1:8080", "another address"),
            ("http://10.0.0.5:8080", "a private address"),
            ("http://0.0.0.0:8080", "the unspecified address"),
            ("http://[2001:db8::1]:8080", "an IPv6 address"),
            ("http://kv.example:8080", "a host name"),
            (
                "http://localhost.example:8080",
                "a name starting with localhost",
            ),
        ];
        for (endpoint, why) in remote {
            let refused = config(endpoint, Some("s3cret"), TokenOverHttp::LoopbackOnly);
            match refused.check_token_transport() {
                Err(Error::Usage(message)) => {
                    assert!(message.contains(endpoint), "{why}: {message}");
                    assert!(message.contains("--insecure"), "{why}: {message}");
                    assert!(!message.contains("s3cret"), "{why}: {message}");
                }
                other => panic!("{why}: {endpoint} should be refused, got {other:?}"),
            }
            let insecure = config(endpoint, Some("s3cret"), TokenOverHttp::Anywhere);
            assert!(
                insecure.check_token_transport().is_ok(),
                "{why} with --insecure"
            );
            let no_token = config(endpoint, None, TokenOverHttp::LoopbackOnly);
            assert!(
                no_token.check_token_transport().is_ok(),
                "{why} without a token"
            );
        }
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let token = Token::new("s3cret".into()).unwrap();
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}
