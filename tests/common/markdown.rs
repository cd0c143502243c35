//! Markdown read the way GitHub and mdBook read it, as far as checking the documentation needs:
//! fenced code blocks, inline code spans, HTML comments, headings and their anchors, links.
//! Shared by the test binaries (`#[path]`-included); each uses part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;

/// A fenced code block: its info string (`toml`, `sh`, or empty), text and first line.
#[derive(Debug)]
pub struct Fenced {
    /// The info string after the opening fence, e.g. `toml` or `sh`.
    pub lang: String,
    /// The lines between the fences.
    pub text: String,
    /// Line number (1-based) of the first line inside the fences.
    pub line: usize,
}

/// A Markdown document split into prose (fenced blocks and HTML comments blanked, line
/// numbers kept) and its fenced code blocks.
#[derive(Debug)]
pub struct Doc {
    /// The text outside fenced blocks and comments; blanked parts keep their newlines.
    pub prose: String,
    /// The fenced code blocks, in order.
    pub fenced: Vec<Fenced>,
}

/// Splits `text` into prose and fenced code blocks.
pub fn parse(text: &str) -> Doc {
    let mut prose = String::new();
    let mut fenced = vec![];
    let mut open: Option<(String, usize, Fenced)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let fence: String = trimmed
            .chars()
            .take_while(|c| *c == '`' || *c == '~')
            .collect();
        let is_fence = fence.len() >= 3 && fence.chars().all(|c| c == fence.as_bytes()[0] as char);
        match &mut open {
            Some((opener, _, block)) => {
                if is_fence && fence.len() >= opener.len() && trimmed.trim().len() == fence.len() {
                    let (_, _, block) = open.take().expect("open");
                    fenced.push(block);
                } else {
                    block.text.push_str(line);
                    block.text.push('\n');
                }
            }
            None if is_fence => {
                let lang = trimmed[fence.len()..]
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .next()
                    .unwrap_or("")
                    .to_string();
                let block = Fenced {
                    lang,
                    text: String::new(),
                    line: i + 2,
                };
                open = Some((fence, i, block));
            }
            None => prose.push_str(line),
        }
        prose.push('\n');
    }
    Doc {
        prose: blank_comments(&prose),
        fenced,
    }
}

/// `text` with every `<!-- … -->` replaced by its newlines, so line numbers stay.
fn blank_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("-->")
            .map_or(rest.len(), |e| start + e + 3);
        out.extend(rest[start..end].chars().filter(|c| *c == '\n'));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Splits prose into text outside inline code spans (spans blanked, newlines kept) and the
/// spans themselves with their line numbers. A backtick run is a span's opener only if the same
/// run closes it within the paragraph, as in CommonMark.
pub fn code_spans(prose: &str) -> (String, Vec<(usize, String)>) {
    let mut outside = String::new();
    let mut spans = vec![];
    let chars: Vec<char> = prose.chars().collect();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        if chars[i] != '`' {
            if chars[i] == '\n' {
                line += 1;
            }
            outside.push(chars[i]);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|c| **c == '`').count();
        match closing_run(&chars, i + run, run) {
            Some(close) => {
                let content: String = chars[i + run..close].iter().collect();
                spans.push((line, content.replace('\n', " ").trim().to_string()));
                for c in content.chars().filter(|c| *c == '\n') {
                    line += 1;
                    outside.push(c);
                }
                i = close + run;
            }
            None => {
                outside.extend(&chars[i..i + run]);
                i += run;
            }
        }
    }
    (outside, spans)
}

/// Where a run of exactly `run` backticks starts at or after `from`, before a blank line.
fn closing_run(chars: &[char], from: usize, run: usize) -> Option<usize> {
    let mut j = from;
    while j < chars.len() {
        if chars[j] == '\n' && chars.get(j + 1) == Some(&'\n') {
            return None;
        }
        if chars[j] == '`' {
            let n = chars[j..].iter().take_while(|c| **c == '`').count();
            if n == run {
                return Some(j);
            }
            j += n;
        } else {
            j += 1;
        }
    }
    None
}

/// The anchor GitHub and mdBook give a heading: its text as rendered (link syntax, code
/// backticks and emphasis markers gone), lower case, whitespace to `-`, and every character
/// that is not alphanumeric, `-` or `_` dropped.
pub fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // [text](target) -> text
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](").map(|m| open + m) else {
            break;
        };
        let Some(close) = rest[mid..].find(')').map(|c| mid + c) else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..mid]);
        rest = &rest[close + 1..];
    }
    text.push_str(rest);
    text.trim()
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                Some(c.to_lowercase().next().unwrap_or(c))
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// The anchors of a document's ATX headings (`#` … `######`), outside code blocks and
/// comments; a repeated anchor gets `-1`, `-2`, … as on GitHub and in mdBook.
pub fn anchors(text: &str) -> BTreeSet<String> {
    let doc = parse(text);
    let mut out = BTreeSet::new();
    for line in doc.prose.lines() {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(line[hashes..].trim().trim_end_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while out.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        out.insert(anchor);
    }
    out
}

/// The link targets of a document's prose with their line numbers: inline links and images
/// (`[text](target)`, `![alt](target "title")`) and reference definitions (`[x]: target`),
/// outside code blocks, code spans and comments.
pub fn links(text: &str) -> Vec<(usize, String)> {
    let doc = parse(text);
    let (outside, _) = code_spans(&doc.prose);
    let mut out = vec![];
    for (i, line) in outside.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let target = &rest[at + 2..];
            let mut depth = 0;
            let end = target
                .char_indices()
                .find(|(_, c)| match c {
                    '(' => {
                        depth += 1;
                        false
                    }
                    ')' if depth == 0 => true,
                    ')' => {
                        depth -= 1;
                        false
                    }
                    _ => false,
                })
                .map_or(target.len(), |(e, _)| e);
            let dest = target[..end].split_whitespace().next().unwrap_or("");
            out.push((i + 1, dest.trim_matches(['<', '>']).to_string()));
            rest = &target[end..];
        }
        let t = line.trim_start();
        if let Some(close) = t.strip_prefix('[').and_then(|r| r.find("]: ")) {
            let dest = t[close + 4..].split_whitespace().next().unwrap_or("");
            out.push((i + 1, dest.to_string()));
        }
    }
    out
}
