//! The sink: the producer in an explicit delivery mode (transactions, headers), topic admin,
//! and the schema registry client.

pub mod admin;
pub mod producer;
pub mod reader;
pub mod registry;
pub mod settings;

pub use producer::{headers, Outgoing, Publisher, SinkError};
pub use settings::{Delivery, KafkaSettings, RegistrySettings, TopicSettings};
