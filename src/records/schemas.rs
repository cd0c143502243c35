//! The Avro contract: the `.avsc` files of `schemas/`, compiled in.

use crate::report::DimensionList;
use crate::report::{BuiltIn, Report};

/// The key schema (`schemas/<report>-key.avsc`) of a built-in report's topic. Panics for a
/// report configured by columns, whose schemas are derived (see [`super::derived`]).
pub fn key_schema(report: Report) -> &'static str {
    built_in(report).key_schema
}

/// The value schema (`schemas/<report>-value.avsc`) of a built-in report's topic. Panics for
/// a report configured by columns.
pub fn value_schema(report: Report) -> &'static str {
    built_in(report).value_schema
}

fn built_in(report: Report) -> &'static BuiltIn {
    BuiltIn::named(report).unwrap_or_else(|| {
        panic!("{report} is configured by columns: its schemas are derived from its header")
    })
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

/// The key schema of the events topic (`schemas/events-key.avsc`).
pub fn events_key_schema() -> &'static str {
    include_str!("../../schemas/events-key.avsc")
}

/// The value schema of the events topic (`schemas/events-value.avsc`).
pub fn events_value_schema() -> &'static str {
    include_str!("../../schemas/events-value.avsc")
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
