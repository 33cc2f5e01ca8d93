//! Helpers for the interop tests: skip-or-fail for missing peers, and the example server
//! started on free ports over a temporary copy of the sample maildrop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// True if `program` is installed; otherwise prints "skipping: <why>" and returns false,
/// or panics when MAIL_INTEROP_REQUIRED=1.
pub fn have(program: &str) -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        let why = format!("{program} is not installed");
        if std::env::var("MAIL_INTEROP_REQUIRED").as_deref() == Ok("1") {
            panic!("MAIL_INTEROP_REQUIRED=1 but {why}");
        }
        println!("skipping: {why}");
    }
    ok
}

/// The sample messages shipped with the example.
pub fn sample_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sample")
}

/// The example server on free ports; killed (by its own pid) on drop.
pub struct Server {
    child: Child,
    pub dir: tempfile::TempDir,
    pub pop3: u16,
    pub pop3s: u16,
}

impl Server {
    /// Copies the samples to a temp dir and starts `pop3-maildrop` with user `u`, pass `p`.
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(sample_dir()).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "eml") {
                std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
            }
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_pop3-maildrop"))
            .arg("--dir")
            .arg(dir.path())
            .args(["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"])
            .args(["--user", "u", "--pass", "p"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut pop3, mut pop3s) = (0, 0);
        let port = |l: &str| -> u16 {
            let addr = l.split_whitespace().nth(1).unwrap();
            addr.rsplit(':').next().unwrap().parse().unwrap()
        };
        // Readiness: the server prints its addresses, then "ready".
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("server did not get ready");
            let t = line.trim_start();
            if t.starts_with("POP3S ") {
                pop3s = port(t);
            } else if t.starts_with("POP3 ") {
                pop3 = port(t);
            } else if t == "ready" {
                break;
            }
        }
        assert!(pop3 != 0 && pop3s != 0);
        Self {
            child,
            dir,
            pop3,
            pop3s,
        }
    }

    /// The `.eml` files left in the maildrop.
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a program with a timeout guard; returns (status ok, stdout, stderr).
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => {
            let out = out.unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
        Err(_) => {
            let _ = Command::new("kill").arg(id.to_string()).status();
            panic!("peer program timed out");
        }
    }
}

/// The message as POP3 sends it: CRLF line ends.
pub fn crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 40);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}
