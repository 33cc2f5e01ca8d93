//! The skip-or-require rule, observed from outside: this test binary runs itself with and
//! without `MAIL_INTEROP_REQUIRED=1` and checks what a test asking for a missing program
//! prints and whether it fails.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use mail_testkit::{peer, process};

const PROBE_VAR: &str = "MAIL_TESTKIT_PROBE";

/// Does something only when run as the child of the test below.
#[test]
fn probe_missing_program() {
    if std::env::var_os(PROBE_VAR).is_none() {
        return;
    }
    let found = peer::require("no-such-program-mail-testkit", "the probe");
    println!("returned {found}");
}

fn probe(required: Option<&str>) -> process::Ran {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "probe_missing_program", "--nocapture"])
        .env(PROBE_VAR, "1")
        .env_remove(peer::REQUIRED_VAR);
    if let Some(v) = required {
        c.env(peer::REQUIRED_VAR, v);
    }
    process::run(&mut c)
}

#[test]
fn missing_peer_skips_unless_required() {
    for required in [None, Some("0"), Some("yes")] {
        let r = probe(required);
        assert!(r.ok, "{required:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains(
                "skipping: no-such-program-mail-testkit is not installed (the probe)\nreturned false\n"
            ),
            "{required:?}: {}",
            r.stdout
        );
    }
    let r = probe(Some("1"));
    assert!(!r.ok, "{}", r.stdout);
    assert!(!r.stdout.contains("returned"), "{}", r.stdout);
    assert!(
        r.stderr.contains(
            "MAIL_INTEROP_REQUIRED=1 but: no-such-program-mail-testkit is not installed (the probe)"
        ),
        "{}",
        r.stderr
    );
}
