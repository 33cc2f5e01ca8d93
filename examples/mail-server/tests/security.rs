//! Security defaults: no password over an unencrypted connection unless the client's
//! network is in `[auth] plaintext_networks` (IMAP LOGINDISABLED, no AUTH in EHLO before
//! STARTTLS, POP3 `-ERR` to USER before STLS); failed logins counted per address across
//! protocols (lockout); the per-account IMAP connection limit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Env, python};

const PY_WHY: &str =
    "the security tests drive the server with Python's imaplib, poplib and smtplib";

#[test]
fn no_clear_text_passwords_outside_plaintext_networks() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    // An explicit empty list: no network may log in without TLS (the default with a file).
    let env = Env::with_listeners(
        "[auth]\nplaintext_networks = []\n",
        "imap = \"127.0.0.1:0\"\nsubmission = \"127.0.0.1:0\"\n",
    );
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    let server = env.start();
    let script = format!(
        r#"
import imaplib, poplib, smtplib, ssl
ctx = ssl._create_unverified_context()
m = imaplib.IMAP4('127.0.0.1', {imap})
print('LOGINDISABLED' in m.capabilities, 'AUTH=PLAIN' in m.capabilities)
try:
    m.login('alice@example.test', 'alice-pw')
    print('logged in')
except imaplib.IMAP4.error as e:
    print('refused')
m.starttls(ssl_context=ctx)
print('LOGINDISABLED' in m.capabilities, 'AUTH=PLAIN' in m.capabilities)
print(m.login('alice@example.test', 'alice-pw')[0])
m.logout()

s = smtplib.SMTP('127.0.0.1', {sub})
s.ehlo()
print('auth' in s.esmtp_features)
code, _ = s.docmd('AUTH', 'PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZS1wdw==')
print(code)
s.starttls(context=ctx)
s.ehlo()
print('auth' in s.esmtp_features)
print(s.login('alice@example.test', 'alice-pw')[0])
s.quit()

p = poplib.POP3('127.0.0.1', {pop3})
try:
    p.user('alice@example.test')
    print('user accepted')
except poplib.error_proto as e:
    print(e.args[0].decode())
p.stls(context=ctx)
p.user('alice@example.test')
print(p.pass_('alice-pw').decode().split(' ')[0])
p.quit()
"#,
        imap = server.listeners["imap"].port(),
        sub = server.listeners["submission"].port(),
        pop3 = server.pop3().port(),
    );
    let out = python(&script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "True False",
        "LOGINDISABLED, no AUTH=PLAIN before STARTTLS:\n{out}"
    );
    assert_eq!(lines[1], "refused", "{out}");
    assert_eq!(lines[2], "False True", "{out}");
    assert_eq!(lines[3], "OK", "{out}");
    assert_eq!(lines[4], "False", "no AUTH in EHLO before STARTTLS:\n{out}");
    assert_eq!(lines[5], "530", "AUTH before STARTTLS refused:\n{out}");
    assert_eq!(lines[6], "True", "{out}");
    assert_eq!(lines[7], "235", "{out}");
    assert!(
        lines[8].starts_with("-ERR"),
        "USER before STLS refused:\n{out}"
    );
    assert_eq!(lines[9], "+OK", "{out}");
}

#[test]
fn failed_logins_lock_out_the_address_across_protocols() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::with_listeners(
        "[auth]\nplaintext_networks = []\nmax_failures_per_address = 2\nmax_failures_per_account = 50\nlockout = \"10m\"\n",
        "imaps = \"127.0.0.1:0\"\nsubmissions = \"127.0.0.1:0\"\n",
    );
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    env.admin_ok(&["user", "add", "bob@example.test"], b"bob-pw\n");
    let server = env.start();
    let script = format!(
        r#"
import imaplib, poplib, smtplib, ssl
ctx = ssl._create_unverified_context()
m = imaplib.IMAP4_SSL('127.0.0.1', {imaps}, ssl_context=ctx)
for pw in ['guess1', 'guess2', 'bob-pw']:
    try:
        m.login('bob@example.test', pw)
        print('logged in')
    except imaplib.IMAP4.error as e:
        print(e.args[0].decode())
m.logout()
# The same address is locked out on POP3 too, even with the right password.
p = poplib.POP3_SSL('127.0.0.1', {pop3s}, context=ctx)
p.user('alice@example.test')
try:
    p.pass_('alice-pw')
    print('logged in')
except poplib.error_proto as e:
    print(e.args[0].decode())
# And on SMTP submission.
s = smtplib.SMTP_SSL('127.0.0.1', {subs}, context=ctx)
try:
    s.login('alice@example.test', 'alice-pw')
    print('logged in')
except smtplib.SMTPAuthenticationError as e:
    print(e.smtp_code)
"#,
        imaps = server.listeners["imaps"].port(),
        subs = server.listeners["submissions"].port(),
        pop3s = server.pop3s().port(),
    );
    let out = python(&script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "[AUTHENTICATIONFAILED] Invalid credentials",
        "{out}"
    );
    assert_eq!(
        lines[1], "[AUTHENTICATIONFAILED] Invalid credentials",
        "{out}"
    );
    assert_eq!(
        lines[2], "[AUTHENTICATIONFAILED] Too many failed logins; try again later",
        "the right password is not even checked now:\n{out}"
    );
    assert!(lines[3].starts_with("-ERR [AUTH]"), "{out}");
    assert_eq!(lines[4], "535", "{out}");
}

#[test]
fn imap_connections_per_account_are_limited() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::with_listeners(
        "[imap]\nmax_connections_per_account = 2\n",
        "imap = \"127.0.0.1:0\"\n",
    );
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    env.admin_ok(&["user", "add", "bob@example.test"], b"bob-pw\n");
    let server = env.start();
    let script = format!(
        r#"
import imaplib
def login(user, pw):
    m = imaplib.IMAP4('127.0.0.1', {imap})
    try:
        m.login(user, pw)
        print('OK')
        return m
    except imaplib.IMAP4.error as e:
        print(e.args[0].decode())
a1 = login('alice@example.test', 'alice-pw')
a2 = login('alice@example.test', 'alice-pw')
a3 = login('alice@example.test', 'alice-pw')
b1 = login('bob@example.test', 'bob-pw')
# LOGOUT, then wait for the server to close its side (EOF): the place is freed when the
# server's session ends. A login racing with that teardown is retried (bounded).
a1.send(b'L1 LOGOUT\r\n')
while a1.sock.recv(4096):
    pass
for attempt in range(50):
    m = imaplib.IMAP4('127.0.0.1', {imap})
    try:
        m.login('alice@example.test', 'alice-pw')
        print('OK')
        break
    except imaplib.IMAP4.error as e:
        m.shutdown()
else:
    print('still refused')
"#,
        imap = server.listeners["imap"].port(),
    );
    let out = python(&script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "OK", "{out}");
    assert_eq!(lines[1], "OK", "{out}");
    assert!(
        lines[2].starts_with(
            "[LIMIT] Too many simultaneous IMAP connections for this account (limit 2)"
        ),
        "{out}"
    );
    assert_eq!(lines[3], "OK", "another account is not affected:\n{out}");
    assert_eq!(
        lines[4], "OK",
        "a closed connection frees its place:\n{out}"
    );
}
