//! Malformed client input ends the exchange with a `Failure`, never a panic.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may panic

use mail_sasl::server::{Exchange as Server, ServerContext, Step};
use mail_sasl::{AuthFailure, Mechanism, ScramSecret};

fn ctx() -> ServerContext {
    ServerContext::new("mx.example.org", "srvnonce".into())
}

fn start(m: Mechanism, ir: &[u8]) -> Step {
    Server::new(m, ctx()).start(Some(ir))
}

fn assert_malformed(step: Step, what: &str) {
    match step {
        Step::Failure(AuthFailure::Malformed(_)) => {}
        other => panic!("{what}: expected Malformed, got {other:?}"),
    }
}

#[test]
fn plain_malformed() {
    for bad in [
        &b""[..],
        b"tim",
        b"\0tim",
        b"\0tim\0",         // empty password
        b"\0\0pass",        // empty authcid
        b"\0tim\0pa\0ss",   // third NUL
        b"\0t\xffm\0pass",  // bad UTF-8 user
        b"\0tim\0p\xc3",    // bad UTF-8 password
        b"\xfe\0tim\0pass", // bad UTF-8 authzid
        b"\0ti\nm\0pass",   // control character in user
    ] {
        assert_malformed(start(Mechanism::Plain, bad), &format!("{bad:?}"));
    }
}

#[test]
fn login_malformed() {
    let mut s = Server::new(Mechanism::Login, ctx());
    let _ = s.start(None);
    assert_malformed(s.step(b"t\xffm"), "bad utf-8 user");
    let mut s = Server::new(Mechanism::Login, ctx());
    let _ = s.start(None);
    let _ = s.step(b"tim");
    assert_malformed(s.step(b""), "empty password");
}

#[test]
fn cram_md5_malformed() {
    assert_malformed(start(Mechanism::CramMd5, b"tim"), "initial response");
    for bad in [
        &b""[..],
        b"tim",
        b"tim b913a602c7eda7a495b4e6e7334d389",   // 31 digits
        b"tim b913a602c7eda7a495b4e6e7334d38900", // 33 digits
        b"tim g913a602c7eda7a495b4e6e7334d3890",  // not hex
        b" b913a602c7eda7a495b4e6e7334d3890",     // empty user
    ] {
        let mut s = Server::new(Mechanism::CramMd5, ctx());
        let _ = s.start(None);
        assert_malformed(s.step(bad), &format!("{bad:?}"));
    }
}

#[test]
fn xoauth2_malformed() {
    for bad in [
        &b""[..],
        b"user=a\x01auth=Bearer t\x01",       // one ^A at the end
        b"auth=Bearer t\x01\x01",             // no user
        b"user=a\x01auth=Basic dDp0\x01\x01", // not Bearer
        b"user=a\x01auth=Bearer \x01\x01",    // empty token
        b"user=a\x01\x01",                    // no auth
        b"user=\xff\x01auth=Bearer t\x01\x01",
        b"user=a\x01auth=Bearer t\tk\x01\x01", // control character in the token
    ] {
        assert_malformed(start(Mechanism::XOAuth2, bad), &format!("{bad:?}"));
    }
}

#[test]
fn oauthbearer_malformed() {
    for bad in [
        &b"\x01"[..],
        b"",
        b"n,,auth=Bearer t\x01\x01",        // no ^A after gs2 header
        b"n,,\x01auth=Bearer t\x01",        // no final ^A
        b"n,,\x01auth=Bearer t",            // unterminated pair
        b"x,,\x01auth=Bearer t\x01\x01",    // bad cbind flag
        b"n,b=u,\x01auth=Bearer t\x01\x01", // authzid without a=
        b"n,,\x01au-th=x\x01auth=Bearer t\x01\x01", // key not ALPHA
        b"n,,\x01noequals\x01auth=Bearer t\x01\x01",
        b"n,,\x01port=http\x01auth=Bearer t\x01\x01",
        b"n,,\x01host=a\x00b\x01auth=Bearer t\x01\x01",
        b"n,,\x01auth=Basic dDp0\x01\x01",
    ] {
        assert_malformed(start(Mechanism::OAuthBearer, bad), &format!("{bad:?}"));
    }
    assert!(matches!(
        start(
            Mechanism::OAuthBearer,
            b"p=tls-unique,,\x01auth=Bearer t\x01\x01"
        ),
        Step::Failure(AuthFailure::ChannelBindingUnsupported)
    ));
}

#[test]
fn scram_client_first_malformed() {
    for bad in [
        &b""[..],
        b"n,,",
        b"x,,n=user,r=abc",
        b"n,n=user,r=abc",
        b"n,b=x,n=user,r=abc",
        b"n,a=bo=ss,n=user,r=abc", // bad escape in authzid
        b"n,,n=us=2er,r=abc",      // bad escape in username
        b"n,,n=us\x01er,r=abc",    // control character
        b"n,,n=\xffuser,r=abc",    // bad UTF-8
        b"n,,n=,r=abc",            // empty username
        b"n,,r=abc,n=user",        // wrong order
        b"n,,n=user",              // no nonce
        b"n,,n=user,r=",           // empty nonce
        b"n,,n=user,r=a\x7fb",     // non-printable nonce
        b"n,,m=ext,n=user,r=abc",  // mandatory extension
        b"n,,n=user,,r=abc",       // empty attribute
    ] {
        assert_malformed(
            start(Mechanism::ScramSha256, bad),
            &String::from_utf8_lossy(bad),
        );
    }
    assert!(matches!(
        start(
            Mechanism::ScramSha256,
            b"p=tls-server-end-point,,n=user,r=abc"
        ),
        Step::Failure(AuthFailure::ChannelBindingUnsupported)
    ));
    // "y" (client could bind but thinks the server cannot) is accepted.
    assert!(matches!(
        start(Mechanism::ScramSha256, b"y,,n=user,r=abc"),
        Step::NeedScramSecret { .. }
    ));
}

fn scram_at_final(client_first: &[u8]) -> Server {
    let mut s = Server::new(Mechanism::ScramSha256, ctx());
    assert!(matches!(
        s.start(Some(client_first)),
        Step::NeedScramSecret { .. }
    ));
    let secret = ScramSecret::derive(b"pencil", b"salt", 4096);
    assert!(
        matches!(s.scram_secret(Some(secret)), Step::Challenge(c) if c == b"r=abcsrvnonce,s=c2FsdA==,i=4096")
    );
    s
}

#[test]
fn scram_client_final_malformed() {
    let proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    for bad in [
        String::new(),
        "c=biws,r=abcsrvnonce".to_string(),          // no proof
        format!("c=biws,r=abcWRONG,{proof}"),        // wrong nonce
        format!("c=biws,r=abc,{proof}"),             // client nonce only
        format!("c=eSws,r=abcsrvnonce,{proof}"),     // "y,," but we got "n,,"
        format!("c=!!!!,r=abcsrvnonce,{proof}"),     // c not base64
        format!("r=abcsrvnonce,c=biws,{proof}"),     // order
        "c=biws,r=abcsrvnonce,p=AAAA".to_string(),   // short proof
        "c=biws,r=abcsrvnonce,p=@@@".to_string(),    // proof not base64
        format!("c=biws,r=abcsrvnonce,{proof},x=1"), // proof not last
    ] {
        let mut s = scram_at_final(b"n,,n=user,r=abc");
        assert_malformed(s.step(bad.as_bytes()), &bad);
    }
    // Well-formed but wrong proof.
    let mut s = scram_at_final(b"n,,n=user,r=abc");
    assert!(matches!(
        s.step(format!("c=biws,r=abcsrvnonce,{proof}").as_bytes()),
        Step::Failure(AuthFailure::InvalidCredentials)
    ));
}

#[test]
fn response_length_limit() {
    let long = vec![b'a'; 100];
    let mut s = Server::new(Mechanism::Plain, ctx().with_max_response_len(99));
    assert_malformed(s.start(Some(&long)), "long initial response");
    let mut s = Server::new(Mechanism::Login, ctx().with_max_response_len(99));
    let _ = s.start(None);
    assert_malformed(s.step(&long), "long response");
}

#[test]
fn out_of_order_calls_fail_without_panicking() {
    let mut s = Server::new(Mechanism::Plain, ctx());
    assert!(matches!(
        s.step(b"x"),
        Step::Failure(AuthFailure::OutOfOrder(_))
    ));
    let mut s = Server::new(Mechanism::Plain, ctx());
    assert!(matches!(
        s.scram_secret(None),
        Step::Failure(AuthFailure::OutOfOrder(_))
    ));
    let mut s = Server::new(Mechanism::Plain, ctx());
    assert!(matches!(
        s.credentials_checked(Err(AuthFailure::InvalidCredentials)),
        Step::Failure(AuthFailure::OutOfOrder(_))
    ));
    let mut s = Server::new(Mechanism::Plain, ctx());
    assert!(matches!(s.start(Some(b"\0u\0p")), Step::Verify(_)));
    assert!(matches!(
        s.step(b"x"),
        Step::Failure(AuthFailure::OutOfOrder(_))
    ));
    assert!(matches!(
        s.start(None),
        Step::Failure(AuthFailure::OutOfOrder(_))
    ));
    assert!(s.is_done());
}

#[test]
fn empty_server_nonce_is_a_temporary_failure() {
    let mut s = Server::new(Mechanism::ScramSha256, ServerContext::new("h", " ,".into()));
    let _ = s.start(Some(b"n,,n=user,r=abc"));
    assert!(matches!(
        s.scram_secret(None),
        Step::Failure(AuthFailure::TemporaryFailure(_))
    ));
}
