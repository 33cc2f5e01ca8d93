//! The crate's error type.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can go wrong while setting up TLS, certificates or listeners.
///
/// Errors that happen on an established connection are plain [`std::io::Error`]s, because
/// they travel through `AsyncRead`/`AsyncWrite`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A PEM file could not be read or decoded.
    #[error("cannot load {what} from {}: {source}", path.display())]
    PemFile {
        /// What the file was supposed to hold ("certificate chain", "private key", ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying PEM or I/O error.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// A PEM file (or in-memory PEM text) held no item of the expected kind.
    #[error("no {what} found in {origin}: expected a PEM block such as `-----BEGIN {marker}-----`")]
    PemEmpty {
        /// What was expected ("certificate", "private key", ...).
        what: &'static str,
        /// Where we looked: a file path or "in-memory PEM".
        origin: String,
        /// The PEM label we expected.
        marker: &'static str,
    },
    /// In-memory PEM text could not be decoded.
    #[error("invalid PEM for {what}: {source}")]
    Pem {
        /// What the text was supposed to hold.
        what: &'static str,
        /// The underlying PEM error.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// rustls refused the configuration (for example a key that does not match the
    /// certificate, or a certificate it cannot parse).
    #[error("TLS configuration rejected: {0}")]
    Tls(#[from] rustls::Error),
    /// The development certificate could not be generated (for example an invalid DNS name).
    #[error("cannot generate the development certificate: {0}")]
    CertificateGeneration(#[from] rcgen::Error),
    /// A server name given for a TLS client connection is neither a DNS name nor an IP address.
    #[error("invalid TLS server name {0:?}: expected a DNS name or an IP address")]
    InvalidServerName(String),
    /// A file or directory could not be read or written.
    #[error("I/O error on {}: {source}", path.display())]
    File {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address we tried to bind.
        addr: SocketAddr,
        /// The underlying error (address in use, permission denied, ...).
        #[source]
        source: io::Error,
    },
    /// A listener with [`TlsMode::Implicit`](crate::listen::TlsMode::Implicit) was started
    /// without a TLS acceptor.
    #[error("listener {0} is configured for implicit TLS but no TLS acceptor was given")]
    MissingTlsAcceptor(SocketAddr),
}

impl Error {
    pub(crate) fn file(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::File {
            path: path.into(),
            source,
        }
    }
}
