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
            Ok(row) => {
                if let Some(e) = ended.as_mut() {
                    e.push(&row);
                }
                wc.push(&row, &mut out);
            }
            Err(GladlyError::MalformedRow { line, reason, raw }) => {
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
