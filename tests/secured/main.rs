//! The service against a secured Kafka and schema registry: the secured stack
//! (`STACK_SECURITY=secured scripts/stack/stack up`, which `scripts/test` starts next to the
//! plaintext one) has a SASL_SSL listener with SCRAM-SHA-512 and PLAIN, a certificate signed
//! by its own CA, and the registry on HTTPS with basic auth. Tests never skip when its
//! `SECURED_*` variables are missing: they fail and say how to start it.
//!
//! A stand-alone binary with its own fixture: the real `gladly-kafka` binary (its config in a
//! temporary file) against the simulator as a `gladly-kafka simulate` subprocess.

mod fixture;
mod misconfig;
mod pipeline;
