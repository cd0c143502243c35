//! A Gladly API simulator for tests, the demo and benchmarks: the report endpoints with
//! Gladly's paths, Basic auth, CSV headers, time anchors, 400 error shape and org-wide
//! limits, over a deterministic contact center whose content is a pure function of
//! `(seed, now)`, plus switchable faults and a ground-truth view.
//!
//! - `POST /api/v1/reports/work-session-events` `{startAtTime, endAtTime}` (minute precision,
//!   `Z` or `±hh:mm`): rows anchored at `contact_session_ended_at`, else
//!   `contact_session_created_at`, in `[start, end + 1 min)`.
//! - `POST /api/v1/reports` `{metricSet, startAt, endAt, timezone?, aggregationLevel?}` for the
//!   Contact Export (anchor "Queued At" date) and Agent Summary (agent × bucket) metric sets,
//!   and, by dates only, Conversation Export (a row per conversation, anchor "Created At",
//!   restated until it closes), Contact and Conversation Timestamps (a row per event, anchor
//!   "Timestamp") and Work Session Events V4 (the work-session rows, anchored per local day).
//!   [`SimConfig::added_column`] makes one of them gain a column mid-run.
//! - `GET /api/v1/conversations/{id}`: conversations spanning several contacts, whose inbox,
//!   status and assignee change over time, some deleted (404) or merged (301), under
//!   Gladly's general per-second limit (see [`ConversationTruth`]).
//! - `GET /api/v1/agents`, `/inboxes`, `/teams`, `/topics`: JSON lists that change on a fixed
//!   schedule (an agent renamed and one added on day 3 after the origin, an inbox added on day
//!   3 and removed on day 4, …), under the same per-second limit (see [`Simulator::list`]).
//! - `GET /api/v1/events?startAt=…&endAt=…&entities=…`: the Events API in JSON Lines, the
//!   last 24 hours of contact, conversation and agent-shift events, each visible a few seconds
//!   after its timestamp ([`EventLag`]), under the same per-second limit (see
//!   [`Simulator::events_truth`]).
//!
//! The reports show the world as of `now − data_delay`. Every contact has an arrival time,
//! channel, direction, inbox, 0–3 agents (only ever added), an end (some stay open for hours)
//! and a conversation end (after-contact and unknown time grow until then).
//!
//! The crate stands alone: [`wire`] is Gladly's format as written from its documentation
//! (shared with no client), and time comes from a [`SimClock`], any
//! `Fn() -> DateTime<Utc>`, so a test can hand it the clock its code under test reads.
//! [`Simulator::report_truth`], [`Simulator::metric_set_truth`] and
//! [`Simulator::conversation`] say what the API answers.

#![warn(missing_docs, unreachable_pub)]

mod added_column;
mod clock;
mod config;
mod conversations;
mod dimensions;
mod events;
mod faults;
mod limiter;
mod model;
mod reports;
mod rng;
mod server;
mod stats;
mod timestamp;
mod truth;
pub mod wire;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};

pub use added_column::AddedColumn;
pub use clock::SimClock;
pub use config::{EventLag, SimConfig};
pub use conversations::ConversationTruth;
pub use faults::{FaultState, Faults, Limits, RetryAfter, BAD_CELL, EXTRA_COLUMN};
pub use server::SimServer;
pub use stats::{BadRows, SimStats};
pub use truth::{Truth, TruthRow};
pub use wire::ReportQuery;

use limiter::{InFlight, Limiter};
use model::Model;

/// The simulator: shared state behind the HTTP server.
pub struct Simulator {
    cfg: SimConfig,
    model: Model,
    clock: Box<dyn SimClock>,
    faults: Faults,
    stats: Mutex<SimStats>,
    limiter: Arc<Limiter>,
    bad: Mutex<BadRows>,
    draws: AtomicU64,
    served_events: Mutex<BTreeSet<String>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("cfg", &self.cfg)
            .field("now", &self.clock.now())
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// A simulator of `cfg` reading time from `clock`.
    pub fn new(cfg: SimConfig, clock: impl SimClock + 'static) -> Arc<Simulator> {
        let model = cfg.model();
        Arc::new(Simulator {
            cfg,
            model,
            clock: Box::new(clock),
            faults: Faults::default(),
            stats: Mutex::new(SimStats::default()),
            limiter: Arc::default(),
            bad: Mutex::new(BadRows::default()),
            draws: AtomicU64::new(0),
            served_events: Mutex::default(),
        })
    }

    /// Serves the API on `addr` (port 0 picks a free one).
    pub async fn serve(self: &Arc<Self>, addr: SocketAddr) -> std::io::Result<SimServer> {
        server::serve(self.clone(), addr).await
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The switchable faults.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// What the simulator saw so far.
    pub fn stats(&self) -> SimStats {
        self.stats.lock().expect("stats lock").clone()
    }

    /// The instant the reports show: now minus the data delay.
    pub fn as_of(&self) -> DateTime<Utc> {
        self.clock.now() - self.cfg.data_delay
    }

    /// Ground truth: the full current content of the report for `query`, exactly what a
    /// fault-free, uncapped call would return now. Panics on a request the API would reject.
    pub fn report_truth(&self, query: &ReportQuery) -> Truth {
        self.report_truth_at(query, self.clock.now())
    }

    /// Ground truth: what a fault-free, uncapped call for `query` answered, or will answer,
    /// when the simulated clock reads `at` (its rows as of `at` minus the data delay, the
    /// added column when `at` is past its instant). Asked far enough ahead it is the final
    /// answer. Panics on a request the API would reject.
    pub fn report_truth_at(&self, query: &ReportQuery, at: DateTime<Utc>) -> Truth {
        let plan = server::plan(&self.cfg, query.path(), &query.body())
            .unwrap_or_else(|e| panic!("truth of a request the API rejects: {e:?}"));
        let (columns, mut source) = self.report_source(&plan, at);
        let mut cells = vec![String::new(); columns.len()];
        let mut rows = Vec::new();
        loop {
            cells.iter_mut().for_each(String::clear);
            if source.next_row(&mut cells).is_none() {
                break;
            }
            rows.push(TruthRow::new(columns, cells.clone()));
        }
        Truth { columns, rows }
    }

    /// Ground truth: the header and rows of the metric-set report `metric_set` (any served
    /// one: Contact Export, Agent Summary (daily buckets), Conversation Export, Contact and
    /// Conversation Timestamps, Work Session Events V4) for the dates `[start, end]` in
    /// `timezone`, as a fault-free, uncapped call answers now. Panics on a request the API
    /// would reject (an unknown metric set or timezone, `end` before `start`).
    pub fn metric_set_truth(
        &self,
        metric_set: &str,
        start: NaiveDate,
        end: NaiveDate,
        timezone: &str,
    ) -> Truth {
        self.metric_set_truth_at(metric_set, start, end, timezone, self.clock.now())
    }

    /// [`Simulator::metric_set_truth`] as answered when the simulated clock reads `at`.
    pub fn metric_set_truth_at(
        &self,
        metric_set: &str,
        start: NaiveDate,
        end: NaiveDate,
        timezone: &str,
        at: DateTime<Utc>,
    ) -> Truth {
        let query = ReportQuery::MetricSet {
            metric_set: metric_set.into(),
            start,
            end,
            timezone: timezone.into(),
            aggregation_level: None,
        };
        self.report_truth_at(&query, at)
    }

    /// The columns and rows of `plan` fetched when the clock reads `now`: the report's rows
    /// as of `now` minus the data delay, with the added column when it applies. Every answer
    /// (a body or a truth) comes from here.
    fn report_source(
        &self,
        plan: &reports::Plan,
        now: DateTime<Utc>,
    ) -> (&'static [&'static str], Box<dyn reports::RowSource>) {
        let as_of = (now - self.cfg.data_delay).timestamp_millis();
        let columns = plan.columns();
        let source = plan.rows(&self.model, as_of);
        match &self.cfg.added_column {
            Some(added) if added.applies(plan.metric_set(&self.cfg), now) => {
                let source =
                    added_column::WithAdded::new(source, added.clone(), self.model.clone());
                (added.extend(columns), Box::new(source))
            }
            _ => (columns, source),
        }
    }

    /// Ground truth: what `GET /api/v1/conversations/{id}` answers now (without faults or
    /// limits).
    pub fn conversation(&self, id: &str) -> ConversationTruth {
        self.conversation_at(id, self.clock.now())
    }

    /// Ground truth: what `GET /api/v1/conversations/{id}` answered, or will answer, at `at`.
    pub fn conversation_at(&self, id: &str, at: DateTime<Utc>) -> ConversationTruth {
        conversations::conversation_at(&self.model, id, at.timestamp_millis())
    }

    /// Ground truth: what `GET /api/v1/<list>` (`agents`, `inboxes`, `teams`, `topics`)
    /// answers now; `None` for another name.
    pub fn list(&self, list: &str) -> Option<Vec<serde_json::Value>> {
        self.list_at(list, self.clock.now())
    }

    /// Ground truth: what `GET /api/v1/<list>` answered, or will answer, at `at`.
    pub fn list_at(&self, list: &str, at: DateTime<Utc>) -> Option<Vec<serde_json::Value>> {
        dimensions::list_at(&self.model, list, at.timestamp_millis())
    }

    /// Ground truth: every event of `entities` (names of [`wire::EVENT_ENTITIES`]) whose
    /// `timestamp` is in `[start, end)` and that has been recorded by now (timestamp ≤ now),
    /// whether its visibility lag has passed or not, in the order `GET /api/v1/events` sends
    /// them; each the exact object the API sends. Not limited to the last 24 hours. Panics on
    /// an unknown entity.
    pub fn events_truth(
        &self,
        entities: &[&str],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Vec<serde_json::Value> {
        self.events_json(entities, start, end, false)
    }

    /// What a fault-free `GET /api/v1/events` for `entities` and `[start, end)` answers now:
    /// the events of [`Simulator::events_truth`] whose visibility lag has passed. Panics on an
    /// unknown entity.
    pub fn events_visible(
        &self,
        entities: &[&str],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Vec<serde_json::Value> {
        self.events_json(entities, start, end, true)
    }

    /// The visibility lag of the event `id`: it is served once now ≥ its `timestamp` + this.
    /// `None` when `id` is not an event id of this simulator.
    pub fn event_lag(&self, id: &str) -> Option<chrono::Duration> {
        let identity = self.model.decode_id(model::Kind::Event, id)?;
        let ms = events::lag_ms(self.cfg.seed, &self.cfg.event_lag, identity);
        Some(chrono::Duration::milliseconds(ms))
    }

    /// The distinct ids of the events `GET /api/v1/events` has sent so far (whole lines only:
    /// an event whose line a cut broke off is not counted).
    pub fn served_event_ids(&self) -> BTreeSet<String> {
        self.served_events
            .lock()
            .expect("served events lock")
            .clone()
    }

    fn events_json(
        &self,
        entities: &[&str],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        lagged: bool,
    ) -> Vec<serde_json::Value> {
        let mut set = events::Entities::default();
        for e in entities {
            assert!(set.add(e), "{e} is not an Events API entity");
        }
        let ceil = |t: DateTime<Utc>| {
            t.timestamp_millis() + i64::from(t.timestamp_subsec_nanos() % 1_000_000 != 0)
        };
        let window = events::Window {
            start_ms: ceil(start),
            end_ms: ceil(end),
            now_ms: self.clock.now().timestamp_millis(),
            entities: set,
            lagged,
        };
        self.event_source(window)
            .map(|e| serde_json::from_str(&e.line).expect("an event is JSON"))
            .collect()
    }

    /// The events of `window`, in order.
    fn event_source(&self, window: events::Window) -> events::EventSource {
        events::EventSource::new(self.model.clone(), self.cfg.event_lag.clone(), window)
    }

    /// Notes events whose whole line was sent.
    fn record_served_events(&self, ids: impl IntoIterator<Item = String>) {
        let mut served = self.served_events.lock().expect("served events lock");
        let mut n = 0;
        for id in ids {
            served.insert(id);
            n += 1;
        }
        drop(served);
        self.stats.lock().expect("stats lock").events_served += n;
    }

    /// How many rows the bad-cell fault has made unconvertible so far (every serving counts).
    pub fn injected_bad_rows(&self) -> u64 {
        self.bad.lock().expect("bad rows lock").served
    }

    /// The rows the bad-cell fault has touched, with their keys.
    pub fn bad_rows(&self) -> BadRows {
        self.bad.lock().expect("bad rows lock").clone()
    }

    fn count_request(&self, endpoint: &str) {
        let mut s = self.stats.lock().expect("stats lock");
        *s.requests.entry(endpoint.to_string()).or_default() += 1;
        if endpoint == "conversations" {
            s.conversation_gets += 1;
        } else if endpoint == "events" {
            s.event_gets += 1;
        } else if dimensions::LISTS.contains(&endpoint) {
            // a list GET: under the per-second limit, not a report
        } else {
            if s.report_arrivals.len() >= 10_000 {
                s.report_arrivals.remove(0);
            }
            s.report_arrivals.push(Instant::now());
        }
    }

    fn count_response(&self, status: u16) {
        let mut s = self.stats.lock().expect("stats lock");
        *s.responses.entry(status).or_default() += 1;
        if status == 429 {
            s.rate_limited += 1;
        }
    }

    fn count_rows(&self, n: u64) {
        self.stats.lock().expect("stats lock").rows_served += n;
    }

    fn record_bad(&self, key: String) {
        let mut b = self.bad.lock().expect("bad rows lock");
        b.served += 1;
        b.keys.insert(key);
    }

    /// A deterministic draw in `[0, 1)` per report request.
    fn draw(&self) -> f64 {
        let n = self.draws.fetch_add(1, Ordering::Relaxed);
        (rng::mix(self.cfg.seed ^ n.wrapping_mul(0x5DEE_CE66)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Admits another (non-report) request under the per-second limit: `Ok(remaining)`, or
    /// how long until it could be admitted.
    fn admit_get(&self) -> Result<u32, std::time::Duration> {
        self.limiter.admit_get(&self.cfg.limits)
    }

    /// Admits a report request under the limits, or says how long until it could be.
    fn admit(&self) -> Result<InFlight, Option<std::time::Duration>> {
        let (guard, in_flight) = self.limiter.admit_report(&self.cfg.limits)?;
        let mut s = self.stats.lock().expect("stats lock");
        s.max_concurrency = s.max_concurrency.max(in_flight);
        Ok(guard)
    }
}

#[cfg(test)]
mod event_tests;
#[cfg(test)]
mod report_tests;
#[cfg(test)]
mod tests;
