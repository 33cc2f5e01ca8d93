//! End to end across the three protocols on one store: a message submitted over SMTP is
//! announced to an IDLE-ing IMAP client (latency measured against the SMTP `250`) and
//! then retrieved over POP3; an IMAP expunge disappears from POP3's listing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Env, python};

const PY_WHY: &str =
    "the end-to-end test drives the server with Python's smtplib, imaplib and poplib";

/// The IDLE notification must arrive within this long after the SMTP server acknowledged
/// the message (100 ms, plus slack for a loaded 2-core CI machine).
const IDLE_LATENCY_LIMIT_MS: f64 = 100.0 + 150.0;

#[test]
fn smtp_submission_reaches_idle_then_pop3() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::with_listeners(
        "",
        "imaps = \"127.0.0.1:0\"\nsubmissions = \"127.0.0.1:0\"\n",
    );
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    env.admin_ok(&["user", "add", "bob@example.test"], b"bob-pw\n");
    env.admin_ok(&["deliver", "bob@example.test"], &common::message("old"));
    let server = env.start();
    let script = format!(
        r#"
import imaplib, poplib, smtplib, ssl, threading, time
ctx = ssl._create_unverified_context()
m = imaplib.IMAP4_SSL('127.0.0.1', {imaps}, ssl_context=ctx)
m.login('bob@example.test', 'bob-pw')
print(m.select('INBOX')[1][0].decode())
m.send(b'I1 IDLE\r\n')
print(m.readline().decode().strip())
seen = {{}}
def reader():
    line = m.readline()
    seen['t'] = time.monotonic()
    seen['line'] = line.decode().strip()
t = threading.Thread(target=reader)
t.start()

s = smtplib.SMTP_SSL('127.0.0.1', {subs}, context=ctx)
s.login('alice@example.test', 'alice-pw')
s.mail('alice@example.test')
s.rcpt('bob@example.test')
code, _ = s.data(b'From: alice@example.test\r\nTo: bob@example.test\r\nSubject: lunch?\r\n\r\nat noon\r\n')
acked = time.monotonic()
print(code)
t.join(10)
print(seen.get('line'))
latency_ms = max(0.0, (seen['t'] - acked) * 1000.0) if 't' in seen else 1e9
print('latency_ms %.1f' % latency_ms)
s.quit()
m.send(b'DONE\r\n')
print(m.readline().decode().strip())
print(m.readline().decode().strip())

# POP3 retrieves the message the SMTP session delivered.
p = poplib.POP3_SSL('127.0.0.1', {pop3s}, context=ctx)
p.user('bob@example.test'); p.pass_('bob-pw')
print(p.stat()[0])
lines = p.retr(2)[1]
print([l.decode() for l in lines if l.startswith(b'Subject:')])
p.quit()

# IMAP deletes the old message; POP3's next session no longer lists it.
m.store('1', '+FLAGS', '(\\Deleted)')
print(m.expunge()[1])
p = poplib.POP3_SSL('127.0.0.1', {pop3s}, context=ctx)
p.user('bob@example.test'); p.pass_('bob-pw')
print(p.stat()[0], [l.decode() for l in p.retr(1)[1] if l.startswith(b'Subject:')])
p.quit()
m.logout()
"#,
        imaps = server.listeners["imaps"].port(),
        subs = server.listeners["submissions"].port(),
        pop3s = server.pop3s().port(),
    );
    let out = python(&script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "{out}");
    assert_eq!(lines[1], "+ idling", "{out}");
    assert_eq!(lines[2], "250", "{out}");
    assert_eq!(lines[3], "* 2 EXISTS", "{out}");
    let latency: f64 = lines[4]
        .strip_prefix("latency_ms ")
        .unwrap()
        .parse()
        .unwrap();
    eprintln!("IDLE notification {latency:.1} ms after the SMTP 250");
    assert!(
        latency < IDLE_LATENCY_LIMIT_MS,
        "EXISTS came {latency} ms after the 250:\n{out}"
    );
    // IMAP4rev1: the session that was told about the message first takes it as \Recent
    // (the SELECT before it took the old one).
    assert_eq!(lines[5], "* 2 RECENT", "{out}");
    assert_eq!(lines[6], "I1 OK IDLE terminated", "{out}");
    assert_eq!(lines[7], "2", "{out}");
    assert_eq!(lines[8], "['Subject: lunch?']", "{out}");
    assert_eq!(lines[9], "[b'1']", "{out}");
    assert_eq!(lines[10], "1 ['Subject: lunch?']", "{out}");
}
