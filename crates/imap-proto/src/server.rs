//! The server-side IMAP state machine (RFC 9051 IMAP4rev2, with IMAP4rev1 semantics for
//! clients that do not `ENABLE IMAP4rev2`).
//!
//! [`Connection`] frames client input (lines, synchronising and non-synchronising literals,
//! APPEND messages streamed in chunks), runs the parts of the protocol that need no mailbox
//! (CAPABILITY, LOGOUT, STARTTLS, ENABLE, IDLE, COMPRESS, the AUTHENTICATE exchange, the
//! state and permission rules, literal limits, autologout, the failed-login delay, and the
//! RFC 9051 section 7.5 rules for unsolicited responses) and hands everything else to the
//! application as an [`Event`], one at a time.
//!
//! ```
//! use std::time::Instant;
//! use imap_proto::server::{Config, Connection, Event, Status};
//!
//! let mut config = Config::default();
//! config.login_disabled_without_tls = false;
//! let mut conn = Connection::new(config, Instant::now());
//! let greeting = conn.take_output().unwrap();
//! assert!(greeting.starts_with(b"* OK [CAPABILITY IMAP4rev2 "));
//!
//! conn.feed(b"a1 LOGIN alice secret\r\n");
//! match conn.next_event() {
//!     Some(Event::Login { tag, username, password }) => {
//!         assert_eq!(tag, "a1");
//!         assert_eq!(&username[..], b"alice");
//!         assert_eq!(&password.expose()[..], b"secret");
//!         conn.reply(Status::ok("Logged in")).unwrap();
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! let out = conn.take_output().unwrap();
//! assert!(out.starts_with(b"a1 OK [CAPABILITY IMAP4rev2 "));
//! ```

mod config;
mod unsolicited;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};

pub use config::{Config, DEFAULT_POST_AUTH_CAPABILITIES, Limits, NonSyncLiterals};
pub use unsolicited::Unsolicited;

use crate::encode::{self, EncodeOptions};
use crate::parse::{self, LiteralHeader, ParseError, ParserOptions};
use crate::types::{
    Command, CommandBody, DateTime, FetchAttr, FetchLiteralItem, Flag, Mailbox, Response,
    SearchKey, SearchReturnOption, SequenceSet, is_atom_char,
};
use std::num::NonZeroU32;

/// RFC 7888: the largest non-synchronising literal under `LITERAL-`.
pub const LITERAL_MINUS_MAX: u64 = 4096;

/// Sensitive bytes (passwords, SASL data): `Debug` never prints them.
pub type Secret = mail_sasl::Secret<Bytes>;

/// Errors from using the state machine out of turn (application bugs, not peer mistakes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The call does not fit the event currently being answered.
    #[error("{call} is not valid now: {reason}")]
    NotExpected {
        /// The method that was called.
        call: &'static str,
        /// What the machine is waiting for instead.
        reason: &'static str,
    },
    /// A streamed literal got more or fewer bytes than announced.
    #[error("literal length mismatch: announced {announced} bytes, {remaining} still expected")]
    LiteralLength {
        /// Bytes announced in `{n}`.
        announced: u64,
        /// Bytes still owed (or, if the call overshot, 0).
        remaining: u64,
    },
    /// Text or data handed to the machine would break the line structure.
    #[error("invalid response data: {0}")]
    InvalidData(&'static str),
}

/// The IMAP connection state (RFC 9051 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Before LOGIN/AUTHENTICATE.
    NotAuthenticated,
    /// Logged in, no mailbox selected.
    Authenticated,
    /// A mailbox is selected.
    Selected {
        /// `true` after EXAMINE or a SELECT answered `[READ-ONLY]`.
        read_only: bool,
    },
    /// LOGOUT (or a BYE) happened; nothing more is read.
    Logout,
}

/// Kind of a tagged completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusKind {
    /// `OK`.
    Ok,
    /// `NO`.
    No,
    /// `BAD`.
    Bad,
}

/// The tagged completion of a command: `tag OK|NO|BAD [code] text`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Status {
    /// OK, NO or BAD.
    pub kind: StatusKind,
    /// Response code without brackets, e.g. `APPENDUID 38505 3955` or `READ-ONLY`.
    pub code: Option<String>,
    /// Human-readable text.
    pub text: String,
}

impl Status {
    /// `OK` with text.
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            kind: StatusKind::Ok,
            code: None,
            text: text.into(),
        }
    }
    /// `NO` with text.
    pub fn no(text: impl Into<String>) -> Self {
        Self {
            kind: StatusKind::No,
            code: None,
            text: text.into(),
        }
    }
    /// `BAD` with text.
    pub fn bad(text: impl Into<String>) -> Self {
        Self {
            kind: StatusKind::Bad,
            code: None,
            text: text.into(),
        }
    }
    /// Adds a response code (without the brackets).
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }
}

/// A command the application serves.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Request {
    /// The command's tag.
    pub tag: String,
    /// Upper-cased command name (`FETCH` for both `FETCH` and `UID FETCH`).
    pub name: String,
    /// `true` for the `UID` forms.
    pub uid: bool,
    /// The whole command as received (with CRLF; literals inline), for the crate's parser.
    pub raw: Bytes,
    /// Offset in `raw` just after the command name (where its arguments start).
    pub args_at: usize,
    /// The command, parsed by [`crate::parse`].
    pub command: Command,
}

impl Request {
    /// The arguments after the command name, without the leading space and the final CRLF.
    pub fn args(&self) -> &[u8] {
        let a = self.raw.get(self.args_at..).unwrap_or_default();
        let a = a.strip_prefix(b" ").unwrap_or(a);
        let a = a.strip_suffix(b"\n").unwrap_or(a);
        a.strip_suffix(b"\r").unwrap_or(a)
    }
}

/// What the application must act on, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "events must be handled; most need a reply before the next event comes"]
#[non_exhaustive]
pub enum Event {
    /// A command to serve. Send untagged data ([`Connection::send_untagged`],
    /// [`Connection::begin_literal`]...) then [`Connection::reply`] with its completion.
    Command(Request),
    /// `LOGIN`: answer with [`Connection::reply`] (`OK` logs in; `NO` is delayed and counted).
    Login {
        /// Command tag.
        tag: String,
        /// User name as sent.
        username: Bytes,
        /// Password.
        password: Secret,
    },
    /// `AUTHENTICATE`: drive a SASL exchange, answering with [`Connection::auth_challenge`] or
    /// [`Connection::reply`] (`OK` logs in).
    AuthStart {
        /// Command tag.
        tag: String,
        /// Upper-cased mechanism name.
        mechanism: String,
        /// SASL-IR initial response (`Some(empty)` for `=`).
        initial: Option<Secret>,
    },
    /// A decoded client response in an AUTHENTICATE exchange; answer like `AuthStart`.
    AuthData(Secret),
    /// The client cancelled the exchange (`*`) or sent invalid base64; the machine already
    /// answered `BAD`. Drop the SASL state.
    AuthAborted,
    /// `APPEND` of a message of `size` bytes: call [`Connection::accept_append`] to receive it
    /// as [`Event::AppendChunk`]s, or [`Connection::reply`] with `NO` to refuse it (e.g.
    /// `[TRYCREATE]`) before its bytes are read.
    AppendStart {
        /// Command tag.
        tag: String,
        /// Target mailbox (decoded from modified UTF-7 unless UTF-8 was enabled).
        mailbox: Mailbox,
        /// Flags to set, e.g. `\Seen`.
        flags: Vec<Flag>,
        /// INTERNALDATE to set.
        date: Option<DateTime>,
        /// Message size in bytes.
        size: u64,
        /// `true` for a `literal8` (`~{n}`, RFC 3516).
        binary: bool,
        /// `true` when the message came as `UTF8 (~{n})` (RFC 6855): its header fields may
        /// hold UTF-8.
        utf8: bool,
    },
    /// The next piece of an accepted APPEND message.
    AppendChunk(Bytes),
    /// The APPEND message is complete: [`Connection::reply`] with `OK [APPENDUID ..]` or `NO`.
    AppendEnd,
    /// The APPEND command turned out malformed after its message (e.g. MULTIAPPEND, which is
    /// not supported); the machine answered `BAD`. Discard what was stored.
    AppendAborted,
    /// `IDLE` began; `+ idling` is written. Queued updates now go out at once. No reply.
    Idle {
        /// Command tag.
        tag: String,
    },
    /// `DONE` ended the IDLE; the tagged `OK` is written. No reply.
    IdleDone,
    /// `STARTTLS` was accepted and its `OK` is in the output: write it, run the TLS handshake,
    /// then call [`Connection::tls_established`]. Input that came after the command has been
    /// discarded.
    StartTls,
    /// `COMPRESS DEFLATE` was accepted and its `OK` is in the output: write it, then wrap the
    /// stream in raw DEFLATE (RFC 1951) both ways and call
    /// [`Connection::compression_started`].
    StartCompression,
    /// The client enabled these extensions (already answered). For information.
    Enabled(Vec<String>),
    /// The client logged out; `* BYE` and the tagged `OK` are in the output.
    Logout,
}

/// Extensions the client turned on with ENABLE.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Enabled {
    /// `IMAP4rev2`: rev2 semantics (no RECENT, ESEARCH-style SEARCH, no LSUB).
    pub imap4rev2: bool,
    /// `CONDSTORE` (also implied by QRESYNC or by CONDSTORE-using commands).
    pub condstore: bool,
    /// `QRESYNC`: VANISHED instead of EXPUNGE.
    pub qresync: bool,
    /// `UTF8=ACCEPT` (RFC 6855).
    pub utf8_accept: bool,
}

/// What the machine waits for from the application.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Wait {
    Command {
        tag: String,
        name: String,
        uid: bool,
    },
    Login {
        tag: String,
    },
    Auth {
        tag: String,
    },
    AppendDecision {
        tag: String,
        size: u64,
        sync: bool,
    },
    AppendEnd {
        tag: String,
    },
    Tls,
    Compress,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Framing commands.
    Command,
    /// Skipping the rest of an over-long line.
    DiscardLine,
    /// Skipping a refused non-synchronising literal, then the rest of its command.
    DiscardLiteral { remaining: u64 },
    /// An event is out; waiting for the application.
    Waiting(Wait),
    /// A SASL challenge is out; reading the client's line.
    AuthLine { tag: String },
    /// Streaming an accepted APPEND message.
    AppendBody { remaining: u64 },
    /// After the APPEND message: expecting the CRLF that ends the command.
    AppendTrailer { tag: String },
    /// IDLE: waiting for DONE.
    Idle { tag: String },
}

/// A command message being assembled from lines and literals.
#[derive(Debug, Default)]
struct Accum {
    msg: BytesMut,
    literal_remaining: u64,
}

/// Output held back (the failed-login delay).
#[derive(Debug)]
struct Held {
    until: Instant,
    out: BytesMut,
    close_after: bool,
}

/// The server side of one IMAP connection. See the [module docs](self).
#[derive(Debug)]
pub struct Connection {
    config: Config,
    state: State,
    mode: Mode,
    input: BytesMut,
    scan: usize,
    out: BytesMut,
    held: Option<Held>,
    acc: Option<Accum>,
    append_tag: String,
    append_utf8: bool,
    saved_search: Vec<u32>,
    saving: Option<Vec<u32>>,
    too_long_tag: Option<String>,
    tls: bool,
    compress_active: bool,
    enabled: Enabled,
    queue: VecDeque<Unsolicited>,
    literal_out: Option<(u64, u64)>,
    bad_commands: u32,
    auth_failures: u32,
    unauth_commands: u32,
    clock: Instant,
    deadline: Instant,
    active: bool,
    closed: bool,
}

const CRLF: &[u8] = b"\r\n";

impl Connection {
    /// A new connection; the greeting (`* OK [CAPABILITY ...]`) is queued in the output.
    pub fn new(mut config: Config, now: Instant) -> Self {
        config.autologout = config.autologout.max(Duration::from_secs(30 * 60));
        let tls = config.implicit_tls;
        let deadline = now + config.unauthenticated_autologout;
        let mut conn = Self {
            config,
            state: State::NotAuthenticated,
            mode: Mode::Command,
            input: BytesMut::new(),
            scan: 0,
            out: BytesMut::new(),
            held: None,
            acc: None,
            append_tag: String::new(),
            append_utf8: false,
            saved_search: Vec::new(),
            saving: None,
            too_long_tag: None,
            tls,
            compress_active: false,
            enabled: Enabled::default(),
            queue: VecDeque::new(),
            literal_out: None,
            bad_commands: 0,
            auth_failures: 0,
            unauth_commands: 0,
            clock: now,
            deadline,
            active: false,
            closed: false,
        };
        let caps = conn.capabilities().join(" ");
        let text = clean_text(&conn.config.greeting);
        conn.write(format!("* OK [CAPABILITY {caps}] {text}\r\n").as_bytes());
        conn
    }

    /// Bytes read from the client. Cheap: framing happens in [`next_event`](Self::next_event).
    pub fn feed(&mut self, input: &[u8]) {
        if self.closed || matches!(self.mode, Mode::Waiting(Wait::Tls)) {
            // After STARTTLS, plaintext must not be interpreted (CVE-2011-0411 class).
            return;
        }
        self.active = true;
        self.input.extend_from_slice(input);
    }

    /// Whether the adapter should read more input now. False while the machine waits for the
    /// application and already holds [`Limits::max_pending_input`] bytes of pipelined input.
    pub fn wants_input(&self) -> bool {
        !self.closed
            && (!matches!(self.mode, Mode::Waiting(_))
                || self.input.len() < self.config.limits.max_pending_input)
    }

    /// The current connection state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Extensions the client enabled.
    pub fn enabled(&self) -> Enabled {
        self.enabled
    }

    /// Records that the client used a CONDSTORE enabling command (RFC 7162 section 3.1:
    /// SELECT/EXAMINE with `CONDSTORE`, `FETCH` with `CHANGEDSINCE` or `MODSEQ`, `STORE`
    /// with `UNCHANGEDSINCE`, `SEARCH MODSEQ`): from now on unsolicited FETCH responses
    /// carry MODSEQ.
    pub fn note_condstore(&mut self) {
        self.enabled.condstore = true;
    }

    /// Whether TLS is active (implicit, or after STARTTLS).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The capability list for the current state (what `CAPABILITY` answers).
    pub fn capabilities(&self) -> Vec<String> {
        let mut caps: Vec<String> = vec!["IMAP4rev2".into(), "IMAP4rev1".into()];
        match self.config.non_sync_literals {
            NonSyncLiterals::Plus => caps.push("LITERAL+".into()),
            NonSyncLiterals::Minus => caps.push("LITERAL-".into()),
            NonSyncLiterals::None => {}
        }
        caps.extend(["SASL-IR", "ENABLE", "IDLE"].map(String::from));
        if self.state == State::NotAuthenticated {
            if self.config.starttls && !self.tls {
                caps.push("STARTTLS".into());
            }
            if self.login_disabled() {
                caps.push("LOGINDISABLED".into());
            }
            for m in &self.config.sasl_mechanisms {
                if !(self.login_disabled() && config::is_plaintext_mechanism(m)) {
                    caps.push(format!("AUTH={}", m.to_ascii_uppercase()));
                }
            }
        } else {
            caps.extend(self.config.post_auth_capabilities.iter().cloned());
            if self.config.compress && !self.compress_active {
                caps.push("COMPRESS=DEFLATE".into());
            }
            if self.config.searchres
                && !self
                    .config
                    .post_auth_capabilities
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case("SEARCHRES"))
            {
                caps.push("SEARCHRES".into());
            }
            caps.push(format!("APPENDLIMIT={}", self.config.limits.max_append));
        }
        caps.extend(self.config.extra_capabilities.iter().cloned());
        caps
    }

    fn login_disabled(&self) -> bool {
        self.config.login_disabled_without_tls && !self.tls
    }

    /// Bytes to write to the client, in order.
    pub fn take_output(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.split().freeze())
        }
    }

    /// Whether the connection is over (after LOGOUT, a BYE or autologout). Write any
    /// remaining output, then close the stream.
    pub fn is_closed(&self) -> bool {
        self.closed && self.held.is_none()
    }

    /// The next deadline: autologout or the end of a failed-login delay.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        match &self.held {
            Some(h) => Some(h.until.min(self.deadline)),
            None => Some(self.deadline),
        }
    }

    /// Time passes. Call when [`poll_timeout`](Self::poll_timeout) is reached; calling it at
    /// other times (e.g. after every read) is harmless and keeps the clock fresh.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now > self.clock {
            self.clock = now;
        }
        if let Some(h) = &self.held
            && now >= h.until
            && let Some(h) = self.held.take()
        {
            self.out.extend_from_slice(&h.out);
            if h.close_after {
                self.closed = true;
            }
        }
        if self.closed || now < self.deadline {
            return;
        }
        if self.active {
            self.active = false;
            self.deadline = now + self.timer_length();
        } else {
            self.write(b"* BYE Autologout; idle for too long\r\n");
            self.close();
        }
    }

    fn timer_length(&self) -> Duration {
        if self.state == State::NotAuthenticated {
            self.config.unauthenticated_autologout
        } else {
            self.config.autologout
        }
    }

    fn close(&mut self) {
        self.closed = true;
        self.state = State::Logout;
        self.input.clear();
        self.queue.clear();
    }

    fn write(&mut self, bytes: &[u8]) {
        match &mut self.held {
            Some(h) => h.out.extend_from_slice(bytes),
            None => self.out.extend_from_slice(bytes),
        }
    }

    fn write_status(&mut self, tag: &str, status: &Status) {
        let kind = match status.kind {
            StatusKind::Ok => "OK",
            StatusKind::No => "NO",
            StatusKind::Bad => "BAD",
        };
        let mut line = format!("{tag} {kind} ");
        if let Some(code) = &status.code {
            line.push('[');
            line.push_str(&clean_text(code));
            line.push_str("] ");
        }
        let text = clean_text(&status.text);
        line.push_str(if text.is_empty() { "completed" } else { &text });
        line.push_str("\r\n");
        self.write(line.as_bytes());
    }

    fn bad(&mut self, tag: &str, text: &str) {
        self.write_status(tag, &Status::bad(text));
        self.count_bad();
    }

    fn count_bad(&mut self) {
        self.bad_commands += 1;
        if self.bad_commands >= self.config.limits.max_bad_commands && !self.closed {
            self.write(b"* BYE Too many invalid commands\r\n");
            self.close();
        }
    }

    /// Queues an unsolicited update; see [`Unsolicited`] for when it is sent.
    pub fn queue_unsolicited(&mut self, update: Unsolicited) {
        if self.closed || !matches!(self.state, State::Selected { .. }) {
            return;
        }
        if matches!(update, Unsolicited::Recent(_)) && self.enabled.imap4rev2 {
            return;
        }
        if let Unsolicited::Vanished(ranges) = &update {
            self.saved_search.retain(|u| {
                !ranges
                    .iter()
                    .any(|&(a, b)| (a.min(b)..=a.max(b)).contains(u))
            });
        }
        self.queue.push_back(update);
        if matches!(self.mode, Mode::Idle { .. }) {
            self.flush_queue(true);
        }
    }

    /// Number of updates queued and not yet sent.
    pub fn queued_unsolicited(&self) -> usize {
        self.queue.len()
    }

    /// Whether SEARCHRES (RFC 5182) is advertised after authentication
    /// ([`Config::searchres`], or `SEARCHRES` in the capability lists).
    fn searchres_advertised(&self) -> bool {
        self.config.searchres
            || self
                .config
                .post_auth_capabilities
                .iter()
                .chain(&self.config.extra_capabilities)
                .any(|c| c.eq_ignore_ascii_case("SEARCHRES"))
    }

    /// SEARCHRES (RFC 5182): while serving a `SEARCH` / `UID SEARCH` with `RETURN (SAVE)`,
    /// hands the machine the UIDs of the messages the search found (or, with `SAVE` combined
    /// only with `MIN` and/or `MAX`, of the one or two messages those return). They become
    /// the saved result ([`search_result`](Self::search_result)) when the command completes
    /// `OK`; a `NO` empties it and a `BAD` leaves it unchanged. Saved UIDs are always UIDs,
    /// also for `SEARCH` without `UID`.
    pub fn save_search_result(&mut self, uids: impl IntoIterator<Item = u32>) -> Result<(), Error> {
        self.expect_command("save_search_result")?;
        let Some(saving) = &mut self.saving else {
            return Err(Error::NotExpected {
                call: "save_search_result",
                reason: "the command being served is not a SEARCH with RETURN (SAVE)",
            });
        };
        saving.clear();
        saving.extend(uids.into_iter().filter(|&u| u != 0));
        saving.sort_unstable();
        saving.dedup();
        Ok(())
    }

    /// SEARCHRES (RFC 5182): the UIDs saved by the last successful `SEARCH RETURN (SAVE)`,
    /// ascending, which a `$` in the command being served refers to ([`SequenceSet::Saved`]
    /// in the parsed command). Empty after SELECT, EXAMINE, CLOSE and UNSELECT. Resolve them
    /// against the messages the mailbox still has: UIDs of expunged messages match nothing
    /// (RFC 5182 section 2.1), and an empty result is a valid set that matches nothing
    /// (`FETCH $` then answers just `OK`).
    pub fn search_result(&self) -> &[u32] {
        &self.saved_search
    }

    fn flush_queue(&mut self, expunge_allowed: bool) {
        let modseq = self.enabled.condstore || self.enabled.qresync;
        let mut buf = BytesMut::new();
        while let Some(u) = self.queue.front() {
            if u.is_expunge() && !expunge_allowed {
                break;
            }
            u.encode(modseq, &mut buf);
            self.queue.pop_front();
        }
        self.write(&buf);
    }

    /// The next event to act on, or `None` when the machine needs more input or waits for
    /// the application's answer to the previous event.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if self.closed || self.held.is_some() {
                return None;
            }
            match self.mode.clone() {
                Mode::Waiting(_) => return None,
                Mode::Command => match self.frame_command() {
                    Step::Event(e) => return Some(*e),
                    Step::NeedInput => return None,
                    Step::Again => {}
                },
                Mode::DiscardLine => {
                    let Some(i) = memchr::memchr(b'\n', &self.input) else {
                        self.input.clear();
                        return None;
                    };
                    self.input.advance(i + 1);
                    self.scan = 0;
                    self.mode = Mode::Command;
                }
                Mode::DiscardLiteral { remaining } => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(self.input.len());
                    self.input.advance(n);
                    let left = remaining - n as u64;
                    if left > 0 {
                        self.mode = Mode::DiscardLiteral { remaining: left };
                        return None;
                    }
                    self.mode = Mode::Command;
                    self.acc = None;
                    // The rest of the refused command: skip lines while they announce more
                    // non-synchronising literals.
                    match self.take_line() {
                        Line::Complete(line) => match literal_at_end(&line) {
                            Ok(Some(h)) if !h.sync => {
                                self.mode = Mode::DiscardLiteral { remaining: h.len };
                            }
                            _ => {}
                        },
                        Line::Partial => {
                            self.mode = Mode::DiscardLine;
                            return None;
                        }
                        Line::TooLong => self.mode = Mode::DiscardLine,
                    }
                }
                Mode::AuthLine { tag } => match self.take_line() {
                    Line::Partial => return None,
                    Line::TooLong => {
                        self.mode = Mode::DiscardLine;
                        self.bad(&tag, "Authentication data line too long");
                        return Some(Event::AuthAborted);
                    }
                    Line::Complete(mut line) => {
                        line.extend_from_slice(CRLF);
                        match parse::authenticate_data(&line, &self.parser_options()) {
                            Ok((_, parse::AuthenticateData::Cancel)) => {
                                self.mode = Mode::Command;
                                self.write_status(&tag, &Status::bad("Authentication cancelled"));
                                return Some(Event::AuthAborted);
                            }
                            Ok((_, parse::AuthenticateData::Response(data))) => {
                                self.mode = Mode::Waiting(Wait::Auth { tag });
                                return Some(Event::AuthData(Secret::new(data)));
                            }
                            Err(_) => {
                                self.mode = Mode::Command;
                                self.bad(&tag, "Invalid base64 in authentication data");
                                return Some(Event::AuthAborted);
                            }
                        }
                    }
                },
                Mode::AppendBody { remaining } => {
                    if self.input.is_empty() {
                        return None;
                    }
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(self.input.len());
                    let chunk = self.input.split_to(n).freeze();
                    let left = remaining - n as u64;
                    self.mode = if left == 0 {
                        let tag = self.current_tag();
                        Mode::AppendTrailer { tag }
                    } else {
                        Mode::AppendBody { remaining: left }
                    };
                    self.scan = 0;
                    return Some(Event::AppendChunk(chunk));
                }
                Mode::AppendTrailer { tag } => match self.take_line() {
                    Line::Partial => return None,
                    Line::TooLong => {
                        self.mode = Mode::DiscardLine;
                        self.bad(&tag, "MULTIAPPEND and CATENATE are not supported");
                        return Some(Event::AppendAborted);
                    }
                    Line::Complete(line) => {
                        // RFC 6855 `UTF8 (~{n}`: the message literal is followed by `)`.
                        let rest = if self.append_utf8 {
                            match line.strip_prefix(b")") {
                                Some(rest) => rest,
                                None => {
                                    self.mode = Mode::Command;
                                    self.bad(&tag, "Expected ')' after the UTF8 message literal");
                                    return Some(Event::AppendAborted);
                                }
                            }
                        } else {
                            &line[..]
                        };
                        if rest.is_empty() {
                            self.mode = Mode::Waiting(Wait::AppendEnd { tag });
                            return Some(Event::AppendEnd);
                        }
                        self.mode = Mode::Command;
                        if let Ok(Some(h)) = literal_at_end(rest)
                            && !h.sync
                        {
                            self.mode = Mode::DiscardLiteral { remaining: h.len };
                        }
                        self.bad(&tag, "MULTIAPPEND and CATENATE are not supported");
                        return Some(Event::AppendAborted);
                    }
                },
                Mode::Idle { tag } => match self.take_line() {
                    Line::Partial => return None,
                    Line::TooLong => {
                        self.mode = Mode::DiscardLine;
                        self.bad(&tag, "Expected DONE");
                        return Some(Event::IdleDone);
                    }
                    Line::Complete(mut line) => {
                        self.mode = Mode::Command;
                        line.extend_from_slice(CRLF);
                        if parse::idle_done(&line).is_ok() {
                            self.flush_queue(true);
                            self.write_status(&tag, &Status::ok("IDLE terminated"));
                        } else {
                            self.bad(&tag, "Expected DONE");
                        }
                        return Some(Event::IdleDone);
                    }
                },
            }
        }
    }

    fn current_tag(&self) -> String {
        match &self.mode {
            Mode::Waiting(
                Wait::Command { tag, .. }
                | Wait::Login { tag }
                | Wait::Auth { tag }
                | Wait::AppendDecision { tag, .. }
                | Wait::AppendEnd { tag },
            )
            | Mode::AuthLine { tag }
            | Mode::AppendTrailer { tag }
            | Mode::Idle { tag } => tag.clone(),
            _ => self.append_tag.clone(),
        }
    }

    /// Takes one line (without its CRLF) from the input.
    fn take_line(&mut self) -> Line {
        let from = self.scan.min(self.input.len());
        match memchr::memchr(b'\n', self.input.get(from..).unwrap_or_default()) {
            Some(i) if from + i > self.config.limits.max_line + 1 => {
                // A whole over-long line arrived at once: treated like one arriving in
                // pieces. The LF stays for DiscardLine to consume.
                self.too_long_tag = tag_of(&self.input);
                self.input.advance(from + i);
                self.scan = 0;
                Line::TooLong
            }
            Some(i) => {
                let mut line = self.input.split_to(from + i + 1);
                self.scan = 0;
                line.truncate(line.len() - 1);
                if line.last() == Some(&b'\r') {
                    line.truncate(line.len() - 1);
                }
                Line::Complete(line)
            }
            None => {
                self.scan = self.input.len();
                // The line may have `max_line` bytes before its CRLF.
                if self.input.len() > self.config.limits.max_line + 1 {
                    self.too_long_tag = tag_of(&self.input);
                    self.input.clear();
                    self.scan = 0;
                    Line::TooLong
                } else {
                    Line::Partial
                }
            }
        }
    }

    fn frame_command(&mut self) -> Step {
        // Finish a literal being collected into the current message.
        if let Some(acc) = &mut self.acc
            && acc.literal_remaining > 0
        {
            if self.input.is_empty() {
                return Step::NeedInput;
            }
            let n = usize::try_from(acc.literal_remaining)
                .unwrap_or(usize::MAX)
                .min(self.input.len());
            acc.msg.extend_from_slice(&self.input.split_to(n));
            acc.literal_remaining -= n as u64;
            self.scan = 0;
            return if acc.literal_remaining > 0 {
                Step::NeedInput
            } else {
                Step::Again
            };
        }
        let line = match self.take_line() {
            Line::Partial => return Step::NeedInput,
            Line::TooLong => {
                let tag = match self.acc.take() {
                    Some(a) => tag_of(&a.msg),
                    None => self.too_long_tag.take(),
                };
                self.mode = Mode::DiscardLine;
                self.bad(tag.as_deref().unwrap_or("*"), "Command line too long");
                return Step::Again;
            }
            Line::Complete(line) => line,
        };
        if self.acc.is_none() && line.is_empty() {
            // Stray empty lines (e.g. an extra CRLF after DONE) are ignored.
            return Step::Again;
        }
        let mut acc = self.acc.take().unwrap_or_default();
        match literal_at_end(&line) {
            Err(TooLarge) => {
                acc.msg.extend_from_slice(&line);
                let tag = tag_of(&acc.msg).unwrap_or_else(|| "*".into());
                self.bad(&tag, "Literal size is not a valid number");
                self.write(b"* BYE [TOOBIG] Cannot resynchronise after an invalid literal\r\n");
                self.close();
                Step::Again
            }
            Ok(Some(h)) => {
                let start = acc.msg.len();
                acc.msg.extend_from_slice(&line);
                acc.msg.extend_from_slice(CRLF);
                if let Some(step) = self.try_append(&acc.msg, h) {
                    return step;
                }
                acc.msg.truncate(start);
                self.literal_in_command(acc, &line, h)
            }
            Ok(None) => {
                acc.msg.extend_from_slice(&line);
                acc.msg.extend_from_slice(CRLF);
                let msg = acc.msg.freeze();
                self.dispatch(msg)
            }
        }
    }

    /// A line of an `APPEND` ended in a literal announcement: if it is the message literal
    /// (the crate parser reads a complete APPEND prefix), start streaming the message.
    /// `None` when the literal is an argument (a mailbox name sent as a literal) or the
    /// command is not an APPEND.
    fn try_append(&mut self, msg: &[u8], h: LiteralHeader) -> Option<Step> {
        let tag = tag_of(msg)?;
        if command_word(msg.get(tag.len()..).unwrap_or_default()) != ("APPEND".into(), false) {
            return None;
        }
        match parse::append_prefix(msg, &self.parser_options()) {
            Ok(prefix) => Some(self.start_append(tag, prefix)),
            // The parser wanted the literal's bytes: the literal is an argument.
            Err(ParseError::Failed { position, .. }) if position >= msg.len() => None,
            Err(e) => {
                if !matches!(self.state, State::Authenticated | State::Selected { .. }) {
                    self.bad(&tag, "APPEND is not valid in this state");
                } else {
                    self.bad(&tag, &parse_error_text(&e));
                }
                if !h.sync && !self.closed {
                    self.mode = Mode::DiscardLiteral { remaining: h.len };
                }
                Some(Step::Again)
            }
        }
    }

    /// A literal inside a command other than an APPEND message.
    fn literal_in_command(&mut self, mut acc: Accum, line: &[u8], h: LiteralHeader) -> Step {
        let limits = &self.config.limits;
        let total = acc.msg.len() as u64 + line.len() as u64 + 2 + h.len;
        let over = h.len > limits.max_literal || total > limits.max_command as u64;
        let nonsync_over = !h.sync
            && self.config.non_sync_literals != NonSyncLiterals::Plus
            && h.len > LITERAL_MINUS_MAX;
        if over || nonsync_over {
            acc.msg.extend_from_slice(line);
            let tag = tag_of(&acc.msg).unwrap_or_else(|| "*".into());
            self.bad_toobig(&tag, h);
            return Step::Again;
        }
        acc.msg.extend_from_slice(line);
        acc.msg.extend_from_slice(CRLF);
        acc.literal_remaining = h.len;
        if h.sync {
            self.write(b"+ Ready for literal data\r\n");
        }
        self.acc = Some(acc);
        Step::Again
    }

    /// Refuses a literal with `BAD [TOOBIG]`; skips a non-synchronising one, or closes the
    /// connection when it is too big even to skip.
    fn bad_toobig(&mut self, tag: &str, h: LiteralHeader) {
        self.write_status(tag, &Status::bad("Literal too large").with_code("TOOBIG"));
        self.count_bad();
        if !h.sync && !self.closed {
            if h.len <= self.config.limits.max_append {
                self.mode = Mode::DiscardLiteral { remaining: h.len };
            } else {
                self.write(b"* BYE [TOOBIG] Literal too large to skip\r\n");
                self.close();
            }
        }
    }

    fn parser_options(&self) -> ParserOptions {
        ParserOptions {
            utf8_mailboxes: self.enabled.utf8_accept || self.enabled.imap4rev2,
            // The framer already holds lines to `max_line` bytes before CRLF; the parser
            // counts the CR (and the LF) in.
            max_line_len: self.config.limits.max_line.saturating_add(2),
            ..ParserOptions::default()
        }
    }

    fn start_append(&mut self, tag: String, prefix: parse::AppendPrefix) -> Step {
        let h = prefix.literal;
        if !matches!(self.state, State::Authenticated | State::Selected { .. }) {
            self.write_status(&tag, &Status::bad("APPEND is not valid in this state"));
            self.count_bad();
            if !h.sync && !self.closed {
                self.mode = Mode::DiscardLiteral { remaining: h.len };
            }
            return Step::Again;
        }
        let nonsync_over = !h.sync
            && self.config.non_sync_literals != NonSyncLiterals::Plus
            && h.len > LITERAL_MINUS_MAX;
        if h.len > self.config.limits.max_append || nonsync_over {
            if h.sync {
                self.write_status(&tag, &Status::no("Message too large").with_code("TOOBIG"));
            } else {
                self.bad_toobig(&tag, h);
            }
            return Step::Again;
        }
        self.append_tag = tag.clone();
        self.append_utf8 = prefix.utf8;
        self.mode = Mode::Waiting(Wait::AppendDecision {
            tag: tag.clone(),
            size: h.len,
            sync: h.sync,
        });
        ev(Event::AppendStart {
            tag,
            mailbox: prefix.mailbox,
            flags: prefix.flags,
            date: prefix.date,
            size: h.len,
            binary: h.binary,
            utf8: prefix.utf8,
        })
    }

    fn dispatch(&mut self, msg: Bytes) -> Step {
        let (tag, parsed) = match parse::command_bytes(&msg, &self.parser_options()) {
            Ok((_, command)) => (command.tag.as_str().to_string(), Ok(command)),
            Err(ParseError::Failed {
                tag: Some(tag),
                reason,
                ..
            }) => (tag.as_str().to_string(), Err(reason)),
            Err(_) => {
                self.write(b"* BAD Invalid tag\r\n");
                self.count_bad();
                return Step::Again;
            }
        };
        if self.state == State::NotAuthenticated {
            self.unauth_commands += 1;
            if self.unauth_commands > self.config.limits.max_unauthenticated_commands {
                self.write(b"* BYE Too many commands before authentication\r\n");
                self.close();
                return Step::Again;
            }
        }
        let command = match parsed {
            Ok(command) => command,
            Err(reason) => {
                let text = self.unparsable_text(&tag, &msg, reason);
                self.bad(&tag, &text);
                return Step::Again;
            }
        };
        let full_name = command.body.name();
        let (name, uid) = match full_name.strip_prefix("UID ") {
            Some(n) => (n, true),
            None => (full_name, false),
        };
        let authed = matches!(self.state, State::Authenticated | State::Selected { .. });
        let selected = matches!(self.state, State::Selected { .. });
        match &command.body {
            CommandBody::Capability => {
                let caps = self.capabilities().join(" ");
                self.write(format!("* CAPABILITY {caps}\r\n").as_bytes());
                self.complete_internal(&tag, "CAPABILITY completed");
                Step::Again
            }
            CommandBody::Logout => {
                self.write(b"* BYE IMAP4rev2 server terminating connection\r\n");
                self.write_status(&tag, &Status::ok("LOGOUT completed"));
                self.close();
                ev(Event::Logout)
            }
            CommandBody::Noop if !selected => {
                self.complete_internal(&tag, "NOOP completed");
                Step::Again
            }
            CommandBody::StartTls => {
                if self.tls {
                    self.bad(&tag, "TLS is already active");
                } else if self.state != State::NotAuthenticated {
                    self.bad(&tag, "STARTTLS is only valid before authentication");
                } else if !self.config.starttls {
                    self.bad(&tag, "STARTTLS is not available");
                } else {
                    self.write_status(&tag, &Status::ok("Proceed with TLS negotiation"));
                    // Anything pipelined after STARTTLS is plaintext injection: drop it.
                    self.input.clear();
                    self.scan = 0;
                    self.mode = Mode::Waiting(Wait::Tls);
                    return ev(Event::StartTls);
                }
                Step::Again
            }
            CommandBody::Login { username, password } => {
                if authed {
                    self.bad(&tag, "Already authenticated");
                    return Step::Again;
                }
                if self.login_disabled() {
                    self.write_status(
                        &tag,
                        &Status::no("LOGIN is disabled before STARTTLS")
                            .with_code("PRIVACYREQUIRED"),
                    );
                    return Step::Again;
                }
                self.mode = Mode::Waiting(Wait::Login { tag: tag.clone() });
                ev(Event::Login {
                    tag,
                    username: username.clone(),
                    password: Secret::new(password.clone()),
                })
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                if authed {
                    self.bad(&tag, "Already authenticated");
                    return Step::Again;
                }
                let mechanism = mechanism.as_str().to_ascii_uppercase();
                if !self
                    .config
                    .sasl_mechanisms
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(&mechanism))
                {
                    self.write_status(&tag, &Status::no("Unsupported authentication mechanism"));
                    return Step::Again;
                }
                if self.login_disabled() && config::is_plaintext_mechanism(&mechanism) {
                    self.write_status(
                        &tag,
                        &Status::no("Plaintext authentication is disabled before STARTTLS")
                            .with_code("PRIVACYREQUIRED"),
                    );
                    return Step::Again;
                }
                self.mode = Mode::Waiting(Wait::Auth { tag: tag.clone() });
                ev(Event::AuthStart {
                    tag,
                    mechanism,
                    initial: initial_response.clone().map(Secret::new),
                })
            }
            CommandBody::Enable(caps) => {
                if self.state != State::Authenticated {
                    self.bad(&tag, "ENABLE is only valid in the authenticated state");
                    return Step::Again;
                }
                let names: Vec<String> = caps
                    .iter()
                    .map(|c| c.0.as_str().to_ascii_uppercase())
                    .collect();
                self.enable(&tag, names)
            }
            CommandBody::Idle => {
                if !authed {
                    self.bad(&tag, "IDLE requires authentication");
                    return Step::Again;
                }
                self.write(b"+ idling\r\n");
                self.flush_queue(true);
                self.mode = Mode::Idle { tag: tag.clone() };
                ev(Event::Idle { tag })
            }
            CommandBody::Compress(mechanism) => {
                if !authed || !self.config.compress {
                    self.bad(&tag, "COMPRESS is not available");
                } else if !mechanism.eq_ignore_ascii_case("DEFLATE") {
                    self.bad(&tag, "Expected COMPRESS DEFLATE");
                } else if self.compress_active {
                    self.write_status(
                        &tag,
                        &Status::no("Compression is already active").with_code("COMPRESSIONACTIVE"),
                    );
                } else {
                    self.write_status(&tag, &Status::ok("DEFLATE active"));
                    self.mode = Mode::Waiting(Wait::Compress);
                    return ev(Event::StartCompression);
                }
                Step::Again
            }
            _ => {
                let Some(class) = command_class(name, uid) else {
                    self.bad(&tag, "Unknown command");
                    return Step::Again;
                };
                if let Some(text) = self.state_error(class) {
                    self.bad(&tag, text);
                    return Step::Again;
                }
                let searchres = searchres_use(&command.body);
                if searchres != SearchResUse::None && !self.searchres_advertised() {
                    self.bad(&tag, "SEARCHRES is not supported");
                    return Step::Again;
                }
                // A refused SELECT leaves the mailbox selected (no [CLOSED]); a refused
                // FETCH still lets the queued updates out first, as an accepted one would.
                let qresync_bad = self.qresync_error(&command.body);
                if let Some(text) = qresync_bad
                    && matches!(name, "SELECT" | "EXAMINE")
                {
                    self.bad(&tag, text);
                    return Step::Again;
                }
                if matches!(name, "SELECT" | "EXAMINE") && selected {
                    // RFC 9051 6.3.2 / RFC 7162 3.2.11: the old mailbox is closed first.
                    self.queue.clear();
                    self.write(b"* OK [CLOSED] Previous mailbox closed\r\n");
                }
                if selected && !matches!(name, "SELECT" | "EXAMINE" | "CLOSE" | "UNSELECT") {
                    // Updates queued before this command go out before its responses, in the
                    // order the application learnt them (a MOVE's own EXPUNGEs must not
                    // overtake an earlier one). EXPUNGE/VANISHED stay held during FETCH,
                    // STORE and SEARCH (RFC 9051 section 7.5.1).
                    self.flush_queue(uid || !matches!(name, "FETCH" | "STORE" | "SEARCH"));
                }
                if let Some(text) = qresync_bad {
                    self.bad(&tag, text);
                    return Step::Again;
                }
                self.saving = None;
                if searchres == SearchResUse::Save {
                    self.saving = Some(Vec::new());
                }
                self.mode = Mode::Waiting(Wait::Command {
                    tag: tag.clone(),
                    name: name.to_string(),
                    uid,
                });
                ev(Event::Command(Request {
                    tag: tag.clone(),
                    name: name.to_string(),
                    uid,
                    args_at: tag.len() + 1 + full_name.len(),
                    raw: msg,
                    command,
                }))
            }
        }
    }

    /// `ENABLE` (RFC 5161): turns on what is advertised and known, answers `* ENABLED`.
    fn enable(&mut self, tag: &str, names: Vec<String>) -> Step {
        let advertised = self.capabilities();
        let mut newly = Vec::new();
        for n in names {
            if !advertised.iter().any(|a| a.eq_ignore_ascii_case(&n)) {
                continue;
            }
            let flag = match n.as_str() {
                "IMAP4REV2" => &mut self.enabled.imap4rev2,
                "CONDSTORE" => &mut self.enabled.condstore,
                "QRESYNC" => &mut self.enabled.qresync,
                "UTF8=ACCEPT" => &mut self.enabled.utf8_accept,
                _ => continue,
            };
            if !*flag {
                *flag = true;
                let shown = if n == "IMAP4REV2" {
                    "IMAP4rev2".to_string()
                } else {
                    n
                };
                newly.push(shown);
            }
        }
        if self.enabled.qresync {
            self.enabled.condstore = true;
        }
        let mut line = String::from("* ENABLED");
        for n in &newly {
            line.push(' ');
            line.push_str(n);
        }
        line.push_str("\r\n");
        self.write(line.as_bytes());
        self.write_status(tag, &Status::ok("ENABLE completed"));
        if newly.is_empty() {
            Step::Again
        } else {
            ev(Event::Enabled(newly))
        }
    }

    /// Why a command of `class` is not valid in the current state, if it is not.
    fn state_error(&self, class: Class) -> Option<&'static str> {
        let authed = matches!(self.state, State::Authenticated | State::Selected { .. });
        let allowed = match class {
            Class::Any => true,
            Class::Auth => authed,
            Class::Selected => matches!(self.state, State::Selected { .. }),
        };
        match (allowed, authed) {
            (true, _) => None,
            (false, false) => Some("Authenticate first"),
            (false, true) => Some("No mailbox selected"),
        }
    }

    /// RFC 7162 sections 3.2.5 and 3.2.6: the `QRESYNC` SELECT/EXAMINE parameter and the
    /// `VANISHED` FETCH modifier are `BAD` unless the client sent `ENABLE QRESYNC`.
    fn qresync_error(&self, body: &CommandBody) -> Option<&'static str> {
        if self.enabled.qresync {
            return None;
        }
        match body {
            CommandBody::Select { params, .. } | CommandBody::Examine { params, .. }
                if params.qresync.is_some() =>
            {
                Some("The QRESYNC parameter needs ENABLE QRESYNC first (RFC 7162)")
            }
            CommandBody::Fetch { modifiers, .. } if modifiers.vanished => {
                Some("The VANISHED modifier needs ENABLE QRESYNC first (RFC 7162)")
            }
            _ => None,
        }
    }

    /// The text of the `BAD` answering a command the crate parser rejected. The command
    /// word only picks the wording (and the state error, which RFC 9051 lets take
    /// precedence); the grammar is the parser's.
    fn unparsable_text(&self, tag: &str, msg: &[u8], reason: &'static str) -> String {
        let (name, uid) = command_word(msg.get(tag.len()..).unwrap_or_default());
        let authed = matches!(self.state, State::Authenticated | State::Selected { .. });
        match (name.as_str(), uid) {
            ("", _) => "Missing command".into(),
            ("IDLE", false) if !authed => "IDLE requires authentication".into(),
            ("CAPABILITY" | "LOGOUT" | "NOOP" | "STARTTLS" | "IDLE", false) => {
                format!("{name} takes no arguments")
            }
            ("LOGIN" | "AUTHENTICATE", false) if authed => "Already authenticated".into(),
            ("LOGIN", false) => "Expected LOGIN userid password".into(),
            ("AUTHENTICATE", false) if reason == "invalid base64" => {
                "Invalid base64 in initial response".into()
            }
            ("AUTHENTICATE", false) => "Expected AUTHENTICATE mechanism [initial-response]".into(),
            ("ENABLE", false) if self.state != State::Authenticated => {
                "ENABLE is only valid in the authenticated state".into()
            }
            ("ENABLE", false) => "Expected ENABLE capability...".into(),
            ("COMPRESS", false) if !authed || !self.config.compress => {
                "COMPRESS is not available".into()
            }
            ("COMPRESS", false) => "Expected COMPRESS DEFLATE".into(),
            (n, uid) => match command_class(n, uid) {
                None => "Unknown command".into(),
                Some(class) => match self.state_error(class) {
                    Some(text) => text.into(),
                    None => format!("Syntax error: {reason}"),
                },
            },
        }
    }

    fn complete_internal(&mut self, tag: &str, text: &str) {
        if matches!(self.state, State::Selected { .. }) {
            self.flush_queue(true);
        }
        self.write_status(tag, &Status::ok(text));
    }

    fn expect_wait(&self, call: &'static str) -> Result<Wait, Error> {
        match &self.mode {
            Mode::Waiting(w) => Ok(w.clone()),
            _ => Err(Error::NotExpected {
                call,
                reason: "no event is waiting for an answer",
            }),
        }
    }

    /// The tagged completion of the current event (a command, LOGIN, an AUTHENTICATE step,
    /// a refused APPEND or the end of an APPEND).
    pub fn reply(&mut self, status: Status) -> Result<(), Error> {
        let wait = self.expect_wait("reply")?;
        if self.literal_out.is_some() {
            return Err(Error::NotExpected {
                call: "reply",
                reason: "a literal response is still open",
            });
        }
        match wait {
            Wait::Command { tag, name, uid } => {
                if let Some(found) = self.saving.take() {
                    // RFC 5182 section 2.1.
                    match status.kind {
                        StatusKind::Ok => self.saved_search = found,
                        StatusKind::No => self.saved_search.clear(),
                        StatusKind::Bad => {}
                    }
                }
                let holds_expunge = !uid && matches!(name.as_str(), "FETCH" | "STORE" | "SEARCH");
                let was_selected = matches!(self.state, State::Selected { .. });
                match (name.as_str(), status.kind) {
                    ("SELECT" | "EXAMINE", StatusKind::Ok) => {
                        let ro = name == "EXAMINE"
                            || status
                                .code
                                .as_deref()
                                .is_some_and(|c| c.eq_ignore_ascii_case("READ-ONLY"));
                        self.state = State::Selected { read_only: ro };
                    }
                    ("SELECT" | "EXAMINE", _) | ("CLOSE" | "UNSELECT", StatusKind::Ok) => {
                        self.state = State::Authenticated;
                    }
                    _ => {}
                }
                if matches!(name.as_str(), "SELECT" | "EXAMINE")
                    || (matches!(name.as_str(), "CLOSE" | "UNSELECT")
                        && status.kind == StatusKind::Ok)
                {
                    // RFC 5182 section 2.1: a new mailbox (or none) starts with an empty `$`.
                    self.saved_search.clear();
                }
                if was_selected && matches!(self.state, State::Selected { .. }) {
                    self.flush_queue(!holds_expunge);
                } else {
                    // A new mailbox (or none): updates about the old one are moot.
                    self.queue.clear();
                }
                self.write_status(&tag, &status);
                if status.kind == StatusKind::Bad {
                    self.count_bad();
                }
                self.mode = Mode::Command;
            }
            Wait::Login { tag } | Wait::Auth { tag } => {
                self.mode = Mode::Command;
                match status.kind {
                    StatusKind::Ok => {
                        self.state = State::Authenticated;
                        self.deadline = self.clock + self.config.autologout;
                        let mut status = status;
                        if status.code.is_none() {
                            status.code =
                                Some(format!("CAPABILITY {}", self.capabilities().join(" ")));
                        }
                        self.write_status(&tag, &status);
                    }
                    _ => {
                        self.auth_failures += 1;
                        let close = self.auth_failures >= self.config.limits.max_auth_failures;
                        self.held = Some(Held {
                            until: self.clock + self.config.auth_failure_delay,
                            out: BytesMut::new(),
                            close_after: close,
                        });
                        self.write_status(&tag, &status);
                        if close {
                            self.write(b"* BYE Too many authentication failures\r\n");
                            self.state = State::Logout;
                            self.input.clear();
                        }
                    }
                }
            }
            Wait::AppendDecision { tag, size, sync } => {
                self.write_status(&tag, &status);
                self.mode = if sync {
                    Mode::Command
                } else {
                    Mode::DiscardLiteral { remaining: size }
                };
            }
            Wait::AppendEnd { tag } => {
                if matches!(self.state, State::Selected { .. }) {
                    self.flush_queue(true);
                }
                self.write_status(&tag, &status);
                self.mode = Mode::Command;
            }
            Wait::Tls | Wait::Compress => {
                return Err(Error::NotExpected {
                    call: "reply",
                    reason: "waiting for tls_established or compression_started",
                });
            }
        }
        Ok(())
    }

    /// Sends a SASL challenge (`+ base64`) in an AUTHENTICATE exchange.
    pub fn auth_challenge(&mut self, challenge: &[u8]) -> Result<(), Error> {
        match self.expect_wait("auth_challenge")? {
            Wait::Auth { tag } => {
                let b64 = base64::engine::general_purpose::STANDARD.encode(challenge);
                self.write(format!("+ {b64}\r\n").as_bytes());
                self.mode = Mode::AuthLine { tag };
                Ok(())
            }
            _ => Err(Error::NotExpected {
                call: "auth_challenge",
                reason: "no AUTHENTICATE in progress",
            }),
        }
    }

    /// Accepts the APPEND announced by [`Event::AppendStart`]: its message follows as
    /// [`Event::AppendChunk`]s and an [`Event::AppendEnd`].
    pub fn accept_append(&mut self) -> Result<(), Error> {
        match self.expect_wait("accept_append")? {
            Wait::AppendDecision { size, sync, .. } => {
                if sync {
                    self.write(b"+ Ready for literal data\r\n");
                }
                self.mode = if size == 0 {
                    Mode::AppendTrailer {
                        tag: self.append_tag.clone(),
                    }
                } else {
                    Mode::AppendBody { remaining: size }
                };
                Ok(())
            }
            _ => Err(Error::NotExpected {
                call: "accept_append",
                reason: "no APPEND is waiting",
            }),
        }
    }

    /// Call after the TLS handshake that followed [`Event::StartTls`].
    pub fn tls_established(&mut self) -> Result<(), Error> {
        match self.expect_wait("tls_established")? {
            Wait::Tls => {
                self.tls = true;
                self.input.clear();
                self.scan = 0;
                self.mode = Mode::Command;
                Ok(())
            }
            _ => Err(Error::NotExpected {
                call: "tls_established",
                reason: "no STARTTLS in progress",
            }),
        }
    }

    /// Call once the stream is wrapped in DEFLATE after [`Event::StartCompression`]. Returns
    /// input that arrived after the command and is therefore already compressed: decompress
    /// it and [`feed`](Self::feed) the result.
    pub fn compression_started(&mut self) -> Result<Bytes, Error> {
        match self.expect_wait("compression_started")? {
            Wait::Compress => {
                self.compress_active = true;
                self.scan = 0;
                self.mode = Mode::Command;
                Ok(self.input.split().freeze())
            }
            _ => Err(Error::NotExpected {
                call: "compression_started",
                reason: "no COMPRESS in progress",
            }),
        }
    }

    fn expect_command(&self, call: &'static str) -> Result<(), Error> {
        match &self.mode {
            Mode::Waiting(Wait::Command { .. }) => Ok(()),
            _ => Err(Error::NotExpected {
                call,
                reason: "no command is being served",
            }),
        }
    }

    /// Sends an untagged response `* <line>` for the command being served. `line` must not
    /// contain CR or LF (use [`begin_literal`](Self::begin_literal) for literals).
    pub fn send_untagged(&mut self, line: &[u8]) -> Result<(), Error> {
        self.expect_command("send_untagged")?;
        if self.literal_out.is_some() {
            return Err(Error::NotExpected {
                call: "send_untagged",
                reason: "a literal response is still open",
            });
        }
        if line.iter().any(|&b| b == b'\r' || b == b'\n') {
            return Err(Error::InvalidData("CR or LF in an untagged line"));
        }
        self.write(b"* ");
        self.write(line);
        self.write(CRLF);
        Ok(())
    }

    /// Writes pre-encoded response bytes (e.g. from the crate's encoder) for the command
    /// being served. The bytes must be complete responses ending in CRLF.
    pub fn send_encoded(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.expect_command("send_encoded")?;
        if self.literal_out.is_some() {
            return Err(Error::NotExpected {
                call: "send_encoded",
                reason: "a literal response is still open",
            });
        }
        if !bytes.is_empty() && !bytes.ends_with(CRLF) {
            return Err(Error::InvalidData("encoded responses must end in CRLF"));
        }
        self.write(bytes);
        Ok(())
    }

    /// Sends a typed untagged response (data or status) for the command being served,
    /// encoded by [`crate::encode`] (UTF-8 mailbox names once the client enabled UTF-8).
    pub fn send_response(&mut self, response: &Response) -> Result<(), Error> {
        if let Response::Status(s) = response
            && s.tag.is_some()
        {
            return Err(Error::InvalidData("tagged responses go through reply()"));
        }
        let opts =
            EncodeOptions::default().with_utf8(self.enabled.utf8_accept || self.enabled.imap4rev2);
        let mut buf = Vec::new();
        encode::response_with(response, &opts, &mut buf);
        self.send_encoded(&buf)
    }

    /// Starts a FETCH response whose last item is a literal streamed in chunks
    /// (`* 5 FETCH (UID 9 BODY[] {len}`): follow with [`literal_chunk`](Self::literal_chunk)s
    /// totalling `len` bytes and [`end_literal`](Self::end_literal) with suffix `)`.
    pub fn begin_fetch_literal(
        &mut self,
        seq: NonZeroU32,
        items_before: &[FetchAttr],
        item: &FetchLiteralItem,
        len: u64,
    ) -> Result<(), Error> {
        self.expect_command("begin_fetch_literal")?;
        if self.literal_out.is_some() {
            return Err(Error::NotExpected {
                call: "begin_fetch_literal",
                reason: "a literal response is still open",
            });
        }
        let mut buf = Vec::new();
        encode::fetch_literal_head(seq, items_before, item, len, &mut buf);
        self.write(&buf);
        self.literal_out = Some((len, len));
        Ok(())
    }

    /// Starts an untagged response that ends in a literal streamed in chunks:
    /// writes `* <prefix>{len}\r\n` (e.g. prefix `12 FETCH (BODY[] `). Follow with
    /// [`literal_chunk`](Self::literal_chunk)s totalling `len` bytes and
    /// [`end_literal`](Self::end_literal).
    pub fn begin_literal(&mut self, prefix: &[u8], len: u64) -> Result<(), Error> {
        self.expect_command("begin_literal")?;
        if self.literal_out.is_some() {
            return Err(Error::NotExpected {
                call: "begin_literal",
                reason: "a literal response is still open",
            });
        }
        if prefix.iter().any(|&b| b == b'\r' || b == b'\n') {
            return Err(Error::InvalidData("CR or LF in a literal prefix"));
        }
        self.write(b"* ");
        self.write(prefix);
        self.write(format!("{{{len}}}\r\n").as_bytes());
        self.literal_out = Some((len, len));
        Ok(())
    }

    /// The next bytes of the literal opened by [`begin_literal`](Self::begin_literal).
    pub fn literal_chunk(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let Some((announced, remaining)) = self.literal_out else {
            return Err(Error::NotExpected {
                call: "literal_chunk",
                reason: "no literal response is open",
            });
        };
        let n = chunk.len() as u64;
        if n > remaining {
            return Err(Error::LiteralLength {
                announced,
                remaining: 0,
            });
        }
        self.write(chunk);
        self.literal_out = Some((announced, remaining - n));
        Ok(())
    }

    /// Closes the literal response: writes `suffix` (e.g. `)`) and CRLF.
    pub fn end_literal(&mut self, suffix: &[u8]) -> Result<(), Error> {
        match self.literal_out {
            Some((_, 0)) => {}
            Some((announced, remaining)) => {
                return Err(Error::LiteralLength {
                    announced,
                    remaining,
                });
            }
            None => {
                return Err(Error::NotExpected {
                    call: "end_literal",
                    reason: "no literal response is open",
                });
            }
        }
        if suffix.iter().any(|&b| b == b'\r' || b == b'\n') {
            return Err(Error::InvalidData("CR or LF in a literal suffix"));
        }
        self.literal_out = None;
        self.write(suffix);
        self.write(CRLF);
        Ok(())
    }

    /// Ends the connection from the server side: writes `* BYE <text>` and closes.
    pub fn shutdown(&mut self, text: &str) {
        if self.closed {
            return;
        }
        self.held = None;
        let text = clean_text(text);
        self.write(format!("* BYE {text}\r\n").as_bytes());
        self.close();
    }
}

#[derive(Debug)]
enum Line {
    Complete(BytesMut),
    Partial,
    TooLong,
}

#[derive(Debug)]
enum Step {
    Event(Box<Event>),
    NeedInput,
    Again,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Any,
    Auth,
    Selected,
}

/// States in which the commands the application serves are valid (RFC 9051 section 6 and
/// the extensions' RFCs).
fn command_class(name: &str, uid: bool) -> Option<Class> {
    if uid {
        return matches!(
            name,
            "FETCH" | "STORE" | "SEARCH" | "COPY" | "MOVE" | "EXPUNGE"
        )
        .then_some(Class::Selected);
    }
    Some(match name {
        "ID" => Class::Any,
        "NOOP" | "CHECK" | "CLOSE" | "UNSELECT" | "EXPUNGE" | "SEARCH" | "FETCH" | "STORE"
        | "COPY" | "MOVE" => Class::Selected,
        "SELECT" | "EXAMINE" | "CREATE" | "DELETE" | "RENAME" | "SUBSCRIBE" | "UNSUBSCRIBE"
        | "LIST" | "LSUB" | "NAMESPACE" | "STATUS" | "GETQUOTA" | "GETQUOTAROOT" | "SETQUOTA"
        | "APPEND" => Class::Auth,
        _ => return None,
    })
}

/// The tag at the start of a message, if it is a valid tag followed by a space.
fn tag_of(msg: &[u8]) -> Option<String> {
    parse::first_tag(msg).map(|t| t.as_str().to_string())
}

/// The (upper-cased) command word after the tag, with `UID` folded in: `(name, uid)`.
///
/// Not a grammar: the crate parser decides whether a command is valid. This only picks the
/// wording of the `BAD` for a command the parser rejected (so that it can say
/// "Unknown command" or "No mailbox selected") and tells an APPEND line apart before its
/// message literal is read.
fn command_word(after_tag: &[u8]) -> (String, bool) {
    fn word(s: &[u8]) -> Option<(&[u8], &[u8])> {
        let s = s.strip_prefix(b" ")?;
        let n = s.iter().take_while(|b| is_atom_char(**b)).count();
        Some((s.get(..n)?, s.get(n..)?))
    }
    let Some((name, rest)) = word(after_tag) else {
        return (String::new(), false);
    };
    let name = String::from_utf8_lossy(name).to_ascii_uppercase();
    if name == "UID"
        && let Some((sub, _)) = word(rest)
        && !sub.is_empty()
    {
        return (String::from_utf8_lossy(sub).to_ascii_uppercase(), true);
    }
    (name, false)
}

/// A literal announcement whose length does not fit `number64`.
#[derive(Debug)]
struct TooLarge;

/// The literal announced at the end of `line` (without CRLF), by the crate's
/// [`parse::literal_announcement`]. `Err` for `{` digits `}` with a number too large to be a
/// length (the stream cannot be resynchronised after it).
fn literal_at_end(line: &[u8]) -> Result<Option<LiteralHeader>, TooLarge> {
    if let Some(h) = parse::literal_announcement(line) {
        return if h.len > i64::MAX as u64 {
            Err(TooLarge)
        } else {
            Ok(Some(h))
        };
    }
    let body = line.strip_suffix(b"}").unwrap_or_default();
    let body = body.strip_suffix(b"+").unwrap_or(body);
    let digits = body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let before = body.len() - digits;
    if digits > 0 && before > 0 && body.get(before - 1) == Some(&b'{') {
        return Err(TooLarge);
    }
    Ok(None)
}

/// The text of a `BAD` answering a command the parser rejected.
fn parse_error_text(e: &ParseError) -> String {
    match e {
        ParseError::Failed { reason, .. } => format!("Syntax error: {reason}"),
        _ => "Syntax error: incomplete command".to_string(),
    }
}

/// Response text without CR/LF (which would let data inject responses).
fn clean_text(s: &str) -> String {
    s.chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

fn ev(e: Event) -> Step {
    Step::Event(Box::new(e))
}

/// How a command uses SEARCHRES (RFC 5182).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SearchResUse {
    None,
    /// `SEARCH RETURN (SAVE ...)`.
    Save,
    /// `$` somewhere in a sequence set.
    Reference,
}

/// Whether `body` saves a search result or refers to one with `$`.
fn searchres_use(body: &CommandBody) -> SearchResUse {
    fn key_refers(k: &SearchKey) -> bool {
        match k {
            SearchKey::SequenceSet(s) | SearchKey::Uid(s) => *s == SequenceSet::Saved,
            SearchKey::Not(k) => key_refers(k),
            SearchKey::Or(a, b) => key_refers(a) || key_refers(b),
            SearchKey::And(ks) => ks.iter().any(key_refers),
            _ => false,
        }
    }
    match body {
        CommandBody::Search {
            return_options,
            criteria,
            ..
        } => {
            if return_options
                .as_ref()
                .is_some_and(|o| o.contains(&SearchReturnOption::Save))
            {
                SearchResUse::Save
            } else if criteria.iter().any(key_refers) {
                SearchResUse::Reference
            } else {
                SearchResUse::None
            }
        }
        CommandBody::Fetch { set, .. }
        | CommandBody::Store { set, .. }
        | CommandBody::Copy { set, .. }
        | CommandBody::Move { set, .. }
        | CommandBody::UidExpunge(set)
            if *set == SequenceSet::Saved =>
        {
            SearchResUse::Reference
        }
        _ => SearchResUse::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_announcements() {
        let h = literal_at_end(b"a LOGIN {5}").unwrap().unwrap();
        assert_eq!((h.len, h.sync, h.binary), (5, true, false));
        let h = literal_at_end(b"a APPEND x ~{12+}").unwrap().unwrap();
        assert_eq!((h.len, h.sync, h.binary), (12, false, true));
        assert!(literal_at_end(b"a NOOP").unwrap().is_none());
        assert!(literal_at_end(b"a {x}").unwrap().is_none());
        assert!(literal_at_end(b"a {}").unwrap().is_none());
        assert!(literal_at_end(b"a x}").unwrap().is_none());
        assert!(literal_at_end(b"a {99999999999999999999}").is_err());
        assert!(literal_at_end(b"a {99999999999999999999+}").is_err());
        assert!(literal_at_end(b"a {9999999999999999999}").is_err());
    }

    #[test]
    fn command_words() {
        assert_eq!(command_word(b" uid fetch 1"), ("FETCH".into(), true));
        assert_eq!(command_word(b" UID"), ("UID".into(), false));
        assert_eq!(command_word(b" Append {5}"), ("APPEND".into(), false));
        assert_eq!(command_word(b"\r\n"), (String::new(), false));
        assert_eq!(command_word(b" (x)"), (String::new(), false));
    }

    #[test]
    fn searchres_uses() {
        let use_of = |line: &[u8]| searchres_use(&parse::command(line).unwrap().1.body);
        assert_eq!(
            use_of(b"a SEARCH RETURN (MIN SAVE) ALL\r\n"),
            SearchResUse::Save
        );
        assert_eq!(
            use_of(b"a SEARCH NOT (OR 1 $)\r\n"),
            SearchResUse::Reference
        );
        assert_eq!(use_of(b"a UID MOVE $ x\r\n"), SearchResUse::Reference);
        assert_eq!(use_of(b"a UID EXPUNGE $\r\n"), SearchResUse::Reference);
        assert_eq!(use_of(b"a STORE $ +FLAGS (x)\r\n"), SearchResUse::Reference);
        assert_eq!(use_of(b"a SEARCH RETURN (ALL) 1:*\r\n"), SearchResUse::None);
        assert_eq!(use_of(b"a FETCH 1 FLAGS\r\n"), SearchResUse::None);
    }
}
