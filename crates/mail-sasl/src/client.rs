//! The client side: one [`Exchange`] per authentication attempt.
//!
//! Drive it like this: send the mechanism name with [`Exchange::initial_response`] if the
//! protocol allows an initial response (IMAP SASL-IR, SMTP and POP3 `AUTH mech ir`);
//! answer every server challenge (decoded) with [`Exchange::step`]; when the server reports
//! success, call [`Exchange::finish`] with any additional success data (SCRAM verifies the
//! server's signature there, or in `step` when the server sent it as a challenge).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use subtle::ConstantTimeEq;

use crate::scram;
use crate::util::{self, hmac_sha256};
use crate::{AuthFailure, DEFAULT_SCRAM_ITERATIONS, Mechanism, Secret};

/// Default for the largest SCRAM iteration count a client accepts: 1 000 000 (about a
/// second of PBKDF2 work on a slow machine).
pub const DEFAULT_MAX_SCRAM_ITERATIONS: u32 = 1_000_000;

/// What the client authenticates with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientCredentials {
    /// The identity to act as, if different from `username` (PLAIN, OAUTHBEARER, SCRAM).
    pub authzid: Option<String>,
    /// The authentication identity.
    pub username: String,
    /// The password, or the OAuth 2.0 access token for XOAUTH2 and OAUTHBEARER.
    pub secret: Secret<String>,
    /// The server host name sent in OAUTHBEARER's `host=` (optional there).
    pub host: Option<String>,
    /// The server port sent in OAUTHBEARER's `port=` (optional there).
    pub port: Option<u16>,
}

impl ClientCredentials {
    /// Credentials for `username` with a password or token.
    pub fn new(username: impl Into<String>, secret: Secret<String>) -> Self {
        ClientCredentials {
            authzid: None,
            username: username.into(),
            secret,
            host: None,
            port: None,
        }
    }

    /// Asks to act as `authzid`.
    pub fn with_authzid(mut self, authzid: impl Into<String>) -> Self {
        self.authzid = Some(authzid.into());
        self
    }

    /// Sets the host and port OAUTHBEARER reports.
    pub fn with_host_port(mut self, host: impl Into<String>, port: u16) -> Self {
        self.host = Some(host.into());
        self.port = Some(port);
        self
    }
}

#[derive(Debug)]
enum State {
    Initial,
    LoginPassword,
    /// The whole message went out; a further challenge can only be an error report.
    Sent,
    ScramServerFirst {
        gs2: Vec<u8>,
        bare: Vec<u8>,
        nonce: String,
    },
    ScramServerFinal {
        signature: [u8; 32],
    },
    ScramVerified,
    Done,
}

/// One client-side SASL exchange.
#[derive(Debug)]
pub struct Exchange {
    mechanism: Mechanism,
    creds: ClientCredentials,
    nonce: String,
    state: State,
    min_iterations: u32,
    max_iterations: u32,
    server_error: Option<String>,
}

impl Exchange {
    /// A new exchange. `nonce` is the SCRAM client nonce: fresh random printable ASCII, at
    /// least 18 characters recommended (`,` and other characters SCRAM forbids are dropped;
    /// an empty nonce makes SCRAM fail). Other mechanisms ignore it.
    pub fn new(mechanism: Mechanism, creds: ClientCredentials, nonce: String) -> Self {
        Exchange {
            mechanism,
            creds,
            nonce: scram::sanitize_nonce(&nonce),
            state: State::Initial,
            min_iterations: DEFAULT_SCRAM_ITERATIONS,
            max_iterations: DEFAULT_MAX_SCRAM_ITERATIONS,
            server_error: None,
        }
    }

    /// Sets the SCRAM iteration counts the client accepts (defaults
    /// [`DEFAULT_SCRAM_ITERATIONS`]..=[`DEFAULT_MAX_SCRAM_ITERATIONS`]).
    pub fn with_scram_iteration_limits(mut self, min: u32, max: u32) -> Self {
        self.min_iterations = min;
        self.max_iterations = max;
        self
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The error document an OAuth server sent (XOAUTH2, OAUTHBEARER), if any.
    pub fn server_error(&self) -> Option<&str> {
        self.server_error.as_deref()
    }

    /// The initial response, for mechanisms where the client speaks first (see
    /// [`Mechanism::client_sends_first`]); `None` otherwise. Call it at most once, before
    /// any [`Exchange::step`]; if the protocol cannot send an initial response, skip it and
    /// the first (empty) server challenge yields the same bytes from `step`.
    pub fn initial_response(&mut self) -> Option<Vec<u8>> {
        if !matches!(self.state, State::Initial) || !self.mechanism.client_sends_first() {
            return None;
        }
        if self.mechanism == Mechanism::ScramSha256 && self.nonce.is_empty() {
            return None;
        }
        self.first_message().ok()
    }

    fn first_message(&mut self) -> Result<Vec<u8>, AuthFailure> {
        let c = &self.creds;
        let token = c.secret.expose();
        let out = match self.mechanism {
            Mechanism::Plain => {
                let mut m = c.authzid.clone().unwrap_or_default().into_bytes();
                m.push(0);
                m.extend_from_slice(c.username.as_bytes());
                m.push(0);
                m.extend_from_slice(token.as_bytes());
                self.state = State::Sent;
                m
            }
            Mechanism::XOAuth2 => {
                self.state = State::Sent;
                format!("user={}\x01auth=Bearer {token}\x01\x01", c.username).into_bytes()
            }
            Mechanism::OAuthBearer => {
                let mut m = gs2_header(c.authzid.as_deref());
                m.push(1);
                if let Some(host) = &c.host {
                    m.extend_from_slice(format!("host={host}\x01").as_bytes());
                }
                if let Some(port) = c.port {
                    m.extend_from_slice(format!("port={port}\x01").as_bytes());
                }
                m.extend_from_slice(format!("auth=Bearer {token}\x01\x01").as_bytes());
                self.state = State::Sent;
                m
            }
            Mechanism::ScramSha256 => {
                if self.nonce.is_empty() {
                    self.state = State::Done;
                    return Err(AuthFailure::OutOfOrder("the SCRAM client nonce is empty"));
                }
                let gs2 = gs2_header(c.authzid.as_deref());
                let bare = format!("n={},r={}", util::encode_saslname(&c.username), self.nonce)
                    .into_bytes();
                let mut m = gs2.clone();
                m.extend_from_slice(&bare);
                self.state = State::ScramServerFirst {
                    gs2,
                    bare,
                    nonce: self.nonce.clone(),
                };
                m
            }
            Mechanism::Login | Mechanism::CramMd5 => {
                return Err(AuthFailure::OutOfOrder("not a client-first mechanism"));
            }
        };
        Ok(out)
    }

    /// Answers a decoded server challenge. An `Err` ends the exchange: cancel it on the wire
    /// (`*`) unless the server already failed it.
    pub fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, AuthFailure> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Initial => match self.mechanism {
                Mechanism::Login => {
                    self.state = State::LoginPassword;
                    Ok(self.creds.username.clone().into_bytes())
                }
                Mechanism::CramMd5 => {
                    let digest =
                        util::hmac_md5_hex(self.creds.secret.expose().as_bytes(), challenge)?;
                    self.state = State::Sent;
                    Ok(format!("{} {digest}", self.creds.username).into_bytes())
                }
                _ => self.first_message(),
            },
            State::LoginPassword => {
                self.state = State::Sent;
                Ok(self.creds.secret.expose().clone().into_bytes())
            }
            State::Sent => match self.mechanism {
                Mechanism::XOAuth2 | Mechanism::OAuthBearer => {
                    // The error document; the mechanism demands a dummy response, after
                    // which the server fails the exchange.
                    self.server_error = Some(String::from_utf8_lossy(challenge).into_owned());
                    Ok(if self.mechanism == Mechanism::XOAuth2 {
                        Vec::new()
                    } else {
                        vec![1]
                    })
                }
                _ => Err(AuthFailure::Malformed(
                    "unexpected extra challenge from the server".into(),
                )),
            },
            State::ScramServerFirst { gs2, bare, nonce } => {
                self.scram_client_final(&gs2, &bare, &nonce, challenge)
            }
            State::ScramServerFinal { signature } => {
                verify_server_final(&signature, challenge)?;
                self.state = State::ScramVerified;
                Ok(Vec::new())
            }
            State::ScramVerified | State::Done => Err(AuthFailure::OutOfOrder(
                "step called after the exchange ended",
            )),
        }
    }

    /// Call when the server reported success, with its additional success data if any.
    /// For SCRAM this checks the server signature (unless `step` already did) and fails
    /// with [`AuthFailure::ServerSignatureMismatch`] if it is wrong or missing.
    pub fn finish(&mut self, server_final: Option<&[u8]>) -> Result<(), AuthFailure> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::ScramServerFinal { signature } => match server_final {
                Some(data) => verify_server_final(&signature, data),
                None => Err(AuthFailure::ServerSignatureMismatch),
            },
            State::ScramServerFirst { .. } => Err(AuthFailure::ServerSignatureMismatch),
            State::Initial if self.mechanism == Mechanism::ScramSha256 => {
                Err(AuthFailure::ServerSignatureMismatch)
            }
            _ => Ok(()),
        }
    }

    fn scram_client_final(
        &mut self,
        gs2: &[u8],
        bare: &[u8],
        nonce: &str,
        server_first: &[u8],
    ) -> Result<Vec<u8>, AuthFailure> {
        let attrs = scram::attributes(server_first)?;
        let mut it = attrs.iter();
        let (full_nonce, salt, iter) = match (it.next(), it.next(), it.next()) {
            (Some((b'm', _)), _, _) => {
                return Err(AuthFailure::Malformed(
                    "SCRAM m= extension is not supported".into(),
                ));
            }
            (Some((b'e', e)), _, _) => {
                return Err(AuthFailure::ServerError(
                    String::from_utf8_lossy(e).into_owned(),
                ));
            }
            (Some((b'r', r)), Some((b's', s)), Some((b'i', i))) => (*r, *s, *i),
            _ => {
                return Err(AuthFailure::Malformed(
                    "SCRAM server-first needs r=, s=, i=".into(),
                ));
            }
        };
        if !scram::is_valid_nonce(full_nonce)
            || !full_nonce.starts_with(nonce.as_bytes())
            || full_nonce.len() <= nonce.len()
        {
            return Err(AuthFailure::Malformed(
                "SCRAM server nonce does not extend the client nonce".into(),
            ));
        }
        let salt = B64
            .decode(salt)
            .map_err(|_| AuthFailure::Malformed("SCRAM salt is not base64".into()))?;
        if salt.is_empty() {
            return Err(AuthFailure::Malformed("SCRAM salt is empty".into()));
        }
        let iterations: u32 = std::str::from_utf8(iter)
            .ok()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                AuthFailure::Malformed("SCRAM iteration count is not a number".into())
            })?;
        if iterations < self.min_iterations || iterations > self.max_iterations {
            return Err(AuthFailure::IterationCountOutOfRange(iterations));
        }
        let mut without_proof = b"c=".to_vec();
        without_proof.extend_from_slice(B64.encode(gs2).as_bytes());
        without_proof.extend_from_slice(b",r=");
        without_proof.extend_from_slice(full_nonce);
        let mut auth_message = bare.to_vec();
        auth_message.push(b',');
        auth_message.extend_from_slice(server_first);
        auth_message.push(b',');
        auth_message.extend_from_slice(&without_proof);

        let keys = scram::keys(self.creds.secret.expose().as_bytes(), &salt, iterations);
        let client_signature = hmac_sha256(&keys.stored_key, &auth_message)?;
        let mut proof = [0u8; 32];
        for ((p, k), s) in proof.iter_mut().zip(keys.client_key).zip(client_signature) {
            *p = k ^ s;
        }
        let signature = hmac_sha256(&keys.server_key, &auth_message)?;
        self.state = State::ScramServerFinal { signature };
        let mut out = without_proof;
        out.extend_from_slice(b",p=");
        out.extend_from_slice(B64.encode(proof).as_bytes());
        Ok(out)
    }
}

fn gs2_header(authzid: Option<&str>) -> Vec<u8> {
    match authzid {
        Some(a) if !a.is_empty() => format!("n,a={},", util::encode_saslname(a)).into_bytes(),
        _ => b"n,,".to_vec(),
    }
}

/// Checks `server-final-message = (server-error / verifier) ["," extensions]`.
fn verify_server_final(expected: &[u8; 32], data: &[u8]) -> Result<(), AuthFailure> {
    let first = data.split(|&b| b == b',').next().unwrap_or_default();
    if let Some(e) = first.strip_prefix(b"e=") {
        return Err(AuthFailure::ServerError(
            String::from_utf8_lossy(e).into_owned(),
        ));
    }
    let v = first
        .strip_prefix(b"v=")
        .ok_or(AuthFailure::ServerSignatureMismatch)?;
    let sig = B64
        .decode(v)
        .map_err(|_| AuthFailure::ServerSignatureMismatch)?;
    if bool::from(sig.as_slice().ct_eq(expected.as_slice())) {
        Ok(())
    } else {
        Err(AuthFailure::ServerSignatureMismatch)
    }
}
