//! The client-side IMAP state machine: the mirror of [`crate::server::Connection`].
//!
//! [`Connection`] turns commands into bytes (tags assigned, synchronising literals held back
//! until the server's `+`, or sent at once with LITERAL+/LITERAL-), frames the server's
//! responses (lines and literals; large FETCH bodies streamed as
//! [`Event::FetchBodyChunk`]s instead of buffered), parses them with [`crate::parse`] and
//! matches tagged completions to commands.
//!
//! ```
//! use imap_proto::client::{Config, Connection, Event};
//! use imap_proto::types::{CommandBody, StatusKind};
//!
//! let mut conn = Connection::new(Config::default());
//! conn.feed(b"* OK [CAPABILITY IMAP4rev2 LITERAL+] ready\r\n");
//! assert!(matches!(conn.next_event(), Some(Event::Greeting(_))));
//! let tag = conn.send(CommandBody::Noop).unwrap();
//! assert_eq!(&conn.take_output().unwrap()[..], b"A1 NOOP\r\n");
//! conn.feed(b"* 3 EXISTS\r\nA1 OK done\r\n");
//! assert!(matches!(conn.next_event(), Some(Event::Untagged(_))));
//! match conn.next_event() {
//!     Some(Event::Completed { tag: t, status }) => {
//!         assert_eq!(t, tag);
//!         assert_eq!(status.kind, StatusKind::Ok);
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```

use std::collections::VecDeque;

use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};

use crate::encode::{self, EncodeOptions, Fragment};
use crate::parse::{self, FetchLiteralPrefix, ParseError, ParserOptions};
use crate::server::Error;
use crate::types::{
    Capability, Code, Command, CommandBody, Continue, Data, DateTime, Flag, Greeting, GreetingKind,
    Mailbox, Response, StatusKind, StatusResponse, Tag, Text,
};

/// Client limits and options.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Largest response held in memory (lines plus literals that are not streamed).
    /// Default 16 MiB.
    pub max_response: usize,
    /// FETCH literals larger than this are streamed as [`Event::FetchBodyStart`] /
    /// [`Event::FetchBodyChunk`] / [`Event::FetchBodyEnd`] instead of being buffered.
    /// Default 256 KiB.
    pub stream_threshold: u64,
    /// Parser options (line limit, `quirk_*` tolerances).
    pub parser: ParserOptions,
    /// Prefix of generated tags (`A1`, `A2`, ...). Default `A`.
    pub tag_prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_response: 16 * 1024 * 1024,
            stream_threshold: 256 * 1024,
            parser: ParserOptions::default(),
            tag_prefix: "A".into(),
        }
    }
}

/// What the application learns from the server, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "events carry the server's answers"]
#[non_exhaustive]
pub enum Event {
    /// The greeting (`* OK`, `* PREAUTH` or `* BYE`).
    Greeting(Greeting),
    /// Untagged data or status (`* 3 EXISTS`, `* OK [UIDVALIDITY ..]`, `* BYE`, ...).
    Untagged(Response),
    /// The tagged completion of a command sent with [`Connection::send`].
    Completed {
        /// The command's tag.
        tag: Tag,
        /// `OK`/`NO`/`BAD` with code and text.
        status: StatusResponse,
    },
    /// A SASL challenge during AUTHENTICATE: answer with [`Connection::auth_respond`] or
    /// [`Connection::auth_cancel`].
    AuthChallenge(Bytes),
    /// The server accepted IDLE (`+ idling`); stop it with [`Connection::idle_done`].
    IdleStarted,
    /// The server is ready for the APPEND message announced by
    /// [`Connection::append_start`]: send it with [`Connection::append_chunk`].
    AppendReady,
    /// A `+` continuation the machine did not expect.
    Continuation(Continue),
    /// A large literal in a FETCH response begins; chunks follow.
    FetchBodyStart {
        /// The FETCH response's start: sequence number, items before the literal, the item
        /// and the literal's length.
        prefix: Box<FetchLiteralPrefix>,
    },
    /// The next bytes of the streamed FETCH literal.
    FetchBodyChunk(Bytes),
    /// The streamed literal is complete. The items after it (e.g. `UID`) follow as an
    /// [`Event::Untagged`] FETCH for the same message, if there are any.
    FetchBodyEnd,
    /// A response that could not be parsed; it was skipped.
    ProtocolError {
        /// What the parser said.
        reason: String,
        /// The response bytes (truncated to 200 bytes).
        raw: Bytes,
    },
}

/// A segment of output: bytes, or a stop until the server sends `+`.
#[derive(Debug)]
enum Seg {
    Bytes(Bytes),
    AwaitContinuation,
    /// The APPEND message, supplied through `append_chunk`: nothing queued behind it may be
    /// written before it is complete.
    AppendData,
}

#[derive(Debug)]
struct Outgoing {
    tag: Tag,
    segs: VecDeque<Seg>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Special {
    None,
    Auth(Tag),
    Idle {
        tag: Tag,
        started: bool,
        done_sent: bool,
    },
    Append {
        tag: Tag,
        remaining: u64,
        ready: bool,
    },
}

#[derive(Debug)]
enum Read {
    /// Reading responses.
    Normal,
    /// Streaming a FETCH literal (or skipping a literal too large to hold); then the rest
    /// of that response.
    Stream {
        remaining: u64,
        seq: u32,
        skipping: bool,
    },
}

/// The client side of one IMAP connection. See the [module docs](self).
#[derive(Debug)]
pub struct Connection {
    config: Config,
    input: BytesMut,
    scan: usize,
    acc_literal: u64,
    out: BytesMut,
    queue: VecDeque<Outgoing>,
    blocked: Option<Tag>,
    in_flight: Vec<Tag>,
    next_tag: u64,
    greeted: bool,
    special: Special,
    read: Read,
    capabilities: Vec<Capability>,
    closed: bool,
    pending_rest: bool,
    skip_line: bool,
    utf8: bool,
}

impl Connection {
    /// A new connection; the first thing expected is the server's greeting.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            input: BytesMut::new(),
            scan: 0,
            acc_literal: 0,
            out: BytesMut::new(),
            queue: VecDeque::new(),
            blocked: None,
            in_flight: Vec::new(),
            next_tag: 1,
            greeted: false,
            special: Special::None,
            read: Read::Normal,
            capabilities: Vec::new(),
            closed: false,
            pending_rest: false,
            skip_line: false,
            utf8: false,
        }
    }

    /// Bytes read from the server.
    pub fn feed(&mut self, input: &[u8]) {
        self.input.extend_from_slice(input);
    }

    /// Bytes to write to the server.
    pub fn take_output(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.split().freeze())
        }
    }

    /// The capabilities last announced (greeting code, CAPABILITY response or the
    /// `[CAPABILITY ..]` code of a login).
    pub fn capabilities(&self) -> &[Capability] {
        &self.capabilities
    }

    /// Whether the server announced `name`.
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.iter().any(|c| c.is(name))
    }

    /// Replaces the known capabilities (e.g. after STARTTLS, when the old list is void).
    pub fn clear_capabilities(&mut self) {
        self.capabilities.clear();
    }

    /// Whether the server said BYE or the connection otherwise ended.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Tags of commands sent and not yet completed.
    pub fn in_flight(&self) -> &[Tag] {
        &self.in_flight
    }

    /// Discards buffered input (after STARTTLS: bytes that came before the handshake must
    /// not be read as if they were protected).
    pub fn discard_input(&mut self) {
        self.input.clear();
        self.scan = 0;
    }

    fn new_tag(&mut self) -> Result<Tag, Error> {
        let t = format!("{}{}", self.config.tag_prefix, self.next_tag);
        self.next_tag += 1;
        Tag::new(Bytes::from(t)).map_err(|_| Error::InvalidData("tag prefix is not a valid tag"))
    }

    fn literal_plus(&self, len: u64) -> bool {
        self.has_capability("LITERAL+") || (self.has_capability("LITERAL-") && len <= 4096)
    }

    /// Sends a command and returns its tag. Synchronising literals wait for the server's
    /// `+`; with LITERAL+ (or LITERAL- for literals up to 4096 bytes) they are sent at once.
    /// Use [`authenticate`](Self::authenticate), [`idle`](Self::idle) and
    /// [`append_start`](Self::append_start) for the commands with their own flow.
    pub fn send(&mut self, body: CommandBody) -> Result<Tag, Error> {
        if matches!(body, CommandBody::Idle | CommandBody::Authenticate { .. }) {
            return Err(Error::NotExpected {
                call: "send",
                reason: "use idle() / authenticate()",
            });
        }
        let tag = self.new_tag()?;
        let cmd = Command::new(tag.clone(), body);
        let segs = self.encode(&cmd)?;
        self.enqueue(Outgoing {
            tag: tag.clone(),
            segs,
        });
        Ok(tag)
    }

    /// Encodes a command into output segments.
    fn encode(&self, cmd: &Command) -> Result<VecDeque<Seg>, Error> {
        let base = EncodeOptions::default().with_utf8(self.utf8);
        let mut frags = encode::command_with(cmd, &base);
        let literal_sizes = || {
            frags.iter().filter_map(|f| match f {
                Fragment::Literal { data, .. } => Some(data.len() as u64),
                Fragment::Line(_) => None,
            })
        };
        let has_literals = literal_sizes().next().is_some();
        let plus = has_literals
            && (self.has_capability("LITERAL+")
                || (self.has_capability("LITERAL-") && literal_sizes().all(|n| n <= 4096)));
        if plus {
            frags = encode::command_with(cmd, &base.with_literal_plus(true));
        }
        let mut segs = VecDeque::new();
        for frag in frags {
            match frag {
                Fragment::Line(data) => segs.push_back(Seg::Bytes(data)),
                Fragment::Literal { data, sync } => {
                    if sync {
                        segs.push_back(Seg::AwaitContinuation);
                    }
                    segs.push_back(Seg::Bytes(data));
                }
            }
        }
        Ok(segs)
    }

    fn enqueue(&mut self, o: Outgoing) {
        self.in_flight.push(o.tag.clone());
        self.queue.push_back(o);
        self.pump();
    }

    /// Writes queued segments until one must wait for a continuation.
    fn pump(&mut self) {
        if self.blocked.is_some() {
            return;
        }
        loop {
            // While an AUTHENTICATE exchange or an IDLE runs, every line the client writes
            // belongs to it (SASL responses, DONE): commands queued after it wait for its
            // completion. Commands queued before it (still in the queue) finish first.
            if let Special::Auth(t) | Special::Idle { tag: t, .. } = &self.special
                && !self.queue.iter().any(|o| o.tag == *t)
                && !self.queue.is_empty()
            {
                return;
            }
            let Some(front) = self.queue.front_mut() else {
                break;
            };
            while let Some(seg) = front.segs.pop_front() {
                match seg {
                    Seg::Bytes(b) => self.out.extend_from_slice(&b),
                    Seg::AwaitContinuation => {
                        self.blocked = Some(front.tag.clone());
                        return;
                    }
                    Seg::AppendData => {
                        if matches!(self.special, Special::Append { .. }) {
                            front.segs.push_front(Seg::AppendData);
                            return;
                        }
                    }
                }
            }
            self.queue.pop_front();
        }
    }

    /// Starts `AUTHENTICATE mechanism [initial-response]` (SASL-IR when `initial` is given
    /// and the server announced SASL-IR; otherwise the initial response waits for the first
    /// `+`, which is then answered automatically).
    pub fn authenticate(&mut self, mechanism: &str, initial: Option<&[u8]>) -> Result<Tag, Error> {
        if !mechanism.bytes().all(crate::types::is_atom_char) || mechanism.is_empty() {
            return Err(Error::InvalidData("mechanism is not an atom"));
        }
        if self.special != Special::None {
            return Err(Error::NotExpected {
                call: "authenticate",
                reason: "another IDLE/AUTHENTICATE/APPEND is running",
            });
        }
        let tag = self.new_tag()?;
        let mut line = format!("{tag} AUTHENTICATE {mechanism}");
        let mut segs = VecDeque::new();
        match initial {
            Some(ir) if self.has_capability("SASL-IR") => {
                line.push(' ');
                if ir.is_empty() {
                    line.push('=');
                } else {
                    line.push_str(&base64::engine::general_purpose::STANDARD.encode(ir));
                }
                line.push_str("\r\n");
                segs.push_back(Seg::Bytes(Bytes::from(line)));
            }
            Some(ir) => {
                line.push_str("\r\n");
                segs.push_back(Seg::Bytes(Bytes::from(line)));
                segs.push_back(Seg::AwaitContinuation);
                let mut resp = base64::engine::general_purpose::STANDARD.encode(ir);
                resp.push_str("\r\n");
                segs.push_back(Seg::Bytes(Bytes::from(resp)));
            }
            None => {
                line.push_str("\r\n");
                segs.push_back(Seg::Bytes(Bytes::from(line)));
            }
        }
        self.special = Special::Auth(tag.clone());
        self.enqueue(Outgoing {
            tag: tag.clone(),
            segs,
        });
        Ok(tag)
    }

    /// Answers an [`Event::AuthChallenge`].
    pub fn auth_respond(&mut self, response: &[u8]) -> Result<(), Error> {
        if !matches!(self.special, Special::Auth(_)) {
            return Err(Error::NotExpected {
                call: "auth_respond",
                reason: "no AUTHENTICATE in progress",
            });
        }
        let mut line = base64::engine::general_purpose::STANDARD.encode(response);
        line.push_str("\r\n");
        self.out.extend_from_slice(line.as_bytes());
        Ok(())
    }

    /// Cancels an AUTHENTICATE exchange (`*`); the server answers `BAD`.
    pub fn auth_cancel(&mut self) -> Result<(), Error> {
        if !matches!(self.special, Special::Auth(_)) {
            return Err(Error::NotExpected {
                call: "auth_cancel",
                reason: "no AUTHENTICATE in progress",
            });
        }
        self.out.extend_from_slice(b"*\r\n");
        Ok(())
    }

    /// Starts IDLE. [`Event::IdleStarted`] follows when the server accepts it; updates come
    /// as [`Event::Untagged`]; end it with [`idle_done`](Self::idle_done).
    pub fn idle(&mut self) -> Result<Tag, Error> {
        if self.special != Special::None {
            return Err(Error::NotExpected {
                call: "idle",
                reason: "another IDLE/AUTHENTICATE/APPEND is running",
            });
        }
        let tag = self.new_tag()?;
        let line = Bytes::from(format!("{tag} IDLE\r\n"));
        self.special = Special::Idle {
            tag: tag.clone(),
            started: false,
            done_sent: false,
        };
        self.enqueue(Outgoing {
            tag: tag.clone(),
            segs: VecDeque::from([Seg::Bytes(line)]),
        });
        Ok(tag)
    }

    /// Ends IDLE (`DONE`). The tagged `OK` follows as [`Event::Completed`].
    pub fn idle_done(&mut self) -> Result<(), Error> {
        match &mut self.special {
            Special::Idle {
                started: true,
                done_sent,
                ..
            } if !*done_sent => {
                *done_sent = true;
                self.out.extend_from_slice(b"DONE\r\n");
                Ok(())
            }
            _ => Err(Error::NotExpected {
                call: "idle_done",
                reason: "not idling",
            }),
        }
    }

    /// Starts an APPEND of a `size`-byte message to be streamed: with LITERAL+ (or LITERAL-
    /// and at most 4096 bytes) the data may follow at once ([`append_ready`](Self::append_ready)),
    /// otherwise after [`Event::AppendReady`]. Send exactly `size` bytes with
    /// [`append_chunk`](Self::append_chunk); the completion comes as [`Event::Completed`].
    pub fn append_start(
        &mut self,
        mailbox: &Mailbox,
        flags: &[Flag],
        date: Option<&DateTime>,
        size: u64,
    ) -> Result<Tag, Error> {
        if self.special != Special::None {
            return Err(Error::NotExpected {
                call: "append_start",
                reason: "another IDLE/AUTHENTICATE/APPEND is running",
            });
        }
        let tag = self.new_tag()?;
        let plus = self.literal_plus(size);
        // Encode the prefix through the command encoder with an empty message, then replace
        // the empty literal's announcement with the real size.
        let mut line = BytesMut::new();
        line.extend_from_slice(format!("{tag} APPEND ").as_bytes());
        line.extend_from_slice(&mailbox_arg(mailbox, self.utf8));
        if !flags.is_empty() {
            let f: Vec<String> = flags.iter().map(ToString::to_string).collect();
            line.extend_from_slice(format!(" ({})", f.join(" ")).as_bytes());
        }
        if let Some(d) = date {
            line.extend_from_slice(format!(" \"{d}\"").as_bytes());
        }
        let ann = if plus {
            format!(" {{{size}+}}\r\n")
        } else {
            format!(" {{{size}}}\r\n")
        };
        line.extend_from_slice(ann.as_bytes());
        let mut segs = VecDeque::from([Seg::Bytes(line.freeze())]);
        if !plus {
            segs.push_back(Seg::AwaitContinuation);
        }
        segs.push_back(Seg::AppendData);
        self.special = Special::Append {
            tag: tag.clone(),
            remaining: size,
            ready: plus,
        };
        self.enqueue(Outgoing {
            tag: tag.clone(),
            segs,
        });
        Ok(tag)
    }

    /// The next bytes of the APPEND message. After the last byte the command's CRLF is
    /// written automatically.
    pub fn append_chunk(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let Special::Append {
            remaining,
            ready: true,
            ..
        } = &mut self.special
        else {
            return Err(Error::NotExpected {
                call: "append_chunk",
                reason: "no APPEND is ready for data",
            });
        };
        let n = chunk.len() as u64;
        if n > *remaining {
            return Err(Error::LiteralLength {
                announced: n,
                remaining: *remaining,
            });
        }
        *remaining -= n;
        let done = *remaining == 0;
        self.out.extend_from_slice(chunk);
        if done {
            self.out.extend_from_slice(b"\r\n");
            self.special = Special::None;
            self.pump();
        }
        Ok(())
    }

    /// Whether the APPEND started with [`append_start`](Self::append_start) may send its
    /// data now (at once with LITERAL+, else after [`Event::AppendReady`]).
    pub fn append_ready(&self) -> bool {
        matches!(self.special, Special::Append { ready: true, .. })
    }

    /// The next event, or `None` when more input is needed.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Read::Stream {
                remaining,
                seq,
                skipping,
            } = self.read
            {
                if remaining > 0 && skipping {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(self.input.len());
                    self.input.advance(n);
                    self.read = Read::Stream {
                        remaining: remaining - n as u64,
                        seq,
                        skipping,
                    };
                    if self.input.is_empty() {
                        return None;
                    }
                    continue;
                }
                if remaining > 0 {
                    if self.input.is_empty() {
                        return None;
                    }
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(self.input.len());
                    let chunk = self.input.split_to(n).freeze();
                    self.read = Read::Stream {
                        remaining: remaining - n as u64,
                        seq,
                        skipping,
                    };
                    return Some(Event::FetchBodyChunk(chunk));
                }
                // The rest of the FETCH response after the literal: re-frame it as a FETCH of
                // its own so the items after the literal are parsed too.
                self.read = Read::Normal;
                if skipping {
                    self.skip_line = true;
                    continue;
                }
                let rest = format!("* {seq} FETCH (");
                let mut buf = BytesMut::from(rest.as_bytes());
                let tail = self.input.split();
                let t: &[u8] = &tail;
                let t = t.strip_prefix(b" ").unwrap_or(t);
                buf.extend_from_slice(t);
                self.input = buf;
                self.scan = 0;
                self.pending_rest = true;
                return Some(Event::FetchBodyEnd);
            }
            let msg = match self.frame() {
                Framed::Need => return None,
                Framed::Stream(prefix) => return Some(Event::FetchBodyStart { prefix }),
                Framed::Message(m) => m,
                Framed::TooBig(raw) => {
                    return Some(Event::ProtocolError {
                        reason: "response too large".into(),
                        raw,
                    });
                }
            };
            if std::mem::take(&mut self.pending_rest)
                && msg.starts_with(b"* ")
                && msg.ends_with(b"FETCH ()\r\n")
            {
                // Nothing followed the streamed literal but the closing parenthesis.
                continue;
            }
            if !self.greeted {
                self.greeted = true;
                match parse::greeting_with(&msg, &self.config.parser) {
                    Ok((_, g)) => {
                        if let Some(Code::Capability(c)) = &g.code {
                            self.capabilities.clone_from(c);
                        }
                        if g.kind == GreetingKind::Bye {
                            self.closed = true;
                        }
                        return Some(Event::Greeting(g));
                    }
                    Err(e) => return Some(protocol_error(&e, msg)),
                }
            }
            let resp = match parse::response_bytes(&msg, &self.config.parser) {
                Ok((_, r)) => r,
                Err(e) => {
                    // A completion we cannot parse still completes its command: report it
                    // as BAD rather than leaving the caller waiting.
                    if let Some(ev) = self.unparsable_completion(&msg, &e) {
                        return Some(ev);
                    }
                    return Some(protocol_error(&e, msg));
                }
            };
            if let Some(ev) = self.on_response(resp) {
                return Some(ev);
            }
        }
    }

    fn on_response(&mut self, resp: Response) -> Option<Event> {
        match resp {
            Response::Continue(c) => self.on_continue(c),
            Response::Status(s) if s.tag.is_some() => {
                let tag = s.tag.clone()?;
                if let Some(Code::Capability(c)) = &s.code {
                    self.capabilities.clone_from(c);
                }
                self.in_flight.retain(|t| t != &tag);
                if self.blocked.as_ref() == Some(&tag) {
                    // Refused before its literal was sent: drop the rest of the command.
                    self.blocked = None;
                    if let Some(pos) = self.queue.iter().position(|o| o.tag == tag) {
                        self.queue.remove(pos);
                    }
                    self.pump();
                }
                match &self.special {
                    Special::Auth(t) | Special::Idle { tag: t, .. } if *t == tag => {
                        self.special = Special::None;
                        // Commands pipelined behind the exchange can go now.
                        self.pump();
                    }
                    // Refused before its data was invited: the data is never sent.
                    Special::Append {
                        tag: t,
                        ready: false,
                        ..
                    } if *t == tag => {
                        self.special = Special::None;
                        self.pump();
                    }
                    _ => {}
                }
                Some(Event::Completed { tag, status: s })
            }
            Response::Status(s) => {
                if let Some(Code::Capability(c)) = &s.code {
                    self.capabilities.clone_from(c);
                }
                if s.kind == StatusKind::Bye {
                    self.closed = true;
                }
                Some(Event::Untagged(Response::Status(s)))
            }
            Response::Data(d) => {
                match &d {
                    Data::Capability(c) => self.capabilities.clone_from(c),
                    Data::Enabled(e)
                        if e.iter().any(|c| c.is("UTF8=ACCEPT") || c.is("IMAP4rev2")) =>
                    {
                        self.utf8 = true;
                        self.config.parser.utf8_mailboxes = true;
                    }
                    _ => {}
                }
                Some(Event::Untagged(Response::Data(d)))
            }
        }
    }

    fn on_continue(&mut self, c: Continue) -> Option<Event> {
        if let Some(blocked) = &self.blocked {
            if let Special::Append { tag, ready, .. } = &mut self.special
                && tag == blocked
                && !*ready
            {
                *ready = true;
                self.blocked = None;
                return Some(Event::AppendReady);
            }
            self.blocked = None;
            self.pump();
            // An AUTHENTICATE whose initial response waited for this `+` is answered.
            return None;
        }
        match &mut self.special {
            Special::Auth(_) => {
                let data = match c {
                    Continue::Base64(b) => b,
                    Continue::Text { .. } => Bytes::new(),
                };
                Some(Event::AuthChallenge(data))
            }
            Special::Idle { started, .. } if !*started => {
                *started = true;
                Some(Event::IdleStarted)
            }
            Special::Append { ready, .. } if !*ready => {
                *ready = true;
                Some(Event::AppendReady)
            }
            _ => Some(Event::Continuation(c)),
        }
    }

    /// Frames the next complete response, or starts streaming a large FETCH literal.
    fn frame(&mut self) -> Framed {
        if self.skip_line {
            let Some(i) = memchr::memchr(b'\n', &self.input) else {
                self.input.clear();
                return Framed::Need;
            };
            self.input.advance(i + 1);
            self.scan = 0;
            self.skip_line = false;
        }
        loop {
            if self.acc_literal > 0 {
                let have = self.input.len().saturating_sub(self.scan) as u64;
                if have < self.acc_literal {
                    return Framed::Need;
                }
                self.scan += usize::try_from(self.acc_literal).unwrap_or(usize::MAX);
                self.acc_literal = 0;
            }
            let from = self.scan.min(self.input.len());
            let Some(i) = memchr::memchr(b'\n', self.input.get(from..).unwrap_or_default()) else {
                if self.input.len() > self.config.max_response {
                    let raw = self.input.split().freeze();
                    self.scan = 0;
                    return Framed::TooBig(raw.slice(..raw.len().min(200)));
                }
                return Framed::Need;
            };
            let line_end = from + i + 1;
            let line = self.input.get(from..from + i).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match parse::literal_announcement(line) {
                None => {
                    let msg = self.input.split_to(line_end).freeze();
                    self.scan = 0;
                    return Framed::Message(msg);
                }
                Some(h) => {
                    let is_fetch = from == 0 && self.input.starts_with(b"* ");
                    if is_fetch && h.len > self.config.stream_threshold {
                        let head = self.input.get(..line_end).unwrap_or_default();
                        if let Ok(prefix) = parse::fetch_literal_prefix(head, &self.config.parser) {
                            self.input.advance(line_end);
                            self.scan = 0;
                            self.read = Read::Stream {
                                remaining: h.len,
                                seq: prefix.seq.get(),
                                skipping: false,
                            };
                            return Framed::Stream(Box::new(prefix));
                        }
                    }
                    if line_end as u64 + h.len > self.config.max_response as u64 {
                        // Too big to hold and not streamable: skip the literal.
                        let raw = self.input.split_to(line_end).freeze();
                        self.scan = 0;
                        self.read = Read::Stream {
                            remaining: h.len,
                            seq: 0,
                            skipping: true,
                        };
                        return Framed::TooBig(raw.slice(..raw.len().min(200)));
                    }
                    self.scan = line_end;
                    self.acc_literal = h.len;
                }
            }
        }
    }
}

#[derive(Debug)]
enum Framed {
    Need,
    Stream(Box<FetchLiteralPrefix>),
    Message(Bytes),
    TooBig(Bytes),
}

impl Connection {
    fn unparsable_completion(&mut self, msg: &[u8], e: &ParseError) -> Option<Event> {
        let sp = memchr::memchr(b' ', msg.get(..msg.len().min(128))?)?;
        let word = msg.get(..sp)?;
        let pos = self.in_flight.iter().position(|t| t.as_bytes() == word)?;
        let tag = self.in_flight.remove(pos);
        let reason = match e {
            ParseError::Failed { reason, .. } => *reason,
            _ => "incomplete",
        };
        let text = Text::new(format!("unparsable completion from the server ({reason})")).ok()?;
        let status = StatusResponse::tagged(tag.clone(), StatusKind::Bad, None, text).ok()?;
        if self.blocked.as_ref() == Some(&tag) {
            self.blocked = None;
            self.queue.retain(|o| o.tag != tag);
        }
        match &self.special {
            Special::Auth(t)
            | Special::Idle { tag: t, .. }
            | Special::Append {
                tag: t,
                ready: false,
                ..
            } if *t == tag => {
                self.special = Special::None;
            }
            _ => {}
        }
        self.pump();
        Some(Event::Completed { tag, status })
    }
}

fn protocol_error(e: &ParseError, msg: Bytes) -> Event {
    let reason = match e {
        ParseError::Failed { reason, .. } => (*reason).to_string(),
        other => other.to_string(),
    };
    Event::ProtocolError {
        reason,
        raw: msg.slice(..msg.len().min(200)),
    }
}

/// A mailbox name as an `astring` (modified UTF-7, quoted when needed).
fn mailbox_arg(mailbox: &Mailbox, utf8: bool) -> Vec<u8> {
    let name = if utf8 {
        mailbox.as_str().to_string()
    } else {
        crate::types::encode_mutf7(mailbox.as_str())
    };
    if name.bytes().any(|b| b == b'\r' || b == b'\n' || b >= 0x80) {
        let mut out = format!("{{{}+}}\r\n", name.len()).into_bytes();
        out.extend_from_slice(name.as_bytes());
        return out;
    }
    if !name.is_empty() && name.bytes().all(crate::types::is_astring_char) {
        return name.into_bytes();
    }
    let mut out = Vec::with_capacity(name.len() + 2);
    out.push(b'"');
    for b in name.bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    out
}
