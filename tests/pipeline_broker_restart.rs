//! The stack's broker is stopped and started again while the pipeline polls: failed windows and
//! cycles are retried (as `run` does at its next cadence) without operator action, and every topic still
//! converges on the truth. The broker stays away until a window has failed, so the outage is
//! felt mid-transaction and not only between cycles. Alone in its test binary, because it stops the shared broker.

#[path = "it/support/mod.rs"]
mod support;

/// The stack this suite runs against: the one `scripts/stack/stack up` started.
fn stack() -> (String, String) {
    support::stack_from_env()
}

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Duration as Span;
use gladly_kafka::pipeline::service;
use gladly_kafka::report::Report;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_recovers_from_a_broker_restart_and_converges() {
    assert!(
        std::env::var("STACK_DIR").is_ok(),
        "STACK_DIR is not set: start the stack with `eval \"$(scripts/stack/stack up)\"` (or run scripts/test)"
    );
    let mut w = support::pipeline::world(20.0).await;
    w.config.pipeline.window_attempts = 3;
    // the shortest timeout the config allows, so a window caught by the outage fails within
    // seconds instead of waiting for the broker
    w.config.kafka.transaction_timeout_secs = 10;
    let p = w.pipeline().await;
    let metrics = p.metrics();
    let clock = w.clock.clone();
    // set once the broker is back; the poller goes on for a few more cycles after it
    let restarted = Arc::new(AtomicBool::new(false));
    let poller = tokio::spawn({
        let restarted = restarted.clone();
        async move {
            let mut failed_cycles = 0;
            let mut after_restart = 0;
            while after_restart < 4 {
                if restarted.load(Ordering::SeqCst) {
                    after_restart += 1;
                }
                clock.advance(Span::hours(1));
                let started = Instant::now();
                loop {
                    let results = service::once(&p, None).await;
                    if results.values().all(Result::is_ok) {
                        break;
                    }
                    failed_cycles += 1;
                    assert!(
                        started.elapsed() < Duration::from_secs(180),
                        "recovered within 3 minutes: {results:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                // the cadence: cycles keep coming while the broker is stopped
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            failed_cycles
        }
    });
    // stop the broker once the pipeline is publishing
    support::eventually_async(Duration::from_secs(60), "a first published window", || {
        (metrics.counter_value("gladly_kafka_windows_total", &[]) > 0.0).then_some(())
    })
    .await;
    // started again by the guard if the test fails before it does
    let broker = tokio::task::spawn_blocking(support::BrokerStopped::stop)
        .await
        .unwrap();
    // the broker stays away until the pipeline has felt it: a window attempt failed
    support::eventually_async(Duration::from_secs(90), "a window failing", || {
        (metrics.counter_value("gladly_kafka_window_failures_total", &[]) > 0.0).then_some(())
    })
    .await;
    tokio::task::spawn_blocking(move || broker.start())
        .await
        .unwrap();
    restarted.store(true, Ordering::SeqCst);
    let failed_cycles = poller.await.expect("the poller finishes");
    let failed_windows = metrics.counter_value("gladly_kafka_window_failures_total", &[]);
    eprintln!("while the broker was away: {failed_windows} window attempts and {failed_cycles} cycles failed");
    for report in Report::BUILT_IN {
        w.assert_converged(report).await;
    }
}
