//! The convergence and crash suites (`tests/it/pipeline_convergence.rs`,
//! `tests/it/pipeline_crash.rs`, the same files) against a Kafka broker (KRaft) and an Apicurio
//! registry that this binary starts as containers with the testcontainers crate, instead of
//! the stack `scripts/stack/stack` starts from jars. Built only with the `containers` feature:
//! `cargo test --features containers --test containers` on a machine with Docker needs nothing
//! else (the official images are pulled). `scripts/test` runs it on the project's own engine,
//! whose local stand-ins carry the same image names (docs/docker.md).

#[path = "../it/support/mod.rs"]
mod support;

#[path = "../it/pipeline_convergence.rs"]
mod pipeline_convergence;
#[path = "../it/pipeline_crash.rs"]
mod pipeline_crash;

mod containers;

/// The stack these suites run against: the containers [`containers::start`] starts, once.
fn stack() -> (String, String) {
    containers::start()
}
