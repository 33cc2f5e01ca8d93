//! The client-side state machine: [`Connection`].
//!
//! It mirrors the server: [`send`](Connection::send) commands (or a whole transaction with
//! [`send_transaction`](Connection::send_transaction), which pipelines when the server
//! advertised PIPELINING and waits for each reply otherwise), [`feed`](Connection::feed)
//! what the server wrote, and act on each [`Event`]: every reply comes out matched to the
//! command it answers. Message bodies are streamed with
//! [`send_body`](Connection::send_body) (dot-stuffed across chunk borders) and
//! [`finish_body`](Connection::finish_body), or as BDAT chunks.
//!
//! ```
//! use std::time::Instant;
//! use smtp_proto::client::{Config, Connection, Event, Sent};
//! use smtp_proto::{Command, HelloVerb};
//!
//! let mut c = Connection::new(Config::new("client.example"), Instant::now());
//! c.feed(b"220 mx.example.org ESMTP\r\n");
//! assert!(matches!(c.next_event(), Some(Event::Reply { to: Sent::Greeting, .. })));
//! c.send(Command::Hello { verb: HelloVerb::Ehlo, domain: "client.example".into() }).unwrap();
//! assert_eq!(&c.take_output().unwrap()[..], b"EHLO client.example\r\n");
//! c.feed(b"250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");
//! assert!(matches!(c.next_event(), Some(Event::Reply { to: Sent::Hello, .. })));
//! let caps = c.capabilities().unwrap();
//! assert!(caps.pipelining);
//! assert_eq!(caps.size, Some(1000));
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};

use crate::Secret;
use crate::encode;
use crate::error::Error;
use crate::parse;
use crate::types::{Command, ForwardPath, MailParams, RcptParams, Reply, ReversePath};

/// Client timeouts: RFC 5321 section 4.5.3.2's values are the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Waiting for the `220` greeting (5 minutes).
    pub greeting: Duration,
    /// Waiting for the reply to `MAIL` (5 minutes).
    pub mail: Duration,
    /// Waiting for the reply to `RCPT` (5 minutes).
    pub rcpt: Duration,
    /// Waiting for `354` after `DATA` (2 minutes).
    pub data_init: Duration,
    /// Waiting for the reply after the final dot or `BDAT LAST` (10 minutes).
    pub data_termination: Duration,
    /// Any other command (5 minutes).
    pub other: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let five = Duration::from_secs(300);
        Timeouts {
            greeting: five,
            mail: five,
            rcpt: five,
            data_init: Duration::from_secs(120),
            data_termination: Duration::from_secs(600),
            other: five,
        }
    }
}

/// Client configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The name we send with `EHLO`/`LHLO`.
    pub hostname: String,
    /// Speak LMTP: one reply per accepted recipient after the message.
    pub lmtp: bool,
    /// Longest reply line accepted (default 4096 octets).
    pub max_line_length: usize,
    /// Most lines in one reply (default 256).
    pub max_reply_lines: usize,
    /// Timeouts.
    pub timeouts: Timeouts,
}

impl Config {
    /// A configuration with the defaults and our `EHLO` name.
    pub fn new(hostname: impl Into<String>) -> Self {
        Config {
            hostname: hostname.into(),
            lmtp: false,
            max_line_length: 4096,
            max_reply_lines: 256,
            timeouts: Timeouts::default(),
        }
    }
}

/// The extensions a server advertised in its `EHLO`/`LHLO` reply.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// The server's name (first word of the first line).
    pub domain: String,
    /// PIPELINING.
    pub pipelining: bool,
    /// SIZE, with its limit when one was given (0 means no fixed limit).
    pub size: Option<u64>,
    /// 8BITMIME.
    pub eight_bit_mime: bool,
    /// SMTPUTF8.
    pub smtputf8: bool,
    /// ENHANCEDSTATUSCODES.
    pub enhanced_status_codes: bool,
    /// CHUNKING.
    pub chunking: bool,
    /// BINARYMIME.
    pub binary_mime: bool,
    /// DSN.
    pub dsn: bool,
    /// STARTTLS.
    pub starttls: bool,
    /// REQUIRETLS.
    pub requiretls: bool,
    /// SASL mechanisms from `AUTH` (and the pre-standard `AUTH=` form), upper case.
    pub auth: Vec<String>,
    /// Every other keyword line, as received.
    pub other: Vec<String>,
}

impl Capabilities {
    /// Reads the capability lines of an `EHLO` reply.
    pub fn from_reply(reply: &Reply) -> Self {
        let mut c = Capabilities::default();
        let mut lines = reply.lines.iter();
        if let Some(first) = lines.next() {
            c.domain = first.split(' ').next().unwrap_or_default().to_string();
        }
        for line in lines {
            let mut words = line.split([' ', '=']).filter(|w| !w.is_empty());
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => c.pipelining = true,
                "SIZE" => c.size = Some(words.next().and_then(|w| w.parse().ok()).unwrap_or(0)),
                "8BITMIME" => c.eight_bit_mime = true,
                "SMTPUTF8" => c.smtputf8 = true,
                "ENHANCEDSTATUSCODES" => c.enhanced_status_codes = true,
                "CHUNKING" => c.chunking = true,
                "BINARYMIME" => c.binary_mime = true,
                "DSN" => c.dsn = true,
                "STARTTLS" => c.starttls = true,
                "REQUIRETLS" => c.requiretls = true,
                "AUTH" => {
                    for m in words {
                        let m = m.to_ascii_uppercase();
                        if !c.auth.contains(&m) {
                            c.auth.push(m);
                        }
                    }
                }
                _ => c.other.push(line.clone()),
            }
        }
        c
    }
}

/// What a reply answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Sent {
    /// The server's greeting.
    Greeting,
    /// `EHLO`, `HELO` or `LHLO`.
    Hello,
    /// `MAIL`.
    Mail,
    /// `RCPT`.
    Rcpt,
    /// `DATA` (expect 354).
    Data,
    /// The end of the message (final dot or `BDAT LAST`); in LMTP one per accepted
    /// recipient.
    Message,
    /// A `BDAT` chunk that is not the last.
    Bdat,
    /// `RSET`.
    Rset,
    /// `VRFY`, `EXPN`, `HELP` or `NOOP`.
    Other,
    /// `QUIT`.
    Quit,
    /// `STARTTLS`.
    StartTls,
    /// `AUTH` or a SASL response line.
    Auth,
}

/// What the application must act on.
#[must_use = "replies tell whether the command worked"]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A complete reply, matched to what it answers.
    Reply {
        /// The command it answers.
        to: Sent,
        /// The reply.
        reply: Reply,
    },
    /// The server did not answer within the RFC 5321 timeout for `Sent`; the connection
    /// is unusable.
    TimedOut(Sent),
    /// The server wrote something that is not an SMTP reply, or a reply nobody asked for;
    /// the connection is unusable.
    ProtocolError(Error),
}

/// The rest of a transaction waiting for the reply to the previous command (used when
/// the server does not pipeline).
#[derive(Debug)]
enum Deferred {
    Cmd(Command),
}

/// How the message of a transaction will be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transfer {
    /// `DATA`, then the body with [`Connection::send_body`] after `354`.
    Data,
    /// `BDAT` chunks with [`Connection::send_bdat`]; no `DATA` command is sent.
    Bdat,
}

/// The client side of one SMTP or LMTP session.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    input: BytesMut,
    out: BytesMut,
    expect: VecDeque<Sent>,
    deferred: VecDeque<Deferred>,
    caps: Option<Capabilities>,
    tls: bool,
    // body streaming
    in_body: bool,
    line_start: bool,
    last_cr: bool,
    accepted_rcpts: usize,
    // timers
    armed: Option<Instant>,
    last_now: Instant,
    timed_out: Option<Sent>,
    closed: bool,
}

impl Connection {
    /// Starts a session that waits for the server's greeting.
    pub fn new(config: Config, now: Instant) -> Self {
        Connection {
            config,
            input: BytesMut::with_capacity(1024),
            out: BytesMut::with_capacity(1024),
            expect: VecDeque::from([Sent::Greeting]),
            deferred: VecDeque::new(),
            caps: None,
            tls: false,
            in_body: false,
            line_start: true,
            last_cr: false,
            accepted_rcpts: 0,
            armed: None,
            last_now: now,
            timed_out: None,
            closed: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The capabilities from the last `EHLO`/`LHLO` reply (cleared by STARTTLS).
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.caps.as_ref()
    }

    /// True once [`tls_established`](Self::tls_established) was called.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// True after a timeout, a protocol error, or the reply to `QUIT`.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Replies still expected.
    pub fn outstanding(&self) -> usize {
        self.expect.len()
    }

    /// Recipients accepted in the current transaction.
    pub fn accepted_recipients(&self) -> usize {
        self.accepted_rcpts
    }

    /// Bytes read from the server.
    pub fn feed(&mut self, input: &[u8]) {
        if !self.closed {
            self.input.extend_from_slice(input);
        }
    }

    /// Bytes to write to the server (everything queued so far, in one piece).
    pub fn take_output(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.split().freeze())
        }
    }

    /// After `220` to `STARTTLS` and a successful handshake: forget the capabilities
    /// (RFC 3207 section 4.2) and any plaintext the server sent after its reply.
    pub fn tls_established(&mut self) {
        self.tls = true;
        self.caps = None;
        self.input.clear();
    }

    /// Queues a command. `DATA`, `BDAT` and SASL lines have their own methods
    /// ([`send_bdat`](Self::send_bdat), [`send_auth_response`](Self::send_auth_response)).
    pub fn send(&mut self, cmd: Command) -> Result<(), Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        if self.in_body {
            return Err(Error::InvalidState("a message body is being sent"));
        }
        let sent = match &cmd {
            Command::Hello { .. } => Sent::Hello,
            Command::Mail { .. } => {
                self.accepted_rcpts = 0;
                Sent::Mail
            }
            Command::Rcpt { .. } => Sent::Rcpt,
            Command::Data => Sent::Data,
            Command::Bdat { .. } => {
                return Err(Error::InvalidState("use send_bdat for BDAT"));
            }
            Command::Rset => Sent::Rset,
            Command::Quit => Sent::Quit,
            Command::StartTls => Sent::StartTls,
            Command::Auth { .. } => Sent::Auth,
            _ => Sent::Other,
        };
        encode::command(&cmd, &mut self.out);
        self.expect.push_back(sent);
        Ok(())
    }

    /// Starts a transaction: `MAIL`, one `RCPT` per recipient and, for
    /// [`Transfer::Data`], `DATA`.
    ///
    /// When the server advertised PIPELINING they go out in one write (RFC 2920);
    /// otherwise each waits for the previous reply, and a refused `MAIL` drops the rest.
    /// `SMTPUTF8` is added whenever an address is non-ASCII (the server must advertise
    /// it, or this fails with [`Error::NotSupported`]).
    pub fn send_transaction(
        &mut self,
        from: ReversePath,
        mut params: MailParams,
        recipients: &[(ForwardPath, RcptParams)],
        transfer: Transfer,
    ) -> Result<(), Error> {
        let caps = self.caps.clone().unwrap_or_default();
        let utf8 = from.is_utf8() || recipients.iter().any(|(to, _)| to.is_utf8());
        if utf8 {
            if !caps.smtputf8 {
                return Err(Error::NotSupported(
                    "SMTPUTF8 (needed for a non-ASCII address)",
                ));
            }
            params.smtputf8 = true;
        }
        if recipients.is_empty() {
            return Err(Error::InvalidState("a transaction needs a recipient"));
        }
        let mut cmds = vec![Command::Mail { from, params }];
        for (to, p) in recipients {
            cmds.push(Command::Rcpt {
                to: to.clone(),
                params: p.clone(),
            });
        }
        if transfer == Transfer::Data {
            cmds.push(Command::Data);
        }
        let mut cmds = cmds.into_iter();
        if caps.pipelining {
            for c in cmds {
                self.send(c)?;
            }
        } else if let Some(first) = cmds.next() {
            self.send(first)?;
            self.deferred.extend(cmds.map(Deferred::Cmd));
        }
        Ok(())
    }

    /// Streams a piece of the message after `354`: lines starting with `.` get a second dot
    /// (RFC 5321 section 4.5.2) and a bare LF becomes CRLF, across chunk borders.
    pub fn send_body(&mut self, chunk: &[u8]) -> Result<(), Error> {
        if !self.in_body {
            return Err(Error::InvalidState("no 354 reply to DATA yet"));
        }
        self.out.reserve(chunk.len() + chunk.len() / 64 + 4);
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.line_start && rest.first() == Some(&b'.') {
                self.out.put_u8(b'.');
            }
            match memchr::memchr(b'\n', rest) {
                None => {
                    self.out.put_slice(rest);
                    self.last_cr = rest.last() == Some(&b'\r');
                    self.line_start = false;
                    rest = &[];
                }
                Some(i) => {
                    let line = rest.get(..i).unwrap_or_default();
                    self.out.put_slice(line);
                    let cr_before = if i == 0 {
                        self.last_cr
                    } else {
                        line.last() == Some(&b'\r')
                    };
                    if !cr_before {
                        self.out.put_u8(b'\r');
                    }
                    self.out.put_u8(b'\n');
                    self.line_start = true;
                    self.last_cr = false;
                    rest = rest.get(i + 1..).unwrap_or_default();
                }
            }
        }
        Ok(())
    }

    /// Ends the message with `CRLF . CRLF` (adding a CRLF if the body did not end with
    /// one) and waits for the reply (in LMTP, one per accepted recipient).
    pub fn finish_body(&mut self) -> Result<(), Error> {
        if !self.in_body {
            return Err(Error::InvalidState("no 354 reply to DATA yet"));
        }
        if !self.line_start {
            if !self.last_cr {
                self.out.put_u8(b'\r');
            }
            self.out.put_u8(b'\n');
        }
        self.out.put_slice(b".\r\n");
        self.in_body = false;
        self.line_start = true;
        self.last_cr = false;
        self.expect_message_replies();
        Ok(())
    }

    fn expect_message_replies(&mut self) {
        let n = if self.config.lmtp {
            self.accepted_rcpts.max(1)
        } else {
            1
        };
        for _ in 0..n {
            self.expect.push_back(Sent::Message);
        }
    }

    /// Sends one `BDAT` chunk (RFC 3030); the data goes out as is.
    pub fn send_bdat(&mut self, chunk: &[u8], last: bool) -> Result<(), Error> {
        if self.in_body {
            return Err(Error::InvalidState("a DATA body is being sent"));
        }
        encode::command(
            &Command::Bdat {
                size: chunk.len() as u64,
                last,
            },
            &mut self.out,
        );
        self.out.put_slice(chunk);
        if last {
            self.expect_message_replies();
        } else {
            self.expect.push_back(Sent::Bdat);
        }
        Ok(())
    }

    /// Sends one SASL response line (base64, `=` when empty) after a `334` challenge.
    pub fn send_auth_response(&mut self, data: &Secret<Vec<u8>>) {
        self.out
            .put_slice(encode::sasl_response(data.expose()).as_bytes());
        self.out.put_slice(b"\r\n");
        self.expect.push_back(Sent::Auth);
    }

    /// Cancels a SASL exchange with `*`.
    pub fn cancel_auth(&mut self) {
        self.out.put_slice(b"*\r\n");
        self.expect.push_back(Sent::Auth);
    }

    /// The next deadline, if a reply is outstanding. Right after a command was queued this
    /// is the last time seen, so that [`handle_timeout`](Self::handle_timeout) arms the
    /// timer for that command.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed || self.expect.is_empty() {
            return None;
        }
        Some(self.armed.unwrap_or(self.last_now))
    }

    /// Arms the timer for the oldest outstanding reply, or fires it: then
    /// [`Event::TimedOut`] comes out of `next_event` and the connection is closed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        let Some(&first) = self.expect.front() else {
            self.armed = None;
            return;
        };
        match self.armed {
            None => {
                let t = &self.config.timeouts;
                let d = match first {
                    Sent::Greeting => t.greeting,
                    Sent::Mail => t.mail,
                    Sent::Rcpt => t.rcpt,
                    Sent::Data => t.data_init,
                    Sent::Message | Sent::Bdat => t.data_termination,
                    _ => t.other,
                };
                self.armed = Some(now + d);
            }
            Some(deadline) if now >= deadline => {
                self.closed = true;
                self.timed_out = Some(first);
            }
            Some(_) => {}
        }
    }

    /// The next reply (or failure), or `None` when more input is needed.
    pub fn next_event(&mut self) -> Option<Event> {
        if let Some(sent) = self.timed_out.take() {
            return Some(Event::TimedOut(sent));
        }
        if self.closed {
            return None;
        }
        let (reply, used) = match self.frame_reply() {
            Ok(Some(x)) => x,
            Ok(None) => return None,
            Err(e) => {
                self.closed = true;
                return Some(Event::ProtocolError(e));
            }
        };
        bytes::Buf::advance(&mut self.input, used);
        self.armed = None;
        let Some(to) = self.expect.pop_front() else {
            self.closed = true;
            return Some(Event::ProtocolError(Error::MalformedReply {
                what: "a reply nobody asked for",
                position: 0,
            }));
        };
        match to {
            Sent::Hello if reply.is_positive() => {
                self.caps = Some(Capabilities::from_reply(&reply))
            }
            Sent::Rcpt if reply.is_positive() => self.accepted_rcpts += 1,
            Sent::Data if reply.code == 354 => {
                self.in_body = true;
                self.line_start = true;
                self.last_cr = false;
            }
            Sent::Quit => self.closed = true,
            _ => {}
        }
        // Lock-step transaction: send the next command, or drop the rest after a refused
        // MAIL (the remaining RCPT/DATA would only earn 503s).
        if !self.deferred.is_empty() && self.expect.is_empty() {
            if to == Sent::Mail && !reply.is_positive() {
                self.deferred.clear();
            } else if let Some(Deferred::Cmd(cmd)) = self.deferred.pop_front() {
                let is_data = matches!(cmd, Command::Data);
                if is_data && self.accepted_rcpts == 0 {
                    self.deferred.clear();
                } else {
                    let _ = self.send(cmd);
                }
            }
        }
        Some(Event::Reply { to, reply })
    }

    fn frame_reply(&mut self) -> Result<Option<(Reply, usize)>, Error> {
        // Bound memory: a reply line longer than the limit is an error.
        let mut lines = 0;
        let mut pos = 0;
        loop {
            let rest = self.input.get(pos..).unwrap_or_default();
            match memchr::memchr(b'\n', rest) {
                None => {
                    if rest.len() > self.config.max_line_length {
                        return Err(Error::LineTooLong {
                            limit: self.config.max_line_length,
                        });
                    }
                    return Ok(None);
                }
                Some(i) => {
                    if i > self.config.max_line_length + 1 {
                        return Err(Error::LineTooLong {
                            limit: self.config.max_line_length,
                        });
                    }
                    lines += 1;
                    if lines > self.config.max_reply_lines {
                        return Err(Error::MalformedReply {
                            what: "too many lines in one reply",
                            position: pos,
                        });
                    }
                    let line = rest.get(..i).unwrap_or_default();
                    let last = line.get(3) != Some(&b'-');
                    pos += i + 1;
                    if last {
                        let buf = self.input.get(..pos).unwrap_or_default();
                        return parse::reply(buf);
                    }
                }
            }
        }
    }
}

/// Decodes the base64 challenge of a `334` reply.
pub fn decode_challenge(reply: &Reply) -> Result<Vec<u8>, Error> {
    let text = reply
        .lines
        .first()
        .map(String::as_str)
        .unwrap_or_default()
        .trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    STANDARD.decode(text).map_err(|_| Error::InvalidBase64)
}
