//! The pipeline's internal events, as vector keeps them: one type per thing that happens, each
//! with one `emit()` that writes its log line and updates its metrics together, so the
//! catalog of metric names (`crate::observe`) and the log text cannot drift apart.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::summary::Summary;
use crate::kafka::SinkError;
use crate::observe::Metrics;

/// A unit's transaction was aborted: nothing it sent became visible.
pub(crate) struct TransactionAborted<'a> {
    /// The engine's label (a report, `dimensions`).
    pub(super) label: &'a str,
    /// Why (`capped`, the failure, `dropped before it ended`).
    pub(super) why: &'a str,
    /// Where the count goes.
    pub(super) metrics: &'a Metrics,
}

impl TransactionAborted<'_> {
    /// Counts and logs it.
    pub(super) fn emit(self) {
        self.metrics.transaction_aborted(self.label);
        tracing::debug!(source = self.label, why = self.why, "transaction aborted");
    }
}

/// A producer was dropped after an error that left it unusable; the next transaction creates
/// a new one (whose `init_transactions` aborts what this one left).
pub(crate) struct ProducerDropped<'a> {
    /// The engine's label.
    pub(super) label: &'a str,
    /// What left it unusable.
    pub(super) error: &'a SinkError,
}

impl ProducerDropped<'_> {
    /// Logs it.
    pub(super) fn emit(self) {
        tracing::warn!(source = self.label, error = %self.error, "the producer is unusable; the next transaction creates a new one");
    }
}

/// A report window was committed with its checkpoint or its re-read tier's progress.
pub(crate) struct WindowCommitted<'a> {
    /// The report's name.
    pub(super) report: &'a str,
    /// The re-read tier, for a pass's window.
    pub(super) tier: Option<&'a str>,
    /// The poll's checkpoint now covers everything until then (a live window).
    pub(super) covered_until: Option<DateTime<Utc>>,
    /// What the window published.
    pub(super) summary: &'a Summary,
    /// From its first request to its commit.
    pub(super) took: Duration,
    /// Where its dead letters went.
    pub(super) dead_letter_topic: &'a str,
    /// Where the counts go.
    pub(super) metrics: &'a Metrics,
}

impl WindowCommitted<'_> {
    /// Counts the window (its rows, records, tombstones, dead letters, conversations, the
    /// tier's windows, the checkpoint's reach) and logs it, with one line for all its dead
    /// letters however many (counts by reason and the first few; each one is logged at debug).
    pub(super) fn emit(self) {
        let (m, s) = (self.metrics, self.summary);
        m.window_published(self.report, s.counts(), self.took);
        s.conversations.count_committed(m);
        if let Some(tier) = self.tier {
            m.reread_window(self.report, tier, s.records);
        }
        if let Some(until) = self.covered_until {
            m.checkpoint_moved(self.report, until);
        }
        let span = tracing::Span::current();
        span.record("rows", s.rows);
        span.record("duration_secs", self.took.as_secs_f64());
        tracing::info!(
            records = s.records,
            tombstones = s.tombstones,
            suppressed = s.suppressed,
            dead_letters = s.dead_letters,
            "window published"
        );
        if s.dead_letters > 0 {
            tracing::warn!(
                dead_letters = s.dead_letters,
                topic = self.dead_letter_topic,
                "rows sent to the dead-letter topic: {}",
                s.dead_letter_line()
            );
        }
    }
}

/// An attempt at a unit failed and will be retried.
pub(crate) struct UnitFailed<'a> {
    /// The source's label (a report, `dimensions`).
    pub(super) label: &'a str,
    /// What a unit is (`window`, `list`).
    pub(super) kind: &'a str,
    /// The unit (a window, a list).
    pub(super) unit: &'a str,
    /// Which attempt (from 1).
    pub(super) attempt: u32,
    /// Why.
    pub(super) error: &'a str,
    /// Where the count goes.
    pub(super) metrics: &'a Metrics,
}

impl UnitFailed<'_> {
    /// Counts it (the source is not ready until a cycle succeeds) and logs it.
    pub(super) fn emit(self) {
        self.metrics.window_failed(self.label);
        tracing::warn!(
            source = self.label,
            unit = self.unit,
            attempt = self.attempt,
            error = self.error,
            "{} failed; retrying it",
            self.kind
        );
    }
}

/// A unit reached the row cap (or its conversations would not fit in one transaction) and
/// was split in two.
pub(crate) struct UnitSplit<'a> {
    /// The source's label.
    pub(super) label: &'a str,
    /// The unit split.
    pub(super) unit: &'a str,
    /// Rows it had when it stopped.
    pub(super) rows: u64,
    /// `pipeline.row_cap`.
    pub(super) cap: u64,
    /// Where the count goes.
    pub(super) metrics: &'a Metrics,
}

impl UnitSplit<'_> {
    /// Counts and logs it.
    pub(super) fn emit(self) {
        self.metrics.window_split(self.label);
        tracing::warn!(source = self.label, unit = self.unit, rows = self.rows, cap = self.cap, "window reached the row cap (or its conversations would not fit in one transaction): splitting it in two");
    }
}

/// A pass of a re-read tier is complete.
pub(crate) struct PassCompleted<'a> {
    /// The report's name.
    pub(super) report: &'a str,
    /// The tier.
    pub(super) tier: &'a str,
    /// When the pass began.
    pub(super) started_at: DateTime<Utc>,
    /// What its windows published.
    pub(super) summary: &'a Summary,
    /// Where the count goes.
    pub(super) metrics: &'a Metrics,
}

impl PassCompleted<'_> {
    /// Counts it and, when it re-read anything, logs it.
    pub(super) fn emit(self) {
        self.metrics
            .reread_pass_done(self.report, self.tier, self.started_at);
        let s = self.summary;
        if s.windows > 0 {
            tracing::info!(
                report = self.report,
                tier = self.tier,
                windows = s.windows,
                records = s.records,
                suppressed = s.suppressed,
                "re-read pass complete"
            );
        }
    }
}

/// A dimension list's refresh was committed.
pub(crate) struct ListRefreshed<'a> {
    /// The list's name.
    pub(super) list: &'a str,
    /// Items Gladly listed.
    pub(super) items: u64,
    /// Records published (changed or new items).
    pub(super) records: u64,
    /// Tombstones published (ids no longer listed).
    pub(super) tombstones: u64,
    /// When it was fetched.
    pub(super) at: DateTime<Utc>,
    /// Where the counts go.
    pub(super) metrics: &'a Metrics,
}

impl ListRefreshed<'_> {
    /// Counts and logs it.
    pub(super) fn emit(self) {
        let (m, list) = (self.metrics, self.list);
        for (kind, n) in [("record", self.records), ("tombstone", self.tombstones)] {
            m.count(
                "gladly_kafka_dimension_records_total",
                &[("list", list), ("kind", kind)],
                n as f64,
            );
        }
        m.gauge(
            "gladly_kafka_dimension_items",
            &[("list", list)],
            self.items as f64,
        );
        m.gauge(
            "gladly_kafka_dimension_refreshed_timestamp_seconds",
            &[("list", list)],
            self.at.timestamp_millis() as f64 / 1000.0,
        );
        tracing::info!(
            list,
            items = self.items,
            records = self.records,
            tombstones = self.tombstones,
            "dimension list refreshed"
        );
    }
}

/// A range of the events feed was committed with the feed's cursor.
pub(crate) struct EventsCommitted<'a> {
    /// The range, `[from, to)`.
    pub(super) range: &'a str,
    /// Events published, events read again and not published, dead letters by reason.
    pub(super) summary: &'a Summary,
    /// Every event recorded before this instant has been read.
    pub(super) covered_until: DateTime<Utc>,
    /// The newest event published so far, if any.
    pub(super) newest: Option<DateTime<Utc>>,
    /// Where the counts go.
    pub(super) metrics: &'a Metrics,
}

impl EventsCommitted<'_> {
    /// Counts it (its dead letters by reason, like a report window's) and moves the feed's
    /// freshness gauges.
    pub(super) fn emit(self) {
        let (m, s) = (self.metrics, self.summary);
        m.count("gladly_kafka_events_published_total", &[], s.records as f64);
        m.count(
            "gladly_kafka_events_suppressed_total",
            &[],
            s.suppressed as f64,
        );
        for (reason, n) in &s.dead_letter_reasons {
            m.count(
                "gladly_kafka_dead_letters_total",
                &[("report", "events"), ("reason", reason)],
                *n as f64,
            );
        }
        m.gauge(
            "gladly_kafka_events_covered_until_timestamp_seconds",
            &[],
            self.covered_until.timestamp_millis() as f64 / 1000.0,
        );
        if let Some(newest) = self.newest {
            m.gauge(
                "gladly_kafka_events_newest_timestamp_seconds",
                &[],
                newest.timestamp_millis() as f64 / 1000.0,
            );
        }
        tracing::info!(
            range = self.range,
            records = s.records,
            suppressed = s.suppressed,
            dead_letters = s.dead_letters,
            "events published"
        );
    }
}

/// The feed's cursor was further back than the Events API serves (an outage longer than its
/// 24 hours): the events recorded in `[from, to)` are lost to the feed. The reports still
/// carry those contacts.
pub(crate) struct EventsLost<'a> {
    /// Where the cursor stood.
    pub(super) from: DateTime<Utc>,
    /// The oldest instant the API still serves (with a margin): where the feed resumes.
    pub(super) to: DateTime<Utc>,
    /// Where the counts go.
    pub(super) metrics: &'a Metrics,
}

impl EventsLost<'_> {
    /// Counts the lost seconds and logs the span as an error.
    pub(super) fn emit(self) {
        let secs = (self.to - self.from).num_milliseconds() as f64 / 1000.0;
        self.metrics
            .count("gladly_kafka_events_lost_seconds_total", &[], secs);
        tracing::error!(
            from = %self.from,
            to = %self.to,
            lost_secs = secs,
            "events lost: the feed was stopped longer than the 24 hours Gladly's Events API serves; the events recorded in [from, to) cannot be read any more (the reports still carry those contacts: see the docs' events reconciliation)"
        );
    }
}
