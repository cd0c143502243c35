//! Agent Summary report rows (`POST /api/v1/reports`, `AgentSummaryV2`): one record per agent ×
//! bucket × aggregation level, keyed `{agent_id, bucket_start, aggregation_level}`,
//! timestamped with the bucket start.

use super::avro;
use super::columns::{Field, Kind, Val};
use super::record::Record;
use super::row_ctx::Ctx;
use crate::report::Row;

/// The documented columns, in `agent_summary-value.avsc` order.
pub(crate) const FIELDS: &[Field] = &[
    f(
        "bucket_start",
        &["Bucket Beginning", "Bucket Start"],
        Kind::RequiredTs,
    ),
    f("bucket_end", &["Bucket End"], Kind::Ts),
    f("name", &["Name"], Kind::Str),
    f("email", &["Email"], Kind::Str),
    f("agent_id", &["Agent ID", "ID"], Kind::Id),
    f("user_status", &["User Status"], Kind::Str),
    f("roles", &["Role(s)"], Kind::Str),
    f("inboxes", &["Inbox(es)"], Kind::Str),
    f("teams", &["Team(s)"], Kind::Str),
    f("logged_in", &["Logged In"], Kind::Count),
    f("logged_out", &["Logged Out"], Kind::Count),
    f(
        "logged_in_time_sec",
        &["Logged In Time in seconds", "Logged In Time"],
        Kind::Seconds,
    ),
    f("went_away", &["Went Away"], Kind::Count),
    f("returned_from_away", &["Returned from Away"], Kind::Count),
    f(
        "changed_active_reason",
        &["Changed Active Reason"],
        Kind::Count,
    ),
    f(
        "active_time_sec",
        &["Active Time in seconds", "Active Time"],
        Kind::Seconds,
    ),
];

const fn f(name: &'static str, columns: &'static [&'static str], kind: Kind) -> Field {
    Field {
        name,
        columns,
        kind,
    }
}

const BUCKET_START: usize = 0;
const AGENT: usize = 4;

pub(crate) fn convert(ctx: &Ctx<'_>, row: &Row, vals: &[Val<'_>]) -> Result<Record, String> {
    let bucket_start = vals[BUCKET_START].as_long().expect("required field");
    let level = ctx.aggregation_level;
    let mut key = ctx.key_start();
    avro::string(&mut key, vals[AGENT].as_str().expect("required field"));
    avro::long(&mut key, bucket_start);
    avro::string(&mut key, level);
    let mut value = ctx.value_start(row, &vals[..FIELDS.len()]);
    avro::string(&mut value, level);
    let fingerprint = ctx.value_end(&mut value, row);
    Ok(Record {
        key,
        value: Some(value),
        timestamp_ms: bucket_start,
        since_ms: bucket_start,
        fingerprint,
    })
}
