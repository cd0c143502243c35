//! The Avro contract: the `.avsc` files of `schemas/`, compiled in.

use crate::report::Report;

/// The key schema (`schemas/<report>-key.avsc`) of a report's topic.
pub fn key_schema(report: Report) -> &'static str {
    match report {
        Report::WorkSessions => include_str!("../../schemas/work_sessions-key.avsc"),
        Report::Contacts => include_str!("../../schemas/contacts-key.avsc"),
        Report::AgentSummary => include_str!("../../schemas/agent_summary-key.avsc"),
    }
}

/// The value schema (`schemas/<report>-value.avsc`) of a report's topic.
pub fn value_schema(report: Report) -> &'static str {
    match report {
        Report::WorkSessions => include_str!("../../schemas/work_sessions-value.avsc"),
        Report::Contacts => include_str!("../../schemas/contacts-value.avsc"),
        Report::AgentSummary => include_str!("../../schemas/agent_summary-value.avsc"),
    }
}

/// The value schema of the dead-letter topic (`schemas/dead_letter-value.avsc`).
pub fn dead_letter_schema() -> &'static str {
    include_str!("../../schemas/dead_letter-value.avsc")
}

/// The key schema of the conversations topic (`schemas/conversations-key.avsc`).
pub fn conversation_key_schema() -> &'static str {
    include_str!("../../schemas/conversations-key.avsc")
}

/// The value schema of the conversations topic (`schemas/conversations-value.avsc`).
pub fn conversation_value_schema() -> &'static str {
    include_str!("../../schemas/conversations-value.avsc")
}
