//! The conversations source end to end: the real pipeline polls the simulator's work
//! sessions and GETs the conversation of every contact that ended in a window (once per
//! window, not per row) into the real broker, in the window's transaction.
//!
//! - After a simulated day of polls, every conversation with an ended contact has a record
//!   equal to what the simulator answered at its fetch time (or a tombstone if it was
//!   deleted then); after a refresh, the topic equals the simulator's current conversations
//!   and deleted ones are absent.
//! - GETs per window = distinct conversations with a contact ended in it (+1 per merge
//!   followed), and the pacer keeps the simulator's per-second limit free of 429s.
//! - A window aborted after some conversations were sent (a GET kept failing) leaves none of
//!   them visible; a window split at the row cap costs no GETs for the capped attempt.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use gladly_kafka::clock::Clock;
use gladly_kafka::config::Config;
use gladly_kafka::gladly::ReportRequest;
use gladly_kafka::pipeline::checkpoint::{Checkpoint, Scope};
use gladly_kafka::pipeline::service;
use gladly_kafka::pipeline::window::Window;
use gladly_kafka::pipeline::{BackfillBound, Pipeline, ReportJob};
use gladly_kafka::records::schemas;
use gladly_kafka::report::Report;
use gladly_sim::ConversationTruth;
use serde_json::{json, Value};

use support::kafka::ReadRecord;
use support::pipeline::{t0, world, world_where, World};
use support::sim::TruthExt;

/// Turns the conversations source on, paced at `per_second` (a simulator host may exceed
/// Gladly's limit), with hourly polls over two-hour windows starting at [`t0`].
fn configure(config: &mut Config, per_second: u32) {
    config.conversations.enabled = true;
    config.gladly.requests_per_second = per_second;
    let ws = &mut config.reports.work_sessions;
    ws.start = Some(t0());
    ws.lookback_minutes = 120;
    ws.max_window_minutes = 120;
}

/// Distinct conversations of the rows whose contact ended in `[start, end]`, as the simulator
/// shows them now, and how many such rows there are.
fn ended_conversations(
    w: &World,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> (BTreeSet<String>, usize) {
    let (_, rows) = w.sim.truth(&ReportRequest::WorkSessions { start, end });
    let ended: Vec<String> = rows
        .iter()
        .filter(|r| !r.get("contact_session_ended_at").unwrap().is_empty())
        .map(|r| r.get("conversation_id").unwrap().to_string())
        .collect();
    (ended.iter().cloned().collect(), ended.len())
}

/// GETs the conversations of `ids` cost now: one each, and a second for a merged one (its
/// 301 is followed).
fn expected_gets(w: &World, ids: &BTreeSet<String>) -> u64 {
    let moved = ids
        .iter()
        .filter(|id| matches!(w.sim.conversation(id), ConversationTruth::Moved(_)))
        .count();
    (ids.len() + moved) as u64
}

/// What the simulator answered for `id` at `at`, following a merge: `None` when deleted.
fn truth_at(w: &World, id: &str, at: DateTime<Utc>) -> Option<Value> {
    match w.sim.conversation_at(id, at) {
        ConversationTruth::Found(v) => Some(v),
        ConversationTruth::Deleted => None,
        ConversationTruth::Moved(to) => match w.sim.conversation_at(&to, at) {
            ConversationTruth::Found(v) => Some(v),
            ConversationTruth::Deleted => None,
            ConversationTruth::Moved(again) => panic!("{id} moved to {to}, then to {again}"),
        },
    }
}

/// The record fields a Gladly answer determines.
fn from_answer(v: &Value) -> Value {
    let ms = |f: &str| match v.get(f).and_then(Value::as_str) {
        Some(s) => json!(s.parse::<DateTime<Utc>>().unwrap().timestamp_millis()),
        None => Value::Null,
    };
    let attributes: Vec<Value> = v
        .get("customAttributes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|a| json!({"id": a["id"], "value": a["value"]}))
        .collect();
    json!({
        "id": v["id"],
        "customer_id": v["customerId"],
        "inbox_id": v["inboxId"],
        "status": v["status"],
        "agent_id": v.get("agentId").cloned().unwrap_or(Value::Null),
        "topic_ids": v["topicIds"],
        "custom_attributes": attributes,
        "created_at": ms("createdAt"),
        "closed_at": ms("closedAt"),
        // the JSON twins: the same arrays as JSON text
        "topic_ids_json": serde_json::to_string(&v["topicIds"]).unwrap(),
        "custom_attributes_json": serde_json::to_string(&attributes).unwrap(),
    })
}

/// The same fields of a published value.
fn answer_part(value: &Value) -> Value {
    let keep = [
        "id",
        "customer_id",
        "inbox_id",
        "status",
        "agent_id",
        "topic_ids",
        "custom_attributes",
        "created_at",
        "closed_at",
        "topic_ids_json",
        "custom_attributes_json",
    ];
    keep.iter()
        .map(|k| (k.to_string(), value[*k].clone()))
        .collect()
}

fn decode(schema: &str, bytes: &[u8]) -> Value {
    let schema = apache_avro::Schema::parse_str(schema).unwrap();
    assert_eq!(bytes[0], 0, "Confluent magic byte");
    let v = apache_avro::from_avro_datum(&schema, &mut &bytes[5..], None).expect("decodes");
    v.try_into().expect("as JSON")
}

/// One published conversation record.
#[derive(Debug, Clone)]
struct Published {
    value: Option<Value>,
    fetched_at: DateTime<Utc>,
}

fn published(r: &ReadRecord) -> (String, Published) {
    let key = decode(
        schemas::conversation_key_schema(),
        r.key.as_ref().expect("keyed"),
    );
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_ref())
            .map(|v| String::from_utf8(v.clone()).unwrap())
            .unwrap_or_else(|| panic!("header {name}"))
    };
    assert_eq!(header("gladly.report"), "conversations");
    let value = r
        .value
        .as_ref()
        .map(|v| decode(schemas::conversation_value_schema(), v));
    let fetched_at: DateTime<Utc> = header("gladly.fetched_at").parse().unwrap();
    if let Some(v) = &value {
        assert_eq!(v["fetched_at"], json!(fetched_at.timestamp_millis()));
        assert_eq!(v["conversation_id"], key["conversation_id"]);
        assert_eq!(
            Some(v["contact_session_ended_at"].as_i64().unwrap()),
            r.timestamp
        );
    }
    let id = key["conversation_id"].as_str().unwrap().to_string();
    (id, Published { value, fetched_at })
}

/// Every record of the conversations topic (read_committed), by conversation, in order.
async fn history(w: &World) -> BTreeMap<String, Vec<Published>> {
    let topic = w.config.topics.conversations_topic();
    let records = tokio::task::spawn_blocking(move || support::kafka::read_all(&topic))
        .await
        .unwrap();
    let mut out: BTreeMap<String, Vec<Published>> = BTreeMap::new();
    for r in &records {
        let (id, p) = published(r);
        out.entry(id).or_default().push(p);
    }
    out
}

/// Polls work sessions `polls` times, two hours apart, one window at a time, checking each
/// window's GETs. Returns (rows of ended contacts, distinct conversations) over all windows.
async fn poll_checking_gets(
    w: &World,
    p: &Pipeline,
    job: &mut ReportJob,
    polls: u32,
) -> (usize, usize) {
    let (mut rows, mut distinct) = (0, 0);
    for _ in 0..polls {
        w.clock.advance(Duration::hours(2));
        for window in p.plan(job) {
            let Window::Instants(iw) = window else {
                panic!("work sessions have instant windows")
            };
            let (ids, n) = ended_conversations(w, iw.start(), iw.end());
            let expected = expected_gets(w, &ids);
            let before = w.sim.stats().conversation_gets;
            let s = p
                .publish_windows(job, vec![window], None)
                .await
                .unwrap_or_else(|e| panic!("{window}: {e}"));
            assert_eq!(s.windows, 1, "{window} published once");
            let gets = w.sim.stats().conversation_gets - before;
            assert_eq!(
                gets,
                expected,
                "{window}: {gets} GETs for {} conversations of {n} ended rows",
                ids.len()
            );
            rows += n;
            distinct += ids.len();
        }
    }
    (rows, distinct)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_polls_fetches_each_conversation_once_per_window_and_the_topic_converges() {
    let mut w = world(10.0).await;
    configure(&mut w.config, 5000);
    let p = w.pipeline().await;
    let mut job = p.open(Report::WORK_SESSIONS, Scope::Run).await.unwrap();
    let (rows, distinct) = poll_checking_gets(&w, &p, &mut job, 12).await;
    assert!(
        rows > distinct,
        "conversations had several ended rows in a window ({rows} rows, {distinct} conversations): one GET served them all"
    );

    // every conversation with an ended contact is in the topic, as it was when fetched
    let now = w.clock.now();
    let (all, _) = ended_conversations(&w, t0(), now);
    let topic = history(&w).await;
    assert_eq!(
        topic.keys().cloned().collect::<BTreeSet<_>>(),
        all,
        "one key per conversation with an ended contact"
    );
    let mut refetched = 0;
    for (id, records) in &topic {
        refetched += usize::from(records.len() > 1);
        let last = records.last().unwrap();
        let truth = truth_at(&w, id, last.fetched_at);
        match (&last.value, truth) {
            (Some(v), Some(t)) => assert_eq!(
                answer_part(v),
                from_answer(&t),
                "{id} at {}",
                last.fetched_at
            ),
            (None, None) => {}
            (got, truth) => panic!(
                "{id} at {}: published {got:?}, truth {truth:?}",
                last.fetched_at
            ),
        }
    }
    assert!(refetched > 0, "later windows fetched conversations again");

    // a refresh of the whole day: the topic equals the simulator's conversations now
    service::backfill(
        &p,
        Report::WORK_SESSIONS,
        BackfillBound::Instant(t0()),
        BackfillBound::Instant(now),
    )
    .await
    .expect("backfill");
    let topic = history(&w).await;
    let (mut live, mut deleted, mut merged, mut inbox_changed) = (0, 0, 0, 0);
    for id in &all {
        let last = topic[id].last().unwrap();
        match (truth_at(&w, id, now), &last.value) {
            (Some(t), Some(v)) => {
                assert_eq!(answer_part(v), from_answer(&t), "{id} now");
                live += 1;
                merged += usize::from(v["id"] != json!(id));
                inbox_changed += usize::from(
                    topic[id]
                        .iter()
                        .filter_map(|p| p.value.as_ref())
                        .any(|p| p["inbox_id"] != v["inbox_id"]),
                );
            }
            (None, None) => {
                deleted += 1;
            }
            (truth, got) => panic!("{id} now: truth {truth:?}, published {got:?}"),
        }
    }
    let deleted_after_a_value = all
        .iter()
        .filter(|id| {
            let h = &topic[*id];
            h.last().unwrap().value.is_none() && h.iter().any(|p| p.value.is_some())
        })
        .count();
    eprintln!(
        "{} conversations: {live} live ({merged} merged, {inbox_changed} moved inbox between fetches), {deleted} deleted ({deleted_after_a_value} after being published)",
        all.len()
    );
    assert!(
        live > 0 && merged > 0 && inbox_changed > 0,
        "merges and inbox moves were exercised"
    );
    assert!(
        deleted_after_a_value > 0,
        "a conversation published earlier was deleted and tombstoned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pacer_keeps_gets_under_the_per_second_limit() {
    // Gladly's limits with a scaled clock: 10 reports per "minute" of one second, 10 GETs per
    // "second" of 100 ms
    let mut w = world_where(10.0, |c| {
        c.with_scaled_limits(std::time::Duration::from_secs(1))
            .with_scaled_second(std::time::Duration::from_millis(100))
    })
    .await;
    // the default budgets, scaled alike: 8 reports per "minute", 5 GETs per "second"
    configure(&mut w.config, 50);
    w.config.gladly.requests_per_minute = 8 * 60;
    w.config.gladly.max_concurrent_reports = 1;
    let p = w.pipeline().await;
    let mut job = p.open(Report::WORK_SESSIONS, Scope::Run).await.unwrap();
    let (_, distinct) = poll_checking_gets(&w, &p, &mut job, 6).await;
    let stats = w.sim.stats();
    assert!(
        distinct > 50,
        "enough GETs to hit the limit if unpaced: {distinct}"
    );
    assert_eq!(stats.rate_limited, 0, "no 429: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_window_leaves_no_conversation_record() {
    let mut w = world(10.0).await;
    configure(&mut w.config, 5000);
    w.config.reports.work_sessions.max_window_minutes = 720;
    w.clock.advance(Duration::hours(12));
    // a conversation past the fifth (they are fetched in id order) answers 503 twice, and the
    // client gives up after two attempts: the window fails after the conversations before it
    // went into its transaction; the retried window succeeds. (Not one another conversation
    // merges into: that fetch would take one of the two 503s.)
    let (ids, _) = ended_conversations(&w, t0(), w.clock.now());
    let targets: BTreeSet<String> = ids
        .iter()
        .filter_map(|id| match w.sim.conversation(id) {
            ConversationTruth::Moved(to) => Some(to),
            _ => None,
        })
        .collect();
    let (before, failing) = ids
        .iter()
        .enumerate()
        .skip(5)
        .find(|(_, id)| !targets.contains(*id))
        .map(|(i, id)| (i, id.clone()))
        .unwrap();
    w.config.gladly.max_attempts = 2;
    // send records at once, and wait a little before the retry, so the aborted attempt's
    // records usually reach the broker before the abort (shown by read_uncommitted below)
    w.config.gladly.initial_backoff_ms = 200;
    w.config
        .kafka
        .properties
        .insert("linger.ms".into(), "0".into());
    w.sim.faults().update(|f| {
        f.conversation_error_only = Some(failing);
        f.conversation_error_next = 2;
        f.conversation_error_status = 503;
    });
    let p = w.pipeline().await;
    let summary = service::once(&p, Some(Report::WORK_SESSIONS))
        .await
        .remove(&Report::WORK_SESSIONS)
        .unwrap()
        .expect("the retried window is published");
    assert_eq!((summary.windows, summary.retries), (1, 1));
    let aborted = p.metrics().counter_value(
        "gladly_kafka_transactions_aborted_total",
        &[("report", "work_sessions")],
    );
    assert_eq!(aborted, 1.0, "the failed attempt was aborted");
    // the failed attempt sent `before` conversations before giving up: they were fetched
    // (GETs) but count for nothing, like the attempt's records
    let gets = p
        .metrics()
        .counter_value("gladly_kafka_api_get_requests_total", &[]);
    assert!(
        gets as usize >= before + ids.len(),
        "{gets} GETs: {before} in the failed attempt, {} in the retry",
        ids.len()
    );
    let fetched = p
        .metrics()
        .counter_value("gladly_kafka_conversations_fetched_total", &[]);
    assert_eq!(fetched as usize, ids.len(), "only committed ones count");

    let topic = w.config.topics.conversations_topic();
    let committed = tokio::task::spawn_blocking(move || support::kafka::read_all(&topic))
        .await
        .unwrap();
    let mut per_key: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for r in &committed {
        *per_key.entry(r.key.clone().unwrap()).or_default() += 1;
    }
    assert_eq!(per_key.len(), ids.len(), "every conversation of the window");
    assert!(
        per_key.values().all(|n| *n == 1),
        "one record per conversation: the aborted attempt's are invisible"
    );
    // the aborted attempt's records that reached the broker before the abort (librdkafka
    // purges the rest) sit at the offsets before the first committed record, with the abort
    // marker; read_committed skips them
    let mut first: BTreeMap<i32, i64> = BTreeMap::new();
    for r in &committed {
        let o = first.entry(r.partition).or_insert(r.offset);
        *o = (*o).min(r.offset);
    }
    eprintln!(
        "{} committed records; offsets before the first committed one, by partition: {first:?}",
        committed.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_split_at_the_row_cap_costs_gets_only_for_the_published_halves() {
    let mut w = world(10.0).await;
    configure(&mut w.config, 5000);
    w.config.reports.work_sessions.max_window_minutes = 720;
    w.config.pipeline.row_cap = 40;
    w.clock.advance(Duration::hours(12));
    let p = w.pipeline().await;
    let summary = service::once(&p, Some(Report::WORK_SESSIONS))
        .await
        .remove(&Report::WORK_SESSIONS)
        .unwrap()
        .expect("published");
    assert!(summary.splits > 0, "the cap split the window: {summary:?}");

    // the published windows are those whose checkpoint was committed
    let topic = w.config.topics.checkpoint_topic();
    let checkpoints = tokio::task::spawn_blocking(move || support::kafka::read_all(&topic))
        .await
        .unwrap();
    let windows: Vec<(DateTime<Utc>, DateTime<Utc>)> = checkpoints
        .iter()
        .map(|r| serde_json::from_slice::<Checkpoint>(r.value.as_ref().unwrap()).unwrap())
        .filter_map(|c| c.window)
        .map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap()))
        .collect();
    assert_eq!(windows.len() as u64, summary.windows);
    let expected: u64 = windows
        .iter()
        .map(|(a, b)| expected_gets(&w, &ended_conversations(&w, *a, *b).0))
        .sum();
    assert_eq!(
        w.sim.stats().conversation_gets,
        expected,
        "GETs of published windows only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_proves_access_to_get_conversation() {
    let mut w = world(10.0).await;
    configure(&mut w.config, 5000);
    let clock: gladly_kafka::clock::SharedClock = std::sync::Arc::new(w.clock.clone());
    assert!(gladly_kafka::pipeline::check::check(&w.config, clock.clone()).await);
    let gets = w.sim.stats().conversation_gets;
    assert_eq!(gets, 1, "check asked for one conversation");
    let mut wrong = w.config.clone();
    wrong.gladly.token = Some(gladly_kafka::gladly::Secret::new("wrong"));
    assert!(!gladly_kafka::pipeline::check::check(&wrong, clock).await);
}
