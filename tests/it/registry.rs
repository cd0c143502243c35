//! The stack's schema registry (Apicurio's Confluent API) and our client against it.
//!
//! - The raw Confluent REST API the service relies on: register under `<topic>-value`, a new id
//!   for a BACKWARD-compatible change, 409 for an incompatible one, and the schema back by id.
//! - The client: records encoded by `records` decode with the schema fetched *by id* from the
//!   registry through apache-avro's generic reader (a path independent of our encoder);
//!   re-registering returns the same ids; an incompatible change is refused with the "not
//!   backward compatible" message.

use crate::support;

use std::collections::BTreeMap;
use std::sync::Arc;

use apache_avro::types::Value;
use apache_avro::{from_avro_datum, Schema};
use chrono::{TimeZone, Utc};
use gladly_kafka::kafka::registry::{RegistryClient, RegistryError, RegistrySettings};
use gladly_kafka::records::{
    encode_dead_letter, schemas, ConvertSettings, Converter, Output, WindowMeta,
};
use gladly_kafka::report::{Header, Report, Row};
use serde_json::json;

fn client() -> RegistryClient {
    RegistryClient::new(&RegistrySettings {
        url: support::schema_registry_url(),
        ..RegistrySettings::default()
    })
    .expect("client")
}

fn meta() -> WindowMeta {
    WindowMeta {
        window_start: Utc.with_ymd_and_hms(2024, 3, 14, 10, 0, 0).unwrap(),
        window_end: Utc.with_ymd_and_hms(2024, 3, 14, 11, 0, 0).unwrap(),
        fetched_at: Utc.with_ymd_and_hms(2024, 3, 14, 12, 0, 0).unwrap(),
    }
}

/// Decodes Confluent wire-format bytes with the schema the registry returns for their id.
async fn decode_by_id(registry: &RegistryClient, bytes: &[u8]) -> BTreeMap<String, Value> {
    assert_eq!(bytes[0], 0, "magic byte");
    let id = u32::from_be_bytes(bytes[1..5].try_into().unwrap());
    let text = registry.schema_by_id(id).await.expect("schema by id");
    let schema = Schema::parse_str(&text).expect("registry schema parses");
    let mut body = &bytes[5..];
    let value = from_avro_datum(&schema, &mut body, None).expect("decodes");
    assert!(body.is_empty(), "trailing bytes");
    let Value::Record(fields) = value else {
        panic!("not a record")
    };
    fields
        .into_iter()
        .map(|(k, v)| match v {
            Value::Union(_, inner) => (k, *inner),
            v => (k, v),
        })
        .collect()
}

fn rows(report: Report) -> Vec<Row> {
    let (header, cells): (Vec<&str>, Vec<Vec<&str>>) = match report {
        Report::WORK_SESSIONS => (
            vec![
                "\u{feff}id",
                "contact_session_id",
                "contact_session_created_at",
                "agent_id",
                "contact_session_ended_at",
                "within_sla",
                "work_session_handle_time",
                "brand_new_column",
            ],
            vec![
                vec![
                    "ws1",
                    "C1",
                    "2024-03-14T10:02:11Z",
                    "A1",
                    "2024-03-14 10:30:00",
                    "TRUE",
                    "120.5",
                    "x",
                ],
                vec![
                    "",
                    "C2",
                    "2024-03-14T10:40:00.250+00:00",
                    "",
                    "",
                    "",
                    "",
                    "",
                ],
            ],
        ),
        Report::CONTACTS => (
            vec!["Queued At", "Contact ID", "Channel", "Hold Time"],
            vec![vec!["2024-03-14 10:02:11", "K1", "EMAIL", "12"]],
        ),
        Report::AGENT_SUMMARY => (
            vec![
                "Bucket Beginning",
                "Agent ID",
                "Logged In",
                "Logged In Time in seconds",
            ],
            vec![vec!["2024-03-14", "A1", "2", "3600.5"]],
        ),
        other => panic!("{other}: built-in reports only"),
    };
    let header = Arc::new(Header::new(header));
    cells
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            Row::new(
                Arc::clone(&header),
                csv::StringRecord::from(c),
                i as u64 + 2,
            )
        })
        .collect()
}

fn ts(s: &str) -> Value {
    Value::TimestampMillis(
        s.parse::<chrono::DateTime<Utc>>()
            .unwrap()
            .timestamp_millis(),
    )
}

#[tokio::test]
async fn records_decode_with_the_schemas_fetched_by_id() {
    let registry = client();
    for report in Report::BUILT_IN {
        let topic = support::unique_name(&format!("gladly.{report}"));
        let ids = registry
            .register_report(&topic, report)
            .await
            .expect("register");
        assert_ne!(ids.key, ids.value);

        // Re-registering (a fresh client, so no cache) returns the same ids.
        let again = client().register_report(&topic, report).await.unwrap();
        assert_eq!(again, ids, "{report}: re-registration returns the same ids");

        let conv = Converter::new(
            report,
            ConvertSettings {
                timezone: chrono_tz::Europe::Berlin,
                aggregation_level: None,
            },
            ids,
        );
        let mut w = conv.window(meta());
        let mut out = Vec::new();
        for row in rows(report) {
            w.push(&row, &mut out);
        }
        w.finish(&mut out);
        let mut decoded = Vec::new();
        for o in &out {
            let Output::Record(r) = o else {
                panic!("{report}: dead letter {o:?}")
            };
            let key = decode_by_id(&registry, &r.key).await;
            let value = match &r.value {
                Some(v) => Some(decode_by_id(&registry, v).await),
                None => None,
            };
            decoded.push((key, value));
        }
        match report {
            Report::WORK_SESSIONS => {
                // C1 final, C2 provisional, the tombstone of C1's agent-less key.
                assert_eq!(decoded.len(), 3, "{decoded:?}");
                let (k, v) = &decoded[0];
                let v = v.as_ref().unwrap();
                assert_eq!(k["contact_session_id"], Value::String("C1".into()));
                assert_eq!(k["agent_id"], Value::String("A1".into()));
                assert_eq!(
                    v["id"],
                    Value::String("ws1".into()),
                    "the id is a value field"
                );
                assert_eq!(v["contact_session_ended_at"], ts("2024-03-14T10:30:00Z"));
                assert_eq!(v["within_sla"], Value::Boolean(true));
                assert_eq!(v["work_session_handle_time_sec"], Value::Double(120.5));
                assert_eq!(v["anchor_at"], ts("2024-03-14T10:30:00Z"));
                let Value::Map(extra) = &v["extra"] else {
                    panic!("map")
                };
                assert_eq!(extra["brand_new_column"], Value::String("x".into()));
                let (k, v) = &decoded[1];
                assert_eq!(k["contact_session_id"], Value::String("C2".into()));
                assert_eq!(
                    v.as_ref().unwrap()["contact_session_created_at"],
                    ts("2024-03-14T10:40:00.250Z")
                );
                assert!(decoded[2].1.is_none(), "a tombstone");
                assert_eq!(
                    decoded[2].0["contact_session_id"],
                    Value::String("C1".into())
                );
                assert_eq!(
                    decoded[2].0["agent_id"],
                    Value::String(String::new()),
                    "key v3: the agent-less key's agent_id is \"\", not null"
                );
            }
            Report::CONTACTS => {
                let (k, v) = &decoded[0];
                let v = v.as_ref().unwrap();
                assert_eq!(k["contact_id"], Value::String("K1".into()));
                assert_eq!(v["queued_at"], ts("2024-03-14T09:02:11Z"), "CET is UTC+1");
                assert_eq!(v["channel"], Value::String("EMAIL".into()));
                assert_eq!(v["window_end"], ts("2024-03-14T11:00:00Z"));
            }
            Report::AGENT_SUMMARY => {
                let (k, v) = &decoded[0];
                let v = v.as_ref().unwrap();
                assert_eq!(k["bucket_start"], ts("2024-03-13T23:00:00Z"));
                assert_eq!(k["aggregation_level"], Value::String("daily".into()));
                assert_eq!(v["logged_in"], Value::Long(2));
                assert_eq!(v["logged_in_time_sec"], Value::Double(3600.5));
            }
            other => panic!("{other}: built-in reports only"),
        }
    }
}

#[tokio::test]
async fn dead_letters_decode_with_the_schema_fetched_by_id() {
    let registry = client();
    let subject = format!("{}-value", support::unique_name("gladly.dead_letter"));
    let id = registry
        .register(&subject, schemas::dead_letter_schema())
        .await
        .unwrap();
    let conv = Converter::new(
        Report::WORK_SESSIONS,
        ConvertSettings::default(),
        Default::default(),
    );
    let mut w = conv.window(meta());
    let mut out = Vec::new();
    let row = Row::from_pairs([
        ("contact_session_id", "C1"),
        ("contact_session_created_at", "soon"),
    ]);
    w.push(&row, &mut out);
    let Output::DeadLetter(dl) = &out[0] else {
        panic!("{out:?}")
    };
    let v = decode_by_id(
        &registry,
        &encode_dead_letter(Report::WORK_SESSIONS, dl, &meta(), id),
    )
    .await;
    assert_eq!(v["report"], Value::String("work_sessions".into()));
    assert_eq!(v["reason"], Value::String(dl.reason.clone()));
    assert!(dl.reason.contains("contact_session_created_at") && dl.reason.contains("\"soon\""));
    let Value::Map(raw) = &v["raw"] else {
        panic!("map")
    };
    assert_eq!(
        raw["contact_session_created_at"],
        Value::String("soon".into())
    );
}

#[tokio::test]
async fn an_incompatible_schema_is_refused_with_the_subject_and_reason() {
    let registry = client();
    let subject = format!("{}-value", support::unique_name("gladly.work_sessions"));
    registry
        .register(&subject, schemas::value_schema(Report::WORK_SESSIONS))
        .await
        .unwrap();
    let mut json: serde_json::Value =
        serde_json::from_str(schemas::value_schema(Report::WORK_SESSIONS)).unwrap();
    json["fields"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "hold_time_sec", "type": "double", "doc": "no default"}));
    let err = registry
        .register(&subject, &json.to_string())
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Incompatible { .. }), "{err:?}");
    let prefix = format!("schema for {subject} is not backward compatible: ");
    let text = err.to_string();
    assert!(text.starts_with(&prefix), "{text}");
    assert!(
        text.len() > prefix.len(),
        "the registry's reason is included: {text}"
    );
}

#[tokio::test]
async fn every_current_schema_registers() {
    // the registry's own parser has quirks apache-avro lacks: Apicurio 3 refuses a string
    // field whose default is exactly "{}" ("Failed to discover artifact type from content"),
    // which is why extra_json's default is "{ }"
    let registry = client();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "avsc") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let subject = support::unique_name("every-schema");
        registry
            .register(&subject, &text)
            .await
            .unwrap_or_else(|e| panic!("{} does not register: {e}", path.display()));
        n += 1;
    }
    assert_eq!(n, 19, "every schema file was tried");
}

// The Confluent REST API itself, without our client.

/// The Confluent API's content type.
const CT: &str = "application/vnd.schemaregistry.v1+json";

async fn register(
    http: &reqwest::Client,
    base: &str,
    subject: &str,
    schema: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let res = http
        .post(format!("{base}/subjects/{subject}/versions"))
        .header("Content-Type", CT)
        .json(&json!({ "schema": schema.to_string() }))
        .send()
        .await
        .expect("registry reachable");
    let status = res.status().as_u16();
    (status, res.json().await.expect("JSON body"))
}

/// Re-registration returning the same id is checked through the client, in
/// [`records_decode_with_the_schemas_fetched_by_id`].
#[tokio::test]
async fn the_rest_api_takes_compatible_changes_refuses_incompatible_ones_and_serves_ids() {
    let base = support::schema_registry_url();
    let http = reqwest::Client::new();
    let subject = format!("{}-value", support::unique_name("registry"));

    let v1 = json!({
        "type": "record", "name": "Probe", "namespace": "test.gladly_kafka",
        "fields": [{ "name": "id", "type": "string" }]
    });
    let (status, body) = register(&http, &base, &subject, &v1).await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_i64().expect("an id");

    // A new field with a default is a BACKWARD-compatible change.
    let v2 = json!({
        "type": "record", "name": "Probe", "namespace": "test.gladly_kafka",
        "fields": [{ "name": "id", "type": "string" },
                   { "name": "note", "type": ["null", "string"], "default": null }]
    });
    let (status, body) = register(&http, &base, &subject, &v2).await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["id"].as_i64(), Some(id));

    // A new field without a default is not: readers of v3 cannot read v2 data.
    let v3 = json!({
        "type": "record", "name": "Probe", "namespace": "test.gladly_kafka",
        "fields": [{ "name": "id", "type": "string" },
                   { "name": "note", "type": ["null", "string"], "default": null },
                   { "name": "count", "type": "int" }]
    });
    let (status, body) = register(&http, &base, &subject, &v3).await;
    assert_eq!(status, 409, "incompatible change is refused: {body}");
    assert_eq!(body["error_code"].as_i64(), Some(409), "{body}");

    // The schema comes back by id.
    let res = http
        .get(format!("{base}/schemas/ids/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let by_id: serde_json::Value = res.json().await.unwrap();
    let fetched: serde_json::Value =
        serde_json::from_str(by_id["schema"].as_str().unwrap()).unwrap();
    assert_eq!(fetched["name"], "Probe");
}

#[tokio::test]
async fn a_topic_written_with_another_key_schema_is_refused_by_name() {
    // an older work-session key registered under the subject, as an older version left it:
    // key v1 (recorded in history/v1) and key v2 (nullable agent_id, recorded in history/v3)
    let registry = client();
    for (key, recorded) in [("v1", "v1"), ("v2", "v3")] {
        let topic = support::unique_name("gladly.work_sessions");
        let old = std::fs::read_to_string(format!(
            "{}/schemas/history/{recorded}/work_sessions-key.avsc",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        registry
            .register(&format!("{topic}-key"), &old)
            .await
            .unwrap_or_else(|e| panic!("key {key} registers: {e}"));
        let err = registry
            .register_report(&topic, Report::WORK_SESSIONS)
            .await
            .expect_err("key v3 must not join a topic of older keys");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{topic}-key"))
                && msg.contains("new topic")
                && msg.contains("gladly.work_sessions.v3"),
            "key {key}: {msg}"
        );
    }
    // the same schema again is fine
    let fresh = support::unique_name("gladly.work_sessions");
    let ids = registry
        .register_report(&fresh, Report::WORK_SESSIONS)
        .await
        .unwrap();
    assert_eq!(
        client()
            .register_report(&fresh, Report::WORK_SESSIONS)
            .await
            .unwrap(),
        ids
    );
}
