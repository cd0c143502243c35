//! Windows, checkpoints, the poll loop and backfill.
//!
//! - [`window`]: pure window planning (contiguous windows, horizons, bucket alignment, halves).
//! - [`checkpoint`]: how far each report got, kept in a compacted topic.
//! - [`runner`]: one report's windows: fetch, convert, publish with the checkpoint.
//! - [`conversations`]: GET Conversation for a work-session window's ended contacts, published
//!   in the window's transaction.
//! - [`service`]: the commands `once`, `run`, `backfill`, `status`, `reset`.
//! - [`check`]: the pre-deploy `check`.

pub mod check;
pub mod checkpoint;
pub mod conversations;
pub mod runner;
pub mod service;
pub mod window;

pub use runner::{BackfillBound, Pipeline, PipelineError, Progress, ReportJob, Summary};
