//! The Prometheus text exposition format.

use std::collections::BTreeMap;

use super::catalog::HELP;
use super::histogram::Histogram;

/// A metric's name and label pairs.
pub(super) type SeriesKey = (&'static str, Vec<(&'static str, String)>);

/// The key of `name` with `labels`.
pub(super) fn series(name: &'static str, labels: &[(&'static str, &str)]) -> SeriesKey {
    (
        name,
        labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
    )
}

/// Every series at one instant: own values plus derived ones (lag, readiness, Gladly client).
pub(super) struct Snapshot {
    pub(super) counters: BTreeMap<SeriesKey, f64>,
    pub(super) gauges: BTreeMap<SeriesKey, f64>,
    pub(super) histograms: BTreeMap<SeriesKey, Histogram>,
}

/// The sum of the series of `name` whose labels include `labels`.
pub(super) fn sum_matching(
    map: &BTreeMap<SeriesKey, f64>,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    map.iter()
        .filter(|((n, l), _)| {
            *n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, v)| *v)
        .sum()
}

fn render_labels(l: &[(&'static str, String)], le: Option<f64>) -> String {
    let mut parts: Vec<String> = l
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    if let Some(b) = le {
        let b = if b.is_infinite() {
            "+Inf".to_string()
        } else {
            b.to_string()
        };
        parts.push(format!("le=\"{b}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// Every metric of [`HELP`] with its HELP and TYPE lines, then its series.
pub(super) fn render_snapshot(s: &Snapshot) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (name, kind, help) in HELP {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        match *kind {
            "counter" | "gauge" => {
                let map = if *kind == "counter" {
                    &s.counters
                } else {
                    &s.gauges
                };
                for ((n, l), v) in map.iter().filter(|((n, _), _)| n == name) {
                    let _ = writeln!(out, "{n}{} {v}", render_labels(l, None));
                }
            }
            _ => {
                for ((n, l), h) in s.histograms.iter().filter(|((n, _), _)| n == name) {
                    for (b, c) in h.buckets() {
                        let _ = writeln!(out, "{n}_bucket{} {c}", render_labels(l, Some(b)));
                    }
                    let _ = writeln!(
                        out,
                        "{n}_bucket{} {}",
                        render_labels(l, Some(f64::INFINITY)),
                        h.count()
                    );
                    let _ = writeln!(out, "{n}_sum{} {}", render_labels(l, None), h.sum());
                    let _ = writeln!(out, "{n}_count{} {}", render_labels(l, None), h.count());
                }
            }
        }
    }
    out
}
