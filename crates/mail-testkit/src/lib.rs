//! `mail-testkit`: the helpers the workspace's integration tests share. It is a
//! dev-dependency only and never part of a shipped crate.
//!
//! - [`peer`]: is an external peer program (python3, curl, dovecot, ...) installed? If not,
//!   print `skipping: <why>` and let the test return, or panic when
//!   `MAIL_INTEROP_REQUIRED=1` so CI notices the missing peer.
//! - [`net`]: free 127.0.0.1 ports and waiting (bounded) for a port to accept connections.
//! - [`poll`]: bounded polling for a condition or a pidfile, with a deadline.
//! - [`process`]: running a peer program with a time limit and collecting its output.
//! - [`dovecot`]: one configurable private Dovecot (IMAP, POP3, LMTP) on free ports, with
//!   its own configuration in a temporary directory, Maildir seeding, and stop on drop.
//! - [`corpus`]: replaying the committed cargo-fuzz seed corpora in a plain `cargo test`.
//!
//! Helpers here panic on broken test environments (a temp dir that cannot be written, a
//! peer that never becomes ready): each panic message says what failed and why.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! // An interop test starts by asking for its peer; without it the test returns early.
//! if mail_testkit::peer::require("sh", "the example runs a shell command") {
//!     let ran = mail_testkit::process::run_for(
//!         std::process::Command::new("sh").args(["-c", "echo hello"]),
//!         Duration::from_secs(10),
//!     );
//!     assert!(ran.ok);
//!     assert_eq!(ran.stdout, "hello\n");
//! }
//!
//! // A listener on a port picked at run time, and a bounded wait for it.
//! let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! mail_testkit::net::wait_for_port(addr, Instant::now() + Duration::from_secs(5)).unwrap();
//! ```
// A test-support crate reports a broken environment by panicking, with a message.
#![allow(clippy::panic)]

pub mod corpus;
pub mod dovecot;
pub mod net;
pub mod peer;
pub mod poll;
pub mod process;

/// The time limit most interop tests put around a whole test body (`tokio::time::timeout`)
/// so that a hung peer fails the test instead of hanging it.
pub const TEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
