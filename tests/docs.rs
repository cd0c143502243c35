//! The documentation (README.md and the book under docs/) checked against the repository and
//! the code, without Kafka:
//!
//! - every relative link resolves to a file, and every `#anchor` to a heading of its target,
//!   slugged as GitHub and mdBook do; every chapter is in `docs/SUMMARY.md`, and a chapter
//!   another branch is writing (a `<!-- MERGE: docs/<file>.md -->` marker there) is enabled
//!   once it exists;
//! - every ```` ```toml ```` snippet loads through the configuration loader (unknown keys are
//!   errors) and validates, merged onto a minimal base config (see [`BASE`]);
//! - every `gladly-kafka <command> --option` shown names a command and options the built
//!   binary's `--help` lists.
//!
//! `scripts/test` also builds the book with mdBook and fails on its warnings.

#[path = "common/markdown.rs"]
mod markdown;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use gladly_kafka::config::{load_from, Config};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown file under docs/, as (path relative to the root, text).
fn documents() -> Vec<(PathBuf, String)> {
    let mut files = vec![PathBuf::from("README.md")];
    let mut dirs = vec![PathBuf::from("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(root().join(&dir)).unwrap() {
            let path = dir.join(entry.unwrap().file_name());
            if root().join(&path).is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(root().join(&f)).unwrap();
            (f, text)
        })
        .collect()
}

/// `base/rel` without `.` and `..` components; None if it leaves the repository.
fn resolve(base: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in base.join(rel).components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

/// Chapters other branches are writing: `docs/<file>.md` of each `<!-- MERGE: … -->` marker
/// in SUMMARY.md.
fn pending_chapters() -> BTreeSet<PathBuf> {
    let summary = std::fs::read_to_string(root().join("docs/SUMMARY.md")).unwrap();
    summary
        .split("<!-- MERGE:")
        .skip(1)
        .filter_map(|rest| rest.split("-->").next())
        .map(|name| PathBuf::from(name.trim()))
        .collect()
}

/// What is wrong with one link of `file`, if anything.
fn broken(
    file: &Path,
    target: &str,
    anchors: &BTreeMap<PathBuf, BTreeSet<String>>,
    pending: &BTreeSet<PathBuf>,
) -> Option<String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    if target.is_empty() {
        return Some("an empty link".into());
    }
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (target, None),
    };
    let dest = if path.is_empty() {
        file.to_path_buf()
    } else {
        match resolve(file.parent().unwrap(), path) {
            Some(d) => d,
            None => return Some(format!("`{target}` leaves the repository")),
        }
    };
    if !root().join(&dest).exists() {
        if pending.contains(&dest) {
            return None; // another branch brings it; SUMMARY.md's marker says so
        }
        return Some(format!("`{target}`: no file {}", dest.display()));
    }
    let anchor = anchor?;
    match anchors.get(&dest) {
        Some(known) if known.contains(anchor) => None,
        Some(known) => Some(format!(
            "`{target}`: {} has no heading with anchor #{anchor} (it has: {})",
            dest.display(),
            known.iter().cloned().collect::<Vec<_>>().join(", ")
        )),
        None => Some(format!(
            "`{target}`: an anchor into {}, which is not Markdown",
            dest.display()
        )),
    }
}

#[test]
fn every_link_and_anchor_resolves() {
    let docs = documents();
    let anchors: BTreeMap<PathBuf, BTreeSet<String>> = docs
        .iter()
        .map(|(f, text)| (f.clone(), markdown::anchors(text)))
        .collect();
    let pending = pending_chapters();
    let mut checked = 0;
    let mut problems = vec![];
    for (file, text) in &docs {
        for (line, target) in markdown::links(text) {
            checked += 1;
            if let Some(why) = broken(file, &target, &anchors, &pending) {
                problems.push(format!("{}:{line}: {why}", file.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
    assert!(
        checked > 100,
        "only {checked} links found: is the parser broken?"
    );
}

/// Chapter files linked from SUMMARY.md outside comments.
fn summary_chapters() -> BTreeSet<PathBuf> {
    let summary = std::fs::read_to_string(root().join("docs/SUMMARY.md")).unwrap();
    markdown::links(&summary)
        .into_iter()
        .map(|(_, t)| Path::new("docs").join(t))
        .collect()
}

#[test]
fn summary_lists_every_chapter_and_enables_the_ones_that_arrived() {
    let listed = summary_chapters();
    let mut problems = vec![];
    for (file, _) in documents() {
        let is_chapter = file.starts_with("docs") && file != Path::new("docs/SUMMARY.md");
        if is_chapter && !listed.contains(&file) && !pending_chapters().contains(&file) {
            problems.push(format!(
                "{} is not listed in docs/SUMMARY.md",
                file.display()
            ));
        }
    }
    for pending in pending_chapters() {
        if root().join(&pending).exists() && !listed.contains(&pending) {
            problems.push(format!(
                "{} has arrived: enable its entry in docs/SUMMARY.md (uncomment the line after \
                 its `<!-- MERGE: … -->` marker, and drop the marker)",
                pending.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(listed.len() >= 15, "{listed:?}");
}

/// What every TOML snippet is merged onto: the keys without a usable default. A snippet's
/// keys win, table by table; `gladly.token` is left out when the snippet sets `token_file`.
const BASE: &str = r#"
[gladly]
host = "https://acme.gladly.com"
email = "api-user@acme.com"
token = "docs-snippet-token"

[registry]
url = "http://127.0.0.1:8081"
"#;

fn merge(base: &mut toml::Table, snippet: toml::Table) {
    for (key, value) in snippet {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(s)) => merge(b, s),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// The snippet with any `{{#include path}}` (mdBook) replaced by the file it names.
fn expand_includes(file: &Path, text: &str) -> String {
    text.lines()
        .map(|line| {
            let Some(inc) = line
                .trim()
                .strip_prefix("{{#include ")
                .and_then(|r| r.strip_suffix("}}"))
            else {
                return format!("{line}\n");
            };
            let path = resolve(file.parent().unwrap(), inc.trim()).unwrap_or_else(|| {
                panic!("{}: include {inc} leaves the repository", file.display())
            });
            std::fs::read_to_string(root().join(&path))
                .unwrap_or_else(|e| panic!("{}: include {}: {e}", file.display(), path.display()))
        })
        .collect()
}

/// Loads one snippet the way the service loads its file; the error names the key.
fn load_snippet(snippet: &str) -> Result<(), String> {
    let parsed: toml::Table = snippet.parse().map_err(|e| format!("not TOML: {e}"))?;
    let mut config: toml::Table = BASE.parse().unwrap();
    let sets_token_file = parsed
        .get("gladly")
        .and_then(|g| g.get("token_file"))
        .is_some();
    if sets_token_file {
        config["gladly"].as_table_mut().unwrap().remove("token");
    }
    merge(&mut config, parsed);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), toml::to_string(&config).unwrap()).unwrap();
    let loaded: Config = load_from(Some(file.path()), Vec::new()).map_err(|e| e.to_string())?;
    loaded.validate().map_err(|e| e.to_string())
}

#[test]
fn every_toml_snippet_loads_through_the_config_loader() {
    let mut loaded = 0;
    let mut problems = vec![];
    for (file, text) in documents() {
        for block in markdown::parse(&text).fenced {
            if block.lang != "toml" {
                continue;
            }
            let snippet = expand_includes(&file, &block.text);
            match load_snippet(&snippet) {
                Ok(()) => loaded += 1,
                Err(e) => problems.push(format!("{}:{}: {e}", file.display(), block.line)),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "TOML snippets the service would refuse:\n{}",
        problems.join("\n")
    );
    assert!(loaded >= 6, "only {loaded} TOML snippets found");
}

/// A command line's words, with quotes removed; stops at a pipe, redirect, `;`, `&&` or `#`.
fn words(line: &str) -> Vec<String> {
    let mut out = vec![];
    let mut word = String::new();
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            (None, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    let end = out
        .iter()
        .position(|w| {
            ["|", ">", ";", "&", "#", "`"]
                .iter()
                .any(|s| w.starts_with(s))
        })
        .unwrap_or(out.len());
    out.truncate(end);
    out
}

/// Every invocation of the binary the documents show: (where, the words after `gladly-kafka`),
/// from shell blocks (`sh`, `bash`, `console` or untagged) and inline code spans.
fn invocations() -> Vec<(String, Vec<String>)> {
    let mut out = vec![];
    for (file, text) in documents() {
        let doc = markdown::parse(&text);
        let mut lines: Vec<(usize, String)> = vec![];
        for block in &doc.fenced {
            if !["sh", "bash", "console", "shell", ""].contains(&block.lang.as_str()) {
                continue;
            }
            // a line ending in `\` goes on in the next one
            let mut pending: Option<(usize, String)> = None;
            for (i, l) in block.text.lines().enumerate() {
                let (at, mut text) = pending.take().unwrap_or((block.line + i, String::new()));
                text.push_str(l.trim_end_matches('\\'));
                if l.ends_with('\\') {
                    text.push(' ');
                    pending = Some((at, text));
                } else {
                    lines.push((at, text));
                }
            }
        }
        lines.extend(markdown::code_spans(&doc.prose).1);
        for (line, text) in lines {
            let ws = words(&text);
            for (i, w) in ws.iter().enumerate() {
                let is_binary = w == "gladly-kafka" || w.ends_with("/gladly-kafka");
                // not the binary but a name: `docker build -t gladly-kafka .`, `--name …`
                let a_name = i > 0 && ["-t", "--tag", "--name"].contains(&ws[i - 1].as_str());
                let a_path = ws.get(i + 1).is_some_and(|n| n.starts_with(['.', '/']));
                if is_binary && !a_name && !a_path && i + 1 < ws.len() {
                    out.push((format!("{}:{line}", file.display()), ws[i + 1..].to_vec()));
                }
            }
        }
    }
    out
}

/// `gladly-kafka [<command>] --help`.
fn help(command: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gladly-kafka"));
    cmd.args(command)
        .arg("--help")
        .env_remove("GLADLY_KAFKA_CONFIG");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{command:?} --help: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The commands `--help` lists under "Commands:".
fn commands(top: &str) -> BTreeSet<String> {
    top.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Whether `help` lists `flag` (followed by a space, `,`, `=`, `<`, `[` or the line's end).
fn lists(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(at, _)| {
        let before = help[..at].chars().last();
        let after = help[at + flag.len()..].chars().next();
        before.is_none_or(|c| c.is_whitespace() || c == ',' || c == '[')
            && after.is_none_or(|c| !(c.is_alphanumeric() || c == '-' || c == '_'))
    })
}

#[test]
fn every_command_line_shown_exists_in_the_binary() {
    let top = help(None);
    let known = commands(&top);
    assert!(known.contains("run") && known.contains("tail"), "{top}");
    let mut helps: BTreeMap<String, String> = BTreeMap::new();
    let mut checked = 0;
    let mut problems = vec![];
    for (at, args) in invocations() {
        // global options may come before the command
        let mut i = 0;
        while i < args.len() && args[i].starts_with('-') {
            let flag = args[i].split('=').next().unwrap();
            if !lists(&top, flag) {
                problems.push(format!(
                    "{at}: `gladly-kafka {flag}`: not an option of gladly-kafka"
                ));
            }
            let takes_value =
                ["--config", "-c", "--log-format"].contains(&flag) && !args[i].contains('=');
            i += if takes_value { 2 } else { 1 };
        }
        let Some(command) = args.get(i) else { continue };
        if command.starts_with('<') || command.starts_with('…') {
            continue; // a placeholder, e.g. `gladly-kafka <command> --help`
        }
        if !known.contains(command) {
            problems.push(format!(
                "{at}: `gladly-kafka {command}`: no such command (gladly-kafka has: {})",
                known.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
            continue;
        }
        let sub = helps
            .entry(command.clone())
            .or_insert_with(|| help(Some(command)));
        checked += 1;
        for arg in &args[i + 1..] {
            if !arg.starts_with('-') || arg == "-" {
                continue;
            }
            let flag = arg.split('=').next().unwrap();
            if !lists(sub, flag) {
                problems.push(format!(
                    "{at}: `gladly-kafka {command} {flag}`: `gladly-kafka {command} --help` lists no {flag}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 10, "only {checked} command lines found");
}
