//! A Gladly API simulator for tests, the demo and benchmarks: the report endpoints with
//! Gladly's paths, Basic auth, CSV headers, time anchors, 400 error shape and org-wide
//! limits, over a deterministic contact center whose content is a pure function of
//! `(seed, now)`, plus switchable faults and a ground-truth view.
//!
//! - `POST /api/v1/reports/work-session-events` `{startAtTime, endAtTime}` (minute precision,
//!   `Z` or `±hh:mm`): rows anchored at `contact_session_ended_at`, else
//!   `contact_session_created_at`, in `[start, end + 1 min)`.
//! - `POST /api/v1/reports` `{metricSet, startAt, endAt, timezone?, aggregationLevel?}` for the
//!   Contact Export (anchor "Queued At" date) and Agent Summary (agent × bucket) metric sets.
//! - `GET /api/v1/conversations/{id}`: conversations spanning several contacts, whose inbox,
//!   status and assignee change over time, some deleted (404) or merged (301), under
//!   Gladly's general per-second limit (see [`conversations`]).
//!
//! The reports show the world as of `now − data_delay`. Every contact has an arrival time,
//! channel, direction, inbox, 0–3 agents (only ever added), an end (some stay open for hours)
//! and a conversation end (after-contact and unknown time grow until then).

mod clock;
pub mod conversations;
mod faults;
pub mod model;
pub mod reports;
mod server;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};

pub use clock::SimClock;
pub use conversations::ConversationTruth;
pub use faults::{FaultState, Faults, Limits, RetryAfter, BAD_CELL, EXTRA_COLUMN};
pub use server::SimServer;
pub use wire::ReportQuery;

use model::{Model, HOUR_MS};
use wire::{AGENT_SUMMARY, CONTACT_EXPORT};

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

    fn model(&self) -> Model {
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

/// Counters of what the simulator saw.
#[derive(Debug, Clone, Default)]
pub struct SimStats {
    /// Requests per endpoint: `work-session-events`, `reports`, `conversations`.
    pub requests: BTreeMap<String, u64>,
    /// Responses by status.
    pub responses: BTreeMap<u16, u64>,
    /// 429 answers (limits and the fault).
    pub rate_limited: u64,
    /// Most report requests in flight at once.
    pub max_concurrency: u32,
    /// `GET /api/v1/conversations/{id}` calls (each attempt, 429s and 301s included).
    pub conversation_gets: u64,
    /// Those answered 301 (merged).
    pub conversation_moves: u64,
    /// Data rows sent in report bodies.
    pub rows_served: u64,
    /// Arrival instants of report requests (the last 10,000).
    pub report_arrivals: Vec<Instant>,
}

impl SimStats {
    /// Report requests of both endpoints.
    pub fn report_requests(&self) -> u64 {
        self.requests
            .get("work-session-events")
            .copied()
            .unwrap_or(0)
            + self.requests.get("reports").copied().unwrap_or(0)
    }
}

/// The rows the bad-cell fault made unconvertible.
#[derive(Debug, Clone, Default)]
pub struct BadRows {
    /// Bad rows served, counting every time a row was sent.
    pub served: u64,
    /// Distinct keys of those rows (`contact_session_id/agent_id`, `Contact ID`,
    /// `Agent ID/Bucket Beginning`), each prefixed by the report: `work_sessions:…`,
    /// `contacts:…`, `agent_summary:…`.
    pub keys: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct Limiter {
    admitted: std::collections::VecDeque<Instant>,
    in_flight: u32,
    /// Admission times of other requests (the per-second limit).
    gets: std::collections::VecDeque<Instant>,
}

/// A report's full content: its columns and its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truth {
    /// Column names, in the report's order.
    pub columns: &'static [&'static str],
    /// The rows, in the order a response sends them.
    pub rows: Vec<TruthRow>,
}

/// One row of a [`Truth`], its cells addressable by column name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthRow {
    columns: &'static [&'static str],
    cells: Vec<String>,
}

impl TruthRow {
    /// The cell of `column`, or `None` when the report has no such column.
    pub fn get(&self, column: &str) -> Option<&str> {
        let i = self.columns.iter().position(|c| *c == column)?;
        self.cells.get(i).map(String::as_str)
    }

    /// The cells, in column order.
    pub fn cells(&self) -> &[String] {
        &self.cells
    }
}

/// The simulator: shared state behind the HTTP server.
pub struct Simulator {
    cfg: SimConfig,
    model: Model,
    clock: Box<dyn SimClock>,
    faults: Faults,
    stats: Mutex<SimStats>,
    limiter: Mutex<Limiter>,
    bad: Mutex<BadRows>,
    draws: AtomicU64,
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
            limiter: Mutex::new(Limiter::default()),
            bad: Mutex::new(BadRows::default()),
            draws: AtomicU64::new(0),
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

    /// The generator behind the reports (ids, contacts).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The instant the reports show: now minus the data delay.
    pub fn as_of(&self) -> DateTime<Utc> {
        self.clock.now() - self.cfg.data_delay
    }

    /// Ground truth: the full current content of the report for `query`, exactly what a
    /// fault-free, uncapped call would return now. Panics on a request the API would reject.
    pub fn report_truth(&self, query: &ReportQuery) -> Truth {
        let plan = server::plan(&self.cfg, query.path(), &query.body())
            .unwrap_or_else(|e| panic!("truth of a request the API rejects: {e:?}"));
        let columns = plan.columns();
        let mut source = plan.rows(&self.model, self.as_of().timestamp_millis());
        let mut cells = vec![String::new(); columns.len()];
        let mut rows = Vec::new();
        loop {
            cells.iter_mut().for_each(String::clear);
            if source.next_row(&mut cells).is_none() {
                break;
            }
            rows.push(TruthRow {
                columns,
                cells: cells.clone(),
            });
        }
        Truth { columns, rows }
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
        (model::mix(self.cfg.seed ^ n.wrapping_mul(0x5DEE_CE66)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Admits another (non-report) request under the per-second limit: `Ok(remaining)`, or
    /// how long until it could be admitted.
    fn admit_get(&self) -> Result<u32, std::time::Duration> {
        let limits = &self.cfg.limits;
        if !limits.enabled {
            return Ok(limits.per_second);
        }
        let mut l = self.limiter.lock().expect("limiter lock");
        let now = Instant::now();
        while l
            .gets
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limits.second)
        {
            l.gets.pop_front();
        }
        if l.gets.len() >= limits.per_second as usize {
            let oldest = *l.gets.front().expect("non-empty");
            return Err(limits.second.saturating_sub(now.duration_since(oldest)));
        }
        l.gets.push_back(now);
        Ok(limits.per_second - l.gets.len() as u32)
    }

    /// Admits a report request under the limits, or says how long until it could be.
    fn admit(self: &Arc<Self>) -> Result<InFlight, Option<std::time::Duration>> {
        let limits = &self.cfg.limits;
        let mut l = self.limiter.lock().expect("limiter lock");
        if limits.enabled {
            let now = Instant::now();
            while l
                .admitted
                .front()
                .is_some_and(|t| now.duration_since(*t) >= limits.minute)
            {
                l.admitted.pop_front();
            }
            if l.in_flight >= limits.concurrent {
                return Err(None);
            }
            if l.admitted.len() >= limits.per_minute as usize {
                let oldest = *l.admitted.front().expect("non-empty");
                return Err(Some(
                    limits.minute.saturating_sub(now.duration_since(oldest)),
                ));
            }
            l.admitted.push_back(now);
        }
        l.in_flight += 1;
        let in_flight = l.in_flight;
        drop(l);
        let mut s = self.stats.lock().expect("stats lock");
        s.max_concurrency = s.max_concurrency.max(in_flight);
        Ok(InFlight(self.clone()))
    }
}

/// One admitted report request; releases its concurrency slot when dropped (after the body).
#[derive(Debug)]
struct InFlight(Arc<Simulator>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut l = self.0.limiter.lock().expect("limiter lock");
        l.in_flight = l.in_flight.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests;
