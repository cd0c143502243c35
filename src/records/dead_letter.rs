//! Values for the dead-letter topic (`dead_letter-value.avsc`).

use std::collections::HashSet;

use super::avro;
use super::columns::raw_cells;
use super::record::{DeadLetter, Output, WindowMeta};
use crate::report::{Report, Row};

/// The dead letter of `row`, which could not be converted because of `reason`.
pub(crate) fn of_row(row: &Row, reason: String) -> Output {
    Output::DeadLetter(DeadLetter {
        line: row.line(),
        reason,
        raw: raw_cells(row),
    })
}

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

/// Most bytes a dead letter's column names (twice: `columns` and the `raw` map) and cells
/// may take. A bigger one keeps a cut copy ([`CUT_CELL_BYTES`] per cell), so every dead
/// letter fits in one Kafka message and the window it belongs to can commit.
pub const DEAD_LETTER_RAW_BUDGET: usize = 256 * 1024;
/// Bytes kept of each cell (and column name) of a dead letter over the budget.
pub const CUT_CELL_BYTES: usize = 1024;

/// Like [`encode_dead_letter`], for any source by name (e.g. `conversations`).
pub fn encode_dead_letter_of(
    source: &str,
    dl: &DeadLetter,
    meta: &WindowMeta,
    value_schema_id: u32,
) -> Vec<u8> {
    match bounded(dl) {
        Some(cut) => encode(source, &cut, meta, value_schema_id),
        None => encode(source, dl, meta, value_schema_id),
    }
}

/// A copy of `dl` cut to [`DEAD_LETTER_RAW_BUDGET`], its reason saying so; `None` when it
/// fits as it is.
fn bounded(dl: &DeadLetter) -> Option<DeadLetter> {
    let size: usize = dl.raw.iter().map(|(c, v)| 2 * c.len() + v.len()).sum();
    if size <= DEAD_LETTER_RAW_BUDGET {
        return None;
    }
    let (mut raw, mut used, mut dropped) = (Vec::new(), 0, 0);
    for (c, v) in &dl.raw {
        let (c, v) = (cut(c, CUT_CELL_BYTES), cut(v, CUT_CELL_BYTES));
        let add = 2 * c.len() + v.len();
        if used + add > DEAD_LETTER_RAW_BUDGET {
            dropped += 1;
            continue;
        }
        used += add;
        raw.push((c.to_string(), v.to_string()));
    }
    let dropped = match dropped {
        0 => String::new(),
        n => format!(", {n} cells left out"),
    };
    Some(DeadLetter {
        line: dl.line,
        reason: format!(
            "{}; raw cut to {CUT_CELL_BYTES} bytes per cell to fit one Kafka message \
             ({size} bytes of cells and column names{dropped})",
            dl.reason
        ),
        raw,
    })
}

/// `text` cut to at most `bytes` bytes, at a character boundary.
fn cut(text: &str, bytes: usize) -> &str {
    if text.len() <= bytes {
        return text;
    }
    let mut end = bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn encode(source: &str, dl: &DeadLetter, meta: &WindowMeta, value_schema_id: u32) -> Vec<u8> {
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
