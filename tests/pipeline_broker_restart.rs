//! The stack's broker is stopped and started again while the pipeline polls: failed cycles are
//! retried (as `run` does at its next cadence) without operator action, and every topic still
//! converges on the truth. Alone in its test binary, because it stops the shared broker.

mod common;

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
    let mut w = common::pipeline::world(20.0).await;
    w.config.pipeline.window_attempts = 3;
    let p = w.pipeline().await;
    let metrics = p.metrics();
    let clock = w.clock.clone();
    let poller = tokio::spawn(async move {
        let mut failed_cycles = 0;
        for _ in 0..12 {
            clock.advance(Span::hours(3));
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
        }
        failed_cycles
    });
    // stop the broker once the pipeline is publishing
    common::eventually_async(Duration::from_secs(60), "a first published window", || {
        (metrics.counter_value("gladly_kafka_windows_total", &[]) > 0.0).then_some(())
    })
    .await;
    tokio::task::spawn_blocking(|| common::stack("stop-broker"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    tokio::task::spawn_blocking(|| common::stack("start-broker"))
        .await
        .unwrap();
    let failed_cycles = poller.await.expect("the poller finishes");
    eprintln!("cycles that failed while the broker was away: {failed_cycles}");
    for report in Report::ALL {
        w.assert_converged(report).await;
    }
}
