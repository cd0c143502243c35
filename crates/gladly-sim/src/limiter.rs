//! Gladly's org-wide limits at admission: report requests per (scaled) minute and at once,
//! every other request per (scaled) second, each over a sliding window.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::faults::Limits;

/// Admission times and requests in flight.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Admission times of report requests (the per-minute limit).
    admitted: VecDeque<Instant>,
    /// Report requests admitted and not yet done.
    in_flight: u32,
    /// Admission times of other requests (the per-second limit).
    gets: VecDeque<Instant>,
}

/// Drops the admission times older than `window`.
fn forget_older(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        times.pop_front();
    }
}

impl Limiter {
    /// Admits another (non-report) request under the per-second limit: `Ok(remaining)`, or
    /// how long until it could be admitted.
    pub(crate) fn admit_get(&self, limits: &Limits) -> Result<u32, Duration> {
        if !limits.enabled {
            return Ok(limits.per_second);
        }
        let mut l = self.state.lock().expect("limiter lock");
        let now = Instant::now();
        forget_older(&mut l.gets, now, limits.second);
        if l.gets.len() >= limits.per_second as usize {
            let oldest = *l.gets.front().expect("non-empty");
            return Err(limits.second.saturating_sub(now.duration_since(oldest)));
        }
        l.gets.push_back(now);
        Ok(limits.per_second - l.gets.len() as u32)
    }

    /// Admits a report request: the slot it holds until dropped, and how many are in flight
    /// with it; or how long until it could be admitted (`None` while the concurrency limit is
    /// what is full).
    pub(crate) fn admit_report(
        self: &Arc<Self>,
        limits: &Limits,
    ) -> Result<(InFlight, u32), Option<Duration>> {
        let mut l = self.state.lock().expect("limiter lock");
        if limits.enabled {
            let now = Instant::now();
            forget_older(&mut l.admitted, now, limits.minute);
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
        Ok((InFlight(self.clone()), l.in_flight))
    }
}

/// One admitted report request; releases its concurrency slot when dropped (after the body).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Limiter>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut l = self.0.state.lock().expect("limiter lock");
        l.in_flight = l.in_flight.saturating_sub(1);
    }
}
