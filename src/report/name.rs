//! [`Report`]: a report's name, cheap to copy and compare. What the report *is* (how it is
//! requested, keyed and converted) is its [`super::ReportSpec`], which the configuration builds.

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

/// Names interned so far: a handful per process (one per configured report).
static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

impl Report {
    /// Work Session events (`POST /api/v1/reports/work-session-events`).
    pub const WORK_SESSIONS: Report = Report("work_sessions");
    /// Contact Export (`ContactExportReportV3`).
    pub const CONTACTS: Report = Report("contacts");
    /// Agent Summary (`AgentSummaryV2`).
    pub const AGENT_SUMMARY: Report = Report("agent_summary");

    /// The built-in reports, in the order of [`super::BUILT_IN`].
    pub const BUILT_IN: [Report; 3] = [
        super::BUILT_IN[0].report,
        super::BUILT_IN[1].report,
        super::BUILT_IN[2].report,
    ];

    /// The report named `name` (lower-case letters, digits and `_`, starting with a letter;
    /// `-` is read as `_`).
    pub fn named(name: &str) -> Result<Report, InvalidReportName> {
        let name = name.trim().replace('-', "_");
        let valid = name.len() <= 100
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(InvalidReportName(name));
        }
        for built_in in super::BUILT_IN {
            if built_in.report.0 == name {
                return Ok(built_in.report);
            }
        }
        let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = names.iter().find(|n| **n == name) {
            return Ok(Report(known));
        }
        let interned: &'static str = Box::leak(name.into_boxed_str());
        names.push(interned);
        Ok(Report(interned))
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
        let err = "Tickets!".parse::<Report>().unwrap_err().to_string();
        assert!(
            err.contains("Tickets!") && err.contains("lower-case"),
            "{err}"
        );
    }
}
