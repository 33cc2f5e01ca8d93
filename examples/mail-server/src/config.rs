//! The TOML configuration: every key, its default, and validation.
//!
//! Every table refuses unknown keys (a typo is an error that names the key, never a
//! silently ignored setting). [`Config::embedded_default`] is what `serve` uses when no
//! `--config` is given.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::ServerError;

/// Default data directory (relative to the working directory).
pub const DEFAULT_DATA_DIR: &str = "./mail-data";
/// Default largest message accepted by `deliver` and the protocols: 50 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 50 * 1024 * 1024;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the store, the development certificate and the admin socket live.
    /// Default `./mail-data`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The mail domains this server hosts. Accounts must be in one of them (an empty list
    /// accepts any domain). Default `["example.test"]`.
    #[serde(default = "default_domains")]
    pub domains: Vec<String>,
    /// The server's host name: greetings, the APOP timestamp and the development
    /// certificate's names. Default `localhost`.
    #[serde(default = "default_hostname")]
    pub hostname: String,
    /// Log level when `RUST_LOG` is not set (`error`, `warn`, `info`, `debug`, `trace`, or a
    /// full `tracing` filter). Default `info`.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// Largest message accepted, in bytes. Default 50 MiB.
    #[serde(default = "default_max_message_size")]
    pub max_message_size: u64,
    /// Messages up to this many bytes are stored inside the store's index (one flush per
    /// message); larger ones get a file each. 0 to 262144; default 65536 (docs/store.md).
    #[serde(default = "default_inline_body_max")]
    pub inline_body_max: u64,
    /// Create `demo@<first domain>` with sample messages when the store has no account.
    /// Default: true for the embedded configuration, false in a configuration file.
    #[serde(default)]
    pub demo_account: bool,
    /// Listening addresses.
    #[serde(default)]
    pub listeners: Listeners,
    /// The TLS certificate; the development certificate when absent.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// Connection limits and timeouts.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// POP3 options.
    #[serde(default)]
    pub pop3: Pop3Config,
    /// Authentication security: clear-text networks, failed-login lockout.
    #[serde(default)]
    pub auth: AuthConfig,
    /// IMAP options.
    #[serde(default)]
    pub imap: ImapConfig,
    /// SMTP limits (every SMTP listener).
    #[serde(default)]
    pub smtp: SmtpConfig,
    /// Outbound mail (smarthost or MX); absent = mail to other domains is refused.
    #[serde(default)]
    pub relay: Option<RelayConfig>,
    /// Policy scheduler options (docs/policy.md).
    #[serde(default)]
    pub policy: PolicyConfig,
    /// IMAP servers the administrator offers as migration sources (MIG-1):
    /// `migrate add --template NAME` takes host, port and TLS mode from here, so users
    /// only give their login.
    #[serde(default)]
    pub migration_templates: Vec<MigrationTemplate>,
}

/// One `[[migration_templates]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationTemplate {
    /// The name users pick with `--template`.
    pub name: String,
    /// The source IMAP server.
    pub host: String,
    /// Its port. Default 993.
    #[serde(default = "default_template_port")]
    pub port: u16,
    /// `implicit` (default), `starttls` or `none`.
    #[serde(default = "default_template_tls")]
    pub tls: String,
}

fn default_template_port() -> u16 {
    993
}

fn default_template_tls() -> String {
    "implicit".to_string()
}

/// The `[policy]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// How often the server runs retention (POP-7). Default `1h`.
    #[serde(default = "default_retention_interval", with = "humantime_serde_lite")]
    pub retention_interval: Duration,
    /// How often the server looks for external imports that are due (each import fetches
    /// every 10 minutes, IMP-5). Default `1m`.
    #[serde(default = "default_import_tick", with = "humantime_serde_lite")]
    pub import_tick: Duration,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            retention_interval: default_retention_interval(),
            import_tick: default_import_tick(),
        }
    }
}

fn default_import_tick() -> Duration {
    Duration::from_secs(60)
}

fn default_retention_interval() -> Duration {
    Duration::from_secs(3600)
}

/// The `[auth]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Networks (CIDR, e.g. `127.0.0.0/8`, `::1/128`, or a single address) whose clients may
    /// log in on a connection that is not encrypted. Everyone else must use TLS first
    /// (IMAP `LOGINDISABLED`, no `AUTH` in EHLO before STARTTLS, POP3 `-ERR` to USER/AUTH
    /// before STLS). Default empty; the no-config demo allows loopback.
    #[serde(default)]
    pub plaintext_networks: Vec<Network>,
    /// Failed logins from one IP address within `lockout` before further attempts from it
    /// are refused without checking the password. Default 10.
    #[serde(default = "default_max_failures")]
    pub max_failures_per_address: u32,
    /// Failed logins for one account (from anywhere) within `lockout` before further
    /// attempts for it are refused without checking the password. Default 10.
    #[serde(default = "default_max_failures")]
    pub max_failures_per_account: u32,
    /// The counting window and lockout time (humantime). Default `15m`.
    #[serde(default = "default_lockout", with = "humantime_serde_lite")]
    pub lockout: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            plaintext_networks: Vec::new(),
            max_failures_per_address: default_max_failures(),
            max_failures_per_account: default_max_failures(),
            lockout: default_lockout(),
        }
    }
}

impl AuthConfig {
    /// True when a client at `ip` may send a password without TLS.
    pub fn plaintext_allowed(&self, ip: std::net::IpAddr) -> bool {
        self.plaintext_networks.iter().any(|n| n.contains(ip))
    }
}

/// An IP network written `address/prefix` (or a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    /// The network address.
    pub addr: std::net::IpAddr,
    /// Prefix length in bits.
    pub prefix: u8,
}

impl Network {
    /// Parses `10.0.0.0/8`, `::1/128` or `192.0.2.7`.
    ///
    /// # Errors
    /// A message naming the value when it is not a network.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a network (write e.g. \"127.0.0.0/8\" or \"::1\")");
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: std::net::IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }

    /// True when `ip` is inside the network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Network::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The `[imap]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapConfig {
    /// Server-wide ceiling on the logged-in IMAP connections of one account; the account's
    /// policy limit (`limits.max_imap_connections`, default 10) applies when it is smaller.
    /// One more is refused with `NO [LIMIT]`. Default 20.
    #[serde(default = "default_imap_per_account")]
    pub max_connections_per_account: usize,
}

impl Default for ImapConfig {
    fn default() -> Self {
        Self {
            max_connections_per_account: default_imap_per_account(),
        }
    }
}

/// The `[relay]` table: authenticated submission may send to other domains. Without the
/// table nothing is relayed (submission refuses other domains with `550 5.7.1`).
///
/// Mail goes through a persistent queue (see `outbound`) either to a smarthost or straight
/// to each recipient domain's MX hosts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// `smarthost` (every message to [`RelayConfig::smarthost`]) or `mx` (DNS MX lookup per
    /// recipient domain). Default: `smarthost` when `smarthost` is set, else `mx`.
    #[serde(default)]
    pub mode: Option<RelayMode>,
    /// The SMTP server that takes outbound mail in `smarthost` mode: `host:port` (a host
    /// name, an IPv4 address or a bracketed IPv6 address).
    #[serde(default)]
    pub smarthost: Option<String>,
    /// TLS towards the smarthost: `none` (plain SMTP), `starttls` (required, certificate
    /// verified) or `tls` (implicit TLS, port 465 style, certificate verified). Default
    /// `none`.
    #[serde(default)]
    pub smarthost_tls: SmarthostTls,
    /// AUTH user name at the smarthost (with `smarthost_password`); requires TLS unless
    /// the smarthost is a loopback address.
    #[serde(default)]
    pub smarthost_user: Option<String>,
    /// AUTH password at the smarthost.
    #[serde(default)]
    pub smarthost_password: Option<String>,
    /// PEM file of the certificate authorities that the smarthost's certificate is
    /// verified against. Default: the system bundle (`/etc/ssl/certs/ca-certificates.crt`
    /// and the other usual places).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// DNS servers (`ip:port`) for MX lookups. Default: the system resolver configuration
    /// (`/etc/resolv.conf`).
    #[serde(default)]
    pub dns_servers: Vec<SocketAddr>,
    /// The port MX hosts are contacted on. Default 25 (change it only for tests).
    #[serde(default = "default_mx_port")]
    pub mx_port: u16,
    /// Wait before the first retry; doubles per attempt up to 1 hour. Default `1m`.
    #[serde(default = "default_retry_after", with = "humantime_serde_lite")]
    pub retry_after: Duration,
    /// Recipients still undelivered after this long are bounced to the sender. Default
    /// `5d` (RFC 5321 section 4.5.4.1 suggests 4-5 days).
    #[serde(default = "default_give_up", with = "humantime_serde_lite")]
    pub give_up_after: Duration,
}

/// `[relay] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RelayMode {
    /// Every message goes to the smarthost.
    Smarthost,
    /// Each recipient domain's MX hosts (RFC 5321 section 5.1).
    Mx,
}

impl RelayMode {
    /// The name used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            RelayMode::Smarthost => "smarthost",
            RelayMode::Mx => "mx",
        }
    }
}

/// `[relay] smarthost_tls`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SmarthostTls {
    /// Plain SMTP.
    #[default]
    None,
    /// STARTTLS, required; the certificate must verify.
    Starttls,
    /// Implicit TLS from the first byte; the certificate must verify.
    Tls,
}

impl SmarthostTls {
    /// The name used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            SmarthostTls::None => "none",
            SmarthostTls::Starttls => "starttls",
            SmarthostTls::Tls => "tls",
        }
    }
}

impl RelayConfig {
    /// The mode in force (`mode`, or derived from whether `smarthost` is set).
    pub fn effective_mode(&self) -> RelayMode {
        self.mode.unwrap_or(if self.smarthost.is_some() {
            RelayMode::Smarthost
        } else {
            RelayMode::Mx
        })
    }

    /// The smarthost's host part (the TLS server name) and port.
    pub fn smarthost_parts(&self) -> Option<(String, u16)> {
        split_host_port(self.smarthost.as_deref()?)
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(s) = &self.smarthost
            && split_host_port(s).is_none()
        {
            return Err(format!(
                "`relay.smarthost`: {s:?} is not host:port (e.g. \"smtp.example.net:587\")"
            ));
        }
        match self.effective_mode() {
            RelayMode::Smarthost if self.smarthost.is_none() => {
                return Err("`relay.mode = \"smarthost\"` needs `relay.smarthost`".into());
            }
            RelayMode::Mx if self.smarthost.is_some() => {
                return Err(
                    "`relay.smarthost` is set but `relay.mode = \"mx\"`: remove one of them".into(),
                );
            }
            _ => {}
        }
        if self.smarthost_user.is_some() != self.smarthost_password.is_some() {
            return Err("`relay.smarthost_user` and `relay.smarthost_password` go together".into());
        }
        if self.smarthost_user.is_some() && self.smarthost_tls == SmarthostTls::None {
            let loopback = self.smarthost_parts().is_some_and(|(h, _)| {
                h == "localhost"
                    || h.parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            });
            if !loopback {
                return Err("`relay.smarthost_user` would send the password in the clear: set `relay.smarthost_tls = \"starttls\"` or `\"tls\"`".into());
            }
        }
        if self.mx_port == 0 {
            return Err("`relay.mx_port` must not be 0".into());
        }
        if self.retry_after < Duration::from_secs(1) {
            return Err("`relay.retry_after` must be at least 1s".into());
        }
        Ok(())
    }
}

/// `host:port`, `[v6]:port`; the host without brackets.
fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains(['[', ']', '/']) {
        return None;
    }
    if host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_err() {
        return None;
    }
    Some((host.to_string(), port))
}

fn default_mx_port() -> u16 {
    25
}
fn default_retry_after() -> Duration {
    Duration::from_secs(60)
}
fn default_give_up() -> Duration {
    Duration::from_secs(5 * 86_400)
}

/// The `[smtp]` table: limits of the SMTP, submission and LMTP listeners.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Recipients per message; more get `452 4.5.3` (the client sends the rest in another
    /// transaction). Default 100 (RFC 5321 section 4.5.3.1.8's minimum).
    #[serde(default = "default_smtp_recipients")]
    pub max_recipients: usize,
    /// How long the server waits for the next command (humantime). Default `5m` (RFC 5321
    /// section 4.5.3.2.7).
    #[serde(default = "default_smtp_timeout", with = "humantime_serde_lite")]
    pub command_timeout: Duration,
    /// How long the server waits for the next block of message data. Default `5m`.
    #[serde(default = "default_smtp_timeout", with = "humantime_serde_lite")]
    pub data_timeout: Duration,
    /// Protocol errors before the server answers `421` and closes. Default 10.
    #[serde(default = "default_smtp_errors")]
    pub max_errors: u32,
    /// The account that receives mail for `postmaster` (RFC 5321 section 4.5.1: the bare
    /// `<Postmaster>` and `postmaster@` each local domain must be accepted) when no account
    /// of that name exists. Default: the first account created.
    #[serde(default)]
    pub postmaster: Option<String>,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            max_recipients: default_smtp_recipients(),
            command_timeout: default_smtp_timeout(),
            data_timeout: default_smtp_timeout(),
            max_errors: default_smtp_errors(),
            postmaster: None,
        }
    }
}

fn default_smtp_recipients() -> usize {
    100
}
fn default_smtp_timeout() -> Duration {
    Duration::from_secs(300)
}
fn default_smtp_errors() -> u32 {
    10
}

fn default_max_failures() -> u32 {
    10
}
fn default_lockout() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_imap_per_account() -> usize {
    20
}

/// The `[listeners]` table: each key is optional; absent means not listening.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listeners {
    /// POP3 with STLS (usually port 110).
    pub pop3: Option<SocketAddr>,
    /// POP3 over implicit TLS (usually port 995).
    pub pop3s: Option<SocketAddr>,
    /// IMAP with STARTTLS (143).
    pub imap: Option<SocketAddr>,
    /// IMAP over implicit TLS (993).
    pub imaps: Option<SocketAddr>,
    /// Inbound SMTP for the local domains, STARTTLS offered (25).
    pub smtp: Option<SocketAddr>,
    /// SMTP submission with STARTTLS and AUTH (587).
    pub submission: Option<SocketAddr>,
    /// SMTP submission over implicit TLS with AUTH (465).
    pub submissions: Option<SocketAddr>,
    /// LMTP for local delivery from another MTA (plaintext; bind it to loopback).
    pub lmtp: Option<SocketAddr>,
}

/// The `[tls]` table: PEM files of the certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain, PEM.
    pub cert: PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The `[limits]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Simultaneous connections from one IP address. Default 20.
    #[serde(default = "default_per_ip")]
    pub max_connections_per_ip: usize,
    /// Simultaneous connections in total. Default 1000.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A connection that moves no byte for this long is closed (humantime, e.g. `10m`).
    /// Default `10m` (RFC 1939's minimum autologout).
    #[serde(default = "default_idle", with = "humantime_serde_lite")]
    pub idle_timeout: Duration,
    /// How long live sessions get to finish after SIGINT/SIGTERM. Default `10s`.
    #[serde(default = "default_grace", with = "humantime_serde_lite")]
    pub shutdown_grace: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections_per_ip: default_per_ip(),
            max_connections: default_max_connections(),
            idle_timeout: default_idle(),
            shutdown_grace: default_grace(),
        }
    }
}

/// The `[pop3]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pop3Config {
    /// Put an APOP timestamp in the greeting. APOP then works only for accounts that opted
    /// in to a plaintext-equivalent secret (`user apop-secret`). Default false.
    #[serde(default)]
    pub apop: bool,
    /// Refuse USER/PASS, APOP and AUTH on the plain port until STLS. Default false.
    #[serde(default)]
    pub require_tls: bool,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DATA_DIR)
}
fn default_domains() -> Vec<String> {
    vec!["example.test".into()]
}
fn default_hostname() -> String {
    "localhost".into()
}
fn default_log_level() -> String {
    "info".into()
}
fn default_max_message_size() -> u64 {
    DEFAULT_MAX_MESSAGE_SIZE
}
fn default_inline_body_max() -> u64 {
    mailstore_core::StoreConfig::default().inline_body_max
}
fn default_per_ip() -> usize {
    20
}
fn default_max_connections() -> usize {
    1000
}
fn default_idle() -> Duration {
    Duration::from_secs(600)
}
fn default_grace() -> Duration {
    Duration::from_secs(10)
}

/// Durations written the humantime way (`30s`, `10m`, `1h 30m`).
mod humantime_serde_lite {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?} ({e}); write e.g. \"30s\" or \"10m\""
            ))
        })
    }
}

impl Config {
    /// The configuration used when `serve` runs without `--config`: data in
    /// `./mail-data`, the development certificate, POP3 on 127.0.0.1:2110, POP3S on
    /// 127.0.0.1:2995, IMAP on 2143 and 2993, SMTP on 2525, submission on 2587 and 2465,
    /// and a demo account.
    pub fn embedded_default() -> Self {
        let mut c = Self::from_toml_str(EMBEDDED_DEFAULT, Path::new("<embedded>"))
            .unwrap_or_else(|_| unreachable_config());
        c.demo_account = true;
        c
    }

    /// Parses and validates a configuration from TOML text; `origin` names it in errors.
    ///
    /// # Errors
    /// [`ServerError::Config`] naming the file and the offending key or value.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self, ServerError> {
        let config: Config = toml::from_str(text).map_err(|e| ServerError::Config {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Reads, parses and validates a configuration file.
    ///
    /// # Errors
    /// [`ServerError::Config`] when the file cannot be read or is invalid.
    pub fn load(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|e| ServerError::Config {
            path: path.to_path_buf(),
            message: format!("cannot read the file: {e}"),
        })?;
        Self::from_toml_str(&text, path)
    }

    /// The configuration named by `--config`, or the embedded default.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_or_default(path: Option<&Path>) -> Result<Self, ServerError> {
        match path {
            Some(p) => Self::load(p),
            None => Ok(Self::embedded_default()),
        }
    }

    fn validate(&self, origin: &Path) -> Result<(), ServerError> {
        let bad = |message: String| ServerError::Config {
            path: origin.to_path_buf(),
            message,
        };
        if self.data_dir.as_os_str().is_empty() {
            return Err(bad("`data_dir` is empty".into()));
        }
        for d in &self.domains {
            if d.is_empty()
                || d.contains('@')
                || d.contains(char::is_whitespace)
                || !d.contains('.') && d != "localhost"
            {
                return Err(bad(format!("`domains`: {d:?} is not a domain name")));
            }
        }
        if self.max_message_size == 0 {
            return Err(bad("`max_message_size` must be greater than 0".into()));
        }
        let ceiling = mailstore_core::StoreConfig::INLINE_BODY_CEILING;
        if self.inline_body_max > ceiling {
            return Err(bad(format!(
                "`inline_body_max` is {}; it can be at most {ceiling}",
                self.inline_body_max
            )));
        }
        if self.limits.max_connections == 0 || self.limits.max_connections_per_ip == 0 {
            return Err(bad("`limits.max_connections` and `limits.max_connections_per_ip` must be greater than 0".into()));
        }
        if self.smtp.max_recipients == 0 || self.smtp.max_errors == 0 {
            return Err(bad(
                "`smtp.max_recipients` and `smtp.max_errors` must be greater than 0".into(),
            ));
        }
        if self.smtp.command_timeout < Duration::from_secs(1)
            || self.smtp.data_timeout < Duration::from_secs(1)
        {
            return Err(bad(
                "`smtp.command_timeout` and `smtp.data_timeout` must be at least 1s".into(),
            ));
        }
        if self.imap.max_connections_per_account == 0 {
            return Err(bad(
                "`imap.max_connections_per_account` must be greater than 0".into(),
            ));
        }
        if self.auth.max_failures_per_address == 0 || self.auth.max_failures_per_account == 0 {
            return Err(bad("`auth.max_failures_per_address` and `auth.max_failures_per_account` must be greater than 0".into()));
        }
        if self.limits.idle_timeout < Duration::from_secs(1) {
            return Err(bad("`limits.idle_timeout` must be at least 1s".into()));
        }
        if let Some(p) = &self.smtp.postmaster
            && !self.is_local_address(p)
        {
            return Err(bad(format!(
                "`smtp.postmaster` ({p}) must be an address in one of the local `domains`"
            )));
        }
        if let Some(r) = &self.relay {
            r.validate().map_err(bad)?;
        }
        let mut seen: Vec<(SocketAddr, &str)> = Vec::new();
        for (key, addr) in self.listener_list() {
            if addr.port() != 0
                && let Some((_, other)) = seen.iter().find(|(a, _)| *a == addr)
            {
                return Err(bad(format!(
                    "`listeners.{key}` and `listeners.{other}` both use {addr}"
                )));
            }
            seen.push((addr, key));
        }
        if let Some(level) = Some(self.log_level.trim())
            && level.is_empty()
        {
            return Err(bad("`log_level` is empty".into()));
        }
        Ok(())
    }

    /// Every configured listener as (key, address).
    pub fn listener_list(&self) -> Vec<(&'static str, SocketAddr)> {
        let l = &self.listeners;
        [
            ("pop3", l.pop3),
            ("pop3s", l.pop3s),
            ("imap", l.imap),
            ("imaps", l.imaps),
            ("smtp", l.smtp),
            ("submission", l.submission),
            ("submissions", l.submissions),
            ("lmtp", l.lmtp),
        ]
        .into_iter()
        .filter_map(|(k, a)| a.map(|a| (k, a)))
        .collect()
    }

    /// True when `address`'s domain is hosted here (any domain when `domains` is empty).
    pub fn is_local_address(&self, address: &str) -> bool {
        let Some((local, domain)) = address.rsplit_once('@') else {
            return false;
        };
        !local.is_empty()
            && (self.domains.is_empty()
                || self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)))
    }

    /// Where the mail store lives.
    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join("store")
    }

    /// Where the development certificate lives.
    pub fn dev_cert_dir(&self) -> PathBuf {
        self.data_dir.join("tls")
    }

    /// The admin socket.
    pub fn admin_socket(&self) -> PathBuf {
        self.data_dir.join("admin.sock")
    }

    /// The effective configuration as TOML (what `check-config` prints).
    pub fn to_toml(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let q = |v: &str| toml_quote(v);
        let _ = writeln!(s, "data_dir = {}", q(&self.data_dir.to_string_lossy()));
        let domains: Vec<String> = self.domains.iter().map(|d| q(d)).collect();
        let _ = writeln!(s, "domains = [{}]", domains.join(", "));
        let _ = writeln!(s, "hostname = {}", q(&self.hostname));
        let _ = writeln!(s, "log_level = {}", q(&self.log_level));
        let _ = writeln!(s, "max_message_size = {}", self.max_message_size);
        let _ = writeln!(s, "inline_body_max = {}", self.inline_body_max);
        let _ = writeln!(s, "demo_account = {}", self.demo_account);
        let _ = writeln!(s, "\n[listeners]");
        for (k, a) in self.listener_list() {
            let _ = writeln!(s, "{k} = {}", q(&a.to_string()));
        }
        match &self.tls {
            Some(t) => {
                let _ = writeln!(s, "\n[tls]");
                let _ = writeln!(s, "cert = {}", q(&t.cert.to_string_lossy()));
                let _ = writeln!(s, "key = {}", q(&t.key.to_string_lossy()));
            }
            None => {
                let _ = writeln!(
                    s,
                    "\n# [tls] absent: a self-signed development certificate is kept in {}",
                    self.dev_cert_dir().display()
                );
            }
        }
        let _ = writeln!(s, "\n[limits]");
        let _ = writeln!(
            s,
            "max_connections_per_ip = {}",
            self.limits.max_connections_per_ip
        );
        let _ = writeln!(s, "max_connections = {}", self.limits.max_connections);
        let _ = writeln!(
            s,
            "idle_timeout = {}",
            q(&humantime::format_duration(self.limits.idle_timeout).to_string())
        );
        let _ = writeln!(
            s,
            "shutdown_grace = {}",
            q(&humantime::format_duration(self.limits.shutdown_grace).to_string())
        );
        let _ = writeln!(s, "\n[pop3]");
        let _ = writeln!(s, "apop = {}", self.pop3.apop);
        let _ = writeln!(s, "require_tls = {}", self.pop3.require_tls);
        let _ = writeln!(s, "\n[auth]");
        let nets: Vec<String> = self
            .auth
            .plaintext_networks
            .iter()
            .map(|n| q(&n.to_string()))
            .collect();
        let _ = writeln!(s, "plaintext_networks = [{}]", nets.join(", "));
        let _ = writeln!(
            s,
            "max_failures_per_address = {}",
            self.auth.max_failures_per_address
        );
        let _ = writeln!(
            s,
            "max_failures_per_account = {}",
            self.auth.max_failures_per_account
        );
        let _ = writeln!(
            s,
            "lockout = {}",
            q(&humantime::format_duration(self.auth.lockout).to_string())
        );
        let _ = writeln!(s, "\n[smtp]");
        let _ = writeln!(s, "max_recipients = {}", self.smtp.max_recipients);
        let _ = writeln!(
            s,
            "command_timeout = {}",
            q(&humantime::format_duration(self.smtp.command_timeout).to_string())
        );
        let _ = writeln!(
            s,
            "data_timeout = {}",
            q(&humantime::format_duration(self.smtp.data_timeout).to_string())
        );
        let _ = writeln!(s, "max_errors = {}", self.smtp.max_errors);
        if let Some(p) = &self.smtp.postmaster {
            let _ = writeln!(s, "postmaster = {}", q(p));
        }
        if let Some(r) = &self.relay {
            let _ = writeln!(s, "\n[relay]");
            if let Some(m) = r.mode {
                let _ = writeln!(s, "mode = {}", q(m.as_str()));
            }
            if let Some(h) = &r.smarthost {
                let _ = writeln!(s, "smarthost = {}", q(h));
            }
            let _ = writeln!(s, "smarthost_tls = {}", q(r.smarthost_tls.as_str()));
            if let Some(u) = &r.smarthost_user {
                let _ = writeln!(s, "smarthost_user = {}", q(u));
            }
            if let Some(p) = &r.smarthost_password {
                let _ = writeln!(s, "smarthost_password = {}", q(p));
            }
            if let Some(f) = &r.ca_file {
                let _ = writeln!(s, "ca_file = {}", q(&f.to_string_lossy()));
            }
            let servers: Vec<String> = r.dns_servers.iter().map(|a| q(&a.to_string())).collect();
            let _ = writeln!(s, "dns_servers = [{}]", servers.join(", "));
            let _ = writeln!(s, "mx_port = {}", r.mx_port);
            let _ = writeln!(
                s,
                "retry_after = {}",
                q(&humantime::format_duration(r.retry_after).to_string())
            );
            let _ = writeln!(
                s,
                "give_up_after = {}",
                q(&humantime::format_duration(r.give_up_after).to_string())
            );
        }
        let _ = writeln!(s, "\n[imap]");
        let _ = writeln!(
            s,
            "max_connections_per_account = {}",
            self.imap.max_connections_per_account
        );
        for t in &self.migration_templates {
            let _ = writeln!(s, "\n[[migration_templates]]");
            let _ = writeln!(s, "name = {}", q(&t.name));
            let _ = writeln!(s, "host = {}", q(&t.host));
            let _ = writeln!(s, "port = {}", t.port);
            let _ = writeln!(s, "tls = {}", q(&t.tls));
        }
        let _ = writeln!(s, "\n[policy]");
        let _ = writeln!(
            s,
            "retention_interval = {}",
            q(&humantime::format_duration(self.policy.retention_interval).to_string())
        );
        let _ = writeln!(
            s,
            "import_tick = {}",
            q(&humantime::format_duration(self.policy.import_tick).to_string())
        );
        s
    }
}

fn unreachable_config() -> Config {
    // Only reached if the embedded text stopped parsing, which a unit test rules out.
    Config {
        data_dir: default_data_dir(),
        domains: default_domains(),
        hostname: default_hostname(),
        log_level: default_log_level(),
        max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        inline_body_max: default_inline_body_max(),
        demo_account: true,
        listeners: Listeners {
            pop3: Some(SocketAddr::from(([127, 0, 0, 1], 2110))),
            pop3s: Some(SocketAddr::from(([127, 0, 0, 1], 2995))),
            imap: Some(SocketAddr::from(([127, 0, 0, 1], 2143))),
            imaps: Some(SocketAddr::from(([127, 0, 0, 1], 2993))),
            smtp: Some(SocketAddr::from(([127, 0, 0, 1], 2525))),
            submission: Some(SocketAddr::from(([127, 0, 0, 1], 2587))),
            submissions: Some(SocketAddr::from(([127, 0, 0, 1], 2465))),
            ..Listeners::default()
        },
        tls: None,
        limits: LimitsConfig::default(),
        pop3: Pop3Config::default(),
        auth: AuthConfig {
            plaintext_networks: vec![
                Network {
                    addr: std::net::IpAddr::from([127, 0, 0, 0]),
                    prefix: 8,
                },
                Network {
                    addr: std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
                    prefix: 128,
                },
            ],
            ..AuthConfig::default()
        },
        imap: ImapConfig::default(),
        smtp: SmtpConfig::default(),
        relay: None,
        policy: PolicyConfig::default(),
        migration_templates: Vec::new(),
    }
}

/// A TOML basic string.
fn toml_quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The embedded default configuration.
pub const EMBEDDED_DEFAULT: &str = r#"
data_dir = "./mail-data"
domains = ["example.test"]

[listeners]
pop3 = "127.0.0.1:2110"
pop3s = "127.0.0.1:2995"
imap = "127.0.0.1:2143"
imaps = "127.0.0.1:2993"
smtp = "127.0.0.1:2525"
submission = "127.0.0.1:2587"
submissions = "127.0.0.1:2465"

# The demo lets a newcomer try any client on this machine without TLS.
[auth]
plaintext_networks = ["127.0.0.0/8", "::1"]
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses() {
        let c = Config::from_toml_str(EMBEDDED_DEFAULT, Path::new("x")).unwrap();
        assert_eq!(c.listeners.pop3, Some("127.0.0.1:2110".parse().unwrap()));
        assert_eq!(c.listeners.pop3s, Some("127.0.0.1:2995".parse().unwrap()));
        assert_eq!(
            c.listeners.submission,
            Some("127.0.0.1:2587".parse().unwrap())
        );
        assert_eq!(unreachable_config().listeners, c.listeners);
        assert_eq!(c.data_dir, PathBuf::from("./mail-data"));
        assert!(Config::embedded_default().demo_account);
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(600));
        assert_eq!(unreachable_config().auth, c.auth);
        assert!(c.auth.plaintext_allowed("127.0.0.1".parse().unwrap()));
        assert!(c.auth.plaintext_allowed("::1".parse().unwrap()));
        assert!(!c.auth.plaintext_allowed("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn networks_parse_and_match() {
        let n = Network::parse("10.1.0.0/16").unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(
            Network::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        let v6 = Network::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert_eq!(Network::parse("::1").unwrap().prefix, 128);
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("localhost").is_err());
        let e = Config::from_toml_str("[auth]\nplaintext_networks = [\"lan\"]\n", Path::new("x"))
            .unwrap_err();
        assert!(e.to_string().contains("not a network"), "{e}");
        let c = Config::from_toml_str(
            "[auth]\nplaintext_networks = [\"192.0.2.0/24\"]\nlockout = \"5m\"\n[imap]\nmax_connections_per_account = 3\n[smtp]\nmax_recipients = 7\ncommand_timeout = \"2m\"\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.imap.max_connections_per_account, 3);
        assert_eq!(c.smtp.max_recipients, 7);
        let r = Config::from_toml_str(
            "[relay]\nsmarthost = \"127.0.0.1:25\"\nretry_after = \"30s\"\n",
            Path::new("x"),
        )
        .unwrap();
        let relay = r.relay.clone().unwrap();
        assert_eq!(relay.retry_after, Duration::from_secs(30));
        assert_eq!(relay.give_up_after, Duration::from_secs(5 * 86_400));
        assert_eq!(
            Config::from_toml_str(&r.to_toml(), Path::new("y")).unwrap(),
            r
        );
        assert_eq!(c.smtp.command_timeout, Duration::from_secs(120));
        assert_eq!(c.smtp.data_timeout, Duration::from_secs(300));
        assert!(Config::from_toml_str("[smtp]\nmax_recipients = 0\n", Path::new("x")).is_err());
        let again = Config::from_toml_str(&c.to_toml(), Path::new("y")).unwrap();
        assert_eq!(again, c);
        assert!(
            Config::from_toml_str("", Path::new("x"))
                .unwrap()
                .auth
                .plaintext_networks
                .is_empty()
        );
    }

    #[test]
    fn relay_modes_and_their_checks() {
        let parse = |t: &str| Config::from_toml_str(t, Path::new("x"));
        // No [relay]: nothing is relayed (the safe default of the demo).
        assert!(parse("").unwrap().relay.is_none());
        // [relay] without a smarthost: MX delivery, port 25, the system resolver.
        let r = parse("[relay]\n").unwrap().relay.unwrap();
        assert_eq!(r.effective_mode(), RelayMode::Mx);
        assert_eq!(r.mx_port, 25);
        assert!(r.dns_servers.is_empty());
        assert_eq!(r.smarthost_tls, SmarthostTls::None);
        let c = parse(
            "[relay]\nmode = \"mx\"\ndns_servers = [\"127.0.0.1:5353\", \"[::1]:53\"]\nmx_port = 2525\n",
        )
        .unwrap();
        let r = c.relay.clone().unwrap();
        assert_eq!(r.dns_servers.len(), 2);
        assert_eq!(r.mx_port, 2525);
        assert_eq!(parse(&c.to_toml()).unwrap(), c);
        // A smarthost by name, with TLS and AUTH.
        let c = parse(
            "[relay]\nsmarthost = \"smtp.example.net:587\"\nsmarthost_tls = \"starttls\"\nsmarthost_user = \"u\"\nsmarthost_password = \"p\"\nca_file = \"/etc/ca.pem\"\n",
        )
        .unwrap();
        let r = c.relay.clone().unwrap();
        assert_eq!(r.effective_mode(), RelayMode::Smarthost);
        assert_eq!(
            r.smarthost_parts(),
            Some(("smtp.example.net".to_string(), 587))
        );
        assert_eq!(parse(&c.to_toml()).unwrap(), c);
        let r = parse("[relay]\nsmarthost = \"[::1]:25\"\n")
            .unwrap()
            .relay
            .unwrap();
        assert_eq!(r.smarthost_parts(), Some(("::1".to_string(), 25)));
        // Mistakes are named.
        for (text, says) in [
            ("[relay]\nsmarthost = \"nohost\"\n", "not host:port"),
            ("[relay]\nsmarthost = \"a b:25\"\n", "not host:port"),
            ("[relay]\nmode = \"smarthost\"\n", "needs `relay.smarthost`"),
            (
                "[relay]\nmode = \"mx\"\nsmarthost = \"h.example:25\"\n",
                "remove one of them",
            ),
            (
                "[relay]\nsmarthost = \"h.example:25\"\nsmarthost_user = \"u\"\n",
                "go together",
            ),
            (
                "[relay]\nsmarthost = \"h.example:25\"\nsmarthost_user = \"u\"\nsmarthost_password = \"p\"\n",
                "in the clear",
            ),
            ("[relay]\nmode = \"direct\"\n", "unknown variant"),
            ("[relay]\nsmarthost_tls = \"yes\"\n", "unknown variant"),
            ("[relay]\nmx_port = 0\n", "mx_port"),
            ("[relay]\ndns_servers = [\"8.8.8.8\"]\n", "dns_servers"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
        // AUTH without TLS is fine towards a loopback smarthost.
        assert!(
            parse("[relay]\nsmarthost = \"127.0.0.1:25\"\nsmarthost_user = \"u\"\nsmarthost_password = \"p\"\n")
                .is_ok()
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::from_toml_str("data_dir = \"/x\"\nbogus = 1\n", Path::new("c.toml"))
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("unknown field `bogus`"), "{msg}");
        assert!(msg.contains("c.toml"), "{msg}");
        let e = Config::from_toml_str("[listeners]\npop4 = \"127.0.0.1:1\"\n", Path::new("c.toml"))
            .unwrap_err();
        assert!(e.to_string().contains("unknown field `pop4`"), "{e}");
        let e = Config::from_toml_str(
            "[tls]\ncert = \"a\"\nkey = \"b\"\nchain = \"c\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `chain`"), "{e}");
    }

    #[test]
    fn full_example_and_round_trip() {
        let text = r#"
data_dir = "/var/lib/mail"
domains = ["example.test", "example.org"]
[listeners]
pop3 = "127.0.0.1:2110"
pop3s = "127.0.0.1:2995"
[tls]
cert = "/etc/mail/cert.pem"
key = "/etc/mail/key.pem"
[limits]
idle_timeout = "5m"
"#;
        let c = Config::from_toml_str(text, Path::new("x")).unwrap();
        assert_eq!(
            c.tls.as_ref().unwrap().cert,
            PathBuf::from("/etc/mail/cert.pem")
        );
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(300));
        assert!(!c.demo_account);
        let again = Config::from_toml_str(&c.to_toml(), Path::new("y")).unwrap();
        assert_eq!(again, c);
        assert!(c.is_local_address("a@EXAMPLE.org"));
        assert!(!c.is_local_address("a@example.com"));
        assert!(!c.is_local_address("@example.org"));
    }

    #[test]
    fn bad_values_are_explained() {
        let e = Config::from_toml_str("[limits]\nidle_timeout = \"soon\"\n", Path::new("x"))
            .unwrap_err();
        assert!(e.to_string().contains("invalid duration"), "{e}");
        let e = Config::from_toml_str(
            "[listeners]\npop3 = \"127.0.0.1:7\"\npop3s = \"127.0.0.1:7\"\n",
            Path::new("x"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("both use"), "{e}");
        let e = Config::from_toml_str("[listeners]\npop3 = \"localhost\"\n", Path::new("x"))
            .unwrap_err();
        assert!(e.to_string().contains("pop3"), "{e}");
        let e = Config::from_toml_str("domains = [\"a@b\"]\n", Path::new("x")).unwrap_err();
        assert!(e.to_string().contains("not a domain"), "{e}");
    }
}
