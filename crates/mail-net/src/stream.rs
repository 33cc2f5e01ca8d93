//! [`MaybeTls`]: one stream type for plaintext, implicit TLS and STARTTLS-upgraded
//! connections, on either side.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::time::Duration;

use rustls::{CipherSuite, ProtocolVersion};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A connection that is either plaintext or TLS (server or client side).
///
/// It implements [`AsyncRead`] + [`AsyncWrite`] whatever its state, so a protocol adapter
/// is written once and works on plaintext ports, implicit-TLS ports and after STARTTLS.
///
/// # Upgrading (STARTTLS / STLS)
///
/// [`upgrade_server`](Self::upgrade_server) and [`upgrade_client`](Self::upgrade_client)
/// start the TLS handshake on the *raw* stream. The caller must have discarded every byte
/// of plaintext it buffered after the STARTTLS command (or after the server's go-ahead
/// reply, on the client side) and must not read through a `BufReader` whose buffer could
/// still hold such bytes: plaintext injected before the handshake must never be treated as
/// if it came over TLS (the CVE-2011-0411 class of bug). The protocol state machines of
/// this workspace discard it themselves; the adapter just has to drop its read buffer.
///
/// The handshake has no timeout of its own: wrap the call in
/// [`tokio::time::timeout`] with [`NetConfig::handshake_timeout`](crate::NetConfig).
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTls<S> {
    /// No TLS (yet).
    Plain(S),
    /// Server side of a TLS connection.
    ServerTls(Box<tokio_rustls::server::TlsStream<S>>),
    /// Client side of a TLS connection.
    ClientTls(Box<tokio_rustls::client::TlsStream<S>>),
}

/// What was negotiated on a TLS connection, for logs and `Received:` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    /// The protocol version, e.g. `TLSv1_3`.
    pub version: Option<ProtocolVersion>,
    /// The cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: Option<CipherSuite>,
    /// The server name the client asked for (SNI). On the client side, `None`.
    pub sni: Option<String>,
    /// The negotiated ALPN protocol, if any.
    pub alpn: Option<Vec<u8>>,
}

impl TlsInfo {
    /// A short description such as `TLSv1.3 TLS13_AES_128_GCM_SHA256`, in the style of
    /// `Received:` header comments.
    #[must_use]
    pub fn describe(&self) -> String {
        let version = match self.version {
            Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
            Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
            Some(other) => format!("{other:?}"),
            None => "TLS".to_owned(),
        };
        match self.cipher_suite {
            Some(suite) => format!("{version} {suite:?}"),
            None => version,
        }
    }
}

impl<S> MaybeTls<S> {
    /// Whether TLS is active on this stream.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        !matches!(self, Self::Plain(_))
    }

    /// What TLS negotiated, or `None` on a plaintext stream.
    #[must_use]
    pub fn tls_info(&self) -> Option<TlsInfo> {
        match self {
            Self::Plain(_) => None,
            Self::ServerTls(tls) => {
                let (_, conn) = tls.get_ref();
                Some(TlsInfo {
                    version: conn.protocol_version(),
                    cipher_suite: conn.negotiated_cipher_suite().map(|s| s.suite()),
                    sni: conn.server_name().map(str::to_owned),
                    alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
                })
            }
            Self::ClientTls(tls) => {
                let (_, conn) = tls.get_ref();
                Some(TlsInfo {
                    version: conn.protocol_version(),
                    cipher_suite: conn.negotiated_cipher_suite().map(|s| s.suite()),
                    sni: None,
                    alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
                })
            }
        }
    }

    /// The negotiated TLS version, or `None` on a plaintext stream.
    #[must_use]
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.tls_info().and_then(|i| i.version)
    }

    /// The SNI name the client sent (server side only).
    #[must_use]
    pub fn sni(&self) -> Option<String> {
        self.tls_info().and_then(|i| i.sni)
    }

    /// The underlying transport.
    #[must_use]
    pub fn get_ref(&self) -> &S {
        match self {
            Self::Plain(s) => s,
            Self::ServerTls(tls) => tls.get_ref().0,
            Self::ClientTls(tls) => tls.get_ref().0,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> MaybeTls<S> {
    /// Performs the server side of a TLS handshake on a plaintext stream (STARTTLS, STLS,
    /// or an implicit-TLS port).
    ///
    /// Read the type-level documentation about discarding buffered plaintext first.
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`] when the stream is already TLS; the handshake's error
    /// otherwise (the stream is then gone, as with any failed handshake).
    pub async fn upgrade_server(self, acceptor: &TlsAcceptor) -> io::Result<Self> {
        match self {
            Self::Plain(s) => Ok(Self::ServerTls(Box::new(acceptor.accept(s).await?))),
            _ => Err(already_tls()),
        }
    }

    /// Performs the client side of a TLS handshake on a plaintext stream, verifying the
    /// server's certificate for `server_name` (see [`crate::tls::server_name`]).
    ///
    /// Read the type-level documentation about discarding buffered plaintext first.
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`] when the stream is already TLS; the handshake's error
    /// otherwise (for example an untrusted certificate, as `InvalidData`).
    pub async fn upgrade_client(
        self,
        connector: &TlsConnector,
        server_name: ServerName<'static>,
    ) -> io::Result<Self> {
        match self {
            Self::Plain(s) => Ok(Self::ClientTls(Box::new(
                connector.connect(server_name, s).await?,
            ))),
            _ => Err(already_tls()),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> MaybeTls<S> {
    /// [`upgrade_server`](Self::upgrade_server) that fails with
    /// [`io::ErrorKind::TimedOut`] when the handshake takes longer than `timeout`
    /// (use [`NetConfig::handshake_timeout`](crate::NetConfig)).
    ///
    /// # Errors
    /// As [`upgrade_server`](Self::upgrade_server), or the time-out.
    pub async fn upgrade_server_timeout(
        self,
        acceptor: &TlsAcceptor,
        timeout: Duration,
    ) -> io::Result<Self> {
        tokio::time::timeout(timeout, self.upgrade_server(acceptor))
            .await
            .unwrap_or_else(|_| Err(handshake_timed_out(timeout)))
    }

    /// [`upgrade_client`](Self::upgrade_client) that fails with
    /// [`io::ErrorKind::TimedOut`] when the handshake takes longer than `timeout`.
    ///
    /// # Errors
    /// As [`upgrade_client`](Self::upgrade_client), or the time-out.
    pub async fn upgrade_client_timeout(
        self,
        connector: &TlsConnector,
        server_name: ServerName<'static>,
        timeout: Duration,
    ) -> io::Result<Self> {
        tokio::time::timeout(timeout, self.upgrade_client(connector, server_name))
            .await
            .unwrap_or_else(|_| Err(handshake_timed_out(timeout)))
    }
}

/// Opens a plaintext TCP connection (`TCP_NODELAY` set) within `timeout`, for a client
/// that may later upgrade with STARTTLS/STLS.
///
/// # Errors
/// The connect error, or [`io::ErrorKind::TimedOut`].
pub async fn connect(
    addr: impl ToSocketAddrs,
    timeout: Duration,
) -> io::Result<MaybeTls<TcpStream>> {
    let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect timed out after {}s", timeout.as_secs()),
            )
        })??;
    tcp.set_nodelay(true)?;
    Ok(MaybeTls::Plain(tcp))
}

/// Opens an implicit-TLS connection (ports 465, 993, 995): TCP connect and TLS handshake,
/// each within `timeout`, verifying the certificate for `server_name`.
///
/// # Errors
/// The connect or handshake error, or [`io::ErrorKind::TimedOut`].
pub async fn connect_tls(
    addr: impl ToSocketAddrs,
    connector: &TlsConnector,
    server_name: ServerName<'static>,
    timeout: Duration,
) -> io::Result<MaybeTls<TcpStream>> {
    connect(addr, timeout)
        .await?
        .upgrade_client_timeout(connector, server_name, timeout)
        .await
}

fn handshake_timed_out(timeout: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("TLS handshake timed out after {}s", timeout.as_secs()),
    )
}

fn already_tls() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "TLS is already active on this connection",
    )
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::ServerTls(s) => s.is_write_vectored(),
            Self::ClientTls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
