//! Durations as kvctl prints them back, and TTLs as people type them (the
//! syntax, `30s`, `1500ms`, `5m`, `2h`, `7d` or a bare number of seconds, is
//! `kvapi::parse_duration`'s, the same the server reads).

use std::time::Duration;

/// Reads a TTL: a duration from one millisecond (the store's resolution)
/// to 10 years, the bounds the server enforces too, refused here before
/// anything is sent. The reading is exact (no float), so what is sent,
/// `<milliseconds>ms`, is what was typed.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = kvapi::parse_duration(text).map_err(|err| err.to_string())?;
    if ttl < kvapi::MIN_TTL {
        return Err(format!("{text:?} is shorter than the minimum TTL of 1ms"));
    }
    if ttl > kvapi::MAX_TTL {
        return Err(format!(
            "{text:?} is longer than the maximum TTL of 10 years (315576000s)"
        ));
    }
    Ok(ttl)
}

/// Prints a duration for a person: `850ms`, `29.5s`, `5m 12s`, `2d 3h`.
/// Past a minute the two largest units are enough.
pub fn format(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    if millis < 60_000 {
        let text = format!("{:.1}", millis as f64 / 1000.0);
        return format!("{}s", text.trim_end_matches(".0"));
    }
    let seconds = duration.as_secs();
    let units = [
        (seconds / 86400, "d"),
        (seconds / 3600 % 24, "h"),
        (seconds / 60 % 60, "m"),
        (seconds % 60, "s"),
    ];
    let first = units.iter().position(|(n, _)| *n > 0).unwrap_or(3);
    units[first..]
        .iter()
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_read_their_units() {
        let cases = [
            ("1500ms", Duration::from_millis(1500), "milliseconds"),
            ("30s", Duration::from_secs(30), "seconds with a unit"),
            ("30", Duration::from_secs(30), "a bare number is seconds"),
            ("0.5", Duration::from_millis(500), "decimal seconds"),
            ("5m", Duration::from_secs(300), "minutes"),
            ("1.5h", Duration::from_secs(5400), "decimal hours"),
            ("7d", Duration::from_secs(7 * 86400), "days"),
            (" 2h ", Duration::from_secs(7200), "surrounding spaces"),
            (
                "315360000001ms",
                Duration::from_millis(315_360_000_001),
                "exact to the millisecond (a float made it ...000ms)",
            ),
            ("315576000s", kvapi::MAX_TTL, "the maximum"),
        ];
        for (text, expected, why) in cases {
            assert_eq!(parse_ttl(text), Ok(expected), "{why}: {text}");
        }
    }

    #[test]
    fn bad_ttls_are_refused_with_a_reason() {
        let cases = [
            ("0", "positive", "zero"),
            ("-1s", "positive", "negative"),
            ("10y", "unknown unit", "unknown unit"),
            ("s", "not a number", "unit without a number"),
            ("", "not a number", "empty"),
            (
                "99999999999999999999999d",
                "too long",
                "past what a Duration holds",
            ),
            ("315576000001ms", "maximum", "10 years and a millisecond"),
            ("3653d", "maximum", "over 10 years"),
        ];
        for (text, needle, why) in cases {
            let err = parse_ttl(text).expect_err(why);
            assert!(err.contains(needle), "{why}: {text} gave {err:?}");
        }
        assert!(parse_ttl("0.5ms").unwrap_err().contains("1ms"));
    }

    #[test]
    fn durations_print_in_the_largest_units() {
        let cases = [
            (Duration::from_millis(850), "850ms"),
            (Duration::from_millis(29_500), "29.5s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(312), "5m 12s"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(3600 + 5), "1h"),
            (Duration::from_secs(2 * 86400 + 3 * 3600 + 60), "2d 3h"),
        ];
        for (duration, expected) in cases {
            assert_eq!(format(duration), expected, "{duration:?}");
        }
    }
}
