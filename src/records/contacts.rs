//! Contact Export report rows (`POST /api/v1/reports`, `ContactExportReportV3`): one record per
//! contact, keyed `{contact_id}`, timestamped with `Queued At`.

use super::avro;
use super::columns::{Field, Kind, Val};
use super::record::Record;
use super::row_ctx::Ctx;
use crate::report::Row;

/// The typed columns, in `contacts-value.avsc` order: the ten the help page documents, then
/// the ones the report exists for (inbox, end, wait/handle/hold times), whose header names are
/// assumed (see `docs/gladly-api.md`). Every other column lands in `extra`.
pub(crate) const FIELDS: &[Field] = &[
    f("queued_at", &["Queued At"], Kind::RequiredTs),
    f("customer_id", &["Customer ID"], Kind::Str),
    f("conversation_id", &["Conversation ID"], Kind::Str),
    f("contact_id", &["Contact ID"], Kind::Id),
    f("link", &["Link"], Kind::Str),
    f("channel", &["Channel"], Kind::Str),
    f("direction", &["Direction"], Kind::Str),
    f("contact_initiator", &["Contact Initiator"], Kind::Str),
    f("entry_point", &["Entry Point"], Kind::Str),
    f("final_ivr_selection", &["Final IVR Selection"], Kind::Str),
    // value schema v2 (schemas/history/v3): nullable, default null, so v1 data still reads
    f("inbox_id", &["Inbox ID"], Kind::Str),
    f("ended_at", &["Ended At"], Kind::Ts),
    f("wait_time_sec", &["Wait Time in seconds"], Kind::Seconds),
    f(
        "handle_time_sec",
        &["Handle Time in seconds"],
        Kind::Seconds,
    ),
    f("hold_time_sec", &["Hold Time in seconds"], Kind::Seconds),
];

const fn f(name: &'static str, columns: &'static [&'static str], kind: Kind) -> Field {
    Field {
        name,
        columns,
        kind,
    }
}

const QUEUED_AT: usize = 0;
const CONTACT: usize = 3;

pub(crate) fn convert(ctx: &Ctx<'_>, row: &Row, vals: &[Val<'_>]) -> Result<Record, String> {
    let queued_at = vals[QUEUED_AT].as_long().expect("required field");
    let mut key = ctx.key_start();
    avro::string(&mut key, vals[CONTACT].as_str().expect("required field"));
    let mut value = ctx.value_start(row, &vals[..FIELDS.len()]);
    let fingerprint = ctx.value_end(&mut value, row);
    Ok(Record {
        key,
        value: Some(value),
        timestamp_ms: queued_at,
        since_ms: queued_at,
        fingerprint,
    })
}
