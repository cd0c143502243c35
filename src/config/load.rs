//! Layered loading: a TOML file, then `GLADLY_KAFKA__SECTION__KEY` environment overrides,
//! deserialized with the failing key named (and the variable that set it).

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;

use crate::config_error::ConfigError;

/// Prefix of environment variables that override the config file.
pub const ENV_PREFIX: &str = "GLADLY_KAFKA__";

/// Where each key's value came from, so errors can say "set by GLADLY_KAFKA__…".
#[derive(Debug, Default, Clone)]
struct Sources {
    /// dotted key -> (variable name, key path)
    from_env: BTreeMap<String, (String, Vec<String>)>,
}

/// Reads `path` (if given) and overlays the `GLADLY_KAFKA__…` variables of `env`.
fn layered_value(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(toml::Table, Sources), ConfigError> {
    let mut root = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_path_buf(),
                source,
            })?;
            text.parse::<toml::Table>()
                .map_err(|e| ConfigError::Syntax {
                    path: p.to_path_buf(),
                    message: e.to_string(),
                })?
        }
        None => toml::Table::new(),
    };
    let mut sources = Sources::default();
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (name, raw) in vars {
        let path: Vec<String> = name[ENV_PREFIX.len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::invalid(
                name,
                "empty section in the variable name: use GLADLY_KAFKA__SECTION__KEY",
            ));
        }
        let dotted = path.join(".");
        set_path(&mut root, &path, infer_literal(&raw), &name)?;
        sources.from_env.insert(dotted, (name, path));
    }
    Ok((root, sources))
}

/// An environment value as TOML: booleans and numbers typed, anything else a string.
fn infer_literal(raw: &str) -> toml::Value {
    let t = raw.trim();
    if t == "true" || t == "false" {
        return toml::Value::Boolean(t == "true");
    }
    if let Ok(i) = t.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if t.contains('.') {
        if let Ok(f) = t.parse::<f64>() {
            return toml::Value::Float(f);
        }
    }
    toml::Value::String(raw.to_string())
}

fn set_path(
    root: &mut toml::Table,
    path: &[String],
    value: toml::Value,
    var: &str,
) -> Result<(), ConfigError> {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut table = root;
    for (i, part) in parents.iter().enumerate() {
        let entry = table
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry.as_table_mut().ok_or_else(|| {
            ConfigError::invalid(
                path[..=i].join("."),
                format!("{var} sets a key below it, but it is not a section"),
            )
        })?;
    }
    table.insert(last.clone(), value);
    Ok(())
}

/// Deserializes `table` into `T`, naming the failing key; an environment value that was read
/// as a number or boolean but is wanted as text is retried as text.
fn deserialize<T: DeserializeOwned>(
    mut table: toml::Table,
    sources: &Sources,
) -> Result<T, ConfigError> {
    for _ in 0..=sources.from_env.len() {
        let de = toml::Value::Table(table.clone());
        match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(v) => return Ok(v),
            Err(e) => {
                let key = e.path().to_string();
                let message = e.inner().to_string();
                let env_path = sources.from_env.get(&key);
                let retry = message.contains("expected a string")
                    && env_path.is_some_and(|(_, path)| stringify_at(&mut table, path));
                if !retry {
                    let message = match env_path {
                        Some((var, _)) => format!("{message} (set by {var})"),
                        None => message,
                    };
                    return Err(ConfigError::invalid(key, message));
                }
            }
        }
    }
    Err(ConfigError::invalid(
        "",
        "could not resolve the configuration",
    ))
}

fn stringify_at(table: &mut toml::Table, path: &[String]) -> bool {
    let (last, parents) = path.split_last().expect("non-empty");
    let mut t = table;
    for p in parents {
        match t.get_mut(p).and_then(toml::Value::as_table_mut) {
            Some(next) => t = next,
            None => return false,
        }
    }
    match t.get_mut(last) {
        Some(v) if !v.is_str() => {
            let s = match v {
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => return false,
            };
            *v = toml::Value::String(s);
            true
        }
        _ => false,
    }
}

/// Loads any configuration type from an optional TOML file plus the process environment.
pub fn load<T: DeserializeOwned>(path: Option<&Path>) -> Result<T, ConfigError> {
    load_from(path, std::env::vars())
}

/// Like [`load`], with the environment given explicitly (for tests).
pub fn load_from<T: DeserializeOwned>(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let (table, sources) = layered_value(path, env)?;
    deserialize(table, &sources)
}
