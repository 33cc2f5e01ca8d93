//! The client-side state machine: the mirror of [`crate::server::Connection`].
//!
//! [`Connection::send`] queues a command (pipelining is allowed: responses are matched to
//! commands in order), [`Connection::feed`] takes bytes from the server and
//! [`Connection::next_event`] yields typed events: the greeting, each status line, each
//! listing or capability line, message bodies as un-stuffed chunks (the `.` CRLF
//! terminator is found even when split across reads), SASL challenges.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::encode::{self, Unstuffer};
use crate::types::{
    Capability, Command, Response, ScanListing, Secret, ServerLine, Status, UidListing,
};
use crate::{Error, parse};

/// Limits on what a server can make the client hold.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest status, listing or challenge line, CRLF excluded. Default 64 KiB (RFC 2449
    /// says 512 for status lines; SASL challenges may be longer).
    pub line_length: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            line_length: 64 * 1024,
        }
    }
}

/// Client options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The limits.
    pub limits: Limits,
}

/// What the server said, in order.
#[must_use = "events carry the server's answers"]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The greeting; `timestamp` is the APOP challenge if the server offered one.
    Greeting {
        /// The greeting line.
        response: Response,
        /// `<...>` from the greeting, brackets included.
        timestamp: Option<Bytes>,
    },
    /// The status line answering the command with this keyword (`"RETR"`). For a `+OK` to a
    /// multi-line command, the lines follow, then [`Event::End`].
    Response {
        /// The keyword of the command this answers.
        command: &'static str,
        /// The status line.
        response: Response,
    },
    /// A line of a `LIST` answer.
    Listing(ScanListing),
    /// A line of a `UIDL` answer.
    UniqueId(UidListing),
    /// A line of a `CAPA` answer.
    Capability(Capability),
    /// A mechanism line of an `AUTH` (no argument) answer.
    Mechanism(Bytes),
    /// Un-stuffed octets of a `RETR` / `TOP` body, CRLF line ends as sent.
    BodyChunk(Bytes),
    /// The end of a multi-line answer.
    End,
    /// A decoded SASL challenge; answer with [`Connection::send_sasl_response`].
    Challenge(Bytes),
    /// A line that does not parse (the session goes on; a broken multi-line line is
    /// skipped).
    Malformed(Bytes),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Greeting,
    Command {
        kw: &'static str,
        multi: bool,
        sasl: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Multi {
    List,
    Uidl,
    Capa,
    Mechs,
    Body,
}

/// The client-side POP3 state machine.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    input: BytesMut,
    scanned: usize,
    output: BytesMut,
    expect: VecDeque<Expect>,
    multi: Option<(Multi, Unstuffer)>,
    events: VecDeque<Event>,
    closed: bool,
    tls_wait: bool,
    greeted: bool,
}

impl Connection {
    /// A new client, expecting the server's greeting.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            input: BytesMut::new(),
            scanned: 0,
            output: BytesMut::new(),
            expect: VecDeque::from([Expect::Greeting]),
            multi: None,
            events: VecDeque::new(),
            closed: false,
            tls_wait: false,
            greeted: false,
        }
    }

    /// Queues a command. Several may be queued before their answers (PIPELINING).
    pub fn send(&mut self, cmd: Command) -> Result<(), Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        if self.tls_wait {
            return Err(Error::State(
                "TLS handshake pending; call tls_established first",
            ));
        }
        encode::command(&cmd, &mut self.output);
        let sasl = matches!(cmd, Command::Auth { .. });
        self.expect.push_back(Expect::Command {
            kw: cmd.keyword(),
            multi: cmd.is_multi_line(),
            sasl,
        });
        Ok(())
    }

    /// Answers the last [`Event::Challenge`]: `Some(data)` is sent as base64 (an empty line
    /// for empty data), `None` cancels the exchange with `*`.
    pub fn send_sasl_response(&mut self, data: Option<&Secret>) {
        encode::sasl_response(data.map(|d| &d.expose()[..]), &mut self.output);
    }

    /// Bytes read from the server.
    pub fn feed(&mut self, input: &[u8]) {
        if !self.closed && !self.tls_wait {
            self.input.extend_from_slice(input);
        }
    }

    /// After `STLS` got `+OK` and the TLS handshake succeeded. Capabilities must be asked
    /// again (RFC 2595).
    pub fn tls_established(&mut self) {
        self.tls_wait = false;
        self.input.clear();
        self.scanned = 0;
    }

    /// True once the greeting has arrived.
    pub fn is_greeted(&self) -> bool {
        self.greeted
    }

    /// True while commands are sent but not fully answered.
    pub fn is_busy(&self) -> bool {
        !self.expect.is_empty() || self.multi.is_some()
    }

    /// True after `QUIT` was answered, a `-ERR` greeting, or a fatal protocol error.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Bytes to write to the server, in order.
    pub fn take_output(&mut self) -> Option<Bytes> {
        (!self.output.is_empty()).then(|| self.output.split().freeze())
    }

    /// The next event, or `None` until more input arrives.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            if self.closed || self.tls_wait {
                return None;
            }
            if let Some((Multi::Body, un)) = &mut self.multi {
                if self.input.is_empty() {
                    return None;
                }
                let mut out = BytesMut::with_capacity(self.input.len());
                let used = un.push(&self.input, &mut out);
                let done = un.is_done();
                let _ = self.input.split_to(used);
                self.scanned = 0;
                if !out.is_empty() {
                    self.events.push_back(Event::BodyChunk(out.freeze()));
                }
                if done {
                    self.multi = None;
                    self.events.push_back(Event::End);
                }
                continue;
            }
            let line = match self.next_line() {
                Ok(Some(l)) => l,
                Ok(None) => return None,
                Err(e) => {
                    self.closed = true;
                    return Some(Event::Malformed(Bytes::from(e.to_string())));
                }
            };
            self.handle_line(line);
        }
    }

    fn next_line(&mut self) -> Result<Option<Bytes>, Error> {
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
                Ok(Some(line))
            }
            None => {
                self.scanned = self.input.len();
                let limit = self.config.limits.line_length;
                if self.input.len() > limit {
                    Err(Error::LineTooLong {
                        length: self.input.len(),
                        limit,
                    })
                } else {
                    Ok(None)
                }
            }
        }
    }

    fn handle_line(&mut self, line: Bytes) {
        if let Some((kind, _)) = self.multi {
            if &line[..] == b"." {
                self.multi = None;
                self.events.push_back(Event::End);
                return;
            }
            let l = if line.first() == Some(&b'.') {
                line.slice(1..)
            } else {
                line.clone()
            };
            let ev = match kind {
                Multi::List => parse::scan_listing(&l).map(Event::Listing),
                Multi::Uidl => parse::uid_listing(&l).map(Event::UniqueId),
                Multi::Capa => parse::capability(&l).map(Event::Capability),
                Multi::Mechs | Multi::Body => Ok(Event::Mechanism(l)),
            };
            self.events.push_back(ev.unwrap_or(Event::Malformed(line)));
            return;
        }
        let Some(expect) = self.expect.front().copied() else {
            self.events.push_back(Event::Malformed(line));
            return;
        };
        let parsed = parse::server_line(&line);
        match (expect, parsed) {
            (Expect::Greeting, Ok(ServerLine::Status(response))) => {
                self.expect.pop_front();
                self.greeted = true;
                let timestamp = parse::greeting_timestamp(&response.text);
                if response.status == Status::Err {
                    self.closed = true;
                }
                self.events.push_back(Event::Greeting {
                    response,
                    timestamp,
                });
            }
            (Expect::Command { sasl: true, .. }, Ok(ServerLine::Challenge(c))) => {
                self.events.push_back(Event::Challenge(c));
            }
            (Expect::Command { kw, multi, .. }, Ok(ServerLine::Status(response))) => {
                self.expect.pop_front();
                if response.is_ok() && multi {
                    let m = match kw {
                        "LIST" => Multi::List,
                        "UIDL" => Multi::Uidl,
                        "CAPA" => Multi::Capa,
                        "AUTH" => Multi::Mechs,
                        _ => Multi::Body,
                    };
                    self.multi = Some((m, Unstuffer::new()));
                }
                if response.is_ok() && kw == "STLS" {
                    // Nothing the server sent before the handshake may be trusted.
                    self.tls_wait = true;
                    self.input.clear();
                    self.scanned = 0;
                }
                if kw == "QUIT" {
                    self.closed = true;
                }
                self.events.push_back(Event::Response {
                    command: kw,
                    response,
                });
            }
            (_, _) => self.events.push_back(Event::Malformed(line)),
        }
    }
}
