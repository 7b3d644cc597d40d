//! The crate's error type.

use std::fmt;
use std::path::PathBuf;

/// `Result` with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure of `semid-gen`: each says what to fix.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// semid refused an input (shapes, token maps, tries, searches).
    Semid(semid::Error),
    /// A tensor operation failed (candle).
    Tensor(candle_core::Error),
    /// A file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A model file (config, weights or token map) does not fit the model.
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A configuration field is out of range.
    Config {
        /// The field as written in the config struct.
        field: &'static str,
        /// Why, and the valid range.
        reason: String,
    },
    /// A history holds an item the model does not know.
    UnknownItem {
        /// The item.
        item: u32,
        /// Items the model knows (`0..n_items`).
        n_items: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Semid(e) => write!(f, "{e}"),
            Error::Tensor(e) => write!(f, "tensor operation failed: {e}"),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::File { path, reason } => write!(f, "{}: {reason}", path.display()),
            Error::Config { field, reason } => {
                write!(f, "invalid configuration: `{field}` {reason}")
            }
            Error::UnknownItem { item, n_items } => write!(
                f,
                "item {item} is unknown to the model (it knows items 0..{n_items}); drop it from the history or retrain"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Semid(e) => Some(e),
            Error::Tensor(e) => Some(e),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<semid::Error> for Error {
    fn from(e: semid::Error) -> Self {
        Error::Semid(e)
    }
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Tensor(e)
    }
}

/// `Err(Error::Config)` with `field` and `reason`.
pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Error {
    Error::Config {
        field,
        reason: reason.into(),
    }
}
