//! A CSV report body generated chunk by chunk as the client reads it, with the format faults
//! (BOM, quoting, an extra or reordered column, bad cells, a row cap, a cut connection).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Bytes;

use crate::faults::{FaultState, BAD_CELL, EXTRA_COLUMN};
use crate::reports::{Plan, RowSource};
use crate::rng::mix;
use crate::{InFlight, Simulator};

/// Index in the output order standing for the extra column.
const EXTRA: usize = usize::MAX;
/// Body chunk size.
const CHUNK: usize = 64 * 1024;

/// A CSV body generated chunk by chunk, applying the format faults.
pub(super) struct CsvBody {
    sim: Arc<Simulator>,
    report: &'static str,
    columns: &'static [&'static str],
    source: Box<dyn RowSource>,
    cells: Vec<String>,
    order: Vec<usize>,
    faults: FaultState,
    cap: Option<usize>,
    rows: usize,
    cut: Option<usize>,
    sent: usize,
    started: bool,
    finished: bool,
    cut_happened: Arc<AtomicBool>,
    _guard: InFlight,
}

impl CsvBody {
    /// The body of `plan` as of now, with this request's format faults; it holds the
    /// request's concurrency slot until it is dropped.
    pub(super) fn new(
        sim: Arc<Simulator>,
        plan: &Plan,
        faults: FaultState,
        guard: InFlight,
    ) -> Self {
        let report = plan.report_name();
        let (columns, source) = sim.report_source(plan, sim.clock.now());
        let cap = faults.row_cap.or(sim.cfg.row_cap);
        let cut = sim.faults.take_cut();
        let mut order: Vec<usize> = (0..columns.len()).collect();
        if faults.reorder_columns {
            order.reverse();
        }
        if faults.extra_column {
            order.insert(1.min(order.len()), EXTRA);
        }
        CsvBody {
            sim,
            report,
            columns,
            source,
            cells: vec![String::new(); columns.len()],
            order,
            faults,
            cap,
            rows: 0,
            cut,
            sent: 0,
            started: false,
            finished: false,
            cut_happened: Arc::default(),
            _guard: guard,
        }
    }

    /// Set once the cut fault has broken this body off.
    pub(super) fn cut_happened(&self) -> Arc<AtomicBool> {
        self.cut_happened.clone()
    }

    fn write_cell(&self, out: &mut Vec<u8>, cell: &str) {
        let quote = self.faults.quote_all
            || cell
                .bytes()
                .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
        if quote {
            out.push(b'"');
            for b in cell.bytes() {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(cell.as_bytes());
        }
    }

    fn write_line(&self, out: &mut Vec<u8>, cell_of: impl Fn(usize) -> String) {
        for (i, &idx) in self.order.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let cell = cell_of(idx);
            self.write_cell(out, &cell);
        }
        out.extend_from_slice(b"\r\n");
    }

    fn fill(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            if self.faults.bom {
                out.extend_from_slice("\u{feff}".as_bytes());
            }
            let columns = self.columns;
            self.write_line(out, |i| {
                if i == EXTRA {
                    EXTRA_COLUMN.to_string()
                } else {
                    columns[i].to_string()
                }
            });
        }
        let mut served = 0;
        while out.len() < CHUNK {
            if self.cap.is_some_and(|cap| self.rows >= cap) {
                self.finished = true;
                break;
            }
            self.cells.iter_mut().for_each(String::clear);
            let Some((identity, bad_idx)) = self.source.next_row(&mut self.cells) else {
                self.finished = true;
                break;
            };
            self.rows += 1;
            served += 1;
            if self.faults.bad_cell_rate > 0.0 {
                let draw = (mix(identity ^ self.sim.cfg.seed ^ 0xBAD0_CE11) >> 11) as f64
                    / (1u64 << 53) as f64;
                if draw < self.faults.bad_cell_rate {
                    let key = format!("{}:{}", self.report, self.source.key(&self.cells));
                    self.sim.record_bad(key);
                    self.cells[bad_idx] = BAD_CELL.to_string();
                }
            }
            let rows = self.rows;
            if self.faults.extra_column {
                let cells = &self.cells;
                let line = {
                    let mut l = Vec::new();
                    self.write_line(&mut l, |i| {
                        if i == EXTRA {
                            format!("note {rows}, \"kept\"\nsecond line")
                        } else {
                            cells[i].clone()
                        }
                    });
                    l
                };
                out.extend_from_slice(&line);
            } else {
                for (i, &idx) in self.order.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.write_cell(out, &self.cells[idx]);
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        self.sim.count_rows(served);
    }
}

impl Iterator for CsvBody {
    type Item = Result<Bytes, io::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let mut out = Vec::with_capacity(CHUNK + 4096);
        self.fill(&mut out);
        if let Some(cut) = self.cut {
            let room = cut.saturating_sub(self.sent);
            if out.len() > room {
                // the connection breaks here: the rest never comes
                out.truncate(room);
                self.finished = true;
                self.cut_happened.store(true, Ordering::SeqCst);
            }
        }
        self.sent += out.len();
        Some(Ok(Bytes::from(out)))
    }
}
