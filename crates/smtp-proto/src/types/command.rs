use super::{ForwardPath, MailParams, RcptParams, ReversePath};
use crate::Secret;

/// Which greeting command the client used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HelloVerb {
    /// `HELO` (RFC 5321, no extensions).
    Helo,
    /// `EHLO` (RFC 5321, extended SMTP).
    Ehlo,
    /// `LHLO` (RFC 2033, LMTP).
    Lhlo,
}

impl HelloVerb {
    /// The verb as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HelloVerb::Helo => "HELO",
            HelloVerb::Ehlo => "EHLO",
            HelloVerb::Lhlo => "LHLO",
        }
    }
}

/// An SMTP / LMTP command (RFC 5321 section 4.1 and the extensions this crate supports).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `EHLO`, `HELO` or `LHLO` with the client's domain or address literal.
    Hello {
        /// Which verb was used.
        verb: HelloVerb,
        /// The client's claimed identity (not validated beyond being one non-empty word).
        domain: String,
    },
    /// `MAIL FROM:<reverse-path> [params]`.
    Mail {
        /// The reverse-path.
        from: ReversePath,
        /// ESMTP parameters.
        params: MailParams,
    },
    /// `RCPT TO:<forward-path> [params]`.
    Rcpt {
        /// The forward-path.
        to: ForwardPath,
        /// ESMTP parameters.
        params: RcptParams,
    },
    /// `DATA`.
    Data,
    /// `BDAT size [LAST]` (RFC 3030); `size` octets of message data follow the line.
    Bdat {
        /// Octets in this chunk.
        size: u64,
        /// True for the final chunk.
        last: bool,
    },
    /// `RSET`.
    Rset,
    /// `VRFY string`.
    Vrfy(String),
    /// `EXPN string`.
    Expn(String),
    /// `HELP [string]`.
    Help(Option<String>),
    /// `NOOP [string]`.
    Noop(Option<String>),
    /// `QUIT`.
    Quit,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954).
    Auth {
        /// The SASL mechanism name, upper-cased.
        mechanism: String,
        /// The decoded initial response: `Some(empty)` for `=`, `None` when absent.
        initial_response: Option<Secret<Vec<u8>>>,
    },
}

impl Command {
    /// The command verb as written on the wire (`"MAIL"`, `"BDAT"`, ...).
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Hello { verb, .. } => verb.as_str(),
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Rset => "RSET",
            Command::Vrfy(_) => "VRFY",
            Command::Expn(_) => "EXPN",
            Command::Help(_) => "HELP",
            Command::Noop(_) => "NOOP",
            Command::Quit => "QUIT",
            Command::StartTls => "STARTTLS",
            Command::Auth { .. } => "AUTH",
        }
    }

    /// True when RFC 2920 lets a client send more commands after this one without waiting
    /// for its reply (`RSET`, `MAIL`, `SEND`..., `RCPT`, and `BDAT` chunks); every other
    /// command ends a pipelined group.
    pub fn may_continue_group(&self) -> bool {
        matches!(
            self,
            Command::Rset | Command::Mail { .. } | Command::Rcpt { .. } | Command::Bdat { .. }
        )
    }
}
