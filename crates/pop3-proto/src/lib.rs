//! Sans-IO POP3 (RFC 1939, 2449, 2595, 3206, 5034): types, parser, encoder, and the
//! server-side and client-side state machines; feature `tokio` adds an adapter
//! (`tokio::serve` and an async `tokio::Client`).
//!
//! The machines never touch a socket, a clock or a file: feed them bytes, act on their
//! events, write what they output. Time comes in as [`std::time::Instant`] arguments.
//!
//! ```
//! use std::time::Instant;
//! use pop3_proto::server::{Config, Connection, Event, Reply};
//! use pop3_proto::types::MessageInfo;
//!
//! let now = Instant::now();
//! let mut conn = Connection::new(Config::default(), now);
//! assert_eq!(&conn.take_output().unwrap()[..], b"+OK POP3 server ready\r\n");
//!
//! // USER is answered by the machine; PASS needs the application.
//! conn.feed(b"USER alice\r\nPASS secret\r\n");
//! match conn.next_event() {
//!     Some(Event::Login { user, password }) => {
//!         assert_eq!(&user[..], b"alice");
//!         assert_eq!(&password.expose()[..], b"secret");
//!         // The maildrop: one 120-octet message with UIDL "a1".
//!         conn.reply(Reply::LoggedIn(vec![MessageInfo::new(120, "a1")])).unwrap();
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! assert_eq!(
//!     &conn.take_output().unwrap()[..],
//!     b"+OK send PASS\r\n+OK maildrop locked and ready, 1 message (120 octets)\r\n"
//! );
//!
//! // STAT and UIDL come from the maildrop listing; RETR asks for the body in chunks.
//! conn.feed(b"STAT\r\nUIDL\r\nRETR 1\r\n");
//! let ev = conn.next_event();
//! assert!(matches!(ev, Some(Event::Retr { msg: 1, index: 0, size: 120 })));
//! conn.send_body_chunk(b"Subject: hi\r\n\r\n.dot").unwrap();
//! conn.send_body_chunk(b" line\r\n").unwrap();
//! conn.finish_body().unwrap();
//! assert_eq!(
//!     &conn.take_output().unwrap()[..],
//!     &b"+OK 1 120\r\n+OK unique-id listing follows\r\n1 a1\r\n.\r\n\
//!        +OK 120 octets\r\nSubject: hi\r\n\r\n..dot line\r\n.\r\n"[..]
//! );
//! ```
//!
//! # Layout
//!
//! | module | contents |
//! |---|---|
//! | [`types`] | [`types::Command`], [`types::Response`], [`types::ResponseCode`] (RFC 3206), [`types::Capability`] (RFC 2449), listings, [`types::MessageInfo`] |
//! | [`parse`] | nom parsers over complete lines, errors with octet positions |
//! | [`encode`] | writers (`parse(encode(x)) == x` is a proptest), the streaming [`encode::Stuffer`] / [`encode::Unstuffer`] |
//! | [`server`] | [`server::Connection`]: AUTHORIZATION / TRANSACTION / UPDATE, limits, timers |
//! | [`client`] | [`client::Connection`]: pipelined commands, typed answers, bodies as chunks |
//! | `tokio` (feature `tokio`) | `serve(stream, config, &backend)` with STLS / implicit TLS and SASL through `mail-sasl`; an async `Client` |
//!
//! Peer mistakes never panic and never surface as `Err`: the server machine answers them
//! with the RFC's `-ERR` (closing only where the RFC or a limit says so). Message bodies are
//! never held whole: the server takes them in chunks from the application and byte-stuffs
//! across chunk borders; the client hands out un-stuffed chunks and finds the terminator
//! wherever the reads split it.
//!
//! See `docs/pop3.md` for embedding the server and client sides, limits and capabilities.

pub mod client;
pub mod encode;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod parse;
pub mod server;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod types;

pub use error::Error;
