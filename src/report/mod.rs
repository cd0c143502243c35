//! The vocabulary every layer shares: which [`Report`], a CSV [`Row`] addressed by header name,
//! a [`Conversation`] as GET Conversation answers it, and which [`DimensionList`] (with its
//! [`ListItem`]s).
//!
//! The source (`gladly`) produces rows, conversations and list items; the core (`records`)
//! turns them into records; neither knows about the other, both know this module.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Deserializer};

mod event;
mod list;
mod name;
mod spec;

pub use event::EventEntity;
pub use list::{DimensionList, ListItem};
pub use name::{InvalidReportName, Report};
pub use spec::{
    BuiltIn, DerivedFormat, Format, Preset, ReportSpec, Source, TypedFormat, AGENT_SUMMARY,
    BUILT_IN, CONTACT_EXPORT, PRESETS,
};

/// A header name compared ignoring case, spaces and punctuation: `Agent ID` = `agent_id`.
pub fn normalize_column(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The work-session report's 19 columns, in the order Gladly documents them (V2 endpoint).
pub const WORK_SESSION_COLUMNS: [&str; 19] = [
    "id",
    "contact_session_id",
    "contact_session_created_at",
    "customer_id",
    "conversation_id",
    "inbox_id",
    "channel",
    "direction",
    "agent_accepted_at",
    "contact_session_routed_at",
    "agent_id",
    "sla_fulfilled_at",
    "contact_session_ended_at",
    "status",
    "within_sla",
    "work_session_handle_time_sec",
    "work_session_after_contact_time_sec",
    "work_session_unknown_time_sec",
    "accepted_inbox_id",
];

/// A CSV header: column names in response order, with a name → position index.
///
/// A leading UTF-8 BOM and surrounding whitespace are stripped from names, so `\u{feff}id`
/// and `id` are the same column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Header {
    /// Builds a header from column names. On duplicate names the first one wins.
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let names: Vec<String> = names
            .into_iter()
            .map(|n| n.as_ref().trim_start_matches('\u{feff}').trim().to_string())
            .collect();
        let mut index = HashMap::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            index.entry(n.clone()).or_insert(i);
        }
        Header { names, index }
    }

    /// Column names in the order the response gave them.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Position of a column, if present.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when the header has no columns.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The entries of `required` (see [`ReportSpec::required_columns`]) none of whose names
    /// is in this header, each as its preferred name.
    pub fn missing(&self, required: &[Vec<String>]) -> Vec<String> {
        let have: std::collections::HashSet<String> =
            self.names.iter().map(|n| normalize_column(n)).collect();
        required
            .iter()
            .filter(|alternatives| {
                !alternatives
                    .iter()
                    .any(|name| have.contains(&normalize_column(name)))
            })
            .filter_map(|alternatives| alternatives.first().cloned())
            .collect()
    }
}

/// One data row of a report, addressable by column name.
///
/// Cells are raw text exactly as Gladly sent them (no trimming); interpreting them (empty =
/// null, timestamps, numbers) is the job of `records`.
#[derive(Debug, Clone)]
pub struct Row {
    header: Arc<Header>,
    record: csv::StringRecord,
    line: u64,
}

impl Row {
    /// A row over `header`; `line` is the 1-based line of the row in the CSV body (for errors).
    pub fn new(header: Arc<Header>, record: csv::StringRecord, line: u64) -> Self {
        Row {
            header,
            record,
            line,
        }
    }

    /// A row from `(column, value)` pairs: handy in tests.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let (names, values): (Vec<&str>, Vec<&str>) = pairs.into_iter().unzip();
        Row::new(
            Arc::new(Header::new(names)),
            csv::StringRecord::from(values),
            0,
        )
    }

    /// The cell of column `name`, or `None` when the report has no such column.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.header.position(name).and_then(|i| self.record.get(i))
    }

    /// The cell at `position`.
    pub fn field(&self, position: usize) -> Option<&str> {
        self.record.get(position)
    }

    /// The header this row belongs to.
    pub fn header(&self) -> &Arc<Header> {
        &self.header
    }

    /// The raw cells.
    pub fn record(&self) -> &csv::StringRecord {
        &self.record
    }

    /// 1-based line in the CSV body where this row started (0 when unknown).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// `(column, cell)` pairs in header order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.header
            .names()
            .iter()
            .map(String::as_str)
            .zip(self.record.iter())
    }

    /// The row as an ordered map (for dead letters and debugging).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// A conversation as `GET /api/v1/conversations/{id}` answers it. Every field but `id` is optional here, so an
/// answer missing one still arrives; fields Gladly adds later land in `extra`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    /// The conversation's id (after a move: the id it moved to).
    pub id: String,
    /// The customer profile it belongs to.
    #[serde(default)]
    pub customer_id: Option<String>,
    /// The assigned agent.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// The inbox it is in now (it can change over the conversation's life).
    #[serde(default)]
    pub inbox_id: Option<String>,
    /// `OPEN`, `WAITING` or `CLOSED` (Gladly may add values).
    #[serde(default)]
    pub status: Option<String>,
    /// RFC 3339, with or without millis.
    #[serde(default)]
    pub created_at: Option<String>,
    /// RFC 3339; only when closed.
    #[serde(default)]
    pub closed_at: Option<String>,
    /// Topic ids.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub topic_ids: Vec<String>,
    /// Custom attributes, in Gladly's order.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub custom_attributes: Vec<CustomAttribute>,
    /// Every other field of the answer, as Gladly sent it.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// One `{id, value}` of a conversation's `customAttributes`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CustomAttribute {
    /// The attribute's id.
    pub id: String,
    /// Its value.
    #[serde(default)]
    pub value: Option<String>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_strips_bom_and_finds_columns() {
        let h = Header::new(["\u{feff}id", "contact_session_id", " channel "]);
        assert_eq!(h.position("id"), Some(0));
        assert_eq!(h.position("channel"), Some(2));
        assert_eq!(h.position("nope"), None);
    }

    fn required(report: Report) -> Vec<Vec<String>> {
        BuiltIn::named(report).unwrap().required_columns()
    }

    #[test]
    fn missing_key_columns_are_named_ignoring_case_and_punctuation() {
        let h = Header::new(["Agent Id", "bucket_start", "Name"]);
        assert!(h.missing(&required(Report::AGENT_SUMMARY)).is_empty());
        let h = Header::new(["foo", "bar", "baz"]);
        assert_eq!(
            h.missing(&required(Report::WORK_SESSIONS)),
            ["contact_session_id", "contact_session_ended_at"]
        );
        let h = Header::new(["contact_session_id", "contact_session_created_at"]);
        assert!(h.missing(&required(Report::WORK_SESSIONS)).is_empty());
        assert_eq!(
            Header::new(["<!DOCTYPE html>"]).missing(&required(Report::CONTACTS)),
            ["Contact ID", "Queued At"]
        );
    }

    #[test]
    fn row_reads_by_name() {
        let row = Row::from_pairs([("b", "2"), ("a", "1")]);
        assert_eq!(row.get("a"), Some("1"));
        assert_eq!(row.get("b"), Some("2"));
        assert_eq!(row.get("c"), None);
        let m = row.to_map();
        assert_eq!(m.get("a").map(String::as_str), Some("1"));
    }

    #[test]
    fn the_documented_example_parses_and_unknown_fields_are_kept() {
        let v: Conversation = serde_json::from_str(
            r#"{ "id": "HXRqKC5GSV-jAlq0-sxYTA", "customerId": "o2sg-TMTSD2rTwMuxzewbA", "agentId": "sHuXx-U3QqOmhvFusJGeBw",
  "inboxId": "E1nArq1uQAees_DogHB0MA", "status": "CLOSED", "createdAt": "2016-01-02T00:10:00Z",
  "closedAt": "2016-01-03T08:10:00Z", "topicIds": ["_DZTz4I0Qsq9YXxeXwufMg"],
  "customAttributes": [{ "id": "cEBkE90eQHObfcsnrm60Tg", "value": "UPS" }], "priority": 3 }"#,
        )
        .unwrap();
        assert_eq!(v.inbox_id.as_deref(), Some("E1nArq1uQAees_DogHB0MA"));
        assert_eq!(v.status.as_deref(), Some("CLOSED"));
        assert_eq!(v.topic_ids, vec!["_DZTz4I0Qsq9YXxeXwufMg"]);
        assert_eq!(v.custom_attributes[0].value.as_deref(), Some("UPS"));
        assert_eq!(v.extra["priority"], serde_json::json!(3));
    }

    #[test]
    fn optional_fields_may_be_missing_or_null_but_the_id_may_not() {
        let v: Conversation =
            serde_json::from_str(r#"{"id":"a","topicIds":null,"agentId":null}"#).unwrap();
        assert!(v.topic_ids.is_empty() && v.agent_id.is_none() && v.extra.is_empty());
        assert!(serde_json::from_str::<Conversation>(r#"{"inboxId":"x"}"#).is_err());
    }
}
