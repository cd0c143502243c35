//! Windows, checkpoints, the publishing engine and its sources, the poll loop and backfill.
//!
//! The files form a ladder: each one uses only files listed before it (`scripts/module-graph`
//! checks it).
//!
//! - [`window`], `progress`: pure window planning; the backfill's progress line.
//! - [`checkpoint`]: how far each report got, kept in a compacted topic.
//! - `plan`: which windows a poll or backfill covers and what each requests, from the
//!   report's [`crate::report::ReportSpec`].
//! - [`reread`]: re-read tiers: when a tier is due, what a pass covers, its progress record.
//! - `summary`, `error`: what units produced; why a report stopped or an attempt failed.
//! - `internal_events`: the typed internal events, each one log line plus its metrics.
//! - `context`: what every source shares (config, clock, Gladly client, metrics, shutdown).
//! - `engine`: the one owner of a producer's transactions (begin, send, commit, abort,
//!   producer re-creation).
//! - `source`: the source contract and the driver that publishes any source's units through
//!   the engine: retry, split, backoff, the same for all.
//! - `reader`: a window's reader task.
//! - `job`: one report's publishing state ([`ReportJob`]).
//! - `schema`: the evolving value schema of a report configured by columns.
//! - [`conversations`], [`dimensions`], [`event_feed`]: the conversations of a work-session
//!   window's ended contacts (written into the window's transaction); the agents, inboxes,
//!   teams and topics lists, refreshed on a cadence; Gladly's Events API, polled minutes
//!   behind Gladly.
//! - `report_windows`: a report job's windows as a source.
//! - `connect`: the [`Pipeline`]: Gladly client, schemas registered, topics in place, jobs
//!   opened.
//! - `publish`, `cycle`: polls, backfills and re-read passes of a report; one cycle of the
//!   poll loop.
//! - [`service`], [`check`]: the commands `once`, `run`, `backfill`, `status`, `reset`; the
//!   pre-deploy `check`.

// one rung per line, lowest first: rustfmt keeps the order of items apart from each other
pub mod window;

mod progress;

pub mod checkpoint;

mod plan;

pub mod reread;

mod summary;

mod error;

mod internal_events;

mod context;

mod engine;

mod source;

mod reader;

mod job;

mod schema;

pub mod conversations;

pub mod dimensions;

pub mod event_feed;

mod report_windows;

mod connect;

mod publish;

mod cycle;

pub mod service;

pub mod check;

pub use connect::Pipeline;
pub use error::{DimensionError, PipelineError, SetupError};
pub use job::ReportJob;
pub use plan::{request, BackfillBound};
pub use progress::Progress;
pub use summary::{ConversationSummary, Summary};
