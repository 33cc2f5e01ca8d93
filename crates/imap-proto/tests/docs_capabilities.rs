//! docs/imap.md lists the capabilities the server advertises by default; keep them equal.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use imap_proto::server::{Config, Event, Status};

fn documented(marker: &str) -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/imap.md"))
        .unwrap();
    let after = doc
        .split(marker)
        .nth(1)
        .unwrap_or_else(|| panic!("marker {marker} missing in docs/imap.md"));
    let line = after.lines().find(|l| l.starts_with('`')).unwrap();
    line.trim_matches('`').to_string()
}

#[test]
fn documented_capabilities_match_the_defaults() {
    let mut s = common::Srv::new(Config::default());
    let greeting = s.out();
    let pre = s.conn.capabilities().join(" ");
    assert_eq!(documented("<!-- capabilities:pre-auth -->"), pre);
    assert!(greeting.contains(&format!("[CAPABILITY {pre}]")));

    // Log in (LOGINDISABLED is a pre-TLS default; lift it for the test) and compare again.
    let mut config = Config::default();
    config.login_disabled_without_tls = false;
    let mut s = common::Srv::new(config);
    s.out();
    s.feed("a LOGIN u p\r\n");
    assert!(matches!(s.event(), Some(Event::Login { .. })));
    s.conn.reply(Status::ok("ok")).unwrap();
    let out = s.out();
    let post = s.conn.capabilities().join(" ");
    assert_eq!(documented("<!-- capabilities:post-auth -->"), post);
    assert_eq!(out, format!("a OK [CAPABILITY {post}] ok\r\n"));
}
