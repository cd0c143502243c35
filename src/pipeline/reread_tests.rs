//! Re-read tiers: due, the range a pass covers next to the live windows, its windows, its
//! progress records and resuming them, a day of cycles, and the budget's window counts
//! against the planner's.

use super::*;
use crate::config::{DateTier, InstantTier};
use crate::pipeline::plan::live_start;
use crate::pipeline::window::{self, Buckets};
use chrono::{NaiveDate, TimeZone};
use proptest::prelude::*;

fn t(day: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, day, h, m, 0).unwrap()
}

fn d(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, day).unwrap()
}

fn at(x: DateTime<Utc>) -> Position {
    Position::Instant(x)
}

fn mins(n: u64) -> std::time::Duration {
    std::time::Duration::from_secs(n * 60)
}

fn ws_tier(cfg: &Config, i: usize) -> RereadTier {
    cfg.reread_tiers(Report::WORK_SESSIONS)[i]
}

fn base(updated_at: DateTime<Utc>) -> Checkpoint {
    Checkpoint {
        report: Report::WORK_SESSIONS,
        scope: Scope::Run,
        position: at(t(14, 23, 0)),
        updated_at,
        run_id: "r".into(),
        service_version: "0".into(),
        window: Some(("a".into(), "b".into())),
        rows: 1,
        complete: false,
        pass: None,
    }
}

#[test]
fn a_tier_is_due_without_a_pass_while_one_is_under_way_and_every_period() {
    let now = t(14, 12, 0);
    assert!(TierProgress::default().due(mins(60), now));
    let done = |started_at| TierProgress {
        open: None,
        last: Some(CompletedPass {
            started_at,
            finished_at: started_at,
        }),
    };
    assert!(!done(t(14, 11, 1)).due(mins(60), now));
    assert!(done(t(14, 11, 0)).due(mins(60), now));
    let open = TierProgress {
        open: Some(OpenPass {
            from: at(t(13, 12, 0)),
            to: at(t(14, 10, 0)),
            started_at: t(14, 11, 59),
            done: None,
        }),
        ..done(t(14, 11, 59))
    };
    assert!(open.due(mins(60), now), "an interrupted pass resumes");
}

#[test]
fn an_interrupted_pass_resumes_unless_a_fresh_one_is_due_anyway() {
    let open = OpenPass {
        from: at(t(13, 12, 0)),
        to: at(t(14, 10, 0)),
        started_at: t(14, 11, 0),
        done: Some(at(t(13, 18, 0))),
    };
    let p = TierProgress {
        open: Some(open),
        last: None,
    };
    let fresh = Some((at(t(13, 13, 0)), at(t(14, 11, 0))));
    assert_eq!(p.pass_at(mins(60), t(14, 11, 30), fresh), Some(open));
    let stale = p.pass_at(mins(60), t(14, 12, 0), fresh).unwrap();
    assert_eq!(
        (stale.from, stale.to, stale.started_at, stale.done),
        (at(t(13, 13, 0)), at(t(14, 11, 0)), t(14, 12, 0), None)
    );
    assert_eq!(
        TierProgress::default().pass_at(mins(60), t(14, 12, 0), None),
        None
    );
}

#[test]
fn a_work_session_pass_ends_where_the_live_windows_begin() {
    let cfg = Config::default();
    let now = t(14, 12, 3);
    // the live poll from a checkpoint at 11:55 reads from 09:55 on
    let live = live_start(&cfg, Report::WORK_SESSIONS, Some(at(t(14, 11, 55))), now);
    assert_eq!(live, at(t(14, 9, 55)));
    let (from, to) = pass_range(&cfg, Report::WORK_SESSIONS, &ws_tier(&cfg, 0), live, now).unwrap();
    assert_eq!((from, to), (at(t(13, 12, 3)), at(t(14, 9, 55))));
    // the first poll (no checkpoint, no start: the last 24 hours) leaves the day tier nothing
    let first = live_start(&cfg, Report::WORK_SESSIONS, None, now);
    assert_eq!(
        pass_range(&cfg, Report::WORK_SESSIONS, &ws_tier(&cfg, 0), first, now),
        None
    );
    // while the week tier reaches six more days back
    let week = pass_range(&cfg, Report::WORK_SESSIONS, &ws_tier(&cfg, 1), first, now).unwrap();
    assert_eq!(week, (at(t(7, 12, 3)), at(t(13, 12, 3))));
}

#[test]
fn a_pass_never_reaches_before_start() {
    let mut cfg = Config::default();
    cfg.reports.work_sessions.start = Some(t(13, 0, 0));
    let now = t(14, 12, 0);
    let live = live_start(&cfg, Report::WORK_SESSIONS, Some(at(t(14, 12, 0))), now);
    let week = pass_range(&cfg, Report::WORK_SESSIONS, &ws_tier(&cfg, 1), live, now).unwrap();
    assert_eq!(week, (at(t(13, 0, 0)), at(t(14, 10, 0))));
    // a first poll from `start` has nothing before it to re-read
    let first = live_start(&cfg, Report::WORK_SESSIONS, None, now);
    assert_eq!(
        pass_range(&cfg, Report::WORK_SESSIONS, &ws_tier(&cfg, 1), first, now),
        None
    );
}

#[test]
fn a_date_pass_covers_the_span_before_the_horizon_in_whole_buckets() {
    let mut cfg = Config::default();
    let tier = cfg.reread_tiers(Report::CONTACTS)[0];
    let now = t(14, 12, 0);
    let live = live_start(&cfg, Report::CONTACTS, Some(Position::Date(d(14))), now);
    assert_eq!(live, Position::Date(d(11)));
    let range = pass_range(&cfg, Report::CONTACTS, &tier, live, now).unwrap();
    // 30 days before the 14th, up to the day before the horizon
    assert_eq!(
        range,
        (
            Position::Date(d(14) - Duration::days(30)),
            Position::Date(d(10))
        )
    );
    let pass = OpenPass {
        from: range.0,
        to: range.1,
        started_at: now,
        done: None,
    };
    let windows = pass_windows(&cfg, Report::CONTACTS, &pass);
    assert_eq!(windows.len(), 27);
    assert_eq!(
        windows.last().unwrap().end_position(),
        Position::Date(d(10))
    );

    // weekly agent summary: the live windows start at Monday the 11th (the horizon's
    // Monday); the pass ends on the Sunday before and holds whole weeks
    cfg.reports.agent_summary.aggregation_level = Some("weekly".into());
    let tier = cfg.reread_tiers(Report::AGENT_SUMMARY)[0];
    let live = live_start(
        &cfg,
        Report::AGENT_SUMMARY,
        Some(Position::Date(d(14))),
        now,
    );
    assert_eq!(live, Position::Date(d(11)));
    let (from, to) = pass_range(&cfg, Report::AGENT_SUMMARY, &tier, live, now).unwrap();
    assert_eq!(to, Position::Date(d(10)));
    let pass = OpenPass {
        from,
        to,
        started_at: now,
        done: None,
    };
    let windows = pass_windows(&cfg, Report::AGENT_SUMMARY, &pass);
    for w in &windows {
        let Window::Dates(w) = w else { panic!() };
        assert_eq!(Buckets::Weeks.floor(w.start()), w.start(), "{w:?}");
        assert_eq!(w.days(), 7, "{w:?}");
    }
    assert_eq!(
        windows.last().unwrap().end_position(),
        Position::Date(d(10))
    );

    // a horizon as long as the span leaves nothing
    cfg.reports.contacts.horizon_days = 30;
    let live = live_start(&cfg, Report::CONTACTS, Some(Position::Date(d(14))), now);
    let configured = RereadTier::from((
        Some(0),
        DateTier {
            span_days: 30,
            every_hours: 24,
        },
    ));
    assert_eq!(
        pass_range(&cfg, Report::CONTACTS, &configured, live, now),
        None
    );
}

#[test]
fn pass_windows_are_cut_like_live_ones_and_resume_after_the_last_committed() {
    let cfg = Config::default();
    let pass = OpenPass {
        from: at(t(13, 12, 3)),
        to: at(t(14, 9, 55)),
        started_at: t(14, 12, 3),
        done: None,
    };
    let windows = pass_windows(&cfg, Report::WORK_SESSIONS, &pass);
    assert_eq!(windows.len(), 4, "21 h 52 min in 6-hour windows");
    let Window::Instants(first) = windows[0] else {
        panic!()
    };
    assert_eq!((first.start(), first.end()), (t(13, 12, 3), t(13, 18, 3)));
    assert_eq!(windows[3].end_position(), pass.to);
    let resumed = OpenPass {
        done: Some(windows[1].end_position()),
        ..pass
    };
    assert_eq!(
        pass_windows(&cfg, Report::WORK_SESSIONS, &resumed),
        windows[2..]
    );
    let finished = OpenPass {
        done: Some(pass.to),
        ..pass
    };
    assert!(pass_windows(&cfg, Report::WORK_SESSIONS, &finished).is_empty());

    let dates = OpenPass {
        from: Position::Date(d(1)),
        to: Position::Date(d(5)),
        started_at: t(14, 0, 0),
        done: Some(Position::Date(d(3))),
    };
    let left = pass_windows(&cfg, Report::CONTACTS, &dates);
    assert_eq!(
        left.iter().map(Window::end_position).collect::<Vec<_>>(),
        [Position::Date(d(4)), Position::Date(d(5))]
    );
    // one day left is one window; none once the last day is done
    let last_day = OpenPass {
        done: Some(Position::Date(d(4))),
        ..dates
    };
    assert_eq!(
        pass_windows(&cfg, Report::CONTACTS, &last_day)
            .iter()
            .map(Window::bounds_text)
            .collect::<Vec<_>>(),
        [(d(5).to_string(), d(5).to_string())]
    );
    let all_done = OpenPass {
        done: Some(Position::Date(d(5))),
        ..dates
    };
    assert!(pass_windows(&cfg, Report::CONTACTS, &all_done).is_empty());
}

#[test]
fn each_window_records_the_pass_and_the_last_one_completes_it() {
    let earlier = CompletedPass {
        started_at: t(13, 12, 0),
        finished_at: t(13, 12, 5),
    };
    let pass = OpenPass {
        from: at(t(13, 12, 0)),
        to: at(t(14, 10, 0)),
        started_at: t(14, 12, 0),
        done: None,
    };
    let progress = TierProgress {
        open: Some(pass),
        last: Some(earlier),
    };
    let w = |a, b| Window::Instants(crate::pipeline::window::InstantWindow::new(a, b).unwrap());
    let mid = pass_record(
        base(t(14, 12, 1)),
        "24h",
        &progress,
        &pass,
        w(t(13, 12, 0), t(13, 18, 0)).end_position(),
    );
    assert_eq!(mid.scope, Scope::Reread { tier: "24h".into() });
    assert_eq!((mid.position, mid.complete), (at(t(13, 18, 0)), false));
    let record = mid.pass.unwrap();
    assert_eq!(
        (record.from, record.to, record.started_at),
        (pass.from, pass.to, pass.started_at)
    );
    assert_eq!(
        record.last_complete,
        Some(earlier),
        "the last complete pass is carried"
    );
    // read back: the pass resumes after its last window
    let back = TierProgress::from_record(&mid);
    assert_eq!(back.open.unwrap().done, Some(at(t(13, 18, 0))));
    assert_eq!(back.last, Some(earlier));

    let end = pass_record(
        base(t(14, 12, 4)),
        "24h",
        &back,
        &back.open.unwrap(),
        w(t(14, 6, 0), t(14, 10, 0)).end_position(),
    );
    assert!(end.complete);
    let done = TierProgress::from_record(&end);
    assert_eq!(done.open, None);
    assert_eq!(
        done.last,
        Some(CompletedPass {
            started_at: t(14, 12, 0),
            finished_at: t(14, 12, 4)
        })
    );
    assert!(!done.due(mins(60), t(14, 12, 59)));
    assert!(done.due(mins(60), t(14, 13, 0)));
    // a record without a pass (never written by a tier) means nothing
    assert_eq!(
        TierProgress::from_record(&base(t(14, 0, 0))),
        TierProgress::default()
    );
}

/// Cycles every `cadence` minutes from a day after `start` for `hours`, each due tier's pass
/// completing in its cycle. Returns the passes per tier, and the longest a row anchored
/// within the last day, and within the last week, went without being read by a live poll or
/// a pass.
fn simulate(cfg: &Config, cadence: i64, hours: i64) -> (Vec<u32>, Duration, Duration) {
    let mut cfg = cfg.clone();
    let t0 = t(1, 0, 0);
    cfg.reports.work_sessions.start = Some(t0);
    let tiers = cfg.reread_tiers(Report::WORK_SESSIONS);
    let mut progress = vec![TierProgress::default(); tiers.len()];
    let mut passes = vec![0; tiers.len()];
    let (mut worst_day, mut worst_week) = (Duration::zero(), Duration::zero());
    // when each 10-minute slot from t0 on was last read
    let slot = |x: DateTime<Utc>| ((x - t0).num_minutes().max(0) / 10) as usize;
    let end = t0 + Duration::days(1) + Duration::hours(hours);
    let mut read_at = vec![t0; slot(end) + 1];
    let mut position: Option<Position> = None;
    let mut now = t0 + Duration::days(1);
    while now < end {
        let live = live_start(&cfg, Report::WORK_SESSIONS, position, now);
        let Position::Instant(live_from) = live else {
            panic!("instants")
        };
        read_at[slot(live_from)..=slot(now)].fill(now);
        position = Some(at(window::floor_minute(now)));
        for (i, tier) in tiers.iter().enumerate() {
            if !progress[i].due(tier.every, now) {
                continue;
            }
            passes[i] += 1;
            let range = pass_range(&cfg, Report::WORK_SESSIONS, tier, live, now);
            let pass = progress[i].pass_at(tier.every, now, range);
            if let Some(OpenPass {
                from: Position::Instant(a),
                to: Position::Instant(b),
                ..
            }) = pass
            {
                read_at[slot(a)..slot(b)].fill(now);
            }
            let ran = pass.unwrap_or(OpenPass {
                from: live,
                to: live,
                started_at: now,
                done: None,
            });
            progress[i] = TierProgress::completed(&ran, now);
        }
        // slots wholly within the last day (week), the one at now excluded
        for (span, worst) in [(1, &mut worst_day), (7, &mut worst_week)] {
            let oldest = slot(now - Duration::days(span)) + 1;
            for r in &read_at[oldest..slot(now)] {
                *worst = (*worst).max(now - *r);
            }
        }
        now += Duration::minutes(cadence);
    }
    (passes, worst_day, worst_week)
}

#[test]
fn two_days_of_five_minute_cycles_run_each_tier_on_its_period() {
    let (passes, day, week) = simulate(&Config::default(), 5, 48);
    // 48 hours: the day tier hourly, the week tier daily (their first, empty, passes included)
    assert_eq!(passes, vec![48, 2]);
    // every row of the last day was read within the last hour (and a cycle); of the week,
    // within a day (and a cycle)
    assert!(day <= Duration::minutes(65), "{day}");
    assert!(week <= Duration::minutes(24 * 60 + 5), "{week}");
}

#[test]
fn with_tiers_off_rows_past_the_lookback_are_never_read_again() {
    let mut cfg = Config::default();
    cfg.reports.work_sessions.reread = Some(vec![]);
    let (passes, day, week) = simulate(&cfg, 5, 48);
    assert!(passes.is_empty());
    // a row read last when it left the 2-hour lookback is 22 hours stale a day later
    assert!(day >= Duration::hours(21), "{day}");
    assert!(week >= Duration::hours(45), "{week}");
}

proptest! {
    /// Wherever the checkpoint stands, a work-session pass and the live windows of its cycle
    /// meet without a gap or an overlap, and together cover the tier's span up to now.
    #[test]
    fn a_pass_and_the_live_windows_cover_the_span(
        behind in 0i64..(3 * 24 * 60),
        now_min in 0i64..(24 * 60),
        lookback in 60u64..600,
        span_hours in 1u64..200,
    ) {
        let mut cfg = Config::default();
        cfg.reports.work_sessions.lookback_minutes = lookback;
        let tier = RereadTier::from((Some(0), InstantTier { span_hours, every_minutes: 60 }));
        let now = t(14, 0, 0) + Duration::minutes(now_min) + Duration::seconds(17);
        let position = Some(at(window::floor_minute(now - Duration::minutes(behind))));
        let live = live_start(&cfg, Report::WORK_SESSIONS, position, now);
        let Position::Instant(live_from) = live else { panic!() };
        match pass_range(&cfg, Report::WORK_SESSIONS, &tier, live, now) {
            Some((Position::Instant(from), Position::Instant(to))) => {
                prop_assert_eq!(to, live_from);
                prop_assert_eq!(from, window::floor_minute(now - tier.span_duration()));
                let pass = OpenPass { from: at(from), to: at(to), started_at: now, done: None };
                let windows = pass_windows(&cfg, Report::WORK_SESSIONS, &pass);
                prop_assert_eq!(windows.first().map(|w| w.bounds_text().0), Some(window::rfc3339(from)));
                prop_assert_eq!(windows.last().map(Window::end_position), Some(at(to)));
            }
            None => prop_assert!(now - tier.span_duration() >= live_from - Duration::minutes(1)),
            other => prop_assert!(false, "{other:?}"),
        }
    }

    /// The budget never counts fewer windows than the planner cuts: a live poll of the
    /// horizon and a pass of the span before it, at any date and bucket size.
    #[test]
    fn the_budget_counts_at_least_the_planned_date_windows(
        day in 0i64..800,
        horizon in 0u32..10,
        span in 1u32..120,
        max_days in 1u32..40,
        level in 0usize..5,
    ) {
        let level = ["halfHourly", "daily", "weekly", "monthly", "quarterly"][level];
        let mut cfg = Config::default();
        cfg.reports.agent_summary.aggregation_level = Some(level.into());
        cfg.reports.agent_summary.horizon_days = horizon;
        cfg.reports.agent_summary.max_window_days = max_days;
        let today = d(1) + Duration::days(day);
        let now = crate::pipeline::plan::midnight(today, chrono_tz::UTC) + Duration::hours(12);
        let b = Buckets::from_level(Some(level));
        let live = live_start(&cfg, Report::AGENT_SUMMARY, Some(Position::Date(today)), now);
        let Position::Date(live_from) = live else { panic!() };
        let planned = cut_dates(live_from, today, max_days, b).len() as u64;
        let budget = |days| crate::config::date_windows(days, u64::from(max_days), Some(level));
        prop_assert!(planned <= budget(u64::from(horizon) + 1), "live: {planned}");
        let tier = RereadTier::from((Some(0), DateTier { span_days: horizon + span, every_hours: 24 }));
        if let Some((from, to)) = pass_range(&cfg, Report::AGENT_SUMMARY, &tier, live, now) {
            let pass = OpenPass { from, to, started_at: now, done: None };
            let planned = pass_windows(&cfg, Report::AGENT_SUMMARY, &pass).len() as u64;
            prop_assert!(planned <= budget(u64::from(span)), "pass: {planned}");
        }
    }
}
