//! TTLs as clients write them: seconds in JSON (`0.5`), or a duration with a
//! unit in a query string (`1500ms`, `30s`, `5m`, `2h`, `7d`).

use std::time::Duration;

use kvcore::{MAX_TTL, MIN_TTL};

/// Reads a TTL given as a number of seconds (decimals allowed).
pub fn from_seconds(seconds: f64) -> Result<Duration, String> {
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!(
            "ttl must be a positive number of seconds, got {seconds:?}"
        ));
    }
    let ttl = Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("ttl of {seconds:?} s is longer than the maximum of 10 years"))?;
    within_range(ttl, &format!("{seconds:?}"))
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
    fn json_seconds_must_be_positive_and_in_range() {
        assert_eq!(from_seconds(3.0), Ok(Duration::from_secs(3)));
        assert_eq!(from_seconds(0.5), Ok(Duration::from_millis(500)));
        assert!(from_seconds(0.0).is_err());
        assert!(from_seconds(-2.0).is_err());
        assert!(from_seconds(1e12).unwrap_err().contains("maximum"));
        assert!(from_seconds(0.0001).unwrap_err().contains("minimum"));
    }
}
