//! [`EventEntity`]: which kinds of Gladly's events the events feed asks for (the `entities`
//! parameter of `GET /api/v1/events`). The source (`gladly`) sends them, the config names
//! them, the core (`records`) reads an event's entity from its type.

use serde::{Deserialize, Serialize};

/// One value of the Events API's `entities` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventEntity {
    /// `AGENT_AVAILABILITY/*`: which channels an agent is available for.
    AgentAvailability,
    /// `AGENT_STATUS/*`: logins, logouts, away and active reasons.
    AgentStatus,
    /// `CONTACT/*`: a contact's life, from STARTED and OFFERED to ENDED.
    Contact,
    /// `CONVERSATION/*` (and `CONVERSATION_ASSIGNEE/*`): created, closed, topics, notes.
    Conversation,
    /// `CUSTOMER/*`: customers merged.
    Customer,
    /// `CUSTOMER_PROFILE/*`: profiles created, updated, deleted.
    CustomerProfile,
    /// `PAYMENT_REQUEST/*`.
    PaymentRequest,
    /// `TASK/*`.
    Task,
}

impl EventEntity {
    /// Every entity, in a stable order.
    pub const ALL: [EventEntity; 8] = [
        EventEntity::AgentAvailability,
        EventEntity::AgentStatus,
        EventEntity::Contact,
        EventEntity::Conversation,
        EventEntity::Customer,
        EventEntity::CustomerProfile,
        EventEntity::PaymentRequest,
        EventEntity::Task,
    ];

    /// What the events feed asks for unless configured: the contact center's live state
    /// (contacts, conversations, agents' status and availability).
    pub const DEFAULT: [EventEntity; 4] = [
        EventEntity::AgentAvailability,
        EventEntity::AgentStatus,
        EventEntity::Contact,
        EventEntity::Conversation,
    ];

    /// The name Gladly uses: `CONTACT`, `AGENT_STATUS`, ….
    pub fn name(self) -> &'static str {
        match self {
            EventEntity::AgentAvailability => "AGENT_AVAILABILITY",
            EventEntity::AgentStatus => "AGENT_STATUS",
            EventEntity::Contact => "CONTACT",
            EventEntity::Conversation => "CONVERSATION",
            EventEntity::Customer => "CUSTOMER",
            EventEntity::CustomerProfile => "CUSTOMER_PROFILE",
            EventEntity::PaymentRequest => "PAYMENT_REQUEST",
            EventEntity::Task => "TASK",
        }
    }
}

impl std::fmt::Display for EventEntity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_display_and_serde_agree() {
        for e in EventEntity::ALL {
            assert_eq!(e.to_string(), e.name());
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(json, format!("\"{}\"", e.name()));
            assert_eq!(serde_json::from_str::<EventEntity>(&json).unwrap(), e);
        }
        assert_eq!(EventEntity::CustomerProfile.name(), "CUSTOMER_PROFILE");
    }
}
