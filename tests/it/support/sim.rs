//! The Gladly simulator (the `gladly-sim` crate) in gladly-kafka's terms: its clock read from
//! one of ours, and its ground truth as our request and rows. The simulator knows nothing of
//! gladly-kafka, so the conversion lives here, on the test side.

use std::sync::Arc;

use gladly_kafka::clock::Clock;
use gladly_kafka::gladly::ReportRequest;
use gladly_kafka::report::{Header, Row};
use gladly_sim::{ReportQuery, SimClock, Simulator};

/// The simulator's view of `clock` (a [`gladly_kafka::clock::ManualClock`] clone shares its
/// time with the pipeline under test).
pub fn sim_clock(clock: impl Clock + 'static) -> impl SimClock + 'static {
    move || clock.now()
}

/// The simulator's form of a report request.
pub fn query(req: &ReportRequest) -> ReportQuery {
    match req.clone() {
        ReportRequest::WorkSessions { start, end } => ReportQuery::WorkSessions { start, end },
        ReportRequest::MetricSet {
            metric_set,
            start,
            end,
            timezone,
            aggregation_level,
            filters: _,
        } => ReportQuery::MetricSet {
            metric_set,
            start,
            end,
            timezone,
            aggregation_level,
        },
        ReportRequest::MetricSetBetween {
            metric_set,
            start,
            end,
            filters: _,
        } => ReportQuery::MetricSetBetween {
            metric_set,
            start,
            end,
        },
    }
}

/// The simulator's ground truth as the client would parse it.
pub trait TruthExt {
    /// The full current content of the report for `req` (see
    /// [`Simulator::report_truth`]), as a header and rows numbered like the CSV body's lines.
    fn truth(&self, req: &ReportRequest) -> (Arc<Header>, Vec<Row>);
}

impl TruthExt for Simulator {
    fn truth(&self, req: &ReportRequest) -> (Arc<Header>, Vec<Row>) {
        let truth = self.report_truth(&query(req));
        let header = Arc::new(Header::new(truth.columns));
        let rows = truth
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let record = csv::StringRecord::from(r.cells().to_vec());
                Row::new(header.clone(), record, i as u64 + 2)
            })
            .collect();
        (header, rows)
    }
}
