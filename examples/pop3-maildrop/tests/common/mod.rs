//! Helpers for the interop tests: the example server started on free ports over a temporary
//! copy of the sample maildrop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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
        let rx = mail_testkit::process::stdout_lines(&mut child);
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
