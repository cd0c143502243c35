//! Name, type and help text of every metric the service exports.

/// Name, type and help text of every metric, in exposition order.
pub(super) const HELP: &[(&str, &str, &str)] = &[
    (
        "gladly_kafka_events_published_total",
        "counter",
        "Events of Gladly's Events API committed to the events topic ([events])",
    ),
    (
        "gladly_kafka_events_suppressed_total",
        "counter",
        "Events read again (the overlap, a retried range, a restart) and not published again",
    ),
    (
        "gladly_kafka_events_lost_seconds_total",
        "counter",
        "Seconds of events lost to outages longer than the 24 hours the Events API serves (the reports still carry those contacts)",
    ),
    (
        "gladly_kafka_events_covered_until_timestamp_seconds",
        "gauge",
        "Every event recorded before this instant has been read and published: the events feed's cursor",
    ),
    (
        "gladly_kafka_events_newest_timestamp_seconds",
        "gauge",
        "Timestamp of the newest event published; time() minus it is the feed's freshness",
    ),
    (
        "gladly_kafka_events_cadence_seconds",
        "gauge",
        "events.cadence_secs: seconds between polls of the Events API",
    ),
    (
        "gladly_kafka_rows_fetched_total",
        "counter",
        "CSV rows read from Gladly in published windows",
    ),
    (
        "gladly_kafka_records_produced_total",
        "counter",
        "Records (tombstones included) committed to report topics",
    ),
    (
        "gladly_kafka_records_suppressed_total",
        "counter",
        "Rows re-read but not published because their value had not changed since the key's last record (pipeline.publish = \"changes\")",
    ),
    (
        "gladly_kafka_tombstones_total",
        "counter",
        "Tombstones committed (provisional work-session keys deleted)",
    ),
    (
        "gladly_kafka_dead_letters_total",
        "counter",
        "Rows committed to the dead-letter topic, by report and reason",
    ),
    (
        "gladly_kafka_windows_total",
        "counter",
        "Windows published with their checkpoint",
    ),
    (
        "gladly_kafka_window_failures_total",
        "counter",
        "Window attempts that failed (aborted, then retried)",
    ),
    (
        "gladly_kafka_window_splits_total",
        "counter",
        "Windows split because they reached the row cap",
    ),
    (
        "gladly_kafka_transactions_committed_total",
        "counter",
        "Windows committed (a Kafka transaction each in exactly-once mode)",
    ),
    (
        "gladly_kafka_transactions_aborted_total",
        "counter",
        "Windows aborted (failed or split), nothing of them visible to read_committed consumers",
    ),
    (
        "gladly_kafka_cycles_total",
        "counter",
        "Poll cycles of a report, by result (ok or failed)",
    ),
    (
        "gladly_kafka_window_duration_seconds",
        "histogram",
        "Time to fetch, convert and publish one window",
    ),
    (
        "gladly_kafka_window_lag_seconds",
        "gauge",
        "Now minus the report's poll checkpoint",
    ),
    (
        "gladly_kafka_checkpoint_timestamp_seconds",
        "gauge",
        "The report's poll checkpoint as Unix time",
    ),
    (
        "gladly_kafka_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the report's last successful poll cycle",
    ),
    (
        "gladly_kafka_report_cadence_seconds",
        "gauge",
        "How often run polls the report (reports.<report>.cadence_secs)",
    ),
    (
        "gladly_kafka_report_ready",
        "gauge",
        "1 when the report counts as ready for /health/ready",
    ),
    (
        "gladly_kafka_backfill_windows_done",
        "gauge",
        "Windows of the running backfill that are published (resumed ones included)",
    ),
    (
        "gladly_kafka_backfill_windows_planned",
        "gauge",
        "Windows of the running backfill in all (grows when a window is split)",
    ),
    (
        "gladly_kafka_reread_windows_total",
        "counter",
        "Windows of re-read tier passes committed, by report and tier",
    ),
    (
        "gladly_kafka_reread_records_total",
        "counter",
        "Records (tombstones included) published by re-read tier passes: with pipeline.publish = \"changes\", rows Gladly restated after the live poll last read them",
    ),
    (
        "gladly_kafka_reread_passes_total",
        "counter",
        "Re-read tier passes completed, by report and tier",
    ),
    (
        "gladly_kafka_reread_last_pass_timestamp_seconds",
        "gauge",
        "Unix time the last complete pass of a re-read tier began",
    ),
    (
        "gladly_kafka_api_requests_total",
        "counter",
        "Gladly report requests sent (every attempt)",
    ),
    (
        "gladly_kafka_api_get_requests_total",
        "counter",
        "Gladly GET Conversation requests sent (every attempt)",
    ),
    (
        "gladly_kafka_api_responses_total",
        "counter",
        "Gladly responses (reports and GETs), by HTTP status",
    ),
    (
        "gladly_kafka_api_retries_total",
        "counter",
        "Gladly requests (reports and GETs) retried (429, 5xx, timeouts, resets)",
    ),
    (
        "gladly_kafka_api_rate_limited_total",
        "counter",
        "Gladly 429 (rate limit) responses",
    ),
    (
        "gladly_kafka_api_transport_errors_total",
        "counter",
        "Gladly requests that got no response (connect errors, resets, timeouts)",
    ),
    (
        "gladly_kafka_api_retry_wait_seconds_total",
        "counter",
        "Time spent waiting before Gladly retries",
    ),
    (
        "gladly_kafka_api_request_duration_seconds",
        "histogram",
        "Gladly request latency until the response headers, by request",
    ),
    (
        "gladly_kafka_conversations_fetched_total",
        "counter",
        "GET Conversation answers, by outcome (found, deleted, dead_letter)",
    ),
    (
        "gladly_kafka_dimension_records_total",
        "counter",
        "Records committed to the dimension topics, by list and kind (record: a new or changed item; tombstone: an id no longer listed)",
    ),
    (
        "gladly_kafka_dimension_items",
        "gauge",
        "Items Gladly listed at the last committed refresh, by list",
    ),
    (
        "gladly_kafka_dimension_refreshed_timestamp_seconds",
        "gauge",
        "Unix time of the last committed refresh of each dimension list",
    ),
];
