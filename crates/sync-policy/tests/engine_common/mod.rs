//! Test support for the engine tests: skipping when a peer is missing, and a private
//! Dovecot (IMAP + POP3, plain, on free 127.0.0.1 ports, own config in a temp dir) whose
//! mailboxes are seeded by writing Maildir files directly.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// True if `program` runs; otherwise prints "skipping: <why>" and returns false, or panics
/// when MAIL_INTEROP_REQUIRED=1.
pub fn have(program: &str, why: &str) -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        skip(&format!("{program} is not installed ({why})"));
    }
    ok
}

/// Prints the skip reason, or panics if interop peers are required.
pub fn skip(why: &str) {
    if std::env::var("MAIL_INTEROP_REQUIRED").as_deref() == Ok("1") {
        panic!("MAIL_INTEROP_REQUIRED=1 but: {why}");
    }
    println!("skipping: {why}");
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private Dovecot serving IMAP and POP3 without TLS, stopped on drop. Users `tester`
/// and `other`, password `secret`. Hierarchy separator `.` (Maildir++), and a `\Sent`
/// folder called `Sent Messages`.
pub struct Dovecot {
    pub dir: tempfile::TempDir,
    pub imap: u16,
    pub pop3: u16,
    /// Implicit TLS ports, with the certificate below.
    pub imaps: u16,
    pub pop3s: u16,
    pub cert: mail_net::DevCertificate,
    conf: PathBuf,
    stopped: bool,
}

impl Dovecot {
    pub fn start() -> Option<Self> {
        if !have(
            "dovecot",
            "the import engine tests need dovecot-imapd and dovecot-pop3d",
        ) {
            return None;
        }
        let uid = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            skip("Dovecot must be started as root here");
            return None;
        }
        let dir = tempfile::tempdir().ok()?;
        let root = dir.path();
        for d in ["run", "state", "mail"] {
            std::fs::create_dir_all(root.join(d)).ok()?;
        }
        chmod(root, "755");
        std::fs::write(
            root.join("passwd"),
            "tester:{PLAIN}secret::::::\nother:{PLAIN}secret::::::\n",
        )
        .ok()?;
        chmod(&root.join("passwd"), "644");
        let cert = mail_net::DevCertificate::generate(&[]).ok()?;
        std::fs::write(root.join("cert.pem"), cert.cert_pem()).ok()?;
        std::fs::write(root.join("key.pem"), cert.key_pem()).ok()?;
        let (imap, pop3, imaps, pop3s) = (free_port(), free_port(), free_port(), free_port());
        let r = root.display();
        let conf = root.join("dovecot.conf");
        std::fs::write(
            &conf,
            format!(
                "instance_name = sync-policy-test-{imap}\nbase_dir = {r}/run\nstate_dir = {r}/state\n\
                 protocols = imap pop3\nlisten = 127.0.0.1\nlog_path = {r}/dovecot.log\n\
                 ssl = yes\nssl_cert = <{r}/cert.pem\nssl_key = <{r}/key.pem\ndisable_plaintext_auth = no\nauth_mechanisms = plain login apop\n\
                 auth_failure_delay = 0\n\
                 mail_location = maildir:{r}/mail/%u/Maildir\nmail_uid = nobody\nmail_gid = nogroup\n\
                 first_valid_uid = 1\nfirst_valid_gid = 1\nmail_max_userip_connections = 100\n\
                 passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {r}/passwd\n}}\n\
                 userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={r}/mail/%u\n}}\n\
                 namespace inbox {{\n  inbox = yes\n  separator = .\n\
                   mailbox \"Sent Messages\" {{\n    special_use = \\Sent\n  }}\n\
                   mailbox Drafts {{\n    special_use = \\Drafts\n  }}\n}}\n\
                 protocol pop3 {{\n  pop3_uidl_format = %08Xu%08Xv\n}}\n\
                 service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap}\n  }}\n\
                   inet_listener imaps {{\n    address = 127.0.0.1\n    port = {imaps}\n    ssl = yes\n  }}\n}}\n\
                 service pop3-login {{\n  inet_listener pop3 {{\n    address = 127.0.0.1\n    port = {pop3}\n  }}\n\
                   inet_listener pop3s {{\n    address = 127.0.0.1\n    port = {pop3s}\n    ssl = yes\n  }}\n}}\n\
                 service anvil {{\n  chroot =\n}}\nservice stats {{\n  inet_listener http {{\n    port = 0\n  }}\n}}\n"
            ),
        )
        .ok()?;
        let st = Command::new("dovecot").arg("-c").arg(&conf).status().ok()?;
        if !st.success() {
            let log = std::fs::read_to_string(root.join("dovecot.log")).unwrap_or_default();
            panic!("dovecot failed to start: {st}\n{log}");
        }
        let d = Self {
            dir,
            imap,
            pop3,
            imaps,
            pop3s,
            cert,
            conf,
            stopped: false,
        };
        d.wait_listening(d.imap);
        d.wait_listening(d.pop3);
        d.wait_listening(d.imaps);
        d.wait_listening(d.pop3s);
        Some(d)
    }

    /// Waits until a connect succeeds (readiness, not a sleep), at most 10 s.
    fn wait_listening(&self, port: u16) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "dovecot did not listen on {port}\n{}",
                self.log()
            );
            std::thread::yield_now();
        }
    }

    /// The Maildir of `user`, folder `folder` (`""` or `INBOX` for the INBOX, else the
    /// Maildir++ name such as `Work.Projects`).
    pub fn maildir(&self, user: &str, folder: &str) -> PathBuf {
        let base = self.dir.path().join(format!("mail/{user}/Maildir"));
        if folder.is_empty() || folder == "INBOX" {
            base
        } else {
            base.join(format!(".{folder}"))
        }
    }

    /// Writes a message into `folder` of `user`: in `cur/` with Maildir `flags` (e.g. "S",
    /// "FS"), modification time (= INTERNALDATE) `date`.
    pub fn seed(&self, user: &str, folder: &str, name: &str, flags: &str, date: i64, body: &[u8]) {
        let dir = self.maildir(user, folder);
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let path = dir.join("cur").join(format!("{name}:2,{flags}"));
        std::fs::write(&path, body).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(UNIX_EPOCH + Duration::from_secs(date as u64))
            .unwrap();
        self.fix_owner(user);
    }

    /// Subscribes nothing, just makes ownership right after direct writes.
    pub fn fix_owner(&self, user: &str) {
        let _ = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(self.dir.path().join(format!("mail/{user}")))
            .status();
    }

    /// A TLS client configuration trusting this Dovecot's certificate.
    pub fn connector(&self) -> mail_net::TlsConnector {
        mail_net::TlsConnector::from(self.cert.client_config().unwrap())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Stops Dovecot (master and, with the default `shutdown_clients = yes`, every IMAP
    /// and POP3 process): the remote dies under the client.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        stop_dovecot(&self.conf, self.dir.path());
    }

    /// A closure-friendly stopper for use inside progress callbacks.
    pub fn stopper(&self) -> (PathBuf, PathBuf) {
        (self.conf.clone(), self.dir.path().to_path_buf())
    }
}

/// Stops the Dovecot started from `conf`: its service processes (the master's children,
/// found by parent pid in /proc) are killed first with SIGKILL, and this waits until they
/// are gone, so a client of theirs sees the connection die right away; then the master.
pub fn stop_dovecot(conf: &Path, root: &Path) {
    let Ok(master) = std::fs::read_to_string(root.join("run/master.pid")) else {
        return;
    };
    let master = master.trim().to_owned();
    let children = children_of(&master);
    for c in &children {
        let _ = Command::new("kill")
            .args(["-KILL", c])
            .stderr(std::process::Stdio::null())
            .status();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while children.iter().any(|c| {
        std::fs::read_to_string(format!("/proc/{c}/stat")).is_ok_and(|s| !s.contains(") Z "))
    }) && std::time::Instant::now() < deadline
    {
        std::thread::yield_now();
    }
    let _ = Command::new("doveadm")
        .arg("-c")
        .arg(conf)
        .arg("stop")
        .stderr(std::process::Stdio::null())
        .status();
    let _ = Command::new("kill")
        .arg(&master)
        .stderr(std::process::Stdio::null())
        .status();
}

/// Pids whose parent is `pid`.
fn children_of(pid: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{name}/stat")) {
            // pid (comm) state ppid ...
            let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
            if after.split_whitespace().nth(1) == Some(pid) {
                out.push(name);
            }
        }
    }
    out
}

fn chmod(p: &Path, mode: &str) {
    let _ = Command::new("chmod").arg(mode).arg(p).status();
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A small RFC 5322 message.
pub fn message(n: usize, subject: &str, extra_body: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Sender {n} <sender{n}@example.net>\r\nTo: tester@example.org\r\n\
         Subject: {subject}\r\nMessage-ID: <msg{n}.{subject_len}@example.net>\r\n\
         Date: Mon, 2 Jan 2023 10:00:00 +0000\r\n\r\nBody of message {n}.\r\n",
        subject_len = subject.len()
    )
    .into_bytes();
    for _ in 0..extra_body / 64 {
        m.extend_from_slice(b"0123456789012345678901234567890123456789012345678901234567890\r\n");
    }
    m
}

/// Seconds since the epoch now (for fake clocks that start at the real time).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
