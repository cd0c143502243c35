//! The warehouse really converges: our topics read by the ecosystem's own consumers.
//!
//! - A stock Kafka Connect sink (Debezium's JDBC sink with Apicurio's converter), configured
//!   by the very files in `deploy/connect/` (only hosts, ports, topic prefix and schema
//!   replaced), upserts every topic into PostgreSQL. After a simulated stretch with faults, a
//!   row-cap split, a column Gladly adds mid-run, provisional work-session rows superseded,
//!   dimension removals and a restart of the Connect worker mid-stream, every table (work
//!   sessions, conversations, contacts, agent summary, a configured report, the four lists)
//!   equals the simulator's truth, mapped by hand here: row count, key columns and the values
//!   users compute on. Superseded provisional rows are tombstoned and absent from the table;
//!   the new column is a typed column; the sinks run and report no errant record to their
//!   dead-letter topic.
//! - `scripts/read-topics` (Confluent's Python client, which shares no code with ours)
//!   decodes every record of the same topics, and what it reads equals the same truth.
//! - A service killed with SIGKILL mid-window, then finishing, leaves the table equal to the
//!   truth: the sink reads committed transactions only.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration as Wait;

use chrono::Duration;
use gladly_kafka::clock::Clock;
use gladly_kafka::pipeline::{service, BackfillBound, Pipeline};
use gladly_kafka::report::Report;
use gladly_sim::Truth;
use serde_json::Value;

use crate::reports_configured::{conversation_export_section, first_day, METRIC_SET};
use support::pipeline::hostile_day;
use support::pipeline::{t0, world_where, World};
use support::sim::query;
use support::warehouse::{
    normalize, unique_schema, warehouse, Expected, Kind, PrivateWorker, Target,
};

const ADDED_COLUMN: &str = "Number of Transfers";
/// How long a table may take to catch up with the topics.
const CATCH_UP: Wait = Wait::from_secs(240);

/// A world polling the built-in reports, the conversation export configured as a user would
/// write it (Gladly adds a column to it at `added_at`), and the dimension lists.
async fn world(added_at: chrono::DateTime<chrono::Utc>) -> World {
    let mut w = world_where(4.0, |c| {
        c.without_limits()
            .with_added_column(METRIC_SET, ADDED_COLUMN, added_at)
    })
    .await;
    let section = conversation_export_section();
    w.config.reports.configured = section.configured;
    w.config.dimensions.enabled = true;
    w.config.conversations.enabled = true;
    w.config.gladly.requests_per_second = 5000;
    w.config.validate().expect("valid");
    w
}

/// `polls` polls of every report and list, `every` apart.
async fn poll(w: &World, p: &Pipeline, polls: u32, every: Duration) {
    for _ in 0..polls {
        w.clock.advance(every);
        for (report, res) in service::once(p, None).await {
            res.unwrap_or_else(|e| panic!("{report}: {e}"));
        }
        service::once_dimensions(p, true).await.expect("refresh");
    }
}

/// The sinks of this suite's topics (files in `deploy/connect/sinks/`).
const SINKS: [&str; 9] = [
    "work_sessions",
    "conversations",
    "contacts",
    "agent_summary",
    "conversation_export",
    "agents",
    "inboxes",
    "teams",
    "topics",
];

/// An expectation from a report's truth: `(column, CSV header, kind)` for key and values.
fn from_truth(
    table: &'static str,
    truth: &Truth,
    key: &[(&'static str, &str, Kind)],
    values: &[(&'static str, &str, Kind)],
) -> Expected {
    let cell = |row: &gladly_sim::TruthRow, (_, header, kind): &(&str, &str, Kind)| {
        normalize(*kind, row.get(header).unwrap_or(""))
    };
    let rows = truth
        .rows
        .iter()
        .map(|r| {
            let k = key.iter().map(|c| cell(r, c).unwrap_or_default()).collect();
            (k, values.iter().map(|c| cell(r, c)).collect())
        })
        .collect();
    Expected {
        table,
        key: key.iter().map(|c| (c.0, c.2)).collect(),
        values: values.iter().map(|c| (c.0, c.2)).collect(),
        rows,
    }
}

fn report_truth(w: &World, report: Report) -> Truth {
    w.sim.report_truth(&query(&w.truth_request(report)))
}

/// The contacts table a Contact Export truth makes.
fn expected_contacts(truth: &Truth) -> Expected {
    use Kind::*;
    from_truth(
        "contacts",
        truth,
        &[("contact_id", "Contact ID", Text)],
        &[
            ("queued_at", "Queued At", Ts),
            ("ended_at", "Ended At", Ts),
            ("inbox_id", "Inbox ID", Text),
            ("wait_time_sec", "Wait Time in seconds", Num),
            ("handle_time_sec", "Handle Time in seconds", Num),
            ("hold_time_sec", "Hold Time in seconds", Num),
        ],
    )
}

/// The conversations of every contact that ended in the work-session windows polled, as the
/// simulator answers GET Conversation now (following a merge; a deleted one has no row).
fn expected_conversations(w: &World) -> Expected {
    use gladly_sim::ConversationTruth::*;
    use Kind::*;
    let start = w.config.reports.work_sessions.start.expect("set");
    let query = gladly_sim::ReportQuery::WorkSessions {
        start,
        end: w.clock.now(),
    };
    let ids: std::collections::BTreeSet<String> = w
        .sim
        .report_truth(&query)
        .rows
        .iter()
        .filter(|r| !r.get("contact_session_ended_at").unwrap_or("").is_empty())
        .map(|r| r.get("conversation_id").unwrap().to_string())
        .collect();
    let answer = |id: &str| match w.sim.conversation(id) {
        Found(v) => Some(v),
        Deleted => None,
        Moved(to) => match w.sim.conversation(&to) {
            Found(v) => Some(v),
            Deleted => None,
            Moved(again) => panic!("{id} moved to {to}, then to {again}"),
        },
    };
    let rows = ids
        .iter()
        .filter_map(|id| {
            let v = answer(id)?;
            let text = |f: &str| {
                v.get(f)
                    .and_then(Value::as_str)
                    .and_then(|s| normalize(Text, s))
            };
            let ts = |f: &str| {
                v.get(f)
                    .and_then(Value::as_str)
                    .and_then(|s| normalize(Ts, s))
            };
            let topics = v.get("topicIds").cloned().unwrap_or(Value::Array(vec![]));
            let values = vec![
                text("id"),
                text("customerId"),
                text("inboxId"),
                text("status"),
                ts("createdAt"),
                ts("closedAt"),
                normalize(Json, &topics.to_string()),
            ];
            Some((vec![id.clone()], values))
        })
        .collect();
    Expected {
        table: "conversations",
        key: vec![("conversation_id", Text)],
        values: vec![
            ("id", Text),
            ("customer_id", Text),
            ("inbox_id", Text),
            ("status", Text),
            ("created_at", Ts),
            ("closed_at", Ts),
            ("topic_ids_json", Json),
        ],
        rows,
    }
}

/// Every table of [`SINKS`] as the simulator says it should be now.
fn expected_tables(w: &World) -> Vec<Expected> {
    use Kind::*;
    let contacts = expected_contacts(&report_truth(w, Report::CONTACTS));
    let agent_summary = from_truth(
        "agent_summary",
        &report_truth(w, Report::AGENT_SUMMARY),
        &[
            ("agent_id", "Agent ID", Text),
            ("bucket_start", "Bucket Beginning", Ts),
        ],
        &[
            ("name", "Name", Text),
            ("logged_in_time_sec", "Logged In Time in seconds", Num),
            ("active_time_sec", "Active Time in seconds", Num),
        ],
    );
    let export = w
        .sim
        .metric_set_truth(METRIC_SET, first_day(), w.clock.now().date_naive(), "UTC");
    let conversation_export = from_truth(
        "conversation_export",
        &export,
        &[("conversation_id", "Conversation ID", Text)],
        &[
            ("created_at", "Created At", Ts),
            ("status", "Status", Text),
            ("first_closed_at", "First Closed At", Ts),
            ("inbox_id_current", "Inbox ID - Current", Text),
        ],
    );
    let work_sessions = from_truth(
        "work_sessions",
        &report_truth(w, Report::WORK_SESSIONS),
        &[
            ("contact_session_id", "contact_session_id", Text),
            ("agent_id", "agent_id", Text),
        ],
        &[
            ("id", "id", Text),
            ("inbox_id", "inbox_id", Text),
            (
                "contact_session_created_at",
                "contact_session_created_at",
                Ts,
            ),
            ("agent_accepted_at", "agent_accepted_at", Ts),
            ("contact_session_ended_at", "contact_session_ended_at", Ts),
            (
                "work_session_handle_time_sec",
                "work_session_handle_time_sec",
                Num,
            ),
            (
                "work_session_after_contact_time_sec",
                "work_session_after_contact_time_sec",
                Num,
            ),
        ],
    );
    let mut out = vec![
        work_sessions,
        expected_conversations(w),
        contacts,
        agent_summary,
        conversation_export,
    ];
    for list in ["agents", "inboxes", "teams", "topics"] {
        let table = SINKS.iter().find(|s| **s == list).unwrap();
        let rows = w
            .sim
            .list(list)
            .unwrap()
            .iter()
            .map(|item| {
                let text = |f: &str| item[f].as_str().and_then(|s| normalize(Text, s));
                (vec![text("id").unwrap()], vec![text("name")])
            })
            .collect();
        out.push(Expected {
            table,
            key: vec![("id", Text)],
            values: vec![("name", Text)],
            rows,
        });
    }
    for e in &out {
        assert!(!e.rows.is_empty(), "{}: the truth is not empty", e.table);
    }
    out
}

/// Waits until every table equals its expectation; then every sink runs and its dead-letter
/// topic is empty.
async fn assert_tables_converged(target: &Target, expected: &[Expected]) {
    for e in expected {
        let schema = target.schema.clone();
        let e2 = e.clone();
        tokio::task::spawn_blocking(move || e2.await_table(warehouse(), &schema, CATCH_UP))
            .await
            .unwrap_or_else(|p| std::panic::resume_unwind(p.into_panic()));
        target.assert_running(e.table).await;
    }
    let dl = target.dead_letter_topic();
    let dead = tokio::task::spawn_blocking(move || support::kafka::read_all(&dl))
        .await
        .unwrap();
    assert!(
        dead.is_empty(),
        "{} records in the sinks' dead letters",
        dead.len()
    );
}

/// Rows keyed like [`Expected::rows`].
type Rows = BTreeMap<Vec<String>, Vec<Option<String>>>;

/// What `scripts/read-topics` decodes from `topic`, upserted by key, in the expectation's
/// shape; and the keys whose last record is a tombstone.
fn read_topics(w: &World, e: &Expected, topic: &str) -> (Rows, Vec<Vec<String>>) {
    let out =
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/read-topics"))
            .args(["--bootstrap", &w.config.kafka.bootstrap_servers])
            .args(["--registry", &w.config.registry.url, topic])
            .output()
            .expect("read-topics runs");
    assert!(
        out.status.success(),
        "read-topics {topic} (decode failures make it fail): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut live: BTreeMap<String, Value> = BTreeMap::new();
    let mut gone: BTreeMap<String, Value> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let r: Value = serde_json::from_str(line).expect("a JSON line");
        let k = r["key"].to_string();
        match &r["value"] {
            Value::Null => {
                live.remove(&k);
                gone.insert(k, r["key"].clone());
            }
            v => {
                gone.remove(&k);
                live.insert(k, serde_json::json!({"key": r["key"], "value": v}));
            }
        };
    }
    let text = |v: &Value| match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    let rows = live
        .values()
        .map(|r| {
            let key = e
                .key
                .iter()
                .map(|(c, k)| text(&r["key"][c]).and_then(|t| normalize(*k, &t)));
            let values = e
                .values
                .iter()
                .map(|(c, k)| text(&r["value"][c]).and_then(|t| normalize(*k, &t)));
            key.chain(values).collect()
        })
        .collect();
    let gone = gone
        .values()
        .map(|k| {
            e.key
                .iter()
                .map(|(c, kind)| {
                    text(&k[c])
                        .and_then(|t| normalize(*kind, &t))
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect();
    (e.keyed(rows), gone)
}

fn topic_of(w: &World, table: &str) -> String {
    use gladly_kafka::report::DimensionList;
    match DimensionList::ALL.iter().find(|l| l.name() == table) {
        Some(list) => w.config.topics.dimension_topic(*list),
        None => w
            .config
            .report_topic(Report::named(table).expect("a report")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_and_a_second_client_equal_the_truth_through_faults_and_a_connect_restart() {
    let wh = warehouse();
    let added_at = t0() + Duration::hours(15);
    let mut w = world(added_at).await;
    // a window of the built-in reports over the cap is split
    w.config.pipeline.row_cap = 150;
    hostile_day(&w.sim, 150);
    let worker = tokio::task::block_in_place(PrivateWorker::start);
    let target = Target {
        prefix: w.config.topics.prefix.clone(),
        schema: unique_schema("wh"),
        connect_url: worker.url.clone(),
    };
    wh.execute(&format!("CREATE SCHEMA {}", target.schema));
    let p = w.pipeline().await;
    // the first polls create the topics; then the sinks subscribe
    poll(&w, &p, 2, Duration::hours(6)).await;
    for sink in SINKS {
        target.put_sink(sink).await;
    }
    poll(&w, &p, 2, Duration::hours(6)).await;
    // Connect is away while two more polls publish (day 3's list changes among them)
    tokio::task::block_in_place(|| worker.stop());
    poll(&w, &p, 2, Duration::hours(6)).await;
    tokio::task::block_in_place(|| worker.restart());
    // a standalone worker keeps no connector configs: add them again; their offsets are in
    // Kafka, so they resume where they stopped
    for sink in SINKS {
        target.put_sink(sink).await;
    }
    poll(&w, &p, 2, Duration::hours(6)).await;
    // day 4: removals from the lists
    w.clock.set(t0() + Duration::days(2) + Duration::hours(1));
    poll(&w, &p, 1, Duration::zero()).await;
    let stats = w.sim.stats();
    assert!(stats.rate_limited >= 3, "429s were served: {stats:?}");
    assert_eq!(w.sim.faults().snapshot().cut_next, 0, "every cut happened");
    let splits: f64 = ["contacts", "agent_summary", "conversation_export"]
        .iter()
        .map(|r| {
            p.metrics()
                .counter_value("gladly_kafka_window_splits_total", &[("report", r)])
        })
        .sum();
    assert!(splits > 0.0, "a capped window was split");

    // a refresh of the polled range: the conversations are fetched as they are now
    let ws_start = w.config.reports.work_sessions.start.expect("set");
    service::backfill(
        &p,
        Report::WORK_SESSIONS,
        BackfillBound::Instant(ws_start),
        BackfillBound::Instant(w.clock.now()),
    )
    .await
    .expect("the refresh");

    let expected = expected_tables(&w);
    assert_tables_converged(&target, &expected).await;

    // the column Gladly added mid-run reached the table as a new, typed column, and its
    // values equal the truth wherever a record carried it
    let columns = wh.columns(&target.schema, "conversation_export");
    assert_eq!(
        columns.get("number_of_transfers").map(String::as_str),
        Some("bigint"),
        "{columns:?}"
    );
    let added = from_truth(
        "conversation_export",
        &w.sim
            .metric_set_truth(METRIC_SET, first_day(), w.clock.now().date_naive(), "UTC"),
        &[("conversation_id", "Conversation ID", Kind::Text)],
        &[("number_of_transfers", ADDED_COLUMN, Kind::Num)],
    );
    let landed = added.read_table(wh, &target.schema);
    let with_value: Vec<_> = landed.iter().filter(|(_, v)| v[0].is_some()).collect();
    assert!(
        with_value.len() > 10,
        "{} rows carry the new column",
        with_value.len()
    );
    for (k, v) in with_value {
        assert_eq!(Some(v), added.rows.get(k), "{k:?}: number_of_transfers");
    }

    // the second, independent client reads the same topics into the same truth
    for e in &expected {
        let topic = topic_of(&w, e.table);
        let (got, gone) = tokio::task::block_in_place(|| read_topics(&w, e, &topic));
        if let Some(diff) = e.differences(&got) {
            panic!("read-topics {topic}: {diff}");
        }
        if e.table == "work_sessions" {
            // provisional rows were superseded: tombstoned in the topic, absent from the table
            let table = e.read_table(wh, &target.schema);
            assert!(
                !gone.is_empty(),
                "provisional work-session rows were superseded"
            );
            assert!(
                gone.iter()
                    .all(|k| k[1].is_empty() && !table.contains_key(k)),
                "{gone:?}"
            );
        }
    }
    for sink in SINKS {
        target.delete_sink(sink).await;
    }
    drop(worker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_killed_mid_window_leaves_the_table_equal_to_the_truth() {
    use gladly_kafka::pipeline::window::{DateWindow, Window};
    use support::service;
    let wh = warehouse();
    let mut w = support::pipeline::world(20.0).await;
    w.config.reports.contacts.max_window_days = 1;
    // every contact of the backfilled days has ended
    w.clock.set(t0() + Duration::days(5));
    let mut table = service::config_table(&w);
    service::set(&mut table, "reports.contacts.max_window_days", 1);
    let config = service::write_config(&table);
    let (from, to) = (
        t0().date_naive() - Duration::days(1),
        t0().date_naive() + Duration::days(2),
    );
    let backfill = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gladly-kafka"));
        cmd.arg("--config")
            .arg(config.path())
            .args([
                "backfill",
                "--report",
                "contacts",
                "--from",
                &from.to_string(),
            ])
            .args(["--to", &to.to_string()])
            .env("GLADLY_KAFKA__GLADLY__TOKEN", w.sim.config().token.clone())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd
    };
    // the sink reads the topic from its start while the crashed runs write it
    let target = Target {
        prefix: w.config.topics.prefix.clone(),
        schema: unique_schema("whkill"),
        connect_url: wh.connect_url.clone(),
    };
    wh.execute(&format!("CREATE SCHEMA {}", target.schema));
    // a crash at every named point of a window (src/fault.rs), each run resuming where the
    // last one committed: no process ends by a timed kill that might land between windows
    for (i, point) in gladly_kafka::fault::POINTS.iter().enumerate() {
        let at = match *point {
            "after-record" => format!("{point}@40"),
            _ => format!("{point}@2"),
        };
        let mut cmd = backfill();
        cmd.env(gladly_kafka::fault::CRASH_AT, &at)
            .stderr(std::process::Stdio::piped());
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(&format!("crash point {at}: aborting")),
            "the run crashed at {at} ({}):\n{stderr}",
            out.status
        );
        if i == 0 {
            target.put_sink("contacts").await;
        }
    }
    let status = tokio::task::spawn_blocking({
        let mut cmd = backfill();
        move || cmd.status().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success(), "the last run completes the backfill");

    let window = Window::Dates(DateWindow::new(from, to).unwrap());
    let request = gladly_kafka::pipeline::request(&w.config, Report::CONTACTS, &window);
    let expected = expected_contacts(&w.sim.report_truth(&query(&request)));
    assert!(
        expected.rows.len() > 100,
        "{} contacts",
        expected.rows.len()
    );
    assert_tables_converged(&target, &[expected]).await;
    target.delete_sink("contacts").await;
}
