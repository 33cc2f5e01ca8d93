//! Outbound relaying through a smarthost (a second mail-server instance hosting
//! example.net): an authenticated submission to another domain is queued and delivered;
//! a recipient the smarthost refuses, and one that cannot be delivered before
//! `give_up_after` (smarthost down), come back to the sender as a delivery status
//! notification. Arrivals are awaited with IMAP IDLE (no sleeps).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;

use common::{Server, python};

const PY_WHY: &str = "the relay test drives the servers with Python's smtplib and imaplib";

fn instance(
    dir: &Path,
    name: &str,
    domain: &str,
    listeners: &str,
    extra: &str,
) -> std::path::PathBuf {
    let data = dir.join(name);
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\ndomains = [\"{domain}\"]\nhostname = \"{name}.{domain}\"\n\n[listeners]\n{listeners}\n[auth]\nplaintext_networks = [\"127.0.0.0/8\"]\n{extra}\n",
            data.to_str().unwrap()
        ),
    )
    .unwrap();
    config
}

fn add_user(config: &Path, cwd: &Path, address: &str) {
    let out = common::run_bin(Some(config), cwd, &["user", "add", address], b"pw\n");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn submission_relays_through_the_smarthost_and_bounces_failures() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The smarthost: example.net, with bob.
    let b_cfg = instance(
        d,
        "smarthost",
        "example.net",
        "smtp = \"127.0.0.1:0\"\nimap = \"127.0.0.1:0\"\n",
        "",
    );
    add_user(&b_cfg, d, "bob@example.net");
    let b = Server::start(Some(&b_cfg), d);
    // A port where nothing listens (for the "smarthost down" server).
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let a_cfg = instance(
        d,
        "origin",
        "example.test",
        "submission = \"127.0.0.1:0\"\nimap = \"127.0.0.1:0\"\n",
        &format!(
            "[relay]\nsmarthost = \"{}\"\nretry_after = \"1s\"\ngive_up_after = \"1h\"\n",
            b.listeners["smtp"]
        ),
    );
    add_user(&a_cfg, d, "alice@example.test");
    let a = Server::start(Some(&a_cfg), d);
    let c_cfg = instance(
        d,
        "lonely",
        "example.test",
        "submission = \"127.0.0.1:0\"\nimap = \"127.0.0.1:0\"\n",
        &format!(
            "[relay]\nsmarthost = \"127.0.0.1:{dead_port}\"\nretry_after = \"1s\"\ngive_up_after = \"1s\"\n"
        ),
    );
    add_user(&c_cfg, d, "carol@example.test");
    let c = Server::start(Some(&c_cfg), d);

    let script = format!(
        r#"
import imaplib, smtplib, socket
def idler(port, user):
    m = imaplib.IMAP4('127.0.0.1', port)
    m.login(user, 'pw')
    m.select('INBOX')
    m.send(b'I IDLE\r\n')
    assert m.readline().startswith(b'+')
    m.sock.settimeout(30)
    return m
def wait_exists(m, n):
    while True:
        line = m.readline().decode().strip()
        if line.endswith('EXISTS') and int(line.split()[1]) >= n:
            return
def done(m):
    m.send(b'DONE\r\n')
    while not m.readline().startswith(b'I OK'):
        pass
def subjects(m):
    m.select('INBOX')
    typ, d = m.fetch('1:*', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
    return sorted(x[1].decode().strip() for x in d if isinstance(x, tuple))

bob = idler({b_imap}, 'bob@example.net')
alice = idler({a_imap}, 'alice@example.test')
s = smtplib.SMTP('127.0.0.1', {a_sub})
s.login('alice@example.test', 'pw')
s.mail('alice@example.test')
print(s.rcpt('bob@example.net')[0], s.rcpt('nobody@example.net')[0], s.rcpt('alice@example.test')[0])
print(s.data(b'From: alice@example.test\r\nTo: bob@example.net\r\nSubject: over the wire\r\n\r\nhi bob\r\n')[0])
s.quit()
# Without AUTH (port 25 style) nothing is relayed: submission requires AUTH anyway.
wait_exists(bob, 1)
done(bob)
print(subjects(bob))
typ, d = bob.fetch('1', '(BODY.PEEK[HEADER.FIELDS (RECEIVED)])')
print(d[0][1].decode().count('Received:'))
# alice: her local copy, then the bounce for nobody@example.net.
wait_exists(alice, 2)
done(alice)
print(subjects(alice))
typ, d = alice.fetch('2', '(BODY.PEEK[TEXT])')
text = d[0][1].decode()
print('Final-Recipient: rfc822; nobody@example.net' in text, 'Action: failed' in text)

# The smarthost is down and give_up_after is 1s: after a retry the recipient bounces.
carol = idler({c_imap}, 'carol@example.test')
s = smtplib.SMTP('127.0.0.1', {c_sub})
s.login('carol@example.test', 'pw')
print(s.sendmail('carol@example.test', ['dave@example.org'], b'Subject: nowhere\r\n\r\nx\r\n'))
s.quit()
wait_exists(carol, 1)
done(carol)
print(subjects(carol))
typ, d = carol.fetch('1', '(BODY.PEEK[TEXT])')
text = d[0][1].decode()
print('Final-Recipient: rfc822; dave@example.org' in text, 'Connection refused' in text or 'refused' in text.lower())
"#,
        b_imap = b.listeners["imap"].port(),
        a_imap = a.listeners["imap"].port(),
        a_sub = a.listeners["submission"].port(),
        c_imap = c.listeners["imap"].port(),
        c_sub = c.listeners["submission"].port(),
    );
    let out = python(&script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "250 250 250", "{out}");
    assert_eq!(lines[1], "250", "{out}");
    assert_eq!(lines[2], "['Subject: over the wire']", "{out}");
    assert_eq!(
        lines[3], "2",
        "the origin's and the smarthost's Received fields:\n{out}"
    );
    assert_eq!(
        lines[4], "['Subject: Undelivered Mail Returned to Sender', 'Subject: over the wire']",
        "{out}"
    );
    assert_eq!(lines[5], "True True", "{out}");
    assert_eq!(lines[6], "{}", "{out}");
    assert_eq!(
        lines[7], "['Subject: Undelivered Mail Returned to Sender']",
        "{out}"
    );
    assert_eq!(lines[8], "True True", "{out}");
    // The queues are empty afterwards.
    for name in ["origin", "lonely"] {
        let q = d.join(name).join("queue");
        let left: Vec<_> = std::fs::read_dir(&q).unwrap().collect();
        assert!(left.is_empty(), "{} still has {left:?}", q.display());
    }
    drop((a, b, c));
}
