//! `mail-server`: the reference mail server of the toolkit.
//!
//! It serves POP3 (STLS on the plain port, and implicit TLS) from the INBOX of a durable
//! [`mailstore_core::DiskStore`], through `pop3_proto::tokio::serve`, with listeners,
//! limits, TLS and graceful shutdown from `mail-net`. Admin subcommands (users, app
//! passwords, local delivery, export/import) work whether the server runs or not: they
//! open the store directly, or go through the server's admin socket when the store is
//! locked by the running server.
//!
//! ```text
//! cargo run --release -p mail-server -- serve              # embedded development config
//! mail-server --config /etc/mail/server.toml serve
//! mail-server --config FILE check-config
//! echo 'pw' | mail-server --config FILE user add alice@example.test
//! mail-server --config FILE deliver alice@example.test < message.eml
//! ```
//!
//! See `docs/server.md` for the configuration reference and client settings.

mod admin;
mod config;
mod error;
mod imap;
mod imports;
mod limits;
mod migrate;
mod mime;
mod mx;
mod outbound;
mod policy;
mod pop3;
mod recent;
mod serve;
mod smtp;
mod socket;
mod store;
mod transfer;

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use mailstore_core::StoreError;

use crate::admin::{AccessChange, MailFormat, Request};
use crate::config::Config;
use crate::error::ServerError;

/// The reference mail server and its admin commands.
#[derive(Debug, Parser)]
#[command(
    name = "mail-server",
    version,
    about = "A mail server: POP3, IMAP and SMTP (inbound, submission, LMTP) on one durable store, with admin commands",
    after_help = "Try it: `mail-server serve` (no config) starts a demo on 127.0.0.1 with the account \
demo@example.test / demo-password and prints commands to try.\n\
Production: write a config file (docs/server.md has every key), check it with \
`mail-server -c FILE check-config`, then `mail-server -c FILE serve`.\n\
Admin commands work while the server runs (through its admin socket)."
)]
struct Cli {
    /// Configuration file (TOML). Without it: the embedded development configuration
    /// (data in ./mail-data, listeners on 127.0.0.1: POP3 2110/2995, IMAP 2143/2993, SMTP
    /// 2525, submission 2587/2465; clear-text login allowed from loopback).
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "MAIL_SERVER_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of the `import add` variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve POP3, IMAP and SMTP on the configured listeners until SIGINT or SIGTERM.
    Serve,
    /// Validate the configuration and print the effective settings.
    CheckConfig,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage app passwords (per-device passwords for mail apps).
    #[command(subcommand, name = "app-password")]
    AppPassword(AppPasswordCommand),
    /// Deliver a message read from stdin (local delivery agent).
    Deliver {
        /// Recipient address (or alias).
        address: String,
        /// Folder to deliver into.
        #[arg(long, default_value = "INBOX")]
        folder: String,
    },
    /// Export an account's mail as plain Maildir or mbox.
    Export {
        /// The account.
        address: String,
        /// Destination directory.
        path: PathBuf,
        /// `maildir` or `mbox`.
        #[arg(long, default_value = "maildir")]
        format: String,
    },
    /// Import plain Maildir or mbox into an account (`import ADDRESS PATH`), or manage
    /// external POP3 imports (`import add|list|remove|run|status`, docs/policy.md).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Import {
        /// External POP3 imports.
        #[command(subcommand)]
        action: Option<ImportCommand>,
        /// The account.
        #[arg(required = true)]
        address: Option<String>,
        /// Source directory (Maildir) or file/directory (mbox).
        #[arg(required = true)]
        path: Option<PathBuf>,
        /// `maildir` or `mbox`.
        #[arg(long, default_value = "maildir")]
        format: String,
        /// The folder a single mbox file goes into (default INBOX).
        #[arg(long)]
        folder: Option<String>,
    },
    /// Show or change account / organisation policy settings (docs/policy.md).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// IMAP migration jobs (MIG-1..6).
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Upload `.eml` files into a folder (bad files are reported, good ones kept).
    Upload {
        /// The account.
        #[arg(long)]
        user: String,
        /// The destination folder.
        #[arg(long, default_value = "INBOX")]
        folder: String,
        /// The `.eml` files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Retention (POP-7): delete mail older than each account's retention period.
    #[command(subcommand)]
    Retention(RetentionCommand),
}

/// `policy` subcommands.
#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Print the settings (TOML) of an account or an organisation.
    Show {
        /// The account (full address).
        #[arg(long, conflicts_with = "org", required_unless_present = "org")]
        user: Option<String>,
        /// The organisation (domain).
        #[arg(long)]
        org: Option<String>,
    },
    /// Change one setting: `policy set --user U pop3.on_delete keep_original`.
    Set {
        /// The account (full address).
        #[arg(long, conflicts_with = "org", required_unless_present = "org")]
        user: Option<String>,
        /// The organisation (domain).
        #[arg(long)]
        org: Option<String>,
        /// Dotted key, as `policy show` prints it.
        key: String,
        /// A TOML value (`true`, `30`, `"News"`, `[...]`, `{...}`), `none` to unset.
        value: String,
    },
}

/// `import` subcommands: external POP3 accounts (IMP-1..5).
// Parsed once per run: the size of the `add` variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Register an external POP3 account; its password (or, with --oauth2, its bearer
    /// token) is read from stdin.
    Add {
        /// The local account.
        #[arg(long)]
        user: String,
        /// An id for this import (letters, digits, `-_.`).
        #[arg(long)]
        id: String,
        /// `gmail`, `yahoo`, `outlook` or `custom` (then --host, --port, --tls).
        #[arg(long, default_value = "custom")]
        provider: String,
        /// Remote host (custom).
        #[arg(long)]
        host: Option<String>,
        /// Remote port (custom; default 995).
        #[arg(long, default_value_t = 995)]
        port: u16,
        /// `implicit`, `starttls` or `none` (custom).
        #[arg(long, default_value = "implicit")]
        tls: String,
        /// Remote login name.
        #[arg(long)]
        username: String,
        /// Destination folder.
        #[arg(long, default_value = "INBOX")]
        folder: String,
        /// Run the account's filter rules on imported mail.
        #[arg(long)]
        apply_filters: bool,
        /// Do not fetch automatically every 10 minutes.
        #[arg(long)]
        no_auto: bool,
        /// `keep` (default) or `delete` the remote copy once imported.
        #[arg(long, default_value = "keep")]
        remote: String,
        /// PEM trust anchors for the remote server (default: the system bundle).
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Log in with an OAuth 2.0 bearer token through this SASL mechanism instead of a
        /// password (`xoauth2` or `oauthbearer`); the token is read from stdin or --token-file.
        #[arg(long, value_parser = ["xoauth2", "oauthbearer"])]
        oauth2: Option<String>,
        /// Read the bearer token from this file (first line) instead of stdin.
        #[arg(long, requires = "oauth2", value_name = "FILE")]
        token_file: Option<PathBuf>,
    },
    /// The account's imports and their automatic-fetch state.
    List {
        /// The local account.
        #[arg(long)]
        user: String,
    },
    /// Remove an import.
    Remove {
        /// The local account.
        #[arg(long)]
        user: String,
        /// The import's id.
        #[arg(long)]
        id: String,
    },
    /// Fetch now.
    Run {
        /// The local account.
        #[arg(long)]
        user: String,
        /// The import's id.
        #[arg(long)]
        id: String,
    },
    /// Turn automatic fetch back on after it turned itself off (see `status`).
    Reenable {
        /// The local account.
        #[arg(long)]
        user: String,
        /// The import's id.
        #[arg(long)]
        id: String,
    },
    /// Like `list`: shows why automatic fetch turned itself off.
    Status {
        /// The local account.
        #[arg(long)]
        user: String,
    },
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn import_request(action: ImportCommand) -> Result<Request, ServerError> {
    Ok(match action {
        ImportCommand::Add {
            user,
            id,
            provider,
            host,
            port,
            tls,
            username,
            folder,
            apply_filters,
            no_auto,
            remote,
            ca_file,
            oauth2,
            token_file,
        } => {
            let server = match provider.as_str() {
                "gmail" | "yahoo" | "outlook" => format!("provider = {}", toml_str(&provider)),
                "custom" => {
                    let tls = match tls.as_str() {
                        "implicit" => "implicit",
                        "starttls" => "start_tls",
                        "none" => "none",
                        other => {
                            return Err(ServerError::Usage(format!(
                                "--tls: expected implicit, starttls or none, got {other:?}"
                            )));
                        }
                    };
                    let host = host.ok_or_else(|| {
                        ServerError::Usage("--host is required with --provider custom".into())
                    })?;
                    format!(
                        "provider = \"custom\"\nhost = {}\nport = {port}\ntls = \"{tls}\"",
                        toml_str(&host)
                    )
                }
                other => {
                    return Err(ServerError::Usage(format!(
                        "--provider: expected gmail, yahoo, outlook or custom, got {other:?}"
                    )));
                }
            };
            let remote = match remote.as_str() {
                "keep" => "{ mode = \"keep\" }",
                "delete" => "{ mode = \"when_imported\" }",
                other => {
                    return Err(ServerError::Usage(format!(
                        "--remote: expected keep or delete, got {other:?}"
                    )));
                }
            };
            let settings = format!(
                "username = {}\ndestination_folder = {}\napply_filters = {apply_filters}\nauto_fetch = {}\nremote_deletion = {remote}\n[server]\n{server}\n",
                toml_str(&username),
                toml_str(&folder),
                !no_auto
            );
            Request::ImportAdd {
                address: user,
                id,
                settings,
                password: read_login_secret("remote password", oauth2.is_some(), token_file)?,
                ca_file: ca_file
                    .map(|p| absolute(&p).map(|p| p.to_string_lossy().into_owned()))
                    .transpose()?,
                oauth2,
            }
        }
        ImportCommand::List { user } | ImportCommand::Status { user } => {
            Request::ImportStatus { address: user }
        }
        ImportCommand::Remove { user, id } => Request::ImportRemove { address: user, id },
        ImportCommand::Run { user, id } => Request::ImportRun { address: user, id },
        ImportCommand::Reenable { user, id } => Request::ImportReenable { address: user, id },
    })
}

/// `migrate` subcommands.
#[derive(Debug, Subcommand)]
enum MigrateCommand {
    /// Register a job; the source password (or, with --oauth2, the bearer token) is read
    /// from stdin.
    Add {
        /// The local account.
        #[arg(long)]
        user: String,
        /// An id for the job (letters, digits, `-_.`).
        #[arg(long)]
        id: String,
        /// Source IMAP host.
        #[arg(
            long,
            required_unless_present = "template",
            conflicts_with = "template"
        )]
        host: Option<String>,
        /// Source port.
        #[arg(long, default_value_t = 993, conflicts_with = "template")]
        port: u16,
        /// `implicit`, `starttls` or `none`.
        #[arg(long, default_value = "implicit", conflicts_with = "template")]
        tls: String,
        /// A source server the administrator defined in `[[migration_templates]]` of the
        /// configuration (host, port and TLS mode come from there).
        #[arg(long)]
        template: Option<String>,
        /// Source login.
        #[arg(long)]
        username: String,
        /// PEM trust anchors for the source (default: the system bundle).
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Log in with an OAuth 2.0 bearer token through this SASL mechanism instead of a
        /// password (`xoauth2` or `oauthbearer`); the token is read from stdin or --token-file.
        #[arg(long, value_parser = ["xoauth2", "oauthbearer"])]
        oauth2: Option<String>,
        /// Read the bearer token from this file (first line) instead of stdin.
        #[arg(long, requires = "oauth2", value_name = "FILE")]
        token_file: Option<PathBuf>,
    },
    /// Run one job, or every job in registration order.
    Run {
        /// The local account.
        #[arg(long)]
        user: String,
        /// The job; all jobs when absent.
        #[arg(long)]
        id: Option<String>,
    },
    /// The jobs and their outcomes.
    Status {
        /// The local account.
        #[arg(long)]
        user: String,
    },
}

fn migrate_request(c: MigrateCommand, config: &Config) -> Result<Request, ServerError> {
    Ok(match c {
        MigrateCommand::Add {
            user,
            id,
            host,
            port,
            tls,
            username,
            ca_file,
            oauth2,
            token_file,
            template,
        } => {
            let (host, port, tls) = match template {
                Some(name) => {
                    let t = config
                        .migration_templates
                        .iter()
                        .find(|t| t.name == name)
                        .ok_or_else(|| {
                            let known: Vec<&str> = config
                                .migration_templates
                                .iter()
                                .map(|t| t.name.as_str())
                                .collect();
                            ServerError::Usage(format!(
                                "--template {name:?}: no such [[migration_templates]] entry in the configuration (defined: {})",
                                if known.is_empty() { "none".to_string() } else { known.join(", ") }
                            ))
                        })?;
                    (t.host.clone(), t.port, t.tls.clone())
                }
                None => (host.unwrap_or_default(), port, tls),
            };
            let tls = migrate::parse_tls_mode(&tls).ok_or_else(|| {
                ServerError::Usage(format!(
                    "--tls: expected implicit, starttls or none, got {tls:?}"
                ))
            })?;
            Request::MigrateAdd {
                address: user,
                job: migrate::MigrateJob {
                    id,
                    host,
                    port,
                    tls,
                    username,
                    password: read_login_secret("source password", oauth2.is_some(), token_file)?,
                    ca_file: ca_file.map(|p| absolute(&p)).transpose()?,
                    oauth2,
                    last: None,
                },
            }
        }
        MigrateCommand::Run { user, id } => Request::MigrateRun { address: user, id },
        MigrateCommand::Status { user } => Request::MigrateStatus { address: user },
    })
}

/// `retention` subcommands.
#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Run the retention pass now (the server also runs it every `policy.retention_interval`).
    RunNow {
        /// Run as if it were this Unix time (seconds), e.g. to test a retention period.
        #[arg(long)]
        at: Option<i64>,
    },
}

fn policy_target(user: Option<String>, org: Option<String>) -> policy::PolicyTarget {
    match (user, org) {
        (Some(u), _) => policy::PolicyTarget::User(u),
        (None, Some(o)) => policy::PolicyTarget::Org(o),
        (None, None) => policy::PolicyTarget::Org(String::new()),
    }
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account; the password is read from stdin (one line).
    Add {
        /// Full address, e.g. alice@example.test.
        address: String,
    },
    /// Change an account's password (read from stdin, one line).
    Passwd {
        /// Full address.
        address: String,
    },
    /// List the accounts.
    List,
    /// Enable or disable POP3, IMAP or SMTP for an account.
    Access {
        /// Full address.
        address: String,
        /// POP3 on or off.
        #[arg(long, value_parser = parse_onoff)]
        pop3: Option<bool>,
        /// IMAP on or off.
        #[arg(long, value_parser = parse_onoff)]
        imap: Option<bool>,
        /// SMTP submission on or off.
        #[arg(long, value_parser = parse_onoff)]
        smtp: Option<bool>,
    },
    /// Set an account's quota (storage in bytes with an optional K/M/G suffix, and a
    /// message count; `unlimited` removes a limit, an absent option keeps it).
    Quota {
        /// Full address.
        address: String,
        /// Storage limit, e.g. 2G.
        #[arg(long, value_parser = admin::QuotaChange::parse)]
        storage: Option<admin::QuotaChange>,
        /// Message count limit.
        #[arg(long, value_parser = admin::QuotaChange::parse)]
        messages: Option<admin::QuotaChange>,
    },
    /// Store the plaintext-equivalent secret that APOP needs (read from stdin), or remove
    /// it with --remove. Anyone who can read the store can log in with it.
    ApopSecret {
        /// Full address.
        address: String,
        /// Remove the secret (APOP off for this account).
        #[arg(long)]
        remove: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AppPasswordCommand {
    /// Generate an app password; it is printed once.
    Add {
        /// Full address.
        address: String,
        /// A name to recognise it by (e.g. the device).
        #[arg(default_value = "app")]
        name: String,
    },
    /// List an account's app passwords.
    List {
        /// Full address.
        address: String,
    },
    /// Revoke an app password.
    Revoke {
        /// Full address.
        address: String,
        /// Its name.
        name: String,
    },
}

fn parse_onoff(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" | "enable" | "enabled" => Ok(true),
        "off" | "no" | "false" | "disable" | "disabled" => Ok(false),
        _ => Err(format!("expected on or off, got {s:?}")),
    }
}

fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// A remote login secret: the password from stdin, or (OAuth 2.0) the bearer token from
/// `token_file` (its first line) or stdin.
fn read_login_secret(
    what: &str,
    oauth2: bool,
    token_file: Option<PathBuf>,
) -> Result<String, ServerError> {
    if !oauth2 {
        return read_secret_line(what);
    }
    let Some(path) = token_file else {
        return read_secret_line("bearer token");
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ServerError::io(format!("reading the token file {}", path.display()), e))?;
    let token = text.lines().next().unwrap_or_default().trim();
    if token.is_empty() {
        return Err(ServerError::Usage(format!(
            "the token file {} is empty (put the bearer token on its first line)",
            path.display()
        )));
    }
    Ok(token.to_string())
}

fn read_secret_line(what: &str) -> Result<String, ServerError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{what}: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .map_err(|e| ServerError::io(format!("reading the {what} from stdin"), e))?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(ServerError::Usage(format!(
            "no {what} on stdin (give it as one line)"
        )));
    }
    Ok(line.to_string())
}

fn read_message(limit: u64) -> Result<Bytes, ServerError> {
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| ServerError::io("reading the message from stdin", e))?;
    if buf.len() as u64 > limit {
        return Err(ServerError::Usage(format!(
            "message refused, nothing stored: the message is over the limit of {limit} bytes (max_message_size)"
        )));
    }
    Ok(Bytes::from(buf))
}

fn absolute(path: &Path) -> Result<PathBuf, ServerError> {
    std::path::absolute(path)
        .map_err(|e| ServerError::io(format!("resolving {}", path.display()), e))
}

fn format_arg(s: &str) -> Result<MailFormat, ServerError> {
    MailFormat::parse(s)
        .ok_or_else(|| ServerError::Usage(format!("unknown format {s:?}: use maildir or mbox")))
}

/// Builds the admin request for a subcommand (reading stdin where it needs to).
fn request_for(command: Command, config: &Config) -> Result<Request, ServerError> {
    Ok(match command {
        Command::User(UserCommand::Add { address }) => Request::UserAdd {
            address,
            password: read_secret_line("password")?,
        },
        Command::User(UserCommand::Passwd { address }) => Request::UserPasswd {
            address,
            password: read_secret_line("new password")?,
        },
        Command::User(UserCommand::List) => Request::UserList,
        Command::User(UserCommand::Access {
            address,
            pop3,
            imap,
            smtp,
        }) => Request::UserAccess {
            address,
            change: AccessChange { pop3, imap, smtp },
        },
        Command::User(UserCommand::Quota {
            address,
            storage,
            messages,
        }) => Request::UserQuota {
            address,
            storage: storage.unwrap_or(admin::QuotaChange::Keep),
            messages: messages.unwrap_or(admin::QuotaChange::Keep),
        },
        Command::User(UserCommand::ApopSecret { address, remove }) => Request::UserApopSecret {
            address,
            secret: if remove {
                None
            } else {
                Some(read_secret_line("APOP secret")?)
            },
        },
        Command::AppPassword(AppPasswordCommand::Add { address, name }) => {
            Request::AppPasswordAdd { address, name }
        }
        Command::AppPassword(AppPasswordCommand::List { address }) => {
            Request::AppPasswordList { address }
        }
        Command::AppPassword(AppPasswordCommand::Revoke { address, name }) => {
            Request::AppPasswordRevoke { address, name }
        }
        Command::Deliver { address, folder } => Request::Deliver {
            address,
            folder: Some(folder),
            message: read_message(config.max_message_size)?,
        },
        Command::Export {
            address,
            path,
            format,
        } => Request::Export {
            address,
            format: format_arg(&format)?,
            path: absolute(&path)?,
        },
        Command::Import {
            action: Some(action),
            ..
        } => import_request(action)?,
        Command::Import {
            action: None,
            address,
            path,
            format,
            folder,
        } => Request::Import {
            address: address.unwrap_or_default(),
            format: format_arg(&format)?,
            path: absolute(&path.unwrap_or_default())?,
            folder,
        },
        Command::Policy(PolicyCommand::Show { user, org }) => Request::PolicyShow {
            target: policy_target(user, org),
        },
        Command::Policy(PolicyCommand::Set {
            user,
            org,
            key,
            value,
        }) => Request::PolicySet {
            target: policy_target(user, org),
            key,
            value,
        },
        Command::Retention(RetentionCommand::RunNow { at }) => Request::RetentionRun { at },
        Command::Migrate(c) => migrate_request(c, config)?,
        Command::Upload {
            user,
            folder,
            files,
        } => Request::Upload {
            address: user,
            folder,
            paths: files
                .iter()
                .map(|f| absolute(f))
                .collect::<Result<Vec<_>, _>>()?,
        },
        Command::Serve | Command::CheckConfig => {
            return Err(ServerError::Usage("not an admin command".into()));
        }
    })
}

/// Runs an admin request: directly on the store, or through the running server's socket
/// when the store is locked. When the lock holder is not a server (no admin socket: another
/// admin command is working), waits for it, up to 10 seconds.
async fn run_admin(config: &Config, request: Request) -> Result<Vec<String>, ServerError> {
    serve::ensure_data_dir(&config.data_dir)?;
    let socket = config.admin_socket();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match store::open(config).await {
            Ok(s) => {
                let r = admin::execute(&s, config, request).await;
                store::close(std::sync::Arc::new(s)).await;
                return r;
            }
            Err(StoreError::Locked { path }) => {
                if socket.exists() {
                    tracing::debug!("store locked: using the admin socket");
                    return socket::request(&socket, &request).await;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(ServerError::Usage(format!(
                        "the store {} is locked by another process that is not a server (no admin socket {}); try again when it has finished",
                        path.display(),
                        socket.display()
                    )));
                }
                // Back off while the other admin command finishes (bounded by the deadline).
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// `migrate run` with progress bars (MIG-3): one bar for the job's folders and one for the
/// folder being copied, drawn from the engine's progress events when this process owns the
/// store. When the server runs, the job runs inside it (through the admin socket) and a
/// spinner shows until its per-folder summary comes back; the start, progress and
/// completion notices reach the user's INBOX either way.
async fn migrate_with_progress(
    config: &Config,
    address: &str,
    id: Option<&str>,
) -> Result<Vec<String>, ServerError> {
    use sync_policy::engine::migration::Progress;
    let terminal = std::io::stderr().is_terminal();
    let bars = indicatif::MultiProgress::new();
    if !terminal {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    serve::ensure_data_dir(&config.data_dir)?;
    match store::open(config).await {
        Ok(s) => {
            let folders = bars.add(indicatif::ProgressBar::new(0));
            folders.set_style(bar_style("folders"));
            let mut current: Option<indicatif::ProgressBar> = None;
            // `Progress::Message::done` counts the whole job; a folder's bar starts from the
            // count reached when the folder started.
            let mut job_done = 0u64;
            let mut folder_base = 0u64;
            let mut report = |p: &Progress| match p {
                Progress::Started { folders: n } => folders.set_length(*n as u64),
                Progress::Folder {
                    destination,
                    to_copy,
                    ..
                } => {
                    let bar = bars.add(indicatif::ProgressBar::new(*to_copy));
                    bar.set_style(bar_style("messages"));
                    bar.set_message(destination.clone());
                    current = Some(bar);
                    folder_base = job_done;
                }
                Progress::Message { done, .. } => {
                    job_done = *done;
                    if let Some(bar) = &current {
                        bar.set_position(done.saturating_sub(folder_base));
                    }
                }
                Progress::FolderDone { .. } => {
                    if let Some(bar) = current.take() {
                        bar.finish();
                    }
                    folders.inc(1);
                }
                _ => {}
            };
            let result = async {
                let a = admin::account(&s, address).await?;
                let now = sync_policy::UnixTime::from_system_time(std::time::SystemTime::now());
                Ok::<_, ServerError>(crate::migrate::run(&s, &a, id, now, &mut report).await?)
            }
            .await;
            folders.finish();
            store::close(std::sync::Arc::new(s)).await;
            result
        }
        Err(StoreError::Locked { .. }) => {
            let spinner = bars.add(indicatif::ProgressBar::new_spinner());
            spinner.set_message("migrating inside the running server (notices go to the INBOX)");
            spinner.enable_steady_tick(std::time::Duration::from_millis(200));
            let request = Request::MigrateRun {
                address: address.to_string(),
                id: id.map(str::to_string),
            };
            let lines = run_admin(config, request).await;
            spinner.finish_and_clear();
            lines
        }
        Err(e) => Err(e.into()),
    }
}

fn bar_style(unit: &str) -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template(&format!(
        "{{msg:>20}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{elapsed}})"
    ))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
}

fn run(cli: Cli) -> Result<(), ServerError> {
    let config = Config::load_or_default(cli.config.as_deref())?;
    let runtime = |multi: bool| {
        let mut b = if multi {
            tokio::runtime::Builder::new_multi_thread()
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        b.enable_all()
            .build()
            .map_err(|e| ServerError::io("starting the tokio runtime", e))
    };
    match cli.command {
        Command::CheckConfig => {
            print!("{}", config.to_toml());
            Ok(())
        }
        Command::Serve => {
            init_logging(&config.log_level);
            runtime(true)?.block_on(serve::run(config, mail_net::Shutdown::new()))
        }
        command => {
            init_logging("warn");
            let request = request_for(command, &config)?;
            let lines = if let Request::MigrateRun { address, id } = &request {
                runtime(false)?.block_on(migrate_with_progress(&config, address, id.as_deref()))
            } else {
                runtime(false)?.block_on(run_admin(&config, request))
            };
            let lines = lines?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mail-server: {e}");
            ExitCode::FAILURE
        }
    }
}
