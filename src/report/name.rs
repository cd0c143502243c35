//! [`Report`]: a report's name, cheap to copy and compare. What the report *is* (how it is
//! requested, keyed and converted) is its [`super::ReportSpec`], which the configuration builds.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A report the service publishes, by name: one of the built-in ones
/// ([`Report::WORK_SESSIONS`], [`Report::CONTACTS`], [`Report::AGENT_SUMMARY`]) or one
/// configured under `[reports.<name>]`. The name is its config key, and its topic's default
/// name after the prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Report(&'static str);

/// The names of the configured reports, interned: a handful per process.
static NAMES: Interner = Interner::new();

/// A table of names given a `'static` lifetime so that [`Report`] can stay `Copy`: each
/// distinct name is leaked once, the first time it is seen, and every later `intern` of it
/// (a config reread, each checkpoint record read back) answers that same copy. What is leaked
/// is bounded by the distinct names a process meets, not by how often it reads them.
struct Interner {
    names: Mutex<BTreeSet<&'static str>>,
}

impl Interner {
    const fn new() -> Self {
        Interner {
            names: Mutex::new(BTreeSet::new()),
        }
    }

    /// The one `'static` copy of `name`, leaked only if this table has not seen it.
    fn intern(&self, name: String) -> &'static str {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&known) = names.get(name.as_str()) {
            return known;
        }
        let interned: &'static str = Box::leak(name.into_boxed_str());
        names.insert(interned);
        interned
    }

    /// Distinct names leaked so far.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.names.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Report {
    /// Work Session events (`POST /api/v1/reports/work-session-events`).
    pub const WORK_SESSIONS: Report = Report("work_sessions");
    /// Contact Export (`ContactExportReportV3`).
    pub const CONTACTS: Report = Report("contacts");
    /// Agent Summary (`AgentSummaryV2`).
    pub const AGENT_SUMMARY: Report = Report("agent_summary");

    /// The built-in reports, in the order of [`super::BUILT_IN`] (whose table of defaults
    /// follows this list: a test there keeps the two in step).
    pub const BUILT_IN: [Report; 3] = [
        Report::WORK_SESSIONS,
        Report::CONTACTS,
        Report::AGENT_SUMMARY,
    ];

    /// The report named `name` (lower-case letters, digits and `_`, starting with a letter;
    /// `-` is read as `_`). A built-in name answers its constant; another name is interned,
    /// so naming the same report again allocates nothing that outlives the call.
    pub fn named(name: &str) -> Result<Report, InvalidReportName> {
        Report::named_in(name, &NAMES)
    }

    /// [`Report::named`], interning in `table`.
    fn named_in(name: &str, table: &Interner) -> Result<Report, InvalidReportName> {
        let name = name.trim().replace('-', "_");
        let valid = name.len() <= 100
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(InvalidReportName(name));
        }
        for built_in in Report::BUILT_IN {
            if built_in.0 == name {
                return Ok(built_in);
            }
        }
        Ok(Report(table.intern(name)))
    }

    /// The snake_case name used in config keys, topic names (`<prefix>.<name>`) and headers.
    pub fn name(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.0)
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A report name that cannot be a config key or a topic name.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a report name: use lower-case letters, digits and `_`, starting with a letter (e.g. work_sessions, contacts, agent_summary, conversation_export)")]
pub struct InvalidReportName(pub String);

impl FromStr for Report {
    type Err = InvalidReportName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Report::named(s)
    }
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Report {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Report::named(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_intern() {
        for b in crate::report::BUILT_IN {
            assert_eq!(b.report.name().parse::<Report>().unwrap(), b.report);
        }
        assert_eq!(
            "agent-summary".parse::<Report>().unwrap(),
            Report::AGENT_SUMMARY
        );
        let a = Report::named("conversation_export").unwrap();
        let b: Report = serde_json::from_str("\"conversation_export\"").unwrap();
        assert_eq!(a, b);
        assert!(std::ptr::eq(a.name(), b.name()), "one copy of each name");
        assert!(std::ptr::eq(
            b.name(),
            serde_json::from_str::<Report>("\"conversation-export\"")
                .unwrap()
                .name()
        ));
        let err = "Tickets!".parse::<Report>().unwrap_err().to_string();
        assert!(
            err.contains("Tickets!") && err.contains("lower-case"),
            "{err}"
        );
    }

    #[test]
    fn a_name_is_leaked_once_however_often_it_is_read() {
        let table = Interner::new();
        let first = Report::named_in("tickets_export", &table).unwrap();
        assert_eq!(table.len(), 1);
        for spelling in ["tickets_export", " tickets-export ", "tickets_export"] {
            let again = Report::named_in(spelling, &table).unwrap();
            assert!(std::ptr::eq(first.name(), again.name()), "the same copy");
        }
        assert_eq!(table.len(), 1, "no second copy of the name");
        for b in crate::report::BUILT_IN {
            assert_eq!(Report::named_in(b.report.name(), &table).unwrap(), b.report);
        }
        assert_eq!(table.len(), 1, "built-in names are never leaked");
        assert!(Report::named_in("Tickets!", &table).is_err());
        assert_eq!(table.len(), 1, "nor invalid ones");
    }

    #[test]
    fn deserialising_a_name_twice_answers_the_same_copy() {
        // as a checkpoint record read back twice: the global table, as the service uses it
        let json = "{\"report\":\"checkpointed_export\"}";
        #[derive(serde::Deserialize)]
        struct Checkpoint {
            report: Report,
        }
        let a: Checkpoint = serde_json::from_str(json).unwrap();
        let b: Checkpoint = serde_json::from_str(json).unwrap();
        assert!(std::ptr::eq(a.report.name(), b.report.name()));
        let interned = NAMES
            .names
            .lock()
            .unwrap()
            .get("checkpointed_export")
            .copied();
        assert!(
            interned.is_some_and(|n| std::ptr::eq(n, a.report.name())),
            "the table's one copy"
        );
        let built_in: Report = serde_json::from_str("\"contacts\"").unwrap();
        assert_eq!(built_in, Report::CONTACTS);
        assert!(NAMES.names.lock().unwrap().get("contacts").is_none());
    }
}
