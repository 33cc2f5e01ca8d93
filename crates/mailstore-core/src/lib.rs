//! `mailstore-core`: the mail store of the toolkit.
//!
//! An async [`MailStore`] trait (accounts, credentials, settings, mailboxes, messages with
//! UIDs, flags, MODSEQ, tombstones for QRESYNC, quotas, POP3 UIDLs, a per-mailbox change
//! feed) and two implementations: [`MemoryStore`] for tests and embedding, and
//! [`DiskStore`], the durable default (a redb index holding the metadata and the messages
//! up to [`StoreConfig::inline_body_max`], one file per larger message; see
//! `docs/store.md`).
//!
//! ```
//! use mailstore_core::{AppendOptions, Flags, MailStore, MemoryStore, NewAccount, SystemFlags, UidSet};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let alice = store.create_account(NewAccount::new("alice@example.org", Some("s3cret"))).await?;
//! let inbox = store.mailbox(alice.id, "INBOX").await?;
//!
//! let opts = AppendOptions::with_flags(Flags::system(SystemFlags::SEEN));
//! let msg = bytes::Bytes::from_static(b"Subject: hello\r\n\r\nHi Alice!\r\n");
//! let appended = store.append(inbox.mailbox, opts, msg).await?;
//! assert_eq!(appended.uid, 1);
//!
//! let snapshot = store.snapshot(inbox.mailbox).await?;
//! assert_eq!(snapshot.messages.len(), 1);
//! assert!(snapshot.messages[0].flags.system.contains(SystemFlags::SEEN));
//!
//! let login = store.verify_login("alice@EXAMPLE.org", "s3cret").await?;
//! assert_eq!(login.account.id, alice.id);
//! # Ok::<(), mailstore_core::StoreError>(())
//! # }).unwrap();
//! ```

mod backends;
mod codec;
mod creds;
mod disk;
mod engine;
mod error;
mod name;
pub mod settings;
mod store;
pub mod transfer;
mod types;
mod validate;

pub use backends::{DiskAppend, DiskStore, INLINE_READ_MAX, MemoryAppend, MemoryStore};
pub use error::{InvalidMessage, InvalidName, StoreError};
pub use name::{DELIMITER, validate_mailbox_name};
pub use store::{AppendSink, BodyReader, ChangeSubscription, MailStore, StoreResult};
pub use types::*;
pub use validate::validate_message;
