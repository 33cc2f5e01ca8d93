//! `sync-policy`: the behaviours of hosted mail services (LINE WORKS, SkyDesk Mail,
//! Cybozu's mail-share option) as pure policy code.
//!
//! Nothing here does I/O. The server reads settings and message facts from its store,
//! passes the current time as an argument, and applies what the functions return:
//!
//! - [`settings`]: organisation and account settings (serde blobs with documented
//!   defaults) and [`resolve`], which combines them into an [`EffectivePolicy`];
//! - [`access`]: protocol switches, app passwords, federated accounts, APOP/OAuth2, the SMTP
//!   source allowlist, size limits, the IMAP connection counter, plan features (ACC-4..10);
//! - [`pop3`]: the POP3 view of a mailbox, the QUIT plan and retention (POP-1..7);
//! - [`imap`]: special-use folders, folder visibility, deletion mode, consumer mode
//!   (IMAP-1, 3, 4, 6);
//! - [`filter`]: sorting rules (FLT-1);
//! - [`import`]: external POP3 import settings, run plans and the automatic-fetch
//!   schedule (IMP-1..5), for the import engine;
//! - [`migration`]: IMAP migration bookkeeping: one-shot cut-off, no duplicates on a
//!   re-run, the job queue and notices, rollback of a failed job (MIG-2, 3, 4, 6).
//!
//! docs/requirements.md maps each behaviour ID to its code and test.
//!
//! # Example
//!
//! ```
//! use sync_policy::{resolve, OrgSettings, UserSettings, UnixTime, MessageFacts};
//! use sync_policy::access::Protocol;
//! use sync_policy::pop3::{pop3_view, PopScope};
//!
//! // Settings as the store keeps them; missing fields take the seed services' defaults.
//! let org = OrgSettings::default();
//! let mut user = UserSettings::default();
//!
//! // The user has not turned POP3 on yet: the login is refused, and says why.
//! let policy = resolve(&org, &user);
//! let refusal = policy.protocol_access(Protocol::Pop3).unwrap_err();
//! assert!(refusal.render(Protocol::Pop3).starts_with("-ERR [AUTH] POP3 access is not turned on"));
//!
//! // They turn it on at t=1000, for mail received from then on.
//! user.pop3.enable(UnixTime(1000));
//! user.pop3.scope = PopScope::FromEnabled;
//! let policy = resolve(&org, &user);
//! assert!(policy.protocol_access(Protocol::Pop3).is_ok());
//!
//! let mailbox = [
//!     MessageFacts::inbox(1, 1, UnixTime(900), 300),  // before POP3 was enabled
//!     MessageFacts::inbox(1, 2, UnixTime(1100), 500),
//! ];
//! let view = pop3_view(&mailbox, &policy.pop3);
//! assert_eq!(view.len(), 1);
//! let first = view.get(1).unwrap();
//! assert_eq!((first.key.uid, first.size, first.uidl.as_str()), (2, 500, "1.1.2"));
//! ```

pub mod access;
mod error;
pub mod facts;
pub mod filter;
pub mod imap;
pub mod import;
pub mod migration;
pub mod pop3;
pub mod settings;

pub use error::PolicyError;
pub use facts::{FolderRole, MessageFacts, MessageKey, Origin, UnixTime};
pub use settings::{EffectivePolicy, OrgSettings, UserSettings, resolve};
pub mod engine;
