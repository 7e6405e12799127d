//! What a `/v1` write asks for besides its value: a precondition, said in
//! `If-Match` / `If-None-Match`, and a change to the key's deadline, said
//! in the query (`ttl=`, `persist=true`). A client writes them with
//! [`Condition::header`] and [`TtlChange::query`]; the server reads them
//! with [`WriteCondition::from_tags`] and [`TtlChange::from_query`].

use std::time::Duration;

use crate::etag::{Tag, Tags, format_etag};
use crate::header::{IF_MATCH, IF_NONE_MATCH};
use crate::url;

/// When a write may happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Always (upsert): no header.
    Always,
    /// Only if the key is absent: `If-None-Match: *`.
    Absent,
    /// Only if the key is present: `If-Match: *`.
    Present,
    /// Only if the key is at this version: `If-Match: "<version>"`.
    Version(u64),
}

impl Condition {
    /// The header that says this condition; `None` for [`Condition::Always`].
    ///
    /// ```
    /// use kvapi::Condition;
    /// assert_eq!(Condition::Version(7).header(), Some(("If-Match", "\"7\"".to_owned())));
    /// assert_eq!(Condition::Always.header(), None);
    /// ```
    pub fn header(self) -> Option<(&'static str, String)> {
        match self {
            Condition::Always => None,
            Condition::Absent => Some((IF_NONE_MATCH, "*".to_owned())),
            Condition::Present => Some((IF_MATCH, "*".to_owned())),
            Condition::Version(version) => Some((IF_MATCH, format_etag(version))),
        }
    }
}

/// What a write's precondition headers ask for, as the server reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCondition {
    /// A condition the store checks.
    Checked(Condition),
    /// `If-Match` named a tag that matches no version (weak, or not one
    /// this server hands out): the write fails (412) whatever the key holds.
    Never(Tag),
}

impl WriteCondition {
    /// `If-Match` on a write or a delete: `*` or exactly one tag. `None`
    /// without the header. The error is a sentence for a 400.
    pub fn from_if_match(if_match: Option<Tags>) -> Result<Option<WriteCondition>, String> {
        Ok(match if_match {
            None => None,
            Some(Tags::Any) => Some(WriteCondition::Checked(Condition::Present)),
            Some(Tags::List(mut tags)) if tags.len() == 1 => {
                let tag = tags.remove(0);
                Some(match tag.version() {
                    Some(version) if !tag.weak => {
                        WriteCondition::Checked(Condition::Version(version))
                    }
                    _ => WriteCondition::Never(tag),
                })
            }
            Some(Tags::List(_)) => {
                return Err("If-Match on a write takes one version (or *), not a list; several If-Match headers are a list".into());
            }
        })
    }

    /// A write's condition from `If-None-Match: *`, `If-Match: *` or
    /// `If-Match: "<version>"` (no header: [`Condition::Always`]). The error
    /// is a sentence for a 400.
    ///
    /// ```
    /// use kvapi::{Condition, Tags, WriteCondition};
    /// let create = WriteCondition::from_tags(None, Some(Tags::Any));
    /// assert_eq!(create, Ok(WriteCondition::Checked(Condition::Absent)));
    /// assert!(WriteCondition::from_tags(Some(Tags::Any), Some(Tags::Any)).is_err());
    /// ```
    pub fn from_tags(
        if_match: Option<Tags>,
        if_none_match: Option<Tags>,
    ) -> Result<WriteCondition, String> {
        let if_match = WriteCondition::from_if_match(if_match)?;
        match (if_match, if_none_match) {
            (Some(_), Some(_)) => {
                Err("use either If-Match or If-None-Match on a write, not both".into())
            }
            (None, Some(Tags::Any)) => Ok(WriteCondition::Checked(Condition::Absent)),
            (None, Some(Tags::List(_))) => {
                Err("on a write, If-None-Match only accepts * (create only)".into())
            }
            (Some(condition), None) => Ok(condition),
            (None, None) => Ok(WriteCondition::Checked(Condition::Always)),
        }
    }
}

/// What a write does to the key's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TtlChange {
    /// Keep the current deadline, if any (no query parameter).
    #[default]
    Keep,
    /// Expire this long after the write (`ttl=`).
    Set(Duration),
    /// Remove the deadline (`persist=true`).
    Persist,
}

impl TtlChange {
    /// The query parameter that says this change; `None` for
    /// [`TtlChange::Keep`]. A TTL is sent in whole milliseconds (`1500ms`),
    /// the store's resolution, so what is sent is exact.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kvapi::TtlChange;
    /// let set = TtlChange::Set(Duration::from_millis(1500));
    /// assert_eq!(set.query(), Some(("ttl", "1500ms".to_owned())));
    /// assert_eq!(TtlChange::Persist.query(), Some(("persist", "true".to_owned())));
    /// ```
    pub fn query(self) -> Option<(&'static str, String)> {
        match self {
            TtlChange::Keep => None,
            TtlChange::Set(ttl) => Some((url::TTL, format!("{}ms", ttl.as_millis()))),
            TtlChange::Persist => Some((url::PERSIST, "true".to_owned())),
        }
    }

    /// Reads the `ttl` and `persist` query parameters of a write. The
    /// error is a sentence for a 400.
    pub fn from_query(ttl: Option<&str>, persist: Option<&str>) -> Result<TtlChange, String> {
        match (ttl, persist) {
            (Some(_), Some("true")) => Err("use either ttl= or persist=true, not both".into()),
            (Some(text), _) => crate::ttl::parse_ttl(text).map(TtlChange::Set),
            (None, Some("true")) => Ok(TtlChange::Persist),
            (None, None | Some("false")) => Ok(TtlChange::Keep),
            (None, Some(other)) => Err(format!("persist must be true or false, got {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_condition_reads_back_from_the_header_it_writes() {
        for condition in [
            Condition::Always,
            Condition::Absent,
            Condition::Present,
            Condition::Version(0),
            Condition::Version(46),
        ] {
            let (mut if_match, mut if_none_match) = (None, None);
            if let Some((name, value)) = condition.header() {
                let tags = Tags::parse(&value).unwrap();
                match name {
                    IF_MATCH => if_match = Some(tags),
                    _ => if_none_match = Some(tags),
                }
            }
            assert_eq!(
                WriteCondition::from_tags(if_match, if_none_match),
                Ok(WriteCondition::Checked(condition)),
                "{condition:?}"
            );
        }
    }

    #[test]
    fn tags_of_no_version_never_match_and_lists_are_refused() {
        let tags = |text: &str| Some(Tags::parse(text).unwrap());
        for text in ["W/\"4\"", "\"046\"", "\"x\""] {
            assert!(
                matches!(
                    WriteCondition::from_tags(tags(text), None),
                    Ok(WriteCondition::Never(_))
                ),
                "{text}"
            );
        }
        let cases = [
            (tags("\"1\", \"2\""), None, "not a list"),
            (tags("*"), tags("*"), "not both"),
            (None, tags("\"1\""), "only accepts *"),
        ];
        for (if_match, if_none_match, needle) in cases {
            let err = WriteCondition::from_tags(if_match, if_none_match).unwrap_err();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn every_ttl_change_reads_back_from_the_query_it_writes() {
        for change in [
            TtlChange::Keep,
            TtlChange::Persist,
            TtlChange::Set(Duration::from_millis(1)),
            TtlChange::Set(crate::MAX_TTL),
        ] {
            let (mut ttl, mut persist) = (None, None);
            match change.query() {
                Some(("ttl", text)) => ttl = Some(text),
                Some((_, text)) => persist = Some(text),
                None => {}
            }
            assert_eq!(
                TtlChange::from_query(ttl.as_deref(), persist.as_deref()),
                Ok(change)
            );
        }
        let cases = [
            (Some("5s"), Some("true"), "not both"),
            (None, Some("yes"), "true or false"),
            (Some("0"), None, "positive"),
        ];
        for (ttl, persist, needle) in cases {
            let err = TtlChange::from_query(ttl, persist).unwrap_err();
            assert!(err.contains(needle), "{needle}: {err}");
        }
        assert_eq!(
            TtlChange::from_query(None, Some("false")),
            Ok(TtlChange::Keep)
        );
    }
}
