//! The Avro contract: the `.avsc` files of `schemas/`, compiled in.

use crate::gladly::DimensionList;
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

/// The key schema of a dimension topic (`schemas/<list>-key.avsc`).
pub fn dimension_key_schema(list: DimensionList) -> &'static str {
    match list {
        DimensionList::Agents => include_str!("../../schemas/agents-key.avsc"),
        DimensionList::Inboxes => include_str!("../../schemas/inboxes-key.avsc"),
        DimensionList::Teams => include_str!("../../schemas/teams-key.avsc"),
        DimensionList::Topics => include_str!("../../schemas/topics-key.avsc"),
    }
}

/// The value schema of a dimension topic (`schemas/<list>-value.avsc`).
pub fn dimension_value_schema(list: DimensionList) -> &'static str {
    match list {
        DimensionList::Agents => include_str!("../../schemas/agents-value.avsc"),
        DimensionList::Inboxes => include_str!("../../schemas/inboxes-value.avsc"),
        DimensionList::Teams => include_str!("../../schemas/teams-value.avsc"),
        DimensionList::Topics => include_str!("../../schemas/topics-value.avsc"),
    }
}
