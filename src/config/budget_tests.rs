//! The budget's arithmetic, its summary line and its refusal.

use super::*;
use crate::config::{DateTier, InstantTier};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn the_defaults_need_28_requests_an_hour_of_480() {
    let b = Config::default().budget();
    assert_eq!(b.allowed_per_hour(), 480);
    let ws = &b.reports[0];
    assert_eq!(ws.report, Report::WORK_SESSIONS);
    // 125 minutes a poll (lookback + cadence) fit one 6-hour window, 12 polls an hour
    assert_eq!((ws.live.windows, ws.live.runs_per_hour), (1, 12.0));
    // 24 h less the 2 h lookback: 22 h in 6-hour windows, hourly
    assert_eq!(ws.tiers[0].what, "24h every 60 min");
    assert_eq!((ws.tiers[0].windows, ws.tiers[0].runs_per_hour), (4, 1.0));
    // 166 h in 6-hour windows, daily
    assert_eq!(ws.tiers[1].windows, 28);
    assert!(close(ws.tiers[1].per_hour(), 28.0 / 24.0));
    for r in &b.reports[1..] {
        // the horizon's 3 days and today, hourly; 27 more days, daily
        assert_eq!((r.live.windows, r.live.runs_per_hour), (4, 1.0), "{r:?}");
        assert_eq!(r.tiers[0].what, "30d every 24 h");
        assert_eq!(r.tiers[0].windows, 27, "{r:?}");
        assert!(close(r.per_hour(), 4.0 + 27.0 / 24.0));
    }
    assert!(close(
        b.used_per_hour(),
        12.0 + 4.0 + 28.0 / 24.0 + 2.0 * (4.0 + 27.0 / 24.0)
    ));
    assert_eq!(
        b.summary(),
        "28 report requests/hour of 480 allowed (6%; \
         work_sessions 17.2 = live 12 + 24h every 60 min 4 + 168h every 1440 min 1.2; \
         contacts 5.1 = live 4 + 30d every 24 h 1.1; \
         agent_summary 5.1 = live 4 + 30d every 24 h 1.1)"
    );
    b.check().unwrap();
}

#[test]
fn only_enabled_reports_and_tiers_in_force_count() {
    let mut c = Config::default();
    c.reports.contacts.enabled = false;
    c.reports.agent_summary.reread = Some(vec![]);
    // a lookback of a day leaves only the weekly default
    c.reports.work_sessions.lookback_minutes = 24 * 60;
    let b = c.budget();
    assert_eq!(b.reports.len(), 2);
    let ws = &b.reports[0];
    assert_eq!(ws.tiers.len(), 1);
    assert_eq!(ws.tiers[0].what, "168h every 1440 min");
    // (7 - 1) days in 6-hour windows
    assert_eq!(ws.tiers[0].windows, 24);
    // a day and 5 minutes: five 6-hour windows a poll
    assert_eq!(ws.live.windows, 5);
    assert!(b.reports[1].tiers.is_empty());
}

#[test]
fn a_tier_runs_at_most_once_per_poll_cycle() {
    let mut c = Config::default();
    c.reports.work_sessions.cadence_secs = 2 * 3600;
    let ws = &c.budget().reports[0];
    // the default hourly tier is due every hour but runs once per two-hour cycle
    assert_eq!(ws.tiers[0].runs_per_hour, 0.5);
    assert_eq!(ws.live.runs_per_hour, 0.5);
}

#[test]
fn date_windows_hold_whole_buckets() {
    // days: one request per max_window_days
    assert_eq!(date_windows(27, 1, None), 27);
    assert_eq!(date_windows(27, 7, Some("daily")), 4);
    assert_eq!(date_windows(0, 1, None), 0);
    assert_eq!(date_windows(1, 1, None), 1);
    // 27 days touch at most 5 ISO weeks; one window each unless a window fits two
    assert_eq!(date_windows(27, 1, Some("weekly")), 5);
    assert_eq!(date_windows(27, 14, Some("weekly")), 3);
    // a month is one window however short max_window_days is; 27 days touch 2 months
    assert_eq!(date_windows(27, 1, Some("monthly")), 2);
    assert_eq!(date_windows(4, 1, Some("quarterly")), 2);
    assert_eq!(date_windows(1, 1, Some("quarterly")), 1);
}

#[test]
fn configured_tiers_count_in_their_own_units() {
    let mut c = Config::default();
    c.reports.work_sessions.reread = Some(vec![InstantTier {
        span_hours: 48,
        every_minutes: 30,
    }]);
    c.reports.agent_summary.aggregation_level = Some("weekly".into());
    c.reports.agent_summary.reread = Some(vec![DateTier {
        span_days: 90,
        every_hours: 12,
    }]);
    let b = c.budget();
    let t = &b.reports[0].tiers[0];
    // 46 hours in 6-hour windows, twice an hour
    assert_eq!((t.windows, t.runs_per_hour), (8, 2.0));
    assert_eq!(t.what, "48h every 30 min");
    let a = &b.reports[2];
    // the horizon (4 days) touches at most 2 weeks; 87 more days at most 14
    assert_eq!(a.live.windows, 2);
    assert_eq!(a.tiers[0].windows, 14);
    assert!(close(a.tiers[0].runs_per_hour, 1.0 / 12.0));
}

#[test]
fn over_budget_is_refused_naming_the_keys_that_lower_it() {
    let mut c = Config::default();
    c.gladly.requests_per_minute = 1;
    c.reports.work_sessions.cadence_secs = 60;
    c.reports.work_sessions.reread = Some(vec![InstantTier {
        span_hours: 24,
        every_minutes: 1,
    }]);
    let b = c.budget();
    assert!(b.used_per_hour() > 60.0, "{}", b.summary());
    let err = b.check().unwrap_err().to_string();
    for part in [
        "config key `gladly.requests_per_minute`",
        "more than the 60 that 1 per minute allow",
        // the largest first: the tier, then the live polls
        "work_sessions 24h every 1 min needs 240/h (4 requests every 1 min): raise reports.work_sessions.reread[0].every_minutes or lower its span_hours",
        "work_sessions live needs 60/h (1 request every 1 min): raise reports.work_sessions.cadence_secs or max_window_minutes, or lower lookback_minutes",
        "raise gladly.requests_per_minute",
    ] {
        assert!(err.contains(part), "{part:?} not in {err}");
    }
    let tier_at = err.find("24h every 1 min").unwrap();
    let live_at = err.find("live needs").unwrap();
    assert!(tier_at < live_at, "largest first: {err}");
}

#[test]
fn a_default_tier_over_budget_says_how_to_replace_the_defaults() {
    let mut c = Config::default();
    c.gladly.requests_per_minute = 1;
    c.reports.contacts.cadence_secs = 60;
    c.reports.work_sessions.enabled = false;
    c.reports.agent_summary.enabled = false;
    let err = c.budget().check().unwrap_err().to_string();
    for part in [
        "contacts live needs 240/h (4 requests every 1 min): raise reports.contacts.cadence_secs or max_window_days, or lower horizon_days",
        "contacts 30d every 24 h needs 1.1/h (27 requests every 24 h): set reports.contacts.reread to replace the default tiers with rarer or shorter ones, or to [] for none",
    ] {
        assert!(err.contains(part), "{part:?} not in {err}");
    }
    c.reports.contacts.cadence_secs = 3600;
    c.reports.contacts.reread = Some(vec![DateTier {
        span_days: 400,
        every_hours: 1,
    }]);
    let err = c.budget().check().unwrap_err().to_string();
    assert!(
        err.contains("raise reports.contacts.reread[0].every_hours or lower its span_days"),
        "{err}"
    );
}

#[test]
fn the_events_feed_and_the_lists_count_as_scheduled_gets() {
    let mut c = Config::default();
    let reports_only = c.budget().summary();
    assert!(!reports_only.contains("GETs"), "{reports_only}");
    c.events.enabled = true;
    c.dimensions.enabled = true;
    let b = c.budget();
    // 60 polls an hour at the default cadence; four lists once an hour
    assert_eq!(b.gets_per_hour(), 64.0);
    let s = b.summary();
    assert!(
        s.starts_with(&reports_only)
            && s.ends_with("; scheduled GETs 64/hour of 18000 allowed (events 60, dimensions 4)"),
        "{s}"
    );
    c.gladly.requests_per_second = 0;
    let err = c.budget().check().unwrap_err().to_string();
    assert!(
        err.contains("gladly.requests_per_second") && err.contains("events.cadence_secs"),
        "{err}"
    );
}
