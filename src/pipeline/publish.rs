//! Publishing a report's windows: a poll from its checkpoint, a backfill's range, a re-read
//! pass. Each runs the report windows source through the engine's driver ([`drive`]), which
//! attempts, splits and retries every window alike. `once`, `run` and `backfill` all go
//! through [`Pipeline::publish_windows`].

use super::connect::Pipeline;
use super::dimensions::ListSummary;
use super::error::{DimensionError, PipelineError, Stop};
use super::event_feed::{FeedJob, FeedSummary};
use super::job::ReportJob;
use super::plan::{backfill_windows, window_start_instant, BackfillBound};
use super::progress::Progress;
use super::report_windows::{Cursor, ReportWindows};
use super::source::{drive, Cursored};
use super::summary::Summary;
use super::window::Window;
use crate::report::Report;

impl Pipeline {
    /// The windows a poll of `job` covers now: from its checkpoint (less the lookback, or
    /// from `start`) to now.
    pub fn plan(&self, job: &mut ReportJob) -> Vec<Window> {
        self.report_windows(job, Cursor::Job).plan()
    }

    /// `job`'s windows as a source, each ending with `cursor`'s record.
    fn report_windows<'a>(
        &'a self,
        job: &'a mut ReportJob,
        cursor: Cursor<'a>,
    ) -> ReportWindows<'a> {
        ReportWindows {
            ctx: self.ctx(),
            job,
            cursor,
            conversations: self.inner.conversations.as_ref(),
        }
    }

    /// The windows of a backfill over `[from, to]` (dates inclusive, or instants).
    pub fn plan_backfill(
        &self,
        report: Report,
        from: BackfillBound,
        to: BackfillBound,
    ) -> Vec<Window> {
        backfill_windows(self.config(), report, from, to)
    }

    /// One poll of a report: plan (see [`Cursored::plan`]) and publish.
    pub async fn poll(&self, job: &mut ReportJob) -> Result<Summary, PipelineError> {
        let windows = self.report_windows(job, Cursor::Job).plan();
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
        self.publish_all(job, windows, progress, Cursor::Job).await
    }

    /// [`Pipeline::publish_windows`], each window's transaction ending with `cursor`'s record
    /// (the job's checkpoint, or a re-read tier's progress).
    pub(super) async fn publish_all(
        &self,
        job: &mut ReportJob,
        windows: Vec<Window>,
        progress: Option<&mut Progress>,
        cursor: Cursor<'_>,
    ) -> Result<Summary, PipelineError> {
        let engine = job.engine.clone();
        let report = job.report;
        let buckets = job.buckets;
        let mut source = self.report_windows(job, cursor);
        drive(self.ctx(), &engine, &mut source, windows, progress)
            .await
            .map_err(|stop| self.stopped(report, buckets, stop))
    }

    /// Refreshes the enabled dimension lists that are due (`due_only`: not refreshed within
    /// `dimensions.cadence_secs`), or all of them (nothing when `[dimensions]` is disabled).
    pub async fn refresh_dimensions(
        &self,
        due_only: bool,
    ) -> Result<Vec<ListSummary>, DimensionError> {
        match &self.inner.dimensions {
            Some(lists) => lists.refresh(self.ctx(), due_only).await,
            None => Ok(Vec::new()),
        }
    }

    /// The next instant a dimension list is due (now when one is due or never refreshed).
    pub async fn dimensions_next_due(
        &self,
    ) -> Result<chrono::DateTime<chrono::Utc>, DimensionError> {
        match &self.inner.dimensions {
            Some(lists) => lists.next_due(self.ctx()).await,
            None => {
                let cadence = self.config().dimensions.cadence_secs as i64;
                Ok(self.clock().now() + chrono::Duration::seconds(cadence))
            }
        }
    }

    /// Opens the events feed (`None` when `[events]` is disabled): its producer, cursor and
    /// changelog memory.
    pub async fn open_events(&self) -> Result<Option<FeedJob>, PipelineError> {
        match &self.inner.events {
            Some(feed) => Ok(Some(feed.open(self.ctx()).await?)),
            None => Ok(None),
        }
    }

    /// One poll of the events feed: every range from its cursor (less the overlap) to now less
    /// the settling time, each with the cursor in its transaction.
    pub async fn poll_events(&self, job: &mut FeedJob) -> Result<FeedSummary, PipelineError> {
        match &self.inner.events {
            Some(feed) => Ok(feed.poll(self.ctx(), job).await?),
            None => Ok(FeedSummary::default()),
        }
    }

    /// Why a report's windows stopped, as the report's error.
    fn stopped(
        &self,
        report: Report,
        buckets: super::window::Buckets,
        stop: Stop<Window>,
    ) -> PipelineError {
        match stop {
            Stop::Shutdown => PipelineError::Shutdown,
            Stop::Refused { refusal, .. } => refusal.into_report_error(report),
            Stop::Exhausted {
                unit,
                attempts,
                last,
            } => PipelineError::Exhausted {
                report,
                window: unit.to_string(),
                attempts,
                last,
            },
            Stop::TooBig { unit, rows } => {
                let smallest = match unit {
                    Window::Instants(_) if self.config().date_settings(report).is_some() => {
                        "a one-minute time-precise window"
                    }
                    _ => unit.smallest(buckets),
                };
                PipelineError::CapReached {
                    report,
                    window: unit.to_string(),
                    rows,
                    cap: self.config().pipeline.row_cap,
                    smallest,
                }
            }
        }
    }
}
