//! SQL tables for the topics, derived from their Avro schemas (`schemas/`): Flink
//! `upsert-kafka` tables reading the topics as upsert tables, and the PostgreSQL tables a JDBC
//! sink that upserts by key holds. `gladly-kafka sql` prints them; docs/flink.md explains the
//! type mapping.
//!
//! Columns are the key schema's fields (the primary key, with the key's types) followed by
//! the value schema's other fields. Flink reads the value with `'value.fields-include' =
//! 'EXCEPT_KEY'`, so a field in both (with a nullable type in the value and a non-null one in
//! the key) is taken from the key only; Avro resolution skips the writer's value fields the
//! derived reader schema lacks.

use serde_json::Value;

/// Why a topic has no SQL table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// A schema is not the JSON of an Avro record.
    #[error("{table}: the {which} schema is not an Avro record schema: {reason}")]
    Schema {
        /// The table.
        table: String,
        /// `key` or `value`.
        which: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A key field is nullable: no SQL primary key can hold it.
    #[error(
        "{table}: key field `{field}` is nullable, and a primary key column cannot be; \
         this topic's key schema predates the non-null key (a newer topic carries it)"
    )]
    NullableKey {
        /// The table.
        table: String,
        /// The nullable key field.
        field: String,
    },
    /// An Avro type with no mapping in the dialect.
    #[error("{table}: field `{field}` has Avro type {avro}, which {dialect} has no column for")]
    Unmapped {
        /// The table.
        table: String,
        /// The field.
        field: String,
        /// The Avro type, as JSON.
        avro: String,
        /// The dialect.
        dialect: &'static str,
    },
}

/// A topic and the schemas of its records. `Config::topic_tables` lists those of every topic
/// with a fixed schema.
#[derive(Debug, Clone)]
pub struct TopicTable {
    /// The SQL table's name (`contacts`, `work_sessions`, `inboxes`, ...).
    pub name: String,
    /// The Kafka topic.
    pub topic: String,
    /// The key schema (Avro JSON).
    pub key_schema: &'static str,
    /// The value schema (Avro JSON).
    pub value_schema: &'static str,
}

/// Where a Flink job finds the topics: the broker and the Confluent-compatible registry.
#[derive(Debug, Clone)]
pub struct FlinkConnection {
    /// `properties.bootstrap.servers`.
    pub bootstrap_servers: String,
    /// `avro-confluent.url` (Apicurio: `http://host:8080/apis/ccompat/v7`).
    pub registry_url: String,
}

/// One column: its name, Avro type and whether it belongs to the key.
struct Column {
    name: String,
    avro: Value,
    key: bool,
}

/// The columns of `t`: the key's fields, then the value's other fields.
fn columns(t: &TopicTable) -> Result<Vec<Column>, SqlError> {
    let fields = |which: &'static str, text: &str| -> Result<Vec<(String, Value)>, SqlError> {
        let bad = |reason: String| SqlError::Schema {
            table: t.name.clone(),
            which,
            reason,
        };
        let schema: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let fields = schema["fields"]
            .as_array()
            .ok_or_else(|| bad("no `fields` array".into()))?;
        fields
            .iter()
            .map(|f| match f["name"].as_str() {
                Some(n) => Ok((n.to_string(), f["type"].clone())),
                None => Err(bad(format!("a field without a name: {f}"))),
            })
            .collect()
    };
    let key = fields("key", t.key_schema)?;
    let value = fields("value", t.value_schema)?;
    let mut out: Vec<Column> = Vec::new();
    for (name, avro) in key {
        if nullable(&avro).is_some() {
            return Err(SqlError::NullableKey {
                table: t.name.clone(),
                field: name,
            });
        }
        out.push(Column {
            name,
            avro,
            key: true,
        });
    }
    for (name, avro) in value {
        if !out.iter().any(|c| c.name == name) {
            out.push(Column {
                name,
                avro,
                key: false,
            });
        }
    }
    Ok(out)
}

/// The non-null branch of a `["null", X]` union.
fn nullable(avro: &Value) -> Option<&Value> {
    let branches = avro.as_array()?;
    match branches.as_slice() {
        [a, b] if a == "null" => Some(b),
        [a, b] if b == "null" => Some(a),
        _ => None,
    }
}

/// A SQL identifier in backquotes (Flink) or double quotes (PostgreSQL).
fn quoted(name: &str, quote: char) -> String {
    let doubled = name.replace(quote, &format!("{quote}{quote}"));
    format!("{quote}{doubled}{quote}")
}

/// A SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The Flink type of an Avro type: `NOT NULL` unless it is a `["null", X]` union.
fn flink_type(avro: &Value) -> Option<String> {
    match nullable(avro) {
        Some(inner) => flink_base(inner),
        None => flink_base(avro).map(|t| format!("{t} NOT NULL")),
    }
}

fn flink_base(avro: &Value) -> Option<String> {
    let logical = avro.get("logicalType").and_then(Value::as_str);
    let ty = avro.get("type").unwrap_or(avro);
    Some(match (ty.as_str()?, logical) {
        (_, Some("timestamp-millis")) => "TIMESTAMP(3)".into(),
        ("string", _) => "STRING".into(),
        ("long", _) => "BIGINT".into(),
        ("int", _) => "INT".into(),
        ("double", _) => "DOUBLE".into(),
        ("float", _) => "FLOAT".into(),
        ("boolean", _) => "BOOLEAN".into(),
        ("map", _) => format!("MAP<STRING NOT NULL, {}>", flink_type(&avro["values"])?),
        ("array", _) => format!("ARRAY<{}>", flink_type(&avro["items"])?),
        ("record", _) => {
            let fields: Option<Vec<String>> = avro["fields"]
                .as_array()?
                .iter()
                .map(|f| {
                    let name = quoted(f["name"].as_str()?, '`');
                    Some(format!("{name} {}", flink_type(&f["type"])?))
                })
                .collect();
            format!("ROW<{}>", fields?.join(", "))
        }
        _ => return None,
    })
}

/// The Flink `CREATE TABLE` of `t`: an `upsert-kafka` table with the key fields as primary
/// key, both formats `avro-confluent`, read `read_committed` from the earliest offset.
pub fn flink_table(t: &TopicTable, c: &FlinkConnection) -> Result<String, SqlError> {
    let columns = columns(t)?;
    let mut lines = Vec::new();
    for col in &columns {
        let ty = flink_type(&col.avro).ok_or_else(|| SqlError::Unmapped {
            table: t.name.clone(),
            field: col.name.clone(),
            avro: col.avro.to_string(),
            dialect: "Flink SQL",
        })?;
        lines.push(format!("  {} {ty}", quoted(&col.name, '`')));
    }
    let key: Vec<String> = columns
        .iter()
        .filter(|c| c.key)
        .map(|c| quoted(&c.name, '`'))
        .collect();
    lines.push(format!("  PRIMARY KEY ({}) NOT ENFORCED", key.join(", ")));
    let options = [
        ("connector", "upsert-kafka"),
        ("topic", &t.topic),
        ("properties.bootstrap.servers", &c.bootstrap_servers),
        ("properties.isolation.level", "read_committed"),
        ("key.format", "avro-confluent"),
        ("key.avro-confluent.url", &c.registry_url),
        ("value.format", "avro-confluent"),
        ("value.avro-confluent.url", &c.registry_url),
        ("value.fields-include", "EXCEPT_KEY"),
    ];
    let options: Vec<String> = options
        .iter()
        .map(|(k, v)| format!("  {} = {}", literal(k), literal(v)))
        .collect();
    Ok(format!(
        "CREATE TABLE {} (\n{}\n) WITH (\n{}\n);\n",
        quoted(&t.name, '`'),
        lines.join(",\n"),
        options.join(",\n")
    ))
}

/// The PostgreSQL table the shipped sink of `t` (`deploy/connect/sinks/<name>.json`,
/// `collection.name.format`) writes: `warehouse.<name>`.
pub fn postgres_table_name(t: &TopicTable) -> String {
    format!("{}.{}", quoted("warehouse", '"'), quoted(&t.name, '"'))
}

/// The PostgreSQL type of an Avro type: `NOT NULL` unless it is a `["null", X]` union.
fn postgres_type(avro: &Value) -> Option<String> {
    match nullable(avro) {
        Some(inner) => postgres_base(inner),
        None => postgres_base(avro).map(|t| format!("{t} NOT NULL")),
    }
}

fn postgres_base(avro: &Value) -> Option<String> {
    let logical = avro.get("logicalType").and_then(Value::as_str);
    let ty = avro.get("type").unwrap_or(avro);
    Some(match (ty.as_str()?, logical) {
        (_, Some("timestamp-millis")) => "timestamp(6)".into(),
        ("string", _) => "text".into(),
        ("long", _) => "bigint".into(),
        ("int", _) => "integer".into(),
        ("double", _) => "double precision".into(),
        ("float", _) => "real".into(),
        ("boolean", _) => "boolean".into(),
        // maps and arrays: the shipped sinks drop them (their `_json` twins carry the same)
        _ => return None,
    })
}

/// The PostgreSQL `CREATE TABLE` of `t` as the shipped JDBC sink, upserting by the record
/// key, creates it (key columns as primary key). Maps and arrays, which the shipped sinks
/// drop (their JSON-text twins `<name>_json` are kept), are left out, each with a comment.
pub fn postgres_table(t: &TopicTable) -> Result<String, SqlError> {
    let columns = columns(t)?;
    let mut lines = Vec::new();
    let mut skipped = Vec::new();
    for col in &columns {
        match postgres_type(&col.avro) {
            Some(ty) => lines.push(format!("  {} {ty}", quoted(&col.name, '"'))),
            None => skipped.push(format!(
                "-- {}: left out (the sink drops an Avro {}; see {0}_json)\n",
                col.name,
                col.avro["type"].as_str().unwrap_or("union")
            )),
        }
    }
    let key: Vec<String> = columns
        .iter()
        .filter(|c| c.key)
        .map(|c| quoted(&c.name, '"'))
        .collect();
    lines.push(format!("  PRIMARY KEY ({})", key.join(", ")));
    Ok(format!(
        "-- topic {}\n{}CREATE TABLE IF NOT EXISTS {} (\n{}\n);\n",
        t.topic,
        skipped.concat(),
        postgres_table_name(t),
        lines.join(",\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn contacts() -> TopicTable {
        Config::default()
            .topic_tables()
            .into_iter()
            .find(|t| t.name == "contacts")
            .unwrap()
    }

    fn connection() -> FlinkConnection {
        FlinkConnection {
            bootstrap_servers: "k:9092".into(),
            registry_url: "http://r/apis/ccompat/v7".into(),
        }
    }

    #[test]
    fn every_fixed_topic_is_listed_with_the_configured_names() {
        let mut config = Config::default();
        config.topics.prefix = "acme".into();
        let names: Vec<(String, String)> = config
            .topic_tables()
            .into_iter()
            .map(|t| (t.name, t.topic))
            .collect();
        assert!(names.contains(&("contacts".into(), "acme.contacts".into())));
        assert!(names.contains(&("inboxes".into(), "acme.inboxes".into())));
        assert!(names.contains(&("conversations".into(), "acme.conversations".into())));
        assert_eq!(names.len(), 8, "{names:?}");
    }

    #[test]
    fn a_flink_table_has_the_key_as_primary_key_and_typed_columns() {
        let ddl = flink_table(&contacts(), &connection()).unwrap();
        assert!(ddl.starts_with("CREATE TABLE `contacts` (\n  `contact_id` STRING NOT NULL,\n  `queued_at` TIMESTAMP(3) NOT NULL,"), "{ddl}");
        assert!(ddl.contains("  `ended_at` TIMESTAMP(3),\n"), "{ddl}");
        assert!(ddl.contains("  `wait_time_sec` DOUBLE,\n"), "{ddl}");
        assert!(
            ddl.contains("  `extra` MAP<STRING NOT NULL, STRING NOT NULL> NOT NULL,\n"),
            "{ddl}"
        );
        assert!(
            ddl.contains("PRIMARY KEY (`contact_id`) NOT ENFORCED"),
            "{ddl}"
        );
        assert!(
            ddl.contains("'value.fields-include' = 'EXCEPT_KEY'"),
            "{ddl}"
        );
        assert!(ddl.contains("'key.avro-confluent.url' = 'http://r/apis/ccompat/v7'"));
        assert_eq!(
            ddl.matches("`contact_id`").count(),
            2,
            "once as column, once in the key"
        );
    }

    #[test]
    fn arrays_and_records_map_to_flink_arrays_and_rows() {
        let t = Config::default()
            .topic_tables()
            .into_iter()
            .find(|t| t.name == "conversations")
            .unwrap();
        let ddl = flink_table(&t, &connection()).unwrap();
        assert!(
            ddl.contains("`topic_ids` ARRAY<STRING NOT NULL> NOT NULL"),
            "{ddl}"
        );
        assert!(
            ddl.contains(
                "`custom_attributes` ARRAY<ROW<`id` STRING NOT NULL, `value` STRING> NOT NULL> NOT NULL"
            ),
            "{ddl}"
        );
    }

    #[test]
    fn a_nullable_key_field_has_no_table() {
        let t = TopicTable {
            name: "ws".into(),
            topic: "t".into(),
            key_schema: r#"{"type":"record","name":"K","fields":[{"name":"a","type":"string"},{"name":"b","type":["null","string"]}]}"#,
            value_schema: r#"{"type":"record","name":"V","fields":[]}"#,
        };
        let e = flink_table(&t, &connection()).unwrap_err();
        assert!(
            matches!(e, SqlError::NullableKey { ref field, .. } if field == "b"),
            "{e}"
        );
    }

    #[test]
    fn literals_and_identifiers_are_escaped() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(quoted("a`b", '`'), "`a``b`");
    }

    #[test]
    fn a_postgres_table_is_the_shipped_sinks_and_keeps_the_key() {
        let ddl = postgres_table(&contacts()).unwrap();
        assert!(
            ddl.contains("CREATE TABLE IF NOT EXISTS \"warehouse\".\"contacts\" ("),
            "{ddl}"
        );
        assert!(ddl.contains("\"contact_id\" text NOT NULL"), "{ddl}");
        assert!(ddl.contains("\"ended_at\" timestamp(6),"), "{ddl}");
        assert!(ddl.contains("-- extra: left out"), "{ddl}");
        assert!(ddl.contains("\"extra_json\" text NOT NULL"), "{ddl}");
        assert!(ddl.contains("PRIMARY KEY (\"contact_id\")"), "{ddl}");
    }
}
