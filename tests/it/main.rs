//! The tests that share the live stack (a Kafka broker and a schema registry from
//! `scripts/stack/stack up`), in one binary: one link of the crate instead of one per suite,
//! and their tests run side by side. Built only with the `stack-tests` feature, which
//! `scripts/test` turns on; without `KAFKA_BOOTSTRAP` and `SCHEMA_REGISTRY_URL` the first test
//! to need them prints how to start the stack and ends the run (see [`support`]).
//!
//! The suites that stop the shared broker are binaries of their own
//! (`tests/observe_health.rs`, `tests/pipeline_broker_restart.rs`), so they never pull it
//! away from these.

mod support;

/// The stack these suites run against: the one `scripts/stack/stack up` started.
fn stack() -> (String, String) {
    support::stack_from_env()
}

mod compaction;
mod dimensions;
mod engine;
mod events;
mod flink;
mod hostile;
mod kafka_sink;
mod observe;
mod observe_dashboards;
mod pipeline_changelog;
mod pipeline_convergence;
mod pipeline_conversations;
mod pipeline_crash;
mod pipeline_edges;
mod pipeline_paced;
mod registry;
mod reports_configured;
mod tail;
mod warehouse;
