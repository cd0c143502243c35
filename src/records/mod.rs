//! The pure core, no I/O: rows to keyed Avro records, tombstones and dead letters, per report.
