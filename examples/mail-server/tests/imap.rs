//! IMAP over the store, driven by Python's imaplib: STARTTLS and implicit TLS, LIST with
//! special-use, SELECT, FETCH (ENVELOPE, BODYSTRUCTURE, sections, partial), \Seen on
//! non-PEEK fetches, SEARCH, STORE, COPY, APPEND, EXPUNGE; another connection's changes
//! (a CLI delivery, a POP3 deletion) reach a session in IDLE / at NOOP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{BIN, Env, python};

const PY_WHY: &str = "the IMAP tests drive the server with Python's imaplib";

#[test]
fn imaplib_session_and_cross_connection_updates() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::with_listeners("", "imap = \"127.0.0.1:0\"\nimaps = \"127.0.0.1:0\"\n");
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    env.admin_ok(&["user", "add", "bob@example.test"], b"bob-pw\n");
    let multi = b"From: Carol <carol@example.org>\r\nTo: alice@example.test\r\nSubject: report\r\n\
Message-ID: <r1@test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n--b\r\n\
Content-Type: application/pdf; name=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n";
    env.admin_ok(
        &["deliver", "alice@example.test"],
        &common::message("first"),
    );
    env.admin_ok(&["deliver", "alice@example.test"], multi);
    let server = env.start();
    let script = format!(
        r#"
import imaplib, ssl, subprocess, poplib
ctx = ssl._create_unverified_context()
m = imaplib.IMAP4('127.0.0.1', {imap})
print('STARTTLS' in m.capabilities, 'LOGINDISABLED' in m.capabilities)
m.starttls(ssl_context=ctx)
try:
    m.login('alice@example.test', 'nope')
except imaplib.IMAP4.error as e:
    print('login failed', e.args[0].decode())
m.login('alice@example.test', 'alice-pw')
typ, lst = m.list()
print(sorted(l.decode() for l in lst))
typ, d = m.select('INBOX')
print(typ, d)
typ, d = m.fetch('2', '(ENVELOPE BODYSTRUCTURE)')
print(d[0].decode())
typ, d = m.fetch('2', '(BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
print(d)
typ, d = m.fetch('1', '(FLAGS)')
print(d)
typ, d = m.fetch('1', '(BODY[]<0.10>)')
print(d)
print(m.search(None, 'SEEN'), m.search(None, 'UNSEEN'), m.search(None, 'SUBJECT', 'REPORT'), m.uid('SEARCH', 'ALL'))
print(m.store('2', '+FLAGS', '(\\Flagged)')[0])
print(m.copy('2', 'Archive'))
print(m.status('Archive', '(MESSAGES UNSEEN)'))
print(m.append('Sent', '(\\Seen)', None, b'Subject: sent\r\n\r\nbye\r\n'))
print(m.create('Lists/rust'), [l.decode() for l in m.list()[1] if b'Lists' in l])

# IDLE: a delivery through the CLI (the admin socket) shows up as EXISTS.
tag = b'I1'
m.send(tag + b' IDLE\r\n')
print(m.readline().decode().strip())
out = subprocess.run([{bin:?}, '--config', {config:?}, 'deliver', 'alice@example.test'], input=b'Subject: third\r\n\r\nx\r\n', capture_output=True)
print(out.returncode)
print(m.readline().decode().strip())
print(m.readline().decode().strip())
m.send(b'DONE\r\n')
print(m.readline().decode().strip())

# A POP3 session deletes message 1; the IMAP session learns it at NOOP.
p = poplib.POP3('127.0.0.1', {pop3})
p.user('alice@example.test'); p.pass_('alice-pw'); p.dele(1); p.quit()
print(m.noop())
print(m.fetch('1:*', '(UID)'))
m.store('1', '+FLAGS', '(\\Deleted)')
print(m.expunge())
m.logout()

m = imaplib.IMAP4_SSL('127.0.0.1', {imaps}, ssl_context=ctx)
m.login('bob@example.test', 'bob-pw')
print(m.select('INBOX', readonly=True))
m.logout()
"#,
        imap = server.listeners["imap"].port(),
        imaps = server.listeners["imaps"].port(),
        pop3 = server.pop3().port(),
        bin = BIN,
        config = env.config.to_str().unwrap(),
    );
    let out = python(&script);
    let lines: Vec<&str> = out.lines().collect();
    let expect = |i: usize, want: &str| assert_eq!(lines[i], want, "line {i} of:\n{out}");
    // Loopback is in the test configuration's plaintext_networks: no LOGINDISABLED.
    expect(0, "True False");
    expect(1, "login failed [AUTHENTICATIONFAILED] Invalid credentials");
    assert!(
        lines[2].contains("'(\\\\HasNoChildren \\\\Sent \\\\Subscribed) \"/\" Sent'"),
        "{}",
        lines[2]
    );
    expect(3, "OK [b'2']");
    assert!(
        lines[4]
            .starts_with("2 (ENVELOPE (NIL \"report\" ((\"Carol\" NIL \"carol\" \"example.org\"))"),
        "{}",
        lines[4]
    );
    assert!(
        lines[4].contains(
            "BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 12 0 NIL NIL NIL NIL)(\"APPLICATION\" \"PDF\" (\"NAME\" \"r.pdf\") NIL NIL \"BASE64\" 8 NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"b\") NIL NIL NIL))"
        ),
        "{}",
        lines[4]
    );
    assert!(
        lines[5].contains("BODY[1] \"see attached\""),
        "{}",
        lines[5]
    );
    assert!(
        lines[5].contains("Content-Transfer-Encoding: base64\\r\\n\\r\\n"),
        "{}",
        lines[5]
    );
    assert!(
        lines[5].contains("Subject: report\\r\\n\\r\\n"),
        "{}",
        lines[5]
    );
    // The first SELECT took both messages as \Recent.
    expect(6, "[b'1 (FLAGS (\\\\Recent))']");
    expect(
        7,
        // The \\Seen the FETCH set is reported once, in the FETCH (no echo from the
        // change feed).
        "[b'1 (BODY[]<0> \"From: Test\" FLAGS (\\\\Seen \\\\Recent))']",
    );
    expect(
        8,
        "('OK', [b'1']) ('OK', [b'2']) ('OK', [b'2']) ('OK', [b'1 2'])",
    );
    expect(9, "OK");
    assert!(
        lines[10].starts_with("('OK', [b'[COPYUID "),
        "{}",
        lines[10]
    );
    expect(11, "('OK', [b'Archive (MESSAGES 1 UNSEEN 1)'])");
    assert!(
        lines[12].starts_with("('OK', [b'[APPENDUID "),
        "{}",
        lines[12]
    );
    assert!(
        lines[13].contains("'(\\\\HasNoChildren) \"/\" Lists/rust'"),
        "{}",
        lines[13]
    );
    expect(14, "+ idling");
    expect(15, "0");
    expect(16, "* 3 EXISTS");
    // The new message is \Recent here too: three recent messages (IMAP4rev1).
    expect(17, "* 3 RECENT");
    expect(18, "I1 OK IDLE terminated");
    assert!(
        lines[19].contains("'1 EXPUNGE'") || lines[19].starts_with("('OK'"),
        "{}",
        lines[19]
    );
    assert!(
        lines[20].contains("(UID 2)")
            && lines[20].contains("(UID 3)")
            && !lines[20].contains("(UID 1)"),
        "{}",
        lines[20]
    );
    // imaplib also returns the EXPUNGE that NOOP brought.
    expect(21, "('OK', [b'1', b'1'])");
    expect(22, "('OK', [b'0'])");
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn imap_access_flag_refuses_login_with_a_clear_text() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::with_listeners("", "imaps = \"127.0.0.1:0\"\n");
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    env.admin_ok(
        &["user", "access", "alice@example.test", "--imap", "off"],
        b"",
    );
    let server = env.start();
    let out = python(&format!(
        "import imaplib, ssl\nm = imaplib.IMAP4_SSL('127.0.0.1', {}, ssl_context=ssl._create_unverified_context())\ntry:\n    m.login('alice@example.test', 'alice-pw')\nexcept imaplib.IMAP4.error as e:\n    print(e.args[0].decode())\n",
        server.listeners["imaps"].port()
    ));
    assert_eq!(
        out.trim(),
        "[CONTACTADMIN] IMAP access is disabled for this account; ask the administrator to enable it"
    );
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn header_fetches_of_large_messages() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::with_listeners("", "imaps = \"127.0.0.1:0\"\n");
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    // A 40 KiB header field (more than the first 16 KiB read) and a 300 KiB body.
    let mut big = format!(
        "X-Long: {}\r\nSubject: big one\r\n\r\n",
        "y".repeat(40 * 1024)
    )
    .into_bytes();
    for _ in 0..(300 * 1024 / 64) {
        big.extend_from_slice(&[b'z'; 62]);
        big.extend_from_slice(b"\r\n");
    }
    env.admin_ok(&["deliver", "alice@example.test"], &big);
    let server = env.start();
    let out = python(&format!(
        r#"
import imaplib, ssl
m = imaplib.IMAP4_SSL('127.0.0.1', {}, ssl_context=ssl._create_unverified_context())
m.login('alice@example.test', 'alice-pw')
m.select('INBOX', readonly=True)
typ, d = m.fetch('1', '(RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)] ENVELOPE)')
print(d[0][0].decode())
print(d[0][1])
print(d[1].decode())
typ, d = m.fetch('1', '(BODY.PEEK[HEADER])')
print(len(d[0][1]), d[0][1].endswith(b'Subject: big one\r\n\r\n'))
print(m.search(None, 'SUBJECT', 'big'))
m.logout()
"#,
        server.listeners["imaps"].port()
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "1 (RFC822.SIZE {} BODY[HEADER.FIELDS (SUBJECT)] {{{}}}",
            big.len(),
            20
        )
    );
    assert_eq!(lines[1], "b'Subject: big one\\r\\n\\r\\n'");
    assert!(
        lines[2].starts_with(" ENVELOPE (NIL \"big one\" NIL NIL NIL NIL NIL NIL NIL NIL))"),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], format!("{} True", 40 * 1024 + 10 + 18 + 2));
    assert_eq!(lines[4], "('OK', [b'1'])");
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn quota_is_set_by_the_cli_reported_by_imap_and_enforced() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::with_listeners("", "imaps = \"127.0.0.1:0\"\n");
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    let out = env.admin_ok(
        &[
            "user",
            "quota",
            "alice@example.test",
            "--storage",
            "4K",
            "--messages",
            "2",
        ],
        b"",
    );
    assert_eq!(
        out,
        "alice@example.test  storage=0/4096 bytes  messages=0/2\n"
    );
    let server = env.start();
    env.admin_ok(&["deliver", "alice@example.test"], &common::message("q1"));
    env.admin_ok(&["deliver", "alice@example.test"], &common::message("q2"));
    let out = env.admin(&["deliver", "alice@example.test"], &common::message("q3"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("over quota"),
        "{out:?}"
    );
    let out = python(&format!(
        "import imaplib, ssl\nm = imaplib.IMAP4_SSL('127.0.0.1', {}, ssl_context=ssl._create_unverified_context())\nm.login('alice@example.test', 'alice-pw')\nprint(m.getquotaroot('INBOX'))\nm.logout()\n",
        server.listeners["imaps"].port()
    ));
    assert_eq!(
        out.trim(),
        "('OK', [[b'INBOX \"\"'], [b'\"\" (STORAGE 1 4 MESSAGE 2 2)']])"
    );
    // `unlimited` lifts the limits again (through the socket: the server runs).
    let out = env.admin_ok(
        &[
            "user",
            "quota",
            "alice@example.test",
            "--storage",
            "unlimited",
            "--messages",
            "unlimited",
        ],
        b"",
    );
    assert_eq!(
        out,
        "alice@example.test  storage=244/unlimited bytes  messages=2/unlimited\n"
    );
    env.admin_ok(&["deliver", "alice@example.test"], &common::message("q3"));
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn search_by_dates_headers_and_keywords() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::with_listeners("", "imaps = \"127.0.0.1:0\"\n");
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    env.admin_ok(
        &["deliver", "alice@example.test"],
        b"Date: Tue, 14 Jan 2020 10:00:00 +0100\r\nSubject: old\r\nCc: Dave <dave@example.org>\r\nX-Tag: alpha\r\n\r\nold body\r\n",
    );
    env.admin_ok(
        &["deliver", "alice@example.test"],
        b"Date: Mon, 23 Nov 2026 09:00:00 +0000\r\nSubject: new\r\nX-Tag: beta\r\n\r\nnew body mentions alpha\r\n",
    );
    let server = env.start();
    let out = python(&format!(
        r#"
import imaplib, ssl
m = imaplib.IMAP4_SSL('127.0.0.1', {}, ssl_context=ssl._create_unverified_context())
m.login('alice@example.test', 'alice-pw')
m.select('INBOX')
for q in ['SENTBEFORE 1-Jan-2021', 'SENTSINCE 1-Jan-2021', 'SENTON 14-Jan-2020', 'SINCE 1-Jan-2000', 'BEFORE 1-Jan-2000',
          'CC dave', 'HEADER X-Tag alpha', 'BODY alpha', 'TEXT alpha', 'NEW', 'OLD', 'KEYWORD $Work', 'UNKEYWORD $Work']:
    if q == 'KEYWORD $Work':
        m.store('2', '+FLAGS', '($Work)')
    print(q, m.search(None, q)[1][0].decode())
m.logout()
"#,
        server.listeners["imaps"].port()
    ));
    assert_eq!(
        out,
        "SENTBEFORE 1-Jan-2021 1\nSENTSINCE 1-Jan-2021 2\nSENTON 14-Jan-2020 1\nSINCE 1-Jan-2000 1 2\nBEFORE 1-Jan-2000 \n\
CC dave 1\nHEADER X-Tag alpha 1\nBODY alpha 2\nTEXT alpha 1 2\nNEW 1 2\nOLD \nKEYWORD $Work 2\nUNKEYWORD $Work 1\n"
    );
    let (status, _) = server.terminate();
    assert!(status.success());
}

/// CONDSTORE and QRESYNC over the store: VANISHED for UID EXPUNGE and for another
/// connection's expunge, SELECT (QRESYNC ...) and UID FETCH (CHANGEDSINCE ... VANISHED)
/// report what changed and what vanished since a MODSEQ, FETCH CHANGEDSINCE filters.
#[test]
fn condstore_and_qresync_report_changes_and_vanished() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::with_listeners("", "imaps = \"127.0.0.1:0\"\n");
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    for s in ["one", "two", "three", "four"] {
        env.admin_ok(&["deliver", "alice@example.test"], &common::message(s));
    }
    let server = env.start();
    let script = format!(
        r#"
import socket, ssl, re
ctx = ssl._create_unverified_context()
def conn():
    s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', {imaps})), server_hostname='localhost')
    f = s.makefile('rb')
    f.readline()
    return s, f
def cmd(c, tag, line):
    s, f = c
    s.sendall(tag.encode() + b' ' + line.encode() + b'\r\n')
    out = []
    while True:
        l = f.readline().decode().rstrip('\r\n')
        out.append(l)
        if l.startswith(tag + ' '):
            return out
def show(lines):
    for l in lines:
        print(l)
    print('--')

a = conn(); b = conn(); d = conn()
for c in (a, b, d):
    cmd(c, 'L', 'LOGIN alice@example.test alice-pw')
for c in (a, b):
    cmd(c, 'E', 'ENABLE QRESYNC')
sel = cmd(a, 'S', 'SELECT INBOX')
uidvalidity = re.search(r'UIDVALIDITY (\d+)', ' '.join(sel)).group(1)
modseq0 = re.search(r'HIGHESTMODSEQ (\d+)', ' '.join(sel)).group(1)
cmd(b, 'S', 'SELECT INBOX')
cmd(d, 'S', 'SELECT INBOX (CONDSTORE)')
show(cmd(a, 'T1', 'STORE 2 +FLAGS (\\Flagged)'))
show(cmd(a, 'T2', 'STORE 3 +FLAGS.SILENT (\\Deleted)'))
show(cmd(a, 'T3', 'UID EXPUNGE 3'))
show(cmd(b, 'N', 'NOOP'))
show(cmd(d, 'F', 'FETCH 1:* (FLAGS) (CHANGEDSINCE ' + modseq0 + ')'))
c = conn()
cmd(c, 'L', 'LOGIN alice@example.test alice-pw')
cmd(c, 'E', 'ENABLE QRESYNC')
show([l for l in cmd(c, 'S', 'SELECT INBOX (QRESYNC (' + uidvalidity + ' ' + modseq0 + ' 1:4))') if 'VANISHED' in l or 'FETCH' in l or l.startswith('S ')])
show(cmd(c, 'U', 'UID FETCH 1:* (FLAGS) (CHANGEDSINCE ' + modseq0 + ' VANISHED)'))
show(cmd(d, 'V', 'UID FETCH 1:* (FLAGS) (CHANGEDSINCE ' + modseq0 + ' VANISHED)'))
show(cmd(d, 'Q', 'SEARCH MODSEQ ' + str(int(modseq0) + 1)))
r = conn()
cmd(r, 'L', 'LOGIN alice@example.test alice-pw')
cmd(r, 'E', 'ENABLE IMAP4rev2')
show([l for l in cmd(r, 'S', 'SELECT Sent') if 'LIST' in l or 'RECENT' in l])
"#,
        imaps = server.listeners["imaps"].port(),
    );
    let out = python(&script);
    let blocks: Vec<Vec<&str>> = out.split("--\n").map(|b| b.lines().collect()).collect();
    // STORE answers with UID and MODSEQ (QRESYNC enabled).
    let store = blocks[0][0];
    let m = regex_modseq(store);
    // `a` selected INBOX first: its four messages are \Recent there and nowhere else.
    assert_eq!(
        store,
        format!("* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ ({m}))"),
        "{out}"
    );
    // The session's own changes are not echoed back (and .SILENT stays silent).
    assert_eq!(blocks[0][1], "T1 OK STORE completed", "{out}");
    assert_eq!(blocks[1], ["T2 OK STORE completed"], "{out}");
    assert_eq!(
        blocks[2],
        ["* VANISHED 3", "T3 OK UID EXPUNGE completed"],
        "{out}"
    );
    // Another QRESYNC connection: the flag change with UID and MODSEQ, then VANISHED.
    assert!(
        blocks[3].contains(&format!("* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ ({m}))").as_str()),
        "{out}"
    );
    let vanished_at = blocks[3].iter().position(|l| *l == "* VANISHED 3");
    assert!(vanished_at.is_some(), "{out}");
    assert!(!blocks[3].iter().any(|l| l.ends_with("EXPUNGE")), "{out}");
    // CONDSTORE-only connection (SELECT ... (CONDSTORE)): FETCH CHANGEDSINCE lists only
    // the changed message still there, then the other session's changes arrive with
    // MODSEQ; the EXPUNGE waits for a command that allows it (RFC 9051 7.5.1).
    assert_eq!(
        blocks[4],
        [
            format!("* 2 FETCH (FLAGS (\\Flagged) MODSEQ ({m}))").as_str(),
            format!("* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ ({m}))").as_str(),
            format!("* 3 FETCH (UID 3 FLAGS (\\Deleted) MODSEQ ({}))", m + 1).as_str(),
            "F OK FETCH completed"
        ],
        "{out}"
    );
    assert_eq!(blocks[7][0], "* 3 EXPUNGE", "{out}");
    // SELECT (QRESYNC ...): VANISHED (EARLIER) and the changed message.
    assert_eq!(blocks[5][0], "* VANISHED (EARLIER) 3", "{out}");
    assert_eq!(
        blocks[5][1],
        format!("* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ ({m}))"),
        "{out}"
    );
    assert!(blocks[5][2].starts_with("S OK [READ-WRITE]"), "{out}");
    // UID FETCH (CHANGEDSINCE m VANISHED).
    assert_eq!(blocks[6][0], "* VANISHED (EARLIER) 3", "{out}");
    assert_eq!(
        blocks[6][1],
        format!("* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ ({m}))"),
        "{out}"
    );
    assert_eq!(blocks[6][2], "U OK UID FETCH completed", "{out}");
    // VANISHED without ENABLE QRESYNC is refused.
    assert!(blocks[7].last().unwrap().starts_with("V BAD"), "{out}");
    // IMAP4rev2: SELECT answers with the mailbox's LIST response and no RECENT.
    assert_eq!(blocks[9], ["* LIST (\\Sent) \"/\" Sent"], "{out}");
    // SEARCH MODSEQ reports the highest MODSEQ of the matches (RFC 7162 3.1.5).
    assert_eq!(
        blocks[8],
        [
            format!("* SEARCH 2 (MODSEQ {m})").as_str(),
            "Q OK SEARCH completed"
        ],
        "{out}"
    );
}

fn regex_modseq(line: &str) -> u64 {
    let start = line.find("MODSEQ (").expect("MODSEQ") + "MODSEQ (".len();
    line[start..].split(')').next().unwrap().parse().unwrap()
}

/// CREATE and RENAME make the superior levels of a new name (RFC 9051 6.3.4, 6.3.6); a
/// level left without a mailbox (its parent deleted) is still listed, as `\Noselect` to
/// IMAP4rev1 and `\NonExistent` once IMAP4rev2 is enabled. A message sequence number
/// beyond the mailbox is a `BAD` command (RFC 9051 section 9).
#[test]
fn hierarchy_levels_are_created_and_listed() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::with_listeners("", "imaps = \"127.0.0.1:0\"\n");
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    let server = env.start();
    let out = python(&format!(
        r#"
import imaplib, ssl
m = imaplib.IMAP4_SSL('127.0.0.1', {}, ssl_context=ssl._create_unverified_context())
m.login('alice@example.test', 'alice-pw')
def show(*args):
    typ, data = m.list(*args)
    for d in data:
        # the special-use folders and INBOX (subscribed) are the same every time
        if d and not d.startswith(b'(\\HasNoChildren \\'):
            print(d.decode())
    print('--')
print(m.lsub('""', 'INBOX'))
m.create('P/C/D')
show('""', '*')
m.delete('P')
show('""', '%')
show('""', 'P/%')
m.rename('P/C', 'Q/R/S')
show('""', '*')
m.delete('Q')
m.delete('Q/R')
show('""', 'Q*')
print(m._simple_command('ENABLE', 'IMAP4rev2')[0])
show('""', '%')
m.select('INBOX')
try:
    m.fetch('2', '(FLAGS)')
except imaplib.IMAP4.error as e:
    print(e)
"#,
        server.listeners["imaps"].port()
    ));
    assert_eq!(
        out,
        "('OK', [b'(\\\\HasNoChildren) \"/\" INBOX'])\n\
(\\HasChildren) \"/\" P\n(\\HasChildren) \"/\" P/C\n\
(\\HasNoChildren) \"/\" P/C/D\n--\n\
(\\Noselect \\HasChildren) \"/\" P\n--\n\
(\\HasChildren) \"/\" P/C\n--\n\
(\\HasChildren) \"/\" Q\n(\\HasChildren) \"/\" Q/R\n\
(\\HasChildren) \"/\" Q/R/S\n(\\HasNoChildren) \"/\" Q/R/S/D\n--\n\
(\\HasChildren) \"/\" Q/R/S\n(\\HasNoChildren) \"/\" Q/R/S/D\n\
(\\Noselect \\HasChildren) \"/\" Q\n(\\Noselect \\HasChildren) \"/\" Q/R\n--\n\
OK\n(\\NonExistent \\HasChildren) \"/\" Q\n--\n\
FETCH command error: BAD [b'Invalid message sequence number: the mailbox has 0 messages']\n"
    );
    let (status, _) = server.terminate();
    assert!(status.success());
}

/// FETCH BINARY (RFC 3516, part of IMAP4rev2): the transfer encoding removed, sizes,
/// partial fetches, `NO [UNKNOWN-CTE]`, and `\Seen` set by the non-PEEK form.
#[test]
fn binary_fetch_decodes_parts() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::with_listeners("", "imaps = \"127.0.0.1:0\"\n");
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    let server = env.start();
    let out = python(&format!(
        r#"
import imaplib, ssl
m = imaplib.IMAP4_SSL('127.0.0.1', {}, ssl_context=ssl._create_unverified_context())
m.login('alice@example.test', 'alice-pw')
print(b'BINARY' in m.capability()[1][0].split())
msg = (b"From: a@example.org\r\nSubject: bin\r\nMIME-Version: 1.0\r\n"
       b"Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
       b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
       b"Gr=C3=BC=C3=9Fe=\r\n and more\r\n"
       b"--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwT/\r\n"
       b"--XX\r\nContent-Type: application/x-foo\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n"
       b"--XX--\r\n")
m.append('INBOX', None, None, msg)
m.select('INBOX')
print(m.fetch('1', '(BINARY.PEEK[1] BINARY.SIZE[1] BINARY.SIZE[2])'))
print(m.fetch('1', '(BINARY.PEEK[2]<1.3>)'))
print(m.fetch('1', '(BINARY.PEEK[3])'))
print(m.fetch('1', '(FLAGS)'))
print(m.fetch('1', '(BINARY[2] FLAGS)'))
"#,
        server.listeners["imaps"].port()
    ));
    assert_eq!(
        out,
        "True\n\
('OK', [(b'1 (BINARY[1] {16}', b'Gr\\xc3\\xbc\\xc3\\x9fe and more'), b' BINARY.SIZE[1] 16 BINARY.SIZE[2] 6)'])\n\
('OK', [b'1 (BINARY[2]<1> \"\\x01\\x02\\x03\")'])\n\
('NO', [b'[UNKNOWN-CTE] Content-Transfer-Encoding x-uuencode is unknown; fetch the part with BODY[] instead'])\n\
('OK', [b'1 (FLAGS (\\\\Recent))'])\n\
('OK', [(b'1 (BINARY[2] ~{6}', b'\\x00\\x01\\x02\\x03\\x04\\xff'), b' FLAGS (\\\\Seen \\\\Recent))'])\n"
    );
    let (status, _) = server.terminate();
    assert!(status.success());
}

/// \Recent (RFC 3501 section 2.3.2) across sessions: EXAMINE and STATUS show the messages
/// nobody has seen without taking them; the first SELECT takes them (RECENT count, FETCH
/// FLAGS, SEARCH RECENT / NEW / OLD), a second SELECT finds none; a new message goes to
/// the selected session told about it first; nothing is recent again after a restart.
#[test]
fn recent_goes_to_exactly_one_session() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::with_listeners("", "imaps = \"127.0.0.1:0\"\n");
    env.admin_ok(&["user", "add", "bob@example.test"], b"bob-pw\n");
    for s in ["one", "two"] {
        env.admin_ok(&["deliver", "bob@example.test"], &common::message(s));
    }
    let script = |port: u16, body: &str| {
        format!(
            r#"
import imaplib, ssl
ctx = ssl._create_unverified_context()
def conn():
    m = imaplib.IMAP4_SSL('127.0.0.1', {port}, ssl_context=ctx)
    m.login('bob@example.test', 'bob-pw')
    return m
def flags(m):
    return ' '.join(x.decode() for x in m.fetch('1:*', '(FLAGS)')[1])
{body}
"#
        )
    };
    let server = env.start();
    let port = server.listeners["imaps"].port();
    let out = python(&script(
        port,
        r#"
e = conn()
e.select('INBOX', readonly=True)
print('examine', e.response('RECENT')[1], flags(e))
print('status', e.status('INBOX', '(RECENT MESSAGES)')[1][0].decode())
a = conn()
a.select('INBOX')
print('a', a.response('RECENT')[1], flags(a))
print('a search', a.search(None, 'RECENT')[1], a.search(None, 'NEW')[1], a.search(None, 'OLD')[1])
b = conn()
b.select('INBOX')
print('b', b.response('RECENT')[1], flags(b))
print('status', e.status('INBOX', '(RECENT)')[1][0].decode())
c = conn()
c.append('INBOX', None, None, b'Subject: three\r\n\r\nthree\r\n')
a.noop()
# EXISTS from SELECT and NOOP; RECENT counts every message recent in the session.
print('a noop', a.response('EXISTS')[1], a.response('RECENT')[1], a.fetch('3', '(FLAGS)')[1][0].decode())
b.noop()
print('b noop', b.response('EXISTS')[1], b.response('RECENT')[1], b.fetch('3', '(FLAGS)')[1][0].decode())
a.store('1', '+FLAGS', '(\\Seen)')
print('a new', a.search(None, 'NEW')[1])
"#,
    ));
    assert_eq!(
        out,
        "examine [b'2'] 1 (FLAGS (\\Recent)) 2 (FLAGS (\\Recent))\n\
status INBOX (RECENT 2 MESSAGES 2)\n\
a [b'2'] 1 (FLAGS (\\Recent)) 2 (FLAGS (\\Recent))\n\
a search [b'1 2'] [b'1 2'] [b'']\n\
b [b'0'] 1 (FLAGS ()) 2 (FLAGS ())\n\
status INBOX (RECENT 0)\n\
a noop [b'2', b'3'] [b'3'] 3 (FLAGS (\\Recent))\n\
b noop [b'2', b'3'] [b'0'] 3 (FLAGS ())\n\
a new [b'2 3']\n"
    );
    let (status, _) = server.terminate();
    assert!(status.success());
    // The floors were saved: after a restart nothing is recent.
    let server = env.start();
    let out = python(&script(
        server.listeners["imaps"].port(),
        r#"
a = conn()
a.select('INBOX')
print(a.response('RECENT')[1], a.status('INBOX', '(RECENT)')[1][0].decode())
"#,
    ));
    assert_eq!(out, "[b'0'] INBOX (RECENT 0)\n");
    let (status, _) = server.terminate();
    assert!(status.success());
}
