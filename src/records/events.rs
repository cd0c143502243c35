//! Records of the events topic (`<prefix>.events`): one per line of Gladly's Events API,
//! keyed by the event's id, in the layout of `schemas/events-{key,value}.avsc`: the type and
//! its two halves, the time, the ids the content names (contact, conversation, customer,
//! agent, inbox), the initiator, the content whole as JSON text, then `fetched_at`, which the
//! change fingerprint leaves out (an event read again is the same event).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::record::{within_size, Record, SchemaIds};
use super::{avro, changes};

/// An event turned into its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// The record.
    pub record: Record,
    /// The event's `timestamp`.
    pub timestamp: DateTime<Utc>,
    /// Its `type`.
    pub kind: String,
}

/// Encodes the events topic's records with the registry ids of its schemas.
#[derive(Debug, Clone, Copy)]
pub struct EventEncoder {
    ids: SchemaIds,
}

impl EventEncoder {
    /// An encoder writing with `ids`.
    pub fn new(ids: SchemaIds) -> Self {
        EventEncoder { ids }
    }

    /// The key bytes of event `id`.
    pub fn key(&self, id: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(8 + id.len());
        avro::header(&mut key, self.ids.key);
        avro::string(&mut key, id);
        key
    }

    /// The record of one JSON line of the Events API, fetched at `fetched_at`; why not when
    /// the line is not an event (not a JSON object; no string `id`, `type` with a slash, or
    /// RFC 3339 `timestamp`; a record over Kafka's size). Unknown fields are kept in
    /// `content_json`, unknown types published like known ones.
    pub fn record(&self, line: &[u8], fetched_at: DateTime<Utc>) -> Result<EventRecord, String> {
        let event: Value =
            serde_json::from_slice(line).map_err(|e| format!("malformed event: not JSON ({e})"))?;
        let Value::Object(event) = event else {
            return Err("malformed event: not a JSON object".into());
        };
        let text = |name: &str| {
            event
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
        };
        let id = text("id").ok_or("malformed event: no string `id`")?;
        let kind = text("type").ok_or("malformed event: no string `type`")?;
        let (entity, action) = kind
            .split_once('/')
            .ok_or_else(|| format!("malformed event: type {kind:?} is not ENTITY/ACTION"))?;
        let stamp = text("timestamp").ok_or("malformed event: no string `timestamp`")?;
        let timestamp = instant(stamp)
            .ok_or_else(|| format!("malformed event: timestamp {stamp:?} is not RFC 3339"))?;
        let content = event.get("content").unwrap_or(&Value::Null);
        let initiator = event.get("initiator").and_then(Value::as_object);
        let in_content = |path: &[&str]| {
            let mut v = content;
            for p in path {
                v = v.get(p)?;
            }
            v.as_str().filter(|s| !s.is_empty())
        };
        let assignee = |field: &str| {
            in_content(&["assignee", field]).or_else(|| in_content(&["context", "assignee", field]))
        };
        let occurred_at = in_content(&["occurredAt"]).and_then(instant);

        let mut value = Vec::with_capacity(256 + line.len());
        avro::header(&mut value, self.ids.value);
        avro::string(&mut value, id);
        avro::string(&mut value, kind);
        avro::string(&mut value, entity);
        avro::string(&mut value, action);
        avro::long(&mut value, timestamp.timestamp_millis());
        match occurred_at {
            Some(t) => {
                avro::some(&mut value);
                avro::long(&mut value, t.timestamp_millis());
            }
            None => avro::null(&mut value),
        }
        avro::opt_string(&mut value, in_content(&["contactId"]));
        avro::opt_string(&mut value, in_content(&["conversationId"]));
        avro::opt_string(&mut value, in_content(&["customerId"]));
        avro::opt_string(
            &mut value,
            in_content(&["agentId"]).or_else(|| assignee("agentId")),
        );
        avro::opt_string(&mut value, assignee("inboxId"));
        let initiator_field = |name: &str| {
            initiator
                .and_then(|i| i.get(name))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        avro::opt_string(&mut value, initiator_field("id"));
        avro::opt_string(&mut value, initiator_field("type"));
        avro::string(&mut value, &content.to_string());
        let fingerprint = changes::fingerprint(&value);
        avro::long(&mut value, fetched_at.timestamp_millis());
        let at = timestamp.timestamp_millis();
        let record = within_size(Record {
            key: self.key(id),
            value: Some(value),
            timestamp_ms: at,
            since_ms: at,
            fingerprint,
        })?;
        Ok(EventRecord {
            record,
            timestamp,
            kind: kind.to_string(),
        })
    }
}

/// An RFC 3339 instant with any number of fraction digits and an offset (or `Z`).
fn instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::schemas;
    use apache_avro::types::Value as Avro;

    fn decode(bytes: &[u8]) -> Vec<(String, Avro)> {
        let schema = apache_avro::Schema::parse_str(schemas::events_value_schema()).unwrap();
        let v = apache_avro::from_avro_datum(&schema, &mut &bytes[5..], None).unwrap();
        match v {
            Avro::Record(fields) => fields,
            other => panic!("{other:?}"),
        }
    }

    fn field<'a>(fields: &'a [(String, Avro)], name: &str) -> &'a Avro {
        &fields.iter().find(|(n, _)| n == name).unwrap().1
    }

    fn text(v: &Avro) -> Option<&str> {
        match v {
            Avro::Union(_, inner) => text(inner),
            Avro::String(s) => Some(s),
            _ => None,
        }
    }

    const ENDED: &str = r#"{"id":"yHaHXjD4SR-moMR9LbULDb","type":"CONTACT/ENDED","timestamp":"2019-07-03T04:30:12.07Z","initiator":{"id":"NFpDZtfqhk2pI6fjaVDlFf","type":"AGENT"},"content":{"channel":"SMS","contactId":"dzweSumI4bFxjlT8LApOVV","conversationId":"K98jhf874HjDFkA1457K86","customerId":"gHufx-U3QqOmhvFuViceTw","reason":"MERGED","status":"ANSWERED","context":{"assignee":{"inboxId":"inbox-1","agentId":"agent-1"}},"future":1}}"#;

    #[test]
    fn an_event_becomes_a_record_with_its_ids_typed_and_its_content_whole() {
        let e = EventEncoder::new(SchemaIds { key: 1, value: 2 });
        let at = "2019-07-03T05:00:00Z".parse().unwrap();
        let r = e.record(ENDED.as_bytes(), at).unwrap();
        assert_eq!(r.kind, "CONTACT/ENDED");
        assert_eq!(r.timestamp.timestamp_millis(), 1_562_128_212_070);
        assert_eq!(r.record.timestamp_ms, 1_562_128_212_070);
        let f = decode(r.record.value.as_ref().unwrap());
        assert_eq!(text(field(&f, "entity")), Some("CONTACT"));
        assert_eq!(text(field(&f, "action")), Some("ENDED"));
        assert_eq!(
            text(field(&f, "contact_id")),
            Some("dzweSumI4bFxjlT8LApOVV")
        );
        assert_eq!(text(field(&f, "agent_id")), Some("agent-1"));
        assert_eq!(text(field(&f, "inbox_id")), Some("inbox-1"));
        assert_eq!(text(field(&f, "initiator_type")), Some("AGENT"));
        let content = text(field(&f, "content_json")).unwrap();
        assert!(content.contains("\"future\":1"), "{content}");
        // read again later: the same event, the same fingerprint
        let again = e
            .record(ENDED.as_bytes(), "2019-07-03T06:00:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(again.record.fingerprint, r.record.fingerprint);
        assert_eq!(again.record.key, r.record.key);
    }

    #[test]
    fn an_agent_event_takes_its_agent_and_when_it_occurred() {
        let e = EventEncoder::new(SchemaIds { key: 1, value: 2 });
        let line = r#"{"id":"a1","type":"AGENT_STATUS/LOGGED_IN","timestamp":"2024-03-11T09:00:00.5+01:00","initiator":{"id":"ag","type":"AGENT"},"content":{"agentId":"ag","occurredAt":"2024-03-11T08:00:00Z"}}"#;
        let r = e.record(line.as_bytes(), Utc::now()).unwrap();
        assert_eq!(r.timestamp.to_rfc3339(), "2024-03-11T08:00:00.500+00:00");
        let f = decode(r.record.value.as_ref().unwrap());
        assert_eq!(text(field(&f, "agent_id")), Some("ag"));
        assert_eq!(text(field(&f, "contact_id")), None);
        assert!(matches!(field(&f, "occurred_at"), Avro::Union(1, _)));
    }

    #[test]
    fn a_line_that_is_not_an_event_says_why() {
        let e = EventEncoder::new(SchemaIds { key: 1, value: 2 });
        let why = |line: &str| e.record(line.as_bytes(), Utc::now()).unwrap_err();
        assert!(why("{not json").contains("not JSON"));
        assert!(why("[1]").contains("not a JSON object"));
        assert!(why(r#"{"type":"A/B","timestamp":"2024-01-01T00:00:00Z"}"#).contains("`id`"));
        assert!(
            why(r#"{"id":"x","type":"AB","timestamp":"2024-01-01T00:00:00Z"}"#)
                .contains("ENTITY/ACTION")
        );
        assert!(why(r#"{"id":"x","type":"A/B","timestamp":"yesterday"}"#).contains("RFC 3339"));
    }
}
