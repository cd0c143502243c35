//! Values for the dead-letter topic (`dead_letter-value.avsc`).

use std::collections::HashSet;

use super::{avro, DeadLetter, WindowMeta};
use crate::report::Report;

/// Encodes a dead letter as a Confluent wire-format value of `dead_letter-value.avsc`.
/// `raw` keeps every column in `columns`; in the `raw` map a repeated column name keeps its
/// first cell (as [`crate::report::Header`] does).
pub fn encode_dead_letter(
    report: Report,
    dl: &DeadLetter,
    meta: &WindowMeta,
    value_schema_id: u32,
) -> Vec<u8> {
    encode_dead_letter_of(report.name(), dl, meta, value_schema_id)
}

/// Like [`encode_dead_letter`], for any source by name (e.g. `conversations`).
pub fn encode_dead_letter_of(
    source: &str,
    dl: &DeadLetter,
    meta: &WindowMeta,
    value_schema_id: u32,
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128 + dl.raw.len() * 32 + dl.reason.len());
    avro::header(&mut buf, value_schema_id);
    avro::string(&mut buf, source);
    avro::long(&mut buf, i64::try_from(dl.line).unwrap_or(i64::MAX));
    avro::string(&mut buf, &dl.reason);
    avro::string_array(&mut buf, dl.raw.iter().map(|(c, _)| c.as_str()));
    let mut seen = HashSet::with_capacity(dl.raw.len());
    let unique: Vec<(&str, &str)> = dl
        .raw
        .iter()
        .filter(|(c, _)| seen.insert(c.as_str()))
        .map(|(c, v)| (c.as_str(), v.as_str()))
        .collect();
    avro::string_map(&mut buf, unique.into_iter());
    for t in [meta.fetched_at, meta.window_start, meta.window_end] {
        avro::long(&mut buf, t.timestamp_millis());
    }
    buf
}
