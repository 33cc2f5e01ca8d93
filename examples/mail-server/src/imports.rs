//! External POP3 import (IMP-1..5) wired to the CLI and the server's scheduler, on
//! `sync_policy::engine::pop3`.
//!
//! The engine keeps the accounts' settings and ledgers in the store; the remote passwords
//! (which the engine does not store) live in the account's `import.secrets` settings blob,
//! readable by whoever can read the store, like the APOP secret. TLS to the remote server
//! is verified against `ca_file` (default: the system bundle
//! `/etc/ssl/certs/ca-certificates.crt`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mail_sasl::Secret;
use mailstore_core::{AccountId, AccountInfo, MailStore, SettingsScope, StoreError};
use serde::{Deserialize, Serialize};
use sync_policy::UnixTime;
use sync_policy::engine::pop3::{Pop3Import, Pop3Source, RegisteredImport};
use sync_policy::engine::{Auth, Credentials};
use sync_policy::import::{ImportAccountSettings, TlsMode};

/// Settings key of the remote passwords.
pub const SECRETS_KEY: &str = "import.secrets";
/// The CA bundle used when an import names none.
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// One import's secret.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImportSecret {
    /// The remote password, or the OAuth 2.0 bearer token when `oauth2` is set.
    pub password: String,
    /// PEM trust anchors for the remote server's certificate.
    pub ca_file: Option<PathBuf>,
    /// `xoauth2` or `oauthbearer`: `password` is a bearer token sent with that SASL
    /// mechanism (ACC-10). `None`: a password.
    pub oauth2: Option<String>,
}

/// The engine's credentials for a password or (with `oauth2` = `xoauth2` /
/// `oauthbearer`) a bearer token.
///
/// # Errors
/// An unknown `oauth2` mechanism.
pub fn credentials(
    username: &str,
    secret: &str,
    oauth2: Option<&str>,
) -> Result<Credentials, StoreError> {
    let auth = match oauth2.map(str::to_ascii_lowercase).as_deref() {
        None => return Ok(Credentials::password(username, secret)),
        Some("xoauth2") => Auth::XOAuth2(Secret::new(secret.to_string())),
        Some("oauthbearer") => Auth::OAuthBearer(Secret::new(secret.to_string())),
        Some(other) => {
            return Err(StoreError::InvalidArgument(format!(
                "--oauth2: expected xoauth2 or oauthbearer, got {other:?}"
            )));
        }
    };
    Ok(Credentials {
        username: username.to_string(),
        auth,
    })
}

impl std::fmt::Debug for ImportSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportSecret")
            .field("ca_file", &self.ca_file)
            .field("oauth2", &self.oauth2)
            .finish_non_exhaustive()
    }
}

/// The `import.secrets` blob: import id to secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImportSecrets {
    /// By import id.
    pub imports: BTreeMap<String, ImportSecret>,
}

fn engine_err(e: &sync_policy::engine::EngineError) -> StoreError {
    StoreError::InvalidArgument(e.to_string())
}

async fn secrets<S: MailStore>(store: &S, account: AccountId) -> Result<ImportSecrets, StoreError> {
    Ok(
        mailstore_core::settings::load(store, &SettingsScope::Account(account), SECRETS_KEY)
            .await?
            .unwrap_or_default(),
    )
}

async fn save_secrets<S: MailStore>(
    store: &S,
    account: AccountId,
    s: &ImportSecrets,
) -> Result<(), StoreError> {
    mailstore_core::settings::save(store, &SettingsScope::Account(account), SECRETS_KEY, s).await
}

/// Registers an import (IMP-1: validated, at most 10, plan gate) with its password.
///
/// # Errors
/// The reason it cannot be registered.
pub async fn add<S: MailStore>(
    store: &S,
    account: &AccountInfo,
    id: &str,
    settings: ImportAccountSettings,
    secret: ImportSecret,
) -> Result<Vec<String>, StoreError> {
    let policy = crate::policy::effective(store, account).await?;
    policy
        .check_feature(sync_policy::access::PlanFeature::ExternalImport)
        .map_err(|r| StoreError::NotAllowed(r.text()))?;
    let (host, port, tls) = settings.server.endpoint();
    let line = format!(
        "import {id} added for {}: {}@{host}:{port} ({tls:?}) into {}",
        account.address, settings.username, settings.destination_folder
    );
    sync_policy::engine::pop3::add_account(store, account.id, RegisteredImport::new(id, settings))
        .await
        .map_err(|e| engine_err(&e))?;
    let mut s = secrets(store, account.id).await?;
    s.imports.insert(id.to_string(), secret);
    save_secrets(store, account.id, &s).await?;
    Ok(vec![line])
}

/// Removes an import and its secret (its ledger stays, so re-adding the same id imports
/// nothing twice).
///
/// # Errors
/// Unknown id, store errors.
pub async fn remove<S: MailStore>(
    store: &S,
    account: &AccountInfo,
    id: &str,
) -> Result<Vec<String>, StoreError> {
    let mut list = sync_policy::engine::pop3::load_accounts(store, account.id)
        .await
        .map_err(|e| engine_err(&e))?;
    let before = list.len();
    list.retain(|r| r.id != id);
    if list.len() == before {
        return Err(StoreError::NotFound(format!(
            "import {id} of {}",
            account.address
        )));
    }
    sync_policy::engine::pop3::save_accounts(store, account.id, &list)
        .await
        .map_err(|e| engine_err(&e))?;
    let mut s = secrets(store, account.id).await?;
    s.imports.remove(id);
    save_secrets(store, account.id, &s).await?;
    Ok(vec![format!("import {id} of {} removed", account.address)])
}

/// Lists the imports with their automatic-fetch state (IMP-5: why it turned itself off).
///
/// # Errors
/// Store errors.
pub async fn status<S: MailStore>(
    store: &S,
    account: &AccountInfo,
) -> Result<Vec<String>, StoreError> {
    let list = sync_policy::engine::pop3::load_accounts(store, account.id)
        .await
        .map_err(|e| engine_err(&e))?;
    let secrets = secrets(store, account.id).await?;
    let mut out = Vec::new();
    for r in &list {
        let auth = secrets
            .imports
            .get(&r.id)
            .and_then(|s| s.oauth2.as_deref())
            .map(|m| format!("  auth={m}"))
            .unwrap_or_default();
        let imp = Pop3Import::new(store, account.id, &r.id).map_err(|e| engine_err(&e))?;
        let state = imp.auto_state().await.map_err(|e| engine_err(&e))?;
        let next = imp
            .next_due(&r.settings)
            .await
            .map_err(|e| engine_err(&e))?;
        let ledger = imp.ledger().await.map_err(|e| engine_err(&e))?;
        let (host, port, _) = r.settings.server.endpoint();
        let auto = match (&state.disabled_reason, next) {
            (Some(reason), _) => format!("automatic fetch OFF: {reason}"),
            (None, None) => "automatic fetch off".to_string(),
            (None, Some(t)) => format!("next fetch {}", crate::admin::fmt_time(t.0)),
        };
        out.push(format!(
            "{}  {}@{host}:{port} -> {}  known={}  failures={}  last-run={}  {auto}{auth}",
            r.id,
            r.settings.username,
            r.settings.destination_folder,
            ledger.len(),
            state.consecutive_failures,
            state
                .last_run
                .map_or_else(|| "never".to_string(), |t| crate::admin::fmt_time(t.0)),
        ));
    }
    if out.is_empty() {
        out.push(format!("no imports for {}", account.address));
    }
    Ok(out)
}

fn source(r: &RegisteredImport, secret: &ImportSecret) -> Result<Pop3Source, StoreError> {
    let mut src = Pop3Source::new(
        r.settings.clone(),
        credentials(
            &r.settings.username,
            &secret.password,
            secret.oauth2.as_deref(),
        )?,
    );
    let (_, _, tls) = r.settings.server.endpoint();
    if tls != TlsMode::None {
        let path = secret
            .ca_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_FILE));
        let pem = std::fs::read(&path).map_err(|e| StoreError::Io {
            path: path.clone(),
            source: e,
        })?;
        let config = mail_net::tls::client_config_from_pem_roots(&pem)
            .map_err(|e| StoreError::InvalidArgument(format!("{}: {e}", path.display())))?;
        src.connector = Some(mail_net::TlsConnector::from(config));
    }
    Ok(src)
}

/// Fetches now (a manual run; the outcome also counts for automatic fetch).
///
/// # Errors
/// Unknown id, or the run's error with its reason.
pub async fn run<S: MailStore>(
    store: &S,
    account: &AccountInfo,
    id: &str,
    now: UnixTime,
) -> Result<Vec<String>, StoreError> {
    let list = sync_policy::engine::pop3::load_accounts(store, account.id)
        .await
        .map_err(|e| engine_err(&e))?;
    let r = list
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| StoreError::NotFound(format!("import {id} of {}", account.address)))?;
    let secret = secrets(store, account.id)
        .await?
        .imports
        .get(id)
        .cloned()
        .unwrap_or_default();
    let src = source(r, &secret)?;
    let policy = crate::policy::effective(store, account).await?;
    let imp = Pop3Import::new(store, account.id, id).map_err(|e| engine_err(&e))?;
    let result = imp.run(&src, Some(&policy.filters), now).await;
    match result {
        Ok(report) => {
            imp.record_success(now).await.map_err(|e| engine_err(&e))?;
            let mut out = vec![format!(
                "import {id}: {} new, {} already imported, {} skipped (too large), {} deleted on the server",
                report.imported.len(),
                report.already_imported,
                report.skipped_too_large.len(),
                report.remote_deleted
            )];
            out.extend(report.imported.iter().map(|m| format!("  {m:?}")));
            Ok(out)
        }
        Err(e) => {
            let _ = imp.record_failure(now, &e.to_string()).await;
            Err(engine_err(&e))
        }
    }
}

/// Turns automatic fetch back on after it turned itself off (IMP-5): the failure count
/// starts afresh and the next scheduler pass fetches.
///
/// # Errors
/// Unknown id, store errors.
pub async fn reenable<S: MailStore>(
    store: &S,
    account: &AccountInfo,
    id: &str,
) -> Result<Vec<String>, StoreError> {
    let list = sync_policy::engine::pop3::load_accounts(store, account.id)
        .await
        .map_err(|e| engine_err(&e))?;
    let r = list
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| StoreError::NotFound(format!("import {id} of {}", account.address)))?;
    let imp = Pop3Import::new(store, account.id, id).map_err(|e| engine_err(&e))?;
    let was = imp
        .auto_state()
        .await
        .map_err(|e| engine_err(&e))?
        .disabled_reason;
    imp.reenable().await.map_err(|e| engine_err(&e))?;
    let note = if r.settings.auto_fetch {
        ""
    } else {
        " (this import was added with --no-auto: it still fetches only on `import run`)"
    };
    Ok(vec![match was {
        Some(_) => format!(
            "import {id} of {}: automatic fetch turned back on{note}",
            account.address
        ),
        None => format!(
            "import {id} of {}: automatic fetch was not off; failure count reset{note}",
            account.address
        ),
    }])
}

/// One scheduler pass: every due import of every account (IMP-5).
///
/// # Errors
/// Store errors listing accounts.
pub async fn run_due<S: MailStore>(store: &S, now: UnixTime) -> Result<usize, StoreError> {
    let mut ran = 0;
    for account in store.list_accounts().await? {
        let list = match sync_policy::engine::pop3::load_accounts(store, account.id).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(account = account.address, "imports: {e}");
                continue;
            }
        };
        if list.is_empty() {
            continue;
        }
        let secrets = secrets(store, account.id).await?;
        let policy = crate::policy::effective(store, &account).await?;
        for r in &list {
            let secret = secrets.imports.get(&r.id).cloned().unwrap_or_default();
            let src = match source(r, &secret) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(account = account.address, import = r.id, "imports: {e}");
                    continue;
                }
            };
            let Ok(imp) = Pop3Import::new(store, account.id, &r.id) else {
                continue;
            };
            match imp.run_if_due(&src, Some(&policy.filters), now).await {
                Ok(Some(Ok(report))) => {
                    ran += 1;
                    tracing::info!(
                        account = account.address,
                        import = r.id,
                        new = report.imported.len(),
                        "import run"
                    );
                }
                Ok(Some(Err(e))) => {
                    ran += 1;
                    tracing::warn!(
                        account = account.address,
                        import = r.id,
                        "import failed: {e}"
                    );
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(account = account.address, import = r.id, "imports: {e}"),
            }
        }
    }
    Ok(ran)
}

/// The automatic-fetch scheduler inside the server: [`run_due`] every `tick` until
/// `shutdown`.
pub fn spawn_scheduler<S: MailStore + 'static>(
    store: Arc<S>,
    tick: Duration,
    shutdown: mail_net::Shutdown,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(tick.max(Duration::from_secs(1)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                _ = interval.tick() => {
                    let now = UnixTime::from_system_time(std::time::SystemTime::now());
                    if let Err(e) = run_due(&*store, now).await {
                        tracing::warn!("import scheduler: {e}");
                    }
                }
            }
        }
    })
}
