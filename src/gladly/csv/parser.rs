//! The incremental CSV parser under [`super::RowStream`]: chunks in, raw records out, with
//! bounded memory whatever the body holds. It knows nothing of rows or headers (`stream`
//! makes rows of its records): its imports point away from the rest of `csv`.
//!
//! Built on `csv_core`, so quoted commas and newlines, CRLF and a leading UTF-8 BOM are
//! handled however the body is split into chunks. On top of it:
//!
//! - **Size.** A row longer than [`RowLimits::max_row_bytes`] (raw bytes) or with more than
//!   [`MAX_FIELDS`] fields is not kept whole: its first `max_row_bytes` of cell text are kept,
//!   the rest is parsed and dropped, and the record comes out marked [`RawRecord::oversize`].
//!   Memory stays about `max_row_bytes` however long a cell is.
//! - **Framing.** `csv_core` never fails: a quote that is never closed swallows the rest of
//!   the body into one field. At the end of the body the parser asks whether it is inside a
//!   quoted field, and if so yields [`GladlyError::Framing`] instead of that merged record.

use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use csv::ByteRecord;
use csv_core::ReadRecordResult;
use futures::stream::BoxStream;
use futures::StreamExt;

use crate::gladly::error::GladlyError;

/// The body as a stream of chunks; errors are already [`GladlyError::Body`].
pub type BodyChunks = BoxStream<'static, Result<Bytes, GladlyError>>;

/// Most fields a row may have before it is treated as oversized (Gladly's reports have a few
/// dozen columns).
pub(super) const MAX_FIELDS: usize = 4096;
/// Bytes of the body's start kept for error messages.
pub(super) const HEAD_BYTES: usize = 256;
/// Output scratch space while an oversized row is skipped.
const SCRATCH: usize = 16 * 1024;

/// Size limits of one CSV row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowLimits {
    /// Longest row in raw bytes (quotes, delimiters and line end included).
    pub max_row_bytes: usize,
    /// Longest cell in bytes (unquoted).
    pub max_cell_bytes: usize,
}

impl Default for RowLimits {
    fn default() -> Self {
        RowLimits {
            max_row_bytes: 256 * 1024,
            max_cell_bytes: 64 * 1024,
        }
    }
}

/// A row that was over the limits: how big it really was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Oversize {
    /// Raw bytes of the whole row.
    pub bytes: u64,
    /// Fields of the whole row.
    pub fields: u64,
}

/// One parsed CSV record before it becomes a row.
pub(super) struct RawRecord {
    /// 1-based line where the record starts.
    pub line: u64,
    /// The cells; for an oversized row only those (or the part of the one) that fit in its
    /// kept prefix.
    pub record: ByteRecord,
    /// Set when the row was over the limits and `record` is a truncated copy.
    pub oversize: Option<Oversize>,
}

/// Incremental CSV reader over a chunk stream.
pub(super) struct Parser {
    body: BodyChunks,
    limits: RowLimits,
    chunk: Bytes,
    eof: bool,
    started: bool,
    /// The end of the body was checked for an open quote.
    checked_end: bool,
    rdr: csv_core::Reader,
    out: Vec<u8>,
    out_len: usize,
    ends: Vec<usize>,
    ends_len: usize,
    /// The current record is over the limits: its output goes to `scratch`.
    oversize: bool,
    /// Raw bytes and fields of the current record so far.
    row_bytes: u64,
    row_fields: u64,
    scratch: Vec<u8>,
    scratch_ends: Vec<usize>,
    next_line: u64,
    last_byte: u8,
    /// Where the input so far ends, as far as quotes go.
    quote: Quote,
    head: Vec<u8>,
}

impl Parser {
    pub(super) fn new(body: BodyChunks, limits: RowLimits) -> Self {
        Parser {
            body,
            limits,
            chunk: Bytes::new(),
            eof: false,
            started: false,
            checked_end: false,
            rdr: csv_core::Reader::new(),
            out: vec![0; 4096.min(limits.max_row_bytes.max(1))],
            out_len: 0,
            ends: vec![0; 64],
            ends_len: 0,
            oversize: false,
            row_bytes: 0,
            row_fields: 0,
            scratch: Vec::new(),
            scratch_ends: Vec::new(),
            next_line: 1,
            last_byte: 0,
            quote: Quote::FieldStart,
            head: Vec::new(),
        }
    }

    /// The first bytes of the body (up to [`HEAD_BYTES`]), for messages about what came back.
    pub(super) fn head(&self) -> &[u8] {
        &self.head
    }

    /// Pulls the next chunk; `Some` when the poll must return (pending, or a broken body).
    fn fill(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Option<Poll<Option<Result<RawRecord, GladlyError>>>> {
        match self.body.poll_next_unpin(cx) {
            Poll::Pending => Some(Poll::Pending),
            Poll::Ready(Some(Ok(b))) => {
                if self.head.len() < HEAD_BYTES {
                    let n = (HEAD_BYTES - self.head.len()).min(b.len());
                    self.head.extend_from_slice(&b[..n]);
                }
                if self.chunk.is_empty() {
                    self.chunk = b;
                } else {
                    let mut joined = BytesMut::with_capacity(self.chunk.len() + b.len());
                    joined.extend_from_slice(&self.chunk);
                    joined.extend_from_slice(&b);
                    self.chunk = joined.freeze();
                }
                None
            }
            Poll::Ready(Some(Err(e))) => {
                self.eof = true;
                Some(Poll::Ready(Some(Err(e))))
            }
            Poll::Ready(None) => {
                self.eof = true;
                None
            }
        }
    }

    /// The next record, `None` at the end of the body.
    pub(super) fn poll_record(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<RawRecord, GladlyError>>> {
        loop {
            // Look at 3 bytes before the first parse, to strip a BOM split across chunks.
            let need_more = if self.started {
                self.chunk.is_empty()
            } else {
                self.chunk.len() < 3
            };
            if need_more && !self.eof {
                if let Some(ret) = self.fill(cx) {
                    return ret;
                }
                continue;
            }
            if !self.started {
                self.started = true;
                if self.chunk.starts_with(b"\xef\xbb\xbf") {
                    let _ = self.chunk.split_to(3);
                    continue;
                }
            }
            if self.chunk.is_empty() && !self.checked_end {
                self.checked_end = true;
                if self.in_quoted_field() {
                    return Poll::Ready(Some(Err(GladlyError::Framing {
                        line: self.next_line,
                        detail: format!(
                            "the body ends inside a quoted field: the row at line {} opens a quote that is never closed, \
                             so the {} bytes from that row to the end would have been read as one row (a cut or malformed answer)",
                            self.next_line, self.row_bytes
                        ),
                    })));
                }
            }
            match self.step() {
                // Fetch more input (at the end, csv_core turns empty input into Record/End).
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => self.grow_out(),
                ReadRecordResult::OutputEndsFull => self.grow_ends(),
                ReadRecordResult::Record => return Poll::Ready(Some(Ok(self.take_record()))),
                ReadRecordResult::End => return Poll::Ready(None),
            }
        }
    }

    /// True when the input so far ends inside a quoted field (`csv_core` does not say, and
    /// its `Reader::clone` does not copy its tables, so the parser follows along).
    fn in_quoted_field(&self) -> bool {
        self.quote == Quote::Quoted
    }

    /// One `csv_core` call over the current chunk.
    fn step(&mut self) -> ReadRecordResult {
        let (res, nin) = if self.oversize {
            let (res, nin, _, nend) =
                self.rdr
                    .read_record(&self.chunk, &mut self.scratch, &mut self.scratch_ends);
            // ends are offsets into the record's whole output: keep those we have room for
            for i in 0..nend {
                if self.ends_len < self.ends.len() {
                    self.ends[self.ends_len] = self.scratch_ends[i];
                    self.ends_len += 1;
                }
            }
            self.row_fields += nend as u64;
            (res, nin)
        } else {
            let (res, nin, nout, nend) = self.rdr.read_record(
                &self.chunk,
                &mut self.out[self.out_len..],
                &mut self.ends[self.ends_len..],
            );
            self.out_len += nout;
            self.ends_len += nend;
            self.row_fields += nend as u64;
            (res, nin)
        };
        if nin > 0 {
            self.last_byte = self.chunk[nin - 1];
            self.quote = self.quote.after(&self.chunk[..nin]);
        }
        let _ = self.chunk.split_to(nin);
        self.row_bytes += nin as u64;
        if !self.oversize && self.row_bytes > self.limits.max_row_bytes as u64 {
            self.start_oversize();
        }
        res
    }

    fn grow_out(&mut self) {
        if self.oversize {
            return; // the scratch is reused: nothing to grow
        }
        if self.out.len() >= self.limits.max_row_bytes {
            self.start_oversize();
        } else {
            let len = (self.out.len() * 2).min(self.limits.max_row_bytes.max(1));
            self.out.resize(len, 0);
        }
    }

    fn grow_ends(&mut self) {
        if self.oversize {
            return; // the scratch ends are copied out after each call: nothing to grow
        }
        if self.ends.len() >= MAX_FIELDS {
            self.start_oversize();
        } else {
            let len = (self.ends.len() * 2).min(MAX_FIELDS);
            self.ends.resize(len, 0);
        }
    }

    /// From now on the current record's output is parsed and dropped.
    fn start_oversize(&mut self) {
        self.oversize = true;
        if self.scratch.is_empty() {
            self.scratch = vec![0; SCRATCH];
            self.scratch_ends = vec![0; 256];
        }
    }

    /// The record just completed; resets the per-record state.
    fn take_record(&mut self) -> RawRecord {
        let kept = self.out_len;
        let mut record = ByteRecord::with_capacity(kept, self.ends_len);
        let mut start = 0;
        for &end in &self.ends[..self.ends_len] {
            if end > kept {
                // an oversized row: the field that ran past the kept prefix, cut
                record.push_field(&self.out[start.min(kept)..kept]);
                break;
            }
            record.push_field(&self.out[start..end]);
            start = end;
        }
        let oversize = self.oversize.then_some(Oversize {
            bytes: self.row_bytes,
            fields: self.row_fields,
        });
        let line = self.next_line;
        // csv_core ends a CRLF record at the CR and counts its LF with the next one
        self.next_line = self.rdr.line() + u64::from(self.last_byte == b'\r');
        self.out_len = 0;
        self.ends_len = 0;
        self.row_bytes = 0;
        self.row_fields = 0;
        if self.oversize {
            self.oversize = false;
            self.scratch = Vec::new();
            self.scratch_ends = Vec::new();
        }
        RawRecord {
            line,
            record,
            oversize,
        }
    }
}

/// Where CSV input stands as far as quotes go, following `csv_core`'s rules (`"` opens a
/// quoted field only at a field's start, `""` inside one is a quote, `,`, `\n` and `\r`
/// end fields outside quotes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    /// At the start of a field (or record).
    FieldStart,
    /// In a field that did not start with a quote (quotes in it are text).
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a quote inside a quoted field: it closes the field, unless a second one
    /// follows (an escaped quote).
    Closing,
}

impl Quote {
    /// The state after `input`.
    fn after(mut self, input: &[u8]) -> Quote {
        let mut i = 0;
        while i < input.len() {
            self = match self {
                Quote::Quoted => match memchr::memchr(b'"', &input[i..]) {
                    Some(at) => {
                        i += at + 1;
                        Quote::Closing
                    }
                    None => return Quote::Quoted,
                },
                Quote::Unquoted => match memchr::memchr3(b',', b'\n', b'\r', &input[i..]) {
                    Some(at) => {
                        i += at + 1;
                        Quote::FieldStart
                    }
                    None => return Quote::Unquoted,
                },
                Quote::FieldStart | Quote::Closing => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'"' => Quote::Quoted,
                        b',' | b'\n' | b'\r' => Quote::FieldStart,
                        _ => Quote::Unquoted,
                    }
                }
            };
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::Quote;

    #[test]
    fn quotes_are_followed_like_csv_core_does() {
        let after = |s: &str| Quote::FieldStart.after(s.as_bytes());
        assert_eq!(after("a,\"b"), Quote::Quoted);
        assert_eq!(after("a,\"b\"\""), Quote::Quoted, "an escaped quote");
        assert_eq!(after("a,\"b\"\"c\""), Quote::Closing);
        assert_eq!(
            after("a\"b"),
            Quote::Unquoted,
            "a quote inside a field is text"
        );
        assert_eq!(
            after("\"a\"b\"c"),
            Quote::Unquoted,
            "text after a closing quote"
        );
        assert_eq!(after("\"a\nb\"\n"), Quote::FieldStart);
        assert_eq!(after("x,\"a\nb\n"), Quote::Quoted);
    }
}
