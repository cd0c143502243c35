//! Tests of the streaming CSV rows: chunking, framing, size limits.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use proptest::prelude::*;

use super::*;
use crate::gladly::{GladlyError, RowError};
use crate::report::{Header, Row};

/// One item of a [`RowStream`].
type Item = Result<RowResult, GladlyError>;

/// The row of an item that must be one.
fn row(item: &Item) -> &Row {
    match item {
        Ok(Ok(row)) => row,
        other => panic!("expected a row, got {other:?}"),
    }
}

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

async fn parse(body: BodyChunks) -> (Arc<Header>, Vec<Item>) {
    let s = RowStream::from_body(body, None).await.unwrap();
    let h = s.header();
    (h, s.collect().await)
}

const TRICKY: &[u8] =
    b"\xef\xbb\xbfid,note,extra\r\n1,\"a, b\",x\r\n2,\"multi\nline \"\"quoted\"\"\",y\n3,plain,\n";

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
    let rows: Vec<&Row> = rows.iter().map(row).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].get("note"), Some("a, b"));
    assert_eq!(rows[1].get("note"), Some("multi\nline \"quoted\""));
    assert_eq!(rows[2].get("extra"), Some(""));
    assert_eq!(
        rows.iter().map(|r| r.line()).collect::<Vec<_>>(),
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
            .map(|r| row(&r).record().iter().map(str::to_string).collect())
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
    assert_eq!(row(&rows[0]).get("b"), Some("2"));
    match &rows[1] {
        Ok(Err(RowError { line, reason, raw })) => {
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
        Ok(Err(RowError { line, reason, .. })) => {
            assert_eq!(*line, 4);
            assert!(reason.contains("UTF-8"), "{reason}");
        }
        other => panic!("expected a malformed row, got {other:?}"),
    }
    assert_eq!(row(&rows[3]).get("a"), Some("5"));
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

async fn parse_limited(
    body: BodyChunks,
    limits: RowLimits,
) -> Result<(Arc<Header>, Vec<Item>), GladlyError> {
    let s = RowStream::with_limits(body, None, limits).await?;
    let h = s.header();
    Ok((h, s.collect().await))
}

fn small_limits() -> RowLimits {
    RowLimits {
        max_row_bytes: 4096,
        max_cell_bytes: 1024,
    }
}

#[test]
fn an_unterminated_quote_fails_the_body_instead_of_swallowing_the_rest() {
    let mut body = b"a,b\n1,\"x\n".to_vec();
    for i in 0..200 {
        body.extend_from_slice(format!("{i},y\n").as_bytes());
    }
    for cuts in [vec![], vec![7, 9, 100], vec![body.len() - 1]] {
        let (_, rows) = block_on(parse(chunks(&body, &cuts)));
        assert_eq!(rows.len(), 1, "no merged row, only the error: {rows:?}");
        match &rows[0] {
            Err(e @ GladlyError::Framing { line: 2, detail }) => {
                assert!(detail.contains("never closed"), "{detail}");
                assert!(e.is_retryable());
            }
            other => panic!("expected a framing error, got {other:?}"),
        }
    }
    // a quote closed at the very end is fine
    let (_, rows) = block_on(parse(chunks(b"a,b\n1,\"x\ny\"", &[])));
    assert_eq!(row(&rows[0]).get("b"), Some("x\ny"));
}

#[test]
fn an_oversized_cell_is_an_error_item_with_a_preview_and_the_stream_goes_on() {
    let big = "z".repeat(3000);
    let body = format!("a,b\n1,{big}\n2,ok\n");
    let (_, rows) = block_on(parse_limited(
        chunks(body.as_bytes(), &[10, 2000]),
        small_limits(),
    ))
    .unwrap();
    assert_eq!(rows.len(), 2);
    match &rows[0] {
        Ok(Err(RowError {
            line: 2,
            reason,
            raw,
        })) => {
            assert!(
                reason.starts_with("oversized cell: field 2 (`b`) is 3000 bytes"),
                "{reason}"
            );
            assert!(reason.contains("gladly.max_cell_bytes = 1024"), "{reason}");
            assert_eq!(raw[0], "1");
            assert_eq!(raw[1].len(), PREVIEW_BYTES);
        }
        other => panic!("expected an oversized cell, got {other:?}"),
    }
    assert_eq!(row(&rows[1]).get("b"), Some("ok"));
}

#[test]
fn an_oversized_row_is_cut_and_reported_with_its_size() {
    // a quoted cell with newlines far over the row limit, then a good row
    let big = "q\n".repeat(50_000);
    let body = format!("a,b,c\n1,\"{big}\",3\n2,ok,4\n");
    let (_, rows) = block_on(parse_limited(
        chunks(body.as_bytes(), &[5, 77, 4095, 4097]),
        small_limits(),
    ))
    .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    match &rows[0] {
        Ok(Err(RowError {
            line: 2,
            reason,
            raw,
        })) => {
            let size = "1,\"".len() + big.len() + "\",3\n".len();
            assert!(
                reason.starts_with(&format!("oversized row: {size} bytes in 3 fields")),
                "{reason}"
            );
            assert_eq!(raw[0], "1");
            assert_eq!(raw[1].len(), PREVIEW_BYTES, "cut to the preview");
            assert!(raw.len() <= 3);
        }
        other => panic!("expected an oversized row, got {other:?}"),
    }
    let good = row(&rows[1]);
    assert_eq!((good.get("b"), good.line()), (Some("ok"), 50_003));
}

#[test]
fn a_row_of_countless_fields_is_oversized_not_a_memory_sink() {
    let commas = ",".repeat(100_000);
    let body = format!("a,b\n{commas}\n1,2\n");
    let limits = RowLimits {
        max_row_bytes: 1 << 20,
        max_cell_bytes: 1 << 20,
    };
    let (_, rows) = block_on(parse_limited(chunks(body.as_bytes(), &[]), limits)).unwrap();
    match &rows[0] {
        Ok(Err(RowError { reason, raw, .. })) => {
            assert!(reason.contains("100001 fields"), "{reason}");
            assert!(raw.len() <= 256);
        }
        other => panic!("expected an oversized row, got {other:?}"),
    }
    assert_eq!(row(&rows[1]).get("a"), Some("1"));
}

#[test]
fn an_oversized_header_is_a_framing_error() {
    let body = format!("{}\n1\n", "h".repeat(5000));
    let err = block_on(parse_limited(chunks(body.as_bytes(), &[]), small_limits())).unwrap_err();
    match err {
        GladlyError::Framing { line: 1, detail } => {
            assert!(detail.contains("gladly.max_row_bytes = 4096"), "{detail}")
        }
        other => panic!("expected a framing error, got {other}"),
    }
}

#[test]
fn nul_bytes_and_inner_boms_are_kept_as_sent() {
    let body = b"a,b\ncs3\x00,\xef\xbb\xbfx\n";
    let (_, rows) = block_on(parse(chunks(body, &[])));
    let first = row(&rows[0]);
    assert_eq!(first.get("a"), Some("cs3\0"));
    assert_eq!(first.get("b"), Some("\u{feff}x"));
}

/// Bodies from bytes that matter to CSV (quotes, separators, line ends, invalid UTF-8, NUL)
/// and plain text, under a fixed header.
fn hostile_body() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b"ab1 ".to_vec()),
        2 => Just(b','),
        1 => Just(b'"'),
        1 => Just(b'\n'),
        1 => Just(b'\r'),
        1 => Just(0xff),
        1 => Just(0u8),
    ];
    prop::collection::vec(byte, 0..400).prop_map(|tail| {
        let mut body = b"a,b,c\n".to_vec();
        body.extend(tail);
        body
    })
}

/// Records a reference parser (the `csv` crate, same `csv_core` underneath) finds after the
/// header.
fn reference_rows(body: &[u8]) -> usize {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body)
        .byte_records()
        .count()
        .saturating_sub(1)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn every_row_of_any_body_is_accounted_for_however_it_is_chunked(
        body in hostile_body(),
        cuts in prop::collection::vec(0usize..400, 0..8),
    ) {
        let whole = block_on(parse(chunks(&body, &[])));
        let (_, items) = block_on(parse(chunks(&body, &cuts)));
        let describe = |items: &[Item]| -> Vec<String> {
            items.iter().map(|i| match i {
                Ok(Ok(r)) => format!("{}:{:?}", r.line(), r.record()),
                Ok(Err(bad)) => bad.to_string(),
                Err(e) => e.to_string(),
            }).collect()
        };
        prop_assert_eq!(describe(&items), describe(&whole.1), "chunking changed the rows");
        let framing = matches!(items.last(), Some(Err(GladlyError::Framing { .. })));
        if framing {
            // the window fails; nothing before it may look like more rows than there were
            prop_assert!(items.len() - 1 <= reference_rows(&body));
        } else {
            prop_assert_eq!(items.len(), reference_rows(&body), "{:?}", String::from_utf8_lossy(&body));
            for item in &items {
                match item {
                    Ok(Ok(row)) => prop_assert_eq!(row.record().len(), 3),
                    Ok(Err(RowError { .. })) => {}
                    Err(other) => prop_assert!(false, "unexpected {}", other),
                }
            }
        }
    }
}
