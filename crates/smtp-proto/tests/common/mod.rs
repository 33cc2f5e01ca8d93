//! Shared test helpers: a sans-IO driver with a scripted policy, and the interop skip rule
//! (from `mail-testkit`).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Instant;

use smtp_proto::server::{
    AuthAnswer, Config, Connection, Event, MailDecision, MessageDecision, RcptDecision,
};
use smtp_proto::{ForwardPath, Secret};

/// True if `program` is installed; otherwise prints "skipping: <why>" and returns false,
/// unless MAIL_INTEROP_REQUIRED=1, in which case it panics (see `mail_testkit::peer`).
pub fn require(program: &str, why: &str) -> bool {
    mail_testkit::peer::require(program, why)
}

/// A session driven with a fixed policy: recipients whose local part is `unknown` are
/// refused, `AUTH PLAIN` accepts `\0user\0pass`, `AUTH LOGIN` asks for user and password.
pub struct Harness {
    pub conn: Connection,
    pub events: Vec<Event>,
    pub body: Vec<u8>,
    pub out: Vec<u8>,
    pub writes: Vec<Vec<u8>>,
    login_step: u8,
}

impl Harness {
    pub fn new(config: Config) -> Self {
        let mut h = Harness {
            conn: Connection::new(config, Instant::now()),
            events: Vec::new(),
            body: Vec::new(),
            out: Vec::new(),
            writes: Vec::new(),
            login_step: 0,
        };
        h.drain();
        h
    }

    /// Feeds bytes, answers every event, and collects the output.
    pub fn feed(&mut self, input: &[u8]) -> String {
        self.conn.feed(input);
        self.drain()
    }

    /// Runs the event loop and returns the output written since the last call.
    pub fn drain(&mut self) -> String {
        while let Some(ev) = self.conn.next_event() {
            match &ev {
                Event::MailFrom { .. } => self.conn.reply(MailDecision::Accept).unwrap(),
                Event::RcptTo { to, .. } => {
                    let unknown =
                        matches!(to, ForwardPath::Mailbox(m) if m.local_part() == "unknown");
                    let d = if unknown {
                        RcptDecision::UnknownUser
                    } else {
                        RcptDecision::Accept
                    };
                    self.conn.reply(d).unwrap();
                }
                Event::DataChunk(c) => self.body.extend_from_slice(c),
                Event::DataEnd => {
                    let n = if self.conn.config().mode == smtp_proto::server::Mode::Lmtp {
                        self.conn.transaction().map_or(1, |t| t.accepted)
                    } else {
                        1
                    };
                    for _ in 0..n {
                        self.conn
                            .reply(MessageDecision::Queued("Q1".into()))
                            .unwrap();
                    }
                }
                Event::Auth {
                    mechanism,
                    initial_response,
                } => {
                    let a = match (mechanism.as_str(), initial_response) {
                        ("PLAIN", Some(ir)) => plain(ir),
                        ("PLAIN", None) => AuthAnswer::Challenge(Vec::new()),
                        ("LOGIN", _) => {
                            self.login_step = 1;
                            AuthAnswer::Challenge(b"Username:".to_vec())
                        }
                        _ => AuthAnswer::Failure,
                    };
                    self.conn.reply(a).unwrap();
                }
                Event::AuthResponse(data) => {
                    let a = match self.login_step {
                        1 => {
                            self.login_step = 2;
                            AuthAnswer::Challenge(b"Password:".to_vec())
                        }
                        2 => {
                            self.login_step = 0;
                            if data.expose() == b"pass" {
                                AuthAnswer::Success
                            } else {
                                AuthAnswer::Failure
                            }
                        }
                        _ => plain(data),
                    };
                    self.conn.reply(a).unwrap();
                }
                _ => {}
            }
            self.events.push(ev);
        }
        let mut s = Vec::new();
        while let Some(b) = self.conn.take_output() {
            self.writes.push(b.to_vec());
            s.extend_from_slice(&b);
        }
        self.out.extend_from_slice(&s);
        String::from_utf8_lossy(&s).into_owned()
    }
}

fn plain(ir: &Secret<Vec<u8>>) -> AuthAnswer {
    if ir.expose() == b"\0user\0pass" {
        AuthAnswer::Success
    } else {
        AuthAnswer::Failure
    }
}

/// The minimal RFC 5321 appendix D configuration: no extensions but 8BITMIME, SIZE, DSN.
pub fn plain_config(host: &str) -> Config {
    let mut c = Config::mx(host);
    c.extensions.pipelining = false;
    c.extensions.smtputf8 = false;
    c.extensions.enhanced_status_codes = false;
    c.extensions.chunking = false;
    c.extensions.binary_mime = false;
    c
}
