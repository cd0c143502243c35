//! The publishing engine through the public API, on the real broker:
//!
//! - a window dropped while its transaction is open (its poll cancelled mid-window) is
//!   aborted by the engine, without waiting for the broker's transaction timeout, and the next
//!   poll on the same job publishes it;
//! - a poll on a current-thread runtime (a plain `#[tokio::test]`) publishes its windows: no
//!   librdkafka call blocks the runtime's only thread.

use crate::support;

use std::time::Duration;

use chrono::Duration as Span;
use gladly_kafka::pipeline::checkpoint::Scope;
use gladly_kafka::report::Report;
use rdkafka::consumer::{BaseConsumer, Consumer};

use support::pipeline::{t0, world};

/// The `(stable end, end)` of partition 0 of `topic`, read with `read_committed`: the stable
/// end stays at the first record of an open transaction until the transaction ends.
async fn ends(topic: &str) -> (i64, i64) {
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = support::kafka::config()
            .set("group.id", support::unique_name("engine-lso"))
            .set("isolation.level", "read_committed")
            .create()
            .expect("consumer");
        let (_, stable) = consumer
            .fetch_watermarks(&topic, 0, Duration::from_secs(10))
            .expect("watermarks");
        let uncommitted: BaseConsumer = support::kafka::config()
            .set("group.id", support::unique_name("engine-hw"))
            .set("isolation.level", "read_uncommitted")
            .create()
            .expect("consumer");
        let (_, end) = uncommitted
            .fetch_watermarks(&topic, 0, Duration::from_secs(10))
            .expect("watermarks");
        (stable, end)
    })
    .await
    .expect("watermarks task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_dropped_mid_transaction_is_aborted_and_the_next_poll_publishes_it() {
    let mut w = world(10.0).await;
    w.config.conversations.enabled = true;
    // 20 GETs in flight, each answered after a second while the fault lasts
    w.config.gladly.requests_per_second = 20;
    w.config.topics.partitions = 1;
    let ws = &mut w.config.reports.work_sessions;
    ws.start = Some(t0());
    ws.max_window_minutes = 720;
    w.clock.advance(Span::hours(6));
    // the window's rows go into its transaction first, then its conversations, each answered
    // after a second: the poll is dropped while the transaction is open with rows in it
    w.sim
        .faults()
        .slow_conversations_next(u32::MAX, Duration::from_secs(1));
    let p = w.pipeline().await;
    let topic = w.config.topics.report_topic(Report::WORK_SESSIONS);
    let mut job = p.open(Report::WORK_SESSIONS, Scope::Run).await.unwrap();
    let rows_sent = async {
        loop {
            let seen = ends(&topic).await;
            if seen.1 > 0 {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (stable, end) = tokio::select! {
        done = p.poll(&mut job) => panic!("the poll ended before it was dropped: {done:?}"),
        seen = rows_sent => seen,
    };
    assert_eq!(
        stable, 0,
        "the window's transaction was open: {stable} of {end}"
    );
    // the engine aborts it at once; the broker alone would wait kafka.transaction_timeout_secs
    // (900 s)
    let mut aborted = (0, 0);
    for _ in 0..100 {
        aborted = ends(&topic).await;
        if aborted.0 > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        aborted.0 == aborted.1 && aborted.1 > end,
        "an abort marker ends the dropped transaction: {aborted:?} (rows sent: {end})"
    );
    let metrics = p.metrics();
    let aborts = metrics.counter_value(
        "gladly_kafka_transactions_aborted_total",
        &[("report", "work_sessions")],
    );
    assert_eq!(aborts, 1.0, "the dropped window counts as aborted");
    assert_eq!(job.position(), None, "the checkpoint did not move");

    w.sim
        .faults()
        .slow_conversations_next(0, Duration::from_secs(0));
    let s = p.poll(&mut job).await.expect("the next poll");
    assert_eq!(s.windows, 1, "{s:?}");
    w.assert_converged(Report::WORK_SESSIONS).await;
}

#[tokio::test]
async fn a_poll_on_a_current_thread_runtime_publishes_its_windows() {
    let mut w = world(30.0).await;
    let ws = &mut w.config.reports.work_sessions;
    ws.start = Some(t0());
    ws.max_window_minutes = 60;
    w.clock.advance(Span::hours(3));
    let p = w.pipeline().await;
    let mut job = p.open(Report::WORK_SESSIONS, Scope::Run).await.unwrap();
    let s = p.poll(&mut job).await.expect("a poll on one thread");
    assert!(s.windows >= 3, "{s:?}");
    w.assert_converged(Report::WORK_SESSIONS).await;
}
