//! Conversations (`conversations-key.avsc` / `conversations-value.avsc`): which ones a
//! work-session window asks Gladly about, and their records.
//!
//! [`EndedConversations`] is fed a window's work-session rows and keeps each conversation
//! with a contact that ended in the window once (so one GET per conversation, not per row),
//! with the contact that ended last. [`ConversationEncoder`] turns the answers into records
//! keyed `{conversation_id}`: a value for a conversation found, a tombstone for one deleted.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::columns::normalize;
use super::parse::{self, Zone};
use super::record::{DeadLetter, Record, SchemaIds, WindowMeta};
use super::{avro, changes};
use crate::report::{Conversation, Header, Row};

/// The contact whose end triggers a conversation's fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedContact {
    /// Its `contact_session_id`.
    pub contact_session_id: String,
    /// Its `contact_session_ended_at`, epoch millis.
    pub ended_at_ms: i64,
}

/// The conversations of one window's work-session rows whose contact ended (rows with a
/// `contact_session_ended_at`), each once, in id order. Rows without a conversation id or
/// whose end time cannot be read are skipped (their row goes to the dead letters anyway).
#[derive(Debug, Default)]
pub struct EndedConversations {
    by_id: BTreeMap<String, EndedContact>,
    /// Positions of conversation_id, contact_session_id, contact_session_ended_at in the
    /// header they were found for.
    layout: Option<(Arc<Header>, [Option<usize>; 3])>,
}

const COLUMNS: [&str; 3] = [
    "conversation_id",
    "contact_session_id",
    "contact_session_ended_at",
];

impl EndedConversations {
    /// Notes one work-session row.
    pub fn push(&mut self, row: &Row) {
        if !self
            .layout
            .as_ref()
            .is_some_and(|(h, _)| Arc::ptr_eq(h, row.header()))
        {
            let names: Vec<String> = row.header().names().iter().map(|n| normalize(n)).collect();
            let pos = COLUMNS.map(|c| names.iter().position(|n| *n == normalize(c)));
            self.layout = Some((Arc::clone(row.header()), pos));
        }
        let (_, pos) = self.layout.as_ref().expect("set above");
        let cell = |i: usize| {
            pos[i]
                .and_then(|p| row.field(p))
                .map(parse::trim)
                .filter(|s| !s.is_empty())
        };
        let (Some(conversation), Some(contact), Some(ended)) = (cell(0), cell(1), cell(2)) else {
            return;
        };
        let Ok(Some(ended_at_ms)) = parse::timestamp_millis(ended, Zone::Utc) else {
            return;
        };
        let later = |e: &EndedContact| {
            (ended_at_ms, contact) > (e.ended_at_ms, e.contact_session_id.as_str())
        };
        match self.by_id.get_mut(conversation) {
            Some(e) if !later(e) => {}
            Some(e) => {
                e.contact_session_id = contact.to_string();
                e.ended_at_ms = ended_at_ms;
            }
            None => {
                self.by_id.insert(
                    conversation.to_string(),
                    EndedContact {
                        contact_session_id: contact.to_string(),
                        ended_at_ms,
                    },
                );
            }
        }
    }

    /// How many distinct conversations.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when no row had an ended contact with a conversation.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Each conversation id with the contact that ended last, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &EndedContact)> {
        self.by_id.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// Encodes conversation records with the registry ids of the conversations topic's schemas.
#[derive(Debug, Clone, Copy)]
pub struct ConversationEncoder {
    ids: SchemaIds,
}

impl ConversationEncoder {
    /// An encoder writing with `ids`.
    pub fn new(ids: SchemaIds) -> Self {
        ConversationEncoder { ids }
    }

    fn key(&self, conversation_id: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(8 + conversation_id.len());
        avro::header(&mut key, self.ids.key);
        avro::string(&mut key, conversation_id);
        key
    }

    /// The record of conversation `requested` (the id in the work-session rows) as Gladly
    /// answered it; `meta.fetched_at` is when. `Err` is the dead-letter reason (a timestamp
    /// that does not parse).
    pub fn record(
        &self,
        requested: &str,
        trigger: &EndedContact,
        c: &Conversation,
        meta: &WindowMeta,
    ) -> Result<Record, String> {
        let instant = |field: &str, v: &Option<String>| match v.as_deref() {
            None => Ok(None),
            Some(s) => parse::timestamp_millis(s, Zone::Utc)
                .map_err(|_| format!("field {field}: {s:?} is not an RFC 3339 timestamp")),
        };
        let created = instant("createdAt", &c.created_at)?;
        let closed = instant("closedAt", &c.closed_at)?;
        let mut value = Vec::with_capacity(256);
        avro::header(&mut value, self.ids.value);
        avro::string(&mut value, requested);
        avro::string(&mut value, &c.id);
        for v in [&c.customer_id, &c.inbox_id, &c.status, &c.agent_id] {
            avro::opt_string(&mut value, v.as_deref().filter(|s| !s.trim().is_empty()));
        }
        avro::string_array(&mut value, c.topic_ids.iter().map(String::as_str));
        if !c.custom_attributes.is_empty() {
            avro::long(&mut value, c.custom_attributes.len() as i64);
            for a in &c.custom_attributes {
                avro::string(&mut value, &a.id);
                avro::opt_string(&mut value, a.value.as_deref());
            }
        }
        value.push(0);
        for t in [created, closed] {
            match t {
                Some(ms) => {
                    avro::some(&mut value);
                    avro::long(&mut value, ms);
                }
                None => avro::null(&mut value),
            }
        }
        avro::string(&mut value, &trigger.contact_session_id);
        avro::long(&mut value, trigger.ended_at_ms);
        let extra: Vec<(&str, String)> = c
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_string()))
            .collect();
        avro::string_map(&mut value, extra.iter().map(|(k, v)| (*k, v.as_str())));
        avro::json_object_string(&mut value, extra.iter().map(|(k, v)| (*k, v.as_str())));
        avro::json_array_string(&mut value, c.topic_ids.iter().map(String::as_str));
        // its length is not guessed: only a text of 64 bytes or more is moved
        avro::string_with(&mut value, 0, |json| custom_attributes_json(json, c));
        let fingerprint = changes::fingerprint(&value);
        for t in [meta.fetched_at, meta.window_start, meta.window_end] {
            avro::long(&mut value, t.timestamp_millis());
        }
        Ok(Record {
            key: self.key(requested),
            value: Some(value),
            timestamp_ms: trigger.ended_at_ms,
            since_ms: trigger.ended_at_ms,
            fingerprint,
        })
    }

    /// The tombstone of conversation `requested`: Gladly answered 404 (deleted).
    pub fn tombstone(&self, requested: &str, trigger: &EndedContact) -> Record {
        Record {
            key: self.key(requested),
            value: None,
            timestamp_ms: trigger.ended_at_ms,
            since_ms: trigger.ended_at_ms,
            fingerprint: changes::TOMBSTONE,
        }
    }
}

/// `custom_attributes_json`: `[{"id":...,"value":... or null},...]`, in Gladly's order.
fn custom_attributes_json(json: &mut Vec<u8>, c: &Conversation) {
    json.push(b'[');
    for (i, a) in c.custom_attributes.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        json.extend_from_slice(br#"{"id":"#);
        avro::json_str(json, &a.id);
        json.extend_from_slice(br#","value":"#);
        match &a.value {
            Some(v) => avro::json_str(json, v),
            None => json.extend_from_slice(b"null"),
        }
        json.push(b'}');
    }
    json.push(b']');
}

/// A dead letter for a conversation that could not be published: the ids and what went wrong.
pub fn conversation_dead_letter(
    requested: &str,
    trigger: &EndedContact,
    reason: String,
) -> DeadLetter {
    DeadLetter {
        line: 0,
        reason,
        raw: vec![
            ("conversation_id".into(), requested.to_string()),
            (
                "contact_session_id".into(),
                trigger.contact_session_id.clone(),
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::Value;
    use apache_avro::{from_avro_datum, Schema};
    use chrono::{DateTime, Utc};

    use crate::records::schemas;
    use crate::report::WORK_SESSION_COLUMNS;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// A work-session row with the given cells, every other column empty.
    fn row(header: &Arc<Header>, cells: &[(&str, &str)]) -> Row {
        let record: Vec<&str> = header
            .names()
            .iter()
            .map(|n| cells.iter().find(|(c, _)| c == n).map_or("", |(_, v)| *v))
            .collect();
        Row::new(header.clone(), csv::StringRecord::from(record), 2)
    }

    #[test]
    fn one_entry_per_conversation_with_an_ended_contact_the_last_one_to_end() {
        let h = Arc::new(Header::new(WORK_SESSION_COLUMNS));
        let ended = |conv: &str, contact: &str, at: &str| {
            row(
                &h,
                &[
                    ("conversation_id", conv),
                    ("contact_session_id", contact),
                    ("contact_session_ended_at", at),
                ],
            )
        };
        let mut e = EndedConversations::default();
        // two agents' rows of one contact, a later contact of the same conversation, an
        // earlier one seen after it, an open contact and rows that cannot trigger anything
        e.push(&ended("conv-1", "c1", "2024-03-11T10:00:00Z"));
        e.push(&ended("conv-1", "c1", "2024-03-11T10:00:00Z"));
        e.push(&ended("conv-1", "c2", "2024-03-11T10:30:00.000Z"));
        e.push(&ended("conv-1", "c0", "2024-03-11T09:00:00Z"));
        e.push(&ended("conv-2", "c3", "2024-03-11T11:00Z"));
        e.push(&ended("conv-3", "c4", ""));
        e.push(&ended("", "c5", "2024-03-11T11:00:00Z"));
        e.push(&ended("conv-4", "c6", "not-a-value"));
        let got: Vec<(&str, &str, i64)> = e
            .iter()
            .map(|(id, c)| (id, c.contact_session_id.as_str(), c.ended_at_ms))
            .collect();
        assert_eq!(
            got,
            vec![
                ("conv-1", "c2", t("2024-03-11T10:30:00Z").timestamp_millis()),
                ("conv-2", "c3", t("2024-03-11T11:00:00Z").timestamp_millis()),
            ]
        );
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn columns_are_found_by_normalized_name_in_any_order() {
        let h = Arc::new(Header::new([
            "Contact Session Ended At",
            "x",
            "Conversation ID",
            "CONTACT_SESSION_ID",
        ]));
        let mut e = EndedConversations::default();
        e.push(&Row::new(
            h,
            csv::StringRecord::from(vec!["2024-03-11T10:00:00Z", "", " conv-9 ", "c9"]),
            2,
        ));
        assert_eq!(e.iter().next().unwrap().0, "conv-9");
    }

    fn decode(schema: &str, bytes: &[u8], id: u32) -> serde_json::Value {
        assert_eq!(bytes[0], 0);
        assert_eq!(u32::from_be_bytes(bytes[1..5].try_into().unwrap()), id);
        let schema = Schema::parse_str(schema).unwrap();
        let mut rest = &bytes[5..];
        let v: Value = from_avro_datum(&schema, &mut rest, None).unwrap();
        assert!(rest.is_empty(), "trailing bytes");
        v.try_into().unwrap()
    }

    fn meta() -> WindowMeta {
        WindowMeta {
            window_start: t("2024-03-11T08:00:00Z"),
            window_end: t("2024-03-11T12:00:00Z"),
            fetched_at: t("2024-03-11T12:00:05Z"),
        }
    }

    #[test]
    fn a_found_conversation_round_trips_through_apache_avro() {
        let enc = ConversationEncoder::new(SchemaIds { key: 7, value: 8 });
        let c: Conversation = serde_json::from_str(
            r#"{"id":"merged-into","customerId":"cu","agentId":"ag","inboxId":"in","status":"CLOSED",
                "createdAt":"2024-03-11T09:00:00Z","closedAt":"2024-03-11T11:00:00.250Z",
                "topicIds":["t1","t2"],"customAttributes":[{"id":"a1","value":"UPS"},{"id":"a2"}],
                "priority":{"level":3}}"#,
        )
        .unwrap();
        let trigger = EndedContact {
            contact_session_id: "c2".into(),
            ended_at_ms: t("2024-03-11T10:30:00Z").timestamp_millis(),
        };
        let r = enc.record("asked", &trigger, &c, &meta()).unwrap();
        assert_eq!(r.timestamp_ms, trigger.ended_at_ms);
        assert_eq!(
            decode(schemas::conversation_key_schema(), &r.key, 7),
            serde_json::json!({"conversation_id": "asked"})
        );
        let v = decode(
            schemas::conversation_value_schema(),
            r.value.as_ref().unwrap(),
            8,
        );
        assert_eq!(
            v,
            serde_json::json!({
                "conversation_id": "asked",
                "id": "merged-into",
                "customer_id": "cu",
                "inbox_id": "in",
                "status": "CLOSED",
                "agent_id": "ag",
                "topic_ids": ["t1", "t2"],
                "custom_attributes": [{"id": "a1", "value": "UPS"}, {"id": "a2", "value": null}],
                "created_at": t("2024-03-11T09:00:00Z").timestamp_millis(),
                "closed_at": t("2024-03-11T11:00:00.250Z").timestamp_millis(),
                "contact_session_id": "c2",
                "contact_session_ended_at": trigger.ended_at_ms,
                "extra": {"priority": "{\"level\":3}"},
                "extra_json": r#"{"priority":"{\"level\":3}"}"#,
                "topic_ids_json": r#"["t1","t2"]"#,
                "custom_attributes_json": r#"[{"id":"a1","value":"UPS"},{"id":"a2","value":null}]"#,
                "fetched_at": meta().fetched_at.timestamp_millis(),
                "window_start": meta().window_start.timestamp_millis(),
                "window_end": meta().window_end.timestamp_millis(),
            })
        );
    }

    #[test]
    fn a_minimal_answer_has_nulls_and_empty_collections() {
        let enc = ConversationEncoder::new(SchemaIds { key: 1, value: 2 });
        let c: Conversation = serde_json::from_str(r#"{"id":"x","inboxId":""}"#).unwrap();
        let trigger = EndedContact {
            contact_session_id: "c".into(),
            ended_at_ms: 0,
        };
        let r = enc.record("x", &trigger, &c, &meta()).unwrap();
        let v = decode(
            schemas::conversation_value_schema(),
            r.value.as_ref().unwrap(),
            2,
        );
        for f in [
            "customer_id",
            "inbox_id",
            "status",
            "agent_id",
            "created_at",
            "closed_at",
        ] {
            assert_eq!(v[f], serde_json::Value::Null, "{f}");
        }
        assert_eq!(v["topic_ids"], serde_json::json!([]));
        assert_eq!(v["custom_attributes"], serde_json::json!([]));
        assert_eq!(v["extra"], serde_json::json!({}));
        assert_eq!(v["extra_json"], "{}");
        assert_eq!(v["topic_ids_json"], "[]");
        assert_eq!(v["custom_attributes_json"], "[]");
    }

    #[test]
    fn the_json_twins_read_back_as_the_arrays_escaped() {
        let enc = ConversationEncoder::new(SchemaIds { key: 1, value: 2 });
        let tricky = r#"a "quoted" \ path\"#;
        let answer = serde_json::json!({
            "id": "x",
            "topicIds": [tricky, "t2"],
            "customAttributes": [{"id": tricky, "value": tricky}, {"id": "n"}],
        });
        let c: Conversation = serde_json::from_value(answer.clone()).unwrap();
        let trigger = EndedContact {
            contact_session_id: "c".into(),
            ended_at_ms: 0,
        };
        let r = enc.record("x", &trigger, &c, &meta()).unwrap();
        let value = r.value.as_ref().unwrap();
        let v = decode(schemas::conversation_value_schema(), value, 2);
        let parsed = |f: &str| -> serde_json::Value {
            serde_json::from_str(v[f].as_str().expect("a string")).unwrap()
        };
        assert_eq!(parsed("topic_ids_json"), answer["topicIds"]);
        assert_eq!(parsed("topic_ids_json"), v["topic_ids"]);
        assert_eq!(
            parsed("custom_attributes_json"),
            serde_json::json!([{"id": tricky, "value": tricky}, {"id": "n", "value": null}])
        );
        assert_eq!(parsed("custom_attributes_json"), v["custom_attributes"]);
        assert_eq!(
            changes::published_fingerprint(value),
            Some(r.fingerprint),
            "the twins are inside the fingerprint, the metadata is not"
        );
    }

    #[test]
    fn a_deleted_conversation_is_a_tombstone_and_a_bad_time_a_reason() {
        let enc = ConversationEncoder::new(SchemaIds { key: 1, value: 2 });
        let trigger = EndedContact {
            contact_session_id: "c".into(),
            ended_at_ms: 42,
        };
        let r = enc.tombstone("gone", &trigger);
        assert_eq!(r.value, None);
        assert_eq!(r.timestamp_ms, 42);
        assert_eq!(
            r.key,
            enc.record(
                "gone",
                &trigger,
                &serde_json::from_str(r#"{"id":"gone"}"#).unwrap(),
                &meta()
            )
            .unwrap()
            .key
        );
        let c: Conversation =
            serde_json::from_str(r#"{"id":"x","createdAt":"yesterday"}"#).unwrap();
        let err = enc.record("x", &trigger, &c, &meta()).unwrap_err();
        assert!(
            err.contains("createdAt") && err.contains("yesterday"),
            "{err}"
        );
        let dl = conversation_dead_letter("x", &trigger, err);
        assert_eq!(dl.raw[0], ("conversation_id".to_string(), "x".to_string()));
    }
}
