//! A window's reader task: reads the rows of Gladly's answer, converts them and hands the
//! outputs to the window's publisher in chunks, up to the row cap.

use futures::StreamExt;

use crate::gladly::{self, GladlyError};
use crate::records::{self, EndedConversations, Output};

/// Outputs handed from a window's reader to its publisher at a time.
const CHUNK_OUTPUTS: usize = 2048;
/// Chunks that may wait for the publisher: enough to keep both busy, few enough to bound memory.
pub(super) const CHUNKS_IN_FLIGHT: usize = 4;

/// What a window's reader hands its publisher.
pub(super) enum Chunk {
    /// Records and dead letters of `rows` rows.
    Outputs { rows: u64, out: Vec<Output> },
    /// The body ended (`capped`: at the row cap, the rest unread), with the conversations of
    /// the contacts that ended in the window.
    End {
        capped: bool,
        ended: Option<EndedConversations>,
    },
    /// The body failed (cut, timed out): the window fails.
    Failed(GladlyError),
}

/// Aborts the task when dropped: a window that stops early (failure, shutdown) stops reading.
pub(super) struct AbortOnDrop<T>(pub(super) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads a window's rows, converts them and sends the outputs in chunks, up to the row cap.
/// Rows the stream cannot give whole (the wrong number of fields, not UTF-8, over the size
/// limits) become dead letters and the window goes on. Every data row counts towards the
/// cap, good or bad: a truncated answer with a bad row in it is still a truncated answer.
pub(super) async fn read_window(
    mut rows: gladly::RowStream,
    mut wc: records::WindowConverter,
    mut ended: Option<EndedConversations>,
    cap: u64,
    tx: tokio::sync::mpsc::Sender<Chunk>,
) {
    let mut out: Vec<Output> = Vec::with_capacity(CHUNK_OUTPUTS + 16);
    let (mut total, mut pending) = (0u64, 0u64);
    while let Some(item) = rows.next().await {
        match item {
            Ok(Ok(row)) => {
                if let Some(e) = ended.as_mut() {
                    e.push(&row);
                }
                wc.push(&row, &mut out);
            }
            Ok(Err(gladly::RowError { line, reason, raw })) => {
                out.push(Output::DeadLetter(malformed(
                    &rows.header(),
                    line,
                    reason,
                    raw,
                )));
            }
            Err(e) => {
                let _ = tx.send(Chunk::Failed(e)).await;
                return;
            }
        }
        total += 1;
        pending += 1;
        let capped = total >= cap;
        if capped || out.len() >= CHUNK_OUTPUTS {
            let chunk = Chunk::Outputs {
                rows: std::mem::take(&mut pending),
                out: std::mem::replace(&mut out, Vec::with_capacity(CHUNK_OUTPUTS + 16)),
            };
            if tx.send(chunk).await.is_err() {
                return; // the window stopped
            }
        }
        if capped {
            let _ = tx
                .send(Chunk::End {
                    capped: true,
                    ended: None,
                })
                .await;
            return;
        }
    }
    wc.finish(&mut out);
    let _ = tx.send(Chunk::Outputs { rows: pending, out }).await;
    let _ = tx
        .send(Chunk::End {
            capped: false,
            ended,
        })
        .await;
}

/// The dead letter of a row the stream could not give whole: its cells named by the header
/// (`column_<n>` past its end). The reason says what was wrong (`malformed row: …`,
/// `oversized row: …`, `oversized cell: …`).
fn malformed(
    header: &crate::report::Header,
    line: u64,
    reason: String,
    raw: Vec<String>,
) -> records::DeadLetter {
    let raw = raw
        .into_iter()
        .enumerate()
        .map(|(i, cell)| {
            let name = header
                .names()
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("column_{}", i + 1));
            (name, cell)
        })
        .collect();
    records::DeadLetter { line, reason, raw }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gladly::RowStream;
    use crate::records::{ConvertSettings, Converter, SchemaIds, WindowMeta};
    use crate::report::{Report, WORK_SESSION_COLUMNS};
    use bytes::Bytes;
    use chrono::TimeZone;
    use proptest::prelude::*;

    /// A work-session row: a few contacts, some ended, some open, some with odd cells.
    fn row() -> impl Strategy<Value = Vec<u8>> {
        (
            0u8..6,
            any::<bool>(),
            prop::sample::select(vec![
                "12",
                "-120",
                "1:00:00",
                "9999999999999999999:00:00",
                "x",
            ]),
        )
            .prop_map(|(c, ended, handle)| {
                let mut cells: Vec<String> =
                    WORK_SESSION_COLUMNS.iter().map(|_| String::new()).collect();
                cells[1] = format!("cs{c}");
                cells[2] = "2024-03-14T10:00:00Z".into();
                if ended {
                    cells[0] = format!("ws{c}");
                    cells[12] = "2024-03-14T10:30:00Z".into();
                }
                cells[10] = format!("ag{}", c % 2);
                cells[15] = handle.into();
                (cells.join(",") + "\n").into_bytes()
            })
    }

    /// Bytes that matter to CSV, and any byte at all.
    fn garbage() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            3 => prop::sample::select(b"ab1,\"\n\r".to_vec()),
            1 => any::<u8>(),
        ];
        prop::collection::vec(byte, 0..60)
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        let line = prop_oneof![3 => row(), 1 => garbage()];
        prop::collection::vec(line, 0..40).prop_map(|lines| {
            let mut body = (WORK_SESSION_COLUMNS.join(",") + "\n").into_bytes();
            body.extend(lines.concat());
            body
        })
    }

    fn chunked(body: &[u8], cuts: &[usize]) -> crate::gladly::BodyChunks {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        cuts.sort_unstable();
        let mut parts = Vec::new();
        let mut start = 0;
        for c in cuts {
            parts.push(Ok(Bytes::copy_from_slice(&body[start..c])));
            start = c;
        }
        parts.push(Ok(Bytes::copy_from_slice(&body[start..])));
        futures::stream::iter(parts).boxed()
    }

    /// Records the `csv` crate finds after the header: what "every row" means.
    fn reference_rows(body: &[u8]) -> u64 {
        let n = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(body)
            .byte_records()
            .count() as u64;
        n.saturating_sub(1)
    }

    /// Runs the reader over `body` and returns what it sent.
    fn read(body: &[u8], cuts: &[usize], cap: u64) -> Vec<Chunk> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let rows = RowStream::from_body(chunked(body, cuts), None)
                .await
                .unwrap();
            let meta = WindowMeta {
                window_start: chrono::Utc.with_ymd_and_hms(2024, 3, 14, 10, 0, 0).unwrap(),
                window_end: chrono::Utc.with_ymd_and_hms(2024, 3, 14, 11, 0, 0).unwrap(),
                fetched_at: chrono::Utc.with_ymd_and_hms(2024, 3, 14, 12, 0, 0).unwrap(),
            };
            let wc = Converter::new(
                Report::WORK_SESSIONS,
                ConvertSettings::default(),
                SchemaIds::default(),
            )
            .window(meta);
            let (tx, mut rx) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
            let collect = async {
                let mut got = Vec::new();
                while let Some(c) = rx.recv().await {
                    got.push(c);
                }
                got
            };
            let ((), got) = tokio::join!(read_window(rows, wc, None, cap, tx), collect);
            got
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn every_row_becomes_a_record_a_dead_letter_or_a_failed_window(
            body in body(),
            cuts in prop::collection::vec(0usize..4000, 0..6),
            cap in 2u64..60,
        ) {
            let chunks = read(&body, &cuts, cap);
            let (mut rows, mut records, mut dead) = (0u64, 0u64, 0u64);
            let mut end = None;
            for c in &chunks {
                match c {
                    Chunk::Outputs { rows: n, out } => {
                        rows += n;
                        for o in out {
                            match o {
                                Output::Record(r) if r.value.is_some() => records += 1,
                                Output::Record(_) => {} // a tombstone, from the window's end
                                Output::DeadLetter(_) => dead += 1,
                            }
                        }
                    }
                    Chunk::End { capped, .. } => end = Some(Ok(*capped)),
                    Chunk::Failed(e) => end = Some(Err(e.to_string())),
                }
            }
            let text = String::from_utf8_lossy(&body);
            match end {
                Some(Err(e)) => prop_assert!(e.contains("quoted field"), "{}: {}", e, text),
                Some(Ok(capped)) => {
                    prop_assert_eq!(records + dead, rows, "each row once: {}", text);
                    let all = reference_rows(&body);
                    if capped {
                        prop_assert_eq!(rows, cap);
                        prop_assert!(all >= cap);
                    } else {
                        prop_assert_eq!(rows, all, "{}", text);
                        prop_assert!(rows < cap);
                    }
                }
                None => prop_assert!(false, "the reader ended without End or Failed"),
            }
        }
    }
}
