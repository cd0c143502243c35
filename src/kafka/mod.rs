//! The sink: the producer in an explicit delivery mode (transactions, headers), topic admin,
//! the probe that proves the brokers accept the client, and the schema registry client.

pub mod access;
pub mod admin;
pub mod producer;
pub mod reader;
pub mod registry;
mod registry_error;
pub mod settings;

pub use producer::{headers, Outgoing, OwnedOutgoing, Publisher, SinkError};
pub use settings::{Delivery, KafkaSettings, RegistrySettings, TopicSettings};
