//! SMTP data types: commands, envelope addresses, ESMTP parameters and replies.
//!
//! Everything here is owned and cheap to clone. Types never depend on the parser: build
//! them directly, or get them from [`crate::parse`].

mod address;
mod command;
mod params;
mod reply;

pub use address::{ForwardPath, Mailbox, ReversePath};
pub use command::{Command, HelloVerb};
pub use params::{Body, MailParams, Notify, OriginalRecipient, RcptParams, Ret};
pub use reply::{EnhancedCode, Reply};
