//! The tokio adapter against real peers: swaks, Python's smtplib, curl, Postfix's smtp-sink
//! and a real Postfix smtpd; and our own Client against our own server.
#![cfg(feature = "tokio")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::SocketAddr;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use mail_net::{DevCertificate, TlsAcceptor, TlsConnector};
use mail_sasl::server::{Identity, Verification};
use mail_sasl::{AuthFailure, Mechanism, Secret};
use smtp_proto::server::{Config, MailDecision, MessageDecision, RcptDecision};
use smtp_proto::tokio::{Backend, Client, Envelope, ServeConfig, serve};
use smtp_proto::{ForwardPath, MailParams, Mailbox, RcptParams, ReversePath, client};

/// (sender, recipients, body) of each accepted message.
type Messages = Arc<Mutex<Vec<(String, Vec<String>, Vec<u8>)>>>;

#[derive(Clone, Debug, Default)]
struct Store {
    messages: Messages,
    auth: Arc<Mutex<Vec<String>>>,
}

struct TestBackend {
    store: Store,
    from: String,
    to: Vec<String>,
    body: Vec<u8>,
}

impl Backend for TestBackend {
    async fn mail_from(&mut self, from: &ReversePath, _: &MailParams) -> MailDecision {
        self.from = from.to_string();
        self.to.clear();
        self.body.clear();
        MailDecision::Accept
    }
    async fn rcpt_to(&mut self, to: &ForwardPath, _: &RcptParams) -> RcptDecision {
        match to.mailbox() {
            Some(m) if m.local_part() == "nobody" => RcptDecision::UnknownUser,
            _ => {
                self.to.push(to.to_string());
                RcptDecision::Accept
            }
        }
    }
    async fn data_chunk(&mut self, chunk: Bytes) {
        self.body.extend_from_slice(&chunk);
    }
    async fn message(&mut self, recipients: usize) -> Vec<MessageDecision> {
        self.store.messages.lock().unwrap().push((
            self.from.clone(),
            self.to.clone(),
            std::mem::take(&mut self.body),
        ));
        vec![MessageDecision::Queued("TEST1".into()); recipients]
    }
    async fn reset(&mut self) {
        self.body.clear();
    }
    async fn verify(&mut self, v: Verification) -> Result<Identity, AuthFailure> {
        match v {
            Verification::Password {
                username, password, ..
            } if username == "user" && password.expose() == "pass" => {
                self.store.auth.lock().unwrap().push(username.clone());
                Ok(Identity::new(username))
            }
            _ => Err(AuthFailure::InvalidCredentials),
        }
    }
}

struct TestServer {
    addr: SocketAddr,
    store: Store,
    cert: Arc<DevCertificate>,
}

async fn start(config: Config, starttls: bool) -> TestServer {
    let cert = Arc::new(DevCertificate::generate(&["localhost"]).unwrap());
    let acceptor = TlsAcceptor::from(cert.server_config().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let store = Store::default();
    let s2 = store.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let mut sc = ServeConfig::new(config.clone());
            if starttls {
                sc = sc.with_starttls(acceptor.clone());
            }
            let backend = TestBackend {
                store: s2.clone(),
                from: String::new(),
                to: vec![],
                body: vec![],
            };
            tokio::spawn(serve(tcp, sc, backend));
        }
    });
    TestServer { addr, store, cert }
}

/// Runs a program with a 60 s guard, off the runtime's worker threads.
async fn run(program: &str, args: Vec<String>) -> Output {
    let program = program.to_string();
    let fut = tokio::task::spawn_blocking(move || {
        std::process::Command::new(program)
            .args(args)
            .output()
            .unwrap()
    });
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .expect("peer hung")
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn swaks_args(addr: SocketAddr, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "--server",
        "127.0.0.1",
        "--port",
        &addr.port().to_string(),
        "--from",
        "alice@example.test",
        "--to",
        "bob@example.test",
        "--helo",
        "client.test",
        "--timeout",
        "20",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn submission() -> Config {
    Config::submission("mx.test")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_plain_and_pipelined() {
    if !common::require("swaks", "SMTP interop") {
        return;
    }
    let srv = start(Config::mx("mx.test"), false).await;
    let o = run(
        "swaks",
        swaks_args(srv.addr, &["--body", "hello\n.dot line\n"]),
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("250 2.0.0 Ok: queued as TEST1"),
        "{}",
        text(&o)
    );
    let o = run(
        "swaks",
        swaks_args(srv.addr, &["--pipeline", "--body", "piped"]),
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let msgs = srv.store.messages.lock().unwrap().clone();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].0, "<alice@example.test>");
    assert_eq!(msgs[0].1, ["<bob@example.test>"]);
    let body = String::from_utf8_lossy(&msgs[0].2).into_owned();
    assert!(body.contains("\r\n\r\nhello\r\n.dot line\r\n"), "{body:?}");
    assert!(String::from_utf8_lossy(&msgs[1].2).contains("\r\n\r\npiped\r\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_starttls_and_auth() {
    if !mail_testkit::peer::require_swaks_tls("SMTP interop over STARTTLS") {
        return;
    }
    let srv = start(submission(), true).await;
    for mech in ["PLAIN", "LOGIN"] {
        let o = run(
            "swaks",
            swaks_args(
                srv.addr,
                &[
                    "--tls",
                    "--auth",
                    mech,
                    "--auth-user",
                    "user",
                    "--auth-password",
                    "pass",
                ],
            ),
        )
        .await;
        assert!(o.status.success(), "{mech}: {}", text(&o));
        assert!(
            text(&o).contains("235 2.7.0 Authentication successful"),
            "{}",
            text(&o)
        );
    }
    // AUTH is not offered before STARTTLS; without TLS swaks cannot authenticate.
    let o = run(
        "swaks",
        swaks_args(
            srv.addr,
            &[
                "--auth",
                "PLAIN",
                "--auth-user",
                "user",
                "--auth-password",
                "pass",
            ],
        ),
    )
    .await;
    assert!(!o.status.success(), "{}", text(&o));
    // Wrong password.
    let o = run(
        "swaks",
        swaks_args(
            srv.addr,
            &[
                "--tls",
                "--auth",
                "PLAIN",
                "--auth-user",
                "user",
                "--auth-password",
                "nope",
            ],
        ),
    )
    .await;
    assert!(text(&o).contains("535 5.7.8"), "{}", text(&o));
    assert_eq!(srv.store.messages.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_size_over_limit_is_refused() {
    if !common::require("swaks", "SMTP interop") {
        return;
    }
    let mut c = Config::mx("mx.test");
    c.limits.message_size = 1000;
    let srv = start(c, false).await;
    let big = "x".repeat(2000);
    let o = run("swaks", swaks_args(srv.addr, &["--body", &big])).await;
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("552 5.3.4"), "{}", text(&o));
    assert!(srv.store.messages.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smtplib() {
    if !common::require("python3", "SMTP interop") {
        return;
    }
    let srv = start(submission(), true).await;
    let script = format!(
        r#"
import smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", {port}, local_hostname="py.test", timeout=20)
s.ehlo(); s.starttls(context=ctx); s.ehlo()
s.login("user", "pass")
r = s.sendmail("alice@example.test", ["bob@example.test", "nobody@example.test"], "Subject: py\r\n\r\nline\r\n.dot\r\n")
print("refused", r)
s.quit()
"#,
        port = srv.addr.port()
    );
    let o = run("python3", vec!["-c".into(), script]).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("refused {'nobody@example.test': (550, b'5.1.1 Mailbox unavailable')}"),
        "{}",
        text(&o)
    );
    let msgs = srv.store.messages.lock().unwrap().clone();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].2, b"Subject: py\r\n\r\nline\r\n.dot\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_upload() {
    if !common::require("curl", "SMTP interop") {
        return;
    }
    let srv = start(Config::mx("mx.test"), false).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("msg.eml");
    std::fs::write(&file, "Subject: curl\r\n\r\nhello\r\n.\r\nafter dot\r\n").unwrap();
    let o = run(
        "curl",
        vec![
            "-sS".into(),
            "--max-time".into(),
            "20".into(),
            format!("smtp://127.0.0.1:{}/client.test", srv.addr.port()),
            "--mail-from".into(),
            "alice@example.test".into(),
            "--mail-rcpt".into(),
            "bob@example.test".into(),
            "-T".into(),
            file.display().to_string(),
        ],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let msgs = srv.store.messages.lock().unwrap().clone();
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        msgs[0].2,
        b"Subject: curl\r\n\r\nhello\r\n.\r\nafter dot\r\n"
    );
}

fn mbox(s: &str) -> Mailbox {
    let (l, d) = s.split_once('@').unwrap();
    Mailbox::new(l, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_our_server() {
    let srv = start(submission(), true).await;
    let timeout = Duration::from_secs(20);
    tokio::time::timeout(timeout, async {
        let mut c = Client::connect(srv.addr, client::Config::new("client.test"))
            .await
            .unwrap();
        assert!(c.capabilities().unwrap().starttls);
        assert!(c.capabilities().unwrap().auth.is_empty());
        let connector = TlsConnector::from(srv.cert.client_config().unwrap());
        c.starttls(&connector, "localhost").await.unwrap();
        assert!(c.is_tls());
        assert_eq!(c.capabilities().unwrap().auth, ["PLAIN", "LOGIN"]);
        let creds =
            mail_sasl::client::ClientCredentials::new("user", Secret::new("pass".to_string()));
        c.auth(Mechanism::Login, creds).await.unwrap();
        let env = Envelope::new(
            ReversePath::Mailbox(mbox("alice@example.test")),
            vec![
                ForwardPath::Mailbox(mbox("bob@example.test")),
                ForwardPath::Mailbox(mbox("nobody@example.test")),
            ],
        );
        // BDAT (CHUNKING is offered).
        let d = c.send(&env, b"Subject: 1\r\n\r\n.x\r\n").await.unwrap();
        assert_eq!(d.recipients[1].1.code, 550);
        assert_eq!(d.message[0].code, 250);
        // DATA.
        c.prefer_bdat = false;
        let body = "Subject: 2\r\n\r\n.y\r\nb\u{fc}\r\n";
        c.send(&env, body.as_bytes()).await.unwrap();
        // A 2.5 MiB body streamed from a reader: three BDAT chunks, then over DATA.
        let big: Vec<u8> = b"line .\r\n.dot\r\n"
            .iter()
            .copied()
            .cycle()
            .take(14 * 187_246)
            .collect();
        c.prefer_bdat = true;
        c.send_reader(&env, &big[..]).await.unwrap();
        c.prefer_bdat = false;
        c.send_reader(&env, &big[..]).await.unwrap();
        // Every recipient refused: each RCPT's own reply comes back (DATA, then BDAT),
        // and the connection is ready for the next transaction.
        let nobody = vec![
            ForwardPath::Mailbox(mbox("nobody@example.test")),
            ForwardPath::Mailbox(mbox("nobody@example.org")),
        ];
        let refused = Envelope::new(ReversePath::Mailbox(mbox("alice@example.test")), nobody);
        for bdat in [false, true] {
            c.prefer_bdat = bdat;
            match c.send(&refused, b"Subject: 3\r\n\r\nx\r\n").await {
                Err(smtp_proto::Error::RecipientsRefused(r)) => {
                    let got: Vec<(String, u16)> = r
                        .iter()
                        .map(|(to, reply)| (to.to_string(), reply.code))
                        .collect();
                    assert_eq!(
                        got,
                        [
                            ("<nobody@example.test>".to_string(), 550),
                            ("<nobody@example.org>".to_string(), 550)
                        ],
                        "BDAT {bdat}"
                    );
                }
                other => panic!("BDAT {bdat}: {other:?}"),
            }
        }
        c.quit().await.unwrap();
    })
    .await
    .unwrap();
    let msgs = srv.store.messages.lock().unwrap().clone();
    assert_eq!(msgs.len(), 4, "nothing stored for the refused transactions");
    assert_eq!(msgs[0].2, b"Subject: 1\r\n\r\n.x\r\n");
    assert_eq!(msgs[1].2, "Subject: 2\r\n\r\n.y\r\nb\u{fc}\r\n".as_bytes());
    let big: Vec<u8> = b"line .\r\n.dot\r\n"
        .iter()
        .copied()
        .cycle()
        .take(14 * 187_246)
        .collect();
    assert!(
        msgs[2].2 == big,
        "BDAT body differs ({} octets)",
        msgs[2].2.len()
    );
    assert!(
        msgs[3].2 == big,
        "DATA body differs ({} octets)",
        msgs[3].2.len()
    );
    assert_eq!(srv.store.auth.lock().unwrap().as_slice(), ["user"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_our_lmtp_server() {
    let srv = start(Config::lmtp("lmtp.test"), false).await;
    let mut cfg = client::Config::new("client.test");
    cfg.lmtp = true;
    let mut c = Client::connect(srv.addr, cfg).await.unwrap();
    c.prefer_bdat = false;
    let env = Envelope::new(
        ReversePath::Null,
        vec![
            ForwardPath::Mailbox(mbox("a@x.test")),
            ForwardPath::Mailbox(mbox("nobody@x.test")),
            ForwardPath::Mailbox(mbox("b@x.test")),
        ],
    );
    let d = tokio::time::timeout(Duration::from_secs(20), c.send(&env, b"hi\r\n"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.message.len(), 2);
    assert!(d.message.iter().all(|r| r.code == 250));
    c.quit().await.unwrap();
}

/// Waits (bounded, off the runtime's threads) until a peer listens on `port`.
async fn wait_for_port(port: u16) {
    let addr = mail_testkit::net::localhost(port);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    tokio::task::spawn_blocking(move || mail_testkit::net::wait_for_port(addr, deadline))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("peer never listened on {port}: {e}"));
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_smtp_sink() {
    if !common::require("smtp-sink", "Postfix's smtp-sink (package postfix)") {
        return;
    }
    let port = mail_testkit::net::free_port();
    let mut args = vec![
        "-c".to_string(),
        format!("127.0.0.1:{port}"),
        "100".to_string(),
    ];
    if mail_testkit::peer::is_root() {
        args.splice(0..0, ["-u".to_string(), "postfix".to_string()]);
    }
    let _sink = Child(
        std::process::Command::new("smtp-sink")
            .args(&args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port).await;
    tokio::time::timeout(Duration::from_secs(30), async {
        let mut c = Client::connect(("127.0.0.1", port), client::Config::new("client.test"))
            .await
            .unwrap();
        assert!(c.capabilities().unwrap().pipelining);
        let env = Envelope::new(
            ReversePath::Mailbox(mbox("a@example.test")),
            vec![
                ForwardPath::Mailbox(mbox("b@example.test")),
                ForwardPath::Mailbox(mbox("c@example.test")),
            ],
        );
        for bdat in [false, true] {
            c.prefer_bdat = bdat;
            let d = c
                .send(&env, b"Subject: sink\r\n\r\n.leading\r\n")
                .await
                .unwrap();
            assert!(d.recipients.iter().all(|(_, r)| r.code == 250), "{d:?}");
            assert_eq!(d.message.len(), 1);
            assert!(d.message[0].is_positive(), "{d:?}");
        }
        c.quit().await.unwrap();
    })
    .await
    .unwrap();
}

/// A private Postfix instance (own config and queue directories, 127.0.0.1 only, every
/// message to the discard transport), stopped on drop.
struct Postfix {
    dir: tempfile::TempDir,
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let etc = self.dir.path().join("etc");
        let _ = std::process::Command::new("postfix")
            .arg("-c")
            .arg(&etc)
            .arg("stop")
            .output();
    }
}

fn start_postfix(port: u16, cert: &DevCertificate) -> Option<Postfix> {
    let dir = tempfile::Builder::new()
        .prefix("smtp-proto-postfix")
        .tempdir()
        .unwrap();
    let root = dir.path();
    std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let etc = root.join("etc");
    for d in ["etc", "spool", "data"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let chown = std::process::Command::new("chown")
        .arg("postfix")
        .arg(root.join("data"))
        .status();
    assert!(chown.unwrap().success());
    let (cert_file, key_file) = cert.write_to(&etc).unwrap();
    let r = root.display();
    std::fs::write(
        etc.join("main.cf"),
        format!(
            "compatibility_level = 3.6
queue_directory = {r}/spool
data_directory = {r}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = {r}
maillog_file = {r}/postfix.log
myhostname = postfix.test
mydomain = test
myorigin = test
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
biff = no
relay_domains =
default_transport = discard:test postfix discards everything
relay_transport = discard:test postfix discards everything
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
message_size_limit = 10240000
smtpd_tls_security_level = may
smtpd_tls_cert_file = {}
smtpd_tls_key_file = {}
",
            cert_file.display(),
            key_file.display()
        ),
    )
    .unwrap();
    std::fs::write(
        etc.join("master.cf"),
        format!(
            "127.0.0.1:{port} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"
        ),
    )
    .unwrap();
    let out = std::process::Command::new("postfix")
        .arg("-c")
        .arg(&etc)
        .arg("start")
        .output()
        .unwrap();
    if !out.status.success() {
        println!("postfix start failed: {}", text(&out));
        return None;
    }
    Some(Postfix { dir })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_postfix_smtpd() {
    if !common::require("postfix", "a real Postfix smtpd (package postfix)") {
        return;
    }
    if !mail_testkit::peer::is_root() {
        if std::env::var("MAIL_INTEROP_REQUIRED").as_deref() == Ok("1") {
            panic!("the Postfix test must run as root (MAIL_INTEROP_REQUIRED=1)");
        }
        println!("skipping: starting Postfix needs root");
        return;
    }
    let port = mail_testkit::net::free_port();
    let cert = DevCertificate::generate(&["localhost"]).unwrap();
    let pf = start_postfix(port, &cert);
    assert!(pf.is_some(), "postfix did not start");
    wait_for_port(port).await;
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut c = Client::connect(("127.0.0.1", port), client::Config::new("client.test"))
            .await
            .unwrap();
        let caps = c.capabilities().unwrap().clone();
        assert_eq!(caps.domain, "postfix.test");
        assert!(
            caps.pipelining && caps.starttls && caps.eight_bit_mime && caps.chunking,
            "{caps:?}"
        );
        assert_eq!(caps.size, Some(10240000));
        let connector = TlsConnector::from(cert.client_config().unwrap());
        c.starttls(&connector, "localhost").await.unwrap();
        assert!(c.is_tls());
        assert!(!c.capabilities().unwrap().starttls);
        let env = Envelope::new(
            ReversePath::Mailbox(mbox("alice@example.test")),
            vec![
                ForwardPath::Mailbox(mbox("bob@example.test")),
                ForwardPath::Mailbox(mbox("carol@example.test")),
            ],
        );
        for bdat in [true, false] {
            c.prefer_bdat = bdat;
            let d = c
                .send(
                    &env,
                    b"Subject: postfix\r\n\r\n.leading dot\r\nb\xc3\xbc\r\n",
                )
                .await
                .unwrap();
            assert!(d.recipients.iter().all(|(_, r)| r.code == 250), "{d:?}");
            assert_eq!(d.message.len(), 1);
            assert_eq!(d.message[0].code, 250, "{d:?}");
        }
        // A declared SIZE above Postfix's message_size_limit is refused at MAIL.
        let reply = c
            .command(smtp_proto::Command::Mail {
                from: env.from.clone(),
                params: {
                    let mut p = MailParams::default();
                    p.size = Some(20_000_000);
                    p
                },
            })
            .await
            .unwrap();
        assert_eq!(reply.code, 552, "{reply:?}");
        assert_eq!(reply.enhanced, Some(smtp_proto::EnhancedCode::new(5, 3, 4)));
        c.quit().await.unwrap();
    })
    .await
    .unwrap();
    drop(pf);
}

/// Reads until a final reply line (`ddd ` at the start of a line) has arrived.
async fn read_reply<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if text.ends_with("\r\n")
            && text
                .lines()
                .last()
                .is_some_and(|l| l.as_bytes().get(3) == Some(&b' '))
        {
            return text;
        }
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed after {text:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_discards_injected_plaintext_end_to_end() {
    use tokio::io::AsyncWriteExt;
    // CVE-2011-0411: a command pipelined after STARTTLS in the same plaintext packet must
    // not be executed inside the TLS session.
    let srv = start(Config::mx("mx.test"), true).await;
    tokio::time::timeout(Duration::from_secs(20), async {
        let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
        assert!(read_reply(&mut tcp).await.starts_with("220 mx.test"));
        tcp.write_all(b"EHLO a\r\n").await.unwrap();
        assert!(read_reply(&mut tcp).await.contains("STARTTLS"));
        tcp.write_all(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
            .await
            .unwrap();
        assert_eq!(
            read_reply(&mut tcp).await,
            "220 2.0.0 Ready to start TLS\r\n"
        );
        let connector = TlsConnector::from(srv.cert.client_config().unwrap());
        let name = mail_net::tls::server_name("localhost").unwrap();
        let mut tls = mail_net::MaybeTls::Plain(tcp)
            .upgrade_client(&connector, name)
            .await
            .unwrap();
        tls.write_all(b"MAIL FROM:<a@b.test>\r\n").await.unwrap();
        // Had the injected MAIL run, this would be "250 2.1.0 Ok" or a nested-MAIL error.
        assert_eq!(
            read_reply(&mut tls).await,
            "503 5.5.1 Send HELO/EHLO first\r\n"
        );
        tls.write_all(b"EHLO a\r\n").await.unwrap();
        let ehlo = read_reply(&mut tls).await;
        assert!(
            !ehlo.contains("STARTTLS") && ehlo.contains("REQUIRETLS"),
            "{ehlo}"
        );
        tls.write_all(b"QUIT\r\n").await.unwrap();
        assert_eq!(read_reply(&mut tls).await, "221 2.0.0 Bye\r\n");
    })
    .await
    .unwrap();
}
