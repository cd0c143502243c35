//! Bad rows inside a good answer: the row cap counts them, durations are checked, oversized
//! rows are dead-lettered with bounded memory, dead letters are logged once per window, and
//! what is kept as sent (NUL, an inner BOM) or dead-lettered (invalid UTF-8).

use std::time::Duration;

use super::fixture::{body, header, row, Case, NOW};
use super::server::{huge_cell, Answer};

const WITHIN: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_3_a_bad_row_counts_towards_the_row_cap() {
    // exactly row_cap rows, one of them with 18 cells: capped, so split, not taken as complete
    let mut capped = header();
    for i in 0..1000 {
        let r = row(i, &[]);
        capped += &if i == 500 { r.replacen(',', "", 1) } else { r };
    }
    let mut case = Case::new(vec![Answer::csv(capped), Answer::csv(body(10))]).await;
    case.set("pipeline.row_cap", 1000);
    let out = case.once(WITHIN).await;
    assert_eq!(out.code(), 0, "{}", out.output());
    assert!(
        out.stderr.contains("window reached the row cap"),
        "{}",
        out.output()
    );
    assert_eq!(
        case.server.report_requests(),
        3,
        "the window and its halves"
    );
    assert!(
        out.stdout.contains("work_sessions: 2 windows, 20 rows, "),
        "{}",
        out.output()
    );
    // the capped attempt (999 records and a dead letter) was aborted: none of it is visible;
    // both halves are served the same 10 rows, and the second half's are unchanged (left out)
    assert_eq!(case.records().await.len(), 10);
    assert!(case.topic("dead_letter").await.is_empty());
    assert_eq!(case.checkpoint().await.as_deref(), Some(NOW));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_4_durations_that_wrap_or_are_negative_are_dead_letters() {
    let handle = "work_session_handle_time_sec";
    let cells = [
        ("5124095576030432:00:00", "is out of range"),
        ("-120", "is negative"),
        ("-0", "is negative"),
        ("1e30", "is out of range"),
    ];
    let mut text = header();
    for (i, (cell, _)) in cells.iter().enumerate() {
        text += &row(i, &[(handle, cell)]);
    }
    text += &row(9, &[(handle, "1:02:03")]);
    let case = Case::new(vec![Answer::csv(text)]).await;
    let out = case.once(WITHIN).await;
    assert_eq!(out.code(), 0, "{}", out.output());
    assert_eq!(case.records().await.len(), 1, "only the good row");
    let dead = case.topic("dead_letter").await;
    assert_eq!(dead.len(), 4, "{}", out.output());
    for (i, (cell, why)) in cells.iter().enumerate() {
        let dl = dead
            .iter()
            .find(|d| d.header("gladly.line") == Some(&(i + 2).to_string()))
            .expect("a dead letter per bad row");
        let reason = dl.header("gladly.error").unwrap();
        assert!(
            reason.starts_with(&format!("column `{handle}`: {cell:?} {why}")),
            "{reason}"
        );
    }
    assert_eq!(case.checkpoint().await.as_deref(), Some(NOW));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_5_a_50_mb_cell_is_a_small_dead_letter_and_memory_stays_bounded() {
    const CELL: usize = 50 * 1024 * 1024;
    // row 0's last cell (accepted_inbox_id) is 50 MB; row 10 has a 100 kB cell; the rest are fine
    let head = header() + row(0, &[]).trim_end_matches('\n');
    let mut tail = "\n".to_string();
    for i in 1..10 {
        tail += &row(i, &[]);
    }
    tail += &row(10, &[("channel", &"c".repeat(100_000))]);
    let case = Case::new(vec![Answer::streamed(huge_cell(
        head.into_bytes(),
        CELL,
        tail.into_bytes(),
    ))])
    .await;
    let out = case.once(WITHIN).await;
    assert_eq!(out.code(), 0, "{}", out.output());
    eprintln!(
        "peak RSS with a 50 MB cell: {} MiB",
        out.peak_rss_kib / 1024
    );
    assert!(
        out.peak_rss_kib < 100 * 1024,
        "peak RSS {} KiB for a 50 MB cell",
        out.peak_rss_kib
    );
    assert_eq!(
        case.records().await.len(),
        9,
        "the other rows are published"
    );
    let dead = case.topic("dead_letter").await;
    assert_eq!(dead.len(), 2, "{}", out.output());
    let big = dead
        .iter()
        .find(|d| d.header("gladly.line") == Some("2"))
        .unwrap();
    let reason = big.header("gladly.error").unwrap();
    let size = row(0, &[]).len() + CELL;
    assert!(
        reason.starts_with(&format!(
            "oversized row: {size} bytes in 19 fields, over gladly.max_row_bytes = 262144"
        )),
        "{reason}"
    );
    assert!(big.value.as_ref().unwrap().len() < 64 * 1024, "a cut copy");
    let cell = dead
        .iter()
        .find(|d| d.header("gladly.line") == Some("12"))
        .unwrap();
    let reason = cell.header("gladly.error").unwrap();
    assert!(
        reason.starts_with(
            "oversized cell: field 7 (`channel`) is 100000 bytes, over gladly.max_cell_bytes = 65536"
        ),
        "{reason}"
    );
    assert_eq!(case.checkpoint().await.as_deref(), Some(NOW));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_8_dead_letters_are_logged_once_per_window_not_once_each() {
    const ROWS: usize = 20_000;
    let mut text = header();
    for i in 0..ROWS {
        text += &row(i, &[]).replacen(',', "", 1); // 18 cells
    }
    let case = Case::new(vec![Answer::csv(text)]).await;
    let out = case.once(WITHIN).await;
    assert_eq!(out.code(), 0, "{}", out.output());
    assert_eq!(case.topic("dead_letter").await.len(), ROWS);
    assert!(
        out.stdout
            .contains(&format!("work_sessions: 1 windows, {ROWS} rows, 0 records")),
        "the window counts its rows: {}",
        out.output()
    );
    assert!(
        out.stderr.contains(&format!("rows={ROWS}")),
        "{}",
        out.output()
    );
    assert!(
        out.stderr.contains(&format!(
            "rows sent to the dead-letter topic: {ROWS} malformed row; first: line 2: malformed row: 18 fields where the header has 19"
        )),
        "{}",
        out.output()
    );
    assert!(
        out.stderr.len() < 16 * 1024 && out.stderr.lines().count() < 40,
        "{} bytes of log for {ROWS} dead letters:\n{}",
        out.stderr.len(),
        out.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_nul_and_inner_bom_are_published_as_sent_invalid_utf8_is_a_dead_letter() {
    let mut text = (header()
        + &row(3, &[("contact_session_id", "cs3\0")])
        + &row(4, &[("inbox_id", "\u{feff}inb4")]))
        .into_bytes();
    text.extend(
        row(5, &[("channel", "CH")])
            .replace("CH", "C\u{0}")
            .into_bytes(),
    );
    let mut bad = row(6, &[("channel", "CH")]).into_bytes();
    let at = bad.windows(2).position(|w| w == b"CH").unwrap();
    bad[at + 1] = 0xff;
    text.extend(bad);
    let case = Case::new(vec![Answer::csv(text)]).await;
    let out = case.once(WITHIN).await;
    assert_eq!(out.code(), 0, "{}", out.output());
    let records = case.records().await;
    assert_eq!(records.len(), 3, "{}", out.output());
    let has = |needle: &[u8]| {
        records.iter().any(|r| {
            let bytes = [
                r.key.as_deref().unwrap_or(&[]),
                r.value.as_deref().unwrap_or(&[]),
            ]
            .concat();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
    };
    assert!(has(b"cs3\0"), "the key keeps its NUL");
    assert!(has("\u{feff}inb4".as_bytes()), "an inner BOM is kept");
    let dead = case.topic("dead_letter").await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].header("gladly.error"),
        Some("malformed row: field 7 is not valid UTF-8")
    );
}
