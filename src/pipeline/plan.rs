//! Which windows a poll or a backfill covers, what each one requests from Gladly, and the
//! instants a window spans.

use chrono::{DateTime, NaiveDate, Utc};

use super::window::{
    cut_dates, cut_instants, dates_from, floor_minute, instants_from, Buckets, InstantWindow,
    Position, Window,
};
use crate::config::Config;
use crate::gladly::ReportRequest;
use crate::report::{Report, ReportSpec, Source};

/// The windows a poll of `report` from `position` covers at `now`: from [`live_start`] to
/// now, cut to `max_window_minutes` (work sessions) or `max_window_days` (date reports).
pub(crate) fn live_windows(
    cfg: &Config,
    report: Report,
    position: Option<Position>,
    now: DateTime<Utc>,
) -> Vec<Window> {
    match live_start(cfg, report, position, now) {
        Position::Instant(from) => {
            let max = cfg.reports.work_sessions.max_window_minutes as i64;
            cut_instants(from, now, chrono::Duration::minutes(max))
                .into_iter()
                .map(Window::Instants)
                .collect()
        }
        Position::Date(from) => {
            let max_days = cfg.date_settings(report).map_or(1, |s| s.max_window_days);
            cut_dates(
                from,
                today(cfg, report, now),
                max_days,
                buckets(cfg, report),
            )
            .into_iter()
            .map(Window::Dates)
            .collect()
        }
    }
}

/// The windows of a backfill of `report` over `[from, to]` (dates inclusive, or instants).
pub(crate) fn backfill_windows(
    cfg: &Config,
    report: Report,
    from: BackfillBound,
    to: BackfillBound,
) -> Vec<Window> {
    match cfg.date_settings(report) {
        None => {
            let max =
                chrono::Duration::minutes(cfg.reports.work_sessions.max_window_minutes as i64);
            cut_instants(from.start_instant(), to.end_instant(), max)
                .into_iter()
                .map(Window::Instants)
                .collect()
        }
        Some(s) => cut_dates(
            from.date(),
            to.date(),
            s.max_window_days,
            buckets(cfg, report),
        )
        .into_iter()
        .map(Window::Dates)
        .collect(),
    }
}

/// Where a poll of `report` from `position` starts at `now`: the minute-aligned instant
/// `[checkpoint − lookback_minutes` (or `start`) for work sessions; for date reports the first
/// day of its first window (`min(checkpoint + 1, today − horizon_days)`, or `start`, at the
/// start of its bucket). Re-read tiers end where this begins.
pub(crate) fn live_start(
    cfg: &Config,
    report: Report,
    position: Option<Position>,
    now: DateTime<Utc>,
) -> Position {
    let Some(s) = cfg.date_settings(report) else {
        let ws = &cfg.reports.work_sessions;
        let checkpoint = match position {
            Some(Position::Instant(t)) => Some(t),
            _ => None,
        };
        let first = ws.start.unwrap_or(now - chrono::Duration::hours(24));
        let lookback = chrono::Duration::minutes(ws.lookback_minutes as i64);
        return Position::Instant(floor_minute(instants_from(checkpoint, first, lookback)));
    };
    let today = today(cfg, report, now);
    let checkpoint = match position {
        Some(Position::Date(d)) => Some(d),
        _ => None,
    };
    let first = s
        .start
        .unwrap_or(today - chrono::Duration::days(i64::from(s.horizon_days)));
    let from = dates_from(checkpoint, first, today, s.horizon_days);
    Position::Date(buckets(cfg, report).floor(from))
}

/// Today in the report's timezone at `now`.
pub(crate) fn today(cfg: &Config, report: Report, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&cfg.report_timezone(report)).date_naive()
}

/// The spec of a report the pipeline was given: one of the configuration's.
pub(crate) fn spec(cfg: &Config, report: Report) -> ReportSpec {
    cfg.spec(report)
        .unwrap_or_else(|| panic!("{report} is not a report of the configuration"))
}

/// What Gladly is asked for to fill `window` of `report`. Panics for a report the
/// configuration does not have.
pub fn request(cfg: &Config, report: Report, window: &Window) -> ReportRequest {
    let spec = spec(cfg, report);
    match (spec.source, window) {
        (Source::WorkSessionEvents, w) => ReportRequest::WorkSessions {
            start: window_start_instant(w, cfg, report),
            end: window_end_instant(w, cfg, report),
        },
        // a capped day of a report Gladly serves time-precise, split into instants
        (
            Source::MetricSet {
                metric_set,
                filters,
                ..
            },
            Window::Instants(w),
        ) => ReportRequest::MetricSetBetween {
            metric_set,
            start: w.start(),
            end: w.end(),
            filters,
        },
        // a report Gladly takes by time range only: the days' instants
        (
            Source::MetricSet {
                metric_set,
                filters,
                time_range: true,
                ..
            },
            w @ Window::Dates(_),
        ) => ReportRequest::MetricSetBetween {
            metric_set,
            start: window_start_instant(w, cfg, report),
            end: window_end_instant(w, cfg, report),
            filters,
        },
        (
            Source::MetricSet {
                metric_set,
                aggregation_level,
                filters,
                ..
            },
            Window::Dates(w),
        ) => ReportRequest::MetricSet {
            metric_set,
            start: w.start(),
            end: w.end(),
            timezone: spec.timezone.name().to_string(),
            aggregation_level,
            filters,
        },
    }
}

/// True when `report` is requested by dates but Gladly also serves it over instants
/// (`startAtTime`/`endAtTime`: Contact Export), so a day too big for one answer can be split.
pub(crate) fn time_precise(cfg: &Config, report: Report) -> bool {
    spec(cfg, report).time_precise()
}

/// The halves of a capped `window` of `report`: its buckets' halves, or for a single day of a
/// time-precise report, the day's two halves as instants.
pub(crate) fn halves(
    cfg: &Config,
    report: Report,
    window: &Window,
    buckets: Buckets,
) -> Option<(Window, Window)> {
    if let Some(halves) = window.halves(buckets) {
        return Some(halves);
    }
    match window {
        Window::Dates(d) if time_precise(cfg, report) => {
            let start = window_start_instant(window, cfg, report);
            let end = window_end_instant(window, cfg, report);
            let day = InstantWindow::new(start, end)?;
            debug_assert_eq!(d.start(), d.end(), "only a single day cannot be halved");
            day.halves()
                .map(|(a, b)| (Window::Instants(a), Window::Instants(b)))
        }
        _ => None,
    }
}

/// Where a date report's checkpoint stands after `window`: its last day, or for a
/// time-precise piece of a day, the last day it completes (the day before the one its end
/// falls in, since its end is exclusive at midnight).
pub(crate) fn date_position(cfg: &Config, report: Report, window: &Window) -> Position {
    match window {
        Window::Dates(_) => window.end_position(),
        Window::Instants(w) => {
            let tz = cfg.report_timezone(report);
            let local = (w.end() - chrono::Duration::milliseconds(1)).with_timezone(&tz);
            let day = local.date_naive();
            // the piece ends the day only when it reaches the next midnight
            if midnight(day + chrono::Duration::days(1), tz) <= w.end() {
                Position::Date(day)
            } else {
                Position::Date(day - chrono::Duration::days(1))
            }
        }
    }
}

/// The buckets a report's date windows hold (whole days but for a bucketed report's
/// `aggregation_level`).
pub(crate) fn buckets(cfg: &Config, report: Report) -> Buckets {
    match spec(cfg, report).source {
        Source::WorkSessionEvents => Buckets::Days,
        Source::MetricSet {
            aggregation_level, ..
        } => Buckets::from_level(aggregation_level.as_deref()),
    }
}

/// The first instant `w` covers (a date window starts at its first local midnight).
pub(crate) fn window_start_instant(w: &Window, cfg: &Config, report: Report) -> DateTime<Utc> {
    match w {
        Window::Instants(w) => w.start(),
        Window::Dates(d) => midnight(d.start(), cfg.report_timezone(report)),
    }
}

/// The instant `w` ends at (a date window ends at the midnight after its last day).
pub(crate) fn window_end_instant(w: &Window, cfg: &Config, report: Report) -> DateTime<Utc> {
    match w {
        Window::Instants(w) => w.end(),
        Window::Dates(d) => midnight(
            d.end() + chrono::Duration::days(1),
            cfg.report_timezone(report),
        ),
    }
}

/// The instant day `d` starts in `tz`: its local midnight, or, where the clocks jump over
/// midnight (a DST gap, e.g. America/Santiago in September), the first local time that
/// exists after it (01:00 there).
pub(crate) fn midnight(d: NaiveDate, tz: chrono_tz::Tz) -> DateTime<Utc> {
    use chrono::TimeZone;
    let naive = d.and_hms_opt(0, 0, 0).expect("midnight");
    (0..=24 * 4)
        .find_map(|quarter| {
            let local = naive + chrono::Duration::minutes(15 * quarter);
            tz.from_local_datetime(&local).earliest()
        })
        .expect("every day has a local time that exists")
        .with_timezone(&Utc)
}

/// A backfill bound from the command line: a date or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackfillBound {
    /// A calendar day (inclusive at either end).
    Date(NaiveDate),
    /// An instant.
    Instant(DateTime<Utc>),
}

impl BackfillBound {
    /// Parses `2024-03-14` or an RFC 3339 instant.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(BackfillBound::Date(d));
        }
        DateTime::parse_from_rfc3339(s)
            .map(|t| BackfillBound::Instant(t.with_timezone(&Utc)))
            .map_err(|_| format!("{s:?} is neither a date (2024-03-14) nor an RFC 3339 instant (2024-03-14T10:00:00Z)"))
    }

    pub(crate) fn start_instant(self) -> DateTime<Utc> {
        match self {
            BackfillBound::Date(d) => d.and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
            BackfillBound::Instant(t) => t,
        }
    }

    pub(crate) fn end_instant(self) -> DateTime<Utc> {
        match self {
            BackfillBound::Date(d) => {
                BackfillBound::Date(d + chrono::Duration::days(1)).start_instant()
            }
            BackfillBound::Instant(t) => t,
        }
    }

    pub(crate) fn date(self) -> NaiveDate {
        match self {
            BackfillBound::Date(d) => d,
            BackfillBound::Instant(t) => t.date_naive(),
        }
    }

    /// Text for the backfill's checkpoint key.
    pub fn text(self) -> String {
        match self {
            BackfillBound::Date(d) => d.to_string(),
            BackfillBound::Instant(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backfill_bounds_parse_dates_and_instants() {
        assert_eq!(
            BackfillBound::parse("2024-03-14").unwrap(),
            BackfillBound::Date(NaiveDate::from_ymd_opt(2024, 3, 14).unwrap())
        );
        assert!(matches!(
            BackfillBound::parse("2024-03-14T10:00:00Z").unwrap(),
            BackfillBound::Instant(_)
        ));
        let err = BackfillBound::parse("yesterday").unwrap_err();
        assert!(err.contains("2024-03-14"), "{err}");
    }

    #[test]
    fn a_day_starts_at_local_midnight() {
        let d = NaiveDate::from_ymd_opt(2024, 3, 10).unwrap();
        // New York's spring-forward day still has a midnight (the gap is at 02:00)
        assert_eq!(
            midnight(d, chrono_tz::America::New_York).to_rfc3339(),
            "2024-03-10T05:00:00+00:00"
        );
        assert_eq!(
            midnight(d, chrono_tz::UTC).to_rfc3339(),
            "2024-03-10T00:00:00+00:00"
        );
    }

    #[test]
    fn a_day_whose_midnight_falls_in_a_dst_gap_starts_at_the_first_local_time_after_it() {
        // Chile springs forward at 00:00 on 2024-09-08: the day starts at 01:00 -03
        let d = NaiveDate::from_ymd_opt(2024, 9, 8).unwrap();
        assert_eq!(
            midnight(d, chrono_tz::America::Santiago).to_rfc3339(),
            "2024-09-08T04:00:00+00:00"
        );
        // and the day before ends there too: no instant belongs to neither day
        let day_before_end = midnight(
            d.pred_opt().unwrap() + chrono::Duration::days(1),
            chrono_tz::America::Santiago,
        );
        assert_eq!(day_before_end, midnight(d, chrono_tz::America::Santiago));
    }

    #[test]
    fn a_report_taken_by_time_range_sends_its_days_as_instants_with_its_filters() {
        let mut cfg = Config::default();
        let v4 = crate::config::DateReportSettings {
            preset: Some("work_session_events_v4".into()),
            timezone: "America/New_York".into(),
            filters: Some(toml::toml! { inboxes = ["ib1"] }),
            ..Default::default()
        };
        cfg.reports.configured.insert("ws_v4".into(), v4);
        let report = Report::named("ws_v4").unwrap();
        let d = NaiveDate::from_ymd_opt(2024, 3, 14).unwrap();
        let day = Window::Dates(crate::pipeline::window::DateWindow::new(d, d).unwrap());
        let ReportRequest::MetricSetBetween {
            metric_set,
            start,
            end,
            filters,
        } = request(&cfg, report, &day)
        else {
            panic!("a time range")
        };
        assert_eq!(metric_set, "WorkSessionEventsReportV4");
        assert_eq!(start.to_rfc3339(), "2024-03-14T04:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2024-03-15T04:00:00+00:00");
        assert_eq!(filters, Some(serde_json::json!({"inboxes": ["ib1"]})));
        assert!(time_precise(&cfg, report), "a capped day can be halved");
        // a preset without a time range sends dates
        cfg.reports.configured.get_mut("ws_v4").unwrap().time_range = Some(false);
        assert!(matches!(
            request(&cfg, report, &day),
            ReportRequest::MetricSet { .. }
        ));
        assert!(!time_precise(&cfg, report));
    }

    #[test]
    fn a_capped_contact_export_day_halves_into_instants_and_the_checkpoint_waits_for_the_day() {
        let mut cfg = Config::default();
        cfg.reports.contacts.timezone = "America/New_York".into();
        let d = NaiveDate::from_ymd_opt(2024, 3, 14).unwrap();
        let day = Window::Dates(super::super::window::DateWindow::new(d, d).unwrap());
        let (a, b) = halves(&cfg, Report::CONTACTS, &day, Buckets::Days).expect("halves");
        let (Window::Instants(a), Window::Instants(b)) = (a, b) else {
            panic!("instants: {a:?} {b:?}")
        };
        assert_eq!(
            a.start().to_rfc3339(),
            "2024-03-14T04:00:00+00:00",
            "New York midnight"
        );
        assert_eq!(a.end(), b.start());
        assert_eq!(b.end().to_rfc3339(), "2024-03-15T04:00:00+00:00");
        assert!(matches!(
            request(&cfg, Report::CONTACTS, &Window::Instants(a)),
            ReportRequest::MetricSetBetween { .. }
        ));
        let before = Position::Date(d - chrono::Duration::days(1));
        assert_eq!(
            date_position(&cfg, Report::CONTACTS, &Window::Instants(a)),
            before
        );
        assert_eq!(
            date_position(&cfg, Report::CONTACTS, &Window::Instants(b)),
            Position::Date(d)
        );
        // agent summary has no time-precise form: a single day stays whole
        assert_eq!(
            halves(&cfg, Report::AGENT_SUMMARY, &day, Buckets::Days),
            None
        );
        // and a piece can be halved again, down to minutes
        assert!(halves(&cfg, Report::CONTACTS, &Window::Instants(a), Buckets::Days).is_some());
    }
}
