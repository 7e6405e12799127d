//! Query strings, read strictly: every route names the parameters it takes,
//! and anything else is a 400 rather than silently ignored.
//!
//! `web::Query` decodes with `form_urlencoded`, which turns bytes that are
//! not UTF-8 into U+FFFD: `?key=%FF` and `?key=%FE` would both address the
//! key "\u{FFFD}". Here such a parameter is refused, as a key in the path is.

use percent_encoding::percent_decode;

use crate::auth;
use crate::error::{ApiError, invalid};

/// A request's query parameters, each name at most once.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes `query` (`+` is a space, `%XX` a byte), refusing a name not
    /// in `allowed`, a name given twice, and a name or value that is not
    /// UTF-8 once decoded. A token-like name gets the token refusal.
    pub fn parse(query: &str, allowed: &[&str]) -> Result<Params, ApiError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name, "a query parameter's name")?;
            if auth::is_token_parameter(&name) {
                return Err(auth::token_in_query());
            }
            if !allowed.contains(&name.as_str()) {
                return Err(unknown(&name, allowed));
            }
            if pairs.iter().any(|(seen, _)| *seen == name) {
                return Err(invalid(format!(
                    "query parameter {name:?} is given more than once"
                )));
            }
            let value = decode(value, &format!("query parameter {name:?}"))?;
            pairs.push((name, value));
        }
        Ok(Params { pairs })
    }

    /// Parses the query string of `request`; see [`Params::parse`].
    pub fn of(request: &actix_web::HttpRequest, allowed: &[&str]) -> Result<Params, ApiError> {
        Params::parse(request.query_string(), allowed)
    }

    /// Takes a parameter's value out, if it was given.
    pub fn take(&mut self, name: &str) -> Option<String> {
        let at = self.pairs.iter().position(|(seen, _)| seen == name)?;
        Some(self.pairs.swap_remove(at).1)
    }
}

fn decode(raw: &str, what: &str) -> Result<String, ApiError> {
    let spaced = raw.replace('+', " ");
    percent_decode(spaced.as_bytes())
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| invalid(format!("{what} is not valid UTF-8 once percent-decoded")))
}

fn unknown(name: &str, allowed: &[&str]) -> ApiError {
    let takes = match allowed {
        [] => "this route takes no query parameters".to_owned(),
        names => format!(
            "this route takes only {}",
            names
                .iter()
                .map(|name| format!("{name:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    invalid(format!("unknown query parameter {name:?}: {takes}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_decoded_like_a_form() {
        let mut params = Params::parse("key=a%2Fb+c&x=%E2%82%AC&flag", &["key", "x", "flag"])
            .expect("a valid query");
        assert_eq!(params.take("key").as_deref(), Some("a/b c"));
        assert_eq!(params.take("x").as_deref(), Some("€"));
        assert_eq!(params.take("flag").as_deref(), Some(""));
        assert_eq!(params.take("key"), None, "taken once");
    }

    #[test]
    fn strange_queries_are_refused_with_a_reason() {
        let cases = [
            ("key=%FF", "not valid UTF-8", "a value that is not UTF-8"),
            ("k%FFey=a", "not valid UTF-8", "a name that is not UTF-8"),
            ("key=a&key=b", "more than once", "a name twice"),
            (
                "other=1",
                "unknown query parameter \"other\"",
                "an unknown name",
            ),
            ("Token=x", "not accepted in the query string", "a token"),
        ];
        for (query, needle, why) in cases {
            let err = Params::parse(query, &["key"]).expect_err(why).to_string();
            assert!(err.contains(needle), "{why}: {query} gave {err:?}");
        }
        let none = Params::parse("a=1", &[])
            .expect_err("no parameters")
            .to_string();
        assert!(none.contains("takes no query parameters"), "{none}");
    }
}
