//! IMAP migration (MIG-1 .. MIG-6, ACC-10): copy every folder of an external IMAP
//! account into the store, all or nothing.
//!
//! [`migrate`] runs one job; [`MigrationRunner`] runs registered jobs one at a time in
//! registration order (MIG-3). What the engine guarantees:
//!
//! - **One-shot (MIG-2).** Each source folder's UIDNEXT is read when the job reaches it
//!   (EXAMINE) and kept in the job journal; messages at or above it are not copied.
//! - **Flags and dates.** System flags (without `\Recent`) and keywords, and INTERNALDATE,
//!   are kept. When a destination folder is created by the job and
//!   [`MigrationOptions::keep_uids`] is on, it gets the source's UIDVALIDITY and each
//!   message its source UID.
//! - **The ledger is the stored message (MIG-6).** Each stored message carries, atomically
//!   with its append, `Origin::Imported("mig:<job>:<run>")` and the UIDL
//!   `m<hash>.<uidvalidity>.<uid>` naming its source folder and UID. A later run reads the
//!   destination folder's metadata and skips every source message whose UID key, or whose
//!   Message-ID + SHA-256 of the content, is already there from this job
//!   ([`crate::migration::plan_folder_copy`] with those keys).
//! - **All or nothing (MIG-4).** The journal (`mig/<job>/journal` in the account's
//!   settings: run number, cut-offs, folders created, folders written) is written before
//!   each step it describes. When the job fails, every message of this run is expunged and
//!   every folder the run created (and left empty) is deleted. After a crash or kill the
//!   next [`migrate`] of the job (or [`rollback_interrupted`]) does the same from the
//!   journal, or with [`Recovery::Resume`] continues the run without duplicates.
//! - **Read-only on the source (MIG-5).** EXAMINE and `BODY.PEEK`: the source's `\Seen`
//!   flags do not change.
//! - **Streaming.** Bodies are fetched with `UID FETCH <set> (BODY.PEEK[])` in batches of at
//!   most [`MigrationOptions::batch_messages`] messages and
//!   [`MigrationOptions::batch_bytes`] bytes (one bigger message is fetched alone), so
//!   memory is bounded by a batch, not by the mailbox.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use imap_proto::tokio::{Client, ClientConfig, Fetched, Security};
use imap_proto::types::{
    FetchAttr, FetchItem, Flag, MailboxAttr, Section, SectionText, SeqNum, SeqRange, SequenceSet,
};
use mail_net::TlsConnector;
use mail_sasl::Mechanism;
use mail_sasl::client::ClientCredentials;
use mailstore_core::{
    AccountId, AppendOptions, CreateMailbox, Flags, MailStore, MailboxRef, Origin, SpecialUse,
    StoreError, SystemFlags, Timestamp, UidSet,
};
use sha2::Digest;
use tokio::net::TcpStream;

use super::{Auth, Credentials, Endpoint, EngineError, check_id, kv, short_hash, to_ts};
use crate::UnixTime;
use crate::facts::MessageKey;
use crate::import::TlsMode;
use crate::migration::{
    JobJournal, MigrationKey, MigrationQueue, Notice, SourceFolder, SourceMessage,
    plan_folder_copy, progress_notice,
};

/// The external IMAP account.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImapSource {
    /// Where.
    pub endpoint: Endpoint,
    /// Login: password, or an OAuth 2.0 token through XOAUTH2 / OAUTHBEARER (ACC-10).
    pub credentials: Credentials,
}

impl ImapSource {
    /// A source.
    #[must_use]
    pub fn new(endpoint: Endpoint, credentials: Credentials) -> Self {
        ImapSource {
            endpoint,
            credentials,
        }
    }
}

/// A server defined by the administrator (MIG-1): users pick it and give only their
/// credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerTemplate {
    /// Name shown to users.
    pub name: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS mode.
    pub tls: TlsMode,
}

impl ServerTemplate {
    /// A template.
    #[must_use]
    pub fn new(name: impl Into<String>, host: impl Into<String>, port: u16, tls: TlsMode) -> Self {
        ServerTemplate {
            name: name.into(),
            host: host.into(),
            port,
            tls,
        }
    }

    /// The source for one user of this template.
    #[must_use]
    pub fn source(&self, credentials: Credentials, connector: Option<TlsConnector>) -> ImapSource {
        let mut endpoint = Endpoint::new(self.host.clone(), self.port, self.tls);
        endpoint.connector = connector;
        ImapSource::new(endpoint, credentials)
    }
}

/// What to do with a job a crash or kill interrupted.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Recovery {
    /// Undo the interrupted run, then start again. Default.
    #[default]
    Rollback,
    /// Continue the interrupted run (same cut-offs), skipping what it stored.
    Resume,
}

/// Job options, with documented defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MigrationOptions {
    /// Give new destination folders the source's UIDVALIDITY and UIDs. Default `true`.
    pub keep_uids: bool,
    /// Most messages per `UID FETCH`. Default 100.
    pub batch_messages: usize,
    /// Most bytes (by RFC822.SIZE) per `UID FETCH`. Default 8 MiB.
    pub batch_bytes: u64,
    /// Messages of this size or more are not copied (reported). Default 50 MiB.
    pub size_limit: u64,
    /// Progress notice every this many percent (MIG-3). Default 25.
    pub progress_step_percent: u8,
    /// Deliver notices (started, progress, completed, failed) to the user's INBOX.
    /// Default `true`.
    pub deliver_notices: bool,
    /// Skip virtual folders (`\All`, `\Flagged`: Gmail's "All Mail" and "Starred"),
    /// whose messages are also in other folders. Default `true`.
    pub skip_virtual_folders: bool,
    /// What to do with an interrupted earlier run of the job. Default rollback.
    pub recovery: Recovery,
    /// Appends in flight together into a folder whose UIDs are not kept (they share the
    /// store's durable commits; within such a group the new UIDs may not follow the
    /// source order). 1 keeps the source order everywhere. Default 8.
    pub parallel_appends: usize,
}

impl Default for MigrationOptions {
    fn default() -> Self {
        MigrationOptions {
            keep_uids: true,
            batch_messages: 100,
            batch_bytes: 8 * 1024 * 1024,
            size_limit: crate::import::DEFAULT_IMPORT_SIZE_LIMIT,
            progress_step_percent: 25,
            deliver_notices: true,
            skip_virtual_folders: true,
            recovery: Recovery::Rollback,
            parallel_appends: 8,
        }
    }
}

/// Progress events, in order: `Started`, then per folder `Folder`, `Message`s and
/// `FolderDone`, then `Completed` or `Failed`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The job started: folders to copy.
    Started {
        /// Folders.
        folders: usize,
    },
    /// A folder starts.
    Folder {
        /// Source name.
        source: String,
        /// Destination name.
        destination: String,
        /// Messages to copy in it.
        to_copy: u64,
        /// Messages an earlier run copied.
        already_copied: u64,
    },
    /// One message stored.
    Message {
        /// Messages stored so far in the job.
        done: u64,
        /// Bytes stored so far in the job.
        bytes: u64,
    },
    /// A folder is done.
    FolderDone {
        /// Destination name.
        destination: String,
        /// Messages stored in it.
        copied: u64,
    },
    /// The job completed.
    Completed {
        /// Messages stored.
        copied: u64,
        /// Messages skipped because an earlier run stored them.
        already_copied: u64,
    },
    /// The job failed and the destination was restored.
    Failed {
        /// Why.
        reason: String,
    },
}

/// One folder of a finished job.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FolderReport {
    /// Source name.
    pub source: String,
    /// Destination name.
    pub destination: String,
    /// Whether this job created the destination.
    pub created: bool,
    /// Whether the source UIDVALIDITY and UIDs were kept.
    pub uids_kept: bool,
    /// Messages stored.
    pub copied: u64,
    /// Messages skipped: an earlier run stored them.
    pub already_copied: u64,
    /// Messages skipped: they arrived after the job started (MIG-2).
    pub arrived_later: u64,
}

/// What a completed job did.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MigrationReport {
    /// Per folder, in copy order.
    pub folders: Vec<FolderReport>,
    /// Messages stored.
    pub copied: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Messages skipped because an earlier run stored them.
    pub already_copied: u64,
    /// Messages not copied because of their size: (source folder, UID, size).
    pub too_large: Vec<(String, u32, u64)>,
}

/// The persisted journal of a running job (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Journal {
    run: u64,
    /// Source folder -> (UIDVALIDITY, UIDNEXT at start).
    cuts: BTreeMap<String, (u32, u32)>,
    created: Vec<String>,
    touched: Vec<String>,
}

impl Journal {
    fn encode(&self) -> String {
        let mut s = format!("run {}\n", self.run);
        for (name, (v, n)) in &self.cuts {
            s.push_str(&format!("cut {v} {n} {name}\n"));
        }
        for c in &self.created {
            s.push_str(&format!("created {c}\n"));
        }
        for t in &self.touched {
            s.push_str(&format!("touched {t}\n"));
        }
        s
    }

    fn decode(s: &str) -> Self {
        let mut j = Journal::default();
        for line in s.lines() {
            let Some((kind, rest)) = line.split_once(' ') else {
                continue;
            };
            match kind {
                "run" => j.run = rest.parse().unwrap_or(0),
                "cut" => {
                    let mut p = rest.splitn(3, ' ');
                    if let (Some(v), Some(n), Some(name)) = (p.next(), p.next(), p.next())
                        && let (Ok(v), Ok(n)) = (v.parse(), n.parse())
                    {
                        j.cuts.insert(name.to_owned(), (v, n));
                    }
                }
                "created" => j.created.push(rest.to_owned()),
                "touched" => j.touched.push(rest.to_owned()),
                _ => {}
            }
        }
        j
    }
}

fn journal_key(job: &str) -> String {
    format!("mig/{job}/journal")
}

fn runs_key(job: &str) -> String {
    format!("mig/{job}/runs")
}

fn label_prefix(job: &str) -> String {
    format!("mig:{job}:")
}

async fn save_journal<S: MailStore>(
    store: &S,
    account: AccountId,
    job: &str,
    j: &Journal,
) -> Result<(), EngineError> {
    kv::put(store, account, &journal_key(job), &j.encode()).await
}

/// Undoes an interrupted run of `job` from its journal (every message of the run
/// expunged, every folder it created and left empty deleted). Returns `false` when there
/// was nothing to undo. The server calls this at start-up for every job it knows, or lets
/// the next [`migrate`] of the job do it.
///
/// # Errors
/// The store's refusal; the journal stays so the call can be repeated.
pub async fn rollback_interrupted<S: MailStore>(
    store: &S,
    account: AccountId,
    job: &str,
) -> Result<bool, EngineError> {
    check_id(job)?;
    let Some(text) = kv::get(store, account, &journal_key(job)).await? else {
        return Ok(false);
    };
    let j = Journal::decode(&text);
    let label = format!("{}{}", label_prefix(job), j.run);
    for name in &j.touched {
        let mbx = match store.mailbox(account, name).await {
            Ok(m) => m.mailbox,
            Err(StoreError::NoSuchMailbox(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut set = UidSet::new();
        for m in store.message_meta(mbx, &UidSet::all()).await? {
            if m.origin == Origin::Imported(label.clone()) {
                set.insert_range(m.uid, m.uid);
            }
        }
        store.expunge(mbx, &set).await?;
    }
    delete_created(store, account, &j.created).await?;
    kv::delete(store, account, &journal_key(job)).await?;
    Ok(true)
}

async fn delete_created<S: MailStore>(
    store: &S,
    account: AccountId,
    created: &[String],
) -> Result<(), EngineError> {
    for name in created.iter().rev() {
        match store.mailbox(account, name).await {
            // Mail the user put there in the meantime is not ours to delete.
            Ok(info) if info.messages == 0 => match store.delete_mailbox(account, name).await {
                Ok(()) | Err(StoreError::NoSuchMailbox(_)) => {}
                Err(e) => return Err(e.into()),
            },
            Ok(_) | Err(StoreError::NoSuchMailbox(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A source folder and where it goes.
#[derive(Debug, Clone)]
struct FolderMap {
    source: String,
    destination: String,
    special_use: Option<SpecialUse>,
}

/// Per-run state shared by the steps.
struct Run<'a, S> {
    store: &'a S,
    account: AccountId,
    job: &'a str,
    opts: &'a MigrationOptions,
    journal: Journal,
    policy_journal: JobJournal,
    mailbox_refs: HashMap<u64, MailboxRef>,
    label: String,
    report: MigrationReport,
    now: UnixTime,
}

/// Runs migration job `job` (an id of the caller's choice, 1 to 64 characters of
/// `A-Za-z0-9-_.`, stable across re-runs: it keys the dedupe) for `account` from
/// `source`. `progress` sees every [`Progress`] event; with
/// [`MigrationOptions::deliver_notices`] the user also gets notices in the INBOX.
///
/// On failure the destination is restored (see the module docs) before the error is
/// returned.
///
/// # Errors
/// Connection, login and protocol errors of the source, store errors;
/// [`EngineError::Busy`] when the job is already running in this process.
pub async fn migrate<S: MailStore>(
    store: &S,
    account: AccountId,
    job: &str,
    source: &ImapSource,
    opts: &MigrationOptions,
    now: UnixTime,
    mut progress: impl FnMut(&Progress) + Send,
) -> Result<MigrationReport, EngineError> {
    check_id(job)?;
    let _busy = super::pop3::busy(store, account, &format!("migration {job}"))?;
    let leftover = kv::get(store, account, &journal_key(job)).await?;
    let journal = match (leftover, opts.recovery) {
        (Some(text), Recovery::Resume) => Journal::decode(&text),
        (Some(_), _) => {
            rollback_interrupted(store, account, job).await?;
            new_journal(store, account, job).await?
        }
        (None, _) => new_journal(store, account, job).await?,
    };
    let label = format!("{}{}", label_prefix(job), journal.run);
    let mut run = Run {
        store,
        account,
        job,
        opts,
        journal,
        policy_journal: JobJournal::default(),
        mailbox_refs: HashMap::new(),
        label,
        report: MigrationReport::default(),
        now,
    };
    save_journal(store, account, job, &run.journal).await?;
    notify(&run, &Notice::Started).await;
    let result = run.copy_all(source, &mut progress).await;
    match result {
        Ok(()) => {
            kv::delete(store, account, &journal_key(job)).await?;
            let ev = Progress::Completed {
                copied: run.report.copied,
                already_copied: run.report.already_copied,
            };
            progress(&ev);
            notify(
                &run,
                &Notice::Completed {
                    copied: run.report.copied,
                    already_copied: run.report.already_copied,
                },
            )
            .await;
            Ok(run.report)
        }
        Err(e) => {
            let mut reason = e.to_string();
            let restored = run.rollback().await;
            if let Err(r) = &restored {
                // The journal stays: `rollback_interrupted` or the next run finishes it.
                reason = format!(
                    "{reason}; restoring the destination failed too ({r}) and will be retried"
                );
            }
            progress(&Progress::Failed {
                reason: reason.clone(),
            });
            notify(&run, &Notice::Failed { reason }).await;
            restored?;
            Err(e)
        }
    }
}

async fn new_journal<S: MailStore>(
    store: &S,
    account: AccountId,
    job: &str,
) -> Result<Journal, EngineError> {
    let last: u64 = kv::get(store, account, &runs_key(job))
        .await?
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let run = last + 1;
    kv::put(store, account, &runs_key(job), &run.to_string()).await?;
    Ok(Journal {
        run,
        ..Journal::default()
    })
}

async fn notify<S: MailStore>(run: &Run<'_, S>, notice: &Notice) {
    if !run.opts.deliver_notices {
        return;
    }
    let subject = match notice {
        Notice::Queued { .. } => "Mail migration queued",
        Notice::Started => "Mail migration started",
        Notice::Progress { .. } => "Mail migration in progress",
        Notice::Completed { .. } => "Mail migration completed",
        _ => "Mail migration failed",
    };
    // A notice that cannot be stored must not fail or undo the migration itself.
    let _ = super::deliver_notice(run.store, run.account, subject, &notice.text(), run.now).await;
}

impl<S: MailStore> Run<'_, S> {
    async fn copy_all(
        &mut self,
        source: &ImapSource,
        progress: &mut (impl FnMut(&Progress) + Send),
    ) -> Result<(), EngineError> {
        let mut client = connect(source).await?;
        let server = source.endpoint.server();
        let rerr = |e: imap_proto::tokio::Error| remote_error(&server, e);
        let listing = client.list("", "*").await.map_err(rerr)?;
        let ours = self.store.list_mailboxes(self.account).await?;
        let folders = map_folders(&listing, &ours, self.opts.skip_virtual_folders);
        // MIG-2: every folder's UIDNEXT is taken before anything is copied, so mail that
        // arrives in any folder after the job started is left out. A resumed run keeps
        // the cut-offs of the run it continues.
        for f in &folders {
            if self.journal.cuts.contains_key(&f.source) {
                continue;
            }
            let sel = client.examine(&f.source).await.map_err(rerr)?;
            let uidvalidity = sel.uid_validity.unwrap_or(0);
            let n = match sel.uid_next {
                Some(n) => n,
                None if sel.exists == 0 => 1,
                None => {
                    let all = client
                        .uid_search(vec![imap_proto::types::SearchKey::All])
                        .await
                        .map_err(rerr)?;
                    all.iter().max().map_or(1, |m| m.saturating_add(1))
                }
            };
            self.journal.cuts.insert(f.source.clone(), (uidvalidity, n));
        }
        save_journal(self.store, self.account, self.job, &self.journal).await?;
        progress(&Progress::Started {
            folders: folders.len(),
        });
        // Totals for progress notices: the sum of source counts (a cheap upper bound).
        let mut done_total = 0u64;
        let mut done_bytes = 0u64;
        for f in &folders {
            self.copy_folder(
                &mut client,
                &server,
                f,
                &mut done_total,
                &mut done_bytes,
                progress,
            )
            .await?;
        }
        let _ = client.logout().await;
        Ok(())
    }

    async fn destination(
        &mut self,
        f: &FolderMap,
        uidvalidity: u32,
    ) -> Result<(MailboxRef, bool, bool), EngineError> {
        match self.store.mailbox(self.account, &f.destination).await {
            Ok(m) => {
                let created = self.journal.created.contains(&f.destination);
                let kept = created && m.uidvalidity == uidvalidity;
                return Ok((m.mailbox, created, kept));
            }
            Err(StoreError::NoSuchMailbox(_)) => {}
            Err(e) => return Err(e.into()),
        }
        // Write-ahead: the journal names the folder before it exists.
        self.journal.created.push(f.destination.clone());
        save_journal(self.store, self.account, self.job, &self.journal).await?;
        self.policy_journal.folder_created(&f.destination);
        let mut opts = CreateMailbox::default().subscribed();
        if let Some(su) = f.special_use {
            opts = opts.special_use(su);
        }
        if self.opts.keep_uids {
            opts = opts.uidvalidity(uidvalidity);
        }
        let info = self
            .store
            .create_mailbox(self.account, &f.destination, opts)
            .await?;
        let kept = self.opts.keep_uids && info.uidvalidity == uidvalidity;
        Ok((info.mailbox, true, kept))
    }

    #[allow(clippy::too_many_lines)]
    async fn copy_folder(
        &mut self,
        client: &mut Client<TcpStream>,
        server: &str,
        f: &FolderMap,
        done_total: &mut u64,
        done_bytes: &mut u64,
        progress: &mut (impl FnMut(&Progress) + Send),
    ) -> Result<(), EngineError> {
        let rerr = |e: imap_proto::tokio::Error| remote_error(server, e);
        let sel = client.examine(&f.source).await.map_err(rerr)?;
        let uidvalidity = sel.uid_validity.unwrap_or(0);
        let uidnext = match self.journal.cuts.get(&f.source) {
            Some(&(v, n)) if v == uidvalidity => n,
            Some(_) => {
                return Err(EngineError::Remote(format!(
                    "the UIDVALIDITY of {} changed during the migration; run it again",
                    f.source
                )));
            }
            None => return Err(EngineError::Remote(format!("no cut-off for {}", f.source))),
        };
        let folder = SourceFolder {
            name: f.source.clone(),
            uidvalidity,
            uidnext_at_start: uidnext,
        };
        let (mbx, created, uids_kept) = self.destination(f, uidvalidity).await?;
        self.mailbox_refs.insert(mbx.mailbox.0, mbx);

        // Source metadata (no bodies), up to the cut-off.
        let mut meta: BTreeMap<u32, MessageInfo> = BTreeMap::new();
        if uidnext > 1 && sel.exists > 0 {
            let set = SequenceSet::range(1, uidnext - 1)
                .map_err(|e| EngineError::Remote(e.to_string()))?;
            let items = vec![
                FetchItem::Uid,
                FetchItem::Flags,
                FetchItem::InternalDate,
                FetchItem::Rfc822Size,
                FetchItem::BodySection {
                    peek: true,
                    section: Section {
                        part: Vec::new(),
                        text: Some(SectionText::HeaderFields(vec![Bytes::from_static(
                            b"MESSAGE-ID",
                        )])),
                    },
                    partial: None,
                },
            ];
            for fe in client.fetch(set, true, items).await.map_err(rerr)? {
                if let Some(info) = MessageInfo::from_fetched(&fe) {
                    meta.insert(info.uid, info);
                }
            }
        }
        let messages: Vec<SourceMessage> = meta
            .values()
            .map(|m| SourceMessage {
                uid: m.uid,
                internal_date: UnixTime(m.internal_date.0),
                size: m.size,
                message_id: m.message_id.clone(),
            })
            .collect();

        // The ledger: this job's messages already in the destination.
        let folder_hash = short_hash(&[self.job.as_bytes(), f.source.as_bytes()], 4);
        let uidl_prefix = format!("m{folder_hash}.");
        let mut ledger: BTreeSet<MigrationKey> = BTreeSet::new();
        let mut contents: HashSet<(String, [u8; 32])> = HashSet::new();
        let prefix = label_prefix(self.job);
        for m in self.store.message_meta(mbx, &UidSet::all()).await? {
            let Origin::Imported(l) = &m.origin else {
                continue;
            };
            if !l.starts_with(&prefix) {
                continue;
            }
            if let Some(rest) = m.uidl.strip_prefix(&uidl_prefix)
                && let Some((v, u)) = rest.split_once('.')
                && let (Ok(v), Ok(u)) = (v.parse::<u32>(), u.parse::<u32>())
            {
                ledger.insert(MigrationKey::Uid {
                    folder: f.source.clone(),
                    uidvalidity: v,
                    uid: u,
                });
            }
            if let Some(id) = &m.message_id {
                ledger.insert(MigrationKey::Content {
                    folder: f.source.clone(),
                    message_id: id.trim().to_owned(),
                    internal_date: UnixTime(m.internal_date.0),
                    size: m.size,
                });
                if let Some(d) = m.digest {
                    contents.insert((id.trim().to_owned(), d));
                }
            }
        }
        let plan = plan_folder_copy(&folder, &messages, &ledger);
        self.report.already_copied += plan.already_copied as u64;
        let mut fr = FolderReport {
            source: f.source.clone(),
            destination: f.destination.clone(),
            created,
            uids_kept,
            copied: 0,
            already_copied: plan.already_copied as u64,
            arrived_later: plan.arrived_later as u64,
        };
        progress(&Progress::Folder {
            source: f.source.clone(),
            destination: f.destination.clone(),
            to_copy: plan.copy.len() as u64,
            already_copied: fr.already_copied,
        });
        let total_planned = *done_total + plan.copy.len() as u64;

        // Batches by count and size; too-large messages are reported, not fetched.
        let mut batches: Vec<Vec<u32>> = Vec::new();
        let mut cur: Vec<u32> = Vec::new();
        let mut cur_bytes = 0u64;
        for &uid in &plan.copy {
            let size = meta.get(&uid).map_or(0, |m| m.size);
            if size >= self.opts.size_limit {
                self.report.too_large.push((f.source.clone(), uid, size));
                continue;
            }
            if !cur.is_empty()
                && (cur.len() >= self.opts.batch_messages.max(1)
                    || cur_bytes + size > self.opts.batch_bytes)
            {
                batches.push(std::mem::take(&mut cur));
                cur_bytes = 0;
            }
            cur.push(uid);
            cur_bytes += size;
        }
        if !cur.is_empty() {
            batches.push(cur);
        }
        let mut touched = self.journal.touched.contains(&f.destination);
        for batch in batches {
            let set = uid_set(&batch)?;
            let items = vec![
                FetchItem::Uid,
                FetchItem::BodySection {
                    peek: true,
                    section: Section::default(),
                    partial: None,
                },
            ];
            let mut fetched: Vec<(u32, Bytes)> = client
                .fetch(set, true, items)
                .await
                .map_err(rerr)?
                .into_iter()
                .filter_map(|fe| Some((fe.uid()?, fe.body()?.clone())))
                .collect();
            fetched.sort_by_key(|(u, _)| *u);
            // Dedupe first (content already stored by this job, or twice in the batch).
            let mut todo: Vec<(u32, MessageInfo, Bytes)> = Vec::new();
            for (uid, body) in fetched {
                let Some(info) = meta.get(&uid) else {
                    continue;
                };
                if !batch.contains(&uid) {
                    continue;
                }
                let digest: [u8; 32] = sha2::Sha256::digest(&body).into();
                if let Some(id) = &info.message_id
                    && !contents.insert((id.trim().to_owned(), digest))
                {
                    fr.already_copied += 1;
                    self.report.already_copied += 1;
                    continue;
                }
                todo.push((uid, info.clone(), body));
            }
            if todo.is_empty() {
                continue;
            }
            if !touched {
                self.journal.touched.push(f.destination.clone());
                save_journal(self.store, self.account, self.job, &self.journal).await?;
                touched = true;
            }
            // Forced UIDs must be committed in order: one at a time. Otherwise up to
            // `parallel_appends` appends run together and share the store's commits.
            let par = if uids_kept {
                1
            } else {
                self.opts.parallel_appends.max(1)
            };
            let mut rest = todo.into_iter().peekable();
            while rest.peek().is_some() {
                let chunk: Vec<(u32, MessageInfo, Bytes)> = rest.by_ref().take(par).collect();
                let appends = chunk.iter().map(|(uid, info, body)| {
                    let mut opts = AppendOptions::with_flags(info.flags.clone())
                        .internal_date(info.internal_date)
                        .received(to_ts(self.now))
                        .origin(Origin::Imported(self.label.clone()))
                        .uidl(format!("{uidl_prefix}{uidvalidity}.{uid}"));
                    if uids_kept {
                        opts = opts.uid(*uid);
                    }
                    self.store.append(mbx, opts, body.clone())
                });
                let results = futures_util::future::join_all(appends).await;
                let before = *done_total;
                let mut first_err = None;
                for ((uid, info, body), res) in chunk.into_iter().zip(results) {
                    let out = match res {
                        Ok(o) => o,
                        Err(e) => {
                            first_err.get_or_insert(e);
                            continue;
                        }
                    };
                    let keys = crate::migration::migration_keys(
                        &folder,
                        &SourceMessage {
                            uid,
                            internal_date: UnixTime(info.internal_date.0),
                            size: info.size,
                            message_id: info.message_id.clone(),
                        },
                    );
                    self.policy_journal.message_stored(
                        MessageKey {
                            mailbox: mbx.mailbox.0,
                            uid: out.uid,
                        },
                        keys,
                    );
                    let size = body.len() as u64;
                    fr.copied += 1;
                    self.report.copied += 1;
                    self.report.bytes += size;
                    *done_total += 1;
                    *done_bytes += size;
                    progress(&Progress::Message {
                        done: *done_total,
                        bytes: *done_bytes,
                    });
                }
                if let Some(e) = first_err {
                    return Err(e.into());
                }
                if let Some(n) = progress_notice(
                    before,
                    *done_total,
                    total_planned,
                    self.opts.progress_step_percent,
                ) {
                    notify(self, &n).await;
                }
            }
        }
        progress(&Progress::FolderDone {
            destination: f.destination.clone(),
            copied: fr.copied,
        });
        self.report.folders.push(fr);
        Ok(())
    }

    /// Undoes this run: expunges what the in-memory journal recorded and deletes the
    /// folders it created, then clears the persisted journal. Falls back on the persisted
    /// journal (scan by origin) for anything else this run stored.
    async fn rollback(&mut self) -> Result<(), EngineError> {
        let plan = self.policy_journal.rollback();
        let mut by_mailbox: BTreeMap<u64, UidSet> = BTreeMap::new();
        for k in &plan.expunge {
            by_mailbox
                .entry(k.mailbox)
                .or_default()
                .insert_range(k.uid, k.uid);
        }
        for (mbx, set) in by_mailbox {
            if let Some(r) = self.mailbox_refs.get(&mbx) {
                match self.store.expunge(*r, &set).await {
                    Ok(_) | Err(StoreError::NoSuchMailbox(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        // The persisted journal covers the same run (and what a resumed run stored earlier).
        rollback_interrupted(self.store, self.account, self.job).await?;
        delete_created(self.store, self.account, &plan.delete_folders).await?;
        Ok(())
    }
}

/// Source metadata of one message.
#[derive(Debug, Clone)]
struct MessageInfo {
    uid: u32,
    flags: Flags,
    internal_date: Timestamp,
    size: u64,
    message_id: Option<String>,
}

impl MessageInfo {
    fn from_fetched(fe: &Fetched) -> Option<Self> {
        let mut info = MessageInfo {
            uid: fe.uid()?,
            flags: Flags::new(),
            internal_date: Timestamp(0),
            size: 0,
            message_id: None,
        };
        for item in &fe.items {
            match item {
                FetchAttr::Flags(fl) => info.flags = store_flags(fl),
                FetchAttr::InternalDate(d) => info.internal_date = Timestamp(d.unix_timestamp()),
                FetchAttr::Rfc822Size(s) => info.size = *s,
                FetchAttr::BodySection { data: Some(d), .. } => {
                    info.message_id = super::pop3::header_fields(d)
                        .into_iter()
                        .find(|h| h.name.eq_ignore_ascii_case("Message-ID"))
                        .map(|h| h.value.trim().to_owned())
                        .filter(|v| !v.is_empty());
                }
                _ => {}
            }
        }
        Some(info)
    }
}

fn store_flags(flags: &[Flag]) -> Flags {
    let mut out = Flags::new();
    for f in flags {
        let sys = match f {
            Flag::Seen => SystemFlags::SEEN,
            Flag::Answered => SystemFlags::ANSWERED,
            Flag::Flagged => SystemFlags::FLAGGED,
            Flag::Deleted => SystemFlags::DELETED,
            Flag::Draft => SystemFlags::DRAFT,
            Flag::Keyword(k) => {
                out.insert_keyword(k.as_str().to_owned());
                continue;
            }
            _ => continue,
        };
        out.system = out.system.union(sys);
    }
    out
}

/// A UID set with runs compressed (`1:5,7,9:10`).
fn uid_set(uids: &[u32]) -> Result<SequenceSet, EngineError> {
    let mut ranges = Vec::new();
    let mut iter = uids.iter().copied();
    let Some(mut start) = iter.next() else {
        return Err(EngineError::Remote("empty UID set".into()));
    };
    let mut end = start;
    let num = |n: u32| SeqNum::new(n).map_err(|e| EngineError::Remote(e.to_string()));
    for u in iter {
        if u == end.saturating_add(1) {
            end = u;
        } else {
            ranges.push(SeqRange::new(num(start)?, num(end)?));
            start = u;
            end = u;
        }
    }
    ranges.push(SeqRange::new(num(start)?, num(end)?));
    SequenceSet::new(ranges).map_err(|e| EngineError::Remote(e.to_string()))
}

fn remote_error(server: &str, e: imap_proto::tokio::Error) -> EngineError {
    match e {
        imap_proto::tokio::Error::Refused { .. } => EngineError::Remote(e.to_string()),
        other => EngineError::Connect {
            server: server.to_owned(),
            reason: other.to_string(),
        },
    }
}

async fn connect(source: &ImapSource) -> Result<Client<TcpStream>, EngineError> {
    let ep = &source.endpoint;
    let server = ep.server();
    let mut config = match ep.tls {
        TlsMode::Implicit => {
            ClientConfig::tls(Security::Implicit, ep.host.clone(), ep.connector()?.clone())
        }
        TlsMode::StartTls => {
            ClientConfig::tls(Security::StartTls, ep.host.clone(), ep.connector()?.clone())
        }
        _ => ClientConfig::plain(),
    };
    config.timeout = ep.timeout;
    let mut c = Client::connect((ep.host.as_str(), ep.port), config)
        .await
        .map_err(|e| remote_error(&server, e))?;
    let user = source.credentials.username.as_str();
    let auth_err = |e: imap_proto::tokio::Error| match e {
        imap_proto::tokio::Error::Refused { .. } => EngineError::Auth {
            reason: e.to_string(),
        },
        other => remote_error(&server, other),
    };
    match &source.credentials.auth {
        Auth::Password(p) if c.has_capability("AUTH=PLAIN") => c
            .authenticate_plain(user, mail_sasl::Secret::new(p.expose().clone()))
            .await
            .map_err(auth_err)?,
        Auth::Password(p) => c.login(user, p.expose()).await.map_err(auth_err)?,
        Auth::XOAuth2(t) => c
            .authenticate(
                Mechanism::XOAuth2,
                ClientCredentials::new(user, mail_sasl::Secret::new(t.expose().clone())),
            )
            .await
            .map_err(auth_err)?,
        Auth::OAuthBearer(t) => c
            .authenticate(
                Mechanism::OAuthBearer,
                ClientCredentials::new(user, mail_sasl::Secret::new(t.expose().clone()))
                    .with_host_port(ep.host.clone(), ep.port),
            )
            .await
            .map_err(auth_err)?,
    }
    Ok(c)
}

/// Known names of special-use folders on servers that do not announce RFC 6154
/// attributes (matched case-insensitively on the last name segment).
const SPECIAL_NAMES: &[(&str, SpecialUse)] = &[
    ("sent", SpecialUse::Sent),
    ("sent items", SpecialUse::Sent),
    ("sent messages", SpecialUse::Sent),
    ("sent mail", SpecialUse::Sent),
    ("drafts", SpecialUse::Drafts),
    ("trash", SpecialUse::Trash),
    ("deleted items", SpecialUse::Trash),
    ("deleted messages", SpecialUse::Trash),
    ("junk", SpecialUse::Junk),
    ("junk e-mail", SpecialUse::Junk),
    ("junk email", SpecialUse::Junk),
    ("spam", SpecialUse::Junk),
    ("bulk mail", SpecialUse::Junk),
    ("archive", SpecialUse::Archive),
    ("archives", SpecialUse::Archive),
];

/// Maps the source LIST to destination names: INBOX to INBOX, special-use folders
/// (attribute, else a well-known name at the top level or under Gmail's `[Gmail]`) to
/// ours, everything else by translating the hierarchy delimiter to ours (`/`; a `/`
/// inside a source name segment becomes `_`). Non-selectable folders are skipped (their
/// children are listed themselves). Two source folders never share a destination.
fn map_folders(
    listing: &[imap_proto::types::ListData],
    ours: &[mailstore_core::MailboxInfo],
    skip_virtual: bool,
) -> Vec<FolderMap> {
    let mut out = Vec::new();
    let mut used: HashSet<String> = HashSet::new();
    let mut used_uses: HashSet<SpecialUse> = HashSet::new();
    let mut entries: Vec<&imap_proto::types::ListData> = listing.iter().collect();
    // INBOX first, then attribute-marked special folders, then the rest by name, so a
    // real `\Sent` wins a well-known name over a plain folder called "Sent".
    entries.sort_by_key(|l| {
        let special = l.attributes.iter().any(|a| attr_use(a).is_some());
        (
            !l.mailbox.is_inbox(),
            !special,
            l.mailbox.as_str().to_owned(),
        )
    });
    for l in entries {
        if l.attributes.iter().any(|a| {
            matches!(a, MailboxAttr::NoSelect | MailboxAttr::NonExistent)
                || (skip_virtual && matches!(a, MailboxAttr::All | MailboxAttr::Flagged))
        }) {
            continue;
        }
        let name = l.mailbox.as_str().to_owned();
        if l.mailbox.is_inbox() {
            used.insert("INBOX".into());
            out.push(FolderMap {
                source: name,
                destination: "INBOX".into(),
                special_use: None,
            });
            continue;
        }
        let segments: Vec<String> = match l.delimiter {
            Some(d) => name.split(d).map(str::to_owned).collect(),
            None => vec![name.clone()],
        };
        let translated: Vec<String> = segments
            .iter()
            .map(|s| s.replace(mailstore_core::DELIMITER, "_"))
            .collect();
        let translated = translated.join(&mailstore_core::DELIMITER.to_string());
        let by_attr = l.attributes.iter().find_map(attr_use);
        let by_name = || {
            let top = segments.len() == 1
                || (segments.len() == 2
                    && segments.first().is_some_and(|s| {
                        s.eq_ignore_ascii_case("[Gmail]") || s.eq_ignore_ascii_case("[Google Mail]")
                    }));
            let last = segments.last()?.to_lowercase();
            top.then(|| {
                SPECIAL_NAMES
                    .iter()
                    .find(|(n, _)| *n == last)
                    .map(|(_, u)| *u)
            })
            .flatten()
        };
        let special = by_attr.or_else(by_name);
        let mut destination = None;
        let mut special_use = None;
        if let Some(su) = special.filter(|su| !used_uses.contains(su)) {
            let existing = ours
                .iter()
                .find(|m| m.special_use == Some(su))
                .map(|m| m.name.clone());
            let candidate = existing.clone().unwrap_or_else(|| translated.clone());
            if !used.contains(&candidate) {
                used_uses.insert(su);
                special_use = existing.is_none().then_some(su);
                destination = Some(candidate);
            }
        }
        let mut dest = destination.unwrap_or(translated);
        if used.contains(&dest) {
            let base = dest.clone();
            let mut n = 2;
            while used.contains(&dest) {
                dest = format!("{base} ({n})");
                n += 1;
            }
        }
        used.insert(dest.clone());
        out.push(FolderMap {
            source: name,
            destination: dest,
            special_use,
        });
    }
    out
}

fn attr_use(a: &MailboxAttr) -> Option<SpecialUse> {
    Some(match a {
        MailboxAttr::Sent => SpecialUse::Sent,
        MailboxAttr::Drafts => SpecialUse::Drafts,
        MailboxAttr::Trash => SpecialUse::Trash,
        MailboxAttr::Junk => SpecialUse::Junk,
        MailboxAttr::Archive => SpecialUse::Archive,
        _ => return None,
    })
}

/// A registered job (MIG-3).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MigrationJob {
    /// The job id (stable across re-runs; keys the dedupe).
    pub id: String,
    /// The destination account.
    pub account: AccountId,
    /// The source.
    pub source: ImapSource,
    /// Options.
    pub options: MigrationOptions,
}

impl MigrationJob {
    /// A job with default options.
    #[must_use]
    pub fn new(id: impl Into<String>, account: AccountId, source: ImapSource) -> Self {
        MigrationJob {
            id: id.into(),
            account,
            source,
            options: MigrationOptions::default(),
        }
    }
}

/// Runs registered jobs one at a time, in registration order (MIG-3), over a shared
/// store. Cheap to share behind an `Arc`; `run_next` may be called from a spawned task.
#[derive(Debug)]
pub struct MigrationRunner<S> {
    store: Arc<S>,
    inner: Mutex<RunnerState>,
}

#[derive(Debug, Default)]
struct RunnerState {
    queue: MigrationQueue,
    next_number: u64,
    jobs: HashMap<u64, MigrationJob>,
}

impl<S: MailStore> MigrationRunner<S> {
    /// A runner over `store`.
    pub fn new(store: Arc<S>) -> Self {
        MigrationRunner {
            store,
            inner: Mutex::new(RunnerState::default()),
        }
    }

    /// Registers a job; returns its queue number and the queued notice (how many jobs are
    /// ahead).
    ///
    /// # Errors
    /// [`EngineError::InvalidId`].
    pub fn register(&self, job: MigrationJob) -> Result<(u64, Notice), EngineError> {
        check_id(&job.id)?;
        let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        st.next_number += 1;
        let n = st.next_number;
        st.jobs.insert(n, job);
        let notice = st.queue.enqueue(n);
        Ok((n, notice))
    }

    /// Jobs waiting.
    pub fn waiting(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .queue
            .waiting()
    }

    /// Runs the next job, if none is running; returns its queue number, id and result.
    pub async fn run_next(
        &self,
        now: UnixTime,
        progress: impl FnMut(&Progress) + Send,
    ) -> Option<(u64, String, Result<MigrationReport, EngineError>)> {
        let (n, job) = {
            let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            let n = st.queue.start_next()?;
            let job = st.jobs.remove(&n)?;
            (n, job)
        };
        let result = migrate(
            self.store.as_ref(),
            job.account,
            &job.id,
            &job.source,
            &job.options,
            now,
            progress,
        )
        .await;
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .queue
            .finish(n);
        Some((n, job.id, result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_proto::types::{ListData, Mailbox};

    fn list(name: &str, delim: Option<char>, attrs: Vec<MailboxAttr>) -> ListData {
        ListData {
            attributes: attrs,
            delimiter: delim,
            mailbox: Mailbox::new(name).unwrap(),
            extended: Vec::new(),
        }
    }

    #[test]
    fn uid_sets_are_compressed() {
        let s = uid_set(&[1, 2, 3, 5, 7, 8]).unwrap();
        let shown: Vec<String> = s
            .ranges()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["1:3", "5", "7:8"]);
    }

    proptest::proptest! {
        #[test]
        fn prop_journal_roundtrip(
            run in 0u64..1_000_000,
            cuts in proptest::collection::btree_map("[^\n\r]{1,20}", (proptest::prelude::any::<u32>(), proptest::prelude::any::<u32>()), 0..6),
            created in proptest::collection::vec("[^\n\r]{1,20}", 0..5),
            touched in proptest::collection::vec("[^\n\r]{1,20}", 0..5),
        ) {
            let j = Journal { run, cuts, created, touched };
            proptest::prop_assert_eq!(Journal::decode(&j.encode()), j);
        }

        #[test]
        fn prop_uid_set_covers_exactly_the_uids(uids in proptest::collection::btree_set(1u32..500, 1..60)) {
            let v: Vec<u32> = uids.iter().copied().collect();
            let set = uid_set(&v).unwrap();
            let back: Vec<u32> = set.iter(u32::MAX).collect();
            proptest::prop_assert_eq!(back, v);
        }
    }

    #[test]
    fn journal_roundtrip() {
        let mut j = Journal {
            run: 3,
            ..Journal::default()
        };
        j.cuts.insert("Work/2024 plans".into(), (77, 12));
        j.created.push("Work".into());
        j.touched.push("INBOX".into());
        assert_eq!(Journal::decode(&j.encode()), j);
    }

    #[test]
    fn folders_map_special_use_and_delimiters() {
        let listing = vec![
            list("INBOX", Some('.'), vec![]),
            list("INBOX.Receipts", Some('.'), vec![]),
            list("Sent Items", Some('.'), vec![]),
            list("Outbox", Some('.'), vec![MailboxAttr::Sent]),
            list("[Gmail]", Some('.'), vec![MailboxAttr::NoSelect]),
            list("[Gmail].All Mail", Some('.'), vec![MailboxAttr::All]),
            list("a/b.c", Some('.'), vec![]),
        ];
        let maps = map_folders(&listing, &[], true);
        let pairs: Vec<(String, String, Option<SpecialUse>)> = maps
            .into_iter()
            .map(|m| (m.source, m.destination, m.special_use))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("INBOX".into(), "INBOX".into(), None),
                ("Outbox".into(), "Outbox".into(), Some(SpecialUse::Sent)),
                ("INBOX.Receipts".into(), "INBOX/Receipts".into(), None),
                ("Sent Items".into(), "Sent Items".into(), None),
                ("a/b.c".into(), "a_b/c".into(), None),
            ]
        );
    }
}
