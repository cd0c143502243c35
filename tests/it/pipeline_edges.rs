//! The edges where a user would lose data or time, each with one clear outcome, on the real
//! broker and the simulator:
//!
//! - a window whose transaction outlives `kafka.transaction_timeout_secs` is aborted by the
//!   broker, and the service retries it with a new producer instead of stopping as fenced
//!   (a real second instance still fences it: `pipeline_crash.rs` and `kafka_sink.rs`);
//! - an unreadable checkpoint stops its report with an error naming the key and `reset`, and
//!   `reset` writes a new one over it;
//! - an existing topic with another partition count or cleanup policy fails `check` and `run`
//!   with the fix;
//! - every key stays on one partition of a multi-partition topic across windows and restarts;
//! - the request budget `check` prints is within 10 % of the report requests the simulator
//!   counts over a simulated day at the default schedules.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::Duration as Span;
use gladly_kafka::clock::Clock;
use gladly_kafka::config::{PublishMode, ReportsConfig};
use gladly_kafka::kafka::{headers, Delivery, KafkaSettings, Outgoing, Publisher};
use gladly_kafka::pipeline::checkpoint::{checkpoint_key, Scope};
use gladly_kafka::pipeline::{service, BackfillBound, PipelineError, SetupError};
use gladly_kafka::report::Report;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use support::pipeline::{t0, world, World};

/// The read_committed end of partition 0 of `topic` (its last stable offset): it stays at the
/// first record of an open transaction until the transaction ends.
fn stable_end(topic: &str) -> i64 {
    let consumer: BaseConsumer = support::kafka::config()
        .set("group.id", support::unique_name("lso"))
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks");
    high
}

#[tokio::test(flavor = "multi_thread")]
async fn a_producer_past_the_transaction_timeout_reports_a_timeout_not_fencing() {
    let topic = support::unique_name("edge-txn-timeout");
    support::kafka::create_topic(&topic, 1, &[("cleanup.policy", "compact")]).await;
    tokio::task::spawn_blocking(move || {
        let settings = KafkaSettings {
            bootstrap_servers: support::kafka_bootstrap(),
            delivery: Delivery::ExactlyOnce,
            // below what the config allows (10): the broker's clock is what is tested
            transaction_timeout_secs: 2,
            ..KafkaSettings::default()
        };
        let id = support::unique_name("tx-timeout");
        let h = headers([]);
        let record = |value: &'static [u8]| Outgoing {
            topic: &topic,
            key: Some(b"k"),
            value: Some(value),
            timestamp_ms: 1_700_000_000_000,
            headers: &h,
        };
        let p = Publisher::new(&settings, &id).unwrap();
        p.begin().unwrap();
        p.send(record(b"late")).unwrap();
        // the broker aborts the transaction once it is older than its timeout: the abort
        // marker moves the stable end past the record
        support::eventually(
            Duration::from_secs(30),
            "the broker to abort the timed-out transaction",
            || (stable_end(&topic) >= 2).then_some(()),
        );
        let err = p
            .finish(record(b"checkpoint"))
            .expect_err("the broker aborted the transaction");
        eprintln!("the error: {err}");
        assert!(
            !err.is_fenced(),
            "a timeout is not another instance: {err:?}"
        );
        assert!(err.needs_new_producer(), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("kafka.transaction_timeout_secs = 2") && msg.contains(&id),
            "{msg}"
        );
        let _ = p.abort();

        // a new producer with the same id publishes
        let p = Publisher::new(&settings, &id).unwrap();
        p.begin().unwrap();
        p.send(record(b"again")).unwrap();
        p.finish(record(b"checkpoint")).unwrap();
        let values: Vec<Option<Vec<u8>>> = support::kafka::read_all(&topic)
            .into_iter()
            .map(|r| r.value)
            .collect();
        assert_eq!(
            values,
            vec![Some(b"again".to_vec()), Some(b"checkpoint".to_vec())],
            "the timed-out transaction's record is invisible"
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_past_the_transaction_timeout_is_aborted_and_retried_not_fenced() {
    let mut w = world(10.0).await;
    w.config.conversations.enabled = true;
    w.config.gladly.requests_per_second = 5000;
    let ws = &mut w.config.reports.work_sessions;
    ws.start = Some(t0());
    ws.lookback_minutes = 120;
    ws.max_window_minutes = 720;
    w.clock.advance(Span::hours(12));
    // below what the config allows (10), set after validation: the broker aborts a transaction
    // older than 3 s within a second (scripts/stack/server.properties.in)
    w.config.kafka.transaction_timeout_secs = 3;
    // the window's rows go into its transaction, then its first conversation answers after
    // 5 s: by then the broker has aborted the transaction
    w.sim
        .faults()
        .slow_conversations_next(1, Duration::from_secs(5));
    let p = w.pipeline().await;
    let mut job = p.open(Report::WORK_SESSIONS, Scope::Run).await.unwrap();
    let summary = p
        .poll(&mut job)
        .await
        .expect("the timed-out window is retried, not reported as fenced");
    assert_eq!((summary.windows, summary.retries), (1, 1), "{summary:?}");
    let aborted = p.metrics().counter_value(
        "gladly_kafka_transactions_aborted_total",
        &[("report", "work_sessions")],
    );
    assert_eq!(aborted, 1.0, "the timed-out attempt was aborted");
    w.assert_converged(Report::WORK_SESSIONS).await;
}

/// Writes `value` under `key` to `topic` outside any transaction.
fn write_raw(topic: &str, key: &str, value: &[u8]) {
    let producer: BaseProducer = support::kafka::config().create().expect("producer");
    producer
        .send(BaseRecord::to(topic).key(key).payload(value))
        .map_err(|(e, _)| e)
        .expect("send");
    producer.flush(Duration::from_secs(10)).expect("flush");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_checkpoint_stops_the_report_naming_its_key_and_reset() {
    let w = world(10.0).await;
    w.clock.set(t0() + Span::hours(2));
    let p = w.pipeline().await;
    let mut job = p.open(Report::WORK_SESSIONS, Scope::Run).await.unwrap();
    p.poll(&mut job).await.unwrap();
    drop(job);

    let key = checkpoint_key(Report::WORK_SESSIONS, &Scope::Run);
    let topic = w.config.topics.checkpoint_topic();
    {
        let (topic, key) = (topic.clone(), key.clone());
        tokio::task::spawn_blocking(move || write_raw(&topic, &key, b"\x00garbage{"))
            .await
            .unwrap();
    }
    let err = p
        .open(Report::WORK_SESSIONS, Scope::Run)
        .await
        .err()
        .expect("the report does not start from its configured start");
    eprintln!("the error: {err}");
    assert!(
        matches!(
            err,
            PipelineError::Setup(SetupError::UnreadableCheckpoint { .. })
        ),
        "{err:?}"
    );
    assert!(err.is_fatal(), "the report stops");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("checkpoint `{key}`"))
            && msg.contains(&topic)
            && msg.contains("gladly-kafka reset --report work_sessions --to"),
        "{msg}"
    );
    // the other reports are not affected
    p.open(Report::CONTACTS, Scope::Run)
        .await
        .expect("another report's checkpoint is fine");

    // reset writes a new checkpoint over it, and the report starts from there
    let to = t0() + Span::hours(1);
    service::reset(&p, Report::WORK_SESSIONS, BackfillBound::Instant(to))
        .await
        .expect("reset writes over the unreadable checkpoint");
    let job = p.open(Report::WORK_SESSIONS, Scope::Run).await.unwrap();
    assert_eq!(
        job.position(),
        Some(gladly_kafka::pipeline::window::Position::Instant(to))
    );
}

/// Runs `cmd` to its end (at most `within`), capturing its output.
fn run_to_exit(mut cmd: Command, within: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the command did not end within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// `check` and `run` of `w`'s config, once `topic` exists as `partitions` partitions with
/// `cleanup.policy` = `policy`: both fail, and print `fix`.
async fn check_and_run_refuse(w: &World, report: Report, partitions: i32, policy: &str, fix: &str) {
    let topic = w.config.topics.report_topic(report);
    support::kafka::create_topic(&topic, partitions, &[("cleanup.policy", policy)]).await;
    let table = support::service::config_table(w);
    let file = support::service::write_config(&table);
    for verb in ["check", "run"] {
        let mut cmd = support::service::command(w, file.path());
        cmd.arg(verb);
        let out = tokio::task::spawn_blocking(move || run_to_exit(cmd, Duration::from_secs(120)))
            .await
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{verb} fails: {text}");
        let line = text
            .lines()
            .find(|l| l.contains(&format!("topic `{topic}`")))
            .unwrap_or_else(|| panic!("{verb} names the topic: {text}"));
        eprintln!("{verb}: {line}");
        assert!(line.contains(fix), "{verb} says how to fix it: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_with_another_partition_count_fails_check_and_run() {
    let w = world(2.0).await;
    // the config says 2 partitions
    check_and_run_refuse(
        &w,
        Report::CONTACTS,
        3,
        "compact",
        "has 3 partition(s), but topics.partitions = 2",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_that_is_not_compacted_fails_check_and_run() {
    let w = world(2.0).await;
    check_and_run_refuse(
        &w,
        Report::AGENT_SUMMARY,
        2,
        "delete",
        "--add-config cleanup.policy=compact",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_stays_on_one_partition_across_windows_and_restarts() {
    let mut w = world(20.0).await;
    w.config.topics.partitions = 4;
    // every poll publishes every row it reads, so keys are written again and again
    w.config.pipeline.publish = PublishMode::EveryRead;
    for _ in 0..3 {
        // a new pipeline each time: a restart, with new producers
        let p = w.pipeline().await;
        for _ in 0..2 {
            w.clock.advance(Span::hours(1));
            for report in [Report::WORK_SESSIONS, Report::CONTACTS] {
                let mut job = p.open(report, Scope::Run).await.unwrap();
                p.poll(&mut job).await.unwrap();
            }
        }
    }
    for report in [Report::WORK_SESSIONS, Report::CONTACTS] {
        let topic = w.config.topics.report_topic(report);
        let records = tokio::task::spawn_blocking(move || support::kafka::read_all(&topic))
            .await
            .unwrap();
        let mut partitions: BTreeMap<Vec<u8>, BTreeSet<i32>> = BTreeMap::new();
        let mut writes: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for r in &records {
            let key = r.key.clone().expect("keyed");
            partitions
                .entry(key.clone())
                .or_default()
                .insert(r.partition);
            *writes.entry(key).or_default() += 1;
        }
        let rewritten = writes.values().filter(|n| **n >= 3).count();
        let used: BTreeSet<i32> = partitions.values().flatten().copied().collect();
        eprintln!(
            "{report}: {} records, {} keys, {rewritten} written 3+ times, partitions used {used:?}",
            records.len(),
            partitions.len()
        );
        assert!(
            rewritten * 2 > partitions.len(),
            "{report}: most keys were written by several windows and runs"
        );
        assert_eq!(
            used.len(),
            4,
            "{report}: the keys spread over the 4 partitions"
        );
        for (key, on) in &partitions {
            assert_eq!(
                on.len(),
                1,
                "{report}: key {} landed on partitions {on:?}",
                String::from_utf8_lossy(key)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_check_prints_is_within_ten_percent_of_a_simulated_day() {
    let mut w = world(2.0).await;
    // the default schedules (world() narrows them for other tests); the default
    // requests_per_minute would pace this day in real time, and it is not part of the demand
    w.config.reports = ReportsConfig::default();
    w.config
        .validate()
        .expect("the default schedules are valid");
    let budget = w.config.budget();
    let per_day = budget.used_per_hour() * 24.0;
    assert!(
        budget.summary().starts_with(&format!(
            "{} report requests/hour",
            budget.used_per_hour().ceil()
        )),
        "{}",
        budget.summary()
    );

    let p = w.pipeline().await;
    let mut jobs = Vec::new();
    for report in w.config.enabled_reports() {
        let job = p.open(report, Scope::Run).await.unwrap();
        let cadence = Span::from_std(w.config.cadence(report)).unwrap();
        jobs.push((job, cadence, w.clock.now()));
    }
    let step = Span::minutes(5);
    assert!(
        jobs.iter()
            .all(|(_, c, _)| (*c).num_seconds() % step.num_seconds() == 0),
        "every cadence is a multiple of the step"
    );
    let before = w.sim.stats().report_requests();
    let end = w.clock.now() + Span::days(1);
    let started = Instant::now();
    while w.clock.now() < end {
        for (job, cadence, due) in &mut jobs {
            if w.clock.now() >= *due {
                p.cycle(job).await.expect("a cycle");
                *due += *cadence;
            }
        }
        w.clock.advance(step);
    }
    let counted = w.sim.stats().report_requests() - before;
    eprintln!(
        "budget {per_day:.1} report requests a day ({}); the simulator counted {counted} in a simulated day ({:.1?} real)",
        budget.summary(),
        started.elapsed()
    );
    let off = (counted as f64 - per_day).abs() / per_day;
    assert!(
        off <= 0.10,
        "the budget ({per_day:.1}/day) is {:.1} % off the {counted} requests counted",
        off * 100.0
    );
}
