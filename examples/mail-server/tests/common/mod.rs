//! Shared helpers: start the `mail-server` binary on free ports with a temporary data
//! directory, wait for its readiness lines, run admin subcommands, and skip (or fail under
//! `MAIL_INTEROP_REQUIRED=1`) when an external program is missing.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mail-server");

/// How long the server may take to print `ready`.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// True when `program` is installed; otherwise prints "skipping: ..." and returns false, or
/// panics when `MAIL_INTEROP_REQUIRED=1` (see `mail_testkit::peer`).
pub fn have(program: &str, why: &str) -> bool {
    mail_testkit::peer::require(program, why)
}

/// Runs a python3 script, asserting success; returns stdout.
pub fn python(script: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python3 failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A configuration for tests: temp data dir, POP3 and POP3S on port 0. Clients on
/// loopback may log in without TLS (as in the no-config demo) unless `extra` has its own
/// `[auth]` table.
pub fn test_config(data_dir: &Path, extra: &str, listeners: &str) -> String {
    let auth = if extra.contains("[auth]") {
        ""
    } else {
        "\n[auth]\nplaintext_networks = [\"127.0.0.0/8\", \"::1\"]\n"
    };
    format!(
        "data_dir = {:?}\ndomains = [\"example.test\", \"example.org\"]\nlog_level = \"info\"\n{extra}\n[listeners]\npop3 = \"127.0.0.1:0\"\npop3s = \"127.0.0.1:0\"\n{listeners}\n{auth}",
        data_dir.to_str().unwrap()
    )
}

/// A temporary directory with a config file in it.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub data: PathBuf,
}

impl Env {
    pub fn new(extra: &str) -> Self {
        Self::with_listeners(extra, "")
    }

    /// With more `[listeners]` keys.
    pub fn with_listeners(extra: &str, listeners: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let config = dir.path().join("server.toml");
        std::fs::write(&config, test_config(&data, extra, listeners)).unwrap();
        Self { dir, config, data }
    }

    /// Runs `mail-server --config <config> args...` with `stdin`.
    pub fn admin(&self, args: &[&str], stdin: &[u8]) -> Output {
        run_bin(Some(&self.config), self.dir.path(), args, stdin)
    }

    /// Like [`Env::admin`], asserting success; returns stdout.
    pub fn admin_ok(&self, args: &[&str], stdin: &[u8]) -> String {
        let out = self.admin(args, stdin);
        assert!(
            out.status.success(),
            "mail-server {args:?} failed: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Starts `serve` with this configuration.
    pub fn start(&self) -> Server {
        Server::start(Some(&self.config), self.dir.path())
    }

    /// The development certificate the server wrote.
    pub fn dev_cert(&self) -> PathBuf {
        self.data.join("tls").join("dev-cert.pem")
    }
}

/// Runs the binary once.
pub fn run_bin(config: Option<&Path>, cwd: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(BIN);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let mut child = cmd
        .args(args)
        .current_dir(cwd)
        .env_remove("MAIL_SERVER_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut si = child.stdin.take().unwrap();
        // A command that refuses early may close stdin first; that is fine.
        let _ = si.write_all(stdin);
    }
    wait_output(child, Duration::from_secs(60))
}

/// Waits (bounded) for a child and collects its output; kills it after `limit`.
pub fn wait_output(child: Child, limit: Duration) -> Output {
    mail_testkit::process::wait_for(child, limit)
}

/// A running `mail-server serve`.
pub struct Server {
    child: Option<Child>,
    /// `listening KEY ADDR` lines, by key.
    pub listeners: HashMap<String, SocketAddr>,
    /// Every stdout line up to `ready`.
    pub banner: Vec<String>,
    lines: mpsc::Receiver<String>,
}

impl Server {
    pub fn start(config: Option<&Path>, cwd: &Path) -> Self {
        let mut cmd = Command::new(BIN);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd
            .arg("serve")
            .current_dir(cwd)
            .env_remove("MAIL_SERVER_CONFIG")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let rx = mail_testkit::process::stdout_lines(&mut child);
        let mut server = Self {
            child: Some(child),
            listeners: HashMap::new(),
            banner: Vec::new(),
            lines: rx,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match server.lines.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => panic!(
                    "the server did not print `ready`; it printed: {:?}",
                    server.banner
                ),
            };
            server.banner.push(line.clone());
            if let Some(rest) = line.strip_prefix("listening ") {
                let mut parts = rest.split(' ');
                let key = parts.next().unwrap().to_string();
                let addr: SocketAddr = parts.next().unwrap().parse().unwrap();
                server.listeners.insert(key, addr);
            }
            if line == "ready" {
                return server;
            }
        }
    }

    pub fn pop3(&self) -> SocketAddr {
        self.listeners["pop3"]
    }

    pub fn pop3s(&self) -> SocketAddr {
        self.listeners["pop3s"]
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends SIGTERM and waits (bounded) for the exit; returns the status and the lines
    /// printed after `ready`.
    pub fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(s) => s.unwrap(),
            Err(_) => {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
                panic!("the server did not exit within 30 s of SIGTERM");
            }
        };
        // The reader thread ends at EOF, which follows the exit.
        let mut rest = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(10)) {
            rest.push(l);
        }
        (status, rest)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A Python prelude: poplib, ssl with an unverified context, and `addr`.
pub fn py_prelude(server: &Server) -> String {
    format!(
        "import poplib, ssl, sys\nctx = ssl._create_unverified_context()\nHOST = '127.0.0.1'\nPOP3 = {}\nPOP3S = {}\n",
        server.pop3().port(),
        server.pop3s().port()
    )
}

/// A small valid message.
pub fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: Tester <tester@example.org>\r\nTo: someone@example.test\r\nSubject: {subject}\r\nMessage-ID: <{subject}@test>\r\n\r\nbody of {subject}\r\n.dot line\r\n"
    )
    .into_bytes()
}
