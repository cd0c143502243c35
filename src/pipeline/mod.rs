//! Windows, checkpoints, the poll loop and backfill.
//!
//! - [`window`]: pure window planning (contiguous windows, horizons, bucket alignment, halves).
//! - [`checkpoint`]: how far each report got, kept in a compacted topic.
//! - `connect`: the [`Pipeline`] — Gladly client, schemas registered, topics in place.
//! - `job`: one report's producer, converter and checkpoint ([`ReportJob`]).
//! - `plan`: which windows a poll or backfill covers and what each requests, from the report's
//!   [`crate::report::ReportSpec`].
//! - `publish`: a run of windows — attempt, split a capped window, retry.
//! - `window_tx`: one attempt at one window as one transaction, with its checkpoint.
//! - `reader`: the task that reads and converts a window's rows.
//! - `schema`: the value schema a report configured by columns writes, evolved as Gladly adds
//!   columns.
//! - [`reread`]: re-read tiers: when a tier is due, what a pass covers, its progress record.
//! - `cycle`: one cycle of the poll loop: the live windows, then every due tier's pass.
//! - `progress`, `summary`, `error`: the backfill line, counts, and why a report stopped.
//! - [`conversations`]: GET Conversation for a work-session window's ended contacts, published
//!   in the window's transaction.
//! - [`dimensions`]: the agents, inboxes, teams and topics lists, refreshed on a cadence into
//!   compacted topics keyed by id, each refresh one transaction with its checkpoint record.
//! - [`service`]: the commands `once`, `run`, `backfill`, `status`, `reset`.
//! - [`check`]: the pre-deploy `check`.

pub mod check;
pub mod checkpoint;
mod connect;
pub mod conversations;
mod cycle;
pub mod dimensions;
mod error;
mod job;
mod plan;
mod progress;
mod publish;
mod reader;
pub mod reread;
mod schema;
pub mod service;
mod summary;
pub mod window;
mod window_tx;

pub use connect::Pipeline;
pub use error::{PipelineError, SetupError};
pub use job::ReportJob;
pub use plan::{request, BackfillBound};
pub use progress::Progress;
pub use summary::Summary;
