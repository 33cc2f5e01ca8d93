//! Test support shared by the MX unit tests (src/outbound_mx_tests.rs) and the
//! end-to-end relay test (tests/relay_mx.rs): a fake DNS server answering from a table
//! with hand-built UDP packets, and scripted SMTP sinks (smtp-proto's server) that record
//! what they received and every byte the client sent.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use smtp_proto::server::{MailDecision, MessageDecision, RcptDecision};
use smtp_proto::tokio::{Backend, ServeConfig};
use smtp_proto::{ForwardPath, MailParams, RcptParams, Reply, ReversePath};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

#[derive(Clone, Debug)]
pub enum Rr {
    Mx(u16, &'static str),
    A(Ipv4Addr),
}

/// Answers MX / A / AAAA from a table; names not in it get NXDOMAIN, other types of
/// known names an empty NOERROR answer.
pub async fn fake_dns(zone: Vec<(&'static str, Rr)>) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let mut table: HashMap<String, Vec<Rr>> = HashMap::new();
    for (name, rr) in zone {
        table.entry(name.to_string()).or_default().push(rr);
    }
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            if let Some(reply) = dns_answer(&buf[..n], &table) {
                let _ = sock.send_to(&reply, peer).await;
            }
        }
    });
    addr
}

pub fn encode_name(name: &str, out: &mut Vec<u8>) {
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

pub fn dns_answer(q: &[u8], table: &HashMap<String, Vec<Rr>>) -> Option<Vec<u8>> {
    // Question: labels from offset 12, then QTYPE and QCLASS.
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    let question = q.get(12..i + 4)?;
    let name = labels.join(".");
    let records = table.get(&name);
    let mut answers: Vec<Vec<u8>> = Vec::new();
    for rr in records.into_iter().flatten() {
        let mut a = vec![0xc0, 0x0c]; // pointer to the question's name
        match (rr, qtype) {
            (Rr::Mx(pref, host), 15) => {
                let mut rdata = pref.to_be_bytes().to_vec();
                encode_name(host, &mut rdata);
                a.extend_from_slice(&15u16.to_be_bytes());
                a.extend_from_slice(&1u16.to_be_bytes());
                a.extend_from_slice(&60u32.to_be_bytes());
                a.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
                a.extend_from_slice(&rdata);
            }
            (Rr::A(ip), 1) => {
                a.extend_from_slice(&1u16.to_be_bytes());
                a.extend_from_slice(&1u16.to_be_bytes());
                a.extend_from_slice(&60u32.to_be_bytes());
                a.extend_from_slice(&4u16.to_be_bytes());
                a.extend_from_slice(&ip.octets());
            }
            _ => continue,
        }
        answers.push(a);
    }
    let rcode: u16 = if records.is_none() { 3 } else { 0 };
    let rd = u16::from_be_bytes([q[2], q[3]]) & 0x0100;
    let flags: u16 = 0x8000 | 0x0400 | rd | 0x0080 | rcode;
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&q[..2]);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    for a in answers {
        out.extend_from_slice(&a);
    }
    Some(out)
}

// ---------------------------------------------------------------- SMTP sinks

/// What a sink received in one transaction.
#[derive(Debug)]
pub struct Received {
    pub sink: &'static str,
    pub rcpts: Vec<String>,
    pub body: Vec<u8>,
    /// Every byte the client sent on this connection, as seen on the wire.
    pub wire: Arc<Mutex<Vec<u8>>>,
    /// The AUTH user, if the client logged in.
    pub user: Option<String>,
}

pub struct SinkBackend {
    pub name: &'static str,
    pub mode: Mode,
    pub rcpts: Vec<String>,
    pub body: Vec<u8>,
    pub wire: Arc<Mutex<Vec<u8>>>,
    pub tx: mpsc::UnboundedSender<Received>,
    pub user: Option<String>,
}

impl Backend for SinkBackend {
    async fn mail_from(&mut self, _: &ReversePath, _: &MailParams) -> MailDecision {
        self.rcpts.clear();
        self.body.clear();
        if self.mode == Mode::Busy {
            return MailDecision::Reply(Reply::enh(451, (4, 3, 2), "busy, try another MX"));
        }
        MailDecision::Accept
    }
    /// `ok*` accepted, `bad*` 550 5.1.1, `soon*` 450 4.2.1.
    async fn rcpt_to(&mut self, to: &ForwardPath, _: &RcptParams) -> RcptDecision {
        let m = to.mailbox().unwrap();
        let local = m.local_part_unquoted().to_string();
        if local.starts_with("bad") {
            RcptDecision::Reply(Reply::enh(550, (5, 1, 1), "no such user"))
        } else if local.starts_with("soon") {
            RcptDecision::Reply(Reply::enh(450, (4, 2, 1), "try again later"))
        } else {
            self.rcpts.push(format!("{local}@{}", m.domain()));
            RcptDecision::Accept
        }
    }
    async fn data_chunk(&mut self, chunk: bytes::Bytes) {
        self.body.extend_from_slice(&chunk);
    }
    async fn message(&mut self, _: usize) -> Vec<MessageDecision> {
        let _ = self.tx.send(Received {
            sink: self.name,
            rcpts: std::mem::take(&mut self.rcpts),
            body: std::mem::take(&mut self.body),
            wire: Arc::clone(&self.wire),
            user: self.user.clone(),
        });
        vec![MessageDecision::Accept]
    }
    /// Password `s3cret` for anyone.
    async fn verify(
        &mut self,
        credentials: mail_sasl::server::Verification,
    ) -> Result<mail_sasl::server::Identity, mail_sasl::AuthFailure> {
        match credentials {
            mail_sasl::server::Verification::Password {
                username, password, ..
            } if password.expose() == "s3cret" => {
                self.user = Some(username.clone());
                Ok(mail_sasl::server::Identity::new(username))
            }
            _ => Err(mail_sasl::AuthFailure::InvalidCredentials),
        }
    }
}

/// A stream that copies every byte read into `wire`.
pub struct Tap<S> {
    pub inner: S,
    pub wire: Arc<Mutex<Vec<u8>>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let new = buf.filled()[before..].to_vec();
        self.wire.lock().unwrap().extend_from_slice(&new);
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How a sink behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Plain,
    /// Offers STARTTLS.
    Tls,
    /// Answers every MAIL with 451.
    Busy,
    /// Submission: STARTTLS, then AUTH (password `s3cret`) required.
    Submission,
    /// Submission with implicit TLS.
    SubmissionTls,
}

/// Starts a sink on `listener`; TLS modes use `cert`.
pub fn sink(
    name: &'static str,
    listener: TcpListener,
    mode: Mode,
    tx: mpsc::UnboundedSender<Received>,
) {
    let cert = mail_net::DevCertificate::generate(&["mx.test"]).unwrap();
    sink_with_cert(name, listener, mode, tx, &cert);
}

pub fn sink_with_cert(
    name: &'static str,
    listener: TcpListener,
    mode: Mode,
    tx: mpsc::UnboundedSender<Received>,
    cert: &mail_net::DevCertificate,
) {
    let acceptor = mail_net::TlsAcceptor::from(cert.server_config().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let wire = Arc::new(Mutex::new(Vec::new()));
            let smtp = match mode {
                Mode::Submission | Mode::SubmissionTls => {
                    smtp_proto::server::Config::submission(name)
                }
                _ => smtp_proto::server::Config::mx(name),
            };
            let mut config = ServeConfig::new(smtp);
            if matches!(mode, Mode::Tls | Mode::Submission) {
                config = config.with_starttls(acceptor.clone());
            }
            let backend = SinkBackend {
                name,
                mode,
                rcpts: Vec::new(),
                body: Vec::new(),
                wire: Arc::clone(&wire),
                tx: tx.clone(),
                user: None,
            };
            let tap = Tap { inner: tcp, wire };
            if mode == Mode::SubmissionTls {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tap).await else {
                        return;
                    };
                    config.smtp.implicit_tls = true;
                    let _ = smtp_proto::tokio::serve(tls, config, backend).await;
                });
            } else {
                tokio::spawn(smtp_proto::tokio::serve(tap, config, backend));
            }
        }
    });
}

/// Listeners on 127.0.0.2 and 127.0.0.3 sharing one port (127.0.0.4 on that port has
/// nothing: connection refused).
pub async fn two_listeners() -> (TcpListener, TcpListener, u16) {
    for _ in 0..50 {
        let a = TcpListener::bind("127.0.0.2:0").await.unwrap();
        let port = a.local_addr().unwrap().port();
        if let Ok(b) = TcpListener::bind(("127.0.0.3", port)).await {
            // Make sure 127.0.0.4:port is free too (it must refuse).
            if std::net::TcpListener::bind(("127.0.0.4", port)).is_ok() {
                return (a, b, port);
            }
        }
    }
    panic!("no shared port for 127.0.0.2/3/4");
}

/// A hand-scripted SMTP server that offers STARTTLS, answers `220` to it and then sends
/// bytes that are not TLS (a broken TLS stack); on a connection without STARTTLS it
/// takes one message and reports it (`wire` holds that connection's bytes). `tx` also
/// gets a `Received` with sink `"handshake-broken"` for every broken handshake.
pub fn broken_tls_sink(listener: TcpListener, tx: mpsc::UnboundedSender<Received>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let (r, mut w) = tcp.into_split();
                let mut r = BufReader::new(r);
                let wire = Arc::new(Mutex::new(Vec::new()));
                let mut rcpts = Vec::new();
                let _ = w.write_all(b"220 broken.test ESMTP\r\n").await;
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    wire.lock().unwrap().extend_from_slice(line.as_bytes());
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-broken.test\r\n250 STARTTLS\r\n",
                        "STAR" => {
                            let _ = w.write_all(b"220 go ahead\r\n").await;
                            let _ = w.write_all(b"this is not a TLS record\r\n").await;
                            let _ = tx.send(Received {
                                sink: "handshake-broken",
                                rcpts: Vec::new(),
                                body: Vec::new(),
                                wire: Arc::clone(&wire),
                                user: None,
                            });
                            return;
                        }
                        "MAIL" => b"250 ok\r\n",
                        "RCPT" => {
                            let addr = line
                                .split_once('<')
                                .and_then(|(_, a)| a.split_once('>'))
                                .map(|(a, _)| a.to_string())
                                .unwrap_or_default();
                            rcpts.push(addr);
                            b"250 ok\r\n"
                        }
                        "DATA" => {
                            let _ = w.write_all(b"354 go\r\n").await;
                            let mut body = Vec::new();
                            loop {
                                line.clear();
                                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                                    return;
                                }
                                if line == ".\r\n" {
                                    break;
                                }
                                body.extend_from_slice(line.as_bytes());
                            }
                            let _ = tx.send(Received {
                                sink: "plaintext-after-broken-tls",
                                rcpts: std::mem::take(&mut rcpts),
                                body,
                                wire: Arc::clone(&wire),
                                user: None,
                            });
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"502 not here\r\n",
                    };
                    let _ = w.write_all(reply).await;
                }
            });
        }
    });
}
