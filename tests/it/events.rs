//! The events feed (`[events]`) on the real broker and the simulator's Events API:
//!
//! - over a simulated day polled every 10 minutes, with 503s, a body cut mid-line, late
//!   events and a `run` killed with SIGKILL in its first catch-up, every event the simulator
//!   served is in the topic exactly once, none of the truth is missing, and the cursor never
//!   lags more than two cadences;
//! - a 30-hour outage reports the lost span (the poll's summary, the metric, the health
//!   check) and the reports go on;
//! - every contact that ended has its CONTACT/ENDED event agree with its work-session rows:
//!   the same contact, conversation, agent and inbox.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration as Wait;

use apache_avro::types::Value as Avro;
use chrono::{DateTime, Duration, Utc};
use gladly_kafka::clock::Clock;
use gladly_kafka::config::Config;
use gladly_kafka::pipeline::checkpoint::Scope;
use gladly_kafka::pipeline::service;
use gladly_kafka::records::schemas;
use gladly_kafka::report::Report;

use support::pipeline::{world_where, World};
use support::service::{config_table, set, Running};

const ENTITIES: [&str; 4] = [
    "AGENT_AVAILABILITY",
    "AGENT_STATUS",
    "CONTACT",
    "CONVERSATION",
];

/// The events feed on, polled every `cadence_secs`.
fn enable(config: &mut Config, cadence_secs: u64) {
    let e = &mut config.events;
    e.enabled = true;
    e.cadence_secs = cadence_secs;
    // a local simulator: more GETs a second than Gladly's 10
    config.gladly.requests_per_second = 50;
}

/// The same, for the binary's config file.
fn enable_in(table: &mut toml::Table, cadence_secs: u64) {
    set(table, "events.enabled", true);
    set(table, "events.cadence_secs", cadence_secs as i64);
    set(table, "gladly.requests_per_second", 50);
}

/// Every field of an events-topic value, by name.
fn decode(value: &[u8]) -> BTreeMap<String, Avro> {
    let schema = apache_avro::Schema::parse_str(schemas::events_value_schema()).unwrap();
    match apache_avro::from_avro_datum(&schema, &mut &value[5..], None).unwrap() {
        Avro::Record(fields) => fields.into_iter().collect(),
        other => panic!("{other:?}"),
    }
}

/// A timestamp-millis field, null or not.
fn millis(v: &Avro) -> Option<i64> {
    match v {
        Avro::Union(_, inner) => millis(inner),
        Avro::TimestampMillis(t) | Avro::Long(t) => Some(*t),
        _ => None,
    }
}

fn text(v: &Avro) -> Option<String> {
    match v {
        Avro::Union(_, inner) => text(inner),
        Avro::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The events topic: every record's id, in offset order per partition (duplicates kept).
fn topic_ids(w: &World) -> Vec<String> {
    support::kafka::read_all(&w.config.topics.events_topic())
        .into_iter()
        .map(|r| text(&decode(r.value.as_ref().expect("no tombstones"))["id"]).unwrap())
        .collect()
}

/// The simulator's events recorded in `[start, end)`, by id.
fn truth_ids(w: &World, start: DateTime<Utc>, end: DateTime<Utc>) -> BTreeSet<String> {
    w.sim
        .events_truth(&ENTITIES, start, end)
        .into_iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_with_faults_late_events_and_a_sigkill_publishes_every_served_event_once() {
    // 2 % of events show up five minutes late: inside the feed's overlap
    let mut w = world_where(20.0, |c| {
        c.without_limits()
            .with_late_events(0.02, Duration::minutes(5))
    })
    .await;
    let cadence = 600;
    enable(&mut w.config, cadence);
    let first_from = w.clock.now() - Duration::hours(24) + Duration::minutes(15);

    // `run` starts its first catch-up (the last 23¾ hours, in 15-minute ranges) and is killed
    // once its first events are in the topic, maybe mid-transaction
    let mut table = config_table(&w);
    enable_in(&mut table, cadence);
    set(&mut table, "topics.prefix", w.config.topics.prefix.clone());
    set(
        &mut table,
        "kafka.transactional_id_prefix",
        w.config.transactional_id_prefix(),
    );
    let mut running = Running::start(&w, table);
    let topic = w.config.topics.events_topic();
    let started = std::time::Instant::now();
    loop {
        let t = topic.clone();
        let end = tokio::task::spawn_blocking(move || uncommitted_end(&t))
            .await
            .unwrap();
        if end > 0 {
            break;
        }
        running.assert_running();
        assert!(
            started.elapsed() < Wait::from_secs(90),
            "run published no event in 90 s: {}",
            running.log()
        );
        tokio::time::sleep(Wait::from_millis(20)).await;
    }
    running.child.kill().expect("SIGKILL");
    running.child.wait().unwrap();

    // the rest of the day in this process, as a restarted service
    let p = w.pipeline().await;
    let mut job = p.open_events().await.unwrap().expect("enabled");
    let lag_bound = Duration::seconds(2 * cadence as i64);
    let mut worst_lag = Duration::zero();
    for poll in 0..(24 * 3600 / cadence) {
        match poll % 40 {
            // 503s past the client's retries: the range fails and the driver retries it
            7 => w.sim.faults().fail_events_next(8, 503),
            // a body cut mid-line: the range is retried, nothing of it published twice
            19 => w.sim.faults().cut_events_next(1, 5_000),
            _ => {}
        }
        let s = p.poll_events(&mut job).await.expect("a poll");
        assert_eq!(s.lost_secs, 0, "{s:?}");
        let covered = job.checkpoint().expect("a cursor").covered_until;
        // the cursor's lag at its worst, just before the next poll
        w.clock.advance(Duration::seconds(cadence as i64));
        worst_lag = worst_lag.max(w.clock.now() - covered);
    }
    assert!(
        worst_lag < lag_bound,
        "the feed lagged {worst_lag} (two cadences: {lag_bound})"
    );
    let covered = job.checkpoint().unwrap().covered_until;

    let ids = topic_ids(&w);
    let mut per_id: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &ids {
        *per_id.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "published more than once: {twice:?}");
    let published: BTreeSet<String> = per_id.keys().map(|s| s.to_string()).collect();
    let served = w.sim.served_event_ids();
    let unpublished: Vec<_> = served.difference(&published).collect();
    assert!(
        unpublished.is_empty(),
        "{} served events missing from the topic, e.g. {:?}",
        unpublished.len(),
        unpublished.iter().take(3).collect::<Vec<_>>()
    );
    let truth = truth_ids(&w, first_from, covered);
    let missing: Vec<_> = truth.difference(&published).collect();
    let extra: Vec<_> = published.difference(&truth).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "topic vs truth of [{first_from}, {covered}): {} missing, {} extra",
        missing.len(),
        extra.len()
    );
    assert!(truth.len() > 1000, "a day of events: {}", truth.len());
    println!(
        "events: {} over a day, {} served (some twice), worst cursor lag {worst_lag}",
        truth.len(),
        served.len()
    );
}

/// The end of partition 0 of `topic` with `read_uncommitted`: records of an open transaction
/// count.
fn uncommitted_end(topic: &str) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = support::kafka::config()
        .set("group.id", support::unique_name("events-hw"))
        .set("isolation.level", "read_uncommitted")
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Wait::from_secs(10))
        .expect("metadata");
    let partitions = md
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len() as i32);
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Wait::from_secs(10))
                .map_or(0, |(_, high)| high)
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_hour_outage_reports_the_lost_span_and_the_reports_go_on() {
    let mut w = world_where(10.0, |c| c.without_limits()).await;
    enable(&mut w.config, 60);
    let p = w.pipeline().await;
    let first = service::once_events(&p, true).await.unwrap().unwrap();
    assert_eq!(first.lost_secs, 0);
    let before = p.open_events().await.unwrap().unwrap();
    let stopped_at = before.checkpoint().unwrap().covered_until;

    w.clock.advance(Duration::hours(30));
    let reports = service::once(&p, None).await;
    for (report, res) in &reports {
        assert!(res.is_ok(), "{report}: {res:?}");
    }
    let s = service::once_events(&p, true).await.unwrap().unwrap();
    // the API serves the last 24 hours (the feed keeps 15 minutes inside them)
    let resumed = w.clock.now() - Duration::hours(24) + Duration::minutes(15);
    assert_eq!(s.lost_secs, (resumed - stopped_at).num_seconds(), "{s:?}");
    assert!(s.records > 0, "the feed goes on: {s:?}");
    let metrics = p.metrics();
    assert_eq!(
        metrics.counter_value("gladly_kafka_events_lost_seconds_total", &[]),
        s.lost_secs as f64
    );
    let ready = metrics.readiness_at(std::time::Instant::now());
    let why = ready.expect_err("the feed is not ready after losing events");
    assert!(why.contains("events") && why.contains("lost"), "{why}");
    // the next poll loses nothing, and the feed is ready again
    w.clock.advance(Duration::minutes(1));
    let next = service::once_events(&p, true).await.unwrap().unwrap();
    assert_eq!(next.lost_secs, 0);
    let after = metrics.readiness_at(std::time::Instant::now());
    assert!(
        after
            .as_ref()
            .map_or_else(|e| !e.contains("events"), |_| true),
        "{after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ended_contacts_events_agree_with_its_work_session_rows() {
    let mut w = world_where(30.0, |c| c.without_limits()).await;
    enable(&mut w.config, 60);
    // the reports are about an hour behind: poll both after a few hours
    w.clock.advance(Duration::hours(4));
    let p = w.pipeline().await;
    let mut job = p.open(Report::WORK_SESSIONS, Scope::Run).await.unwrap();
    p.poll(&mut job).await.expect("work sessions");
    service::once_events(&p, true).await.unwrap().unwrap();

    // the work-session rows by contact: (conversation, agent, inbox, accepted at, ended at)
    let sessions = support::kafka::read_all(&w.config.topics.report_topic(Report::WORK_SESSIONS));
    let schema =
        apache_avro::Schema::parse_str(schemas::value_schema(Report::WORK_SESSIONS)).unwrap();
    // upserted by key: each work session's latest record
    let mut latest: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    for r in sessions {
        latest.insert(r.key.expect("keyed"), r.value);
    }
    let mut rows: BTreeMap<String, Vec<BTreeMap<String, Avro>>> = BTreeMap::new();
    for v in latest.into_values().flatten() {
        let Avro::Record(fields) =
            apache_avro::from_avro_datum(&schema, &mut &v[5..], None).unwrap()
        else {
            panic!("a record")
        };
        let fields: BTreeMap<String, Avro> = fields.into_iter().collect();
        let contact = text(&fields["contact_session_id"]).unwrap();
        rows.entry(contact).or_default().push(fields);
    }
    let ended: Vec<BTreeMap<String, Avro>> =
        support::kafka::read_all(&w.config.topics.events_topic())
            .into_iter()
            .map(|r| decode(r.value.as_ref().unwrap()))
            .filter(|e| text(&e["type"]).as_deref() == Some("CONTACT/ENDED"))
            .collect();
    let mut compared = 0;
    for e in &ended {
        let contact = text(&e["contact_id"]).unwrap();
        // the reports are about an hour behind: a contact they do not show ended yet is
        // corrected once they catch up
        let Some(rows) = rows.get(&contact).filter(|rows| {
            rows.iter()
                .any(|r| millis(&r["contact_session_ended_at"]).is_some())
        }) else {
            continue;
        };
        compared += 1;
        // the row of the agent that accepted last (any row when no agent took it)
        let last = rows
            .iter()
            .max_by_key(|r| millis(&r["agent_accepted_at"]))
            .unwrap();
        let what = format!("contact {contact}");
        assert_eq!(
            text(&e["conversation_id"]),
            text(&last["conversation_id"]),
            "{what}"
        );
        assert_eq!(text(&e["inbox_id"]), text(&last["inbox_id"]), "{what}");
        assert_eq!(text(&e["agent_id"]), text(&last["agent_id"]), "{what}");
        assert_eq!(
            millis(&e["timestamp"]),
            millis(&last["contact_session_ended_at"]),
            "{what}: the ENDED event's time is the contact's end"
        );
    }
    assert!(compared > 20, "enough ended contacts compared: {compared}");
    println!("events vs work sessions: {compared} ended contacts agree");
}
