//! The server-side state machine: AUTHORIZATION, TRANSACTION and UPDATE (RFC 1939).
//!
//! [`Connection`] frames command lines, answers everything it can answer from the
//! maildrop listing the application gave it at login (`STAT`, `LIST`, `UIDL`, `DELE`,
//! `RSET`, `NOOP`, `CAPA`), and hands out an [`Event`] for what only the application can
//! do: check credentials, produce a message body, commit deletions at `QUIT`.
//!
//! # Clock
//!
//! The machine never reads a clock. Its notion of "now" is the last `Instant` given to
//! [`Connection::new`] or [`Connection::handle_timeout`]. Adapters call
//! `handle_timeout(Instant::now())` whenever time may have passed (at least after every
//! read and before every [`Connection::reply`]), and sleep until [`Connection::poll_timeout`].
//! The idle timer (autologout) restarts at each complete command line; the delay after a
//! failed login is measured from the moment of the last tick before the failure reply.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use crate::encode::{self, Stuffer};
use crate::types::{
    Capability, Command, Expire, MessageInfo, Response, ResponseCode, ScanListing, Secret,
    UidListing,
};
use crate::{Error, parse};

/// Limits on what a peer can make the server hold or do. Defaults are documented per field.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest command line, CRLF excluded. Default 1024 (RFC 2449 allows clients 255;
    /// we are liberal but bounded).
    pub line_length: usize,
    /// Longest SASL response line during `AUTH`, CRLF excluded. Default 12 288.
    pub sasl_line_length: usize,
    /// Unknown, malformed, over-long or out-of-state commands before the server closes the
    /// connection. Default 10.
    pub bad_commands: u32,
    /// Failed authentications before the server closes the connection. Default 3.
    pub auth_failures: u32,
    /// How long a failed authentication's `-ERR` is held back. Default 2 s.
    pub auth_failure_delay: Duration,
    /// Autologout: idle time without a complete command before the server closes the
    /// connection. Default 10 minutes (RFC 1939 section 3 asks for at least 10).
    pub idle_timeout: Duration,
    /// Unprocessed (pipelined) input above which [`Connection::wants_input`] turns false
    /// so the adapter stops reading. Default 64 KiB.
    pub pending_input: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            line_length: 1024,
            sasl_line_length: 12 * 1024,
            bad_commands: 10,
            auth_failures: 3,
            auth_failure_delay: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(600),
            pending_input: 64 * 1024,
        }
    }
}

/// What the server offers. Build with [`Config::default`] and set fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Greeting text after `+OK`. Default `"POP3 server ready"`.
    pub greeting: Bytes,
    /// The APOP timestamp `<...>` appended to the greeting (RFC 1939 section 7). The caller
    /// makes it unique (e.g. `<pid.counter.unixtime@host>`); the machine has no clock or RNG.
    /// `None` (default): APOP is not offered and is answered `-ERR`.
    pub apop_timestamp: Option<Bytes>,
    /// `IMPLEMENTATION` capability text. Default `None`.
    pub implementation: Option<Bytes>,
    /// Offer `USER`/`PASS`. Default true.
    pub user_pass: bool,
    /// SASL mechanisms for `AUTH` (upper-case names). Default `["PLAIN"]`.
    pub sasl_mechanisms: Vec<Bytes>,
    /// Offer `STLS` (the adapter has a TLS configuration). Default false.
    pub stls: bool,
    /// The connection is already encrypted (implicit TLS, port 995). Default false.
    pub tls_active: bool,
    /// Refuse `USER`, `PASS`, `APOP` and `AUTH` until TLS is active (RFC 2595 section 2.3
    /// style). Default false.
    pub require_tls_for_auth: bool,
    /// Refuse only the mechanisms that carry the password itself (`USER`/`PASS`, SASL
    /// `PLAIN` and `LOGIN`) until TLS is active, and leave them out of `CAPA` until then,
    /// as in the RFC 5034 examples. APOP, CRAM-MD5 and SCRAM stay available. Default false.
    pub cleartext_needs_tls: bool,
    /// Advertise `LOGIN-DELAY n` (the application enforces it by failing logins with
    /// [`ResponseCode::LoginDelay`]). Default `None`.
    pub login_delay: Option<u32>,
    /// Advertise `EXPIRE`. Default `None`.
    pub expire: Option<Expire>,
    /// The limits.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            greeting: Bytes::from_static(b"POP3 server ready"),
            apop_timestamp: None,
            implementation: None,
            user_pass: true,
            sasl_mechanisms: vec![Bytes::from_static(b"PLAIN")],
            stls: false,
            tls_active: false,
            require_tls_for_auth: false,
            cleartext_needs_tls: false,
            login_delay: None,
            expire: None,
            limits: Limits::default(),
        }
    }
}

/// What the application must act on. Each variant says how to answer.
#[must_use = "every event needs the action its documentation names"]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// `USER` + `PASS`. Answer with [`Reply::LoggedIn`] or [`Reply::AuthFailed`].
    Login {
        /// The mailbox name from `USER`.
        user: Bytes,
        /// The password from `PASS`.
        password: Secret,
    },
    /// `APOP name digest`. Check `digest == hex(MD5(timestamp + secret))` (e.g. with
    /// `mail_sasl`'s APOP helper) and answer with [`Reply::LoggedIn`] or
    /// [`Reply::AuthFailed`].
    Apop {
        /// The mailbox name.
        user: Bytes,
        /// 32 lower-case hex digits.
        digest: Bytes,
        /// The greeting's timestamp, brackets included.
        timestamp: Bytes,
    },
    /// `AUTH mechanism [initial-response]`: start a SASL exchange (the mechanism is one of
    /// [`Config::sasl_mechanisms`]). Answer with [`Reply::Challenge`], [`Reply::LoggedIn`],
    /// [`Reply::SaslSuccess`] or [`Reply::AuthFailed`].
    AuthStart {
        /// The mechanism, upper-case.
        mechanism: Bytes,
        /// The decoded initial response (`Some(empty)` for `=`).
        initial_response: Option<Secret>,
    },
    /// The client's decoded answer to the last [`Reply::Challenge`]. Answer as for
    /// [`Event::AuthStart`].
    AuthResponse(Secret),
    /// The SASL exchange ended without the application: the client cancelled with `*` or
    /// sent bad base64 (the machine already answered `-ERR`). Drop the SASL state; no reply.
    AuthAborted,
    /// `RETR msg`. Stream the message with [`Connection::send_body_chunk`] and
    /// [`Connection::finish_body`], or fail it with [`Reply::Error`] before the first chunk.
    Retr {
        /// The message number the client used.
        msg: u32,
        /// Index into the maildrop given at login.
        index: usize,
        /// The size from the maildrop listing.
        size: u64,
    },
    /// `TOP msg n`. Stream the message as for [`Event::Retr`]; the machine cuts it after the
    /// header and `lines` body lines and turns [`Connection::wants_body`] false, at which
    /// point call [`Connection::finish_body`].
    Top {
        /// The message number the client used.
        msg: u32,
        /// Index into the maildrop given at login.
        index: usize,
        /// Body lines asked for.
        lines: u32,
    },
    /// `STLS` accepted: `+OK` is queued. Write all output, run the TLS handshake, then call
    /// [`Connection::tls_established`]. Pipelined plaintext after `STLS` was discarded.
    StartTls,
    /// `QUIT` in TRANSACTION: the session entered UPDATE. Remove these messages durably,
    /// then answer [`Reply::Committed`] (the machine sends `+OK` only then) or
    /// [`Reply::Error`]. Also sent with an empty list, so the maildrop can be released.
    Commit {
        /// Indexes into the maildrop of the messages marked deleted.
        deleted: Vec<usize>,
    },
}

/// The application's answer to the current [`Event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// Authentication succeeded and the maildrop is locked: its messages in order
    /// (message number = index + 1). The session enters TRANSACTION.
    LoggedIn(Vec<MessageInfo>),
    /// SASL success with additional server data: the machine sends the data as a last
    /// challenge, waits for the client's empty response, then sends `+OK` (RFC 5034 has no
    /// data on `+OK`).
    SaslSuccess {
        /// The mechanism's final server data.
        data: Bytes,
        /// The maildrop, as for [`Reply::LoggedIn`].
        maildrop: Vec<MessageInfo>,
    },
    /// A SASL challenge to send as `+ base64`.
    Challenge(Bytes),
    /// Authentication failed. Sent after [`Limits::auth_failure_delay`]; use
    /// [`ResponseCode::Auth`] for bad credentials, [`ResponseCode::InUse`] for a locked
    /// maildrop, [`ResponseCode::SysTemp`] for a backend outage,
    /// [`ResponseCode::LoginDelay`] for a login too soon.
    AuthFailed {
        /// The response code.
        code: Option<ResponseCode>,
        /// The text of the `-ERR` line.
        text: Bytes,
    },
    /// The deletions of [`Event::Commit`] are durable.
    Committed,
    /// The request failed (message unreadable, commit failed): `-ERR [code] text`. During
    /// a body that has already started, the connection is closed instead.
    Error {
        /// The response code, e.g. [`ResponseCode::SysTemp`].
        code: Option<ResponseCode>,
        /// The text of the `-ERR` line.
        text: Bytes,
    },
}

/// The RFC 1939 session state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Before login.
    Authorization,
    /// Logged in.
    Transaction,
    /// After `QUIT` in TRANSACTION, until the commit is answered.
    Update,
    /// Closed: no more input is read.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// Waiting for the next command line.
    Command,
    /// An event is out; waiting for `reply`.
    Login,
    Sasl,
    Body,
    Commit,
    /// Waiting for the client's line in a SASL exchange.
    SaslLine,
    /// Waiting for the client's empty line after the final SASL data.
    SaslFinalLine,
    /// STLS accepted; waiting for `tls_established`.
    Tls,
    /// A failed login's `-ERR` is held until the deadline.
    Delay(Instant),
}

#[derive(Debug, Clone, Copy)]
enum TopCut {
    Header,
    Body(u32),
    Done,
}

#[derive(Debug)]
struct BodyState {
    size: u64,
    started: bool,
    stuffer: Stuffer,
    top: Option<TopCut>,
    top_lines: u32,
    line_nonempty: bool,
}

/// The server-side POP3 state machine. See the module docs and `docs/pop3.md`.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    state: State,
    waiting: Waiting,
    input: BytesMut,
    /// Bytes of `input` already scanned for LF.
    scanned: usize,
    /// Discarding an over-long line until its LF.
    discarding: bool,
    output: BytesMut,
    events: VecDeque<Event>,
    user: Option<Bytes>,
    maildrop: Vec<MessageInfo>,
    deleted: Vec<bool>,
    pending_maildrop: Vec<MessageInfo>,
    body: Option<BodyState>,
    delayed: Option<(Bytes, bool)>,
    bad_commands: u32,
    auth_failures: u32,
    now: Instant,
    idle_deadline: Instant,
    close_after_output: bool,
}

impl Connection {
    /// A new session; the greeting is queued in the output.
    pub fn new(config: Config, now: Instant) -> Self {
        let mut output = BytesMut::with_capacity(512);
        output.put_slice(b"+OK");
        if !config.greeting.is_empty() {
            output.put_u8(b' ');
            put_text(&mut output, &config.greeting);
        }
        if let Some(ts) = &config.apop_timestamp {
            output.put_u8(b' ');
            put_text(&mut output, ts);
        }
        output.put_slice(b"\r\n");
        let idle_deadline = now + config.limits.idle_timeout;
        Self {
            config,
            state: State::Authorization,
            waiting: Waiting::Command,
            input: BytesMut::new(),
            scanned: 0,
            discarding: false,
            output,
            events: VecDeque::new(),
            user: None,
            maildrop: Vec::new(),
            deleted: Vec::new(),
            pending_maildrop: Vec::new(),
            body: None,
            delayed: None,
            bad_commands: 0,
            auth_failures: 0,
            now,
            idle_deadline,
            close_after_output: false,
        }
    }

    /// The session state.
    pub fn state(&self) -> State {
        self.state
    }

    /// True once TLS is active (implicit, or after [`Connection::tls_established`]).
    pub fn is_tls(&self) -> bool {
        self.config.tls_active
    }

    /// The messages of the maildrop (empty before login).
    pub fn maildrop(&self) -> &[MessageInfo] {
        &self.maildrop
    }

    /// Bytes read from the peer. Ignored once closed or while a TLS upgrade is pending
    /// (plaintext after `STLS` must never be acted on).
    pub fn feed(&mut self, input: &[u8]) {
        if self.state == State::Closed || self.waiting == Waiting::Tls {
            return;
        }
        if self.discarding {
            // Drop everything up to and including the LF of the over-long line.
            match memchr::memchr(b'\n', input) {
                None => return,
                Some(nl) => {
                    self.discarding = false;
                    self.input
                        .put_slice(input.get(nl + 1..).unwrap_or_default());
                    self.scanned = 0;
                    self.line_too_long();
                    return;
                }
            }
        }
        self.input.put_slice(input);
    }

    /// False while more unprocessed input than [`Limits::pending_input`] is held: stop
    /// reading from the peer until it turns true again.
    pub fn wants_input(&self) -> bool {
        self.state != State::Closed && self.input.len() < self.config.limits.pending_input
    }

    /// The next event, or `None` while the machine waits for input or for the answer to
    /// the previous event.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Some(ev);
            }
            if self.state == State::Closed || self.close_after_output {
                return None;
            }
            match self.waiting {
                Waiting::Command | Waiting::SaslLine | Waiting::SaslFinalLine => {}
                _ => return None,
            }
            let line = self.next_line()?;
            self.idle_deadline = self.now + self.config.limits.idle_timeout;
            match self.waiting {
                Waiting::SaslLine => self.sasl_line(&line),
                Waiting::SaslFinalLine => self.sasl_final_line(&line),
                _ => self.command_line(&line),
            }
        }
    }

    /// Frames the next line; `None` if incomplete. Handles over-long lines.
    fn next_line(&mut self) -> Option<Bytes> {
        loop {
            let limit = match self.waiting {
                Waiting::SaslLine | Waiting::SaslFinalLine => self.config.limits.sasl_line_length,
                _ => self.config.limits.line_length,
            };
            let unscanned = self.input.get(self.scanned..).unwrap_or_default();
            match memchr::memchr(b'\n', unscanned) {
                Some(off) => {
                    let nl = self.scanned + off;
                    let mut line = self.input.split_to(nl + 1).freeze();
                    self.scanned = 0;
                    line.truncate(nl);
                    if line.last() == Some(&b'\r') {
                        line.truncate(nl - 1);
                    }
                    if line.len() > limit {
                        self.line_too_long();
                        if self.state == State::Closed || self.close_after_output {
                            return None;
                        }
                        continue;
                    }
                    return Some(line);
                }
                None => {
                    self.scanned = self.input.len();
                    if self.input.len() > limit + 1 {
                        self.input.clear();
                        self.scanned = 0;
                        self.discarding = true;
                    }
                    return None;
                }
            }
        }
    }

    fn line_too_long(&mut self) {
        if matches!(self.waiting, Waiting::SaslLine | Waiting::SaslFinalLine) {
            self.waiting = Waiting::Command;
            self.events.push_back(Event::AuthAborted);
        }
        self.bad_command(Response::err("line too long"));
    }

    fn send(&mut self, r: &Response) {
        encode::response(r, &mut self.output);
    }

    fn bad_command(&mut self, r: Response) {
        self.bad_commands += 1;
        if self.bad_commands >= self.config.limits.bad_commands {
            self.send(&Response::err("too many bad commands, closing connection"));
            self.close();
        } else {
            self.send(&r);
        }
    }

    fn close(&mut self) {
        self.state = State::Closed;
        self.waiting = Waiting::Command;
        self.input.clear();
        self.body = None;
    }

    /// False while passwords must not travel in clear text ([`Config::cleartext_needs_tls`]).
    fn cleartext_allowed(&self) -> bool {
        !self.config.cleartext_needs_tls || self.config.tls_active
    }

    /// The SASL mechanisms usable now.
    fn mechanisms(&self) -> Vec<Bytes> {
        let cleartext =
            |m: &Bytes| m.eq_ignore_ascii_case(b"PLAIN") || m.eq_ignore_ascii_case(b"LOGIN");
        let ok = self.cleartext_allowed();
        self.config
            .sasl_mechanisms
            .iter()
            .filter(|m| ok || !cleartext(m))
            .cloned()
            .collect()
    }

    fn auth_allowed(&self) -> bool {
        !self.config.require_tls_for_auth || self.config.tls_active
    }

    /// The capabilities for the current state (RFC 2449, 2595, 3206, 5034).
    pub fn capabilities(&self) -> Vec<Capability> {
        let mut caps = vec![
            Capability::Top,
            Capability::Uidl,
            Capability::RespCodes,
            Capability::AuthRespCode,
            Capability::Pipelining,
        ];
        let authz = self.state == State::Authorization;
        if self.config.user_pass && ((self.auth_allowed() && self.cleartext_allowed()) || !authz) {
            caps.push(Capability::User);
        }
        let mechanisms = if authz {
            self.mechanisms()
        } else {
            self.config.sasl_mechanisms.clone()
        };
        if !mechanisms.is_empty() && (self.auth_allowed() || !authz) {
            caps.push(Capability::Sasl(mechanisms));
        }
        if authz && self.config.stls && !self.config.tls_active {
            caps.push(Capability::Stls);
        }
        if let Some(seconds) = self.config.login_delay {
            caps.push(Capability::LoginDelay {
                seconds,
                per_user: false,
            });
        }
        if let Some(policy) = self.config.expire {
            caps.push(Capability::Expire {
                policy,
                per_user: false,
            });
        }
        if let Some(i) = &self.config.implementation {
            caps.push(Capability::Implementation(i.clone()));
        }
        caps
    }

    fn command_line(&mut self, line: &[u8]) {
        let cmd = match parse::command(line) {
            Ok(c) => c,
            Err(Error::UnknownCommand) => {
                return self.bad_command(Response::err("unknown command"));
            }
            Err(Error::Base64 { .. }) => {
                return self.bad_command(Response::err("invalid base64 in initial response"));
            }
            Err(Error::Syntax { reason, .. }) => {
                let text = format!("syntax error: {reason}");
                return self.bad_command(Response::err(text));
            }
            Err(_) => return self.bad_command(Response::err("syntax error")),
        };
        match (self.state, cmd) {
            (_, Command::Capa) => {
                self.send(&Response::ok("Capability list follows"));
                for c in self.capabilities() {
                    encode::capability(&c, &mut self.output);
                }
                self.output.put_slice(encode::TERMINATOR);
            }
            (_, Command::Noop) if self.state == State::Transaction => self.send(&Response::ok("")),
            (State::Authorization, Command::Quit) => {
                self.send(&Response::ok("POP3 server signing off"));
                self.close();
            }
            (State::Authorization, c) => self.authorization(c),
            (State::Transaction, c) => self.transaction(c),
            _ => self.bad_command(Response::err("command not valid in this state")),
        }
    }

    fn authorization(&mut self, cmd: Command) {
        let needs_tls = |c: &Command| {
            matches!(
                c,
                Command::User(_) | Command::Pass(_) | Command::Apop { .. } | Command::Auth { .. }
            )
        };
        let cleartext = match &cmd {
            Command::User(_) | Command::Pass(_) => true,
            Command::Auth { mechanism, .. } => {
                mechanism.eq_ignore_ascii_case(b"PLAIN") || mechanism.eq_ignore_ascii_case(b"LOGIN")
            }
            _ => false,
        };
        if (needs_tls(&cmd) && !self.auth_allowed()) || (cleartext && !self.cleartext_allowed()) {
            self.user = None;
            return self.send(&Response::err_code(
                ResponseCode::Auth,
                "plaintext authentication disallowed on non-secure connections, use STLS",
            ));
        }
        match cmd {
            Command::Stls => {
                if !self.config.stls || self.config.tls_active {
                    return self.bad_command(Response::err("STLS not available"));
                }
                self.send(&Response::ok("Begin TLS negotiation"));
                // CVE-2011-0411 class: nothing sent after STLS in plaintext is acted on.
                self.input.clear();
                self.scanned = 0;
                self.waiting = Waiting::Tls;
                self.user = None;
                self.events.push_back(Event::StartTls);
            }
            Command::User(name) => {
                if !self.config.user_pass {
                    return self.bad_command(Response::err("USER/PASS not available, use AUTH"));
                }
                self.user = Some(name);
                self.send(&Response::ok("send PASS"));
            }
            Command::Pass(password) => match self.user.take() {
                Some(user) if self.config.user_pass => {
                    self.waiting = Waiting::Login;
                    self.events.push_back(Event::Login { user, password });
                }
                _ => self.bad_command(Response::err("USER first")),
            },
            Command::Apop { name, digest } => {
                self.user = None;
                match &self.config.apop_timestamp {
                    Some(ts) => {
                        let timestamp = ts.clone();
                        self.waiting = Waiting::Login;
                        self.events.push_back(Event::Apop {
                            user: name,
                            digest,
                            timestamp,
                        });
                    }
                    None => self.bad_command(Response::err("APOP not available")),
                }
            }
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                self.user = None;
                let known = self
                    .config
                    .sasl_mechanisms
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(&mechanism));
                if !known {
                    return self.send(&Response::err("unsupported SASL mechanism"));
                }
                self.waiting = Waiting::Sasl;
                self.events.push_back(Event::AuthStart {
                    mechanism,
                    initial_response,
                });
            }
            Command::AuthList => {
                self.send(&Response::ok("SASL mechanisms follow"));
                for m in &self.mechanisms() {
                    put_text(&mut self.output, m);
                    self.output.put_slice(b"\r\n");
                }
                self.output.put_slice(encode::TERMINATOR);
            }
            _ => self.bad_command(Response::err("command not valid in this state")),
        }
    }

    fn live(&self) -> (usize, u64) {
        self.maildrop
            .iter()
            .zip(&self.deleted)
            .filter(|(_, d)| !**d)
            .fold((0, 0), |(n, s), (m, _)| (n + 1, s + m.size))
    }

    /// Resolves a message number to an index, or answers the RFC 1939 `-ERR`.
    fn message(&mut self, msg: u32) -> Option<usize> {
        let index = (msg as usize).checked_sub(1);
        match index.and_then(|i| self.deleted.get(i).map(|d| (i, *d))) {
            Some((i, false)) => Some(i),
            Some((_, true)) => {
                self.send(&Response::err(format!("message {msg} already deleted")));
                None
            }
            None => {
                let (n, _) = self.live();
                self.send(&Response::err(format!(
                    "no such message, only {} in maildrop",
                    messages(n)
                )));
                None
            }
        }
    }

    fn transaction(&mut self, cmd: Command) {
        match cmd {
            Command::Stat => {
                let (n, s) = self.live();
                self.send(&Response::ok(format!("{n} {s}")));
            }
            Command::List(None) => {
                let (n, s) = self.live();
                self.send(&Response::ok(format!("{} ({s} octets)", messages(n))));
                for (i, (m, d)) in self.maildrop.iter().zip(&self.deleted).enumerate() {
                    if !d {
                        let l = ScanListing {
                            msg: msg_number(i),
                            size: m.size,
                        };
                        encode::scan_listing(&l, &mut self.output);
                    }
                }
                self.output.put_slice(encode::TERMINATOR);
            }
            Command::List(Some(msg)) => {
                if let Some(i) = self.message(msg) {
                    let size = self.maildrop.get(i).map_or(0, |m| m.size);
                    self.send(&Response::ok(format!("{msg} {size}")));
                }
            }
            Command::Uidl(None) => {
                self.send(&Response::ok("unique-id listing follows"));
                for (i, (m, d)) in self.maildrop.iter().zip(&self.deleted).enumerate() {
                    if !d {
                        let l = UidListing {
                            msg: msg_number(i),
                            uid: m.uid.clone(),
                        };
                        encode::uid_listing(&l, &mut self.output);
                    }
                }
                self.output.put_slice(encode::TERMINATOR);
            }
            Command::Uidl(Some(msg)) => {
                if let Some(i) = self.message(msg) {
                    let mut r = Response::ok(Bytes::new());
                    let mut t = BytesMut::new();
                    encode::number(u64::from(msg), &mut t);
                    t.put_u8(b' ');
                    t.put_slice(self.maildrop.get(i).map(|m| &m.uid[..]).unwrap_or_default());
                    r.text = t.freeze();
                    self.send(&r);
                }
            }
            Command::Retr(msg) => {
                if let Some(index) = self.message(msg) {
                    let size = self.maildrop.get(index).map_or(0, |m| m.size);
                    self.start_body(size, None);
                    self.events.push_back(Event::Retr { msg, index, size });
                }
            }
            Command::Top { msg, lines } => {
                if let Some(index) = self.message(msg) {
                    self.start_body(0, Some(TopCut::Header));
                    if let Some(b) = &mut self.body {
                        b.top_lines = lines;
                    }
                    self.events.push_back(Event::Top { msg, index, lines });
                }
            }
            Command::Dele(msg) => {
                if let Some(i) = self.message(msg) {
                    if let Some(d) = self.deleted.get_mut(i) {
                        *d = true;
                    }
                    self.send(&Response::ok(format!("message {msg} deleted")));
                }
            }
            Command::Rset => {
                self.deleted.iter_mut().for_each(|d| *d = false);
                let (n, s) = self.live();
                self.send(&Response::ok(format!(
                    "maildrop has {} ({s} octets)",
                    messages(n)
                )));
            }
            Command::Quit => {
                self.state = State::Update;
                self.waiting = Waiting::Commit;
                let deleted = self
                    .deleted
                    .iter()
                    .enumerate()
                    .filter_map(|(i, d)| d.then_some(i))
                    .collect();
                self.events.push_back(Event::Commit { deleted });
            }
            Command::Auth { .. } | Command::AuthList => {
                self.bad_command(Response::err("already authenticated"))
            }
            _ => self.bad_command(Response::err("command not valid in this state")),
        }
    }

    fn start_body(&mut self, size: u64, top: Option<TopCut>) {
        self.waiting = Waiting::Body;
        self.body = Some(BodyState {
            size,
            started: false,
            stuffer: Stuffer::new(),
            top,
            top_lines: 0,
            line_nonempty: false,
        });
    }

    fn sasl_line(&mut self, line: &[u8]) {
        match parse::sasl_response(line) {
            Ok(Some(data)) => {
                self.waiting = Waiting::Sasl;
                self.events.push_back(Event::AuthResponse(data));
            }
            Ok(None) => {
                self.waiting = Waiting::Command;
                self.send(&Response::err("authentication cancelled"));
                self.events.push_back(Event::AuthAborted);
            }
            Err(_) => {
                self.waiting = Waiting::Command;
                self.send(&Response::err("invalid base64 in SASL response"));
                self.events.push_back(Event::AuthAborted);
            }
        }
    }

    fn sasl_final_line(&mut self, line: &[u8]) {
        let maildrop = std::mem::take(&mut self.pending_maildrop);
        if line.is_empty() {
            self.logged_in(maildrop);
        } else {
            self.waiting = Waiting::Command;
            let text = if line == b"*" {
                "authentication cancelled"
            } else {
                "expected an empty response"
            };
            self.send(&Response::err(text));
        }
    }

    fn logged_in(&mut self, maildrop: Vec<MessageInfo>) {
        let mut maildrop = maildrop;
        maildrop.truncate(u32::MAX as usize);
        self.deleted = vec![false; maildrop.len()];
        self.maildrop = maildrop;
        self.state = State::Transaction;
        self.waiting = Waiting::Command;
        let (n, s) = self.live();
        self.send(&Response::ok(format!(
            "maildrop locked and ready, {} ({s} octets)",
            messages(n)
        )));
    }

    /// The answer to the current event.
    ///
    /// # Errors
    /// [`Error::State`] when no event waits for a reply, or the reply does not fit the event
    /// (an application bug). A misfit is also answered `-ERR [SYS/TEMP]` on the wire, so the
    /// client is never left waiting; nothing panics.
    pub fn reply(&mut self, reply: Reply) -> Result<(), Error> {
        match (self.waiting, reply) {
            (Waiting::Login | Waiting::Sasl, Reply::LoggedIn(m)) => self.logged_in(m),
            (Waiting::Sasl, Reply::SaslSuccess { data, maildrop }) => {
                self.pending_maildrop = maildrop;
                encode::challenge(&data, &mut self.output);
                self.waiting = Waiting::SaslFinalLine;
            }
            (Waiting::Sasl, Reply::Challenge(data)) => {
                encode::challenge(&data, &mut self.output);
                self.waiting = Waiting::SaslLine;
            }
            (Waiting::Login | Waiting::Sasl, Reply::AuthFailed { code, text }) => {
                self.auth_failed(code, text)
            }
            (Waiting::Login | Waiting::Sasl, Reply::Error { code, text }) => {
                self.auth_failed(code, text)
            }
            (Waiting::Body, Reply::Error { code, text }) => {
                let started = self.body.as_ref().is_some_and(|b| b.started);
                self.body = None;
                if started {
                    self.close();
                } else {
                    self.waiting = Waiting::Command;
                    self.send(&Response {
                        status: crate::types::Status::Err,
                        code,
                        text,
                    });
                }
            }
            (Waiting::Commit, Reply::Committed) => {
                let (n, _) = self.live();
                let text = if n == 0 {
                    "POP3 server signing off (maildrop empty)".to_string()
                } else {
                    format!("POP3 server signing off ({} left)", messages(n))
                };
                self.send(&Response::ok(text));
                self.close();
            }
            (Waiting::Commit, Reply::Error { code, text }) => {
                self.send(&Response {
                    status: crate::types::Status::Err,
                    code,
                    text,
                });
                self.close();
            }
            (w, _) => {
                let text = "internal server error (unexpected reply)";
                let err = match w {
                    Waiting::Login | Waiting::Sasl | Waiting::Body | Waiting::Commit => {
                        Error::State("the reply does not fit the event it answers")
                    }
                    _ => Error::State("no event is waiting for a reply"),
                };
                match w {
                    Waiting::Login | Waiting::Sasl => self.auth_failed(
                        Some(ResponseCode::SysTemp),
                        Bytes::from_static(text.as_bytes()),
                    ),
                    Waiting::Body | Waiting::Commit => {
                        let started = self.body.as_ref().is_some_and(|b| b.started);
                        if !started {
                            self.send(&Response::err_code(ResponseCode::SysTemp, text));
                        }
                        self.close();
                    }
                    _ => {}
                }
                return Err(err);
            }
        }
        Ok(())
    }

    fn auth_failed(&mut self, code: Option<ResponseCode>, text: Bytes) {
        self.auth_failures += 1;
        let close = self.auth_failures >= self.config.limits.auth_failures;
        let mut line = BytesMut::new();
        encode::response(
            &Response {
                status: crate::types::Status::Err,
                code,
                text,
            },
            &mut line,
        );
        if close {
            encode::response(
                &Response::err("too many authentication failures, closing connection"),
                &mut line,
            );
        }
        let delay = self.config.limits.auth_failure_delay;
        if delay.is_zero() {
            self.output.put_slice(&line);
            self.after_failure(close);
        } else {
            self.delayed = Some((line.freeze(), close));
            self.waiting = Waiting::Delay(self.now + delay);
        }
    }

    fn after_failure(&mut self, close: bool) {
        self.waiting = Waiting::Command;
        if close {
            self.close();
        }
    }

    /// A chunk of the body for the current [`Event::Retr`] / [`Event::Top`], any size. The
    /// first call queues the `+OK` line. Byte-stuffing (and bare-LF to CRLF) is applied
    /// across chunk borders; ignored when no body is expected or [`Connection::wants_body`]
    /// is false.
    ///
    /// # Errors
    /// [`Error::State`] when no `RETR`/`TOP` body is expected.
    pub fn send_body_chunk(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let Some(body) = &mut self.body else {
            return Err(Error::State("no RETR or TOP body is expected"));
        };
        if !body.started {
            body.started = true;
            let text = match body.top {
                Some(_) => "top of message follows".to_string(),
                None => format!("{} octets", body.size),
            };
            encode::response(&Response::ok(text), &mut self.output);
        }
        let take = match body.top {
            None => chunk.len(),
            Some(_) => top_cut(body, chunk),
        };
        body.stuffer
            .push(chunk.get(..take).unwrap_or(chunk), &mut self.output);
        Ok(())
    }

    /// False once the current `TOP` has all the lines it needs (or no body is expected):
    /// stop reading the message and call [`Connection::finish_body`].
    pub fn wants_body(&self) -> bool {
        match &self.body {
            None => false,
            Some(b) => !matches!(b.top, Some(TopCut::Done)),
        }
    }

    /// Ends the current body: completes the last line and writes `.` CRLF.
    ///
    /// # Errors
    /// [`Error::State`] when no `RETR`/`TOP` body is expected.
    pub fn finish_body(&mut self) -> Result<(), Error> {
        self.send_body_chunk(b"")?;
        if let Some(mut body) = self.body.take() {
            body.stuffer.finish(&mut self.output);
        }
        self.waiting = Waiting::Command;
        Ok(())
    }

    /// The TLS handshake after [`Event::StartTls`] succeeded: the session restarts in
    /// AUTHORIZATION with `STLS` no longer offered.
    ///
    /// # Errors
    /// [`Error::State`] when no `STLS` was accepted (nothing changes then).
    pub fn tls_established(&mut self) -> Result<(), Error> {
        if self.waiting != Waiting::Tls {
            return Err(Error::State("no STLS upgrade is pending"));
        }
        self.config.tls_active = true;
        self.waiting = Waiting::Command;
        self.input.clear();
        self.scanned = 0;
        Ok(())
    }

    /// Bytes to write to the peer, in order.
    pub fn take_output(&mut self) -> Option<Bytes> {
        if self.output.is_empty() {
            None
        } else {
            Some(self.output.split().freeze())
        }
    }

    /// Octets of output waiting for [`Connection::take_output`].
    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    /// Advances the machine's clock; fires the failed-login delay and autologout.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
        if let Waiting::Delay(deadline) = self.waiting {
            if now >= deadline {
                if let Some((line, close)) = self.delayed.take() {
                    self.output.put_slice(&line);
                    self.after_failure(close);
                }
                self.idle_deadline = now + self.config.limits.idle_timeout;
            }
            return;
        }
        let idle = matches!(
            self.waiting,
            Waiting::Command | Waiting::SaslLine | Waiting::SaslFinalLine
        );
        if idle && self.state != State::Closed && now >= self.idle_deadline {
            // RFC 1939 section 3: autologout does not enter UPDATE.
            self.send(&Response::err("autologout; idle for too long"));
            self.close();
        }
    }

    /// When [`Connection::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        match self.waiting {
            Waiting::Delay(d) => Some(d),
            Waiting::Command | Waiting::SaslLine | Waiting::SaslFinalLine => {
                Some(self.idle_deadline)
            }
            _ => None,
        }
    }

    /// True once the session is over; write the remaining output, then close the socket.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }
}

/// `1 message`, `2 messages`.
fn messages(n: usize) -> String {
    if n == 1 {
        "1 message".into()
    } else {
        format!("{n} messages")
    }
}

fn msg_number(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}

fn put_text(out: &mut BytesMut, t: &[u8]) {
    out.extend(t.iter().map(|&b| {
        if b == b'\r' || b == b'\n' || b == 0 {
            b' '
        } else {
            b
        }
    }));
}

/// How much of `chunk` a `TOP` still wants; advances the cut state.
fn top_cut(body: &mut BodyState, chunk: &[u8]) -> usize {
    let mut pos = 0;
    loop {
        match body.top {
            Some(TopCut::Done) | None => return pos,
            Some(TopCut::Header) | Some(TopCut::Body(_)) => {}
        }
        let rest = chunk.get(pos..).unwrap_or_default();
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            body.line_nonempty |= rest.iter().any(|&b| b != b'\r');
            return chunk.len();
        };
        let seg = rest.get(..nl).unwrap_or_default();
        let nonempty = body.line_nonempty || seg.iter().any(|&b| b != b'\r');
        body.line_nonempty = false;
        pos += nl + 1;
        body.top = match body.top {
            Some(TopCut::Header) if !nonempty => {
                let n = body.top_lines;
                if n == 0 {
                    Some(TopCut::Done)
                } else {
                    Some(TopCut::Body(n))
                }
            }
            Some(TopCut::Body(n)) => {
                if n <= 1 {
                    Some(TopCut::Done)
                } else {
                    Some(TopCut::Body(n - 1))
                }
            }
            other => other,
        };
    }
}
