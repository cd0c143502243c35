//! What every test binary needs to set up a run: unique names, and keys set in a TOML config.
//! Shared by the test binaries (`#[path]`-included).

use std::sync::atomic::{AtomicU32, Ordering};

/// A name no other test (or earlier run against the same stack) uses: `<prefix>-<pid>-<n>-<nanos>`.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Sets `path` (section names, then the key, which may contain dots) in `table`, creating
/// sections as needed.
pub fn set_path(table: &mut toml::Table, path: &[&str], value: impl Into<toml::Value>) {
    let (last, parents) = path.split_last().expect("a key");
    let mut t = table;
    for p in parents {
        t = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .expect("a section");
    }
    t.insert(last.to_string(), value.into());
}
