//! The pipeline end to end through SASL_SSL and the HTTPS registry with basic auth.

use std::collections::BTreeMap;
use std::time::Duration;

use gladly_kafka::kafka::registry::{RegistryClient, RegistrySettings};
use gladly_kafka::kafka::TopicSettings;
use gladly_kafka::report::Report;

use crate::fixture::{self, Simulator, Stack};
use crate::truth;

/// `<report>: W windows, R rows, X records (T tombstones), D dead letters` → report → X.
fn records_per_report(stdout: &str) -> BTreeMap<String, u64> {
    stdout
        .lines()
        .filter_map(|l| {
            let (report, rest) = l.split_once(": ")?;
            let records = rest.split(", ").find_map(|p| {
                p.split_once(" records")
                    .and_then(|(n, _)| n.parse::<u64>().ok())
            })?;
            Some((report.to_string(), records))
        })
        .collect()
}

/// `once` over SCRAM-SHA-512 publishes every report (an hour of work sessions, a day of
/// contacts and agent summary): each topic holds, read_committed, exactly the records the
/// run counted, and, decoded and upserted by key, exactly the simulator's answer for the range
/// the run covered (every key, every field, window metadata); each value carries a schema id
/// the HTTPS registry knows, and every report's checkpoint is in place.
#[tokio::test(flavor = "multi_thread")]
async fn once_over_scram_sha_512_and_an_https_registry_publishes_every_report() {
    let stack = Stack::from_env();
    let sim = Simulator::start();
    let now = fixture::now();
    let table = fixture::config(&stack, "SCRAM-SHA-512", &sim.url, now);
    let prefix = fixture::prefix(&table);
    let run = tokio::task::block_in_place(|| {
        fixture::gladly_kafka(&table, now, &["once"], Duration::from_secs(120))
    });
    assert!(run.status.success(), "{run:#?}");
    let counted = records_per_report(&run.stdout);
    assert_eq!(counted.len(), 3, "a line per report: {run:#?}");

    let registry = RegistryClient::new(&RegistrySettings {
        url: stack.registry_url.clone(),
        username: Some(stack.registry_login.0.clone()),
        password: Some(stack.registry_login.1.clone()),
        ca_file: Some(stack.ca_file.clone().into()),
        ..RegistrySettings::default()
    })
    .unwrap();
    let mut compared = Vec::new();
    for (report, records) in &counted {
        assert!(*records > 0, "{report} published nothing: {run:#?}");
        let name = report.as_str();
        let report: Report = report.parse().unwrap();
        let topic = TopicSettings {
            prefix: prefix.clone(),
            ..TopicSettings::default()
        }
        .report_topic(report);
        let landed = tokio::task::block_in_place(|| fixture::read_all(&stack, &topic));
        assert_eq!(landed.len() as u64, *records, "{topic}");
        let range = truth::once_range(&table, name, now);
        let truth = truth::fetch(&sim.url, &table, name, &range).await;
        let keys = truth::assert_topic_is_truth(&topic, &truth, &landed);
        compared.push(format!("{name} {keys}"));
        let value = landed
            .iter()
            .find_map(|r| r.value.clone())
            .expect("a record with a value");
        assert_eq!(value[0], 0, "Confluent wire format");
        let id = u32::from_be_bytes(value[1..5].try_into().unwrap());
        let schema = registry.schema_by_id(id).await.unwrap();
        assert!(schema.contains("com.gladly_kafka"), "{schema}");
    }
    let checkpoints = tokio::task::block_in_place(|| {
        fixture::read_all(&stack, &format!("{prefix}._checkpoints"))
    });
    let keys: Vec<String> = checkpoints
        .iter()
        .filter_map(|r| {
            r.key
                .as_ref()
                .map(|k| String::from_utf8_lossy(k).into_owned())
        })
        .collect();
    for report in counted.keys() {
        assert!(keys.contains(&format!("run/{report}")), "{keys:?}");
    }
    eprintln!(
        "once over SASL_SSL: topics equal the simulator's truth (keys compared: {})",
        compared.join(", ")
    );
}

/// `backfill` of one simulated hour over SASL PLAIN: the records it counted land, the topic
/// equals the simulator's answer for that hour, and the backfill's checkpoint says it is
/// complete.
#[tokio::test(flavor = "multi_thread")]
async fn backfill_over_plain_publishes_the_hour() {
    let stack = Stack::from_env();
    let sim = Simulator::start();
    let now = fixture::now();
    let table = fixture::config(&stack, "PLAIN", &sim.url, now);
    let prefix = fixture::prefix(&table);
    let hour = (now - chrono::Duration::hours(1), now);
    let (from, to) = (hour.0.to_rfc3339(), hour.1.to_rfc3339());
    let args = [
        "backfill",
        "--report",
        "work_sessions",
        "--from",
        &from,
        "--to",
        &to,
    ];
    let run = tokio::task::block_in_place(|| {
        fixture::gladly_kafka(&table, now, &args, Duration::from_secs(120))
    });
    assert!(run.status.success(), "{run:#?}");
    assert!(
        run.stdout.contains("backfill work_sessions done"),
        "{run:#?}"
    );

    // "backfill work_sessions done: W windows, R rows, X records, D dead letters"
    let records = records_per_report(&run.stdout)["backfill work_sessions done"];
    assert!(records > 0, "{run:#?}");
    let topic = TopicSettings {
        prefix: prefix.clone(),
        ..TopicSettings::default()
    }
    .report_topic(Report::WORK_SESSIONS);
    let landed = tokio::task::block_in_place(|| fixture::read_all(&stack, &topic));
    assert_eq!(landed.len() as u64, records, "{run:#?}");
    let range = truth::Range::Instants(hour.0, hour.1);
    let truth = truth::fetch(&sim.url, &table, "work_sessions", &range).await;
    let keys = truth::assert_topic_is_truth(&topic, &truth, &landed);
    eprintln!(
        "backfill over SASL PLAIN: the topic equals the simulator's truth \
         (keys compared: work_sessions {keys})"
    );
    let checkpoints = tokio::task::block_in_place(|| {
        fixture::read_all(&stack, &format!("{prefix}._checkpoints"))
    });
    let checkpoint = checkpoints
        .into_iter()
        .rfind(|r| {
            r.key
                .as_deref()
                .is_some_and(|k| k.starts_with(b"backfill/work_sessions/"))
        })
        .and_then(|r| r.value)
        .expect("the backfill's checkpoint");
    let checkpoint: serde_json::Value = serde_json::from_slice(&checkpoint).unwrap();
    assert_eq!(checkpoint["complete"], true, "{checkpoint}");
}
