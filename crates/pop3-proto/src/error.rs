//! The crate's one error type.

/// Everything that can go wrong in this crate.
///
/// Parser errors carry the offending octet position within the line they were given.
/// Peer mistakes seen by the state machines are answered on the wire (`-ERR`), not
/// returned as errors; these variants reach the application only from the parsers, the
/// client-side typed API and the tokio adapter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command keyword is not one this crate knows.
    #[error("unknown command")]
    UnknownCommand,
    /// The line does not follow the grammar.
    #[error("syntax error at octet {position}: {reason}")]
    Syntax {
        /// Octet offset in the line.
        position: usize,
        /// What is wrong, as a phrase ("expected a message number").
        reason: &'static str,
    },
    /// A SASL response or challenge is not valid base64 (RFC 4648 section 4, strict).
    #[error("invalid base64 at octet {position}")]
    Base64 {
        /// Octet offset in the line where the base64 text starts.
        position: usize,
    },
    /// A line is longer than the configured limit.
    #[error("line of {length} octets exceeds the limit of {limit}; raise Limits::line_length")]
    LineTooLong {
        /// Octets seen so far without a line end.
        length: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The server answered `-ERR`.
    #[error("server replied -ERR{}: {}", code.as_ref().map(|c| format!(" [{}]", String::from_utf8_lossy(c.as_bytes()))).unwrap_or_default(), String::from_utf8_lossy(text))]
    Server {
        /// The response code, if any.
        code: Option<crate::types::ResponseCode>,
        /// The text of the `-ERR` line.
        text: bytes::Bytes,
    },
    /// The peer broke the protocol in a way that ends the session.
    #[error("protocol violation by the peer: {0}")]
    Protocol(&'static str),
    /// The command is not allowed in the client's current state (e.g. `send` before the
    /// greeting, a second `AUTH` while one runs).
    #[error("not allowed now: {0}")]
    State(&'static str),
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
    /// A socket error in the tokio adapter.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A TLS setup or handshake error in the tokio adapter.
    #[error("TLS error: {0}")]
    Tls(String),
    /// A timeout in the tokio adapter: the client waited too long for the server, or the
    /// server could not write to a peer that stopped reading.
    #[error("timed out waiting for the peer")]
    Timeout,
}
