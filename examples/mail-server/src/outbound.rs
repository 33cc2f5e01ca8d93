//! Outbound mail: a persistent queue in `<data_dir>/queue/` delivered to a configured
//! smarthost (`[relay] smarthost`), with retries and exponential backoff, and a delivery
//! status notification (RFC 3464) into the sender's INBOX for recipients that were refused
//! permanently or could not be delivered within `give_up_after`.
//!
//! Only authenticated submission sessions may relay ([`Relaying`] wraps their SMTP
//! backend); port 25 keeps refusing other domains. Without `[relay]` the submission
//! listeners refuse non-local recipients as before.
//!
//! Queue entry `<id>.env` (written last, with an atomic rename: its presence means the
//! entry is complete) holds `from`, one `rcpt` line per recipient still to deliver,
//! `queued`, `attempts` and `next` (Unix seconds); `<id>.eml` holds the message. The
//! message is accepted (`250`) only after both are durable.
//!
//! MX lookup is not done: the workspace has no DNS resolver dependency, so a smarthost
//! (e.g. the provider's relay, or a local Postfix) is required for mail to other domains.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mail_net::Shutdown;
use mail_sasl::server::Identity;
use mailstore_core::{AppendOptions, MailStore};
use smtp_proto::server::{MailDecision, MessageDecision, RcptDecision};
use smtp_proto::types::{ForwardPath, HelloVerb, MailParams, RcptParams, Reply, ReversePath};
use tokio::sync::Notify;

use crate::config::Config;

/// Longest backoff between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Most queue entries looked at per pass (the rest wait for the next pass).
pub const MAX_ENTRIES_PER_PASS: usize = 1000;

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

/// The outbound queue and its delivery worker.
#[derive(Debug)]
pub struct Outbound<S> {
    dir: PathBuf,
    smarthost: SocketAddr,
    hostname: String,
    retry_after: Duration,
    give_up_after: Duration,
    store: Arc<S>,
    wake: Notify,
}

/// What one delivery attempt decided per recipient.
enum Outcome {
    Delivered,
    Failed(String),
    Later(String),
}

impl<S: MailStore> Outbound<S> {
    /// The queue of `config` (`None` without `[relay]`); creates the queue directory.
    ///
    /// # Errors
    /// When the queue directory cannot be created.
    pub fn new(config: &Config, store: Arc<S>) -> std::io::Result<Option<Arc<Self>>> {
        let Some(relay) = &config.relay else {
            return Ok(None);
        };
        let dir = config.data_dir.join("queue");
        std::fs::create_dir_all(&dir)?;
        Ok(Some(Arc::new(Self {
            dir,
            smarthost: relay.smarthost,
            hostname: config.hostname.clone(),
            retry_after: relay.retry_after,
            give_up_after: relay.give_up_after,
            store,
            wake: Notify::new(),
        })))
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
        tracing::info!(id, from, rcpts = rcpts.len(), "queued for the smarthost");
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
    async fn pass(&self) -> Option<u64> {
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
        let mut failed: Vec<(String, String)> = Vec::new();
        let mut later: Vec<(String, String)> = Vec::new();
        for (rcpt, o) in entry.rcpts.iter().zip(outcomes) {
            match o {
                Outcome::Delivered => {
                    tracing::info!(id, rcpt, "delivered to the smarthost");
                }
                Outcome::Failed(why) => failed.push((rcpt.clone(), why)),
                Outcome::Later(why) => later.push((rcpt.clone(), why)),
            }
        }
        let expired = now.saturating_sub(entry.queued) >= self.give_up_after.as_secs();
        if expired {
            failed.append(&mut later);
        }
        if !failed.is_empty() {
            tracing::warn!(
                id,
                failed = failed.len(),
                "bouncing undeliverable recipients"
            );
            self.bounce(&entry, &message, &failed).await;
        }
        if later.is_empty() {
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
        entry.rcpts = later.iter().map(|(r, _)| r.clone()).collect();
        tracing::info!(id, attempts = entry.attempts, retry_in = ?backoff, reason = %later.first().map(|(_, w)| w.as_str()).unwrap_or(""), "delivery deferred");
        if let Err(e) = write_durable(&env_path, entry.encode().as_bytes()) {
            tracing::warn!(id, "outbound queue: {e}");
        }
        Some(entry.next)
    }

    async fn send(&self, entry: &Entry, message: &[u8]) -> Vec<Outcome> {
        let later = |why: String| {
            entry
                .rcpts
                .iter()
                .map(|_| Outcome::Later(why.clone()))
                .collect()
        };
        let from = match mailbox_of(&entry.from) {
            Some(m) => ReversePath::Mailbox(m),
            None => ReversePath::Null,
        };
        let to: Vec<ForwardPath> = entry
            .rcpts
            .iter()
            .filter_map(|r| mailbox_of(r).map(ForwardPath::Mailbox))
            .collect();
        if to.len() != entry.rcpts.len() {
            return entry
                .rcpts
                .iter()
                .map(|_| Outcome::Failed("invalid recipient address".into()))
                .collect();
        }
        let config = smtp_proto::client::Config::new(self.hostname.clone());
        let mut client = match smtp_proto::tokio::Client::connect(self.smarthost, config).await {
            Ok(c) => c,
            Err(e) => return later(format!("smarthost {}: {e}", self.smarthost)),
        };
        let envelope = smtp_proto::tokio::Envelope::new(from, to);
        let result = client.send(&envelope, message).await;
        let _ = client.quit().await;
        match result {
            Ok(d) => {
                let msg_reply = d.message.first().cloned();
                d.recipients
                    .iter()
                    .map(|(_, r)| {
                        let r = if r.is_positive() {
                            match &msg_reply {
                                Some(m) => m,
                                None => r,
                            }
                        } else {
                            r
                        };
                        outcome_of(r)
                    })
                    .collect()
            }
            Err(smtp_proto::Error::Rejected(r)) => {
                entry.rcpts.iter().map(|_| outcome_of(&r)).collect()
            }
            Err(e) => later(format!("smarthost {}: {e}", self.smarthost)),
        }
    }

    /// A delivery status notification into the sender's INBOX (when the sender is a local
    /// account; a bounce of a bounce is not sent).
    async fn bounce(&self, entry: &Entry, message: &[u8], failed: &[(String, String)]) {
        if entry.from.is_empty() {
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
        let dsn = dsn_message(&self.hostname, &entry.from, message, failed);
        if let Err(e) = self
            .store
            .append(inbox.mailbox, AppendOptions::default(), Bytes::from(dsn))
            .await
        {
            tracing::warn!(from = entry.from, "cannot store the bounce: {e}");
        }
    }
}

fn outcome_of(r: &Reply) -> Outcome {
    let text = r.to_string().trim_end().to_string();
    if r.is_positive() {
        Outcome::Delivered
    } else if r.is_permanent() {
        Outcome::Failed(text)
    } else {
        Outcome::Later(text)
    }
}

/// An RFC 3464 delivery status notification.
fn dsn_message(hostname: &str, to: &str, original: &[u8], failed: &[(String, String)]) -> String {
    let boundary = format!("dsn-{}-{}", now_secs(), SEQ.fetch_add(1, Ordering::Relaxed));
    let date = crate::smtp::rfc5322_date(SystemTime::now());
    let head_end = memchr::memmem::find(original, b"\r\n\r\n").map_or(original.len(), |p| p + 2);
    let headers = String::from_utf8_lossy(original.get(..head_end).unwrap_or_default());
    let mut list = String::new();
    let mut status = String::new();
    for (rcpt, why) in failed {
        list.push_str(&format!("  <{rcpt}>: {why}\r\n"));
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: 5.0.0\r\nDiagnostic-Code: smtp; {}\r\n",
            why.replace(['\r', '\n'], " ")
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
            if self.outbound.is_some()
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
            .filter(|_| !remote.is_empty() && local_ok)
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
            &[("x@example.net".into(), "550 5.1.1 no such user".into())],
        );
        assert!(d.contains("report-type=delivery-status"));
        assert!(d.contains("Final-Recipient: rfc822; x@example.net\r\nAction: failed\r\n"));
        assert!(d.contains("Subject: hi\r\n"));
        assert!(!d.contains("body\r\n"));
        assert!(crate::mime::parse(d.as_bytes()).is_some());
    }
}
