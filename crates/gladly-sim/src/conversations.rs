//! The conversations behind the contacts, as `GET /api/v1/conversations/{id}` shows them at an
//! instant: a pure function of the seed and that instant, like the reports (but live: the
//! API has no data delay).
//!
//! A conversation is a run of consecutive contacts of one hour (its first contact plus the
//! follow-ups of [`Model::follow_up`]), all of one customer. At an instant it holds the
//! contacts created so far:
//! - status `OPEN` while one of them is open, `WAITING` until the last conversation end,
//!   then `CLOSED` (with `closedAt`); a later follow-up reopens it;
//! - `inboxId`: the latest contact's inbox, except that 30% of contacts are transferred to
//!   another inbox at a random instant between their start and two hours after their end
//!   (so the inbox the work-session row shows is not always where the contact ended up);
//! - `agentId`: the agent who accepted last; `topicIds` grow when an agent accepts and when
//!   it closes;
//! - 5% of conversations are deleted (404) two hours after their last end, and 5% are merged
//!   into the conversation before them (301 with `Location`) an hour after their last end.

use serde_json::{json, Value};

use crate::model::{Contact, Kind, Model, HOUR_MS};
use crate::rng::mix;
use crate::timestamp::ts;

/// What `GET /api/v1/conversations/{id}` answers at an instant.
#[derive(Debug, Clone, PartialEq)]
pub enum ConversationTruth {
    /// 200 with this body.
    Found(Value),
    /// 301: merged into the conversation with this id.
    Moved(String),
    /// 404: deleted, not created yet, or never existed.
    Deleted,
}

/// What happens to a conversation once it is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    Kept,
    Deleted,
    Merged,
}

/// Whether conversation `conversation` is kept, deleted or merged once it is over.
pub(crate) fn fate(m: &Model, conversation: u64) -> Fate {
    match mix(m.seed ^ mix(conversation ^ 0xFA7E_0000)) % 20 {
        0 => Fate::Deleted,
        1 if conversation & 0xFF_FFFF > 0 => Fate::Merged,
        _ => Fate::Kept,
    }
}

/// The contacts of conversation `n` (created or not yet), in creation order; empty when `n`
/// is not a conversation.
pub(crate) fn run(m: &Model, n: u64) -> Vec<Contact> {
    let h = (n >> 24) as i64;
    let s = (n & 0xFF_FFFF) as u32;
    let count = m.hour_count(h);
    if s >= count || m.follow_up(h, s) {
        return Vec::new();
    }
    let mut out = vec![m.contact(h, s, count)];
    let mut j = s + 1;
    while j < count && m.follow_up(h, j) {
        out.push(m.contact(h, j, count));
        j += 1;
    }
    out
}

/// The inbox contact `c` is in at `now_ms`.
pub(crate) fn inbox_at(m: &Model, c: &Contact, now_ms: i64) -> u64 {
    let r = mix(m.seed ^ mix(c.n ^ 0x7EA5_0000));
    let inbox = u64::from(c.inbox);
    if m.inboxes < 2 || r % 10 >= 3 {
        return inbox;
    }
    let span = (c.ended_ms + 2 * HOUR_MS - c.created_ms).max(1) as u64;
    let at = c.created_ms + ((r >> 8) % span) as i64;
    if now_ms < at {
        return inbox;
    }
    let others = u64::from(m.inboxes) - 1;
    (inbox + 1 + (r >> 40) % others) % u64::from(m.inboxes)
}

/// When the conversation of `run` (its contacts in creation order) closed and reopened up to
/// `now_ms`: it closes once every contact so far has reached its conversation end, and a
/// later contact reopens it. Returns (closes, reopens), each in time order.
pub(crate) fn closes_and_reopens(run: &[Contact], now_ms: i64) -> (Vec<i64>, Vec<i64>) {
    let (mut closes, mut reopens) = (Vec::new(), Vec::new());
    let mut settled = i64::MIN;
    for c in run.iter().filter(|c| c.created_ms <= now_ms) {
        if settled != i64::MIN && c.created_ms > settled {
            closes.push(settled);
            reopens.push(c.created_ms);
        }
        settled = settled.max(c.conv_end_ms);
    }
    if settled != i64::MIN && settled <= now_ms {
        closes.push(settled);
    }
    (closes, reopens)
}

/// The instant conversation `n` (whose contacts are `run`) is merged away, if it ever is:
/// an hour after its last end, into the conversation before it, when that one is kept.
pub(crate) fn merged_at(m: &Model, n: u64, run: &[Contact]) -> Option<(i64, u64)> {
    if fate(m, n) != Fate::Merged {
        return None;
    }
    let last_end = run.iter().map(|c| c.conv_end_ms).max()?;
    let into = m.conversation_of((n >> 24) as i64, (n & 0xFF_FFFF) as u32 - 1);
    (fate(m, into) == Fate::Kept).then_some((last_end + HOUR_MS, into))
}

/// Conversation `id` as the API shows it at `now_ms`.
pub(crate) fn conversation_at(m: &Model, id: &str, now_ms: i64) -> ConversationTruth {
    let Some(n) = m.decode_id(Kind::Conversation, id) else {
        return ConversationTruth::Deleted;
    };
    let all = run(m, n);
    let visible: Vec<&Contact> = all.iter().filter(|c| c.created_ms <= now_ms).collect();
    let Some(latest) = visible.last() else {
        return ConversationTruth::Deleted;
    };
    let last_end = all.iter().map(|c| c.conv_end_ms).max().expect("non-empty");
    match fate(m, n) {
        Fate::Deleted if now_ms >= last_end + 2 * HOUR_MS => return ConversationTruth::Deleted,
        Fate::Merged if now_ms >= last_end + HOUR_MS => {
            let h = (n >> 24) as i64;
            let into = m.conversation_of(h, (n & 0xFF_FFFF) as u32 - 1);
            // a merge target is kept; otherwise the merge does not happen
            if fate(m, into) == Fate::Kept {
                return ConversationTruth::Moved(m.id(Kind::Conversation, into));
            }
        }
        _ => {}
    }
    let open = visible.iter().any(|c| now_ms < c.ended_ms);
    let end = visible
        .iter()
        .map(|c| c.conv_end_ms)
        .max()
        .expect("non-empty");
    let status = if open {
        "OPEN"
    } else if now_ms < end {
        "WAITING"
    } else {
        "CLOSED"
    };
    let agent = visible
        .iter()
        .flat_map(|c| c.visible_work(now_ms))
        .max_by_key(|w| w.accepted_ms)
        .map(|w| m.id(Kind::Agent, u64::from(w.agent)));
    let mut topics = Vec::new();
    if agent.is_some() {
        topics.push(m.id(Kind::Topic, n % 7));
    }
    if status == "CLOSED" && (n / 7) % 7 != n % 7 {
        topics.push(m.id(Kind::Topic, (n / 7) % 7));
    }
    let first = visible[0];
    let mut v = json!({
        "id": id,
        "customerId": m.id(Kind::Customer, first.customer),
        "inboxId": m.id(Kind::Inbox, inbox_at(m, latest, now_ms)),
        "status": status,
        "createdAt": ts(first.created_ms),
        "topicIds": topics,
    });
    let attrs = mix(m.seed ^ n ^ 0xA77_0000);
    if attrs % 3 == 0 {
        let carrier = ["UPS", "FedEx", "DHL, \"express\""][(attrs >> 8) as usize % 3];
        v["customAttributes"] = json!([{ "id": m.id(Kind::Attribute, 1), "value": carrier }]);
    }
    if let Some(a) = agent {
        v["agentId"] = json!(a);
    }
    if status == "CLOSED" {
        v["closedAt"] = json!(ts(end));
    }
    ConversationTruth::Found(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default contact center, steady (no diurnal curve, no long-open contacts).
    fn model() -> Model {
        crate::SimConfig {
            seed: 11,
            diurnal: false,
            agents: 10,
            inboxes: 4,
            customers: 5000,
            long_open_fraction: 0.0,
            ..Default::default()
        }
        .model()
    }

    fn body(t: &ConversationTruth) -> &Value {
        match t {
            ConversationTruth::Found(v) => v,
            other => panic!("not found: {other:?}"),
        }
    }

    /// Every conversation started in the first `hours` hours.
    fn conversations(m: &Model, hours: i64) -> Vec<(u64, Vec<Contact>)> {
        (0..hours)
            .flat_map(|h| (0..m.hour_count(h)).map(move |j| (h, j)))
            .filter(|(h, j)| !m.follow_up(*h, *j))
            .map(|(h, j)| {
                let n = ((h as u64) << 24) | u64::from(j);
                (n, run(m, n))
            })
            .collect()
    }

    #[test]
    fn follow_ups_share_the_conversation_and_its_customer() {
        let m = model();
        let convs = conversations(&m, 24);
        let multi = convs.iter().filter(|(_, r)| r.len() > 1).count();
        assert!(multi * 10 > convs.len(), "{multi} of {}", convs.len());
        for (n, r) in &convs {
            assert!(r
                .iter()
                .all(|c| c.conversation == *n && c.customer == r[0].customer));
        }
    }

    #[test]
    fn state_follows_time_and_is_pure() {
        let m = model();
        let (n, r) = conversations(&m, 6)
            .into_iter()
            .find(|(n, r)| fate(&m, *n) == Fate::Kept && r.len() == 1 && r[0].n_work > 0)
            .expect("a kept single-contact conversation");
        let c = &r[0];
        let id = m.id(Kind::Conversation, n);
        assert_eq!(
            conversation_at(&m, &id, c.created_ms - 1),
            ConversationTruth::Deleted
        );
        let open = conversation_at(&m, &id, c.created_ms);
        assert_eq!(body(&open)["status"], "OPEN");
        assert_eq!(open, conversation_at(&m, &id, c.created_ms), "pure");
        if c.conv_end_ms > c.ended_ms {
            assert_eq!(
                body(&conversation_at(&m, &id, c.ended_ms))["status"],
                "WAITING"
            );
        }
        let closed = conversation_at(&m, &id, c.conv_end_ms + 3 * HOUR_MS);
        let b = body(&closed);
        assert_eq!(b["status"], "CLOSED");
        assert_eq!(b["closedAt"], ts(c.conv_end_ms));
        assert_eq!(b["customerId"], m.id(Kind::Customer, c.customer));
        assert_eq!(
            b["agentId"],
            m.id(Kind::Agent, u64::from(c.work[c.n_work - 1].agent))
        );
    }

    #[test]
    fn some_inboxes_change_some_conversations_are_deleted_or_merged() {
        let m = model();
        let convs = conversations(&m, 48);
        let late = |r: &[Contact]| r.iter().map(|c| c.conv_end_ms).max().unwrap() + 3 * HOUR_MS;
        let (mut moved_inbox, mut deleted, mut merged) = (0, 0, 0);
        for (n, r) in &convs {
            let id = m.id(Kind::Conversation, *n);
            match conversation_at(&m, &id, late(r)) {
                ConversationTruth::Deleted => deleted += 1,
                ConversationTruth::Moved(to) => {
                    merged += 1;
                    let into = m.decode_id(Kind::Conversation, &to).unwrap();
                    assert!(into < *n, "merged into an earlier conversation");
                    assert!(matches!(
                        conversation_at(&m, &to, late(r)),
                        ConversationTruth::Found(_)
                    ));
                }
                ConversationTruth::Found(v) => {
                    let last = r.last().unwrap();
                    if v["inboxId"] != m.id(Kind::Inbox, u64::from(last.inbox)) {
                        moved_inbox += 1;
                    }
                }
            }
        }
        let total = convs.len();
        assert!(
            moved_inbox * 6 > total && moved_inbox * 2 < total,
            "{moved_inbox}/{total}"
        );
        assert!(
            deleted * 50 > total && deleted * 10 < total,
            "{deleted}/{total}"
        );
        assert!(
            merged * 50 > total && merged * 10 < total,
            "{merged}/{total}"
        );
        // a follow-up id is not a conversation
        let (h, j) = (0..24)
            .flat_map(|h| (0..m.hour_count(h)).map(move |j| (h, j)))
            .find(|(h, j)| m.follow_up(*h, *j))
            .unwrap();
        let follow = m.id(Kind::Conversation, ((h as u64) << 24) | u64::from(j));
        assert_eq!(
            conversation_at(&m, &follow, i64::MAX / 2),
            ConversationTruth::Deleted
        );
    }
}
