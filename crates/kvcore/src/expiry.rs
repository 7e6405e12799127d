//! Deadlines: how a TTL becomes one, how a write changes one, and the
//! background pass that reclaims the memory of keys nobody reads again.
//!
//! Expiry is exact without the pass: every operation compares a record's
//! deadline with the clock and treats an expired record as absent (the lazy
//! check). The pass only gives memory back.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::background::Threads;
use crate::entry::NO_DEADLINE;
use crate::error::{Error, Result};
use crate::shard::Shard;
use crate::store::Inner;

/// The longest TTL accepted: 10 years of 365.25 days.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 36525 * 24 * 60 * 60 / 100);

/// The shortest TTL accepted.
pub const MIN_TTL: Duration = Duration::from_millis(1);

/// Reads a duration as people type it: a plain number is seconds; `ms`, `s`,
/// `m`, `h` and `d` are units; decimals are allowed (`0.5`, `1.5h`); spaces
/// around it are ignored. This is the syntax of kvserver's `ttl=` query
/// parameter and of its and kvctl's duration flags. Only positive durations
/// are read; a TTL must also lie in [`MIN_TTL`]..=[`MAX_TTL`].
///
/// ```
/// use std::time::Duration;
/// assert_eq!(kvcore::parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
/// assert_eq!(kvcore::parse_duration("30"), Ok(Duration::from_secs(30)));
/// assert!(kvcore::parse_duration("10y").is_err());
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Letters after the number other than `ms`, `s`, `m`, `h` or `d`.
    #[error("{text:?} has an unknown unit {unit:?}: use ms, s, m, h or d")]
    UnknownUnit {
        /// The text read, trimmed.
        text: String,
        /// The letters taken for a unit.
        unit: String,
    },
    /// No number before the unit.
    #[error("{text:?} is not a number with an optional unit (e.g. 30s, 1500ms)")]
    NotANumber {
        /// The text read, trimmed.
        text: String,
    },
    /// Zero or negative.
    #[error("{text:?} is not a positive duration")]
    NotPositive {
        /// The text read, trimmed.
        text: String,
    },
    /// More than a `Duration` holds.
    #[error("{text:?} is too long")]
    TooLong {
        /// The text read, trimmed.
        text: String,
    },
}

/// What a write does to the key's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TtlChange {
    /// Keep the current deadline (none if the key is new). An update never
    /// silently drops a TTL.
    #[default]
    Keep,
    /// Expire this long after the write.
    Set(Duration),
    /// Remove the deadline: the key lives until removed.
    Persist,
}

/// Checks a TTL and turns it into an absolute deadline.
pub(crate) fn deadline_after(now_ms: u64, ttl: Duration) -> Result<u64> {
    if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
        return Err(Error::InvalidTtl { ttl });
    }
    // Sub-millisecond parts are dropped: the store keeps millisecond deadlines.
    Ok(now_ms.saturating_add(ttl.as_millis() as u64))
}

/// The deadline a write leaves behind, given the one it replaces.
pub(crate) fn resolve(change: TtlChange, set_to: u64, current: u64) -> u64 {
    match change {
        TtlChange::Keep => current,
        TtlChange::Set(_) => set_to,
        TtlChange::Persist => NO_DEADLINE,
    }
}

/// When and how hard the store reclaims expired keys in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveExpiry {
    /// A background thread wakes every `interval` and spends at most a tenth
    /// of it reclaiming, so it uses at most 10% of one core. It stops when the
    /// last `Store` handle is dropped.
    Background {
        /// Time between two passes.
        interval: Duration,
    },
    /// No thread: call [`Store::reclaim_expired`](crate::Store::reclaim_expired)
    /// yourself. Expired keys are still invisible, only their memory lingers.
    Manual,
}

impl Default for ActiveExpiry {
    /// A pass every 100 ms.
    fn default() -> ActiveExpiry {
        ActiveExpiry::Background {
            interval: Duration::from_millis(100),
        }
    }
}

/// Runs the background pass until the store is closed.
pub(crate) fn spawn_reclaimer(store: &Arc<Inner>, threads: &Threads, interval: Duration) {
    let budget = interval / 10;
    // Without the thread the store still answers correctly (expiry is
    // checked on every access); only memory reclaim falls back to the lazy
    // path.
    threads.spawn_periodic("kvcore-reclaim", interval, store.clone(), move |store| {
        store.reclaim_expired_for(Instant::now() + budget);
    });
}

/// The reclaim pass over the store's shards.
impl Inner {
    pub(crate) fn count_reclaimed(&self, n: usize) {
        if n > 0 {
            self.expired_reclaimed
                .fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    pub(crate) fn reclaim_shard(&self, shard: &Shard, now_ms: u64) -> usize {
        let reclaimed = shard.write(|t| {
            if t.may_have_expired(now_ms) {
                t.reclaim_expired(now_ms, |r| self.hash(r.key()))
            } else {
                0
            }
        });
        self.count_reclaimed(reclaimed);
        reclaimed
    }

    /// One background pass: visits shards round-robin, skipping those with
    /// nothing expired, until every shard was seen or `until` has passed.
    pub(crate) fn reclaim_expired_for(&self, until: Instant) {
        let now = self.clock.now_ms();
        let count = self.shards.len();
        let start = self.reclaim_cursor.load(Ordering::Relaxed);
        for step in 0..count {
            let index = (start + step) % count;
            let shard = &self.shards[index];
            // A shared look first, so idle shards cost readers nothing.
            if shard.read(|t| t.may_have_expired(now)) {
                self.reclaim_shard(shard, now);
            }
            if Instant::now() >= until {
                self.reclaim_cursor
                    .store((index + 1) % count, Ordering::Relaxed);
                return;
            }
        }
    }
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
}
