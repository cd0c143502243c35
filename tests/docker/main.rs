//! This repository's image and compose file, run for real on a Docker engine
//! (`eval "$(scripts/docker up)"`, then `scripts/docker images` and `scripts/docker build`;
//! `scripts/test` does all three). Built only with the `docker-tests` feature. The image runs
//! with `--network host` against the live stack and the in-process simulator; the compose
//! file's demo profile runs its own broker, registry and simulator. Without an engine or the
//! image the first test prints how to get them and ends the run (no test skips).

#[path = "../it/support/mod.rs"]
mod support;

/// The stack the image test runs against: the one `scripts/stack/stack up` started.
fn stack() -> (String, String) {
    support::stack_from_env()
}

mod compose;
mod engine;
mod image;
