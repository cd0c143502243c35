//! What the simulator saw: requests, responses, rows, and the rows a fault made bad.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// Counters of what the simulator saw.
#[derive(Debug, Clone, Default)]
pub struct SimStats {
    /// Requests per endpoint: `work-session-events`, `reports`, `conversations`, `events`,
    /// and the lists `agents`, `inboxes`, `teams`, `topics`.
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
    /// `GET /api/v1/events` calls (each attempt, 401s, 429s and 400s included).
    pub event_gets: u64,
    /// Event lines sent in events bodies (whole lines only; the same event read twice counts
    /// twice, see [`crate::Simulator::served_event_ids`] for distinct ones).
    pub events_served: u64,
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
