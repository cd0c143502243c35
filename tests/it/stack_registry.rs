//! The test stack's schema registry speaks the Confluent REST API the service uses: register
//! under `<topic>-value`, the same id on re-registration, 409 for a BACKWARD-incompatible change.

use crate::support;

use serde_json::{json, Value};

const CT: &str = "application/vnd.schemaregistry.v1+json";

async fn register(
    http: &reqwest::Client,
    base: &str,
    subject: &str,
    schema: &Value,
) -> (u16, Value) {
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

#[tokio::test]
async fn registers_idempotently_and_rejects_incompatible_changes() {
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

    let (status, again) = register(&http, &base, &subject, &v1).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again["id"].as_i64(),
        Some(id),
        "re-registration returns the same id"
    );

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
    let by_id: Value = res.json().await.unwrap();
    let fetched: Value = serde_json::from_str(by_id["schema"].as_str().unwrap()).unwrap();
    assert_eq!(fetched["name"], "Probe");
}
