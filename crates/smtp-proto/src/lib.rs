//! `smtp-proto`: sans-IO SMTP, submission and LMTP: types, parser, encoder, and the
//! server and client state machines, with an optional tokio + rustls adapter (feature
//! `tokio`).
//!
//! Nothing here touches a socket, a clock or a file: bytes go in with `feed`, events come
//! out of `next_event`, the application answers with typed decisions, and the bytes to
//! write come out of `take_output`. Time is an argument (`handle_timeout(now)`).
//!
//! # Example: a whole SMTP session against the server machine
//!
//! ```
//! use std::time::Instant;
//! use smtp_proto::server::{Config, Connection, Event, MailDecision, MessageDecision, RcptDecision};
//!
//! let mut conn = Connection::new(Config::mx("mx.example.org"), Instant::now());
//! conn.feed(b"EHLO client.example\r\nMAIL FROM:<alice@example.net>\r\n\
//!             RCPT TO:<bob@example.org>\r\nDATA\r\n");
//! let mut body = Vec::new();
//! let mut drive = |conn: &mut Connection, body: &mut Vec<u8>| {
//!     while let Some(event) = conn.next_event() {
//!         match event {
//!             Event::MailFrom { .. } => conn.reply(MailDecision::Accept).unwrap(),
//!             Event::RcptTo { .. } => conn.reply(RcptDecision::Accept).unwrap(),
//!             Event::DataChunk(chunk) => body.extend_from_slice(&chunk),
//!             Event::DataEnd => conn.reply(MessageDecision::Queued("1A2B".into())).unwrap(),
//!             _ => {}
//!         }
//!     }
//! };
//! drive(&mut conn, &mut body);
//! conn.feed(b"Subject: hi\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n");
//! drive(&mut conn, &mut body);
//!
//! let mut out = Vec::new();
//! while let Some(bytes) = conn.take_output() {
//!     out.extend_from_slice(&bytes);
//! }
//! assert_eq!(body, b"Subject: hi\r\n\r\n.leading dot\r\n");
//! assert_eq!(
//!     String::from_utf8(out).unwrap(),
//!     "220 mx.example.org ESMTP ready\r\n\
//!      250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n\
//!      250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250-CHUNKING\r\n250 BINARYMIME\r\n\
//!      250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n\
//!      250 2.0.0 Ok: queued as 1A2B\r\n221 2.0.0 Bye\r\n"
//! );
//! assert!(conn.is_closed());
//! ```
//!
//! # Modules
//!
//! | Module | Contents |
//! |---|---|
//! | [`types`] | commands, replies, enhanced status codes, paths, ESMTP parameters |
//! | [`parse`] | command and reply parsers over framed lines (RFC 5321 ABNF and extensions) |
//! | [`encode`] | the writers; `parse(encode(x)) == x` is a property test |
//! | [`server`] | [`server::Connection`] (SMTP, submission, LMTP), [`server::DotDecoder`] |
//! | [`client`] | [`client::Connection`]: capabilities, pipelined transactions, dot-stuffing, BDAT |
//! | `tokio` | feature `tokio`: `serve(stream, config, backend)` and an async `Client` |
//!
//! # Extensions
//!
//! PIPELINING (RFC 2920), 8BITMIME (RFC 6152), SIZE (RFC 1870), STARTTLS (RFC 3207), AUTH
//! (RFC 4954, mechanisms from `mail-sasl`), SMTPUTF8 (RFC 6531), ENHANCEDSTATUSCODES
//! (RFC 2034, RFC 3463), CHUNKING and BINARYMIME (RFC 3030), DSN parameters (RFC 3461),
//! REQUIRETLS as a parameter (RFC 8689), LMTP (RFC 2033), submission rules (RFC 6409).
//!
//! # Guarantees
//!
//! - Peer input never panics the machines (fuzzed); peer mistakes become SMTP replies.
//! - Only `CRLF . CRLF` ends a message (no SMTP smuggling); input after `STARTTLS` is
//!   discarded; every input has a limit with a documented default.
//! - Message bodies stream in both directions; nothing needs a whole message in memory.
//!
//! See `docs/smtp.md` in the repository for embedding the server (MX, submission, LMTP)
//! and the client, and for every limit and default.

#![forbid(unsafe_code)]

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
pub use mail_sasl::Secret;
pub use types::*;
