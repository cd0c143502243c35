//! Ground truth: a report's full content as the API would send it, by column name.

/// A report's full content: its columns and its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truth {
    /// Column names, in the report's order.
    pub columns: &'static [&'static str],
    /// The rows, in the order a response sends them.
    pub rows: Vec<TruthRow>,
}

/// One row of a [`Truth`], its cells addressable by column name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthRow {
    columns: &'static [&'static str],
    cells: Vec<String>,
}

impl TruthRow {
    /// A row of `cells` under `columns` (one cell per column).
    pub(crate) fn new(columns: &'static [&'static str], cells: Vec<String>) -> Self {
        TruthRow { columns, cells }
    }

    /// The cell of `column`, or `None` when the report has no such column.
    pub fn get(&self, column: &str) -> Option<&str> {
        let i = self.columns.iter().position(|c| *c == column)?;
        self.cells.get(i).map(String::as_str)
    }

    /// The cells, in column order.
    pub fn cells(&self) -> &[String] {
        &self.cells
    }
}
