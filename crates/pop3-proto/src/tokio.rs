//! The tokio adapter (feature `tokio`): [`serve`] drives [`crate::server::Connection`]
//! over a [`MaybeTls`] stream with a [`Backend`], and [`Client`] is a typed async client
//! over [`crate::client::Connection`].
//!
//! The adapter owns no protocol rule: it moves bytes, sleeps until the machine's
//! `poll_timeout`, performs the TLS handshake the machine asks for, and calls the backend.
//! SASL mechanisms run through `mail_sasl::server::Exchange` / `mail_sasl::client::Exchange`.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
/// Re-exported from `mail-net`: the stream type `serve` and `Client` run on, and the TLS
/// acceptor/connector they take.
pub use mail_net::{MaybeTls, TlsAcceptor, TlsConnector};
use mail_sasl::server::{Exchange, Identity, ServerContext, Step, Verification};
use mail_sasl::{AuthFailure, Mechanism, ScramSecret};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};

use crate::Error;
use crate::client::{self, Event as ClientEvent};
use crate::server::{Config, Connection, Event, Reply};
use crate::types::{
    Capability, Command, MessageInfo, Response, ResponseCode, ScanListing, Secret, UidListing,
    secret,
};

/// Why a login was refused; each maps to an RFC 3206 response code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// Wrong credentials or unknown user: `-ERR [AUTH]`.
    Invalid,
    /// The maildrop is locked by another session: `-ERR [IN-USE]`.
    InUse,
    /// Logged in too recently (LOGIN-DELAY): `-ERR [LOGIN-DELAY]`.
    LoginDelay,
    /// The backend cannot answer now: `-ERR [SYS/TEMP]` with this text.
    Temporary(String),
    /// A permanent problem with the account: `-ERR [SYS/PERM]` with this text.
    Permanent(String),
    /// The credentials may be right but this login is refused by policy (protocol turned
    /// off, app password required, ...): `-ERR [AUTH]` with this text, which should say
    /// what the user can do about it.
    Denied(String),
}

impl AuthError {
    fn reply(&self) -> Reply {
        let (code, text) = match self {
            Self::Invalid => (ResponseCode::Auth, "authentication failed".to_string()),
            Self::InUse => (
                ResponseCode::InUse,
                "maildrop is locked by another session".into(),
            ),
            Self::LoginDelay => (ResponseCode::LoginDelay, "logged in too recently".into()),
            Self::Temporary(t) => (ResponseCode::SysTemp, t.clone()),
            Self::Permanent(t) => (ResponseCode::SysPerm, t.clone()),
            Self::Denied(t) => (ResponseCode::Auth, t.clone()),
        };
        Reply::AuthFailed {
            code: Some(code),
            text: Bytes::from(text),
        }
    }
}

/// The application behind [`serve`]: credentials, maildrops, message bodies, deletions.
///
/// Methods return `Send` futures so `serve` can run in `tokio::spawn`.
pub trait Backend: Send + Sync {
    /// A locked maildrop, held for the session; dropped without [`Backend::commit`] when
    /// the client disconnects without `QUIT` (RFC 1939: no deletions then).
    type Maildrop: Send;
    /// A message body, read in chunks.
    type Body: AsyncRead + Send + Unpin;

    /// Checks a clear-text password (USER/PASS, SASL PLAIN and LOGIN).
    fn verify_password(
        &self,
        user: &str,
        password: &Secret,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// The plaintext-equivalent secret for APOP and CRAM-MD5, `None` if the user is unknown
    /// or has none. Default: `None` (APOP and CRAM-MD5 always fail).
    fn plaintext_secret(
        &self,
        user: &str,
    ) -> impl Future<Output = Result<Option<Secret>, AuthError>> + Send {
        let _ = user;
        async { Ok(None) }
    }

    /// The stored SCRAM-SHA-256 secret, `None` if unknown. Default: `None`.
    fn scram_secret(
        &self,
        user: &str,
    ) -> impl Future<Output = Result<Option<ScramSecret>, AuthError>> + Send {
        let _ = user;
        async { Ok(None) }
    }

    /// Checks an OAuth 2.0 bearer token; returns the user it belongs to. Default: refused.
    fn verify_bearer(
        &self,
        user: Option<&str>,
        token: &Secret,
    ) -> impl Future<Output = Result<String, AuthError>> + Send {
        let _ = (user, token);
        async { Err(AuthError::Invalid) }
    }

    /// Locks and lists the authenticated user's maildrop: the messages in order, each with
    /// its size (CRLF line ends) and UIDL.
    fn open_maildrop(
        &self,
        user: &str,
    ) -> impl Future<Output = Result<(Self::Maildrop, Vec<MessageInfo>), AuthError>> + Send;

    /// Opens message `index` (0-based into the listing) for reading.
    fn read_message(
        &self,
        maildrop: &mut Self::Maildrop,
        index: usize,
    ) -> impl Future<Output = io::Result<Self::Body>> + Send;

    /// A hint, given once the reply to `RETR` of message `index - 1` has been written and
    /// before the next command is read: clients that download a maildrop retrieve the
    /// messages in order, so a backend may load message `index` now, while the client is
    /// still busy with the previous one, and hand it out from [`Backend::read_message`].
    /// `index` may be past the end of the listing or a deleted message. A backend that
    /// prefetches should do so only for small messages (it holds them in memory) and
    /// must not fail because of it. Default: nothing.
    fn prefetch(
        &self,
        maildrop: &mut Self::Maildrop,
        index: usize,
    ) -> impl Future<Output = ()> + Send {
        let _ = (maildrop, index);
        async {}
    }

    /// Removes the messages at these indexes durably (fsync before returning) and releases
    /// the maildrop. `+OK` reaches the client only after this returns `Ok`.
    fn commit(
        &self,
        maildrop: Self::Maildrop,
        deleted: Vec<usize>,
    ) -> impl Future<Output = io::Result<()>> + Send;
}

/// Options of [`serve`] beyond the protocol [`Config`].
#[derive(Clone)]
#[non_exhaustive]
pub struct ServeConfig {
    /// The protocol configuration. `tls_active` and `stls` are set by [`serve`] from the
    /// stream and [`ServeConfig::tls`]; when [`ServeConfig::apop`] is set, a fresh
    /// `apop_timestamp` is generated per connection.
    pub protocol: Config,
    /// The TLS configuration for `STLS`; `None` disables `STLS`.
    pub tls: Option<TlsAcceptor>,
    /// Host name used in the APOP timestamp and the SASL context. Default `localhost`.
    pub hostname: String,
    /// Offer APOP with a per-connection timestamp. Default false.
    pub apop: bool,
    /// How long a TLS handshake may take. Default 30 s.
    pub handshake_timeout: Duration,
    /// Read-buffer and body-chunk size. Default 64 KiB.
    pub chunk_size: usize,
    /// A write (one output batch, e.g. a 64 KiB body chunk) that the peer does not drain
    /// within this time ends the session. Default 5 minutes.
    pub write_timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            protocol: Config::default(),
            tls: None,
            hostname: "localhost".into(),
            apop: false,
            handshake_timeout: Duration::from_secs(30),
            chunk_size: 64 * 1024,
            write_timeout: Duration::from_secs(300),
        }
    }
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("protocol", &self.protocol)
            .field("tls", &self.tls.is_some())
            .field("hostname", &self.hostname)
            .field("apop", &self.apop)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("chunk_size", &self.chunk_size)
            .field("write_timeout", &self.write_timeout)
            .finish()
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique APOP timestamp `<pid.counter.unixtime.random@host>`.
fn apop_timestamp(host: &str) -> Bytes {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let r: u32 = rand::random();
    Bytes::from(format!("<{}.{n}.{t}.{r:08x}@{host}>", std::process::id()))
}

fn nonce() -> String {
    use rand::Rng as _;
    let mut rng = rand::rng();
    (0..24)
        .map(|_| char::from(rng.sample(rand::distr::Alphanumeric)))
        .collect()
}

async fn write_out<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection,
    stream: &mut MaybeTls<S>,
    limit: Duration,
) -> Result<(), Error> {
    let write = async {
        while let Some(out) = conn.take_output() {
            stream.write_all(&out).await?;
        }
        stream.flush().await
    };
    match tokio::time::timeout(limit, write).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(Error::Timeout),
    }
}

fn utf8(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Serves one POP3 session on `stream` until `QUIT`, an error or the peer leaves.
///
/// Protocol timers (autologout, failed-login delay) come from the machine; a peer that
/// stops reading our output is cut after [`ServeConfig::write_timeout`].
///
/// An implicit-TLS stream (already [`MaybeTls::ServerTls`]) is marked secure; on a plain
/// stream `STLS` is offered when [`ServeConfig::tls`] is set. Returns `Ok(())` on a normal
/// end (including the peer disconnecting).
pub async fn serve<S, B>(stream: MaybeTls<S>, config: ServeConfig, backend: &B) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    B: Backend,
{
    let mut protocol = config.protocol.clone();
    protocol.tls_active = stream.is_tls();
    protocol.stls = config.tls.is_some() && !protocol.tls_active;
    if config.apop {
        protocol.apop_timestamp = Some(apop_timestamp(&config.hostname));
    }
    let mut conn = Connection::new(protocol, Instant::now());
    let mut stream = Some(stream);
    let mut sasl: Option<Exchange> = None;
    let mut maildrop: Option<B::Maildrop> = None;
    let mut buf = vec![0u8; config.chunk_size.max(1024)];
    loop {
        let Some(s) = stream.as_mut() else {
            return Err(Error::Closed);
        };
        write_out(&mut conn, s, config.write_timeout).await?;
        if conn.is_closed() {
            let _ = s.shutdown().await;
            return Ok(());
        }
        conn.handle_timeout(Instant::now());
        if let Some(ev) = conn.next_event() {
            match ev {
                Event::StartTls => {
                    write_out(&mut conn, s, config.write_timeout).await?;
                    let Some(acceptor) = &config.tls else {
                        return Err(Error::Closed);
                    };
                    let Some(plain) = stream.take() else {
                        return Err(Error::Closed);
                    };
                    let up = tokio::time::timeout(
                        config.handshake_timeout,
                        plain.upgrade_server(acceptor),
                    )
                    .await;
                    match up {
                        Ok(Ok(tls)) => {
                            stream = Some(tls);
                            conn.tls_established()?;
                        }
                        Ok(Err(e)) => return Err(Error::Tls(e.to_string())),
                        Err(_) => return Err(Error::Timeout),
                    }
                }
                Event::Login { user, password } => {
                    let user = utf8(&user);
                    let r = match backend.verify_password(&user, &password).await {
                        Ok(()) => open(backend, &user, &mut maildrop, None).await,
                        Err(e) => e.reply(),
                    };
                    // No clock tick here: the failure delay counts from the command's
                    // arrival, so a slow password check does not show in the timing.
                    conn.reply(r)?;
                }
                Event::Apop {
                    user,
                    digest,
                    timestamp,
                } => {
                    let user = utf8(&user);
                    let r = match backend.plaintext_secret(&user).await {
                        Ok(Some(sec))
                            if mail_sasl::apop_verify(&timestamp, sec.expose(), &digest) =>
                        {
                            open(backend, &user, &mut maildrop, None).await
                        }
                        Ok(_) => AuthError::Invalid.reply(),
                        Err(e) => e.reply(),
                    };
                    conn.reply(r)?;
                }
                Event::AuthStart {
                    mechanism,
                    initial_response,
                } => {
                    let r = match Mechanism::from_name(&mechanism) {
                        None => AuthError::Invalid.reply(),
                        Some(m) => {
                            let ctx = ServerContext::new(config.hostname.clone(), nonce());
                            let mut ex = Exchange::new(m, ctx);
                            let step = ex.start(initial_response.as_ref().map(|s| &s.expose()[..]));
                            let r = drive(backend, &mut ex, step, &mut maildrop).await;
                            sasl = matches!(r, Reply::Challenge(_)).then_some(ex);
                            r
                        }
                    };
                    conn.reply(r)?;
                }
                Event::AuthResponse(data) => {
                    let r = match sasl.as_mut() {
                        Some(ex) => {
                            let step = ex.step(data.expose());
                            drive(backend, ex, step, &mut maildrop).await
                        }
                        None => AuthError::Invalid.reply(),
                    };
                    if !matches!(r, Reply::Challenge(_)) {
                        sasl = None;
                    }
                    conn.reply(r)?;
                }
                Event::AuthAborted => {
                    if let Some(mut ex) = sasl.take() {
                        let _ = ex.cancel();
                    }
                }
                Event::Retr { index, .. } | Event::Top { index, .. } => {
                    let retr = matches!(ev, Event::Retr { .. });
                    let body = match maildrop.as_mut() {
                        Some(m) => backend.read_message(m, index).await,
                        None => Err(io::Error::other("no maildrop")),
                    };
                    match body {
                        Err(e) => conn.reply(Reply::Error {
                            code: Some(ResponseCode::SysTemp),
                            text: Bytes::from(format!("cannot read message: {e}")),
                        })?,
                        Ok(mut body) => loop {
                            let n = match body.read(&mut buf).await {
                                Ok(n) => n,
                                Err(_) => {
                                    conn.reply(Reply::Error {
                                        code: Some(ResponseCode::SysTemp),
                                        text: Bytes::new(),
                                    })?;
                                    break;
                                }
                            };
                            if n == 0 {
                                conn.finish_body()?;
                                break;
                            }
                            conn.send_body_chunk(buf.get(..n).unwrap_or_default())?;
                            // Write only once a chunk's worth is pending: a small message
                            // then goes out as one write (status line, body and `.`
                            // together) instead of one write and flush per piece.
                            if conn.output_len() >= config.chunk_size {
                                write_out(&mut conn, s, config.write_timeout).await?;
                            }
                            if !conn.wants_body() {
                                conn.finish_body()?;
                                break;
                            }
                        },
                    }
                    if retr && let Some(m) = maildrop.as_mut() {
                        // Reply first, then let the backend load the next message while
                        // the client reads this one.
                        write_out(&mut conn, s, config.write_timeout).await?;
                        backend.prefetch(m, index.saturating_add(1)).await;
                    }
                }
                Event::Commit { deleted } => {
                    let r = match maildrop.take() {
                        Some(m) => backend.commit(m, deleted).await,
                        None => Ok(()),
                    };
                    conn.reply(match r {
                        Ok(()) => Reply::Committed,
                        Err(e) => Reply::Error {
                            code: Some(ResponseCode::SysTemp),
                            text: Bytes::from(format!("some deleted messages not removed: {e}")),
                        },
                    })?;
                }
            }
            continue;
        }
        // Nothing to do until input arrives or a deadline passes.
        write_out(&mut conn, s, config.write_timeout).await?;
        if conn.is_closed() {
            let _ = s.shutdown().await;
            return Ok(());
        }
        let deadline = conn.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending::<()>().await,
            }
        };
        // Without a deadline to wait for, keep reading even above the pending-input limit
        // (only reachable with a line limit configured above it).
        if conn.wants_input() || deadline.is_none() {
            tokio::select! {
                r = s.read(&mut buf) => {
                    let n = match r {
                        Ok(n) => n,
                        // A TLS peer that leaves without close_notify: an ordinary goodbye.
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
                        Err(e) => return Err(e.into()),
                    };
                    if n == 0 {
                        return Ok(());
                    }
                    conn.handle_timeout(Instant::now());
                    conn.feed(buf.get(..n).unwrap_or_default());
                }
                () = sleep => conn.handle_timeout(Instant::now()),
            }
        } else {
            sleep.await;
            conn.handle_timeout(Instant::now());
        }
    }
}

async fn open<B: Backend>(
    backend: &B,
    user: &str,
    slot: &mut Option<B::Maildrop>,
    sasl_final: Option<Vec<u8>>,
) -> Reply {
    match backend.open_maildrop(user).await {
        Ok((m, list)) => {
            *slot = Some(m);
            match sasl_final {
                Some(data) => Reply::SaslSuccess {
                    data: Bytes::from(data),
                    maildrop: list,
                },
                None => Reply::LoggedIn(list),
            }
        }
        Err(e) => e.reply(),
    }
}

fn failure(f: &AuthFailure) -> Reply {
    if f.is_temporary() {
        AuthError::Temporary(f.to_string()).reply()
    } else {
        AuthError::Invalid.reply()
    }
}

async fn drive<B: Backend>(
    backend: &B,
    ex: &mut Exchange,
    mut step: Step,
    slot: &mut Option<B::Maildrop>,
) -> Reply {
    loop {
        step = match step {
            Step::Challenge(c) => return Reply::Challenge(Bytes::from(c)),
            Step::Verify(Verification::Password {
                username, password, ..
            }) => {
                let pw = secret(password.into_inner());
                let r = backend.verify_password(&username, &pw).await;
                ex.credentials_checked(r.map(|()| Identity::new(username)).map_err(auth_failure))
            }
            Step::Verify(Verification::CramMd5 {
                username,
                challenge,
                digest_hex,
            }) => {
                let r = match backend.plaintext_secret(&username).await {
                    Ok(Some(s))
                        if mail_sasl::server::cram_md5_verify(
                            s.expose(),
                            &challenge,
                            &digest_hex,
                        ) =>
                    {
                        Ok(Identity::new(username))
                    }
                    Ok(_) => Err(AuthFailure::InvalidCredentials),
                    Err(e) => Err(auth_failure(e)),
                };
                ex.credentials_checked(r)
            }
            Step::Verify(Verification::Bearer {
                username, token, ..
            }) => {
                let tok = secret(token.into_inner());
                let r = backend.verify_bearer(username.as_deref(), &tok).await;
                ex.credentials_checked(r.map(Identity::new).map_err(auth_failure))
            }
            Step::NeedScramSecret { username } => match backend.scram_secret(&username).await {
                Ok(s) => ex.scram_secret(s),
                Err(e) => return e.reply(),
            },
            Step::Success {
                identity,
                server_final,
            } => {
                return open(backend, identity.effective_user(), slot, server_final).await;
            }
            Step::Failure(f) => return failure(&f),
            _ => return AuthError::Invalid.reply(),
        };
    }
}

fn auth_failure(e: AuthError) -> AuthFailure {
    match e {
        AuthError::Temporary(t) | AuthError::Permanent(t) => AuthFailure::TemporaryFailure(t),
        _ => AuthFailure::InvalidCredentials,
    }
}

/// A typed async POP3 client.
///
/// ```no_run
/// # async fn demo() -> Result<(), pop3_proto::Error> {
/// let mut c = pop3_proto::tokio::Client::connect("127.0.0.1:110").await?;
/// c.login("alice", "secret").await?;
/// let (count, _size) = c.stat().await?;
/// for n in 1..=count {
///     let body = c.retr(n).await?;
///     # let _ = body;
/// }
/// c.quit().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Client<S> {
    stream: Option<MaybeTls<S>>,
    conn: client::Connection,
    greeting: Response,
    timestamp: Option<Bytes>,
    buf: Vec<u8>,
    timeout: Duration,
    /// A RETR/TOP body has not been read to its end yet.
    body_open: bool,
}

impl Client<TcpStream> {
    /// Connects in plaintext and reads the greeting.
    pub async fn connect(addr: impl ToSocketAddrs) -> Result<Self, Error> {
        let tcp = TcpStream::connect(addr).await?;
        Self::new(MaybeTls::Plain(tcp)).await
    }

    /// Connects with implicit TLS (port 995), verifying the certificate for `server_name`.
    pub async fn connect_tls(
        addr: impl ToSocketAddrs,
        connector: &TlsConnector,
        server_name: &str,
    ) -> Result<Self, Error> {
        let tcp = TcpStream::connect(addr).await?;
        let name =
            mail_net::tls::server_name(server_name).map_err(|e| Error::Tls(e.to_string()))?;
        let tls = MaybeTls::Plain(tcp)
            .upgrade_client(connector, name)
            .await
            .map_err(|e| Error::Tls(e.to_string()))?;
        Self::new(tls).await
    }
}

/// A message body being received: call [`BodyReader::next_chunk`] until `None`.
#[derive(Debug)]
pub struct BodyReader<'a, S> {
    client: &'a mut Client<S>,
    done: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> BodyReader<'_, S> {
    /// The next un-stuffed chunk, or `None` after the terminating `.` line.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        if self.done {
            return Ok(None);
        }
        match self.client.event().await? {
            ClientEvent::BodyChunk(b) => Ok(Some(b)),
            ClientEvent::End => {
                self.done = true;
                self.client.body_open = false;
                Ok(None)
            }
            _ => Err(Error::Protocol("unexpected line in a message body")),
        }
    }

    /// Reads the rest of the body into memory.
    pub async fn to_vec(mut self) -> Result<Vec<u8>, Error> {
        let mut v = Vec::new();
        while let Some(c) = self.next_chunk().await? {
            v.extend_from_slice(&c);
        }
        Ok(v)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Client<S> {
    /// Wraps a connected stream and reads the greeting.
    pub async fn new(stream: MaybeTls<S>) -> Result<Self, Error> {
        let mut c = Self {
            stream: Some(stream),
            conn: client::Connection::new(client::Config::default()),
            greeting: Response::ok(""),
            timestamp: None,
            buf: vec![0u8; 64 * 1024],
            timeout: Duration::from_secs(60),
            body_open: false,
        };
        match c.event().await? {
            ClientEvent::Greeting {
                response,
                timestamp,
            } => {
                if !response.is_ok() {
                    return Err(Error::Server {
                        code: response.code,
                        text: response.text,
                    });
                }
                c.greeting = response;
                c.timestamp = timestamp;
                Ok(c)
            }
            _ => Err(Error::Protocol("expected a greeting")),
        }
    }

    /// Sets how long to wait for each read from the server (default 60 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The greeting line.
    pub fn greeting(&self) -> &Response {
        &self.greeting
    }

    /// The APOP timestamp of the greeting, if the server offered APOP.
    pub fn apop_timestamp(&self) -> Option<&Bytes> {
        self.timestamp.as_ref()
    }

    /// True when the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.stream.as_ref().is_some_and(MaybeTls::is_tls)
    }

    async fn flush(&mut self) -> Result<(), Error> {
        let Some(s) = self.stream.as_mut() else {
            return Err(Error::Closed);
        };
        while let Some(out) = self.conn.take_output() {
            s.write_all(&out).await?;
        }
        s.flush().await?;
        Ok(())
    }

    async fn event(&mut self) -> Result<ClientEvent, Error> {
        loop {
            if let Some(e) = self.conn.next_event() {
                return Ok(e);
            }
            if self.conn.is_closed() {
                return Err(Error::Closed);
            }
            self.flush().await?;
            let Some(s) = self.stream.as_mut() else {
                return Err(Error::Closed);
            };
            let n = tokio::time::timeout(self.timeout, s.read(&mut self.buf))
                .await
                .map_err(|_| Error::Timeout)??;
            if n == 0 {
                return Err(Error::Closed);
            }
            self.conn.feed(self.buf.get(..n).unwrap_or_default());
        }
    }

    /// Sends a command and waits for its status line; `-ERR` becomes [`Error::Server`].
    /// The rest of a body left unread by a dropped [`BodyReader`] is skipped first.
    pub async fn command(&mut self, cmd: Command) -> Result<Response, Error> {
        while self.body_open {
            if let ClientEvent::End = self.event().await? {
                self.body_open = false;
            }
        }
        self.conn.send(cmd)?;
        self.flush().await?;
        loop {
            match self.event().await? {
                ClientEvent::Response { response, .. } => {
                    return if response.is_ok() {
                        Ok(response)
                    } else {
                        Err(Error::Server {
                            code: response.code,
                            text: response.text,
                        })
                    };
                }
                ClientEvent::Malformed(_) => return Err(Error::Protocol("malformed server line")),
                _ => {}
            }
        }
    }

    async fn collect<T>(
        &mut self,
        cmd: Command,
        mut pick: impl FnMut(ClientEvent) -> Option<T>,
    ) -> Result<Vec<T>, Error> {
        self.command(cmd).await?;
        let mut out = Vec::new();
        loop {
            match self.event().await? {
                ClientEvent::End => return Ok(out),
                e => out.extend(pick(e)),
            }
        }
    }

    /// `CAPA`.
    pub async fn capa(&mut self) -> Result<Vec<Capability>, Error> {
        self.collect(Command::Capa, |e| match e {
            ClientEvent::Capability(c) => Some(c),
            _ => None,
        })
        .await
    }

    /// `STLS`, then the TLS handshake; verify the certificate for `server_name`.
    pub async fn stls(&mut self, connector: &TlsConnector, server_name: &str) -> Result<(), Error> {
        self.command(Command::Stls).await?;
        let name =
            mail_net::tls::server_name(server_name).map_err(|e| Error::Tls(e.to_string()))?;
        let Some(plain) = self.stream.take() else {
            return Err(Error::Closed);
        };
        let tls = tokio::time::timeout(self.timeout, plain.upgrade_client(connector, name))
            .await
            .map_err(|_| Error::Timeout)?
            .map_err(|e| Error::Tls(e.to_string()))?;
        self.stream = Some(tls);
        self.conn.tls_established();
        Ok(())
    }

    /// `USER` + `PASS`.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<(), Error> {
        self.command(Command::User(Bytes::copy_from_slice(user.as_bytes())))
            .await?;
        self.command(Command::Pass(secret(Bytes::copy_from_slice(
            password.as_bytes(),
        ))))
        .await?;
        Ok(())
    }

    /// `APOP` with the greeting's timestamp.
    pub async fn apop(&mut self, user: &str, password: &str) -> Result<(), Error> {
        let Some(ts) = self.timestamp.clone() else {
            return Err(Error::State("the server's greeting has no APOP timestamp"));
        };
        let digest = mail_sasl::apop_digest(&ts, password.as_bytes());
        self.command(Command::Apop {
            name: Bytes::copy_from_slice(user.as_bytes()),
            digest: Bytes::from(digest),
        })
        .await?;
        Ok(())
    }

    /// `AUTH` with a `mail_sasl` mechanism (PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256, ...),
    /// sending an initial response when the mechanism has one.
    pub async fn auth(
        &mut self,
        mechanism: Mechanism,
        credentials: mail_sasl::client::ClientCredentials,
    ) -> Result<(), Error> {
        let mut ex = mail_sasl::client::Exchange::new(mechanism, credentials, nonce());
        let ir = ex.initial_response().map(|v| secret(Bytes::from(v)));
        self.conn.send(Command::Auth {
            mechanism: Bytes::from_static(mechanism.as_str().as_bytes()),
            initial_response: ir,
        })?;
        self.flush().await?;
        loop {
            match self.event().await? {
                ClientEvent::Challenge(c) => {
                    match ex.step(&c) {
                        Ok(resp) => self
                            .conn
                            .send_sasl_response(Some(&secret(Bytes::from(resp)))),
                        // The mechanism refuses the challenge: cancel (RFC 5034 `*`).
                        Err(_) => self.conn.send_sasl_response(None),
                    }
                    self.flush().await?;
                }
                ClientEvent::Response { response, .. } => {
                    if !response.is_ok() {
                        return Err(Error::Server {
                            code: response.code,
                            text: response.text,
                        });
                    }
                    // Some servers put the final server data on the `+OK` line itself
                    // (RFC 5034 forbids it, but be liberal in what we accept).
                    let data = crate::parse::base64(&response.text)
                        .ok()
                        .filter(|d| !d.is_empty());
                    let ok = ex.finish(data.as_deref()).is_ok();
                    return if ok {
                        Ok(())
                    } else {
                        Err(Error::Protocol("the server's SASL success did not verify"))
                    };
                }
                _ => return Err(Error::Protocol("unexpected line during AUTH")),
            }
        }
    }

    /// `STAT`: (message count, total size).
    pub async fn stat(&mut self) -> Result<(u32, u64), Error> {
        let r = self.command(Command::Stat).await?;
        crate::parse::stat(&r.text)
    }

    /// `LIST`.
    pub async fn list(&mut self) -> Result<Vec<ScanListing>, Error> {
        self.collect(Command::List(None), |e| match e {
            ClientEvent::Listing(l) => Some(l),
            _ => None,
        })
        .await
    }

    /// `LIST msg`.
    pub async fn list_one(&mut self, msg: u32) -> Result<ScanListing, Error> {
        let r = self.command(Command::List(Some(msg))).await?;
        crate::parse::scan_listing(&r.text)
    }

    /// `UIDL`.
    pub async fn uidl(&mut self) -> Result<Vec<UidListing>, Error> {
        self.collect(Command::Uidl(None), |e| match e {
            ClientEvent::UniqueId(l) => Some(l),
            _ => None,
        })
        .await
    }

    /// `UIDL msg`.
    pub async fn uidl_one(&mut self, msg: u32) -> Result<UidListing, Error> {
        let r = self.command(Command::Uidl(Some(msg))).await?;
        crate::parse::uid_listing(&r.text)
    }

    /// `RETR msg` as a chunk stream; read it to the end before the next command.
    pub async fn retr_stream(&mut self, msg: u32) -> Result<BodyReader<'_, S>, Error> {
        self.command(Command::Retr(msg)).await?;
        Ok(BodyReader {
            client: self,
            done: false,
        })
    }

    /// `RETR msg` into memory.
    pub async fn retr(&mut self, msg: u32) -> Result<Vec<u8>, Error> {
        self.retr_stream(msg).await?.to_vec().await
    }

    /// `TOP msg lines` into memory.
    pub async fn top(&mut self, msg: u32, lines: u32) -> Result<Vec<u8>, Error> {
        self.command(Command::Top { msg, lines }).await?;
        BodyReader {
            client: self,
            done: false,
        }
        .to_vec()
        .await
    }

    /// `DELE msg`.
    pub async fn dele(&mut self, msg: u32) -> Result<(), Error> {
        self.command(Command::Dele(msg)).await.map(drop)
    }

    /// `RSET`.
    pub async fn rset(&mut self) -> Result<(), Error> {
        self.command(Command::Rset).await.map(drop)
    }

    /// `NOOP`.
    pub async fn noop(&mut self) -> Result<(), Error> {
        self.command(Command::Noop).await.map(drop)
    }

    /// `QUIT`: in TRANSACTION the server commits deletions before its `+OK`.
    pub async fn quit(mut self) -> Result<Response, Error> {
        let r = self.command(Command::Quit).await?;
        if let Some(mut s) = self.stream.take() {
            let _ = s.shutdown().await;
        }
        Ok(r)
    }
}
