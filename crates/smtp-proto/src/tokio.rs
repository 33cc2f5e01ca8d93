//! The tokio + rustls adapter (feature `tokio`): [`serve`] drives a
//! [`server::Connection`] over a stream and asks an async [`Backend`] for every decision;
//! [`Client`] is a typed async client over [`client::Connection`].
//!
//! The adapter owns no protocol rule: it moves bytes, sleeps until
//! [`server::Connection::poll_timeout`], performs the STARTTLS handshake the machine asks
//! for (with `mail-net`), and drives `mail_sasl::server::Exchange` for `AUTH`.
//!
//! ```no_run
//! use smtp_proto::server::{Config, MailDecision, MessageDecision, RcptDecision};
//! use smtp_proto::tokio::{Backend, ServeConfig, serve};
//! use smtp_proto::{ForwardPath, MailParams, RcptParams, ReversePath};
//!
//! struct Sink(Vec<u8>);
//! impl Backend for Sink {
//!     async fn mail_from(&mut self, _: &ReversePath, _: &MailParams) -> MailDecision {
//!         MailDecision::Accept
//!     }
//!     async fn rcpt_to(&mut self, to: &ForwardPath, _: &RcptParams) -> RcptDecision {
//!         RcptDecision::Accept
//!     }
//!     async fn data_chunk(&mut self, chunk: bytes::Bytes) {
//!         self.0.extend_from_slice(&chunk);
//!     }
//!     async fn message(&mut self, _recipients: usize) -> Vec<MessageDecision> {
//!         vec![MessageDecision::Accept]
//!     }
//! }
//!
//! # async fn run() -> Result<(), smtp_proto::Error> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:2525").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let config = ServeConfig::new(Config::mx("mx.example.org"));
//!     tokio::spawn(serve(tcp, config, Sink(Vec::new())));
//! }
//! # }
//! ```

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use mail_net::{MaybeTls, TlsAcceptor, TlsConnector};
use mail_sasl::server::{Exchange, Identity, ServerContext, Step, Verification};
use mail_sasl::{AuthFailure, Mechanism, ScramSecret, Secret};
use rand::Rng as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};

use crate::client::{self, Capabilities, Sent, Transfer};
use crate::error::Error;
use crate::server::{self, AuthAnswer, Event, MailDecision, MessageDecision, RcptDecision};
use crate::types::{
    Body, Command, ForwardPath, HelloVerb, MailParams, RcptParams, Reply, ReversePath,
};

/// The application side of a server session: one value per connection.
///
/// Every method returns a `Send` future so that [`serve`] can be `tokio::spawn`ed.
pub trait Backend: Send {
    /// `MAIL FROM` passed the protocol checks: accept or refuse the sender.
    fn mail_from(
        &mut self,
        from: &ReversePath,
        params: &MailParams,
    ) -> impl Future<Output = MailDecision> + Send;

    /// `RCPT TO` passed the protocol checks: accept or refuse the recipient.
    fn rcpt_to(
        &mut self,
        to: &ForwardPath,
        params: &RcptParams,
    ) -> impl Future<Output = RcptDecision> + Send;

    /// A piece of the message, in order (dot-unstuffed for DATA, raw for BDAT).
    fn data_chunk(&mut self, chunk: Bytes) -> impl Future<Output = ()> + Send;

    /// The message is complete: the decision for it. SMTP uses the first element; LMTP
    /// one per accepted recipient, in order (`recipients` of them; the last element is
    /// repeated if the vector is shorter, and an empty vector accepts).
    fn message(&mut self, recipients: usize) -> impl Future<Output = Vec<MessageDecision>> + Send;

    /// The transaction was reset or the message refused by the protocol machine: drop it.
    fn reset(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// The client greeted us.
    fn hello(&mut self, _verb: HelloVerb, _domain: &str) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Checks SASL credentials (PLAIN/LOGIN passwords, CRAM-MD5 digests, bearer tokens).
    /// The default refuses everything. The error picks the reply:
    /// [`AuthFailure::Denied`]`(text)` sends `535 5.7.8 text` (text sanitised to one line of
    /// printable ASCII), [`AuthFailure::TemporaryFailure`] sends `454 4.7.0 Temporary
    /// authentication failure`, anything else `535 5.7.8 Authentication credentials invalid`.
    fn verify(
        &mut self,
        _credentials: Verification,
    ) -> impl Future<Output = Result<Identity, AuthFailure>> + Send {
        async { Err(AuthFailure::InvalidCredentials) }
    }

    /// The stored SCRAM secret of a user (`None`: unknown user). The default knows none.
    fn scram_secret(
        &mut self,
        _username: &str,
    ) -> impl Future<Output = Option<ScramSecret>> + Send {
        async { None }
    }

    /// The client authenticated as `identity`.
    fn authenticated(&mut self, _identity: &Identity) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Configuration of [`serve`].
#[derive(Clone)]
#[non_exhaustive]
pub struct ServeConfig {
    /// The protocol machine's configuration.
    pub smtp: server::Config,
    /// TLS for STARTTLS (offered when set and the stream is not already TLS).
    pub tls: Option<TlsAcceptor>,
    /// Limit on the STARTTLS handshake (default 30 s).
    pub handshake_timeout: Duration,
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("smtp", &self.smtp)
            .field("tls", &self.tls.is_some())
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

impl ServeConfig {
    /// Plaintext (or already-TLS, see [`server::Config::implicit_tls`]) without STARTTLS.
    pub fn new(smtp: server::Config) -> Self {
        ServeConfig {
            smtp,
            tls: None,
            handshake_timeout: Duration::from_secs(30),
        }
    }

    /// Offers STARTTLS with this acceptor.
    pub fn with_starttls(mut self, tls: TlsAcceptor) -> Self {
        self.tls = Some(tls);
        self
    }
}

fn nonce() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

async fn flush<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut MaybeTls<S>,
    conn: &mut server::Connection,
) -> Result<(), Error> {
    let mut wrote = false;
    while let Some(b) = conn.take_output() {
        stream.write_all(&b).await?;
        wrote = true;
    }
    if wrote {
        stream.flush().await?;
    }
    Ok(())
}

enum Sasl {
    Idle,
    Running(Box<Exchange>),
    /// SCRAM's server-final message was sent as a challenge; the empty answer completes.
    Final(Identity),
}

/// Serves one SMTP / submission / LMTP session on `io` until the client quits, the
/// machine closes the session (errors, timeouts) or the connection drops.
///
/// For implicit TLS (port 465), pass the TLS stream (e.g. from `mail_net::serve` with an
/// implicit-TLS listener) and set [`server::Config::implicit_tls`].
pub async fn serve<S, B>(io: S, config: ServeConfig, mut backend: B) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    B: Backend,
{
    let mut smtp = config.smtp.clone();
    smtp.extensions.starttls = config.tls.is_some() && !smtp.implicit_tls;
    let hostname = smtp.hostname.clone();
    let mut conn = server::Connection::new(smtp, std::time::Instant::now());
    let mut stream = MaybeTls::Plain(io);
    let mut buf = vec![0u8; 16 * 1024];
    let mut sasl = Sasl::Idle;
    loop {
        while let Some(event) = conn.next_event() {
            match event {
                Event::Hello { verb, domain } => backend.hello(verb, &domain).await,
                Event::MailFrom { from, params } => {
                    flush(&mut stream, &mut conn).await?;
                    let d = backend.mail_from(&from, &params).await;
                    conn.reply(d)?;
                }
                Event::RcptTo { to, params } => {
                    flush(&mut stream, &mut conn).await?;
                    let d = backend.rcpt_to(&to, &params).await;
                    conn.reply(d)?;
                }
                Event::DataChunk(chunk) => backend.data_chunk(chunk).await,
                Event::DataEnd => {
                    let n = if conn.config().mode == server::Mode::Lmtp {
                        conn.transaction().map_or(1, |t| t.accepted.max(1))
                    } else {
                        1
                    };
                    let decisions = backend.message(n).await;
                    for i in 0..n {
                        let d = decisions
                            .get(i)
                            .or(decisions.last())
                            .cloned()
                            .unwrap_or(MessageDecision::Accept);
                        conn.reply(d)?;
                    }
                }
                Event::DataAborted(_) | Event::Reset => backend.reset().await,
                Event::StartTls => {
                    flush(&mut stream, &mut conn).await?;
                    let Some(acceptor) = &config.tls else {
                        return Err(Error::InvalidState("STARTTLS without a TLS acceptor"));
                    };
                    stream = stream
                        .upgrade_server_timeout(acceptor, config.handshake_timeout)
                        .await?;
                    tracing::debug!(tls = ?stream.tls_info().map(|t| t.describe()), "STARTTLS done");
                    conn.tls_established();
                }
                Event::Auth {
                    mechanism,
                    initial_response,
                } => {
                    let Some(mech) = Mechanism::from_name(mechanism.as_bytes()) else {
                        conn.reply(AuthAnswer::Reply(Reply::enh(
                            504,
                            (5, 5, 4),
                            "Unrecognized authentication type",
                        )))?;
                        continue;
                    };
                    let mut ex = Box::new(Exchange::new(
                        mech,
                        ServerContext::new(hostname.clone(), nonce()),
                    ));
                    let step = ex.start(initial_response.as_ref().map(|r| r.expose().as_slice()));
                    sasl = Sasl::Running(ex);
                    let answer = drive_sasl(&mut sasl, step, &mut backend).await;
                    // The failed-login delay counts from now.
                    conn.handle_timeout(std::time::Instant::now());
                    conn.reply(answer)?;
                }
                Event::AuthResponse(data) => {
                    let answer = match std::mem::replace(&mut sasl, Sasl::Idle) {
                        Sasl::Running(mut ex) => {
                            let step = ex.step(data.expose());
                            sasl = Sasl::Running(ex);
                            drive_sasl(&mut sasl, step, &mut backend).await
                        }
                        Sasl::Final(identity) => {
                            if data.expose().is_empty() {
                                backend.authenticated(&identity).await;
                                AuthAnswer::Success
                            } else {
                                AuthAnswer::Failure
                            }
                        }
                        Sasl::Idle => AuthAnswer::Failure,
                    };
                    conn.handle_timeout(std::time::Instant::now());
                    conn.reply(answer)?;
                }
                Event::AuthCancelled => sasl = Sasl::Idle,
            }
        }
        flush(&mut stream, &mut conn).await?;
        if conn.is_closed() {
            tracing::debug!("SMTP session closed by the protocol machine");
            let _ = stream.shutdown().await;
            return Ok(());
        }
        let deadline = conn
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            read = stream.read(&mut buf) => {
                let n = read?;
                if n == 0 {
                    tracing::debug!("SMTP client closed the connection");
                    return Ok(());
                }
                conn.feed(buf.get(..n).unwrap_or_default());
                conn.handle_timeout(std::time::Instant::now());
            }
            _ = tokio::time::sleep_until(deadline) => {
                conn.handle_timeout(std::time::Instant::now());
            }
        }
    }
}

async fn drive_sasl<B: Backend>(sasl: &mut Sasl, mut step: Step, backend: &mut B) -> AuthAnswer {
    loop {
        let Sasl::Running(ex) = sasl else {
            return AuthAnswer::Failure;
        };
        step = match step {
            Step::Challenge(c) => return AuthAnswer::Challenge(c),
            Step::Verify(v) => {
                let result = backend.verify(v).await;
                ex.credentials_checked(result)
            }
            Step::NeedScramSecret { username } => {
                let secret = backend.scram_secret(&username).await;
                ex.scram_secret(secret)
            }
            Step::Success {
                identity,
                server_final,
            } => {
                if let Some(data) = server_final {
                    *sasl = Sasl::Final(identity);
                    return AuthAnswer::Challenge(data);
                }
                tracing::debug!(user = %identity.username, "SMTP AUTH succeeded");
                backend.authenticated(&identity).await;
                *sasl = Sasl::Idle;
                return AuthAnswer::Success;
            }
            Step::Failure(f) => {
                tracing::debug!(reason = %f, "SMTP AUTH failed");
                *sasl = Sasl::Idle;
                return match f {
                    AuthFailure::Denied(text) => AuthAnswer::Denied(text),
                    f if f.is_temporary() => AuthAnswer::TempFail,
                    _ => AuthAnswer::Failure,
                };
            }
            _ => {
                *sasl = Sasl::Idle;
                return AuthAnswer::Failure;
            }
        };
    }
}

/// The envelope of one message for [`Client::send`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Envelope {
    /// The sender (`<>` for bounces).
    pub from: ReversePath,
    /// The recipients.
    pub to: Vec<ForwardPath>,
    /// `MAIL` parameters; `SIZE`, `BODY=8BITMIME` and `SMTPUTF8` are added when needed.
    pub params: MailParams,
}

impl Envelope {
    /// An envelope without parameters.
    pub fn new(from: ReversePath, to: Vec<ForwardPath>) -> Self {
        Envelope {
            from,
            to,
            params: MailParams::default(),
        }
    }
}

/// What happened to a message sent with [`Client::send`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The reply to each `RCPT`, in envelope order.
    pub recipients: Vec<(ForwardPath, Reply)>,
    /// The reply (LMTP: one per accepted recipient) after the message.
    pub message: Vec<Reply>,
}

/// An async SMTP / LMTP client over [`client::Connection`].
#[derive(Debug)]
pub struct Client<S> {
    stream: Option<MaybeTls<S>>,
    conn: client::Connection,
    buf: Vec<u8>,
    /// Send with BDAT when the server offers CHUNKING (default true).
    pub prefer_bdat: bool,
}

impl Client<TcpStream> {
    /// Connects over plaintext TCP, reads the greeting and sends `EHLO` (`LHLO` for LMTP).
    pub async fn connect(addr: impl ToSocketAddrs, config: client::Config) -> Result<Self, Error> {
        let stream = mail_net::connect(addr, Duration::from_secs(30)).await?;
        Self::start(stream, config).await
    }

    /// Connects with implicit TLS (port 465), then greeting and `EHLO`.
    pub async fn connect_tls(
        addr: impl ToSocketAddrs,
        connector: &TlsConnector,
        server_name: &str,
        config: client::Config,
    ) -> Result<Self, Error> {
        let name = mail_net::tls::server_name(server_name).map_err(|e| Error::Io(e.to_string()))?;
        let stream = mail_net::connect_tls(addr, connector, name, Duration::from_secs(30)).await?;
        Self::start(stream, config).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Client<S> {
    /// Starts a session on an existing stream: greeting, then `EHLO` / `LHLO`.
    pub async fn start(stream: MaybeTls<S>, config: client::Config) -> Result<Self, Error> {
        let mut c = Client {
            stream: Some(stream),
            conn: client::Connection::new(config, std::time::Instant::now()),
            buf: vec![0u8; 16 * 1024],
            prefer_bdat: true,
        };
        let greeting = c.reply().await?;
        if !greeting.is_positive() {
            return Err(Error::Rejected(greeting));
        }
        c.ehlo().await?;
        Ok(c)
    }

    /// The capabilities of the last `EHLO`.
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.conn.capabilities()
    }

    /// True inside TLS.
    pub fn is_tls(&self) -> bool {
        self.stream.as_ref().is_some_and(MaybeTls::is_tls)
    }

    async fn ehlo(&mut self) -> Result<(), Error> {
        let verb = if self.lmtp() {
            HelloVerb::Lhlo
        } else {
            HelloVerb::Ehlo
        };
        let domain = self.hostname();
        let reply = self.command(Command::Hello { verb, domain }).await?;
        if !reply.is_positive() {
            return Err(Error::Rejected(reply));
        }
        Ok(())
    }

    fn lmtp(&self) -> bool {
        self.conn.config().lmtp
    }

    fn hostname(&self) -> String {
        self.conn.config().hostname.clone()
    }

    fn stream(&mut self) -> Result<&mut MaybeTls<S>, Error> {
        self.stream.as_mut().ok_or(Error::Closed)
    }

    async fn write_out(&mut self) -> Result<(), Error> {
        while let Some(b) = self.conn.take_output() {
            let s = self.stream()?;
            s.write_all(&b).await?;
            s.flush().await?;
        }
        Ok(())
    }

    /// The next reply, whatever it answers.
    async fn next(&mut self) -> Result<(Sent, Reply), Error> {
        self.write_out().await?;
        loop {
            match self.conn.next_event() {
                Some(client::Event::Reply { to, reply }) => return Ok((to, reply)),
                Some(client::Event::TimedOut(_)) => return Err(Error::Timeout("a server reply")),
                Some(client::Event::ProtocolError(e)) => return Err(e),
                None => {}
            }
            if self.conn.is_closed() {
                return Err(Error::Closed);
            }
            let deadline = self
                .conn
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            let Client {
                stream, buf, conn, ..
            } = self;
            let stream = stream.as_mut().ok_or(Error::Closed)?;
            tokio::select! {
                read = stream.read(buf) => {
                    let n = read?;
                    if n == 0 {
                        return Err(Error::Closed);
                    }
                    conn.feed(buf.get(..n).unwrap_or_default());
                }
                _ = tokio::time::sleep_until(deadline) => {
                    conn.handle_timeout(std::time::Instant::now());
                }
            }
        }
    }

    async fn reply(&mut self) -> Result<Reply, Error> {
        Ok(self.next().await?.1)
    }

    /// Sends any command and returns its reply.
    pub async fn command(&mut self, cmd: Command) -> Result<Reply, Error> {
        self.conn.send(cmd)?;
        self.reply().await
    }

    /// Upgrades with STARTTLS (RFC 3207) and sends `EHLO` again.
    pub async fn starttls(
        &mut self,
        connector: &TlsConnector,
        server_name: &str,
    ) -> Result<(), Error> {
        if !self.capabilities().is_some_and(|c| c.starttls) {
            return Err(Error::NotSupported("STARTTLS"));
        }
        let reply = self.command(Command::StartTls).await?;
        if reply.code != 220 {
            return Err(Error::Rejected(reply));
        }
        let name = mail_net::tls::server_name(server_name).map_err(|e| Error::Io(e.to_string()))?;
        let stream = self.stream.take().ok_or(Error::Closed)?;
        let stream = stream
            .upgrade_client_timeout(connector, name, Duration::from_secs(30))
            .await?;
        self.stream = Some(stream);
        self.conn.tls_established();
        self.ehlo().await
    }

    /// Authenticates with a `mail-sasl` mechanism (RFC 4954), sending an initial response
    /// when the mechanism has one.
    pub async fn auth(
        &mut self,
        mechanism: Mechanism,
        credentials: mail_sasl::client::ClientCredentials,
    ) -> Result<(), Error> {
        let name = mechanism.as_str();
        if !self
            .capabilities()
            .is_some_and(|c| c.auth.iter().any(|m| m == name))
        {
            return Err(Error::NotSupported("this AUTH mechanism"));
        }
        let mut ex = mail_sasl::client::Exchange::new(mechanism, credentials, nonce());
        let ir = ex.initial_response();
        let mut reply = self
            .command(Command::Auth {
                mechanism: name.to_string(),
                initial_response: ir.map(Secret::new),
            })
            .await?;
        loop {
            match reply.code {
                334 => {
                    let challenge = client::decode_challenge(&reply)?;
                    match ex.step(&challenge) {
                        Ok(resp) => self.conn.send_auth_response(&Secret::new(resp)),
                        Err(e) => {
                            self.conn.cancel_auth();
                            let _ = self.reply().await;
                            return Err(Error::Sasl(e.to_string()));
                        }
                    }
                    reply = self.reply().await?;
                }
                235 => {
                    return ex.finish(None).map_err(|e| Error::Sasl(e.to_string()));
                }
                _ => return Err(Error::Rejected(reply)),
            }
        }
    }

    /// Sends one message: pipelined when the server offers PIPELINING, with BDAT when it
    /// offers CHUNKING (and [`Client::prefer_bdat`]), `SIZE=` when it offers SIZE,
    /// `BODY=8BITMIME` for 8-bit content, `SMTPUTF8` for non-ASCII addresses.
    ///
    /// Fails with [`Error::Rejected`] when `MAIL` or the message is refused, with
    /// [`Error::RecipientsRefused`] (every `RCPT` with its own reply) when no recipient was
    /// accepted (the transaction is then reset), or locally when the message exceeds the
    /// server's SIZE; otherwise returns every reply.
    pub async fn send(&mut self, envelope: &Envelope, message: &[u8]) -> Result<Delivery, Error> {
        let caps = self.capabilities().cloned().unwrap_or_default();
        let mut envelope = envelope.clone();
        let params = &mut envelope.params;
        if caps.size.is_some() && params.size.is_none() {
            params.size = Some(message.len() as u64);
        }
        if let Some(limit) = caps.size.filter(|&l| l > 0 && message.len() as u64 > l) {
            return Err(Error::Rejected(Reply::enh(
                552,
                (5, 3, 4),
                format!(
                    "message of {} octets exceeds the server's SIZE {limit}",
                    message.len()
                ),
            )));
        }
        let eight_bit = message.iter().any(|&b| b >= 0x80);
        if eight_bit && params.body.is_none() && caps.eight_bit_mime {
            params.body = Some(Body::EightBitMime);
        }
        self.send_reader(&envelope, message).await
    }

    /// Sends one message read from `body` as it goes (never held whole): 64 KiB pieces
    /// dot-stuffed after `DATA`, or 1 MiB `BDAT` chunks. Like [`Client::send`], but the
    /// envelope's parameters are used as given (set `SIZE=` and `BODY=` yourself).
    pub async fn send_reader<R: AsyncRead + Unpin>(
        &mut self,
        envelope: &Envelope,
        mut body: R,
    ) -> Result<Delivery, Error> {
        let caps = self.capabilities().cloned().unwrap_or_default();
        let transfer = if caps.chunking && self.prefer_bdat {
            Transfer::Bdat
        } else {
            Transfer::Data
        };
        let rcpts: Vec<(ForwardPath, RcptParams)> = envelope
            .to
            .iter()
            .map(|t| (t.clone(), RcptParams::default()))
            .collect();
        self.conn.send_transaction(
            envelope.from.clone(),
            envelope.params.clone(),
            &rcpts,
            transfer,
        )?;
        let mut delivery = Delivery {
            recipients: Vec::new(),
            message: Vec::new(),
        };
        let (to, mail) = self.next().await?;
        if to != Sent::Mail {
            return Err(Error::InvalidState("reply out of order"));
        }
        let pipelined = caps.pipelining;
        if !mail.is_positive() {
            // With pipelining the RCPTs (and DATA) were sent anyway: read their replies.
            if pipelined {
                let pending = rcpts.len() + usize::from(transfer == Transfer::Data);
                for _ in 0..pending {
                    let (to, r) = self.next().await?;
                    if to == Sent::Data && r.code == 354 {
                        self.conn.finish_body()?;
                        let _ = self.next().await?;
                    }
                }
            }
            return Err(Error::Rejected(mail));
        }
        for (to, _) in &rcpts {
            let (_, r) = self.next().await?;
            delivery.recipients.push((to.clone(), r));
        }
        let accepted = delivery
            .recipients
            .iter()
            .filter(|(_, r)| r.is_positive())
            .count();
        if transfer == Transfer::Data {
            if accepted == 0 && !pipelined {
                // Lock-step: DATA was never sent.
                let _ = self.command(Command::Rset).await;
                return Err(Error::RecipientsRefused(delivery.recipients));
            }
            let (_, data) = self.next().await?;
            if data.code != 354 {
                let _ = self.command(Command::Rset).await;
                return Err(if accepted == 0 {
                    Error::RecipientsRefused(delivery.recipients)
                } else {
                    Error::Rejected(data)
                });
            }
            if accepted == 0 {
                // RFC 2920: DATA accepted although no recipient was: send only the dot.
                self.conn.finish_body()?;
                let _ = self.next().await?;
                return Err(Error::RecipientsRefused(delivery.recipients));
            }
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = body.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                self.conn.send_body(buf.get(..n).unwrap_or_default())?;
                self.write_out().await?;
            }
            self.conn.finish_body()?;
        } else {
            if accepted == 0 {
                let _ = self.command(Command::Rset).await;
                return Err(Error::RecipientsRefused(delivery.recipients));
            }
            const CHUNK: usize = 1024 * 1024;
            let mut current = read_chunk(&mut body, CHUNK).await?;
            let mut sent = 0usize;
            loop {
                // Read one chunk ahead to know whether this one is the last.
                let next = if current.len() < CHUNK {
                    Vec::new()
                } else {
                    read_chunk(&mut body, CHUNK).await?
                };
                let last = next.is_empty();
                self.conn.send_bdat(&current, last)?;
                self.write_out().await?;
                if last {
                    break;
                }
                sent += 1;
                if !pipelined {
                    let (_, r) = self.next().await?;
                    if !r.is_positive() {
                        return Err(Error::Rejected(r));
                    }
                    sent -= 1;
                }
                current = next;
            }
            for _ in 0..sent {
                let (_, r) = self.next().await?;
                if !r.is_positive() {
                    // The final reply is still due.
                    let _ = self.next().await;
                    return Err(Error::Rejected(r));
                }
            }
        }
        let replies = if self.lmtp() { accepted } else { 1 };
        for _ in 0..replies {
            let (_, r) = self.next().await?;
            delivery.message.push(r);
        }
        Ok(delivery)
    }

    /// Sends `QUIT`, reads the reply and closes the stream.
    pub async fn quit(mut self) -> Result<(), Error> {
        let reply = self.command(Command::Quit).await;
        if let Some(mut s) = self.stream.take() {
            let _ = s.shutdown().await;
        }
        reply.map(|_| ())
    }
}

/// Reads up to `max` octets (fewer only at the end of `r`).
async fn read_chunk<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Vec<u8>, Error> {
    let mut v = Vec::with_capacity(max.min(64 * 1024));
    let n = r.take(max as u64).read_to_end(&mut v).await?;
    let _ = n;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refuses every login with the error it holds.
    struct Refuser(AuthFailure);

    impl Backend for Refuser {
        async fn mail_from(&mut self, _: &ReversePath, _: &MailParams) -> MailDecision {
            MailDecision::Reject
        }
        async fn rcpt_to(&mut self, _: &ForwardPath, _: &RcptParams) -> RcptDecision {
            RcptDecision::UnknownUser
        }
        async fn data_chunk(&mut self, _: Bytes) {}
        async fn message(&mut self, _: usize) -> Vec<MessageDecision> {
            Vec::new()
        }
        async fn verify(&mut self, _: Verification) -> Result<Identity, AuthFailure> {
            Err(self.0.clone())
        }
    }

    /// One session over an in-memory pipe: sends `input`, returns the whole transcript
    /// the server wrote.
    async fn session(failure: AuthFailure, input: &[u8]) -> String {
        let mut smtp = server::Config::submission("smtp.test");
        smtp.implicit_tls = true;
        smtp.limits.auth_failure_delay = Duration::ZERO;
        smtp.auth_mechanisms.push("XOAUTH2".into());
        let config = ServeConfig::new(smtp);
        let (mut client, srv) = tokio::io::duplex(64 * 1024);
        let task = tokio::spawn(serve(srv, config, Refuser(failure)));
        client.write_all(input).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut out))
            .await
            .unwrap()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The line after the EHLO reply.
    fn auth_line(transcript: &str) -> &str {
        transcript
            .lines()
            .find(|l| !l.starts_with("220") && !l.starts_with("250"))
            .unwrap()
    }

    #[tokio::test]
    async fn denied_login_sends_the_backends_text() {
        let t = session(
            AuthFailure::Denied("SMTP is disabled for\r\nexample.org".into()),
            b"EHLO a\r\nAUTH PLAIN AHVzZXIAeA==\r\nQUIT\r\n",
        )
        .await;
        assert_eq!(
            auth_line(&t),
            "535 5.7.8 SMTP is disabled for example.org",
            "{t}"
        );
        assert!(
            t.ends_with("221 2.0.0 Bye\r\n") || t.contains("\r\n221 "),
            "{t}"
        );
    }

    #[tokio::test]
    async fn bearer_denial_skips_the_error_challenge() {
        let t = session(
            AuthFailure::Denied("use an app password".into()),
            b"EHLO a\r\nAUTH XOAUTH2 dXNlcj11c2VyAWF1dGg9QmVhcmVyIHRva2VuAQE=\r\nQUIT\r\n",
        )
        .await;
        assert_eq!(auth_line(&t), "535 5.7.8 use an app password", "{t}");
    }

    #[tokio::test]
    async fn temporary_failure_sends_454() {
        let t = session(
            AuthFailure::TemporaryFailure("store down".into()),
            b"EHLO a\r\nAUTH PLAIN AHVzZXIAeA==\r\nQUIT\r\n",
        )
        .await;
        assert_eq!(
            auth_line(&t),
            "454 4.7.0 Temporary authentication failure",
            "{t}"
        );
    }

    #[tokio::test]
    async fn wrong_password_keeps_the_fixed_text() {
        let t = session(
            AuthFailure::InvalidCredentials,
            b"EHLO a\r\nAUTH PLAIN AHVzZXIAeA==\r\nQUIT\r\n",
        )
        .await;
        assert_eq!(
            auth_line(&t),
            "535 5.7.8 Authentication credentials invalid",
            "{t}"
        );
    }
}
