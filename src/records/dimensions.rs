//! Records of the dimension topics (`<prefix>.agents`, `.inboxes`, `.teams`, `.topics`): one
//! per item of a Gladly list, keyed by its id, in the layout of
//! `schemas/<list>-{key,value}.avsc`: the documented fields, `extra` (every other field as JSON
//! text), `extra_json` (the same as one JSON object text), the `_json` twin of each array field
//! (a JSON array text), then `fetched_at`, which the change fingerprint leaves out.

use chrono::{DateTime, Utc};

use super::record::{Record, SchemaIds};
use super::{avro, changes};
use crate::report::{DimensionList, ListItem};

/// How a documented field is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `["null", "string"]`; an empty string is null.
    Text,
    /// `["null", "boolean"]`.
    Flag,
    /// `array<string>`.
    Texts,
}

/// The documented fields of a list after `id`, in schema order: (Gladly's name, kind).
fn fields(list: DimensionList) -> &'static [(&'static str, Kind)] {
    match list {
        DimensionList::Agents => &[("name", Kind::Text), ("emailAddress", Kind::Text)],
        DimensionList::Inboxes => &[("name", Kind::Text), ("disabled", Kind::Flag)],
        DimensionList::Teams => &[
            ("name", Kind::Text),
            ("description", Kind::Text),
            ("agentIds", Kind::Texts),
        ],
        DimensionList::Topics => &[
            ("name", Kind::Text),
            ("disabled", Kind::Flag),
            ("parentId", Kind::Text),
        ],
    }
}

/// The id of a list item: its `id` field, when it is a non-empty string.
pub fn item_id(item: &ListItem) -> Option<&str> {
    item.get("id")
        .and_then(|v| v.as_str())
        .filter(|s| !s.trim().is_empty())
}

/// Encodes one list's records with the registry ids of its topic's schemas.
#[derive(Debug, Clone, Copy)]
pub struct DimensionEncoder {
    list: DimensionList,
    ids: SchemaIds,
}

impl DimensionEncoder {
    /// An encoder of `list` writing with `ids`.
    pub fn new(list: DimensionList, ids: SchemaIds) -> Self {
        DimensionEncoder { list, ids }
    }

    /// The key bytes of `id`.
    pub fn key(&self, id: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(8 + id.len());
        avro::header(&mut key, self.ids.key);
        avro::string(&mut key, id);
        key
    }

    /// The record of `item` fetched at `fetched_at`; `None` when it has no id (nothing to key
    /// it by). A documented field with another JSON type than documented is null and kept,
    /// as JSON text, in `extra`.
    pub fn record(&self, item: &ListItem, fetched_at: DateTime<Utc>) -> Option<Record> {
        let id = item_id(item)?;
        let known = fields(self.list);
        let mut value = Vec::with_capacity(128);
        avro::header(&mut value, self.ids.value);
        avro::string(&mut value, id);
        let mut odd: Vec<&str> = Vec::new();
        // each array field's items as written, for its `_json` twin
        let mut arrays: Vec<&[serde_json::Value]> = Vec::new();
        for (name, kind) in known {
            let v = item.get(*name).filter(|v| !v.is_null());
            let mut items: &[serde_json::Value] = &[];
            match (kind, v) {
                (_, None) => write_empty(&mut value, *kind),
                (Kind::Text, Some(serde_json::Value::String(s))) => {
                    avro::opt_string(&mut value, Some(s.as_str()).filter(|s| !s.is_empty()))
                }
                (Kind::Flag, Some(serde_json::Value::Bool(b))) => {
                    avro::some(&mut value);
                    avro::boolean(&mut value, *b);
                }
                (Kind::Texts, Some(serde_json::Value::Array(a)))
                    if a.iter().all(serde_json::Value::is_string) =>
                {
                    avro::string_array(
                        &mut value,
                        a.iter().map(|s| s.as_str().unwrap_or_default()),
                    );
                    items = a;
                }
                (_, Some(_)) => {
                    odd.push(name);
                    write_empty(&mut value, *kind);
                }
            }
            if *kind == Kind::Texts {
                arrays.push(items);
            }
        }
        let extra: Vec<(&str, String)> = item
            .iter()
            .filter(|(k, _)| {
                k.as_str() != "id"
                    && (odd.contains(&k.as_str()) || !known.iter().any(|(n, _)| n == k))
            })
            .map(|(k, v)| (k.as_str(), v.to_string()))
            .collect();
        avro::string_map(&mut value, extra.iter().map(|(k, v)| (*k, v.as_str())));
        avro::json_object_string(&mut value, extra.iter().map(|(k, v)| (*k, v.as_str())));
        for a in arrays {
            avro::json_array_string(&mut value, a.iter().filter_map(serde_json::Value::as_str));
        }
        let fingerprint = changes::fingerprint(&value);
        let at = fetched_at.timestamp_millis();
        avro::long(&mut value, at);
        Some(Record {
            key: self.key(id),
            value: Some(value),
            timestamp_ms: at,
            since_ms: at,
            fingerprint,
        })
    }

    /// The tombstone of `id`: no longer listed.
    pub fn tombstone(&self, id: &str, at: DateTime<Utc>) -> Record {
        Record {
            key: self.key(id),
            value: None,
            timestamp_ms: at.timestamp_millis(),
            since_ms: at.timestamp_millis(),
            fingerprint: changes::TOMBSTONE,
        }
    }
}

fn write_empty(buf: &mut Vec<u8>, kind: Kind) {
    match kind {
        Kind::Text | Kind::Flag => avro::null(buf),
        Kind::Texts => buf.push(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::schemas;
    use apache_avro::types::Value;
    use chrono::TimeZone;

    fn item(v: serde_json::Value) -> ListItem {
        v.as_object().unwrap().clone()
    }

    fn decode(list: DimensionList, bytes: &[u8]) -> Vec<(String, Value)> {
        let schema = apache_avro::Schema::parse_str(schemas::dimension_value_schema(list)).unwrap();
        let mut r = &bytes[5..];
        let v = apache_avro::from_avro_datum(&schema, &mut r, None).unwrap();
        assert!(r.is_empty(), "trailing bytes");
        match v {
            Value::Record(f) => f,
            other => panic!("{other:?}"),
        }
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 14, 10, 0, 0).unwrap()
    }

    #[test]
    fn every_list_encodes_against_its_schema() {
        let ids = SchemaIds { key: 1, value: 2 };
        let cases = [
            (
                DimensionList::Agents,
                serde_json::json!({"id": "a", "name": "Amy", "emailAddress": "amy@x.com"}),
            ),
            (
                DimensionList::Inboxes,
                serde_json::json!({"id": "i", "name": "Email", "disabled": false}),
            ),
            (
                DimensionList::Teams,
                serde_json::json!({"id": "t", "name": "Stay", "agentIds": ["a", "b"]}),
            ),
            (
                DimensionList::Topics,
                serde_json::json!({"id": "p", "name": "Return", "disabled": true, "parentId": "q"}),
            ),
        ];
        for (list, json) in cases {
            let r = DimensionEncoder::new(list, ids)
                .record(&item(json.clone()), at())
                .unwrap();
            let fields = decode(list, r.value.as_ref().unwrap());
            assert_eq!(
                fields[0].1,
                Value::String(json["id"].as_str().unwrap().into())
            );
            assert_eq!(r.timestamp_ms, at().timestamp_millis());
            assert_eq!(fields.last().unwrap().0, "fetched_at");
        }
        let r = DimensionEncoder::new(DimensionList::Teams, ids)
            .record(
                &item(serde_json::json!({"id": "t", "agentIds": ["a", "b"]})),
                at(),
            )
            .unwrap();
        let f = decode(DimensionList::Teams, r.value.as_ref().unwrap());
        assert_eq!(
            f[3].1,
            Value::Array(vec![Value::String("a".into()), Value::String("b".into())])
        );
        assert_eq!(f[1].1, Value::Union(0, Box::new(Value::Null)));
        assert_eq!(
            f[6],
            (
                "agent_ids_json".to_string(),
                Value::String(r#"["a","b"]"#.into())
            )
        );
        // an array of another type is kept in extra; both array forms are empty
        let odd = serde_json::json!([1, "q\"\\"]);
        let r = DimensionEncoder::new(DimensionList::Teams, ids)
            .record(&item(serde_json::json!({"id": "t", "agentIds": odd})), at())
            .unwrap();
        let f = decode(DimensionList::Teams, r.value.as_ref().unwrap());
        assert_eq!(f[3].1, Value::Array(vec![]));
        let Value::String(extra_json) = &f[5].1 else {
            panic!("extra_json is a string")
        };
        let extra: serde_json::Value = serde_json::from_str(extra_json).unwrap();
        let kept: serde_json::Value =
            serde_json::from_str(extra["agentIds"].as_str().unwrap()).unwrap();
        assert_eq!(kept, odd);
        assert_eq!(f[6].1, Value::String("[]".into()));
    }

    #[test]
    fn unknown_and_odd_fields_go_to_extra_and_no_id_is_no_record() {
        let enc = DimensionEncoder::new(DimensionList::Inboxes, SchemaIds { key: 1, value: 2 });
        let r = enc
            .record(
                &item(
                    serde_json::json!({"id": "i", "name": 7, "disabled": true, "channel": "EMAIL"}),
                ),
                at(),
            )
            .unwrap();
        let f = decode(DimensionList::Inboxes, r.value.as_ref().unwrap());
        assert_eq!(f[1].1, Value::Union(0, Box::new(Value::Null)));
        assert_eq!(f[2].1, Value::Union(1, Box::new(Value::Boolean(true))));
        let Value::Map(extra) = &f[3].1 else { panic!() };
        assert_eq!(extra["name"], Value::String("7".into()));
        assert_eq!(extra["channel"], Value::String("\"EMAIL\"".into()));
        assert_eq!(extra.len(), 2);
        let Value::String(json) = &f[4].1 else {
            panic!("extra_json is a string")
        };
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(json).unwrap(),
            serde_json::json!({"name": "7", "channel": "\"EMAIL\""}),
            "extra_json: the same entries, each value the field's JSON text"
        );
        assert!(enc
            .record(&item(serde_json::json!({"name": "x"})), at())
            .is_none());
        assert!(enc
            .record(&item(serde_json::json!({"id": ""})), at())
            .is_none());
    }

    #[test]
    fn the_fingerprint_ignores_fetched_at_and_sees_a_rename() {
        let enc = DimensionEncoder::new(DimensionList::Agents, SchemaIds { key: 1, value: 2 });
        let amy = item(serde_json::json!({"id": "a", "name": "Amy"}));
        let a = enc.record(&amy, at()).unwrap();
        let b = enc.record(&amy, at() + chrono::Duration::hours(1)).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.value, b.value);
        let renamed = enc
            .record(&item(serde_json::json!({"id": "a", "name": "Amy B"})), at())
            .unwrap();
        assert_ne!(a.fingerprint, renamed.fingerprint);
        assert_eq!(a.key, renamed.key);
        let t = enc.tombstone("a", at());
        assert_eq!(
            (t.key, t.value, t.fingerprint),
            (a.key, None, changes::TOMBSTONE)
        );
    }
}
