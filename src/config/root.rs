//! [`Config`]: the whole configuration, and what it says about each report (its spec, topic,
//! timezone, re-read tiers and cadence). Loading and validation are in `validate.rs`, the
//! request budget in `budget.rs`.

use serde::Deserialize;

use super::reports::{DateReportSettings, ReportsConfig};
use super::reread::{self, RereadTier, DATE_TIERS, WORK_SESSION_TIERS};
use super::sections::{
    ConversationsSettings, DimensionsSettings, ObserveSettings, PipelineSettings,
};
use crate::records::{schemas, sql::TopicTable};
use crate::report::{BuiltIn, DimensionList, Format, Report, ReportSpec, Source, BUILT_IN};

/// The whole configuration: one TOML file plus `GLADLY_KAFKA__…` overrides.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[gladly]`: organization host, credentials, pacing and retries.
    pub gladly: crate::gladly::GladlySettings,
    /// `[kafka]`: brokers, delivery mode, librdkafka pass-through.
    pub kafka: crate::kafka::KafkaSettings,
    /// `[registry]`: the Confluent-compatible schema registry.
    pub registry: crate::kafka::RegistrySettings,
    /// `[topics]`: names and creation settings.
    pub topics: crate::kafka::TopicSettings,
    /// `[reports.*]`: which reports, how often, how far back.
    pub reports: ReportsConfig,
    /// `[conversations]`: the optional conversations topic (GET Conversation).
    pub conversations: ConversationsSettings,
    /// `[dimensions]`: the optional agents, inboxes, teams and topics topics (list endpoints).
    pub dimensions: DimensionsSettings,
    /// `[events]`: the optional events topic (Gladly's Events API).
    pub events: super::events::EventsSettings,
    /// `[pipeline]`: row cap, window retries.
    pub pipeline: PipelineSettings,
    /// `[observe]`: metrics/health listener and log format.
    pub observe: ObserveSettings,
}

impl Config {
    /// The reports with `enabled = true`: the built-in ones in [`crate::report::BUILT_IN`]
    /// order, then the configured ones by name.
    pub fn enabled_reports(&self) -> Vec<Report> {
        Report::BUILT_IN
            .into_iter()
            .chain(
                self.reports
                    .configured
                    .keys()
                    .filter_map(|name| Report::named(name).ok()),
            )
            .filter(|r| self.reports.enabled(*r))
            .collect()
    }

    /// What `report` is, as configured: how it is requested, keyed and converted, its
    /// timezone and topic. `None` for a report that has no `[reports.<name>]` section (or
    /// whose section does not say enough; validation names what is missing).
    pub fn spec(&self, report: Report) -> Option<ReportSpec> {
        if let Some(b) = BuiltIn::named(report).filter(|b| b.metric_set.is_none()) {
            return Some(ReportSpec {
                report,
                source: Source::WorkSessionEvents,
                format: Format::Typed(b.format),
                timezone: chrono_tz::UTC,
                topic: self.topics.report_topic(report),
            });
        }
        self.reports.date_spec(report, |s| {
            s.topic
                .clone()
                .unwrap_or_else(|| self.topics.report_topic(report))
        })
    }

    /// The topic `report` publishes to (`<prefix>.<name>` unless set).
    pub fn report_topic(&self, report: Report) -> String {
        self.spec(report)
            .map_or_else(|| self.topics.report_topic(report), |s| s.topic)
    }

    /// Every topic with a fixed schema this configuration names, as SQL tables see them: the
    /// built-in reports, the conversations and the four dimension lists (reports configured
    /// by columns have schemas derived from Gladly's header, and are not listed).
    pub fn topic_tables(&self) -> Vec<TopicTable> {
        let reports = BUILT_IN.iter().map(|b| TopicTable {
            name: b.report.name().to_string(),
            topic: self.report_topic(b.report),
            key_schema: b.key_schema,
            value_schema: b.value_schema,
        });
        let conversations = std::iter::once(TopicTable {
            name: "conversations".into(),
            topic: self.topics.conversations_topic(),
            key_schema: schemas::conversation_key_schema(),
            value_schema: schemas::conversation_value_schema(),
        });
        let lists = DimensionList::ALL.into_iter().map(|l| TopicTable {
            name: l.name().to_string(),
            topic: self.topics.dimension_topic(l),
            key_schema: schemas::dimension_key_schema(l),
            value_schema: schemas::dimension_value_schema(l),
        });
        reports.chain(conversations).chain(lists).collect()
    }

    /// `kafka.transactional_id_prefix`, or `gladly-kafka.<topics.prefix>`.
    pub fn transactional_id_prefix(&self) -> String {
        self.kafka
            .transactional_id_prefix
            .clone()
            .unwrap_or_else(|| format!("gladly-kafka.{}", self.topics.prefix))
    }

    /// Settings of a report requested by dates (`[reports.<name>]`); `None` for work
    /// sessions, which are polled by instants (see `reports.work_sessions`).
    pub fn date_settings(&self, report: Report) -> Option<&DateReportSettings> {
        self.reports.date_section(report)
    }

    /// The timezone a report's dates are in (UTC for work sessions).
    pub fn report_timezone(&self, report: Report) -> chrono_tz::Tz {
        self.date_settings(report)
            .and_then(|s| s.timezone.parse().ok())
            .unwrap_or(chrono_tz::UTC)
    }

    /// How far back anything of `report` is re-read: the longest of the live re-read
    /// ([`Config::live_reread_horizon`]) and the spans of its re-read tiers (date reports add
    /// two days: the day being polled, and timezones). The changelog memory keeps keys this far
    /// back, and reads them back from the topic before a pass that reaches past what it holds,
    /// so a tier's pass publishes only what changed.
    pub fn reread_horizon(&self, report: Report) -> chrono::Duration {
        let longest_tier = self
            .reread_tiers(report)
            .iter()
            .map(|t| match self.date_settings(report) {
                None => t.span_duration(),
                Some(_) => t.span_duration() + chrono::Duration::days(2),
            })
            .max()
            .unwrap_or_else(chrono::Duration::zero);
        self.live_reread_horizon(report).max(longest_tier)
    }

    /// How far back a live poll of `report` re-reads rows: the work-session lookback, or the
    /// date reports' horizon plus two days (the day being polled, and timezones). A start
    /// reads this much of the topic back into the changelog memory.
    pub fn live_reread_horizon(&self, report: Report) -> chrono::Duration {
        match self.date_settings(report) {
            None => chrono::Duration::minutes(self.reports.work_sessions.lookback_minutes as i64),
            Some(s) => chrono::Duration::days(i64::from(s.horizon_days) + 2),
        }
    }

    /// The re-read tiers of `report` in force: the configured list, or the defaults whose
    /// span reaches past the live re-read (a default the lookback or horizon already covers
    /// would re-read nothing).
    pub fn reread_tiers(&self, report: Report) -> Vec<RereadTier> {
        match self.date_settings(report) {
            None => {
                let ws = &self.reports.work_sessions;
                reread::effective(ws.reread.as_deref(), &WORK_SESSION_TIERS, |t| {
                    t.span_hours.saturating_mul(60) > ws.lookback_minutes
                })
                .into_iter()
                .map(RereadTier::from)
                .collect()
            }
            Some(s) => reread::effective(s.reread.as_deref(), &DATE_TIERS, |t| {
                t.span_days > s.horizon_days
            })
            .into_iter()
            .map(RereadTier::from)
            .collect(),
        }
    }

    /// Seconds between polls of a report in `run`.
    pub fn cadence(&self, report: Report) -> std::time::Duration {
        std::time::Duration::from_secs(match self.date_settings(report) {
            None => self.reports.work_sessions.cadence_secs,
            Some(s) => s.cadence_secs,
        })
    }
}
