//! The commands on top of [`Pipeline`]: `once`, `run`, `backfill`, `status`, `reset`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::checkpoint::{checkpoint_key, read_checkpoints, Checkpoint, Scope};
use super::connect::Pipeline;
use super::error::{PipelineError, SetupError};
use super::event_feed::FeedSummary;
use super::plan::BackfillBound;
use super::progress::Progress;
use super::reread::TierProgress;
use super::summary::Summary;
use super::window::Position;
use crate::config::Config;
use crate::kafka::access::probe;
use crate::report::Report;

/// One cycle of every enabled report (or just `only`): its live windows, then its due re-read
/// tiers ([`Pipeline::cycle`]), so cron-driven `once` re-reads on the same schedule as `run`.
/// A report that fails does not stop the others; the map says how each one ended.
pub async fn once(
    pipeline: &Pipeline,
    only: Option<Report>,
) -> BTreeMap<Report, Result<Summary, PipelineError>> {
    let reports: Vec<Report> = pipeline
        .config()
        .enabled_reports()
        .into_iter()
        .filter(|r| only.is_none_or(|o| o == *r))
        .collect();
    let mut out = BTreeMap::new();
    for report in reports {
        let res = async {
            let mut job = pipeline.open(report, Scope::Run).await?;
            pipeline.cycle(&mut job).await
        }
        .await;
        if !matches!(res, Err(PipelineError::Shutdown)) {
            pipeline.metrics().cycle_done(
                report.name(),
                res.as_ref().map(|_| ()).map_err(|e| e.to_string()),
            );
        }
        let fatal = res
            .as_ref()
            .err()
            .is_some_and(|e| e.is_fatal() || matches!(e, PipelineError::Shutdown));
        out.insert(report, res);
        if fatal {
            break;
        }
    }
    out
}

/// Runs a cycle of every enabled report on its cadence ([`Pipeline::cycle`]: live windows,
/// then due re-read tiers) until shutdown. Returns `Ok` on shutdown, `Err`
/// when a report hit an error that retrying cannot fix (fenced, refused credentials).
///
/// Each report counts as ready (`/health/ready`) during its first cadence, then while its
/// last cycle succeeded and no window of the running cycle has failed.
pub async fn run(pipeline: Pipeline, shutdown: watch::Receiver<bool>) -> Result<(), PipelineError> {
    let mut tasks = tokio::task::JoinSet::new();
    for report in pipeline.config().enabled_reports() {
        pipeline
            .metrics()
            .expect_report(report.name(), pipeline.config().cadence(report));
    }
    for report in pipeline.config().enabled_reports() {
        let p = pipeline.clone();
        let mut stop = shutdown.clone();
        tasks.spawn(async move {
            let cadence = p.config().cadence(report);
            let metrics = p.metrics();
            let mut job = loop {
                match p.open(report, Scope::Run).await {
                    Ok(job) => break job,
                    Err(e) if e.is_fatal() => {
                        metrics.cycle_done(report.name(), Err(e.to_string()));
                        return Err(e);
                    }
                    Err(e) => {
                        metrics.cycle_done(report.name(), Err(e.to_string()));
                        tracing::error!(%report, error = %e, "cannot start the report; retrying in 30 s");
                        if wait(&mut stop, Duration::from_secs(30)).await {
                            return Ok(());
                        }
                    }
                }
            };
            loop {
                match p.cycle(&mut job).await {
                    Ok(s) => {
                        metrics.cycle_done(report.name(), Ok(()));
                        tracing::info!(%report, windows = s.windows, rows = s.rows, records = s.records, reread_windows = s.reread_windows, "cycle done");
                    }
                    Err(PipelineError::Shutdown) => return Ok(()),
                    Err(e) if e.is_fatal() => {
                        metrics.cycle_done(report.name(), Err(e.to_string()));
                        return Err(e);
                    }
                    Err(e) => {
                        metrics.cycle_done(report.name(), Err(e.to_string()));
                        tracing::error!(%report, error = %e, "cycle failed; the next cycle retries from the checkpoint");
                    }
                }
                if wait(&mut stop, cadence).await {
                    return Ok(());
                }
            }
        });
    }
    if pipeline.inner.dimensions.is_some() {
        let p = pipeline.clone();
        let stop = shutdown.clone();
        tasks.spawn(async move { dimensions_loop(p, stop).await });
    }
    if pipeline.inner.events.is_some() {
        let p = pipeline.clone();
        let stop = shutdown.clone();
        let cadence = Duration::from_secs(p.config().events.cadence_secs);
        p.metrics().expect_events(cadence);
        tasks.spawn(async move { events_loop(p, stop).await });
    }
    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tasks.abort_all();
                result = Err(e);
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => result = Err(SetupError::joined("a report task", e).into()),
        }
    }
    result
}

/// `once` for the dimension lists: refreshes the enabled lists that are due (not refreshed
/// within `dimensions.cadence_secs`); nothing when `[dimensions]` is disabled.
/// (`enabled` false: nothing, as for `once --report`.)
pub async fn once_dimensions(
    pipeline: &Pipeline,
    enabled: bool,
) -> Result<Vec<super::dimensions::ListSummary>, PipelineError> {
    if !enabled {
        return Ok(Vec::new());
    }
    Ok(pipeline.refresh_dimensions(true).await?)
}

/// `run`'s dimensions task: refreshes the lists as they come due until shutdown. A failed
/// refresh is retried after a minute (or at the cadence, if shorter); refused credentials and
/// a fenced producer stop the service.
async fn dimensions_loop(
    p: Pipeline,
    mut stop: watch::Receiver<bool>,
) -> Result<(), PipelineError> {
    let cadence = Duration::from_secs(p.config().dimensions.cadence_secs);
    loop {
        let wait_for = match p.refresh_dimensions(true).await {
            Ok(_) => match p.dimensions_next_due().await {
                Ok(next) => (next - p.clock().now())
                    .to_std()
                    .unwrap_or_default()
                    .max(Duration::from_secs(1)),
                Err(e) => {
                    tracing::error!(error = %e, "reading the dimension checkpoints failed");
                    cadence
                }
            },
            Err(e) if e.is_fatal() => return Err(e.into()),
            Err(e) => {
                tracing::error!(error = %e, "dimension refresh failed; retrying");
                cadence.min(Duration::from_secs(60))
            }
        };
        if wait(&mut stop, wait_for).await {
            return Ok(());
        }
    }
}

/// `once` for the events feed: one poll (nothing when `[events]` is disabled, or with
/// `enabled` false, as for `once --report`).
pub async fn once_events(
    pipeline: &Pipeline,
    enabled: bool,
) -> Result<Option<FeedSummary>, PipelineError> {
    if !enabled {
        return Ok(None);
    }
    let Some(mut job) = pipeline.open_events().await? else {
        return Ok(None);
    };
    let res = pipeline.poll_events(&mut job).await;
    events_health(pipeline, &res);
    res.map(Some)
}

/// The events feed's health: ready while its last poll succeeded and lost nothing.
fn events_health(p: &Pipeline, res: &Result<FeedSummary, PipelineError>) {
    let outcome = match res {
        Ok(s) if s.lost_secs > 0 => Err(format!(
            "{} s of events were lost to an outage longer than the Events API's 24 hours (see the log)",
            s.lost_secs
        )),
        Ok(_) => Ok(()),
        Err(PipelineError::Shutdown) => return,
        Err(e) => Err(e.to_string()),
    };
    p.metrics().cycle_done(EVENTS, outcome);
}

/// The health and metrics name of the events feed.
const EVENTS: &str = super::event_feed::SOURCE;

/// `run`'s events task: polls the feed every `events.cadence_secs` until shutdown. A failed
/// poll is retried at the next cadence, from the cursor; refused credentials and a fenced
/// producer stop the service.
async fn events_loop(p: Pipeline, mut stop: watch::Receiver<bool>) -> Result<(), PipelineError> {
    let cadence = Duration::from_secs(p.config().events.cadence_secs);
    let mut job = loop {
        match p.open_events().await {
            Ok(Some(job)) => break job,
            Ok(None) => return Ok(()),
            Err(e) if e.is_fatal() => {
                p.metrics().cycle_done(EVENTS, Err(e.to_string()));
                return Err(e);
            }
            Err(e) => {
                p.metrics().cycle_done(EVENTS, Err(e.to_string()));
                tracing::error!(error = %e, "cannot start the events feed; retrying in 30 s");
                if wait(&mut stop, Duration::from_secs(30)).await {
                    return Ok(());
                }
            }
        }
    };
    loop {
        let res = p.poll_events(&mut job).await;
        events_health(&p, &res);
        match res {
            Ok(s) => tracing::debug!(
                ranges = s.ranges,
                records = s.records,
                suppressed = s.suppressed,
                "events poll done"
            ),
            Err(PipelineError::Shutdown) => return Ok(()),
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => {
                tracing::error!(error = %e, "events poll failed; the next poll retries from the cursor")
            }
        }
        if wait(&mut stop, cadence).await {
            return Ok(());
        }
    }
}

/// Waits `d` or until shutdown; true when shutting down.
async fn wait(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    }
}

/// Publishes `[from, to]` of one report through the same path as `run`, resumable from its own
/// checkpoint, with a progress line.
pub async fn backfill(
    pipeline: &Pipeline,
    report: Report,
    from: BackfillBound,
    to: BackfillBound,
) -> Result<Summary, PipelineError> {
    let scope = Scope::Backfill {
        from: from.text(),
        to: to.text(),
    };
    let mut job = pipeline.open(report, scope).await?;
    // a backfill remembers what it publishes from its start on; the keys of its range that
    // other runs published were their own to delete
    job.published
        .known_from(from.start_instant().timestamp_millis());
    let all = pipeline.plan_backfill(report, from, to);
    let total = all.len();
    let windows: Vec<_> = match job.position() {
        Some(p) => all.into_iter().filter(|w| w.end_position() > p).collect(),
        None => all,
    };
    if windows.len() < total {
        tracing::info!(%report, done = total - windows.len(), total, "resuming the backfill from its checkpoint");
    }
    let mut progress = Progress::new(
        format!("backfill {report}"),
        windows.len() as u64,
        Duration::from_secs(5),
    )
    .resumed((total - windows.len()) as u64);
    pipeline
        .metrics()
        .backfill_progress(report.name(), progress.done(), progress.planned());
    let summary = pipeline
        .publish_windows(&mut job, windows, Some(&mut progress))
        .await?;
    tracing::info!("{}", progress.line());
    if let Some(p) = job.position() {
        pipeline.write_checkpoint(&mut job, p, true).await?;
    }
    Ok(summary)
}

/// One line of `status`.
#[derive(Debug, Clone)]
pub struct StatusLine {
    /// Checkpoint key.
    pub key: String,
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Now minus the position, when it is an instant or a day (for a re-read tier: now minus
    /// the start of its last complete pass).
    pub lag: chrono::Duration,
    /// For a re-read tier's record: where it stands.
    pub reread: Option<TierStatus>,
}

/// Where a re-read tier stands, for `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierStatus {
    /// Its pass under way and its last complete pass.
    pub progress: TierProgress,
    /// When its next pass is due (now, when one is under way); `None` when the tier is no
    /// longer configured.
    pub next_due: Option<DateTime<Utc>>,
}

/// Reads every checkpoint and computes lags against `now`. Blocking.
pub fn status(config: &Config, now: DateTime<Utc>) -> Result<Vec<StatusLine>, PipelineError> {
    probe(&config.kafka, Duration::from_secs(30)).map_err(SetupError::Kafka)?;
    let all = read_checkpoints(
        &config.kafka,
        &config.topics.checkpoint_topic(),
        Duration::from_secs(30),
    )
    .map_err(SetupError::from)?;
    Ok(all
        .into_iter()
        .map(|(key, checkpoint)| {
            let reread = tier_status(config, &checkpoint, now);
            let at = match reread.and_then(|r| r.progress.last) {
                Some(last) => last.started_at,
                None => checkpoint.position.covered_until(),
            };
            StatusLine {
                key,
                lag: (now - at).max(chrono::Duration::zero()),
                checkpoint,
                reread,
            }
        })
        .collect())
}

/// Where the tier of a re-read progress record stands at `now`; `None` for other records.
fn tier_status(config: &Config, c: &Checkpoint, now: DateTime<Utc>) -> Option<TierStatus> {
    let Scope::Reread { tier } = &c.scope else {
        return None;
    };
    let progress = TierProgress::from_record(c);
    let every = config
        .reread_tiers(c.report)
        .into_iter()
        .find(|t| &t.name() == tier)
        .map(|t| chrono::Duration::from_std(t.every).unwrap_or(chrono::Duration::MAX));
    let next_due = every.map(|every| match (progress.open, progress.last) {
        (None, Some(last)) => last
            .started_at
            .checked_add_signed(every)
            .map_or(DateTime::<Utc>::MAX_UTC, |due| due.max(now)),
        _ => now,
    });
    Some(TierStatus { progress, next_due })
}

/// Moves a report's `run` checkpoint (over an unreadable one too). The producer takes the
/// report's transactional id, so a running instance is fenced and stops: restart it afterwards.
pub async fn reset(
    pipeline: &Pipeline,
    report: Report,
    to: BackfillBound,
) -> Result<Position, PipelineError> {
    let mut job = pipeline.open_job(report, Scope::Run, true).await?;
    let position = match (job.spec.by_instants(), to) {
        (true, BackfillBound::Instant(t)) => Position::Instant(t),
        (true, BackfillBound::Date(d)) => {
            Position::Instant(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
        }
        (false, BackfillBound::Date(d)) => Position::Date(d),
        (false, BackfillBound::Instant(t)) => Position::Date(t.date_naive()),
    };
    pipeline.write_checkpoint(&mut job, position, false).await?;
    tracing::info!(%report, %position, key = %checkpoint_key(report, &Scope::Run), "checkpoint moved");
    Ok(position)
}
