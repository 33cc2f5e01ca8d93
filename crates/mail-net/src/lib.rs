//! `mail-net`: the tokio + rustls glue shared by the protocol adapters (`pop3-proto`,
//! `imap-proto`, `smtp-proto` with feature `tokio`) and the reference server.
//!
//! The protocol crates are sans-IO; this crate is where the sockets, TLS and timers live:
//!
//! - [`tls`]: rustls server and client configurations (ring provider, TLS 1.3 + 1.2) from
//!   PEM files or memory, and a self-signed [`DevCertificate`] that a development server
//!   keeps across restarts;
//! - [`stream`]: [`MaybeTls`], one `AsyncRead + AsyncWrite` type for plaintext, implicit TLS
//!   and STARTTLS-upgraded connections, and client-side [`connect`] / [`connect_tls`];
//! - [`listen`]: [`ListenerSpec`], per-IP and global [`ConnectionLimiter`], and the accept
//!   loop [`serve`] / [`serve_with`] with implicit-TLS handshakes and a refusal hook;
//! - [`shutdown`]: [`Shutdown`], a clone-able signal (with SIGINT/SIGTERM handlers) and
//!   draining through [`ConnectionLimiter::drain`];
//! - [`timeout`]: [`NetConfig`] (documented defaults) and the [`IdleTimeout`] wrapper.
//!
//! # Example: a development certificate and a TLS handshake
//!
//! ```
//! use mail_net::{DevCertificate, MaybeTls, TlsAcceptor, TlsConnector};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cert = DevCertificate::generate(&["mail.example.test"])?;
//! let acceptor = TlsAcceptor::from(cert.server_config()?);
//! let connector = TlsConnector::from(cert.client_config()?);
//!
//! let (client, server) = tokio::io::duplex(16 * 1024);
//! let server = tokio::spawn(async move {
//!     let mut tls = MaybeTls::Plain(server).upgrade_server(&acceptor).await?;
//!     tls.write_all(b"* OK ready\r\n").await?;
//!     tls.shutdown().await?;
//!     Ok::<_, std::io::Error>(tls.sni())
//! });
//! let name = mail_net::tls::server_name("mail.example.test")?;
//! let mut tls = MaybeTls::Plain(client).upgrade_client(&connector, name).await?;
//! let mut greeting = String::new();
//! tls.read_to_string(&mut greeting).await?;
//! assert_eq!(greeting, "* OK ready\r\n");
//! assert!(tls.is_tls());
//! assert_eq!(server.await??.as_deref(), Some("mail.example.test"));
//! # Ok(())
//! # }
//! ```
//!
//! # Example: an implicit-TLS listener
//!
//! ```no_run
//! use mail_net::{ConnectionLimiter, DevCertificate, ListenerSpec, NetConfig, Shutdown, TlsAcceptor};
//! use tokio::io::AsyncWriteExt;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = NetConfig::default();
//! let cert = DevCertificate::load_or_generate("/var/lib/mail/dev-tls".as_ref(), &[])?;
//! let spec = ListenerSpec::implicit_tls("0.0.0.0:995".parse()?);
//! let limiter = ConnectionLimiter::from_config(&config);
//! let shutdown = Shutdown::new();
//! shutdown.install_signal_handlers()?;
//!
//! let listener = spec.bind().await?;
//! let acceptor = TlsAcceptor::from(cert.server_config()?);
//! mail_net::serve(listener, spec, Some(acceptor), limiter.clone(), shutdown, |mut stream, info| async move {
//!     tracing::info!(peer = %info.peer, tls = ?info.tls.map(|t| t.describe()), "connected");
//!     let _ = stream.write_all(b"+OK POP3 ready\r\n").await;
//!     // ... drive the protocol state machine here ...
//! })
//! .await?;
//! // The accept loop has stopped; give live sessions 10 s to finish.
//! let _ = limiter.drain(tokio::time::Instant::now() + std::time::Duration::from_secs(10)).await;
//! # Ok(())
//! # }
//! ```

pub mod error;
pub mod listen;
pub mod shutdown;
pub mod stream;
pub mod timeout;
pub mod tls;

pub use error::Error;
pub use listen::{
    ConnInfo, ConnectionGuard, ConnectionLimiter, Drained, ListenerSpec, Refusal, RefusedConn,
    ServeOptions, TlsMode, serve, serve_with,
};
pub use shutdown::Shutdown;
pub use stream::{MaybeTls, TlsInfo, connect, connect_tls};
pub use timeout::{IdleTimeout, NetConfig, read_with_idle_timeout};
pub use tls::{DevCertificate, TlsAcceptor, TlsConnector};

/// Re-exported so adapters name the same rustls version as this crate.
pub use rustls;
/// Re-exported so adapters name the same tokio-rustls version as this crate.
pub use tokio_rustls;
