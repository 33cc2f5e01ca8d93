//! `serve`: one server connection driven over a tokio stream.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mail_net::{MaybeTls, TlsAcceptor};
use mail_sasl::server::{Exchange, Identity, ServerContext, Step, Verification};
use mail_sasl::{AuthFailure, Mechanism};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Error;
use super::backend::{Backend, Expunged, Session, StoreRequest};
use super::deflate::Deflate;
use crate::server::{Config, Connection, Event, Request, Status};
use crate::types::{
    Code, CommandBody, Data, ESearchItem, FetchAttr, FetchItem, FetchLiteralItem, ListData,
    ListReturnOption, ListSelectOption, Mailbox, MailboxAttr, Response, SearchReturnOption, SeqNum,
    SeqRange, SequenceSet, StatusKind, StatusResponse, Text,
};

/// What [`serve`] needs besides the backend.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServeConfig {
    /// The state machine's configuration. `starttls` is set from `tls` by [`serve`].
    pub imap: Config,
    /// TLS for STARTTLS (plain connections). Default none: STARTTLS is not offered.
    pub tls: Option<TlsAcceptor>,
    /// Server host name (SASL CRAM-MD5 challenges). Default `localhost`.
    pub hostname: String,
    /// Longest STARTTLS handshake. Default 30 s.
    pub handshake_timeout: Duration,
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("imap", &self.imap)
            .field("tls", &self.tls.is_some())
            .field("hostname", &self.hostname)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            imap: Config::default(),
            tls: None,
            hostname: "localhost".into(),
            handshake_timeout: Duration::from_secs(30),
        }
    }
}

impl<T: Backend> Backend for Arc<T> {
    type Session = T::Session;

    fn login(
        &self,
        username: &str,
        password: &[u8],
    ) -> impl std::future::Future<Output = Result<Self::Session, Status>> + Send {
        T::login(self, username, password)
    }

    fn scram_secret(
        &self,
        username: &str,
    ) -> impl std::future::Future<Output = Option<mail_sasl::ScramSecret>> + Send {
        T::scram_secret(self, username)
    }

    fn open_session(
        &self,
        username: &str,
    ) -> impl std::future::Future<Output = Result<Self::Session, Status>> + Send {
        T::open_session(self, username)
    }
}

/// Serves one IMAP connection on `io` until the client logs out, the connection closes or
/// autologout. `io` is plaintext (STARTTLS offered when `config.tls` is set) or an
/// already-established TLS stream (set `config.imap.implicit_tls`).
///
/// # Errors
/// I/O and TLS errors of the connection. Protocol errors of the client are answered on the
/// wire and are not errors here.
pub async fn serve<S, B>(io: S, config: ServeConfig, backend: B) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    B: Backend,
{
    let mut imap = config.imap.clone();
    imap.starttls = config.tls.is_some() && !imap.implicit_tls;
    let conn = Connection::new(imap, Instant::now());
    let mut d = Driver {
        conn,
        stream: Some(MaybeTls::Plain(io)),
        deflate: None,
        session: None,
        sasl: None,
        sasl_final_sent: false,
        idling: false,
        append_error: None,
        backend,
        config,
    };
    let result = d.run().await;
    if let Some(s) = d.session.as_mut() {
        Box::pin(s.logout()).await;
    }
    result
}

struct Driver<S, B: Backend> {
    conn: Connection,
    stream: Option<MaybeTls<S>>,
    deflate: Option<Deflate>,
    session: Option<B::Session>,
    sasl: Option<Exchange>,
    sasl_final_sent: bool,
    idling: bool,
    append_error: Option<Status>,
    backend: B,
    config: ServeConfig,
}

enum Wake {
    Read(std::io::Result<usize>),
    Timer,
    Changes,
}

impl<S, B> Driver<S, B>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    B: Backend,
{
    async fn run(&mut self) -> Result<(), Error> {
        // Small while the client is quiet (most sessions sit in IDLE), doubled when a read
        // fills it, back to the small size once reads are small again.
        let mut buf = vec![0u8; READ_BUF_MIN];
        loop {
            if let Some(ev) = self.conn.next_event() {
                // Boxed: the handlers' futures (every command, every backend call) are
                // large, and inline they would make every connection's task that large
                // for its whole life, idle or not; boxed they exist while a command runs.
                Box::pin(self.handle(ev)).await?;
                continue;
            }
            // Framing may have produced output without an event (BAD, continuations,
            // machine-handled commands): write it before waiting.
            self.flush().await?;
            if self.conn.is_closed() {
                if let Some(s) = self.stream.as_mut() {
                    let _ = s.shutdown().await;
                }
                return Ok(());
            }
            let deadline = self
                .conn
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
            let wants_input = self.conn.wants_input();
            let idling = self.idling;
            let Some(stream) = self.stream.as_mut() else {
                return Ok(());
            };
            let session = self.session.as_mut();
            let wake = tokio::select! {
                r = stream.read(&mut buf), if wants_input => Wake::Read(r),
                () = tokio::time::sleep_until(deadline) => Wake::Timer,
                () = async {
                    match session {
                        Some(s) => s.wait_changes().await,
                        None => std::future::pending().await,
                    }
                }, if idling => Wake::Changes,
            };
            match wake {
                Wake::Read(r) => {
                    let n = r?;
                    if n == 0 {
                        return Ok(());
                    }
                    let next = read_buf_next_len(buf.len(), n);
                    let data = buf.get(..n).unwrap_or_default();
                    match self.deflate.as_mut() {
                        Some(d) => {
                            let plain = d.decompress(data)?;
                            self.conn.feed(&plain);
                        }
                        None => self.conn.feed(data),
                    }
                    self.conn.handle_timeout(Instant::now());
                    if next != buf.len() {
                        // A new allocation (not `resize`) so shrinking really frees.
                        buf = vec![0u8; next];
                    }
                }
                Wake::Timer => self.conn.handle_timeout(Instant::now()),
                Wake::Changes => self.queue_changes(),
            }
        }
    }

    async fn flush(&mut self) -> Result<(), Error> {
        let mut wrote = false;
        while let Some(out) = self.conn.take_output() {
            let Some(stream) = self.stream.as_mut() else {
                break;
            };
            match self.deflate.as_mut() {
                Some(d) => {
                    let c = d.compress(&out)?;
                    stream.write_all(&c).await?;
                }
                None => stream.write_all(&out).await?,
            }
            wrote = true;
        }
        if wrote && let Some(stream) = self.stream.as_mut() {
            stream.flush().await?;
        }
        Ok(())
    }

    fn queue_changes(&mut self) {
        if let Some(s) = self.session.as_mut() {
            for c in s.take_changes() {
                self.conn.queue_unsolicited(c);
            }
        }
    }

    async fn handle(&mut self, ev: Event) -> Result<(), Error> {
        match ev {
            Event::Login {
                username, password, ..
            } => {
                let user = String::from_utf8_lossy(&username).into_owned();
                match self.backend.login(&user, password.expose()).await {
                    Ok(s) => {
                        self.session = Some(s);
                        self.conn.reply(Status::ok("LOGIN completed"))?;
                    }
                    Err(st) => self.conn.reply(st)?,
                }
            }
            Event::AuthStart {
                mechanism, initial, ..
            } => {
                let Some(mech) = Mechanism::from_name(mechanism.as_bytes()) else {
                    self.conn
                        .reply(Status::no("Unsupported authentication mechanism"))?;
                    return Ok(());
                };
                let ctx = ServerContext::new(self.config.hostname.clone(), nonce());
                let mut ex = Exchange::new(mech, ctx);
                self.sasl_final_sent = false;
                let step = ex.start(initial.as_ref().map(|s| &s.expose()[..]));
                self.drive_sasl(ex, step).await?;
            }
            Event::AuthData(data) => {
                if std::mem::take(&mut self.sasl_final_sent) {
                    self.sasl = None;
                    if data.expose().is_empty() {
                        self.conn.reply(Status::ok("AUTHENTICATE completed"))?;
                    } else {
                        self.session = None;
                        self.conn.reply(
                            Status::no("Unexpected data").with_code("AUTHENTICATIONFAILED"),
                        )?;
                    }
                    return Ok(());
                }
                match self.sasl.take() {
                    Some(mut ex) => {
                        let step = ex.step(data.expose());
                        self.drive_sasl(ex, step).await?;
                    }
                    None => self
                        .conn
                        .reply(Status::no("No authentication in progress"))?,
                }
            }
            Event::AuthAborted => {
                self.sasl = None;
                self.sasl_final_sent = false;
            }
            Event::Command(req) => self.command(req).await?,
            Event::AppendStart {
                mailbox,
                flags,
                date,
                size,
                ..
            } => {
                let Some(s) = self.session.as_mut() else {
                    self.conn.reply(Status::bad("Not authenticated"))?;
                    return Ok(());
                };
                self.append_error = None;
                match s.append_begin(&mailbox, &flags, date.as_ref(), size).await {
                    Ok(()) => self.conn.accept_append()?,
                    Err(st) => self.conn.reply(st)?,
                }
            }
            Event::AppendChunk(chunk) => {
                if self.append_error.is_none()
                    && let Some(s) = self.session.as_mut()
                    && let Err(st) = s.append_chunk(chunk).await
                {
                    self.append_error = Some(st);
                }
            }
            Event::AppendEnd => {
                let result = match (self.session.as_mut(), self.append_error.take()) {
                    (Some(s), Some(err)) => {
                        s.append_abort().await;
                        Err(err)
                    }
                    (Some(s), None) => s.append_end().await,
                    (None, _) => Err(Status::bad("Not authenticated")),
                };
                self.queue_changes();
                match result {
                    Ok(code) => self
                        .conn
                        .reply(with_code(Status::ok("APPEND completed"), code))?,
                    Err(st) => self.conn.reply(st)?,
                }
            }
            Event::AppendAborted => {
                if let Some(s) = self.session.as_mut() {
                    s.append_abort().await;
                }
                self.append_error = None;
            }
            Event::Idle { .. } => {
                self.idling = true;
                self.queue_changes();
            }
            Event::IdleDone => self.idling = false,
            Event::StartTls => {
                self.flush().await?;
                let (Some(acceptor), Some(stream)) = (self.config.tls.clone(), self.stream.take())
                else {
                    return Err(Error::Tls(std::io::Error::other(
                        "STARTTLS without a TLS configuration",
                    )));
                };
                let upgraded = stream
                    .upgrade_server_timeout(&acceptor, self.config.handshake_timeout)
                    .await
                    .map_err(Error::Tls)?;
                self.stream = Some(upgraded);
                self.conn.tls_established()?;
            }
            Event::StartCompression => {
                self.flush().await?;
                let mut d = Deflate::new();
                let rest = self.conn.compression_started()?;
                if !rest.is_empty() {
                    let plain = d.decompress(&rest)?;
                    self.conn.feed(&plain);
                }
                self.deflate = Some(d);
            }
            Event::Enabled(caps) => {
                if let Some(s) = self.session.as_mut() {
                    s.enabled(&caps);
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn drive_sasl(&mut self, mut ex: Exchange, mut step: Step) -> Result<(), Error> {
        loop {
            step = match step {
                Step::Challenge(c) => {
                    self.conn.auth_challenge(&c)?;
                    self.sasl = Some(ex);
                    return Ok(());
                }
                Step::Verify(Verification::Password {
                    username, password, ..
                }) => {
                    match self
                        .backend
                        .login(&username, password.expose().as_bytes())
                        .await
                    {
                        Ok(s) => {
                            self.session = Some(s);
                            ex.credentials_checked(Ok(Identity::new(username)))
                        }
                        Err(_) => ex.credentials_checked(Err(AuthFailure::InvalidCredentials)),
                    }
                }
                Step::Verify(_) => ex.credentials_checked(Err(AuthFailure::UnsupportedMechanism)),
                Step::NeedScramSecret { username } => {
                    let secret = self.backend.scram_secret(&username).await;
                    ex.scram_secret(secret)
                }
                Step::Success {
                    identity,
                    server_final,
                } => {
                    if self.session.is_none() {
                        match self.backend.open_session(identity.effective_user()).await {
                            Ok(s) => self.session = Some(s),
                            Err(st) => {
                                self.conn.reply(st)?;
                                return Ok(());
                            }
                        }
                    }
                    if let Some(f) = server_final {
                        self.conn.auth_challenge(&f)?;
                        self.sasl_final_sent = true;
                        return Ok(());
                    }
                    self.conn.reply(Status::ok("AUTHENTICATE completed"))?;
                    return Ok(());
                }
                Step::Failure(f) => {
                    self.session = None;
                    let st = if f.is_temporary() {
                        Status::no("Temporary authentication failure").with_code("UNAVAILABLE")
                    } else {
                        Status::no("Authentication failed").with_code("AUTHENTICATIONFAILED")
                    };
                    self.conn.reply(st)?;
                    return Ok(());
                }
                _ => {
                    self.session = None;
                    self.conn.reply(Status::no("Authentication failed"))?;
                    return Ok(());
                }
            };
        }
    }

    fn send(&mut self, data: Data) -> Result<(), Error> {
        self.conn.send_response(&Response::Data(data))?;
        Ok(())
    }

    /// Sends one FETCH response; a body larger than [`STREAM_AT`] goes out as a literal
    /// written and flushed in pieces (the state machine checks the announced length).
    async fn send_fetch(
        &mut self,
        seq: NonZeroU32,
        mut items: Vec<FetchAttr>,
    ) -> Result<(), Error> {
        let big = items
            .iter()
            .position(|i| literal_data(i).is_some_and(|d| d.len() > STREAM_AT));
        let Some(pos) = big else {
            return self.send(Data::Fetch { seq, items });
        };
        let item = items.remove(pos);
        let Some((head, data)) = split_literal(item) else {
            return Err(Error::Protocol("FETCH item is not a literal".into()));
        };
        self.conn
            .begin_fetch_literal(seq, &items, &head, data.len() as u64)?;
        for piece in data.chunks(STREAM_AT) {
            self.conn.literal_chunk(piece)?;
            self.flush().await?;
        }
        self.conn.end_literal(b")")?;
        Ok(())
    }

    fn send_expunged(&mut self, expunged: &[Expunged]) -> Result<(), Error> {
        if expunged.is_empty() {
            return Ok(());
        }
        if self.conn.enabled().qresync {
            let uids: Vec<u32> = expunged.iter().map(|e| e.uid.get()).collect();
            if let Some(set) = sequence_set(&uids) {
                self.send(Data::Vanished {
                    earlier: false,
                    uids: set,
                })?;
            }
        } else {
            for e in expunged {
                self.send(Data::Expunge(e.seq))?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, result: Result<Status, Status>) -> Result<(), Error> {
        self.queue_changes();
        match result {
            Ok(st) | Err(st) => self.conn.reply(st)?,
        }
        Ok(())
    }

    async fn command(&mut self, req: Request) -> Result<(), Error> {
        let body = req.command.body;
        if let CommandBody::Id(_) = body {
            let id = vec![(
                Bytes::from_static(b"name"),
                Some(Bytes::from_static(b"imap-proto")),
            )];
            self.send(Data::Id(Some(id)))?;
            return self.finish(Ok(Status::ok("ID completed")));
        }
        let Some(session) = self.session.as_mut() else {
            self.conn.reply(Status::bad("Not authenticated"))?;
            return Ok(());
        };
        let result: Result<Status, Status> = match body {
            CommandBody::Noop | CommandBody::Check => {
                Ok(Status::ok(format!("{} completed", req.name)))
            }
            CommandBody::Select { mailbox, params } | CommandBody::Examine { mailbox, params } => {
                let examine = req.name == "EXAMINE";
                match session.select(&mailbox, examine, &params).await {
                    Ok(info) => {
                        let rev2 = self.conn.enabled().imap4rev2;
                        let condstore = self.conn.enabled().condstore
                            || params.condstore
                            || params.qresync.is_some();
                        if condstore {
                            self.conn.note_condstore();
                        }
                        self.send(Data::Exists(info.exists))?;
                        if !rev2 {
                            self.send(Data::Recent(info.recent))?;
                        }
                        self.send(Data::Flags(info.flags.clone()))?;
                        // RFC 9051 section 7.1: a read-only mailbox has no flags that can be
                        // changed permanently.
                        if examine || info.read_only {
                            self.untagged_ok(
                                Code::PermanentFlags(Vec::new()),
                                "Read-only mailbox",
                            )?;
                        } else {
                            self.untagged_ok(
                                Code::PermanentFlags(info.permanent_flags.clone()),
                                "Flags permitted",
                            )?;
                        }
                        if !rev2 && let Some(n) = info.first_unseen {
                            self.untagged_ok(
                                Code::Unseen(n),
                                &format!("Message {n} is first unseen"),
                            )?;
                        }
                        self.untagged_ok(Code::UidValidity(info.uid_validity), "UIDs valid")?;
                        self.untagged_ok(Code::UidNext(info.uid_next), "Predicted next UID")?;
                        if condstore {
                            match info.highest_modseq {
                                Some(m) => self.untagged_ok(Code::HighestModSeq(m), "Highest")?,
                                None => self.untagged_ok(Code::NoModSeq, "No mod-sequences")?,
                            }
                        }
                        for r in &info.extra {
                            self.conn.send_response(r)?;
                        }
                        let ro = examine || info.read_only;
                        let code = if ro { "READ-ONLY" } else { "READ-WRITE" };
                        Ok(Status::ok(format!("{} completed", req.name)).with_code(code))
                    }
                    Err(st) => Err(st),
                }
            }
            CommandBody::Create {
                mailbox,
                special_use,
            } => session
                .create(&mailbox, &special_use)
                .await
                .map(|()| Status::ok("CREATE completed")),
            CommandBody::Delete(mailbox) => session
                .delete(&mailbox)
                .await
                .map(|()| Status::ok("DELETE completed")),
            CommandBody::Rename { from, to } => session
                .rename(&from, &to)
                .await
                .map(|()| Status::ok("RENAME completed")),
            CommandBody::Subscribe(m) => session
                .subscribe(&m, true)
                .await
                .map(|()| Status::ok("SUBSCRIBE completed")),
            CommandBody::Unsubscribe(m) => session
                .subscribe(&m, false)
                .await
                .map(|()| Status::ok("UNSUBSCRIBE completed")),
            CommandBody::List {
                selection,
                reference,
                patterns,
                return_options,
            } => {
                let subscribed = selection.contains(&ListSelectOption::Subscribed);
                if selection.is_empty()
                    && matches!(patterns.as_slice(), [p] if p.as_str().is_empty())
                {
                    // RFC 9051 section 6.3.9: an empty pattern asks for the hierarchy
                    // delimiter and the root of the reference.
                    let (personal, _, _) = session.namespace().await;
                    let delimiter = personal.first().and_then(|n| n.delimiter);
                    let root = match delimiter {
                        Some(d) => reference
                            .as_str()
                            .split_inclusive(d)
                            .next()
                            .filter(|r| r.ends_with(d))
                            .unwrap_or_default(),
                        None => "",
                    };
                    self.send(Data::List(ListData {
                        attributes: vec![MailboxAttr::NoSelect],
                        delimiter,
                        // A prefix of a valid mailbox name is valid.
                        mailbox: Mailbox::new(root.to_owned())
                            .map_err(|e| Error::Protocol(format!("LIST root: {e}")))?,
                        extended: Vec::new(),
                    }))?;
                    return self.finish(Ok(Status::ok("LIST completed")));
                }
                match session.list(&reference, &patterns, subscribed).await {
                    Ok(list) => {
                        let status_items = return_options.iter().find_map(|o| match o {
                            ListReturnOption::Status(items) => Some(items.clone()),
                            _ => None,
                        });
                        let mut out = Vec::new();
                        for l in list {
                            let mailbox = l.mailbox.clone();
                            out.push(Data::List(l));
                            if let Some(items) = &status_items
                                && let Ok(values) = session.status(&mailbox, items).await
                            {
                                out.push(Data::Status {
                                    mailbox,
                                    items: values,
                                });
                            }
                        }
                        for d in out {
                            self.send(d)?;
                        }
                        Ok(Status::ok("LIST completed"))
                    }
                    Err(st) => Err(st),
                }
            }
            CommandBody::Lsub { reference, pattern } => {
                match session.list(&reference, &[pattern], true).await {
                    Ok(list) => {
                        for mut l in list {
                            // Every LSUB name is subscribed; `\Subscribed` belongs to
                            // LIST-EXTENDED's LIST responses (RFC 5258), not to LSUB.
                            l.attributes.retain(|a| *a != MailboxAttr::Subscribed);
                            self.send(Data::Lsub(l))?;
                        }
                        Ok(Status::ok("LSUB completed"))
                    }
                    Err(st) => Err(st),
                }
            }
            CommandBody::Namespace => {
                let (personal, other, shared) = session.namespace().await;
                self.send(Data::Namespace {
                    personal,
                    other,
                    shared,
                })?;
                Ok(Status::ok("NAMESPACE completed"))
            }
            CommandBody::Status { mailbox, items } => {
                match session.status(&mailbox, &items).await {
                    Ok(values) => {
                        self.send(Data::Status {
                            mailbox,
                            items: values,
                        })?;
                        Ok(Status::ok("STATUS completed"))
                    }
                    Err(st) => Err(st),
                }
            }
            CommandBody::Fetch {
                uid,
                set,
                items,
                modifiers,
            } => {
                if modifiers.changed_since.is_some() || items.expand().contains(&FetchItem::ModSeq)
                {
                    self.conn.note_condstore();
                }
                if let (true, true, Some(since)) =
                    (uid, modifiers.vanished, modifiers.changed_since)
                {
                    match session.fetch_vanished(&set, since).await {
                        Ok(uids) => {
                            if let Some(uids) = sequence_set(&uids) {
                                self.send(Data::Vanished {
                                    earlier: true,
                                    uids,
                                })?;
                            }
                        }
                        Err(st) => return self.finish(Err(st)),
                    }
                }
                let Some(session) = self.session.as_mut() else {
                    return Ok(());
                };
                match session.fetch(&set, uid, &items.expand(), &modifiers).await {
                    Ok(results) => {
                        for (seq, items) in results {
                            self.send_fetch(seq, items).await?;
                        }
                        Ok(Status::ok(format!(
                            "{}FETCH completed",
                            if uid { "UID " } else { "" }
                        )))
                    }
                    Err(st) => Err(st),
                }
            }
            CommandBody::Store {
                uid,
                set,
                kind,
                silent,
                flags,
                unchanged_since,
            } => {
                if unchanged_since.is_some() {
                    self.conn.note_condstore();
                }
                let request = StoreRequest {
                    set,
                    uid,
                    kind,
                    flags,
                    unchanged_since,
                };
                match session.store(request).await {
                    Ok(result) => {
                        if !silent {
                            for (seq, items) in result.updated {
                                self.send(Data::Fetch { seq, items })?;
                            }
                        }
                        let st = Status::ok("STORE completed");
                        Ok(with_code(st, result.modified.map(Code::Modified)))
                    }
                    Err(st) => Err(st),
                }
            }
            CommandBody::Search {
                uid,
                return_options,
                charset,
                criteria,
            } => {
                if let Some(cs) = &charset
                    && !cs.eq_ignore_ascii_case(b"UTF-8")
                    && !cs.eq_ignore_ascii_case(b"US-ASCII")
                {
                    let code = Code::BadCharset(vec![
                        Bytes::from_static(b"US-ASCII"),
                        Bytes::from_static(b"UTF-8"),
                    ]);
                    return self.finish(Err(with_code(
                        Status::no("Unsupported charset"),
                        Some(code),
                    )));
                }
                match session.search(&criteria, uid).await {
                    Ok(result) => {
                        let rev2 = self.conn.enabled().imap4rev2;
                        match (return_options, rev2) {
                            (None, false) => {
                                let numbers = result
                                    .numbers
                                    .iter()
                                    .filter_map(|&n| NonZeroU32::new(n))
                                    .collect();
                                self.send(Data::Search {
                                    numbers,
                                    modseq: result.highest_modseq,
                                })?;
                            }
                            (opts, _) => {
                                let opts = opts.unwrap_or_default();
                                let items =
                                    esearch_items(&result.numbers, &opts, result.highest_modseq);
                                let tag = crate::types::Tag::new(Bytes::from(req.tag.clone())).ok();
                                self.send(Data::ESearch { tag, uid, items })?;
                            }
                        }
                        Ok(Status::ok("SEARCH completed"))
                    }
                    Err(st) => Err(st),
                }
            }
            CommandBody::Copy { uid, set, mailbox } => {
                match session.copy(&set, uid, &mailbox).await {
                    Ok(code) => Ok(with_code(Status::ok("COPY completed"), code)),
                    Err(st) => Err(st),
                }
            }
            CommandBody::Move { uid, set, mailbox } => {
                match session.move_messages(&set, uid, &mailbox).await {
                    Ok(result) => {
                        if let Some(code) = result.copy_uid {
                            self.untagged_ok(code, "Moved")?;
                        }
                        self.send_expunged(&result.expunged)?;
                        Ok(Status::ok("MOVE completed"))
                    }
                    Err(st) => Err(st),
                }
            }
            CommandBody::Expunge => match session.expunge(None).await {
                Ok(e) => {
                    self.send_expunged(&e)?;
                    Ok(Status::ok("EXPUNGE completed"))
                }
                Err(st) => Err(st),
            },
            CommandBody::UidExpunge(set) => match session.expunge(Some(&set)).await {
                Ok(e) => {
                    self.send_expunged(&e)?;
                    Ok(Status::ok("UID EXPUNGE completed"))
                }
                Err(st) => Err(st),
            },
            CommandBody::Close => session
                .unselect(true)
                .await
                .map(|()| Status::ok("CLOSE completed")),
            CommandBody::Unselect => session
                .unselect(false)
                .await
                .map(|()| Status::ok("UNSELECT completed")),
            CommandBody::GetQuotaRoot(mailbox) => match session.quota(Some(&mailbox), None).await {
                Ok(q) => {
                    self.send(Data::QuotaRoot {
                        mailbox,
                        roots: q.roots,
                    })?;
                    for (root, resources) in q.quotas {
                        self.send(Data::Quota { root, resources })?;
                    }
                    Ok(Status::ok("GETQUOTAROOT completed"))
                }
                Err(st) => Err(st),
            },
            CommandBody::GetQuota(root) => match session.quota(None, Some(&root)).await {
                Ok(q) => {
                    for (root, resources) in q.quotas {
                        self.send(Data::Quota { root, resources })?;
                    }
                    Ok(Status::ok("GETQUOTA completed"))
                }
                Err(st) => Err(st),
            },
            CommandBody::SetQuota { .. } => {
                Err(Status::no("Quota limits cannot be changed here").with_code("NOPERM"))
            }
            _ => Err(Status::bad("Command not supported")),
        };
        self.finish(result)
    }

    fn untagged_ok(&mut self, code: Code, text: &str) -> Result<(), Error> {
        let text = Text::new(text).map_err(|_| Error::Protocol("invalid response text".into()))?;
        let st = StatusResponse::untagged(StatusKind::Ok, Some(code), text);
        self.conn.send_response(&Response::Status(st))?;
        Ok(())
    }
}

/// Initial (and idle) size of a session's read buffer: enough for any ordinary command
/// line (and `DONE`); it doubles while reads fill it (APPEND literals, pipelining). Most
/// sessions spend their life idle, so this is paid per connection.
const READ_BUF_MIN: usize = 1024;
/// The size the read buffer jumps to when a read fills the idle-sized one: a client is
/// sending in bulk (an APPEND literal), and every read becomes one backend call
/// (`append_chunk`), so growing in small steps would cost calls, not just reads.
const READ_BUF_BULK: usize = 16 * 1024;
/// Largest size the read buffer grows to while a client sends in bulk (APPEND literals).
const READ_BUF_MAX: usize = 64 * 1024;

/// The read buffer's size for the next read, after a read of `n` bytes into `len`: at
/// least [`READ_BUF_BULK`] and doubled (up to [`READ_BUF_MAX`]) when the read filled it,
/// back to [`READ_BUF_MIN`] when the read would have fitted in that.
fn read_buf_next_len(len: usize, n: usize) -> usize {
    if n >= len {
        len.saturating_mul(2).clamp(READ_BUF_BULK, READ_BUF_MAX)
    } else if n <= READ_BUF_MIN {
        READ_BUF_MIN
    } else {
        len
    }
}

const STREAM_AT: usize = 64 * 1024;

/// The data of a FETCH item that is sent as a literal.
fn literal_data(item: &FetchAttr) -> Option<&Bytes> {
    match item {
        FetchAttr::BodySection { data: Some(d), .. }
        | FetchAttr::Binary { data: Some(d), .. }
        | FetchAttr::Rfc822(Some(d))
        | FetchAttr::Rfc822Header(Some(d))
        | FetchAttr::Rfc822Text(Some(d)) => Some(d),
        _ => None,
    }
}

/// Splits a literal-valued FETCH item into its head and its data.
fn split_literal(item: FetchAttr) -> Option<(FetchLiteralItem, Bytes)> {
    Some(match item {
        FetchAttr::BodySection {
            section,
            origin,
            data: Some(d),
        } => (FetchLiteralItem::BodySection { section, origin }, d),
        FetchAttr::Binary {
            part,
            origin,
            data: Some(d),
        } => (FetchLiteralItem::Binary { part, origin }, d),
        FetchAttr::Rfc822(Some(d)) => (FetchLiteralItem::Rfc822, d),
        FetchAttr::Rfc822Header(Some(d)) => (FetchLiteralItem::Rfc822Header, d),
        FetchAttr::Rfc822Text(Some(d)) => (FetchLiteralItem::Rfc822Text, d),
        _ => return None,
    })
}

/// Adds a typed response code to a machine status.
fn with_code(status: Status, code: Option<Code>) -> Status {
    match code {
        Some(c) => status.with_code(code_text(&c)),
        None => status,
    }
}

/// The wire form of a response code, without brackets.
fn code_text(code: &Code) -> String {
    let text = Text::new("x").ok();
    let Some(text) = text else {
        return String::new();
    };
    let st = StatusResponse::untagged(StatusKind::Ok, Some(code.clone()), text);
    let mut out = Vec::new();
    crate::encode::response(&Response::Status(st), &mut out);
    let s = String::from_utf8_lossy(&out);
    s.strip_prefix("* OK [")
        .and_then(|r| r.strip_suffix("] x\r\n"))
        .unwrap_or_default()
        .to_string()
}

/// Ascending numbers as a compact sequence set (`1:3,7`).
pub(crate) fn sequence_set(numbers: &[u32]) -> Option<SequenceSet> {
    let mut ranges: Vec<SeqRange> = Vec::new();
    let mut iter = numbers.iter().copied().filter(|&n| n > 0).peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        let a = SeqNum::new(start).ok()?;
        let b = SeqNum::new(end).ok()?;
        ranges.push(if start == end {
            SeqRange::single(a)
        } else {
            SeqRange::new(a, b)
        });
    }
    SequenceSet::new(ranges).ok()
}

/// ESEARCH result items for the RETURN options (`RETURN ()` means ALL).
fn esearch_items(
    numbers: &[u32],
    opts: &[SearchReturnOption],
    modseq: Option<u64>,
) -> Vec<ESearchItem> {
    let all = opts.is_empty() || opts.contains(&SearchReturnOption::All);
    let mut items = Vec::new();
    if opts.contains(&SearchReturnOption::Min)
        && let Some(n) = numbers.first().and_then(|&n| NonZeroU32::new(n))
    {
        items.push(ESearchItem::Min(n));
    }
    if opts.contains(&SearchReturnOption::Max)
        && let Some(n) = numbers.last().and_then(|&n| NonZeroU32::new(n))
    {
        items.push(ESearchItem::Max(n));
    }
    if all && let Some(set) = sequence_set(numbers) {
        items.push(ESearchItem::All(set));
    }
    if opts.contains(&SearchReturnOption::Count) {
        items.push(ESearchItem::Count(
            u32::try_from(numbers.len()).unwrap_or(u32::MAX),
        ));
    }
    if let (Some(m), false) = (modseq, numbers.is_empty()) {
        items.push(ESearchItem::ModSeq(m));
    }
    items
}

/// A fresh SASL nonce from the OS random source (this module may touch files).
fn nonce() -> String {
    use base64::Engine as _;
    use std::io::Read as _;
    let mut bytes = [0u8; 18];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    if !ok {
        use std::hash::{BuildHasher, Hasher};
        for chunk in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(Instant::now().elapsed().as_nanos());
            for (b, v) in chunk.iter_mut().zip(h.finish().to_le_bytes()) {
                *b = v;
            }
        }
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod read_buf_tests {
    use super::{READ_BUF_MAX, READ_BUF_MIN, read_buf_next_len};

    #[test]
    fn grows_when_full_and_shrinks_when_quiet() {
        assert_eq!(READ_BUF_MIN, 1024);
        assert_eq!(read_buf_next_len(1024, 20), 1024);
        // A full idle-sized read means bulk: straight to 16 KiB, then doubling.
        assert_eq!(read_buf_next_len(1024, 1024), 16384);
        assert_eq!(read_buf_next_len(16384, 16384), 32768);
        assert_eq!(read_buf_next_len(32768, 32768), READ_BUF_MAX);
        assert_eq!(read_buf_next_len(READ_BUF_MAX, READ_BUF_MAX), READ_BUF_MAX);
        // A partial but large read keeps the size; a small one (e.g. `DONE`) shrinks it.
        assert_eq!(read_buf_next_len(65536, 10000), 65536);
        assert_eq!(read_buf_next_len(65536, 6), 1024);
        assert_eq!(read_buf_next_len(65536, 1024), 1024);
        assert_eq!(read_buf_next_len(65536, 1025), 65536);
    }
}
