//! Confluent-compatible schema registry client (placeholder; see issue 4).
