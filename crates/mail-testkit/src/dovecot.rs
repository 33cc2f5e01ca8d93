//! A private Dovecot for interop tests: its own configuration under a temporary directory
//! (nothing under `/etc` is read or changed), listeners on free 127.0.0.1 ports, users in a
//! passwd-file with `{PLAIN}` passwords (so APOP and CRAM-MD5 work), mail in Maildir owned by
//! `nobody:nogroup`, stopped on drop.
//!
//! Dovecot must be started as root (it switches to the mail user itself);
//! [`Builder::start`] skips (see [`crate::peer::skip`]) when it is not installed, a
//! protocol's binary is missing, or the test does not run as root.
//!
//! ```no_run
//! use mail_testkit::dovecot::{Dovecot, Protocol};
//!
//! let Some(d) = Dovecot::builder("my-crate")
//!     .protocol(Protocol::Pop3)
//!     .user("tester", "secret")
//!     .start()
//! else {
//!     return; // skipped
//! };
//! d.deliver("tester", "INBOX", "1700000000.M1P1.test", b"Subject: hi\r\n\r\nbody\r\n");
//! let port = d.pop3();
//! # let _ = port;
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

use crate::{net, peer, poll};

/// How long [`Builder::start`] waits for every listener to accept connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a stop waits for each group of processes to go away.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The owner of the mail files (the `mail_uid` / `mail_gid` of the configuration).
const MAIL_OWNER: &str = "nobody:nogroup";

/// Where Debian installs Dovecot's protocol binaries.
const LIBEXEC: &str = "/usr/lib/dovecot";

/// A protocol Dovecot serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// IMAP (dovecot-imapd), with STARTTLS when TLS is configured, and IMAPS.
    Imap,
    /// POP3 (dovecot-pop3d), with STLS when TLS is configured, and POP3S.
    Pop3,
    /// LMTP (dovecot-lmtpd) on a TCP port.
    Lmtp,
}

impl Protocol {
    /// The name in Dovecot's `protocols` setting.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Imap => "imap",
            Self::Pop3 => "pop3",
            Self::Lmtp => "lmtp",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Self::Imap => "dovecot-imapd",
            Self::Pop3 => "dovecot-pop3d",
            Self::Lmtp => "dovecot-lmtpd",
        }
    }
}

/// A mailbox of the INBOX namespace with a special-use attribute.
#[derive(Debug, Clone)]
struct Mailbox {
    name: String,
    special_use: String,
    subscribe: bool,
}

/// Configures a private [`Dovecot`]; made by [`Dovecot::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until start() is called"]
pub struct Builder {
    name: String,
    protocols: Vec<Protocol>,
    users: Vec<(String, String)>,
    tls: Option<(String, String)>,
    auth_mechanisms: String,
    separator: char,
    mailboxes: Vec<Mailbox>,
    extra: Vec<String>,
    protocol_extra: Vec<(Protocol, String)>,
}

impl Builder {
    /// Serves `protocol` too (call once per protocol).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        if !self.protocols.contains(&protocol) {
            self.protocols.push(protocol);
        }
        self
    }

    /// Adds a user with a `{PLAIN}` password; its mail lives in
    /// [`Dovecot::maildir`]`(name, "INBOX")`.
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// Turns TLS on with this certificate chain and key (PEM): STARTTLS/STLS on the plain
    /// ports, and implicit-TLS listeners (IMAPS, POP3S) on their own free ports. Without
    /// it, `ssl = no` and there are no implicit-TLS listeners.
    pub fn tls(mut self, cert_pem: &str, key_pem: &str) -> Self {
        self.tls = Some((cert_pem.to_owned(), key_pem.to_owned()));
        self
    }

    /// The `auth_mechanisms` setting (default `plain login cram-md5 apop`).
    pub fn auth_mechanisms(mut self, mechanisms: &str) -> Self {
        mechanisms.clone_into(&mut self.auth_mechanisms);
        self
    }

    /// The hierarchy separator of the INBOX namespace (default `/`). On disk the Maildir++
    /// layout always uses `.` (see [`Dovecot::maildir`]).
    pub fn separator(mut self, separator: char) -> Self {
        self.separator = separator;
        self
    }

    /// Declares a mailbox with a special-use attribute (`\Sent`, `\Trash`, ...). Dovecot
    /// creates it when a client first uses it.
    pub fn mailbox(mut self, name: &str, special_use: &str) -> Self {
        self.mailboxes.push(Mailbox {
            name: name.to_owned(),
            special_use: special_use.to_owned(),
            subscribe: false,
        });
        self
    }

    /// Like [`Builder::mailbox`], created and subscribed at login (`auto = subscribe`).
    pub fn subscribed_mailbox(mut self, name: &str, special_use: &str) -> Self {
        self.mailboxes.push(Mailbox {
            name: name.to_owned(),
            special_use: special_use.to_owned(),
            subscribe: true,
        });
        self
    }

    /// Appends a line (or block) of configuration at top level.
    pub fn config(mut self, line: &str) -> Self {
        self.extra.push(line.to_owned());
        self
    }

    /// Adds a setting inside `protocol <name> { }`, e.g.
    /// `(Protocol::Imap, "imap_idle_notify_interval = 1 secs")`.
    pub fn protocol_config(mut self, protocol: Protocol, line: &str) -> Self {
        self.protocol_extra.push((protocol, line.to_owned()));
        self
    }

    /// Starts Dovecot and waits until every listener accepts connections.
    ///
    /// Returns `None` after [`peer::skip`] when Dovecot (or a protocol's package) is not
    /// installed or the test does not run as root.
    ///
    /// # Panics
    /// When the temporary directory cannot be prepared, Dovecot refuses the configuration,
    /// or a listener is not ready within [`START_TIMEOUT`] (the message carries the log).
    #[must_use]
    pub fn start(self) -> Option<Dovecot> {
        let why = format!("the {} interop tests need a private Dovecot", self.name);
        if !peer::require("dovecot", &why) {
            return None;
        }
        if Path::new(LIBEXEC).is_dir() {
            for p in &self.protocols {
                if !Path::new(LIBEXEC).join(p.name()).exists() {
                    peer::skip(&format!("{} is not installed ({why})", p.package()));
                    return None;
                }
            }
        }
        if !peer::require_root(&format!("Dovecot switches to the mail user itself; {why}")) {
            return None;
        }
        let ports = Ports::pick(&self);
        let dir = tempfile::Builder::new()
            .prefix(&format!("dovecot-{}-", self.name))
            .tempdir_in("/tmp")
            .unwrap_or_else(|e| panic!("cannot create a temporary directory in /tmp: {e}"));
        let root = dir.path().to_path_buf();
        for d in ["run", "state", "mail"] {
            create_dir(&root.join(d));
        }
        chmod(&root, 0o755);
        chown(&root.join("mail"));
        let passwd: String = self
            .users
            .iter()
            .map(|(u, p)| format!("{u}:{{PLAIN}}{p}::::::\n"))
            .collect();
        write(&root.join("passwd"), passwd.as_bytes());
        chmod(&root.join("passwd"), 0o644);
        if let Some((cert, key)) = &self.tls {
            write(&root.join("cert.pem"), cert.as_bytes());
            write(&root.join("key.pem"), key.as_bytes());
        }
        let conf = root.join("dovecot.conf");
        write(&conf, self.render(&root, &ports).as_bytes());
        let mut me = Dovecot {
            dir,
            conf,
            ports,
            stopped: false,
        };
        // A port from `free_port` can be handed to a test running beside this one before
        // Dovecot binds it: then the start is tried again on other ports (at most 5 times).
        for attempt in 1.. {
            // The master daemonizes and keeps inherited descriptors: give it no pipe to
            // hold, and keep what it says on stderr (configuration errors) in a file.
            let errors = root.join("start.err");
            let stderr = std::fs::File::create(&errors)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", errors.display()));
            let status = Command::new("dovecot")
                .arg("-c")
                .arg(&me.conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .status()
                .unwrap_or_else(|e| panic!("cannot run dovecot: {e}"));
            if status.success() {
                break;
            }
            let said = std::fs::read_to_string(&errors).unwrap_or_default();
            if (said.contains("Address already in use") || said.contains("duplicate listener"))
                && attempt < 5
            {
                me.ports = Ports::pick(&self);
                write(&me.conf, self.render(&root, &me.ports).as_bytes());
                continue;
            }
            panic!(
                "dovecot failed to start ({status}):\n{said}\n{}\nconfiguration:\n{}",
                me.log(),
                std::fs::read_to_string(&me.conf).unwrap_or_default()
            );
        }
        let deadline = Instant::now() + START_TIMEOUT;
        // The master writes its pidfile after it has daemonized (the listeners may accept
        // before that): stopping needs the pid, so it is part of readiness.
        if poll::file(&me.pidfile(), deadline).is_none() {
            panic!(
                "dovecot wrote no run/master.pid within {START_TIMEOUT:?}\n{}",
                me.log()
            );
        }
        for port in me.ports.all() {
            if let Err(e) = net::wait_for_port(net::localhost(port), deadline) {
                panic!("dovecot did not get ready: {e}\n{}", me.log());
            }
        }
        Some(me)
    }

    fn render(&self, root: &Path, ports: &Ports) -> String {
        let r = root.display();
        let mut c = String::new();
        let protocols: Vec<&str> = self.protocols.iter().map(|p| p.name()).collect();
        let _ = write!(
            c,
            "instance_name = {name}-{port}\n\
             base_dir = {r}/run\n\
             state_dir = {r}/state\n\
             protocols = {protocols}\n\
             listen = 127.0.0.1\n\
             log_path = {r}/dovecot.log\n",
            name = self.name,
            port = ports.all().first().copied().unwrap_or(0),
            protocols = protocols.join(" "),
        );
        if self.tls.is_some() {
            let _ = writeln!(
                c,
                "ssl = yes\nssl_cert = <{r}/cert.pem\nssl_key = <{r}/key.pem"
            );
        } else {
            c.push_str("ssl = no\n");
        }
        let _ = write!(
            c,
            "disable_plaintext_auth = no\n\
             auth_mechanisms = {mechs}\n\
             auth_failure_delay = 0\n\
             mail_location = maildir:{r}/mail/%n/Maildir\n\
             mail_uid = nobody\n\
             mail_gid = nogroup\n\
             first_valid_uid = 1\n\
             first_valid_gid = 1\n\
             mail_max_userip_connections = 100\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%n {r}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={r}/mail/%n\n}}\n\
             namespace inbox {{\n  inbox = yes\n  separator = {sep}\n",
            mechs = self.auth_mechanisms,
            sep = self.separator,
        );
        for m in &self.mailboxes {
            let auto = if m.subscribe {
                "    auto = subscribe\n"
            } else {
                ""
            };
            let _ = write!(
                c,
                "  mailbox \"{}\" {{\n    special_use = {}\n{auto}  }}\n",
                m.name, m.special_use
            );
        }
        c.push_str("}\n");
        for p in &self.protocols {
            let _ = writeln!(c, "protocol {} {{", p.name());
            match p {
                Protocol::Pop3 => c.push_str("  pop3_uidl_format = %08Xu%08Xv\n"),
                Protocol::Lmtp => c.push_str("  postmaster_address = postmaster@localhost\n"),
                Protocol::Imap => {}
            }
            for (_, line) in self.protocol_extra.iter().filter(|(q, _)| q == p) {
                let _ = writeln!(c, "  {line}");
            }
            c.push_str("}\n");
        }
        let listener = |c: &mut String, name: &str, port: Option<u16>, ssl: bool| {
            // Port 0 disables a listener Dovecot would otherwise open on its default port.
            let port = port.unwrap_or(0);
            let ssl = if ssl { "    ssl = yes\n" } else { "" };
            let _ = write!(
                c,
                "  inet_listener {name} {{\n    address = 127.0.0.1\n    port = {port}\n{ssl}  }}\n"
            );
        };
        if let Some(imap) = ports.imap {
            c.push_str("service imap-login {\n");
            listener(&mut c, "imap", Some(imap), false);
            listener(&mut c, "imaps", ports.imaps, true);
            c.push_str("}\n");
        }
        if let Some(pop3) = ports.pop3 {
            c.push_str("service pop3-login {\n");
            listener(&mut c, "pop3", Some(pop3), false);
            listener(&mut c, "pop3s", ports.pop3s, true);
            c.push_str("}\n");
        }
        if let Some(lmtp) = ports.lmtp {
            c.push_str("service lmtp {\n");
            listener(&mut c, "lmtp", Some(lmtp), false);
            c.push_str("}\n");
        }
        c.push_str(
            "service anvil {\n  chroot =\n}\n\
             service stats {\n  inet_listener http {\n    port = 0\n  }\n}\n",
        );
        for line in &self.extra {
            let _ = writeln!(c, "{line}");
        }
        c
    }
}

/// The listener ports of one instance (`None`: not served).
#[derive(Debug, Clone, Copy, Default)]
struct Ports {
    imap: Option<u16>,
    imaps: Option<u16>,
    pop3: Option<u16>,
    pop3s: Option<u16>,
    lmtp: Option<u16>,
}

impl Ports {
    fn pick(b: &Builder) -> Self {
        let has = |p| b.protocols.contains(&p);
        let tls = b.tls.is_some();
        // Every listener stays bound until all ports are picked: a port freed at once could
        // be handed out again for the next listener of the same instance.
        let mut held = Vec::new();
        let mut port = |on: bool| {
            on.then(|| {
                let l = std::net::TcpListener::bind(net::localhost(0))
                    .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"));
                let port = l.local_addr().map(|a| a.port()).unwrap_or_default();
                held.push(l);
                port
            })
        };
        Self {
            imap: port(has(Protocol::Imap)),
            imaps: port(has(Protocol::Imap) && tls),
            pop3: port(has(Protocol::Pop3)),
            pop3s: port(has(Protocol::Pop3) && tls),
            lmtp: port(has(Protocol::Lmtp)),
        }
    }

    fn all(&self) -> Vec<u16> {
        [self.imap, self.imaps, self.pop3, self.pop3s, self.lmtp]
            .into_iter()
            .flatten()
            .collect()
    }
}

/// A running private Dovecot; stopped (service processes first, then the master) on drop.
#[derive(Debug)]
pub struct Dovecot {
    dir: tempfile::TempDir,
    conf: PathBuf,
    ports: Ports,
    stopped: bool,
}

impl Dovecot {
    /// A builder for an instance named after `name` (the test crate, used in the temp
    /// directory, the instance name and skip messages). Defaults: no protocols, no users,
    /// no TLS, `auth_mechanisms = plain login cram-md5 apop`, separator `/`.
    pub fn builder(name: &str) -> Builder {
        Builder {
            name: name.to_owned(),
            protocols: Vec::new(),
            users: Vec::new(),
            tls: None,
            auth_mechanisms: "plain login cram-md5 apop".to_owned(),
            separator: '/',
            mailboxes: Vec::new(),
            extra: Vec::new(),
            protocol_extra: Vec::new(),
        }
    }

    fn port(port: Option<u16>, what: &str) -> u16 {
        port.unwrap_or_else(|| panic!("this Dovecot has no {what} listener (see Builder)"))
    }

    /// The IMAP port (STARTTLS when TLS is on).
    ///
    /// # Panics
    /// When built without [`Protocol::Imap`].
    #[must_use]
    pub fn imap(&self) -> u16 {
        Self::port(self.ports.imap, "IMAP")
    }

    /// The IMAPS (implicit TLS) port.
    ///
    /// # Panics
    /// When built without [`Protocol::Imap`] or without [`Builder::tls`].
    #[must_use]
    pub fn imaps(&self) -> u16 {
        Self::port(self.ports.imaps, "IMAPS")
    }

    /// The POP3 port (STLS when TLS is on).
    ///
    /// # Panics
    /// When built without [`Protocol::Pop3`].
    #[must_use]
    pub fn pop3(&self) -> u16 {
        Self::port(self.ports.pop3, "POP3")
    }

    /// The POP3S (implicit TLS) port.
    ///
    /// # Panics
    /// When built without [`Protocol::Pop3`] or without [`Builder::tls`].
    #[must_use]
    pub fn pop3s(&self) -> u16 {
        Self::port(self.ports.pop3s, "POP3S")
    }

    /// The LMTP port.
    ///
    /// # Panics
    /// When built without [`Protocol::Lmtp`].
    #[must_use]
    pub fn lmtp(&self) -> u16 {
        Self::port(self.ports.lmtp, "LMTP")
    }

    /// The instance's directory (configuration, `run/`, `state/`, `mail/`, log).
    #[must_use]
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The master's pidfile (`run/master.pid`).
    #[must_use]
    pub fn pidfile(&self) -> PathBuf {
        self.root().join("run/master.pid")
    }

    /// The generated configuration file.
    #[must_use]
    pub fn config_path(&self) -> &Path {
        &self.conf
    }

    /// Dovecot's log so far (empty when there is none yet).
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root().join("dovecot.log")).unwrap_or_default()
    }

    /// The Maildir of `user`'s `folder`: `""` or `INBOX` for the INBOX, else the Maildir++
    /// name on disk (`.`-separated, e.g. `Work.Projects`).
    #[must_use]
    pub fn maildir(&self, user: &str, folder: &str) -> PathBuf {
        let base = self.root().join("mail").join(user).join("Maildir");
        if folder.is_empty() || folder == "INBOX" {
            base
        } else {
            base.join(format!(".{folder}"))
        }
    }

    /// Writes a message into `user`'s `folder` as already seen by a client: in `cur/` as
    /// `<name>:2,<flags>` (Maildir flags such as `S`, `FS`) with modification time (=
    /// INTERNALDATE) `date` (seconds since the epoch).
    ///
    /// # Panics
    /// When the file cannot be written.
    pub fn seed(&self, user: &str, folder: &str, name: &str, flags: &str, date: i64, body: &[u8]) {
        let dir = self.maildir(user, folder);
        make_maildir(&dir);
        let path = dir.join("cur").join(format!("{name}:2,{flags}"));
        write(&path, body);
        let when = UNIX_EPOCH + Duration::from_secs(u64::try_from(date).unwrap_or(0));
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(when))
            .unwrap_or_else(|e| panic!("cannot set the time of {}: {e}", path.display()));
        self.fix_owner(user);
    }

    /// Writes a newly delivered message into `user`'s `folder` (`new/<name>`).
    ///
    /// # Panics
    /// When the file cannot be written.
    pub fn deliver(&self, user: &str, folder: &str, name: &str, body: &[u8]) {
        let dir = self.maildir(user, folder);
        make_maildir(&dir);
        write(&dir.join("new").join(name), body);
        self.fix_owner(user);
    }

    /// Gives `user`'s mail back to the mail user after files were written directly.
    pub fn fix_owner(&self, user: &str) {
        let _ = Command::new("chown")
            .args(["-R", MAIL_OWNER])
            .arg(self.root().join("mail").join(user))
            .status();
    }

    /// Stops Dovecot now (see [`Stopper::stop`]); dropping it later does nothing more.
    pub fn stop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            self.stopper().stop();
        }
    }

    /// A handle that stops this instance from elsewhere (a progress callback, another
    /// thread) while the test still holds the `Dovecot`.
    #[must_use]
    pub fn stopper(&self) -> Stopper {
        Stopper {
            root: self.root().to_path_buf(),
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Stops one Dovecot instance; cheap to clone and `Send`.
#[derive(Debug, Clone)]
pub struct Stopper {
    root: PathBuf,
}

impl Stopper {
    /// Freezes the master (SIGSTOP, so it restarts nothing), kills its service processes
    /// (IMAP, POP3, login, auth, ...) with SIGKILL and waits until they are gone, so a
    /// connected client sees its connection die right away; then kills the master and waits
    /// (bounded) for it to be gone. (A SIGTERM'd master can take seconds to shut down.)
    /// Stopping an instance that is not running does nothing.
    pub fn stop(&self) {
        let Ok(master) = std::fs::read_to_string(self.root.join("run/master.pid")) else {
            return;
        };
        let master = master.trim().to_owned();
        if !alive(&master) {
            return;
        }
        let just_master = std::slice::from_ref(&master);
        signal("-STOP", just_master);
        let children = children_of(&master);
        signal("-KILL", &children);
        poll::until(Instant::now() + STOP_TIMEOUT, || {
            !children.iter().any(|c| alive(c))
        });
        signal("-KILL", just_master);
        poll::until(Instant::now() + STOP_TIMEOUT, || !alive(&master));
    }
}

fn signal(sig: &str, pids: &[String]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(sig)
        .args(pids)
        .stderr(Stdio::null())
        .status();
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        // "pid (comm) state ..."; comm may contain spaces and parentheses.
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// Pids whose parent is `pid` (from `/proc`).
fn children_of(pid: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter(|name| {
            std::fs::read_to_string(format!("/proc/{name}/stat")).is_ok_and(|stat| {
                // "pid (comm) state ppid ..."
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    == Some(pid)
            })
        })
        .collect()
}

fn make_maildir(dir: &Path) {
    for sub in ["new", "cur", "tmp"] {
        create_dir(&dir.join(sub));
    }
}

fn create_dir(p: &Path) {
    std::fs::create_dir_all(p).unwrap_or_else(|e| panic!("cannot create {}: {e}", p.display()));
}

fn write(p: &Path, data: &[u8]) {
    std::fs::write(p, data).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", p.display()));
}

fn chown(p: &Path) {
    let _ = Command::new("chown").arg(MAIL_OWNER).arg(p).status();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(b: &Builder) -> String {
        let ports = Ports {
            imap: Some(1143),
            imaps: None,
            pop3: Some(1110),
            pop3s: Some(1995),
            lmtp: None,
        };
        b.render(Path::new("/r"), &ports)
    }

    #[test]
    fn renders_listeners_users_and_mailboxes() {
        let b = Dovecot::builder("t")
            .protocol(Protocol::Imap)
            .protocol(Protocol::Pop3)
            .protocol(Protocol::Imap)
            .tls("C", "K")
            .separator('.')
            .subscribed_mailbox("Sent Messages", "\\Sent")
            .mailbox("Drafts", "\\Drafts")
            .protocol_config(Protocol::Imap, "imap_idle_notify_interval = 1 secs")
            .config("# extra");
        let c = config(&b);
        assert!(c.starts_with("instance_name = t-1143\n"), "{c}");
        assert!(c.contains("protocols = imap pop3\n"), "{c}");
        assert!(c.contains("ssl = yes\nssl_cert = </r/cert.pem\n"), "{c}");
        assert!(c.contains("  separator = .\n"), "{c}");
        assert!(c.contains(
            "  mailbox \"Sent Messages\" {\n    special_use = \\Sent\n    auto = subscribe\n  }\n"
        ));
        assert!(c.contains("  mailbox \"Drafts\" {\n    special_use = \\Drafts\n  }\n"));
        assert!(c.contains("protocol imap {\n  imap_idle_notify_interval = 1 secs\n}\n"));
        assert!(c.contains("protocol pop3 {\n  pop3_uidl_format = %08Xu%08Xv\n}\n"));
        // imaps was not picked: its listener is disabled with port 0.
        assert!(c.contains(
            "  inet_listener imaps {\n    address = 127.0.0.1\n    port = 0\n    ssl = yes\n  }\n"
        ));
        assert!(c.contains("  inet_listener pop3s {\n    address = 127.0.0.1\n    port = 1995\n"));
        assert!(!c.contains("service lmtp"));
        assert!(c.ends_with("# extra\n"));
    }

    #[test]
    fn without_tls_ssl_is_off() {
        let c = config(&Dovecot::builder("t").protocol(Protocol::Pop3));
        assert!(c.contains("ssl = no\n"));
        assert!(!c.contains("ssl_cert"));
    }

    #[test]
    fn ports_follow_protocols_and_tls() {
        let p = Ports::pick(&Dovecot::builder("t").protocol(Protocol::Lmtp));
        assert!(p.lmtp.is_some());
        assert!(p.imap.is_none() && p.imaps.is_none() && p.pop3.is_none());
        let p = Ports::pick(&Dovecot::builder("t").protocol(Protocol::Imap).tls("c", "k"));
        assert!(p.imap.is_some() && p.imaps.is_some() && p.pop3s.is_none());
        assert_eq!(p.all().len(), 2);
    }

    #[test]
    fn stopped_processes_are_not_alive() {
        assert!(alive("1"));
        assert!(!alive("999999999"));
        let mine = std::process::id().to_string();
        let parent = std::fs::read_to_string("/proc/self/stat").unwrap();
        let ppid = parent
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned();
        assert!(children_of(&ppid).contains(&mine));
    }
}
