//! ETags (`ETag: "<version>"`) and the conditional request headers of
//! RFC 9110 §13: `If-Match` and `If-None-Match`, read from every line of the
//! header, as one list.
//!
//! An ETag here is `"<version>"`. A tag is a version only when its opaque
//! text is the version's decimal digits exactly: `"+46"` and `"046"` are
//! well-formed tags, but of no version this server hands out, so they never
//! match. `If-Match` compares strongly, so a weak tag (`W/"46"`) never
//! matches it; `If-None-Match` compares weakly (RFC 9110 §8.8.3.2).

/// The ETag of a version: `"<version>"`, the decimal digits in quotes.
///
/// ```
/// assert_eq!(kvapi::format_etag(46), "\"46\"");
/// ```
pub fn format_etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// The version an `ETag` header names, if it is one this server could have
/// sent (`"46"`; also `W/"46"`, as a proxy may weaken it). `None` for
/// anything else.
///
/// ```
/// assert_eq!(kvapi::parse_etag("\"46\""), Some(46));
/// assert_eq!(kvapi::parse_etag(" W/\"46\" "), Some(46));
/// assert_eq!(kvapi::parse_etag("46"), None);
/// ```
pub fn parse_etag(text: &str) -> Option<u64> {
    match Tags::parse(text).ok()? {
        Tags::List(tags) if tags.len() == 1 => tags[0].version(),
        _ => None,
    }
}

/// One entity tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// `W/` was given.
    pub weak: bool,
    /// The opaque text between the quotes.
    pub opaque: String,
}

impl Tag {
    /// The version this tag names, if it is one this server could have sent.
    pub fn version(&self) -> Option<u64> {
        let text = self.opaque.as_str();
        let canonical = !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'));
        canonical.then(|| text.parse().ok()).flatten()
    }

    /// Strong comparison: both strong and the same version.
    pub fn strongly_matches(&self, version: u64) -> bool {
        !self.weak && self.version() == Some(version)
    }

    /// Weak comparison: the same version, weak or not.
    pub fn weakly_matches(&self, version: u64) -> bool {
        self.version() == Some(version)
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let weak = if self.weak { "W/" } else { "" };
        write!(f, "{weak}\"{}\"", self.opaque)
    }
}

/// The value of `If-Match` or `If-None-Match`: `*` or a list of tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tags {
    /// `*`: any current version.
    Any,
    /// One or more tags.
    List(Vec<Tag>),
}

impl Tags {
    /// Reads the lines of one header (`name`, e.g. [`IF_MATCH`](crate::IF_MATCH)) as one
    /// list, as RFC 9110 §5.3 says several lines mean. A line is `None`
    /// when it is not visible ASCII (an HTTP stack's `to_str()` failed).
    /// `Ok(None)` when there are no lines: the header is absent. The error
    /// says what is malformed, naming the header.
    ///
    /// ```
    /// use kvapi::{IF_MATCH, Tags};
    /// let tags = Tags::from_lines(IF_MATCH, [Some("\"1\""), Some("W/\"2\"")]);
    /// assert!(matches!(tags, Ok(Some(Tags::List(list))) if list.len() == 2));
    /// assert_eq!(Tags::from_lines(IF_MATCH, []), Ok(None));
    /// ```
    pub fn from_lines<'a>(
        name: &str,
        lines: impl IntoIterator<Item = Option<&'a str>>,
    ) -> Result<Option<Tags>, String> {
        let mut lines = lines.into_iter().peekable();
        if lines.peek().is_none() {
            return Ok(None);
        }
        let mut text = String::new();
        for line in lines {
            let line =
                line.ok_or_else(|| format!("{name} must be * or quoted entity tags like \"42\""))?;
            text.push_str(line);
            text.push(',');
        }
        Tags::parse(&text)
            .map(Some)
            .map_err(|err| format!("{name} must be * or quoted entity tags like \"42\": {err}"))
    }

    /// Parses `*` or `#entity-tag` (empty list elements are skipped, as
    /// RFC 9110 §5.6.1 asks of a recipient).
    pub fn parse(text: &str) -> Result<Tags, String> {
        let mut tags = Vec::new();
        let mut any = false;
        let mut rest = text;
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            if let Some(after) = rest.strip_prefix('*') {
                // `*` is the whole field value (RFC 9110 §13.1.1), not a
                // list element: a second one, in the same line or another
                // line of the header, is no more a valid field than `*, "1"`.
                if any {
                    return Err("* only once, and alone".into());
                }
                any = true;
                rest = after;
            } else {
                let (tag, after) = parse_tag(rest)?;
                tags.push(tag);
                rest = after;
            }
            rest = rest.trim_start_matches([' ', '\t']);
            if !rest.is_empty() && !rest.starts_with(',') {
                return Err(format!("unexpected text {rest}"));
            }
        }
        match (any, tags.is_empty()) {
            (true, true) => Ok(Tags::Any),
            (true, false) => Err("* cannot be combined with entity tags".into()),
            (false, true) => Err("no entity tag given".into()),
            (false, false) => Ok(Tags::List(tags)),
        }
    }
}

/// `[W/] DQUOTE *etagc DQUOTE` at the start of `text`, and what follows it.
/// etagc is %x21 / %x23-7E / obs-text: anything visible but `"`, so the
/// next quote closes the tag.
fn parse_tag(text: &str) -> Result<(Tag, &str), String> {
    let (weak, rest) = match text.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let shown = text.split(',').next().unwrap_or(text).trim();
    let inner = rest
        .strip_prefix('"')
        .ok_or_else(|| format!("{shown} is not quoted"))?;
    let close = inner
        .find('"')
        .ok_or_else(|| format!("{shown} has no closing quote"))?;
    let opaque = &inner[..close];
    let etagc = |c: char| c == '\x21' || ('\x23'..='\x7e').contains(&c) || !c.is_ascii();
    if !opaque.chars().all(etagc) {
        return Err(format!("{shown} holds a character an entity tag cannot"));
    }
    let tag = Tag {
        weak,
        opaque: opaque.to_owned(),
    };
    Ok((tag, &inner[close + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(weak: bool, opaque: &str) -> Tag {
        Tag {
            weak,
            opaque: opaque.into(),
        }
    }

    #[test]
    fn the_examples_of_rfc_9110_parse() {
        // RFC 9110 §13.1.1 and §13.1.2 examples.
        let cases = [
            ("\"xyzzy\"", Tags::List(vec![tag(false, "xyzzy")])),
            (
                "\"xyzzy\", \"r2d2xxxx\", \"c3piozzzz\"",
                Tags::List(vec![
                    tag(false, "xyzzy"),
                    tag(false, "r2d2xxxx"),
                    tag(false, "c3piozzzz"),
                ]),
            ),
            ("*", Tags::Any),
            (
                "W/\"xyzzy\", W/\"r2d2xxxx\"",
                Tags::List(vec![tag(true, "xyzzy"), tag(true, "r2d2xxxx")]),
            ),
            ("\"\"", Tags::List(vec![tag(false, "")])),
            ("\"a,b\"", Tags::List(vec![tag(false, "a,b")])),
            (
                " \"1\" ,, \"2\",",
                Tags::List(vec![tag(false, "1"), tag(false, "2")]),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Tags::parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn malformed_values_are_refused() {
        for text in [
            "42", "\"1", "W/42", "w/\"1\"", "\"a\"b", "\"a b\"", "*, \"1\"", "*, *", "", " , ",
        ] {
            assert!(Tags::parse(text).is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn only_the_canonical_decimal_is_a_version() {
        let cases = [
            ("46", Some(46)),
            ("0", Some(0)),
            ("+46", None),
            ("046", None),
            ("-1", None),
            ("4 6", None),
            ("", None),
            ("18446744073709551616", None),
            ("abc", None),
        ];
        for (opaque, version) in cases {
            assert_eq!(tag(false, opaque).version(), version, "{opaque:?}");
        }
    }

    #[test]
    fn weak_tags_match_only_weakly() {
        assert!(tag(false, "7").strongly_matches(7));
        assert!(
            !tag(true, "7").strongly_matches(7),
            "If-Match never matches W/"
        );
        assert!(tag(true, "7").weakly_matches(7));
        assert!(!tag(false, "07").weakly_matches(7));
    }

    #[test]
    fn an_etag_is_the_quoted_version_and_reads_back() {
        for version in [0, 1, 46, u64::MAX] {
            assert_eq!(
                parse_etag(&format_etag(version)),
                Some(version),
                "{version}"
            );
        }
        for text in ["46", "\"046\"", "\"1\", \"2\"", "*", "", "\"x\""] {
            assert_eq!(parse_etag(text), None, "{text:?}");
        }
    }

    #[test]
    fn header_lines_are_one_list_and_name_the_header_when_malformed() {
        assert_eq!(
            Tags::from_lines("If-Match", [Some("\"1\""), Some(" \"2\"")]),
            Ok(Some(Tags::List(vec![tag(false, "1"), tag(false, "2")])))
        );
        assert_eq!(Tags::from_lines("If-Match", []), Ok(None));
        let unreadable = Tags::from_lines("If-None-Match", [None]).unwrap_err();
        assert!(
            unreadable.starts_with("If-None-Match must be"),
            "{unreadable}"
        );
        let malformed = Tags::from_lines("If-Match", [Some("42")]).unwrap_err();
        assert!(malformed.starts_with("If-Match must be"), "{malformed}");
    }
}
