//! Windows, checkpoints, the poll loop and backfill.

pub mod checkpoint;
pub mod window;
