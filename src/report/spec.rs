//! What a report *is*: one [`ReportSpec`] per report, and the one table of the built-in
//! reports ([`BUILT_IN`]) and of the presets for reports configured by columns ([`PRESETS`]).
//!
//! Everything that differs between reports (the request, the window kind and its buckets,
//! the key and anchor columns, the conversion, the schemas, the topic) is read from here; the
//! rest of the code plans, requests, converts and publishes any spec the same way.

use super::name::Report;

/// How Gladly is asked for a report's rows, which also decides the window kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// `POST /api/v1/reports/work-session-events`: an instant range (minute precision),
    /// polled by instants behind a checkpoint with a lookback.
    WorkSessionEvents,
    /// `POST /api/v1/reports` with a `metricSet`: whole dates in a timezone, polled by days
    /// (or by `aggregation_level` buckets) with a trailing horizon.
    MetricSet {
        /// Gladly's `metricSet` name.
        metric_set: String,
        /// `aggregationLevel` of a bucketed report (part of its key); `None` for the others.
        aggregation_level: Option<String>,
        /// Gladly also serves it over instants (`startAtTime`/`endAtTime`), so a day too
        /// big for one answer can be split in halves.
        time_precise: bool,
        /// Gladly takes only a time range for it: every window is sent as the instants it
        /// spans (`startAtTime`/`endAtTime`), still polled and checkpointed by days.
        time_range: bool,
        /// Gladly's `filters` object, sent as given (`None`: no filter).
        filters: Option<serde_json::Value>,
    },
}

/// The hand-written conversions of the built-in reports, each with its own value schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypedFormat {
    /// One record per work session (contact × agent); a tombstone for a contact's
    /// placeholder once its work sessions exist.
    WorkSessions,
    /// One record per contact.
    Contacts,
    /// One record per agent × bucket.
    AgentSummary,
}

/// A report configured by columns: its value schema is derived from the CSV header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedFormat {
    /// Columns whose cells make the key, in key order (header names).
    pub key: Vec<String>,
    /// The column whose date-time is the row's event time (the Kafka record timestamp, and
    /// what places the key inside a re-read horizon).
    pub anchor: String,
}

/// How a report's rows become records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// A built-in conversion with a schema of `schemas/`.
    Typed(TypedFormat),
    /// A schema derived from the header (see `records::derived`).
    Derived(DerivedFormat),
}

/// Everything about one report that the pipeline needs, resolved from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSpec {
    /// The report's name.
    pub report: Report,
    /// How it is requested.
    pub source: Source,
    /// How its rows are converted.
    pub format: Format,
    /// The timezone of its dates and offset-less date-times (UTC for work sessions).
    pub timezone: chrono_tz::Tz,
    /// The compacted topic it publishes to.
    pub topic: String,
}

impl ReportSpec {
    /// True when the report is polled by instants (the work-session endpoint), false when by
    /// dates.
    pub fn by_instants(&self) -> bool {
        matches!(self.source, Source::WorkSessionEvents)
    }

    /// The `metricSet` of a date report.
    pub fn metric_set(&self) -> Option<&str> {
        match &self.source {
            Source::WorkSessionEvents => None,
            Source::MetricSet { metric_set, .. } => Some(metric_set),
        }
    }

    /// True when a single capped day can be split into instants.
    pub fn time_precise(&self) -> bool {
        matches!(
            self.source,
            Source::MetricSet {
                time_precise: true,
                ..
            } | Source::MetricSet {
                time_range: true,
                ..
            }
        )
    }

    /// The columns an answer must have to be this report: each entry lists the header names
    /// that can fill it (preferred first), compared with [`super::normalize_column`]. A body
    /// whose header lacks one of them is not the report (an error page, another report).
    pub fn required_columns(&self) -> Vec<Vec<String>> {
        match &self.format {
            Format::Typed(t) => BuiltIn::of(*t).required_columns(),
            Format::Derived(d) => d
                .key
                .iter()
                .chain(std::iter::once(&d.anchor))
                .map(|c| vec![c.clone()])
                .collect(),
        }
    }

    /// True when the report's rows name the contacts whose conversations `[conversations]`
    /// fetches (the work-session rows).
    pub fn feeds_conversations(&self) -> bool {
        self.format == Format::Typed(TypedFormat::WorkSessions)
    }
}

/// A built-in report: the defaults its `[reports.<name>]` section starts from.
#[derive(Debug, Clone, Copy)]
pub struct BuiltIn {
    /// Its name.
    pub report: Report,
    /// Its conversion.
    pub format: TypedFormat,
    /// `None` for the work-session endpoint, else the default `metricSet`.
    pub metric_set: Option<&'static str>,
    /// The default `aggregationLevel` of a bucketed report.
    pub aggregation_level: Option<&'static str>,
    /// Gladly serves it over instants too (see [`Source::MetricSet`]).
    pub time_precise: bool,
    /// Its topic's name after `<prefix>.`. Work sessions publish to `work_sessions.v3`: their
    /// key changed in v2 and again in v3 (no nullable key field), and keys of different schemas
    /// never compact together.
    pub topic: &'static str,
    /// The columns an answer must have (see [`ReportSpec::required_columns`]).
    pub required: &'static [&'static [&'static str]],
    /// Its key schema (`schemas/<name>-key.avsc`).
    pub key_schema: &'static str,
    /// Its value schema (`schemas/<name>-value.avsc`).
    pub value_schema: &'static str,
}

/// The Contact Export metric set Gladly documents today.
pub const CONTACT_EXPORT: &str = "ContactExportReportV3";
/// The Agent Summary metric set Gladly documents today.
pub const AGENT_SUMMARY: &str = "AgentSummaryV2";

/// The built-in reports, in a stable order: work sessions, contacts, agent summary.
pub const BUILT_IN: [BuiltIn; 3] = [
    BuiltIn {
        report: Report::WORK_SESSIONS,
        format: TypedFormat::WorkSessions,
        metric_set: None,
        aggregation_level: None,
        time_precise: false,
        topic: "work_sessions.v3",
        required: &[
            &["contact_session_id"],
            &["contact_session_ended_at", "contact_session_created_at"],
        ],
        key_schema: include_str!("../../schemas/work_sessions-key.avsc"),
        value_schema: include_str!("../../schemas/work_sessions-value.avsc"),
    },
    BuiltIn {
        report: Report::CONTACTS,
        format: TypedFormat::Contacts,
        metric_set: Some(CONTACT_EXPORT),
        aggregation_level: None,
        time_precise: true,
        topic: "contacts",
        required: &[&["Contact ID"], &["Queued At"]],
        key_schema: include_str!("../../schemas/contacts-key.avsc"),
        value_schema: include_str!("../../schemas/contacts-value.avsc"),
    },
    BuiltIn {
        report: Report::AGENT_SUMMARY,
        format: TypedFormat::AgentSummary,
        metric_set: Some(AGENT_SUMMARY),
        aggregation_level: Some("daily"),
        time_precise: false,
        topic: "agent_summary",
        required: &[&["Agent ID", "ID"], &["Bucket Beginning", "Bucket Start"]],
        key_schema: include_str!("../../schemas/agent_summary-key.avsc"),
        value_schema: include_str!("../../schemas/agent_summary-value.avsc"),
    },
];

impl BuiltIn {
    /// The built-in report named `report`, if it is one.
    pub fn named(report: Report) -> Option<&'static BuiltIn> {
        BUILT_IN.iter().find(|b| b.report == report)
    }

    /// [`BuiltIn::required`], owned (see [`ReportSpec::required_columns`]).
    pub fn required_columns(&self) -> Vec<Vec<String>> {
        self.required
            .iter()
            .map(|alts| alts.iter().map(|c| c.to_string()).collect())
            .collect()
    }

    /// The built-in report converted by `format`.
    pub fn of(format: TypedFormat) -> &'static BuiltIn {
        BUILT_IN
            .iter()
            .find(|b| b.format == format)
            .expect("every typed format is a built-in report's")
    }
}

/// A Gladly report known by name, to configure with `preset = "<name>"` under
/// `[reports.<any name>]`: its `metricSet`, key and anchor columns. See the book, docs/configured-reports.md "Presets".
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    /// The value of `preset`.
    pub name: &'static str,
    /// Gladly's `metricSet`.
    pub metric_set: &'static str,
    /// The columns that identify a row (for event-grain reports: the event's columns). The
    /// first one must have a value in every row; the others may be empty.
    pub key: &'static [&'static str],
    /// The row's event time.
    pub anchor: &'static str,
    /// Requested by a time range only (see [`Source::MetricSet`]).
    pub time_range: bool,
}

/// The presets, by name.
pub const PRESETS: [Preset; 4] = [
    Preset {
        name: "conversation_export",
        metric_set: "ConversationExportReport",
        key: &["Conversation ID"],
        anchor: "Created At",
        time_range: false,
    },
    Preset {
        name: "contact_timestamps",
        metric_set: "ContactTimestampsReport",
        key: &["Contact ID", "Event Type", "Timestamp"],
        anchor: "Timestamp",
        time_range: false,
    },
    Preset {
        name: "conversation_timestamps",
        metric_set: "ConversationTimestampsReport",
        key: &["Conversation ID", "Event Type", "Timestamp"],
        anchor: "Timestamp",
        time_range: false,
    },
    Preset {
        name: "work_session_events_v4",
        metric_set: "WorkSessionEventsReportV4",
        key: &["contact_session_id", "agent_id"],
        anchor: "contact_session_created_at",
        // a peer's client requests it by time range ("some metric sets only accept a time
        // range"); unconfirmed by Gladly's documentation
        time_range: true,
    },
];

impl Preset {
    /// The preset named `name`.
    pub fn named(name: &str) -> Option<&'static Preset> {
        PRESETS.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_of_built_in_reports_follows_their_names() {
        let reports: Vec<Report> = BUILT_IN.iter().map(|b| b.report).collect();
        assert_eq!(reports, Report::BUILT_IN);
    }

    #[test]
    fn every_typed_format_belongs_to_one_built_in_report() {
        for b in BUILT_IN {
            assert_eq!(BuiltIn::of(b.format).report, b.report);
            assert_eq!(BuiltIn::named(b.report).unwrap().format, b.format);
        }
    }

    #[test]
    fn a_derived_report_requires_its_key_and_anchor_columns() {
        let spec = ReportSpec {
            report: Report::named("conversation_export").unwrap(),
            source: Source::MetricSet {
                metric_set: "ConversationExportReport".into(),
                aggregation_level: None,
                time_precise: false,
                time_range: false,
                filters: None,
            },
            format: Format::Derived(DerivedFormat {
                key: vec!["Conversation ID".into()],
                anchor: "Created At".into(),
            }),
            timezone: chrono_tz::UTC,
            topic: "gladly.conversation_export".into(),
        };
        assert_eq!(
            spec.required_columns(),
            [
                vec!["Conversation ID".to_string()],
                vec!["Created At".into()]
            ]
        );
        assert!(!spec.by_instants() && !spec.time_precise() && !spec.feeds_conversations());
    }

    #[test]
    fn work_sessions_are_polled_by_instants_and_feed_the_conversations() {
        let spec = ReportSpec {
            report: Report::WORK_SESSIONS,
            source: Source::WorkSessionEvents,
            format: Format::Typed(TypedFormat::WorkSessions),
            timezone: chrono_tz::UTC,
            topic: "gladly.work_sessions.v3".into(),
        };
        assert!(spec.by_instants() && spec.feeds_conversations());
        assert_eq!(spec.metric_set(), None);
    }
}
