//! IMAP migration jobs (MIG-1..6) wired to the CLI, on `sync_policy::engine::migration`.
//!
//! Jobs are registered per account in the `migrate.jobs` settings blob (with the source
//! password, readable by whoever can read the store) and run in registration order
//! (MIG-3). The engine does the copying, the one-shot cut-off, the no-duplicates re-run
//! and the rollback of a failed job, and delivers the start/progress/completion notices.

use std::path::PathBuf;

use mailstore_core::{AccountId, AccountInfo, MailStore, SettingsScope, StoreError};
use serde::{Deserialize, Serialize};
use sync_policy::UnixTime;
use sync_policy::engine::migration::{ImapSource, MigrationOptions, Progress};
use sync_policy::import::TlsMode;

/// Settings key of the jobs.
pub const JOBS_KEY: &str = "migrate.jobs";
/// Jobs kept per account.
pub const MAX_JOBS: usize = 50;

/// One registered job.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MigrateJob {
    /// The job id.
    pub id: String,
    /// Source host.
    pub host: String,
    /// Source port.
    pub port: u16,
    /// Source TLS mode.
    pub tls: TlsMode,
    /// Source login.
    pub username: String,
    /// Source password, or the OAuth 2.0 bearer token when `oauth2` is set.
    pub password: String,
    /// `xoauth2` or `oauthbearer`: `password` is a bearer token (ACC-10).
    pub oauth2: Option<String>,
    /// PEM trust anchors for the source (default: the system bundle).
    pub ca_file: Option<PathBuf>,
    /// The outcome of the last run, for `migrate status`.
    pub last: Option<String>,
}

impl std::fmt::Debug for MigrateJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrateJob")
            .field("id", &self.id)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("oauth2", &self.oauth2)
            .finish_non_exhaustive()
    }
}

/// The `migrate.jobs` blob.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MigrateJobs {
    /// In registration order.
    pub jobs: Vec<MigrateJob>,
}

async fn load<S: MailStore>(store: &S, account: AccountId) -> Result<MigrateJobs, StoreError> {
    Ok(
        mailstore_core::settings::load(store, &SettingsScope::Account(account), JOBS_KEY)
            .await?
            .unwrap_or_default(),
    )
}

async fn save<S: MailStore>(
    store: &S,
    account: AccountId,
    j: &MigrateJobs,
) -> Result<(), StoreError> {
    mailstore_core::settings::save(store, &SettingsScope::Account(account), JOBS_KEY, j).await
}

/// Registers a job (MIG-1), after the plan gate.
///
/// # Errors
/// Plan, duplicate id, too many jobs, store errors.
pub async fn add<S: MailStore>(
    store: &S,
    account: &AccountInfo,
    job: MigrateJob,
) -> Result<Vec<String>, StoreError> {
    crate::policy::effective(store, account)
        .await?
        .check_feature(sync_policy::access::PlanFeature::ImapMigration)
        .map_err(|r| StoreError::NotAllowed(r.text()))?;
    if job.id.is_empty()
        || job.id.len() > 64
        || !job
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(StoreError::InvalidArgument(
            "a job id is 1 to 64 characters of A-Z a-z 0-9 - _ .".into(),
        ));
    }
    let mut jobs = load(store, account.id).await?;
    if jobs.jobs.iter().any(|j| j.id == job.id) {
        return Err(StoreError::InvalidArgument(format!(
            "migration job {} already exists",
            job.id
        )));
    }
    if jobs.jobs.len() >= MAX_JOBS {
        return Err(StoreError::InvalidArgument(format!(
            "at most {MAX_JOBS} migration jobs per account"
        )));
    }
    let line = format!(
        "migration job {} (number {}) added for {}: {}@{}:{}",
        job.id,
        jobs.jobs.len() + 1,
        account.address,
        job.username,
        job.host,
        job.port
    );
    jobs.jobs.push(job);
    save(store, account.id, &jobs).await?;
    Ok(vec![line])
}

/// `migrate status`: the jobs in order with their last outcome.
///
/// # Errors
/// Store errors.
pub async fn status<S: MailStore>(
    store: &S,
    account: &AccountInfo,
) -> Result<Vec<String>, StoreError> {
    let jobs = load(store, account.id).await?;
    if jobs.jobs.is_empty() {
        return Ok(vec![format!("no migration jobs for {}", account.address)]);
    }
    Ok(jobs
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| {
            format!(
                "{}. {}  {}@{}:{}  {}{}",
                i + 1,
                j.id,
                j.username,
                j.host,
                j.port,
                j.last.as_deref().unwrap_or("not run yet"),
                j.oauth2
                    .as_deref()
                    .map(|m| format!("  auth={m}"))
                    .unwrap_or_default()
            )
        })
        .collect())
}

/// The spellings of a TLS mode on the command line, in `[[migration_templates]]` and on the
/// admin socket: one table, so parsing and printing cannot drift apart.
const TLS_MODE_NAMES: [(&str, TlsMode); 3] = [
    ("implicit", TlsMode::Implicit),
    ("starttls", TlsMode::StartTls),
    ("none", TlsMode::None),
];

/// `implicit`, `starttls` or `none` as a [`TlsMode`].
pub fn parse_tls_mode(name: &str) -> Option<TlsMode> {
    TLS_MODE_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, mode)| mode)
}

/// The name [`parse_tls_mode`] reads back.
pub fn tls_mode_name(mode: TlsMode) -> &'static str {
    TLS_MODE_NAMES
        .iter()
        .find(|(_, m)| *m == mode)
        .map_or("none", |&(n, _)| n)
}

fn source(job: &MigrateJob) -> Result<ImapSource, StoreError> {
    let mut endpoint = sync_policy::engine::Endpoint::new(job.host.clone(), job.port, job.tls);
    if job.tls != TlsMode::None {
        let path = job
            .ca_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::imports::SYSTEM_CA_FILE));
        let pem = std::fs::read(&path).map_err(|e| StoreError::Io {
            path: path.clone(),
            source: e,
        })?;
        let config = mail_net::tls::client_config_from_pem_roots(&pem)
            .map_err(|e| StoreError::InvalidArgument(format!("{}: {e}", path.display())))?;
        endpoint = endpoint.with_connector(mail_net::TlsConnector::from(config));
    }
    Ok(ImapSource::new(
        endpoint,
        crate::imports::credentials(&job.username, &job.password, job.oauth2.as_deref())?,
    ))
}

/// Runs one job (or, with `id = None`, every job in registration order, MIG-3); returns
/// the per-folder lines and the outcome. A failed job is rolled back by the engine
/// (MIG-4) and reported; later jobs still run. `progress` sees every engine event as it
/// happens (the CLI draws its progress bars from them).
///
/// # Errors
/// Unknown id, store errors.
pub async fn run<S: MailStore>(
    store: &S,
    account: &AccountInfo,
    id: Option<&str>,
    now: UnixTime,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Vec<String>, StoreError> {
    let mut jobs = load(store, account.id).await?;
    if let Some(id) = id
        && !jobs.jobs.iter().any(|j| j.id == id)
    {
        return Err(StoreError::NotFound(format!(
            "migration job {id} of {}",
            account.address
        )));
    }
    let mut out = Vec::new();
    let opts = MigrationOptions::default();
    for job in jobs.jobs.iter_mut() {
        if id.is_some_and(|id| id != job.id) {
            continue;
        }
        let src = source(job)?;
        let mut lines = Vec::new();
        let result = sync_policy::engine::migration::migrate(
            store,
            account.id,
            &job.id,
            &src,
            &opts,
            now,
            |p: &Progress| {
                progress(p);
                if let Progress::FolderDone {
                    destination,
                    copied,
                } = p
                {
                    lines.push(format!("  {destination}: {copied} copied"));
                }
            },
        )
        .await;
        let summary = match &result {
            Ok(r) => format!(
                "completed: {} copied ({} bytes), {} already there, {} too large",
                r.copied,
                r.bytes,
                r.already_copied,
                r.too_large.len()
            ),
            Err(e) => format!("failed and rolled back: {e}"),
        };
        out.push(format!("migration job {}: {summary}", job.id));
        out.extend(lines);
        job.last = Some(format!(
            "{} (at {})",
            summary,
            crate::admin::fmt_time(now.0)
        ));
    }
    save(store, account.id, &jobs).await?;
    Ok(out)
}
