//! The server-side state machine: [`Connection`].
//!
//! The machine owns every protocol rule of RFC 5321 and its extensions; the application
//! only decides what the RFCs leave to policy (accept this sender, this recipient, this
//! message; check these credentials) by answering events with typed decisions.
//!
//! ```
//! use std::time::Instant;
//! use smtp_proto::server::{Config, Connection, Event, RcptDecision, MailDecision, MessageDecision};
//!
//! let now = Instant::now();
//! let mut conn = Connection::new(Config::mx("mx.example.org"), now);
//! conn.feed(b"HELO client.example\r\nMAIL FROM:<a@example.net>\r\n");
//! let mut out = Vec::new();
//! while let Some(ev) = conn.next_event() {
//!     match ev {
//!         Event::MailFrom { .. } => conn.reply(MailDecision::Accept).unwrap(),
//!         Event::RcptTo { .. } => conn.reply(RcptDecision::Accept).unwrap(),
//!         Event::DataEnd => conn.reply(MessageDecision::Accept).unwrap(),
//!         _ => {}
//!     }
//! }
//! while let Some(b) = conn.take_output() { out.extend_from_slice(&b); }
//! assert_eq!(out, b"220 mx.example.org ESMTP ready\r\n250 mx.example.org\r\n250 2.1.0 Ok\r\n");
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use crate::Secret;
use crate::encode;
use crate::error::Error;
use crate::parse;
use crate::types::{
    Body, Command, EnhancedCode, ForwardPath, HelloVerb, MailParams, RcptParams, Reply, ReversePath,
};

/// What kind of service the connection offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Relay / MX (RFC 5321): no authentication required.
    Relay,
    /// Message submission (RFC 6409): `MAIL` needs a successful `AUTH` first.
    Submission,
    /// LMTP (RFC 2033): `LHLO`, and one reply per accepted recipient after the message.
    Lmtp,
}

/// What to do with a bare LF or bare CR inside `DATA` (and a bare LF ending a command line).
///
/// Whatever the choice, only `CRLF . CRLF` ends a message: `LF . LF`, `CR . LF` and
/// `LF . CRLF` never do (the SMTP smuggling class of bugs, CVE-2023-51764).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BareLf {
    /// Refuse: a message containing a bare LF or a bare CR is rejected with `550 5.6.11`
    /// after its end, a command line ending in a bare LF gets `500 5.5.2`.
    Reject,
    /// Normalise: a bare LF in a message becomes CRLF in the delivered chunks (a bare CR is
    /// kept as it is), and a command line may end with LF alone.
    Normalize,
    /// Pass through: bare LFs and bare CRs are delivered unchanged and not looked for (as
    /// Postfix with `smtpd_forbid_bare_newline = no`, or crates.io `smtp-proto`), and a
    /// command line may end with LF alone. The fastest mode, since the message octets are
    /// only searched for `LF .`; but a relay that forwards such a message to a server which
    /// ends DATA at `LF . LF` is the smuggling setup, so prefer `Normalize` for relays.
    Accept,
}

/// Which ESMTP extensions are advertised and honoured.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Extensions {
    /// PIPELINING (RFC 2920). Default on.
    pub pipelining: bool,
    /// 8BITMIME (RFC 6152). Default on.
    pub eight_bit_mime: bool,
    /// SMTPUTF8 (RFC 6531). Default on.
    pub smtputf8: bool,
    /// ENHANCEDSTATUSCODES (RFC 2034): when on, replies carry `x.y.z` codes. Default on.
    pub enhanced_status_codes: bool,
    /// CHUNKING / BDAT (RFC 3030). Default on.
    pub chunking: bool,
    /// BINARYMIME (RFC 3030, needs `chunking`). Default on.
    pub binary_mime: bool,
    /// DSN (RFC 3461) parameters. Default on.
    pub dsn: bool,
    /// REQUIRETLS (RFC 8689), advertised only inside TLS. Default on.
    pub requiretls: bool,
    /// STARTTLS (RFC 3207): set it when the adapter has a TLS configuration. Default off.
    pub starttls: bool,
}

impl Default for Extensions {
    fn default() -> Self {
        Extensions {
            pipelining: true,
            eight_bit_mime: true,
            smtputf8: true,
            enhanced_status_codes: true,
            chunking: true,
            binary_mime: true,
            dsn: true,
            requiretls: true,
            starttls: false,
        }
    }
}

/// Limits on peer input; every one has a documented default.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest command line without CRLF (default 4096; RFC 5321's minimum is 510,
    /// extensions add parameters). Longer lines get `500 5.5.2` and are discarded as they
    /// arrive, so memory stays bounded.
    pub line_length: usize,
    /// Longest `AUTH` line or SASL response line (default 12288, RFC 4954 section 4).
    pub auth_line_length: usize,
    /// Largest message in octets, advertised as `SIZE` (default 50 MiB). Enforced on the
    /// declared `SIZE=` (`552 5.3.4` at `MAIL`) and on the octets received.
    pub message_size: u64,
    /// Recipients per transaction (default 100, RFC 5321 section 4.5.3.1.8's minimum);
    /// more get `452 4.5.3`.
    pub recipients: usize,
    /// Protocol errors (syntax, sequence, unknown commands) before the machine answers
    /// `421 4.7.0` and closes (default 10).
    pub errors: u32,
    /// Failed authentications before `421 4.7.0` and close (default 3).
    pub auth_failures: u32,
    /// How long the `535` (and a following `421`) of a failed authentication is held back,
    /// slowing down password guessing (default 2 s; zero sends it at once). Measured from
    /// the last `now` the machine saw ([`Connection::new`] or
    /// [`Connection::handle_timeout`]); no input is processed meanwhile.
    pub auth_failure_delay: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            line_length: 4096,
            auth_line_length: 12288,
            message_size: 50 * 1024 * 1024,
            recipients: 100,
            errors: 10,
            auth_failures: 3,
            auth_failure_delay: Duration::from_secs(2),
        }
    }
}

/// Server timeouts (RFC 5321 section 4.5.3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Waiting for the next command (default 5 minutes, section 4.5.3.2.7).
    pub command: Duration,
    /// Waiting for the next block of message data (default 5 minutes: the server must
    /// outlast the client's 3-minute data block timer of section 4.5.3.2.5).
    pub data: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            command: Duration::from_secs(300),
            data: Duration::from_secs(300),
        }
    }
}

/// Server configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Our host name, used in the greeting, the EHLO reply and 421 replies.
    pub hostname: String,
    /// Relay/MX, submission or LMTP.
    pub mode: Mode,
    /// Advertised extensions.
    pub extensions: Extensions,
    /// SASL mechanisms offered with `AUTH` (upper case, e.g. `PLAIN`, `LOGIN`); empty
    /// means no AUTH. Default: empty for [`Config::mx`] and [`Config::lmtp`], `PLAIN LOGIN`
    /// for [`Config::submission`].
    pub auth_mechanisms: Vec<String>,
    /// The session runs inside TLS from the start (implicit TLS, RFC 8314).
    pub implicit_tls: bool,
    /// `AUTH` is refused (`530 5.7.0`) and not advertised before TLS. Default true.
    pub auth_requires_tls: bool,
    /// `MAIL` is refused (`530 5.7.0`) before TLS. Default false.
    pub require_tls: bool,
    /// `MAIL` is refused (`530 5.7.0`) before `AUTH`. Default true only for submission.
    pub require_auth: bool,
    /// Bare LF / bare CR policy. Default [`BareLf::Normalize`] (as Postfix 3.9).
    pub bare_lf: BareLf,
    /// Refuse a message containing 8-bit octets unless `MAIL` declared `BODY=8BITMIME`,
    /// `BODY=BINARYMIME` or `SMTPUTF8` (`554 5.6.1`). Default false: 8-bit data is only
    /// refused when 8BITMIME is not advertised at all.
    pub strict_8bit: bool,
    /// Input limits.
    pub limits: Limits,
    /// Timeouts.
    pub timeouts: Timeouts,
}

impl Config {
    /// A relay / MX server (port 25): no AUTH, STARTTLS off until the adapter enables it.
    pub fn mx(hostname: impl Into<String>) -> Self {
        Config {
            hostname: hostname.into(),
            mode: Mode::Relay,
            extensions: Extensions::default(),
            auth_mechanisms: Vec::new(),
            implicit_tls: false,
            auth_requires_tls: true,
            require_tls: false,
            require_auth: false,
            bare_lf: BareLf::Normalize,
            strict_8bit: false,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
        }
    }

    /// A submission server (RFC 6409, port 587 or 465): AUTH PLAIN and LOGIN, required
    /// before `MAIL`, and only offered inside TLS.
    pub fn submission(hostname: impl Into<String>) -> Self {
        Config {
            mode: Mode::Submission,
            auth_mechanisms: vec!["PLAIN".into(), "LOGIN".into()],
            require_auth: true,
            ..Config::mx(hostname)
        }
    }

    /// An LMTP server (RFC 2033).
    pub fn lmtp(hostname: impl Into<String>) -> Self {
        Config {
            mode: Mode::Lmtp,
            ..Config::mx(hostname)
        }
    }
}

/// Why the machine refused a message on its own (the reply is already queued).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbortReason {
    /// More octets than [`Limits::message_size`] (`552 5.3.4`).
    TooBig,
    /// A bare LF or CR with [`BareLf::Reject`] (`550 5.6.11`).
    BareLineEnding,
    /// 8-bit data that was not declared (`554 5.6.1`).
    EightBit,
}

/// What the application must act on, in order.
///
/// Events marked "answer with" wait for [`Connection::reply`]; the machine reads no further
/// input until the answer arrives. The others are notifications.
#[must_use = "events carry the session; ignoring one can stall the connection"]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The client greeted us (already answered). Any transaction in progress is gone.
    Hello {
        /// `HELO`, `EHLO` or `LHLO`.
        verb: HelloVerb,
        /// The client's claimed name.
        domain: String,
    },
    /// `MAIL FROM`, already checked for sequence, parameters and size: answer with a
    /// [`MailDecision`].
    MailFrom {
        /// The sender.
        from: ReversePath,
        /// Its parameters.
        params: MailParams,
    },
    /// `RCPT TO`, already checked for sequence, parameters and the recipient limit: answer
    /// with an [`RcptDecision`].
    RcptTo {
        /// The recipient.
        to: ForwardPath,
        /// Its parameters.
        params: RcptParams,
    },
    /// A piece of the message: dot-unstuffed (DATA) or raw (BDAT), in order.
    DataChunk(Bytes),
    /// The message is complete: answer with a [`MessageDecision`] (in LMTP, once per
    /// accepted recipient, in the order they were accepted).
    DataEnd,
    /// The machine refused the message itself (reply already queued); drop the chunks.
    DataAborted(AbortReason),
    /// The transaction was reset (`RSET`, a new `EHLO`, `STARTTLS`); drop its state.
    Reset,
    /// `220` to `STARTTLS` is queued: write the output, perform the TLS handshake, then
    /// call [`Connection::tls_established`]. The input that followed the command was
    /// discarded.
    StartTls,
    /// `AUTH` with a mechanism from the configured list: answer with an [`AuthAnswer`].
    Auth {
        /// The mechanism, upper case.
        mechanism: String,
        /// The decoded initial response (`Some(empty)` for `=`).
        initial_response: Option<Secret<Vec<u8>>>,
    },
    /// The client's decoded answer to a challenge: answer with an [`AuthAnswer`].
    AuthResponse(Secret<Vec<u8>>),
    /// The client cancelled the exchange with `*` or sent bad base64 (reply queued).
    AuthCancelled,
}

/// The answer to [`Event::MailFrom`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MailDecision {
    /// `250 2.1.0 Ok`.
    Accept,
    /// `550 5.7.1 Sender rejected`.
    Reject,
    /// `451 4.3.0` with the given text: try again later.
    TempFail(String),
    /// Any reply; a 2yz reply starts the transaction.
    Reply(Reply),
}

/// The answer to [`Event::RcptTo`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RcptDecision {
    /// `250 2.1.5 Ok`.
    Accept,
    /// `550 5.1.1 Mailbox unavailable`.
    UnknownUser,
    /// `554 5.7.1 Relay access denied`.
    RelayDenied,
    /// `452 4.2.2 Mailbox full`.
    MailboxFull,
    /// `451 4.3.0` with the given text: try again later.
    TempFail(String),
    /// Any reply; a 2yz reply counts the recipient as accepted.
    Reply(Reply),
}

/// The answer to [`Event::DataEnd`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageDecision {
    /// `250 2.0.0 Ok: message accepted`.
    Accept,
    /// `250 2.0.0 Ok: queued as <id>`.
    Queued(String),
    /// `550 5.7.1` with the given text.
    Reject(String),
    /// `451 4.3.0` with the given text: try again later.
    TempFail(String),
    /// Any reply.
    Reply(Reply),
}

/// The answer to [`Event::Auth`] and [`Event::AuthResponse`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthAnswer {
    /// Send a `334` challenge (base64-encoded by the machine) and wait for a response.
    Challenge(Vec<u8>),
    /// `235 2.7.0 Authentication successful`.
    Success,
    /// `535 5.7.8 Authentication credentials invalid`.
    Failure,
    /// `454 4.7.0 Temporary authentication failure`.
    TempFail,
    /// `535 5.7.8` with the given text: the login is refused for a reason the user can act
    /// on (e.g. "use an app password"). The text is sanitised to one line of printable
    /// ASCII of at most [`MAX_DENIED_TEXT`] characters; an empty text becomes
    /// "Authentication credentials invalid". Counts as a failed attempt like `Failure`.
    Denied(String),
    /// Any final reply; a 2yz reply marks the session authenticated.
    Reply(Reply),
}

/// The longest text [`AuthAnswer::Denied`] sends (longer text is cut), keeping the reply
/// line well under the 512-octet limit of RFC 5321 section 4.5.3.1.5.
pub const MAX_DENIED_TEXT: usize = 400;

/// One line of printable US-ASCII for a reply text: controls (CR, LF, TAB, ...) become
/// spaces, other bytes outside 0x20-0x7E become `?`, runs of spaces collapse, the ends are
/// trimmed and the result is cut at [`MAX_DENIED_TEXT`] characters.
fn sanitize_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_DENIED_TEXT));
    for c in text.chars() {
        let c = match c {
            ' '..='~' => c,
            c if c.is_control() => ' ',
            _ => '?',
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        if out.len() >= MAX_DENIED_TEXT {
            break;
        }
        out.push(c);
    }
    out.truncate(out.trim_end().len());
    out
}

/// Any answer [`Connection::reply`] takes; built with `From` from the typed decisions.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// For [`Event::MailFrom`].
    Mail(MailDecision),
    /// For [`Event::RcptTo`].
    Rcpt(RcptDecision),
    /// For [`Event::DataEnd`].
    Message(MessageDecision),
    /// For [`Event::Auth`] / [`Event::AuthResponse`].
    Auth(AuthAnswer),
}

impl From<MailDecision> for Answer {
    fn from(d: MailDecision) -> Self {
        Answer::Mail(d)
    }
}
impl From<RcptDecision> for Answer {
    fn from(d: RcptDecision) -> Self {
        Answer::Rcpt(d)
    }
}
impl From<MessageDecision> for Answer {
    fn from(d: MessageDecision) -> Self {
        Answer::Message(d)
    }
}
impl From<AuthAnswer> for Answer {
    fn from(d: AuthAnswer) -> Self {
        Answer::Auth(d)
    }
}

/// The envelope of the transaction in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// The sender.
    pub from: ReversePath,
    /// `MAIL` parameters.
    pub params: MailParams,
    /// Recipients accepted so far.
    pub accepted: usize,
    /// Octets of message data received so far.
    pub received: u64,
    /// True once a BDAT chunk was received (DATA is then out of sequence).
    pub bdat: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Mail(ReversePath, MailParams),
    Rcpt,
    Message { remaining: usize },
    Auth,
}

impl Pending {
    fn name(&self) -> &'static str {
        match self {
            Pending::Mail(..) => "MailDecision",
            Pending::Rcpt => "RcptDecision",
            Pending::Message { .. } => "MessageDecision",
            Pending::Auth => "AuthAnswer",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Command,
    Sasl,
    Data {
        decoder: DotDecoder,
        ended: bool,
        abort: Option<AbortReason>,
    },
    Bdat {
        remaining: u64,
        last: bool,
        size: u64,
        error: Option<Reply>,
    },
    TlsPending {
        announced: bool,
    },
}

/// The server side of one SMTP, submission or LMTP session.
///
/// Drive it with the verbs shared by every protocol crate of this workspace:
/// [`feed`](Self::feed) bytes read from the peer, act on each
/// [`next_event`](Self::next_event) (answering those that ask with
/// [`reply`](Self::reply)), write what [`take_output`](Self::take_output) returns
/// (call it until `None`: each item is one write, split where RFC 2920 says a pipelined
/// group ends), and sleep until [`poll_timeout`](Self::poll_timeout).
#[derive(Debug)]
pub struct Connection {
    config: Config,
    input: BytesMut,
    scanned: usize,
    discarding: bool,
    out: BytesMut,
    sealed: VecDeque<Bytes>,
    queued: VecDeque<Event>,
    state: State,
    pending: Option<Pending>,
    hello: Option<HelloVerb>,
    tls: bool,
    authenticated: bool,
    tx: Option<Transaction>,
    errors: u32,
    auth_failures: u32,
    deadline: Instant,
    activity: bool,
    now: Instant,
    /// A failed-authentication reply held back until the instant, and whether to close then.
    held: Option<(Bytes, Instant, bool)>,
    closed: bool,
}

const fn e(c: u8, s: u16, d: u16) -> Option<EnhancedCode> {
    Some(EnhancedCode::new(c, s, d))
}

fn r(code: u16, enh: Option<EnhancedCode>, text: &str) -> Reply {
    Reply {
        code,
        enhanced: enh,
        lines: vec![text.to_string()],
    }
}

impl Connection {
    /// Starts a session; the `220` greeting is queued in the output.
    pub fn new(config: Config, now: Instant) -> Self {
        let mut c = Connection {
            deadline: now + config.timeouts.command,
            tls: config.implicit_tls,
            config,
            input: BytesMut::with_capacity(4096),
            scanned: 0,
            discarding: false,
            out: BytesMut::with_capacity(1024),
            sealed: VecDeque::new(),
            queued: VecDeque::new(),
            state: State::Command,
            pending: None,
            hello: None,
            authenticated: false,
            tx: None,
            errors: 0,
            auth_failures: 0,
            activity: false,
            now,
            held: None,
            closed: false,
        };
        let kind = if c.config.mode == Mode::Lmtp {
            "LMTP"
        } else {
            "ESMTP"
        };
        let greeting = r(220, None, &format!("{} {kind} ready", c.config.hostname));
        encode::reply(&greeting, false, &mut c.out);
        c.seal();
        c
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// True inside TLS (implicit, or after [`tls_established`](Self::tls_established)).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// True after a successful `AUTH`.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// The transaction in progress, if any.
    pub fn transaction(&self) -> Option<&Transaction> {
        self.tx.as_ref()
    }

    /// True when more input would be acted on now: no answer is owed, no failed-login reply
    /// is held back, no STARTTLS handshake is pending and the session is open. An adapter
    /// may stop reading while it is false (backpressure).
    pub fn wants_input(&self) -> bool {
        !self.closed
            && self.pending.is_none()
            && self.held.is_none()
            && !matches!(self.state, State::TlsPending { .. })
    }

    /// Ends the session from our side, for example when the server shuts down: queues
    /// `421 4.3.2 <host> Service shutting down, closing connection` (RFC 5321 section 3.8)
    /// and closes. An answer still owed is dropped.
    pub fn shutdown(&mut self) {
        if self.closed {
            return;
        }
        self.held = None;
        let text = format!(
            "{} Service shutting down, closing connection",
            self.config.hostname
        );
        self.send(&r(421, e(4, 3, 2), &text));
        self.close();
    }

    /// True once the session is over (after `221` or `421`); write the remaining output,
    /// then close the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Appends bytes read from the peer. Bytes that arrive while a STARTTLS handshake is
    /// pending, or after the session closed, are discarded.
    pub fn feed(&mut self, input: &[u8]) {
        if self.closed || matches!(self.state, State::TlsPending { .. }) || input.is_empty() {
            return;
        }
        self.activity = true;
        if self.discarding {
            // Dropping an overlong line: keep only what follows its end.
            match memchr::memchr(b'\n', input) {
                None => return,
                Some(i) => {
                    self.discarding = false;
                    self.input.clear();
                    self.scanned = 0;
                    self.line_too_long();
                    self.input
                        .extend_from_slice(input.get(i + 1..).unwrap_or_default());
                    return;
                }
            }
        }
        self.input.extend_from_slice(input);
    }

    /// The TLS handshake after [`Event::StartTls`] succeeded: the session starts over
    /// (RFC 3207 section 4.2), the client must send `EHLO` again.
    pub fn tls_established(&mut self) {
        self.tls = true;
        self.hello = None;
        self.tx = None;
        self.authenticated = false;
        self.input.clear();
        self.scanned = 0;
        self.discarding = false;
        self.state = State::Command;
        self.activity = true;
    }

    /// Bytes to write to the peer, in order; call until it returns `None`.
    pub fn take_output(&mut self) -> Option<Bytes> {
        if let Some(b) = self.sealed.pop_front() {
            return Some(b);
        }
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.split().freeze())
        }
    }

    /// The next deadline: call [`handle_timeout`](Self::handle_timeout) when it passes.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            None
        } else if let Some((_, until, _)) = &self.held {
            Some(*until)
        } else {
            Some(self.deadline)
        }
    }

    /// Advances the machine's clock (call it after every read too: it is cheap), releases a
    /// held failed-authentication reply, and checks the idle deadline. Input since the
    /// last check (or an answer the application still owes) moves the deadline forward;
    /// otherwise the session ends with `421 4.4.2`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
        if let Some((_, until, _)) = &self.held {
            if now < *until {
                return;
            }
            if let Some((bytes, _, close)) = self.held.take() {
                self.out.extend_from_slice(&bytes);
                if close {
                    self.close();
                } else {
                    self.seal();
                }
                self.deadline = now + self.config.timeouts.command;
            }
            return;
        }
        if self.closed || now < self.deadline {
            return;
        }
        let period = match self.state {
            State::Data { .. } | State::Bdat { .. } => self.config.timeouts.data,
            _ => self.config.timeouts.command,
        };
        if self.activity || self.pending.is_some() {
            self.activity = false;
            self.deadline = now + period;
            return;
        }
        let text = format!(
            "{} Timeout exceeded, closing connection",
            self.config.hostname
        );
        self.send(&r(421, e(4, 4, 2), &text));
        self.close();
    }

    fn close(&mut self) {
        self.closed = true;
        self.pending = None;
        self.input.clear();
        self.seal();
    }

    fn seal(&mut self) {
        if !self.out.is_empty() {
            self.sealed.push_back(self.out.split().freeze());
        }
    }

    fn send(&mut self, reply: &Reply) {
        encode::reply(
            reply,
            self.config.extensions.enhanced_status_codes,
            &mut self.out,
        );
    }

    /// A protocol error: send it and count it against [`Limits::errors`].
    fn error(&mut self, reply: Reply) {
        self.send(&reply);
        self.errors += 1;
        if self.errors >= self.config.limits.errors {
            let text = format!(
                "{} Too many errors, closing connection",
                self.config.hostname
            );
            self.send(&r(421, e(4, 7, 0), &text));
            self.close();
        }
    }

    fn line_too_long(&mut self) {
        self.error(r(500, e(5, 5, 2), "Line too long"));
    }

    /// The next thing the application must act on, or `None` when the machine needs more
    /// input or waits for an answer to the previous event.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(ev) = self.queued.pop_front() {
                return Some(ev);
            }
            if self.closed || self.pending.is_some() || self.held.is_some() {
                return None;
            }
            match &mut self.state {
                State::TlsPending { announced } => {
                    if *announced {
                        return None;
                    }
                    *announced = true;
                    return Some(Event::StartTls);
                }
                State::Data { .. } => return self.data_event(),
                State::Bdat { remaining, .. } => {
                    if *remaining > 0 && self.input.is_empty() {
                        return None;
                    }
                    if let Some(ev) = self.bdat_event() {
                        return Some(ev);
                    }
                }
                State::Command | State::Sasl => {
                    let limit = if self.state == State::Sasl {
                        self.config.limits.auth_line_length
                    } else {
                        self.config
                            .limits
                            .line_length
                            .max(self.config.limits.auth_line_length)
                    };
                    let line = self.frame_line(limit)?;
                    if let Some(ev) = self.handle_line(line) {
                        return Some(ev);
                    }
                }
            }
        }
    }

    /// Finds the next line (without its line ending). `None`: need more input or a reply
    /// was queued for a malformed line (the caller loops).
    fn frame_line(&mut self, limit: usize) -> Option<Result<BytesMut, ()>> {
        let found = memchr::memchr(b'\n', self.input.get(self.scanned..).unwrap_or_default())
            .map(|i| i + self.scanned);
        let Some(i) = found else {
            if self.input.len() > limit + 1 {
                // Drop the overlong line as it arrives; reply when its end shows up.
                self.discarding = true;
                self.input.clear();
                self.scanned = 0;
            } else {
                self.scanned = self.input.len();
            }
            return None;
        };
        let mut line = self.input.split_to(i + 1);
        self.scanned = 0;
        line.truncate(i);
        if line.last() == Some(&b'\r') {
            line.truncate(i - 1);
        } else if self.config.bare_lf == BareLf::Reject {
            self.error(r(
                500,
                e(5, 5, 2),
                "Bare LF received; lines must end with CRLF",
            ));
            return Some(Err(()));
        }
        if line.len() > limit {
            self.line_too_long();
            return Some(Err(()));
        }
        Some(Ok(line))
    }

    fn handle_line(&mut self, line: Result<BytesMut, ()>) -> Option<Event> {
        let line = line.ok()?;
        if self.state == State::Sasl {
            return self.sasl_line(&line);
        }
        // Only AUTH lines may use the longer auth_line_length (RFC 4954 section 4).
        let is_auth = line
            .get(..5)
            .is_some_and(|v| v.eq_ignore_ascii_case(b"AUTH "));
        if line.len() > self.config.limits.line_length && !is_auth {
            self.line_too_long();
            self.seal();
            return None;
        }
        let line = line.freeze();
        let cmd = match parse::command_bytes(&line) {
            Ok(cmd) => cmd,
            Err(err) => {
                let verb = line.get(..4).map(|v| v.to_ascii_uppercase());
                let reply = match err {
                    Error::UnknownCommand => r(500, e(5, 5, 1), "Command unrecognized"),
                    Error::InvalidAddress { .. } if verb.as_deref() == Some(b"MAIL") => {
                        r(501, e(5, 1, 7), "Bad sender address syntax")
                    }
                    Error::InvalidAddress { .. } => {
                        r(501, e(5, 1, 3), "Bad recipient address syntax")
                    }
                    Error::InvalidParameter { keyword, .. } => {
                        r(501, e(5, 5, 4), &format!("Invalid parameter {keyword}"))
                    }
                    Error::InvalidBase64 => r(501, e(5, 5, 2), "Invalid base64 data"),
                    _ => r(501, e(5, 5, 4), "Syntax error in parameters or arguments"),
                };
                self.error(reply);
                self.seal();
                return None;
            }
        };
        let ends_group = !cmd.may_continue_group();
        let ev = self.command(cmd);
        if ends_group && self.pending.is_none() {
            self.seal();
        }
        ev
    }

    fn ext_ok(&self, params: &[(String, Option<String>)]) -> Result<(), Reply> {
        match params.first() {
            Some((k, _)) => Err(r(555, e(5, 5, 4), &format!("Unsupported parameter {k}"))),
            None => Ok(()),
        }
    }

    fn check_mail(&self, from: &ReversePath, p: &MailParams) -> Result<(), Reply> {
        let x = &self.config.extensions;
        if self.hello.is_none() {
            return Err(r(503, e(5, 5, 1), "Send HELO/EHLO first"));
        }
        if self.config.require_tls && !self.tls {
            return Err(r(530, e(5, 7, 0), "Must issue a STARTTLS command first"));
        }
        if self.config.require_auth && !self.authenticated {
            return Err(r(530, e(5, 7, 0), "Authentication required"));
        }
        if self.tx.is_some() {
            return Err(r(503, e(5, 5, 1), "Nested MAIL command"));
        }
        self.ext_ok(&p.other)?;
        let unsupported = |k: &str| Err(r(555, e(5, 5, 4), &format!("Unsupported parameter {k}")));
        match p.body {
            Some(Body::EightBitMime) if !x.eight_bit_mime => return unsupported("BODY"),
            Some(Body::BinaryMime) if !(x.binary_mime && x.chunking) => {
                return unsupported("BODY");
            }
            _ => {}
        }
        if p.smtputf8 && !x.smtputf8 {
            return unsupported("SMTPUTF8");
        }
        if (p.ret.is_some() || p.envid.is_some()) && !x.dsn {
            return unsupported("RET/ENVID");
        }
        if p.requiretls && !(x.requiretls && self.tls) {
            return unsupported("REQUIRETLS");
        }
        if p.auth.is_some() && self.config.auth_mechanisms.is_empty() {
            return unsupported("AUTH");
        }
        if let Some(size) = p.size
            && size > self.config.limits.message_size
        {
            return Err(r(
                552,
                e(5, 3, 4),
                "Message size exceeds fixed maximum message size",
            ));
        }
        if from.is_utf8() && !p.smtputf8 {
            return Err(r(550, e(5, 6, 7), "Non-ASCII addresses require SMTPUTF8"));
        }
        Ok(())
    }

    fn check_rcpt(&self, to: &ForwardPath, p: &RcptParams) -> Result<(), Reply> {
        let Some(tx) = &self.tx else {
            return Err(r(503, e(5, 5, 1), "Need MAIL command"));
        };
        if tx.bdat {
            return Err(r(503, e(5, 5, 1), "RCPT not allowed after BDAT"));
        }
        self.ext_ok(&p.other)?;
        if (p.notify.is_some() || p.orcpt.is_some()) && !self.config.extensions.dsn {
            return Err(r(555, e(5, 5, 4), "Unsupported parameter NOTIFY/ORCPT"));
        }
        if to.is_utf8() && !tx.params.smtputf8 {
            return Err(r(553, e(5, 6, 7), "Non-ASCII addresses require SMTPUTF8"));
        }
        if tx.accepted >= self.config.limits.recipients {
            return Err(r(452, e(4, 5, 3), "Too many recipients"));
        }
        Ok(())
    }

    fn reset_tx(&mut self) {
        if self.tx.take().is_some() {
            self.queued.push_back(Event::Reset);
        }
    }

    fn ehlo_reply(&self) -> Reply {
        let x = &self.config.extensions;
        let mut lines = vec![self.config.hostname.clone()];
        let mut add = |on: bool, s: &str| {
            if on {
                lines.push(s.to_string());
            }
        };
        add(x.pipelining, "PIPELINING");
        add(true, &format!("SIZE {}", self.config.limits.message_size));
        add(x.eight_bit_mime, "8BITMIME");
        add(x.smtputf8, "SMTPUTF8");
        add(x.enhanced_status_codes, "ENHANCEDSTATUSCODES");
        add(x.dsn, "DSN");
        add(x.chunking, "CHUNKING");
        add(x.chunking && x.binary_mime, "BINARYMIME");
        add(x.starttls && !self.tls, "STARTTLS");
        if self.auth_offered() {
            add(
                true,
                &format!("AUTH {}", self.config.auth_mechanisms.join(" ")),
            );
        }
        add(x.requiretls && self.tls, "REQUIRETLS");
        Reply {
            code: 250,
            enhanced: None,
            lines,
        }
    }

    fn auth_offered(&self) -> bool {
        !self.config.auth_mechanisms.is_empty()
            && !self.authenticated
            && (self.tls || !self.config.auth_requires_tls)
    }

    fn command(&mut self, cmd: Command) -> Option<Event> {
        match cmd {
            Command::Hello { verb, domain } => {
                let lmtp = self.config.mode == Mode::Lmtp;
                if lmtp != (verb == HelloVerb::Lhlo) {
                    let text = if lmtp {
                        "This is an LMTP server: use LHLO"
                    } else {
                        "Command unrecognized"
                    };
                    self.error(r(500, e(5, 5, 1), text));
                    return None;
                }
                self.reset_tx();
                self.hello = Some(verb);
                let reply = if verb == HelloVerb::Helo {
                    r(250, None, &self.config.hostname)
                } else {
                    self.ehlo_reply()
                };
                encode::reply(&reply, false, &mut self.out);
                self.queued.push_back(Event::Hello { verb, domain });
                None
            }
            Command::Mail { from, params } => match self.check_mail(&from, &params) {
                Err(reply) => {
                    self.error_or_refusal(reply);
                    None
                }
                Ok(()) => {
                    self.pending = Some(Pending::Mail(from.clone(), params.clone()));
                    Some(Event::MailFrom { from, params })
                }
            },
            Command::Rcpt { to, params } => match self.check_rcpt(&to, &params) {
                Err(reply) => {
                    self.error_or_refusal(reply);
                    None
                }
                Ok(()) => {
                    self.pending = Some(Pending::Rcpt);
                    Some(Event::RcptTo { to, params })
                }
            },
            Command::Data => {
                let err = match &self.tx {
                    None => Some(r(503, e(5, 5, 1), "Need MAIL command")),
                    Some(tx) if tx.bdat => Some(r(503, e(5, 5, 1), "DATA not allowed after BDAT")),
                    Some(tx) if tx.params.body == Some(Body::BinaryMime) => {
                        Some(r(503, e(5, 5, 1), "BODY=BINARYMIME requires BDAT"))
                    }
                    Some(tx) if tx.accepted == 0 => Some(self.no_valid_recipients()),
                    Some(_) => None,
                };
                match err {
                    Some(reply) => self.error_or_refusal(reply),
                    None => {
                        self.send(&r(354, None, "End data with <CR><LF>.<CR><LF>"));
                        self.state = State::Data {
                            decoder: DotDecoder::new(self.config.bare_lf),
                            ended: false,
                            abort: None,
                        };
                    }
                }
                None
            }
            Command::Bdat { size, last } => {
                let error = if !self.config.extensions.chunking {
                    Some(r(502, e(5, 5, 1), "CHUNKING not enabled"))
                } else {
                    match &self.tx {
                        None => Some(r(503, e(5, 5, 1), "Need MAIL command")),
                        Some(tx) if tx.accepted == 0 => Some(self.no_valid_recipients()),
                        Some(tx)
                            if tx.received.saturating_add(size)
                                > self.config.limits.message_size =>
                        {
                            Some(r(
                                552,
                                e(5, 3, 4),
                                "Message size exceeds fixed maximum message size",
                            ))
                        }
                        Some(_) => None,
                    }
                };
                if let Some(tx) = &mut self.tx {
                    tx.bdat = true;
                    if error.as_ref().is_some_and(|r| r.code == 552) {
                        self.queued
                            .push_back(Event::DataAborted(AbortReason::TooBig));
                    }
                }
                self.state = State::Bdat {
                    remaining: size,
                    last,
                    size,
                    error,
                };
                None
            }
            Command::Rset => {
                self.tx = None;
                self.send(&r(250, e(2, 0, 0), "Ok"));
                Some(Event::Reset)
            }
            Command::Vrfy(_) => {
                self.send(&r(
                    252,
                    e(2, 5, 0),
                    "Cannot VRFY user, but will accept message and attempt delivery",
                ));
                None
            }
            Command::Expn(_) => {
                self.send(&r(502, e(5, 5, 1), "EXPN not supported"));
                None
            }
            Command::Help(_) => {
                self.send(&r(214, e(2, 0, 0), "See RFC 5321"));
                None
            }
            Command::Noop(_) => {
                self.send(&r(250, e(2, 0, 0), "Ok"));
                None
            }
            Command::Quit => {
                self.send(&r(221, e(2, 0, 0), "Bye"));
                self.close();
                None
            }
            Command::StartTls => {
                if self.tls {
                    self.error(r(503, e(5, 5, 1), "TLS already active"));
                } else if !self.config.extensions.starttls {
                    self.error(r(502, e(5, 5, 1), "STARTTLS not available"));
                } else {
                    self.send(&r(220, e(2, 0, 0), "Ready to start TLS"));
                    self.seal();
                    // RFC 3207 section 4.2 / CVE-2011-0411: nothing sent before the
                    // handshake may be acted on.
                    self.input.clear();
                    self.scanned = 0;
                    self.reset_tx();
                    self.state = State::TlsPending { announced: false };
                }
                None
            }
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                let err = if self.config.auth_mechanisms.is_empty() {
                    Some(r(502, e(5, 5, 1), "AUTH not available"))
                } else if self.hello.is_none() {
                    Some(r(503, e(5, 5, 1), "Send EHLO first"))
                } else if self.authenticated {
                    Some(r(503, e(5, 5, 1), "Already authenticated"))
                } else if self.tx.is_some() {
                    Some(r(
                        503,
                        e(5, 5, 1),
                        "AUTH not allowed during a mail transaction",
                    ))
                } else if self.config.auth_requires_tls && !self.tls {
                    Some(r(530, e(5, 7, 0), "Must issue a STARTTLS command first"))
                } else if !self.config.auth_mechanisms.contains(&mechanism) {
                    Some(r(504, e(5, 5, 4), "Unrecognized authentication type"))
                } else {
                    None
                };
                match err {
                    Some(reply) => {
                        self.error(reply);
                        None
                    }
                    None => {
                        self.pending = Some(Pending::Auth);
                        Some(Event::Auth {
                            mechanism,
                            initial_response,
                        })
                    }
                }
            }
        }
    }

    /// RFC 5321 section 3.3 allows 503 or 554 when no recipient was accepted; LMTP
    /// (RFC 2033 section 4.2) requires 503.
    fn no_valid_recipients(&self) -> Reply {
        let code = if self.config.mode == Mode::Lmtp {
            503
        } else {
            554
        };
        r(code, e(5, 5, 1), "No valid recipients")
    }

    /// Sequence and syntax problems count as errors; policy refusals (size, too many
    /// recipients, SMTPUTF8) do not.
    fn error_or_refusal(&mut self, reply: Reply) {
        if matches!(reply.code, 500..=504 | 530 | 555) {
            self.error(reply);
        } else {
            self.send(&reply);
        }
    }

    fn sasl_line(&mut self, line: &[u8]) -> Option<Event> {
        self.state = State::Command;
        if line == b"*" {
            self.send(&r(501, e(5, 0, 0), "Authentication cancelled"));
            self.seal();
            return Some(Event::AuthCancelled);
        }
        match parse::decode_sasl(line) {
            Ok(data) => {
                self.state = State::Sasl;
                self.pending = Some(Pending::Auth);
                Some(Event::AuthResponse(Secret::new(data)))
            }
            Err(_) => {
                self.error(r(501, e(5, 5, 2), "Invalid base64 data"));
                self.seal();
                Some(Event::AuthCancelled)
            }
        }
    }

    /// Answers the event that is waiting: [`MailDecision`] for [`Event::MailFrom`],
    /// [`RcptDecision`] for [`Event::RcptTo`], [`MessageDecision`] for [`Event::DataEnd`],
    /// [`AuthAnswer`] for [`Event::Auth`] and [`Event::AuthResponse`].
    ///
    /// Fails with [`Error::UnexpectedAnswer`] (and changes nothing) when the answer does not
    /// fit the waiting event or no event waits.
    pub fn reply(&mut self, answer: impl Into<Answer>) -> Result<(), Error> {
        let answer = answer.into();
        let Some(pending) = self.pending.take() else {
            return Err(Error::UnexpectedAnswer { pending: "nothing" });
        };
        match (pending, answer) {
            (Pending::Mail(from, params), Answer::Mail(d)) => {
                let reply = match d {
                    MailDecision::Accept => r(250, e(2, 1, 0), "Ok"),
                    MailDecision::Reject => r(550, e(5, 7, 1), "Sender rejected"),
                    MailDecision::TempFail(t) => r(451, e(4, 3, 0), &t),
                    MailDecision::Reply(reply) => reply,
                };
                if reply.is_positive() {
                    self.tx = Some(Transaction {
                        from,
                        params,
                        accepted: 0,
                        received: 0,
                        bdat: false,
                    });
                }
                self.send(&reply);
            }
            (Pending::Rcpt, Answer::Rcpt(d)) => {
                let reply = match d {
                    RcptDecision::Accept => r(250, e(2, 1, 5), "Ok"),
                    RcptDecision::UnknownUser => r(550, e(5, 1, 1), "Mailbox unavailable"),
                    RcptDecision::RelayDenied => r(554, e(5, 7, 1), "Relay access denied"),
                    RcptDecision::MailboxFull => r(452, e(4, 2, 2), "Mailbox full"),
                    RcptDecision::TempFail(t) => r(451, e(4, 3, 0), &t),
                    RcptDecision::Reply(reply) => reply,
                };
                if reply.is_positive()
                    && let Some(tx) = &mut self.tx
                {
                    tx.accepted += 1;
                }
                self.send(&reply);
            }
            (Pending::Message { remaining }, Answer::Message(d)) => {
                let reply = match d {
                    MessageDecision::Accept => r(250, e(2, 0, 0), "Ok: message accepted"),
                    MessageDecision::Queued(id) => {
                        r(250, e(2, 0, 0), &format!("Ok: queued as {id}"))
                    }
                    MessageDecision::Reject(t) => r(550, e(5, 7, 1), &t),
                    MessageDecision::TempFail(t) => r(451, e(4, 3, 0), &t),
                    MessageDecision::Reply(reply) => reply,
                };
                self.send(&reply);
                if remaining > 1 {
                    self.pending = Some(Pending::Message {
                        remaining: remaining - 1,
                    });
                } else {
                    self.tx = None;
                    self.seal();
                }
            }
            (Pending::Auth, Answer::Auth(a)) => {
                let reply = match a {
                    AuthAnswer::Challenge(data) => {
                        // continue-req = "334" SP [base64] CRLF (RFC 4954 section 4)
                        self.out.extend_from_slice(b"334 ");
                        if !data.is_empty() {
                            self.out
                                .extend_from_slice(encode::sasl_response(&data).as_bytes());
                        }
                        self.out.extend_from_slice(b"\r\n");
                        self.seal();
                        self.state = State::Sasl;
                        return Ok(());
                    }
                    AuthAnswer::Success => r(235, e(2, 7, 0), "Authentication successful"),
                    AuthAnswer::Failure => r(535, e(5, 7, 8), "Authentication credentials invalid"),
                    AuthAnswer::TempFail => r(454, e(4, 7, 0), "Temporary authentication failure"),
                    AuthAnswer::Denied(text) => {
                        let text = sanitize_text(&text);
                        if text.is_empty() {
                            r(535, e(5, 7, 8), "Authentication credentials invalid")
                        } else {
                            r(535, e(5, 7, 8), &text)
                        }
                    }
                    AuthAnswer::Reply(reply) => reply,
                };
                self.state = State::Command;
                if reply.is_positive() {
                    self.authenticated = true;
                    self.send(&reply);
                } else if reply.is_permanent() {
                    self.auth_failures += 1;
                    let mut held = BytesMut::new();
                    encode::reply(
                        &reply,
                        self.config.extensions.enhanced_status_codes,
                        &mut held,
                    );
                    let close = self.auth_failures >= self.config.limits.auth_failures;
                    if close {
                        let text = format!(
                            "{} Too many authentication failures, closing connection",
                            self.config.hostname
                        );
                        encode::reply(
                            &r(421, e(4, 7, 0), &text),
                            self.config.extensions.enhanced_status_codes,
                            &mut held,
                        );
                    }
                    let delay = self.config.limits.auth_failure_delay;
                    if delay.is_zero() {
                        self.out.extend_from_slice(&held);
                        if close {
                            self.close();
                        }
                    } else {
                        self.seal();
                        self.held = Some((held.freeze(), self.now + delay, close));
                    }
                } else {
                    self.send(&reply);
                }
                self.seal();
            }
            (pending, _) => {
                let name = pending.name();
                self.pending = Some(pending);
                return Err(Error::UnexpectedAnswer { pending: name });
            }
        }
        Ok(())
    }

    fn eight_bit_allowed(&self) -> bool {
        let x = &self.config.extensions;
        if !x.eight_bit_mime {
            return false;
        }
        if !self.config.strict_8bit {
            return true;
        }
        self.tx.as_ref().is_some_and(|tx| {
            tx.params.smtputf8
                || matches!(tx.params.body, Some(Body::EightBitMime | Body::BinaryMime))
        })
    }

    /// DATA mode: hands the [`DotDecoder`]'s chunks out, enforcing the message policies.
    fn data_event(&mut self) -> Option<Event> {
        let State::Data {
            mut decoder,
            ended,
            mut abort,
        } = self.state
        else {
            return None;
        };
        if ended {
            return Some(self.finish_message(abort));
        }
        let reject = self.config.bare_lf == BareLf::Reject;
        let check_8bit = !self.eight_bit_allowed();
        loop {
            match decoder.decode(&mut self.input) {
                Decoded::NeedMore => break,
                Decoded::End => {
                    self.state = State::Data {
                        decoder,
                        ended: true,
                        abort,
                    };
                    return Some(self.finish_message(abort));
                }
                Decoded::Chunk {
                    data,
                    bare_lf,
                    bare_cr,
                } => {
                    if abort.is_none() {
                        if (bare_lf || bare_cr) && reject {
                            abort = Some(AbortReason::BareLineEnding);
                        } else if check_8bit && data.iter().any(|&b| b >= 0x80) {
                            abort = Some(AbortReason::EightBit);
                        }
                    }
                    if let Some(tx) = &mut self.tx {
                        tx.received = tx.received.saturating_add(data.len() as u64);
                        if tx.received > self.config.limits.message_size && abort.is_none() {
                            abort = Some(AbortReason::TooBig);
                        }
                    }
                    if abort.is_none() {
                        self.state = State::Data {
                            decoder,
                            ended: false,
                            abort,
                        };
                        return Some(Event::DataChunk(data));
                    }
                }
            }
        }
        self.scanned = 0;
        self.state = State::Data {
            decoder,
            ended: false,
            abort,
        };
        None
    }

    /// The end of a message (DATA's final dot, or the last BDAT chunk).
    fn finish_message(&mut self, abort: Option<AbortReason>) -> Event {
        self.state = State::Command;
        match abort {
            Some(reason) => {
                let reply = match reason {
                    AbortReason::TooBig => r(
                        552,
                        e(5, 3, 4),
                        "Message size exceeds fixed maximum message size",
                    ),
                    AbortReason::BareLineEnding => r(
                        550,
                        e(5, 6, 11),
                        "Bare CR or LF in message data; lines must end with CRLF",
                    ),
                    AbortReason::EightBit => {
                        r(554, e(5, 6, 1), "8-bit data requires BODY=8BITMIME")
                    }
                };
                self.send(&reply);
                self.tx = None;
                self.seal();
                Event::DataAborted(reason)
            }
            None => {
                let remaining = if self.config.mode == Mode::Lmtp {
                    self.tx.as_ref().map_or(1, |tx| tx.accepted.max(1))
                } else {
                    1
                };
                self.pending = Some(Pending::Message { remaining });
                Event::DataEnd
            }
        }
    }

    /// BDAT mode: hand out (or discard) exactly the announced octets.
    fn bdat_event(&mut self) -> Option<Event> {
        let State::Bdat {
            remaining,
            last,
            size,
            error,
        } = &mut self.state
        else {
            return None;
        };
        if *remaining > 0 {
            if self.input.is_empty() {
                return None;
            }
            let n = usize::try_from(*remaining)
                .unwrap_or(usize::MAX)
                .min(self.input.len());
            let chunk = self.input.split_to(n).freeze();
            *remaining -= n as u64;
            if error.is_none() {
                let mut abort = None;
                if (!self.config.extensions.eight_bit_mime
                    || (self.config.strict_8bit
                        && !self.tx.as_ref().is_some_and(|tx| {
                            tx.params.smtputf8
                                || tx.params.body.is_some()
                                    && tx.params.body != Some(Body::SevenBit)
                        })))
                    && chunk.iter().any(|&b| b >= 0x80)
                {
                    abort = Some(r(554, e(5, 6, 1), "8-bit data requires BODY=8BITMIME"));
                }
                if let Some(tx) = &mut self.tx {
                    tx.received = tx.received.saturating_add(n as u64);
                }
                if let Some(reply) = abort {
                    *error = Some(reply);
                    self.queued
                        .push_back(Event::DataAborted(AbortReason::EightBit));
                    return None;
                }
                return Some(Event::DataChunk(chunk));
            }
            return None;
        }
        // The chunk is complete.
        let (last, size, error) = (*last, *size, error.take());
        self.state = State::Command;
        if let Some(reply) = error {
            self.error_or_refusal(reply);
            self.tx = None;
            self.seal();
            return None;
        }
        if last {
            return Some(self.finish_message(None));
        }
        self.send(&r(250, e(2, 0, 0), &format!("{size} octets received")));
        None
    }
}

/// What [`DotDecoder::decode`] found.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decoded {
    /// Message octets, dot-unstuffed (and with bare LFs turned into CRLF when normalising).
    Chunk {
        /// The octets: a zero-copy slice of the input unless a bare LF was normalised.
        data: Bytes,
        /// The chunk had an LF not preceded by CR (always false with [`BareLf::Accept`],
        /// which does not look).
        bare_lf: bool,
        /// The chunk had a CR not followed by LF (always false with [`BareLf::Accept`]).
        bare_cr: bool,
    },
    /// `CRLF . CRLF`: the message is complete; the input continues after it.
    End,
    /// Every complete octet was handed out; feed more.
    NeedMore,
}

/// The streaming DATA decoder of RFC 5321 section 4.5.2: removes the stuffed dot from lines
/// that start with one and finds the end marker, correct whatever way the input is split.
///
/// Only `CRLF . CRLF` ends the message: `LF . LF`, `CR . LF`, `LF . CRLF` and `CRLF . LF`
/// are message content (the SMTP smuggling class of bugs, CVE-2023-51764). It searches
/// `LF .` (periods with `memchr`, or the pair with `memchr::memmem` on text with many
/// periods) and hands out the runs between as slices of the input buffer, so a message
/// without stuffed dots is never copied.
///
/// ```
/// use bytes::BytesMut;
/// use smtp_proto::server::{BareLf, Decoded, DotDecoder};
///
/// let mut d = DotDecoder::new(BareLf::Reject);
/// let mut input = BytesMut::from(&b"a\r\n..b\r\n.\r\nQUIT\r\n"[..]);
/// let mut body = Vec::new();
/// loop {
///     match d.decode(&mut input) {
///         Decoded::Chunk { data, .. } => body.extend_from_slice(&data),
///         Decoded::End => break,
///         _ => unreachable!(),
///     }
/// }
/// assert_eq!(body, b"a\r\n.b\r\n");
/// assert_eq!(&input[..], b"QUIT\r\n");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DotDecoder {
    /// The data so far ends with CRLF (or nothing was decoded yet).
    line_start: bool,
    /// The last octet handed out (for bare LF detection across reads).
    prev: u8,
    mode: BareLf,
    /// Calls left that search with the pair finder straight away (see [`find_lf_dot`]).
    pair_search: u8,
}

impl DotDecoder {
    /// A decoder at the start of a message.
    pub fn new(bare_lf: BareLf) -> Self {
        DotDecoder {
            line_start: true,
            prev: b'\n',
            mode: bare_lf,
            pair_search: 0,
        }
    }

    /// Decodes from the front of `input`, consuming what it hands out. Call until it returns
    /// [`Decoded::NeedMore`] or [`Decoded::End`]. Up to three octets that may start the end
    /// marker stay in `input` until the next call.
    pub fn decode(&mut self, input: &mut BytesMut) -> Decoded {
        if self.line_start {
            match input.as_ref() {
                [] | [b'.'] | [b'.', b'\r'] => return Decoded::NeedMore,
                [b'.', b'\r', b'\n', ..] => {
                    input.advance(3);
                    self.line_start = true;
                    self.prev = b'\n';
                    return Decoded::End;
                }
                [b'.', ..] => {
                    input.advance(1);
                    self.prev = b'.';
                }
                _ => {}
            }
            self.line_start = false;
        }
        let buf: &[u8] = input.as_ref();
        let end = match find_lf_dot(buf, &mut self.pair_search) {
            Some(q) => q + 1,
            None if buf.last() == Some(&b'\r') => buf.len() - 1,
            None => buf.len(),
        };
        let Some(region) = buf.get(..end).filter(|r| !r.is_empty()) else {
            return Decoded::NeedMore;
        };
        let (bare_lf, bare_cr) = match self.mode {
            BareLf::Accept => (false, false),
            BareLf::Reject | BareLf::Normalize => bare_line_endings(self.prev, region),
        };
        let before_last = match region.len() {
            1 => self.prev,
            n => region.get(n - 2).copied().unwrap_or(0),
        };
        let last = region.last().copied().unwrap_or(self.prev);
        self.line_start = last == b'\n' && before_last == b'\r';
        let prev = self.prev;
        self.prev = last;
        let data = if bare_lf && self.mode == BareLf::Normalize {
            let mut out = BytesMut::with_capacity(region.len() + 16);
            let mut p = prev;
            for &b in region {
                if b == b'\n' && p != b'\r' {
                    out.extend_from_slice(b"\r");
                }
                out.extend_from_slice(&[b]);
                p = b;
            }
            input.advance(end);
            out.freeze()
        } else {
            input.split_to(end).freeze()
        };
        Decoded::Chunk {
            data,
            bare_lf,
            bare_cr,
        }
    }
}

/// True when no two adjacent octets of `region` have `(a == CR) != (b == LF)`, that is when
/// every CR inside it is followed by LF and every LF after its first octet follows a CR.
///
/// One branch-free fold per 4 KiB block, which the compiler vectorises. (A version over
/// fixed 32-octet array windows with an early exit every 256 octets was measured three
/// times slower.)
fn pairs_ok(region: &[u8]) -> bool {
    let mut rest = region;
    while rest.len() > 1 {
        let n = rest.len().min(4096);
        let block = rest.get(..n).unwrap_or_default();
        let next = rest.get(1..n).unwrap_or_default();
        let found = block
            .iter()
            .zip(next)
            .fold(false, |acc, (&a, &b)| acc | ((a == b'\r') != (b == b'\n')));
        if found {
            return false;
        }
        // Overlap by one so that a pair across the block border is checked.
        rest = rest.get(n - 1..).unwrap_or_default();
        if n < 4096 {
            break;
        }
    }
    true
}

/// Periods that are not at a line start, seen by [`find_lf_dot`] before it switches to the
/// pair search.
const STRAY_PERIODS: usize = 4;

/// Calls that go straight to the pair search after one that met [`STRAY_PERIODS`].
const PAIR_SEARCH_CALLS: u8 = 32;

/// The offset of the first `LF .` in `buf`.
///
/// A stuffed dot is a period, and most message octets are not periods (base64 bodies have
/// none at all), so the search looks for periods with `memchr` (which scans about twice as
/// fast as the two-octet `memmem` search) and checks the octet before each. Prose has a
/// period every sentence: after [`STRAY_PERIODS`] periods that are not at a line start,
/// the rest of `buf` goes to the `memmem` pair search, and so do the next
/// [`PAIR_SEARCH_CALLS`] calls (counted in `pair_search`), so prose costs about what the
/// pair search alone would.
fn find_lf_dot(buf: &[u8], pair_search: &mut u8) -> Option<usize> {
    let mut from = 0;
    if *pair_search > 0 {
        *pair_search -= 1;
    } else {
        // A period at offset 0 has no LF before it in `buf` (and after a stuffed dot the
        // input often starts with the line's own period): start at 1.
        from = 1;
        for _ in 0..STRAY_PERIODS {
            let i = from + find_period(buf.get(from..)?)?;
            if buf.get(i - 1) == Some(&b'\n') {
                return Some(i - 1);
            }
            from = i + 1;
        }
        *pair_search = PAIR_SEARCH_CALLS;
        // `buf[from - 1]` is a period, so no pair starting before `from` can match.
    }
    LF_DOT.find(buf.get(from..)?).map(|q| from + q)
}

/// The first period in `h`: `memchr`, with its AVX2 searcher looked up once rather than
/// on every call (the dispatch is a good part of a call that scans a line or two).
#[inline]
fn find_period(h: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if let Some(one) = PERIOD_AVX2.as_ref() {
        return one.find(h);
    }
    memchr::memchr(b'.', h)
}

/// The AVX2 period searcher, when the CPU has AVX2.
#[cfg(target_arch = "x86_64")]
static PERIOD_AVX2: std::sync::LazyLock<Option<memchr::arch::x86_64::avx2::memchr::One>> =
    std::sync::LazyLock::new(|| memchr::arch::x86_64::avx2::memchr::One::new(b'.'));

/// The searcher for `LF .`, built once.
static LF_DOT: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\n."));

/// Whether `region` has an LF not preceded by CR, and a CR not followed by LF (`prev` is
/// the octet before `region`; a CR at its very end is not judged).
///
/// One pass (see [`pairs_ok`]); only when that fires does a second look tell the two cases
/// apart.
fn bare_line_endings(prev: u8, region: &[u8]) -> (bool, bool) {
    let found = (region.first() == Some(&b'\n') && prev != b'\r') || !pairs_ok(region);
    if !found {
        return (false, false);
    }
    let before = |i: usize| {
        if i == 0 {
            prev
        } else {
            region.get(i - 1).copied().unwrap_or(0)
        }
    };
    let lf = memchr::memchr_iter(b'\n', region).any(|i| before(i) != b'\r');
    let cr = memchr::memchr_iter(b'\r', region)
        .any(|i| matches!(region.get(i + 1), Some(&b) if b != b'\n'));
    (lf, cr)
}

#[cfg(test)]
mod perf_tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference for `pairs_ok`: every adjacent pair checked one by one.
    fn pairs_ok_naive(region: &[u8]) -> bool {
        region
            .windows(2)
            .all(|w| (w[0] == b'\r') == (w[1] == b'\n'))
    }

    #[test]
    fn pairs_ok_finds_a_bad_pair_at_every_offset() {
        for len in [
            0usize, 1, 2, 31, 32, 33, 63, 64, 65, 255, 256, 257, 300, 1000,
        ] {
            let good: Vec<u8> = b"abcdef\r\n".iter().copied().cycle().take(len).collect();
            assert_eq!(pairs_ok(&good), pairs_ok_naive(&good), "len {len}");
            for i in 0..len {
                for bad in [b'\r', b'\n'] {
                    let mut v = good.clone();
                    v[i] = bad;
                    assert_eq!(pairs_ok(&v), pairs_ok_naive(&v), "len {len}, {bad} at {i}");
                }
            }
        }
    }

    #[test]
    fn find_lf_dot_switches_to_the_pair_search_and_back() {
        let plain = |v: &[u8]| v.windows(2).position(|w| w == b"\n.");
        // Prose: periods everywhere, a stuffed dot far away.
        let mut prose = b"One. Two. Three. Four. Five. Six.\r\n".repeat(20);
        prose.extend_from_slice(b"\r\n..x");
        let mut mode = 0;
        assert_eq!(find_lf_dot(&prose, &mut mode), plain(&prose));
        assert_eq!(mode, PAIR_SEARCH_CALLS);
        for left in (0..PAIR_SEARCH_CALLS).rev() {
            assert_eq!(find_lf_dot(&prose, &mut mode), plain(&prose));
            assert_eq!(mode, left);
        }
        // Base64: no period but the stuffed one.
        let mut b64 = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n".repeat(20);
        b64.extend_from_slice(b"..x");
        assert_eq!(find_lf_dot(&b64, &mut mode), plain(&b64));
        assert_eq!(mode, 0);
    }

    proptest! {
        #[test]
        fn find_lf_dot_matches_a_plain_search(
            v in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(b'a')], 0..300),
            mode in 0u8..3,
        ) {
            let mut mode = mode;
            prop_assert_eq!(find_lf_dot(&v, &mut mode), v.windows(2).position(|w| w == b"\n."));
        }

        #[test]
        fn pairs_ok_matches_the_naive_check(
            v in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'a')], 0..400)
        ) {
            prop_assert_eq!(pairs_ok(&v), pairs_ok_naive(&v));
        }
    }

    /// Decodes `input` split at `split` and returns the body and the bare flags seen.
    fn decode_split(input: &[u8], split: usize, mode: BareLf) -> (Vec<u8>, bool, Vec<u8>) {
        let mut d = DotDecoder::new(mode);
        let mut body = Vec::new();
        let mut flagged = false;
        let mut buf = BytesMut::new();
        for (k, part) in [&input[..split], &input[split..]].into_iter().enumerate() {
            buf.extend_from_slice(part);
            loop {
                match d.decode(&mut buf) {
                    Decoded::Chunk {
                        data,
                        bare_lf,
                        bare_cr,
                    } => {
                        body.extend_from_slice(&data);
                        flagged |= bare_lf || bare_cr;
                    }
                    Decoded::End => {
                        let mut rest = buf.to_vec();
                        if k == 0 {
                            rest.extend_from_slice(&input[split..]);
                        }
                        return (body, flagged, rest);
                    }
                    Decoded::NeedMore => break,
                }
            }
        }
        (body, flagged, buf.to_vec())
    }

    #[test]
    fn accept_mode_passes_bare_line_endings_through_at_every_split() {
        let input: &[u8] =
            b"..a\r\nbare\nlf\rcr\r\nx\n.\ny\r.\nz\n.\r\nw\r\n.\nv\r\n..\r\n.\r\nQUIT\r\n";
        for split in 0..=input.len() {
            let (body, flagged, rest) = decode_split(input, split, BareLf::Accept);
            assert_eq!(
                body, b".a\r\nbare\nlf\rcr\r\nx\n.\ny\r.\nz\n.\r\nw\r\n\nv\r\n.\r\n",
                "split at {split}"
            );
            assert!(!flagged, "split at {split}");
            assert_eq!(rest, b"QUIT\r\n", "split at {split}");
        }
        // The same input is flagged in Reject mode.
        assert!(decode_split(input, 0, BareLf::Reject).1);
    }

    #[test]
    fn accept_mode_server_delivers_bare_lf_unchanged() {
        let mut c = Config::mx("mx.test");
        c.bare_lf = BareLf::Accept;
        let mut conn = Connection::new(c, Instant::now());
        conn.feed(b"EHLO a\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\nx\ny\rz\r\n.\r\n");
        let mut body = Vec::new();
        let mut out = Vec::new();
        loop {
            while let Some(ev) = conn.next_event() {
                match ev {
                    Event::MailFrom { .. } => conn.reply(MailDecision::Accept).unwrap(),
                    Event::RcptTo { .. } => conn.reply(RcptDecision::Accept).unwrap(),
                    Event::DataChunk(c) => body.extend_from_slice(&c),
                    Event::DataEnd => conn.reply(MessageDecision::Accept).unwrap(),
                    _ => {}
                }
            }
            let mut any = false;
            while let Some(b) = conn.take_output() {
                out.extend_from_slice(&b);
                any = true;
            }
            if !any {
                break;
            }
        }
        assert_eq!(body, b"x\ny\rz\r\n");
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("220 "), "{out}");
        assert!(out.contains("250-mx.test"), "{out}");
        assert_eq!(
            out,
            "220 mx.test ESMTP ready\r\n250-mx.test\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n\
             250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n\
             250-CHUNKING\r\n250 BINARYMIME\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n\
             354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: message accepted\r\n"
        );
    }
}

#[cfg(test)]
mod auth_denied_tests {
    use super::*;

    /// Runs `AUTH PLAIN` on a submission session with no failure delay and answers it
    /// with `answer`; returns everything the server wrote after the EHLO reply.
    fn answer_auth(answer: AuthAnswer) -> (String, bool) {
        let t0 = Instant::now();
        let mut c = Config::submission("smtp.test");
        c.implicit_tls = true;
        c.limits.auth_failure_delay = Duration::ZERO;
        let mut conn = Connection::new(c, t0);
        conn.feed(b"EHLO a\r\n");
        while conn.next_event().is_some() {}
        while conn.take_output().is_some() {}
        conn.feed(b"AUTH PLAIN AHVzZXIAeA==\r\n");
        let mut answer = Some(answer);
        while let Some(ev) = conn.next_event() {
            if let Event::Auth { .. } = ev {
                conn.reply(answer.take().unwrap()).unwrap();
            }
        }
        let mut out = Vec::new();
        while let Some(b) = conn.take_output() {
            out.extend_from_slice(&b);
        }
        (String::from_utf8(out).unwrap(), conn.is_authenticated())
    }

    #[test]
    fn denied_sends_535_with_the_text() {
        let (out, authed) = answer_auth(AuthAnswer::Denied(
            "two-step verification is on: log in with an app password".into(),
        ));
        assert_eq!(
            out,
            "535 5.7.8 two-step verification is on: log in with an app password\r\n"
        );
        assert!(!authed);
    }

    #[test]
    fn denied_text_is_one_line_of_printable_ascii() {
        let (out, _) = answer_auth(AuthAnswer::Denied(
            "  SMTP is\r\ndisabled\tfor caf\u{e9}\x00 example.org\r\n535 5.7.8 fake  ".into(),
        ));
        assert_eq!(
            out,
            "535 5.7.8 SMTP is disabled for caf? example.org 535 5.7.8 fake\r\n"
        );
    }

    #[test]
    fn denied_text_is_cut_and_empty_text_falls_back() {
        let (out, _) = answer_auth(AuthAnswer::Denied("x".repeat(5000)));
        assert_eq!(
            out,
            format!("535 5.7.8 {}\r\n", "x".repeat(MAX_DENIED_TEXT))
        );
        let (out, _) = answer_auth(AuthAnswer::Denied(" \r\n\t".into()));
        assert_eq!(out, "535 5.7.8 Authentication credentials invalid\r\n");
    }

    #[test]
    fn temp_fail_sends_454() {
        let (out, authed) = answer_auth(AuthAnswer::TempFail);
        assert_eq!(out, "454 4.7.0 Temporary authentication failure\r\n");
        assert!(!authed);
    }
}
