//! [`DerivedSchema`]: a configured report's value schema, its [`DerivedColumn`]s typed by
//! [`ColumnKind`], and the key schema of its key columns.

use serde_json::{json, Value};

use crate::report::{normalize_column, Header, Report};

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
