//! Known-answer tests from the RFC examples.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may panic

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use mail_sasl::client::{ClientCredentials, Exchange as Client};
use mail_sasl::server::{
    Exchange as Server, Identity, ServerContext, Step, Verification, cram_md5_verify,
};
use mail_sasl::{AuthFailure, Mechanism, ScramSecret, Secret, apop_digest, apop_verify};

fn ctx(nonce: &str) -> ServerContext {
    ServerContext::new("mx.example.org", nonce.to_string())
}

#[test]
fn rfc4616_first_example_plain_after_empty_challenge() {
    let mut s = Server::new(Mechanism::Plain, ctx("n"));
    match s.start(None) {
        Step::Challenge(c) => assert_eq!(c, b""),
        other => panic!("{other:?}"),
    }
    match s.step(b"\0tim\0tanstaaftanstaaf") {
        Step::Verify(Verification::Password {
            authzid,
            username,
            password,
        }) => {
            assert_eq!(authzid, None);
            assert_eq!(username, "tim");
            assert_eq!(password.expose(), "tanstaaftanstaaf");
        }
        other => panic!("{other:?}"),
    }
    match s.credentials_checked(Ok(Identity::new("tim"))) {
        Step::Success {
            identity,
            server_final,
        } => {
            assert_eq!(identity, Identity::new("tim"));
            assert_eq!(server_final, None);
        }
        other => panic!("{other:?}"),
    }
    assert!(s.is_done());
}

#[test]
fn rfc4616_second_example_authzid_rejected_by_default() {
    let mut s = Server::new(Mechanism::Plain, ctx("n"));
    match s.start(Some(b"Ursel\0Kurt\0xipj3plmq")) {
        Step::Verify(Verification::Password {
            authzid,
            username,
            password,
        }) => {
            assert_eq!(authzid.as_deref(), Some("Ursel"));
            assert_eq!(username, "Kurt");
            assert_eq!(password.expose(), "xipj3plmq");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.requested_authzid(), Some("Ursel"));
    match s.credentials_checked(Ok(Identity::with_authzid("Kurt", "Ursel"))) {
        Step::Failure(f) => assert_eq!(f, AuthFailure::AuthzidNotAllowed),
        other => panic!("{other:?}"),
    }
    // Allowed when the application opts in (and checks the proxy right itself).
    let mut s = Server::new(Mechanism::Plain, ctx("n").with_allow_authzid(true));
    let _ = s.start(Some(b"Ursel\0Kurt\0xipj3plmq"));
    match s.credentials_checked(Ok(Identity::with_authzid("Kurt", "Ursel"))) {
        Step::Success { identity, .. } => {
            assert_eq!(identity.effective_user(), "Ursel");
            assert!(identity.is_proxy());
        }
        other => panic!("{other:?}"),
    }
    // An authzid equal to the username is no proxy and always fine.
    let mut s = Server::new(Mechanism::Plain, ctx("n"));
    let _ = s.start(Some(b"Kurt\0Kurt\0xipj3plmq"));
    assert!(matches!(
        s.credentials_checked(Ok(Identity::with_authzid("Kurt", "Kurt"))),
        Step::Success { .. }
    ));
}

#[test]
fn rfc2195_cram_md5_example() {
    let mut s = Server::new(
        Mechanism::CramMd5,
        ServerContext::new("postoffice.reston.mci.net", "1896.697170952".into()),
    );
    let challenge = match s.start(None) {
        Step::Challenge(c) => c,
        other => panic!("{other:?}"),
    };
    assert_eq!(challenge, b"<1896.697170952@postoffice.reston.mci.net>");
    assert_eq!(
        B64.encode(&challenge),
        "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"
    );

    let mut c = Client::new(
        Mechanism::CramMd5,
        ClientCredentials::new("tim", Secret::new("tanstaaftanstaaf".into())),
        String::new(),
    );
    assert_eq!(c.initial_response(), None);
    let response = c.step(&challenge).unwrap();
    assert_eq!(response, b"tim b913a602c7eda7a495b4e6e7334d3890");
    assert_eq!(
        B64.encode(&response),
        "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
    );

    match s.step(&response) {
        Step::Verify(Verification::CramMd5 {
            username,
            challenge: ch,
            digest_hex,
        }) => {
            assert_eq!(username, "tim");
            assert_eq!(ch, challenge);
            assert_eq!(digest_hex, "b913a602c7eda7a495b4e6e7334d3890");
            assert!(cram_md5_verify(b"tanstaaftanstaaf", &ch, &digest_hex));
            assert!(cram_md5_verify(
                b"tanstaaftanstaaf",
                &ch,
                "B913A602C7EDA7A495B4E6E7334D3890"
            ));
            assert!(!cram_md5_verify(b"tanstaaf", &ch, &digest_hex));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.credentials_checked(Ok(Identity::new("tim"))),
        Step::Success { .. }
    ));
}

const C_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const S_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
const CLIENT_FIRST: &[u8] = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const SERVER_FIRST: &[u8] =
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const CLIENT_FINAL: &[u8] = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SERVER_FINAL: &[u8] = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn rfc7677_secret() -> ScramSecret {
    ScramSecret::derive(b"pencil", &B64.decode(SALT).unwrap(), 4096)
}

#[test]
fn rfc7677_scram_sha256_client() {
    let mut c = Client::new(
        Mechanism::ScramSha256,
        ClientCredentials::new("user", Secret::new("pencil".into())),
        C_NONCE.into(),
    );
    assert_eq!(c.initial_response().unwrap(), CLIENT_FIRST);
    assert_eq!(c.step(SERVER_FIRST).unwrap(), CLIENT_FINAL);
    c.finish(Some(SERVER_FINAL)).unwrap();
}

#[test]
fn rfc7677_scram_sha256_client_final_as_challenge() {
    let mut c = Client::new(
        Mechanism::ScramSha256,
        ClientCredentials::new("user", Secret::new("pencil".into())),
        C_NONCE.into(),
    );
    // No SASL-IR: the server's empty challenge asks for the client-first message.
    assert_eq!(c.step(b"").unwrap(), CLIENT_FIRST);
    assert_eq!(c.step(SERVER_FIRST).unwrap(), CLIENT_FINAL);
    assert_eq!(c.step(SERVER_FINAL).unwrap(), b"");
    c.finish(None).unwrap();
}

#[test]
fn rfc7677_scram_sha256_server() {
    let mut s = Server::new(Mechanism::ScramSha256, ctx(S_NONCE));
    match s.start(Some(CLIENT_FIRST)) {
        Step::NeedScramSecret { username } => assert_eq!(username, "user"),
        other => panic!("{other:?}"),
    }
    match s.scram_secret(Some(rfc7677_secret())) {
        Step::Challenge(c) => assert_eq!(c, SERVER_FIRST),
        other => panic!("{other:?}"),
    }
    match s.step(CLIENT_FINAL) {
        Step::Success {
            identity,
            server_final,
        } => {
            assert_eq!(identity, Identity::new("user"));
            assert_eq!(server_final.as_deref(), Some(SERVER_FINAL));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rfc7677_wrong_password_and_bad_signature() {
    let mut s = Server::new(Mechanism::ScramSha256, ctx(S_NONCE));
    let _ = s.start(Some(CLIENT_FIRST));
    let wrong = ScramSecret::derive(b"pencil2", &B64.decode(SALT).unwrap(), 4096);
    let _ = s.scram_secret(Some(wrong));
    match s.step(CLIENT_FINAL) {
        Step::Failure(f) => assert_eq!(f, AuthFailure::InvalidCredentials),
        other => panic!("{other:?}"),
    }

    let mut c = Client::new(
        Mechanism::ScramSha256,
        ClientCredentials::new("user", Secret::new("pencil".into())),
        C_NONCE.into(),
    );
    let _ = c.initial_response();
    let _ = c.step(SERVER_FIRST).unwrap();
    assert_eq!(
        c.finish(Some(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")),
        Err(AuthFailure::ServerSignatureMismatch)
    );
}

#[test]
fn rfc7628_oauthbearer_success_example() {
    let ir_b64 = "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB";
    let ir = B64.decode(ir_b64).unwrap();
    assert_eq!(
        ir,
        b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
    );
    // Our client produces the same bytes.
    let creds = ClientCredentials::new(
        "user@example.com",
        Secret::new("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==".into()),
    )
    .with_authzid("user@example.com")
    .with_host_port("server.example.com", 143);
    let mut c = Client::new(Mechanism::OAuthBearer, creds, String::new());
    assert_eq!(B64.encode(c.initial_response().unwrap()), ir_b64);

    let mut s = Server::new(Mechanism::OAuthBearer, ctx("n"));
    match s.start(Some(&ir)) {
        Step::Verify(Verification::Bearer {
            authzid,
            username,
            token,
            host,
            port,
        }) => {
            assert_eq!(authzid.as_deref(), Some("user@example.com"));
            assert_eq!(username, None);
            assert_eq!(token.expose(), "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
            assert_eq!(host.as_deref(), Some("server.example.com"));
            assert_eq!(port, Some(143));
        }
        other => panic!("{other:?}"),
    }
    match s.credentials_checked(Ok(Identity::with_authzid(
        "user@example.com",
        "user@example.com",
    ))) {
        Step::Success {
            identity,
            server_final: None,
        } => {
            assert_eq!(identity.username, "user@example.com")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rfc7628_oauthbearer_failure_example() {
    let ir = B64
        .decode(
            "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9AQE=",
        )
        .unwrap();
    assert_eq!(
        ir,
        b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=\x01\x01"
    );
    let ctx = ctx("n")
        .with_oauth_scope("example_scope")
        .with_openid_configuration("https://example.com/.well-known/openid-configuration");
    let mut s = Server::new(Mechanism::OAuthBearer, ctx);
    match s.start(Some(&ir)) {
        Step::Challenge(json) => {
            assert_eq!(
                B64.encode(&json),
                "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwib3BlbmlkLWNvbmZpZ3VyYXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25maWd1cmF0aW9uIn0="
            );
        }
        other => panic!("{other:?}"),
    }
    // The client's dummy response "AQ==" (0x01); the server then fails.
    match s.step(&B64.decode("AQ==").unwrap()) {
        Step::Failure(f) => assert_eq!(f, AuthFailure::InvalidCredentials),
        other => panic!("{other:?}"),
    }
    // The IMAP variant: the client cancels with "*" instead.
    let mut s = Server::new(Mechanism::OAuthBearer, ServerContext::new("h", "n".into()));
    assert!(matches!(s.start(Some(&ir)), Step::Challenge(_)));
    assert!(matches!(s.cancel(), Step::Failure(AuthFailure::Cancelled)));
}

#[test]
fn rfc1939_apop_example() {
    let ts = b"<1896.697170952@dbc.mtview.ca.us>";
    assert_eq!(
        apop_digest(ts, b"tanstaaf"),
        "c4c9334bac560ecc979e58001b3e22fb"
    );
    assert!(apop_verify(
        ts,
        b"tanstaaf",
        b"c4c9334bac560ecc979e58001b3e22fb"
    ));
    assert!(!apop_verify(
        ts,
        b"tanstaaF",
        b"c4c9334bac560ecc979e58001b3e22fb"
    ));
}
