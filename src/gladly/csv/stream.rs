//! Streaming CSV: response bytes in, [`Row`]s out, never holding more than one chunk and one
//! row (at most [`RowLimits::max_row_bytes`] of it). Parsing is in `parser`.
//!
//! Its items are `Result<RowResult, GladlyError>`, two kinds of error in two types:
//! - `Ok(Ok(row))`: a row;
//! - `Ok(Err(RowError { line, .. }))`, soft: a row whose field count differs from the
//!   header, that is not UTF-8, that is longer than `max_row_bytes` or has a cell longer than
//!   `max_cell_bytes` (its cells cut to [`PREVIEW_BYTES`] when it is too big); the stream
//!   **continues** (the caller dead-letters it);
//! - `Err(GladlyError)`, fatal: a broken body (connection cut, read timeout, deadline) as
//!   [`GladlyError::Body`] or [`GladlyError::Deadline`], a body that ends inside a quoted
//!   field as [`GladlyError::Framing`]; the stream then **ends**: it is never a short
//!   success.
//!
//! So `item?` stops on a fatal error only, and a bad row has to be handled where it comes.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use csv::{ByteRecord, StringRecord};
use futures::{Stream, StreamExt};
use tokio::sync::OwnedSemaphorePermit;

use super::parser::{BodyChunks, Oversize, Parser, RawRecord, RowLimits};
use crate::gladly::error::{GladlyError, RowError};
use crate::report::{Header, Row};

/// A data row, or why this one row could not be read (soft: the stream goes on after it).
pub type RowResult = Result<Row, RowError>;

/// Bytes kept of each cell of a row that is over the size limits, in its dead letter.
pub const PREVIEW_BYTES: usize = 1024;
/// Cells kept of a row that is over the size limits, in its dead letter.
const PREVIEW_CELLS: usize = 256;

/// The rows of one report response, streamed. An item is `Ok(Ok(row))`; `Ok(Err(RowError))`,
/// a bad row, after which the stream goes on; or `Err(GladlyError)`, fatal: the body broke
/// off or is not CSV, and the stream ends (the example of [`crate::gladly`] handles both).
///
/// The header is read before the stream is handed out, so [`RowStream::header`] is always
/// available. While a `RowStream` is alive it holds one of the client's report slots: read
/// it to the end or drop it before starting more reports than `max_concurrent_reports`.
pub struct RowStream {
    header: Arc<Header>,
    parser: Parser,
    limits: RowLimits,
    done: bool,
    rows: u64,
    permit: Option<OwnedSemaphorePermit>,
}

impl std::fmt::Debug for RowStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowStream")
            .field("header", &self.header.names())
            .field("rows", &self.rows)
            .field("done", &self.done)
            .finish()
    }
}

impl RowStream {
    /// Reads the header line of `body` with the default [`RowLimits`] and returns the stream
    /// of the remaining rows. An empty body gives an empty header and no rows.
    pub async fn from_body(
        body: BodyChunks,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<RowStream, GladlyError> {
        RowStream::with_limits(body, permit, RowLimits::default()).await
    }

    /// Like [`RowStream::from_body`], with these limits. A header line over
    /// `max_row_bytes`, or one that opens a quote it never closes, is a
    /// [`GladlyError::Framing`] error.
    pub async fn with_limits(
        body: BodyChunks,
        permit: Option<OwnedSemaphorePermit>,
        limits: RowLimits,
    ) -> Result<RowStream, GladlyError> {
        let mut parser = Parser::new(body, limits);
        let first = futures::future::poll_fn(|cx| parser.poll_record(cx)).await;
        let (header, done) = match first {
            None => (Header::new(Vec::<String>::new()), true),
            Some(Err(e)) => return Err(e),
            Some(Ok(RawRecord {
                oversize: Some(o), ..
            })) => {
                return Err(GladlyError::Framing {
                    line: 1,
                    detail: format!(
                        "the header line is {} bytes ({} fields), over gladly.max_row_bytes = {}",
                        o.bytes, o.fields, limits.max_row_bytes
                    ),
                })
            }
            Some(Ok(raw)) => {
                let names: Vec<String> = raw
                    .record
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect();
                (Header::new(names), false)
            }
        };
        Ok(RowStream {
            header: Arc::new(header),
            parser,
            limits,
            done,
            rows: 0,
            permit,
        })
    }

    /// A stream over an in-memory body (tests, replays, examples): the rows of a whole CSV
    /// text, header line first, with the default [`RowLimits`] and no report slot.
    pub async fn from_bytes(body: impl Into<Bytes>) -> Result<RowStream, GladlyError> {
        let body: Bytes = body.into();
        RowStream::from_body(futures::stream::iter([Ok(body)]).boxed(), None).await
    }

    /// The header of this response (column names in response order).
    pub fn header(&self) -> Arc<Header> {
        self.header.clone()
    }

    /// The first bytes of the body (at most 256), for messages about what came back.
    pub fn first_bytes(&self) -> &[u8] {
        self.parser.head()
    }

    /// Data rows yielded so far (well-formed and malformed).
    pub fn rows_read(&self) -> u64 {
        self.rows
    }

    /// Reads to the end: the rows and the bad rows, each in order, or the fatal error that
    /// ended the body.
    pub async fn collect_rows(mut self) -> Result<(Vec<Row>, Vec<RowError>), GladlyError> {
        let (mut rows, mut bad) = (Vec::new(), Vec::new());
        while let Some(item) = self.next().await {
            match item? {
                Ok(row) => rows.push(row),
                Err(e) => bad.push(e),
            }
        }
        Ok((rows, bad))
    }

    fn finish(&mut self) {
        self.done = true;
        self.permit = None;
    }

    /// The row of a raw record, or why it is malformed.
    fn row(&self, raw: RawRecord) -> RowResult {
        let expected = self.header.len();
        if let Some(o) = raw.oversize {
            return Err(self.oversized_row(raw.line, &raw.record, o));
        }
        if let Some((i, len)) = raw
            .record
            .iter()
            .map(<[u8]>::len)
            .enumerate()
            .find(|&(_, len)| len > self.limits.max_cell_bytes)
        {
            let column = self.header.names().get(i).map_or_else(
                || format!("field {}", i + 1),
                |name| format!("field {} (`{name}`)", i + 1),
            );
            return Err(RowError {
                line: raw.line,
                reason: format!(
                    "oversized cell: {column} is {len} bytes, over gladly.max_cell_bytes = {}; \
                     cells cut to {PREVIEW_BYTES} bytes here",
                    self.limits.max_cell_bytes
                ),
                raw: preview(&raw.record),
            });
        }
        if raw.record.len() != expected {
            return Err(RowError {
                line: raw.line,
                reason: format!(
                    "malformed row: {} fields where the header has {expected}",
                    raw.record.len()
                ),
                raw: lossy(&raw.record),
            });
        }
        match StringRecord::from_byte_record(raw.record) {
            Ok(record) => Ok(Row::new(self.header.clone(), record, raw.line)),
            Err(e) => {
                let field = e.utf8_error().field();
                Err(RowError {
                    line: raw.line,
                    reason: format!("malformed row: field {} is not valid UTF-8", field + 1),
                    raw: lossy(&e.into_byte_record()),
                })
            }
        }
    }

    fn oversized_row(&self, line: u64, kept: &ByteRecord, o: Oversize) -> RowError {
        RowError {
            line,
            reason: format!(
                "oversized row: {} bytes in {} fields, over gladly.max_row_bytes = {}; \
                 cells cut to {PREVIEW_BYTES} bytes here",
                o.bytes, o.fields, self.limits.max_row_bytes
            ),
            raw: preview(kept),
        }
    }
}

impl Stream for RowStream {
    type Item = Result<RowResult, GladlyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match this.parser.poll_record(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish();
                Poll::Ready(Some(Err(e.after_rows(this.rows))))
            }
            Poll::Ready(Some(Ok(raw))) => {
                this.rows += 1;
                Poll::Ready(Some(Ok(this.row(raw))))
            }
        }
    }
}

fn lossy(record: &ByteRecord) -> Vec<String> {
    record
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

/// The cells of a row that is too big, each cut to [`PREVIEW_BYTES`] (at most
/// [`PREVIEW_CELLS`] of them), lossily decoded.
fn preview(record: &ByteRecord) -> Vec<String> {
    record
        .iter()
        .take(PREVIEW_CELLS)
        .map(|f| String::from_utf8_lossy(&f[..f.len().min(PREVIEW_BYTES)]).into_owned())
        .collect()
}
