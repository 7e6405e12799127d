//! Durations as kvctl prints them back. TTLs as people type them (`30s`,
//! `1500ms`, `5m`, `2h`, `7d` or a bare number of seconds) are read by
//! `kvapi::parse_ttl`, the same function the server reads `?ttl=` with.

use std::time::Duration;

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
