//! Shared pieces of the load generators in `benches/src/bin/`: connecting (plaintext or
//! implicit TLS), a line-oriented reader, small IMAP/POP3 client steps, and reading a
//! process tree's memory from `/proc`.
//!
//! These binaries are benchmark tools for servers running on 127.0.0.1 that the benchmark
//! script started itself; they are not clients for real use (TLS certificates are not
//! verified, see [`connect`]).

#![allow(dead_code)] // each binary uses a different subset

use std::error::Error as StdError;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use mail_net::MaybeTls;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The error type of the load generators: a message for the operator.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Result alias used by the load generators.
pub type Result<T, E = BoxError> = std::result::Result<T, E>;

/// A plain error carrying one message.
#[derive(Debug)]
pub struct Msg(pub String);

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Msg {}

/// Returns an error with `text`.
pub fn err<T>(text: impl Into<String>) -> Result<T> {
    Err(Box::new(Msg(text.into())))
}

/// Upper bound for one response line; longer lines are an error (a broken peer).
pub const MAX_LINE: usize = 1 << 20;

/// Upper bound for one POP3 multi-line response (1 GiB).
pub const MAX_BODY: u64 = 1 << 30;

/// A buffered connection to a server, plaintext or TLS.
pub struct Conn {
    io: BufReader<MaybeTls<TcpStream>>,
    line: Vec<u8>,
    /// Per-read timeout.
    pub timeout: Duration,
}

/// Connects to `addr`, with implicit TLS when `tls` is set.
///
/// TLS here accepts **any** server certificate (the servers under test use self-signed
/// certificates on 127.0.0.1): never point these tools at a server you did not start.
pub async fn connect(addr: SocketAddr, tls: bool, timeout: Duration) -> Result<Conn> {
    let stream = if tls {
        let config = mail_net::tls::client_config_accept_any_certificate()?;
        let connector = mail_net::TlsConnector::from(config);
        let name = mail_net::tls::server_name(&addr.ip().to_string())?;
        mail_net::connect_tls(addr, &connector, name, timeout).await?
    } else {
        mail_net::connect(addr, timeout).await?
    };
    Ok(Conn {
        io: BufReader::with_capacity(16 * 1024, stream),
        line: Vec::with_capacity(256),
        timeout,
    })
}

/// Connects like [`connect`] but shares one TLS client configuration between many
/// connections (the IDLE load opens a thousand).
pub async fn connect_with(
    addr: SocketAddr,
    tls: Option<&mail_net::TlsConnector>,
    timeout: Duration,
) -> Result<Conn> {
    let stream = match tls {
        Some(connector) => {
            let name = mail_net::tls::server_name(&addr.ip().to_string())?;
            mail_net::connect_tls(addr, connector, name, timeout).await?
        }
        None => mail_net::connect(addr, timeout).await?,
    };
    Ok(Conn {
        // Small buffer: a thousand of these live at once in the IDLE load.
        io: BufReader::with_capacity(2048, stream),
        line: Vec::new(),
        timeout,
    })
}

/// A TLS connector that accepts any certificate (see [`connect`]).
pub fn insecure_connector() -> Result<mail_net::TlsConnector> {
    let config = mail_net::tls::client_config_accept_any_certificate()?;
    Ok(mail_net::TlsConnector::from(config))
}

impl Conn {
    /// Reads one line (with its CRLF) and returns it.
    pub async fn read_line(&mut self) -> Result<&[u8]> {
        self.line.clear();
        let io = &mut self.io;
        let line = &mut self.line;
        let read = async {
            let mut limited = io.take(MAX_LINE as u64);
            limited.read_until(b'\n', line).await
        };
        let n = tokio::time::timeout(self.timeout, read)
            .await
            .map_err(|_| Msg(format!("no response within {:?}", self.timeout)))??;
        if n == 0 {
            return err("connection closed by the server");
        }
        if !self.line.ends_with(b"\n") {
            return err("response line too long");
        }
        Ok(&self.line)
    }

    /// Reads exactly `n` bytes (an IMAP literal) and discards them.
    pub async fn skip_bytes(&mut self, n: u64) -> Result<()> {
        let io = &mut self.io;
        let copy = async {
            let mut limited = io.take(n);
            tokio::io::copy(&mut limited, &mut tokio::io::sink()).await
        };
        let got = tokio::time::timeout(self.timeout, copy)
            .await
            .map_err(|_| Msg(format!("no data within {:?}", self.timeout)))??;
        if got != n {
            return err("connection closed inside a literal");
        }
        Ok(())
    }

    /// Writes `data` and flushes.
    pub async fn send(&mut self, data: &[u8]) -> Result<()> {
        let w = self.io.get_mut();
        tokio::time::timeout(self.timeout, async {
            w.write_all(data).await?;
            w.flush().await
        })
        .await
        .map_err(|_| Msg(format!("write not done within {:?}", self.timeout)))??;
        Ok(())
    }

    /// Reads IMAP response lines until the tagged one for `tag`; fails unless it is OK.
    /// Literals announced at the end of untagged lines are skipped. Returns the number
    /// `MESSAGES n` reported in a STATUS response if one was seen.
    pub async fn imap_until_tagged(&mut self, tag: &str) -> Result<Option<u64>> {
        let mut messages = None;
        loop {
            let line = self.read_line().await?.to_vec();
            if let Some(rest) = line.strip_prefix(tag.as_bytes()) {
                if rest.starts_with(b" OK") {
                    return Ok(messages);
                }
                return err(format!(
                    "server answered {}",
                    String::from_utf8_lossy(&line).trim_end()
                ));
            }
            if line.starts_with(b"* STATUS") {
                messages = status_messages(&line).or(messages);
            }
            if let Some(n) = trailing_literal(&line) {
                self.skip_bytes(n).await?;
            }
        }
    }

    /// IMAP greeting, then `LOGIN user pass`.
    pub async fn imap_login(&mut self, user: &str, pass: &str) -> Result<()> {
        let greeting = self.read_line().await?;
        if !greeting.starts_with(b"* OK") {
            return err(format!(
                "unexpected IMAP greeting: {}",
                String::from_utf8_lossy(greeting).trim_end()
            ));
        }
        self.send(format!("L LOGIN {} {}\r\n", quote(user), quote(pass)).as_bytes())
            .await?;
        self.imap_until_tagged("L").await.map(|_| ())
    }

    /// POP3 greeting, then `USER` / `PASS`.
    pub async fn pop3_login(&mut self, user: &str, pass: &str) -> Result<()> {
        self.pop3_ok().await?;
        self.send(format!("USER {user}\r\n").as_bytes()).await?;
        self.pop3_ok().await?;
        self.send(format!("PASS {pass}\r\n").as_bytes()).await?;
        self.pop3_ok().await.map(|_| ())
    }

    /// Reads one POP3 status line; fails unless it is `+OK`. Returns the line.
    pub async fn pop3_ok(&mut self) -> Result<String> {
        let line = self.read_line().await?;
        let text = String::from_utf8_lossy(line).trim_end().to_owned();
        if text.starts_with("+OK") {
            Ok(text)
        } else {
            err(format!("POP3 server answered {text}"))
        }
    }

    /// Reads a POP3 multi-line body up to the terminating `.` line; returns the byte count
    /// of the lines (dot-stuffing included, terminator excluded).
    ///
    /// Reads whatever the socket has, in buffer-sized pieces, and looks only at the last
    /// five bytes seen: with byte-stuffing, `CRLF . CRLF` can only be the terminator, and
    /// the server sends nothing after it until the next command. (A line-by-line reader,
    /// [`Conn::pop3_multiline_lines`], costs the client more per message than a fast server
    /// spends, so it measures the client.)
    pub async fn pop3_multiline(&mut self) -> Result<u64> {
        // The status line ended with CRLF, so an empty body is just `.` CRLF.
        let mut tail = *b"???\r\n";
        let mut total = 0u64;
        loop {
            let io = &mut self.io;
            let chunk = tokio::time::timeout(self.timeout, io.fill_buf())
                .await
                .map_err(|_| Msg(format!("no response within {:?}", self.timeout)))??;
            if chunk.is_empty() {
                return err("connection closed inside a multi-line response");
            }
            let n = chunk.len();
            // Slide the last five bytes seen over this chunk.
            for &b in chunk.iter().skip(n.saturating_sub(5)) {
                tail.rotate_left(1);
                tail[4] = b;
            }
            total += n as u64;
            self.io.consume(n);
            if &tail == b"\r\n.\r\n" {
                return Ok(total - 3);
            }
            if total > MAX_BODY {
                return err("multi-line response longer than the limit");
            }
        }
    }

    /// Like [`Conn::pop3_multiline`], one line at a time (`--per-line` of `pop3-retr-load`).
    pub async fn pop3_multiline_lines(&mut self) -> Result<u64> {
        let mut total = 0u64;
        loop {
            let line = self.read_line().await?;
            if line == b".\r\n" || line == b".\n" {
                return Ok(total);
            }
            total += line.len() as u64;
        }
    }
}

/// Quotes an IMAP astring as a quoted string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `{n}` or `{n+}` at the end of a line (before CRLF): the literal's length.
fn trailing_literal(line: &[u8]) -> Option<u64> {
    let body = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    let body = body.strip_suffix(b"}")?;
    let body = body.strip_suffix(b"+").unwrap_or(body);
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = body.get(open + 1..)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The value of `MESSAGES` in a `* STATUS mailbox (MESSAGES n ...)` line.
fn status_messages(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?.to_ascii_uppercase();
    let at = text.find("MESSAGES ")?;
    let rest = text.get(at + "MESSAGES ".len()..)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A 10 KiB-class test message of exactly `size` bytes with CRLF line ends and a header.
pub fn make_message(size: usize, n: u64) -> Vec<u8> {
    let mut msg = format!(
        "From: Load Generator <load@example.test>\r\n\
         To: Bench <bench@example.test>\r\n\
         Subject: load message {n}\r\n\
         Date: Wed, 25 Nov 2026 00:00:00 +0000\r\n\
         Message-ID: <load-{n}@example.test>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n"
    )
    .into_bytes();
    let line = b"The quick brown fox jumps over the lazy dog, again and again, 0123456789.\r\n";
    while msg.len() + line.len() <= size {
        msg.extend_from_slice(line);
    }
    while msg.len() + 2 < size {
        msg.push(b'x');
    }
    msg.extend_from_slice(b"\r\n");
    msg
}

/// Memory of a process tree read from `/proc`, in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct TreeMemory {
    /// Sum of `VmRSS` over the processes.
    pub rss: u64,
    /// Sum of `Pss` (proportional set size: shared pages divided among their users).
    pub pss: u64,
    /// How many processes were summed.
    pub processes: u64,
    /// How many threads those processes have (`Threads:`).
    pub threads: u64,
}

/// Sums `VmRSS` and `Pss` of `root` and every descendant of it (by walking the parent
/// links in `/proc/*/stat`).
pub fn tree_memory(root: u32) -> Result<TreeMemory> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces/parens.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(after) = stat.rfind(')').and_then(|i| stat.get(i + 1..)) else {
            continue;
        };
        let ppid = after
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut members = vec![root];
    let mut i = 0;
    while let Some(&p) = members.get(i) {
        for &(child, parent) in &parents {
            if parent == p && !members.contains(&child) {
                members.push(child);
            }
        }
        i += 1;
    }
    let mut total = TreeMemory::default();
    for pid in members {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue; // exited meanwhile
        };
        total.processes += 1;
        total.rss += kib_field(&status, "VmRSS:").unwrap_or(0) * 1024;
        total.threads += kib_field(&status, "Threads:").unwrap_or(0);
        if let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
            total.pss += kib_field(&rollup, "Pss:").unwrap_or(0) * 1024;
        }
    }
    if total.processes == 0 {
        return err(format!("process {root} does not exist"));
    }
    Ok(total)
}

/// The number in a `Name:   1234 kB` (or `Name:   12`) line.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(name))?
        .get(name.len()..)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
