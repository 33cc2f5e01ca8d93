//! POP3 over the store: a [`pop3_proto::tokio::Backend`] whose maildrop is the account's
//! INBOX.
//!
//! - Login is the full address (or an alias); the account password and every app password
//!   work (USER/PASS and SASL PLAIN/LOGIN). APOP (and CRAM-MD5) work only for an account that
//!   opted in to a plaintext-equivalent secret.
//! - An account whose POP3 access is disabled (store flag, or the organisation / account
//!   policy of `crate::policy`: switches, opt-in, two-step verification, federated) is
//!   refused after a correct password with `-ERR [AUTH] <why>` (a wrong password never
//!   reveals the flag).
//! - The maildrop is the policy's POP3 view (POP-1..6): scope, INBOX only, Junk and
//!   imported mail on request, minus what keep-original `DELE` hid earlier.
//! - One POP3 session per account at a time (`-ERR [IN-USE]`), as RFC 1939 asks.
//! - RETR streams from the store's file-backed body reader.
//! - QUIT applies the policy's plan durably before the `+OK`: DELE expunges (follow the
//!   client) or only hides from POP3 (keep the original); a message read to its end (RETR)
//!   gets `\Seen` when the account asks for it (POP-3).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use mailstore_core::{AccountId, BodyReader, MailStore, MailboxRef, Protocol, StoreError};
use sync_policy::EffectivePolicy;
use sync_policy::MessageKey;
use sync_policy::pop3::Pop3View;
use tokio::io::{AsyncRead, ReadBuf};

use crate::policy::LoginKind;
use pop3_proto::tokio::{AuthError, Backend};
use pop3_proto::types::{MessageInfo, Secret, secret};

/// The text sent when an account may not use POP3.
pub const POP3_DISABLED: &str =
    "POP3 access is disabled for this account; ask the administrator to enable it";

/// The POP3 backend over a shared store.
#[derive(Debug)]
pub struct StoreBackend<S> {
    store: Arc<S>,
    sessions: Arc<Mutex<HashSet<AccountId>>>,
    /// How each user last proved who they are (password, app password, APOP), for the
    /// policy check in `open_maildrop`. Bounded by the number of logins in flight.
    logins: Arc<Mutex<HashMap<String, LoginKind>>>,
}

impl<S> Clone for StoreBackend<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            sessions: Arc::clone(&self.sessions),
            logins: Arc::clone(&self.logins),
        }
    }
}

impl<S: MailStore> StoreBackend<S> {
    /// A backend over `store`.
    pub fn new(store: Arc<S>) -> Self {
        Self {
            store,
            sessions: Arc::new(Mutex::new(HashSet::new())),
            logins: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn record_login(&self, user: &str, kind: LoginKind) {
        let mut l = self.logins.lock().unwrap_or_else(PoisonError::into_inner);
        if l.len() > 10_000 {
            l.clear();
        }
        l.insert(user.to_ascii_lowercase(), kind);
    }

    fn take_login(&self, user: &str) -> LoginKind {
        self.logins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&user.to_ascii_lowercase())
            .unwrap_or(LoginKind::Password)
    }
}

/// A locked maildrop: the policy's POP3 view. Dropping it releases the lock.
#[derive(Debug)]
pub struct Maildrop {
    account: AccountId,
    policy: EffectivePolicy,
    view: Pop3View,
    refs: BTreeMap<u64, MailboxRef>,
    uidvalidity: BTreeMap<u64, u32>,
    retrieved: Arc<Mutex<BTreeSet<MessageKey>>>,
    /// The next message, read ahead after a `RETR` (see [`Backend::prefetch`]).
    prefetched: Option<(usize, BodyReader)>,
    _lock: SessionLock,
}

#[derive(Debug)]
struct SessionLock {
    account: AccountId,
    sessions: Arc<Mutex<HashSet<AccountId>>>,
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.account);
    }
}

/// A message body that records, when it is read to its end, that the message was
/// retrieved (RETR, or a TOP that covered the whole message): POP-3's mark-as-read.
#[derive(Debug)]
pub struct TrackedBody {
    inner: BodyReader,
    key: MessageKey,
    retrieved: Arc<Mutex<BTreeSet<MessageKey>>>,
}

impl AsyncRead for TrackedBody {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r
            && buf.filled().len() == before
            && buf.remaining() > 0
        {
            let key = self.key;
            self.retrieved
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key);
        }
        r
    }
}

fn temporary(e: &StoreError) -> AuthError {
    tracing::warn!("pop3: store error: {e}");
    AuthError::Temporary("the mail store is unavailable, try again later".into())
}

impl<S: MailStore> Backend for StoreBackend<S> {
    type Maildrop = Maildrop;
    type Body = TrackedBody;

    async fn verify_password(&self, user: &str, password: &Secret) -> Result<(), AuthError> {
        let Ok(password) = std::str::from_utf8(password.expose()) else {
            return Err(AuthError::Invalid);
        };
        match self.store.verify_login(user, password).await {
            Ok(outcome) => {
                tracing::info!(user, via = ?outcome.via, "pop3 login");
                self.record_login(user, LoginKind::from_via(&outcome.via));
                Ok(())
            }
            Err(StoreError::AuthFailed) => {
                tracing::info!(user, "pop3 login failed");
                Err(AuthError::Invalid)
            }
            Err(e) => Err(temporary(&e)),
        }
    }

    async fn plaintext_secret(&self, user: &str) -> Result<Option<Secret>, AuthError> {
        let account = match self.store.find_account(user).await {
            Ok(Some(a)) if a.has_plaintext_secret => a,
            Ok(_) => return Ok(None),
            Err(e) => return Err(temporary(&e)),
        };
        match self.store.plaintext_secret(account.id).await {
            Ok(Some(s)) => {
                self.record_login(user, LoginKind::Apop);
                Ok(Some(secret(Bytes::from(s.0.into_bytes()))))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(temporary(&e)),
        }
    }

    async fn open_maildrop(&self, user: &str) -> Result<(Maildrop, Vec<MessageInfo>), AuthError> {
        let kind = self.take_login(user);
        let account = match self.store.find_account(user).await {
            Ok(Some(a)) => a,
            Ok(None) => return Err(AuthError::Invalid),
            Err(e) => return Err(temporary(&e)),
        };
        if !account.allows(Protocol::Pop3) {
            tracing::info!(user, "pop3 refused: access disabled");
            return Err(AuthError::Denied(POP3_DISABLED.into()));
        }
        let policy = match crate::policy::check_login(
            &*self.store,
            &account,
            sync_policy::access::Protocol::Pop3,
            kind,
            true,
        )
        .await
        {
            Ok(Ok(p)) => p,
            Ok(Err(refusal)) => {
                tracing::info!(user, reason = %refusal, "pop3 refused by policy");
                return Err(AuthError::Denied(refusal.text()));
            }
            Err(e) => return Err(temporary(&e)),
        };
        let lock = {
            let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            if !sessions.insert(account.id) {
                return Err(AuthError::InUse);
            }
            SessionLock {
                account: account.id,
                sessions: Arc::clone(&self.sessions),
            }
        };
        let (view, facts, refs) = crate::policy::pop3_view(&*self.store, account.id, &policy)
            .await
            .map_err(|e| temporary(&e))?;
        let uidvalidity = facts
            .iter()
            .map(|f| (f.key.mailbox, f.uidvalidity))
            .collect();
        let listing = view
            .entries
            .iter()
            .map(|e| MessageInfo::new(e.size, e.uidl.clone()))
            .collect();
        Ok((
            Maildrop {
                account: account.id,
                policy,
                view,
                refs,
                uidvalidity,
                retrieved: Arc::new(Mutex::new(BTreeSet::new())),
                prefetched: None,
                _lock: lock,
            },
            listing,
        ))
    }

    async fn read_message(&self, maildrop: &mut Maildrop, index: usize) -> io::Result<TrackedBody> {
        let ahead = match maildrop.prefetched.take() {
            Some((i, body)) if i == index => Some(body),
            _ => None,
        };
        let entry = maildrop
            .view
            .entries
            .get(index)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such message"))?;
        let inner = match ahead {
            Some(body) => body,
            None => {
                let mailbox = *maildrop
                    .refs
                    .get(&entry.key.mailbox)
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such mailbox"))?;
                self.store
                    .open_body(mailbox, entry.key.uid)
                    .await
                    .map_err(|e| match e {
                        StoreError::NoSuchMessage(_) => io::Error::new(
                            io::ErrorKind::NotFound,
                            "the message was deleted by another session",
                        ),
                        other => io::Error::other(other.to_string()),
                    })?
            }
        };
        Ok(TrackedBody {
            inner,
            key: entry.key,
            retrieved: Arc::clone(&maildrop.retrieved),
        })
    }

    /// Reads message `index` into memory when it is small enough for the store to hand it
    /// out in one read ([`mailstore_core::INLINE_READ_MAX`]); larger ones stay streamed
    /// and are opened when asked for. A failure here is forgotten: `read_message` tries
    /// again and reports it.
    async fn prefetch(&self, maildrop: &mut Maildrop, index: usize) {
        maildrop.prefetched = None;
        let Some(entry) = maildrop.view.entries.get(index) else {
            return;
        };
        if entry.size > mailstore_core::INLINE_READ_MAX {
            return;
        }
        let Some(&mailbox) = maildrop.refs.get(&entry.key.mailbox) else {
            return;
        };
        if let Ok(body) = self.store.open_body(mailbox, entry.key.uid).await {
            maildrop.prefetched = Some((index, body));
        }
    }

    async fn commit(&self, maildrop: Maildrop, deleted: Vec<usize>) -> io::Result<()> {
        let deleted: BTreeSet<MessageKey> = deleted
            .iter()
            .filter_map(|&i| maildrop.view.entries.get(i).map(|e| e.key))
            .collect();
        let retrieved = maildrop
            .retrieved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let plan = sync_policy::pop3::quit_plan(
            &maildrop.view,
            &deleted,
            &retrieved,
            &maildrop.policy.pop3,
        );
        if plan.is_empty() {
            return Ok(());
        }
        let removed = crate::policy::apply_quit_plan(
            &*self.store,
            maildrop.account,
            &plan,
            &maildrop.refs,
            &maildrop.uidvalidity,
        )
        .await
        .map_err(|e| io::Error::other(e.to_string()))?;
        tracing::info!(
            deleted = removed,
            hidden = plan.hide_from_pop.len(),
            seen = plan.mark_seen.len(),
            "pop3: quit applied"
        );
        Ok(())
    }
}
