//! Shared helpers for interop tests: skipping when a peer program is missing, free ports,
//! and a private Dovecot POP3 server.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

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

/// A private Dovecot instance serving POP3 (and POP3S) on free ports, stopped on drop.
pub struct Dovecot {
    pub dir: tempfile::TempDir,
    pub pop3: u16,
    pub pop3s: u16,
    conf: PathBuf,
}

impl Dovecot {
    /// User `tester`, password `secret` ({PLAIN}, so APOP and CRAM-MD5 work).
    pub fn start(cert_pem: &str, key_pem: &str) -> Option<Self> {
        if !have(
            "dovecot",
            "the Dovecot POP3 interop test needs dovecot-pop3d",
        ) {
            return None;
        }
        // SAFETY of the check: Dovecot must start as root to switch to the mail user.
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
        std::fs::write(root.join("cert.pem"), cert_pem).ok()?;
        std::fs::write(root.join("key.pem"), key_pem).ok()?;
        std::fs::write(root.join("passwd"), "tester:{PLAIN}secret::::::\n").ok()?;
        chmod(&root.join("passwd"), "644");
        let _ = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(root.join("mail"))
            .status();
        let (pop3, pop3s) = (free_port(), free_port());
        let r = root.display();
        let conf = root.join("dovecot.conf");
        std::fs::write(
            &conf,
            format!(
                "instance_name = pop3-proto-test-{pop3}\nbase_dir = {r}/run\nstate_dir = {r}/state\n\
                 protocols = pop3\nlisten = 127.0.0.1\nlog_path = {r}/dovecot.log\n\
                 ssl = yes\nssl_cert = <{r}/cert.pem\nssl_key = <{r}/key.pem\n\
                 disable_plaintext_auth = no\nauth_mechanisms = plain login cram-md5 apop\n\
                 mail_location = maildir:{r}/mail/%u/Maildir\nmail_uid = nobody\nmail_gid = nogroup\n\
                 first_valid_uid = 1\nfirst_valid_gid = 1\n\
                 passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {r}/passwd\n}}\n\
                 userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={r}/mail/%u\n}}\n\
                 protocol pop3 {{\n  pop3_uidl_format = %08Xu%08Xv\n}}\n\
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
        Some(Self {
            dir,
            pop3,
            pop3s,
            conf,
        })
    }

    /// Puts a message into tester's INBOX (Maildir `new/`).
    pub fn seed(&self, name: &str, body: &[u8]) {
        let new = self.dir.path().join("mail/tester/Maildir/new");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(self.dir.path().join("mail/tester/Maildir").join(sub)).unwrap();
        }
        std::fs::write(new.join(name), body).unwrap();
        let _ = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(self.dir.path().join("mail"))
            .status();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }
}

fn chmod(p: &Path, mode: &str) {
    let _ = Command::new("chmod").arg(mode).arg(p).status();
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("doveadm")
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .status();
        let pid = self.dir.path().join("run/master.pid");
        if let Ok(pid) = std::fs::read_to_string(pid) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}
