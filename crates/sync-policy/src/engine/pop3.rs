//! External POP3 import (IMP-1 .. IMP-5).
//!
//! [`Pop3Import`] is one external account of one user: `run` fetches what
//! [`crate::import::plan_import_run`] says, and the scheduler methods keep the
//! automatic-fetch state ([`crate::import::AutoFetchState`]) in the store.
//!
//! # Crash safety (no loss, no duplicate)
//!
//! Each message goes through three durable steps, each one store write:
//!
//! 1. `imp/<id>/pending` = destination folder + marker (written before the append);
//! 2. the append, which stores the marker as the message's UIDL (`AppendOptions::uidl`,
//!    `i` + 32 hex digits of SHA-256(import id, remote UIDL)) and
//!    `Origin::Imported("pop3:<id>")`. The store refuses a second message with the same
//!    UIDL in a mailbox, atomically with the append;
//! 3. the ledger record `imp/<id>/u/<remote UIDL>`, then the pending record is removed.
//!
//! A crash before 2 leaves no message and no ledger record: the next run fetches the
//! message again. A crash between 2 and 3 leaves a message and the pending record: the next
//! run looks for the marker in the pending folder, finds the message and writes the ledger
//! record without fetching it again. A crash after 3 leaves a pending record whose message
//! is in the ledger: it is dropped. The remote message is deleted (DELE, committed by QUIT)
//! only after step 3, so it is never deleted before it is stored here. The engine refuses a
//! second concurrent run of the same import account in this process
//! ([`EngineError::Busy`]); the server must not run the same account from two processes.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use mail_net::TlsConnector;
use mail_sasl::Mechanism;
use mail_sasl::client::ClientCredentials;
use mailstore_core::{
    AccountId, AppendOptions, AppendSink, CreateMailbox, Flags, MailStore, MailboxRef, Origin,
    SpecialUse, StoreError, SystemFlags, UidSet,
};
use pop3_proto::tokio::Client;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

use super::{Auth, Credentials, EngineError, check_id, kv, short_hash, to_ts};
use crate::UnixTime;
use crate::filter::{AddFlag, FilterSettings, Header};
use crate::import::{
    AutoFetchState, FailureOutcome, ImportAccountSettings, LedgerEntry, MAX_IMPORT_ACCOUNTS,
    RemoteMessage, TlsMode, plan_import_run,
};

/// Settings key of the user's list of external accounts.
const ACCOUNTS_KEY: &str = "imp/accounts";

/// An external account as the user registered it: an id of the caller's choice (used in
/// the store's keys; 1 to 64 characters of `A-Za-z0-9-_.`) and its settings.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredImport {
    /// The id.
    pub id: String,
    /// The settings.
    pub settings: ImportAccountSettings,
}

impl RegisteredImport {
    /// An entry.
    #[must_use]
    pub fn new(id: impl Into<String>, settings: ImportAccountSettings) -> Self {
        RegisteredImport {
            id: id.into(),
            settings,
        }
    }
}

#[derive(Serialize, Deserialize, Default)]
struct AccountList {
    #[serde(default)]
    accounts: Vec<RegisteredImport>,
}

/// The user's external accounts, in registration order.
///
/// # Errors
/// The store's refusal, or a stored list that does not parse.
pub async fn load_accounts<S: MailStore>(
    store: &S,
    account: AccountId,
) -> Result<Vec<RegisteredImport>, EngineError> {
    let Some(text) = kv::get(store, account, ACCOUNTS_KEY).await? else {
        return Ok(Vec::new());
    };
    let list: AccountList = toml::from_str(&text)
        .map_err(|e| EngineError::Remote(format!("stored import account list: {e}")))?;
    Ok(list.accounts)
}

/// Replaces the user's external accounts after checking them (IMP-1: at most
/// [`MAX_IMPORT_ACCOUNTS`], each valid, none twice, ids unique).
///
/// # Errors
/// [`EngineError::Policy`] for invalid settings, [`EngineError::InvalidId`], the store's
/// refusal.
pub async fn save_accounts<S: MailStore>(
    store: &S,
    account: AccountId,
    accounts: &[RegisteredImport],
) -> Result<(), EngineError> {
    let settings: Vec<ImportAccountSettings> =
        accounts.iter().map(|a| a.settings.clone()).collect();
    ImportAccountSettings::validate_all(&settings)?;
    let mut ids = HashSet::new();
    for a in accounts {
        check_id(&a.id)?;
        if !ids.insert(a.id.as_str()) {
            return Err(EngineError::InvalidId(a.id.clone()));
        }
    }
    let text = toml::to_string(&AccountList {
        accounts: accounts.to_vec(),
    })
    .map_err(|e| EngineError::Remote(format!("cannot serialise the account list: {e}")))?;
    kv::put(store, account, ACCOUNTS_KEY, &text).await
}

/// Registers one more external account (IMP-1: refused beyond
/// [`MAX_IMPORT_ACCOUNTS`]).
///
/// # Errors
/// As [`save_accounts`].
pub async fn add_account<S: MailStore>(
    store: &S,
    account: AccountId,
    entry: RegisteredImport,
) -> Result<(), EngineError> {
    let mut list = load_accounts(store, account).await?;
    if list.len() >= MAX_IMPORT_ACCOUNTS {
        return Err(crate::PolicyError::InvalidImport {
            reason: format!("at most {MAX_IMPORT_ACCOUNTS} external accounts can be registered"),
        }
        .into());
    }
    list.push(entry);
    save_accounts(store, account, &list).await
}

/// How to reach and log in to the external POP3 account.
#[derive(Clone)]
#[non_exhaustive]
pub struct Pop3Source {
    /// The account's settings (server, destination, options).
    pub settings: ImportAccountSettings,
    /// Login.
    pub credentials: Credentials,
    /// Log in with APOP (RFC 1939 7) instead of USER/PASS; needs a password.
    pub apop: bool,
    /// TLS client configuration; required unless the server's TLS mode is
    /// [`TlsMode::None`].
    pub connector: Option<TlsConnector>,
    /// Time limit for connecting and for each answer. Default 60 s.
    pub timeout: Duration,
}

impl std::fmt::Debug for Pop3Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pop3Source")
            .field("settings", &self.settings)
            .field("credentials", &self.credentials)
            .field("apop", &self.apop)
            .field("connector", &self.connector.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Pop3Source {
    /// A source with USER/PASS, no TLS connector and a 60 s time limit.
    #[must_use]
    pub fn new(settings: ImportAccountSettings, credentials: Credentials) -> Self {
        Pop3Source {
            settings,
            credentials,
            apop: false,
            connector: None,
            timeout: Duration::from_secs(60),
        }
    }
}

/// One message stored by a run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportedMessage {
    /// Its UIDL on the remote server.
    pub remote_uidl: String,
    /// The folder it went to (after filters).
    pub folder: String,
    /// Its UID there.
    pub uid: u32,
}

/// What one run did.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ImportReport {
    /// Messages stored, in fetch order.
    pub imported: Vec<ImportedMessage>,
    /// New messages too large to import (IMP-3); reported once, then remembered.
    pub skipped_too_large: Vec<RemoteMessage>,
    /// Messages the ledger already knew.
    pub already_imported: usize,
    /// Messages deleted on the remote server (IMP-4).
    pub remote_deleted: usize,
    /// Messages an interrupted earlier run had stored, recognised and recorded without
    /// fetching them again.
    pub recovered: usize,
}

type BusyKey = (usize, u64, String);

fn busy_set() -> &'static Mutex<HashSet<BusyKey>> {
    static SET: OnceLock<Mutex<HashSet<BusyKey>>> = OnceLock::new();
    SET.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Held while an import or migration of one account runs; a second one is refused.
pub(crate) struct BusyGuard(BusyKey);

/// Takes the in-process guard for `what` of `account` in this store (told apart by its
/// address, which is stable while the borrow lives).
pub(crate) fn busy<S>(store: &S, account: AccountId, what: &str) -> Result<BusyGuard, EngineError> {
    let key = (std::ptr::from_ref(store).addr(), account.0, what.to_owned());
    let mut set = busy_set().lock().unwrap_or_else(|e| e.into_inner());
    if !set.insert(key.clone()) {
        return Err(EngineError::Busy(what.to_owned()));
    }
    Ok(BusyGuard(key))
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let mut set = busy_set().lock().unwrap_or_else(|e| e.into_inner());
        set.remove(&self.0);
    }
}

/// One external POP3 account of one user, bound to the store.
#[derive(Debug)]
pub struct Pop3Import<'a, S> {
    store: &'a S,
    account: AccountId,
    id: String,
}

fn ledger_prefix(id: &str) -> String {
    format!("imp/{id}/u/")
}

fn encode_entry(e: LedgerEntry) -> String {
    match e {
        LedgerEntry::Imported { at } => format!("imported {}", at.0),
        LedgerEntry::Skipped { at } => format!("skipped {}", at.0),
    }
}

fn decode_entry(v: &str) -> Option<LedgerEntry> {
    let (kind, at) = v.split_once(' ')?;
    let at = UnixTime(at.trim().parse().ok()?);
    match kind {
        "imported" => Some(LedgerEntry::Imported { at }),
        "skipped" => Some(LedgerEntry::Skipped { at }),
        _ => None,
    }
}

impl<'a, S: MailStore> Pop3Import<'a, S> {
    /// Binds the import account `id` of store account `account`.
    ///
    /// # Errors
    /// [`EngineError::InvalidId`].
    pub fn new(store: &'a S, account: AccountId, id: &str) -> Result<Self, EngineError> {
        check_id(id)?;
        Ok(Pop3Import {
            store,
            account,
            id: id.to_owned(),
        })
    }

    fn origin(&self) -> Origin {
        Origin::Imported(format!("pop3:{}", self.id))
    }

    fn marker(&self, uidl: &str) -> String {
        format!(
            "i{}",
            short_hash(&[self.id.as_bytes(), uidl.as_bytes()], 16)
        )
    }

    fn pending_key(&self) -> String {
        format!("imp/{}/pending", self.id)
    }

    fn auto_key(&self) -> String {
        format!("imp/{}/auto", self.id)
    }

    /// The UIDL ledger: every remote message this account imported or skipped.
    ///
    /// # Errors
    /// The store's refusal.
    pub async fn ledger(&self) -> Result<BTreeMap<String, LedgerEntry>, EngineError> {
        let prefix = ledger_prefix(&self.id);
        let mut out = BTreeMap::new();
        for (k, v) in kv::scan(self.store, self.account, &prefix).await? {
            if let (Some(uidl), Some(e)) = (k.strip_prefix(&prefix), decode_entry(&v)) {
                out.insert(uidl.to_owned(), e);
            }
        }
        Ok(out)
    }

    async fn record(&self, uidl: &str, e: LedgerEntry) -> Result<(), EngineError> {
        let key = format!("{}{uidl}", ledger_prefix(&self.id));
        kv::put(self.store, self.account, &key, &encode_entry(e)).await
    }

    /// Finishes what an interrupted run left (see the module docs); returns the number of
    /// messages found stored and now recorded.
    async fn recover(
        &self,
        ledger: &mut BTreeMap<String, LedgerEntry>,
        now: UnixTime,
    ) -> Result<usize, EngineError> {
        let key = self.pending_key();
        let Some(p) = kv::get(self.store, self.account, &key).await? else {
            return Ok(0);
        };
        let mut lines = p.splitn(3, '\n');
        let (folder, marker, uidl) = (
            lines.next().unwrap_or(""),
            lines.next().unwrap_or(""),
            lines.next().unwrap_or(""),
        );
        let mut recovered = 0;
        if !uidl.is_empty() && !ledger.contains_key(uidl) {
            let found = match self.store.mailbox(self.account, folder).await {
                Ok(mbx) => self
                    .store
                    .message_meta(mbx.mailbox, &UidSet::all())
                    .await?
                    .iter()
                    .any(|m| m.uidl == marker),
                Err(StoreError::NoSuchMailbox(_)) => false,
                Err(e) => return Err(e.into()),
            };
            if found {
                let e = LedgerEntry::Imported { at: now };
                self.record(uidl, e).await?;
                ledger.insert(uidl.to_owned(), e);
                recovered = 1;
            }
        }
        kv::delete(self.store, self.account, &key).await?;
        Ok(recovered)
    }

    /// Runs one import: connects, logs in, fetches what the plan says, stores each message
    /// with its ledger record, deletes on the remote server what is due, and reports
    /// messages that are too large with a notice in the INBOX. `filters` are the user's
    /// sorting rules, applied when the account's `apply_filters` is set.
    ///
    /// # Errors
    /// Connection, login, protocol and store errors. Everything stored before the error
    /// stays stored and recorded.
    pub async fn run(
        &self,
        source: &Pop3Source,
        filters: Option<&FilterSettings>,
        now: UnixTime,
    ) -> Result<ImportReport, EngineError> {
        let _busy = busy(self.store, self.account, &format!("the import {}", self.id))?;
        source.settings.validate()?;
        let mut ledger = self.ledger().await?;
        let mut report = ImportReport {
            recovered: self.recover(&mut ledger, now).await?,
            ..ImportReport::default()
        };
        let mut client = connect(source).await?;
        let remote = listing(&mut client, source).await?;
        let plan = plan_import_run(&remote, &ledger, &source.settings, now);
        report.already_imported = remote
            .iter()
            .filter(|m| ledger.contains_key(&m.uidl))
            .map(|m| m.uidl.as_str())
            .collect::<HashSet<_>>()
            .len();
        let by_msgno: BTreeMap<u32, &RemoteMessage> = remote.iter().map(|m| (m.msgno, m)).collect();
        let server = source.settings.server.endpoint();
        let server = format!("{}:{}", server.0, server.1);
        let remote_err = |e: pop3_proto::Error| EngineError::Connect {
            server: server.clone(),
            reason: e.to_string(),
        };

        for m in &plan.skip_too_large {
            self.record(&m.uidl, LedgerEntry::Skipped { at: now })
                .await?;
            report.skipped_too_large.push(m.clone());
        }
        let rules = filters
            .filter(|_| source.settings.apply_filters)
            .map(|f| f.rules.as_slice())
            .filter(|r| !r.is_empty());
        for &msgno in &plan.fetch {
            let Some(m) = by_msgno.get(&msgno) else {
                continue;
            };
            let stored = self.fetch_one(&mut client, source, rules, m, now).await;
            match stored {
                Ok(Some(done)) => {
                    report.imported.push(done);
                    if plan.delete_fetched {
                        client.dele(msgno).await.map_err(remote_err)?;
                        report.remote_deleted += 1;
                    }
                }
                Ok(None) => report.skipped_too_large.push((*m).clone()),
                Err(e) => return Err(e),
            }
        }
        for &msgno in &plan.delete_remote {
            client.dele(msgno).await.map_err(remote_err)?;
            report.remote_deleted += 1;
        }
        client.quit().await.map_err(remote_err)?;
        for uidl in &plan.forget {
            kv::delete(
                self.store,
                self.account,
                &format!("{}{uidl}", ledger_prefix(&self.id)),
            )
            .await?;
        }
        if !report.skipped_too_large.is_empty() {
            let names: Vec<String> = report
                .skipped_too_large
                .iter()
                .map(|m| format!("- message {} ({} bytes)", m.uidl, m.size))
                .collect();
            let (host, _, _) = source.settings.server.endpoint();
            let text = format!(
                "{} message(s) on {} for {} were not imported because they are {} bytes or larger:\n{}\n\
                 Download them with another mail program or ask the sender for a smaller copy.",
                report.skipped_too_large.len(),
                host,
                source.settings.username,
                source.settings.size_limit,
                names.join("\n")
            );
            super::deliver_notice(
                self.store,
                self.account,
                "Mail import: large messages were skipped",
                &text,
                now,
            )
            .await?;
        }
        Ok(report)
    }

    /// Stores one message; `Ok(None)` when the server sent more than the size limit (it
    /// lied in LIST): the message is recorded as skipped.
    async fn fetch_one(
        &self,
        client: &mut Client<TcpStream>,
        source: &Pop3Source,
        rules: Option<&[crate::filter::FilterRule]>,
        m: &RemoteMessage,
        now: UnixTime,
    ) -> Result<Option<ImportedMessage>, EngineError> {
        let settings = &source.settings;
        let server = settings.server.endpoint();
        let server = format!("{}:{}", server.0, server.1);
        let remote_err = |e: pop3_proto::Error| EngineError::Connect {
            server: server.clone(),
            reason: e.to_string(),
        };
        let mut folder = settings.destination_folder.clone();
        let mut flags = Flags::new();
        if let Some(rules) = rules {
            let head = client.top(m.msgno, 0).await.map_err(remote_err)?;
            let outcome = crate::filter::evaluate(rules, &header_fields(&head), m.size);
            if outcome.delete {
                folder =
                    special_folder(self.store, self.account, SpecialUse::Trash, "Trash").await?;
            } else if let Some(f) = outcome.folder {
                folder = f;
            }
            for f in outcome.add_flags {
                flags.system = flags.system.union(match f {
                    AddFlag::Seen => SystemFlags::SEEN,
                    AddFlag::Flagged => SystemFlags::FLAGGED,
                });
            }
        }
        if let Some(label) = &settings.label {
            let kw: String = label
                .chars()
                .filter(|c| c.is_ascii_graphic() && !"(){%*\"\\]".contains(*c))
                .collect();
            if !kw.is_empty() {
                flags.insert_keyword(kw);
            }
        }
        let mbx = ensure_folder(self.store, self.account, &folder).await?;
        let marker = self.marker(&m.uidl);
        kv::put(
            self.store,
            self.account,
            &self.pending_key(),
            &format!("{folder}\n{marker}\n{}", m.uidl),
        )
        .await?;
        let opts = AppendOptions::with_flags(flags)
            .received(to_ts(now))
            .origin(self.origin())
            .uidl(marker.clone());
        let mut sink = self.store.begin_append(mbx, opts).await?;
        let mut body = match client.retr_stream(m.msgno).await {
            Ok(b) => b,
            Err(e) => {
                sink.abort().await;
                return Err(remote_err(e));
            }
        };
        let mut size = 0u64;
        let mut too_big = false;
        loop {
            match body.next_chunk().await {
                Ok(Some(chunk)) => {
                    size += chunk.len() as u64;
                    if size >= settings.size_limit {
                        too_big = true;
                        continue; // drain the rest of the body, store nothing
                    }
                    if let Err(e) = sink.write(&chunk).await {
                        // Drain so the session stays usable, then fail.
                        while let Ok(Some(_)) = body.next_chunk().await {}
                        sink.abort().await;
                        return Err(e.into());
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    sink.abort().await;
                    return Err(remote_err(e));
                }
            }
        }
        if too_big {
            sink.abort().await;
            self.record(&m.uidl, LedgerEntry::Skipped { at: now })
                .await?;
            kv::delete(self.store, self.account, &self.pending_key()).await?;
            return Ok(None);
        }
        let uid = match sink.commit().await {
            Ok(o) => o.uid,
            // The marker is already there: an earlier run stored it (see module docs).
            Err(StoreError::InvalidArgument(t)) if t.contains("already used") => 0,
            Err(e) => return Err(e.into()),
        };
        self.record(&m.uidl, LedgerEntry::Imported { at: now })
            .await?;
        kv::delete(self.store, self.account, &self.pending_key()).await?;
        Ok(Some(ImportedMessage {
            remote_uidl: m.uidl.clone(),
            folder,
            uid,
        }))
    }

    /// The automatic-fetch state (IMP-5).
    ///
    /// # Errors
    /// The store's refusal.
    pub async fn auto_state(&self) -> Result<AutoFetchState, EngineError> {
        Ok(kv::get(self.store, self.account, &self.auto_key())
            .await?
            .and_then(|t| toml::from_str(&t).ok())
            .unwrap_or_default())
    }

    async fn save_auto(&self, st: &AutoFetchState) -> Result<(), EngineError> {
        let text = toml::to_string(st)
            .map_err(|e| EngineError::Remote(format!("cannot serialise the fetch state: {e}")))?;
        kv::put(self.store, self.account, &self.auto_key(), &text).await
    }

    /// When the next automatic run is due (`None`: automatic fetch is off, by the user
    /// or after [`crate::import::MAX_CONSECUTIVE_FAILURES`] failures).
    ///
    /// # Errors
    /// The store's refusal.
    pub async fn next_due(
        &self,
        settings: &ImportAccountSettings,
    ) -> Result<Option<UnixTime>, EngineError> {
        Ok(self.auto_state().await?.next_due(settings))
    }

    /// Records a successful run at `now`.
    ///
    /// # Errors
    /// The store's refusal.
    pub async fn record_success(&self, now: UnixTime) -> Result<(), EngineError> {
        let mut st = self.auto_state().await?;
        st.record_success(now);
        self.save_auto(&st).await
    }

    /// Records a failed run; when automatic fetch turns itself off, the reason is stored
    /// and a notice goes to the user's INBOX.
    ///
    /// # Errors
    /// The store's refusal.
    pub async fn record_failure(
        &self,
        now: UnixTime,
        error: &str,
    ) -> Result<FailureOutcome, EngineError> {
        let mut st = self.auto_state().await?;
        let outcome = st.record_failure(now, error);
        self.save_auto(&st).await?;
        if let FailureOutcome::Disabled { message } = &outcome {
            super::deliver_notice(
                self.store,
                self.account,
                "Mail import: automatic fetch was turned off",
                message,
                now,
            )
            .await?;
        }
        Ok(outcome)
    }

    /// The user turned automatic fetch on again.
    ///
    /// # Errors
    /// The store's refusal.
    pub async fn reenable(&self) -> Result<(), EngineError> {
        let mut st = self.auto_state().await?;
        st.reenable();
        self.save_auto(&st).await
    }

    /// The scheduler's entry point: if a run is due at `now`, runs it and records the
    /// outcome; `None` if nothing was due.
    ///
    /// # Errors
    /// The store's refusal while recording. The run's own error is in the inner result.
    pub async fn run_if_due(
        &self,
        source: &Pop3Source,
        filters: Option<&FilterSettings>,
        now: UnixTime,
    ) -> Result<Option<Result<ImportReport, EngineError>>, EngineError> {
        match self.next_due(&source.settings).await? {
            Some(due) if due <= now => {}
            _ => return Ok(None),
        }
        let result = self.run(source, filters, now).await;
        match &result {
            Ok(_) => self.record_success(now).await?,
            // Our own store failing, or a run already in progress, is not the external
            // account's fault.
            Err(EngineError::Store(_) | EngineError::Busy(_)) => {}
            Err(e) => {
                let _ = self.record_failure(now, &e.to_string()).await?;
            }
        }
        Ok(Some(result))
    }
}

async fn connect(source: &Pop3Source) -> Result<Client<TcpStream>, EngineError> {
    let (host, port, tls) = source.settings.server.endpoint();
    let server = format!("{host}:{port}");
    let err = |reason: String| EngineError::Connect {
        server: server.clone(),
        reason,
    };
    let connector = || {
        source
            .connector
            .as_ref()
            .ok_or_else(|| err("TLS is required but no TLS client configuration was given".into()))
    };
    let fut = async {
        let mut c = match tls {
            TlsMode::Implicit => Client::connect_tls((host, port), connector()?, host)
                .await
                .map_err(|e| err(e.to_string()))?,
            TlsMode::StartTls => {
                let mut c = Client::connect((host, port))
                    .await
                    .map_err(|e| err(e.to_string()))?;
                c.stls(connector()?, host)
                    .await
                    .map_err(|e| err(format!("STLS: {e}")))?;
                c
            }
            _ => Client::connect((host, port))
                .await
                .map_err(|e| err(e.to_string()))?,
        };
        c.set_timeout(source.timeout);
        Ok::<_, EngineError>(c)
    };
    let mut c = tokio::time::timeout(source.timeout, fut)
        .await
        .map_err(|_| err("timed out".into()))??;
    let user = source.credentials.username.as_str();
    let auth_err = |e: pop3_proto::Error| match e {
        pop3_proto::Error::Server { .. } => EngineError::Auth {
            reason: e.to_string(),
        },
        other => err(other.to_string()),
    };
    match &source.credentials.auth {
        Auth::Password(p) if source.apop => c.apop(user, p.expose()).await.map_err(auth_err)?,
        Auth::Password(p) => c.login(user, p.expose()).await.map_err(auth_err)?,
        Auth::XOAuth2(t) => c
            .auth(
                Mechanism::XOAuth2,
                ClientCredentials::new(user, mail_sasl::Secret::new(t.expose().clone())),
            )
            .await
            .map_err(auth_err)?,
        Auth::OAuthBearer(t) => c
            .auth(
                Mechanism::OAuthBearer,
                ClientCredentials::new(user, mail_sasl::Secret::new(t.expose().clone()))
                    .with_host_port(host, port),
            )
            .await
            .map_err(auth_err)?,
    }
    Ok(c)
}

/// UIDL joined with LIST (sizes) by message number.
async fn listing(
    client: &mut Client<TcpStream>,
    source: &Pop3Source,
) -> Result<Vec<RemoteMessage>, EngineError> {
    let uidl = client.uidl().await.map_err(|e| {
        EngineError::Unsupported(format!(
            "UIDL failed ({e}); without UIDL the import cannot tell new mail from old"
        ))
    })?;
    let (host, port, _) = source.settings.server.endpoint();
    let sizes: BTreeMap<u32, u64> = client
        .list()
        .await
        .map_err(|e| EngineError::Connect {
            server: format!("{host}:{port}"),
            reason: e.to_string(),
        })?
        .into_iter()
        .map(|l| (l.msg, l.size))
        .collect();
    Ok(uidl
        .into_iter()
        .filter_map(|u| {
            Some(RemoteMessage {
                msgno: u.msg,
                uidl: String::from_utf8(u.uid.to_vec()).ok()?,
                size: *sizes.get(&u.msg)?,
            })
        })
        .collect())
}

/// The mailbox called `name`, created if missing.
pub(crate) async fn ensure_folder<S: MailStore>(
    store: &S,
    account: AccountId,
    name: &str,
) -> Result<MailboxRef, EngineError> {
    match store.mailbox(account, name).await {
        Ok(m) => Ok(m.mailbox),
        Err(StoreError::NoSuchMailbox(_)) => {
            match store
                .create_mailbox(account, name, CreateMailbox::default().subscribed())
                .await
            {
                Ok(m) => Ok(m.mailbox),
                Err(StoreError::MailboxExists(_)) => {
                    Ok(store.mailbox(account, name).await?.mailbox)
                }
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The name of the account's folder with this special use, or `fallback`.
pub(crate) async fn special_folder<S: MailStore>(
    store: &S,
    account: AccountId,
    use_: SpecialUse,
    fallback: &str,
) -> Result<String, EngineError> {
    Ok(store
        .list_mailboxes(account)
        .await?
        .into_iter()
        .find(|m| m.special_use == Some(use_))
        .map_or_else(|| fallback.to_owned(), |m| m.name))
}

/// The header fields of a message (unfolded), with `Subject` decoded (RFC 2047), for the
/// filter rules.
#[must_use]
pub fn header_fields(raw: &[u8]) -> Vec<Header> {
    let end = find_header_end(raw);
    let block = raw.get(..end).unwrap_or(raw);
    let text = String::from_utf8_lossy(block);
    let mut out: Vec<Header> = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.value.push(' ');
                last.value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push(Header::new(name.trim(), value.trim()));
        }
    }
    if let Some(subject) = mail_parser::MessageParser::default()
        .parse_headers(block)
        .and_then(|m| m.subject().map(str::to_owned))
    {
        for h in out
            .iter_mut()
            .filter(|h| h.name.eq_ignore_ascii_case("Subject"))
        {
            h.value.clone_from(&subject);
        }
    }
    out
}

fn find_header_end(raw: &[u8]) -> usize {
    let mut pos = 0;
    while pos < raw.len() {
        let rest = raw.get(pos..).unwrap_or_default();
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return raw.len();
        };
        let line = rest.get(..nl).unwrap_or_default();
        if line.is_empty() || line == b"\r" {
            return pos + nl + 1;
        }
        pos += nl + 1;
    }
    raw.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn prop_ledger_entry_roundtrip(at in proptest::prelude::any::<i64>(), skipped in proptest::prelude::any::<bool>()) {
            let e = if skipped {
                LedgerEntry::Skipped { at: UnixTime(at) }
            } else {
                LedgerEntry::Imported { at: UnixTime(at) }
            };
            proptest::prop_assert_eq!(decode_entry(&encode_entry(e)), Some(e));
        }

        #[test]
        fn prop_header_fields_unfold(name in "[A-Za-z][A-Za-z0-9-]{0,15}", a in "[ -~]{0,30}", b in "[!-~][ -~]{0,30}") {
            let raw = format!("{name}: {a}\r\n\t{b}\r\n\r\nbody: not a header\r\n");
            let h = header_fields(raw.as_bytes());
            proptest::prop_assert_eq!(h.len(), 1);
            proptest::prop_assert!(h[0].name == name);
            if !name.eq_ignore_ascii_case("subject") {
                let want = format!("{} {}", a.trim(), b.trim());
                proptest::prop_assert_eq!(h[0].value.trim(), want.trim());
            }
        }
    }

    #[test]
    fn ledger_entries_decode_strictly() {
        assert_eq!(
            decode_entry("imported 5"),
            Some(LedgerEntry::Imported { at: UnixTime(5) })
        );
        assert_eq!(
            decode_entry("skipped -3"),
            Some(LedgerEntry::Skipped { at: UnixTime(-3) })
        );
        assert_eq!(decode_entry("imported"), None);
        assert_eq!(decode_entry("gone 5"), None);
    }
}
