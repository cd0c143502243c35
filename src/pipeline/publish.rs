//! Publishing a run of windows: each is attempted, split when it reaches the row cap, and
//! retried with backoff when it fails. `once`, `run` and `backfill` all go through
//! [`Pipeline::publish_windows`].

use std::collections::VecDeque;
use std::time::Duration;

use super::connect::Pipeline;
use super::error::{Failure, PipelineError};
use super::job::ReportJob;
use super::plan::halves;
use super::plan::window_start_instant;
use super::progress::Progress;
use super::summary::Summary;
use super::window::Window;
use super::window_tx::{Attempt, Cursor};
use crate::gladly::retry::Backoff;

/// Longest wait between two attempts at a window.
const MAX_WINDOW_BACKOFF: Duration = Duration::from_secs(60);

/// What became of one window.
enum Outcome {
    /// Published: its counts.
    Published(Summary),
    /// Split in two, queued in its place.
    Split,
}

impl Pipeline {
    /// One poll of a report: plan and publish.
    pub async fn poll(&self, job: &mut ReportJob) -> Result<Summary, PipelineError> {
        let windows = self.plan(job);
        let first = windows
            .first()
            .map(|w| window_start_instant(w, self.config(), job.report));
        let summary = self.publish_windows(job, windows, None).await?;
        if let Some(t) = first {
            // the whole pass from `t` on was read and published: every key that exists from
            // there on is now remembered, so a key the memory lacks was never published
            job.published.known_from(t.timestamp_millis());
        }
        Ok(summary)
    }

    /// Publishes `windows` in order, each with its checkpoint; splits capped windows; retries
    /// failed ones with backoff. Stops at the first window that cannot be published.
    pub async fn publish_windows(
        &self,
        job: &mut ReportJob,
        windows: Vec<Window>,
        progress: Option<&mut Progress>,
    ) -> Result<Summary, PipelineError> {
        self.publish_all(job, windows, progress, &mut Cursor::Job)
            .await
    }

    /// [`Pipeline::publish_windows`], each window's transaction ending with `cursor`'s record
    /// (the job's checkpoint, or a re-read tier's progress).
    pub(super) async fn publish_all(
        &self,
        job: &mut ReportJob,
        windows: Vec<Window>,
        mut progress: Option<&mut Progress>,
        cursor: &mut Cursor<'_>,
    ) -> Result<Summary, PipelineError> {
        let mut queue: VecDeque<Window> = windows.into();
        let mut total = Summary::default();
        while let Some(window) = queue.pop_front() {
            if self.stopping() {
                return Err(PipelineError::Shutdown);
            }
            let queued = queue.len();
            let (outcome, retries) = self.publish_window(job, window, &mut queue, cursor).await?;
            total.retries += retries;
            match outcome {
                Outcome::Published(s) => {
                    total.add(&s);
                    if let Some(p) = progress.as_deref_mut() {
                        p.window_done(s.rows);
                    }
                }
                // the split window is replaced by what the queue gained
                Outcome::Split => {
                    total.splits += 1;
                    if let Some(p) = progress.as_deref_mut() {
                        p.add_windows((queue.len() - queued - 1) as u64);
                    }
                }
            }
            if let Some(p) = progress.as_deref() {
                self.inner
                    .metrics
                    .backfill_progress(job.report.name(), p.done(), p.planned());
            }
        }
        Ok(total)
    }

    /// Attempts `window` up to `pipeline.window_attempts` times; a capped window is split and
    /// its halves queued first. Returns the outcome and the failed attempts.
    async fn publish_window(
        &self,
        job: &mut ReportJob,
        window: Window,
        queue: &mut VecDeque<Window>,
        cursor: &mut Cursor<'_>,
    ) -> Result<(Outcome, u64), PipelineError> {
        let cfg = &self.config().pipeline;
        let attempts = cfg.window_attempts.max(1);
        let backoff = Backoff {
            initial: Duration::from_millis(cfg.retry_backoff_ms),
            max: MAX_WINDOW_BACKOFF,
        };
        let mut last = String::new();
        for attempt in 1..=attempts {
            match self.attempt(job, window, cursor).await {
                Ok(Attempt::Done(s)) => return Ok((Outcome::Published(s), u64::from(attempt - 1))),
                Ok(Attempt::Capped(s)) => {
                    self.split(job, window, s.rows, queue)?;
                    return Ok((Outcome::Split, u64::from(attempt - 1)));
                }
                Err(f) => last = self.failed(job, &window, attempt, f)?,
            }
            if attempt < attempts {
                let wait = backoff.delay(attempt, &mut rand::thread_rng());
                if self.sleep_or_shutdown(wait).await {
                    return Err(PipelineError::Shutdown);
                }
            }
        }
        Err(PipelineError::Exhausted {
            report: job.report,
            window: window.to_string(),
            attempts,
            last,
        })
    }

    /// Queues the halves of a capped window in its place (its aborted attempt published
    /// nothing: the halves publish its rows). A work-session split also cuts the rest of the
    /// queue to the half's size, rather than each window being fetched to the cap and thrown
    /// away (a request of Gladly's scarce budget).
    fn split(
        &self,
        job: &ReportJob,
        window: Window,
        rows: u64,
        queue: &mut VecDeque<Window>,
    ) -> Result<(), PipelineError> {
        let cap = self.config().pipeline.row_cap;
        let Some((a, b)) = halves(self.config(), job.report, &window, job.buckets) else {
            let smallest = match window {
                Window::Instants(_) if self.config().date_settings(job.report).is_some() => {
                    "a one-minute time-precise window"
                }
                _ => window.smallest(job.buckets),
            };
            return Err(PipelineError::CapReached {
                report: job.report,
                window: window.to_string(),
                rows,
                cap,
                smallest,
            });
        };
        tracing::warn!(report = %job.report, %window, rows, cap, "window reached the row cap (or its conversations would not fit in one transaction): splitting it in two");
        self.inner.metrics.window_split(job.report.name());
        if let (Window::Instants(half), None) = (a, self.config().date_settings(job.report)) {
            // the rest of this cycle's work-session windows get the half's size too
            let max = half.end() - half.start();
            *queue = queue.iter().flat_map(|w| w.cut_to(max)).collect();
        }
        queue.push_front(b);
        queue.push_front(a);
        Ok(())
    }

    /// Handles a failed attempt: errors retrying cannot fix stop the report; others are
    /// logged and counted, and their message returned.
    fn failed(
        &self,
        job: &mut ReportJob,
        window: &Window,
        attempt: u32,
        f: Failure,
    ) -> Result<String, PipelineError> {
        let report = job.report;
        match f {
            Failure::Shutdown => return Err(PipelineError::Shutdown),
            Failure::Gladly(e) if !e.is_retryable() => {
                return Err(PipelineError::Gladly { report, source: e })
            }
            Failure::Sink(e) if e.is_fenced() => {
                return Err(PipelineError::Fenced { report, source: e })
            }
            Failure::Sink(ref e) if e.needs_new_producer() => job.publisher = None,
            _ => {}
        }
        self.inner.metrics.window_failed(report.name());
        tracing::warn!(%report, %window, attempt, error = %f, "window failed; retrying it");
        Ok(f.to_string())
    }
}
