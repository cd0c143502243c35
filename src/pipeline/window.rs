//! Windows and their planning: pure, no I/O.
//!
//! A poll covers `[checkpoint − lookback, now]` (work sessions, instants at minute precision) or
//! `[min(checkpoint + 1 day, today − horizon), today]` (date reports), cut into windows no
//! larger than the configured maximum, oldest first. Windows are contiguous (each starts where
//! the previous one ended), so nothing between the checkpoint and now is ever skipped.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// A span of instants `[start, end]`, minute-aligned, `start < end`. Cannot be inverted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstantWindow {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl InstantWindow {
    /// A window from `start` to `end`, both floored to the minute; `None` unless start < end.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Option<Self> {
        let (start, end) = (floor_minute(start), floor_minute(end));
        (start < end).then_some(InstantWindow { start, end })
    }

    /// First instant.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// Last instant.
    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// The two halves, split at a minute; `None` for a one-minute window.
    pub fn halves(&self) -> Option<(Self, Self)> {
        let minutes = (self.end - self.start).num_minutes();
        if minutes < 2 {
            return None;
        }
        let mid = self.start + Duration::minutes(minutes / 2);
        Some((
            InstantWindow {
                start: self.start,
                end: mid,
            },
            InstantWindow {
                start: mid,
                end: self.end,
            },
        ))
    }
}

/// A span of calendar days `[start, end]`, both inclusive, `start <= end`. Cannot be inverted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DateWindow {
    start: NaiveDate,
    end: NaiveDate,
}

impl DateWindow {
    /// Days `start..=end`; `None` when end is before start.
    pub fn new(start: NaiveDate, end: NaiveDate) -> Option<Self> {
        (start <= end).then_some(DateWindow { start, end })
    }

    /// First day.
    pub fn start(&self) -> NaiveDate {
        self.start
    }

    /// Last day (inclusive).
    pub fn end(&self) -> NaiveDate {
        self.end
    }

    /// Number of days.
    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days() + 1
    }

    /// The two halves, cut at the bucket boundary nearest the middle, so each half still holds
    /// whole buckets; `None` for a single bucket (or day).
    pub fn halves(&self, buckets: Buckets) -> Option<(Self, Self)> {
        let mid = self.start + Duration::days(self.days() / 2);
        let mut cut: Option<NaiveDate> = None;
        let mut at = buckets.next(self.start);
        while at <= self.end {
            if cut.is_none_or(|c| (at - mid).num_days().abs() < (c - mid).num_days().abs()) {
                cut = Some(at);
            }
            at = buckets.next(at);
        }
        let cut = cut?;
        Some((
            DateWindow {
                start: self.start,
                end: cut - Duration::days(1),
            },
            DateWindow {
                start: cut,
                end: self.end,
            },
        ))
    }
}

/// A window of either kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// Work sessions.
    Instants(InstantWindow),
    /// Contact export, agent summary.
    Dates(DateWindow),
}

impl Window {
    /// The window's halves, for a response that reached the row cap; a date window is cut
    /// between `buckets` (the report's aggregation buckets).
    pub fn halves(&self, buckets: Buckets) -> Option<(Window, Window)> {
        match self {
            Window::Instants(w) => w
                .halves()
                .map(|(a, b)| (Window::Instants(a), Window::Instants(b))),
            Window::Dates(w) => w
                .halves(buckets)
                .map(|(a, b)| (Window::Dates(a), Window::Dates(b))),
        }
    }

    /// What the smallest window of this kind is, in words, for a window that cannot be
    /// split: "a one-minute window", "a single day", "a single week (…)", ….
    pub fn smallest(&self, buckets: Buckets) -> &'static str {
        match (self, buckets) {
            (Window::Instants(_), _) => "a one-minute work-session window",
            (Window::Dates(_), Buckets::Days) => "a single day",
            (Window::Dates(_), Buckets::Weeks) => "a single week (one weekly bucket)",
            (Window::Dates(_), Buckets::Months) => "a single month (one monthly bucket)",
            (Window::Dates(_), Buckets::Quarters) => "a single quarter (one quarterly bucket)",
        }
    }

    /// This window cut into contiguous pieces of at most `max` (work-session windows; a date
    /// window stays whole, as it holds whole buckets).
    pub fn cut_to(&self, max: Duration) -> Vec<Window> {
        match self {
            Window::Instants(w) if w.end - w.start > max => cut_instants(w.start, w.end, max)
                .into_iter()
                .map(Window::Instants)
                .collect(),
            _ => vec![*self],
        }
    }

    /// Where the checkpoint stands once this window is published.
    pub fn end_position(&self) -> Position {
        match self {
            Window::Instants(w) => Position::Instant(w.end),
            Window::Dates(w) => Position::Date(w.end),
        }
    }

    /// Start and end as text (headers, logs): RFC 3339 instants or ISO dates.
    pub fn bounds_text(&self) -> (String, String) {
        match self {
            Window::Instants(w) => (rfc3339(w.start), rfc3339(w.end)),
            Window::Dates(w) => (w.start.to_string(), w.end.to_string()),
        }
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, b) = self.bounds_text();
        write!(f, "[{a}, {b}]")
    }
}

/// How far a report has been polled: an instant (work sessions) or a day (date reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Every row anchored up to this instant has been polled at a time at or after it.
    Instant(DateTime<Utc>),
    /// Every day up to and including this one has been polled.
    Date(NaiveDate),
}

impl Position {
    /// The instant up to which rows are covered: the instant itself, or the midnight (UTC)
    /// after the day.
    pub fn covered_until(self) -> DateTime<Utc> {
        match self {
            Position::Instant(t) => t,
            Position::Date(d) => (d + Duration::days(1))
                .and_hms_opt(0, 0, 0)
                .expect("midnight exists")
                .and_utc(),
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Position::Instant(t) => f.write_str(&rfc3339(*t)),
            Position::Date(d) => write!(f, "{d}"),
        }
    }
}

/// Calendar grouping of agent-summary buckets: date windows must hold whole buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buckets {
    /// Days (and half hours): any day boundary is a bucket boundary.
    Days,
    /// ISO weeks, starting Monday.
    Weeks,
    /// Calendar months.
    Months,
    /// Calendar quarters.
    Quarters,
}

impl Buckets {
    /// From an agent-summary `aggregationLevel`.
    pub fn from_level(level: Option<&str>) -> Buckets {
        match level {
            Some("weekly") => Buckets::Weeks,
            Some("monthly") => Buckets::Months,
            Some("quarterly") => Buckets::Quarters,
            _ => Buckets::Days,
        }
    }

    /// The first day of the bucket holding `d`.
    pub fn floor(self, d: NaiveDate) -> NaiveDate {
        match self {
            Buckets::Days => d,
            Buckets::Weeks => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
            Buckets::Months => d.with_day(1).expect("day 1 exists"),
            Buckets::Quarters => {
                let m = (d.month() - 1) / 3 * 3 + 1;
                NaiveDate::from_ymd_opt(d.year(), m, 1).expect("quarter start exists")
            }
        }
    }

    /// The first day of the next bucket after the one holding `d`.
    pub fn next(self, d: NaiveDate) -> NaiveDate {
        let start = self.floor(d);
        match self {
            Buckets::Days => start + Duration::days(1),
            Buckets::Weeks => start + Duration::days(7),
            Buckets::Months => add_months(start, 1),
            Buckets::Quarters => add_months(start, 3),
        }
    }
}

fn add_months(d: NaiveDate, n: u32) -> NaiveDate {
    let total = d.year() * 12 + d.month0() as i32 + n as i32;
    NaiveDate::from_ymd_opt(total.div_euclid(12), total.rem_euclid(12) as u32 + 1, 1)
        .expect("first of month exists")
}

/// Work-session windows for one poll: `[checkpoint − lookback, now]` (or from `first_start`
/// without a checkpoint), cut into pieces of at most `max_window`.
pub fn plan_instants(
    checkpoint: Option<DateTime<Utc>>,
    first_start: DateTime<Utc>,
    now: DateTime<Utc>,
    lookback: Duration,
    max_window: Duration,
) -> Vec<InstantWindow> {
    cut_instants(
        instants_from(checkpoint, first_start, lookback),
        now,
        max_window,
    )
}

/// Where a work-session poll starts: the checkpoint minus the lookback, or `first_start`
/// without a checkpoint.
pub fn instants_from(
    checkpoint: Option<DateTime<Utc>>,
    first_start: DateTime<Utc>,
    lookback: Duration,
) -> DateTime<Utc> {
    match checkpoint {
        Some(c) => c - lookback,
        None => first_start,
    }
}

/// `[from, to]` cut into minute-aligned windows of at most `max_window`, oldest first.
pub fn cut_instants(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    max_window: Duration,
) -> Vec<InstantWindow> {
    let step = Duration::minutes(max_window.num_minutes().max(1));
    let (mut at, to) = (floor_minute(from), floor_minute(to));
    let mut out = Vec::new();
    while at < to {
        let end = (at + step).min(to);
        out.push(InstantWindow { start: at, end });
        at = end;
    }
    out
}

/// Date windows for one poll: from `min(checkpoint + 1, today − horizon_days)` (or
/// `first_start` without a checkpoint) through `today`, cut into whole buckets and at most
/// `max_days` days each (a bucket longer than that is one window).
pub fn plan_dates(
    checkpoint: Option<NaiveDate>,
    first_start: NaiveDate,
    today: NaiveDate,
    horizon_days: u32,
    max_days: u32,
    buckets: Buckets,
) -> Vec<DateWindow> {
    let from = dates_from(checkpoint, first_start, today, horizon_days);
    cut_dates(from, today, max_days, buckets)
}

/// The first day a date-report poll covers: `min(checkpoint + 1, today − horizon_days)`, or
/// `first_start` without a checkpoint (its windows start at the bucket holding it).
pub fn dates_from(
    checkpoint: Option<NaiveDate>,
    first_start: NaiveDate,
    today: NaiveDate,
    horizon_days: u32,
) -> NaiveDate {
    let horizon_start = today - Duration::days(i64::from(horizon_days));
    match checkpoint {
        Some(c) => (c + Duration::days(1)).min(horizon_start),
        None => first_start,
    }
}

/// Days `from..=to` cut into windows of whole buckets, at most `max_days` each where buckets
/// allow, oldest first. The first window starts at the bucket holding `from`; the last ends at
/// the end of the bucket holding `to` (buckets are never requested in part).
pub fn cut_dates(
    from: NaiveDate,
    to: NaiveDate,
    max_days: u32,
    buckets: Buckets,
) -> Vec<DateWindow> {
    let mut out = Vec::new();
    let mut at = buckets.floor(from);
    let max_days = i64::from(max_days.max(1));
    while at <= to {
        let mut end = buckets.next(at) - Duration::days(1);
        // grow by whole buckets up to max_days
        while end < to {
            let next_end = buckets.next(end + Duration::days(1)) - Duration::days(1);
            if (next_end - at).num_days() + 1 > max_days {
                break;
            }
            end = next_end;
        }
        if buckets == Buckets::Days {
            end = end.min(to);
        }
        out.push(DateWindow { start: at, end });
        at = end + Duration::days(1);
    }
    out
}

/// `t` with seconds and below set to zero.
pub fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .expect("zero seconds exist")
}

/// An instant as RFC 3339 with seconds (window bounds in headers and logs).
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
