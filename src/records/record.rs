//! What conversions produce: a Kafka [`Record`] or a [`DeadLetter`] ([`Output`]), the
//! registry [`SchemaIds`] they are written with, the [`WindowMeta`] of the answer they come
//! from, and the size one Kafka message may take.

use chrono::{DateTime, Utc};

/// Most bytes a record's key and value may take together: under Kafka's default
/// `message.max.bytes` (1,000,000) with room for the headers. A row whose record would be
/// bigger becomes a dead letter, so one row can never keep its window from committing.
pub const MAX_RECORD_BYTES: usize = 900_000;

/// Registry ids of one topic's key and value schemas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SchemaIds {
    /// Id of the `<topic>-key` schema.
    pub key: u32,
    /// Id of the `<topic>-value` schema.
    pub value: u32,
}

/// The report window a response answers, and when it was fetched (copied into every value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowMeta {
    /// Start of the requested window.
    pub window_start: DateTime<Utc>,
    /// End of the requested window.
    pub window_end: DateTime<Utc>,
    /// When the response was fetched.
    pub fetched_at: DateTime<Utc>,
}

/// One Kafka record: key and value already in the Confluent wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Key bytes.
    pub key: Vec<u8>,
    /// Value bytes; `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    /// The row's event time (epoch millis), for the Kafka record timestamp.
    pub timestamp_ms: i64,
    /// The earliest anchor the key can have had (a work session's contact creation; else the
    /// timestamp): whether the changelog memory must know of it.
    pub since_ms: i64,
    /// [`changes::fingerprint`](super::changes::fingerprint) of the value without the fetch metadata;
    /// [`changes::TOMBSTONE`](super::changes::TOMBSTONE) for a tombstone.
    pub fingerprint: u64,
}

/// A row that could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// 1-based line of the row in the CSV body (0 when unknown).
    pub line: u64,
    /// What failed: the column, its value and the expected form.
    pub reason: String,
    /// The raw cells, `(column, cell)` in header order.
    pub raw: Vec<(String, String)>,
}

/// What a row turns into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A record (or tombstone) for the report's topic.
    Record(Record),
    /// A row for the dead-letter topic.
    DeadLetter(DeadLetter),
}

/// `record`, or why it cannot be one Kafka message.
pub(crate) fn within_size(record: Record) -> Result<Record, String> {
    let size = record.key.len() + record.value.as_ref().map_or(0, Vec::len);
    if size > MAX_RECORD_BYTES {
        Err(format!(
            "oversized record: its key and value would be {size} bytes, over the \
             {MAX_RECORD_BYTES} one Kafka message takes"
        ))
    } else {
        Ok(record)
    }
}
