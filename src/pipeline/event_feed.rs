//! The events feed (`[events] enabled = true`): Gladly's Events API polled every
//! `events.cadence_secs` into the compacted `<prefix>.events` topic, keyed by event id, as one
//! more source of the engine.
//!
//! A poll reads `[cursor − overlap_secs, now − settle_secs)`, cut into ranges of at most
//! `max_range_minutes`; each range is one transaction: its new events, a dead letter for each
//! line that is not an event, and the feed's record in the checkpoint topic (key
//! `events/feed`, a JSON [`FeedCheckpoint`]) whose `covered_until` is the range's end. The
//! cursor never passes what Gladly has served: a range ends `settle_secs` (≥ 15 s, Gladly's
//! documented lag) before the instant it is read. Events read again (the overlap, a retried
//! range, a restart) are not published again: the changelog memory knows them, read back
//! from the topic after a restart. A cursor older than the API's 24 hours (an outage that
//! long) resumes at the oldest instant the API serves, and the lost span is logged, counted
//! and reported in the health check; the reports still carry those contacts.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};
use rdkafka::message::OwnedHeaders;
use serde::{Deserialize, Serialize};

use super::checkpoint::EVENTS_KEY;
use super::context::Context;
use super::engine::{Engine, Transaction};
use super::error::{Failure, PipelineError, SetupError, Stop};
use super::internal_events::{EventsCommitted, EventsLost};
use super::job::{read_back, read_json};
use super::source::{send_dead_letter, Cursored, Source, Written};
use super::summary::Summary;
use super::window::rfc3339;
use crate::config::{Config, COVERAGE_MARGIN_SECS};
use crate::gladly::GladlyError;
use crate::kafka::registry::{RegistryClient, RegistryError};
use crate::kafka::{headers, Outgoing, OwnedOutgoing};
use crate::observe::reason_label;
use crate::records::changes::{self, key_id, Pending, Published};
use crate::records::{schemas, DeadLetter, EventEncoder, SchemaIds, WindowMeta};
use crate::report::EventEntity;
use crate::VERSION;

/// Why the driver stopped the events feed, as the service's error.
impl From<Stop<EventRange>> for PipelineError {
    fn from(stop: Stop<EventRange>) -> Self {
        match stop {
            Stop::Shutdown => PipelineError::Shutdown,
            // refused credentials and a fenced producer stop the service; another refusal
            // (a 400, a 404, a redirect) fails the poll, and the reports go on
            Stop::Refused { unit, refusal } => PipelineError::Events {
                fatal: refusal.stops_the_process(),
                message: format!("{unit}: {refusal}"),
            },
            Stop::Exhausted {
                unit,
                attempts,
                last,
            } => PipelineError::Events {
                message: format!("{unit} failed {attempts} times; last error: {last}. The cursor did not move: the next poll retries it"),
                fatal: false,
            },
            Stop::TooBig { unit, .. } => PipelineError::Events {
                message: format!(
                    "{unit}: Gladly's answer for one second of events is longer than the service holds in memory; lower events.entities to fewer entities"
                ),
                fatal: false,
            },
        }
    }
}

/// The `gladly.report` header and dead-letter `report` of the events feed.
pub const SOURCE: &str = "events";

/// How far back the Events API serves.
const COVERAGE: Duration = Duration::hours(24);

/// The feed's record in the checkpoint topic, written in each range's transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedCheckpoint {
    /// Every event recorded before this instant has been read and published.
    pub covered_until: DateTime<Utc>,
    /// The newest event timestamp published so far.
    pub newest_event: Option<DateTime<Utc>>,
    /// The entities asked for.
    pub entities: Vec<EventEntity>,
    /// When it was written (service clock).
    pub updated_at: DateTime<Utc>,
    /// The run that wrote it.
    pub run_id: String,
    /// Service version that wrote it.
    pub service_version: String,
}

/// One range of the feed, `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRange {
    /// Start (inclusive).
    pub from: DateTime<Utc>,
    /// End (exclusive).
    pub to: DateTime<Utc>,
}

impl std::fmt::Display for EventRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {})", rfc3339(self.from), rfc3339(self.to))
    }
}

/// What a poll of the feed did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FeedSummary {
    /// Ranges published.
    pub ranges: u64,
    /// Events published.
    pub records: u64,
    /// Events read again and not published.
    pub suppressed: u64,
    /// Lines sent to the dead-letter topic.
    pub dead_letters: u64,
    /// Seconds of events lost to an outage longer than the API's 24 hours.
    pub lost_secs: i64,
}

/// The ranges a poll at `now` covers: from the cursor less the overlap (or, with no cursor
/// or one too old, the oldest instant the API serves) to `now − settle`, cut to
/// `max_range_minutes`; and the span lost when the cursor is older than the API serves.
pub fn plan(
    cfg: &Config,
    covered_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (Vec<EventRange>, Option<EventRange>) {
    let e = &cfg.events;
    let oldest = now - COVERAGE + Duration::seconds(COVERAGE_MARGIN_SECS as i64);
    let to = now - Duration::seconds(e.settle_secs as i64);
    let from = covered_until.map_or(oldest, |c| {
        (c - Duration::seconds(e.overlap_secs as i64)).max(oldest)
    });
    let lost = covered_until.filter(|c| *c < oldest).map(|c| EventRange {
        from: c,
        to: oldest,
    });
    let step = Duration::minutes(e.max_range_minutes.max(1) as i64);
    let mut ranges = Vec::new();
    let mut start = from;
    while start < to {
        let end = (start + step).min(to);
        ranges.push(EventRange {
            from: start,
            to: end,
        });
        start = end;
    }
    (ranges, lost)
}

/// The events feed of a [`super::connect::Pipeline`]: its encoder and topic.
pub(crate) struct EventSource {
    encoder: EventEncoder,
    topic: String,
    entities: Vec<EventEntity>,
}

impl EventSource {
    /// The source for `config` (`None` when `[events]` is disabled); registers the topic's
    /// schemas.
    pub(crate) async fn connect(
        config: &Config,
        registry: &RegistryClient,
    ) -> Result<Option<EventSource>, RegistryError> {
        if !config.events.enabled {
            return Ok(None);
        }
        let topic = config.topics.events_topic();
        let key = registry
            .register(&format!("{topic}-key"), schemas::events_key_schema())
            .await?;
        let value = registry
            .register(&format!("{topic}-value"), schemas::events_value_schema())
            .await?;
        Ok(Some(EventSource {
            encoder: EventEncoder::new(SchemaIds { key, value }),
            topic,
            entities: config.events.entities(),
        }))
    }

    /// Opens the feed: its producer (fencing older holders of `<prefix>.events`), its
    /// checkpoint, and what its topic holds since the cursor less the overlap.
    pub(crate) async fn open(&self, ctx: &Context) -> Result<FeedJob, SetupError> {
        let cfg = &ctx.config;
        let txid = format!("{}.events", cfg.transactional_id_prefix());
        let engine = Engine::open(&cfg.kafka, txid, SOURCE, ctx.metrics.clone())
            .await
            .map_err(|source| SetupError::Events(source.to_string()))?;
        let checkpoint = read_feed_checkpoint(cfg).await?;
        let published = match &checkpoint {
            None => Published::default(),
            Some(c) => {
                let since = (c.covered_until
                    - Duration::seconds(
                        (cfg.events.overlap_secs + cfg.events.cadence_secs) as i64,
                    ))
                .timestamp_millis();
                let read = read_back(cfg, self.topic.clone(), since, |v| {
                    changes::fingerprint_before_longs(v, 1)
                })
                .await?;
                tracing::info!(
                    events = read.len(),
                    "remembered the events the topic holds since the overlap"
                );
                Published::rebuilt(read, since)
            }
        };
        Ok(FeedJob {
            engine,
            checkpoint,
            published,
        })
    }

    /// One poll of the feed at the context's now.
    pub(crate) async fn poll(
        &self,
        ctx: &Context,
        job: &mut FeedJob,
    ) -> Result<FeedSummary, Stop<EventRange>> {
        let now = ctx.clock.now();
        let covered = job.checkpoint.as_ref().map(|c| c.covered_until);
        let (ranges, lost) = plan(&ctx.config, covered, now);
        let lost_secs = lost.map_or(0, |lost| {
            EventsLost {
                from: lost.from,
                to: lost.to,
                metrics: &ctx.metrics,
            }
            .emit();
            (lost.to - lost.from).num_seconds()
        });
        let engine = job.engine.clone();
        let mut feed = EventFeed {
            ctx,
            source: self,
            job,
        };
        let s = super::source::drive(ctx, &engine, &mut feed, ranges, None).await?;
        Ok(FeedSummary {
            ranges: s.windows,
            records: s.records,
            suppressed: s.suppressed,
            dead_letters: s.dead_letters,
            lost_secs,
        })
    }
}

/// The feed's state between polls: its engine, cursor and changelog memory.
pub struct FeedJob {
    engine: Engine,
    checkpoint: Option<FeedCheckpoint>,
    published: Published,
}

impl FeedJob {
    /// Where the feed's cursor stands.
    pub fn checkpoint(&self) -> Option<&FeedCheckpoint> {
        self.checkpoint.as_ref()
    }
}

/// One poll of the feed, as a source: a unit is a range.
struct EventFeed<'a> {
    ctx: &'a Context,
    source: &'a EventSource,
    job: &'a mut FeedJob,
}

/// A written range, until it is committed.
struct RangeDone {
    /// Its counts: records, suppressed, dead letters by reason.
    summary: Summary,
    pending: Pending,
    checkpoint: FeedCheckpoint,
    headers: OwnedHeaders,
}

impl Source for EventFeed<'_> {
    type Unit = EventRange;
    type Done = RangeDone;

    fn label(&self) -> &str {
        SOURCE
    }

    /// GETs the range, then sends each event not published yet and a dead letter for each
    /// line that is not an event.
    async fn write(
        &mut self,
        range: &EventRange,
        tx: &mut Transaction,
    ) -> Result<Written<RangeDone>, Failure> {
        let (ctx, source) = (self.ctx, self.source);
        let body = match ctx
            .gladly
            .events(&source.entities, range.from, range.to)
            .await
        {
            Ok(body) => body,
            // more than the service holds in memory at once: the range is split
            Err(GladlyError::TooLong { .. }) => return Ok(Written::TooBig { rows: 0 }),
            Err(e) => return Err(Failure::Gladly(e)),
        };
        let fetched_at = ctx.clock.now();
        let fetched = fetched_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let (start, end) = (rfc3339(range.from), rfc3339(range.to));
        let headers = headers([
            ("gladly.report", SOURCE),
            ("gladly.window.start", start.as_str()),
            ("gladly.window.end", end.as_str()),
            ("gladly.fetched_at", fetched.as_str()),
            ("gladly.run_id", ctx.run_id.as_str()),
            ("gladly.service_version", VERSION),
        ]);
        let meta = WindowMeta {
            window_start: range.from,
            window_end: range.to,
            fetched_at,
        };
        let mut done = RangeDone {
            summary: Summary::default(),
            pending: Pending::default(),
            checkpoint: FeedCheckpoint {
                covered_until: range.to,
                newest_event: self.job.checkpoint.as_ref().and_then(|c| c.newest_event),
                entities: source.entities.clone(),
                updated_at: fetched_at,
                run_id: ctx.run_id.clone(),
                service_version: VERSION.to_string(),
            },
            headers,
        };
        for (n, line) in body.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let event = match source.encoder.record(line, fetched_at) {
                Ok(e) => e,
                Err(reason) => {
                    let dl = DeadLetter {
                        line: n as u64 + 1,
                        reason,
                        raw: vec![(
                            "line".to_string(),
                            String::from_utf8_lossy(line).into_owned(),
                        )],
                    };
                    tracing::warn!(line = dl.line, reason = %dl.reason, "event line sent to the dead-letter topic");
                    send_dead_letter(&ctx.dead_letters, tx, SOURCE, &dl, &meta, &done.headers)
                        .await
                        .map_err(Failure::Sink)?;
                    let s = &mut done.summary;
                    s.dead_letters += 1;
                    *s.dead_letter_reasons
                        .entry(reason_label(&dl.reason))
                        .or_default() += 1;
                    continue;
                }
            };
            let r = &event.record;
            let key = key_id(&r.key);
            if !self.job.published.wants(key, r.fingerprint, r.since_ms) {
                done.summary.suppressed += 1;
                continue;
            }
            tx.send(Outgoing {
                topic: &source.topic,
                key: Some(&r.key),
                value: r.value.as_deref(),
                timestamp_ms: r.timestamp_ms,
                headers: &done.headers,
            })
            .await
            .map_err(Failure::Sink)?;
            done.pending.push(key, r.fingerprint, r.timestamp_ms);
            done.summary.records += 1;
            let newest = &mut done.checkpoint.newest_event;
            *newest = Some(newest.map_or(event.timestamp, |t| t.max(event.timestamp)));
        }
        Ok(Written::Complete(done))
    }
}

impl Cursored for EventFeed<'_> {
    fn kind(&self) -> &'static str {
        "range"
    }

    /// From the cursor less the overlap to now less the settling time.
    fn plan(&self) -> Vec<EventRange> {
        let covered = self.job.checkpoint.as_ref().map(|c| c.covered_until);
        plan(&self.ctx.config, covered, self.ctx.clock.now()).0
    }

    /// Halves a range whose answer was too long, down to one second.
    fn split(&mut self, range: &EventRange, queue: &mut VecDeque<EventRange>) -> bool {
        let half = (range.to - range.from) / 2;
        if half < Duration::seconds(1) {
            return false;
        }
        let mid = range.from + half;
        queue.push_front(EventRange {
            from: mid,
            to: range.to,
        });
        queue.push_front(EventRange {
            from: range.from,
            to: mid,
        });
        true
    }

    fn cursor(&self, _range: &EventRange, done: &RangeDone) -> OwnedOutgoing {
        OwnedOutgoing {
            topic: self.ctx.config.topics.checkpoint_topic(),
            key: EVENTS_KEY.as_bytes().to_vec(),
            value: serde_json::to_vec(&done.checkpoint).expect("a feed checkpoint serialises"),
            // wall-clock time, like the reports' checkpoints
            timestamp_ms: Utc::now().timestamp_millis(),
            headers: done.headers.clone(),
        }
    }

    fn committed(&mut self, range: &EventRange, done: RangeDone) -> Summary {
        let cfg = &self.ctx.config.events;
        let job = &mut *self.job;
        job.published.apply(done.pending);
        // what no later poll re-reads any more
        let forget = done.checkpoint.covered_until
            - Duration::seconds((cfg.overlap_secs + cfg.cadence_secs) as i64);
        job.published.forget_before(forget.timestamp_millis());
        EventsCommitted {
            range: &range.to_string(),
            summary: &done.summary,
            covered_until: done.checkpoint.covered_until,
            newest: done.checkpoint.newest_event,
            metrics: &self.ctx.metrics,
        }
        .emit();
        job.checkpoint = Some(done.checkpoint);
        Summary {
            windows: 1,
            ..done.summary
        }
    }
}

/// The feed's record in the checkpoint topic, if any; an unreadable one is logged and taken
/// as none (the feed then starts at the oldest instant the API serves, and the changelog
/// memory it reads back keeps it from publishing twice what the topic holds).
async fn read_feed_checkpoint(cfg: &Config) -> Result<Option<FeedCheckpoint>, SetupError> {
    Ok(read_json::<FeedCheckpoint>(cfg, |k| k == EVENTS_KEY)
        .await?
        .remove(EVENTS_KEY))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_first_poll_starts_at_the_oldest_instant_the_api_serves() {
        let cfg = Config::default();
        let now = at("2024-03-11T12:00:00Z");
        let (ranges, lost) = plan(&cfg, None, now);
        assert_eq!(lost, None);
        assert_eq!(ranges[0].from, at("2024-03-10T12:15:00Z"));
        assert_eq!(ranges.last().unwrap().to, at("2024-03-11T11:59:00Z"));
        assert!(ranges.windows(2).all(|w| w[0].to == w[1].from));
        assert!(ranges
            .iter()
            .all(|r| r.to - r.from <= Duration::minutes(15)));
    }

    #[test]
    fn a_poll_rereads_the_overlap_and_ends_before_now() {
        let cfg = Config::default();
        let now = at("2024-03-11T12:00:00Z");
        let (ranges, lost) = plan(&cfg, Some(at("2024-03-11T11:58:00Z")), now);
        assert_eq!(lost, None);
        assert_eq!(
            ranges,
            [EventRange {
                from: at("2024-03-11T11:53:00Z"),
                to: at("2024-03-11T11:59:00Z")
            }]
        );
    }

    #[test]
    fn a_cursor_older_than_the_api_serves_loses_the_span_between() {
        let cfg = Config::default();
        let now = at("2024-03-12T18:00:00Z");
        let (ranges, lost) = plan(&cfg, Some(at("2024-03-11T12:00:00Z")), now);
        let lost = lost.expect("a lost span");
        assert_eq!(lost.from, at("2024-03-11T12:00:00Z"));
        assert_eq!(lost.to, at("2024-03-11T18:15:00Z"));
        assert_eq!(ranges[0].from, lost.to);
    }
}
