//! Property tests: arbitrary input never panics a server; encode/parse round trips.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may panic

use mail_sasl::client::{ClientCredentials, Exchange as Client};
use mail_sasl::server::{Exchange as Server, Identity, ServerContext, Step, Verification};
use mail_sasl::{Mechanism, ScramSecret, Secret};
use proptest::prelude::*;

fn mechanism() -> impl Strategy<Value = Mechanism> {
    prop::sample::select(Mechanism::ALL.to_vec())
}

fn ctx() -> ServerContext {
    ServerContext::new("mx.example.org", "srvnonce".into())
}

/// Feeds `inputs` to a server exchange, answering every application request, and returns
/// whether it ended. Must never panic.
fn drive(m: Mechanism, ir: Option<Vec<u8>>, inputs: Vec<Vec<u8>>, accept: bool) {
    let mut s = Server::new(m, ctx());
    let mut step = s.start(ir.as_deref());
    let mut inputs = inputs.into_iter();
    for _ in 0..16 {
        step = match step {
            Step::Challenge(_) => match inputs.next() {
                Some(i) => s.step(&i),
                None => return,
            },
            Step::Verify(_) => s.credentials_checked(if accept {
                Ok(Identity::new("u"))
            } else {
                Err(mail_sasl::AuthFailure::InvalidCredentials)
            }),
            Step::NeedScramSecret { .. } => {
                s.scram_secret(accept.then(|| ScramSecret::derive(b"p", b"salt", 1)))
            }
            _ => return,
        };
    }
}

/// Inputs shaped like the mechanisms' messages, mutated, to get past the first checks.
fn near_valid() -> impl Strategy<Value = Vec<u8>> {
    let seeds = prop::sample::select(vec![
        b"\0tim\0pass".to_vec(),
        b"n,,n=user,r=abc".to_vec(),
        b"c=biws,r=abcsrvnonce,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=".to_vec(),
        b"n,a=x,\x01host=h\x01port=1\x01auth=Bearer t\x01\x01".to_vec(),
        b"user=a\x01auth=Bearer t\x01\x01".to_vec(),
        b"tim b913a602c7eda7a495b4e6e7334d3890".to_vec(),
    ]);
    (
        seeds,
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
    )
        .prop_map(|(mut s, muts)| {
            for (pos, byte) in muts {
                if !s.is_empty() {
                    let len = s.len();
                    if let Some(b) = s.get_mut(pos % len) {
                        *b = byte;
                    }
                }
            }
            s
        })
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..200), near_valid()]
}

proptest! {
    #[test]
    fn servers_never_panic(
        m in mechanism(),
        ir in prop::option::of(input()),
        inputs in prop::collection::vec(input(), 0..4),
        accept in any::<bool>(),
    ) {
        drive(m, ir, inputs, accept);
    }

    #[test]
    fn clients_never_panic(m in mechanism(), challenges in prop::collection::vec(input(), 0..4)) {
        let creds = ClientCredentials::new("u", Secret::new("p".into()));
        let mut c = Client::new(m, creds, "abc".into()).with_scram_iteration_limits(1, 8);
        let _ = c.initial_response();
        for ch in &challenges {
            let _ = c.step(ch);
        }
        let _ = c.finish(challenges.first().map(Vec::as_slice));
    }

    #[test]
    fn scram_secret_string_round_trips(
        password in prop::collection::vec(any::<u8>(), 0..32),
        salt in prop::collection::vec(any::<u8>(), 0..32),
        iterations in 1u32..64,
    ) {
        let s = ScramSecret::derive(&password, &salt, iterations);
        prop_assert_eq!(s.to_string().parse::<ScramSecret>(), Ok(s));
    }

    /// Client encoding parsed by the server gives back the same user, authzid and secret.
    #[test]
    fn plain_encode_parse_round_trips(
        user in "[^\\x00-\\x1f\\x7f-\\u{9f}]{1,20}",
        authzid in prop::option::of("[^\\x00-\\x1f\\x7f-\\u{9f}]{1,20}"),
        password in "[^\\x00]{1,20}",
    ) {
        let mut creds = ClientCredentials::new(user.clone(), Secret::new(password.clone()));
        if let Some(a) = &authzid {
            creds = creds.with_authzid(a.clone());
        }
        let ir = Client::new(Mechanism::Plain, creds, String::new()).initial_response().unwrap();
        match Server::new(Mechanism::Plain, ctx()).start(Some(&ir)) {
            Step::Verify(Verification::Password { authzid: a, username, password: p }) => {
                prop_assert_eq!(a, authzid);
                prop_assert_eq!(username, user);
                prop_assert_eq!(p.expose(), &password);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// SCRAM user names with ',' and '=' survive the saslname escaping, and any password
    /// authenticates end to end.
    #[test]
    fn scram_names_round_trip(
        user in "[^\\x00-\\x1f\\x7f-\\u{9f}]{1,16}",
        authzid in prop::option::of("[^\\x00-\\x1f\\x7f-\\u{9f}]{1,16}"),
        password in ".{0,16}",
    ) {
        let mut creds = ClientCredentials::new(user.clone(), Secret::new(password.clone()));
        if let Some(a) = &authzid {
            creds = creds.with_authzid(a.clone());
        }
        let mut c = Client::new(Mechanism::ScramSha256, creds, "cnonce".into())
            .with_scram_iteration_limits(1, 1);
        let mut s = Server::new(Mechanism::ScramSha256, ctx().with_allow_authzid(true));
        let first = c.initial_response().unwrap();
        match s.start(Some(&first)) {
            Step::NeedScramSecret { username } => prop_assert_eq!(&username, &user),
            other => prop_assert!(false, "{:?}", other),
        }
        prop_assert_eq!(s.requested_authzid(), authzid.as_deref());
        let secret = ScramSecret::derive(password.as_bytes(), b"salt", 1);
        let Step::Challenge(server_first) = s.scram_secret(Some(secret)) else {
            return Err(TestCaseError::fail("no server-first"));
        };
        let fin = c.step(&server_first).unwrap();
        match s.step(&fin) {
            Step::Success { identity, server_final } => {
                prop_assert_eq!(identity, Identity { authzid, username: user });
                prop_assert_eq!(c.finish(server_final.as_deref()), Ok(()));
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// OAUTHBEARER client encoding parsed by the server.
    #[test]
    fn oauthbearer_encode_parse_round_trips(
        authzid in prop::option::of("[a-z@.,=]{1,12}"),
        host in prop::option::of("[a-z.]{1,12}"),
        port in any::<u16>(),
        token in "[A-Za-z0-9._~+/=-]{1,40}",
    ) {
        let mut creds = ClientCredentials::new("ignored", Secret::new(token.clone()));
        if let Some(a) = &authzid {
            creds = creds.with_authzid(a.clone());
        }
        if let Some(h) = &host {
            creds = creds.with_host_port(h.clone(), port);
        }
        let ir = Client::new(Mechanism::OAuthBearer, creds, String::new()).initial_response().unwrap();
        match Server::new(Mechanism::OAuthBearer, ctx()).start(Some(&ir)) {
            Step::Verify(Verification::Bearer { authzid: a, username, token: t, host: h, port: p }) => {
                prop_assert_eq!(a, authzid);
                prop_assert_eq!(username, None);
                prop_assert_eq!(t.expose(), &token);
                prop_assert_eq!(p, host.as_ref().map(|_| port));
                prop_assert_eq!(h, host);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
