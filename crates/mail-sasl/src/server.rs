//! The server side: one [`Exchange`] per `AUTHENTICATE`/`AUTH` command.
//!
//! The exchange never checks a password itself: it hands the application a
//! [`Step::Verify`] or [`Step::NeedScramSecret`] and waits for the answer, so credential
//! stores may be asynchronous. See the crate docs for the driving loop.

use std::mem;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use subtle::ConstantTimeEq;

use crate::scram::{self, ScramSecret};
use crate::util::{self, check_name, hmac_sha256, sha256, utf8};
use crate::{AuthFailure, DEFAULT_SCRAM_ITERATIONS, Mechanism, Secret};

/// Default for [`ServerContext::max_response_len`]: 16 KiB.
pub const DEFAULT_MAX_RESPONSE_LEN: usize = 16 * 1024;

/// What the server side needs to know: its name, a fresh nonce and its limits.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerContext {
    /// The server's host name (used in the CRAM-MD5 challenge).
    pub hostname: String,
    /// A fresh random nonce for this exchange, drawn by the caller (at least 18 printable
    /// ASCII characters recommended). CRAM-MD5 and SCRAM use it; characters SCRAM forbids
    /// (`,`, space, non-ASCII) are dropped.
    pub nonce: String,
    /// Iteration count announced in the fake SCRAM exchange for unknown users (so that they
    /// look like known ones). Default [`DEFAULT_SCRAM_ITERATIONS`].
    pub scram_iterations: u32,
    /// Longest client response accepted, in decoded bytes. Default
    /// [`DEFAULT_MAX_RESPONSE_LEN`].
    pub max_response_len: usize,
    /// Whether an [`Identity`] whose authzid differs from its username may succeed.
    /// Default `false`: such exchanges end in [`AuthFailure::AuthzidNotAllowed`]. Set it only
    /// when the application checks that `username` may act as `authzid`.
    pub allow_authzid: bool,
    /// `scope` to announce in the OAuth error document (XOAUTH2, OAUTHBEARER). Default none.
    pub oauth_scope: Option<String>,
    /// `openid-configuration` URL to announce in the OAUTHBEARER error document. Default none.
    pub openid_configuration: Option<String>,
    /// Key for the fake SCRAM salts of unknown users: set it to a persistent server secret
    /// so that outsiders cannot tell a fake salt from a real one. Default empty (fake salts
    /// are then stable per user and host name, but predictable).
    pub fake_salt_key: Secret<Vec<u8>>,
}

impl ServerContext {
    /// A context with the given host name and nonce and default limits.
    pub fn new(hostname: impl Into<String>, nonce: String) -> Self {
        ServerContext {
            hostname: hostname.into(),
            nonce,
            scram_iterations: DEFAULT_SCRAM_ITERATIONS,
            max_response_len: DEFAULT_MAX_RESPONSE_LEN,
            allow_authzid: false,
            oauth_scope: None,
            openid_configuration: None,
            fake_salt_key: Secret::new(Vec::new()),
        }
    }

    /// Sets [`ServerContext::fake_salt_key`].
    pub fn with_fake_salt_key(mut self, key: Vec<u8>) -> Self {
        self.fake_salt_key = Secret::new(key);
        self
    }

    /// Sets [`ServerContext::allow_authzid`].
    pub fn with_allow_authzid(mut self, allow: bool) -> Self {
        self.allow_authzid = allow;
        self
    }

    /// Sets [`ServerContext::max_response_len`].
    pub fn with_max_response_len(mut self, len: usize) -> Self {
        self.max_response_len = len;
        self
    }

    /// Sets [`ServerContext::scram_iterations`].
    pub fn with_scram_iterations(mut self, iterations: u32) -> Self {
        self.scram_iterations = iterations;
        self
    }

    /// Sets [`ServerContext::oauth_scope`].
    pub fn with_oauth_scope(mut self, scope: impl Into<String>) -> Self {
        self.oauth_scope = Some(scope.into());
        self
    }

    /// Sets [`ServerContext::openid_configuration`].
    pub fn with_openid_configuration(mut self, url: impl Into<String>) -> Self {
        self.openid_configuration = Some(url.into());
        self
    }
}

/// Who the client turned out to be.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The identity the client asked to act as, if it asked for one.
    pub authzid: Option<String>,
    /// The authenticated user (authentication identity).
    pub username: String,
}

impl Identity {
    /// An identity without an authorization identity.
    pub fn new(username: impl Into<String>) -> Self {
        Identity {
            authzid: None,
            username: username.into(),
        }
    }

    /// An identity acting on behalf of `authzid`.
    pub fn with_authzid(username: impl Into<String>, authzid: impl Into<String>) -> Self {
        Identity {
            authzid: Some(authzid.into()),
            username: username.into(),
        }
    }

    /// The user whose rights apply: the authzid if present, otherwise the username.
    pub fn effective_user(&self) -> &str {
        self.authzid.as_deref().unwrap_or(&self.username)
    }

    /// True when the client acts on behalf of a different user.
    pub fn is_proxy(&self) -> bool {
        self.authzid.as_deref().is_some_and(|a| a != self.username)
    }
}

/// What the server must do next.
#[must_use = "a SASL step demands an action: send a challenge, check credentials or reply"]
#[derive(Debug)]
#[non_exhaustive]
pub enum Step {
    /// Send these raw bytes as a challenge (the protocol crate base64-encodes them) and pass
    /// the decoded answer to [`Exchange::step`].
    Challenge(Vec<u8>),
    /// Check these credentials and answer with [`Exchange::credentials_checked`].
    Verify(Verification),
    /// Load the user's stored SCRAM secret and answer with [`Exchange::scram_secret`].
    NeedScramSecret {
        /// The authentication identity, unescaped.
        username: String,
    },
    /// Authenticated.
    Success {
        /// The authenticated identity.
        identity: Identity,
        /// Additional data for the client (SCRAM's `v=...`); send it as a final challenge
        /// and expect an empty response when the protocol cannot carry it in its success
        /// reply (IMAP, POP3 and SMTP cannot).
        server_final: Option<Vec<u8>>,
    },
    /// Failed; the exchange is over.
    Failure(AuthFailure),
}

/// Credentials the application must check.
#[derive(Debug)]
#[non_exhaustive]
pub enum Verification {
    /// A clear-text password (PLAIN, LOGIN).
    Password {
        /// The requested authorization identity (PLAIN only), `None` if empty.
        authzid: Option<String>,
        /// The authentication identity.
        username: String,
        /// The password.
        password: Secret<String>,
    },
    /// A CRAM-MD5 response; check it with [`cram_md5_verify`] and the user's secret.
    CramMd5 {
        /// The user name the client sent.
        username: String,
        /// The challenge the server sent (without base64).
        challenge: Vec<u8>,
        /// The client's digest, 32 lower-case hex digits.
        digest_hex: String,
    },
    /// An OAuth 2.0 bearer token (XOAUTH2, OAUTHBEARER).
    Bearer {
        /// The requested authorization identity (OAUTHBEARER's `a=`).
        authzid: Option<String>,
        /// The user named by the client (XOAUTH2's `user=`); the token decides who it is.
        username: Option<String>,
        /// The bearer token.
        token: Secret<String>,
        /// The host the client says it connected to (OAUTHBEARER `host=`).
        host: Option<String>,
        /// The port the client says it connected to (OAUTHBEARER `port=`).
        port: Option<u16>,
    },
}

/// Checks a CRAM-MD5 digest: `HMAC-MD5(secret, challenge)` in hex, compared in constant time
/// (hex digits in either case are accepted).
pub fn cram_md5_verify(secret: &[u8], challenge: &[u8], digest_hex: &str) -> bool {
    match util::hmac_md5_hex(secret, challenge) {
        Ok(expected) => {
            let given = digest_hex.to_ascii_lowercase();
            bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
        }
        Err(_) => false,
    }
}

#[derive(Debug)]
struct ScramState {
    gs2_header: Vec<u8>,
    client_first_bare: Vec<u8>,
    nonce: Vec<u8>,
    username: String,
    authzid: Option<String>,
    server_first: Vec<u8>,
    secret: Option<ScramSecret>,
}

#[derive(Debug)]
enum State {
    Initial,
    /// Waiting for the first client message of a client-first mechanism.
    AwaitFirst,
    LoginUser,
    LoginPass(String),
    CramResponse(Vec<u8>),
    AwaitCheck {
        bearer: bool,
    },
    BearerErrorAck,
    ScramNeedSecret(Box<ScramState>),
    ScramFinal(Box<ScramState>),
    Done,
}

/// One server-side SASL exchange.
#[derive(Debug)]
pub struct Exchange {
    mechanism: Mechanism,
    ctx: ServerContext,
    state: State,
    requested_authzid: Option<String>,
}

impl Exchange {
    /// A new exchange for `mechanism`.
    pub fn new(mechanism: Mechanism, ctx: ServerContext) -> Self {
        Exchange {
            mechanism,
            ctx,
            state: State::Initial,
            requested_authzid: None,
        }
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The authorization identity the client asked for, once known.
    pub fn requested_authzid(&self) -> Option<&str> {
        self.requested_authzid.as_deref()
    }

    /// True once the exchange has ended in success or failure.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn fail(&mut self, f: AuthFailure) -> Step {
        self.state = State::Done;
        Step::Failure(f)
    }

    fn too_long(&self, data: &[u8]) -> bool {
        data.len() > self.ctx.max_response_len
    }

    /// Starts the exchange with the decoded initial response, if the client sent one
    /// (`Some(b"")` for an explicitly empty one, `=`).
    pub fn start(&mut self, initial_response: Option<&[u8]>) -> Step {
        if !matches!(self.state, State::Initial) {
            return self.fail(AuthFailure::OutOfOrder("start called twice"));
        }
        if let Some(ir) = initial_response
            && self.too_long(ir)
        {
            return self.fail(AuthFailure::Malformed("initial response too long".into()));
        }
        match self.mechanism {
            Mechanism::CramMd5 => {
                if initial_response.is_some() {
                    return self.fail(AuthFailure::Malformed(
                        "CRAM-MD5 does not take an initial response".into(),
                    ));
                }
                let challenge = format!("<{}@{}>", self.ctx.nonce, self.ctx.hostname).into_bytes();
                self.state = State::CramResponse(challenge.clone());
                Step::Challenge(challenge)
            }
            Mechanism::Login => match initial_response {
                Some(user) if !user.is_empty() => self.login_user(user),
                _ => {
                    self.state = State::LoginUser;
                    Step::Challenge(b"Username:".to_vec())
                }
            },
            _ => match initial_response {
                Some(ir) => self.first(ir),
                None => {
                    self.state = State::AwaitFirst;
                    Step::Challenge(Vec::new())
                }
            },
        }
    }

    /// Handles a decoded client response.
    pub fn step(&mut self, response: &[u8]) -> Step {
        if self.too_long(response) {
            return self.fail(AuthFailure::Malformed("client response too long".into()));
        }
        match mem::replace(&mut self.state, State::Done) {
            State::AwaitFirst => self.first(response),
            State::LoginUser => self.login_user(response),
            State::LoginPass(username) => {
                if response.is_empty() {
                    return self.fail(AuthFailure::Malformed("empty password".into()));
                }
                match utf8(response, "password") {
                    Ok(p) => {
                        self.state = State::AwaitCheck { bearer: false };
                        Step::Verify(Verification::Password {
                            authzid: None,
                            username,
                            password: Secret::new(p),
                        })
                    }
                    Err(e) => self.fail(e),
                }
            }
            State::CramResponse(challenge) => self.cram_response(challenge, response),
            State::BearerErrorAck => self.fail(AuthFailure::InvalidCredentials),
            State::ScramFinal(st) => self.scram_final(*st, response),
            State::Initial => self.fail(AuthFailure::OutOfOrder("step called before start")),
            State::AwaitCheck { .. } => self.fail(AuthFailure::OutOfOrder(
                "step called while credentials are checked",
            )),
            State::ScramNeedSecret(_) => self.fail(AuthFailure::OutOfOrder(
                "step called while the SCRAM secret is loaded",
            )),
            State::Done => self.fail(AuthFailure::OutOfOrder("step called after the end")),
        }
    }

    /// The application's answer to [`Step::Verify`]: `Ok(identity)` if the credentials are
    /// good (and, with an authzid, the user may act as it), `Err(reason)` otherwise.
    ///
    /// For XOAUTH2 and OAUTHBEARER an `Err(AuthFailure::InvalidCredentials)` first sends the
    /// OAuth error document as a challenge; the exchange fails after the client's answer.
    pub fn credentials_checked(&mut self, result: Result<Identity, AuthFailure>) -> Step {
        let State::AwaitCheck { bearer } = mem::replace(&mut self.state, State::Done) else {
            return self.fail(AuthFailure::OutOfOrder(
                "credentials_checked without Verify",
            ));
        };
        match result {
            Ok(identity) => self.succeed(identity, None),
            Err(AuthFailure::InvalidCredentials) if bearer => {
                self.state = State::BearerErrorAck;
                Step::Challenge(self.oauth_error())
            }
            Err(e) => self.fail(e),
        }
    }

    /// The application's answer to [`Step::NeedScramSecret`]: the user's stored secret, or
    /// `None` for an unknown user (the exchange continues with a fake salt and fails at the
    /// proof, so unknown users look like wrong passwords).
    pub fn scram_secret(&mut self, secret: Option<ScramSecret>) -> Step {
        let State::ScramNeedSecret(mut st) = mem::replace(&mut self.state, State::Done) else {
            return self.fail(AuthFailure::OutOfOrder(
                "scram_secret without NeedScramSecret",
            ));
        };
        let server_nonce = scram::sanitize_nonce(&self.ctx.nonce);
        if server_nonce.is_empty() {
            return self.fail(AuthFailure::TemporaryFailure(
                "the server nonce is empty: ServerContext::nonce must be random printable text"
                    .into(),
            ));
        }
        let (salt, iterations) = match &secret {
            Some(s) => (s.salt.clone(), s.iterations),
            None => {
                // Deterministic per user and nonce-independent, so repeated probes of an
                // unknown user see a stable salt, like a real one.
                let mut seed = b"mail-sasl fake salt\0".to_vec();
                seed.extend_from_slice(self.ctx.hostname.as_bytes());
                seed.push(0);
                seed.extend_from_slice(st.username.as_bytes());
                let mac = hmac_sha256(self.ctx.fake_salt_key.expose(), &seed)
                    .unwrap_or_else(|_| sha256(&seed));
                let salt = mac.get(..16).map(<[u8]>::to_vec).unwrap_or_default();
                (salt, self.ctx.scram_iterations.max(1))
            }
        };
        st.nonce.extend_from_slice(server_nonce.as_bytes());
        let mut server_first = b"r=".to_vec();
        server_first.extend_from_slice(&st.nonce);
        server_first
            .extend_from_slice(format!(",s={},i={}", B64.encode(&salt), iterations).as_bytes());
        st.server_first = server_first.clone();
        st.secret = secret;
        self.state = State::ScramFinal(st);
        Step::Challenge(server_first)
    }

    /// The client cancelled the exchange (`*`).
    pub fn cancel(&mut self) -> Step {
        self.fail(AuthFailure::Cancelled)
    }

    fn succeed(&mut self, identity: Identity, server_final: Option<Vec<u8>>) -> Step {
        self.state = State::Done;
        if identity.is_proxy() && !self.ctx.allow_authzid {
            return Step::Failure(AuthFailure::AuthzidNotAllowed);
        }
        Step::Success {
            identity,
            server_final,
        }
    }

    fn oauth_error(&self) -> Vec<u8> {
        let mut json = String::from("{\"status\":");
        if self.mechanism == Mechanism::XOAuth2 {
            json.push_str("\"401\",\"schemes\":\"Bearer\"");
        } else {
            json.push_str("\"invalid_token\"");
        }
        if let Some(scope) = &self.ctx.oauth_scope {
            json.push_str(",\"scope\":");
            json.push_str(&util::json_string(scope));
        }
        if self.mechanism == Mechanism::OAuthBearer
            && let Some(url) = &self.ctx.openid_configuration
        {
            json.push_str(",\"openid-configuration\":");
            json.push_str(&util::json_string(url));
        }
        json.push('}');
        json.into_bytes()
    }

    fn first(&mut self, data: &[u8]) -> Step {
        let result = match self.mechanism {
            Mechanism::Plain => self.plain(data),
            Mechanism::XOAuth2 => self.xoauth2(data),
            Mechanism::OAuthBearer => self.oauthbearer(data),
            Mechanism::ScramSha256 => self.scram_first(data),
            Mechanism::Login | Mechanism::CramMd5 => {
                Err(AuthFailure::OutOfOrder("not a client-first mechanism"))
            }
        };
        match result {
            Ok(step) => step,
            Err(e) => self.fail(e),
        }
    }

    fn login_user(&mut self, data: &[u8]) -> Step {
        match utf8(data, "user name").and_then(|u| check_name(&u, "user name").map(|()| u)) {
            Ok(user) => {
                self.state = State::LoginPass(user);
                Step::Challenge(b"Password:".to_vec())
            }
            Err(e) => self.fail(e),
        }
    }

    fn plain(&mut self, data: &[u8]) -> Result<Step, AuthFailure> {
        // message = [authzid] UTF8NUL authcid UTF8NUL passwd (RFC 4616 section 2)
        let mut parts = data.splitn(3, |&b| b == 0);
        let (Some(authzid), Some(authcid), Some(passwd)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthFailure::Malformed(
                "PLAIN message needs two NUL separators".into(),
            ));
        };
        if passwd.contains(&0) {
            return Err(AuthFailure::Malformed(
                "PLAIN message has more than two NULs".into(),
            ));
        }
        let username = utf8(authcid, "user name")?;
        check_name(&username, "user name")?;
        if passwd.is_empty() {
            return Err(AuthFailure::Malformed("empty password".into()));
        }
        let password = utf8(passwd, "password")?;
        let authzid = if authzid.is_empty() {
            None
        } else {
            let a = utf8(authzid, "authorization identity")?;
            check_name(&a, "authorization identity")?;
            Some(a)
        };
        self.requested_authzid = authzid.clone();
        self.state = State::AwaitCheck { bearer: false };
        Ok(Step::Verify(Verification::Password {
            authzid,
            username,
            password: Secret::new(password),
        }))
    }

    fn cram_response(&mut self, challenge: Vec<u8>, data: &[u8]) -> Step {
        // response = user SP digest, digest = 32 hex digits (RFC 2195)
        let Some(sp) = data.iter().rposition(|&b| b == b' ') else {
            return self.fail(AuthFailure::Malformed(
                "CRAM-MD5 response has no space".into(),
            ));
        };
        let (user, digest) = (
            data.get(..sp).unwrap_or_default(),
            data.get(sp + 1..).unwrap_or_default(),
        );
        if digest.len() != 32 || !digest.iter().all(u8::is_ascii_hexdigit) {
            return self.fail(AuthFailure::Malformed(
                "CRAM-MD5 digest is not 32 hex digits".into(),
            ));
        }
        let username =
            match utf8(user, "user name").and_then(|u| check_name(&u, "user name").map(|()| u)) {
                Ok(u) => u,
                Err(e) => return self.fail(e),
            };
        let digest_hex = String::from_utf8_lossy(digest).to_ascii_lowercase();
        self.state = State::AwaitCheck { bearer: false };
        Step::Verify(Verification::CramMd5 {
            username,
            challenge,
            digest_hex,
        })
    }

    fn xoauth2(&mut self, data: &[u8]) -> Result<Step, AuthFailure> {
        // "user=" user ^A "auth=Bearer " token ^A ^A
        let body = data
            .strip_suffix(b"\x01\x01")
            .ok_or_else(|| AuthFailure::Malformed("XOAUTH2 response must end with ^A^A".into()))?;
        let mut user = None;
        let mut auth = None;
        for field in body.split(|&b| b == 1) {
            if let Some(u) = field.strip_prefix(b"user=") {
                user = Some(utf8(u, "user name")?);
            } else if let Some(a) = field.strip_prefix(b"auth=") {
                auth = Some(a);
            }
        }
        let user =
            user.ok_or_else(|| AuthFailure::Malformed("XOAUTH2 response lacks user=".into()))?;
        check_name(&user, "user name")?;
        let token = bearer_token(auth)?;
        self.state = State::AwaitCheck { bearer: true };
        Ok(Step::Verify(Verification::Bearer {
            authzid: None,
            username: Some(user),
            token,
            host: None,
            port: None,
        }))
    }

    fn oauthbearer(&mut self, data: &[u8]) -> Result<Step, AuthFailure> {
        // client-resp = (gs2-header kvsep *kvpair kvsep) / kvsep (RFC 7628 section 3.1)
        if data == b"\x01" {
            return Err(AuthFailure::Malformed(
                "OAUTHBEARER message is only ^A".into(),
            ));
        }
        let (authzid, rest) = gs2_header(data)?;
        let rest = rest.strip_prefix(b"\x01").ok_or_else(|| {
            AuthFailure::Malformed("OAUTHBEARER gs2 header not followed by ^A".into())
        })?;
        let pairs = rest
            .strip_suffix(b"\x01")
            .ok_or_else(|| AuthFailure::Malformed("OAUTHBEARER message must end with ^A".into()))?;
        let mut auth = None;
        let mut host = None;
        let mut port = None;
        if !pairs.is_empty() {
            let pairs = pairs.strip_suffix(b"\x01").ok_or_else(|| {
                AuthFailure::Malformed("OAUTHBEARER key/value pair not terminated by ^A".into())
            })?;
            for kv in pairs.split(|&b| b == 1) {
                let eq = kv
                    .iter()
                    .position(|&b| b == b'=')
                    .ok_or_else(|| AuthFailure::Malformed("OAUTHBEARER pair lacks '='".into()))?;
                let (key, value) = (
                    kv.get(..eq).unwrap_or_default(),
                    kv.get(eq + 1..).unwrap_or_default(),
                );
                if key.is_empty() || !key.iter().all(u8::is_ascii_alphabetic) {
                    return Err(AuthFailure::Malformed(
                        "OAUTHBEARER key must be letters".into(),
                    ));
                }
                if !value
                    .iter()
                    .all(|&b| matches!(b, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n'))
                {
                    return Err(AuthFailure::Malformed(
                        "OAUTHBEARER value has a bad byte".into(),
                    ));
                }
                match key {
                    b"auth" => auth = Some(value),
                    b"host" => host = Some(utf8(value, "host")?),
                    b"port" => {
                        port = Some(
                            std::str::from_utf8(value)
                                .ok()
                                .and_then(|p| p.parse::<u16>().ok())
                                .ok_or_else(|| {
                                    AuthFailure::Malformed(
                                        "OAUTHBEARER port is not a number".into(),
                                    )
                                })?,
                        )
                    }
                    _ => {}
                }
            }
        }
        self.requested_authzid = authzid.clone();
        if auth.is_none_or(<[u8]>::is_empty) {
            // A client without a token asks for the discovery document (RFC 7628 4.3).
            self.state = State::BearerErrorAck;
            return Ok(Step::Challenge(self.oauth_error()));
        }
        let token = bearer_token(auth)?;
        self.state = State::AwaitCheck { bearer: true };
        Ok(Step::Verify(Verification::Bearer {
            authzid,
            username: None,
            token,
            host,
            port,
        }))
    }

    fn scram_first(&mut self, data: &[u8]) -> Result<Step, AuthFailure> {
        let (authzid, bare) = gs2_header(data)?;
        let gs2_len = data.len() - bare.len();
        let gs2 = data.get(..gs2_len).unwrap_or_default().to_vec();
        let attrs = scram::attributes(bare)?;
        let mut it = attrs.iter();
        let (username, nonce) = match (it.next(), it.next()) {
            (Some((b'm', _)), _) => {
                return Err(AuthFailure::Malformed(
                    "SCRAM m= extension is not supported".into(),
                ));
            }
            (Some((b'n', user)), Some((b'r', nonce))) => (util::decode_saslname(user)?, *nonce),
            _ => {
                return Err(AuthFailure::Malformed(
                    "SCRAM client-first needs n= then r=".into(),
                ));
            }
        };
        if !scram::is_valid_nonce(nonce) {
            return Err(AuthFailure::Malformed(
                "SCRAM client nonce has bad characters".into(),
            ));
        }
        self.requested_authzid = authzid.clone();
        self.state = State::ScramNeedSecret(Box::new(ScramState {
            gs2_header: gs2,
            client_first_bare: bare.to_vec(),
            nonce: nonce.to_vec(),
            username: username.clone(),
            authzid,
            server_first: Vec::new(),
            secret: None,
        }));
        Ok(Step::NeedScramSecret { username })
    }

    fn scram_final(&mut self, st: ScramState, data: &[u8]) -> Step {
        match scram_check_final(&st, data) {
            Ok(signature) => {
                let mut server_final = b"v=".to_vec();
                server_final.extend_from_slice(B64.encode(signature).as_bytes());
                let identity = Identity {
                    authzid: st.authzid,
                    username: st.username,
                };
                self.succeed(identity, Some(server_final))
            }
            Err(e) => self.fail(e),
        }
    }
}

/// Checks the client-final message; returns the server signature.
fn scram_check_final(st: &ScramState, data: &[u8]) -> Result<[u8; 32], AuthFailure> {
    // client-final-message = client-final-message-without-proof "," proof
    let split = data
        .windows(3)
        .rposition(|w| w == b",p=")
        .ok_or_else(|| AuthFailure::Malformed("SCRAM client-final lacks p=".into()))?;
    let without_proof = data.get(..split).unwrap_or_default();
    let proof_b64 = data.get(split + 3..).unwrap_or_default();
    let attrs = scram::attributes(without_proof)?;
    let mut it = attrs.iter();
    let (cbind, nonce) = match (it.next(), it.next()) {
        (Some((b'c', c)), Some((b'r', r))) => (*c, *r),
        _ => {
            return Err(AuthFailure::Malformed(
                "SCRAM client-final needs c= then r=".into(),
            ));
        }
    };
    let cbind = B64
        .decode(cbind)
        .map_err(|_| AuthFailure::Malformed("SCRAM c= is not base64".into()))?;
    if cbind != st.gs2_header {
        return Err(AuthFailure::Malformed(
            "SCRAM c= does not repeat the gs2 header".into(),
        ));
    }
    if nonce != st.nonce.as_slice() {
        return Err(AuthFailure::Malformed("SCRAM nonce does not match".into()));
    }
    let proof = B64
        .decode(proof_b64)
        .map_err(|_| AuthFailure::Malformed("SCRAM p= is not base64".into()))?;
    let proof: [u8; 32] = proof
        .as_slice()
        .try_into()
        .map_err(|_| AuthFailure::Malformed("SCRAM proof is not 32 bytes".into()))?;
    // For an unknown user, run the same computation against a dummy secret so the reply
    // takes as long as for a wrong password.
    let dummy = ScramSecret {
        salt: Vec::new(),
        iterations: 1,
        stored_key: [0; 32],
        server_key: [0; 32],
    };
    let secret = st.secret.as_ref().unwrap_or(&dummy);
    let mut auth_message = st.client_first_bare.clone();
    auth_message.push(b',');
    auth_message.extend_from_slice(&st.server_first);
    auth_message.push(b',');
    auth_message.extend_from_slice(without_proof);
    let client_signature = hmac_sha256(&secret.stored_key, &auth_message)?;
    let mut client_key = [0u8; 32];
    for ((k, p), s) in client_key.iter_mut().zip(proof).zip(client_signature) {
        *k = p ^ s;
    }
    let proof_ok = bool::from(sha256(&client_key).ct_eq(&secret.stored_key));
    if !proof_ok || st.secret.is_none() {
        return Err(AuthFailure::InvalidCredentials);
    }
    hmac_sha256(&secret.server_key, &auth_message)
}

/// Parses `gs2-header = gs2-cbind-flag "," [authzid] ","` and returns the authzid and the
/// rest. Channel binding (`p=`) is refused; `y` (client could bind, thinks we cannot) is
/// fine because this server never advertises a -PLUS mechanism.
fn gs2_header(data: &[u8]) -> Result<(Option<String>, &[u8]), AuthFailure> {
    let rest = match data {
        [b'n' | b'y', b',', rest @ ..] => rest,
        [b'p', b'=', ..] => return Err(AuthFailure::ChannelBindingUnsupported),
        _ => {
            return Err(AuthFailure::Malformed(
                "gs2 header must start with n, or y,".into(),
            ));
        }
    };
    let comma = rest
        .iter()
        .position(|&b| b == b',')
        .ok_or_else(|| AuthFailure::Malformed("gs2 header lacks its second ','".into()))?;
    let authz = rest.get(..comma).unwrap_or_default();
    let after = rest.get(comma + 1..).unwrap_or_default();
    let authzid = if authz.is_empty() {
        None
    } else {
        let name = authz
            .strip_prefix(b"a=")
            .ok_or_else(|| AuthFailure::Malformed("gs2 authzid must start with a=".into()))?;
        Some(util::decode_saslname(name)?)
    };
    Ok((authzid, after))
}

/// `auth=` value: `"Bearer" 1*SP token`, scheme case-insensitive (RFC 7628 section 3.1).
fn bearer_token(auth: Option<&[u8]>) -> Result<Secret<String>, AuthFailure> {
    let auth = auth.ok_or_else(|| AuthFailure::Malformed("missing auth=".into()))?;
    let scheme = auth.get(..7).unwrap_or_default();
    if !scheme.eq_ignore_ascii_case(b"Bearer ") {
        return Err(AuthFailure::Malformed(
            "auth= must be \"Bearer <token>\"".into(),
        ));
    }
    let token = auth.get(7..).unwrap_or_default();
    let token = token
        .iter()
        .position(|&b| b != b' ')
        .and_then(|i| token.get(i..))
        .unwrap_or_default();
    if token.is_empty() {
        return Err(AuthFailure::Malformed("empty bearer token".into()));
    }
    // b64token (RFC 6750) is a subset of visible ASCII; refuse anything else.
    if !token.iter().all(u8::is_ascii_graphic) {
        return Err(AuthFailure::Malformed(
            "bearer token has a non-printable byte".into(),
        ));
    }
    Ok(Secret::new(utf8(token, "bearer token")?))
}
