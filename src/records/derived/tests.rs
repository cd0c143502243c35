//! The derived schema and conversion, on rows like Gladly's.

use super::convert::DerivedConverter;
use super::*;
use crate::records::avro;
use crate::records::parse::Zone;
use crate::records::Record;
use crate::report::{DerivedFormat, Header, Report, Row};
use apache_avro::types::Value as AvroValue;
use std::sync::Arc;

fn report() -> Report {
    Report::named("conversation_export").unwrap()
}

#[test]
fn columns_are_typed_by_gladly_header_conventions() {
    assert_eq!(ColumnKind::of("Created At"), ColumnKind::Timestamp);
    assert_eq!(ColumnKind::of("Timestamp"), ColumnKind::Timestamp);
    assert_eq!(
        ColumnKind::of("Handle Time in seconds"),
        ColumnKind::Seconds
    );
    assert_eq!(ColumnKind::of("Number of Transfers"), ColumnKind::Count);
    assert_eq!(ColumnKind::of("Message Count"), ColumnKind::Count);
    assert_eq!(ColumnKind::of("Count of Contacts"), ColumnKind::Count);
    // the work-session endpoint's snake_case headers follow the same conventions
    assert_eq!(
        ColumnKind::of("contact_session_created_at"),
        ColumnKind::Timestamp
    );
    assert_eq!(
        ColumnKind::of("work_session_handle_time_sec"),
        ColumnKind::Seconds
    );
    assert_eq!(ColumnKind::of("within_sla"), ColumnKind::Text);
    assert_eq!(ColumnKind::of("Times Reopened"), ColumnKind::Count);
    assert_eq!(ColumnKind::of("First Closed At"), ColumnKind::Timestamp);
    assert_eq!(
        ColumnKind::of("Created-to-First Closed Time in seconds"),
        ColumnKind::Seconds
    );
    assert_eq!(ColumnKind::of("Conversation ID"), ColumnKind::Text);
    assert_eq!(
        ColumnKind::of("Chat"),
        ColumnKind::Text,
        "`at` inside a word"
    );
    assert_eq!(ColumnKind::of("At"), ColumnKind::Text);
}

#[test]
fn a_new_column_extends_the_schema_backward_compatibly() {
    let h1 = Header::new(["Conversation ID", "Created At", "Status"]);
    let v1 = DerivedSchema::new(report()).extended(&h1).unwrap();
    assert!(v1.extended(&h1).is_none(), "nothing new");
    // reordered, re-cased, one dropped, one added
    let h2 = Header::new(["created at", "Conversation ID", "Number of Transfers"]);
    let v2 = v1.extended(&h2).unwrap();
    let fields: Vec<&str> = v2.columns().iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "conversation_id",
            "created_at",
            "status",
            "number_of_transfers"
        ]
    );
    let w = apache_avro::Schema::parse_str(&v1.value_schema()).unwrap();
    let r = apache_avro::Schema::parse_str(&v2.value_schema()).unwrap();
    let compat = apache_avro::schema_compatibility::SchemaCompatibility::can_read(&w, &r);
    assert!(compat.is_ok(), "v2 reads v1 data: {compat:?}");
    // and the registry's copy rebuilds it
    assert_eq!(
        DerivedSchema::from_value_schema(report(), &v2.value_schema()).unwrap(),
        v2
    );
}

#[test]
fn field_names_are_unique_and_valid() {
    let h = Header::new(["1st Reply", "Fetched At", "Status", "status!", "  "]);
    let s = DerivedSchema::new(report()).extended(&h).unwrap();
    let fields: Vec<&str> = s.columns().iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        ["_1st_reply", "fetched_at_2", "status"],
        "status! = Status"
    );
    apache_avro::Schema::parse_str(&s.value_schema()).unwrap();
    let key = DerivedSchema::key_schema(report(), &["Contact ID".into(), "Timestamp".into()]);
    apache_avro::Schema::parse_str(&key).unwrap();
}

fn convert(row: &Row, schema: &DerivedSchema) -> Result<Record, String> {
    let c = DerivedConverter::new(
        Arc::new(schema.clone()),
        DerivedFormat {
            key: vec!["Conversation ID".into()],
            anchor: "Created At".into(),
        },
        Zone::Utc,
        1,
        2,
    );
    let l = c.layout(Arc::clone(row.header()));
    let mut meta = Vec::new();
    for t in [3i64, 1, 2] {
        avro::long(&mut meta, t);
    }
    c.convert(&l, row, &meta)
}

#[test]
fn rows_convert_to_typed_values_and_bad_rows_say_why() {
    let row = Row::from_pairs([
        ("Conversation ID", "c1"),
        ("Created At", "2024-03-13T09:00:00.000Z"),
        ("Handle Time in seconds", "12.5"),
        ("Number of Transfers", ""),
        ("Status", "CLOSED"),
    ]);
    let schema = DerivedSchema::new(report()).extended(row.header()).unwrap();
    let r = convert(&row, &schema).unwrap();
    assert_eq!(r.timestamp_ms, 1_710_320_400_000);
    let avro = apache_avro::Schema::parse_str(&schema.value_schema()).unwrap();
    let v = apache_avro::from_avro_datum(&avro, &mut &r.value.unwrap()[5..], None).unwrap();
    let AvroValue::Record(fields) = v else {
        panic!()
    };
    let get = |n: &str| fields.iter().find(|(f, _)| f == n).unwrap().1.clone();
    assert_eq!(
        get("handle_time_in_seconds"),
        AvroValue::Union(1, Box::new(AvroValue::Double(12.5)))
    );
    assert_eq!(
        get("number_of_transfers"),
        AvroValue::Union(0, Box::new(AvroValue::Null))
    );
    assert_eq!(get("window_end"), AvroValue::TimestampMillis(2));
    let bad = Row::from_pairs([
        ("Conversation ID", "c1"),
        ("Created At", "2024-03-13T09:00:00.000Z"),
        ("Handle Time in seconds", "soon"),
    ]);
    let err = convert(&bad, &schema).unwrap_err();
    assert!(
        err.contains("Handle Time in seconds") && err.contains("soon"),
        "{err}"
    );
    let no_key = Row::from_pairs([
        ("Conversation ID", " "),
        ("Created At", "2024-03-13T09:00:00Z"),
    ]);
    assert!(convert(&no_key, &schema)
        .unwrap_err()
        .contains("key column `Conversation ID`"));
}
