//! The crate's error type.

use crate::types::{ForwardPath, Reply};

/// Everything that can go wrong in this crate.
///
/// Parser errors carry the byte offset in the line where parsing stopped. Peer mistakes on
/// the server side never surface as `Err`: the state machine answers them with SMTP replies.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The command verb is not one this crate knows.
    #[error("unrecognized command verb")]
    UnknownCommand,
    /// The command line does not match the RFC grammar.
    #[error("syntax error in {what} at byte {position}")]
    Syntax {
        /// Which part of the command was being parsed.
        what: &'static str,
        /// Offset in the line (without CRLF).
        position: usize,
    },
    /// A mailbox in `MAIL FROM`/`RCPT TO` does not match RFC 5321's `Mailbox` grammar.
    #[error("invalid mailbox address at byte {position}")]
    InvalidAddress {
        /// Offset in the line (without CRLF).
        position: usize,
    },
    /// An ESMTP parameter is malformed, repeated, or has an invalid value.
    #[error("invalid ESMTP parameter {keyword} at byte {position}")]
    InvalidParameter {
        /// The parameter keyword, upper-cased.
        keyword: String,
        /// Offset in the line (without CRLF).
        position: usize,
    },
    /// A SASL response or initial response is not valid base64.
    #[error("invalid base64 in SASL response")]
    InvalidBase64,
    /// A server reply does not match RFC 5321's `Reply-line` grammar.
    #[error("malformed reply at byte {position}: {what}")]
    MalformedReply {
        /// What was wrong.
        what: &'static str,
        /// Offset in the reply bytes.
        position: usize,
    },
    /// A line exceeded the configured limit.
    #[error("line longer than the limit of {limit} octets")]
    LineTooLong {
        /// The limit in octets.
        limit: usize,
    },
    /// `reply` was called with an answer that does not fit the event waiting for it.
    #[error("the answer does not fit the pending event ({pending})")]
    UnexpectedAnswer {
        /// What the machine was waiting for.
        pending: &'static str,
    },
    /// A client operation was requested in a state that does not allow it.
    #[error("client misuse: {0}")]
    InvalidState(&'static str),
    /// The server answered with a reply that ends the operation.
    #[error("server replied {0}")]
    Rejected(Reply),
    /// The server refused every recipient of a transaction: each `RCPT` with its reply,
    /// in envelope order (a reply may be temporary for one recipient and permanent for
    /// another, so each is kept).
    #[error("the server refused every recipient ({})", first_reply(.0))]
    RecipientsRefused(Vec<(ForwardPath, Reply)>),
    /// The server does not offer an extension the operation needs.
    #[error("the server does not support {0}")]
    NotSupported(&'static str),
    /// The connection was closed before the operation finished.
    #[error("connection closed")]
    Closed,
    /// A deadline passed (RFC 5321 section 4.5.3.2 timeouts).
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// SASL failed on the client side.
    #[error("SASL: {0}")]
    Sasl(String),
    /// An I/O or TLS error in the tokio adapter.
    #[error("I/O: {0}")]
    Io(String),
}

#[cfg(feature = "tokio")]
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

/// The first refusal of [`Error::RecipientsRefused`], for its message.
fn first_reply(refused: &[(ForwardPath, Reply)]) -> String {
    refused
        .first()
        .map_or_else(|| "no recipients".to_owned(), |(_, r)| r.to_string())
}
