//! The accept loop on 127.0.0.1:0: implicit TLS, limits and refusal hook, shutdown and drain.

// Test helpers outside #[test] functions may unwrap and panic too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::time::Duration;

use mail_net::tls;
use mail_net::{
    ConnInfo, ConnectionLimiter, DevCertificate, Drained, Error, ListenerSpec, MaybeTls, Refusal,
    ServeOptions, Shutdown, TlsAcceptor, TlsConnector, TlsMode,
};
use mail_testkit::TEST_TIMEOUT;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

/// Reads one CRLF-terminated line a byte at a time (nothing after it is consumed).
async fn read_line<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<String> {
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        match s.read_u8().await {
            Ok(b) => line.push(b),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !line.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// A tiny line protocol: greet with "+OK ready <sni>", answer "PING" with "+OK pong" and
/// "QUIT" with "+OK bye" (then close); end on EOF. Reports each connection on `seen`.
async fn handler(
    mut stream: MaybeTls<TcpStream>,
    info: ConnInfo,
    seen: mpsc::UnboundedSender<ConnInfo>,
) {
    let sni = info
        .tls
        .as_ref()
        .and_then(|t| t.sni.clone())
        .unwrap_or_else(|| "-".into());
    let _ = seen.send(info);
    if stream
        .write_all(format!("+OK ready {sni}\r\n").as_bytes())
        .await
        .is_err()
    {
        return;
    }
    loop {
        let Ok(line) = read_line(&mut stream).await else {
            return;
        };
        match line.as_str() {
            "PING\r\n" => {
                let _ = stream.write_all(b"+OK pong\r\n").await;
            }
            "QUIT\r\n" => {
                let _ = stream.write_all(b"+OK bye\r\n").await;
                let _ = stream.shutdown().await;
                return;
            }
            _ => return,
        }
    }
}

struct Running {
    addr: SocketAddr,
    limiter: ConnectionLimiter,
    shutdown: Shutdown,
    seen: mpsc::UnboundedReceiver<ConnInfo>,
    task: JoinHandle<Result<(), Error>>,
}

async fn start(
    mode: TlsMode,
    acceptor: Option<TlsAcceptor>,
    limiter: ConnectionLimiter,
    configure: impl FnOnce(ServeOptions) -> ServeOptions,
) -> Running {
    let spec = ListenerSpec::new("127.0.0.1:0".parse().unwrap(), mode);
    let listener = spec.bind().await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let (tx, seen) = mpsc::unbounded_channel();
    let mut options = ServeOptions::new(spec, limiter.clone(), shutdown.clone());
    if let Some(acceptor) = acceptor {
        options = options.tls(acceptor);
    }
    let options = configure(options);
    let task = tokio::spawn(mail_net::serve_with(
        listener,
        options,
        move |stream, info| handler(stream, info, tx.clone()),
    ));
    Running {
        addr,
        limiter,
        shutdown,
        seen,
        task,
    }
}

async fn tls_connect(
    addr: SocketAddr,
    connector: &TlsConnector,
    name: &str,
) -> MaybeTls<TcpStream> {
    mail_net::connect_tls(
        addr,
        connector,
        tls::server_name(name).unwrap(),
        TEST_TIMEOUT,
    )
    .await
    .unwrap()
}

async fn expect_eof<S: AsyncRead + Unpin>(s: &mut S) {
    let mut rest = Vec::new();
    match s.read_to_end(&mut rest).await {
        Ok(_) => assert!(rest.is_empty(), "unexpected bytes {rest:?}"),
        // a TLS peer or a reset socket may report the close as an error
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
            ),
            "{e}"
        ),
    }
}

#[tokio::test]
async fn implicit_tls_listener_end_to_end() {
    timeout(TEST_TIMEOUT, async {
        let cert = DevCertificate::generate(&["mail.example.test"]).unwrap();
        let acceptor = TlsAcceptor::from(cert.server_config().unwrap());
        let connector = TlsConnector::from(cert.client_config().unwrap());
        let mut run = start(
            TlsMode::Implicit,
            Some(acceptor),
            ConnectionLimiter::new(10, 100),
            |o| o,
        )
        .await;

        let mut client = tls_connect(run.addr, &connector, "mail.example.test").await;
        assert_eq!(
            read_line(&mut client).await.unwrap(),
            "+OK ready mail.example.test\r\n"
        );
        let info = run.seen.recv().await.unwrap();
        assert_eq!(info.peer, client.get_ref().local_addr().unwrap());
        assert_eq!(info.local, run.addr);
        let tls_info = info.tls.expect("implicit TLS info");
        assert_eq!(
            tls_info.version,
            Some(mail_net::rustls::ProtocolVersion::TLSv1_3)
        );
        assert_eq!(run.limiter.live(), 1);

        client.write_all(b"PING\r\nQUIT\r\n").await.unwrap();
        assert_eq!(read_line(&mut client).await.unwrap(), "+OK pong\r\n");
        assert_eq!(read_line(&mut client).await.unwrap(), "+OK bye\r\n");
        expect_eof(&mut client).await;
        run.limiter.wait_live_at_most(0).await;

        // a plaintext client on the TLS port never reaches the handler, and its slot is freed
        let mut plain = TcpStream::connect(run.addr).await.unwrap();
        plain.write_all(b"USER bob\r\n").await.unwrap();
        let mut answer = Vec::new();
        let _ = plain.read_to_end(&mut answer).await;
        // at most a TLS alert record (content type 21), then the close
        assert!(
            answer.is_empty() || answer.first() == Some(&21),
            "{answer:?}"
        );
        run.limiter.wait_live_at_most(0).await;
        assert!(
            run.seen.try_recv().is_err(),
            "handler ran for a failed handshake"
        );

        run.shutdown.trigger();
        run.task.await.unwrap().unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn implicit_tls_handshake_timeout_closes_silent_clients() {
    timeout(TEST_TIMEOUT, async {
        let cert = DevCertificate::generate(&[]).unwrap();
        let acceptor = TlsAcceptor::from(cert.server_config().unwrap());
        let mut run = start(
            TlsMode::Implicit,
            Some(acceptor),
            ConnectionLimiter::new(10, 100),
            |o| o.handshake_timeout(Duration::from_millis(200)),
        )
        .await;
        let started = Instant::now();
        let mut silent = TcpStream::connect(run.addr).await.unwrap();
        expect_eof(&mut silent).await;
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "closed too early"
        );
        run.limiter.wait_live_at_most(0).await;
        assert!(run.seen.try_recv().is_err());
        run.shutdown.trigger();
        run.task.await.unwrap().unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn implicit_mode_without_acceptor_is_an_error() {
    let spec = ListenerSpec::implicit_tls("127.0.0.1:0".parse().unwrap());
    let listener = spec.bind().await.unwrap();
    let err = mail_net::serve(
        listener,
        spec,
        None,
        ConnectionLimiter::new(1, 1),
        Shutdown::new(),
        |_, _| async {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::MissingTlsAcceptor(_)), "{err:?}");
    assert!(err.to_string().contains("no TLS acceptor"), "{err}");
}

#[tokio::test]
async fn bind_error_names_the_address() {
    let spec = ListenerSpec::plain("127.0.0.1:0".parse().unwrap());
    let taken = spec.bind().await.unwrap();
    let addr = taken.local_addr().unwrap();
    let err = ListenerSpec::plain(addr).bind().await.unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test]
async fn per_ip_cap_refuses_the_next_connection_and_frees_on_close() {
    timeout(TEST_TIMEOUT, async {
        let mut run = start(TlsMode::Plain, None, ConnectionLimiter::new(2, 100), |o| {
            o.on_refused(|mut stream, refused| async move {
                let line = format!("-ERR [SYS/TEMP] {}\r\n", refused.reason);
                let _ = stream.write_all(line.as_bytes()).await;
                let _ = stream.shutdown().await;
            })
        })
        .await;

        let mut first = TcpStream::connect(run.addr).await.unwrap();
        assert_eq!(read_line(&mut first).await.unwrap(), "+OK ready -\r\n");
        let mut second = TcpStream::connect(run.addr).await.unwrap();
        assert_eq!(read_line(&mut second).await.unwrap(), "+OK ready -\r\n");
        assert_eq!(run.limiter.live(), 2);

        let mut third = TcpStream::connect(run.addr).await.unwrap();
        assert_eq!(
            read_line(&mut third).await.unwrap(),
            "-ERR [SYS/TEMP] too many connections from your IP address\r\n"
        );
        expect_eof(&mut third).await;
        assert_eq!(run.limiter.live(), 2);

        // closing one frees its slot
        drop(first);
        run.limiter.wait_live_at_most(1).await;
        let mut fourth = TcpStream::connect(run.addr).await.unwrap();
        assert_eq!(read_line(&mut fourth).await.unwrap(), "+OK ready -\r\n");
        assert_eq!(run.limiter.live(), 2);
        assert_eq!(run.limiter.live_for("127.0.0.1".parse().unwrap()), 2);

        let mut seen = 0;
        while run.seen.try_recv().is_ok() {
            seen += 1;
        }
        assert_eq!(seen, 3, "the refused connection must not reach the handler");
        drop((second, fourth));
        run.shutdown.trigger();
        run.task.await.unwrap().unwrap();
        run.limiter.wait_live_at_most(0).await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn global_cap_without_hook_closes_silently() {
    timeout(TEST_TIMEOUT, async {
        let run = start(TlsMode::Plain, None, ConnectionLimiter::new(10, 1), |o| o).await;
        let mut first = TcpStream::connect(run.addr).await.unwrap();
        assert_eq!(read_line(&mut first).await.unwrap(), "+OK ready -\r\n");
        let mut second = TcpStream::connect(run.addr).await.unwrap();
        expect_eof(&mut second).await;
        assert_eq!(
            run.limiter
                .acquire("192.0.2.1".parse().unwrap())
                .unwrap_err(),
            Refusal::GlobalLimit
        );
        run.shutdown.trigger();
        run.task.await.unwrap().unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn shutdown_stops_accepting_and_drain_waits_for_live_connections() {
    timeout(TEST_TIMEOUT, async {
        let mut run = start(TlsMode::Plain, None, ConnectionLimiter::new(10, 100), |o| o).await;
        let mut live = TcpStream::connect(run.addr).await.unwrap();
        assert_eq!(read_line(&mut live).await.unwrap(), "+OK ready -\r\n");
        run.seen.recv().await.unwrap();

        assert!(!run.shutdown.is_triggered());
        let clone = run.shutdown.clone();
        clone.trigger();
        assert!(run.shutdown.is_triggered());
        run.shutdown.wait().await;
        run.task.await.unwrap().unwrap();

        // the listener is gone: new connections are refused by the OS
        assert!(TcpStream::connect(run.addr).await.is_err());

        // the live connection still works, and holds up the drain
        live.write_all(b"PING\r\n").await.unwrap();
        assert_eq!(read_line(&mut live).await.unwrap(), "+OK pong\r\n");
        let outcome = run
            .limiter
            .drain(Instant::now() + Duration::from_millis(50))
            .await;
        assert_eq!(outcome, Drained::TimedOut { remaining: 1 });

        let drain = {
            let limiter = run.limiter.clone();
            tokio::spawn(async move {
                limiter
                    .drain(Instant::now() + Duration::from_secs(10))
                    .await
            })
        };
        live.write_all(b"QUIT\r\n").await.unwrap();
        assert_eq!(read_line(&mut live).await.unwrap(), "+OK bye\r\n");
        assert_eq!(drain.await.unwrap(), Drained::All);
        assert_eq!(run.limiter.live(), 0);
    })
    .await
    .unwrap();
}

/// OpenSSL's STARTTLS client against MaybeTls::upgrade_server, verifying the dev cert.
#[tokio::test]
async fn openssl_s_client_starttls_smtp() {
    if !mail_testkit::peer::require("openssl", "STARTTLS interop with OpenSSL") {
        return;
    }
    timeout(TEST_TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let cert = DevCertificate::load_or_generate(dir.path(), &[]).unwrap();
        let acceptor = TlsAcceptor::from(cert.server_config().unwrap());
        let spec = ListenerSpec::plain("127.0.0.1:0".parse().unwrap());
        let listener = spec.bind().await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let (tx, mut done) = mpsc::unbounded_channel();
        let server = tokio::spawn(mail_net::serve(
            listener,
            spec,
            None,
            ConnectionLimiter::new(2, 2),
            shutdown.clone(),
            move |stream, _info| {
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                async move {
                    let result = smtp_starttls_session(stream, &acceptor).await;
                    let _ = tx.send(result);
                }
            },
        ));

        let cafile = dir.path().join(tls::DEV_CERT_FILE);
        let output = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut child = std::process::Command::new("openssl")
                .args([
                    "s_client",
                    "-starttls",
                    "smtp",
                    "-connect",
                    &addr.to_string(),
                ])
                .args(["-servername", "localhost", "-verify_hostname", "localhost"])
                .arg("-CAfile")
                .arg(&cafile)
                .args(["-verify_return_error", "-brief", "-crlf", "-ign_eof"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(b"QUIT\n").unwrap();
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("Verification: OK"), "stderr: {stderr}");
        assert!(
            stdout.contains("221 2.0.0 bye"),
            "stdout: {stdout}\nstderr: {stderr}"
        );
        let session = done.recv().await.unwrap().unwrap();
        assert_eq!(
            session,
            ("TLSv1.3".to_owned(), Some("localhost".to_owned()))
        );
        shutdown.trigger();
        server.await.unwrap().unwrap();
    })
    .await
    .unwrap();
}

/// Just enough SMTP for `openssl s_client -starttls smtp`; returns the TLS version and SNI.
async fn smtp_starttls_session(
    mut stream: MaybeTls<TcpStream>,
    acceptor: &TlsAcceptor,
) -> std::io::Result<(String, Option<String>)> {
    async fn reply<S: AsyncWrite + Unpin>(s: &mut S, line: &[u8]) -> std::io::Result<()> {
        s.write_all(line).await?;
        s.flush().await
    }
    reply(&mut stream, b"220 test ESMTP\r\n").await?;
    let ehlo = read_line(&mut stream).await?;
    assert!(ehlo.starts_with("EHLO "), "{ehlo:?}");
    reply(&mut stream, b"250-test\r\n250 STARTTLS\r\n").await?;
    assert_eq!(read_line(&mut stream).await?, "STARTTLS\r\n");
    reply(&mut stream, b"220 2.0.0 go ahead\r\n").await?;
    let mut stream = stream.upgrade_server(acceptor).await?;
    let info = stream.tls_info().unwrap();
    assert_eq!(read_line(&mut stream).await?, "QUIT\r\n");
    reply(&mut stream, b"221 2.0.0 bye\r\n").await?;
    stream.shutdown().await?;
    Ok((
        info.describe().split(' ').next().unwrap().to_owned(),
        info.sni,
    ))
}

/// Python's ssl module (OpenSSL, default verification) against an implicit-TLS listener,
/// trusting the dev certificate file; TLS 1.3 and TLS 1.2.
#[tokio::test]
async fn python_ssl_client_trusts_dev_cert_on_implicit_port() {
    if !mail_testkit::peer::require("python3", "implicit-TLS interop with Python's ssl") {
        return;
    }
    timeout(TEST_TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let cert = DevCertificate::load_or_generate(dir.path(), &[]).unwrap();
        let acceptor = TlsAcceptor::from(cert.server_config().unwrap());
        let run = start(
            TlsMode::Implicit,
            Some(acceptor),
            ConnectionLimiter::new(10, 100),
            |o| o,
        )
        .await;
        let script = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
if sys.argv[3] == "1.2":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=10) as s:
    with ctx.wrap_socket(s, server_hostname="localhost") as t:
        f = t.makefile("rb")
        greeting = f.readline().decode().strip()
        t.sendall(b"QUIT\r\n")
        bye = f.readline().decode().strip()
        print(t.version(), "|", greeting, "|", bye)
"#;
        for (max, expected) in [("1.3", "TLSv1.3"), ("1.2", "TLSv1.2")] {
            let cafile = dir.path().join(tls::DEV_CERT_FILE);
            let port = run.addr.port().to_string();
            let output = tokio::task::spawn_blocking(move || {
                std::process::Command::new("python3")
                    .arg("-c")
                    .arg(script)
                    .arg(&cafile)
                    .arg(&port)
                    .arg(max)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(
                stdout.trim(),
                format!("{expected} | +OK ready localhost | +OK bye")
            );
        }
        run.shutdown.trigger();
        run.task.await.unwrap().unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn client_handshake_timeout_against_a_silent_server() {
    timeout(TEST_TIMEOUT, async {
        // a listener that accepts at the OS level but never speaks TLS
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // the accepted socket stays open inside the finished task's output until `hold` drops
        let hold = tokio::spawn(async move { listener.accept().await.unwrap() });
        let cert = DevCertificate::generate(&[]).unwrap();
        let connector = TlsConnector::from(cert.client_config().unwrap());
        let plain = mail_net::connect(addr, TEST_TIMEOUT).await.unwrap();
        assert!(!plain.is_tls());
        let err = plain
            .upgrade_client_timeout(
                &connector,
                tls::server_name("localhost").unwrap(),
                Duration::from_millis(100),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("TLS handshake timed out"), "{err}");
        drop(hold);
    })
    .await
    .unwrap();
}
