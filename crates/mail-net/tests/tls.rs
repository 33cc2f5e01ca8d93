//! TLS configurations, the development certificate and MaybeTls upgrades over in-memory pipes.

// Test helpers outside #[test] functions may unwrap and panic too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use mail_net::rustls::{self, ProtocolVersion};
use mail_net::tls::{self, DEV_CERT_FILE, DEV_KEY_FILE};
use mail_net::{DevCertificate, Error, MaybeTls, TlsAcceptor, TlsConnector};
use mail_testkit::TEST_TIMEOUT;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::time::timeout;

/// Runs a server-side and a client-side TLS upgrade on a duplex pipe.
async fn handshake_pair(
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    name: &str,
) -> (
    std::io::Result<MaybeTls<DuplexStream>>,
    std::io::Result<MaybeTls<DuplexStream>>,
) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let server =
        tokio::spawn(async move { MaybeTls::Plain(server).upgrade_server(&acceptor).await });
    let client = MaybeTls::Plain(client)
        .upgrade_client(&connector, tls::server_name(name).unwrap())
        .await;
    (server.await.unwrap(), client)
}

#[tokio::test]
async fn dev_cert_handshake_tls13_with_sni_and_data() {
    timeout(TEST_TIMEOUT, async {
        let cert = DevCertificate::generate(&["mail.example.test"]).unwrap();
        let connector = TlsConnector::from(
            tls::client_config_from_pem_roots(cert.cert_pem().as_bytes()).unwrap(),
        );
        let acceptor = TlsAcceptor::from(cert.server_config().unwrap());
        let (server, client) = handshake_pair(acceptor, connector, "mail.example.test").await;
        let (mut server, mut client) = (server.unwrap(), client.unwrap());

        assert!(server.is_tls() && client.is_tls());
        assert_eq!(server.protocol_version(), Some(ProtocolVersion::TLSv1_3));
        assert_eq!(client.protocol_version(), Some(ProtocolVersion::TLSv1_3));
        assert_eq!(server.sni().as_deref(), Some("mail.example.test"));
        assert_eq!(client.sni(), None);
        let info = server.tls_info().unwrap();
        assert!(
            info.describe().starts_with("TLSv1.3 TLS13_"),
            "{}",
            info.describe()
        );

        client.write_all(b"A1 CAPABILITY\r\n").await.unwrap();
        client.flush().await.unwrap();
        let mut buf = [0u8; 15];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"A1 CAPABILITY\r\n");
        server.write_all(b"* OK done\r\n").await.unwrap();
        server.shutdown().await.unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"* OK done\r\n");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn default_sans_cover_localhost_and_loopback_ips() {
    timeout(TEST_TIMEOUT, async {
        let cert = DevCertificate::generate(&[]).unwrap();
        for name in ["localhost", "127.0.0.1", "::1"] {
            let acceptor = TlsAcceptor::from(cert.server_config().unwrap());
            let connector = TlsConnector::from(cert.client_config().unwrap());
            let (server, client) = handshake_pair(acceptor, connector, name).await;
            assert!(server.is_ok(), "{name}: {server:?}");
            assert!(client.is_ok(), "{name}: {:?}", client.err());
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn wrong_name_and_untrusted_cert_are_rejected() {
    timeout(TEST_TIMEOUT, async {
        let cert = DevCertificate::generate(&[]).unwrap();
        let other = DevCertificate::generate(&[]).unwrap();

        // name not in the certificate
        let acceptor = TlsAcceptor::from(cert.server_config().unwrap());
        let connector = TlsConnector::from(cert.client_config().unwrap());
        let (_, client) = handshake_pair(acceptor, connector, "mail.example.test").await;
        let err = client.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");

        // a different self-signed certificate
        let acceptor = TlsAcceptor::from(cert.server_config().unwrap());
        let connector = TlsConnector::from(other.client_config().unwrap());
        let (_, client) = handshake_pair(acceptor, connector, "localhost").await;
        assert!(client.is_err());

        // ... which the dangerous verifier accepts
        let acceptor = TlsAcceptor::from(cert.server_config().unwrap());
        let connector = TlsConnector::from(tls::client_config_accept_any_certificate().unwrap());
        let (server, client) = handshake_pair(acceptor, connector, "mail.example.test").await;
        assert!(server.is_ok() && client.is_ok());
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn tls12_only_client_is_served() {
    timeout(TEST_TIMEOUT, async {
        let cert = DevCertificate::generate(&[]).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::pem::PemObject::pem_slice_iter(cert.cert_pem().as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let acceptor = TlsAcceptor::from(cert.server_config().unwrap());
        let (server, client) =
            handshake_pair(acceptor, TlsConnector::from(Arc::new(config)), "localhost").await;
        assert_eq!(
            server.unwrap().protocol_version(),
            Some(ProtocolVersion::TLSv1_2)
        );
        assert_eq!(
            client.unwrap().protocol_version(),
            Some(ProtocolVersion::TLSv1_2)
        );
    })
    .await
    .unwrap();
}

/// STARTTLS: plaintext lines first, then both sides upgrade the same stream.
#[tokio::test]
async fn starttls_upgrade_after_plaintext_lines() {
    timeout(TEST_TIMEOUT, async {
        let cert = DevCertificate::generate(&[]).unwrap();
        let acceptor = TlsAcceptor::from(cert.server_config().unwrap());
        let connector = TlsConnector::from(cert.client_config().unwrap());
        let (client, server) = tokio::io::duplex(64 * 1024);

        let server = tokio::spawn(async move {
            let mut stream = MaybeTls::Plain(server);
            stream.write_all(b"220 test ESMTP\r\n").await.unwrap();
            // read exactly one line, byte by byte, so nothing after it is buffered
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                line.push(stream.read_u8().await.unwrap());
            }
            assert_eq!(line, b"STARTTLS\r\n");
            assert!(!stream.is_tls());
            stream
                .write_all(b"220 2.0.0 Ready to start TLS\r\n")
                .await
                .unwrap();
            let mut stream = stream.upgrade_server(&acceptor).await.unwrap();
            assert!(stream.is_tls());
            // upgrading twice is refused
            let mut reader = BufReader::new(&mut stream);
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            assert_eq!(line, "EHLO client\r\n");
            stream.write_all(b"250 ok\r\n").await.unwrap();
            stream.flush().await.unwrap();
            let err = stream.upgrade_server(&acceptor).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        });

        let mut stream = MaybeTls::Plain(client);
        let mut buf = vec![0u8; b"220 test ESMTP\r\n".len()];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, b"220 test ESMTP\r\n");
        stream.write_all(b"STARTTLS\r\n").await.unwrap();
        let mut buf = vec![0u8; b"220 2.0.0 Ready to start TLS\r\n".len()];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, b"220 2.0.0 Ready to start TLS\r\n");
        let mut stream = stream
            .upgrade_client(&connector, tls::server_name("localhost").unwrap())
            .await
            .unwrap();
        assert!(stream.is_tls());
        stream.write_all(b"EHLO client\r\n").await.unwrap();
        stream.flush().await.unwrap();
        let mut buf = [0u8; 8];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"250 ok\r\n");
        server.await.unwrap();
    })
    .await
    .unwrap();
}

#[test]
fn invalid_pem_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cert = DevCertificate::generate(&[]).unwrap();
    let (cert_path, key_path) = cert.write_to(dir.path()).unwrap();

    // a file with no PEM block at all
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not a certificate\n").unwrap();
    let err = tls::server_config_from_pem_files(&garbage, &key_path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::PemEmpty {
                what: "certificate",
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("garbage.pem") && msg.contains("-----BEGIN CERTIFICATE-----"),
        "{msg}"
    );

    // the key file where the certificate is expected and vice versa
    let err = tls::server_config_from_pem_files(&key_path, &cert_path).unwrap_err();
    assert!(matches!(err, Error::PemEmpty { .. }), "{err:?}");
    assert!(err.to_string().contains(DEV_KEY_FILE), "{err}");

    // a truncated PEM block
    let truncated = dir.path().join("truncated.pem");
    let text = cert.cert_pem();
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    let err = tls::server_config_from_pem_files(&truncated, &key_path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::PemFile {
                what: "certificate chain",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("truncated.pem"), "{err}");

    // a missing file
    let missing = dir.path().join("missing.pem");
    let err = tls::server_config_from_pem_files(&missing, &key_path).unwrap_err();
    assert!(matches!(err, Error::File { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.pem"), "{err}");

    // a key that does not match the certificate
    let other = DevCertificate::generate(&[]).unwrap();
    let err = tls::server_config_from_pem(cert.cert_pem().as_bytes(), other.key_pem().as_bytes())
        .unwrap_err();
    assert!(matches!(err, Error::Tls(_)), "{err:?}");

    // in-memory roots with nothing in them
    let err = tls::client_config_from_pem_roots(b"").unwrap_err();
    assert!(matches!(err, Error::PemEmpty { .. }), "{err:?}");

    // the good pair still loads
    tls::server_config_from_pem_files(&cert_path, &key_path).unwrap();
}

#[test]
fn dev_cert_persists_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("tls");
    let first = DevCertificate::load_or_generate(&sub, &["mx.example.test"]).unwrap();
    assert!(sub.join(DEV_CERT_FILE).exists() && sub.join(DEV_KEY_FILE).exists());
    let second = DevCertificate::load_or_generate(&sub, &["mx.example.test"]).unwrap();
    assert_eq!(first.cert_pem(), second.cert_pem());
    assert_eq!(first.key_pem(), second.key_pem());
    assert!(first.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(first.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(
        !format!("{first:?}").contains("PRIVATE KEY"),
        "Debug must not print the key"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(sub.join(DEV_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "key readable by others: {mode:o}");
    }
    let reloaded =
        DevCertificate::from_pem(second.cert_pem().to_owned(), second.key_pem().to_owned())
            .unwrap();
    assert_eq!(reloaded.cert_pem(), first.cert_pem());

    // damaged files are reported, not silently replaced
    std::fs::write(sub.join(DEV_KEY_FILE), "oops").unwrap();
    let err = DevCertificate::load_or_generate(&sub, &[]).unwrap_err();
    assert!(err.to_string().contains(DEV_KEY_FILE), "{err}");
}

#[test]
fn invalid_dev_cert_name_is_an_error() {
    let err = DevCertificate::generate(&["bad name with spaces"]).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidServerName(n) if n == "bad name with spaces"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("expected a DNS name or an IP address"),
        "{err}"
    );
    // wildcards and IPs are fine
    DevCertificate::generate(&["*.example.test", "192.0.2.25", "2001:db8::25"]).unwrap();
}
