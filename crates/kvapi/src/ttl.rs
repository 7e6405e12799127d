//! TTLs and durations as clients write them: a JSON number of seconds in a
//! seed write body (`0.5`), or a duration with a unit in a query string or
//! on a command line (`1500ms`, `30s`, `5m`, `2h`, `7d`).
//!
//! Everything here reads with integer arithmetic, never a float, so a TTL is
//! exact to the millisecond across the whole range.

use std::time::Duration;

/// The longest TTL accepted: 10 years of 365.25 days (kvcore's bound too).
pub const MAX_TTL: Duration = Duration::from_secs(10 * 36525 * 24 * 60 * 60 / 100);

/// The shortest TTL accepted: the store keeps millisecond deadlines.
pub const MIN_TTL: Duration = Duration::from_millis(1);

/// Reads a duration as people type it: a plain number is seconds; `ms`, `s`,
/// `m`, `h` and `d` are units; decimals are allowed (`0.5`, `1.5h`); spaces
/// around it are ignored. This is the syntax of kvserver's `ttl=` query
/// parameter and of its and kvctl's duration flags. Only positive durations
/// are read; a TTL must also lie in [`MIN_TTL`]..=[`MAX_TTL`].
///
/// ```
/// use std::time::Duration;
/// assert_eq!(kvapi::parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
/// assert_eq!(kvapi::parse_duration("30"), Ok(Duration::from_secs(30)));
/// assert!(kvapi::parse_duration("10y").is_err());
/// ```
pub fn parse_duration(text: &str) -> std::result::Result<Duration, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    // Integer arithmetic throughout: `315360000001ms` is exactly that many
    // milliseconds, where a float would round it to ...000 ms.
    let nanos_per_unit: u128 = match unit {
        "" | "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3600 * 1_000_000_000,
        "d" => 86400 * 1_000_000_000,
        _ => {
            return Err(DurationError::UnknownUnit {
                text: text.to_owned(),
                unit: unit.to_owned(),
            });
        }
    };
    let not_a_number = || DurationError::NotANumber {
        text: text.to_owned(),
    };
    let too_long = || DurationError::TooLong {
        text: text.to_owned(),
    };
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return Err(not_a_number());
    }
    let mut nanos: u128 = 0;
    for digit in whole.bytes() {
        nanos = nanos
            .checked_mul(10)
            .and_then(|n| n.checked_add(u128::from(digit - b'0')))
            .ok_or_else(too_long)?;
    }
    nanos = nanos.checked_mul(nanos_per_unit).ok_or_else(too_long)?;
    // Twenty decimals reach far below a nanosecond of the largest unit
    // (a day is under 10^14 ns), and 10^20 * 10^14 fits a u128.
    let fraction = &fraction[..fraction.len().min(20)];
    let mut numerator: u128 = 0;
    for digit in fraction.bytes() {
        numerator = numerator * 10 + u128::from(digit - b'0');
    }
    let denominator = 10u128.pow(fraction.len() as u32);
    nanos = nanos
        .checked_add(numerator * nanos_per_unit / denominator)
        .ok_or_else(too_long)?;
    if negative || nanos == 0 {
        return Err(DurationError::NotPositive {
            text: text.to_owned(),
        });
    }
    let seconds = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_long())?;
    Ok(Duration::new(seconds, (nanos % 1_000_000_000) as u32))
}

/// Why [`parse_duration`] refused a text. The messages name the text and
/// not what the duration is for, so callers can add that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// Letters after the number other than `ms`, `s`, `m`, `h` or `d`.
    UnknownUnit {
        /// The text read, trimmed.
        text: String,
        /// The letters taken for a unit.
        unit: String,
    },
    /// No number before the unit.
    NotANumber {
        /// The text read, trimmed.
        text: String,
    },
    /// Zero or negative.
    NotPositive {
        /// The text read, trimmed.
        text: String,
    },
    /// More than a `Duration` holds.
    TooLong {
        /// The text read, trimmed.
        text: String,
    },
}

impl std::fmt::Display for DurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DurationError::UnknownUnit { text, unit } => {
                write!(
                    f,
                    "{text:?} has an unknown unit {unit:?}: use ms, s, m, h or d"
                )
            }
            DurationError::NotANumber { text } => write!(
                f,
                "{text:?} is not a number with an optional unit (e.g. 30s, 1500ms)"
            ),
            DurationError::NotPositive { text } => write!(f, "{text:?} is not a positive duration"),
            DurationError::TooLong { text } => write!(f, "{text:?} is too long"),
        }
    }
}

impl std::error::Error for DurationError {}

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

/// Reads a TTL, as a `/v1` write's `?ttl=` or kvctl's `--ttl`: a duration
/// ([`parse_duration`]) from one millisecond, the store's resolution, to 10
/// years. The reading is exact (no float), so `<milliseconds>ms` sent on is
/// what was typed.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = parse_duration(text).map_err(|err| format!("ttl {err}"))?;
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
    fn durations_read_their_units() {
        let cases = [
            ("1500ms", Duration::from_millis(1500), "milliseconds"),
            ("30s", Duration::from_secs(30), "seconds with a unit"),
            ("30", Duration::from_secs(30), "a bare number is seconds"),
            ("0.5", Duration::from_millis(500), "decimal seconds"),
            ("5m", Duration::from_secs(300), "minutes"),
            ("1.5h", Duration::from_secs(5400), "decimal hours"),
            ("2h", Duration::from_secs(7200), "hours"),
            ("7d", Duration::from_secs(7 * 86400), "days"),
            (" 2h ", Duration::from_secs(7200), "surrounding spaces"),
            (
                "315360000001ms",
                Duration::from_millis(315_360_000_001),
                "exact to the millisecond, where a float rounds",
            ),
            (
                "315576000.001",
                Duration::from_millis(315_576_000_001),
                "decimal seconds, exact",
            ),
            ("0.001", Duration::from_millis(1), "one millisecond"),
            (
                "1.5ms",
                Duration::from_micros(1500),
                "below a millisecond is kept",
            ),
            (".5", Duration::from_millis(500), "no whole part"),
            ("2.", Duration::from_secs(2), "no fraction digits"),
            (
                "0.1d",
                Duration::from_secs(8640),
                "a tenth of a day, which a float cannot hold exactly",
            ),
        ];
        for (text, expected, why) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{why}: {text}");
        }
    }

    #[test]
    fn bad_durations_are_refused_with_a_reason_that_names_the_text() {
        let cases = [
            ("0", "positive", "zero"),
            ("-1", "positive", "negative"),
            ("-3s", "positive", "negative with a unit"),
            ("abc", "unknown unit", "no number"),
            ("fast", "unknown unit", "a word"),
            ("10y", "unknown unit", "unknown unit"),
            ("5x", "unknown unit", "unknown unit"),
            ("1e3", "unknown unit", "exponents are not a unit"),
            ("NaN", "unknown unit", "NaN"),
            ("s", "not a number", "unit without a number"),
            ("", "not a number", "empty"),
            (".", "not a number", "a lone point"),
            ("1.2.3", "not a number", "two points"),
            ("--1", "not a number", "two signs"),
            ("0.0", "positive", "zero with decimals"),
            ("-0", "positive", "negative zero"),
            (
                "99999999999999999999999d",
                "too long",
                "past what a Duration holds",
            ),
        ];
        for (text, needle, why) in cases {
            let err = parse_duration(text).expect_err(why).to_string();
            assert!(err.contains(needle), "{why}: {text} gave {err:?}");
            assert!(err.contains(text), "{why}: {err:?} names the text");
            // Callers say what the duration is for (a TTL, a timeout).
            assert!(!err.contains("ttl"), "{why}: {err:?}");
        }
    }

    #[test]
    fn ttls_read_their_units() {
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
            assert_eq!(parse_ttl(text), Ok(expected), "{why}: {text}");
        }
    }

    #[test]
    fn bad_ttls_are_refused_with_a_reason() {
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
            let err = parse_ttl(text).expect_err(why);
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
