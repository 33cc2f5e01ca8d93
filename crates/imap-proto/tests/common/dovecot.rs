//! A private Dovecot (Debian's dovecot-imapd) for the client interop tests: its own
//! config under a temporary directory, IMAP on a free 127.0.0.1 port with STARTTLS (a dev
//! certificate), users `tester` / `tester2` with password `secret`; stopped (by its master
//! pid) when dropped.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::time::Duration;

pub struct Dovecot {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub cert: mail_net::DevCertificate,
    config: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Dovecot {
    /// Starts Dovecot, or returns `None` (after printing "skipping: ...", or panicking under
    /// MAIL_INTEROP_REQUIRED=1) when it cannot run here.
    pub async fn start() -> Option<Self> {
        if !super::require_program("dovecot", "Dovecot interop") {
            return None;
        }
        let uid = std::process::Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            super::skip("Dovecot interop needs root (Dovecot drops privileges itself)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("imapsm-dovecot")
            .tempdir_in("/tmp")
            .unwrap();
        let root = dir.path().to_path_buf();
        for d in ["run", "state", "mail"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let chown = std::process::Command::new("chown")
            .arg("nobody:nogroup")
            .arg(root.join("mail"))
            .status()
            .unwrap();
        assert!(chown.success());
        std::process::Command::new("chmod")
            .arg("755")
            .arg(&root)
            .status()
            .unwrap();
        std::fs::write(
            root.join("passwd"),
            "tester:{PLAIN}secret::::::\ntester2:{PLAIN}secret::::::\n",
        )
        .unwrap();
        let cert = mail_net::DevCertificate::generate(&["localhost"]).unwrap();
        let (cert_path, key_path) = cert.write_to(&root.join("tls")).unwrap();
        let port = free_port();
        let r = root.display();
        let conf = format!(
            r#"instance_name = imapsm-test-{port}
base_dir = {r}/run
state_dir = {r}/state
protocols = imap
listen = 127.0.0.1
log_path = {r}/dovecot.log
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{r}/mail/%u/Maildir
mail_uid = nobody
mail_gid = nogroup
first_valid_uid = 1
first_valid_gid = 1
mail_plugins = $mail_plugins
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {r}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={r}/mail/%n
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \Trash
    auto = subscribe
  }}
}}
protocol imap {{
  imap_idle_notify_interval = 1 secs
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"#,
            cert = cert_path.display(),
            key = key_path.display(),
        );
        let config = root.join("dovecot.conf");
        std::fs::write(&config, conf).unwrap();
        // The master daemonizes and keeps inherited descriptors: give it none to hold.
        let st = std::process::Command::new("dovecot")
            .arg("-c")
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(
            st.success(),
            "dovecot failed to start (see {}/dovecot.log)",
            r
        );
        let me = Self {
            port,
            dir,
            cert,
            config,
        };
        // Ready when a connection succeeds and the greeting arrives.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                use tokio::io::AsyncReadExt;
                let mut b = [0u8; 64];
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await
                    && b[..n].starts_with(b"* OK")
                {
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "dovecot did not come up: {}",
                me.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(me)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    pub fn addr(&self) -> (&'static str, u16) {
        ("127.0.0.1", self.port)
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let pidfile = self.dir.path().join("run/master.pid");
        if let Ok(pid) = std::fs::read_to_string(&pidfile) {
            let pid = pid.trim().to_string();
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(&pid)
                .status();
            // Wait (bounded) for the master to exit so the temp dir can go.
            for _ in 0..100 {
                let alive = std::process::Command::new("kill")
                    .arg("-0")
                    .arg(&pid)
                    .stderr(std::process::Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                if !alive {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = &self.config;
    }
}
