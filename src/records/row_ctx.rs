//! [`Ctx`]: what the typed reports' conversions (work sessions, contacts, agent summary)
//! share for one row, and the key and value framing they all write.

use super::columns::{Field, Layout, Val};
use super::record::SchemaIds;
use super::{avro, changes};
use crate::report::Row;

/// What the per-report conversions share for one row.
pub(super) struct Ctx<'a> {
    /// The registry ids the key and value are written with.
    pub(super) ids: SchemaIds,
    /// The report's typed fields.
    pub(super) fields: &'static [Field],
    /// Agent Summary's `aggregationLevel` (part of its key).
    pub(super) aggregation_level: &'a str,
    /// Where the fields and the extra columns sit in this answer's header.
    pub(super) layout: &'a Layout,
    /// The window metadata, already encoded (every value ends with it).
    pub(super) meta_bytes: &'a [u8],
}

impl Ctx<'_> {
    /// A value buffer with the Confluent header and the typed fields written.
    pub(super) fn value_start(&self, row: &Row, vals: &[Val<'_>]) -> Vec<u8> {
        // Room for every cell's text plus framing, and the extra columns' names and cells
        // again for extra_json, so the buffer is allocated once.
        let cells = row.record();
        let text = cells.as_slice().len();
        let extra_text = if self.layout.extra.is_empty() {
            0
        } else {
            text
        };
        let mut value = Vec::with_capacity(
            text + extra_text
                + 8 * cells.len()
                + 2 * self.layout.extra_name_bytes
                + 4 * self.layout.extra.len()
                + 64,
        );
        avro::header(&mut value, self.ids.value);
        Layout::encode_fields(&mut value, self.fields, vals);
        value
    }

    /// Writes `extra`, `extra_json` and the window metadata: the tail every value schema
    /// shares. Returns
    /// the value's fingerprint, taken before the metadata (which every read changes).
    pub(super) fn value_end(&self, value: &mut Vec<u8>, row: &Row) -> u64 {
        self.layout.encode_extra(value, row);
        let fingerprint = changes::fingerprint(value);
        value.extend_from_slice(self.meta_bytes);
        fingerprint
    }

    /// A key buffer with the Confluent header written.
    pub(super) fn key_start(&self) -> Vec<u8> {
        let mut key = Vec::with_capacity(128);
        avro::header(&mut key, self.ids.key);
        key
    }
}
