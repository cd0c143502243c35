//! Gladly's report limit is shared by the whole organization, so a healthy run must never see
//! a 429 and must not waste requests. With the simulator enforcing the real limit (10 per
//! minute, 2 concurrent; a "minute" scaled to one real second) and the client paced at its
//! default budget (8 per minute, one in flight, scaled alike), a 30-day backfill of work
//! sessions and contact export issues at most 1.1× the minimum number of requests and gets no
//! 429.
//!
//! `GLADLY_KAFKA_PACED_MINUTE_SECS=60` runs it with Gladly's real minute (about 19 minutes):
//! `scripts/bench-rate-limit`.

use crate::support;

use std::time::Duration;

use chrono::Duration as Span;
use gladly_kafka::pipeline::service;
use gladly_kafka::pipeline::BackfillBound;
use gladly_kafka::report::Report;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_30_day_backfill_gets_no_429_and_wastes_no_requests() {
    let minute_secs: u32 = std::env::var("GLADLY_KAFKA_PACED_MINUTE_SECS")
        .map(|v| {
            v.parse()
                .expect("GLADLY_KAFKA_PACED_MINUTE_SECS: whole seconds")
        })
        .unwrap_or(1);
    let minute = Duration::from_secs(minute_secs.into());
    let mut w = support::pipeline::world_with(2.0, Some(minute)).await;
    // the client's default budget, in the scaled minute: 8 per "minute", one in flight
    let default_budget = gladly_kafka::gladly::GladlySettings::default().requests_per_minute;
    w.config.gladly.requests_per_minute = default_budget * 60 / minute_secs;
    w.config.gladly.max_concurrent_reports = 1;
    w.clock.set(support::pipeline::t0() + Span::days(31));
    let p = w.pipeline().await;
    let started = std::time::Instant::now();
    let from = BackfillBound::parse("2024-03-11").unwrap();
    let to = BackfillBound::parse("2024-04-09").unwrap(); // 30 days
    let ws = service::backfill(&p, Report::WORK_SESSIONS, from, to)
        .await
        .expect("work sessions");
    let contacts = service::backfill(&p, Report::CONTACTS, from, to)
        .await
        .expect("contacts");
    // minimum: one request per window: 30 days of 6-hour work-session windows, one per day of contacts
    let minimum = 30 * 24 / 6 + 30;
    assert_eq!(
        ws.windows + contacts.windows,
        minimum as u64,
        "windows planned"
    );
    let stats = w.sim.stats();
    assert_eq!(stats.rate_limited, 0, "no 429: {stats:?}");
    let requests = stats.report_requests();
    assert!(
        requests as f64 <= 1.1 * minimum as f64,
        "{requests} requests for a minimum of {minimum}"
    );
    assert!(stats.max_concurrency <= 1, "one report request in flight");
    eprintln!(
        "30-day backfill, {minute_secs} s minute: {requests} report requests (minimum {minimum}), {} 429s, {:.0} s",
        stats.rate_limited,
        started.elapsed().as_secs_f64()
    );
}
