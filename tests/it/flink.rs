//! A stream processor reads the topics as upsert tables: the real pipeline polls the
//! simulator (through 429s, 503s, cut bodies and a row-cap split) into the real broker, then
//! a real Flink (a local MiniCluster, `scripts/flink`) runs the CREATE TABLEs that
//! `gladly-kafka sql --dialect flink` prints and the questions of interop/flink/questions.sql,
//! and prints each table's and view's final state.
//!
//! - Every table Flink materialises equals the simulator's truth, mapped by hand from its
//!   report rows and lists (not through our converter): row count, keys and the values users
//!   compute on. The dimension removed on the simulator's day 4 is gone (a tombstone is a
//!   delete to Flink).
//! - Every question's answer equals the one computed here from the same truth.
//! - The changelog-sensitive question, how many contacts are open right now, counts the open
//!   contacts while some are, and falls to zero once their final rows superseded the
//!   provisional ones.
//! - A second run from the earliest offsets prints the same tables and answers.
//! - The same questions in PostgreSQL (docs/analyst-queries.md), over the tables the shipped
//!   Debezium sinks (`deploy/connect/sinks/`) keep from the same topics, give the same
//!   answers.
//!
//! Three JVM start-ups in all: each run computes every table and question at once (the
//! sinks run on the shared Connect worker of `scripts/stack/stack warehouse-up`).

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use gladly_kafka::clock::Clock;
use gladly_kafka::report::Report;
use gladly_sim::{ConversationTruth, Truth, TruthRow};
use serde_json::{json, Value};

use support::pipeline::hostile_day;
use support::pipeline::{t0, world_where, World};
use support::sim::query;
use support::warehouse::{unique_schema, Target};

/// What one run of the Flink job printed: each table's and view's final rows.
#[derive(Debug, PartialEq)]
struct Flink {
    rows: BTreeMap<String, Vec<Value>>,
}

impl Flink {
    /// The rows of `name` (a table or a view); panics when Flink printed no summary for it.
    fn rows(&self, name: &str) -> &[Value] {
        self.rows
            .get(name)
            .unwrap_or_else(|| panic!("Flink printed nothing for {name}: {:?}", self.rows.keys()))
    }

    /// The rows of `name` by `key`, keeping only `fields`.
    fn by(&self, name: &str, key: &[&str], fields: &[&str]) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for r in self.rows(name) {
            let k: Vec<String> = key.iter().map(|k| text(&r[*k])).collect();
            let v: serde_json::Map<String, Value> = fields
                .iter()
                .map(|f| (f.to_string(), r[*f].clone()))
                .collect();
            assert!(
                out.insert(k.join("/"), Value::Object(v)).is_none(),
                "{name}: two rows for key {k:?}"
            );
        }
        out
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints the Flink DDL with the real binary, from the world's configuration.
fn flink_ddl(w: &World, dir: &Path) -> std::path::PathBuf {
    let mut table = support::service::config_table(w);
    support::service::set(&mut table, "dimensions.enabled", true);
    support::service::set(&mut table, "conversations.enabled", true);
    let config = support::service::write_config(&table);
    let out = Command::new(env!("CARGO_BIN_EXE_gladly-kafka"))
        .args(["sql", "--dialect", "flink", "--config"])
        .arg(config.path())
        .stdin(Stdio::null())
        .output()
        .expect("gladly-kafka runs");
    assert!(
        out.status.success(),
        "gladly-kafka sql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ddl = String::from_utf8(out.stdout).unwrap();
    for t in [
        "work_sessions",
        "contacts",
        "agent_summary",
        "conversations",
        "inboxes",
    ] {
        assert!(
            ddl.contains(&format!("CREATE TABLE `{t}`")),
            "{t} in\n{ddl}"
        );
    }
    let path = dir.join("tables.sql");
    std::fs::write(&path, ddl).unwrap();
    path
}

/// Runs the Flink job once over `ddl` and the questions, bounded at the offsets latest when
/// it starts (so it ends), and parses what it printed.
fn run_flink(ddl: &Path) -> Flink {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(format!("{root}/scripts/flink"))
        .arg("run")
        .arg("--ddl")
        .arg(ddl)
        .args(["--queries", &format!("{root}/interop/flink/questions.sql")])
        .arg("--bounded")
        .stdin(Stdio::null())
        .output()
        .expect("scripts/flink runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "scripts/flink failed:\n{stderr}");
    let mut rows: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut counted: BTreeMap<String, u64> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let name = v["name"].as_str().expect("a name").to_string();
        match v.get("row") {
            Some(row) => rows.entry(name).or_default().push(row.clone()),
            None => {
                rows.entry(name.clone()).or_default();
                counted.insert(name, v["rows"].as_u64().expect("a row count"));
            }
        }
    }
    for (name, n) in &counted {
        assert_eq!(rows[name].len() as u64, *n, "{name}: rows printed");
    }
    assert_eq!(counted.len(), rows.len(), "a summary per name\n{stderr}");
    Flink { rows }
}

/// A report cell's instant in epoch millis (`null` when empty).
fn ms(cell: &str) -> Value {
    if cell.is_empty() {
        return Value::Null;
    }
    let t: DateTime<Utc> = cell.parse().unwrap_or_else(|e| panic!("{cell}: {e}"));
    json!(t.timestamp_millis())
}

/// A report cell's seconds as a double (`null` when empty).
fn secs(cell: &str) -> Value {
    match cell {
        "" => Value::Null,
        s => json!(s.parse::<f64>().unwrap_or_else(|e| panic!("{s}: {e}"))),
    }
}

/// An empty cell as `null`, any other as text.
fn opt(cell: &str) -> Value {
    match cell {
        "" => Value::Null,
        s => json!(s),
    }
}

/// The UTC day of a report cell's instant.
fn day(cell: &str) -> NaiveDate {
    cell.parse::<DateTime<Utc>>().unwrap().date_naive()
}

fn truth(w: &World, report: Report) -> Truth {
    w.sim.report_truth(&query(&w.truth_request(report)))
}

/// The contacts the simulator's Contact Export holds for everything polled, by contact id.
fn contacts_truth(w: &World) -> Vec<TruthRow> {
    truth(w, Report::CONTACTS).rows
}

fn cell<'a>(r: &'a TruthRow, column: &str) -> &'a str {
    r.get(column)
        .unwrap_or_else(|| panic!("no column {column}"))
}

/// Contacts by id: the fields users compute on, as Flink prints them.
fn expected_contacts(rows: &[TruthRow]) -> BTreeMap<String, Value> {
    rows.iter()
        .map(|r| {
            let v = json!({
                "queued_at": ms(cell(r, "Queued At")),
                "conversation_id": opt(cell(r, "Conversation ID")),
                "direction": opt(cell(r, "Direction")),
                "inbox_id": opt(cell(r, "Inbox ID")),
                "ended_at": ms(cell(r, "Ended At")),
                "wait_time_sec": secs(cell(r, "Wait Time in seconds")),
                "handle_time_sec": secs(cell(r, "Handle Time in seconds")),
                "hold_time_sec": secs(cell(r, "Hold Time in seconds")),
            });
            (cell(r, "Contact ID").to_string(), v)
        })
        .collect()
}

const CONTACT_FIELDS: [&str; 8] = [
    "queued_at",
    "conversation_id",
    "direction",
    "inbox_id",
    "ended_at",
    "wait_time_sec",
    "handle_time_sec",
    "hold_time_sec",
];

/// Contacts counted per UTC day of `column`, over the rows `keep` accepts.
fn per_day(
    rows: &[TruthRow],
    column: &str,
    keep: impl Fn(&TruthRow) -> bool,
) -> BTreeMap<String, Value> {
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for r in rows.iter().filter(|r| keep(r)) {
        *out.entry(day(cell(r, column)).to_string()).or_default() += 1;
    }
    out.into_iter()
        .map(|(d, n)| (d, json!({ "contacts": n })))
        .collect()
}

/// The simulator's inbox names now (removed inboxes are absent).
fn inbox_names(w: &World) -> BTreeMap<String, String> {
    w.sim
        .list("inboxes")
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_string(),
                i["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Per inbox: the count and the mean of each of `columns` over the rows `keep` accepts
/// (means over the non-empty cells, as SQL's AVG), with the inbox's name.
fn per_inbox(
    w: &World,
    rows: &[TruthRow],
    keep: impl Fn(&TruthRow) -> bool,
    count: &str,
    columns: &[(&str, &str)],
) -> BTreeMap<String, Value> {
    let names = inbox_names(w);
    let mut groups: BTreeMap<String, Vec<&TruthRow>> = BTreeMap::new();
    for r in rows.iter().filter(|r| keep(r)) {
        groups
            .entry(cell(r, "Inbox ID").to_string())
            .or_default()
            .push(r);
    }
    groups
        .into_iter()
        .map(|(inbox, rs)| {
            let mut v = serde_json::Map::new();
            v.insert("inbox_name".into(), json!(names.get(&inbox)));
            v.insert(count.into(), json!(rs.len()));
            for (field, column) in columns {
                let xs: Vec<f64> = rs
                    .iter()
                    .filter(|r| !cell(r, column).is_empty())
                    .map(|r| cell(r, column).parse().unwrap())
                    .collect();
                let mean = (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
                v.insert(field.to_string(), json!(mean));
            }
            (inbox, Value::Object(v))
        })
        .collect()
}

/// Asserts two maps of rows are equal, doubles to within a relative 1e-9 (Flink sums in
/// its own order).
fn assert_rows_eq(what: &str, got: &BTreeMap<String, Value>, want: &BTreeMap<String, Value>) {
    let keys = |m: &BTreeMap<String, Value>| m.keys().cloned().collect::<BTreeSet<_>>();
    let missing: Vec<_> = keys(want).difference(&keys(got)).cloned().collect();
    let extra: Vec<_> = keys(got).difference(&keys(want)).cloned().collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} rows from Flink, {} in the truth; missing {:?}, extra {:?}",
        got.len(),
        want.len(),
        &missing[..missing.len().min(5)],
        &extra[..extra.len().min(5)]
    );
    let differing: Vec<_> = want
        .iter()
        .filter(|(k, v)| !close(&got[*k], v))
        .map(|(k, v)| format!("{k}: truth {v}, Flink {}", got[k]))
        .collect();
    assert!(
        differing.is_empty(),
        "{what}: {} of {} rows differ: {:#?}",
        differing.len(),
        want.len(),
        &differing[..differing.len().min(5)]
    );
}

fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
        }
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        _ => a == b,
    }
}

/// Every dimension table equals the simulator's list now: removed ids are gone.
fn assert_dimensions(w: &World, f: &Flink) {
    let lists: [(&str, &[(&str, &str)]); 4] = [
        (
            "agents",
            &[("name", "name"), ("email_address", "emailAddress")],
        ),
        ("inboxes", &[("name", "name"), ("disabled", "disabled")]),
        ("teams", &[("name", "name"), ("description", "description")]),
        (
            "topics",
            &[
                ("name", "name"),
                ("disabled", "disabled"),
                ("parent_id", "parentId"),
            ],
        ),
    ];
    for (list, fields) in lists {
        let want: BTreeMap<String, Value> = w
            .sim
            .list(list)
            .unwrap()
            .iter()
            .map(|item| {
                let v: serde_json::Map<String, Value> = fields
                    .iter()
                    .map(|(f, json)| {
                        (
                            f.to_string(),
                            item.get(*json).cloned().unwrap_or(Value::Null),
                        )
                    })
                    .collect();
                (item["id"].as_str().unwrap().to_string(), Value::Object(v))
            })
            .collect();
        let names: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
        assert_rows_eq(list, &f.by(list, &["id"], &names), &want);
    }
}

/// The Agent Summary table equals the simulator's daily buckets: keys and the times.
fn assert_agent_summary(w: &World, f: &Flink) {
    let want: BTreeMap<String, Value> = truth(w, Report::AGENT_SUMMARY)
        .rows
        .iter()
        .map(|r| {
            let key = format!(
                "{}/{}",
                cell(r, "Agent ID"),
                ms(cell(r, "Bucket Beginning"))
            );
            let v = json!({
                "active_time_sec": secs(cell(r, "Active Time in seconds")),
                "logged_in_time_sec": secs(cell(r, "Logged In Time in seconds")),
            });
            (key, v)
        })
        .collect();
    let got = f.by(
        "agent_summary",
        &["agent_id", "bucket_start"],
        &["active_time_sec", "logged_in_time_sec"],
    );
    assert_rows_eq("agent_summary", &got, &want);
}

/// The conversations table: every row is what the simulator answered for its conversation
/// at the row's `fetched_at`, and every conversation with an ended contact is there unless
/// the simulator deletes it.
fn assert_conversations(w: &World, f: &Flink) {
    let ended: BTreeSet<String> = truth(w, Report::WORK_SESSIONS)
        .rows
        .iter()
        .filter(|r| !cell(r, "contact_session_ended_at").is_empty())
        .map(|r| cell(r, "conversation_id").to_string())
        .collect();
    let rows = f.rows("conversations");
    let mut seen = BTreeSet::new();
    for r in rows {
        let id = r["conversation_id"].as_str().unwrap().to_string();
        let at = DateTime::<Utc>::from_timestamp_millis(r["fetched_at"].as_i64().unwrap()).unwrap();
        let answer = match w.sim.conversation_at(&id, at) {
            ConversationTruth::Found(v) => v,
            ConversationTruth::Moved(to) => match w.sim.conversation_at(&to, at) {
                ConversationTruth::Found(v) => v,
                other => panic!("{id} moved to {to}, which is {other:?}"),
            },
            ConversationTruth::Deleted => panic!("{id} was deleted at {at}, yet Flink has it"),
        };
        let want = json!({
            "id": answer["id"],
            "status": answer["status"],
            "inbox_id": answer["inboxId"],
            "closed_at": answer.get("closedAt").and_then(Value::as_str).map_or(Value::Null, ms),
        });
        let have = json!({
            "id": r["id"], "status": r["status"], "inbox_id": r["inbox_id"], "closed_at": r["closed_at"],
        });
        assert_eq!(have, want, "conversation {id} at {at}");
        assert!(ended.contains(&id), "{id}: no ended contact");
        seen.insert(id);
    }
    for id in ended.difference(&seen) {
        assert!(
            matches!(w.sim.conversation(id), ConversationTruth::Deleted),
            "conversation {id} has an ended contact but no row in Flink"
        );
    }
    assert!(seen.len() > 10, "{} conversations", seen.len());
}

/// The work-session rows the simulator's report holds for everything polled.
fn work_sessions_truth(w: &World) -> Vec<TruthRow> {
    truth(w, Report::WORK_SESSIONS).rows
}

/// The key of a work-session row: contact and agent (`""` for the agent-less row).
fn ws_key(r: &TruthRow) -> String {
    format!(
        "{}/{}",
        cell(r, "contact_session_id"),
        cell(r, "agent_id").trim()
    )
}

const WORK_SESSION_FIELDS: [&str; 5] = [
    "id",
    "inbox_id",
    "contact_session_ended_at",
    "work_session_handle_time_sec",
    "work_session_after_contact_time_sec",
];

/// The work-sessions table equals the truth: keys, id, inbox, end and times.
fn assert_work_sessions(f: &Flink, rows: &[TruthRow]) {
    let mut want = BTreeMap::new();
    for r in rows {
        let v = json!({
            "id": opt(cell(r, "id")),
            "inbox_id": opt(cell(r, "inbox_id")),
            "contact_session_ended_at": ms(cell(r, "contact_session_ended_at")),
            "work_session_handle_time_sec": secs(cell(r, "work_session_handle_time_sec")),
            "work_session_after_contact_time_sec": secs(cell(r, "work_session_after_contact_time_sec")),
        });
        assert!(want.insert(ws_key(r), v).is_none(), "one truth row per key");
    }
    let got = f.by(
        "work_sessions",
        &["contact_session_id", "agent_id"],
        &WORK_SESSION_FIELDS,
    );
    assert_rows_eq("work_sessions", &got, &want);
}

/// A question's answer as the test computes it from the truth: its key and value columns
/// (in the order the Flink view and the PostgreSQL query select them) and its rows by key
/// (the key cells joined with `/`; `""` for a one-row answer).
struct Answer {
    name: &'static str,
    key: &'static [&'static str],
    fields: &'static [&'static str],
    rows: BTreeMap<String, Value>,
}

/// The mean of `column` over the rows with a non-empty cell (SQL's AVG), `None` for none.
fn mean(rows: &[&TruthRow], column: &str) -> Option<f64> {
    let xs: Vec<f64> = rows
        .iter()
        .filter(|r| !cell(r, column).is_empty())
        .map(|r| cell(r, column).parse().unwrap())
        .collect();
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// The work-session questions: agents per contact, handle and after-contact time per inbox,
/// open work sessions.
fn work_session_answers(w: &World, rows: &[TruthRow]) -> Vec<Answer> {
    let with_agent = |r: &TruthRow| !cell(r, "agent_id").trim().is_empty();
    let mut agents: BTreeMap<String, i64> = BTreeMap::new();
    for r in rows.iter().filter(|r| with_agent(r)) {
        *agents
            .entry(cell(r, "contact_session_id").to_string())
            .or_default() += 1;
    }
    let names = inbox_names(w);
    let mut groups: BTreeMap<String, Vec<&TruthRow>> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| with_agent(r) && !cell(r, "contact_session_ended_at").is_empty())
    {
        groups
            .entry(cell(r, "inbox_id").to_string())
            .or_default()
            .push(r);
    }
    let open = rows.iter().filter(|r| cell(r, "id").is_empty()).count();
    vec![
        Answer {
            name: "q_agents_per_contact",
            key: &["contact_session_id"],
            fields: &["agents"],
            rows: agents
                .into_iter()
                .map(|(c, n)| (c, json!({ "agents": n })))
                .collect(),
        },
        Answer {
            name: "q_work_time_per_inbox",
            key: &["inbox_id"],
            fields: &[
                "inbox_name",
                "work_sessions",
                "avg_handle_time_sec",
                "avg_after_contact_time_sec",
            ],
            rows: groups
                .into_iter()
                .map(|(inbox, rs)| {
                    let v = json!({
                        "inbox_name": names.get(&inbox),
                        "work_sessions": rs.len(),
                        "avg_handle_time_sec": mean(&rs, "work_session_handle_time_sec"),
                        "avg_after_contact_time_sec":
                            mean(&rs, "work_session_after_contact_time_sec"),
                    });
                    (inbox, v)
                })
                .collect(),
        },
        Answer {
            name: "q_open_work_sessions",
            key: &[],
            fields: &["open_work_sessions", "work_sessions"],
            rows: [(
                String::new(),
                json!({"open_work_sessions": open, "work_sessions": rows.len()}),
            )]
            .into(),
        },
    ]
}

/// The contact questions, from the Contact Export truth.
fn contact_answers(w: &World, contacts: &[TruthRow]) -> Vec<Answer> {
    let ended = |r: &TruthRow| !cell(r, "Ended At").is_empty();
    let answered = |r: &TruthRow| {
        !cell(r, "Wait Time in seconds").is_empty() && !cell(r, "Accepted At").is_empty()
    };
    let daily = |name, rows| Answer {
        name,
        key: &["day"],
        fields: &["contacts"],
        rows,
    };
    let open = contacts.iter().filter(|r| !ended(r)).count();
    vec![
        daily(
            "q_contacts_initiated_per_day",
            per_day(contacts, "Queued At", |_| true),
        ),
        daily(
            "q_contacts_ended_per_day",
            per_day(contacts, "Ended At", ended),
        ),
        daily(
            "q_contacts_with_conversation_per_day",
            per_day(contacts, "Queued At", |r| {
                !cell(r, "Conversation ID").is_empty()
            }),
        ),
        daily(
            "q_outbound_contacts_started_per_day",
            per_day(contacts, "Queued At", |r| {
                cell(r, "Direction") == "OUTBOUND"
            }),
        ),
        Answer {
            name: "q_speed_of_answer_per_inbox",
            key: &["inbox_id"],
            fields: &["inbox_name", "answered", "avg_speed_of_answer_sec"],
            rows: per_inbox(
                w,
                contacts,
                answered,
                "answered",
                &[("avg_speed_of_answer_sec", "Wait Time in seconds")],
            ),
        },
        Answer {
            name: "q_handle_time_per_inbox",
            key: &["inbox_id"],
            fields: &[
                "inbox_name",
                "ended",
                "avg_handle_time_sec",
                "avg_hold_time_sec",
            ],
            rows: per_inbox(
                w,
                contacts,
                ended,
                "ended",
                &[
                    ("avg_handle_time_sec", "Handle Time in seconds"),
                    ("avg_hold_time_sec", "Hold Time in seconds"),
                ],
            ),
        },
        Answer {
            name: "q_open_contacts",
            key: &[],
            fields: &["open_contacts", "contacts"],
            rows: [(
                String::new(),
                json!({"open_contacts": open, "contacts": contacts.len()}),
            )]
            .into(),
        },
    ]
}

/// Every question's answer from the truth now.
fn answers(w: &World) -> Vec<Answer> {
    let mut out = contact_answers(w, &contacts_truth(w));
    out.extend(work_session_answers(w, &work_sessions_truth(w)));
    out
}

/// The answer named `name`.
fn answer<'a>(answers: &'a [Answer], name: &str) -> &'a Answer {
    answers.iter().find(|a| a.name == name).expect("an answer")
}

/// Every table and question against the truth now; returns the open contacts and the open
/// work sessions (their answers' first field).
fn assert_flink_equals_truth(w: &World, f: &Flink) -> (i64, i64) {
    assert_work_sessions(f, &work_sessions_truth(w));
    let got = f.by("contacts", &["contact_id"], &CONTACT_FIELDS);
    assert_rows_eq("contacts", &got, &expected_contacts(&contacts_truth(w)));
    assert_dimensions(w, f);
    assert_agent_summary(w, f);
    assert_conversations(w, f);
    let answers = answers(w);
    for a in &answers {
        assert_rows_eq(a.name, &f.by(a.name, a.key, a.fields), &a.rows);
    }
    let first = |name: &str, field: &str| answer(&answers, name).rows[""][field].as_i64().unwrap();
    (
        first("q_open_contacts", "open_contacts"),
        first("q_open_work_sessions", "open_work_sessions"),
    )
}

/// The PostgreSQL queries of docs/analyst-queries.md by name (the `-- q_<name>:` comment
/// line before each statement), with `warehouse.` replaced by `schema.`.
fn analyst_queries(schema: &str) -> BTreeMap<String, String> {
    let doc = include_str!("../../docs/analyst-queries.md");
    let sql = doc
        .split("```sql\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a sql block in docs/analyst-queries.md");
    let mut out = BTreeMap::new();
    for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let name = statement
            .strip_prefix("-- ")
            .and_then(|s| s.split(':').next())
            .unwrap_or_else(|| panic!("a statement without a `-- q_name:` line: {statement}"));
        let body = statement.replace("warehouse.", &format!("{schema}."));
        out.insert(name.to_string(), body);
    }
    out
}

/// A psql cell as JSON: a number when it parses as one, else text; NULL as null.
fn pg_value(cell: &Option<String>) -> Value {
    match cell.as_deref() {
        None => Value::Null,
        Some(c) => c
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| c.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(c.to_string())),
    }
}

/// The rows `sql` returns, keyed like an [`Answer`]'s (key columns first, then fields).
fn pg_answer(wh: &support::warehouse::Warehouse, sql: &str, a: &Answer) -> BTreeMap<String, Value> {
    let n = a.key.len();
    wh.query(sql)
        .iter()
        .map(|r| {
            assert_eq!(r.len(), n + a.fields.len(), "{}: columns", a.name);
            let key: Vec<String> = r[..n].iter().map(|c| text(&pg_value(c))).collect();
            let v: serde_json::Map<String, Value> = a
                .fields
                .iter()
                .zip(&r[n..])
                .map(|(f, c)| (f.to_string(), pg_value(c)))
                .collect();
            (key.join("/"), Value::Object(v))
        })
        .collect()
}

/// Whether `got` equals `want` (doubles within a relative 1e-9).
fn rows_close(got: &BTreeMap<String, Value>, want: &BTreeMap<String, Value>) -> bool {
    got.len() == want.len()
        && want
            .iter()
            .all(|(k, v)| got.get(k).is_some_and(|g| close(g, v)))
}

/// Runs every query of docs/analyst-queries.md against the sinks' tables in `schema` until
/// each equals the truth's answer (the sinks catch up asynchronously); panics with the
/// differences after `deadline`.
fn assert_warehouse_answers(w: &World, schema: &str, deadline: std::time::Duration) {
    let wh = support::warehouse::warehouse();
    let queries = analyst_queries(schema);
    let answers = answers(w);
    let names: BTreeSet<&str> = answers.iter().map(|a| a.name).collect();
    assert_eq!(
        queries.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        names,
        "a PostgreSQL query per question"
    );
    let start = std::time::Instant::now();
    loop {
        let tables_exist = ["contacts", "inboxes", "work_sessions"]
            .iter()
            .all(|t| !wh.columns(schema, t).is_empty());
        let pending: Vec<(&str, BTreeMap<String, Value>)> = if tables_exist {
            answers
                .iter()
                .map(|a| (a.name, pg_answer(wh, &queries[a.name], a)))
                .filter(|(name, got)| !rows_close(got, &answer(&answers, name).rows))
                .collect()
        } else {
            Vec::new()
        };
        if tables_exist && pending.is_empty() {
            return;
        }
        if start.elapsed() > deadline {
            for (name, got) in &pending {
                assert_rows_eq(name, got, &answer(&answers, name).rows);
            }
            panic!("the warehouse tables did not appear in {schema} within {deadline:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// Polls every report and the lists once at the world's clock.
async fn poll(p: &gladly_kafka::pipeline::Pipeline) {
    for (report, res) in gladly_kafka::pipeline::service::once(p, None).await {
        res.unwrap_or_else(|e| panic!("{report}: {e}"));
    }
    gladly_kafka::pipeline::service::once_dimensions(p, true)
        .await
        .expect("lists refresh");
}

/// Sets the clock to the first instant from `from` on, in 10-minute steps, at which no
/// contact the reports show is open: found from the simulator's truth alone.
fn set_first_quiet_instant(w: &World, from: DateTime<Utc>) {
    let mut at = from;
    loop {
        w.clock.set(at);
        let ended =
            |rows: Vec<TruthRow>, column: &str| rows.iter().all(|r| !cell(r, column).is_empty());
        if ended(contacts_truth(w), "Ended At")
            && ended(work_sessions_truth(w), "contact_session_ended_at")
        {
            return;
        }
        at += Duration::minutes(10);
        assert!(
            at < from + Duration::days(1),
            "no quiet instant within a day of {from}"
        );
    }
}

/// The contacts Flink shows open.
fn open_contacts(f: &Flink) -> BTreeSet<String> {
    f.rows("contacts")
        .iter()
        .filter(|r| r["ended_at"].is_null())
        .map(|r| text(&r["contact_id"]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flink_sql_reads_every_topic_as_an_upsert_table_and_answers_the_questions() {
    let mut w = world_where(3.0, |c| c.without_limits()).await;
    w.config.dimensions.enabled = true;
    w.config.conversations.enabled = true;
    w.config.gladly.requests_per_second = 50;
    w.config.pipeline.row_cap = 50;
    hostile_day(&w.sim, 50);
    let dir = tempfile::tempdir().unwrap();
    let ddl = flink_ddl(&w, dir.path());
    let p = w.pipeline().await;

    // a simulated day in six-hour polls, into the simulator's day 3 (an inbox added)
    for _ in 0..5 {
        w.clock.advance(Duration::hours(6));
        poll(&p).await;
    }
    let splits: f64 = ["work_sessions", "contacts", "agent_summary"]
        .iter()
        .map(|r| {
            p.metrics()
                .counter_value("gladly_kafka_window_splits_total", &[("report", r)])
        })
        .sum();
    assert!(splits > 0.0, "a capped window was split");
    assert!(w.sim.stats().rate_limited >= 3, "429s were served");
    let ddl_first = ddl.clone();
    let first = tokio::task::spawn_blocking(move || run_flink(&ddl_first))
        .await
        .unwrap();
    let (open, open_work_sessions) = assert_flink_equals_truth(&w, &first);
    assert!(open > 0, "some contacts are open at the first run");
    assert!(
        open_work_sessions > 0,
        "some work sessions are provisional at the first run"
    );

    // day 4: the added inbox removed; then polls until a moment nothing is open
    w.clock.set(t0() + Duration::days(2) + Duration::hours(1));
    poll(&p).await;
    set_first_quiet_instant(&w, w.clock.now() + Duration::hours(1));
    poll(&p).await;
    let removed = w
        .sim
        .list_at("inboxes", t0() + Duration::days(1))
        .unwrap()
        .len()
        - w.sim.list("inboxes").unwrap().len();
    assert_eq!(removed, 1, "the simulator removed an inbox on day 4");

    // the warehouse: the shipped sinks upsert the same topics into PostgreSQL while Flink runs
    let wh = support::warehouse::warehouse();
    let target = Target {
        prefix: w.config.topics.prefix.clone(),
        schema: unique_schema("fl"),
        connect_url: wh.connect_url.clone(),
    };
    wh.execute(&format!("CREATE SCHEMA {}", target.schema));
    for sink in WAREHOUSE_SINKS {
        target.put_sink(sink).await;
    }

    let ddl_second = ddl.clone();
    let second = tokio::task::spawn_blocking(move || run_flink(&ddl_second))
        .await
        .unwrap();
    assert_eq!(
        assert_flink_equals_truth(&w, &second),
        (0, 0),
        "nothing open"
    );
    let was_open = open_contacts(&first);
    assert_eq!(was_open.len() as i64, open);
    let rows = second.by("contacts", &["contact_id"], &["ended_at"]);
    for id in &was_open {
        assert!(
            !rows[id]["ended_at"].is_null(),
            "{id}: its final row superseded the provisional one"
        );
    }
    let again = tokio::task::spawn_blocking(move || run_flink(&ddl))
        .await
        .unwrap();
    assert_eq!(again, second, "a second run from the earliest offsets");

    // the same questions in PostgreSQL (docs/analyst-queries.md) give the same answers
    let schema = target.schema.clone();
    tokio::task::block_in_place(|| assert_warehouse_answers(&w, &schema, WAREHOUSE_CATCH_UP));
    for sink in WAREHOUSE_SINKS {
        target.assert_running(sink).await;
        target.delete_sink(sink).await;
    }
}

/// The shipped sinks the analyst queries read.
const WAREHOUSE_SINKS: [&str; 3] = ["contacts", "inboxes", "work_sessions"];
/// How long the sinks may take to catch up with the topics.
const WAREHOUSE_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(240);
