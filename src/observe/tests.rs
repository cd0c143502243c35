//! The registry's exposition, readiness and lag.

use std::time::Duration;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::*;

/// A clock the test moves: "now" for [`Metrics::attach`].
fn manual(t: DateTime<Utc>) -> (Arc<Mutex<DateTime<Utc>>>, Now) {
    let at = Arc::new(Mutex::new(t));
    let read = at.clone();
    (at, Arc::new(move || *read.lock().unwrap()))
}

/// A window that published no rows, only dead letters for `reasons`.
fn nothing_but(reasons: &BTreeMap<String, u64>) -> WindowCounts<'_> {
    WindowCounts {
        rows: 0,
        records: 0,
        tombstones: 0,
        suppressed: 0,
        dead_letter_reasons: reasons,
    }
}

/// No API client counters.
struct NoApi;

impl ApiSource for NoApi {
    fn api_snapshot(&self) -> ApiSnapshot {
        ApiSnapshot::default()
    }
}

#[test]
fn histograms_are_cumulative_with_inf_count_and_sum() {
    let m = Metrics::default();
    for secs in [0.03, 0.3, 7.0, 1000.0] {
        m.observe(
            "gladly_kafka_window_duration_seconds",
            &[("report", "contacts")],
            secs,
        );
    }
    let text = m.render();
    let line = |suffix: &str| {
        let want = format!("gladly_kafka_window_duration_seconds{suffix} ");
        text.lines()
            .find(|l| l.starts_with(&want))
            .unwrap_or_else(|| panic!("no {want} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(line("_bucket{report=\"contacts\",le=\"0.05\"}"), "1");
    assert_eq!(line("_bucket{report=\"contacts\",le=\"0.5\"}"), "2");
    assert_eq!(line("_bucket{report=\"contacts\",le=\"10\"}"), "3");
    assert_eq!(line("_bucket{report=\"contacts\",le=\"600\"}"), "3");
    assert_eq!(line("_bucket{report=\"contacts\",le=\"+Inf\"}"), "4");
    assert_eq!(line("_count{report=\"contacts\"}"), "4");
    assert_eq!(line("_sum{report=\"contacts\"}"), "1007.33");
    assert!(text.contains("# TYPE gladly_kafka_window_duration_seconds histogram"));
}

#[test]
fn a_report_is_ready_during_its_first_cadence_then_only_after_a_good_cycle() {
    let m = Metrics::default();
    let start = Instant::now();
    m.expect_report("work_sessions", Duration::from_secs(300));
    assert!(m.readiness_at(start).is_ok(), "within the first cadence");
    let late = start + Duration::from_secs(301);
    let why = m.readiness_at(late).unwrap_err();
    assert!(
        why.contains("work_sessions") && why.contains("first cadence"),
        "{why}"
    );
    m.cycle_done("work_sessions", Ok(()));
    assert!(m.readiness_at(late).is_ok());

    // a failed window makes it unready at once; a good cycle makes it ready again
    m.window_failed("work_sessions");
    assert!(m.readiness_at(late).is_err());
    m.cycle_done("work_sessions", Ok(()));
    assert!(m.readiness_at(late).is_ok());

    m.cycle_done("work_sessions", Err("broker down".into()));
    let why = m.readiness_at(late).unwrap_err();
    assert!(why.contains("last cycle failed: broker down"), "{why}");

    // expecting a report again (a restarted loop) does not hide its failure
    m.expect_report("work_sessions", Duration::from_secs(300));
    assert!(m.readiness_at(late).is_err());
    assert_eq!(
        m.counter_value("gladly_kafka_cycles_total", &[("result", "ok")]),
        2.0
    );
    assert_eq!(
        m.gauge_value("gladly_kafka_report_ready", &[("report", "work_sessions")]),
        0.0
    );
}

#[test]
fn every_expected_report_must_be_ready() {
    let m = Metrics::default();
    let now = Instant::now();
    m.expect_report("work_sessions", Duration::from_secs(1));
    m.expect_report("contacts", Duration::from_secs(3600));
    m.cycle_done("work_sessions", Ok(()));
    let later = now + Duration::from_secs(7200);
    let why = m.readiness_at(later).unwrap_err();
    assert!(
        why.contains("contacts") && !why.contains("work_sessions"),
        "{why}"
    );
}

#[test]
fn lag_is_computed_at_scrape_time_from_the_pipeline_clock() {
    let m = Metrics::default();
    let t: DateTime<Utc> = "2024-03-14T10:00:00Z".parse().unwrap();
    let (clock, now) = manual(t + chrono::Duration::minutes(5));
    m.attach(now, Arc::new(NoApi));
    m.checkpoint_moved("work_sessions", t);
    let lag = || m.gauge_value("gladly_kafka_window_lag_seconds", &[]);
    assert_eq!(lag(), 300.0);
    // nothing published for an hour: the lag grows without any window
    *clock.lock().unwrap() += chrono::Duration::hours(1);
    assert_eq!(lag(), 3900.0);
    assert_eq!(
        m.gauge_value("gladly_kafka_checkpoint_timestamp_seconds", &[]),
        t.timestamp() as f64
    );
    m.cycle_done("work_sessions", Ok(()));
    assert_eq!(
        m.gauge_value("gladly_kafka_last_success_timestamp_seconds", &[]),
        clock.lock().unwrap().timestamp() as f64
    );
}

#[test]
fn window_counters_and_dead_letter_reasons() {
    let m = Metrics::default();
    let none = BTreeMap::new();
    let s = WindowCounts {
        rows: 10,
        records: 12,
        tombstones: 3,
        suppressed: 0,
        dead_letter_reasons: &none,
    };
    m.window_published("work_sessions", s, Duration::from_millis(20));
    m.window_published("work_sessions", s, Duration::from_millis(20));
    let reasons = [(reason_label("Queued At: \"soon\" is not a timestamp"), 1)].into();
    m.window_published("contacts", nothing_but(&reasons), Duration::ZERO);
    let text = m.render();
    for line in [
        "gladly_kafka_rows_fetched_total{report=\"work_sessions\"} 20",
        "gladly_kafka_records_produced_total{report=\"work_sessions\"} 24",
        "gladly_kafka_tombstones_total{report=\"work_sessions\"} 6",
        "gladly_kafka_transactions_committed_total{report=\"work_sessions\"} 2",
        "gladly_kafka_dead_letters_total{report=\"contacts\",reason=\"Queued At\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
}

#[test]
fn every_series_has_help_and_type_and_names_follow_conventions() {
    let m = Metrics::default();
    m.attach(manual(Utc::now()).1, Arc::new(NoApi));
    m.window_published("contacts", nothing_but(&BTreeMap::new()), Duration::ZERO);
    m.backfill_progress("contacts", 1, 4);
    let text = m.render();
    for (name, kind, _) in super::catalog::HELP {
        assert!(name.starts_with("gladly_kafka_"), "{name}");
        match *kind {
            "counter" => assert!(name.ends_with("_total"), "{name}"),
            "histogram" => assert!(name.ends_with("_seconds"), "{name}"),
            _ => assert!(!name.ends_with("_total"), "a gauge named {name}"),
        }
        assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        let base = name
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            super::catalog::HELP
                .iter()
                .any(|(n, _, _)| *n == name || *n == base),
            "{line} has no HELP"
        );
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
}

/// The lines of `text` that are samples of `name` (any labels).
fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .collect()
}

#[test]
fn expecting_a_report_exports_its_cadence_for_the_lag_alert() {
    let m = Metrics::default();
    assert!(samples(&m.render(), "gladly_kafka_report_cadence_seconds").is_empty());
    m.expect_report("work_sessions", Duration::from_secs(300));
    m.expect_report("contacts", Duration::from_secs(3600));
    let text = m.render();
    assert_eq!(
        samples(&text, "gladly_kafka_report_cadence_seconds"),
        [
            "gladly_kafka_report_cadence_seconds{report=\"contacts\"} 3600",
            "gladly_kafka_report_cadence_seconds{report=\"work_sessions\"} 300",
        ],
        "{text}"
    );
    assert!(text.contains("# TYPE gladly_kafka_report_cadence_seconds gauge\n"));
}

#[test]
fn expecting_a_report_creates_its_counters_at_zero_so_increase_sees_the_first_step() {
    let m = Metrics::default();
    let counters = [
        "gladly_kafka_rows_fetched_total",
        "gladly_kafka_records_produced_total",
        "gladly_kafka_tombstones_total",
        "gladly_kafka_windows_total",
        "gladly_kafka_window_failures_total",
        "gladly_kafka_window_splits_total",
        "gladly_kafka_transactions_committed_total",
        "gladly_kafka_transactions_aborted_total",
    ];
    let text = m.render();
    for name in counters.iter().chain(&["gladly_kafka_cycles_total"]) {
        assert!(samples(&text, name).is_empty(), "{name} before any report");
    }

    m.expect_report("contacts", Duration::from_secs(3600));
    let text = m.render();
    for name in counters {
        assert_eq!(
            samples(&text, name),
            [format!("{name}{{report=\"contacts\"}} 0")],
            "{text}"
        );
    }
    assert_eq!(
        samples(&text, "gladly_kafka_cycles_total"),
        [
            "gladly_kafka_cycles_total{report=\"contacts\",result=\"failed\"} 0",
            "gladly_kafka_cycles_total{report=\"contacts\",result=\"ok\"} 0",
        ],
        "{text}"
    );
    // the reason of a dead letter is not known in advance: no series until the first one
    assert!(samples(&text, "gladly_kafka_dead_letters_total").is_empty());

    // the first increments land on those series; expecting the report again (a restarted
    // loop) keeps the counts
    m.cycle_done("contacts", Err("broker down".into()));
    m.transaction_aborted("contacts");
    m.expect_report("contacts", Duration::from_secs(3600));
    let text = m.render();
    for line in [
        "gladly_kafka_cycles_total{report=\"contacts\",result=\"failed\"} 1",
        "gladly_kafka_cycles_total{report=\"contacts\",result=\"ok\"} 0",
        "gladly_kafka_transactions_aborted_total{report=\"contacts\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
}
