//! `tail`: a topic read back as JSON lines, `read_committed`, its Avro decoded with the writer
//! schemas from the registry — what a consumer of the topic sees, without Confluent's tools.
//! `--upserted` prints instead what a warehouse that upserts by key holds: the last value per
//! key, keys whose last record is a tombstone left out.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::kafka::reader::{ReadError, ReadRecord, Start, TopicReader};
use crate::kafka::registry::{RegistryClient, RegistryError};
use crate::kafka::{KafkaSettings, RegistrySettings};
use crate::records::decode::{plain_json, schema_id, to_json};

/// What to read and how to print it.
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// The topic.
    pub topic: String,
    /// Read from the earliest record kept (else only what is committed from now on).
    pub from_beginning: bool,
    /// Keep reading new records (else stop at the end the topic had when reading began).
    pub follow: bool,
    /// Only records whose key matches.
    pub key: Option<KeyFilter>,
    /// Print the upserted view (last value per key, tombstoned keys dropped) at the end.
    pub upserted: bool,
}

/// `--key`: a JSON object whose fields the key must have with these values
/// (`{"contact_session_id":"c1"}`), or a text the key (or one of its fields) must equal.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyFilter {
    /// Fields the key must have.
    Fields(Map<String, Value>),
    /// A text the key or one of its fields equals.
    Text(String),
}

impl KeyFilter {
    /// Parses `--key`.
    pub fn parse(arg: &str) -> KeyFilter {
        match serde_json::from_str::<Value>(arg) {
            Ok(Value::Object(fields)) => KeyFilter::Fields(fields),
            _ => KeyFilter::Text(arg.to_string()),
        }
    }

    /// True when `key` (decoded) matches.
    pub fn matches(&self, key: &Value) -> bool {
        match (self, key) {
            (KeyFilter::Fields(want), Value::Object(have)) => {
                want.iter().all(|(k, v)| have.get(k) == Some(v))
            }
            (KeyFilter::Fields(_), _) => false,
            (KeyFilter::Text(t), Value::String(s)) => s == t,
            (KeyFilter::Text(t), Value::Object(fields)) => {
                fields.values().any(|v| v.as_str() == Some(t.as_str()))
            }
            (KeyFilter::Text(_), _) => false,
        }
    }
}

/// Why `tail` stopped.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// Nothing would be printed.
    #[error("nothing to read: without --from-beginning or --upserted only new records are shown, so add --follow (or read from the beginning)")]
    NothingToRead,
    /// `--upserted` prints once the end is reached, which `--follow` never does.
    #[error("--upserted prints the view at the end of the topic, which --follow never reaches: drop one of them")]
    UpsertedFollow,
    /// The topic could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The registry could not be reached.
    #[error("schema registry: {0}")]
    Registry(#[from] RegistryError),
    /// Writing the output failed (a closed pipe).
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
    /// The reader task failed.
    #[error("the topic reader stopped: {0}")]
    Task(String),
}

/// Reads the topic and writes JSON lines to `out`; returns the lines written.
pub async fn tail(
    kafka: &KafkaSettings,
    registry: &RegistrySettings,
    opts: &TailOptions,
    out: &mut (impl Write + Send),
) -> Result<u64, TailError> {
    if opts.upserted && opts.follow {
        return Err(TailError::UpsertedFollow);
    }
    let start = if opts.from_beginning || opts.upserted {
        Start::Beginning
    } else if opts.follow {
        Start::End
    } else {
        return Err(TailError::NothingToRead);
    };
    let decoder = Decoder {
        registry: RegistryClient::new(registry)?,
    };
    let mut records = spawn_reader(kafka.clone(), opts.topic.clone(), start, opts.follow);
    let mut view: BTreeMap<String, (Value, Value)> = BTreeMap::new();
    let mut lines = 0u64;
    while let Some(read) = records.recv().await {
        let r = read?;
        let key = decoder.decode(r.key.as_deref()).await;
        if opts.key.as_ref().is_some_and(|f| !f.matches(&key)) {
            continue;
        }
        let value = decoder.decode(r.value.as_deref()).await;
        if opts.upserted {
            let id = key.to_string();
            match value {
                Value::Null => view.remove(&id),
                value => view.insert(id, (key, value)),
            };
            continue;
        }
        writeln!(out, "{}", record_line(&r, key, value))?;
        out.flush()?;
        lines += 1;
    }
    for (_, (key, value)) in view {
        writeln!(out, "{}", json!({"key": key, "value": value}))?;
        lines += 1;
    }
    out.flush()?;
    Ok(lines)
}

/// One record as a JSON line: where it is, when, its key, value (null: a tombstone) and
/// headers.
fn record_line(r: &ReadRecord, key: Value, value: Value) -> Value {
    let headers: Map<String, Value> = r
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": r.timestamp_ms,
        "key": key,
        "value": value,
        "headers": headers,
    })
}

/// Reads the topic in a blocking task, handing records over a small channel.
fn spawn_reader(
    kafka: KafkaSettings,
    topic: String,
    start: Start,
    follow: bool,
) -> tokio::sync::mpsc::Receiver<Result<ReadRecord, TailError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    tokio::task::spawn_blocking(move || {
        let mut reader = match TopicReader::open(&kafka, &topic, start, follow, READ_TIMEOUT) {
            Ok(r) => r,
            Err(e) => return drop(tx.blocking_send(Err(e.into()))),
        };
        // on stderr, so a person (or a script) knows what is now being read
        tracing::info!(%topic, ?start, follow, "reading the topic");
        loop {
            let item = match reader.next_record() {
                Ok(Some(r)) => Ok(r),
                Ok(None) => return,
                Err(e) => Err(e.into()),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    rx
}

/// How long reading to the end of a topic may take.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Decodes keys and values: Confluent-framed Avro through the registry, anything else as JSON
/// or text.
struct Decoder {
    registry: RegistryClient,
}

impl Decoder {
    async fn decode(&self, bytes: Option<&[u8]>) -> Value {
        let Some(bytes) = bytes else {
            return Value::Null;
        };
        let Some(id) = schema_id(bytes) else {
            return plain_json(bytes);
        };
        let decoded = match self.registry.schema_by_id(id).await {
            Ok(schema) => to_json(bytes, &schema).map_err(|e| e.to_string()),
            Err(e) => Err(format!("schema {id}: {e}")),
        };
        decoded.unwrap_or_else(|why| {
            tracing::warn!(error = %why, "a message did not decode");
            json!({ "undecodable": why })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_filter_matches_fields_or_text() {
        let key = json!({"contact_session_id": "c1", "agent_id": "a1"});
        assert!(KeyFilter::parse(r#"{"contact_session_id":"c1"}"#).matches(&key));
        assert!(!KeyFilter::parse(r#"{"contact_session_id":"c2"}"#).matches(&key));
        assert!(KeyFilter::parse("a1").matches(&key));
        assert!(!KeyFilter::parse("c").matches(&key));
        assert!(KeyFilter::parse("run/contacts").matches(&json!("run/contacts")));
        // key v3: an agent-less work session's key has agent_id "", which a filter can name
        let agentless = json!({"contact_session_id": "c1", "agent_id": ""});
        assert!(
            KeyFilter::parse(r#"{"contact_session_id":"c1","agent_id":""}"#).matches(&agentless)
        );
        assert!(!KeyFilter::parse(r#"{"contact_session_id":"c1","agent_id":""}"#).matches(&key));
    }
}
