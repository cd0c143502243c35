//! What came back, before it is trusted: is a 200 the report (content type, a CSV header
//! with the report's key columns)? And bodies summed up for messages: an error page is
//! named, not dumped.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};

use super::csv::{BodyChunks, RowStream};
use super::error::{ApiErrors, GladlyError};

/// Characters of a body quoted in a message.
const QUOTED_CHARS: usize = 160;
/// Most bytes of a body that is not the report read for a message.
const READ_LIMIT: usize = 2000;

/// Up to [`READ_LIMIT`] bytes of the body (what arrived, if it breaks off), never the
/// whole of a large one.
pub(super) async fn read_prefix(resp: reqwest::Response) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunks = resp.bytes_stream();
    while let Some(Ok(chunk)) = chunks.next().await {
        let room = READ_LIMIT - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= READ_LIMIT {
            break;
        }
    }
    out
}

/// The size of a body read with [`read_prefix`], in words.
fn size(body: &[u8]) -> String {
    if body.len() >= READ_LIMIT {
        format!("{READ_LIMIT} bytes or more")
    } else {
        format!("{} bytes", body.len())
    }
}

/// True for a `Content-Type` a CSV report may come with: `text/csv` (Gladly's), a few
/// generic ones servers use for files, or none at all (the header line decides then).
pub(super) fn is_csv_type(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        media.as_str(),
        "" | "text/csv" | "application/csv" | "text/plain" | "application/octet-stream"
    )
}

/// The body in a few words for a message: Gladly's JSON errors listed, an HTML page by its
/// title, anything else as its first characters on one line, with its size.
pub(super) fn summarize(content_type: &str, body: &[u8]) -> String {
    if body.is_empty() {
        return "an empty body".into();
    }
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start();
    if let Ok(e) = serde_json::from_str::<ApiErrors>(trimmed) {
        if !e.errors.is_empty() {
            let list: Vec<String> = e
                .errors
                .iter()
                .map(|e| match &e.attr {
                    Some(a) => format!("{a}: {} ({})", e.detail, e.code),
                    None => format!("{} ({})", e.detail, e.code),
                })
                .collect();
            return format!("Gladly's errors: {}", list.join("; "));
        }
    }
    let html = content_type.to_ascii_lowercase().contains("html")
        || trimmed.starts_with('<') && trimmed.to_ascii_lowercase().contains("<html");
    if html {
        let title = between(trimmed, "<title>", "</title>").map(one_line);
        return match title {
            Some(t) if !t.is_empty() => format!("an HTML page titled {t:?} ({})", size(body)),
            _ => format!("an HTML page ({})", size(body)),
        };
    }
    let line = one_line(trimmed);
    if line.chars().count() > QUOTED_CHARS {
        let cut: String = line.chars().take(QUOTED_CHARS).collect();
        format!("{cut}… ({})", size(body))
    } else {
        line
    }
}

/// The first bytes of a body as text for a message.
pub(super) fn first_bytes(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(QUOTED_CHARS)]);
    text.into_owned()
}

/// The text between `open` and `close` (case-insensitive tags), if both are there.
fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let lower = text.to_ascii_lowercase();
    let start = lower.find(open)? + open.len();
    let end = start + lower[start..].find(close)?;
    text.get(start..end)
}

/// Whitespace runs (newlines included) as one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks a 200's rows before they are trusted: a header line, and in it the `key_columns`
/// (see [`crate::report::ReportSpec::required_columns`]). The reason when they are not there.
pub(super) fn check_header(rows: &RowStream, key_columns: &[Vec<String>]) -> Option<String> {
    let header = rows.header();
    if header.is_empty() {
        return Some(if rows.first_bytes().is_empty() {
            "an empty body, where the report's CSV header line was expected".into()
        } else {
            "no CSV header line".into()
        });
    }
    let missing = header.missing(key_columns);
    if missing.is_empty() {
        return None;
    }
    let names: Vec<&str> = header.names().iter().take(8).map(String::as_str).collect();
    let more = header.len().saturating_sub(names.len());
    Some(format!(
        "its header has no {} column, so it is not this report (the header has {} column{}: {}{})",
        missing
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(" or "),
        header.len(),
        if header.len() == 1 { "" } else { "s" },
        names
            .iter()
            .map(|n| format!("{:?}", super::error::cut(n, 40)))
            .collect::<Vec<_>>()
            .join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ))
}

/// A body stream that ends with [`GladlyError::Deadline`] once `deadline` passes, however
/// the bytes trickle in.
pub(super) fn with_deadline(
    body: BodyChunks,
    deadline: tokio::time::Instant,
    url: String,
    secs: Duration,
) -> BodyChunks {
    Deadline {
        body,
        sleep: Box::pin(tokio::time::sleep_until(deadline)),
        url,
        secs: secs.as_secs(),
        fired: false,
    }
    .boxed()
}

struct Deadline {
    body: BodyChunks,
    sleep: Pin<Box<tokio::time::Sleep>>,
    url: String,
    secs: u64,
    fired: bool,
}

impl Stream for Deadline {
    type Item = Result<bytes::Bytes, GladlyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.fired {
            return Poll::Ready(None);
        }
        // the deadline first: a body that is always ready must not outrun it either
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.fired = true;
            return Poll::Ready(Some(Err(GladlyError::Deadline {
                url: this.url.clone(),
                secs: this.secs,
                rows: 0,
            })));
        }
        this.body.poll_next_unpin(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_types_are_told_from_pages_and_json() {
        for ok in [
            "text/csv",
            "text/csv; charset=utf-8",
            "Text/CSV",
            "",
            "application/octet-stream",
        ] {
            assert!(is_csv_type(ok), "{ok}");
        }
        for bad in [
            "application/json",
            "text/html; charset=utf-8",
            "application/xml",
        ] {
            assert!(!is_csv_type(bad), "{bad}");
        }
    }

    #[test]
    fn bodies_are_summed_up_not_dumped() {
        let json = br#"{"errors":[{"attr":"startAtTime","code":"invalid","detail":"report generation failed, try again later"}]}"#;
        assert_eq!(
            summarize("application/json", json),
            "Gladly's errors: startAtTime: report generation failed, try again later (invalid)"
        );
        let page = format!(
            "<!DOCTYPE html>\n<html><head><TITLE>Down for\n maintenance</TITLE></head><body>{}</body></html>",
            "x".repeat(5000)
        );
        let s = summarize("text/html", page.as_bytes());
        assert!(
            s.starts_with("an HTML page titled \"Down for maintenance\""),
            "{s}"
        );
        assert!(s.len() < 100, "{s}");
        assert_eq!(summarize("", b""), "an empty body");
        let long = "a,b\n".repeat(500);
        let s = summarize("text/plain", long.as_bytes());
        assert!(
            s.ends_with("… (2000 bytes or more)") && !s.contains('\n'),
            "{s}"
        );
        let s = summarize("text/plain", &long.as_bytes()[..1999]);
        assert!(s.ends_with("… (1999 bytes)"), "{s}");
    }

    #[tokio::test]
    async fn a_trickling_body_ends_at_the_deadline() {
        let trickle = futures::stream::unfold(0u32, |n| async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Some((Ok(bytes::Bytes::from_static(b"x")), n + 1))
        })
        .boxed();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        let items: Vec<_> = with_deadline(trickle, deadline, "u".into(), Duration::from_secs(5))
            .collect()
            .await;
        let (ok, err): (Vec<_>, Vec<_>) = items.into_iter().partition(Result::is_ok);
        assert!((2..=6).contains(&ok.len()), "{}", ok.len());
        assert!(
            matches!(err[..], [Err(GladlyError::Deadline { secs: 5, .. })]),
            "{err:?}"
        );
    }
}
