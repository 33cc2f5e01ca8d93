//! `imap-proto`: IMAP4rev2 / IMAP4rev1 codec and state machines (work in progress).
//!
//! Layout (see docs/architecture.md): `types` (commands, responses), `parse` (nom parsers over
//! framed input), `encode` (writers of the same types), `server` and `client` (the sans-IO
//! state machines) and, with feature `tokio`, the async adapter.

pub mod client;
pub mod encode;
pub mod parse;
pub mod server;
pub mod types;

#[cfg(feature = "tokio")]
pub mod tokio;
