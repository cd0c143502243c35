//! Streaming CSV: response bytes in, [`Row`]s out, never holding more than one chunk and one
//! row. Built on `csv_core`, so quoted commas and newlines, CRLF and a leading UTF-8 BOM are
//! handled however the body is split into chunks.
//!
//! Error items: a row whose field count differs from the header, or that is not UTF-8, is
//! yielded as `Err(GladlyError::MalformedRow { line, .. })` and the stream **continues** (the
//! caller decides: dead-letter it or fail). A broken body (connection cut, read timeout) is
//! yielded as `Err(GladlyError::Body { .. })` and the stream **ends**: it is never a short
//! success.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use csv::{ByteRecord, StringRecord};
use csv_core::ReadRecordResult;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use tokio::sync::OwnedSemaphorePermit;

use super::GladlyError;
use crate::report::{Header, Row};

/// The body as a stream of chunks; errors are already [`GladlyError::Body`].
pub type BodyChunks = BoxStream<'static, Result<Bytes, GladlyError>>;

/// One parsed CSV record before it becomes a [`Row`].
struct RawRecord {
    line: u64,
    record: ByteRecord,
}

/// Incremental CSV reader over a chunk stream.
struct Parser {
    body: BodyChunks,
    chunk: Bytes,
    eof: bool,
    started: bool,
    rdr: csv_core::Reader,
    out: Vec<u8>,
    out_len: usize,
    ends: Vec<usize>,
    ends_len: usize,
    next_line: u64,
    last_byte: u8,
}

impl Parser {
    fn new(body: BodyChunks) -> Self {
        Parser {
            body,
            chunk: Bytes::new(),
            eof: false,
            started: false,
            rdr: csv_core::Reader::new(),
            out: vec![0; 4096],
            out_len: 0,
            ends: vec![0; 64],
            ends_len: 0,
            next_line: 1,
            last_byte: 0,
        }
    }

    /// The next record, `None` at the end of the body.
    fn poll_record(
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
                match self.body.poll_next_unpin(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Ok(b))) => {
                        if self.chunk.is_empty() {
                            self.chunk = b;
                        } else {
                            let mut joined = BytesMut::with_capacity(self.chunk.len() + b.len());
                            joined.extend_from_slice(&self.chunk);
                            joined.extend_from_slice(&b);
                            self.chunk = joined.freeze();
                        }
                        continue;
                    }
                    Poll::Ready(Some(Err(e))) => {
                        self.eof = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                    Poll::Ready(None) => self.eof = true,
                }
            }
            if !self.started {
                self.started = true;
                if self.chunk.starts_with(b"\xef\xbb\xbf") {
                    let _ = self.chunk.split_to(3);
                    continue;
                }
            }
            let (res, nin, nout, nend) = self.rdr.read_record(
                &self.chunk,
                &mut self.out[self.out_len..],
                &mut self.ends[self.ends_len..],
            );
            if nin > 0 {
                self.last_byte = self.chunk[nin - 1];
            }
            let _ = self.chunk.split_to(nin);
            self.out_len += nout;
            self.ends_len += nend;
            match res {
                // Fetch more input (at the end, csv_core turns empty input into Record/End).
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    let len = self.out.len() * 2;
                    self.out.resize(len, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let len = self.ends.len() * 2;
                    self.ends.resize(len, 0);
                }
                ReadRecordResult::Record => {
                    let mut record = ByteRecord::with_capacity(self.out_len, self.ends_len);
                    let mut start = 0;
                    for &end in &self.ends[..self.ends_len] {
                        record.push_field(&self.out[start..end]);
                        start = end;
                    }
                    let line = self.next_line;
                    // csv_core ends a CRLF record at the CR and counts its LF with the next one
                    self.next_line = self.rdr.line() + u64::from(self.last_byte == b'\r');
                    self.out_len = 0;
                    self.ends_len = 0;
                    return Poll::Ready(Some(Ok(RawRecord { line, record })));
                }
                ReadRecordResult::End => return Poll::Ready(None),
            }
        }
    }
}

/// The rows of one report response, streamed. See the module docs for its error items.
///
/// The header is read before the stream is handed out, so [`RowStream::header`] is always
/// available. While a `RowStream` is alive it holds one of the client's report slots: read
/// it to the end or drop it before starting more reports than `max_concurrent_reports`.
pub struct RowStream {
    header: Arc<Header>,
    parser: Parser,
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
    /// Reads the header line of `body` and returns the stream of the remaining rows. An empty
    /// body gives an empty header and no rows.
    pub async fn from_body(
        body: BodyChunks,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<RowStream, GladlyError> {
        let mut parser = Parser::new(body);
        let first = futures::future::poll_fn(|cx| parser.poll_record(cx)).await;
        let (header, done) = match first {
            None => (Header::new(Vec::<String>::new()), true),
            Some(Err(e)) => return Err(e),
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
            done,
            rows: 0,
            permit,
        })
    }

    /// A stream over an in-memory body (tests, replays).
    pub async fn from_bytes(body: impl Into<Bytes>) -> Result<RowStream, GladlyError> {
        let body: Bytes = body.into();
        RowStream::from_body(futures::stream::iter([Ok(body)]).boxed(), None).await
    }

    /// The header of this response (column names in response order).
    pub fn header(&self) -> Arc<Header> {
        self.header.clone()
    }

    /// Data rows yielded so far (well-formed and malformed).
    pub fn rows_read(&self) -> u64 {
        self.rows
    }

    /// Collects every item: `Ok` rows in order, or the first error.
    pub async fn try_collect_rows(mut self) -> Result<Vec<Row>, GladlyError> {
        let mut rows = Vec::new();
        while let Some(item) = self.next().await {
            rows.push(item?);
        }
        Ok(rows)
    }

    fn finish(&mut self) {
        self.done = true;
        self.permit = None;
    }
}

impl Stream for RowStream {
    type Item = Result<Row, GladlyError>;

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
                Poll::Ready(Some(Err(match e {
                    GladlyError::Body { url, source, .. } => GladlyError::Body {
                        url,
                        rows: this.rows,
                        source,
                    },
                    other => other,
                })))
            }
            Poll::Ready(Some(Ok(raw))) => {
                this.rows += 1;
                let expected = this.header.len();
                if raw.record.len() != expected {
                    return Poll::Ready(Some(Err(GladlyError::MalformedRow {
                        line: raw.line,
                        reason: format!(
                            "{} fields where the header has {expected}",
                            raw.record.len()
                        ),
                        raw: lossy(&raw.record),
                    })));
                }
                match StringRecord::from_byte_record(raw.record) {
                    Ok(record) => {
                        Poll::Ready(Some(Ok(Row::new(this.header.clone(), record, raw.line))))
                    }
                    Err(e) => {
                        let field = e.utf8_error().field();
                        let raw_cells = lossy(&e.into_byte_record());
                        Poll::Ready(Some(Err(GladlyError::MalformedRow {
                            line: raw.line,
                            reason: format!("field {} is not valid UTF-8", field + 1),
                            raw: raw_cells,
                        })))
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chunks(body: &[u8], cuts: &[usize]) -> BodyChunks {
        let mut parts = Vec::new();
        let mut start = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        cuts.sort_unstable();
        for c in cuts {
            parts.push(Ok(Bytes::copy_from_slice(&body[start..c])));
            start = c;
        }
        parts.push(Ok(Bytes::copy_from_slice(&body[start..])));
        futures::stream::iter(parts).boxed()
    }

    async fn parse(body: BodyChunks) -> (Arc<Header>, Vec<Result<Row, GladlyError>>) {
        let s = RowStream::from_body(body, None).await.unwrap();
        let h = s.header();
        (h, s.collect().await)
    }

    const TRICKY: &[u8] = b"\xef\xbb\xbfid,note,extra\r\n1,\"a, b\",x\r\n2,\"multi\nline \"\"quoted\"\"\",y\n3,plain,\n";

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn bom_quotes_newlines_and_crlf() {
        let (h, rows) = block_on(parse(chunks(TRICKY, &[])));
        assert_eq!(h.names(), ["id", "note", "extra"]);
        let rows: Vec<Row> = rows.into_iter().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].get("note"), Some("a, b"));
        assert_eq!(rows[1].get("note"), Some("multi\nline \"quoted\""));
        assert_eq!(rows[2].get("extra"), Some(""));
        assert_eq!(
            rows.iter().map(Row::line).collect::<Vec<_>>(),
            vec![2, 3, 5],
            "lines count quoted newlines"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn chunk_boundaries_do_not_matter(cuts in proptest::collection::vec(0usize..200, 0..12)) {
            let (h, rows) = block_on(parse(chunks(TRICKY, &cuts)));
            prop_assert_eq!(h.names(), ["id", "note", "extra"]);
            let got: Vec<Vec<String>> = rows
                .into_iter()
                .map(|r| r.unwrap().record().iter().map(str::to_string).collect())
                .collect();
            prop_assert_eq!(got, vec![
                vec!["1".to_string(), "a, b".into(), "x".into()],
                vec!["2".to_string(), "multi\nline \"quoted\"".into(), "y".into()],
                vec!["3".to_string(), "plain".into(), "".into()],
            ]);
        }
    }

    #[test]
    fn wrong_field_count_is_an_error_item_and_the_stream_goes_on() {
        let body = b"a,b\n1,2\n1,2,3\n\xff,4\n5,6".to_vec();
        let (_, rows) = block_on(parse(chunks(&body, &[5])));
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].as_ref().unwrap().get("b"), Some("2"));
        match &rows[1] {
            Err(GladlyError::MalformedRow { line, reason, raw }) => {
                assert_eq!(*line, 3);
                assert!(
                    reason.contains("3 fields where the header has 2"),
                    "{reason}"
                );
                assert_eq!(raw.len(), 3);
            }
            other => panic!("expected a malformed row, got {other:?}"),
        }
        match &rows[2] {
            Err(GladlyError::MalformedRow { line, reason, .. }) => {
                assert_eq!(*line, 4);
                assert!(reason.contains("UTF-8"), "{reason}");
            }
            other => panic!("expected a malformed row, got {other:?}"),
        }
        assert_eq!(rows[3].as_ref().unwrap().get("a"), Some("5"));
    }

    #[test]
    fn empty_body_has_no_header_and_no_rows() {
        let (h, rows) = block_on(parse(chunks(b"", &[])));
        assert!(h.is_empty());
        assert!(rows.is_empty());
    }

    #[test]
    fn header_only_body_has_no_rows() {
        let (h, rows) = block_on(parse(chunks(b"x,y\r\n", &[1])));
        assert_eq!(h.names(), ["x", "y"]);
        assert!(rows.is_empty());
    }
}
