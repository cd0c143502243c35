//! The pure core, no I/O: rows to keyed Avro records, tombstones and dead letters, per report.
//!
//! A [`Converter`] is built once per report (schema ids, timezone, aggregation level); each
//! report response gets a [`WindowConverter`] from [`Converter::window`], which is fed every
//! row with [`WindowConverter::push`] and closed with [`WindowConverter::finish`] (work
//! sessions emit their deferred tombstones there). Keys and values come out in the Confluent
//! wire format (magic 0, big-endian schema id, Avro binary) of the schemas in `schemas/`.
//!
//! Rows that cannot be converted (a key column missing or empty, a typed cell that parses as
//! nothing accepted) become [`DeadLetter`]s carrying the raw row and a precise reason.
//!
//! [`conversations`] does the same for GET Conversation answers: which conversations a
//! work-session window triggers, and their records; [`dimensions`] the records of the list
//! endpoints (agents, inboxes, teams, topics).

pub mod avro;
pub mod changes;
mod columns;
pub mod decode;
pub mod derived;
pub mod parse;
pub mod schemas;
pub mod sql;

mod agent_summary;
mod contacts;
pub mod conversations;
mod dead_letter;
pub mod dimensions;
pub mod events;
mod record;
mod row_ctx;
mod work_sessions;

use std::sync::{Arc, Mutex};

pub use conversations::{ConversationEncoder, EndedContact, EndedConversations};
pub use dead_letter::{
    encode_dead_letter, encode_dead_letter_of, CUT_CELL_BYTES, DEAD_LETTER_RAW_BUDGET,
};
pub use dimensions::DimensionEncoder;
pub use events::{EventEncoder, EventRecord};
pub use record::{DeadLetter, Output, Record, SchemaIds, WindowMeta, MAX_RECORD_BYTES};

use crate::report::{BuiltIn, DerivedFormat, Report, Row, TypedFormat};
use columns::{Field, Layout, Val, MAX_FIELDS};
use derived::{DerivedConverter, DerivedSchema};
use parse::Zone;
use record::within_size;
use row_ctx::Ctx;

/// How one report's cells are interpreted.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertSettings {
    /// Timezone of date-only and offset-less date-times in the date-range reports (the
    /// request's `timezone`). Ignored for work sessions, whose offset-less times are UTC.
    pub timezone: chrono_tz::Tz,
    /// Agent Summary's `aggregationLevel`, part of its key; `None` means Gladly's default
    /// `daily`. Ignored by the other reports.
    pub aggregation_level: Option<String>,
}

impl Default for ConvertSettings {
    fn default() -> Self {
        ConvertSettings {
            timezone: chrono_tz::UTC,
            aggregation_level: None,
        }
    }
}

/// Converts one report's rows; cheap to clone and share between threads.
#[derive(Debug, Clone)]
pub struct Converter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    report: Report,
    format: Conversion,
    zone: Zone,
    aggregation_level: String,
    ids: SchemaIds,
    fields: &'static [Field],
    /// Cleared work-session states, reused by later windows (saves re-growing them).
    spare_sessions: Mutex<Vec<work_sessions::State>>,
}

/// Which conversion a converter runs.
#[derive(Debug)]
enum Conversion {
    Typed(TypedFormat),
    Derived(DerivedConverter),
}

impl Converter {
    /// A converter for the built-in `report` writing with the registry `ids` of its topic's
    /// schemas. Panics for a report that is not built in (see [`Converter::derived`]).
    pub fn new(report: Report, settings: ConvertSettings, ids: SchemaIds) -> Converter {
        let format = BuiltIn::named(report)
            .unwrap_or_else(|| panic!("{report} is not a built-in report"))
            .format;
        // work-session times without an offset are UTC: the endpoint takes no timezone
        let zone = match format {
            TypedFormat::WorkSessions => Zone::Utc,
            TypedFormat::Contacts | TypedFormat::AgentSummary => Zone::from_tz(settings.timezone),
        };
        let fields = match format {
            TypedFormat::WorkSessions => work_sessions::FIELDS,
            TypedFormat::Contacts => contacts::FIELDS,
            TypedFormat::AgentSummary => agent_summary::FIELDS,
        };
        Converter::with(
            report,
            Conversion::Typed(format),
            zone,
            settings,
            ids,
            fields,
        )
    }

    /// A converter for a report configured by columns, writing `schema` (one version of its
    /// value schema) with the registry `ids`.
    pub fn derived(
        report: Report,
        format: DerivedFormat,
        schema: Arc<DerivedSchema>,
        timezone: chrono_tz::Tz,
        ids: SchemaIds,
    ) -> Converter {
        let zone = Zone::from_tz(timezone);
        let conversion = Conversion::Derived(DerivedConverter::new(
            schema, format, zone, ids.key, ids.value,
        ));
        let settings = ConvertSettings {
            timezone,
            aggregation_level: None,
        };
        Converter::with(report, conversion, zone, settings, ids, &[])
    }

    fn with(
        report: Report,
        format: Conversion,
        zone: Zone,
        settings: ConvertSettings,
        ids: SchemaIds,
        fields: &'static [Field],
    ) -> Converter {
        Converter {
            inner: Arc::new(Inner {
                report,
                format,
                zone,
                aggregation_level: settings
                    .aggregation_level
                    .unwrap_or_else(|| "daily".to_string()),
                ids,
                fields,
                spare_sessions: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The registry ids it writes with.
    pub fn ids(&self) -> SchemaIds {
        self.inner.ids
    }

    /// The report this converter is for.
    pub fn report(&self) -> Report {
        self.inner.report
    }

    /// A fresh converter for the rows of one window response.
    pub fn window(&self, meta: WindowMeta) -> WindowConverter {
        let mut meta_bytes = Vec::with_capacity(30);
        for t in [meta.fetched_at, meta.window_start, meta.window_end] {
            avro::long(&mut meta_bytes, t.timestamp_millis());
        }
        WindowConverter {
            inner: Arc::clone(&self.inner),
            meta_bytes,
            layout: None,
            derived_layout: None,
            sessions: self
                .inner
                .spare_sessions
                .lock()
                .map(|mut spare| spare.pop())
                .ok()
                .flatten()
                .unwrap_or_default(),
        }
    }
}

/// Converts the rows of one window response; see the module docs.
#[derive(Debug)]
pub struct WindowConverter {
    inner: Arc<Inner>,
    /// `fetched_at`, `window_start`, `window_end`, already encoded (every value ends with them).
    meta_bytes: Vec<u8>,
    layout: Option<Layout>,
    derived_layout: Option<derived::DerivedLayout>,
    sessions: work_sessions::State,
}

impl WindowConverter {
    /// Converts one row, appending its record or dead letter to `out`.
    pub fn push(&mut self, row: &Row, out: &mut Vec<Output>) {
        let inner = &*self.inner;
        let format = match &inner.format {
            Conversion::Derived(c) => {
                return derived::push(c, &mut self.derived_layout, row, &self.meta_bytes, out)
            }
            Conversion::Typed(t) => *t,
        };
        let sessions = format == TypedFormat::WorkSessions;
        if !self.layout.as_ref().is_some_and(|l| l.is_for(row.header())) {
            self.layout = Some(Layout::new(inner.fields, Arc::clone(row.header())));
        }
        let layout = self.layout.as_ref().expect("layout set above");
        let ctx = Ctx {
            ids: inner.ids,
            fields: inner.fields,
            aggregation_level: &inner.aggregation_level,
            layout,
            meta_bytes: &self.meta_bytes,
        };
        let mut vals = [Val::Null; MAX_FIELDS];
        let parsed = layout.parse(inner.fields, row, inner.zone, &mut vals);
        let result = match parsed {
            Err(reason) => Err(reason),
            Ok(()) => match format {
                TypedFormat::WorkSessions => work_sessions::convert(&ctx, row, &vals),
                TypedFormat::Contacts => contacts::convert(&ctx, row, &vals),
                TypedFormat::AgentSummary => agent_summary::convert(&ctx, row, &vals),
            },
        }
        .and_then(within_size);
        match result {
            Ok(record) => {
                if sessions {
                    self.sessions.seen(&vals, &record);
                }
                out.push(Output::Record(record));
            }
            Err(reason) => {
                if sessions {
                    self.sessions.poison(layout, row);
                }
                out.push(dead_letter::of_row(row, reason));
            }
        }
    }

    /// Ends the window: appends the work-session tombstones deferred until every row of each
    /// contact was seen (nothing for the other reports).
    pub fn finish(mut self, out: &mut Vec<Output>) {
        if matches!(
            self.inner.format,
            Conversion::Typed(TypedFormat::WorkSessions)
        ) {
            self.sessions.finish(self.inner.ids.key, out);
            if let Ok(mut spare) = self.inner.spare_sessions.lock() {
                if spare.len() < 4 {
                    spare.push(std::mem::take(&mut self.sessions));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
