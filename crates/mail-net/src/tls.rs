//! rustls configurations for servers and clients, and a self-signed development certificate.
//!
//! Every configuration is built with the *ring* provider passed explicitly
//! ([`provider`]), never with a process-wide default provider, so two libraries in one
//! process cannot disagree about it. Both TLS 1.3 and TLS 1.2 are enabled (TLS 1.2 is still
//! what many deployed mail clients speak).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::Error;

pub use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The protocol versions every configuration of this crate enables: TLS 1.3 and TLS 1.2.
pub static PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The crypto provider used by every configuration of this crate: rustls' *ring* provider.
#[must_use]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds a server configuration from a certificate chain (leaf first) and its private key.
///
/// # Errors
/// [`Error::Tls`] when rustls rejects the pair (for example a key that does not match the
/// certificate).
pub fn server_config_from_der(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, Error> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// Builds a server configuration from PEM text: a certificate chain (leaf first) and a
/// private key (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
/// [`Error::Pem`] / [`Error::PemEmpty`] for text that holds no usable PEM block,
/// [`Error::Tls`] when rustls rejects the pair.
pub fn server_config_from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, Error> {
    let chain = certs_from_pem(cert_pem, "in-memory PEM")?;
    let key = key_from_pem(key_pem, "in-memory PEM")?;
    server_config_from_der(chain, key)
}

/// Builds a server configuration from a PEM certificate-chain file (leaf first, as written
/// by certbot's `fullchain.pem`) and a PEM private-key file.
///
/// # Errors
/// [`Error::File`] when a file cannot be read, [`Error::Pem`] / [`Error::PemEmpty`] (naming
/// the file) when it holds no usable PEM block, [`Error::Tls`] when rustls rejects the pair.
pub fn server_config_from_pem_files(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, Error> {
    let cert_pem = std::fs::read(cert).map_err(|e| Error::file(cert, e))?;
    let key_pem = std::fs::read(key).map_err(|e| Error::file(key, e))?;
    let chain = certs_from_pem(&cert_pem, &cert.display().to_string())?;
    let key = key_from_pem(&key_pem, &key.display().to_string())?;
    server_config_from_der(chain, key)
}

/// Builds a client configuration that trusts exactly the certificates in `pem` (one or more
/// `CERTIFICATE` blocks: a private CA, or a self-signed server certificate such as
/// [`DevCertificate::cert_pem`]).
///
/// # Errors
/// [`Error::Pem`] / [`Error::PemEmpty`] when `pem` holds no certificate, [`Error::Tls`] when
/// a certificate cannot be used as a trust anchor.
pub fn client_config_from_pem_roots(pem: &[u8]) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from_pem(pem, "in-memory PEM")? {
        roots.add(cert)?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Builds a client configuration that accepts **any** server certificate.
///
/// <div class="warning">
///
/// **Dangerous.** A connection made with this configuration is encrypted but *not
/// authenticated*: anyone on the path can impersonate the server and read every password
/// sent over it. Use it only in tests against self-signed peers you started yourself, or
/// behind an explicit "insecure" switch that the user turned on.
///
/// </div>
///
/// Handshake signatures are still verified (so the peer must hold the key of the
/// certificate it sent); only the certificate itself is not checked.
///
/// # Errors
/// [`Error::Tls`] if the provider rejected the protocol versions (not expected with ring).
pub fn client_config_accept_any_certificate() -> Result<Arc<ClientConfig>, Error> {
    let provider = provider();
    let verifier = Arc::new(AcceptAnyCertificate {
        algorithms: provider.signature_verification_algorithms,
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Parses a server name for a TLS client connection: a DNS name or an IP address.
///
/// # Errors
/// [`Error::InvalidServerName`] when `name` is neither.
pub fn server_name(name: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(name.to_owned()).map_err(|_| Error::InvalidServerName(name.to_owned()))
}

/// Accepts every certificate, verifies handshake signatures. See
/// [`client_config_accept_any_certificate`].
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn certs_from_pem(pem: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| pem_error("certificate chain", origin, source))?;
    if chain.is_empty() {
        return Err(Error::PemEmpty {
            what: "certificate",
            origin: origin.to_owned(),
            marker: "CERTIFICATE",
        });
    }
    Ok(chain)
}

fn key_from_pem(pem: &[u8], origin: &str) -> Result<PrivateKeyDer<'static>, Error> {
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(key) => Ok(key),
        Err(rustls_pki_types::pem::Error::NoItemsFound) => Err(Error::PemEmpty {
            what: "private key",
            origin: origin.to_owned(),
            marker: "PRIVATE KEY",
        }),
        Err(source) => Err(pem_error("private key", origin, source)),
    }
}

fn pem_error(what: &'static str, origin: &str, source: rustls_pki_types::pem::Error) -> Error {
    if origin == "in-memory PEM" {
        Error::Pem { what, source }
    } else {
        Error::PemFile {
            what,
            path: PathBuf::from(origin),
            source,
        }
    }
}

/// How long a [`DevCertificate`] is valid: 825 days, the longest validity Apple platforms
/// accept for a TLS server certificate.
pub const DEV_CERT_VALIDITY: Duration = Duration::from_secs(825 * 24 * 60 * 60);

/// A persisted development certificate older than this is replaced by
/// [`DevCertificate::load_or_generate`] (a margin before [`DEV_CERT_VALIDITY`] runs out).
pub const DEV_CERT_RENEW_AFTER: Duration = Duration::from_secs(800 * 24 * 60 * 60);

/// The file name [`DevCertificate::write_to`] uses for the certificate.
pub const DEV_CERT_FILE: &str = "dev-cert.pem";
/// The file name [`DevCertificate::write_to`] uses for the private key.
pub const DEV_KEY_FILE: &str = "dev-key.pem";

/// A self-signed certificate for development and tests.
///
/// Its subject alternative names are `localhost`, `127.0.0.1`, `::1` and the names given to
/// [`generate`](Self::generate). Clients trust it by loading [`cert_pem`](Self::cert_pem)
/// as their only root ([`client_config`](Self::client_config) does that for rustls; for
/// `openssl s_client -CAfile`, Python's `cafile=`, curl's `--cacert` write it out with
/// [`write_to`](Self::write_to)).
#[derive(Clone)]
pub struct DevCertificate {
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for DevCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCertificate")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl DevCertificate {
    /// Generates a fresh key pair (ECDSA P-256) and a self-signed certificate for
    /// `localhost`, `127.0.0.1`, `::1` and `names`, valid from one day ago for
    /// [`DEV_CERT_VALIDITY`].
    ///
    /// # Errors
    /// [`Error::InvalidServerName`] when a name is not a valid DNS name or IP address,
    /// [`Error::CertificateGeneration`] when rcgen fails.
    pub fn generate(names: &[&str]) -> Result<Self, Error> {
        let mut sans: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        for name in names {
            // rcgen accepts any IA5 string; refuse what no client could ever match
            // (a leading "*." wildcard label is fine).
            let checked = name.strip_prefix("*.").unwrap_or(name);
            if server_name(checked).is_err() {
                return Err(Error::InvalidServerName((*name).to_owned()));
            }
            if !sans.iter().any(|s| s.eq_ignore_ascii_case(name)) {
                sans.push((*name).to_owned());
            }
        }
        let mut params = rcgen::CertificateParams::new(sans)?;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(
            rcgen::DnType::CommonName,
            "mail-net development certificate",
        );
        params.distinguished_name = dn;
        let (y, m, d) = validity_start(SystemTime::now());
        params.not_before = rcgen::date_time_ymd(y, m, d);
        params.not_after = params.not_before + DEV_CERT_VALIDITY;
        let key = rcgen::KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Wraps an existing PEM certificate and private key (checked by building a server
    /// configuration from them).
    ///
    /// # Errors
    /// As [`server_config_from_pem`].
    pub fn from_pem(cert_pem: String, key_pem: String) -> Result<Self, Error> {
        server_config_from_pem(cert_pem.as_bytes(), key_pem.as_bytes())?;
        Ok(Self { cert_pem, key_pem })
    }

    /// The certificate, PEM-encoded.
    #[must_use]
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PEM-encoded (PKCS#8). Keep it out of logs.
    #[must_use]
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A server configuration presenting this certificate.
    ///
    /// # Errors
    /// [`Error::Tls`] if rustls rejects the pair (not expected for a generated one).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, Error> {
        server_config_from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes())
    }

    /// A client configuration trusting exactly this certificate.
    ///
    /// # Errors
    /// As [`client_config_from_pem_roots`].
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, Error> {
        client_config_from_pem_roots(self.cert_pem.as_bytes())
    }

    /// Writes the certificate to `dir/`[`DEV_CERT_FILE`] and the key to
    /// `dir/`[`DEV_KEY_FILE`] (mode 0600 on Unix), creating `dir` if needed. Each file is
    /// written to a temporary name and renamed, so a crash never leaves half a key.
    /// Returns the two paths.
    ///
    /// # Errors
    /// [`Error::File`] naming the path that could not be written.
    pub fn write_to(&self, dir: &Path) -> Result<(PathBuf, PathBuf), Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
        let cert_path = dir.join(DEV_CERT_FILE);
        let key_path = dir.join(DEV_KEY_FILE);
        write_atomically(&key_path, self.key_pem.as_bytes(), true)?;
        write_atomically(&cert_path, self.cert_pem.as_bytes(), false)?;
        Ok((cert_path, key_path))
    }

    /// Loads the pair [`write_to`](Self::write_to) left in `dir`, or generates one for
    /// `names` and writes it there, so a development server keeps one certificate across
    /// restarts (and clients that pinned it keep working). A pair older than
    /// [`DEV_CERT_RENEW_AFTER`] is replaced. The names of a loaded certificate are not
    /// compared with `names`: delete the files to change them.
    ///
    /// # Errors
    /// [`Error::File`] when the directory cannot be read or written; the PEM errors of
    /// [`server_config_from_pem_files`] when the stored files are damaged (they are not
    /// overwritten silently).
    pub fn load_or_generate(dir: &Path, names: &[&str]) -> Result<Self, Error> {
        let cert_path = dir.join(DEV_CERT_FILE);
        let key_path = dir.join(DEV_KEY_FILE);
        if cert_path.exists()
            && key_path.exists()
            && !is_older_than(&cert_path, DEV_CERT_RENEW_AFTER)
        {
            let cert_pem = read_string(&cert_path)?;
            let key_pem = read_string(&key_path)?;
            // validate, naming the files in errors
            server_config_from_pem_files(&cert_path, &key_path)?;
            return Ok(Self { cert_pem, key_pem });
        }
        let generated = Self::generate(names)?;
        generated.write_to(dir)?;
        Ok(generated)
    }
}

fn read_string(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::file(path, e))
}

fn is_older_than(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .is_some_and(|elapsed| elapsed > age)
}

fn write_atomically(path: &Path, contents: &[u8], private: bool) -> Result<(), Error> {
    use std::io::Write;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    // A stale temporary file would keep its old permissions: start afresh.
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&tmp).map_err(|e| Error::file(&tmp, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::file(&tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| Error::file(path, e))
}

/// Start of the validity of a certificate generated at `now`: one day earlier (tolerating
/// clients whose clocks lag), as (year, month, day).
fn validity_start(now: SystemTime) -> (i32, u8, u8) {
    let days = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    civil_from_days(days.saturating_sub(1))
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (i32, u8, u8) {
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        i32::try_from(year).unwrap_or(1970),
        u8::try_from(month).unwrap_or(1),
        u8::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }

    #[test]
    fn server_name_parsing() {
        assert!(server_name("mail.example.org").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("::1").is_ok());
        assert!(matches!(
            server_name("not a name"),
            Err(Error::InvalidServerName(n)) if n == "not a name"
        ));
    }
}
