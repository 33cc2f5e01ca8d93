//! The hosted-service policies of `sync-policy`, wired to the store.
//!
//! `sync-policy` decides; this module reads what it needs from the store (settings blobs,
//! message metadata, app passwords), calls it with the current time, and applies what it
//! returns. See `docs/policy.md` for the keys and the CLI.
//!
//! Settings live in the store's settings area as TOML blobs:
//!
//! | Scope | Key | Type |
//! |---|---|---|
//! | organisation (domain) | `policy.org` | [`OrgSettings`] |
//! | account | `policy.user` | [`UserSettings`] |
//! | account | `policy.security` | [`AccountSecurity`] (two-step verification, federated) |
//! | account | `pop3.hidden` | messages DELEted under keep-original (POP-2) |
//!
//! With nothing stored the reference server behaves as a plain RFC server
//! ([`server_default_org`], [`server_default_user`]): every protocol on, no opt-in, POP3
//! `DELE` deletes. Once a blob is stored, fields missing from it take `sync-policy`'s
//! documented defaults.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mailstore_core::{
    AccountId, AccountInfo, FlagOp, Flags, LoginVia, MailStore, MailboxInfo, MailboxRef,
    MessageMeta, SettingsScope, SpecialUse, StoreError, SystemFlags, UidSet,
};
use serde::{Deserialize, Serialize};
use sync_policy::access::{
    AccountAuthFacts, ConnectionCounter, ConnectionPermit, Credential, LoginAttempt, Protocol,
    Refusal, ServerAuthSettings,
};
use sync_policy::filter::{AddFlag, FilterOutcome, Header};
use sync_policy::pop3::{Pop3View, PopDeletePolicy};
use sync_policy::{EffectivePolicy, FolderRole, MessageFacts, OrgSettings, UnixTime, UserSettings};

/// Settings key of the organisation settings (domain scope).
pub const ORG_KEY: &str = "policy.org";
/// Settings key of the account settings.
pub const USER_KEY: &str = "policy.user";
/// Settings key of the account's security facts.
pub const SECURITY_KEY: &str = "policy.security";
/// Settings key of the POP3 hidden set (keep-original `DELE`s).
pub const HIDDEN_KEY: &str = "pop3.hidden";
/// Bytes of the header block read to evaluate filter rules (the rest is ignored).
pub const MAX_FILTER_HEADER_BYTES: u64 = 64 * 1024;
/// UIDs remembered per mailbox in the POP3 hidden set (oldest dropped first).
pub const MAX_HIDDEN_PER_MAILBOX: usize = 100_000;

/// Facts about how an account signs in, set by the administrator (`policy set --user U
/// security.two_step true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountSecurity {
    /// Two-step verification is on: only app passwords work in mail clients (ACC-4).
    pub two_step: bool,
    /// The account signs in through an identity provider: its account password is not
    /// usable by mail clients, an app password is needed (ACC-4).
    pub federated: bool,
}

/// The organisation settings used when none are stored: `sync-policy`'s defaults except
/// that users need not opt in (a plain server serves every protocol).
#[must_use]
pub fn server_default_org() -> OrgSettings {
    let mut o = OrgSettings::default();
    o.require_user_opt_in = false;
    o
}

/// The account settings used when none are stored: POP3 and IMAP turned on, POP3 `DELE`
/// deletes (RFC 1939), imported mail in the INBOX is served by POP3 like any other,
/// everything else `sync-policy`'s defaults.
#[must_use]
pub fn server_default_user() -> UserSettings {
    let mut u = UserSettings::default();
    u.pop3.enabled = true;
    u.imap.enabled = true;
    u.pop3.on_delete = PopDeletePolicy::FollowClient;
    u.pop3.include_imported = true;
    u
}

/// The domain part of an address, lower-cased.
#[must_use]
pub fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map_or("", |(_, d)| d)
        .to_ascii_lowercase()
}

/// The organisation settings of `domain` (stored, or [`server_default_org`]).
///
/// # Errors
/// A store error, or a stored blob that does not parse.
pub async fn load_org<S: MailStore>(store: &S, domain: &str) -> Result<OrgSettings, StoreError> {
    let scope = SettingsScope::Domain(domain.to_ascii_lowercase());
    Ok(mailstore_core::settings::load(store, &scope, ORG_KEY)
        .await?
        .unwrap_or_else(server_default_org))
}

/// The account settings (stored, or [`server_default_user`]).
///
/// # Errors
/// A store error, or a stored blob that does not parse.
pub async fn load_user<S: MailStore>(
    store: &S,
    account: AccountId,
) -> Result<UserSettings, StoreError> {
    let scope = SettingsScope::Account(account);
    Ok(mailstore_core::settings::load(store, &scope, USER_KEY)
        .await?
        .unwrap_or_else(server_default_user))
}

/// The account's security facts (default: neither two-step nor federated).
///
/// # Errors
/// A store error, or a stored blob that does not parse.
pub async fn load_security<S: MailStore>(
    store: &S,
    account: AccountId,
) -> Result<AccountSecurity, StoreError> {
    let scope = SettingsScope::Account(account);
    Ok(mailstore_core::settings::load(store, &scope, SECURITY_KEY)
        .await?
        .unwrap_or_default())
}

/// The resolved policy of an account.
///
/// # Errors
/// A store error.
pub async fn effective<S: MailStore>(
    store: &S,
    account: &AccountInfo,
) -> Result<EffectivePolicy, StoreError> {
    let org = load_org(store, &domain_of(&account.address)).await?;
    let user = load_user(store, account.id).await?;
    Ok(sync_policy::resolve(&org, &user))
}

/// How a login was made, for [`check_login`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginKind {
    /// The account password.
    Password,
    /// An app password.
    AppPassword,
    /// APOP or CRAM-MD5 with the plaintext-equivalent secret.
    Apop,
}

impl LoginKind {
    /// From the store's answer to `verify_login`.
    #[must_use]
    pub fn from_via(via: &LoginVia) -> Self {
        match via {
            LoginVia::AppPassword(_) => LoginKind::AppPassword,
            _ => LoginKind::Password,
        }
    }
}

/// Checks a login whose credentials are right against the policy (ACC-4, ACC-5): protocol
/// switches of the organisation and the account, the user's opt-in, two-step verification
/// and federated accounts. `Ok(Err(refusal))` is a refusal to send
/// (`refusal.render(protocol)`); `Ok(Ok(policy))` lets the session start with that policy.
///
/// # Errors
/// A store error.
pub async fn check_login<S: MailStore>(
    store: &S,
    account: &AccountInfo,
    protocol: Protocol,
    kind: LoginKind,
    apop_enabled: bool,
) -> Result<Result<EffectivePolicy, Refusal>, StoreError> {
    let policy = effective(store, account).await?;
    let security = load_security(store, account.id).await?;
    let has_app_password = !store.list_app_passwords(account.id).await?.is_empty();
    let facts = AccountAuthFacts {
        two_step_enabled: security.two_step,
        federated: security.federated,
        has_account_password: account.has_password && !security.federated,
        has_app_password,
    };
    let credential = match kind {
        LoginKind::AppPassword => Credential::AppPassword,
        LoginKind::Password | LoginKind::Apop => Credential::AccountPassword,
    };
    let mut attempt = LoginAttempt::new(protocol, credential, facts);
    attempt.apop = kind == LoginKind::Apop;
    let mut server = ServerAuthSettings::default();
    server.apop = apop_enabled;
    Ok(sync_policy::access::check_login(&server, &policy, &attempt).map(|()| policy))
}

/// The folder role of a mailbox.
#[must_use]
pub fn folder_role(info: &MailboxInfo) -> FolderRole {
    if info.name.eq_ignore_ascii_case("INBOX") {
        return FolderRole::Inbox;
    }
    match info.special_use {
        Some(SpecialUse::Junk) => FolderRole::Junk,
        Some(SpecialUse::Sent) => FolderRole::Sent,
        Some(SpecialUse::Drafts) => FolderRole::Drafts,
        Some(SpecialUse::Trash) => FolderRole::Trash,
        Some(SpecialUse::Archive) => FolderRole::Archive,
        _ => FolderRole::Other,
    }
}

/// Builds the policy facts of one stored message.
#[must_use]
pub fn message_facts(
    info: &MailboxInfo,
    meta: &MessageMeta,
    role: FolderRole,
    hidden: bool,
) -> MessageFacts {
    let mut f = MessageFacts::inbox(
        info.mailbox.mailbox.0,
        meta.uid,
        UnixTime(meta.received.0),
        meta.size,
    );
    f.uidvalidity = info.uidvalidity;
    f.folder_role = role;
    f.origin = match &meta.origin {
        mailstore_core::Origin::Imported(source) => sync_policy::Origin::Imported {
            source: source.clone(),
        },
        _ => sync_policy::Origin::Delivered,
    };
    f.seen = meta.flags.system.contains(SystemFlags::SEEN);
    f.deleted = meta.flags.system.contains(SystemFlags::DELETED);
    f.pop_hidden = hidden;
    f.uidl = Some(meta.uidl.clone());
    f
}

/// POP3 messages hidden by keep-original `DELE` (POP-2), per mailbox id, persisted in the
/// account's `pop3.hidden` blob. A UIDVALIDITY change forgets the mailbox's entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HiddenSet {
    /// Mailbox id (decimal) to its hidden UIDs.
    pub mailboxes: BTreeMap<String, HiddenUids>,
}

/// The hidden UIDs of one mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HiddenUids {
    /// The mailbox's UIDVALIDITY when they were hidden.
    pub uidvalidity: u32,
    /// Hidden UIDs, ascending.
    pub uids: BTreeSet<u32>,
}

impl HiddenSet {
    /// Is this message hidden?
    #[must_use]
    pub fn contains(&self, mailbox: u64, uidvalidity: u32, uid: u32) -> bool {
        self.mailboxes
            .get(&mailbox.to_string())
            .is_some_and(|h| h.uidvalidity == uidvalidity && h.uids.contains(&uid))
    }

    /// Hides a message.
    pub fn insert(&mut self, mailbox: u64, uidvalidity: u32, uid: u32) {
        let h = self.mailboxes.entry(mailbox.to_string()).or_default();
        if h.uidvalidity != uidvalidity {
            h.uidvalidity = uidvalidity;
            h.uids.clear();
        }
        h.uids.insert(uid);
        while h.uids.len() > MAX_HIDDEN_PER_MAILBOX {
            h.uids.pop_first();
        }
    }
}

async fn load_hidden<S: MailStore>(store: &S, account: AccountId) -> Result<HiddenSet, StoreError> {
    Ok(
        mailstore_core::settings::load(store, &SettingsScope::Account(account), HIDDEN_KEY)
            .await?
            .unwrap_or_default(),
    )
}

/// The messages POP3 may show an account, with their facts, and the mailboxes they are
/// in (POP-1, 4, 5, 6 and the keep-original hidden set).
///
/// # Errors
/// A store error.
pub async fn pop3_messages<S: MailStore>(
    store: &S,
    account: AccountId,
    policy: &EffectivePolicy,
) -> Result<(Vec<MessageFacts>, BTreeMap<u64, MailboxRef>), StoreError> {
    let hidden = load_hidden(store, account).await?;
    let mut facts = Vec::new();
    let mut refs = BTreeMap::new();
    for info in store.list_mailboxes(account).await? {
        let role = folder_role(&info);
        let wanted = match role {
            FolderRole::Inbox => true,
            FolderRole::Junk => policy.pop3.include_junk,
            FolderRole::Other => policy.pop3.include_imported,
            _ => false,
        };
        if !wanted {
            continue;
        }
        refs.insert(info.mailbox.mailbox.0, info.mailbox);
        for meta in store.message_meta(info.mailbox, &UidSet::all()).await? {
            let h = hidden.contains(info.mailbox.mailbox.0, info.uidvalidity, meta.uid);
            facts.push(message_facts(&info, &meta, role, h));
        }
    }
    Ok((facts, refs))
}

/// Applies a POP3 QUIT plan (POP-2, POP-3) durably: expunges, hides, marks `\Seen`.
///
/// # Errors
/// A store error; what was applied before it stays applied.
pub async fn apply_quit_plan<S: MailStore>(
    store: &S,
    account: AccountId,
    plan: &sync_policy::pop3::QuitPlan,
    refs: &BTreeMap<u64, MailboxRef>,
    uidvalidity: &BTreeMap<u64, u32>,
) -> Result<usize, StoreError> {
    let group = |keys: &[sync_policy::MessageKey]| {
        let mut by: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        for k in keys {
            by.entry(k.mailbox).or_default().push(k.uid);
        }
        by
    };
    if !plan.hide_from_pop.is_empty() {
        let mut hidden = load_hidden(store, account).await?;
        for k in &plan.hide_from_pop {
            let v = uidvalidity.get(&k.mailbox).copied().unwrap_or(0);
            hidden.insert(k.mailbox, v, k.uid);
        }
        mailstore_core::settings::save(
            store,
            &SettingsScope::Account(account),
            HIDDEN_KEY,
            &hidden,
        )
        .await?;
    }
    for (mailbox, uids) in group(&plan.mark_seen) {
        if let Some(r) = refs.get(&mailbox) {
            let set: UidSet = uids.into_iter().collect();
            store
                .store_flags(
                    *r,
                    &set,
                    FlagOp::Add,
                    &Flags::system(SystemFlags::SEEN),
                    None,
                )
                .await?;
        }
    }
    let mut removed = 0;
    for (mailbox, uids) in group(&plan.expunge) {
        if let Some(r) = refs.get(&mailbox) {
            let set: UidSet = uids.into_iter().collect();
            removed += store.expunge(*r, &set).await?.len();
        }
    }
    Ok(removed)
}

/// The POP3 view (POP-1..6) of an account: what `STAT`/`LIST`/`UIDL` show.
///
/// # Errors
/// A store error.
pub async fn pop3_view<S: MailStore>(
    store: &S,
    account: AccountId,
    policy: &EffectivePolicy,
) -> Result<(Pop3View, Vec<MessageFacts>, BTreeMap<u64, MailboxRef>), StoreError> {
    let (facts, refs) = pop3_messages(store, account, policy).await?;
    let view = sync_policy::pop3::pop3_view(&facts, &policy.pop3);
    Ok((view, facts, refs))
}

/// What one retention run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionReport {
    /// Accounts looked at.
    pub accounts: usize,
    /// Messages deleted.
    pub deleted: usize,
}

/// Deletes, for every account with a retention period, the POP3-eligible messages received
/// at least that many days before `now` (POP-7).
///
/// # Errors
/// A store error (accounts before it are done).
pub async fn run_retention<S: MailStore>(
    store: &S,
    now: UnixTime,
) -> Result<RetentionReport, StoreError> {
    let mut report = RetentionReport::default();
    for account in store.list_accounts().await? {
        report.accounts += 1;
        let policy = effective(store, &account).await?;
        if policy.pop3.retention_days.is_none() {
            continue;
        }
        let (facts, refs) = pop3_messages(store, account.id, &policy).await?;
        let due = sync_policy::pop3::retention_due(&facts, now, &policy.pop3);
        let mut by: BTreeMap<u64, UidSet> = BTreeMap::new();
        for k in due {
            by.entry(k.mailbox).or_default().insert(k.uid);
        }
        for (mailbox, set) in by {
            if let Some(r) = refs.get(&mailbox) {
                let n = store.expunge(*r, &set).await?.len();
                tracing::info!(account = account.address, deleted = n, "retention");
                report.deleted += n;
            }
        }
    }
    Ok(report)
}

/// Runs [`run_retention`] every `interval` until `shutdown` fires (POP-7's scheduler).
pub fn spawn_retention<S: MailStore + 'static>(
    store: Arc<S>,
    interval: Duration,
    shutdown: mail_net::Shutdown,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval.max(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                _ = tick.tick() => {
                    let now = UnixTime::from_system_time(std::time::SystemTime::now());
                    match run_retention(&*store, now).await {
                        Ok(r) if r.deleted > 0 => tracing::info!(deleted = r.deleted, "retention run"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!("retention run failed: {e}"),
                    }
                }
            }
        }
    })
}

/// The header fields of a message (unfolded; encoded words are not decoded), at most
/// [`MAX_FILTER_HEADER_BYTES`] of the header block.
#[must_use]
pub fn header_fields(message: &[u8]) -> Vec<Header> {
    let limit = usize::try_from(MAX_FILTER_HEADER_BYTES).unwrap_or(usize::MAX);
    let block = message.get(..message.len().min(limit)).unwrap_or_default();
    let text = String::from_utf8_lossy(block);
    let mut out: Vec<Header> = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = current.as_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((n, v)) = current.take() {
            out.push(Header::new(n, v));
        }
        if let Some((name, value)) = line.split_once(':') {
            current = Some((name.trim().to_string(), value.trim().to_string()));
        }
    }
    if let Some((n, v)) = current {
        out.push(Header::new(n, v));
    }
    out
}

/// Runs the account's rules over a message (FLT-1).
pub fn evaluate_filters(policy: &EffectivePolicy, message_head: &[u8], size: u64) -> FilterOutcome {
    let headers = header_fields(message_head);
    sync_policy::filter::evaluate(&policy.filters.rules, &headers, size)
}

async fn trash_of<S: MailStore>(
    store: &S,
    account: AccountId,
) -> Result<Option<MailboxRef>, StoreError> {
    let list = store.list_mailboxes(account).await?;
    Ok(list
        .iter()
        .find(|m| m.special_use == Some(SpecialUse::Trash))
        .or_else(|| list.iter().find(|m| m.name.eq_ignore_ascii_case("Trash")))
        .map(|m| m.mailbox))
}

/// Files a message that was just stored in `mailbox` according to the account's rules
/// (FLT-1): adds `\Seen` / `\Flagged`, moves it to the rule's folder or to Trash. A folder
/// that does not exist leaves the message where it is (logged). Returns the outcome.
///
/// # Errors
/// A store error.
pub async fn file_delivered<S: MailStore>(
    store: &S,
    account: AccountId,
    policy: &EffectivePolicy,
    mailbox: MailboxRef,
    uid: u32,
) -> Result<FilterOutcome, StoreError> {
    if policy.filters.rules.is_empty() {
        return Ok(FilterOutcome::default());
    }
    let set: UidSet = std::iter::once(uid).collect();
    let Some(meta) = store.message_meta(mailbox, &set).await?.into_iter().next() else {
        return Ok(FilterOutcome::default());
    };
    let mut head = Vec::new();
    {
        use tokio::io::AsyncReadExt as _;
        let reader = store
            .open_range(mailbox, uid, 0, MAX_FILTER_HEADER_BYTES)
            .await?;
        let mut reader = reader.take(MAX_FILTER_HEADER_BYTES);
        reader
            .read_to_end(&mut head)
            .await
            .map_err(|e| StoreError::Io {
                path: std::path::PathBuf::from("<message body>"),
                source: e,
            })?;
    }
    let outcome = evaluate_filters(policy, &head, meta.size);
    let mut sys = SystemFlags::default();
    for f in &outcome.add_flags {
        sys = sys.union(match f {
            AddFlag::Seen => SystemFlags::SEEN,
            AddFlag::Flagged => SystemFlags::FLAGGED,
            _ => SystemFlags::default(),
        });
    }
    if sys != SystemFlags::default() {
        store
            .store_flags(mailbox, &set, FlagOp::Add, &Flags::system(sys), None)
            .await?;
    }
    let target = if outcome.delete {
        trash_of(store, account).await?
    } else if let Some(folder) = &outcome.folder {
        match store.mailbox(account, folder).await {
            Ok(m) => Some(m.mailbox),
            Err(StoreError::NoSuchMailbox(_)) => {
                tracing::warn!(
                    folder,
                    "filter: target folder does not exist; left in place"
                );
                None
            }
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    if let Some(t) = target.filter(|t| *t != mailbox) {
        store.move_messages(mailbox, &set, t).await?;
    }
    Ok(outcome)
}

/// Per-account IMAP connection counting: the one place where logged-in IMAP connections
/// are counted. The limit for an account is the smaller of its policy limit (ACC-9,
/// `limits.max_imap_connections` and the per-user override) and the operator's server-wide
/// ceiling (`[imap] max_connections_per_account`).
#[derive(Debug, Clone)]
pub struct ImapConnections {
    counter: Arc<Mutex<ConnectionCounter>>,
    ceiling: u32,
}

impl Default for ImapConnections {
    fn default() -> Self {
        Self::with_ceiling(u32::MAX)
    }
}

/// A held IMAP connection slot; dropping it frees the slot.
#[derive(Debug)]
pub struct ImapSlot {
    counter: Arc<Mutex<ConnectionCounter>>,
    permit: Option<ConnectionPermit>,
}

impl Drop for ImapSlot {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            self.counter
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .release(p);
        }
    }
}

impl ImapConnections {
    /// A new, empty counter with no server-wide ceiling (the policy's limit alone applies).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A new, empty counter whose limit never exceeds `ceiling` for any account (0 is
    /// taken as 1).
    #[must_use]
    pub fn with_ceiling(ceiling: u32) -> Self {
        Self {
            counter: Arc::default(),
            ceiling: ceiling.max(1),
        }
    }

    /// Takes a slot for `account` if fewer than the smaller of the policy's limit and the
    /// ceiling are open; the refusal renders as `NO [LIMIT] ...` and names that limit.
    ///
    /// # Errors
    /// The refusal when the account is at its limit.
    pub fn acquire(&self, account: &str, policy: &EffectivePolicy) -> Result<ImapSlot, Refusal> {
        let permit = self
            .counter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_acquire(
                &account.to_ascii_lowercase(),
                policy.limits.max_imap_connections.min(self.ceiling),
            )?;
        Ok(ImapSlot {
            counter: Arc::clone(&self.counter),
            permit: Some(permit),
        })
    }
}

/// The IMAP login policy check (ACC-4, ACC-5, ACC-9) for a login whose credentials are
/// right: `NO [ALERT]` / `NO [CONTACTADMIN]` / `NO [LIMIT]` with the refusal's text, or the
/// session's policy and its connection slot.
///
/// # Errors
/// The tagged `NO` to send.
pub async fn imap_login<S: MailStore>(
    store: &S,
    connections: &ImapConnections,
    outcome: &mailstore_core::AuthOutcome,
) -> Result<(EffectivePolicy, ImapSlot), imap_proto::server::Status> {
    use imap_proto::server::Status;
    let refuse = |r: &Refusal| Status::no(r.text()).with_code(r.imap_code());
    let kind = LoginKind::from_via(&outcome.via);
    let policy = match check_login(store, &outcome.account, Protocol::Imap, kind, false).await {
        Ok(Ok(p)) => p,
        Ok(Err(r)) => {
            tracing::info!(user = outcome.account.address, reason = %r, "imap refused by policy");
            return Err(refuse(&r));
        }
        Err(e) => {
            tracing::warn!("imap: store error: {e}");
            return Err(Status::no("The mail store is unavailable, try again later")
                .with_code("UNAVAILABLE"));
        }
    };
    let slot = connections
        .acquire(&outcome.account.address, &policy)
        .map_err(|r| refuse(&r))?;
    Ok((policy, slot))
}

/// IMAP-4: after a STORE, expunges at once the messages that now carry `\Deleted` when
/// the account's deletion mode says so (errors are logged; the flags stay set).
pub async fn imap_after_store<S: MailStore>(
    store: &S,
    mailbox: MailboxRef,
    policy: &EffectivePolicy,
    updated: &[mailstore_core::MessageFlags],
) {
    let deleted: Vec<u32> = updated
        .iter()
        .filter(|m| m.flags.system.contains(SystemFlags::DELETED))
        .map(|m| m.uid)
        .collect();
    let now = imap_expunge_after_store(policy, &deleted);
    if now.is_empty() {
        return;
    }
    let set: UidSet = now.into_iter().collect();
    if let Err(e) = store.expunge(mailbox, &set).await {
        tracing::warn!("imap: immediate expunge failed: {e}");
    }
}

/// IMAP-3: refuses a hidden mailbox as a COPY/MOVE/APPEND target (or any other use) with
/// `NO [NONEXISTENT] No such mailbox`, exactly as for a mailbox that does not exist.
///
/// # Errors
/// The tagged `NO` to send.
pub fn imap_guard(policy: &EffectivePolicy, name: &str) -> Result<(), imap_proto::server::Status> {
    if imap_visible(policy, name) {
        Ok(())
    } else {
        Err(imap_proto::server::Status::no("No such mailbox").with_code("NONEXISTENT"))
    }
}

/// IMAP-3: is mailbox `name` listed (LIST/LSUB)?
#[must_use]
pub fn imap_visible(policy: &EffectivePolicy, name: &str) -> bool {
    policy.imap.is_visible(name, Some('/'))
}

/// IMAP-4: the UIDs to expunge at once after a STORE/COPY that newly set `\Deleted`
/// (empty when the client's EXPUNGE/CLOSE decides).
#[must_use]
pub fn imap_expunge_after_store(policy: &EffectivePolicy, newly_deleted: &[u32]) -> Vec<u32> {
    policy.imap.deletion_mode.expunge_after_store(newly_deleted)
}

/// True when a FETCH reads a whole message (`RFC822`, `BODY[]`, `BODY.PEEK[]`,
/// `BINARY[]`, without a partial range): what IMAP-6's consumer mode counts as fetched.
#[must_use]
pub fn is_whole_message_fetch(items: &[imap_proto::types::FetchItem]) -> bool {
    use imap_proto::types::FetchItem;
    items.iter().any(|i| match i {
        FetchItem::Rfc822 => true,
        FetchItem::BodySection {
            section, partial, ..
        } => section.part.is_empty() && section.text.is_none() && partial.is_none(),
        FetchItem::Binary { part, partial, .. } => part.is_empty() && partial.is_none(),
        _ => false,
    })
}

/// IMAP-6: what a consumer-mode session fetched from its INBOX, deleted when the session
/// leaves the mailbox (CLOSE, UNSELECT, another SELECT) or ends.
#[derive(Debug, Default)]
pub struct ConsumerLedger {
    mailbox: Option<MailboxRef>,
    fetched: BTreeSet<u32>,
}

/// UIDs a consumer ledger remembers at most (a longer session deletes in batches).
pub const MAX_CONSUMER_LEDGER: usize = 100_000;

impl ConsumerLedger {
    /// Records a FETCH in `mailbox` (only in a consumer mode, only whole-message fetches).
    pub fn note_fetch(
        &mut self,
        policy: &EffectivePolicy,
        mailbox: MailboxRef,
        items: &[imap_proto::types::FetchItem],
        uids: impl Iterator<Item = u32>,
    ) {
        if !policy.imap.consumer.is_consumer() || !is_whole_message_fetch(items) {
            return;
        }
        if self.mailbox != Some(mailbox) {
            self.fetched.clear();
            self.mailbox = Some(mailbox);
        }
        for uid in uids {
            if self.fetched.len() < MAX_CONSUMER_LEDGER {
                self.fetched.insert(uid);
            }
        }
    }

    /// Deletes what the policy says is due among the fetched messages and empties the
    /// ledger (errors are logged).
    pub async fn finish<S: MailStore>(&mut self, store: &S, policy: &EffectivePolicy) {
        let Some(mailbox) = self.mailbox.take() else {
            return;
        };
        let fetched = std::mem::take(&mut self.fetched);
        if fetched.is_empty() {
            return;
        }
        let set: UidSet = fetched.iter().copied().collect();
        let metas = match store.message_meta(mailbox, &set).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("imap consumer: {e}");
                return;
            }
        };
        let facts: Vec<MessageFacts> = metas
            .iter()
            .map(|m| MessageFacts::inbox(mailbox.mailbox.0, m.uid, UnixTime(m.received.0), m.size))
            .collect();
        let now = UnixTime::from_system_time(std::time::SystemTime::now());
        let due: UidSet =
            sync_policy::imap::consumer_expunge(&facts, &fetched, now, policy.imap.consumer)
                .into_iter()
                .map(|k| k.uid)
                .collect();
        if due.is_empty() {
            return;
        }
        match store.expunge(mailbox, &due).await {
            Ok(n) => tracing::info!(deleted = n.len(), "imap consumer: fetched messages deleted"),
            Err(e) => tracing::warn!("imap consumer: {e}"),
        }
    }
}

/// ACC-6: the SMTP submission source-IP allowlist.
///
/// # Errors
/// The refusal (`550 5.7.1 ...`).
pub fn smtp_source(policy: &EffectivePolicy, ip: IpAddr) -> Result<(), Refusal> {
    policy.check_smtp_source(ip)
}

/// Whose settings `policy show` / `policy set` work on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyTarget {
    /// An account (address or alias).
    User(String),
    /// An organisation (domain).
    Org(String),
}

impl PolicyTarget {
    /// `user` or `org`, for the admin wire form.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            PolicyTarget::User(_) => "user",
            PolicyTarget::Org(_) => "org",
        }
    }

    /// The address or domain.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            PolicyTarget::User(n) | PolicyTarget::Org(n) => n,
        }
    }
}

/// Parses a `policy set` value: any TOML value (`true`, `10`, `"text"`, `[..]`,
/// `{..}`), else the text itself as a string.
fn parse_value(value: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()))
}

/// Sets a dotted `key` of a settings value to `value` (`none` removes an optional
/// setting), refusing keys the type does not have.
///
/// # Errors
/// A text naming the key or the value that does not fit.
pub fn set_key<T: Serialize + serde::de::DeserializeOwned>(
    current: &T,
    key: &str,
    value: &str,
) -> Result<T, String> {
    let mut root = toml::Value::try_from(current).map_err(|e| e.to_string())?;
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("invalid key {key:?}"));
    }
    let Some((last, path)) = parts.split_last() else {
        return Err(format!("invalid key {key:?}"));
    };
    let mut table = root
        .as_table_mut()
        .ok_or_else(|| "settings are not a table".to_string())?;
    for p in path {
        table = table
            .entry((*p).to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("{key}: {p} is not a table"))?;
    }
    let remove = matches!(value, "none" | "null" | "unset");
    if remove {
        table.remove(*last);
    } else {
        table.insert((*last).to_string(), parse_value(value));
    }
    let updated: T = root
        .clone()
        .try_into()
        .map_err(|e| format!("{key} = {value}: {e}"))?;
    // A key the type does not know would be dropped silently: refuse it instead.
    if !remove {
        let back = toml::Value::try_from(&updated).map_err(|e| e.to_string())?;
        let mut v = &back;
        for p in &parts {
            v = v.get(p).ok_or_else(|| {
                format!("unknown setting {key:?} (see `policy show` for the keys)")
            })?;
        }
    }
    Ok(updated)
}

fn toml_lines<T: Serialize>(v: &T) -> Vec<String> {
    toml::to_string(v)
        .unwrap_or_else(|e| format!("# cannot show: {e}"))
        .lines()
        .map(str::to_string)
        .collect()
}

async fn find<S: MailStore>(store: &S, address: &str) -> Result<AccountInfo, StoreError> {
    store
        .find_account(address)
        .await?
        .ok_or_else(|| StoreError::NoSuchAccount(address.to_string()))
}

/// `policy show`: the stored (or default) settings as TOML lines; for an account also its
/// security facts and the effective access.
///
/// # Errors
/// A store error or an unknown account.
pub async fn show<S: MailStore>(
    store: &S,
    target: &PolicyTarget,
) -> Result<Vec<String>, StoreError> {
    match target {
        PolicyTarget::Org(domain) => {
            let org = load_org(store, domain).await?;
            let mut out = vec![format!("# organisation {}", domain.to_ascii_lowercase())];
            out.extend(toml_lines(&org));
            Ok(out)
        }
        PolicyTarget::User(address) => {
            let a = find(store, address).await?;
            let user = load_user(store, a.id).await?;
            let security = load_security(store, a.id).await?;
            let policy = effective(store, &a).await?;
            let mut out = vec![format!("# account {}", a.address)];
            for p in [Protocol::Pop3, Protocol::Imap, Protocol::Smtp] {
                out.push(match policy.protocol_access(p) {
                    Ok(()) => format!("# {p}: allowed"),
                    Err(r) => format!("# {p}: refused: {}", r.text()),
                });
            }
            out.extend(toml_lines(&user));
            out.push(String::new());
            out.push("[security]".into());
            out.extend(toml_lines(&security));
            Ok(out)
        }
    }
}

/// `policy set`: changes one setting, validates the result, stores it, and prints the
/// new value. Account keys under `security.` change [`AccountSecurity`]; turning
/// `pop3.enabled` on records the moment (for `scope = { mode = "from_enabled" }`).
///
/// # Errors
/// [`StoreError::InvalidArgument`] with the reason for a bad key or value; store errors.
pub async fn set<S: MailStore>(
    store: &S,
    target: &PolicyTarget,
    key: &str,
    value: &str,
    now: UnixTime,
) -> Result<Vec<String>, StoreError> {
    let bad = |e: String| StoreError::InvalidArgument(e);
    match target {
        PolicyTarget::Org(domain) => {
            let domain = domain.to_ascii_lowercase();
            let org = set_key(&load_org(store, &domain).await?, key, value).map_err(bad)?;
            org.validate().map_err(|e| bad(e.to_string()))?;
            mailstore_core::settings::save(
                store,
                &SettingsScope::Domain(domain.clone()),
                ORG_KEY,
                &org,
            )
            .await?;
            Ok(vec![format!("organisation {domain}: {key} = {value}")])
        }
        PolicyTarget::User(address) => {
            let a = find(store, address).await?;
            let scope = SettingsScope::Account(a.id);
            if let Some(k) = key.strip_prefix("security.") {
                let sec = set_key(&load_security(store, a.id).await?, k, value).map_err(bad)?;
                mailstore_core::settings::save(store, &scope, SECURITY_KEY, &sec).await?;
            } else {
                let org = load_org(store, &domain_of(&a.address)).await?;
                let mut user = set_key(&load_user(store, a.id).await?, key, value).map_err(bad)?;
                if user.pop3.enabled {
                    user.pop3.enable(now);
                }
                user.validate(&org).map_err(|e| bad(e.to_string()))?;
                mailstore_core::settings::save(store, &scope, USER_KEY, &user).await?;
            }
            Ok(vec![format!("account {}: {key} = {value}", a.address)])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_policy::access::{Direction, Protocol};
    use sync_policy::filter::{Action, Condition, FilterRule, HeaderField, MatchMode, TextMatch};

    #[test]
    fn server_defaults_are_a_plain_rfc_server() {
        let p = sync_policy::resolve(&server_default_org(), &server_default_user());
        assert!(p.protocol_access(Protocol::Pop3).is_ok());
        assert!(p.protocol_access(Protocol::Imap).is_ok());
        assert!(p.protocol_access(Protocol::Smtp).is_ok());
        assert!(p.pop3.expunge_on_delete);
        assert!(p.check_size(Direction::Receive, 1000).is_ok());
    }

    #[test]
    fn header_fields_unfold_and_stop_at_body() {
        let h = header_fields(b"Subject: a\r\n b\r\nFrom: x@y\r\n\r\nTo: not-a-header\r\n");
        assert_eq!(
            h,
            vec![Header::new("Subject", "a b"), Header::new("From", "x@y")]
        );
    }

    #[test]
    fn filters_evaluate_on_headers() {
        let mut user = server_default_user();
        user.filters.rules.push(FilterRule::new(
            "news",
            MatchMode::All,
            vec![Condition::Header {
                field: HeaderField::Subject,
                op: TextMatch::Contains,
                value: "newsletter".into(),
            }],
            vec![Action::MoveTo("News".into()), Action::MarkRead],
        ));
        let p = sync_policy::resolve(&server_default_org(), &user);
        let o = evaluate_filters(&p, b"Subject: Weekly NEWSLETTER\r\n\r\nbody", 30);
        assert_eq!(o.folder.as_deref(), Some("News"));
        assert_eq!(o.add_flags, vec![AddFlag::Seen]);
        let o = evaluate_filters(&p, b"Subject: hello\r\n\r\nbody", 30);
        assert_eq!(o, FilterOutcome::default());
    }

    #[test]
    fn hidden_set_forgets_on_uidvalidity_change() {
        let mut h = HiddenSet::default();
        h.insert(3, 7, 10);
        assert!(h.contains(3, 7, 10));
        assert!(!h.contains(3, 8, 10));
        h.insert(3, 8, 11);
        assert!(!h.contains(3, 8, 10));
        assert!(h.contains(3, 8, 11));
        let text = toml::to_string(&h).unwrap();
        assert_eq!(toml::from_str::<HiddenSet>(&text).unwrap(), h);
    }

    #[test]
    fn set_key_changes_nested_values_and_refuses_unknown_keys() {
        let u = server_default_user();
        let u2 = set_key(&u, "pop3.on_delete", "keep_original").unwrap();
        assert_eq!(u2.pop3.on_delete, PopDeletePolicy::KeepOriginal);
        let u3 = set_key(&u2, "pop3.retention_days", "30").unwrap();
        assert_eq!(u3.pop3.retention_days, Some(30));
        let u4 = set_key(&u3, "pop3.retention_days", "none").unwrap();
        assert_eq!(u4.pop3.retention_days, None);
        let u5 = set_key(&u4, "pop3.scope", r#"{ mode = "since", since = 1000 }"#).unwrap();
        assert_eq!(
            u5.pop3.scope,
            sync_policy::pop3::PopScope::Since {
                since: UnixTime(1000)
            }
        );
        let err = set_key(&u, "pop3.no_such_key", "1").unwrap_err();
        assert!(err.contains("unknown setting"), "{err}");
        let err = set_key(&u, "pop3.on_delete", "sometimes").unwrap_err();
        assert!(err.starts_with("pop3.on_delete = sometimes:"), "{err}");
        let o = set_key(
            &server_default_org(),
            "smtp_allowed_sources",
            r#"["10.0.0.0/8"]"#,
        )
        .unwrap();
        assert_eq!(o.smtp_allowed_sources.len(), 1);
    }

    #[test]
    fn imap_helpers() {
        let mut user = server_default_user();
        user.imap.hidden_folders.insert("Archive".into());
        let p = sync_policy::resolve(&server_default_org(), &user);
        assert!(imap_visible(&p, "INBOX"));
        assert!(!imap_visible(&p, "Archive"));
        assert!(!imap_visible(&p, "Archive/2024"));
        assert!(imap_expunge_after_store(&p, &[1, 2]).is_empty());
        user.imap.deletion_mode = sync_policy::imap::DeletionMode::ExpungeImmediately;
        let p = sync_policy::resolve(&server_default_org(), &user);
        assert_eq!(imap_expunge_after_store(&p, &[1, 2]), vec![1, 2]);
    }

    #[test]
    fn imap_connection_slots_are_released_on_drop() {
        let mut user = server_default_user();
        user.admin.max_imap_connections = Some(2);
        let p = sync_policy::resolve(&server_default_org(), &user);
        let c = ImapConnections::new();
        let a = c.acquire("A@x", &p).unwrap();
        let _b = c.acquire("a@x", &p).unwrap();
        let refused = c.acquire("a@x", &p).unwrap_err();
        assert!(
            refused
                .render(Protocol::Imap)
                .starts_with("NO [LIMIT] Too many simultaneous IMAP connections")
        );
        drop(a);
        assert!(c.acquire("a@x", &p).is_ok());
    }

    #[test]
    fn the_server_ceiling_caps_a_larger_policy_limit() {
        let mut user = server_default_user();
        user.admin.max_imap_connections = Some(5);
        let p = sync_policy::resolve(&server_default_org(), &user);
        let c = ImapConnections::with_ceiling(1);
        let _a = c.acquire("a@x", &p).unwrap();
        let refused = c.acquire("a@x", &p).unwrap_err();
        assert_eq!(
            refused.render(Protocol::Imap),
            "NO [LIMIT] Too many simultaneous IMAP connections for this account (limit 1); close another mail client and try again"
        );
        assert!(c.acquire("b@x", &p).is_ok());
    }
}
