//! The topics as a changelog of Gladly, at the default configuration: polled at the default
//! cadences with the default lookback, horizons and re-read tiers, while the simulator's
//! after-contact and unknown times keep growing up to 3 hours after a contact ends (as Gladly
//! documents), every topic converges on the truth — and without the tiers it does not; each
//! row version Gladly served is published about once (today's `every-read` publishes it at
//! every re-read), also across a restart; a backfill writes about one record per row.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use gladly_kafka::clock::Clock;
use gladly_kafka::config::{Config, PublishMode, ReportsConfig};
use gladly_kafka::pipeline::checkpoint::Scope;
use gladly_kafka::pipeline::{service, BackfillBound, Pipeline, ReportJob, Summary};
use gladly_kafka::records::changes::published_fingerprint;
use gladly_kafka::report::Report;

use support::pipeline::{t0, world, World};

/// The service's defaults for what is polled when, from the fixture's first work-session
/// position; the date reports start a default horizon back, where their first re-pull reaches.
fn defaults(config: &mut Config) {
    let ws_start = config.reports.work_sessions.start;
    config.reports = ReportsConfig::default();
    config.reports.work_sessions.start = ws_start;
    let horizon = i64::from(config.reports.contacts.horizon_days);
    config.reports.contacts.start = Some(t0().date_naive() - Duration::days(horizon));
    let horizon = i64::from(config.reports.agent_summary.horizon_days);
    config.reports.agent_summary.start = Some(t0().date_naive() - Duration::days(horizon));
    config.validate().expect("the defaults are valid");
}

/// One `run`-like poller per report on the world's clock: work sessions every 5 minutes,
/// the date reports every hour, each cycle with whatever re-read tiers are due.
struct Poller {
    pipeline: Pipeline,
    jobs: BTreeMap<Report, ReportJob>,
}

impl Poller {
    async fn open(w: &World) -> Poller {
        let pipeline = w.pipeline().await;
        let mut jobs = BTreeMap::new();
        for report in Report::BUILT_IN {
            jobs.insert(report, pipeline.open(report, Scope::Run).await.unwrap());
        }
        Poller { pipeline, jobs }
    }

    /// The cycles due at the clock's now (`minute` minutes into the run).
    async fn tick(&mut self, minute: i64) -> Summary {
        let mut all = Summary::default();
        for (report, job) in &mut self.jobs {
            let cadence = self.pipeline.config().cadence(*report).as_secs() as i64 / 60;
            if minute % cadence == 0 {
                let s = self.pipeline.cycle(job).await;
                all.add(&s.unwrap_or_else(|e| panic!("{report}: {e}")));
            }
        }
        all
    }
}

/// Polls `minutes` of simulated time in 5-minute steps from the clock's now.
async fn poll(w: &World, pollers: &mut [&mut Poller], minutes: i64, from_minute: i64) {
    for m in (from_minute + 5..=from_minute + minutes).step_by(5) {
        w.clock.advance(Duration::minutes(5));
        for p in pollers.iter_mut() {
            p.tick(m).await;
        }
    }
}

/// Keeps polling until a work-session cycle runs its hourly tier, so the end instant re-read
/// everything that can still have changed; then one cycle of every report at that instant.
async fn settle(w: &World, p: &mut Poller, mut minute: i64) {
    loop {
        w.clock.advance(Duration::minutes(5));
        minute += 5;
        let job = p.jobs.get_mut(&Report::WORK_SESSIONS).unwrap();
        let s = p.pipeline.cycle(job).await.unwrap();
        if s.reread_passes > 0 {
            break;
        }
        assert!(minute < 3 * 24 * 60 + 120, "the hourly tier never came due");
    }
    for report in [Report::CONTACTS, Report::AGENT_SUMMARY] {
        let job = p.jobs.get_mut(&report).unwrap();
        p.pipeline.cycle(job).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_days_at_the_default_cadence_converge_with_the_re_read_tiers() {
    let mut w = world(6.0).await;
    defaults(&mut w.config);
    let mut p = Poller::open(&w).await;
    poll(&w, &mut [&mut p], 3 * 24 * 60, 0).await;
    settle(&w, &mut p, 3 * 24 * 60).await;
    for report in Report::BUILT_IN {
        let keys = w.assert_converged(report).await;
        assert!(keys > 10, "{report}: {keys} keys");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_tiers_late_growth_is_never_read() {
    // the same, without tiers: after-contact time that grows later than about an hour after
    // the end (the lookback minus Gladly's delay) stays stale in the topic for good
    let mut w = world(6.0).await;
    defaults(&mut w.config);
    w.config.reports.work_sessions.reread = Some(vec![]);
    let mut p = Poller::open(&w).await;
    poll(&w, &mut [&mut p], 24 * 60, 0).await;
    let d = w.differences(Report::WORK_SESSIONS).await;
    assert!(
        !d.differing.is_empty() && d.missing.is_empty(),
        "late growth is missed without the tiers: {d}"
    );
}

/// Records in a topic, and the distinct row versions among them (key and value but for when
/// it was read); tombstones counted apart.
struct Census {
    records: usize,
    tombstones: usize,
    versions: BTreeSet<(Vec<u8>, Option<u64>)>,
}

async fn census(topic: String) -> Census {
    let all = tokio::task::spawn_blocking(move || support::kafka::read_all(&topic))
        .await
        .unwrap();
    Census {
        records: all.len(),
        tombstones: all.iter().filter(|r| r.value.is_none()).count(),
        versions: all
            .iter()
            .filter_map(|r| {
                let v = r.value.as_deref()?;
                Some((r.key.clone().unwrap(), published_fingerprint(v)))
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_at_the_default_cadence_publishes_each_row_version_about_once() {
    let mut w = world(6.0).await;
    defaults(&mut w.config);
    // the same polls into other topics, publishing every row read: what Gladly served
    let every_read = {
        let mut c = w.config.clone();
        c.pipeline.publish = PublishMode::EveryRead;
        c.topics.prefix = support::unique_name("every-read");
        c.kafka.transactional_id_prefix = Some(support::unique_name("txn-every"));
        c
    };
    let changes_config = w.config.clone();
    w.config = every_read.clone();
    let mut served = Poller::open(&w).await;
    w.config = changes_config.clone();
    let mut changes = Poller::open(&w).await;
    poll(&w, &mut [&mut served, &mut changes], 12 * 60, 0).await;
    // a crash in the middle of a cycle, then a restart: the cut-off window never commits and
    // is read again; the new instance reads back what its topics hold, and republishes nothing
    // unchanged
    w.clock.advance(Duration::minutes(5));
    served.tick(12 * 60 + 5).await;
    let cut = tokio::time::timeout(
        std::time::Duration::from_millis(30),
        changes.tick(12 * 60 + 5),
    )
    .await;
    assert!(cut.is_err(), "the cycle was cut off mid-way");
    drop(changes);
    let mut changes = Poller::open(&w).await;
    poll(
        &w,
        &mut [&mut served, &mut changes],
        12 * 60 - 5,
        12 * 60 + 5,
    )
    .await;
    for report in Report::BUILT_IN {
        let before = census(every_read.topics.report_topic(report)).await;
        let after = census(changes_config.topics.report_topic(report)).await;
        // each version Gladly served once (the every-read poller saw them all, but for those
        // only the restarted poller read, at instants of its own), each deletion once
        let served: BTreeSet<_> = before.versions.union(&after.versions).collect();
        let changes_served = served.len() + after.tombstones;
        let ratio = |c: &Census| c.records as f64 / changes_served as f64;
        println!(
            "changelog {report}: {} row versions served; records per version: every-read {:.2}, changes {:.2}",
            served.len(),
            ratio(&before),
            ratio(&after)
        );
        assert!(
            ratio(&after) <= 1.1,
            "{report}: {:.2} records per version",
            ratio(&after)
        );
        assert!(ratio(&before) > 2.0, "{report}: the re-reads happened");
    }
    assert_eq!(
        w.clock.now(),
        t0() + Duration::days(1),
        "a whole day was polled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_writes_about_one_record_per_row() {
    let w = world(20.0).await;
    let p = w.pipeline().await;
    let from = BackfillBound::parse("2024-03-09").unwrap();
    let to = BackfillBound::parse("2024-03-10").unwrap();
    let s = service::backfill(&p, Report::WORK_SESSIONS, from, to)
        .await
        .unwrap();
    let per_row = s.records as f64 / s.rows as f64;
    println!(
        "changelog backfill: {} rows, {} records ({} tombstones), {per_row:.3} records per row",
        s.rows, s.records, s.tombstones
    );
    assert!(s.rows > 500, "{s:?}");
    assert!(per_row <= 1.1, "{per_row:.3} records per row: {s:?}");
}
