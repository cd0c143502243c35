//! The sink: Kafka producer (transactions, headers), topic admin, schema registry client.

pub mod registry;
