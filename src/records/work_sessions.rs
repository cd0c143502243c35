//! Work Session report rows (`POST /api/v1/reports/work-session-events`, V2).
//!
//! Key `{contact_session_id, work_session_id, agent_id}`: `work_session_id` is the row's `id`,
//! empty (null) while the contact is open, so an open contact's provisional rows and its final
//! rows never share a key. When a window holds a contact's rows, the provisional keys that
//! are no longer Gladly's content are tombstoned at [`State::finish`]: `{C, null, a}` for every
//! agent `a` among the rows and `{C, null, null}`, except the keys the window itself wrote.
//! That covers both "the contact ended" (its final rows carry ids) and "an agent accepted an
//! open contact" (its agent-less provisional row is gone). It assumes Gladly only adds work
//! sessions to a contact, never removes one. All rows of a contact share one time anchor, so
//! a window has all of them or none; they need not be adjacent, hence the per-window state.

use std::collections::HashMap;

use super::columns::{Field, Kind, Layout, Val};
use super::{avro, Ctx, Output, Record};
use crate::report::Row;

/// The report's documented columns, in `work_sessions-value.avsc` order.
pub(crate) const FIELDS: &[Field] = &[
    f("id", &["id"], Kind::Str),
    f("contact_session_id", &["contact_session_id"], Kind::Id),
    f(
        "contact_session_created_at",
        &["contact_session_created_at"],
        Kind::Ts,
    ),
    f("customer_id", &["customer_id"], Kind::Str),
    f("conversation_id", &["conversation_id"], Kind::Str),
    f("inbox_id", &["inbox_id"], Kind::Str),
    f("channel", &["channel"], Kind::Str),
    f("direction", &["direction"], Kind::Str),
    f("agent_accepted_at", &["agent_accepted_at"], Kind::Ts),
    f(
        "contact_session_routed_at",
        &["contact_session_routed_at"],
        Kind::Ts,
    ),
    f("agent_id", &["agent_id"], Kind::Str),
    f("sla_fulfilled_at", &["sla_fulfilled_at"], Kind::Ts),
    f(
        "contact_session_ended_at",
        &["contact_session_ended_at"],
        Kind::Ts,
    ),
    f("status", &["status"], Kind::Str),
    f("within_sla", &["within_sla"], Kind::Bool),
    f(
        "work_session_handle_time_sec",
        &["work_session_handle_time_sec", "work_session_handle_time"],
        Kind::Seconds,
    ),
    f(
        "work_session_after_contact_time_sec",
        &["work_session_after_contact_time_sec"],
        Kind::Seconds,
    ),
    f(
        "work_session_unknown_time_sec",
        &["work_session_unknown_time_sec"],
        Kind::Seconds,
    ),
    f("accepted_inbox_id", &["accepted_inbox_id"], Kind::Str),
];

const fn f(name: &'static str, columns: &'static [&'static str], kind: Kind) -> Field {
    Field {
        name,
        columns,
        kind,
    }
}

const ID: usize = 0;
const CONTACT: usize = 1;
const CREATED_AT: usize = 2;
const AGENT: usize = 10;
const ENDED_AT: usize = 12;

/// An id cell as a key part: trimmed, empty = null.
fn key_part<'a>(v: Val<'a>) -> Option<&'a str> {
    v.as_str().map(str::trim).filter(|s| !s.is_empty())
}

/// Writes a work-session key.
pub(crate) fn encode_key(
    key: &mut Vec<u8>,
    contact: &str,
    work_session: Option<&str>,
    agent: Option<&str>,
) {
    avro::string(key, contact);
    avro::opt_string(key, work_session);
    avro::opt_string(key, agent);
}

pub(crate) fn convert(ctx: &Ctx<'_>, row: &Row, vals: &[Val<'_>]) -> Result<Record, String> {
    let anchor = vals[ENDED_AT]
        .as_long()
        .or(vals[CREATED_AT].as_long())
        .ok_or_else(|| {
            "no time anchor: contact_session_ended_at and contact_session_created_at are both \
             empty or missing"
                .to_string()
        })?;
    let contact = vals[CONTACT].as_str().expect("required field");
    let mut key = ctx.key_start();
    encode_key(&mut key, contact, key_part(vals[ID]), key_part(vals[AGENT]));
    let mut value = ctx.value_start(&vals[..FIELDS.len()]);
    avro::long(&mut value, anchor);
    ctx.value_end(&mut value, row);
    Ok(Record {
        key,
        value: Some(value),
        timestamp_ms: anchor,
    })
}

/// Per-window state: each contact seen, its agents, and which provisional keys it wrote.
#[derive(Debug, Default)]
pub(crate) struct State {
    index: HashMap<Box<str>, usize>,
    contacts: Vec<Contact>,
}

#[derive(Debug)]
struct Contact {
    id: Box<str>,
    anchor_ms: i64,
    /// A row of this contact became a dead letter: its keys are unknown, so no tombstones.
    poisoned: bool,
    /// The window wrote `{C, null, null}`.
    wrote_agentless_provisional: bool,
    /// Agents among the rows, and whether the window wrote `{C, null, agent}`.
    agents: Vec<(Box<str>, bool)>,
}

impl State {
    fn contact(&mut self, id: &str, anchor_ms: i64) -> &mut Contact {
        let i = match self.index.get(id) {
            Some(&i) => i,
            None => {
                let i = self.contacts.len();
                self.index.insert(id.into(), i);
                self.contacts.push(Contact {
                    id: id.into(),
                    anchor_ms,
                    poisoned: false,
                    wrote_agentless_provisional: false,
                    agents: Vec::new(),
                });
                i
            }
        };
        &mut self.contacts[i]
    }

    /// Notes a converted row.
    pub(crate) fn seen(&mut self, vals: &[Val<'_>], anchor_ms: i64) {
        let contact = vals[CONTACT].as_str().expect("required field");
        let provisional = key_part(vals[ID]).is_none();
        let c = self.contact(contact, anchor_ms);
        match key_part(vals[AGENT]) {
            None => c.wrote_agentless_provisional |= provisional,
            Some(agent) => match c.agents.iter_mut().find(|(a, _)| &**a == agent) {
                Some((_, wrote)) => *wrote |= provisional,
                None => c.agents.push((agent.into(), provisional)),
            },
        }
    }

    /// Notes a row that became a dead letter: its contact gets no tombstones this window.
    pub(crate) fn poison(&mut self, layout: &Layout, row: &Row) {
        let contact = layout.pos[CONTACT]
            .and_then(|p| row.field(p))
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if let Some(contact) = contact {
            self.contact(contact, 0).poisoned = true;
        }
    }

    /// Appends the tombstones for provisional keys the window's rows superseded.
    pub(crate) fn finish(self, key_schema_id: u32, out: &mut Vec<Output>) {
        for c in self.contacts.into_iter().filter(|c| !c.poisoned) {
            let agentless = (!c.wrote_agentless_provisional).then_some(None);
            let agents = c
                .agents
                .iter()
                .filter(|(_, wrote)| !wrote)
                .map(|(a, _)| Some(&**a));
            for agent in agentless.into_iter().chain(agents) {
                let mut key = Vec::with_capacity(64);
                avro::header(&mut key, key_schema_id);
                encode_key(&mut key, &c.id, None, agent);
                out.push(Output::Record(Record {
                    key,
                    value: None,
                    timestamp_ms: c.anchor_ms,
                }));
            }
        }
    }
}
