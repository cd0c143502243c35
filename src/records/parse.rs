//! Lenient parsing of the cell formats Gladly has not pinned down (`docs/gladly-api.md`):
//! timestamps, durations, counts and booleans. Empty cells (and a literal `null`) are `None`.
//!
//! Timestamps take a fast path for `YYYY-MM-DD[T ]HH:MM[:SS[.f+]][Z|UTC|±hh[:]mm]` and
//! `YYYY-MM-DD`; anything else falls back to chrono's RFC 3339 / RFC 2822 parsers. A value
//! without an offset is read in the report's [`Zone`].

use chrono::{NaiveDate, NaiveDateTime, TimeZone};

/// Where a date-time without an offset (or a date-only value) is placed in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// UTC (the work-session report, which has no timezone parameter).
    Utc,
    /// An IANA timezone (the date-range reports' `timezone`).
    Tz(chrono_tz::Tz),
}

impl Zone {
    /// `Utc` for `chrono_tz::UTC` (fast path), otherwise the timezone.
    pub fn from_tz(tz: chrono_tz::Tz) -> Zone {
        if tz == chrono_tz::UTC {
            Zone::Utc
        } else {
            Zone::Tz(tz)
        }
    }
}

/// What a cell was expected to be; its `Display` describes the accepted forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// An instant.
    Timestamp,
    /// A duration in seconds.
    Seconds,
    /// A whole count.
    Count,
    /// A boolean.
    Boolean,
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Expected::Timestamp => {
                "a timestamp (RFC 3339 like 2024-03-14T10:02:11Z or 2024-03-14T10:02:11.5-07:00, \
                 YYYY-MM-DD HH:MM[:SS], or a date YYYY-MM-DD)"
            }
            Expected::Seconds => "a number of seconds (like 12, 12.5 or HH:MM:SS)",
            Expected::Count => "a whole number (like 3)",
            Expected::Boolean => "a boolean (true/false, 1/0, yes/no)",
        })
    }
}

/// Longest duration accepted, in seconds: 100 years. Anything longer is garbage (a wrapped
/// counter, a misplaced column), not a handle time.
pub const MAX_SECONDS: f64 = 100.0 * 365.25 * 86_400.0;

/// What is wrong with a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// It reads as none of the accepted forms.
    Unreadable,
    /// A number that cannot be negative (a duration, a count) has a minus sign (`-0`
    /// included: a sign says the value was computed wrong).
    Negative,
    /// A number beyond any plausible value, or one the arithmetic would overflow.
    OutOfRange,
}

/// A cell that is not in any accepted form, or out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}expected {expected}", match .problem {
    Problem::Unreadable => "",
    Problem::Negative => "negative; ",
    Problem::OutOfRange => "out of range; ",
})]
pub struct Invalid {
    /// What was expected.
    pub expected: Expected,
    /// What is wrong.
    pub problem: Problem,
}

impl Invalid {
    /// What the cell is, in words: `not a number of seconds (…)`, `negative`, `out of range`.
    pub fn what(&self) -> String {
        match self.problem {
            Problem::Unreadable => format!("not {}", self.expected),
            Problem::Negative => format!("negative, but {} cannot be", self.expected),
            Problem::OutOfRange => format!("out of range for {}", self.expected),
        }
    }
}

const fn invalid(expected: Expected) -> Invalid {
    Invalid {
        expected,
        problem: Problem::Unreadable,
    }
}

const fn negative(expected: Expected) -> Invalid {
    Invalid {
        expected,
        problem: Problem::Negative,
    }
}

const fn out_of_range(expected: Expected) -> Invalid {
    Invalid {
        expected,
        problem: Problem::OutOfRange,
    }
}

/// `s` without surrounding whitespace; skips the Unicode-aware scan when both ends are
/// plain ASCII non-space characters (nearly every cell).
#[inline]
pub fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(&a), Some(&b))
            if a.is_ascii()
                && b.is_ascii()
                && !a.is_ascii_whitespace()
                && !b.is_ascii_whitespace() =>
        {
            s
        }
        _ => s.trim(),
    }
}

/// The trimmed cell, or `None` for cells that mean "no value": empty, whitespace, or `null`
/// in any case.
#[inline]
pub fn present(s: &str) -> Option<&str> {
    let t = trim(s);
    (!t.is_empty() && !t.eq_ignore_ascii_case("null")).then_some(t)
}

/// True for cells that mean "no value" (see [`present`]).
#[inline]
pub fn is_null(s: &str) -> bool {
    present(s).is_none()
}

/// Parses an instant to epoch milliseconds (`None` for an empty cell).
pub fn timestamp_millis(s: &str, zone: Zone) -> Result<Option<i64>, Invalid> {
    let Some(t) = present(s) else {
        return Ok(None);
    };
    if let Some(ms) = fast_timestamp(t.as_bytes(), zone) {
        return Ok(Some(ms));
    }
    slow_timestamp(t, zone)
        .map(Some)
        .ok_or(invalid(Expected::Timestamp))
}

/// Parses a duration in seconds: a decimal number, or `H:MM:SS[.f]`. Negative values (`-0`
/// too), non-finite ones and anything over [`MAX_SECONDS`] are refused; the `H:MM:SS`
/// arithmetic is checked, so a huge hour count cannot wrap into a plausible value.
pub fn seconds(s: &str) -> Result<Option<f64>, Invalid> {
    const E: Expected = Expected::Seconds;
    let Some(t) = present(s) else {
        return Ok(None);
    };
    if let Ok(v) = t.parse::<f64>() {
        return checked_seconds(v).map(Some);
    }
    if t.starts_with('-') {
        return Err(negative(E));
    }
    let mut parts = t.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(m), Some(sec), None) => {
            let unsigned = |p: &str| p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty();
            if !unsigned(h) || !unsigned(m) || sec.starts_with(['-', '+']) {
                return Err(invalid(E));
            }
            // digits only: a parse failure is an overflow
            let h: u64 = h.parse().map_err(|_| out_of_range(E))?;
            let m: u64 = m.parse().map_err(|_| out_of_range(E))?;
            let sec: f64 = sec.parse().map_err(|_| invalid(E))?;
            if m >= 60 || !(0.0..60.0).contains(&sec) {
                return Err(invalid(E));
            }
            let whole = h
                .checked_mul(3600)
                .and_then(|s| s.checked_add(m * 60))
                .ok_or(out_of_range(E))?;
            checked_seconds(whole as f64 + sec).map(Some)
        }
        _ => Err(invalid(E)),
    }
}

/// A number of seconds that is finite, not negative and at most [`MAX_SECONDS`].
fn checked_seconds(v: f64) -> Result<f64, Invalid> {
    const E: Expected = Expected::Seconds;
    if !v.is_finite() {
        Err(invalid(E))
    } else if v.is_sign_negative() {
        Err(negative(E))
    } else if v > MAX_SECONDS {
        Err(out_of_range(E))
    } else {
        Ok(v)
    }
}

/// Parses a count: a non-negative integer, or a decimal with no fractional part (`3.0`).
pub fn count(s: &str) -> Result<Option<i64>, Invalid> {
    const E: Expected = Expected::Count;
    let Some(t) = present(s) else {
        return Ok(None);
    };
    let v = match t.parse::<i64>() {
        Ok(v) => v,
        Err(_) => match t.parse::<f64>() {
            Ok(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 => v as i64,
            Ok(v) if v.is_finite() && v.fract() == 0.0 => return Err(out_of_range(E)),
            // digits only, but too many for an i64
            _ if is_integer(t) => return Err(out_of_range(E)),
            _ => return Err(invalid(E)),
        },
    };
    if v < 0 || t.starts_with('-') {
        return Err(negative(E));
    }
    Ok(Some(v))
}

/// True for an optionally signed run of ASCII digits (one too long for an `i64`, when
/// parsing it failed).
fn is_integer(t: &str) -> bool {
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Parses a boolean: true/false, t/f, yes/no, y/n, 1/0 (any case).
pub fn boolean(s: &str) -> Result<Option<bool>, Invalid> {
    let Some(t) = present(s) else {
        return Ok(None);
    };
    const TRUE: [&str; 5] = ["true", "t", "yes", "y", "1"];
    const FALSE: [&str; 5] = ["false", "f", "no", "n", "0"];
    if TRUE.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Ok(Some(true))
    } else if FALSE.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Ok(Some(false))
    } else {
        Err(invalid(Expected::Boolean))
    }
}

#[inline]
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let mut v = 0u32;
    for &c in b.get(at..at + n)? {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
#[inline]
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[inline]
fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// The fast path; `None` means "not this shape" (the slow path decides).
fn fast_timestamp(b: &[u8], zone: Zone) -> Option<i64> {
    let year = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let (mut hour, mut minute, mut second, mut millis) = (0, 0, 0, 0u32);
    let mut i = 10;
    if b.len() > 10 {
        if !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        hour = digits(b, 11, 2)?;
        if b.get(13) != Some(&b':') {
            return None;
        }
        minute = digits(b, 14, 2)?;
        i = 16;
        if b.get(16) == Some(&b':') {
            second = digits(b, 17, 2)?;
            i = 19;
            if matches!(b.get(19), Some(b'.' | b',')) {
                i = 20;
                let start = i;
                let mut scale = 100;
                while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
                    millis += u32::from(c - b'0') * scale;
                    scale /= 10;
                    i += 1;
                }
                if i == start {
                    return None;
                }
            }
        }
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
    }
    let local = (days_from_civil(i64::from(year), month, day) * 86_400
        + i64::from(hour * 3600 + minute * 60 + second))
        * 1000
        + i64::from(millis);
    let mut rest = &b[i..];
    if rest.first() == Some(&b' ') {
        rest = &rest[1..];
    }
    if rest.is_empty() {
        return match zone {
            Zone::Utc => Some(local),
            Zone::Tz(tz) => in_zone(tz, local),
        };
    }
    Some(local - fast_offset_secs(rest)? * 1000)
}

/// The seconds east of UTC of an explicit zone: `Z`, `UTC`, `GMT`, `+hh`, `+hhmm`, `+hh:mm`.
#[inline]
fn fast_offset_secs(rest: &[u8]) -> Option<i64> {
    match rest {
        [b'Z' | b'z'] => Some(0),
        _ if rest.eq_ignore_ascii_case(b"UTC") || rest.eq_ignore_ascii_case(b"GMT") => Some(0),
        [sign @ (b'+' | b'-'), tail @ ..] => {
            let h = digits(tail, 0, 2)?;
            let m = match tail.len() {
                2 => 0,
                4 => digits(tail, 2, 2)?,
                5 if tail[2] == b':' => digits(tail, 3, 2)?,
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let s = i64::from(h * 3600 + m * 60);
            Some(if *sign == b'-' { -s } else { s })
        }
        _ => None,
    }
}

/// A wall-clock time (as "local epoch millis") in `tz`; an ambiguous time (DST fold) takes
/// the earlier instant; a time in a DST gap does not exist and is rejected.
fn in_zone(tz: chrono_tz::Tz, local_ms: i64) -> Option<i64> {
    let naive = chrono::DateTime::from_timestamp_millis(local_ms)?.naive_utc();
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|dt| dt.timestamp_millis())
}

fn slow_timestamp(t: &str, zone: Zone) -> Option<i64> {
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_millis());
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc2822(t) {
        return Some(dt.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f %#z"] {
        if let Ok(dt) = chrono::DateTime::parse_from_str(t, fmt) {
            return Some(dt.timestamp_millis());
        }
    }
    for fmt in ["%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return naive(n, zone);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y/%m/%d") {
        return naive(d.and_hms_opt(0, 0, 0)?, zone);
    }
    None
}

fn naive(n: NaiveDateTime, zone: Zone) -> Option<i64> {
    match zone {
        Zone::Utc => Some(n.and_utc().timestamp_millis()),
        Zone::Tz(tz) => tz
            .from_local_datetime(&n)
            .earliest()
            .map(|dt| dt.timestamp_millis()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;

    fn ms(s: &str) -> i64 {
        s.parse::<DateTime<Utc>>().unwrap().timestamp_millis()
    }

    #[test]
    fn timestamp_forms() {
        let z = Zone::Utc;
        let base = ms("2024-03-14T10:02:11Z");
        for form in [
            "2024-03-14T10:02:11Z",
            "2024-03-14T10:02:11z",
            " 2024-03-14T10:02:11Z ",
            "2024-03-14T10:02:11+00:00",
            "2024-03-14T10:02:11.000Z",
            "2024-03-14T03:02:11-07:00",
            "2024-03-14T03:02:11-0700",
            "2024-03-14T03:02:11-07",
            "2024-03-14 10:02:11",
            "2024-03-14T10:02:11",
            "2024-03-14 10:02:11 UTC",
            "2024-03-14 10:02:11 +00:00",
            "Thu, 14 Mar 2024 10:02:11 +0000",
            "2024/03/14 10:02:11",
        ] {
            assert_eq!(timestamp_millis(form, z), Ok(Some(base)), "{form}");
        }
        assert_eq!(
            timestamp_millis("2024-03-14T10:02Z", z),
            Ok(Some(ms("2024-03-14T10:02:00Z")))
        );
        assert_eq!(
            timestamp_millis("2024-03-14T10:02:11.5Z", z),
            Ok(Some(base + 500))
        );
        assert_eq!(
            timestamp_millis("2024-03-14T10:02:11.123456789Z", z),
            Ok(Some(base + 123))
        );
        assert_eq!(
            timestamp_millis("2024-03-14", z),
            Ok(Some(ms("2024-03-14T00:00:00Z")))
        );
        assert_eq!(timestamp_millis("", z), Ok(None));
        assert_eq!(timestamp_millis("  ", z), Ok(None));
        assert_eq!(timestamp_millis("NULL", z), Ok(None));
    }

    #[test]
    fn naive_values_are_read_in_the_zone() {
        let la = Zone::from_tz(chrono_tz::America::Los_Angeles);
        assert_eq!(
            timestamp_millis("2024-03-14", la),
            Ok(Some(ms("2024-03-14T07:00:00Z")))
        );
        assert_eq!(
            timestamp_millis("2024-01-14 10:00:00", la),
            Ok(Some(ms("2024-01-14T18:00:00Z")))
        );
        // An explicit offset wins over the zone.
        assert_eq!(
            timestamp_millis("2024-01-14T10:00:00Z", la),
            Ok(Some(ms("2024-01-14T10:00:00Z")))
        );
        // DST fold: the earlier instant; DST gap: rejected.
        assert_eq!(
            timestamp_millis("2024-11-03 01:30:00", la),
            Ok(Some(ms("2024-11-03T08:30:00Z")))
        );
        assert!(timestamp_millis("2024-03-10 02:30:00", la).is_err());
        assert_eq!(Zone::from_tz(chrono_tz::UTC), Zone::Utc);
    }

    #[test]
    fn bad_timestamps_are_rejected() {
        for bad in [
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-02-30",
            "2024-03-14T25:00:00Z",
            "2024-03-14T10:02:11+5",
            "2024-03-14T10:02:11.Z",
            "14/03/2024",
        ] {
            assert_eq!(
                timestamp_millis(bad, Zone::Utc),
                Err(invalid(Expected::Timestamp)),
                "{bad}"
            );
        }
    }

    #[test]
    fn numbers_and_booleans() {
        assert_eq!(seconds("12"), Ok(Some(12.0)));
        assert_eq!(seconds(" 12.75 "), Ok(Some(12.75)));
        assert_eq!(seconds("1:02:03.5"), Ok(Some(3723.5)));
        assert_eq!(seconds(""), Ok(None));
        assert!(seconds("abc").is_err());
        assert!(seconds("NaN").is_err());
        assert!(seconds("1:61:00").is_err());
        assert_eq!(count("3"), Ok(Some(3)));
        assert_eq!(count("3.0"), Ok(Some(3)));
        assert!(count("3.5").is_err());
        for t in ["true", "TRUE", "True", "1", "yes", "Y", "t"] {
            assert_eq!(boolean(t), Ok(Some(true)), "{t}");
        }
        for f in ["false", "FALSE", "0", "no", "N", "f"] {
            assert_eq!(boolean(f), Ok(Some(false)), "{f}");
        }
        assert_eq!(boolean(""), Ok(None));
        assert!(boolean("maybe").is_err());
    }

    #[test]
    fn durations_are_checked_not_wrapped() {
        let e = Expected::Seconds;
        // 5124095576030432 hours wrapped to 3584 s before the arithmetic was checked
        assert_eq!(seconds("5124095576030432:00:00"), Err(out_of_range(e)));
        assert_eq!(seconds("99999999999999999999:00:00"), Err(out_of_range(e)));
        assert_eq!(seconds("1e30"), Err(out_of_range(e)));
        assert_eq!(seconds("-120"), Err(negative(e)));
        assert_eq!(seconds("-0"), Err(negative(e)));
        assert_eq!(seconds("-0:00:01"), Err(negative(e)));
        assert_eq!(seconds("inf"), Err(invalid(e)));
        assert_eq!(seconds("1:00:-5"), Err(invalid(e)));
        assert_eq!(seconds("+1:00:00"), Err(invalid(e)));
        assert_eq!(seconds("0"), Ok(Some(0.0)));
        assert_eq!(seconds("876600:00:00"), Ok(Some(876_600.0 * 3600.0)));
        assert_eq!(seconds(&MAX_SECONDS.to_string()), Ok(Some(MAX_SECONDS)));
        let what = seconds("-120").unwrap_err().what();
        assert!(what.starts_with("negative"), "{what}");
    }

    #[test]
    fn counts_are_whole_non_negative_and_in_range() {
        let e = Expected::Count;
        assert_eq!(count("-1"), Err(negative(e)));
        assert_eq!(count("-0"), Err(negative(e)));
        assert_eq!(count("-3.0"), Err(negative(e)));
        assert_eq!(count("99999999999999999999"), Err(out_of_range(e)));
        assert_eq!(count("1e30"), Err(out_of_range(e)));
        assert_eq!(count("-"), Err(invalid(e)));
        assert_eq!(count("0"), Ok(Some(0)));
        // a fraction or not a number at all is unreadable, not out of range
        assert_eq!(count("3.5"), Err(invalid(e)));
        assert_eq!(count("NaN"), Err(invalid(e)));
        assert_eq!(count("inf"), Err(invalid(e)));
        // digits beyond even a float's range (it reads them as infinity): out of range
        assert_eq!(count(&"9".repeat(400)), Err(out_of_range(e)));
        // a float is exact only below 2^53: 9e15 is the cut
        assert_eq!(count("8.9e15"), Ok(Some(8_900_000_000_000_000)));
        assert_eq!(count("9e15"), Err(out_of_range(e)));
    }

    #[test]
    fn february_29th_only_in_leap_years_and_only_dashes_between_date_parts() {
        let z = Zone::Utc;
        // minutes without seconds: a form only the fast path reads
        for leap in ["2024-02-29T10:02Z", "2000-02-29T10:02Z"] {
            let want = ms(&leap.replace("02Z", "02:00Z"));
            assert_eq!(timestamp_millis(leap, z), Ok(Some(want)), "{leap}");
        }
        // the last minute of a day, in the fast-only form; a 60th minute is no minute
        assert_eq!(
            timestamp_millis("2024-03-14T23:59Z", z),
            Ok(Some(ms("2024-03-14T23:59:00Z")))
        );
        // offsets in every form, on the minute-precision times only the fast path reads
        for (text, utc) in [
            ("2024-03-14T03:02-07:00", "2024-03-14T10:02:00Z"),
            ("2024-03-14T03:02-0700", "2024-03-14T10:02:00Z"),
            ("2024-03-14T03:02-07", "2024-03-14T10:02:00Z"),
            ("2024-03-15T09:01+23:59", "2024-03-14T09:02:00Z"),
            ("2024-03-14T15:01+05:59", "2024-03-14T09:02:00Z"),
            ("2024-03-14T10:02 UTC", "2024-03-14T10:02:00Z"),
        ] {
            assert_eq!(timestamp_millis(text, z), Ok(Some(ms(utc))), "{text}");
        }
        for bad in [
            "2024-03-14T03:02-07x00",
            "2024-03-14T03:02+24:00",
            "2024-03-14T03:02+05:60",
            "2024-03-14T03:02+7",
            "2024-03-14T10:60Z",
            "2024-03-14T10:60:00Z",
            "2023-02-29T10:02Z",
            "1900-02-29T10:02Z",
            "2100-02-29T10:02Z",
            "2023-02-29",
            "2024-03/14T10:02:11Z",
            "2024/03-14T10:02:11Z",
        ] {
            assert_eq!(
                timestamp_millis(bad, z),
                Err(invalid(Expected::Timestamp)),
                "{bad}"
            );
        }
    }

    #[test]
    fn cells_are_trimmed_at_either_end_and_null_means_no_value() {
        for cell in ["12", " 12", "12 ", " 12 ", "\t12\n"] {
            assert_eq!(trim(cell), "12", "{cell:?}");
            assert_eq!(seconds(cell), Ok(Some(12.0)), "{cell:?}");
        }
        assert_eq!(trim("\u{a0}12\u{a0}"), "12", "Unicode spaces too");
        for empty in ["", " ", "null", " NULL ", "Null"] {
            assert!(is_null(empty), "{empty:?}");
        }
        for value in ["0", "nul", "false"] {
            assert!(!is_null(value), "{value:?}");
        }
    }

    #[test]
    fn a_duration_with_a_malformed_minute_is_unreadable_not_out_of_range() {
        let e = Expected::Seconds;
        assert_eq!(seconds("1:x0:00"), Err(invalid(e)));
        assert_eq!(seconds("1::00"), Err(invalid(e)));
        assert_eq!(seconds("x:00:00"), Err(invalid(e)));
    }

    proptest! {
        #[test]
        fn durations_never_panic_and_are_plausible(h in any::<u64>(), m in 0u32..60, sec in 0u32..60) {
            let text = format!("{h}:{m:02}:{sec:02}");
            match seconds(&text) {
                Ok(Some(v)) => prop_assert!((0.0..=MAX_SECONDS).contains(&v), "{} -> {}", text, v),
                Ok(None) => prop_assert!(false, "{} read as empty", text),
                Err(e) => prop_assert_eq!(e.problem, Problem::OutOfRange, "{}", text),
            }
        }

        #[test]
        fn fast_path_agrees_with_chrono(secs in -2_000_000_000i64..8_000_000_000, millis in 0u32..1000, off_min in -840i32..=840) {
            let off = chrono::FixedOffset::east_opt(off_min * 60).unwrap();
            let dt = DateTime::from_timestamp(secs, millis * 1_000_000).unwrap().with_timezone(&off);
            let text = dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            prop_assert_eq!(timestamp_millis(&text, Zone::Utc), Ok(Some(dt.timestamp_millis())), "{}", text);
            let naive = dt.naive_utc().format("%Y-%m-%d %H:%M:%S%.3f").to_string();
            prop_assert_eq!(timestamp_millis(&naive, Zone::Utc), Ok(Some(dt.timestamp_millis())), "{}", naive);
        }
    }
}
