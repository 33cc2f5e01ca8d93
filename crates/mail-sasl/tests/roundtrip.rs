//! Client <-> server round trips for every mechanism: success, wrong secret, cancel.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may panic

use mail_sasl::client::{ClientCredentials, Exchange as Client};
use mail_sasl::server::{
    Exchange as Server, Identity, ServerContext, Step, Verification, cram_md5_verify,
};
use mail_sasl::{AuthFailure, Mechanism, ScramSecret, Secret};

const USER: &str = "alice@example.org";
const PASSWORD: &str = "correct horse, battery=staple";
const TOKEN: &str = "ya29.a0AfH6SMBx-token";

/// The application: a one-user credential store.
fn check(v: &Verification) -> Result<Identity, AuthFailure> {
    match v {
        Verification::Password {
            authzid,
            username,
            password,
        } => {
            if username == USER && *password == Secret::new(PASSWORD.to_string()) {
                Ok(Identity {
                    authzid: authzid.clone(),
                    username: username.clone(),
                })
            } else {
                Err(AuthFailure::InvalidCredentials)
            }
        }
        Verification::CramMd5 {
            username,
            challenge,
            digest_hex,
        } => {
            if username == USER && cram_md5_verify(PASSWORD.as_bytes(), challenge, digest_hex) {
                Ok(Identity::new(username.clone()))
            } else {
                Err(AuthFailure::InvalidCredentials)
            }
        }
        Verification::Bearer {
            authzid,
            username,
            token,
            ..
        } => {
            if *token == Secret::new(TOKEN.to_string())
                && username.as_deref().is_none_or(|u| u == USER)
            {
                Ok(Identity {
                    authzid: authzid.clone(),
                    username: USER.to_string(),
                })
            } else {
                Err(AuthFailure::InvalidCredentials)
            }
        }
        _ => Err(AuthFailure::UnsupportedMechanism),
    }
}

fn scram_lookup(username: &str) -> Option<ScramSecret> {
    (username == USER).then(|| ScramSecret::derive(PASSWORD.as_bytes(), b"0123456789abcdef", 4096))
}

#[derive(Debug, PartialEq)]
enum Outcome {
    /// Server said success; the client's finish() result.
    Success(Identity, Result<(), AuthFailure>),
    /// Server said failure; the client's own error, if it gave up first.
    Failure(AuthFailure, Option<AuthFailure>),
}

#[derive(Clone, Copy)]
struct Opts {
    use_ir: bool,
    /// Send SCRAM's server-final as a challenge (IMAP style) rather than with success.
    final_as_challenge: bool,
    /// Cancel at the first challenge.
    cancel: bool,
}

const DEFAULT: Opts = Opts {
    use_ir: true,
    final_as_challenge: false,
    cancel: false,
};

fn run(mech: Mechanism, creds: ClientCredentials, ctx: ServerContext, opts: Opts) -> Outcome {
    let mut client = Client::new(mech, creds, "fyko+d2lbbFgONRv9qkxdawL".into());
    let mut server = Server::new(mech, ctx);
    let ir = if opts.use_ir {
        client.initial_response()
    } else {
        None
    };
    let mut step = server.start(ir.as_deref());
    let mut client_err = None;
    for _ in 0..10 {
        step = match step {
            Step::Challenge(c) => {
                if opts.cancel {
                    server.cancel()
                } else {
                    match client.step(&c) {
                        Ok(r) => server.step(&r),
                        Err(e) => {
                            client_err = Some(e);
                            server.cancel()
                        }
                    }
                }
            }
            Step::Verify(v) => server.credentials_checked(check(&v)),
            Step::NeedScramSecret { username } => server.scram_secret(scram_lookup(&username)),
            Step::Success {
                identity,
                server_final,
            } => {
                let fin = match server_final {
                    Some(data) if opts.final_as_challenge => client
                        .step(&data)
                        .map(|r| assert!(r.is_empty()))
                        .and_then(|()| client.finish(None)),
                    other => client.finish(other.as_deref()),
                };
                return Outcome::Success(identity, fin);
            }
            Step::Failure(f) => return Outcome::Failure(f, client_err),
            other => panic!("unexpected {other:?}"),
        };
    }
    panic!("exchange did not end in 10 steps");
}

fn ctx() -> ServerContext {
    ServerContext::new("mx.example.org", "3rfcNHYJY1ZVvWVs7j".into())
}

fn good() -> ClientCredentials {
    ClientCredentials::new(USER, Secret::new(PASSWORD.into()))
}

fn token() -> ClientCredentials {
    ClientCredentials::new(USER, Secret::new(TOKEN.into())).with_host_port("mx.example.org", 993)
}

fn creds_for(m: Mechanism, good_secret: bool) -> ClientCredentials {
    let c = if matches!(m, Mechanism::XOAuth2 | Mechanism::OAuthBearer) {
        token()
    } else {
        good()
    };
    if good_secret {
        c
    } else {
        ClientCredentials::new(USER, Secret::new("wrong".into()))
    }
}

#[test]
fn every_mechanism_succeeds_with_and_without_initial_response() {
    for m in Mechanism::ALL {
        for use_ir in [true, false] {
            for final_as_challenge in [true, false] {
                let opts = Opts {
                    use_ir,
                    final_as_challenge,
                    cancel: false,
                };
                let out = run(m, creds_for(m, true), ctx(), opts);
                assert_eq!(
                    out,
                    Outcome::Success(Identity::new(USER), Ok(())),
                    "{m} ir={use_ir}"
                );
            }
        }
    }
}

#[test]
fn every_mechanism_fails_with_a_wrong_secret() {
    for m in Mechanism::ALL {
        for use_ir in [true, false] {
            let opts = Opts { use_ir, ..DEFAULT };
            let out = run(m, creds_for(m, false), ctx(), opts);
            assert_eq!(
                out,
                Outcome::Failure(AuthFailure::InvalidCredentials, None),
                "{m}"
            );
        }
    }
}

#[test]
fn unknown_user_looks_like_wrong_password() {
    // OAUTHBEARER carries no user name: the token alone says who the client is.
    for m in Mechanism::ALL
        .into_iter()
        .filter(|&m| m != Mechanism::OAuthBearer)
    {
        let c = ClientCredentials::new("mallory", creds_for(m, true).secret);
        let out = run(m, c, ctx(), DEFAULT);
        assert_eq!(
            out,
            Outcome::Failure(AuthFailure::InvalidCredentials, None),
            "{m}"
        );
    }
}

#[test]
fn scram_unknown_user_gets_a_stable_fake_challenge() {
    let salt = |nonce: &str, key: &[u8]| {
        let ctx = ServerContext::new("h", nonce.into()).with_fake_salt_key(key.to_vec());
        let mut s = Server::new(Mechanism::ScramSha256, ctx);
        assert!(matches!(
            s.start(Some(b"n,,n=ghost,r=abcdef")),
            Step::NeedScramSecret { .. }
        ));
        match s.scram_secret(None) {
            Step::Challenge(c) => {
                let c = String::from_utf8(c).unwrap();
                assert!(c.ends_with(",i=4096"), "{c}");
                c.split(',').nth(1).unwrap().to_string()
            }
            other => panic!("{other:?}"),
        }
    };
    // Same user and key: same salt whatever the nonce, like a real stored salt.
    assert_eq!(salt("nonce1", b"k1"), salt("nonce2", b"k1"));
    // Another server key: another salt, so outsiders cannot predict fake salts.
    assert_ne!(salt("nonce1", b"k1"), salt("nonce1", b"k2"));
}

#[test]
fn every_mechanism_can_be_cancelled() {
    for m in Mechanism::ALL {
        let opts = Opts {
            use_ir: false,
            cancel: true,
            ..DEFAULT
        };
        let out = run(m, creds_for(m, true), ctx(), opts);
        assert_eq!(out, Outcome::Failure(AuthFailure::Cancelled, None), "{m}");
    }
}

#[test]
fn oauth_failure_records_the_error_document() {
    for m in [Mechanism::XOAuth2, Mechanism::OAuthBearer] {
        let mut client = Client::new(m, creds_for(m, false), String::new());
        let mut server = Server::new(m, ctx().with_oauth_scope("https://mail.example.org/"));
        let ir = client.initial_response().unwrap();
        let Step::Verify(v) = server.start(Some(&ir)) else {
            panic!()
        };
        let Step::Challenge(json) = server.credentials_checked(check(&v)) else {
            panic!()
        };
        let dummy = client.step(&json).unwrap();
        let expected: &[u8] = if m == Mechanism::XOAuth2 {
            b""
        } else {
            b"\x01"
        };
        assert_eq!(dummy, expected);
        let doc = client.server_error().unwrap();
        if m == Mechanism::XOAuth2 {
            assert_eq!(
                doc,
                r#"{"status":"401","schemes":"Bearer","scope":"https://mail.example.org/"}"#
            );
        } else {
            assert_eq!(
                doc,
                r#"{"status":"invalid_token","scope":"https://mail.example.org/"}"#
            );
        }
        assert!(matches!(
            server.step(&dummy),
            Step::Failure(AuthFailure::InvalidCredentials)
        ));
    }
}

#[test]
fn temporary_failures_pass_through() {
    for m in [Mechanism::Plain, Mechanism::XOAuth2] {
        let mut client = Client::new(m, creds_for(m, true), String::new());
        let mut server = Server::new(m, ctx());
        let ir = client.initial_response().unwrap();
        let Step::Verify(_) = server.start(Some(&ir)) else {
            panic!()
        };
        match server.credentials_checked(Err(AuthFailure::TemporaryFailure("db down".into()))) {
            Step::Failure(f) => assert!(f.is_temporary()),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn authzid_round_trips() {
    for m in [
        Mechanism::Plain,
        Mechanism::OAuthBearer,
        Mechanism::ScramSha256,
    ] {
        let creds = creds_for(m, true).with_authzid("shared,box=1");
        let out = run(m, creds.clone(), ctx(), DEFAULT);
        assert_eq!(
            out,
            Outcome::Failure(AuthFailure::AuthzidNotAllowed, None),
            "{m}"
        );
        let out = run(m, creds, ctx().with_allow_authzid(true), DEFAULT);
        assert_eq!(
            out,
            Outcome::Success(Identity::with_authzid(USER, "shared,box=1"), Ok(())),
            "{m}"
        );
    }
}

#[test]
fn login_exact_challenges() {
    let mut s = Server::new(Mechanism::Login, ctx());
    assert!(matches!(s.start(None), Step::Challenge(c) if c == b"Username:"));
    assert!(matches!(s.step(b"tim"), Step::Challenge(c) if c == b"Password:"));
    match s.step(b"tanstaaf") {
        Step::Verify(Verification::Password {
            authzid: None,
            username,
            password,
        }) => {
            assert_eq!(username, "tim");
            assert_eq!(password.expose(), "tanstaaf");
        }
        other => panic!("{other:?}"),
    }
    // Username sent as initial response (AUTH LOGIN dGlt), as many SMTP clients do.
    let mut s = Server::new(Mechanism::Login, ctx());
    assert!(matches!(s.start(Some(b"tim")), Step::Challenge(c) if c == b"Password:"));
}

#[test]
fn scram_client_rejects_weak_or_huge_iteration_counts() {
    for (i, ok) in [(4095u32, false), (4096, true), (1_000_001, false)] {
        let mut c = Client::new(Mechanism::ScramSha256, good(), "abc".into());
        let _ = c.initial_response().unwrap();
        let r = c.step(format!("r=abcdef,s=c2FsdA==,i={i}").as_bytes());
        assert_eq!(r.is_ok(), ok, "i={i}");
        if !ok {
            assert_eq!(r, Err(AuthFailure::IterationCountOutOfRange(i)));
        }
    }
}

#[test]
fn scram_client_rejects_bad_server_first() {
    for bad in [
        &b"r=xyzdef,s=c2FsdA==,i=4096"[..], // nonce does not extend ours
        b"r=abc,s=c2FsdA==,i=4096",         // nonce not extended at all
        b"m=ext,r=abcdef,s=c2FsdA==,i=4096",
        b"r=abcdef,s=!!!,i=4096",
        b"r=abcdef,s=,i=4096",
        b"r=abcdef,i=4096",
        b"r=abcdef,s=c2FsdA==,i=-1",
        b"r=abcdef,s=c2FsdA==,i=+4096",
        b"e=other-error",
        b"",
    ] {
        let mut c = Client::new(Mechanism::ScramSha256, good(), "abc".into());
        let _ = c.initial_response().unwrap();
        assert!(c.step(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn scram_client_sees_server_error_and_missing_signature() {
    let mut c = Client::new(Mechanism::ScramSha256, good(), "abc".into());
    let _ = c.initial_response().unwrap();
    let _ = c.step(b"r=abcdef,s=c2FsdA==,i=4096").unwrap();
    assert_eq!(
        c.step(b"e=invalid-proof"),
        Err(AuthFailure::ServerError("invalid-proof".into()))
    );

    let mut c = Client::new(Mechanism::ScramSha256, good(), "abc".into());
    let _ = c.initial_response().unwrap();
    let _ = c.step(b"r=abcdef,s=c2FsdA==,i=4096").unwrap();
    assert_eq!(c.finish(None), Err(AuthFailure::ServerSignatureMismatch));

    // A server claiming success before the exchange even ran cannot fool a SCRAM client.
    let mut c = Client::new(Mechanism::ScramSha256, good(), "abc".into());
    assert_eq!(c.finish(None), Err(AuthFailure::ServerSignatureMismatch));
}

#[test]
fn client_with_empty_scram_nonce_fails_cleanly() {
    let mut c = Client::new(Mechanism::ScramSha256, good(), ",,, ".into());
    assert_eq!(c.initial_response(), None);
    assert!(c.step(b"").is_err());
}

#[test]
fn plain_client_encodes_authzid() {
    let mut c = Client::new(Mechanism::Plain, good().with_authzid("boss"), String::new());
    assert_eq!(
        c.initial_response().unwrap(),
        format!("boss\0{USER}\0{PASSWORD}").as_bytes()
    );
    assert!(c.step(b"unexpected").is_err());
}

#[test]
fn xoauth2_client_format() {
    let mut c = Client::new(Mechanism::XOAuth2, token(), String::new());
    assert_eq!(
        c.initial_response().unwrap(),
        format!("user={USER}\x01auth=Bearer {TOKEN}\x01\x01").as_bytes()
    );
}
