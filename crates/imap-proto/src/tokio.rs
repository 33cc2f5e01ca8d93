//! The tokio adapter (feature `tokio`): [`serve`] drives a [`server::Connection`] over an
//! `AsyncRead + AsyncWrite` stream and calls an async [`Backend`]; [`Client`] is a typed async
//! client over a [`client::Connection`](crate::client::Connection).
//!
//! The adapter owns no protocol rule: framing, literals, state checks, the unsolicited
//! response rules, timers and the failed-login delay are the state machine's. The adapter
//! moves bytes, performs the TLS handshake for STARTTLS (through `mail-net`), wraps the
//! stream in DEFLATE after `COMPRESS DEFLATE` (RFC 4978), runs SASL exchanges through
//! `mail-sasl`, and turns typed backend results into responses.
//!
//! ```no_run
//! # async fn demo<B: imap_proto::tokio::Backend>(backend: B) -> Result<(), Box<dyn std::error::Error>> {
//! use imap_proto::tokio::{serve, ServeConfig};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:1143").await?;
//! let backend = std::sync::Arc::new(backend);
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let backend = backend.clone();
//!     tokio::spawn(async move { serve(tcp, ServeConfig::default(), backend).await });
//! }
//! # }
//! ```
//!
//! [`server::Connection`]: crate::server::Connection

mod backend;
mod client;
mod deflate;
mod serve;

pub use backend::{
    Backend, Expunged, FetchResult, MoveResult, QuotaInfo, SearchResult, SelectInfo, Session,
    StoreRequest, StoreResult,
};
pub use client::{Client, ClientConfig, Fetched, IdleHandle, Security, Selected};
pub use serve::{ServeConfig, serve};

/// Errors of the tokio adapter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing the stream failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS handshake failed.
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    /// The DEFLATE stream (COMPRESS) is corrupt.
    #[error("compression error: {0}")]
    Compression(String),
    /// The state machine was used out of turn (a bug in the adapter or backend).
    #[error("state machine misuse: {0}")]
    State(#[from] crate::server::Error),
    /// The server answered `NO` or `BAD` (client side).
    #[error("server refused {command}: {kind:?} {text}")]
    Refused {
        /// The command that was refused.
        command: &'static str,
        /// `No` or `Bad`.
        kind: crate::types::StatusKind,
        /// The server's text (and code).
        text: String,
    },
    /// The server broke the protocol or closed the connection (client side).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A time limit elapsed (client side).
    #[error("timed out: {0}")]
    Timeout(&'static str),
}
