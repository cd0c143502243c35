//! The sink: the producer in an explicit delivery mode (transactions, headers), topic admin,
//! and the schema registry client.

pub mod admin;
pub mod config;
pub mod producer;
pub mod registry;

pub use config::{Delivery, KafkaSettings, TopicSettings};
pub use producer::{headers, Outgoing, Publisher, SinkError};
