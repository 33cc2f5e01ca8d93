//! `Client`: a typed async IMAP client over [`crate::client::Connection`].

use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;
use mail_net::{MaybeTls, TlsConnector};
use mail_sasl::client::{ClientCredentials, Exchange};
use mail_sasl::{Mechanism, Secret};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Error;
use crate::client::{Config, Connection, Event};
use crate::types::{
    Capability, Code, CommandBody, Data, DateTime, ESearchItem, FetchAttr, FetchItem, FetchItems,
    FetchModifiers, Flag, ListData, ListPattern, Mailbox, QResyncParams, Response, SearchKey,
    SelectParams, SequenceSet, StatusKind, StatusResponse, StoreKind,
};

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Security {
    /// No TLS (tests, loopback).
    Plain,
    /// STARTTLS after the greeting (port 143).
    StartTls,
    /// TLS from the first byte (port 993).
    Implicit,
}

/// Client settings.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Plain, STARTTLS or implicit TLS.
    pub security: Security,
    /// Name the server's certificate is checked against.
    pub server_name: String,
    /// TLS client configuration (required for STARTTLS and implicit TLS).
    pub tls: Option<TlsConnector>,
    /// Time limit for connecting and for each server answer. Default 60 s.
    pub timeout: Duration,
    /// State machine options.
    pub machine: Config,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("security", &self.security)
            .field("server_name", &self.server_name)
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .field("machine", &self.machine)
            .finish()
    }
}

impl ClientConfig {
    /// Settings for a plaintext connection.
    pub fn plain() -> Self {
        Self {
            security: Security::Plain,
            server_name: "localhost".into(),
            tls: None,
            timeout: Duration::from_secs(60),
            machine: Config::default(),
        }
    }

    /// Settings for TLS (`security` StartTls or Implicit) with a connector.
    pub fn tls(
        security: Security,
        server_name: impl Into<String>,
        connector: TlsConnector,
    ) -> Self {
        Self {
            security,
            server_name: server_name.into(),
            tls: Some(connector),
            ..Self::plain()
        }
    }
}

/// One message's FETCH data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Sequence number.
    pub seq: NonZeroU32,
    /// The items.
    pub items: Vec<FetchAttr>,
}

impl Fetched {
    /// The UID, if fetched.
    pub fn uid(&self) -> Option<u32> {
        self.items.iter().find_map(|i| match i {
            FetchAttr::Uid(u) => Some(u.get()),
            _ => None,
        })
    }

    /// The flags, if fetched.
    pub fn flags(&self) -> Option<&[Flag]> {
        self.items.iter().find_map(|i| match i {
            FetchAttr::Flags(f) => Some(f.as_slice()),
            _ => None,
        })
    }

    /// The first body section's data (`BODY[...]`, `RFC822`, `BINARY[...]`), if fetched.
    pub fn body(&self) -> Option<&Bytes> {
        self.items.iter().find_map(|i| match i {
            FetchAttr::BodySection { data: Some(d), .. }
            | FetchAttr::Binary { data: Some(d), .. }
            | FetchAttr::Rfc822(Some(d)) => Some(d),
            _ => None,
        })
    }

    /// The MODSEQ, if fetched.
    pub fn modseq(&self) -> Option<u64> {
        self.items.iter().find_map(|i| match i {
            FetchAttr::ModSeq(m) => Some(*m),
            _ => None,
        })
    }
}

/// What SELECT/EXAMINE reported.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Selected {
    /// Messages in the mailbox.
    pub exists: u32,
    /// UIDVALIDITY.
    pub uid_validity: Option<u32>,
    /// UIDNEXT.
    pub uid_next: Option<u32>,
    /// HIGHESTMODSEQ.
    pub highest_modseq: Option<u64>,
    /// Mailbox flags.
    pub flags: Vec<Flag>,
    /// `[READ-ONLY]`.
    pub read_only: bool,
    /// Every untagged response (e.g. `VANISHED (EARLIER)` and `FETCH` after QRESYNC).
    pub responses: Vec<Response>,
}

/// An async IMAP client.
#[derive(Debug)]
pub struct Client<S = TcpStream> {
    conn: Connection,
    stream: Option<MaybeTls<S>>,
    buf: Vec<u8>,
    timeout: Duration,
    /// Untagged responses that arrived outside any command (e.g. while idle), kept for the
    /// next call of [`Client::take_unsolicited`].
    unsolicited: Vec<Response>,
}

impl Client<TcpStream> {
    /// Connects to `addr`, reads the greeting and, for [`Security::StartTls`], upgrades.
    ///
    /// # Errors
    /// Connect, TLS or protocol errors, or a greeting that is not `OK`/`PREAUTH`.
    pub async fn connect(
        addr: impl tokio::net::ToSocketAddrs,
        config: ClientConfig,
    ) -> Result<Self, Error> {
        let tcp = tokio::time::timeout(config.timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| Error::Timeout("connect"))??;
        tcp.set_nodelay(true)?;
        Self::from_stream(tcp, config).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Client<S> {
    /// Runs the client over an already connected stream.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub async fn from_stream(io: S, config: ClientConfig) -> Result<Self, Error> {
        let mut stream = MaybeTls::Plain(io);
        let name = || {
            mail_net::tls::server_name(&config.server_name)
                .map_err(|e| Error::Tls(std::io::Error::other(e.to_string())))
        };
        if config.security == Security::Implicit {
            let connector = config
                .tls
                .as_ref()
                .ok_or_else(|| Error::Protocol("implicit TLS needs a TLS connector".into()))?;
            stream = stream
                .upgrade_client_timeout(connector, name()?, config.timeout)
                .await
                .map_err(Error::Tls)?;
        }
        let mut client = Self {
            conn: Connection::new(config.machine.clone()),
            stream: Some(stream),
            buf: vec![0u8; 64 * 1024],
            timeout: config.timeout,
            unsolicited: Vec::new(),
        };
        match client.next().await? {
            Event::Greeting(g) if g.kind != crate::types::GreetingKind::Bye => {}
            Event::Greeting(g) => {
                return Err(Error::Protocol(format!(
                    "server refused the connection: {}",
                    g.text.as_str()
                )));
            }
            other => {
                return Err(Error::Protocol(format!(
                    "expected a greeting, got {other:?}"
                )));
            }
        }
        if config.security == Security::StartTls {
            let connector = config
                .tls
                .as_ref()
                .ok_or_else(|| Error::Protocol("STARTTLS needs a TLS connector".into()))?;
            client.run(CommandBody::StartTls, "STARTTLS").await?;
            // Nothing the server sent before the handshake may be trusted.
            client.conn.discard_input();
            client.conn.clear_capabilities();
            let plain = client
                .stream
                .take()
                .ok_or_else(|| Error::Protocol("connection closed".into()))?;
            let tls = plain
                .upgrade_client_timeout(connector, name()?, config.timeout)
                .await
                .map_err(Error::Tls)?;
            client.stream = Some(tls);
            client.capability().await?;
        }
        Ok(client)
    }

    /// The capabilities last announced by the server.
    pub fn capabilities(&self) -> &[Capability] {
        self.conn.capabilities()
    }

    /// Whether the server announced a capability.
    pub fn has_capability(&self, name: &str) -> bool {
        self.conn.has_capability(name)
    }

    /// Untagged responses that arrived outside a command's answer (e.g. during IDLE), taken.
    pub fn take_unsolicited(&mut self) -> Vec<Response> {
        std::mem::take(&mut self.unsolicited)
    }

    async fn flush(&mut self) -> Result<(), Error> {
        let mut wrote = false;
        while let Some(out) = self.conn.take_output() {
            let s = self
                .stream
                .as_mut()
                .ok_or_else(|| Error::Protocol("connection closed".into()))?;
            s.write_all(&out).await?;
            wrote = true;
        }
        if wrote && let Some(s) = self.stream.as_mut() {
            s.flush().await?;
        }
        Ok(())
    }

    async fn read_more(&mut self, timeout: Duration) -> Result<(), Error> {
        let s = self
            .stream
            .as_mut()
            .ok_or_else(|| Error::Protocol("connection closed".into()))?;
        let n = tokio::time::timeout(timeout, s.read(&mut self.buf))
            .await
            .map_err(|_| Error::Timeout("server answer"))??;
        if n == 0 {
            return Err(Error::Protocol("the server closed the connection".into()));
        }
        self.conn.feed(self.buf.get(..n).unwrap_or_default());
        Ok(())
    }

    /// The next event, reading as needed.
    async fn next(&mut self) -> Result<Event, Error> {
        loop {
            self.flush().await?;
            if let Some(ev) = self.conn.next_event() {
                return Ok(ev);
            }
            self.read_more(self.timeout).await?;
        }
    }

    /// Runs until the completion of `tag`, collecting untagged responses. Streamed FETCH
    /// bodies are reassembled.
    async fn collect(
        &mut self,
        tag: &crate::types::Tag,
    ) -> Result<(Vec<Response>, StatusResponse), Error> {
        let mut responses = Vec::new();
        let mut streaming: Option<(
            NonZeroU32,
            Vec<FetchAttr>,
            crate::types::FetchLiteralItem,
            Vec<u8>,
        )> = None;
        loop {
            match self.next().await? {
                Event::Completed { tag: t, status } if &t == tag => return Ok((responses, status)),
                Event::Completed { .. } => {}
                Event::Untagged(r) => responses.push(r),
                Event::FetchBodyStart { prefix } => {
                    let p = *prefix;
                    streaming = Some((p.seq, p.items, p.item, Vec::new()));
                }
                Event::FetchBodyChunk(c) => {
                    if let Some((_, _, _, data)) = streaming.as_mut() {
                        data.extend_from_slice(&c);
                    }
                }
                Event::FetchBodyEnd => {
                    if let Some((seq, mut items, item, data)) = streaming.take() {
                        items.push(item.with_data(Some(Bytes::from(data))));
                        responses.push(Response::Data(Data::Fetch { seq, items }));
                    }
                }
                _ => {}
            }
        }
    }

    /// Sends a command and waits for its completion. `NO`/`BAD` become
    /// [`Error::Refused`].
    ///
    /// # Errors
    /// I/O, time-out, protocol errors or the server's refusal.
    pub async fn run(
        &mut self,
        body: CommandBody,
        name: &'static str,
    ) -> Result<(Vec<Response>, StatusResponse), Error> {
        let tag = self
            .conn
            .send(body)
            .map_err(|e| Error::Protocol(e.to_string()))?;
        let (responses, status) = self.collect(&tag).await?;
        check(name, &status)?;
        Ok((responses, status))
    }

    /// CAPABILITY.
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn capability(&mut self) -> Result<Vec<Capability>, Error> {
        self.run(CommandBody::Capability, "CAPABILITY").await?;
        Ok(self.conn.capabilities().to_vec())
    }

    /// LOGIN.
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn login(&mut self, username: &str, password: &str) -> Result<(), Error> {
        let body = CommandBody::Login {
            username: Bytes::copy_from_slice(username.as_bytes()),
            password: Bytes::copy_from_slice(password.as_bytes()),
        };
        let (_, status) = self.run(body, "LOGIN").await?;
        if !matches!(status.code, Some(Code::Capability(_))) {
            self.capability().await?;
        }
        Ok(())
    }

    /// AUTHENTICATE with a SASL mechanism from `mail-sasl` (SASL-IR when the server has it).
    ///
    /// # Errors
    /// As [`run`](Self::run); a SCRAM server signature that does not verify is an
    /// [`Error::Protocol`].
    pub async fn authenticate(
        &mut self,
        mechanism: Mechanism,
        credentials: ClientCredentials,
    ) -> Result<(), Error> {
        let mut ex = Exchange::new(mechanism, credentials, client_nonce());
        let initial = ex.initial_response();
        let tag = self
            .conn
            .authenticate(mechanism.as_str(), initial.as_deref())
            .map_err(|e| Error::Protocol(e.to_string()))?;
        let mut last_challenge: Option<Vec<u8>> = None;
        loop {
            match self.next().await? {
                Event::AuthChallenge(c) => match ex.step(&c) {
                    Ok(resp) => {
                        last_challenge = Some(c.to_vec());
                        self.conn
                            .auth_respond(&resp)
                            .map_err(|e| Error::Protocol(e.to_string()))?;
                    }
                    Err(e) => {
                        self.conn
                            .auth_cancel()
                            .map_err(|e| Error::Protocol(e.to_string()))?;
                        let _ = self.collect(&tag).await;
                        return Err(Error::Protocol(format!("SASL: {e}")));
                    }
                },
                Event::Completed { tag: t, status } if t == tag => {
                    check("AUTHENTICATE", &status)?;
                    let _ = last_challenge;
                    ex.finish(None)
                        .map_err(|e| Error::Protocol(format!("SASL: {e}")))?;
                    if !matches!(status.code, Some(Code::Capability(_))) {
                        self.capability().await?;
                    }
                    return Ok(());
                }
                _ => {}
            }
        }
    }

    /// LOGIN with a password wrapped as a [`Secret`], through AUTHENTICATE PLAIN when the
    /// server offers it.
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn authenticate_plain(
        &mut self,
        username: &str,
        password: Secret<String>,
    ) -> Result<(), Error> {
        self.authenticate(Mechanism::Plain, ClientCredentials::new(username, password))
            .await
    }

    /// ENABLE; returns what the server enabled.
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn enable(&mut self, capabilities: &[&str]) -> Result<Vec<Capability>, Error> {
        let caps = capabilities
            .iter()
            .map(|c| Capability::new(c).map_err(|e| Error::Protocol(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let (responses, _) = self.run(CommandBody::Enable(caps), "ENABLE").await?;
        Ok(responses
            .into_iter()
            .filter_map(|r| match r {
                Response::Data(Data::Enabled(c)) => Some(c),
                _ => None,
            })
            .flatten()
            .collect())
    }

    /// LIST reference pattern.
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn list(&mut self, reference: &str, pattern: &str) -> Result<Vec<ListData>, Error> {
        let body = CommandBody::List {
            selection: Vec::new(),
            reference: Mailbox::new(reference).map_err(|e| Error::Protocol(e.to_string()))?,
            patterns: vec![ListPattern::new(pattern).map_err(|e| Error::Protocol(e.to_string()))?],
            return_options: Vec::new(),
        };
        let (responses, _) = self.run(body, "LIST").await?;
        Ok(responses
            .into_iter()
            .filter_map(|r| match r {
                Response::Data(Data::List(l)) => Some(l),
                _ => None,
            })
            .collect())
    }

    /// SELECT (or EXAMINE with `read_only`), with optional CONDSTORE/QRESYNC parameters.
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn select_with(
        &mut self,
        mailbox: &str,
        read_only: bool,
        params: SelectParams,
    ) -> Result<Selected, Error> {
        let mailbox = Mailbox::new(mailbox).map_err(|e| Error::Protocol(e.to_string()))?;
        let body = if read_only {
            CommandBody::Examine { mailbox, params }
        } else {
            CommandBody::Select { mailbox, params }
        };
        let (responses, status) = self
            .run(body, if read_only { "EXAMINE" } else { "SELECT" })
            .await?;
        let mut sel = Selected {
            read_only: matches!(status.code, Some(Code::ReadOnly)),
            ..Selected::default()
        };
        for r in &responses {
            match r {
                Response::Data(Data::Exists(n)) => sel.exists = *n,
                Response::Data(Data::Flags(f)) => sel.flags.clone_from(f),
                Response::Status(s) => match &s.code {
                    Some(Code::UidValidity(v)) => sel.uid_validity = Some(v.get()),
                    Some(Code::UidNext(v)) => sel.uid_next = Some(v.get()),
                    Some(Code::HighestModSeq(m)) => sel.highest_modseq = Some(*m),
                    _ => {}
                },
                _ => {}
            }
        }
        sel.responses = responses;
        Ok(sel)
    }

    /// SELECT.
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn select(&mut self, mailbox: &str) -> Result<Selected, Error> {
        self.select_with(mailbox, false, SelectParams::default())
            .await
    }

    /// EXAMINE.
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn examine(&mut self, mailbox: &str) -> Result<Selected, Error> {
        self.select_with(mailbox, true, SelectParams::default())
            .await
    }

    /// SELECT with QRESYNC (RFC 7162; ENABLE QRESYNC first): the server reports what
    /// changed since `modseq` (`VANISHED (EARLIER)` and `FETCH` in
    /// [`Selected::responses`]).
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn select_qresync(
        &mut self,
        mailbox: &str,
        uid_validity: u32,
        modseq: u64,
        known_uids: Option<SequenceSet>,
    ) -> Result<Selected, Error> {
        let uid_validity =
            NonZeroU32::new(uid_validity).ok_or_else(|| Error::Protocol("UIDVALIDITY 0".into()))?;
        let params = SelectParams {
            condstore: false,
            qresync: Some(QResyncParams {
                uid_validity,
                modseq,
                known_uids,
                seq_match: None,
            }),
        };
        self.select_with(mailbox, false, params).await
    }

    /// FETCH / UID FETCH; large bodies are streamed by the state machine and reassembled.
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn fetch(
        &mut self,
        set: SequenceSet,
        uid: bool,
        items: Vec<FetchItem>,
    ) -> Result<Vec<Fetched>, Error> {
        let body = CommandBody::Fetch {
            uid,
            set,
            items: FetchItems::Items(items),
            modifiers: FetchModifiers::default(),
        };
        let (responses, _) = self.run(body, "FETCH").await?;
        Ok(fetched(responses))
    }

    /// Streams the whole message with UID `uid` (`BODY.PEEK[]`) into `sink` without holding
    /// it in memory; returns the number of bytes written.
    ///
    /// # Errors
    /// As [`run`](Self::run), or the sink's write error.
    pub async fn fetch_body_to<W: AsyncWrite + Unpin>(
        &mut self,
        uid: u32,
        sink: &mut W,
    ) -> Result<u64, Error> {
        let set = SequenceSet::single(uid).map_err(|e| Error::Protocol(e.to_string()))?;
        let item = FetchItem::BodySection {
            peek: true,
            section: crate::types::Section::default(),
            partial: None,
        };
        let body = CommandBody::Fetch {
            uid: true,
            set,
            items: FetchItems::Items(vec![item]),
            modifiers: FetchModifiers::default(),
        };
        let tag = self
            .conn
            .send(body)
            .map_err(|e| Error::Protocol(e.to_string()))?;
        let mut written = 0u64;
        loop {
            match self.next().await? {
                Event::Completed { tag: t, status } if t == tag => {
                    check("UID FETCH", &status)?;
                    return Ok(written);
                }
                Event::FetchBodyChunk(c) => {
                    sink.write_all(&c).await?;
                    written += c.len() as u64;
                }
                Event::Untagged(Response::Data(Data::Fetch { items, .. })) => {
                    for i in items {
                        if let FetchAttr::BodySection { data: Some(d), .. } = i {
                            sink.write_all(&d).await?;
                            written += d.len() as u64;
                        }
                    }
                }
                Event::Untagged(r) => self.unsolicited.push(r),
                _ => {}
            }
        }
    }

    /// UID SEARCH; returns the matching UIDs (from SEARCH or ESEARCH answers).
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn uid_search(&mut self, criteria: Vec<SearchKey>) -> Result<Vec<u32>, Error> {
        let body = CommandBody::Search {
            uid: true,
            return_options: None,
            charset: None,
            criteria,
        };
        let (responses, _) = self.run(body, "UID SEARCH").await?;
        let mut out = Vec::new();
        for r in responses {
            match r {
                Response::Data(Data::Search { numbers, .. }) => {
                    out.extend(numbers.iter().map(|n| n.get()))
                }
                Response::Data(Data::ESearch { items, .. }) => {
                    for i in items {
                        if let ESearchItem::All(set) = i {
                            out.extend(set.iter(u32::MAX));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// APPEND a message of `size` bytes read from `message`, streamed (never held whole);
    /// returns the `APPENDUID` code if the server sent one.
    ///
    /// # Errors
    /// As [`run`](Self::run); an [`Error::Protocol`] if `message` ends before `size` bytes.
    pub async fn append<R: AsyncRead + Unpin>(
        &mut self,
        mailbox: &str,
        flags: &[Flag],
        date: Option<&DateTime>,
        size: u64,
        message: &mut R,
    ) -> Result<Option<Code>, Error> {
        let mailbox = Mailbox::new(mailbox).map_err(|e| Error::Protocol(e.to_string()))?;
        let tag = self
            .conn
            .append_start(&mailbox, flags, date, size)
            .map_err(|e| Error::Protocol(e.to_string()))?;
        if !self.conn.append_ready() {
            loop {
                match self.next().await? {
                    Event::AppendReady => break,
                    Event::Completed { tag: t, status } if t == tag => {
                        check("APPEND", &status)?;
                        return Err(Error::Protocol(
                            "APPEND completed before its message was sent".into(),
                        ));
                    }
                    Event::Untagged(r) => self.unsolicited.push(r),
                    _ => {}
                }
            }
        }
        let mut left = size;
        let mut chunk = vec![0u8; 64 * 1024];
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(chunk.len());
            let n = message
                .read(chunk.get_mut(..want).unwrap_or_default())
                .await?;
            if n == 0 {
                return Err(Error::Protocol(
                    "the message ended before its announced size".into(),
                ));
            }
            self.conn
                .append_chunk(chunk.get(..n).unwrap_or_default())
                .map_err(|e| Error::Protocol(e.to_string()))?;
            left -= n as u64;
            self.flush().await?;
        }
        let (responses, status) = self.collect(&tag).await?;
        self.unsolicited.extend(responses);
        check("APPEND", &status)?;
        Ok(match status.code {
            Some(c @ Code::AppendUid { .. }) => Some(c),
            _ => None,
        })
    }

    /// STORE / UID STORE; returns the FETCH responses (new flags).
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn store(
        &mut self,
        set: SequenceSet,
        uid: bool,
        kind: StoreKind,
        flags: Vec<Flag>,
    ) -> Result<Vec<Fetched>, Error> {
        let body = CommandBody::Store {
            uid,
            set,
            kind,
            silent: false,
            flags,
            unchanged_since: None,
        };
        let (responses, _) = self.run(body, "STORE").await?;
        Ok(fetched(responses))
    }

    /// COPY / UID COPY; returns the `COPYUID` code if sent.
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn copy(
        &mut self,
        set: SequenceSet,
        uid: bool,
        target: &str,
    ) -> Result<Option<Code>, Error> {
        let mailbox = Mailbox::new(target).map_err(|e| Error::Protocol(e.to_string()))?;
        let (_, status) = self
            .run(CommandBody::Copy { uid, set, mailbox }, "COPY")
            .await?;
        Ok(status.code)
    }

    /// MOVE / UID MOVE (RFC 6851); returns the untagged responses (COPYUID, EXPUNGE or
    /// VANISHED).
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn move_messages(
        &mut self,
        set: SequenceSet,
        uid: bool,
        target: &str,
    ) -> Result<Vec<Response>, Error> {
        let mailbox = Mailbox::new(target).map_err(|e| Error::Protocol(e.to_string()))?;
        let (responses, _) = self
            .run(CommandBody::Move { uid, set, mailbox }, "MOVE")
            .await?;
        Ok(responses)
    }

    /// EXPUNGE; returns the untagged responses (EXPUNGE or VANISHED).
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn expunge(&mut self) -> Result<Vec<Response>, Error> {
        let (responses, _) = self.run(CommandBody::Expunge, "EXPUNGE").await?;
        Ok(responses)
    }

    /// NOOP; returns the untagged responses (mailbox updates).
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn noop(&mut self) -> Result<Vec<Response>, Error> {
        let (responses, _) = self.run(CommandBody::Noop, "NOOP").await?;
        Ok(responses)
    }

    /// Starts IDLE; the handle waits for updates and stops it.
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn idle(&mut self) -> Result<IdleHandle<'_, S>, Error> {
        let tag = self
            .conn
            .idle()
            .map_err(|e| Error::Protocol(e.to_string()))?;
        loop {
            match self.next().await? {
                Event::IdleStarted => break,
                Event::Completed { tag: t, status } if t == tag => {
                    check("IDLE", &status)?;
                    return Err(Error::Protocol("IDLE ended before it started".into()));
                }
                Event::Untagged(r) => self.unsolicited.push(r),
                _ => {}
            }
        }
        Ok(IdleHandle { client: self, tag })
    }

    /// LOGOUT; the connection is closed afterwards.
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn logout(mut self) -> Result<(), Error> {
        self.run(CommandBody::Logout, "LOGOUT").await?;
        if let Some(mut s) = self.stream.take() {
            let _ = s.shutdown().await;
        }
        Ok(())
    }
}

/// A running IDLE. Wait for updates with [`wait`](Self::wait); stop with
/// [`done`](Self::done).
#[derive(Debug)]
pub struct IdleHandle<'a, S = TcpStream> {
    client: &'a mut Client<S>,
    tag: crate::types::Tag,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> IdleHandle<'_, S> {
    /// Waits up to `timeout` for untagged updates (e.g. `* 5 EXISTS`); returns those that
    /// arrived (empty on time-out). RFC 9051 asks clients to re-issue IDLE at least every
    /// 29 minutes.
    ///
    /// # Errors
    /// I/O or protocol errors.
    pub async fn wait(&mut self, timeout: Duration) -> Result<Vec<Response>, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut got = Vec::new();
        loop {
            while let Some(ev) = self.client.conn.next_event() {
                match ev {
                    Event::Untagged(r) => got.push(r),
                    Event::Completed { tag, status } if tag == self.tag => {
                        check("IDLE", &status)?;
                        return Err(Error::Protocol("the server ended IDLE".into()));
                    }
                    _ => {}
                }
            }
            if !got.is_empty() {
                return Ok(got);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(got);
            }
            match self.client.read_more(deadline - now).await {
                Ok(()) => {}
                Err(Error::Timeout(_)) => return Ok(got),
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends DONE and waits for the tagged OK; returns updates that came meanwhile.
    ///
    /// # Errors
    /// I/O or protocol errors, or a refusal.
    pub async fn done(self) -> Result<Vec<Response>, Error> {
        self.client
            .conn
            .idle_done()
            .map_err(|e| Error::Protocol(e.to_string()))?;
        let (responses, status) = self.client.collect(&self.tag).await?;
        check("IDLE", &status)?;
        Ok(responses)
    }
}

fn check(command: &'static str, status: &StatusResponse) -> Result<(), Error> {
    match status.kind {
        StatusKind::Ok => Ok(()),
        kind => Err(Error::Refused {
            command,
            kind,
            text: status.text.as_str().to_string(),
        }),
    }
}

fn fetched(responses: Vec<Response>) -> Vec<Fetched> {
    responses
        .into_iter()
        .filter_map(|r| match r {
            Response::Data(Data::Fetch { seq, items }) => Some(Fetched { seq, items }),
            _ => None,
        })
        .collect()
}

fn client_nonce() -> String {
    use base64::Engine as _;
    use std::io::Read as _;
    let mut bytes = [0u8; 18];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_err()
    {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(u64::from(std::process::id()));
        for (b, v) in bytes
            .iter_mut()
            .zip(h.finish().to_le_bytes().iter().cycle())
        {
            *b = *v;
        }
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
