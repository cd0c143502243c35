//! Rows generated an hour of contacts (or conversations) at a time and handed out one by one:
//! the shape of the event-grain and conversation reports, whose rows for one contact or
//! conversation are computed together.

use super::{Extras, RowSource};

/// One generated row.
pub(super) struct Row {
    /// Stable identity (picks rows for the bad-cell fault).
    pub(super) identity: u64,
    /// Index of the cell the bad-cell fault corrupts.
    pub(super) bad: usize,
    /// The cells, in column order.
    pub(super) cells: Vec<String>,
    /// What the row says about its contact or conversation.
    pub(super) extras: Extras,
}

/// A report generated hour by hour.
pub(super) trait Hourly: Send {
    /// Appends the rows of the contacts (or conversations) created in hour `h`.
    fn hour(&self, h: i64, out: &mut Vec<Row>);

    /// The key the records layer uses for a row.
    fn key(&self, cells: &[String]) -> String;
}

/// A [`RowSource`] over an [`Hourly`] report for the hours `[first, last]`.
pub(super) struct HourlyRows<G> {
    report: G,
    hour: i64,
    last_hour: i64,
    pending: std::vec::IntoIter<Row>,
    last: Extras,
}

impl<G: Hourly> HourlyRows<G> {
    /// The rows of `report` for the hours `[first, last]` (negative hours hold nothing).
    pub(super) fn over(report: G, first: i64, last: i64) -> Self {
        HourlyRows {
            report,
            hour: first.max(0),
            last_hour: last,
            pending: Vec::new().into_iter(),
            last: Extras::default(),
        }
    }
}

impl<G: Hourly> RowSource for HourlyRows<G> {
    fn next_row(&mut self, cells: &mut [String]) -> Option<(u64, usize)> {
        loop {
            if let Some(row) = self.pending.next() {
                for (cell, v) in cells.iter_mut().zip(row.cells) {
                    *cell = v;
                }
                self.last = row.extras;
                return Some((row.identity, row.bad));
            }
            if self.hour > self.last_hour {
                return None;
            }
            let mut rows = Vec::new();
            self.report.hour(self.hour, &mut rows);
            self.pending = rows.into_iter();
            self.hour += 1;
        }
    }

    fn key(&self, cells: &[String]) -> String {
        self.report.key(cells)
    }

    fn extras(&self) -> Extras {
        self.last
    }
}
