//! The progress line of a long run of windows (a backfill).

use std::time::{Duration, Instant};

/// Progress of a long run of windows: a line at most every few seconds with windows done,
/// rows, rate and ETA.
#[derive(Debug)]
pub struct Progress {
    label: String,
    /// Windows this run publishes.
    total: u64,
    /// Windows published by earlier runs (a resumed backfill).
    done_before: u64,
    done: u64,
    rows: u64,
    started: Instant,
    last_line: Instant,
    every: Duration,
}

impl Progress {
    /// Progress over `total` windows.
    pub fn new(label: impl Into<String>, total: u64, every: Duration) -> Self {
        let now = Instant::now();
        Progress {
            label: label.into(),
            total,
            done_before: 0,
            done: 0,
            rows: 0,
            started: now,
            last_line: now,
            every,
        }
    }

    /// Counts `n` windows as published by an earlier run (a resumed backfill).
    pub fn resumed(mut self, n: u64) -> Self {
        self.done_before = n;
        self
    }

    /// Windows published, earlier runs included.
    pub fn done(&self) -> u64 {
        self.done_before + self.done
    }

    /// Windows in all, earlier runs included (grows when a window is split).
    pub fn planned(&self) -> u64 {
        self.done_before + self.total
    }

    pub(crate) fn add_windows(&mut self, n: u64) {
        self.total += n;
    }

    pub(crate) fn window_done(&mut self, rows: u64) {
        self.done += 1;
        self.rows += rows;
        if self.last_line.elapsed() >= self.every || self.done == self.total {
            self.last_line = Instant::now();
            tracing::info!("{}", self.line());
        }
    }

    /// The progress line: `<label>: 12/720 windows (1.7%), 1234567 rows, 152300 rows/s, ETA 4m12s`
    /// (windows count earlier runs of a resumed backfill; rows and rate this run's).
    pub fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.rows as f64 / secs;
        let pct = if self.planned() == 0 {
            100.0
        } else {
            self.done() as f64 * 100.0 / self.planned() as f64
        };
        let eta = if self.done == 0 {
            "?".to_string()
        } else {
            let left = secs / self.done as f64 * (self.total.saturating_sub(self.done)) as f64;
            format_duration(Duration::from_secs_f64(left))
        };
        format!(
            "{}: {}/{} windows ({pct:.1}%), {} rows, {rate:.0} rows/s, ETA {eta}",
            self.label,
            self.done(),
            self.planned(),
            self.rows
        )
    }

    /// Rows so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }
}

fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_has_rate_and_eta() {
        let mut p = Progress::new("backfill work_sessions", 4, Duration::from_secs(3600));
        p.window_done(1000);
        let line = p.line();
        assert!(
            line.starts_with("backfill work_sessions: 1/4 windows (25.0%), 1000 rows"),
            "{line}"
        );
        assert!(line.contains("rows/s") && line.contains("ETA"), "{line}");
    }

    #[test]
    fn a_resumed_backfill_counts_earlier_windows() {
        let mut p = Progress::new("backfill contacts", 2, Duration::from_secs(3600)).resumed(6);
        assert_eq!((p.done(), p.planned()), (6, 8));
        p.window_done(10);
        p.add_windows(1);
        assert_eq!((p.done(), p.planned()), (7, 9));
        assert!(p.line().contains(": 7/9 windows"), "{}", p.line());
    }
}
