//! The conversion of one configured report's rows into records of one schema version.

use std::sync::Arc;

use super::schema::{ColumnKind, DerivedColumn, DerivedSchema};
use crate::records::columns::preview;
use crate::records::dead_letter;
use crate::records::parse::{self, Zone};
use crate::records::record::{within_size, Output, Record};
use crate::records::{avro, changes};
use crate::report::{normalize_column, DerivedFormat, Header, Row};

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
                .columns()
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
        let key = self.key(layout, row)?;
        let at = self.anchor(layout, row)?;
        let mut value = Vec::with_capacity(row.record().as_slice().len() + 64);
        avro::header(&mut value, self.value_id);
        for (c, p) in self.schema.columns().iter().zip(&layout.columns) {
            encode_cell(&mut value, c, cell(row, *p), self.zone)?;
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

    /// The key: the key columns' cells, the first one required.
    fn key(&self, layout: &DerivedLayout, row: &Row) -> Result<Vec<u8>, String> {
        let mut key = Vec::with_capacity(64);
        avro::header(&mut key, self.key_id);
        for (i, (name, p)) in self.format.key.iter().zip(&layout.key).enumerate() {
            if p.is_none() {
                return Err(format!(
                    "key column `{name}` is missing from the report header"
                ));
            }
            let v = parse::trim(cell(row, *p));
            if v.is_empty() && i == 0 {
                return Err(format!(
                    "key column `{name}` is empty, but a value is required"
                ));
            }
            avro::string(&mut key, v);
        }
        Ok(key)
    }

    /// The anchor column's instant (epoch millis).
    fn anchor(&self, layout: &DerivedLayout, row: &Row) -> Result<i64, String> {
        let anchor = &self.format.anchor;
        let text = cell(row, layout.anchor);
        match parse::timestamp_millis(text, self.zone) {
            Ok(Some(ms)) => Ok(ms),
            Ok(None) if layout.anchor.is_none() => Err(format!(
                "anchor column `{anchor}` is missing from the report header"
            )),
            Ok(None) => Err(format!(
                "anchor column `{anchor}` is empty, but a value is required"
            )),
            Err(e) => Err(format!(
                "anchor column `{anchor}`: {:?} is {}",
                preview(text),
                e.what()
            )),
        }
    }
}

/// The cell at `p` (empty when the answer lacks the column).
fn cell(row: &Row, p: Option<usize>) -> &str {
    p.and_then(|p| row.field(p)).unwrap_or("")
}

/// Writes `text` as column `c`'s nullable field; the dead-letter reason when it does not parse.
fn encode_cell(
    value: &mut Vec<u8>,
    c: &DerivedColumn,
    text: &str,
    zone: Zone,
) -> Result<(), String> {
    let bad =
        |e: parse::Invalid| format!("column `{}`: {:?} is {}", c.header, preview(text), e.what());
    match c.kind {
        ColumnKind::Text if parse::trim(text).is_empty() => avro::null(value),
        ColumnKind::Text => {
            avro::some(value);
            avro::string(value, text);
        }
        ColumnKind::Timestamp | ColumnKind::Count => {
            let parsed = if c.kind == ColumnKind::Timestamp {
                parse::timestamp_millis(text, zone)
            } else {
                parse::count(text)
            };
            match parsed.map_err(bad)? {
                None => avro::null(value),
                Some(n) => {
                    avro::some(value);
                    avro::long(value, n);
                }
            }
        }
        ColumnKind::Seconds => match parse::seconds(text).map_err(bad)? {
            None => avro::null(value),
            Some(s) => {
                avro::some(value);
                avro::double(value, s);
            }
        },
    }
    Ok(())
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
    let result = converter.convert(l, row, meta_bytes).and_then(within_size);
    match result {
        Ok(r) => out.push(Output::Record(r)),
        Err(reason) => out.push(dead_letter::of_row(row, reason)),
    }
}
