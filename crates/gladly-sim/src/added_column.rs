//! A column added to a report mid-run (schema evolution): answers fetched at or after an
//! instant of the simulated clock carry one more column, last, with a value in every row.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::model::{Kind, Model};
use crate::reports::{Extras, RowSource};

/// A column a report gains at an instant (see [`crate::SimConfig::added_column`]).
///
/// The value of a row depends on the header: a count (`Number of …`, `… Count`) holds the
/// number of transfers of the row's contact (or of its conversation's contacts), a header
/// ending in `ID` the id of the agent who accepted last (empty when none did), any other
/// header the number of transfers as well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedColumn {
    /// The metric set that gains the column (e.g. [`crate::wire::CONVERSATION_EXPORT`]).
    pub metric_set: String,
    /// The new header, e.g. `Number of Transfers` or `Last Agent ID`.
    pub column: String,
    /// Answers fetched (simulated now) at or after this instant carry the column.
    pub from: DateTime<Utc>,
}

impl AddedColumn {
    /// True when an answer of `metric_set` fetched at `now` carries the column.
    pub(crate) fn applies(&self, metric_set: Option<&str>, now: DateTime<Utc>) -> bool {
        metric_set == Some(self.metric_set.as_str()) && now >= self.from
    }

    /// `columns` followed by the added one, as a list that lives as long as the program
    /// (interned: one allocation per distinct list).
    pub(crate) fn extend(&self, columns: &'static [&'static str]) -> &'static [&'static str] {
        static INTERNED: Mutex<Vec<(Vec<String>, &'static [&'static str])>> =
            Mutex::new(Vec::new());
        let wanted: Vec<String> = columns
            .iter()
            .map(|c| c.to_string())
            .chain([self.column.clone()])
            .collect();
        let mut interned = INTERNED.lock().expect("interned columns lock");
        if let Some((_, list)) = interned.iter().find(|(names, _)| *names == wanted) {
            return list;
        }
        let list: &'static [&'static str] = Box::leak(
            wanted
                .iter()
                .map(|c| &*Box::leak(c.clone().into_boxed_str()))
                .collect::<Vec<&'static str>>()
                .into_boxed_slice(),
        );
        interned.push((wanted, list));
        list
    }

    /// The cell of the added column for a row that says `extras`.
    fn value(&self, model: &Model, extras: Extras, out: &mut String) {
        let c = self.column.trim();
        if c.ends_with("ID") && !c.starts_with("Number of ") && !c.ends_with(" Count") {
            if let Some(a) = extras.last_agent {
                model.push_id(out, Kind::Agent, a.into());
            }
        } else {
            out.push_str(&extras.transfers.to_string());
        }
    }
}

/// A row source with the added column filled in, last.
pub(crate) struct WithAdded {
    inner: Box<dyn RowSource>,
    added: AddedColumn,
    model: Model,
}

impl WithAdded {
    /// `inner`'s rows with `added` as one more cell.
    pub(crate) fn new(inner: Box<dyn RowSource>, added: AddedColumn, model: Model) -> Self {
        WithAdded {
            inner,
            added,
            model,
        }
    }
}

impl RowSource for WithAdded {
    fn next_row(&mut self, cells: &mut [String]) -> Option<(u64, usize)> {
        let (last, rest) = cells.split_last_mut()?;
        let row = self.inner.next_row(rest)?;
        self.added.value(&self.model, self.inner.extras(), last);
        Some(row)
    }

    fn key(&self, cells: &[String]) -> String {
        self.inner.key(&cells[..cells.len().saturating_sub(1)])
    }

    fn extras(&self) -> Extras {
        self.inner.extras()
    }
}
