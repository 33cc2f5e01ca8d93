//! Outbound mail: a persistent queue in `<data_dir>/queue/`, delivered to a configured
//! smarthost or to each recipient domain's MX hosts (`[relay]`), with retries and
//! exponential backoff, and a delivery status notification (RFC 3464) for recipients that
//! were refused permanently or could not be delivered within `give_up_after`: into the
//! sender's INBOX when the sender is local, else queued back to the sender.
//!
//! Only authenticated submission sessions may relay ([`Relaying`] wraps their SMTP
//! backend); port 25 keeps refusing other domains. Without `[relay]` the submission
//! listeners refuse non-local recipients as before. The same queue also holds local
//! recipients whose store append failed midway through a multi-recipient SMTP
//! transaction (see `smtp`): they are retried into the store, never duplicated.
//!
//! Queue entry `<id>.env` (written last, with an atomic rename: its presence means the
//! entry is complete) holds `from`, one `rcpt` line per recipient still to deliver,
//! `queued`, `attempts` and `next` (Unix seconds); `<id>.eml` holds the message. The
//! message is accepted (`250`) only after both are durable.
//!
//! MX delivery (RFC 5321 section 5.1, `crate::mx`): recipients are grouped by domain, one
//! transaction per domain with every recipient in it; MX hosts in preference order
//! (random among equal ones), the domain's own A/AAAA when it has no MX, a permanent
//! failure (`5.1.10`) for a null MX (RFC 7505). A connection failure, a refused greeting
//! or a 4xx to the transaction as a whole moves on to the next address / MX host (at most
//! [`MAX_MX_ADDRESSES`] per attempt); a per-recipient reply settles that recipient for
//! this attempt: 2xx delivered, 5xx bounced, 4xx retried at the next attempt.
//!
//! TLS: towards MX hosts STARTTLS is used whenever offered, without certificate
//! verification (RFC 7435 opportunistic security, like Postfix's `may` level: with
//! neither DANE nor MTA-STS the MX name itself comes from unauthenticated DNS, so a
//! verified certificate would prove little, and refusing unverifiable certificates would
//! only push the mail to plaintext); a failed handshake reconnects and sends in
//! plaintext. Towards the smarthost `smarthost_tls` decides, and `starttls` / `tls`
//! verify the certificate against the system CA bundle or `ca_file`, with no fallback.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mail_net::rustls::{ClientConfig, RootCertStore};
use mail_net::{Shutdown, TlsConnector};
use mail_sasl::server::Identity;
use mailstore_core::{AppendOptions, MailStore, StoreError};
use smtp_proto::server::{MailDecision, MessageDecision, RcptDecision};
use smtp_proto::tokio::{Client, Envelope};
use smtp_proto::types::{
    Command, ForwardPath, HelloVerb, MailParams, RcptParams, Reply, ReversePath,
};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::config::{Config, RelayMode, SmarthostTls};
use crate::mx::{AddressError, Destination, Resolver};

/// Longest backoff between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Most queue entries looked at per pass (the rest wait for the next pass).
pub const MAX_ENTRIES_PER_PASS: usize = 1000;
/// Most addresses tried for one destination domain per delivery attempt, over all its
/// MX hosts (Postfix's `smtp_mx_address_limit` default is 5 as well).
pub const MAX_MX_ADDRESSES: usize = 5;
/// TCP connect and TLS handshake timeout towards a smarthost or MX host.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Where the system's CA bundle is looked for when `[relay] ca_file` is not set.
pub const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

static SEQ: AtomicU64 = AtomicU64::new(0);

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One queued message's envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    from: String,
    rcpts: Vec<String>,
    queued: u64,
    attempts: u32,
    next: u64,
}

impl Entry {
    fn encode(&self) -> String {
        let mut s = format!("from {}\n", self.from);
        for r in &self.rcpts {
            s.push_str(&format!("rcpt {r}\n"));
        }
        s.push_str(&format!(
            "queued {}\nattempts {}\nnext {}\n",
            self.queued, self.attempts, self.next
        ));
        s
    }

    fn decode(text: &str) -> Option<Self> {
        let mut e = Entry {
            from: String::new(),
            rcpts: Vec::new(),
            queued: 0,
            attempts: 0,
            next: 0,
        };
        for line in text.lines() {
            let (k, v) = line.split_once(' ').unwrap_or((line, ""));
            match k {
                "from" => e.from = v.to_string(),
                "rcpt" => e.rcpts.push(v.to_string()),
                "queued" => e.queued = v.parse().ok()?,
                "attempts" => e.attempts = v.parse().ok()?,
                "next" => e.next = v.parse().ok()?,
                _ => return None,
            }
        }
        Some(e)
    }
}

fn mailbox_of(address: &str) -> Option<smtp_proto::Mailbox> {
    let (l, d) = address.rsplit_once('@')?;
    (!l.is_empty() && !d.is_empty()).then(|| smtp_proto::Mailbox::new(l, d))
}

fn write_durable(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// What one delivery attempt decided for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Delivered,
    /// Permanent: bounce now. `status` is the RFC 3463 code for the DSN.
    Failed {
        status: String,
        why: String,
    },
    /// Temporary: retry later (bounce after `give_up_after`).
    Later {
        status: String,
        why: String,
    },
}

fn failed(status: &str, why: impl Into<String>) -> Outcome {
    Outcome::Failed {
        status: status.to_string(),
        why: why.into(),
    }
}

fn later(status: &str, why: impl Into<String>) -> Outcome {
    Outcome::Later {
        status: status.to_string(),
        why: why.into(),
    }
}

/// The outcome a reply from `host` means.
fn outcome_of(r: &Reply, host: &str) -> Outcome {
    let why = format!("{host} said: {}", r.to_string().trim_end());
    let status = r.enhanced.map(|e| e.to_string());
    if r.is_positive() {
        Outcome::Delivered
    } else if r.is_permanent() {
        failed(status.as_deref().unwrap_or("5.0.0"), why)
    } else {
        later(status.as_deref().unwrap_or("4.0.0"), why)
    }
}

/// What one SMTP session decided for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Settled for this attempt (delivered, bounced, or deferred by a per-recipient 4xx).
    Final(Outcome),
    /// The host failed as a whole (connection, greeting, 4xx to the transaction): try the
    /// next host; the outcome if there is none.
    NextHost(Outcome),
}

impl Step {
    /// A reply to the session or transaction as a whole: 2xx and 5xx settle, 4xx moves
    /// on to the next host.
    fn session_level(o: Outcome) -> Step {
        match o {
            Outcome::Later { .. } => Step::NextHost(o),
            settled => Step::Final(settled),
        }
    }

    fn into_outcome(self) -> Outcome {
        match self {
            Step::Final(o) | Step::NextHost(o) => o,
        }
    }
}

/// How mail to other domains leaves this server.
enum Route {
    Smarthost {
        host: String,
        port: u16,
        tls: SmarthostTls,
        auth: Option<(String, String)>,
        connector: Option<TlsConnector>,
    },
    Mx {
        resolver: Box<Resolver>,
        port: u16,
    },
}

/// TLS for one SMTP session.
#[derive(Clone, Copy)]
enum TlsPolicy<'a> {
    None,
    /// STARTTLS when offered, certificate not verified; a failed handshake falls back to
    /// plaintext (RFC 7435).
    Opportunistic(&'a TlsConnector),
    /// STARTTLS required, certificate verified.
    Required(&'a TlsConnector),
    /// TLS from the first byte, certificate verified.
    Implicit(&'a TlsConnector),
}

/// One host to talk to.
struct Target<'a> {
    /// `host:port` to connect to (an address, or a name the system resolves).
    addr: (String, u16),
    /// The name for TLS and for messages.
    name: &'a str,
    tls: TlsPolicy<'a>,
    auth: Option<&'a (String, String)>,
}

/// A rustls client configuration trusting `ca_file`, or the system bundle.
fn verified_client_config(ca_file: Option<&Path>) -> std::io::Result<Arc<ClientConfig>> {
    use mail_net::rustls::pki_types::CertificateDer;
    use mail_net::rustls::pki_types::pem::PemObject as _;
    let (path, pem) = match ca_file {
        Some(p) => (
            p.to_path_buf(),
            std::fs::read(p).map_err(|e| {
                std::io::Error::new(e.kind(), format!("[relay] ca_file {}: {e}", p.display()))
            })?,
        ),
        None => SYSTEM_CA_BUNDLES
            .iter()
            .find_map(|p| std::fs::read(p).ok().map(|d| (PathBuf::from(p), d)))
            .ok_or_else(|| {
                std::io::Error::other(format!(
                    "no system CA bundle found (looked for {}); set [relay] ca_file",
                    SYSTEM_CA_BUNDLES.join(", ")
                ))
            })?,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(std::io::Error::other(format!(
            "{}: no usable CA certificate",
            path.display()
        )));
    }
    let config = ClientConfig::builder_with_provider(mail_net::tls::provider())
        .with_protocol_versions(mail_net::tls::PROTOCOL_VERSIONS)
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The outbound queue and its delivery worker.
///
/// Recipients in a local domain are delivered into the store (these are local
/// deliveries that failed midway through an SMTP transaction, see `smtp`); the others go
/// to the smarthost or their domain's MX hosts, as `[relay]` says.
pub struct Outbound<S> {
    dir: PathBuf,
    config: Arc<Config>,
    route: Option<Route>,
    /// Opportunistic STARTTLS towards MX hosts: any certificate (RFC 7435).
    mx_tls: TlsConnector,
    retry_after: Duration,
    give_up_after: Duration,
    store: Arc<S>,
    wake: Notify,
}

impl<S> std::fmt::Debug for Outbound<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let route = match &self.route {
            None => "local only".to_string(),
            Some(Route::Smarthost { host, port, .. }) => format!("smarthost {host}:{port}"),
            Some(Route::Mx { port, .. }) => format!("MX, port {port}"),
        };
        f.debug_struct("Outbound")
            .field("dir", &self.dir)
            .field("route", &route)
            .finish_non_exhaustive()
    }
}

impl<S: MailStore> Outbound<S> {
    /// The queue of `config`; creates the queue directory. Always `Some` (local retries
    /// need it too); relaying to other domains only with `[relay]` ([`Outbound::relays`]).
    ///
    /// # Errors
    /// When the queue directory cannot be created, the DNS resolver cannot be set up
    /// (MX mode) or the CA certificates cannot be read (smarthost with TLS).
    pub fn new(config: &Config, store: Arc<S>) -> std::io::Result<Option<Arc<Self>>> {
        let dir = config.data_dir.join("queue");
        std::fs::create_dir_all(&dir)?;
        let (route, retry_after, give_up_after) = match &config.relay {
            None => (
                None,
                Duration::from_secs(60),
                Duration::from_secs(5 * 86_400),
            ),
            Some(r) => {
                let route = match r.effective_mode() {
                    RelayMode::Smarthost => {
                        let (host, port) = r.smarthost_parts().ok_or_else(|| {
                            std::io::Error::other("[relay] smarthost is not host:port")
                        })?;
                        let connector = match r.smarthost_tls {
                            SmarthostTls::None => None,
                            _ => Some(TlsConnector::from(verified_client_config(
                                r.ca_file.as_deref(),
                            )?)),
                        };
                        Route::Smarthost {
                            host,
                            port,
                            tls: r.smarthost_tls,
                            auth: r.smarthost_user.clone().zip(r.smarthost_password.clone()),
                            connector,
                        }
                    }
                    RelayMode::Mx => Route::Mx {
                        resolver: Box::new(
                            Resolver::new(&r.dns_servers).map_err(std::io::Error::other)?,
                        ),
                        port: r.mx_port,
                    },
                };
                (Some(route), r.retry_after, r.give_up_after)
            }
        };
        let mx_tls = TlsConnector::from(
            mail_net::tls::client_config_accept_any_certificate().map_err(std::io::Error::other)?,
        );
        Ok(Some(Arc::new(Self {
            dir,
            config: Arc::new(config.clone()),
            route,
            mx_tls,
            retry_after,
            give_up_after,
            store,
            wake: Notify::new(),
        })))
    }

    /// True when `[relay]` lets authenticated submission send to other domains.
    pub fn relays(&self) -> bool {
        self.route.is_some()
    }

    /// Stores a message for delivery; returns its queue id once it is durable.
    ///
    /// # Errors
    /// When the queue files cannot be written.
    pub fn enqueue(&self, from: &str, rcpts: &[String], message: &[u8]) -> std::io::Result<String> {
        let id = format!(
            "{}.{}.{}",
            now_secs(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let now = now_secs();
        let entry = Entry {
            from: from.to_string(),
            rcpts: rcpts.to_vec(),
            queued: now,
            attempts: 0,
            next: now,
        };
        write_durable(&self.dir.join(format!("{id}.eml")), message)?;
        write_durable(
            &self.dir.join(format!("{id}.env")),
            entry.encode().as_bytes(),
        )?;
        tracing::info!(id, from, rcpts = rcpts.len(), "queued");
        self.wake.notify_one();
        Ok(id)
    }

    /// Delivers due entries until `shutdown`: after each pass it sleeps until the next
    /// entry is due (at most a minute) or a new one is queued.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        loop {
            let next = self.pass().await;
            let wait = next
                .map_or(Duration::from_secs(60), |t| {
                    Duration::from_secs(t.saturating_sub(now_secs()))
                })
                .min(Duration::from_secs(60));
            tokio::select! {
                () = shutdown.wait() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One pass over the queue; returns when the next entry is due.
    pub(crate) async fn pass(&self) -> Option<u64> {
        let mut ids: Vec<String> = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".env"))
                        .map(str::to_string)
                })
                .collect(),
            Err(e) => {
                tracing::warn!("outbound queue {}: {e}", self.dir.display());
                return None;
            }
        };
        ids.sort();
        ids.truncate(MAX_ENTRIES_PER_PASS);
        let mut next: Option<u64> = None;
        for id in ids {
            if let Some(t) = self.attempt(&id).await {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next
    }

    /// Tries one entry if it is due; returns when it is due next (None: done).
    async fn attempt(&self, id: &str) -> Option<u64> {
        let env_path = self.dir.join(format!("{id}.env"));
        let eml_path = self.dir.join(format!("{id}.eml"));
        let mut entry = Entry::decode(&std::fs::read_to_string(&env_path).ok()?)?;
        let now = now_secs();
        if entry.next > now {
            return Some(entry.next);
        }
        let message = std::fs::read(&eml_path).ok()?;
        let outcomes = self.send(&entry, &message).await;
        let mut failed: Vec<Failure> = Vec::new();
        let mut deferred: Vec<Failure> = Vec::new();
        for (rcpt, o) in entry.rcpts.iter().zip(outcomes) {
            match o {
                Outcome::Delivered => tracing::info!(id, rcpt, "delivered"),
                Outcome::Failed { status, why } => {
                    tracing::info!(id, rcpt, status, why, "undeliverable");
                    failed.push(Failure {
                        rcpt: rcpt.clone(),
                        status,
                        why,
                    });
                }
                Outcome::Later { status, why } => {
                    tracing::info!(id, rcpt, status, why, "deferred");
                    deferred.push(Failure {
                        rcpt: rcpt.clone(),
                        status,
                        why,
                    });
                }
            }
        }
        let expired = now.saturating_sub(entry.queued) >= self.give_up_after.as_secs();
        if expired {
            failed.append(&mut deferred);
        }
        if !failed.is_empty() {
            tracing::warn!(
                id,
                failed = failed.len(),
                "bouncing undeliverable recipients"
            );
            self.bounce(&entry, &message, &failed).await;
        }
        if deferred.is_empty() {
            let _ = std::fs::remove_file(&env_path);
            let _ = std::fs::remove_file(&eml_path);
            return None;
        }
        entry.attempts = entry.attempts.saturating_add(1);
        let backoff = self
            .retry_after
            .saturating_mul(1u32 << entry.attempts.saturating_sub(1).min(16))
            .min(MAX_BACKOFF);
        entry.next = now + backoff.as_secs().max(1);
        entry.rcpts = deferred.iter().map(|f| f.rcpt.clone()).collect();
        tracing::info!(id, attempts = entry.attempts, retry_in = ?backoff, "delivery deferred");
        if let Err(e) = write_durable(&env_path, entry.encode().as_bytes()) {
            tracing::warn!(id, "outbound queue: {e}");
        }
        Some(entry.next)
    }

    /// One attempt for every recipient of `entry`, in its order.
    async fn send(&self, entry: &Entry, message: &[u8]) -> Vec<Outcome> {
        let from = match mailbox_of(&entry.from) {
            Some(m) => ReversePath::Mailbox(m),
            None => ReversePath::Null,
        };
        let mut results: Vec<Option<Outcome>> = vec![None; entry.rcpts.len()];
        let mut set = |i: usize, o: Outcome| {
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(o);
            }
        };
        // Remote recipients grouped by destination domain (one transaction each).
        let mut groups: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
        for (i, rcpt) in entry.rcpts.iter().enumerate() {
            if mailbox_of(rcpt).is_none() {
                set(i, failed("5.1.3", format!("{rcpt}: invalid address")));
            } else if self.config.is_local_address(rcpt) {
                set(i, self.deliver_local(rcpt, message).await);
            } else {
                let domain = rcpt
                    .rsplit_once('@')
                    .map(|(_, d)| d.to_ascii_lowercase())
                    .unwrap_or_default();
                groups.entry(domain).or_default().push(i);
            }
        }
        let rcpts_of = |idx: &[usize]| -> Vec<String> {
            idx.iter()
                .filter_map(|&i| entry.rcpts.get(i).cloned())
                .collect()
        };
        match &self.route {
            None => {
                for i in groups.into_values().flatten() {
                    set(
                        i,
                        failed(
                            "5.7.1",
                            "this server is not configured to relay mail to other domains",
                        ),
                    );
                }
            }
            Some(Route::Smarthost {
                host,
                port,
                tls,
                auth,
                connector,
            }) => {
                let idx: Vec<usize> = groups.into_values().flatten().collect();
                if !idx.is_empty() {
                    let policy = match (tls, connector) {
                        (SmarthostTls::Starttls, Some(c)) => TlsPolicy::Required(c),
                        (SmarthostTls::Tls, Some(c)) => TlsPolicy::Implicit(c),
                        _ => TlsPolicy::None,
                    };
                    let target = Target {
                        addr: (host.clone(), *port),
                        name: host,
                        tls: policy,
                        auth: auth.as_ref(),
                    };
                    let steps = self.session(&target, &from, &rcpts_of(&idx), message).await;
                    for (i, step) in idx.into_iter().zip(steps) {
                        set(i, step.into_outcome());
                    }
                }
            }
            Some(Route::Mx { resolver, port }) => {
                for (domain, idx) in groups {
                    let outcomes = self
                        .mx_send(resolver, *port, &domain, &from, &rcpts_of(&idx), message)
                        .await;
                    for (i, o) in idx.into_iter().zip(outcomes) {
                        set(i, o);
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|o| o.unwrap_or_else(|| later("4.3.0", "internal error: no outcome")))
            .collect()
    }

    /// Stores a queued copy for a local recipient (with its filter rules and size limit).
    async fn deliver_local(&self, rcpt: &str, message: &[u8]) -> Outcome {
        let store_later = |e: StoreError| later("4.3.0", format!("mail store: {e}"));
        let account = match self.store.find_account(rcpt).await {
            Ok(Some(a)) => a,
            Ok(None) => return failed("5.1.1", format!("{rcpt}: no such user here")),
            Err(e) => return store_later(e),
        };
        let policy = match crate::policy::effective(&*self.store, &account).await {
            Ok(p) => p,
            Err(e) => return store_later(e),
        };
        if let Err(r) = policy.check_size(
            sync_policy::access::Direction::Receive,
            message.len() as u64,
        ) {
            return failed(r.smtp_code().enhanced, r.text());
        }
        let inbox = match self.store.mailbox(account.id, "INBOX").await {
            Ok(m) => m.mailbox,
            Err(e) => return store_later(e),
        };
        match self
            .store
            .append(
                inbox,
                AppendOptions::default(),
                Bytes::copy_from_slice(message),
            )
            .await
        {
            Ok(o) => {
                if let Err(e) =
                    crate::policy::file_delivered(&*self.store, account.id, &policy, inbox, o.uid)
                        .await
                {
                    tracing::warn!("queue: filter rules not applied: {e}");
                }
                Outcome::Delivered
            }
            Err(StoreError::OverQuota { .. }) => failed("5.2.2", "mailbox full (over quota)"),
            Err(StoreError::InvalidMessage(m)) => failed("5.6.0", format!("message refused: {m}")),
            Err(e) => store_later(e),
        }
    }

    /// Delivers to `domain`'s MX hosts: in preference order, each of their addresses
    /// until every recipient is settled or [`MAX_MX_ADDRESSES`] were tried.
    async fn mx_send(
        &self,
        resolver: &Resolver,
        port: u16,
        domain: &str,
        from: &ReversePath,
        rcpts: &[String],
        message: &[u8],
    ) -> Vec<Outcome> {
        let all = |o: Outcome| rcpts.iter().map(|_| o.clone()).collect::<Vec<_>>();
        let (hosts, implicit) = match resolver.destination(domain, &self.config.hostname).await {
            Destination::Hosts { hosts, implicit } => (hosts, implicit),
            Destination::Literal(ip) => (vec![ip.to_string()], false),
            Destination::NullMx => {
                return all(failed(
                    "5.1.10",
                    format!("{domain} does not accept mail (null MX, RFC 7505)"),
                ));
            }
            Destination::Loop => {
                return all(failed(
                    "5.4.6",
                    format!(
                        "{domain}: this server ({}) is its best MX, but the domain is not in `domains` (mail loops back to itself)",
                        self.config.hostname
                    ),
                ));
            }
            Destination::NoSuchDomain => {
                return all(failed("5.1.2", format!("{domain}: no such domain")));
            }
            Destination::Temporary(why) => return all(later("4.4.3", format!("{domain}: {why}"))),
        };
        let mut results: Vec<Option<Outcome>> = vec![None; rcpts.len()];
        let mut fallback: Vec<Outcome> = all(later(
            "4.4.1",
            format!("{domain}: no MX host could be reached"),
        ));
        let mut pending: Vec<usize> = (0..rcpts.len()).collect();
        let mut tried = 0usize;
        'hosts: for host in &hosts {
            let addrs = match resolver.addresses(host).await {
                Ok(a) => a,
                Err(AddressError::NotFound(why)) if implicit => {
                    return all(failed(
                        "5.1.2",
                        format!("{domain} has no MX record and {why}"),
                    ));
                }
                Err(AddressError::NotFound(why)) => {
                    for &i in &pending {
                        if let Some(f) = fallback.get_mut(i) {
                            *f = later("4.4.4", format!("MX host {why}"));
                        }
                    }
                    continue;
                }
                Err(AddressError::Temporary(why)) => {
                    for &i in &pending {
                        if let Some(f) = fallback.get_mut(i) {
                            *f = later("4.4.3", why.clone());
                        }
                    }
                    continue;
                }
            };
            for ip in addrs {
                if tried >= MAX_MX_ADDRESSES {
                    break 'hosts;
                }
                tried += 1;
                let sub: Vec<String> = pending
                    .iter()
                    .filter_map(|&i| rcpts.get(i).cloned())
                    .collect();
                let target = Target {
                    addr: (ip.to_string(), port),
                    name: host,
                    tls: TlsPolicy::Opportunistic(&self.mx_tls),
                    auth: None,
                };
                let steps = self.session(&target, from, &sub, message).await;
                let mut still = Vec::new();
                for (&i, step) in pending.iter().zip(steps) {
                    match step {
                        Step::Final(o) => {
                            if let Some(slot) = results.get_mut(i) {
                                *slot = Some(o);
                            }
                        }
                        Step::NextHost(o) => {
                            if let Some(f) = fallback.get_mut(i) {
                                *f = o;
                            }
                            still.push(i);
                        }
                    }
                }
                pending = still;
                if pending.is_empty() {
                    break 'hosts;
                }
            }
        }
        results
            .into_iter()
            .zip(fallback)
            .map(|(r, f)| r.unwrap_or(f))
            .collect()
    }

    /// One SMTP session with `target` delivering one message to `rcpts`.
    async fn session(
        &self,
        target: &Target<'_>,
        from: &ReversePath,
        rcpts: &[String],
        message: &[u8],
    ) -> Vec<Step> {
        let label = format!("{}[{}]:{}", target.name, target.addr.0, target.addr.1);
        let all = |s: Step| rcpts.iter().map(|_| s.clone()).collect::<Vec<_>>();
        let mut plaintext_only = false;
        loop {
            let addr = (target.addr.0.as_str(), target.addr.1);
            let mut stream = match mail_net::connect(addr, CONNECT_TIMEOUT).await {
                Ok(s) => s,
                Err(e) => return all(Step::NextHost(later("4.4.1", format!("{label}: {e}")))),
            };
            if let TlsPolicy::Implicit(connector) = target.tls {
                let name = match mail_net::tls::server_name(target.name) {
                    Ok(n) => n,
                    Err(e) => return all(Step::NextHost(later("4.7.0", format!("{label}: {e}")))),
                };
                stream = match stream
                    .upgrade_client_timeout(connector, name, CONNECT_TIMEOUT)
                    .await
                {
                    Ok(s) => s,
                    Err(e) => {
                        return all(Step::NextHost(later(
                            "4.7.0",
                            format!("{label}: TLS handshake failed: {e}"),
                        )));
                    }
                };
            }
            let config = smtp_proto::client::Config::new(self.config.hostname.clone());
            let mut client: Client<TcpStream> = match Client::start(stream, config).await {
                Ok(c) => c,
                // A refused greeting (or EHLO), even 5xx: the next host may take it
                // (Postfix's smtp_skip_5xx_greeting); the last one's reply decides.
                Err(smtp_proto::Error::Rejected(r)) => {
                    return all(Step::NextHost(outcome_of(&r, &label)));
                }
                Err(e) => return all(Step::NextHost(later("4.4.2", format!("{label}: {e}")))),
            };
            let offers_tls = client.capabilities().is_some_and(|c| c.starttls);
            match target.tls {
                TlsPolicy::Required(connector) => {
                    if !offers_tls {
                        let _ = client.quit().await;
                        return all(Step::NextHost(later(
                            "4.7.10",
                            format!(
                                "{label} does not offer STARTTLS, which [relay] smarthost_tls = \"starttls\" requires"
                            ),
                        )));
                    }
                    if let Err(e) = client.starttls(connector, target.name).await {
                        return all(Step::NextHost(later(
                            "4.7.0",
                            format!("{label}: STARTTLS failed: {e}"),
                        )));
                    }
                }
                TlsPolicy::Opportunistic(connector) if offers_tls && !plaintext_only => {
                    match client.starttls(connector, target.name).await {
                        Ok(()) => {}
                        Err(smtp_proto::Error::Rejected(r)) => {
                            // Refused, but the session goes on in plaintext.
                            tracing::info!(host = label, reply = %r, "STARTTLS refused; sending without TLS");
                        }
                        Err(e) => {
                            // The handshake failed and took the connection with it: RFC
                            // 7435 opportunistic security falls back to cleartext.
                            tracing::warn!(
                                host = label,
                                "STARTTLS failed ({e}); reconnecting without TLS"
                            );
                            plaintext_only = true;
                            continue;
                        }
                    }
                }
                _ => {}
            }
            if let Some((user, password)) = target.auth {
                let offered = client
                    .capabilities()
                    .map(|c| c.auth.clone())
                    .unwrap_or_default();
                let mechanism = [
                    mail_sasl::Mechanism::ScramSha256,
                    mail_sasl::Mechanism::Plain,
                    mail_sasl::Mechanism::Login,
                ]
                .into_iter()
                .find(|m| offered.iter().any(|o| o == m.as_str()));
                let Some(mechanism) = mechanism else {
                    let _ = client.quit().await;
                    return all(Step::NextHost(later(
                        "4.7.0",
                        format!(
                            "{label} offers no AUTH mechanism we can use ({})",
                            offered.join(" ")
                        ),
                    )));
                };
                let credentials = mail_sasl::client::ClientCredentials::new(
                    user.clone(),
                    mail_sasl::Secret::new(password.clone()),
                );
                if let Err(e) = client.auth(mechanism, credentials).await {
                    let _ = client.quit().await;
                    // A refused login is our configuration's fault: keep the mail.
                    return all(Step::NextHost(later(
                        "4.7.0",
                        format!("{label} refused our AUTH: {e}"),
                    )));
                }
            }
            let tls = client.is_tls();
            let steps = transaction(&mut client, &label, from, rcpts, message).await;
            let _ = client.quit().await;
            let delivered = steps
                .iter()
                .filter(|s| matches!(s, Step::Final(Outcome::Delivered)))
                .count();
            tracing::info!(
                host = label,
                tls,
                delivered,
                of = rcpts.len(),
                "smtp session"
            );
            return steps;
        }
    }

    /// A delivery status notification to the sender: into its INBOX when it is a local
    /// account, else queued to it (with the null sender) when this server relays. A
    /// bounce of a bounce is never sent.
    async fn bounce(&self, entry: &Entry, message: &[u8], failed: &[Failure]) {
        if entry.from.is_empty() {
            return;
        }
        let dsn = dsn_message(&self.config.hostname, &entry.from, message, failed);
        if !self.config.is_local_address(&entry.from) {
            if self.relays() {
                if let Err(e) = self.enqueue("", std::slice::from_ref(&entry.from), dsn.as_bytes())
                {
                    tracing::warn!(from = entry.from, "cannot queue the bounce: {e}");
                }
            } else {
                tracing::warn!(
                    from = entry.from,
                    "cannot bounce: the sender is remote and [relay] is not configured"
                );
            }
            return;
        }
        let Ok(Some(account)) = self.store.find_account(&entry.from).await else {
            tracing::warn!(
                from = entry.from,
                "cannot bounce: the sender is not a local account"
            );
            return;
        };
        let Ok(inbox) = self.store.mailbox(account.id, "INBOX").await else {
            return;
        };
        if let Err(e) = self
            .store
            .append(inbox.mailbox, AppendOptions::default(), Bytes::from(dsn))
            .await
        {
            tracing::warn!(from = entry.from, "cannot store the bounce: {e}");
        }
    }
}

/// One recipient for a DSN.
#[derive(Debug, Clone)]
struct Failure {
    rcpt: String,
    status: String,
    why: String,
}

/// `MAIL`, `RCPT`s and the message in one transaction; per-recipient steps.
async fn transaction(
    client: &mut Client<TcpStream>,
    label: &str,
    from: &ReversePath,
    rcpts: &[String],
    message: &[u8],
) -> Vec<Step> {
    let to: Vec<ForwardPath> = rcpts
        .iter()
        .filter_map(|r| mailbox_of(r).map(ForwardPath::Mailbox))
        .collect();
    let all = |s: Step| rcpts.iter().map(|_| s.clone()).collect::<Vec<_>>();
    let envelope = Envelope::new(from.clone(), to.clone());
    // Per recipient: a refused RCPT's own reply (5xx bounces, 4xx waits for the next
    // attempt); an accepted one follows the reply to the message.
    let per_recipient = |replies: &[(ForwardPath, Reply)], msg: Option<&Reply>| {
        let mut steps: Vec<Step> = replies
            .iter()
            .map(|(_, r)| match (r.is_positive(), msg) {
                (false, _) => Step::Final(outcome_of(r, label)),
                (true, Some(m)) => Step::session_level(outcome_of(m, label)),
                (true, None) => {
                    Step::NextHost(later("4.4.2", format!("{label}: no reply to the message")))
                }
            })
            .collect();
        steps.resize(
            rcpts.len(),
            Step::NextHost(later("4.4.2", format!("{label}: reply missing"))),
        );
        steps
    };
    match client.send(&envelope, message).await {
        Ok(d) => per_recipient(&d.recipients, d.message.first()),
        // Every RCPT refused: each recipient has its own answer.
        Err(smtp_proto::Error::RecipientsRefused(refused)) => per_recipient(&refused, None),
        Err(smtp_proto::Error::Rejected(r)) => probe(client, label, from, &to, &r).await,
        Err(e) => all(Step::NextHost(later("4.4.2", format!("{label}: {e}")))),
    }
}

/// After a transaction failed as a whole (MAIL or the message refused), learn each
/// recipient's own answer: `MAIL` and the `RCPT`s again in lock step, then `RSET`.
async fn probe(
    client: &mut Client<TcpStream>,
    label: &str,
    from: &ReversePath,
    to: &[ForwardPath],
    refusal: &Reply,
) -> Vec<Step> {
    let whole = Step::session_level(outcome_of(refusal, label));
    let all = |s: Step| to.iter().map(|_| s.clone()).collect::<Vec<_>>();
    match client
        .command(Command::Mail {
            from: from.clone(),
            params: MailParams::default(),
        })
        .await
    {
        Ok(m) if m.is_positive() => {}
        Ok(m) => return all(Step::session_level(outcome_of(&m, label))),
        Err(_) => return all(whole),
    }
    let mut steps = Vec::with_capacity(to.len());
    for t in to {
        steps.push(
            match client
                .command(Command::Rcpt {
                    to: t.clone(),
                    params: RcptParams::default(),
                })
                .await
            {
                // Accepted now: the refusal was for the transaction as a whole.
                Ok(r) if r.is_positive() => whole.clone(),
                Ok(r) => Step::Final(outcome_of(&r, label)),
                Err(_) => whole.clone(),
            },
        );
    }
    let _ = client.command(Command::Rset).await;
    steps
}

/// An RFC 3464 delivery status notification.
fn dsn_message(hostname: &str, to: &str, original: &[u8], failed: &[Failure]) -> String {
    let boundary = format!("dsn-{}-{}", now_secs(), SEQ.fetch_add(1, Ordering::Relaxed));
    let date = crate::smtp::rfc5322_date(SystemTime::now());
    let head_end = memchr::memmem::find(original, b"\r\n\r\n").map_or(original.len(), |p| p + 2);
    let headers = String::from_utf8_lossy(original.get(..head_end).unwrap_or_default());
    let mut list = String::new();
    let mut status = String::new();
    for f in failed {
        let why = f.why.replace(['\r', '\n'], " ");
        list.push_str(&format!("  <{}>: {why}\r\n", f.rcpt));
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\nDiagnostic-Code: smtp; {why}\r\n",
            f.rcpt, f.status
        ));
    }
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\nTo: <{to}>\r\n\
Subject: Undelivered Mail Returned to Sender\r\nDate: {date}\r\nAuto-Submitted: auto-replied\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\r\n\r\n\
--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Your message could not be delivered to these recipients:\r\n\r\n{list}\r\n\
--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; {hostname}\r\n{status}\r\n\
--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n{headers}\r\n--{boundary}--\r\n"
    )
}

/// The SMTP backend of a submission session, with relaying: once the client
/// authenticated, recipients outside the local domains are accepted, the message is kept
/// for them and queued after the local copies are stored.
#[derive(Debug)]
pub struct Relaying<B, S> {
    inner: B,
    outbound: Option<Arc<Outbound<S>>>,
    config: Arc<Config>,
    peer: SocketAddr,
    helo: String,
    authenticated: bool,
    from: String,
    remote: Vec<String>,
    buf: Vec<u8>,
}

impl<B, S> Relaying<B, S> {
    /// Wraps a session from `peer`; without `outbound` (no `[relay]`, or not a submission
    /// listener) everything passes through unchanged.
    pub fn new(
        inner: B,
        outbound: Option<Arc<Outbound<S>>>,
        config: Arc<Config>,
        peer: SocketAddr,
    ) -> Self {
        Self {
            inner,
            outbound,
            config,
            peer,
            helo: String::new(),
            authenticated: false,
            from: String::new(),
            remote: Vec::new(),
            buf: Vec::new(),
        }
    }
}

impl<B: smtp_proto::tokio::Backend, S: MailStore> smtp_proto::tokio::Backend for Relaying<B, S> {
    async fn mail_from(&mut self, from: &ReversePath, params: &MailParams) -> MailDecision {
        self.remote.clear();
        self.buf.clear();
        self.from = from
            .mailbox()
            .map(|m| format!("{}@{}", m.local_part_unquoted(), m.domain()))
            .unwrap_or_default();
        self.inner.mail_from(from, params).await
    }

    async fn rcpt_to(&mut self, to: &ForwardPath, params: &RcptParams) -> RcptDecision {
        if let Some(m) = to.mailbox() {
            let address = format!("{}@{}", m.local_part_unquoted(), m.domain());
            if self.outbound.as_ref().is_some_and(|o| o.relays())
                && self.authenticated
                && !self.config.is_local_address(&address)
            {
                if !self.remote.contains(&address) {
                    self.remote.push(address);
                }
                return RcptDecision::Accept;
            }
        }
        self.inner.rcpt_to(to, params).await
    }

    async fn data_chunk(&mut self, chunk: Bytes) {
        if !self.remote.is_empty() {
            if self.buf.is_empty() {
                self.buf.extend_from_slice(
                    format!(
                        "Received: from {} ([{}])\r\n\tby {} with ESMTPSA; {}\r\n",
                        self.helo,
                        self.peer.ip(),
                        self.config.hostname,
                        crate::smtp::rfc5322_date(SystemTime::now())
                    )
                    .as_bytes(),
                );
            }
            self.buf.extend_from_slice(&chunk);
        }
        self.inner.data_chunk(chunk).await;
    }

    async fn message(&mut self, recipients: usize) -> Vec<MessageDecision> {
        let remote = std::mem::take(&mut self.remote);
        let buf = std::mem::take(&mut self.buf);
        let decisions = self
            .inner
            .message(recipients.saturating_sub(remote.len()))
            .await;
        let local_ok = decisions
            .first()
            .is_none_or(|d| matches!(d, MessageDecision::Accept | MessageDecision::Queued(_)));
        let Some(outbound) = self
            .outbound
            .as_ref()
            .filter(|o| o.relays() && !remote.is_empty() && local_ok)
        else {
            return decisions;
        };
        match outbound.enqueue(&self.from, &remote, &buf) {
            Ok(id) => vec![MessageDecision::Queued(id)],
            Err(e) => {
                tracing::warn!("outbound queue: {e}");
                vec![MessageDecision::TempFail(
                    "the outbound queue is unavailable, try again later".into(),
                )]
            }
        }
    }

    async fn reset(&mut self) {
        self.remote.clear();
        self.buf.clear();
        self.inner.reset().await;
    }

    async fn hello(&mut self, verb: HelloVerb, domain: &str) {
        self.helo = domain
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(255)
            .collect();
        self.inner.hello(verb, domain).await;
    }

    async fn verify(
        &mut self,
        credentials: mail_sasl::server::Verification,
    ) -> Result<Identity, mail_sasl::AuthFailure> {
        self.inner.verify(credentials).await
    }

    fn scram_secret(
        &mut self,
        username: &str,
    ) -> impl std::future::Future<Output = Option<mail_sasl::ScramSecret>> + Send {
        self.inner.scram_secret(username)
    }

    async fn authenticated(&mut self, identity: &Identity) {
        self.authenticated = true;
        self.inner.authenticated(identity).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let e = Entry {
            from: "a@example.test".into(),
            rcpts: vec!["x@example.net".into(), "y@example.net".into()],
            queued: 1,
            attempts: 2,
            next: 3,
        };
        assert_eq!(Entry::decode(&e.encode()), Some(e));
        assert_eq!(Entry::decode("bogus 1\n"), None);
    }

    #[test]
    fn dsn_is_a_delivery_report() {
        let d = dsn_message(
            "mail.example.test",
            "a@example.test",
            b"Subject: hi\r\nTo: x@example.net\r\n\r\nbody\r\n",
            &[Failure {
                rcpt: "x@example.net".into(),
                status: "5.1.1".into(),
                why: "mx.example.net said: 550 5.1.1 no such user".into(),
            }],
        );
        assert!(d.contains("Status: 5.1.1\r\n"));
        assert!(d.contains("report-type=delivery-status"));
        assert!(d.contains("Final-Recipient: rfc822; x@example.net\r\nAction: failed\r\n"));
        assert!(d.contains("Subject: hi\r\n"));
        assert!(!d.contains("body\r\n"));
        assert!(crate::mime::parse(d.as_bytes()).is_some());
    }
}

#[cfg(test)]
#[path = "outbound_mx_tests.rs"]
mod mx_tests;
