//! SMTP over the store: one [`smtp_proto::tokio::Backend`] per connection.
//!
//! - **Inbound (MX, port 25) and LMTP**: recipients must be accounts (or aliases) in a
//!   local domain; anything else is `550 5.1.1` (unknown local user) or `554 5.7.1` (relay
//!   denied). No authentication.
//! - **Submission (587 STARTTLS, 465 implicit TLS)**: AUTH PLAIN/LOGIN with the full
//!   address and the password or an app password (the protocol machine requires AUTH
//!   before MAIL, and TLS before AUTH); the account must have SMTP access; the sender must
//!   be the account's own address or alias. Other domains are relayed through the
//!   outbound queue when `[relay]` is configured (`crate::outbound::Relaying`), and
//!   refused with a text that says so when it is not.
//!
//! Policies (`crate::policy`, docs/policy.md): a submission login is also checked against
//! the organisation/account switches, two-step verification and federated accounts
//! (`535 5.7.8` with the policy's text, e.g. "Two-step verification is on ..."; a wrong
//! password keeps the fixed `Authentication credentials invalid`); the organisation's source-IP allowlist is checked at `MAIL`
//! (`550 5.7.1`); the sender's send-size limit at `MAIL SIZE=` and at the end of data,
//! each recipient's receive-size limit at `RCPT` (declared `SIZE=`) and at the end of data
//! (`552 5.3.4`); each recipient's filter rules file the message after it is stored.
//!
//! The message streams into one store append per recipient (`AppendSink`), with a
//! `Received:` field in front; nothing is visible before the final `250`, which comes only
//! after every copy is durable.
//!
//! **No duplicates after a partial failure.** SMTP has one reply for all recipients, and
//! the store has no multi-mailbox append, so a failure midway (the second recipient's
//! append fails after the first one's committed) cannot be answered with an error: the
//! client would retry the whole message and the first recipient would get it twice.
//! Instead, like Postfix, the server takes responsibility: it reads the committed copy
//! back, puts the failed local recipients into the durable queue (`outbound`, which
//! retries them into the store with backoff and sends a DSN to the sender for permanent
//! failures or after `give_up_after`), and only then answers `250`. When nothing was
//! committed the failure is the reply (nothing can duplicate); when the queue itself
//! cannot take the message the failure is the reply too (a duplicate is better than a
//! loss, RFC 5321 section 6.1). LMTP answers per recipient and needs none of this.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use mail_sasl::AuthFailure;
use mail_sasl::server::{Identity, Verification};
use mailstore_core::{
    AccountInfo, AppendOptions, AppendSink, MailStore, MailboxRef, Protocol, StoreError,
};
use smtp_proto::server::{MailDecision, MessageDecision, RcptDecision};
use smtp_proto::tokio::Backend;
use smtp_proto::{ForwardPath, HelloVerb, MailParams, RcptParams, Reply, ReversePath};

use crate::config::Config;
use crate::outbound::Outbound;

/// Which kind of SMTP listener a session came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Port 25: inbound mail for local domains.
    Mx,
    /// Ports 587/465: authenticated submission.
    Submission,
    /// LMTP: local delivery from another MTA.
    Lmtp,
}

/// The state of one SMTP connection.
pub struct Session<S: MailStore> {
    store: Arc<S>,
    config: Arc<Config>,
    kind: Kind,
    peer: SocketAddr,
    tls: bool,
    helo: String,
    account: Option<AccountInfo>,
    recipients: Vec<MailboxRef>,
    /// Per recipient (parallel to `recipients`): the account and its policy.
    rcpt_policy: Vec<(mailstore_core::AccountId, sync_policy::EffectivePolicy)>,
    /// The sender's policy (submission).
    sender_policy: Option<sync_policy::EffectivePolicy>,
    /// Bytes of message data received so far.
    data_bytes: u64,
    /// `MAIL FROM ... SIZE=`.
    declared_size: Option<u64>,
    sinks: Vec<Option<S::Append>>,
    failure: Option<StoreError>,
    started: bool,
    /// The envelope sender (`""` for the null sender).
    from: String,
    /// Per recipient (parallel to `recipients`): the address as the client gave it.
    rcpt_addresses: Vec<String>,
    /// The durable queue that takes the recipients whose copy failed after another
    /// recipient's copy was committed.
    queue: Option<Arc<Outbound<S>>>,
}

impl<S: MailStore> std::fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("kind", &self.kind)
            .field("peer", &self.peer)
            .field("recipients", &self.recipients.len())
            .finish()
    }
}

impl<S: MailStore> Session<S> {
    /// A session for a connection from `peer`.
    pub fn new(
        store: Arc<S>,
        config: Arc<Config>,
        kind: Kind,
        peer: SocketAddr,
        tls: bool,
    ) -> Self {
        Self {
            store,
            config,
            kind,
            peer,
            tls,
            helo: String::new(),
            account: None,
            recipients: Vec::new(),
            rcpt_policy: Vec::new(),
            sender_policy: None,
            data_bytes: 0,
            declared_size: None,
            sinks: Vec::new(),
            failure: None,
            started: false,
            from: String::new(),
            rcpt_addresses: Vec::new(),
            queue: None,
        }
    }

    /// The queue for local recipients whose copy failed after another one was committed
    /// (without it such a failure is answered with the error, and a retrying client may
    /// duplicate the message for the recipients already served).
    pub fn with_queue(mut self, queue: Option<Arc<Outbound<S>>>) -> Self {
        self.queue = queue;
        self
    }

    async fn clear(&mut self) {
        for sink in self.sinks.drain(..).flatten() {
            sink.abort().await;
        }
        self.recipients.clear();
        self.rcpt_policy.clear();
        self.rcpt_addresses.clear();
        self.data_bytes = 0;
        self.failure = None;
        self.started = false;
    }

    fn received_field(&self) -> String {
        // AUTH is only offered inside TLS (the machine's `auth_requires_tls`), so an
        // authenticated session is encrypted even when STARTTLS (which the adapter does
        // not report to the backend) was the way there.
        let tls = self.tls || self.account.is_some();
        let with = match (self.kind, self.account.is_some(), tls) {
            (Kind::Lmtp, _, _) => "LMTP",
            (_, true, true) => "ESMTPSA",
            (_, true, false) => "ESMTPA",
            (_, false, true) => "ESMTPS",
            (_, false, false) => "ESMTP",
        };
        format!(
            "Received: from {} ([{}])\r\n\tby {} (mail-server) with {with};\r\n\t{}\r\n",
            if self.helo.is_empty() {
                "unknown"
            } else {
                &self.helo
            },
            self.peer.ip(),
            self.config.hostname,
            rfc5322_date(std::time::SystemTime::now())
        )
    }

    async fn start(&mut self) {
        self.started = true;
        let received = self.received_field();
        for &mailbox in &self.recipients {
            let sink = match self
                .store
                .begin_append(mailbox, AppendOptions::default())
                .await
            {
                Ok(mut s) => match s.write(received.as_bytes()).await {
                    Ok(()) => Some(s),
                    Err(e) => {
                        self.failure.get_or_insert(e);
                        None
                    }
                },
                Err(e) => {
                    self.failure.get_or_insert(e);
                    None
                }
            };
            self.sinks.push(sink);
        }
    }
}

/// Reads the committed copy (`mailbox`, `uid`) back and queues it from `from` to `rcpts`.
async fn queue_failed<S: MailStore>(
    store: &S,
    queue: Option<&Outbound<S>>,
    from: &str,
    (mailbox, uid): (MailboxRef, u32),
    rcpts: &[String],
) -> Result<String, String> {
    use tokio::io::AsyncReadExt as _;
    let queue = queue.ok_or("no queue")?;
    let mut body = store
        .open_body(mailbox, uid)
        .await
        .map_err(|e| e.to_string())?;
    let mut message = Vec::new();
    body.read_to_end(&mut message)
        .await
        .map_err(|e| e.to_string())?;
    queue
        .enqueue(from, rcpts, &message)
        .map_err(|e| e.to_string())
}

/// The text sent (`535 5.7.8 ...`) when an account may not use SMTP submission.
pub const SMTP_DISABLED: &str =
    "SMTP submission is disabled for this account; ask the administrator to enable it";

/// A policy refusal as an SMTP reply (code, enhanced code and the refusal's text).
fn refusal_reply(r: &sync_policy::access::Refusal) -> Reply {
    let c = r.smtp_code();
    let mut parts = c.enhanced.split('.').map(|p| p.parse::<u16>().unwrap_or(0));
    let class = u8::try_from(parts.next().unwrap_or(5)).unwrap_or(5);
    let subject = parts.next().unwrap_or(0);
    let detail = parts.next().unwrap_or(0);
    Reply::enh(c.code, (class, subject, detail), r.text())
}

/// The account that receives a local domain's postmaster mail when no account has that
/// address: `[smtp] postmaster`, or else the first account created.
async fn postmaster_account<S: MailStore>(
    store: &S,
    config: &Config,
) -> Result<Option<mailstore_core::AccountInfo>, mailstore_core::StoreError> {
    if let Some(address) = &config.smtp.postmaster {
        return store.find_account(address).await;
    }
    Ok(store
        .list_accounts()
        .await?
        .into_iter()
        .min_by_key(|a| a.id.0))
}

/// Whether `address` is a local domain's `postmaster` (case-insensitive local part).
fn is_postmaster(address: &str) -> bool {
    address
        .rsplit_once('@')
        .is_some_and(|(local, _)| local.eq_ignore_ascii_case("postmaster"))
}

fn address_of(m: &smtp_proto::Mailbox) -> String {
    format!("{}@{}", m.local_part_unquoted(), m.domain())
}

fn failure_decision(e: &StoreError) -> MessageDecision {
    match e {
        StoreError::InvalidMessage(m) => {
            MessageDecision::Reply(Reply::enh(554, (5, 6, 0), format!("message refused: {m}")))
        }
        StoreError::OverQuota { .. } => {
            MessageDecision::Reply(Reply::enh(552, (5, 2, 2), "mailbox full (over quota)"))
        }
        other => {
            tracing::warn!("smtp: store error: {other}");
            MessageDecision::TempFail("the mail store is unavailable, try again later".into())
        }
    }
}

impl<S: MailStore> Backend for Session<S>
where
    S::Append: Send,
{
    async fn hello(&mut self, _verb: HelloVerb, domain: &str) {
        self.helo = domain
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(255)
            .collect();
    }

    async fn verify(&mut self, credentials: Verification) -> Result<Identity, AuthFailure> {
        let Verification::Password {
            username, password, ..
        } = credentials
        else {
            return Err(AuthFailure::InvalidCredentials);
        };
        match self.store.verify_login(&username, password.expose()).await {
            Ok(outcome) => {
                if !outcome.account.allows(Protocol::Smtp) {
                    tracing::info!(user = username, "smtp refused: access disabled");
                    return Err(AuthFailure::Denied(SMTP_DISABLED.into()));
                }
                let kind = crate::policy::LoginKind::from_via(&outcome.via);
                match crate::policy::check_login(
                    &*self.store,
                    &outcome.account,
                    sync_policy::access::Protocol::Smtp,
                    kind,
                    false,
                )
                .await
                {
                    Ok(Ok(policy)) => self.sender_policy = Some(policy),
                    Ok(Err(refusal)) => {
                        // smtp-proto sends `535 5.7.8 <the refusal's text>`.
                        tracing::info!(user = username, reason = %refusal, "smtp refused by policy");
                        return Err(AuthFailure::Denied(refusal.text()));
                    }
                    Err(e) => {
                        tracing::warn!("smtp: store error: {e}");
                        return Err(AuthFailure::TemporaryFailure(
                            "the account store is unavailable".into(),
                        ));
                    }
                }
                tracing::info!(user = username, via = ?outcome.via, "smtp login");
                self.account = Some(outcome.account);
                Ok(Identity::new(username))
            }
            Err(StoreError::AuthFailed) => Err(AuthFailure::InvalidCredentials),
            Err(e) => {
                tracing::warn!("smtp: store error: {e}");
                Err(AuthFailure::TemporaryFailure(
                    "the account store is unavailable".into(),
                ))
            }
        }
    }

    async fn mail_from(&mut self, from: &ReversePath, params: &MailParams) -> MailDecision {
        self.clear().await;
        self.from = from.mailbox().map(address_of).unwrap_or_default();
        self.declared_size = params.size;
        if self.kind != Kind::Submission {
            return MailDecision::Accept;
        }
        let Some(account) = &self.account else {
            return MailDecision::Reply(Reply::enh(530, (5, 7, 0), "authentication required"));
        };
        let owned = from.mailbox().map(address_of).is_some_and(|a| {
            let a = a.to_ascii_lowercase();
            account.address.to_ascii_lowercase() == a
                || account.aliases.iter().any(|x| x.to_ascii_lowercase() == a)
        });
        if owned {
            if let Some(policy) = &self.sender_policy {
                if let Err(r) = crate::policy::smtp_source(policy, self.peer.ip()) {
                    return MailDecision::Reply(refusal_reply(&r));
                }
                if let Some(size) = params.size
                    && let Err(r) = policy.check_size(sync_policy::access::Direction::Send, size)
                {
                    return MailDecision::Reply(refusal_reply(&r));
                }
            }
            MailDecision::Accept
        } else {
            MailDecision::Reply(Reply::enh(
                553,
                (5, 7, 1),
                format!("sender address not owned by {}", account.address),
            ))
        }
    }

    async fn rcpt_to(&mut self, to: &ForwardPath, _params: &RcptParams) -> RcptDecision {
        let declared = self.declared_size;
        let address = match to.mailbox() {
            Some(m) => address_of(m),
            None => format!(
                "postmaster@{}",
                self.config
                    .domains
                    .first()
                    .map_or("localhost", String::as_str)
            ),
        };
        if !self.config.is_local_address(&address) {
            return match self.kind {
                Kind::Submission => RcptDecision::Reply(Reply::enh(
                    550,
                    (5, 7, 1),
                    "this server delivers only to its local domains (relaying is not configured)",
                )),
                _ => RcptDecision::RelayDenied,
            };
        }
        let found = match self.store.find_account(&address).await {
            Ok(None) if is_postmaster(&address) => {
                postmaster_account(&*self.store, &self.config).await
            }
            other => other,
        };
        let account = match found {
            Ok(Some(a)) => a,
            Ok(None) => return RcptDecision::UnknownUser,
            Err(e) => {
                tracing::warn!("smtp: store error: {e}");
                return RcptDecision::TempFail(
                    "the mail store is unavailable, try again later".into(),
                );
            }
        };
        let policy = match crate::policy::effective(&*self.store, &account).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("smtp: store error: {e}");
                return RcptDecision::TempFail(
                    "the mail store is unavailable, try again later".into(),
                );
            }
        };
        if let Some(size) = declared
            && let Err(r) = policy.check_size(sync_policy::access::Direction::Receive, size)
        {
            return RcptDecision::Reply(refusal_reply(&r));
        }
        match self.store.mailbox(account.id, "INBOX").await {
            Ok(inbox) => {
                // LMTP answers once per accepted RCPT, so keep duplicates there.
                if self.kind == Kind::Lmtp || !self.recipients.contains(&inbox.mailbox) {
                    self.recipients.push(inbox.mailbox);
                    self.rcpt_policy.push((account.id, policy));
                    self.rcpt_addresses.push(address);
                }
                RcptDecision::Accept
            }
            Err(e) => {
                tracing::warn!("smtp: store error: {e}");
                RcptDecision::TempFail("the mail store is unavailable, try again later".into())
            }
        }
    }

    async fn data_chunk(&mut self, chunk: Bytes) {
        if !self.started {
            self.start().await;
        }
        self.data_bytes = self.data_bytes.saturating_add(chunk.len() as u64);
        for slot in &mut self.sinks {
            if let Some(sink) = slot
                && let Err(e) = sink.write(&chunk).await
            {
                self.failure.get_or_insert(e);
                *slot = None;
            }
        }
    }

    async fn message(&mut self, recipients: usize) -> Vec<MessageDecision> {
        if !self.started {
            self.start().await;
        }
        let sinks: Vec<Option<S::Append>> = self.sinks.drain(..).collect();
        let first_failure = self.failure.take();
        let size = self.data_bytes;
        let send_refusal = self.sender_policy.as_ref().and_then(|p| {
            p.check_size(sync_policy::access::Direction::Send, size)
                .err()
        });
        let targets = std::mem::take(&mut self.rcpt_policy);
        let addresses = std::mem::take(&mut self.rcpt_addresses);
        // Every copy first (commit or failure), filter rules after: a rule may move the
        // copy that a partial failure reads back.
        let mut results: Vec<Result<mailstore_core::AppendOutcome, MessageDecision>> =
            Vec::with_capacity(recipients);
        for (i, sink) in sinks.into_iter().enumerate() {
            let refusal = send_refusal.clone().or_else(|| {
                targets.get(i).and_then(|(_, p)| {
                    p.check_size(sync_policy::access::Direction::Receive, size)
                        .err()
                })
            });
            if let Some(r) = refusal {
                if let Some(s) = sink {
                    s.abort().await;
                }
                results.push(Err(MessageDecision::Reply(refusal_reply(&r))));
                continue;
            }
            results.push(match sink {
                Some(s) => s.commit().await.map_err(|e| failure_decision(&e)),
                None => Err(first_failure.as_ref().map_or_else(
                    || MessageDecision::TempFail("internal error".into()),
                    failure_decision,
                )),
            });
        }
        let committed: Vec<(MailboxRef, u32)> = results
            .iter()
            .zip(&self.recipients)
            .filter_map(|(r, m)| r.as_ref().ok().map(|o| (*m, o.uid)))
            .collect();
        let failed: Vec<usize> = results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.is_err().then_some(i))
            .collect();
        // SMTP (not LMTP) after a partial failure: queue the failed recipients.
        let mut queued: Option<String> = None;
        if self.kind != Kind::Lmtp
            && !failed.is_empty()
            && let Some(&(mailbox, uid)) = committed.first()
        {
            let rcpts: Vec<String> = failed
                .iter()
                .filter_map(|&i| addresses.get(i).cloned())
                .collect();
            let store = Arc::clone(&self.store);
            let queue = self.queue.clone();
            let from = self.from.clone();
            match queue_failed(&*store, queue.as_deref(), &from, (mailbox, uid), &rcpts).await {
                Ok(id) => {
                    tracing::info!(
                        stored = committed.len(),
                        queued = rcpts.len(),
                        id,
                        "smtp: some copies failed; queued them for retry"
                    );
                    queued = Some(id);
                }
                Err(e) => tracing::warn!(
                    "smtp: some copies failed and the queue cannot take them ({e}); answering with the failure (the client may send the message again)"
                ),
            }
        }
        for (i, r) in results.iter().enumerate() {
            if let (Ok(o), Some((account, policy)), Some(mailbox)) =
                (r, targets.get(i), self.recipients.get(i))
                && let Err(e) =
                    crate::policy::file_delivered(&*self.store, *account, policy, *mailbox, o.uid)
                        .await
            {
                tracing::warn!("smtp: filter rules not applied: {e}");
            }
        }
        let decisions: Vec<MessageDecision> = results
            .into_iter()
            .map(|r| match r {
                Ok(o) => MessageDecision::Queued(format!("{}.{}", o.uidvalidity, o.uid)),
                Err(d) => d,
            })
            .collect();
        self.clear().await;
        if self.kind == Kind::Lmtp {
            return decisions;
        }
        if let Some(id) = queued {
            return vec![MessageDecision::Queued(id)];
        }
        // SMTP has one reply for all recipients: the first failure, if any.
        let any_failure = decisions
            .iter()
            .find(|d| !matches!(d, MessageDecision::Queued(_) | MessageDecision::Accept))
            .cloned();
        vec![any_failure.unwrap_or(MessageDecision::Accept)]
    }

    async fn reset(&mut self) {
        self.clear().await;
    }
}

/// `Tue, 24 Nov 2026 23:47:15 +0000`.
pub fn rfc5322_date(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let wd = DAYS
        .get(usize::try_from(days.rem_euclid(7)).unwrap_or(0))
        .copied()
        .unwrap_or("Thu");
    let mon = MONTHS
        .get(usize::try_from(month - 1).unwrap_or(0))
        .copied()
        .unwrap_or("Jan");
    format!("{wd}, {d:02} {mon} {year} {h:02}:{m:02}:{s:02} +0000")
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "Tue, 29 Feb 2000 00:00:00 +0000"
        );
        assert_eq!(
            rfc5322_date(UNIX_EPOCH + Duration::from_secs(1_795_564_035)),
            "Tue, 24 Nov 2026 23:47:15 +0000"
        );
    }
}

#[cfg(test)]
#[path = "smtp_tests.rs"]
mod partial_failure_tests;
