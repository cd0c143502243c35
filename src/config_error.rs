//! [`ConfigError`]: a configuration problem, naming the key and the fix. A leaf: every layer's
//! settings (`gladly`, `kafka`) and the [`crate::config`] loader report through it.

use std::path::PathBuf;

/// A configuration problem, always naming the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key has a value of the wrong type, or is unknown.
    #[error("config key `{key}`: {message}")]
    Invalid {
        /// Dotted path of the key, e.g. `reports.contacts.horizon_days`.
        key: String,
        /// What is wrong and what to set instead.
        message: String,
    },
}

impl ConfigError {
    /// An invalid-value error for `key`.
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}
