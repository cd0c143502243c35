//! The list endpoints: `GET /api/v1/agents`, `/inboxes`, `/teams`, `/topics`, each a JSON
//! array of objects in the shapes Gladly documents (agents `{id, name, emailAddress}`,
//! inboxes `{id, name, disabled}`, teams `{id, name, description, agentIds}`, topics
//! `{id, name, disabled, parentId?}`), whose content changes with the clock on a fixed
//! schedule counted in whole days since the model's origin:
//!
//! | from day | agents | inboxes | teams | topics |
//! |---|---|---|---|---|
//! | 0 | the model's agents | the model's inboxes | three teams | seven topics |
//! | 3 | agent 1 renamed; a new hire added | inbox 0 disabled; "Holiday Returns" added | "Weekend" added | "Holiday" added under topic 1 |
//! | 4 | agent 2 removed | "Holiday Returns" removed | team 1 renamed | topic 6 removed; "Holiday" disabled |
//!
//! A team lists the agents listed at the time whose index ≡ the team's (mod 3).

use serde_json::{json, Value};

use crate::model::{Kind, Model, HOUR_MS};

/// The lists served, by endpoint name.
pub(crate) const LISTS: [&str; 4] = ["agents", "inboxes", "teams", "topics"];

const DAY_MS: i64 = 24 * HOUR_MS;

const FIRST: [&str; 10] = [
    "Amy", "Ben", "Chloe", "Dev", "Elena", "Femi", "Grace", "Hiro", "Ines", "Jon",
];
const LAST: [&str; 4] = ["Agent", "Rivera", "Okafor", "Lind"];
const INBOXES: [&str; 6] = ["Email", "Chat", "Phone", "SMS", "VIP", "Social"];
const TEAMS: [&str; 3] = ["Tier 1", "Tier 2", "Escalations"];
const TOPICS: [&str; 7] = [
    "Order Status",
    "Returns",
    "Damaged Merchandise",
    "Billing",
    "Shipping",
    "Account",
    "Feedback",
];

/// What `GET /api/v1/<list>` answers at `now_ms`; `None` for a list that does not exist.
pub(crate) fn list_at(m: &Model, list: &str, now_ms: i64) -> Option<Vec<Value>> {
    let day = (now_ms - m.origin_ms).div_euclid(DAY_MS);
    Some(match list {
        "agents" => agent_indices(m, day)
            .into_iter()
            .map(|i| agent(m, i, day))
            .collect(),
        "inboxes" => inboxes(m, day),
        "teams" => teams(m, day),
        "topics" => topics(m, day),
        _ => return None,
    })
}

/// The agents listed on `day`: the model's, plus the new hire from day 3, minus agent 2
/// from day 4.
fn agent_indices(m: &Model, day: i64) -> Vec<u64> {
    let n = u64::from(m.agents);
    (0..n + u64::from(day >= 3))
        .filter(|i| !(day >= 4 && *i == 2))
        .collect()
}

/// The name agent `i` has at `now_ms`, as the agents list shows it (and the reports, which
/// show current names).
pub(crate) fn agent_name(m: &Model, i: u64, now_ms: i64) -> String {
    agent_name_on(m, i, (now_ms - m.origin_ms).div_euclid(DAY_MS))
}

/// The name inbox `i` of the model has.
pub(crate) fn inbox_name(i: u64) -> &'static str {
    INBOXES[i as usize % INBOXES.len()]
}

/// The name topic `i` (of the seven at the origin) has.
pub(crate) fn topic_name(i: u64) -> &'static str {
    TOPICS[i as usize % TOPICS.len()]
}

fn agent_name_on(m: &Model, i: u64, day: i64) -> String {
    let first = FIRST[i as usize % FIRST.len()];
    let last = if i == 1 && day >= 3 {
        "Newname"
    } else if i == u64::from(m.agents) {
        "Hire"
    } else {
        LAST[(i as usize / FIRST.len()) % LAST.len()]
    };
    format!("{first} {last}")
}

fn agent(m: &Model, i: u64, day: i64) -> Value {
    let first = FIRST[i as usize % FIRST.len()];
    json!({
        "id": m.id(Kind::Agent, i),
        "name": agent_name_on(m, i, day),
        "emailAddress": format!("{}.{}{i}@example.com", first.to_lowercase(), LAST[0].to_lowercase()),
    })
}

fn inboxes(m: &Model, day: i64) -> Vec<Value> {
    let n = u64::from(m.inboxes);
    let mut out: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "id": m.id(Kind::Inbox, i),
                "name": inbox_name(i),
                "disabled": i == 0 && day >= 3,
            })
        })
        .collect();
    if day == 3 {
        out.push(json!({"id": m.id(Kind::Inbox, n), "name": "Holiday Returns", "disabled": false}));
    }
    out
}

fn teams(m: &Model, day: i64) -> Vec<Value> {
    let agents = agent_indices(m, day);
    let members = |t: u64| -> Vec<String> {
        agents
            .iter()
            .filter(|i| *i % 3 == t)
            .map(|i| m.id(Kind::Agent, *i))
            .collect()
    };
    let mut out: Vec<Value> = (0..3u64)
        .map(|t| {
            let name = if t == 1 && day >= 4 {
                "Tier 2 (Billing)"
            } else {
                TEAMS[t as usize]
            };
            json!({
                "id": m.id(Kind::Team, t),
                "name": name,
                "description": format!("{} questions", TEAMS[t as usize]),
                "agentIds": members(t),
            })
        })
        .collect();
    if day >= 3 {
        out.push(json!({
            "id": m.id(Kind::Team, 3),
            "name": "Weekend",
            "description": "Saturday and Sunday cover",
            "agentIds": [m.id(Kind::Agent, 0)],
        }));
    }
    out
}

fn topics(m: &Model, day: i64) -> Vec<Value> {
    let mut out: Vec<Value> = (0..TOPICS.len() as u64)
        .filter(|i| !(day >= 4 && *i == 6))
        .map(|i| {
            let mut t = json!({
                "id": m.id(Kind::Topic, i),
                "name": topic_name(i),
                "disabled": false,
            });
            if i == 2 {
                t["parentId"] = json!(m.id(Kind::Topic, 1));
            }
            t
        })
        .collect();
    if day >= 3 {
        out.push(json!({
            "id": m.id(Kind::Topic, 7),
            "name": "Holiday",
            "disabled": day >= 4,
            "parentId": m.id(Kind::Topic, 1),
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimConfig;

    fn ids(v: &[Value]) -> Vec<String> {
        v.iter()
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn lists_add_rename_and_remove_on_schedule() {
        let m = SimConfig {
            agents: 12,
            ..SimConfig::default()
        }
        .model();
        let at = |day: i64| m.origin_ms + day * DAY_MS + HOUR_MS;
        let a2 = list_at(&m, "agents", at(2)).unwrap();
        let a3 = list_at(&m, "agents", at(3)).unwrap();
        let a4 = list_at(&m, "agents", at(4)).unwrap();
        assert_eq!((a2.len(), a3.len(), a4.len()), (12, 13, 12));
        assert_ne!(a2[1]["name"], a3[1]["name"]);
        assert_eq!(a2[1]["id"], a3[1]["id"]);
        assert!(!ids(&a4).contains(&m.id(Kind::Agent, 2)));
        let i3 = list_at(&m, "inboxes", at(3)).unwrap();
        let i4 = list_at(&m, "inboxes", at(4)).unwrap();
        assert_eq!(i3.len(), i4.len() + 1);
        assert_eq!(i3[0]["disabled"], true);
        assert_eq!(list_at(&m, "teams", at(3)).unwrap().len(), 4);
        let t4 = list_at(&m, "topics", at(4)).unwrap();
        assert_eq!(t4.len(), 7);
        assert_eq!(t4[6]["disabled"], true);
        assert_eq!(
            list_at(&m, "agents", at(2)),
            list_at(&m, "agents", at(2) + HOUR_MS)
        );
        assert!(list_at(&m, "widgets", at(2)).is_none());
    }
}
