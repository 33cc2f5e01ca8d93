//! Server configuration: limits, capability lists, TLS and literal policy.

use std::time::Duration;

/// Which non-synchronising literal extension the server advertises (RFC 7888).
///
/// A server never advertises both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NonSyncLiterals {
    /// `LITERAL+`: non-synchronising literals of any size up to the limits.
    Plus,
    /// `LITERAL-`: non-synchronising literals up to 4096 bytes (the default).
    #[default]
    Minus,
    /// Neither: every literal must be synchronising. Non-synchronising literals are still
    /// read (up to 4096 bytes) to stay in step with clients that send them anyway.
    None,
}

/// Input limits. Every one has a documented default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest command line (bytes before its CRLF), without literals. Default 64 KiB. A longer line is answered
    /// with `BAD` and skipped without being held in memory.
    pub max_line: usize,
    /// Largest whole command (lines plus inline literals) other than an APPEND message.
    /// Default 1 MiB.
    pub max_command: usize,
    /// Largest literal in a command other than APPEND. Default 256 KiB.
    pub max_literal: u64,
    /// Largest APPEND message (streamed, never buffered whole). Default 50 MiB; advertised as
    /// `APPENDLIMIT=`.
    pub max_append: u64,
    /// Bytes of unread (pipelined) input the machine holds before
    /// [`Connection::wants_input`](super::Connection::wants_input) turns false. Default 1 MiB.
    pub max_pending_input: usize,
    /// `BAD` commands before the server says `BYE` and closes. Default 20.
    pub max_bad_commands: u32,
    /// Failed LOGIN/AUTHENTICATE attempts before `BYE`. Default 3.
    pub max_auth_failures: u32,
    /// Commands accepted before authentication. Default 50.
    pub max_unauthenticated_commands: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: 64 * 1024,
            max_command: 1024 * 1024,
            max_literal: 256 * 1024,
            max_append: 50 * 1024 * 1024,
            max_pending_input: 1024 * 1024,
            max_bad_commands: 20,
            max_auth_failures: 3,
            max_unauthenticated_commands: 50,
        }
    }
}

/// Extensions advertised after authentication by default: what the tokio adapter's
/// `Backend` interface covers. docs/imap.md lists the same set (a test keeps them equal).
pub const DEFAULT_POST_AUTH_CAPABILITIES: &[&str] = &[
    "NAMESPACE",
    "UNSELECT",
    "UIDPLUS",
    "MOVE",
    "CONDSTORE",
    "QRESYNC",
    "ESEARCH",
    "SPECIAL-USE",
    "CHILDREN",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "STATUS=SIZE",
    "QUOTA",
    "UTF8=ACCEPT",
];

/// Configuration of a [`Connection`](super::Connection).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Input limits.
    pub limits: Limits,
    /// Text of the greeting (`* OK [CAPABILITY ...] <text>`). Default "IMAP4rev2 server ready".
    pub greeting: String,
    /// SASL mechanisms offered as `AUTH=`. Default `PLAIN`.
    pub sasl_mechanisms: Vec<String>,
    /// Whether STARTTLS is offered (the adapter has a TLS configuration). Default false.
    pub starttls: bool,
    /// The connection is already TLS (implicit TLS port). Default false.
    pub implicit_tls: bool,
    /// Refuse LOGIN and plaintext SASL mechanisms before TLS and advertise `LOGINDISABLED`.
    /// Default true (RFC 9051 section 11.1: plaintext passwords only over TLS). Has no effect
    /// once TLS is up.
    pub login_disabled_without_tls: bool,
    /// Non-synchronising literal policy. Default `LITERAL-`.
    pub non_sync_literals: NonSyncLiterals,
    /// Offer `COMPRESS=DEFLATE` after authentication (RFC 4978). Default true.
    pub compress: bool,
    /// SEARCHRES (RFC 5182): advertise `SEARCHRES` after authentication and accept
    /// `SEARCH RETURN (SAVE)` and `$`. The application must then call
    /// [`Connection::save_search_result`](super::Connection::save_search_result) when serving
    /// a SAVE search and resolve `$` with
    /// [`Connection::search_result`](super::Connection::search_result). Default `false`
    /// (commands using SEARCHRES are answered `BAD`), since a server that does not do this
    /// must not advertise it. Also on when `SEARCHRES` is in a capability list.
    pub searchres: bool,
    /// Extra capabilities advertised before and after authentication (e.g. `ID`).
    /// Default empty.
    pub extra_capabilities: Vec<String>,
    /// Capabilities advertised only after authentication. Default
    /// [`DEFAULT_POST_AUTH_CAPABILITIES`].
    pub post_auth_capabilities: Vec<String>,
    /// Autologout after this much inactivity. RFC 9051 section 5.4 requires at least
    /// 30 minutes; smaller values are raised to 30 minutes. Default 30 minutes.
    pub autologout: Duration,
    /// Autologout before authentication. Default 60 seconds (RFC 9051 allows a short timer
    /// here).
    pub unauthenticated_autologout: Duration,
    /// Delay before a failed LOGIN/AUTHENTICATE is answered. Default 2 seconds.
    pub auth_failure_delay: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            greeting: "IMAP4rev2 server ready".into(),
            sasl_mechanisms: vec!["PLAIN".into()],
            starttls: false,
            implicit_tls: false,
            login_disabled_without_tls: true,
            non_sync_literals: NonSyncLiterals::default(),
            compress: true,
            searchres: false,
            extra_capabilities: Vec::new(),
            post_auth_capabilities: DEFAULT_POST_AUTH_CAPABILITIES
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
            autologout: Duration::from_secs(30 * 60),
            unauthenticated_autologout: Duration::from_secs(60),
            auth_failure_delay: Duration::from_secs(2),
        }
    }
}

/// Mechanisms that send a password in the clear (refused before TLS when LOGINDISABLED).
pub(crate) fn is_plaintext_mechanism(m: &str) -> bool {
    m.eq_ignore_ascii_case("PLAIN") || m.eq_ignore_ascii_case("LOGIN")
}
