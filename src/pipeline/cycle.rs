//! One cycle of the poll loop ([`Pipeline::cycle`]): the live windows, then a pass of every
//! re-read tier due at the pipeline clock's now. `once` runs one cycle per report, `run` one
//! per cadence, so a cron-driven deployment re-reads on the same schedule as `run`.

use chrono::{DateTime, Utc};

use super::checkpoint::Scope;
use super::connect::Pipeline;
use super::error::PipelineError;
use super::internal_events::PassCompleted;
use super::job::{remembered, ReportJob};
use super::plan::{live_start, midnight};
use super::report_windows::Cursor;
use super::reread::{pass_range, pass_windows, OpenPass, TierProgress};
use super::summary::Summary;
use super::window::Position;
use crate::config::RereadTier;

impl Pipeline {
    /// One cycle of the poll loop's `job`: its live windows ([`Pipeline::poll`]), then a pass
    /// of every re-read tier due at the pipeline clock's now (see [`Pipeline::due_tiers`]),
    /// each ending where this cycle's live windows began. A failed live poll fails the cycle
    /// before any tier runs; a failed pass fails it too, and the next cycle resumes the pass
    /// where it stopped. The summary counts the passes' windows too (`reread_windows`).
    pub async fn cycle(&self, job: &mut ReportJob) -> Result<Summary, PipelineError> {
        let now = self.clock().now();
        let live = live_start(self.config(), job.report, job.position, now);
        let mut summary = self.poll(job).await?;
        for tier in self.due_tiers(job, now) {
            let s = self.reread_pass(job, &tier, live, now).await?;
            summary.add(&s);
        }
        Ok(summary)
    }

    /// The tiers of `job`'s report due at `now`: a pass is under way, none ever completed,
    /// or the last complete one began the tier's `every` or longer ago. A backfill's job has
    /// none.
    pub fn due_tiers(&self, job: &ReportJob, now: DateTime<Utc>) -> Vec<RereadTier> {
        if job.scope != Scope::Run {
            return Vec::new();
        }
        self.config()
            .reread_tiers(job.report)
            .into_iter()
            .filter(|t| {
                let progress = job.tiers.get(&t.name()).copied().unwrap_or_default();
                progress.due(t.every, now)
            })
            .collect()
    }

    /// A pass of `tier` now, due or not (the one under way, resumed, or a fresh one ending
    /// where a live poll from the job's position starts). A backfill's job has no tiers.
    pub async fn reread(
        &self,
        job: &mut ReportJob,
        tier: &RereadTier,
    ) -> Result<Summary, PipelineError> {
        if job.scope != Scope::Run {
            return Ok(Summary::default());
        }
        let now = self.clock().now();
        let live = live_start(self.config(), job.report, job.position, now);
        self.reread_pass(job, tier, live, now).await
    }

    /// A pass of `tier` at `now` up to `live` (where the live windows start): resumes the
    /// open pass or plans a fresh one, publishes its windows with the tier's progress record,
    /// and keeps the progress in the job even when it fails.
    async fn reread_pass(
        &self,
        job: &mut ReportJob,
        tier: &RereadTier,
        live: Position,
        now: DateTime<Utc>,
    ) -> Result<Summary, PipelineError> {
        let (cfg, report, name) = (self.config(), job.report, tier.name());
        let mut progress = job.tiers.get(&name).copied().unwrap_or_default();
        let fresh = pass_range(cfg, report, tier, live, now);
        let Some(pass) = progress.pass_at(tier.every, now, fresh) else {
            // the live windows cover the whole span (or it ends before `start`): a pass with
            // nothing to re-read is complete as it begins
            let pass = OpenPass {
                from: live,
                to: live,
                started_at: now,
                done: None,
            };
            job.tiers
                .insert(name.clone(), TierProgress::completed(&pass, now));
            let mut summary = Summary::default();
            self.pass_complete(job, &name, &pass, &mut summary);
            return Ok(summary);
        };
        let windows = pass_windows(cfg, report, &pass);
        let result = if windows.is_empty() {
            progress = TierProgress::completed(&pass, now);
            Ok(Summary::default())
        } else {
            tracing::info!(%report, tier = %name, from = %pass.from, to = %pass.to, windows = windows.len(), resumed = pass.done.is_some(), "re-read pass");
            self.remember_back(job, self.instant(report, pass.from))
                .await;
            progress.open = Some(pass);
            let cursor = Cursor::Pass {
                tier: &name,
                progress: &mut progress,
            };
            self.publish_all(job, windows, None, cursor).await
        };
        job.tiers.insert(name.clone(), progress);
        let mut summary = result?;
        summary.reread_windows = summary.windows;
        if progress.open.is_none() {
            self.pass_complete(job, &name, &pass, &mut summary);
        }
        Ok(summary)
    }

    /// Counts a complete pass; every key from the pass's start on has now been read (the
    /// pass up to the live windows, the live windows up to now), so the changelog memory
    /// knows them all.
    fn pass_complete(
        &self,
        job: &mut ReportJob,
        name: &str,
        pass: &OpenPass,
        summary: &mut Summary,
    ) {
        let report = job.report;
        summary.reread_passes = 1;
        let from = self.instant(report, pass.from);
        job.published.known_from(from.timestamp_millis());
        PassCompleted {
            report: report.name(),
            tier: name,
            started_at: pass.started_at,
            summary,
            metrics: &self.ctx().metrics,
        }
        .emit();
    }

    /// Makes `job`'s changelog memory reach back to `from` (a re-read pass about to start
    /// there): reads the topic back again, from the report's longest re-read horizon, so
    /// every later pass is covered too. If that read fails the memory stays as it was, and the
    /// pass republishes the unchanged rows it lacks (upserts absorb them).
    pub(super) async fn remember_back(&self, job: &mut ReportJob, from: DateTime<Utc>) {
        let Some(memory_from) = job.memory_from else {
            return;
        };
        if memory_from <= from.timestamp_millis() {
            return;
        }
        let since = (self.clock().now() - self.config().reread_horizon(job.report))
            .timestamp_millis()
            .min(from.timestamp_millis());
        match remembered(self.config(), job.report, since).await {
            Ok(published) => {
                job.published = published;
                job.memory_from = Some(since);
            }
            Err(e) => {
                tracing::warn!(report = %job.report, error = %e, "cannot read the topic back for a re-read pass; rows it re-reads unchanged are published again")
            }
        }
    }

    /// The instant `p` starts at: itself, or its day's midnight in the report's timezone.
    fn instant(&self, report: crate::report::Report, p: Position) -> DateTime<Utc> {
        match p {
            Position::Instant(t) => t,
            Position::Date(d) => midnight(d, self.config().report_timezone(report)),
        }
    }
}
