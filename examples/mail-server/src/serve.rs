//! `mail-server serve`: opens the store, binds the listeners, serves until SIGINT/SIGTERM.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use mail_net::{ConnectionLimiter, DevCertificate, ListenerSpec, Shutdown, TlsAcceptor};
use mailstore_core::{AppendOptions, MailStore, NewAccount, StoreError};
use pop3_proto::tokio::ServeConfig;

use crate::config::Config;
use crate::error::ServerError;
use crate::pop3::StoreBackend;
use crate::smtp;
use crate::store::{self, Store};

/// The demo account's password (printed at start).
pub const DEMO_PASSWORD: &str = "demo-password";

/// The demo account's address for this configuration.
pub fn demo_address(config: &Config) -> String {
    let domain = config
        .domains
        .first()
        .map_or("example.test", String::as_str);
    format!("demo@{domain}")
}

/// Sample messages for the demo INBOX (CRLF line ends).
fn demo_messages(address: &str) -> Vec<String> {
    let date = "Mon, 23 Nov 2026 09:00:00 +0000";
    let m1 = format!(
        "From: Mail Server <postmaster@localhost>\r\nTo: <{address}>\r\nSubject: Welcome to mail-server\r\n\
         Date: {date}\r\nMessage-ID: <welcome.1@mail-server.invalid>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello!\r\n\r\nThis INBOX lives in the server's data directory. Read it with any POP3 client,\r\n\
         delete messages with DELE, and add more with `mail-server deliver {address} < message.eml`.\r\n"
    );
    let m2 = format!(
        "From: Alice <alice@example.test>\r\nTo: <{address}>\r\nSubject: Lines that start with a dot\r\n\
         Date: {date}\r\nMessage-ID: <dots.2@mail-server.invalid>\r\n\r\n\
         POP3 byte-stuffs lines that begin with a dot:\r\n.like this one\r\n..and this one\r\n.\r\nThe end.\r\n"
    );
    let m3 = format!(
        "From: =?UTF-8?Q?B=C3=B6b?= <bob@example.test>\r\nTo: <{address}>\r\n\
         Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nDate: {date}\r\nMessage-ID: <utf8.3@mail-server.invalid>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Grüße aus dem Testnetz. こんにちは。\r\n"
    );
    vec![m1, m2, m3]
}

/// Creates the demo account with sample messages when the store has no account at all.
/// Returns true when it was created now.
async fn ensure_demo<S: MailStore>(store: &S, config: &Config) -> Result<bool, ServerError> {
    if !store.list_accounts().await?.is_empty() {
        return Ok(false);
    }
    let address = demo_address(config);
    let account = store
        .create_account(NewAccount::new(address.clone(), Some(DEMO_PASSWORD)))
        .await?;
    let inbox = store.mailbox(account.id, "INBOX").await?;
    for m in demo_messages(&address) {
        let _ = store
            .append(inbox.mailbox, AppendOptions::default(), Bytes::from(m))
            .await?;
    }
    Ok(true)
}

fn out(line: &str) {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let _ = writeln!(lock, "{line}");
    let _ = lock.flush();
}

/// Creates the data directory (mode 0700) if needed.
///
/// # Errors
/// [`ServerError::Io`] naming the directory.
pub fn ensure_data_dir(dir: &Path) -> Result<(), ServerError> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| {
            ServerError::io(format!("creating the data directory {}", dir.display()), e)
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
                ServerError::io(format!("setting mode 0700 on {}", dir.display()), e)
            })?;
        }
    }
    Ok(())
}

fn pop3_config(config: &Config, implicit: bool, acceptor: &TlsAcceptor) -> ServeConfig {
    let mut sc = ServeConfig::default();
    sc.hostname.clone_from(&config.hostname);
    sc.apop = config.pop3.apop;
    sc.protocol.limits.idle_timeout = config.limits.idle_timeout;
    sc.protocol.require_tls_for_auth = config.pop3.require_tls;
    sc.protocol.implementation = Some(Bytes::from_static(b"mail-server"));
    sc.protocol.sasl_mechanisms = vec![Bytes::from_static(b"PLAIN"), Bytes::from_static(b"LOGIN")];
    if !implicit {
        sc.tls = Some(acceptor.clone());
    }
    sc
}

fn smtp_config(
    config: &Config,
    kind: smtp::Kind,
    implicit: bool,
    acceptor: &TlsAcceptor,
) -> smtp_proto::tokio::ServeConfig {
    let mut c = match kind {
        smtp::Kind::Mx => smtp_proto::server::Config::mx(config.hostname.clone()),
        smtp::Kind::Submission => smtp_proto::server::Config::submission(config.hostname.clone()),
        smtp::Kind::Lmtp => smtp_proto::server::Config::lmtp(config.hostname.clone()),
    };
    c.limits.message_size = config.max_message_size;
    c.limits.recipients = config.smtp.max_recipients;
    c.limits.errors = config.smtp.max_errors;
    c.timeouts.command = config.smtp.command_timeout;
    c.timeouts.data = config.smtp.data_timeout;
    c.implicit_tls = implicit;
    let sc = smtp_proto::tokio::ServeConfig::new(c);
    if implicit || kind == smtp::Kind::Lmtp {
        sc
    } else {
        sc.with_starttls(acceptor.clone())
    }
}

struct Bound {
    key: &'static str,
    addr: SocketAddr,
    spec: ListenerSpec,
    listener: tokio::net::TcpListener,
}

/// Runs the server until SIGINT/SIGTERM (or `shutdown` is triggered), then drains.
///
/// # Errors
/// Setup failures: the store is locked or damaged, a port cannot be bound, the certificate
/// cannot be read.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<(), ServerError> {
    ensure_data_dir(&config.data_dir)?;
    let store: Arc<Store> = match store::open(&config).await {
        Ok(s) => Arc::new(s),
        Err(StoreError::Locked { path }) => {
            return Err(ServerError::Usage(format!(
                "the data directory {} is in use by another mail-server process (store {} is locked: a running server, or an admin command that is still working); stop it first",
                config.data_dir.display(),
                path.display()
            )));
        }
        Err(e) => return Err(e.into()),
    };

    // TLS: the configured certificate or the development one kept in the data directory.
    let (tls_config, dev_cert_path) = match &config.tls {
        Some(files) => (
            mail_net::tls::server_config_from_pem_files(&files.cert, &files.key)?,
            None,
        ),
        None => {
            let dir = config.dev_cert_dir();
            let names: Vec<&str> = std::iter::once(config.hostname.as_str())
                .filter(|h| *h != "localhost")
                .collect();
            let cert = DevCertificate::load_or_generate(&dir, &names)?;
            (
                cert.server_config()?,
                Some(dir.join(mail_net::tls::DEV_CERT_FILE)),
            )
        }
    };
    let acceptor = TlsAcceptor::from(tls_config);

    let demo_created = if config.demo_account {
        ensure_demo(&*store, &config).await?
    } else {
        false
    };

    // Bind everything first, so a busy port fails the start before anything is served.
    let l = &config.listeners;
    let mut bound = Vec::new();
    for (key, spec) in [
        ("pop3", l.pop3.map(ListenerSpec::plain)),
        ("pop3s", l.pop3s.map(ListenerSpec::implicit_tls)),
        ("imap", l.imap.map(ListenerSpec::plain)),
        ("imaps", l.imaps.map(ListenerSpec::implicit_tls)),
        ("smtp", l.smtp.map(ListenerSpec::plain)),
        ("submission", l.submission.map(ListenerSpec::plain)),
        ("submissions", l.submissions.map(ListenerSpec::implicit_tls)),
        ("lmtp", l.lmtp.map(ListenerSpec::plain)),
    ] {
        let Some(spec) = spec else { continue };
        let listener = spec.bind().await?;
        let addr = listener
            .local_addr()
            .map_err(|e| ServerError::io(format!("reading the address of listener {key}"), e))?;
        bound.push(Bound {
            key,
            addr,
            spec,
            listener,
        });
    }
    let admin_path = config.admin_socket();
    let admin_listener = crate::socket::bind(&admin_path)?;

    let config = Arc::new(config);
    let limiter = ConnectionLimiter::new(
        config.limits.max_connections_per_ip,
        config.limits.max_connections,
    );
    shutdown
        .install_signal_handlers()
        .map_err(|e| ServerError::io("installing the SIGINT/SIGTERM handlers", e))?;

    let backend = StoreBackend::new(Arc::clone(&store));
    let retention = crate::policy::spawn_retention(
        Arc::clone(&store),
        config.policy.retention_interval,
        shutdown.clone(),
    );
    // The queue (outbound mail with [relay], local retries always), delivered by a
    // background task.
    let outbound = crate::outbound::Outbound::new(&config, Arc::clone(&store)).map_err(|e| {
        ServerError::io(
            "setting up the mail queue (queue directory, [relay] DNS resolver or CA file)",
            e,
        )
    })?;
    let outbound_task = outbound
        .clone()
        .map(|o| tokio::spawn(o.run(shutdown.clone())));
    let imports = crate::imports::spawn_scheduler(
        Arc::clone(&store),
        config.policy.import_tick,
        shutdown.clone(),
    );
    // Failed logins are counted across every listener (per address and per account).
    let guard = Arc::new(crate::limits::AuthGuard::new(&config.auth));
    let imap_backend = Arc::new(
        crate::imap::StoreBackend::new(Arc::clone(&store)).with_limits(
            Arc::clone(&guard),
            u32::try_from(config.imap.max_connections_per_account).unwrap_or(u32::MAX),
        ),
    );
    let mut tasks = Vec::new();
    for b in bound {
        let options = mail_net::ServeOptions::new(b.spec, limiter.clone(), shutdown.clone())
            .tls(acceptor.clone())
            .handshake_timeout(std::time::Duration::from_secs(30));
        let key = b.key;
        let (tls_mode, task) = match key {
            "pop3" | "pop3s" => {
                let sc = pop3_config(&config, key == "pop3s", &acceptor);
                let backend = backend.clone();
                let cfg = Arc::clone(&config);
                let guard = Arc::clone(&guard);
                let task = tokio::spawn(mail_net::serve_with(
                    b.listener,
                    options,
                    move |stream, info| {
                        let backend = crate::limits::GuardedPop3::new(
                            backend.clone(),
                            Arc::clone(&guard),
                            info.peer.ip(),
                        );
                        let mut sc = sc.clone();
                        // No password in clear text unless the client's network is trusted.
                        if !cfg.auth.plaintext_allowed(info.peer.ip()) {
                            sc.protocol.require_tls_for_auth = true;
                        }
                        async move {
                            tracing::debug!(peer = %info.peer, listener = key, "connection");
                            if let Err(e) = pop3_proto::tokio::serve(stream, sc, &backend).await {
                                tracing::debug!(peer = %info.peer, "pop3 session ended: {e}");
                            }
                        }
                    },
                ));
                (
                    if key == "pop3s" {
                        "implicit TLS"
                    } else {
                        "plaintext, STLS offered"
                    },
                    task,
                )
            }
            "imap" | "imaps" => {
                let mut sc = imap_proto::tokio::ServeConfig::default();
                sc.hostname.clone_from(&config.hostname);
                // FETCH BINARY[] / BINARY.SIZE[] are answered by the store backend (RFC 3516;
                // also part of IMAP4rev2).
                sc.imap.post_auth_capabilities.push("BINARY".into());
                sc.imap.implicit_tls = key == "imaps";
                sc.imap.autologout = sc.imap.autologout.max(config.limits.idle_timeout);
                if key == "imap" {
                    sc.tls = Some(acceptor.clone());
                }
                let backend = Arc::clone(&imap_backend);
                let cfg = Arc::clone(&config);
                let task = tokio::spawn(mail_net::serve_with(
                    b.listener,
                    options,
                    move |stream, info| {
                        let backend =
                            crate::imap::PeerBackend::new(Arc::clone(&backend), info.peer.ip());
                        let mut sc = sc.clone();
                        // LOGINDISABLED before STARTTLS unless the client's network is trusted.
                        sc.imap.login_disabled_without_tls =
                            !cfg.auth.plaintext_allowed(info.peer.ip());
                        async move {
                            tracing::debug!(peer = %info.peer, listener = key, "connection");
                            if let Err(e) = imap_proto::tokio::serve(stream, sc, backend).await {
                                tracing::debug!(peer = %info.peer, "imap session ended: {e}");
                            }
                        }
                    },
                ));
                (
                    if key == "imaps" {
                        "implicit TLS"
                    } else {
                        "plaintext, STARTTLS offered"
                    },
                    task,
                )
            }
            _ => {
                let (kind, implicit) = match key {
                    "smtp" => (smtp::Kind::Mx, false),
                    "submissions" => (smtp::Kind::Submission, true),
                    "lmtp" => (smtp::Kind::Lmtp, false),
                    _ => (smtp::Kind::Submission, false),
                };
                let sc = smtp_config(&config, kind, implicit, &acceptor);
                let store = Arc::clone(&store);
                let guard = Arc::clone(&guard);
                // Every SMTP session may queue local retries; only submission relays.
                let queue = outbound.clone();
                let outbound = outbound.clone().filter(|_| kind == smtp::Kind::Submission);
                let cfg = Arc::clone(&config);
                let task = tokio::spawn(mail_net::serve_with(
                    b.listener,
                    options,
                    move |stream, info| {
                        let session = crate::limits::GuardedSmtp::new(
                            crate::outbound::Relaying::new(
                                smtp::Session::new(
                                    Arc::clone(&store),
                                    Arc::clone(&cfg),
                                    kind,
                                    info.peer,
                                    info.tls.is_some(),
                                )
                                .with_queue(queue.clone()),
                                outbound.clone(),
                                Arc::clone(&cfg),
                                info.peer,
                            ),
                            Arc::clone(&guard),
                            info.peer.ip(),
                        );
                        let mut sc = sc.clone();
                        // AUTH only inside TLS unless the client's network is trusted.
                        sc.smtp.auth_requires_tls = !cfg.auth.plaintext_allowed(info.peer.ip());
                        async move {
                            tracing::debug!(peer = %info.peer, listener = key, "connection");
                            if let Err(e) = smtp_proto::tokio::serve(stream, sc, session).await {
                                tracing::debug!(peer = %info.peer, "smtp session ended: {e}");
                            }
                        }
                    },
                ));
                let mode = match (kind, implicit) {
                    (smtp::Kind::Lmtp, _) => "plaintext LMTP, no TLS",
                    (_, true) => "implicit TLS, AUTH required",
                    (smtp::Kind::Submission, false) => "plaintext, STARTTLS offered, AUTH required",
                    _ => "plaintext, STARTTLS offered",
                };
                (mode, task)
            }
        };
        out(&format!("listening {key} {} ({tls_mode})", b.addr));
        tracing::info!(listener = key, addr = %b.addr, "listening");
        tasks.push(task);
    }
    let admin_task = tokio::spawn(crate::socket::serve(
        admin_listener,
        Arc::clone(&store),
        Arc::clone(&config),
        shutdown.clone(),
    ));

    out(&format!("admin socket {}", admin_path.display()));
    match &dev_cert_path {
        Some(p) => out(&format!(
            "TLS certificate: self-signed development certificate {} (mail apps will ask you to accept it; curl needs -k)",
            p.display()
        )),
        None => out("TLS certificate: from the [tls] section of the configuration"),
    }
    if config.demo_account {
        let address = demo_address(&config);
        if store.find_account(&address).await?.is_some() {
            let note = if demo_created {
                ""
            } else {
                " (unless changed since)"
            };
            out(&format!(
                "demo account: {address} password: {DEMO_PASSWORD}{note}"
            ));
            if let Some(pop3s) = config.listeners.pop3s {
                out(&format!(
                    "try: curl -k --user '{address}:{DEMO_PASSWORD}' pop3s://{}:{}/1",
                    pop3s.ip(),
                    pop3s.port()
                ));
                out(&format!(
                    "try: python3 -c \"import poplib,ssl; p=poplib.POP3_SSL('{}', {}, context=ssl._create_unverified_context()); p.user('{address}'); p.pass_('{DEMO_PASSWORD}'); print(p.stat()); p.quit()\"",
                    pop3s.ip(),
                    pop3s.port()
                ));
            }
            if let Some(sub) = config.listeners.submissions {
                out(&format!(
                    "try: curl -k --ssl-reqd --user '{address}:{DEMO_PASSWORD}' --mail-from {address} --mail-rcpt {address} --upload-file message.eml smtps://{}:{}/",
                    sub.ip(),
                    sub.port()
                ));
            }
        }
    }
    out("ready");

    shutdown.wait().await;
    out("shutting down");
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("listener stopped with an error: {e}"),
            Err(e) => tracing::warn!("listener task failed: {e}"),
        }
    }
    let _ = admin_task.await;
    if let Some(t) = outbound_task {
        let _ = t.await;
    }
    let _ = retention.await;
    let _ = imports.await;
    let deadline = tokio::time::Instant::now() + config.limits.shutdown_grace;
    match limiter.drain(deadline).await {
        mail_net::Drained::All => {}
        mail_net::Drained::TimedOut { remaining } => {
            tracing::warn!(
                remaining,
                "sessions still open after the shutdown grace period; closing them"
            );
        }
    }
    let _ = std::fs::remove_file(&admin_path);
    drop(backend);
    drop(imap_backend);
    store::close(store).await;
    out("stopped");
    Ok(())
}
