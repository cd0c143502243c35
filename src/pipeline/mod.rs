//! Windows, checkpoints, the poll loop and backfill.
