//! Hostile answers: `once` of the real binary against a stand-in Gladly that answers badly
//! (`server`), one test per way it can. Each asserts the exit status, the error or the
//! dead-letter reason, where the checkpoint stands, and (reading back `read_committed`) that
//! nothing was half-published. Needs the stack (`KAFKA_BOOTSTRAP`, `SCHEMA_REGISTRY_URL`).

mod answers;
mod fixture;
mod rows;
mod server;
mod timing;
