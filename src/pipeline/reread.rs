//! Re-read tiers, the pure part: when a tier is due, which range a pass covers, the windows
//! it is cut into, and the progress record each of its windows commits.
//!
//! A pass of a tier (span `S`) covers what the live poll no longer re-reads: from `now − S`
//! (work sessions; for date reports `today − span_days`; never before `start` when it is set)
//! up to where the cycle's live poll starts (`checkpoint − lookback`, or the live horizon's
//! first bucket). It is cut like the live windows and goes through the same job, producer,
//! changelog memory and attempt/split/retry path; each window's transaction writes the tier's
//! progress record (`reread/<report>/<tier>`) instead of the live checkpoint, which a re-read
//! never moves.

use chrono::{DateTime, Duration, Utc};

use super::checkpoint::{Checkpoint, CompletedPass, PassRecord, Scope};
use super::plan::{buckets, today};
use super::window::{cut_dates, cut_instants, floor_minute, Position, Window};
use crate::config::{Config, RereadTier, TierSpan};
use crate::report::Report;

/// Where a re-read tier stands: a pass under way, and the last complete pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierProgress {
    /// A pass that began and has not finished (interrupted, or running).
    pub open: Option<OpenPass>,
    /// The last complete pass: the tier is due again `every` after it began.
    pub last: Option<CompletedPass>,
}

/// A pass under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenPass {
    /// Where it starts.
    pub from: Position,
    /// Where it ends (inclusive for days).
    pub to: Position,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// The end of its last committed window, if any.
    pub done: Option<Position>,
}

impl TierProgress {
    /// What a tier's progress record says.
    pub fn from_record(c: &Checkpoint) -> TierProgress {
        let Some(p) = c.pass else {
            return TierProgress::default();
        };
        let open = (!c.complete).then_some(OpenPass {
            from: p.from,
            to: p.to,
            started_at: p.started_at,
            done: c.window.as_ref().map(|_| c.position),
        });
        TierProgress {
            open,
            last: p.last_complete,
        }
    }

    /// True when a pass should run in a cycle at `now`: one is under way, none ever
    /// completed, or the last complete one began `every` or longer ago.
    pub fn due(&self, every: std::time::Duration, now: DateTime<Utc>) -> bool {
        let every = Duration::from_std(every).unwrap_or(Duration::MAX);
        self.open.is_some() || self.last.is_none_or(|l| now - l.started_at >= every)
    }

    /// The pass to run at `now`: the open one, resumed, unless it began `every` or longer
    /// ago (a fresh pass covers the span as it is now, and finishing the stale one would
    /// only make the tier due again at once); otherwise `fresh`, beginning now. `None` when
    /// there is nothing to re-read.
    pub fn pass_at(
        &self,
        every: std::time::Duration,
        now: DateTime<Utc>,
        fresh: Option<(Position, Position)>,
    ) -> Option<OpenPass> {
        let every = Duration::from_std(every).unwrap_or(Duration::MAX);
        match self.open {
            Some(open) if now - open.started_at < every => Some(open),
            _ => fresh.map(|(from, to)| OpenPass {
                from,
                to,
                started_at: now,
                done: None,
            }),
        }
    }

    /// The progress once `pass` has nothing left (or never had anything) to re-read at `now`.
    pub fn completed(pass: &OpenPass, now: DateTime<Utc>) -> TierProgress {
        TierProgress {
            open: None,
            last: Some(CompletedPass {
                started_at: pass.started_at,
                finished_at: now,
            }),
        }
    }
}

/// The range a fresh pass of `tier` covers at `now`, ending where the cycle's live poll
/// starts (`live_start`, from [`super::plan::live_start`] before the poll ran): `None` when
/// the live poll covers it all (or `start` is later).
pub(crate) fn pass_range(
    cfg: &Config,
    report: Report,
    tier: &RereadTier,
    live_start: Position,
    now: DateTime<Utc>,
) -> Option<(Position, Position)> {
    match (live_start, cfg.date_settings(report)) {
        (Position::Instant(live), None) => {
            let mut from = now - tier.span_duration();
            if let Some(start) = cfg.reports.work_sessions.start {
                from = from.max(start);
            }
            let (from, to) = (floor_minute(from), floor_minute(live));
            (from < to).then_some((Position::Instant(from), Position::Instant(to)))
        }
        (Position::Date(live), Some(s)) => {
            let TierSpan::Days(days) = tier.span else {
                return None;
            };
            let mut from = today(cfg, report, now) - Duration::days(i64::from(days));
            if let Some(start) = s.start {
                from = from.max(start);
            }
            let to = live - Duration::days(1);
            (from <= to).then_some((Position::Date(from), Position::Date(to)))
        }
        _ => None,
    }
}

/// The windows left of `pass`: from where it got (or its start) to its end, cut like the
/// live windows (`max_window_minutes`, or `max_window_days` and whole buckets).
pub(crate) fn pass_windows(cfg: &Config, report: Report, pass: &OpenPass) -> Vec<Window> {
    match (pass.done.unwrap_or(pass.from), pass.to) {
        (Position::Instant(from), Position::Instant(to)) => {
            let max = cfg.reports.work_sessions.max_window_minutes as i64;
            cut_instants(from, to, Duration::minutes(max))
                .into_iter()
                .map(Window::Instants)
                .collect()
        }
        (Position::Date(at), Position::Date(to)) => {
            let from = match pass.done {
                Some(_) => at + Duration::days(1),
                None => at,
            };
            if from > to {
                return Vec::new();
            }
            let max_days = cfg.date_settings(report).map_or(1, |s| s.max_window_days);
            cut_dates(from, to, max_days, buckets(cfg, report))
                .into_iter()
                .map(Window::Dates)
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The progress record a window of `pass` commits: `position` is the window's end, and
/// once that reaches the pass's end the pass is complete (and the last complete pass).
pub(crate) fn pass_record(
    base: Checkpoint,
    tier: &str,
    progress: &TierProgress,
    pass: &OpenPass,
    end: Position,
) -> Checkpoint {
    let complete = end >= pass.to;
    let last_complete = if complete {
        Some(CompletedPass {
            started_at: pass.started_at,
            finished_at: base.updated_at,
        })
    } else {
        progress.last
    };
    Checkpoint {
        scope: Scope::Reread {
            tier: tier.to_string(),
        },
        position: end,
        complete,
        pass: Some(PassRecord {
            from: pass.from,
            to: pass.to,
            started_at: pass.started_at,
            last_complete,
        }),
        ..base
    }
}

#[cfg(test)]
#[path = "reread_tests.rs"]
mod tests;
