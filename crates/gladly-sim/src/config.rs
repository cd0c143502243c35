//! What the simulated contact center looks like, and who may call it how often.

use chrono::{DateTime, TimeZone, Utc};

use crate::added_column::AddedColumn;
use crate::faults::Limits;
use crate::model::{Model, HOUR_MS};
use crate::wire::{AGENT_SUMMARY, CONTACT_EXPORT};

/// What the simulated contact center looks like.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of everything generated.
    pub seed: u64,
    /// Start of simulated history: no contact exists before it.
    pub origin: DateTime<Utc>,
    /// Mean contacts per hour.
    pub contacts_per_hour: f64,
    /// Vary the contact rate over the day (busy afternoons, quiet nights).
    pub diurnal: bool,
    /// Agents.
    pub agents: usize,
    /// Inboxes.
    pub inboxes: usize,
    /// Distinct customers.
    pub customers: u64,
    /// Share of contacts that stay open for hours.
    pub long_open_fraction: f64,
    /// Longest a contact stays open.
    pub max_open: chrono::Duration,
    /// How far reports lag behind now (Gladly: about an hour).
    pub data_delay: chrono::Duration,
    /// The API user's email (Basic-auth user).
    pub email: String,
    /// The API token (Basic-auth password).
    pub token: String,
    /// The org-wide report limits.
    pub limits: Limits,
    /// Silently truncate report bodies after this many rows (Gladly is said to cap at ~100k).
    pub row_cap: Option<usize>,
    /// The Contact Export metric set name.
    pub contact_export_metric_set: String,
    /// The Agent Summary metric set name.
    pub agent_summary_metric_set: String,
    /// A column one report gains mid-run (schema evolution): answers of its metric set
    /// fetched at or after its instant carry it, last; earlier answers do not. `None` (the
    /// default): every report keeps its columns.
    pub added_column: Option<AddedColumn>,
    /// How late events become visible on `GET /api/v1/events`.
    pub event_lag: EventLag,
}

/// How late an event becomes visible on `GET /api/v1/events` after its `timestamp` (Gladly:
/// "up to 15 seconds behind real-time"). Every event gets a lag that is a pure function of its
/// id: a query made before `timestamp + lag` does not return it, every one made after does.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLag {
    /// Lags are spread over `[0, max)` (default 15 s; zero: visible at once).
    pub max: chrono::Duration,
    /// Share of events (chosen by id) that come even later: `late_by` more (default 0).
    pub late_fraction: f64,
    /// The extra lag of those (default 5 minutes): set it past a client's overlap to see it
    /// miss them, inside it to see it catch them.
    pub late_by: chrono::Duration,
}

impl Default for EventLag {
    fn default() -> Self {
        EventLag {
            max: chrono::Duration::seconds(15),
            late_fraction: 0.0,
            late_by: chrono::Duration::minutes(5),
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            origin: Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap(),
            contacts_per_hour: 60.0,
            diurnal: true,
            agents: 25,
            inboxes: 5,
            customers: 20_000,
            long_open_fraction: 0.03,
            max_open: chrono::Duration::hours(8),
            data_delay: chrono::Duration::hours(1),
            email: "api@example.com".into(),
            token: "simulator-token".into(),
            limits: Limits::default(),
            row_cap: Some(100_000),
            contact_export_metric_set: CONTACT_EXPORT.into(),
            agent_summary_metric_set: AGENT_SUMMARY.into(),
            added_column: None,
            event_lag: EventLag::default(),
        }
    }
}

impl SimConfig {
    /// Same config with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Same config with the limits off.
    pub fn without_limits(mut self) -> Self {
        self.limits.enabled = false;
        self
    }

    /// Same config with limits whose "minute" lasts `minute` of real time.
    pub fn with_scaled_limits(mut self, minute: std::time::Duration) -> Self {
        self.limits.minute = minute;
        self.limits.enabled = true;
        self
    }

    /// Same config with limits on and a "second" (of the per-second limit) lasting `second`
    /// of real time.
    pub fn with_scaled_second(mut self, second: std::time::Duration) -> Self {
        self.limits.second = second;
        self.limits.enabled = true;
        self
    }

    /// Same config with `column` added to `metric_set`'s answers fetched at or after `from`.
    pub fn with_added_column(
        mut self,
        metric_set: &str,
        column: &str,
        from: DateTime<Utc>,
    ) -> Self {
        self.added_column = Some(AddedColumn {
            metric_set: metric_set.into(),
            column: column.into(),
            from,
        });
        self
    }

    /// Same config with `fraction` of the events (chosen by id) visible only `by` later than
    /// the usual lag (see [`EventLag`]).
    pub fn with_late_events(mut self, fraction: f64, by: chrono::Duration) -> Self {
        self.event_lag.late_fraction = fraction;
        self.event_lag.late_by = by;
        self
    }

    /// The generator of this contact center.
    pub(crate) fn model(&self) -> Model {
        Model {
            seed: self.seed,
            origin_ms: self.origin.timestamp_millis(),
            contacts_per_hour: self.contacts_per_hour.max(0.0),
            diurnal: self.diurnal,
            agents: self.agents.clamp(1, u32::MAX as usize) as u32,
            inboxes: self.inboxes.clamp(1, u32::MAX as usize) as u32,
            customers: self.customers.max(1),
            long_open_fraction: self.long_open_fraction.clamp(0.0, 1.0),
            max_open_ms: self.max_open.num_milliseconds().max(HOUR_MS),
        }
    }
}
