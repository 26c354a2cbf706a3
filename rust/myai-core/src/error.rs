//! One error type for the whole core; the glue crate maps each variant to a Python exception.

use thiserror::Error;

/// Everything that can go wrong in the core. No function of the core panics on bad input:
/// it returns one of these instead.
#[derive(Debug, Error)]
pub enum Error {
    /// A caller passed an argument outside its domain (maps to `ValueError`).
    #[error("{0}")]
    InvalidArgument(String),
    /// Serialised data failed its magic, version, length or checksum test (maps to `CorruptDataError`).
    #[error("corrupt {what}: {reason}")]
    Corrupt { what: &'static str, reason: String },
    /// A tokenizer file could not be read or is not supported (maps to `TokenizerError`).
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// An I/O error, with the path it concerns (maps to `OSError`).
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
    pub fn corrupt(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            what,
            reason: reason.into(),
        }
    }
    pub fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
