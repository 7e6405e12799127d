//! TTLs as `ttl=` in the query and as the seed API's JSON `ttl`, checked
//! against a reading of the contract written here, digit by digit.

use kvcore::MAX_TTL;
use proptest::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{Answer, Fuzz, encode};
use crate::test_app::v1_path;

/// The decimal digits of `digits * factor`.
fn times(digits: &str, factor: u128) -> String {
    let mut out = Vec::new();
    let mut carry: u128 = 0;
    for digit in digits.bytes().rev() {
        let product = u128::from(digit - b'0') * factor + carry;
        out.push(b'0' + (product % 10) as u8);
        carry = product / 10;
    }
    while carry > 0 {
        out.push(b'0' + (carry % 10) as u8);
        carry /= 10;
    }
    out.reverse();
    String::from_utf8(out).expect("digits")
}

/// The whole nanoseconds of `digits * 10^shift * unit_ns` (digits below a
/// nanosecond dropped, as kvserver documents), saturating at `u128::MAX`.
fn nanos_of(digits: &str, shift: i128, unit_ns: u128) -> u128 {
    let scaled = times(digits, unit_ns);
    let significant = scaled.trim_start_matches('0');
    if significant.is_empty() {
        return 0;
    }
    let length = significant.len() as i128 + shift;
    if length > 30 {
        return u128::MAX;
    }
    if length <= 0 {
        return 0;
    }
    let whole: String = if shift >= 0 {
        format!("{significant}{}", "0".repeat(shift as usize))
    } else {
        significant[..length as usize].to_owned()
    };
    whole.parse().expect("at most 30 digits")
}

/// What a query `ttl=` means, in nanoseconds: surrounding whitespace
/// ignored, an optional `+`, decimal digits with an optional point, and a
/// unit (`ms`, `s`, `m`, `h`, `d`, or none for seconds). `None` when the
/// text is not a duration or is negative.
fn query_ttl_nanos(text: &str) -> Option<u128> {
    let text = text.trim();
    let text = text.strip_prefix('+').unwrap_or(text);
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_ns: u128 = match unit {
        "" | "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => return None,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    Some(nanos_of(
        &format!("{whole}{fraction}"),
        -(fraction.len() as i128),
        unit_ns,
    ))
}

/// What a JSON `ttl` number means, in nanoseconds; `None` when the text is
/// not a JSON number or is negative (`-0` included).
fn json_ttl_nanos(text: &str) -> Option<u128> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, "0"),
    };
    if mantissa.starts_with('-') {
        return None;
    }
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let json_whole = whole == "0" || (digits(whole) && !whole.starts_with('0'));
    let json_fraction = !mantissa.contains('.') || digits(fraction);
    let unsigned = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    if !json_whole || !json_fraction || !digits(unsigned) {
        return None;
    }
    let exponent: i128 = exponent
        .strip_prefix('+')
        .unwrap_or(exponent)
        .parse()
        .ok()?;
    Some(nanos_of(
        &format!("{whole}{fraction}"),
        exponent - fraction.len() as i128 + 9,
        1,
    ))
}

/// The `ttl_ms` a TTL of `nanos` shows right after the write, or `None`
/// when it is outside 1 ms ..= 10 years and must be refused.
fn expected_ttl_ms(nanos: Option<u128>) -> Option<u128> {
    nanos
        .filter(|&nanos| (1_000_000..=MAX_TTL.as_nanos()).contains(&nanos))
        .map(|nanos| nanos / 1_000_000)
}

/// Text a client might put in `ttl=`: numbers with signs, points, units and
/// spaces, and anything at all.
fn query_ttl() -> impl Strategy<Value = String> {
    let structured = (
        prop::sample::select(vec!["", " ", "\t", "+", "-", "\u{3000}"]),
        "[0-9]{0,20}",
        prop::option::of("\\.[0-9]{0,24}"),
        prop::sample::select(vec![
            "", "ms", "s", "m", "h", "d", "S", "MS", "y", "us", "e3", "sec", " s", "ms ",
        ]),
    )
        .prop_map(|(before, whole, fraction, unit)| {
            format!("{before}{whole}{}{unit}", fraction.unwrap_or_default())
        });
    prop_oneof![
        4 => structured,
        1 => "[0-9]{1,4}(\\.[0-9]{1,4})?(ms|s|m|h|d)",
        1 => ".{0,10}",
        1 => prop::sample::select(vec![
            "315576000", "315576000.001", "315576000000ms", "315576000001ms", "3652.5d",
            "87660h", "0.001", "0.0009999", "1ms", "0.5ms", "1.5ms", "NaN", "inf", "1e3", "",
        ]).prop_map(str::to_owned),
    ]
}

/// Text a client might write as the JSON `ttl`: numbers of every JSON
/// shape, numbers JSON forbids, and other JSON types.
pub(super) fn json_ttl() -> impl Strategy<Value = String> {
    let number = (
        prop::sample::select(vec!["", "-"]),
        "0|[1-9][0-9]{0,18}",
        prop::option::of("\\.[0-9]{1,20}"),
        prop::option::of((
            prop::sample::select(vec!["e", "E"]),
            prop::sample::select(vec!["", "+", "-"]),
            0u32..25,
        )),
    )
        .prop_map(|(sign, whole, fraction, exponent)| {
            let exponent = exponent.map_or(String::new(), |(e, sign, n)| format!("{e}{sign}{n}"));
            format!("{sign}{whole}{}{exponent}", fraction.unwrap_or_default())
        });
    prop_oneof![
        4 => number,
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f).to_string()),
        1 => "[-+]?[0-9]{0,3}\\.?[0-9]{0,3}([eE][-+]?[0-9]{0,3})?",
        1 => prop::sample::select(vec![
            "\"5\"", "true", "[]", "{}", "[1]", "\"\"", "1e400", "315576000", "315576000.001",
            "315576000.0000000001", "0.001", "0.0009999999", "1E-3", "-0", "0e9", "00", "1.",
            ".5", "+1", "0x10", "Infinity", "NaN",
        ]).prop_map(str::to_owned),
    ]
}

#[test]
fn a_query_ttl_is_refused_or_kept_exactly_to_the_millisecond() {
    let fuzz = Fuzz::start(|_| {});
    fuzz.check(256, query_ttl(), |app, text| async move {
        let why = format!("ttl={text:?}");
        let put = Answer::of(
            app.request(
                Method::PUT,
                &v1_path("ttl", &format!("?ttl={}", encode(&text))),
            )
            .body("v"),
        )
        .await;
        let Some(ms) = expected_ttl_ms(query_ttl_nanos(&text)) else {
            return put.refusal(&why);
        };
        prop_assert!(
            put.status.is_success(),
            "{}: {} {:?}",
            why,
            put.status,
            String::from_utf8_lossy(&put.body)
        );
        prop_assert_eq!(
            put.json(&why)?["ttl_ms"].as_u64().map(u128::from),
            Some(ms),
            "{}: ttl_ms of the PUT",
            why
        );
        let got = Answer::of(app.request(Method::GET, &v1_path("ttl", ""))).await;
        prop_assert_eq!(
            got.header("kv-ttl-ms"),
            Some(ms.to_string()),
            "{}: Kv-Ttl-Ms",
            why
        );
        Ok(())
    });
}

#[test]
fn a_json_ttl_is_refused_or_kept_exactly_to_the_millisecond() {
    let fuzz = Fuzz::start(|_| {});
    fuzz.system.block_on(async {
        let created = Answer::of(
            fuzz.app
                .request(Method::POST, "/store")
                .body(r#"{"key":"ttl","value":"v"}"#),
        )
        .await;
        assert_eq!(created.status, StatusCode::CREATED);
    });
    fuzz.check(
        256,
        (json_ttl(), any::<bool>()),
        |app, (text, create)| async move {
            let why = format!("\"ttl\": {text}");
            // A create needs a fresh key; an update the existing one.
            let (method, key) = if create {
                (Method::POST, format!("ttl {text}"))
            } else {
                (Method::PUT, "ttl".to_owned())
            };
            let body = format!(r#"{{"key":{},"value":"v","ttl":{text}}}"#, json!(key));
            let written = Answer::of(app.request(method.clone(), "/store").body(body)).await;
            let expected = if text == "null" {
                None
            } else {
                match expected_ttl_ms(json_ttl_nanos(&text)) {
                    Some(ms) => Some(ms),
                    None => return written.refusal(&why),
                }
            };
            if create && written.status == StatusCode::CONFLICT {
                // The same text came up twice: the key exists already.
                return written.refusal(&why);
            }
            prop_assert!(
                written.status.is_success(),
                "{} {}: {} {:?}",
                method,
                why,
                written.status,
                String::from_utf8_lossy(&written.body)
            );
            let entry = written.json(&why)?;
            prop_assert_eq!(
                entry["ttl_ms"].as_u64().map(u128::from),
                expected,
                "{}: ttl_ms of the write",
                why
            );
            let got =
                Answer::of(app.request(Method::GET, &format!("/store?key={}", encode(&key)))).await;
            prop_assert_eq!(
                got.json(&why)?["ttl_ms"].as_u64().map(u128::from),
                expected,
                "{}: ttl_ms read back",
                why
            );
            Ok(())
        },
    );
}

#[test]
fn the_ttl_references_read_what_the_contract_means() {
    // The properties above are only as good as these two readings.
    let query = [
        ("1500ms", Some(1_500_000_000)),
        (" +0.5s ", Some(500_000_000)),
        (".5", Some(500_000_000)),
        ("7d", Some(604_800_000_000_000)),
        ("0.0000000001d", Some(8_640)),
        ("-1s", None),
        ("1e3", None),
        ("1.2.3", None),
        (".", None),
        ("5 s", None),
    ];
    for (text, nanos) in query {
        assert_eq!(query_ttl_nanos(text), nanos, "ttl={text}");
    }
    let json = [
        ("0.5", Some(500_000_000)),
        ("15E-1", Some(1_500_000_000)),
        ("1e-10", Some(0)),
        ("315576000.0000000001", Some(315_576_000_000_000_000)),
        ("1e30", Some(u128::MAX)),
        ("-0", None),
        ("01", None),
        ("1.", None),
        (".5", None),
        ("+1", None),
        ("1e", None),
    ];
    for (text, nanos) in json {
        assert_eq!(json_ttl_nanos(text), nanos, "\"ttl\": {text}");
    }
}
