//! `imap-proto`: a sans-IO IMAP4rev2 / IMAP4rev1 codec (RFC 9051, RFC 3501 and common
//! extensions) and client/server state machines.
//!
//! Layout (see docs/architecture.md): [`types`] (commands, responses and the values inside
//! them), [`parse`] (parsers over framed messages: lines with their literals inline),
//! [`encode`] (writers of the same types), `server` and `client` (the sans-IO state
//! machines) and, with feature `tokio`, the async adapter.
//!
//! Supported beyond the base protocol, in types, parser and encoder: IDLE, UIDPLUS, MOVE,
//! ENABLE, CONDSTORE, QRESYNC, NAMESPACE, ID, SPECIAL-USE, CREATE-SPECIAL-USE,
//! LIST-EXTENDED, LIST-STATUS, SASL-IR, LITERAL+/LITERAL-, ESEARCH, SEARCHRES, UNSELECT,
//! CHILDREN, BINARY, APPENDLIMIT, QUOTA, STATUS=SIZE, UTF8=ACCEPT and COMPRESS=DEFLATE.
//!
//! ```
//! use imap_proto::{encode, parse};
//! use imap_proto::types::{CommandBody, Data, FetchItem, FetchItems, Response};
//!
//! // Server side: parse a client's command.
//! let (consumed, cmd) = parse::command(b"a1 UID FETCH 1:* (FLAGS UID)\r\n").unwrap();
//! assert_eq!(consumed, 30);
//! assert_eq!(cmd.tag.as_str(), "a1");
//! let CommandBody::Fetch { uid: true, items: FetchItems::Items(items), .. } = &cmd.body else {
//!     panic!("not a UID FETCH");
//! };
//! assert_eq!(items, &[FetchItem::Flags, FetchItem::Uid]);
//!
//! // ... and encode a response.
//! let mut out = Vec::new();
//! encode::response(&Response::Data(Data::Exists(3)), &mut out);
//! assert_eq!(out, b"* 3 EXISTS\r\n");
//! ```

pub mod client;
pub mod encode;
#[doc(hidden)]
pub mod fuzzing;
pub mod parse;
pub mod server;
pub mod types;

#[cfg(feature = "tokio")]
pub mod tokio;
