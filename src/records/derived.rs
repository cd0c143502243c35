//! Reports configured by columns: a value schema derived from the CSV header, evolved when
//! Gladly adds a column, and the conversion of rows into it.
//!
//! Every column becomes a nullable field, typed by Gladly's header conventions
//! ([`ColumnKind::of`]; words split on spaces or `_`): `… At` and `Timestamp` are
//! `timestamp-millis`, `… in seconds` and `…_sec` are `double`, `Number of …`, `Count of …`, `Times …` and `… Count` are `long`, the rest
//! `string`. The fields keep the
//! order the columns were first seen in; a column Gladly adds later is appended as a new
//! nullable field with a `null` default ([`DerivedSchema::extended`]), so each version reads
//! the records of the ones before it, and a column that disappears keeps its field (null
//! from then on). Each field records the header it came from (`gladly.column`), so the
//! schema can be rebuilt from the registry's latest version after a restart.
//!
//! The key is the configured key columns, as strings, in order: the first must have a value
//! (a row without one is a dead letter); the others may be empty (an event-grain report's
//! `Topic ID` on an event that has none). Never a key made up from the whole row, which would
//! turn every restatement into a new key. The anchor column is the record's timestamp.

use std::sync::Arc;

use serde_json::{json, Value};

use super::columns::preview;
use super::parse::{self, Zone};
use super::{avro, changes, dead_letter, Output, Record};
use crate::report::{normalize_column, DerivedFormat, Header, Report, Row};

/// How a column's cells are typed, from its header name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// A date-time (`… At`, `Timestamp`): `timestamp-millis`.
    Timestamp,
    /// A duration in seconds (`… in seconds`, `…_sec`): `double`.
    Seconds,
    /// A count (`Number of …`, `Count of …`, `Times …`, `… Count`): `long`.
    Count,
    /// Anything else: the cell's text.
    Text,
}

impl ColumnKind {
    /// The kind Gladly's header conventions give `header`.
    pub fn of(header: &str) -> ColumnKind {
        // `Created At` and `contact_session_created_at` alike
        let h = header.trim().to_ascii_lowercase().replace('_', " ");
        let last_word = h.rsplit(' ').next().unwrap_or("");
        if last_word == "at" && h.contains(' ') || last_word == "timestamp" {
            ColumnKind::Timestamp
        } else if h.contains("in seconds")
            || h.ends_with("(seconds)")
            || (h.contains(' ') && ["sec", "seconds"].contains(&last_word))
        {
            ColumnKind::Seconds
        } else if ["number of ", "count of ", "# of ", "times "]
            .iter()
            .any(|p| h.starts_with(p))
            || last_word == "count"
        {
            ColumnKind::Count
        } else {
            ColumnKind::Text
        }
    }

    fn avro_type(self) -> Value {
        match self {
            ColumnKind::Timestamp => json!({"type": "long", "logicalType": "timestamp-millis"}),
            ColumnKind::Seconds => json!("double"),
            ColumnKind::Count => json!("long"),
            ColumnKind::Text => json!("string"),
        }
    }

    fn from_avro(t: &Value) -> Option<ColumnKind> {
        Some(match t {
            Value::String(s) if s == "double" => ColumnKind::Seconds,
            Value::String(s) if s == "long" => ColumnKind::Count,
            Value::String(s) if s == "string" => ColumnKind::Text,
            Value::Object(o) if o.get("logicalType") == Some(&json!("timestamp-millis")) => {
                ColumnKind::Timestamp
            }
            _ => return None,
        })
    }
}

/// One column's field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedColumn {
    /// The header it comes from.
    pub header: String,
    /// The Avro field name (snake_case of the header, unique in the record).
    pub field: String,
    /// How its cells are typed.
    pub kind: ColumnKind,
}

/// The fields every derived value ends with (the fetch's metadata).
const META_FIELDS: [(&str, &str); 3] = [
    (
        "fetched_at",
        "When the service fetched the report answer this row came from.",
    ),
    ("window_start", "Start of the report window requested."),
    ("window_end", "End of the report window requested."),
];

/// A configured report's value schema: its columns, in the order first seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedSchema {
    report: Report,
    columns: Vec<DerivedColumn>,
}

impl DerivedSchema {
    /// The schema of `report` before any answer was seen: no column yet.
    pub fn new(report: Report) -> DerivedSchema {
        DerivedSchema {
            report,
            columns: Vec::new(),
        }
    }

    /// The columns, in field order.
    pub fn columns(&self) -> &[DerivedColumn] {
        &self.columns
    }

    /// The schema with the columns of `header` it lacks appended (matched ignoring case and
    /// punctuation); `None` when it has them all.
    pub fn extended(&self, header: &Header) -> Option<DerivedSchema> {
        let mut next = self.clone();
        for name in header.names() {
            let norm = normalize_column(name);
            if norm.is_empty() || next.position(name).is_some() {
                continue;
            }
            let field = next.unique_field(&field_name(name));
            next.columns.push(DerivedColumn {
                header: name.clone(),
                field,
                kind: ColumnKind::of(name),
            });
        }
        (next.columns.len() > self.columns.len()).then_some(next)
    }

    fn position(&self, header: &str) -> Option<usize> {
        let norm = normalize_column(header);
        self.columns
            .iter()
            .position(|c| normalize_column(&c.header) == norm)
    }

    fn unique_field(&self, base: &str) -> String {
        let taken = |f: &str| {
            self.columns.iter().any(|c| c.field == f) || META_FIELDS.iter().any(|(m, _)| *m == f)
        };
        if !taken(base) {
            return base.to_string();
        }
        (2..)
            .map(|n| format!("{base}_{n}"))
            .find(|f| !taken(f))
            .expect("some suffix is free")
    }

    /// The Avro value schema: one nullable field per column (default null), then the fetch
    /// metadata.
    pub fn value_schema(&self) -> String {
        let mut fields: Vec<Value> = self
            .columns
            .iter()
            .map(|c| {
                json!({
                    "name": c.field,
                    "type": ["null", c.kind.avro_type()],
                    "default": null,
                    "doc": format!("Column {} of the report (empty cells are null).", c.header),
                    "gladly.column": c.header,
                })
            })
            .collect();
        fields.extend(META_FIELDS.iter().map(|(name, doc)| {
            json!({"name": name, "type": {"type": "long", "logicalType": "timestamp-millis"}, "doc": doc})
        }));
        json!({
            "type": "record",
            "name": record_name(self.report),
            "namespace": "com.gladly_kafka.reports",
            "doc": format!("One row of the Gladly report configured as [reports.{}]; fields are derived from its CSV header.", self.report),
            "fields": fields,
        })
        .to_string()
    }

    /// Rebuilds the schema from a value schema this module wrote (the registry's latest
    /// version), so a restart keeps every field of it.
    pub fn from_value_schema(report: Report, text: &str) -> Result<DerivedSchema, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let fields = v["fields"].as_array().ok_or("no fields")?;
        let mut columns = Vec::new();
        for f in fields {
            let Some(header) = f["gladly.column"].as_str() else {
                continue; // the metadata
            };
            let field = f["name"].as_str().ok_or("a field without a name")?;
            let kind = f["type"]
                .as_array()
                .and_then(|u| u.get(1))
                .and_then(ColumnKind::from_avro)
                .ok_or_else(|| format!("field {field} has a type this service does not write"))?;
            columns.push(DerivedColumn {
                header: header.to_string(),
                field: field.to_string(),
                kind,
            });
        }
        Ok(DerivedSchema { report, columns })
    }

    /// The Avro key schema of `report` keyed by `key` columns: one string field each.
    pub fn key_schema(report: Report, key: &[String]) -> String {
        let mut taken: Vec<String> = Vec::new();
        let fields: Vec<Value> = key
            .iter()
            .map(|k| {
                let base = field_name(k);
                let mut f = base.clone();
                let mut n = 2;
                while taken.contains(&f) {
                    f = format!("{base}_{n}");
                    n += 1;
                }
                taken.push(f.clone());
                json!({"name": f, "type": "string", "doc": format!("Column {k} of the report."), "gladly.column": k})
            })
            .collect();
        json!({
            "type": "record",
            "name": format!("{}Key", record_name(report)),
            "namespace": "com.gladly_kafka.reports",
            "doc": format!("Key of the report configured as [reports.{report}]: the cells of its key columns. This key schema never changes."),
            "fields": fields,
        })
        .to_string()
    }
}

/// `conversation_export` → `ConversationExport`.
fn record_name(report: Report) -> String {
    report
        .name()
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `Handle Time in seconds` → `handle_time_in_seconds`: lower-case ASCII letters, digits and
/// `_`, not starting with a digit.
fn field_name(header: &str) -> String {
    let mut out = String::new();
    for c in header.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let out = out.trim_end_matches('_').to_string();
    match out.chars().next() {
        None => "column".into(),
        Some(c) if c.is_ascii_digit() => format!("_{out}"),
        Some(_) => out,
    }
}

/// Converts the rows of a configured report into records of one schema version.
#[derive(Debug)]
pub(crate) struct DerivedConverter {
    schema: Arc<DerivedSchema>,
    format: DerivedFormat,
    zone: Zone,
    key_id: u32,
    value_id: u32,
}

/// Where each schema column, key column and the anchor sit in one answer's header.
#[derive(Debug)]
pub(crate) struct DerivedLayout {
    header: Arc<Header>,
    columns: Vec<Option<usize>>,
    key: Vec<Option<usize>>,
    anchor: Option<usize>,
}

impl DerivedLayout {
    pub(crate) fn is_for(&self, header: &Arc<Header>) -> bool {
        Arc::ptr_eq(&self.header, header)
    }
}

impl DerivedConverter {
    pub(crate) fn new(
        schema: Arc<DerivedSchema>,
        format: DerivedFormat,
        zone: Zone,
        key_id: u32,
        value_id: u32,
    ) -> DerivedConverter {
        DerivedConverter {
            schema,
            format,
            zone,
            key_id,
            value_id,
        }
    }

    pub(crate) fn layout(&self, header: Arc<Header>) -> DerivedLayout {
        let find = |name: &str| {
            let norm = normalize_column(name);
            header
                .names()
                .iter()
                .position(|h| normalize_column(h) == norm)
        };
        DerivedLayout {
            columns: self
                .schema
                .columns
                .iter()
                .map(|c| find(&c.header))
                .collect(),
            key: self.format.key.iter().map(|k| find(k)).collect(),
            anchor: find(&self.format.anchor),
            header,
        }
    }

    /// Converts one row: its record, or the reason it is a dead letter.
    pub(crate) fn convert(
        &self,
        layout: &DerivedLayout,
        row: &Row,
        meta_bytes: &[u8],
    ) -> Result<Record, String> {
        let cell = |p: Option<usize>| p.and_then(|p| row.field(p)).unwrap_or("");
        let mut key = Vec::with_capacity(64);
        avro::header(&mut key, self.key_id);
        for (i, (name, p)) in self.format.key.iter().zip(&layout.key).enumerate() {
            let v = parse::trim(cell(*p));
            if p.is_none() {
                return Err(format!(
                    "key column `{name}` is missing from the report header"
                ));
            }
            if v.is_empty() && i == 0 {
                return Err(format!(
                    "key column `{name}` is empty, but a value is required"
                ));
            }
            avro::string(&mut key, v);
        }
        let anchor = &self.format.anchor;
        let anchor_cell = cell(layout.anchor);
        let at = match parse::timestamp_millis(anchor_cell, self.zone) {
            Ok(Some(ms)) => ms,
            Ok(None) if layout.anchor.is_none() => {
                return Err(format!(
                    "anchor column `{anchor}` is missing from the report header"
                ))
            }
            Ok(None) => {
                return Err(format!(
                    "anchor column `{anchor}` is empty, but a value is required"
                ))
            }
            Err(e) => {
                return Err(format!(
                    "anchor column `{anchor}`: {:?} is {}",
                    preview(anchor_cell),
                    e.what()
                ))
            }
        };
        let mut value = Vec::with_capacity(row.record().as_slice().len() + 64);
        avro::header(&mut value, self.value_id);
        for (c, p) in self.schema.columns.iter().zip(&layout.columns) {
            let text = cell(*p);
            let bad = |e: parse::Invalid| {
                format!("column `{}`: {:?} is {}", c.header, preview(text), e.what())
            };
            match c.kind {
                ColumnKind::Text if parse::trim(text).is_empty() => avro::null(&mut value),
                ColumnKind::Text => {
                    avro::some(&mut value);
                    avro::string(&mut value, text);
                }
                ColumnKind::Timestamp => {
                    match parse::timestamp_millis(text, self.zone).map_err(bad)? {
                        None => avro::null(&mut value),
                        Some(ms) => {
                            avro::some(&mut value);
                            avro::long(&mut value, ms);
                        }
                    }
                }
                ColumnKind::Seconds => match parse::seconds(text).map_err(bad)? {
                    None => avro::null(&mut value),
                    Some(s) => {
                        avro::some(&mut value);
                        avro::double(&mut value, s);
                    }
                },
                ColumnKind::Count => match parse::count(text).map_err(bad)? {
                    None => avro::null(&mut value),
                    Some(n) => {
                        avro::some(&mut value);
                        avro::long(&mut value, n);
                    }
                },
            }
        }
        let fingerprint = changes::fingerprint(&value);
        value.extend_from_slice(meta_bytes);
        Ok(Record {
            key,
            value: Some(value),
            timestamp_ms: at,
            since_ms: at,
            fingerprint,
        })
    }
}

/// Converts `row` into `out` with `converter`, rebuilding `layout` for a new header.
pub(crate) fn push(
    converter: &DerivedConverter,
    layout: &mut Option<DerivedLayout>,
    row: &Row,
    meta_bytes: &[u8],
    out: &mut Vec<Output>,
) {
    if !layout.as_ref().is_some_and(|l| l.is_for(row.header())) {
        *layout = Some(converter.layout(Arc::clone(row.header())));
    }
    let l = layout.as_ref().expect("set above");
    let result = converter
        .convert(l, row, meta_bytes)
        .and_then(super::within_size);
    match result {
        Ok(r) => out.push(Output::Record(r)),
        Err(reason) => out.push(dead_letter(row, reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::Value as AvroValue;

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
}
