//! POP3 over the store: a [`pop3_proto::tokio::Backend`] whose maildrop is the account's
//! INBOX.
//!
//! - Login is the full address (or an alias); the account password and every app password
//!   work (USER/PASS and SASL PLAIN/LOGIN). APOP (and CRAM-MD5) work only for an account that
//!   opted in to a plaintext-equivalent secret.
//! - An account whose POP3 access is disabled is refused after a correct password, with a
//!   text that says so (a wrong password never reveals the flag).
//! - One POP3 session per account at a time (`-ERR [IN-USE]`), as RFC 1939 asks.
//! - RETR streams from the store's file-backed body reader.
//! - QUIT after DELE expunges the messages durably before the `+OK`.

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use mailstore_core::{AccountId, BodyReader, MailStore, MailboxRef, Protocol, StoreError, UidSet};
use pop3_proto::tokio::{AuthError, Backend};
use pop3_proto::types::{MessageInfo, Secret, is_valid_uid, secret};

/// The text sent when an account may not use POP3.
pub const POP3_DISABLED: &str =
    "POP3 access is disabled for this account; ask the administrator to enable it";

/// The POP3 backend over a shared store.
#[derive(Debug)]
pub struct StoreBackend<S> {
    store: Arc<S>,
    sessions: Arc<Mutex<HashSet<AccountId>>>,
}

impl<S> Clone for StoreBackend<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            sessions: Arc::clone(&self.sessions),
        }
    }
}

impl<S: MailStore> StoreBackend<S> {
    /// A backend over `store`.
    pub fn new(store: Arc<S>) -> Self {
        Self {
            store,
            sessions: Arc::new(Mutex::new(HashSet::new())),
        }
    }
}

/// A locked INBOX: the UIDs in listing order. Dropping it releases the lock.
#[derive(Debug)]
pub struct Maildrop {
    mailbox: MailboxRef,
    uids: Vec<u32>,
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

/// The refusal for an account without POP3 access.
///
/// pop3-proto's `AuthError` has no variant that carries a text under `[AUTH]`, so this is
/// `-ERR [SYS/PERM] <POP3_DISABLED>`: a permanent refusal clients show to the user.
fn access_denied() -> AuthError {
    AuthError::Permanent(POP3_DISABLED.into())
}

fn temporary(e: &StoreError) -> AuthError {
    tracing::warn!("pop3: store error: {e}");
    AuthError::Temporary("the mail store is unavailable, try again later".into())
}

impl<S: MailStore> Backend for StoreBackend<S> {
    type Maildrop = Maildrop;
    type Body = BodyReader;

    async fn verify_password(&self, user: &str, password: &Secret) -> Result<(), AuthError> {
        let Ok(password) = std::str::from_utf8(password.expose()) else {
            return Err(AuthError::Invalid);
        };
        match self.store.verify_login(user, password).await {
            Ok(outcome) => {
                tracing::info!(user, via = ?outcome.via, "pop3 login");
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
            Ok(Some(s)) => Ok(Some(secret(Bytes::from(s.0.into_bytes())))),
            Ok(None) => Ok(None),
            Err(e) => Err(temporary(&e)),
        }
    }

    async fn open_maildrop(&self, user: &str) -> Result<(Maildrop, Vec<MessageInfo>), AuthError> {
        let account = match self.store.find_account(user).await {
            Ok(Some(a)) => a,
            Ok(None) => return Err(AuthError::Invalid),
            Err(e) => return Err(temporary(&e)),
        };
        if !account.allows(Protocol::Pop3) {
            tracing::info!(user, "pop3 refused: access disabled");
            return Err(access_denied());
        }
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
        let inbox = self
            .store
            .mailbox(account.id, "INBOX")
            .await
            .map_err(|e| temporary(&e))?;
        let metas = self
            .store
            .message_meta(inbox.mailbox, &UidSet::all())
            .await
            .map_err(|e| temporary(&e))?;
        let mut uids = Vec::with_capacity(metas.len());
        let mut listing = Vec::with_capacity(metas.len());
        for m in metas {
            let uidl = if is_valid_uid(m.uidl.as_bytes()) {
                m.uidl.clone()
            } else {
                format!("{}.{}", inbox.uidvalidity, m.uid)
            };
            uids.push(m.uid);
            listing.push(MessageInfo::new(m.size, uidl));
        }
        Ok((
            Maildrop {
                mailbox: inbox.mailbox,
                uids,
                _lock: lock,
            },
            listing,
        ))
    }

    async fn read_message(&self, maildrop: &mut Maildrop, index: usize) -> io::Result<BodyReader> {
        let uid = *maildrop
            .uids
            .get(index)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such message"))?;
        self.store
            .open_body(maildrop.mailbox, uid)
            .await
            .map_err(|e| match e {
                StoreError::NoSuchMessage(_) => io::Error::new(
                    io::ErrorKind::NotFound,
                    "the message was deleted by another session",
                ),
                other => io::Error::other(other.to_string()),
            })
    }

    async fn commit(&self, maildrop: Maildrop, deleted: Vec<usize>) -> io::Result<()> {
        let set: UidSet = deleted
            .iter()
            .filter_map(|&i| maildrop.uids.get(i).copied())
            .collect();
        if set.is_empty() {
            return Ok(());
        }
        let removed = self
            .store
            .expunge(maildrop.mailbox, &set)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        tracing::info!(count = removed.len(), "pop3: messages deleted");
        Ok(())
    }
}
