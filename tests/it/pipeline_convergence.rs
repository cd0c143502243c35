//! End to end, in process: the real pipeline polls the simulator through three simulated days
//! (contacts opening, moving between windows, ending) into the real broker and registry, and
//! every topic upserted by key equals the simulator's ground truth — also with 429s, 5xx, cut
//! bodies and the row cap switched on, and with unconvertible rows going to the dead-letter
//! topic.

use crate::support;

use std::collections::BTreeMap;

use chrono::Duration;
use gladly_kafka::gladly::ReportRequest;
use gladly_kafka::pipeline::service;
use gladly_kafka::pipeline::BackfillBound;
use gladly_kafka::report::Report;
use gladly_sim::RetryAfter;

use support::pipeline::world;
use support::sim::TruthExt;

async fn poll_days(
    w: &support::pipeline::World,
    p: &gladly_kafka::pipeline::Pipeline,
    polls: u32,
    every: Duration,
) -> u64 {
    poll_days_counting(w, p, polls, every).await.0
}

/// Like [`poll_days`], also returning the records each report's cycles say they published.
async fn poll_days_counting(
    w: &support::pipeline::World,
    p: &gladly_kafka::pipeline::Pipeline,
    polls: u32,
    every: Duration,
) -> (u64, BTreeMap<Report, u64>) {
    let mut windows = 0;
    let mut records = BTreeMap::new();
    for _ in 0..polls {
        w.clock.advance(every);
        for (report, res) in service::once(p, None).await {
            let s = res.unwrap_or_else(|e| panic!("{report}: {e}"));
            windows += s.windows;
            *records.entry(report).or_default() += s.records;
        }
    }
    (windows, records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_days_of_polling_converge_on_the_truth() {
    let w = world(20.0).await;
    let p = w.pipeline().await;
    let windows = poll_days(&w, &p, 24, Duration::hours(3)).await;
    assert!(
        windows > 24 * 3,
        "every poll published windows of every report ({windows})"
    );
    for report in Report::BUILT_IN {
        let keys = w.assert_converged(report).await;
        assert!(keys > 10, "{report}: {keys} keys");
    }
    // tombstones were needed: contacts opened in one poll and ended in a later one
    let topic = w.config.topics.report_topic(Report::WORK_SESSIONS);
    let all = tokio::task::spawn_blocking(move || support::kafka::read_all(&topic))
        .await
        .unwrap();
    assert!(
        all.iter().any(|r| r.value.is_none()),
        "provisional keys were tombstoned"
    );
    assert!(
        all.iter()
            .all(|r| r.headers.iter().any(|(k, _)| k == "gladly.run_id")),
        "every record has headers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_do_not_change_the_result() {
    let w = world(2.0).await;
    // work-session polls re-read two days (~150 rows): the cap of 100 splits them, while a day
    // of contacts (~50 rows) stays under it
    let mut config_ws = w.config.clone();
    config_ws.reports.work_sessions.lookback_minutes = 48 * 60;
    config_ws.reports.work_sessions.max_window_minutes = 72 * 60;
    config_ws.reports.work_sessions.start = Some(support::pipeline::t0() - Duration::days(2));
    config_ws.pipeline.row_cap = 100;
    let w = support::pipeline::World {
        config: config_ws,
        ..w
    };
    w.sim.faults().update(|f| {
        f.rate_limit_next = 5;
        f.rate_limit_retry_after = RetryAfter::Seconds(0);
        f.error_rate = 0.1;
        f.error_status = 503;
        f.cut_next = 4;
        f.cut_after_bytes = 3000;
        f.row_cap = Some(100);
    });
    let p = w.pipeline().await;
    let (_, records) = poll_days_counting(&w, &p, 12, Duration::hours(6)).await;
    let stats = w.sim.stats();
    assert!(stats.rate_limited >= 5, "429s were served: {stats:?}");
    assert!(
        stats.responses.get(&503).copied().unwrap_or(0) > 0,
        "5xx were served"
    );
    assert_eq!(w.sim.faults().snapshot().cut_next, 0, "every cut happened");
    let splits = p.metrics().counter_value(
        "gladly_kafka_window_splits_total",
        &[("report", "work_sessions")],
    );
    assert!(splits > 0.0, "capped windows were split");
    // what the cycles report as published is what the topic holds: aborted attempts (capped,
    // cut, failed) count for nothing
    let topic = w.config.topics.report_topic(Report::WORK_SESSIONS);
    let committed = tokio::task::spawn_blocking(move || support::kafka::read_all(&topic).len())
        .await
        .unwrap();
    assert_eq!(records[&Report::WORK_SESSIONS], committed as u64);
    for report in Report::BUILT_IN {
        w.assert_converged(report).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconvertible_rows_go_to_the_dead_letter_topic_and_the_run_goes_on() {
    let w = world(20.0).await;
    w.sim.faults().update(|f| f.bad_cell_rate = 0.02);
    let p = w.pipeline().await;
    poll_days(&w, &p, 4, Duration::hours(6)).await;
    let injected = w.sim.injected_bad_rows();
    assert!(injected > 0, "the fault made some rows unconvertible");
    let dl_topic = w.config.topics.dead_letter_topic();
    let dls = tokio::task::spawn_blocking(move || support::kafka::read_all(&dl_topic))
        .await
        .unwrap();
    assert_eq!(
        dls.len() as u64,
        injected,
        "one dead letter per unconvertible row served"
    );
    let first = &dls[0];
    assert!(
        first
            .headers
            .iter()
            .any(|(k, v)| k == "gladly.error" && v.as_ref().is_some_and(|v| !v.is_empty())),
        "the reason is in the headers: {:?}",
        first.headers
    );
    for report in Report::BUILT_IN {
        w.assert_converged(report).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_window_shrinks_the_rest_of_its_cycle() {
    let mut w = world(20.0).await;
    w.clock.advance(Duration::days(2));
    let first = support::pipeline::t0() - Duration::days(2);
    let rows = |start, hours| {
        let req = ReportRequest::WorkSessions {
            start,
            end: start + Duration::hours(hours),
        };
        w.sim.truth(&req).1.len() as u64
    };
    // a cap every day reaches and no half-day does: the first day is split, and the other
    // days are fetched in halves straight away instead of each reaching the cap first
    let days: Vec<_> = (0..4).map(|d| first + Duration::days(d)).collect();
    let cap = days.iter().map(|&d| rows(d, 24)).min().unwrap();
    let halves = days
        .iter()
        .flat_map(|&d| [d, d + Duration::hours(12)])
        .map(|h| rows(h, 12));
    assert!(halves.clone().all(|n| n < cap), "the cap fits a half-day");
    w.config.reports.work_sessions.max_window_minutes = 24 * 60;
    w.config.pipeline.row_cap = cap;
    let p = w.pipeline().await;
    let from = BackfillBound::parse(&first.date_naive().to_string()).unwrap();
    let to = BackfillBound::parse(&days[3].date_naive().to_string()).unwrap();
    let s = service::backfill(&p, Report::WORK_SESSIONS, from, to)
        .await
        .unwrap();
    assert_eq!((s.splits, s.windows), (1, 8), "{s:?}");
    assert_eq!(
        s.rows,
        halves.sum::<u64>(),
        "every row of the four days, once"
    );
    let requests = w.sim.stats().report_requests();
    assert_eq!(requests, 9, "one capped request, then one per half-day");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_export_day_over_the_cap_is_split_into_time_windows_and_converges() {
    let mut w = world(20.0).await;
    w.config.reports.work_sessions.enabled = false;
    w.config.reports.agent_summary.enabled = false;
    w.clock.advance(Duration::days(2));
    // a cap below every day's contacts: each day must be split into time-precise pieces
    // (`startAtTime`/`endAtTime`), where dates alone would stop the report at the first day
    let per_day = |d: i64| {
        let day = (support::pipeline::t0() + Duration::days(d)).date_naive();
        let req = ReportRequest::MetricSet {
            metric_set: gladly_kafka::gladly::CONTACT_EXPORT.into(),
            start: day,
            end: day,
            timezone: "UTC".into(),
            aggregation_level: None,
            filters: None,
        };
        w.sim.truth(&req).1.len() as u64
    };
    let smallest_day = (-1..=1).map(per_day).min().unwrap();
    w.config.pipeline.row_cap = smallest_day / 3;
    assert!(
        w.config.pipeline.row_cap > 10,
        "{smallest_day} contacts a day"
    );
    let p = w.pipeline().await;
    let results = service::once(&p, Some(Report::CONTACTS)).await;
    let s = results[&Report::CONTACTS]
        .as_ref()
        .unwrap_or_else(|e| panic!("the report no longer stops at a capped day: {e}"));
    assert!(s.splits >= 3, "every day was split: {s:?}");
    let keys = w.assert_converged(Report::CONTACTS).await;
    assert!(keys as u64 > 2 * smallest_day, "{keys} contacts");
    // the checkpoint stands at the last whole day, not inside one
    let job = p
        .open(
            Report::CONTACTS,
            gladly_kafka::pipeline::checkpoint::Scope::Run,
        )
        .await
        .unwrap();
    let today = gladly_kafka::clock::Clock::now(&w.clock).date_naive();
    assert_eq!(
        job.position(),
        Some(gladly_kafka::pipeline::window::Position::Date(today)),
        "the day being polled counts as polled once its last piece is in"
    );
}
