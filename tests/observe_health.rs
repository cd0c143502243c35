//! `/health/ready` of the real binary follows the broker: ready while cycles succeed, 503
//! (naming the report and why) soon after the broker stops, ready again once it is back, while
//! `/health/live` stays 200 throughout. Alone in its test binary, because it stops the shared
//! broker.

#[path = "it/support/mod.rs"]
mod support;

/// The stack this suite runs against: the one `scripts/stack/stack up` started.
fn stack() -> (String, String) {
    support::stack_from_env()
}

use std::time::{Duration, Instant};

use chrono::Duration as Span;
use gladly_kafka::report::Report;

use support::pipeline::{t0, world};
use support::service::{self, Running};

/// Polls `/health/ready` until it answers `want`; returns the body.
async fn ready_becomes(svc: &mut Running, want: u16, within: Duration) -> String {
    let started = Instant::now();
    loop {
        svc.assert_running();
        if let Some((status, body)) = svc.get("/health/ready").await {
            if status == want {
                return body;
            }
            let live = svc.get("/health/live").await.map(|(s, _)| s);
            assert_eq!(live, Some(200), "live while running");
        }
        assert!(
            started.elapsed() < within,
            "/health/ready did not turn {want} within {within:?}:\n{}",
            svc.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_broker() {
    assert!(
        std::env::var("STACK_DIR").is_ok(),
        "STACK_DIR is not set: start the stack with `eval \"$(scripts/stack/stack up)\"` (or run scripts/test)"
    );
    let w = world(10.0).await;
    w.clock.set(t0() + Span::hours(3));
    let mut table = service::config_table(&w);
    // short cycles that give up quickly while the broker is away
    for r in Report::BUILT_IN {
        service::set(&mut table, &format!("reports.{r}.cadence_secs"), 2);
    }
    service::set(&mut table, "reports.work_sessions.lookback_minutes", 60);
    service::set(&mut table, "reports.contacts.horizon_days", 1);
    service::set(&mut table, "reports.agent_summary.horizon_days", 1);
    service::set(&mut table, "kafka.transaction_timeout_secs", 10);
    service::set(&mut table, "pipeline.window_attempts", 2);
    service::set(&mut table, "pipeline.retry_backoff_ms", 200);
    let mut svc = Running::start(&w, table);

    // ready after a successful cycle of every report
    svc.after_first_cycles(Duration::from_secs(90)).await;
    ready_becomes(&mut svc, 200, Duration::from_secs(10)).await;

    // started again by the guard if the test fails before it does
    let broker = tokio::task::spawn_blocking(support::BrokerStopped::stop)
        .await
        .unwrap();
    let body = ready_becomes(&mut svc, 503, Duration::from_secs(120)).await;
    assert!(
        body.starts_with("not ready") && Report::BUILT_IN.iter().any(|r| body.contains(r.name())),
        "the 503 names the report: {body}"
    );
    let m = svc.scrape().await.expect("metrics while unready");
    assert!(m.present("gladly_kafka_window_failures_total", &[]) >= 1.0);
    // present: a gauge missing from the scrape would also read 0 < 3
    assert!(m.present("gladly_kafka_report_ready", &[]) < 3.0);

    tokio::task::spawn_blocking(move || broker.start())
        .await
        .unwrap();
    ready_becomes(&mut svc, 200, Duration::from_secs(240)).await;
    let m = svc.scrape().await.expect("metrics after recovery");
    assert!(m.present("gladly_kafka_transactions_aborted_total", &[]) >= 1.0);
    assert_eq!(m.present("gladly_kafka_report_ready", &[]), 3.0);

    let status = svc.stop(Duration::from_secs(60)).await;
    assert!(status.success(), "SIGTERM exits 0: {status}");
}
