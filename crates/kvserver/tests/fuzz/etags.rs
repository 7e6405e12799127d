//! `If-Match` and `If-None-Match` of every shape on PUT, DELETE and GET.

use proptest::prelude::*;
use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};

use super::keys::value;
use super::{Answer, Fuzz};
use crate::test_app::{TestApp, v1_path};

/// One element of a generated `If-Match` / `If-None-Match` value; versions
/// are relative to the key's current one, known only at run time.
#[derive(Debug, Clone)]
enum TagPart {
    Any,
    Current,
    WeakCurrent,
    /// A strong tag of another version (current + n).
    Other(u64),
    PlusCurrent,
    ZeroCurrent,
    Unquoted,
    Huge(String),
    Junk(String),
}

impl TagPart {
    fn render(&self, version: u64) -> String {
        match self {
            TagPart::Any => "*".into(),
            TagPart::Current => format!("\"{version}\""),
            TagPart::WeakCurrent => format!("W/\"{version}\""),
            TagPart::Other(n) => format!("\"{}\"", version.saturating_add(*n)),
            TagPart::PlusCurrent => format!("\"+{version}\""),
            TagPart::ZeroCurrent => format!("\"0{version}\""),
            TagPart::Unquoted => version.to_string(),
            TagPart::Huge(digits) => format!("\"{digits}\""),
            TagPart::Junk(text) => text.clone(),
        }
    }
}

/// A conditional header: one or more lines of one or more parts.
fn tag_lines() -> impl Strategy<Value = Vec<(Vec<TagPart>, &'static str)>> {
    let part = prop_oneof![
        2 => Just(TagPart::Any),
        3 => Just(TagPart::Current),
        1 => Just(TagPart::WeakCurrent),
        1 => (1u64..3).prop_map(TagPart::Other),
        1 => Just(TagPart::PlusCurrent),
        1 => Just(TagPart::ZeroCurrent),
        1 => Just(TagPart::Unquoted),
        1 => "[0-9]{20,30}".prop_map(TagPart::Huge),
        2 => "[ -~\t]{0,8}".prop_map(TagPart::Junk),
    ];
    let line = (
        prop::collection::vec(part.clone(), 1..4),
        prop::sample::select(vec![", ", ",", " , ", ",,", " "]),
    );
    // One tag alone half the time, so writes succeed often enough to matter.
    prop_oneof![
        1 => part.prop_map(|part| vec![(vec![part], ",")]),
        1 => prop::collection::vec(line, 1..3),
    ]
}

/// The request a generated header goes on.
#[derive(Debug, Clone, Copy)]
enum Conditional {
    /// `PUT` with `If-Match`: compare-and-swap, or update only with `*`.
    PutIfMatch,
    /// `PUT` with `If-None-Match`: create only (the key always exists here).
    PutIfNoneMatch,
    /// `DELETE` with `If-Match`.
    DeleteIfMatch,
    /// `GET` with `If-Match`.
    GetIfMatch,
    /// `GET` with `If-None-Match`: a cache revalidating (304 or 200).
    Revalidate,
}

fn conditional() -> impl Strategy<Value = Conditional> {
    prop_oneof![
        3 => Just(Conditional::PutIfMatch),
        1 => Just(Conditional::PutIfNoneMatch),
        1 => Just(Conditional::DeleteIfMatch),
        1 => Just(Conditional::GetIfMatch),
        1 => Just(Conditional::Revalidate),
    ]
}

/// The key's value and version; `None` when absent.
async fn current(app: &TestApp, key: &str) -> Option<(Vec<u8>, u64)> {
    let got = Answer::of(app.request(Method::GET, &v1_path(key, ""))).await;
    if got.status == StatusCode::NOT_FOUND {
        return None;
    }
    assert_eq!(got.status, StatusCode::OK, "GET {key}");
    let tag = got.header("etag").expect("an ETag");
    let version = tag.trim_matches('"').parse().expect("ETag \"<version>\"");
    Some((got.body, version))
}

#[test]
fn a_conditional_request_succeeds_only_on_the_exact_strong_current_etag() {
    let fuzz = Fuzz::start(|_| {});
    let cases = (conditional(), tag_lines(), value());
    fuzz.check(256, cases, |app, (method, lines, new_value)| async move {
        let key = "etag";
        if current(app, key).await.is_none() {
            let put = Answer::of(app.request(Method::PUT, &v1_path(key, "")).body("first")).await;
            prop_assert!(put.status.is_success());
        }
        let (before, version) = current(app, key).await.expect("just written");
        let rendered: Vec<String> = lines
            .iter()
            .map(|(parts, separator)| {
                parts
                    .iter()
                    .map(|part| part.render(version))
                    .collect::<Vec<_>>()
                    .join(separator)
            })
            .collect();
        let Ok(values) = rendered
            .iter()
            .map(|line| HeaderValue::from_str(line))
            .collect::<Result<Vec<_>, _>>()
        else {
            return Ok(());
        };
        let whole = rendered.join(",");
        let strong = format!("\"{version}\"");
        // What the header holds, read generously: the success direction
        // only needs these as necessary conditions.
        let holds_strong = whole
            .match_indices(&strong)
            .any(|(at, _)| !whole[..at].ends_with("W/"));
        let holds_any_tag = whole.contains(&strong);
        let elements: Vec<&str> = whole
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        // `*` is a whole field value, not a list element: given twice (in
        // one line or two) it is a 400.
        let is_star = elements == ["*"];
        // Exactly `*`, or exactly the current strong tag: these must pass.
        let is_exact = whole.trim_matches([' ', ',']) == strong;
        let (request, header_name) = match method {
            Conditional::PutIfMatch => (
                app.request(Method::PUT, &v1_path(key, ""))
                    .body(new_value.clone()),
                "if-match",
            ),
            Conditional::PutIfNoneMatch => (
                app.request(Method::PUT, &v1_path(key, ""))
                    .body(new_value.clone()),
                "if-none-match",
            ),
            Conditional::DeleteIfMatch => {
                (app.request(Method::DELETE, &v1_path(key, "")), "if-match")
            }
            Conditional::GetIfMatch => (app.request(Method::GET, &v1_path(key, "")), "if-match"),
            Conditional::Revalidate => {
                (app.request(Method::GET, &v1_path(key, "")), "if-none-match")
            }
        };
        let request = values
            .into_iter()
            .fold(request, |request, value| request.header(header_name, value));
        let why = format!("{method:?} at version {version} with {header_name}: {rendered:?}");
        let answer = Answer::of(request).await;
        answer.no_server_error(&why)?;
        let after = current(app, key).await;
        match method {
            Conditional::PutIfMatch | Conditional::DeleteIfMatch => {
                let writes = answer.status.is_success();
                prop_assert!(
                    !writes || holds_strong || is_star,
                    "{}: succeeded with {}",
                    why,
                    answer.status
                );
                if is_exact || is_star {
                    prop_assert!(
                        writes,
                        "{}: must succeed, got {} {:?}",
                        why,
                        answer.status,
                        String::from_utf8_lossy(&answer.body)
                    );
                }
                if !writes {
                    prop_assert!(
                        [StatusCode::PRECONDITION_FAILED, StatusCode::BAD_REQUEST]
                            .contains(&answer.status),
                        "{}: refused with {}",
                        why,
                        answer.status
                    );
                    prop_assert_eq!(
                        after,
                        Some((before, version)),
                        "{}: a refused write changes nothing",
                        why
                    );
                } else if matches!(method, Conditional::PutIfMatch) {
                    let (stored, new_version) = after.expect("written");
                    prop_assert_eq!(stored, new_value, "{}: the new value is stored", why);
                    prop_assert_eq!(
                        answer.header("etag"),
                        Some(format!("\"{new_version}\"")),
                        "{}",
                        why
                    );
                } else {
                    prop_assert_eq!(after, None, "{}: deleted", why);
                }
            }
            Conditional::PutIfNoneMatch => {
                // The key exists, so no If-None-Match lets a write through.
                prop_assert!(
                    [StatusCode::PRECONDITION_FAILED, StatusCode::BAD_REQUEST]
                        .contains(&answer.status),
                    "{}: got {}",
                    why,
                    answer.status
                );
                prop_assert_eq!(
                    after,
                    Some((before, version)),
                    "{}: a refused write changes nothing",
                    why
                );
            }
            Conditional::GetIfMatch => {
                let ok = answer.status == StatusCode::OK;
                prop_assert!(!ok || holds_strong || is_star, "{}: served", why);
                if is_exact || is_star {
                    prop_assert!(ok, "{}: must be served, got {}", why, answer.status);
                }
                if ok {
                    prop_assert_eq!(&answer.body, &before, "{}", why);
                } else {
                    prop_assert!(
                        [StatusCode::PRECONDITION_FAILED, StatusCode::BAD_REQUEST]
                            .contains(&answer.status),
                        "{}: got {}",
                        why,
                        answer.status
                    );
                }
                prop_assert_eq!(
                    after,
                    Some((before, version)),
                    "{}: a GET changes nothing",
                    why
                );
            }
            Conditional::Revalidate => {
                let not_modified = answer.status == StatusCode::NOT_MODIFIED;
                prop_assert!(!not_modified || holds_any_tag || is_star, "{}: 304", why);
                if is_exact || is_star {
                    prop_assert!(not_modified, "{}: must be 304, got {}", why, answer.status);
                }
                prop_assert!(
                    [
                        StatusCode::OK,
                        StatusCode::NOT_MODIFIED,
                        StatusCode::BAD_REQUEST
                    ]
                    .contains(&answer.status),
                    "{}: got {}",
                    why,
                    answer.status
                );
                prop_assert_eq!(
                    after,
                    Some((before, version)),
                    "{}: a GET changes nothing",
                    why
                );
            }
        }
        Ok(())
    });
}
