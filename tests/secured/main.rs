//! The service against a secured Kafka and schema registry: the secured stack
//! (`STACK_SECURITY=secured scripts/stack/stack up`, which `scripts/test` starts next to the
//! plaintext one) has a SASL_SSL listener with SCRAM-SHA-512 and PLAIN, a certificate signed
//! by its own CA, and the registry on HTTPS with basic auth. Tests never skip when its
//! `SECURED_*` variables are missing: they fail and say how to start it.
//!
//! A stand-alone binary with its own fixture: the real `gladly-kafka` binary (its config in a
//! temporary file) against the simulator as a `gladly-kafka simulate` subprocess. What lands
//! is compared with the simulator's own answer ([`truth`]), mapped by the oracle the `it`
//! suites use (written apart from `src/records` and `src/pipeline`).

mod fixture;
mod misconfig;
// the `it` suites' oracle: this binary may not use all of it
#[allow(dead_code)]
#[path = "../it/support/oracle.rs"]
mod oracle;
mod pipeline;
mod truth;
