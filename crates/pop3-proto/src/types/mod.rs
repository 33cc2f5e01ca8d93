//! POP3 commands, responses and capabilities as owned values.
//!
//! Every type here is cheap to clone (`bytes::Bytes` inside), parsed by [`crate::parse`] and
//! written by [`crate::encode`]; `parse(encode(x)) == x` holds for every value the
//! constructors allow.

use bytes::Bytes;

/// Bytes that must never appear in logs (passwords, SASL responses): `mail_sasl`'s
/// `Secret`, whose `Debug` prints `Secret([redacted])` and whose equality is constant-time.
pub type Secret = mail_sasl::Secret<Bytes>;

/// Wraps bytes as a [`Secret`].
pub fn secret(bytes: impl Into<Bytes>) -> Secret {
    mail_sasl::Secret::new(bytes.into())
}

/// A client command (RFC 1939, RFC 2449 CAPA, RFC 5034 AUTH, RFC 2595 STLS).
///
/// Message numbers are kept as sent: `0` parses (it is a number) and the server machine
/// answers it with `-ERR no such message`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `USER name` (RFC 1939 section 7).
    User(Bytes),
    /// `PASS string`: the rest of the line after one space, spaces included.
    Pass(Secret),
    /// `APOP name digest`: the digest is 32 lower-case hex digits (RFC 1939 section 7).
    Apop {
        /// The mailbox name.
        name: Bytes,
        /// MD5(timestamp + secret) as 32 lower-case hex digits.
        digest: Bytes,
    },
    /// `AUTH mechanism [initial-response]` (RFC 5034).
    Auth {
        /// The SASL mechanism name, upper-cased.
        mechanism: Bytes,
        /// The decoded initial response; `Some(empty)` was sent as `=`.
        initial_response: Option<Secret>,
    },
    /// `AUTH` with no argument: list the SASL mechanisms (a multi-line answer, as Dovecot
    /// and Thunderbird use it).
    AuthList,
    /// `STAT`.
    Stat,
    /// `LIST [msg]`.
    List(Option<u32>),
    /// `RETR msg`.
    Retr(u32),
    /// `DELE msg`.
    Dele(u32),
    /// `NOOP`.
    Noop,
    /// `RSET`.
    Rset,
    /// `QUIT`.
    Quit,
    /// `TOP msg n`.
    Top {
        /// The message number.
        msg: u32,
        /// How many lines of the body to send after the header.
        lines: u32,
    },
    /// `UIDL [msg]`.
    Uidl(Option<u32>),
    /// `CAPA` (RFC 2449).
    Capa,
    /// `STLS` (RFC 2595).
    Stls,
}

impl Command {
    /// The command's keyword, upper-case (`"RETR"`).
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::User(_) => "USER",
            Self::Pass(_) => "PASS",
            Self::Apop { .. } => "APOP",
            Self::Auth { .. } | Self::AuthList => "AUTH",
            Self::Stat => "STAT",
            Self::List(_) => "LIST",
            Self::Retr(_) => "RETR",
            Self::Dele(_) => "DELE",
            Self::Noop => "NOOP",
            Self::Rset => "RSET",
            Self::Quit => "QUIT",
            Self::Top { .. } => "TOP",
            Self::Uidl(_) => "UIDL",
            Self::Capa => "CAPA",
            Self::Stls => "STLS",
        }
    }

    /// True if a `+OK` answer to this command is followed by a multi-line body ending with
    /// `.` CRLF.
    pub fn is_multi_line(&self) -> bool {
        matches!(
            self,
            Self::List(None)
                | Self::Uidl(None)
                | Self::Retr(_)
                | Self::Top { .. }
                | Self::Capa
                | Self::AuthList
        )
    }
}

/// `+OK` or `-ERR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// `+OK`.
    Ok,
    /// `-ERR`.
    Err,
}

/// An extended response code (RFC 2449 section 8, RFC 3206).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponseCode {
    /// `[IN-USE]`: the maildrop is locked by another session.
    InUse,
    /// `[LOGIN-DELAY]`: the user logged in too recently.
    LoginDelay,
    /// `[SYS/TEMP]`: a temporary system problem; retry later.
    SysTemp,
    /// `[SYS/PERM]`: a permanent system problem; do not retry without help.
    SysPerm,
    /// `[AUTH]`: the credentials were wrong (not a system problem).
    Auth,
    /// Any other code, as sent, without the brackets (`resp-level *("/" resp-level)`).
    Other(Bytes),
}

impl ResponseCode {
    /// The code as it appears between the brackets.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::InUse => b"IN-USE",
            Self::LoginDelay => b"LOGIN-DELAY",
            Self::SysTemp => b"SYS/TEMP",
            Self::SysPerm => b"SYS/PERM",
            Self::Auth => b"AUTH",
            Self::Other(b) => b,
        }
    }

    /// Maps the text between brackets to a known code or `Other`.
    pub fn from_bytes(b: &[u8]) -> Self {
        match b {
            b"IN-USE" => Self::InUse,
            b"LOGIN-DELAY" => Self::LoginDelay,
            b"SYS/TEMP" => Self::SysTemp,
            b"SYS/PERM" => Self::SysPerm,
            b"AUTH" => Self::Auth,
            other => Self::Other(Bytes::copy_from_slice(other)),
        }
    }
}

/// A status line: `+OK` / `-ERR`, an optional response code and free text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// `+OK` or `-ERR`.
    pub status: Status,
    /// The `[...]` code, if the text started with one.
    pub code: Option<ResponseCode>,
    /// The text after the status (and code), without the separating space; may be empty.
    pub text: Bytes,
}

impl Response {
    /// `+OK text`.
    pub fn ok(text: impl Into<Bytes>) -> Self {
        Self {
            status: Status::Ok,
            code: None,
            text: text.into(),
        }
    }

    /// `-ERR text`.
    pub fn err(text: impl Into<Bytes>) -> Self {
        Self {
            status: Status::Err,
            code: None,
            text: text.into(),
        }
    }

    /// `-ERR [code] text`.
    pub fn err_code(code: ResponseCode, text: impl Into<Bytes>) -> Self {
        Self {
            status: Status::Err,
            code: Some(code),
            text: text.into(),
        }
    }

    /// True for `+OK`.
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }
}

/// One line a server sends outside a multi-line body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerLine {
    /// `+OK ...` or `-ERR ...`.
    Status(Response),
    /// A SASL challenge `+ base64`, decoded (RFC 5034). Empty for the empty challenge `+ `.
    Challenge(Bytes),
}

/// A line of a `LIST` answer: `msg size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanListing {
    /// The message number.
    pub msg: u32,
    /// Size in octets (CRLF line ends, before byte-stuffing).
    pub size: u64,
}

/// A line of a `UIDL` answer: `msg unique-id` (the id is 1 to 70 characters 0x21..0x7E).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UidListing {
    /// The message number.
    pub msg: u32,
    /// The unique id.
    pub uid: Bytes,
}

/// `EXPIRE` argument (RFC 2449 section 6.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expire {
    /// `NEVER`: the server never deletes messages by itself.
    Never,
    /// Minimum retention in days (`0` means messages are deleted after retrieval).
    Days(u32),
}

/// One capability line of the `CAPA` answer (RFC 2449, 2595, 3206, 5034).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Capability {
    /// `TOP`.
    Top,
    /// `USER`.
    User,
    /// `SASL mech...` (may be empty).
    Sasl(Vec<Bytes>),
    /// `RESP-CODES`.
    RespCodes,
    /// `LOGIN-DELAY seconds [USER]`.
    LoginDelay {
        /// Minimum seconds between logins.
        seconds: u32,
        /// `USER`: a per-user value is announced after login.
        per_user: bool,
    },
    /// `PIPELINING`.
    Pipelining,
    /// `EXPIRE days|NEVER [USER]`.
    Expire {
        /// The retention policy.
        policy: Expire,
        /// `USER`: a per-user value is announced after login.
        per_user: bool,
    },
    /// `UIDL`.
    Uidl,
    /// `IMPLEMENTATION text`.
    Implementation(Bytes),
    /// `STLS` (RFC 2595).
    Stls,
    /// `AUTH-RESP-CODE` (RFC 3206).
    AuthRespCode,
    /// Any other capability: its tag (upper-cased) and parameters.
    Other {
        /// The capability tag.
        tag: Bytes,
        /// Space-separated parameters.
        params: Vec<Bytes>,
    },
}

/// What the application knows about one message of the maildrop, handed to the server
/// machine at login so it can answer `STAT`, `LIST`, `UIDL`, `DELE` and `RSET` itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    /// Size in octets as the message will be sent (CRLF line ends, before byte-stuffing).
    pub size: u64,
    /// The `UIDL` id: 1 to 70 characters in 0x21..=0x7E, unique and stable in the maildrop.
    pub uid: Bytes,
}

impl MessageInfo {
    /// A message of `size` octets with unique id `uid`.
    pub fn new(size: u64, uid: impl Into<Bytes>) -> Self {
        Self {
            size,
            uid: uid.into(),
        }
    }
}

/// True if `uid` is a valid `UIDL` unique-id (RFC 1939: 1..=70 octets in 0x21..=0x7E).
pub fn is_valid_uid(uid: &[u8]) -> bool {
    (1..=70).contains(&uid.len()) && uid.iter().all(|b| (0x21..=0x7e).contains(b))
}
