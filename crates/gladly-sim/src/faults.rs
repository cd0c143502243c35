//! Limits and faults of the simulator, switchable at run time.

use std::sync::Mutex;
use std::time::Duration;

/// How a 429 carries `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetryAfter {
    /// No header (Gladly does not document one).
    #[default]
    Absent,
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// `Retry-After: <HTTP-date>` this far in the future.
    HttpDate(Duration),
}

/// The org-wide limits: reports (Gladly: 10 per minute, 2 concurrent) and every other
/// request (Gladly: 10 per second).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Enforce the limits at all.
    pub enabled: bool,
    /// Other requests (GET Conversation) admitted per (scaled) second, sliding window.
    pub per_second: u32,
    /// How long a "second" lasts in real time (1 s in real life).
    pub second: Duration,
    /// Report requests admitted per (scaled) minute, sliding window.
    pub per_minute: u32,
    /// Report requests in flight at once (until the body is sent or dropped).
    pub concurrent: u32,
    /// How long a "minute" lasts in real time (60 s in real life; e.g. 1 s in tests).
    pub minute: Duration,
    /// `Retry-After` on limit 429s.
    pub retry_after: RetryAfter,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            enabled: true,
            per_second: 10,
            second: Duration::from_secs(1),
            per_minute: 10,
            concurrent: 2,
            minute: Duration::from_secs(60),
            retry_after: RetryAfter::Absent,
        }
    }
}

/// The switchable faults. All off by default; change them with [`Faults::update`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultState {
    /// Answer 403 to every report request (missing API User permission).
    pub forbidden: bool,
    /// Answer 429 to this many next report requests.
    pub rate_limit_next: u32,
    /// `Retry-After` sent with those 429s.
    pub rate_limit_retry_after: RetryAfter,
    /// Answer `error_status` to this many next report requests.
    pub error_next: u32,
    /// Share of report requests answered `error_status` (deterministic sequence).
    pub error_rate: f64,
    /// The 5xx status used by `error_next` / `error_rate` (500, 502 or 503).
    pub error_status: u16,
    /// Delay before the response headers of the next `slow_next` report requests.
    pub slow_first_byte: Duration,
    /// How many requests `slow_first_byte` applies to (`u32::MAX`: all).
    pub slow_next: u32,
    /// Cut the connection after this many body bytes, for the next `cut_next` responses.
    pub cut_after_bytes: usize,
    /// How many responses to cut.
    pub cut_next: u32,
    /// Start bodies with a UTF-8 BOM.
    pub bom: bool,
    /// Quote every field.
    pub quote_all: bool,
    /// Add an unknown column whose cells hold commas, quotes and newlines.
    pub extra_column: bool,
    /// Send the columns in reverse order.
    pub reorder_columns: bool,
    /// Share of rows (chosen by row identity, so stable across fetches) with an unconvertible cell.
    pub bad_cell_rate: f64,
    /// Silently truncate bodies after this many rows (overrides the config's `row_cap`).
    pub row_cap: Option<usize>,
    /// Answer `conversation_error_status` to this many next GET Conversation requests…
    pub conversation_error_next: u32,
    /// …counting only those of this conversation id, when set.
    pub conversation_error_only: Option<String>,
    /// The 5xx of those answers (0 means 503).
    pub conversation_error_status: u16,
    /// Delay before answering the next `conversation_slow_next` GET Conversation requests.
    pub conversation_delay: Duration,
    /// How many GET Conversation requests `conversation_delay` applies to.
    pub conversation_slow_next: u32,
    /// Answer 403 to every `GET /api/v1/events` (missing API User permission).
    pub events_forbidden: bool,
    /// Answer 429 to this many next `GET /api/v1/events` requests…
    pub events_rate_limit_next: u32,
    /// …with this `Retry-After`.
    pub events_rate_limit_retry_after: RetryAfter,
    /// Answer `events_error_status` to this many next `GET /api/v1/events` requests.
    pub events_error_next: u32,
    /// The 5xx of those answers (0 means 503).
    pub events_error_status: u16,
    /// Delay before the response headers of the next `events_slow_next` events requests.
    pub events_delay: Duration,
    /// How many events requests `events_delay` applies to.
    pub events_slow_next: u32,
    /// Cut the connection after this many body bytes, for the next `events_cut_next` events
    /// answers (a 200 whose body breaks off, possibly mid-line).
    pub events_cut_after_bytes: usize,
    /// How many events answers to cut.
    pub events_cut_next: u32,
}

/// The name and cell prefix of the unknown extra column.
pub const EXTRA_COLUMN: &str = "Simulator Note";
/// What the bad-cell fault writes into a timestamp or number cell.
pub const BAD_CELL: &str = "not-a-value";

/// Runtime-switchable faults, shared by every request.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<FaultState>,
}

impl Faults {
    /// Changes the faults.
    pub fn update(&self, f: impl FnOnce(&mut FaultState)) {
        f(&mut self.state.lock().expect("faults lock"));
    }

    /// The faults now.
    pub fn snapshot(&self) -> FaultState {
        self.state.lock().expect("faults lock").clone()
    }

    /// Turns every fault off.
    pub fn clear(&self) {
        self.update(|f| *f = FaultState::default());
    }

    /// The next `n` report requests get 429 with `retry_after`.
    pub fn rate_limit_next(&self, n: u32, retry_after: RetryAfter) {
        self.update(|f| {
            f.rate_limit_next = n;
            f.rate_limit_retry_after = retry_after;
        });
    }

    /// The next `n` report requests get `status` (a 5xx).
    pub fn fail_next(&self, n: u32, status: u16) {
        self.update(|f| {
            f.error_next = n;
            f.error_status = status;
        });
    }

    /// The next `n` responses are cut after `after_bytes` body bytes.
    pub fn cut_next(&self, n: u32, after_bytes: usize) {
        self.update(|f| {
            f.cut_next = n;
            f.cut_after_bytes = after_bytes;
        });
    }

    /// The next `n` report requests wait `delay` before answering.
    pub fn slow_next(&self, n: u32, delay: Duration) {
        self.update(|f| {
            f.slow_next = n;
            f.slow_first_byte = delay;
        });
    }

    /// Takes one request's share of the faults (decrementing the "next N" counters).
    pub(crate) fn take(&self, draw: f64) -> Decision {
        let mut f = self.state.lock().expect("faults lock");
        let mut d = Decision {
            forbidden: f.forbidden,
            ..Decision::default()
        };
        if f.rate_limit_next > 0 {
            f.rate_limit_next -= 1;
            d.rate_limited = Some(f.rate_limit_retry_after);
        } else if f.error_next > 0 {
            f.error_next -= 1;
            d.error = Some(f.error_status);
        } else if draw < f.error_rate {
            d.error = Some(f.error_status);
        }
        if f.slow_next > 0 && !f.slow_first_byte.is_zero() {
            if f.slow_next != u32::MAX {
                f.slow_next -= 1;
            }
            d.slow = f.slow_first_byte;
        }
        d.format = f.clone();
        d
    }

    /// Takes the share of the faults of one GET of conversation `id`: the 5xx to answer, if any.
    pub(crate) fn take_conversation(&self, id: &str) -> Option<u16> {
        let mut f = self.state.lock().expect("faults lock");
        if f.conversation_error_next == 0
            || f.conversation_error_only
                .as_deref()
                .is_some_and(|only| only != id)
        {
            return None;
        }
        f.conversation_error_next -= 1;
        Some(match f.conversation_error_status {
            0 => 503,
            s => s,
        })
    }

    /// The next `n` GET Conversation requests wait `delay` before answering.
    pub fn slow_conversations_next(&self, n: u32, delay: Duration) {
        self.update(|f| {
            f.conversation_slow_next = n;
            f.conversation_delay = delay;
        });
    }

    /// Takes one GET Conversation's share of the delay fault: how long to wait first.
    pub(crate) fn take_conversation_delay(&self) -> Duration {
        let mut f = self.state.lock().expect("faults lock");
        if f.conversation_slow_next == 0 {
            return Duration::ZERO;
        }
        f.conversation_slow_next -= 1;
        f.conversation_delay
    }

    /// Called when a body is actually served: consumes one "cut" if any.
    pub(crate) fn take_cut(&self) -> Option<usize> {
        let mut f = self.state.lock().expect("faults lock");
        (f.cut_next > 0).then(|| {
            f.cut_next -= 1;
            f.cut_after_bytes
        })
    }
}

impl Faults {
    /// The next `n` `GET /api/v1/events` requests get `status` (a 5xx; 0 means 503).
    pub fn fail_events_next(&self, n: u32, status: u16) {
        self.update(|f| {
            f.events_error_next = n;
            f.events_error_status = status;
        });
    }

    /// The next `n` `GET /api/v1/events` requests get 429 with `retry_after`.
    pub fn rate_limit_events_next(&self, n: u32, retry_after: RetryAfter) {
        self.update(|f| {
            f.events_rate_limit_next = n;
            f.events_rate_limit_retry_after = retry_after;
        });
    }

    /// The next `n` `GET /api/v1/events` requests wait `delay` before their headers.
    pub fn slow_events_next(&self, n: u32, delay: Duration) {
        self.update(|f| {
            f.events_slow_next = n;
            f.events_delay = delay;
        });
    }

    /// The next `n` `GET /api/v1/events` 200s break off after `after_bytes` body bytes.
    pub fn cut_events_next(&self, n: u32, after_bytes: usize) {
        self.update(|f| {
            f.events_cut_next = n;
            f.events_cut_after_bytes = after_bytes;
        });
    }

    /// Takes one events request's share of the faults (decrementing the "next N" counters;
    /// the cut is taken by [`Faults::take_events_cut`] when a body is served).
    pub(crate) fn take_events(&self) -> EventsDecision {
        let mut f = self.state.lock().expect("faults lock");
        let mut d = EventsDecision {
            forbidden: f.events_forbidden,
            ..EventsDecision::default()
        };
        if f.events_rate_limit_next > 0 {
            f.events_rate_limit_next -= 1;
            d.rate_limited = Some(f.events_rate_limit_retry_after);
        } else if f.events_error_next > 0 {
            f.events_error_next -= 1;
            d.error = Some(match f.events_error_status {
                0 => 503,
                s => s,
            });
        }
        if f.events_slow_next > 0 && !f.events_delay.is_zero() {
            f.events_slow_next -= 1;
            d.slow = f.events_delay;
        }
        d
    }

    /// Called when an events body is served: consumes one "cut" if any.
    pub(crate) fn take_events_cut(&self) -> Option<usize> {
        let mut f = self.state.lock().expect("faults lock");
        (f.events_cut_next > 0).then(|| {
            f.events_cut_next -= 1;
            f.events_cut_after_bytes
        })
    }
}

/// What happens to one events request.
#[derive(Debug, Default)]
pub(crate) struct EventsDecision {
    pub forbidden: bool,
    pub rate_limited: Option<RetryAfter>,
    pub error: Option<u16>,
    pub slow: Duration,
}

/// What happens to one request.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    pub forbidden: bool,
    pub rate_limited: Option<RetryAfter>,
    pub error: Option<u16>,
    pub slow: Duration,
    pub format: FaultState,
}
