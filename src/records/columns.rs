//! Typed columns: which CSV header names feed which Avro field, how a cell is parsed, and how
//! the parsed values are written. Each report declares its columns as a static [`Field`] table
//! in `.avsc` field order; a test checks the tables against the schema files.

use std::sync::Arc;

use super::avro;
use super::parse::{self, Zone};
use crate::report::{Header, Row};

/// How a column's cells are parsed and encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A required identifier: `string`, trimmed, must be non-empty.
    Id,
    /// An optional text: `["null","string"]`, raw text (empty = null).
    Str,
    /// An optional instant: `["null", timestamp-millis]`.
    Ts,
    /// A required instant: `timestamp-millis`.
    RequiredTs,
    /// An optional duration: `["null","double"]` seconds.
    Seconds,
    /// An optional count: `["null","long"]`.
    Count,
    /// An optional boolean: `["null","boolean"]`.
    Bool,
}

impl Kind {
    /// True for the kinds encoded without a null union.
    pub(crate) fn required(self) -> bool {
        matches!(self, Kind::Id | Kind::RequiredTs)
    }
}

/// One typed field fed from a CSV column.
#[derive(Debug)]
pub(crate) struct Field {
    /// Avro field name (the tables are checked against the `.avsc` files by it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub name: &'static str,
    /// Header names that feed it, preferred first (matched ignoring case and punctuation).
    pub columns: &'static [&'static str],
    /// How cells are parsed.
    pub kind: Kind,
}

/// A parsed cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Val<'a> {
    Null,
    Str(&'a str),
    Long(i64),
    Double(f64),
    Bool(bool),
}

impl<'a> Val<'a> {
    pub(crate) fn as_str(self) -> Option<&'a str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_long(self) -> Option<i64> {
        match self {
            Val::Long(v) => Some(v),
            _ => None,
        }
    }
}

/// The most typed fields any report has.
pub(crate) const MAX_FIELDS: usize = 24;

/// Header names compared ignoring case, spaces and punctuation: `Agent ID` = `agent_id`.
pub(crate) use crate::report::normalize_column as normalize;

/// Where each field's column sits in one response's header, and which columns are extra.
#[derive(Debug)]
pub(crate) struct Layout {
    header: Arc<Header>,
    /// Position of each field's column (by field index), `None` if the response lacks it.
    pub pos: Vec<Option<usize>>,
    /// Positions of columns no field claimed, in header order.
    pub extra: Vec<usize>,
    /// Total length of the extra columns' names (to size value buffers).
    pub extra_name_bytes: usize,
    /// Each extra column's name as a JSON string and `:`, for `extra_json` (escaped once per
    /// response, not once per row).
    extra_json_keys: Vec<Box<[u8]>>,
}

impl Layout {
    /// Matches `header` against `fields`. A column claimed by an earlier (preferred) name of
    /// the same field wins; any further matching column is kept as extra.
    pub(crate) fn new(fields: &[Field], header: Arc<Header>) -> Layout {
        let norm: Vec<String> = header.names().iter().map(|n| normalize(n)).collect();
        let mut pos = vec![None; fields.len()];
        for (f, field) in fields.iter().enumerate() {
            pos[f] = field.columns.iter().find_map(|c| {
                let c = normalize(c);
                (0..norm.len()).find(|&i| norm[i] == c && !pos[..f].contains(&Some(i)))
            });
        }
        let extra: Vec<usize> = (0..norm.len())
            .filter(|i| !pos.contains(&Some(*i)))
            .collect();
        let extra_name_bytes = extra.iter().map(|&p| header.names()[p].len() + 2).sum();
        let extra_json_keys = extra
            .iter()
            .map(|&p| {
                let mut k = Vec::new();
                avro::json_str(&mut k, &header.names()[p]);
                k.push(b':');
                k.into_boxed_slice()
            })
            .collect();
        Layout {
            header,
            pos,
            extra,
            extra_name_bytes,
            extra_json_keys,
        }
    }

    /// True if this layout was built for `header` (same allocation).
    pub(crate) fn is_for(&self, header: &Arc<Header>) -> bool {
        Arc::ptr_eq(&self.header, header)
    }

    /// Parses every field of `row` into `vals`; on failure, the dead-letter reason.
    pub(crate) fn parse<'r>(
        &self,
        fields: &[Field],
        row: &'r Row,
        zone: Zone,
        vals: &mut [Val<'r>; MAX_FIELDS],
    ) -> Result<(), String> {
        for (i, field) in fields.iter().enumerate() {
            let Some(p) = self.pos[i] else {
                if field.kind.required() {
                    return Err(format!(
                        "column `{}` is missing from the report header",
                        field.columns[0]
                    ));
                }
                vals[i] = Val::Null;
                continue;
            };
            let cell = row.field(p).unwrap_or("");
            let col = || self.header.names()[p].as_str();
            let bad = |e: parse::Invalid| {
                format!("column `{}`: {:?} is {}", col(), preview(cell), e.what())
            };
            vals[i] = match field.kind {
                Kind::Id => {
                    let t = parse::trim(cell);
                    if t.is_empty() {
                        return Err(format!(
                            "column `{}` is empty, but a value is required",
                            col()
                        ));
                    }
                    Val::Str(t)
                }
                Kind::Str => {
                    if parse::trim(cell).is_empty() {
                        Val::Null
                    } else {
                        Val::Str(cell)
                    }
                }
                Kind::Ts | Kind::RequiredTs => match parse::timestamp_millis(cell, zone) {
                    Ok(Some(ms)) => Val::Long(ms),
                    Ok(None) if field.kind == Kind::Ts => Val::Null,
                    Ok(None) => {
                        return Err(format!(
                            "column `{}` is empty, but a value is required",
                            col()
                        ))
                    }
                    Err(e) => return Err(bad(e)),
                },
                Kind::Seconds => match parse::seconds(cell) {
                    Ok(v) => v.map_or(Val::Null, Val::Double),
                    Err(e) => return Err(bad(e)),
                },
                Kind::Count => match parse::count(cell) {
                    Ok(v) => v.map_or(Val::Null, Val::Long),
                    Err(e) => return Err(bad(e)),
                },
                Kind::Bool => match parse::boolean(cell) {
                    Ok(v) => v.map_or(Val::Null, Val::Bool),
                    Err(e) => return Err(bad(e)),
                },
            };
        }
        Ok(())
    }

    /// Writes the typed fields, in order.
    pub(crate) fn encode_fields(buf: &mut Vec<u8>, fields: &[Field], vals: &[Val<'_>]) {
        for (field, v) in fields.iter().zip(vals) {
            let required = field.kind.required();
            match *v {
                Val::Null => avro::null(buf),
                Val::Str(s) => {
                    if !required {
                        avro::some(buf);
                    }
                    avro::string(buf, s);
                }
                Val::Long(l) => {
                    if !required {
                        avro::some(buf);
                    }
                    avro::long(buf, l);
                }
                Val::Double(d) => {
                    avro::some(buf);
                    avro::double(buf, d);
                }
                Val::Bool(b) => {
                    avro::some(buf);
                    avro::boolean(buf, b);
                }
            }
        }
    }

    /// Writes the `extra` map: unclaimed columns, then any cells beyond the header
    /// (named `column_<n>`, 1-based), so nothing is dropped; then `extra_json`, the same
    /// entries as one JSON object text.
    pub(crate) fn encode_extra(&self, buf: &mut Vec<u8>, row: &Row) {
        let names = self.header.names();
        let cells = row.record();
        let surplus = cells.len().saturating_sub(names.len());
        let n = self.extra.len() + surplus;
        if n > 0 {
            avro::long(buf, n as i64);
            for &p in &self.extra {
                avro::string(buf, &names[p]);
                avro::string(buf, cells.get(p).unwrap_or(""));
            }
            for p in names.len()..cells.len() {
                avro::string(buf, &format!("column_{}", p + 1));
                avro::string(buf, &cells[p]);
            }
        }
        avro::null(buf); // end of map blocks
        if n == 0 {
            avro::string(buf, "{}");
            return;
        }
        // the text's length when no cell needs escaping (surplus cells, rare, are guessed)
        let expected = 1
            + n
            + self
                .extra
                .iter()
                .zip(&self.extra_json_keys)
                .map(|(&p, k)| k.len() + cells.get(p).map_or(0, str::len) + 2)
                .sum::<usize>()
            + (names.len()..cells.len())
                .map(|p| cells[p].len() + 16)
                .sum::<usize>();
        avro::string_with(buf, expected, |buf| {
            let mut o = avro::JsonObject::open(buf);
            for (&p, key) in self.extra.iter().zip(&self.extra_json_keys) {
                o.entry_after(key, cells.get(p).unwrap_or(""));
            }
            for p in names.len()..cells.len() {
                o.entry(&format!("column_{}", p + 1), &cells[p]);
            }
            o.close();
        });
    }
}

/// Longest part of a cell quoted in a dead-letter reason (which also travels as the
/// `gladly.error` header): the raw row carries the whole cell.
const REASON_CELL_CHARS: usize = 120;

/// `cell`, cut to [`REASON_CELL_CHARS`] characters with an ellipsis.
pub(crate) fn preview(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.char_indices().nth(REASON_CELL_CHARS) {
        None => cell.into(),
        Some((at, _)) => format!("{}… ({} bytes)", &cell[..at], cell.len()).into(),
    }
}

/// The row's cells as `(column, cell)` pairs in header order, cells beyond the header named
/// `column_<n>`, columns without a cell given as empty text.
pub(crate) fn raw_cells(row: &Row) -> Vec<(String, String)> {
    let names = row.header().names();
    let cells = row.record();
    let mut out: Vec<(String, String)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), cells.get(i).unwrap_or("").to_string()))
        .collect();
    for p in names.len()..cells.len() {
        out.push((format!("column_{}", p + 1), cells[p].to_string()));
    }
    out
}
