//! Cross-checks against independent implementations: Dovecot's `doveadm pw` (SCRAM secrets)
//! and Python's hashlib/hmac (CRAM-MD5, APOP, SCRAM proof).
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // test helpers may panic

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use mail_sasl::client::{ClientCredentials, Exchange as Client};
use mail_sasl::{Mechanism, ScramSecret, Secret, apop_digest};
use mail_testkit::{peer, process};

/// Dovecot stores `{SCRAM-SHA-256}iterations,salt,StoredKey,ServerKey`; our derivation from
/// the same password and salt must give the same keys, so Dovecot user databases can be
/// imported.
#[test]
fn scram_secret_matches_doveadm_pw() {
    if !peer::require("doveadm", "SCRAM secrets from doveadm pw") {
        return;
    }
    for password in ["pencil", "correct horse battery staple", "pässwörd"] {
        let out = process::stdout("doveadm", &["pw", "-s", "SCRAM-SHA-256", "-p", password]);
        let fields: Vec<&str> = out
            .trim()
            .strip_prefix("{SCRAM-SHA-256}")
            .unwrap()
            .split(',')
            .collect();
        let [iter, salt, stored, server] = fields[..] else {
            panic!("unexpected {out}")
        };
        let ours = ScramSecret::derive(
            password.as_bytes(),
            &B64.decode(salt).unwrap(),
            iter.parse().unwrap(),
        );
        assert_eq!(
            B64.encode(ours.stored_key),
            stored,
            "StoredKey for {password}"
        );
        assert_eq!(
            B64.encode(ours.server_key),
            server,
            "ServerKey for {password}"
        );
        assert_eq!(ScramSecret::from_dovecot(&out).unwrap(), ours);
        assert_eq!(ours.to_dovecot(), out.trim());
    }
}

const PY: &str = r#"
import hashlib, hmac, base64, sys
which = sys.argv[1]
if which == "cram":
    print(hmac.new(b"tanstaaftanstaaf", b"<42.17@mx.example.org>", hashlib.md5).hexdigest())
elif which == "apop":
    print(hashlib.md5(b"<7.1@pop.example.org>" + b"s3cret").hexdigest())
elif which == "scram":
    cnonce, snonce = "clientNONCE123", "serverNONCE456"
    salt, it = b"NaCl-salt-bytes", 4096
    bare = "n=al=3Dice=2C,r=" + cnonce
    sfirst = "r=%s%s,s=%s,i=%d" % (cnonce, snonce, base64.b64encode(salt).decode(), it)
    wo = "c=biws,r=" + cnonce + snonce
    am = (bare + "," + sfirst + "," + wo).encode()
    sp = hashlib.pbkdf2_hmac("sha256", b"pw,=x", salt, it)
    ck = hmac.new(sp, b"Client Key", hashlib.sha256).digest()
    sk = hmac.new(sp, b"Server Key", hashlib.sha256).digest()
    cs = hmac.new(hashlib.sha256(ck).digest(), am, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(ck, cs))
    print(sfirst)
    print(wo + ",p=" + base64.b64encode(proof).decode())
    print("v=" + base64.b64encode(hmac.new(sk, am, hashlib.sha256).digest()).decode())
"#;

fn python(which: &str) -> Option<Vec<String>> {
    if !peer::require("python3", "CRAM-MD5, APOP and SCRAM from hashlib/hmac") {
        return None;
    }
    Some(
        process::stdout("python3", &["-c", PY, which])
            .lines()
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn cram_md5_matches_python_hmac() {
    let Some(lines) = python("cram") else { return };
    let mut c = Client::new(
        Mechanism::CramMd5,
        ClientCredentials::new("tim", Secret::new("tanstaaftanstaaf".into())),
        String::new(),
    );
    let r = c.step(b"<42.17@mx.example.org>").unwrap();
    assert_eq!(String::from_utf8(r).unwrap(), format!("tim {}", lines[0]));
}

#[test]
fn apop_matches_python_md5() {
    let Some(lines) = python("apop") else { return };
    assert_eq!(apop_digest(b"<7.1@pop.example.org>", b"s3cret"), lines[0]);
}

#[test]
fn scram_client_matches_python_reference() {
    let Some(lines) = python("scram") else { return };
    let mut c = Client::new(
        Mechanism::ScramSha256,
        ClientCredentials::new("al=ice,", Secret::new("pw,=x".into())),
        "clientNONCE123".into(),
    );
    assert_eq!(
        c.initial_response().unwrap(),
        b"n,,n=al=3Dice=2C,r=clientNONCE123"
    );
    let fin = c.step(lines[0].as_bytes()).unwrap();
    assert_eq!(String::from_utf8(fin).unwrap(), lines[1]);
    c.finish(Some(lines[2].as_bytes())).unwrap();
}
