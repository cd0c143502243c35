//! A Gladly report added by configuration alone: `[reports.conversation_export]` with its
//! metric set, key and anchor columns (no preset, no code), polled through faults and a
//! row-cap split, converges on the simulator's truth; and when Gladly adds a column mid-run, a
//! new value schema version is registered, every record still decodes, and the column's
//! values land typed from then on.

use crate::support;
use crate::support::pipeline::hostile_day;

use std::collections::BTreeMap;

use apache_avro::types::Value;
use chrono::{DateTime, Duration, Utc};
use gladly_kafka::clock::Clock;
use gladly_kafka::config::ReportsConfig;
use gladly_kafka::kafka::registry::RegistryClient;
use gladly_kafka::pipeline::service;
use gladly_kafka::report::Report;
use gladly_sim::SimConfig;

use support::pipeline::{t0, world_where, World};

pub(crate) const METRIC_SET: &str = "ConversationExportReport";

/// The first day polled: the first poll's horizon (3 days before [`t0`]'s), set as `start`
/// too, so the truth from it is everything polled.
pub(crate) fn first_day() -> chrono::NaiveDate {
    (t0() - Duration::days(3)).date_naive()
}

/// `[reports.conversation_export]` as a user would write it: Conversation Export by its
/// metric set, key and anchor (no preset), from [`first_day`], four days a request.
pub(crate) fn conversation_export_section() -> ReportsConfig {
    toml::from_str(&format!(
        r#"
        [conversation_export]
        metric_set = "{METRIC_SET}"
        key = ["Conversation ID"]
        anchor = "Created At"
        start = "{}"
        horizon_days = 3
        max_window_days = 4
        reread = []
        "#,
        first_day()
    ))
    .expect("the section parses")
}

/// A world polling only `[reports.conversation_export]`, as a user would write it.
async fn conversation_export(sim: impl FnOnce(SimConfig) -> SimConfig) -> (World, Report) {
    let mut w = world_where(4.0, |c| sim(c.without_limits())).await;
    let section = conversation_export_section();
    let c = &mut w.config;
    c.reports.configured = section.configured;
    c.reports.work_sessions.enabled = false;
    c.reports.contacts.enabled = false;
    c.reports.agent_summary.enabled = false;
    c.validate().expect("valid");
    let report = Report::named("conversation_export").unwrap();
    assert_eq!(c.enabled_reports(), [report]);
    (w, report)
}

async fn poll(w: &World, p: &gladly_kafka::pipeline::Pipeline, polls: u32, every: Duration) {
    for _ in 0..polls {
        w.clock.advance(every);
        for (report, res) in service::once(p, None).await {
            res.unwrap_or_else(|e| panic!("{report}: {e}"));
        }
    }
}

/// A record decoded with the schema it was written with.
struct Decoded {
    schema_id: u32,
    fields: BTreeMap<String, Value>,
}

async fn decode(registry: &RegistryClient, bytes: &[u8]) -> Decoded {
    assert_eq!(bytes[0], 0, "Confluent magic byte");
    let schema_id = u32::from_be_bytes(bytes[1..5].try_into().unwrap());
    let text = registry
        .schema_by_id(schema_id)
        .await
        .expect("schema by id");
    let schema = apache_avro::Schema::parse_str(&text).expect("parses");
    let mut body = &bytes[5..];
    let Value::Record(fields) = apache_avro::from_avro_datum(&schema, &mut body, None).unwrap()
    else {
        panic!("a record")
    };
    assert!(body.is_empty(), "trailing bytes");
    Decoded {
        schema_id,
        fields: fields.into_iter().collect(),
    }
}

/// The value schema id of every record the topic holds.
async fn value_schema_ids(w: &World, report: Report) -> Vec<u32> {
    let topic = w.config.report_topic(report);
    let records = tokio::task::spawn_blocking(move || support::kafka::read_all(&topic))
        .await
        .unwrap();
    records
        .iter()
        .filter_map(|r| r.value.as_ref())
        .map(|v| u32::from_be_bytes(v[1..5].try_into().unwrap()))
        .collect()
}

/// The topic upserted by key: conversation id → its last value.
async fn upserted(w: &World, report: Report) -> BTreeMap<String, Decoded> {
    let topic = w.config.report_topic(report);
    let records = tokio::task::spawn_blocking(move || support::kafka::read_all(&topic))
        .await
        .unwrap();
    let registry = RegistryClient::new(&w.config.registry).unwrap();
    let mut state = BTreeMap::new();
    for r in records {
        let key = decode(&registry, &r.key.expect("keyed")).await;
        let Some(Value::String(id)) = key.fields.get("conversation_id").cloned() else {
            panic!("key {:?}", key.fields)
        };
        match r.value {
            Some(v) => state.insert(id, decode(&registry, &v).await),
            None => state.remove(&id),
        };
    }
    state
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Union(_, inner) => text(inner),
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Long(n) => Some(n.to_string()),
        Value::Double(d) => Some(d.to_string()),
        Value::TimestampMillis(ms) => Some(
            DateTime::<Utc>::from_timestamp_millis(*ms)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ),
        other => panic!("unexpected {other:?}"),
    }
}

/// Asserts the topic holds exactly the truth's conversations, each with every column's
/// cell (typed, compared as text). Returns the number of conversations.
async fn assert_converged(w: &World, report: Report) -> usize {
    let start = first_day();
    let truth = w
        .sim
        .metric_set_truth(METRIC_SET, start, w.clock.now().date_naive(), "UTC");
    let state = upserted(w, report).await;
    let id_col = truth
        .columns
        .iter()
        .position(|c| *c == "Conversation ID")
        .unwrap();
    assert!(!truth.rows.is_empty(), "the truth is not empty");
    let mut missing = vec![];
    let mut differing = vec![];
    for row in &truth.rows {
        let cells = row.cells();
        let Some(got) = state.get(&cells[id_col]) else {
            missing.push(cells[id_col].clone());
            continue;
        };
        for (column, cell) in truth.columns.iter().zip(cells) {
            let field = field_name(column);
            let value = got
                .fields
                .get(&field)
                .unwrap_or_else(|| panic!("{field} missing from {:?}", got.fields.keys()));
            let want = (!cell.trim().is_empty()).then(|| normalized(cell));
            let have = text(value).map(|t| normalized(&t));
            if want != have {
                differing.push(format!(
                    "{} {column}: truth {want:?}, topic {have:?}",
                    cells[id_col]
                ));
            }
        }
    }
    let extra = state.len() + missing.len() - truth.rows.len();
    assert!(
        missing.is_empty() && differing.is_empty() && extra == 0,
        "{} truth rows, {} keys; missing {missing:?}; extra {extra}; differing {:#?}",
        truth.rows.len(),
        state.len(),
        &differing[..differing.len().min(5)]
    );
    truth.rows.len()
}

/// Timestamps as millis-precision RFC 3339, numbers without a trailing `.0`.
fn normalized(s: &str) -> String {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return t
            .with_timezone(&Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    }
    s.strip_suffix(".0").unwrap_or(s).to_string()
}

/// The field a header becomes (lower-case, `_` between words).
fn field_name(header: &str) -> String {
    let mut out = String::new();
    for c in header.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_added_by_configuration_converges_with_faults_and_a_row_cap_split() {
    let (mut w, report) = conversation_export(|c| c).await;
    // four days in one request exceed the cap of 150 rows, one day (~60) does not
    w.config.pipeline.row_cap = 150;
    hostile_day(&w.sim, 150);
    let p = w.pipeline().await;
    poll(&w, &p, 8, Duration::hours(6)).await;
    let stats = w.sim.stats();
    assert!(stats.rate_limited >= 3, "429s were served: {stats:?}");
    assert_eq!(w.sim.faults().snapshot().cut_next, 0, "every cut happened");
    let splits = p.metrics().counter_value(
        "gladly_kafka_window_splits_total",
        &[("report", "conversation_export")],
    );
    assert!(splits > 0.0, "a capped window was split");
    let conversations = assert_converged(&w, report).await;
    assert!(conversations > 100, "{conversations} conversations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_gladly_adds_mid_run_gets_a_new_schema_version_and_lands_typed() {
    let added_at = t0() + Duration::hours(15);
    let (w, report) =
        conversation_export(|c| c.with_added_column(METRIC_SET, "Number of Transfers", added_at))
            .await;
    let p = w.pipeline().await;
    poll(&w, &p, 2, Duration::hours(6)).await;
    let before = upserted(&w, report).await;
    assert!(!before.is_empty());
    let first_id = before.values().next().unwrap().schema_id;
    assert!(before
        .values()
        .all(|d| !d.fields.contains_key("number_of_transfers")));

    poll(&w, &p, 4, Duration::hours(6)).await;
    let registry = RegistryClient::new(&w.config.registry).unwrap();
    let subject = format!("{}-value", w.config.report_topic(report));
    let (latest_id, latest) = registry
        .latest(&subject)
        .await
        .unwrap()
        .expect("registered");
    assert_ne!(latest_id, first_id, "a new version was registered");
    // every record of the topic, old or new, reads with the latest schema
    let reader = apache_avro::Schema::parse_str(&latest).unwrap();
    let topic = w.config.report_topic(report);
    let all = tokio::task::spawn_blocking(move || support::kafka::read_all(&topic))
        .await
        .unwrap();
    let mut old = 0;
    for r in &all {
        let v = r.value.as_ref().expect("no tombstones here");
        let id = u32::from_be_bytes(v[1..5].try_into().unwrap());
        old += usize::from(id == first_id);
        let writer =
            apache_avro::Schema::parse_str(&registry.schema_by_id(id).await.unwrap()).unwrap();
        apache_avro::from_avro_datum(&writer, &mut &v[5..], Some(&reader))
            .unwrap_or_else(|e| panic!("schema {id} read as the latest: {e}"));
    }
    assert!(old > 0, "records of the first version are still there");
    // from then on the column is a typed field with values
    let after = upserted(&w, report).await;
    let typed = after
        .values()
        .filter(|d| matches!(d.fields.get("number_of_transfers"), Some(Value::Union(1, v)) if matches!(**v, Value::Long(_))))
        .count();
    assert!(typed > 0, "the new column landed as a long");
    assert_converged(&w, report).await;
    // a restarted service writes the latest version: it neither drops the new field nor
    // registers another version
    drop(p);
    let restarted = w.pipeline().await;
    let before_restart = value_schema_ids(&w, report).await;
    poll(&w, &restarted, 1, Duration::hours(6)).await;
    let after_restart = value_schema_ids(&w, report).await;
    assert_eq!(
        registry.latest(&subject).await.unwrap().unwrap().0,
        latest_id,
        "no new version"
    );
    let latest_count = |ids: &[u32]| ids.iter().filter(|id| **id == latest_id).count();
    assert_eq!(
        after_restart.len() - latest_count(&after_restart),
        before_restart.len() - latest_count(&before_restart),
        "records after the restart carry the latest version"
    );
    assert!(
        latest_count(&after_restart) > latest_count(&before_restart),
        "the restarted run published"
    );
    // and nothing went to the dead letters
    let dl = w.config.topics.dead_letter_topic();
    let dead = tokio::task::spawn_blocking(move || support::kafka::read_all(&dl))
        .await
        .unwrap();
    assert!(dead.is_empty(), "{} dead letters", dead.len());
}

/// The cells of `key` columns of every truth row, trimmed (the key of its record).
fn truth_keys(truth: &gladly_sim::Truth, key: &[&str]) -> std::collections::BTreeSet<Vec<String>> {
    let pos: Vec<usize> = key
        .iter()
        .map(|k| truth.columns.iter().position(|c| c == k).unwrap())
        .collect();
    truth
        .rows
        .iter()
        .map(|r| {
            pos.iter()
                .map(|p| r.cells()[*p].trim().to_string())
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_preset_publishes_its_report_keyed_by_its_key_columns() {
    let mut w = world_where(4.0, SimConfig::without_limits).await;
    let presets = gladly_kafka::report::PRESETS;
    let mut sections = String::new();
    for p in presets {
        sections.push_str(&format!(
            "[{0}]\npreset = \"{0}\"\nstart = \"{1}\"\nhorizon_days = 3\nreread = []\n",
            p.name,
            first_day()
        ));
    }
    let section: ReportsConfig = toml::from_str(&sections).expect("parses");
    w.config.reports.configured = section.configured;
    w.config.reports.work_sessions.enabled = false;
    w.config.reports.contacts.enabled = false;
    w.config.reports.agent_summary.enabled = false;
    w.config.validate().expect("valid");
    let p = w.pipeline().await;
    poll(&w, &p, 4, Duration::hours(6)).await;
    let registry = RegistryClient::new(&w.config.registry).unwrap();
    for preset in presets {
        let report = Report::named(preset.name).unwrap();
        let truth = w.sim.metric_set_truth(
            preset.metric_set,
            first_day(),
            w.clock.now().date_naive(),
            "UTC",
        );
        let want = truth_keys(&truth, preset.key);
        let topic = w.config.report_topic(report);
        let records = tokio::task::spawn_blocking(move || support::kafka::read_all(&topic))
            .await
            .unwrap();
        let mut got = std::collections::BTreeSet::new();
        for r in records {
            let key = decode(&registry, &r.key.unwrap()).await;
            // key fields in key order (the record's field order)
            let schema = registry.schema_by_id(key.schema_id).await.unwrap();
            let fields: Vec<String> = serde_json::from_str::<serde_json::Value>(&schema).unwrap()
                ["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["name"].as_str().unwrap().to_string())
                .collect();
            got.insert(
                fields
                    .iter()
                    .map(|f| text(&key.fields[f]).unwrap_or_default())
                    .collect::<Vec<String>>(),
            );
        }
        assert!(!want.is_empty(), "{report}: the truth has rows");
        let missing: Vec<_> = want.difference(&got).take(3).collect();
        assert!(
            missing.is_empty(),
            "{report}: keys missing from the topic: {missing:?}"
        );
        // only the work-session events' provisional rows (no agent yet) may have moved on
        let extra: Vec<_> = got.difference(&want).collect();
        assert!(
            extra
                .iter()
                .all(|k| preset.name == "work_session_events_v4" && k[1].is_empty()),
            "{report}: keys the truth does not have: {:?}",
            &extra[..extra.len().min(3)]
        );
    }
    let dl = w.config.topics.dead_letter_topic();
    let dead = tokio::task::spawn_blocking(move || support::kafka::read_all(&dl))
        .await
        .unwrap();
    assert!(dead.is_empty(), "{} dead letters", dead.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_proves_a_configured_report_answers_with_its_key_and_anchor_columns() {
    let (w, report) = conversation_export(|c| c).await;
    let clock: gladly_kafka::clock::SharedClock = std::sync::Arc::new(w.clock.clone());
    assert!(gladly_kafka::pipeline::check::check(&w.config, clock.clone()).await);
    let section = |c: &mut gladly_kafka::config::Config| {
        c.reports.configured.get_mut(report.name()).unwrap().clone()
    };
    // a metric set Gladly does not have
    let mut typo = w.config.clone();
    let mut s = section(&mut typo);
    s.metric_set = Some("ConversationExportRepot".into());
    typo.reports.configured.insert(report.name().into(), s);
    assert!(!gladly_kafka::pipeline::check::check(&typo, clock.clone()).await);
    // a key column its answers do not have
    let mut wrong_key = w.config.clone();
    let mut s = section(&mut wrong_key);
    s.key = Some(vec!["Ticket ID".into()]);
    wrong_key.reports.configured.insert(report.name().into(), s);
    wrong_key.gladly.max_attempts = 2;
    assert!(!gladly_kafka::pipeline::check::check(&wrong_key, clock).await);
}
