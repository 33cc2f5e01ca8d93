//! The server's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `mail-server`, with a message an operator can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration file is unreadable or invalid.
    #[error("configuration {path}: {message}")]
    Config {
        /// The file (or `<embedded>`).
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// The mail store refused an operation.
    #[error("{0}")]
    Store(#[from] mailstore_core::StoreError),
    /// A network or TLS setup step failed.
    #[error("{0}")]
    Net(#[from] mail_net::Error),
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The input given on the command line or stdin is not acceptable.
    #[error("{0}")]
    Usage(String),
    /// The running server answered an admin request with an error.
    #[error("{0}")]
    Remote(String),
}

impl ServerError {
    /// An I/O error with a description of what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
