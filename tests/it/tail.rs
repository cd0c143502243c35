//! `gladly-kafka tail` reads back what the pipeline published: `--upserted` prints exactly the
//! state an independent read_committed read-back finds (last value per key, tombstoned keys
//! dropped), decoded; `--from-beginning` prints every record in offset order with its headers;
//! `--key` filters; and what a `--follow` reader prints includes records committed after it
//! started.

use crate::support;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use gladly_kafka::pipeline::service;
use gladly_kafka::records::schemas;
use gladly_kafka::report::Report;
use serde_json::Value;

use support::pipeline::{world, World};
use support::service::{command, config_table, write_config};

/// Runs `tail` with `args` to its end (at most a minute); its stdout as JSON lines.
fn tail(w: &World, args: &[&str]) -> Vec<Value> {
    let config = write_config(&config_table(w));
    let out = command(w, config.path())
        .arg("tail")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("tail runs");
    assert!(
        out.status.success(),
        "tail {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Avro (Confluent framed) decoded with the schema file, as JSON: apart from tail's path
/// (which fetches the writer schema from the registry by id).
fn decoded(schema: &str, bytes: &[u8]) -> Value {
    let schema = apache_avro::Schema::parse_str(schema).unwrap();
    let v = apache_avro::from_avro_datum(&schema, &mut &bytes[5..], None).unwrap();
    v.try_into().unwrap()
}

/// The upserted state of `report`'s topic, read back independently.
async fn upserted(w: &World, report: Report) -> BTreeMap<String, Value> {
    let topic = w.config.topics.report_topic(report);
    let records = tokio::task::spawn_blocking(move || support::kafka::read_all(&topic))
        .await
        .unwrap();
    let mut state: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    for r in records {
        state.insert(r.key.unwrap(), r.value);
    }
    state
        .into_iter()
        .filter_map(|(k, v)| {
            let key = decoded(schemas::key_schema(report), &k);
            let value = decoded(schemas::value_schema(report), &v?);
            Some((key.to_string(), value))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_upserted_equals_the_independent_read_back() {
    let w = world(20.0).await;
    let p = w.pipeline().await;
    // two cycles a few hours apart: contacts end, keys are tombstoned, values restated
    for _ in 0..2 {
        w.clock.advance(chrono::Duration::hours(3));
        for (report, res) in service::once(&p, None).await {
            res.unwrap_or_else(|e| panic!("{report}: {e}"));
        }
    }
    for report in Report::BUILT_IN {
        let expected = upserted(&w, report).await;
        let printed: BTreeMap<String, Value> = tail(&w, &["--report", report.name(), "--upserted"])
            .into_iter()
            .map(|line| (line["key"].to_string(), line["value"].clone()))
            .collect();
        assert!(!expected.is_empty(), "{report}: something was published");
        assert_eq!(printed.len(), expected.len(), "{report}: the same keys");
        assert_eq!(printed, expected, "{report}: the same values");
    }

    // every record, in order, with its headers; and a key filter
    let topic = w.config.topics.report_topic(Report::WORK_SESSIONS);
    let t = topic.clone();
    let raw = tokio::task::spawn_blocking(move || support::kafka::read_all(&t))
        .await
        .unwrap();
    let all = tail(&w, &["--report", "work_sessions", "--from-beginning"]);
    assert_eq!(all.len(), raw.len(), "one line per record");
    let tombstones = all.iter().filter(|l| l["value"].is_null()).count();
    assert_eq!(tombstones, raw.iter().filter(|r| r.value.is_none()).count());
    // key v3: no key field is null, and the only tombstones are of agent-less keys {C, ""}
    assert!(
        all.iter().all(|l| l["key"]["agent_id"].is_string()),
        "a null in a key"
    );
    assert!(all
        .iter()
        .filter(|l| l["value"].is_null())
        .all(|l| l["key"]["agent_id"] == ""));
    assert!(all
        .iter()
        .all(|l| l["headers"]["gladly.report"] == "work_sessions"));
    let contact = all[0]["key"]["contact_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let filter = format!(r#"{{"contact_session_id":"{contact}"}}"#);
    let one = tail(
        &w,
        &["--topic", &topic, "--from-beginning", "--key", &filter],
    );
    assert!(!one.is_empty());
    assert!(one
        .iter()
        .all(|l| l["key"]["contact_session_id"] == contact.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follow_prints_what_is_committed_after_it_started() {
    let w = world(20.0).await;
    let p = w.pipeline().await;
    // the topics exist before the follower starts reading at their end
    service::once(&p, Some(Report::CONTACTS)).await;
    let config = write_config(&config_table(&w));
    let mut follower = command(&w, config.path())
        .args(["tail", "--report", "contacts", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tail --follow runs");
    // once it says it reads the topic, its partitions are assigned at their ends
    let stderr = follower.stderr.take().unwrap();
    let started = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("reading the topic"))
    });
    let started = tokio::time::timeout(Duration::from_secs(60), started)
        .await
        .expect("the follower starts within a minute")
        .unwrap();
    assert!(started, "the follower says when it reads the topic");
    w.clock.advance(chrono::Duration::hours(2));
    let s = service::once(&p, Some(Report::CONTACTS)).await;
    let published = s[&Report::CONTACTS].as_ref().unwrap().records;
    assert!(published > 0, "the second cycle published something");
    let stdout = follower.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .take(published as usize)
            .map(|l| l.unwrap())
            .collect::<Vec<_>>()
    });
    let lines = tokio::time::timeout(Duration::from_secs(60), lines)
        .await
        .expect("the follower prints the new records")
        .unwrap();
    let _ = follower.kill();
    let _ = follower.wait();
    assert_eq!(lines.len() as u64, published);
}
