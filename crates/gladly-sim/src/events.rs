//! The events of `GET /api/v1/events`, derived from the same contacts, conversations and
//! agent shifts as the reports, so that both tell one story:
//!
//! - `CONTACT/*`: the Contact Timestamps report's events of a contact (`STARTED`,
//!   `OFFER_ACCEPTED` per agent, `TRANSFERRED` from the second agent on, `HOLD_STARTED` and
//!   `HOLD_ENDED` on phone calls, `ENDED`) at the same instants, plus an `OFFERED` shortly
//!   before each accept (none for the agent who starts an outbound contact). `ENDED` names
//!   the ids of the contact's work-session rows.
//! - `CONVERSATION/*` and `CONVERSATION_ASSIGNEE/UPDATED`: the Conversation Timestamps
//!   report's events (`CREATED`, an assignee update per accept, `TOPIC_ADDED`, `CLOSED`,
//!   `REOPENED`, `TOPIC_REMOVED`) at the same instants.
//! - `AGENT_STATUS/LOGGED_IN`, `AGENT_AVAILABILITY/UPDATED`, `AGENT_STATUS/LOGGED_OUT`: the
//!   daily shifts the Agent Summary report counts (`Logged In`, `Logged Out`).
//!
//! An event is a pure function of the seed and what it is: its id (22-character URL-safe
//! base64, like Gladly's), its bytes, its visibility lag and whether it carries the unknown
//! field [`EVENT_EXTRA_FIELD`]. An event exists once the clock reaches its `timestamp` and
//! never changes after; an open contact has no `ENDED` until it ends.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::config::EventLag;
use crate::conversations::run;
use crate::model::{Contact, Kind, Model, HOUR_MS};
use crate::reports::{
    agent_before, assignments, contact_events, conversation_events, inbox_then, shift_start_hour,
    ConversationEvent, SHIFT_MS,
};
use crate::rng::mix;
use crate::timestamp::ts;
use crate::wire::{EVENT_ENTITIES, EVENT_EXTRA_FIELD};

const DAY_MS: i64 = 24 * HOUR_MS;
/// An instant by which every event of an entity has happened.
const FAR: i64 = i64::MAX / 4;

/// A set of `entities` values ([`EVENT_ENTITIES`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Entities(u8);

impl Entities {
    /// Adds `name`; false when it is not an entity.
    pub(crate) fn add(&mut self, name: &str) -> bool {
        match EVENT_ENTITIES.iter().position(|e| *e == name) {
            Some(i) => {
                self.0 |= 1 << i;
                true
            }
            None => false,
        }
    }

    fn has(self, entity: &str) -> bool {
        EVENT_ENTITIES
            .iter()
            .position(|e| *e == entity)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// True when events of type `kind` belong to one of these: the entity is the part before
    /// the `/`, `CONVERSATION_ASSIGNEE` counting as `CONVERSATION`.
    pub(crate) fn wants(self, kind: &str) -> bool {
        let entity = kind.split('/').next().unwrap_or(kind);
        self.has(match entity {
            "CONVERSATION_ASSIGNEE" => "CONVERSATION",
            other => other,
        })
    }
}

/// Which events to produce: those of `entities` with `start_ms <= timestamp < end_ms`,
/// recorded by `now_ms`, and, when `lagged`, visible by then.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// First instant (inclusive).
    pub(crate) start_ms: i64,
    /// Last instant (exclusive).
    pub(crate) end_ms: i64,
    /// The simulated now.
    pub(crate) now_ms: i64,
    /// The entities asked for.
    pub(crate) entities: Entities,
    /// Apply each event's visibility lag.
    pub(crate) lagged: bool,
}

/// One event, as a line of the answer.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// Its `id`.
    pub(crate) id: String,
    /// The compact JSON object, without the newline.
    pub(crate) line: String,
}

/// Groups of events, in the order they come at one instant.
const CONVERSATION: u8 = 0;
const CONTACT: u8 = 1;
const AGENT: u8 = 2;

/// The order of the answer: timestamp, then group, entity and place in the entity's events.
type Key = (i64, u8, u64, u16);

/// What an event is, as a number: a bijective hash of its group, entity and place among the
/// entity's events. Its id encodes it (so [`crate::Simulator::event_lag`] can decode it); its
/// lag and extra field derive from it.
fn identity(group: u8, n: u64, seq: u16) -> u64 {
    mix((u64::from(group) << 60) | ((n & ((1 << 48) - 1)) << 12) | u64::from(seq & 0xFFF))
}

/// A uniform draw in `[0, 1)` from `x`.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// How long after its timestamp the event `identity` becomes visible.
pub(crate) fn lag_ms(seed: u64, lag: &EventLag, identity: u64) -> i64 {
    let max = lag.max.num_milliseconds().max(0);
    let mut out = if max > 0 {
        (mix(seed ^ mix(identity ^ 0x01A6_0000)) % max as u64) as i64
    } else {
        0
    };
    if unit(mix(seed ^ mix(identity ^ 0x1A7E_0000))) < lag.late_fraction {
        out += lag.late_by.num_milliseconds().max(0);
    }
    out
}

/// Who did it.
#[derive(Debug, Clone, Copy)]
enum Initiator {
    Agent(u32),
    Customer(u64),
    /// Routing, rules: no id (sent as an empty string).
    System,
}

impl Initiator {
    fn json(self, m: &Model) -> Value {
        match self {
            Initiator::Agent(a) => json!({"id": m.id(Kind::Agent, a.into()), "type": "AGENT"}),
            Initiator::Customer(c) => json!({"id": m.id(Kind::Customer, c), "type": "CUSTOMER"}),
            Initiator::System => json!({"id": "", "type": "SYSTEM"}),
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: String,
    initiator: Value,
    content: Map<String, Value>,
}

/// `{inboxId, agentId?}`.
fn assignee(m: &Model, inbox: u64, agent: Option<u32>) -> Value {
    let mut v = json!({ "inboxId": m.id(Kind::Inbox, inbox) });
    if let Some(a) = agent {
        v["agentId"] = json!(m.id(Kind::Agent, a.into()));
    }
    v
}

/// The events of a window, generated an hour of contacts at a time and handed out in order.
pub(crate) struct EventSource {
    model: Model,
    lag: EventLag,
    w: Window,
    hour: i64,
    last_hour: i64,
    pending: BTreeMap<Key, Event>,
}

impl EventSource {
    /// The events of `w` in the contact center `model`.
    pub(crate) fn new(model: Model, lag: EventLag, w: Window) -> Self {
        // a conversation's events run until its last close: its contacts start in its first
        // hour, end at most `max_open` later, and their conversation ends come at most 3 hours
        // after that
        let lookback = model.max_open_ms + 4 * HOUR_MS;
        let hour = model.hour_of(w.start_ms.saturating_sub(lookback));
        let last_hour = model.hour_of(w.end_ms.min(w.now_ms.saturating_add(1)) - 1);
        EventSource {
            model,
            lag,
            w,
            hour,
            last_hour,
            pending: BTreeMap::new(),
        }
    }

    /// Every event not generated yet has a timestamp at or after this.
    fn frontier(&self) -> i64 {
        if self.hour > self.last_hour {
            i64::MAX
        } else {
            self.model.origin_ms + self.hour * HOUR_MS
        }
    }

    /// Generates the events of the contacts and conversations created in hour `h`, and of the
    /// agent shifts starting or ending in it.
    fn generate(&mut self, h: i64) {
        let mut sink = Sink {
            m: &self.model,
            lag: &self.lag,
            w: &self.w,
            out: &mut self.pending,
        };
        let e = self.w.entities;
        if h >= 0 && e.wants("CONVERSATION/") {
            sink.conversations(h);
        }
        if h >= 0 && e.wants("CONTACT/") {
            sink.contacts(h);
        }
        if e.wants("AGENT_STATUS/") || e.wants("AGENT_AVAILABILITY/") {
            let from = self.model.origin_ms + h * HOUR_MS;
            sink.agents(from, from + HOUR_MS);
        }
    }
}

impl Iterator for EventSource {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        loop {
            let frontier = self.frontier();
            if let Some(first) = self.pending.first_entry() {
                if first.key().0 < frontier {
                    return Some(first.remove());
                }
            }
            if self.hour > self.last_hour {
                return None;
            }
            self.generate(self.hour);
            self.hour += 1;
        }
    }
}

/// Where generated events go: kept when the window wants them, rendered only then.
struct Sink<'a> {
    m: &'a Model,
    lag: &'a EventLag,
    w: &'a Window,
    out: &'a mut BTreeMap<Key, Event>,
}

/// A contact event before it is rendered.
struct ContactSpec {
    at: i64,
    kind: &'static str,
    initiator: Initiator,
    /// The agent assigned before the event.
    before: Option<u32>,
    /// `agentId` (offers) or the new assignee (transfers).
    agent: Option<u32>,
}

/// Ties at one instant: the order the events of a contact happen in.
fn contact_rank(kind: &str) -> u8 {
    match kind {
        "CONTACT/STARTED" => 0,
        "CONTACT/OFFERED" => 1,
        "CONTACT/OFFER_ACCEPTED" => 2,
        "CONTACT/TRANSFERRED" => 3,
        "CONTACT/HOLD_STARTED" => 4,
        "CONTACT/HOLD_ENDED" => 5,
        _ => 6,
    }
}

impl Sink<'_> {
    /// True when the window wants an event of `kind` at `at` with `identity`.
    fn keeps(&self, at: i64, kind: &str, identity: u64) -> bool {
        at >= self.w.start_ms
            && at < self.w.end_ms
            && at <= self.w.now_ms
            && self.w.entities.wants(kind)
            && (!self.w.lagged
                || at.saturating_add(lag_ms(self.m.seed, self.lag, identity)) <= self.w.now_ms)
    }

    /// Renders an event and queues it.
    fn push(
        &mut self,
        key: (i64, u8, u64, u16),
        kind: &str,
        initiator: Initiator,
        mut content: Map<String, Value>,
    ) {
        let (at, group, n, seq) = key;
        let identity = identity(group, n, seq);
        let m = self.m;
        let id = m.id(Kind::Event, identity);
        if mix(m.seed ^ mix(identity ^ 0xE47A_0000)) % 50 == 0 {
            content.insert(
                EVENT_EXTRA_FIELD.into(),
                json!({"note": "a field this client does not know yet", "revision": 2}),
            );
        }
        let line = serde_json::to_string(&Envelope {
            id: &id,
            kind,
            timestamp: ts(at),
            initiator: initiator.json(m),
            content,
        })
        .expect("an event serializes");
        self.out.insert(key, Event { id, line });
    }

    /// The events of the contacts created in hour `h`.
    fn contacts(&mut self, h: i64) {
        let count = self.m.hour_count(h);
        for j in 0..count {
            let c = self.m.contact(h, j, count);
            if c.created_ms > self.w.now_ms {
                break;
            }
            self.contact(&c);
        }
    }

    /// Every event of contact `c` (happened or not) in order.
    fn contact_specs(&self, c: &Contact) -> Vec<ContactSpec> {
        let work = &c.work[..c.n_work];
        let mut specs: Vec<ContactSpec> = contact_events(c)
            .into_iter()
            .map(|e| {
                let agent_or_customer = e
                    .initiator
                    .map_or(Initiator::Customer(c.customer), Initiator::Agent);
                let agent = match e.kind {
                    "CONTACT/OFFER_ACCEPTED" => e.initiator,
                    "CONTACT/TRANSFERRED" => {
                        work.iter().find(|w| w.accepted_ms == e.at).map(|w| w.agent)
                    }
                    _ => None,
                };
                ContactSpec {
                    at: e.at,
                    kind: e.kind,
                    initiator: agent_or_customer,
                    before: e.agent,
                    agent,
                }
            })
            .collect();
        for (k, w) in work.iter().enumerate() {
            if k == 0 && !c.inbound {
                continue; // the agent starts an outbound contact: nobody offers it
            }
            let ring =
                2_000 + (mix(self.m.seed ^ mix((c.n * 4 + k as u64) ^ 0x0FFE_0000)) % 18_000);
            let at = (w.accepted_ms - ring as i64).max(c.queued_ms());
            specs.push(ContactSpec {
                at,
                kind: "CONTACT/OFFERED",
                initiator: Initiator::System,
                before: k.checked_sub(1).map(|p| work[p].agent),
                agent: Some(w.agent),
            });
        }
        specs.sort_by_key(|s| (s.at, contact_rank(s.kind)));
        specs
    }

    /// The events of contact `c` the window wants.
    fn contact(&mut self, c: &Contact) {
        let m = self.m;
        for (seq, s) in self.contact_specs(c).into_iter().enumerate() {
            let seq = seq as u16;
            if !self.keeps(s.at, s.kind, identity(CONTACT, c.n, seq)) {
                continue;
            }
            let mut content = Map::new();
            content.insert("channel".into(), json!(c.channel));
            content.insert("contactId".into(), json!(m.id(Kind::Contact, c.n)));
            content.insert(
                "conversationId".into(),
                json!(m.id(Kind::Conversation, c.conversation)),
            );
            content.insert("customerId".into(), json!(m.id(Kind::Customer, c.customer)));
            content.insert(
                "context".into(),
                json!({ "assignee": assignee(m, c.inbox.into(), s.before) }),
            );
            match s.kind {
                "CONTACT/STARTED" if !c.ivr.is_empty() => {
                    content.insert("finalIVRSelection".into(), json!(c.ivr));
                }
                "CONTACT/OFFERED" | "CONTACT/OFFER_ACCEPTED" => {
                    if let Some(a) = s.agent {
                        content.insert("agentId".into(), json!(m.id(Kind::Agent, a.into())));
                    }
                }
                "CONTACT/TRANSFERRED" => {
                    content.insert("transferType".into(), json!("COLD"));
                    content.insert("reason".into(), json!("MANUAL"));
                    content.insert("assignee".into(), assignee(m, c.inbox.into(), s.agent));
                }
                "CONTACT/HOLD_STARTED" | "CONTACT/HOLD_ENDED" => {
                    content.insert("reason".into(), json!("MANUAL"));
                }
                "CONTACT/ENDED" => {
                    let (status, reason) = ended_status(m, c);
                    content.insert("status".into(), json!(status));
                    content.insert("reason".into(), json!(reason));
                }
                _ => {}
            }
            self.push((s.at, CONTACT, c.n, seq), s.kind, s.initiator, content);
        }
    }

    /// The events of the conversations whose first contact was created in hour `h`.
    fn conversations(&mut self, h: i64) {
        let m = self.m;
        for j in 0..m.hour_count(h) {
            if m.follow_up(h, j) {
                continue;
            }
            let n = ((h as u64) << 24) | u64::from(j);
            let all = run(m, n);
            if all[0].created_ms > self.w.now_ms {
                break;
            }
            let visible: Vec<&Contact> = all.iter().collect();
            let assigned = assignments(&visible, FAR);
            for (seq, e) in conversation_events(n, &all, &visible, FAR)
                .iter()
                .enumerate()
            {
                let seq = seq as u16;
                if !self.keeps(e.at, e.kind, identity(CONVERSATION, n, seq)) {
                    continue;
                }
                let content = conversation_content(m, n, &visible, &assigned, e);
                let initiator = match (e.initiator, e.system) {
                    (Some(a), _) => Initiator::Agent(a),
                    (None, true) => Initiator::System,
                    (None, false) => Initiator::Customer(visible[0].customer),
                };
                self.push((e.at, CONVERSATION, n, seq), e.kind, initiator, content);
            }
        }
    }

    /// The shift events (logins, logouts, availability) in `[from, to)`.
    fn agents(&mut self, from: i64, to: i64) {
        let m = self.m;
        for a in 0..m.agents {
            let first = from.div_euclid(DAY_MS) - 1;
            for d in first..=(to - 1).div_euclid(DAY_MS) {
                let login = d * DAY_MS + shift_start_hour(a) * HOUR_MS;
                let n = ((d as u64 & 0xFF_FFFF) << 24) | u64::from(a & 0xFF_FFFF);
                let events: [(i64, &str, u16); 4] = [
                    (login, "AGENT_STATUS/LOGGED_IN", 0),
                    (login, "AGENT_AVAILABILITY/UPDATED", 1),
                    (login + SHIFT_MS, "AGENT_AVAILABILITY/UPDATED", 2),
                    (login + SHIFT_MS, "AGENT_STATUS/LOGGED_OUT", 3),
                ];
                for (at, kind, seq) in events {
                    if at < from || at >= to || !self.keeps(at, kind, identity(AGENT, n, seq)) {
                        continue;
                    }
                    let mut content = Map::new();
                    content.insert("agentId".into(), json!(m.id(Kind::Agent, a.into())));
                    match seq {
                        0 => {
                            content.insert(
                                "activeReason".into(),
                                json!({"id": m.id(Kind::Reason, 0), "name": "Available"}),
                            );
                        }
                        1 => {
                            content.insert("availableFor".into(), json!(available_for(a)));
                        }
                        2 => {
                            content.insert("availableFor".into(), json!([]));
                        }
                        _ => {}
                    }
                    content.insert("occurredAt".into(), json!(ts(at)));
                    self.push((at, AGENT, n, seq), kind, Initiator::Agent(a), content);
                }
            }
        }
    }
}

/// The channels agent `a` takes once logged in.
fn available_for(a: u32) -> &'static [&'static str] {
    match a % 4 {
        0 => &["MESSAGING", "VOICE"],
        1 => &["MAIL", "MESSAGING"],
        2 => &["MAIL", "MESSAGING", "TASK", "VOICE"],
        _ => &["VOICE"],
    }
}

/// `status` and `reason` of contact `c`'s `CONTACT/ENDED`: `ABANDONED` when no agent took an
/// inbound contact (the work-session `status` `ABANDONED`), else `ANSWERED`.
fn ended_status(m: &Model, c: &Contact) -> (&'static str, &'static str) {
    match (c.n_work, c.inbound) {
        (0, true) => ("ABANDONED", "CUSTOMER_ABANDONED"),
        (0, false) => ("UNANSWERED", "AGENT_ENDED"),
        _ if c.channel == "PHONE_CALL" => ("ANSWERED", "AGENT_ENDED"),
        _ => (
            "ANSWERED",
            [
                "AGENT_ENDED",
                "AGENT_ENDED",
                "CONVERSATION_CLOSED",
                "CUSTOMER_NO_REPLY",
                "NO_REPLY_NEEDED",
            ][(mix(m.seed ^ mix(c.n ^ 0xE4D0_0000)) % 5) as usize],
        ),
    }
}

/// The `content` of conversation `n`'s event `e` (its contacts `visible`, their agents
/// `assigned`): the assignee before the event as the Conversation Timestamps report shows it.
fn conversation_content(
    m: &Model,
    n: u64,
    visible: &[&Contact],
    assigned: &[(&Contact, crate::model::Work)],
    e: &ConversationEvent,
) -> Map<String, Value> {
    let first = visible[0];
    let inbox = if e.kind == "CONVERSATION/CREATED" {
        None
    } else {
        inbox_then(m, visible, e.at - 1)
    }
    .unwrap_or(first.inbox.into());
    let mut content = Map::new();
    content.insert(
        "customerId".into(),
        json!(m.id(Kind::Customer, first.customer)),
    );
    content.insert("conversationId".into(), json!(m.id(Kind::Conversation, n)));
    match e.kind {
        "CONVERSATION_ASSIGNEE/UPDATED" => {
            let new_inbox = e.new_inbox.unwrap_or(inbox);
            content.insert("assignee".into(), assignee(m, new_inbox, e.new_agent));
            content.insert(
                "reason".into(),
                json!(match e.reason {
                    "ROUTED" => "CONTACT_OFFERED",
                    _ => "MANUAL",
                }),
            );
        }
        "CONVERSATION/TOPIC_ADDED" | "CONVERSATION/TOPIC_REMOVED" => {
            if let Some(t) = e.topic {
                content.insert("topicId".into(), json!(m.id(Kind::Topic, t)));
            }
        }
        _ => {}
    }
    content.insert(
        "context".into(),
        json!({ "assignee": assignee(m, inbox, agent_before(assigned, e.at)) }),
    );
    content
}
