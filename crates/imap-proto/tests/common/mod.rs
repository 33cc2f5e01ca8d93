//! Helpers shared by the state-machine and interop tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Instant;

#[cfg(feature = "tokio")]
pub mod memory;

use imap_proto::server::{Config, Connection, Event};

/// A server connection in a test, with helpers to feed text and read output as text.
pub struct Srv {
    pub conn: Connection,
    pub now: Instant,
}

impl Srv {
    pub fn new(config: Config) -> Self {
        let now = Instant::now();
        Self {
            conn: Connection::new(config, now),
            now,
        }
    }

    /// A config that allows LOGIN on plaintext (tests only).
    pub fn plain_config() -> Config {
        let mut c = Config::default();
        c.login_disabled_without_tls = false;
        c
    }

    pub fn out(&mut self) -> String {
        let mut s = String::new();
        while let Some(b) = self.conn.take_output() {
            s.push_str(&String::from_utf8_lossy(&b));
        }
        s
    }

    pub fn feed(&mut self, s: &str) {
        self.conn.feed(s.as_bytes());
    }

    pub fn event(&mut self) -> Option<Event> {
        self.conn.next_event()
    }

    /// Logs in with LOGIN, answering OK, and drops the output.
    pub fn login(&mut self) {
        self.feed("L1 LOGIN user pass\r\n");
        match self.event() {
            Some(Event::Login { .. }) => self
                .conn
                .reply(imap_proto::server::Status::ok("Logged in"))
                .unwrap(),
            other => panic!("expected Login, got {other:?}"),
        }
        self.out();
    }

    /// Logs in and selects a mailbox (answering SELECT with OK [READ-WRITE]).
    pub fn select(&mut self) {
        self.login();
        self.feed("S1 SELECT INBOX\r\n");
        match self.event() {
            Some(Event::Command(r)) if r.name == "SELECT" => self
                .conn
                .reply(imap_proto::server::Status::ok("SELECT completed").with_code("READ-WRITE"))
                .unwrap(),
            other => panic!("expected SELECT, got {other:?}"),
        }
        self.out();
    }
}

/// Starts our tokio server with the in-memory backend on 127.0.0.1 port 0; the accept
/// loop ends with the test's runtime.
#[cfg(feature = "tokio")]
pub async fn start_server(
    config: imap_proto::tokio::ServeConfig,
    backend: memory::MemBackend,
) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (b, c) = (backend.clone(), config.clone());
            tokio::spawn(async move {
                let _ = imap_proto::tokio::serve(tcp, c, b).await;
            });
        }
    });
    addr
}

/// A server config that allows LOGIN without TLS (loopback tests).
#[cfg(feature = "tokio")]
pub fn plain_serve_config() -> imap_proto::tokio::ServeConfig {
    let mut c = imap_proto::tokio::ServeConfig::default();
    c.imap.login_disabled_without_tls = false;
    c
}
