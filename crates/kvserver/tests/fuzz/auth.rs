//! The `Authorization` header against a server with two tokens, and auth
//! files of any text or bytes, parsed and loaded directly.

use kvserver::auth::{Grant, Tokens, create_token};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};

use super::keys::not_utf8;
use super::{Answer, Fuzz, run_cases};

/// Pieces of an `Authorization` header around one of two valid tokens.
#[derive(Debug, Clone)]
enum Credential {
    /// Scheme, separator, token `i` changed by `mangle`.
    Bearer(&'static str, &'static str, usize, Mangle),
    /// Any header text.
    Junk(String),
}

#[derive(Debug, Clone, Copy)]
enum Mangle {
    Exact,
    FlipLastChar,
    DropLastChar,
    AppendChar,
    Uppercase,
    TrailingSpace,
    Empty,
}

fn mangle(token: &str, how: Mangle) -> String {
    match how {
        Mangle::Exact => token.to_owned(),
        Mangle::FlipLastChar => {
            let last = if token.ends_with('A') { 'B' } else { 'A' };
            format!("{}{last}", &token[..token.len() - 1])
        }
        Mangle::DropLastChar => token[..token.len() - 1].to_owned(),
        Mangle::AppendChar => format!("{token}x"),
        Mangle::Uppercase => token.to_uppercase(),
        Mangle::TrailingSpace => format!("{token} "),
        Mangle::Empty => String::new(),
    }
}

fn credential() -> impl Strategy<Value = Credential> {
    let bearer = (
        prop::sample::select(vec![
            "Bearer", "Bearer", "bearer", "BEARER", "bEaReR", "Basic", "Token", "", "Bearer:",
            "Bearerx",
        ]),
        prop::sample::select(vec![" ", "  ", "\t", "", " \t"]),
        0usize..2,
        prop::sample::select(vec![
            Mangle::Exact,
            Mangle::Exact,
            Mangle::Exact,
            Mangle::FlipLastChar,
            Mangle::DropLastChar,
            Mangle::AppendChar,
            Mangle::Uppercase,
            Mangle::TrailingSpace,
            Mangle::Empty,
        ]),
    )
        .prop_map(|(scheme, separator, which, how)| {
            Credential::Bearer(scheme, separator, which, how)
        });
    prop_oneof![
        4 => bearer,
        1 => "[ -~\t]{0,40}".prop_map(Credential::Junk),
    ]
}

#[test]
fn only_bearer_and_a_listed_token_get_past_auth_whatever_the_header_says() {
    let (first, first_line) =
        create_token("first", &[Grant::parse("admin:").expect("grant")]).expect("token");
    let (second, second_line) =
        create_token("second", &[Grant::parse("admin:").expect("grant")]).expect("token");
    let tokens = Tokens::parse(&format!("{first_line}\n{second_line}\n")).expect("the file parses");
    let secrets = [first, second];
    let fuzz = Fuzz::start(|config| config.tokens = Some(tokens));
    // One header most of the time: that is the case that may get in.
    let headers = prop_oneof![
        3 => credential().prop_map(|credential| vec![credential]),
        1 => prop::collection::vec(credential(), 0..3),
    ];
    fuzz.check(192, headers, |app, credentials| {
        let secrets = secrets.clone();
        async move {
            let rendered: Vec<String> = credentials
                .iter()
                .map(|credential| match credential {
                    Credential::Bearer(scheme, separator, which, how) => {
                        format!("{scheme}{separator}{}", mangle(&secrets[*which], *how))
                    }
                    Credential::Junk(text) => text.clone(),
                })
                .collect();
            let Ok(values) = rendered
                .iter()
                .map(|text| HeaderValue::from_str(text))
                .collect::<Result<Vec<_>, _>>()
            else {
                return Ok(());
            };
            // What the contract lets in: one header, the Bearer scheme in
            // any case, then a listed token (surrounding spaces aside).
            let valid =
                match rendered.as_slice() {
                    [one] => one.trim_matches([' ', '\t']).split_once(' ').is_some_and(
                        |(scheme, token)| {
                            scheme.eq_ignore_ascii_case("bearer")
                                && secrets.iter().any(|secret| token.trim() == secret)
                        },
                    ),
                    _ => false,
                };
            let request = values
                .into_iter()
                .fold(app.request(Method::GET, "/v1/kv/k"), |request, value| {
                    request.header("authorization", value)
                });
            let why = format!("Authorization: {rendered:?}");
            let answer = Answer::of(request).await;
            if valid {
                prop_assert_eq!(
                    answer.status,
                    StatusCode::NOT_FOUND,
                    "{}: let in (and no key k)",
                    why
                );
            } else {
                answer.refusal(&why)?;
                prop_assert!(
                    [
                        StatusCode::UNAUTHORIZED,
                        StatusCode::BAD_REQUEST,
                        StatusCode::FORBIDDEN
                    ]
                    .contains(&answer.status),
                    "{}: got {}",
                    why,
                    answer.status
                );
                if answer.status == StatusCode::UNAUTHORIZED {
                    let challenge = answer.header("www-authenticate");
                    prop_assert_eq!(challenge.as_deref(), Some("Bearer"), "{}", why);
                }
            }
            Ok(())
        }
    });
}

/// A line of a generated auth file.
#[derive(Debug, Clone)]
enum FileLine {
    /// Name `n`, the hash of secret `s` written as `hash`, grants, comment.
    Token(usize, usize, HashForm, Vec<(String, bool)>, Option<String>),
    Comment(String),
    Blank(String),
    Junk(String),
}

#[derive(Debug, Clone, Copy)]
enum HashForm {
    Lower,
    Upper,
    Short,
    Long,
    NotHex,
    /// A `0` of the hex written as `+` (`0f` as `+f`): not a hex digit.
    /// Not generated for now: kvserver accepts it (bug, see
    /// `file_line`); put it back in `file_line` once that is fixed.
    #[allow(dead_code)]
    PlusSign,
}

const NAMES: &[&str] = &["app", "ci-bot", "ops", "é"];
const SECRETS: &[&str] = &["kvs_one", "kvs_two", "kvs_three"];

fn sha256_hex(secret: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, secret.as_bytes())
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn file_line() -> impl Strategy<Value = FileLine> {
    // Each grant with whether it is well-formed.
    let grant = prop_oneof![
        4 => prop::sample::select(vec!["read:", "write:app/", "admin:", "read:a%20b", "write:%C3%A9"])
            .prop_map(|grant| (grant.to_owned(), true)),
        1 => prop::sample::select(vec!["fly:x", "read", "read:%FF", ":x", "READ:x"])
            .prop_map(|grant| (grant.to_owned(), false)),
    ];
    let hash_form = prop::sample::select(vec![
        HashForm::Lower,
        HashForm::Lower,
        HashForm::Upper,
        HashForm::Short,
        HashForm::Long,
        HashForm::NotHex,
        HashForm::PlusSign,
    ]);
    prop_oneof![
        5 => (0..NAMES.len(), 0..SECRETS.len(), hash_form, prop::collection::vec(grant, 0..3), prop::option::of("#.{0,8}"))
            .prop_map(|(name, secret, form, grants, comment)| FileLine::Token(name, secret, form, grants, comment)),
        1 => "#.{0,12}".prop_map(FileLine::Comment),
        1 => "[ \t]{0,3}".prop_map(FileLine::Blank),
        1 => ".{0,30}".prop_map(FileLine::Junk),
    ]
}

fn render_line(line: &FileLine) -> String {
    match line {
        FileLine::Token(name, secret, form, grants, comment) => {
            let hex = sha256_hex(SECRETS[*secret]);
            let hash = match form {
                HashForm::Lower => hex,
                HashForm::Upper => hex.to_uppercase(),
                HashForm::Short => hex[1..].to_owned(),
                HashForm::Long => format!("{hex}0"),
                HashForm::NotHex => format!("g{}", &hex[1..]),
                HashForm::PlusSign => match (0..32).find(|i| hex[2 * i..].starts_with('0')) {
                    Some(i) => format!("{}+{}", &hex[..2 * i], &hex[2 * i + 1..]),
                    None => format!("+{}", &hex[1..]),
                },
            };
            let comment = comment.clone().unwrap_or_default();
            let grants: Vec<&str> = grants.iter().map(|(grant, _)| grant.as_str()).collect();
            format!("{} {hash} {} {comment}", NAMES[*name], grants.join(" "))
        }
        FileLine::Comment(text) | FileLine::Blank(text) | FileLine::Junk(text) => text.clone(),
    }
}

#[test]
fn any_auth_file_is_refused_with_a_reason_or_accepts_exactly_its_tokens() {
    let lines = prop::collection::vec(file_line(), 0..6);
    run_cases(512, lines, |lines| {
        let text: String = lines.iter().map(|line| render_line(line) + "\n").collect();
        let parsed = std::panic::catch_unwind(|| Tokens::parse(&text))
            .map_err(|_| TestCaseError::fail(format!("Tokens::parse panicked on {text:?}")))?;
        let listed: Vec<usize> = lines
            .iter()
            .filter_map(|line| match line {
                FileLine::Token(_, secret, _, _, _) => Some(*secret),
                _ => None,
            })
            .collect();
        // A file of well-formed token lines, each name and secret once, is
        // a file the server must accept.
        let token_lines_well_formed = lines.iter().all(|line| match line {
            FileLine::Token(_, _, form, grants, _) => {
                matches!(form, HashForm::Lower | HashForm::Upper)
                    && !grants.is_empty()
                    && grants.iter().all(|(_, valid)| *valid)
            }
            _ => true,
        });
        let well_formed = !listed.is_empty()
            && token_lines_well_formed
            && !lines.iter().any(|line| matches!(line, FileLine::Junk(_)))
            && {
                let tokens: Vec<_> = lines
                    .iter()
                    .filter_map(|line| match line {
                        FileLine::Token(name, secret, ..) => Some((*name, *secret)),
                        _ => None,
                    })
                    .collect();
                tokens.iter().enumerate().all(|(i, (name, secret))| {
                    tokens[..i].iter().all(|(n, s)| n != name && s != secret)
                })
            };
        match parsed {
            Ok(tokens) => {
                prop_assert!(token_lines_well_formed, "{:?} accepted", text);
                for (index, secret) in SECRETS.iter().enumerate() {
                    prop_assert_eq!(
                        tokens.find(secret).is_some(),
                        listed.contains(&index),
                        "{:?} in {:?}",
                        secret,
                        text
                    );
                }
                prop_assert!(tokens.find("kvs_unlisted").is_none(), "{:?}", text);
            }
            Err(reason) => {
                prop_assert!(!well_formed, "{:?} refused: {}", text, reason);
                prop_assert!(
                    reason.starts_with("line ") || reason.starts_with("no tokens"),
                    "{:?}: the reason names the line: {}",
                    text,
                    reason
                );
            }
        }
        Ok(())
    });
}

#[test]
fn any_auth_file_bytes_load_or_fail_with_a_message_naming_the_file() {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::temp_dir().join(format!("kvserver-fuzz-auth-{}", std::process::id()));
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80),
        (file_line(), not_utf8())
            .prop_map(|(line, bad)| [render_line(&line).into_bytes(), bad].concat()),
    ];
    run_cases(128, bytes, |bytes| {
        std::fs::write(&path, &bytes).expect("writing the file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
        match Tokens::load(&path) {
            Ok(tokens) => prop_assert!(tokens.find("kvs_unlisted").is_none()),
            Err(err) => prop_assert!(
                err.to_string().contains(&path.display().to_string()),
                "{:?}: {}",
                bytes,
                err
            ),
        }
        Ok(())
    });
    let _ = std::fs::remove_file(&path);
}
