//! TTLs as clients write them: seconds in JSON (`0.5`), or a duration with a
//! unit in a query string (`1500ms`, `30s`, `5m`, `2h`, `7d`).

use std::time::Duration;

use kvcore::{MAX_TTL, MIN_TTL};

/// Reads a TTL given as a JSON number of seconds (decimals and exponents
/// allowed), from the number's text: exactly, with no float in between, so
/// `315360000.001` is that many milliseconds, not one fewer.
pub fn from_seconds(number: &str) -> Result<Duration, String> {
    let not_positive = || format!("ttl must be a positive number of seconds, got {number}");
    let too_long = || format!("ttl of {number} s is longer than the maximum of 10 years");
    let (negative, text) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, "0"),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let exponent: i64 = exponent
        .strip_prefix('+')
        .unwrap_or(exponent)
        .parse()
        .map_err(|_| format!("ttl {number} is not a number"))?;
    let digits = format!("{whole}{fraction}");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("ttl {number} is not a number"));
    }
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() || negative {
        return Err(not_positive());
    }
    // value = significant * 10^scale seconds; in nanoseconds, 10^(scale + 9).
    let scale = exponent.saturating_sub(fraction.len() as i64) + 9;
    // Ten years are under 10^18 ns: more digits than that above the
    // nanosecond are too long, whatever they are.
    if significant.len() as i64 + scale > 19 {
        return Err(too_long());
    }
    let nanos: u128 = if scale >= 0 {
        let value: u128 = significant.parse().map_err(|_| too_long())?;
        value * 10u128.pow(scale as u32)
    } else {
        // Digits below a nanosecond are dropped.
        let kept = significant.len() as i64 + scale;
        if kept <= 0 {
            0
        } else {
            significant[..kept as usize]
                .parse()
                .map_err(|_| too_long())?
        }
    };
    let ttl = Duration::new(
        (nanos / 1_000_000_000) as u64,
        (nanos % 1_000_000_000) as u32,
    );
    if ttl > MAX_TTL {
        return Err(too_long());
    }
    within_range(ttl, number)
}

/// Reads a TTL from a query parameter: a plain number is seconds; `ms`, `s`,
/// `m`, `h` and `d` are units.
pub fn from_query(text: &str) -> Result<Duration, String> {
    let ttl = kvcore::parse_duration(text).map_err(|err| format!("ttl {err}"))?;
    within_range(ttl, text.trim())
}

fn within_range(ttl: Duration, shown: &str) -> Result<Duration, String> {
    if ttl < MIN_TTL {
        return Err(format!("ttl {shown} is shorter than the minimum of 1 ms"));
    }
    if ttl > MAX_TTL {
        return Err(format!(
            "ttl {shown} is longer than the maximum of 10 years"
        ));
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_ttls_read_their_units() {
        let cases = [
            ("1500ms", Duration::from_millis(1500), "milliseconds"),
            ("30s", Duration::from_secs(30), "seconds with unit"),
            ("30", Duration::from_secs(30), "bare number is seconds"),
            ("0.5", Duration::from_millis(500), "decimal seconds"),
            ("5m", Duration::from_secs(300), "minutes"),
            ("2h", Duration::from_secs(7200), "hours"),
            ("7d", Duration::from_secs(7 * 86400), "days"),
            (
                "315360000001ms",
                Duration::from_millis(315_360_000_001),
                "exact to the millisecond",
            ),
            ("315576000000ms", MAX_TTL, "the maximum, exactly"),
        ];
        for (text, expected, why) in cases {
            assert_eq!(from_query(text), Ok(expected), "{why}: {text}");
        }
    }

    #[test]
    fn bad_query_ttls_are_refused_with_a_reason() {
        let cases = [
            ("0", "positive", "zero"),
            ("-1", "positive", "negative"),
            ("abc", "unknown unit", "no number"),
            ("10y", "unknown unit", "unknown unit"),
            ("s", "not a number", "unit without number"),
            ("0.1ms", "minimum", "under a millisecond"),
            ("4000d", "maximum", "over ten years"),
            ("315576000001ms", "maximum", "ten years and a millisecond"),
            ("1e3", "unknown unit", "exponents are not a unit"),
            ("NaN", "unknown unit", "NaN"),
            ("", "not a number", "empty"),
        ];
        for (text, needle, why) in cases {
            let err = from_query(text).expect_err(why);
            assert!(err.contains(needle), "{why}: {text} gave {err:?}");
        }
    }

    #[test]
    fn json_seconds_are_read_exactly() {
        let cases = [
            ("3", Duration::from_secs(3), "whole seconds"),
            ("0.5", Duration::from_millis(500), "a decimal"),
            ("1e3", Duration::from_secs(1000), "an exponent"),
            ("15E-1", Duration::from_millis(1500), "a negative exponent"),
            ("0.001", Duration::from_millis(1), "the minimum"),
            (
                "315360000.001",
                Duration::from_millis(315_360_000_001),
                "ten 365-day years and a millisecond, where a float loses the millisecond",
            ),
            ("315576000", MAX_TTL, "the maximum, exactly"),
            (
                "0.0015",
                Duration::from_micros(1500),
                "below a millisecond is kept",
            ),
        ];
        for (text, expected, why) in cases {
            assert_eq!(from_seconds(text), Ok(expected), "{why}: {text}");
        }
    }

    #[test]
    fn json_seconds_must_be_positive_and_in_range() {
        let cases = [
            ("0", "positive", "zero"),
            ("-0.0", "positive", "negative zero"),
            ("-2", "positive", "negative"),
            ("0e5", "positive", "zero with an exponent"),
            ("1e12", "maximum", "huge"),
            ("315576000.001", "maximum", "ten years and a millisecond"),
            ("18446744073709551616", "maximum", "past u64"),
            ("1e400", "maximum", "past f64"),
            ("0.0001", "minimum", "under a millisecond"),
            ("1e-400", "minimum", "far under a nanosecond"),
        ];
        for (text, needle, why) in cases {
            let err = from_seconds(text).expect_err(why);
            assert!(err.contains(needle), "{why}: {text} gave {err:?}");
        }
    }
}
