//! End-to-end tests of the hosted-service policies (docs/policy.md) against the running
//! server binary, with Python's poplib, imaplib and smtplib as the clients. Policy
//! settings are changed with `mail-server policy set` while the server runs (through the
//! admin socket). One test per behaviour ID of docs/requirements.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Env, Server};

const PY_WHY: &str = "the policy end-to-end tests drive the server with poplib/imaplib/smtplib";

fn setup() -> Option<(Env, Server)> {
    if !common::have("python3", PY_WHY) {
        return None;
    }
    let env = Env::with_listeners(
        "",
        "imaps = \"127.0.0.1:0\"\nsubmissions = \"127.0.0.1:0\"\nsmtp = \"127.0.0.1:0\"\n",
    );
    for (user, pw) in [
        ("alice@example.test", "alice-pw"),
        ("bob@example.test", "bob-pw"),
    ] {
        env.admin_ok(&["user", "add", user], format!("{pw}\n").as_bytes());
    }
    let server = env.start();
    Some((env, server))
}

fn set(env: &Env, who: &str, name: &str, key: &str, value: &str) {
    let out = env.admin_ok(&["policy", "set", who, name, key, value], b"");
    assert!(out.contains(&format!("{key} = {value}")), "{out}");
}

fn deliver(env: &Env, to: &str, folder: &str, subject: &str) {
    let out = env.admin_ok(
        &["deliver", to, "--folder", folder],
        &common::message(subject),
    );
    assert!(out.starts_with("delivered to "), "{out}");
}

/// Runs `body` after a prelude with ports and small client helpers; returns stdout.
fn py(server: &Server, body: &str) -> String {
    let prelude = format!(
        r#"import poplib, imaplib, smtplib, ssl, sys
ctx = ssl._create_unverified_context()
POP3 = {pop3}
IMAPS = {imaps}
SUBS = {subs}
MX = {mx}
def pop(user, pw):
    p = poplib.POP3('127.0.0.1', POP3, timeout=30)
    p.user(user)
    p.pass_(pw)
    return p
def pop_err(user, pw):
    try:
        p = pop(user, pw)
        p.quit()
        return 'OK'
    except poplib.error_proto as e:
        return e.args[0].decode()
def imap(user, pw):
    m = imaplib.IMAP4_SSL('127.0.0.1', IMAPS, ssl_context=ctx, timeout=30)
    m.login(user, pw)
    return m
def imap_err(user, pw):
    try:
        m = imap(user, pw)
        m.logout()
        return 'OK'
    except imaplib.IMAP4.error as e:
        return e.args[0].decode() if isinstance(e.args[0], bytes) else str(e.args[0])
def subjects(p):
    out = []
    for i in range(1, len(p.list()[1]) + 1):
        for l in p.top(i, 0)[1]:
            if l.startswith(b'Subject: '):
                out.append(l[9:].decode())
    return out
def smtp_err(user, pw, rcpt, data):
    s = smtplib.SMTP_SSL('127.0.0.1', SUBS, context=ctx, timeout=30)
    try:
        s.login(user, pw)
    except smtplib.SMTPAuthenticationError as e:
        s.quit()
        return 'AUTH %d %s' % (e.smtp_code, e.smtp_error.decode())
    try:
        s.sendmail(user, [rcpt], data)
        r = 'OK'
    except smtplib.SMTPSenderRefused as e:
        r = 'MAIL %d %s' % (e.smtp_code, e.smtp_error.decode())
    except smtplib.SMTPRecipientsRefused as e:
        (code, text) = list(e.recipients.values())[0]
        r = 'RCPT %d %s' % (code, text.decode())
    except smtplib.SMTPDataError as e:
        r = 'DATA %d %s' % (e.smtp_code, e.smtp_error.decode())
    s.quit()
    return r
"#,
        pop3 = server.pop3().port(),
        imaps = server.listeners["imaps"].port(),
        subs = server.listeners["submissions"].port(),
        mx = server.listeners["smtp"].port(),
    );
    common::python(&format!("{prelude}{body}"))
}

fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// Waits until the wall clock's second has moved past `t` (the store records receipt
/// times in whole seconds); polls the clock, bounded.
fn clock_past(t: i64) -> i64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut now = unix_now();
    let moved = mail_testkit::poll::until(deadline, || {
        now = unix_now();
        now > t
    });
    assert!(moved, "the clock does not move");
    now
}

fn finish(server: Server) {
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn pop_scope_hides_older_mail_e2e() {
    let Some((env, server)) = setup() else { return };
    deliver(&env, "alice@example.test", "INBOX", "old");
    let since = clock_past(unix_now());
    deliver(&env, "alice@example.test", "INBOX", "new");
    set(
        &env,
        "--user",
        "alice@example.test",
        "pop3.scope",
        &format!("{{ mode = \"since\", since = {since} }}"),
    );
    let out = py(
        &server,
        "p = pop('alice@example.test', 'alice-pw')\nprint(p.stat())\nprint(len(p.list()[1]), len(p.uidl()[1]))\nprint(subjects(p))\np.quit()\n",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("(1, "), "{out}");
    assert_eq!(lines[1], "1 1");
    assert_eq!(lines[2], "['new']");
    // Scope back to all mail: both again.
    set(
        &env,
        "--user",
        "alice@example.test",
        "pop3.scope",
        "{ mode = \"all\" }",
    );
    let out = py(
        &server,
        "p = pop('alice@example.test', 'alice-pw')\nprint(subjects(p))\np.quit()\n",
    );
    assert_eq!(out.trim(), "['old', 'new']");
    finish(server);
}

#[test]
fn pop_keep_original_e2e() {
    let Some((env, server)) = setup() else { return };
    deliver(&env, "alice@example.test", "INBOX", "one");
    deliver(&env, "alice@example.test", "INBOX", "two");
    set(
        &env,
        "--user",
        "alice@example.test",
        "pop3.on_delete",
        "keep_original",
    );
    let out = py(
        &server,
        r#"p = pop('alice@example.test', 'alice-pw')
print(p.dele(1).decode())
p.quit()
p = pop('alice@example.test', 'alice-pw')
print(subjects(p))
p.quit()
m = imap('alice@example.test', 'alice-pw')
print(m.select('INBOX')[1][0].decode())
m.logout()
"#,
    );
    assert_eq!(out, "+OK message 1 deleted\n['two']\n2\n");
    // follow_client: DELE + QUIT really deletes.
    set(
        &env,
        "--user",
        "alice@example.test",
        "pop3.on_delete",
        "follow_client",
    );
    let out = py(
        &server,
        r#"p = pop('alice@example.test', 'alice-pw')
p.dele(1)
p.quit()
m = imap('alice@example.test', 'alice-pw')
print(m.select('INBOX')[1][0].decode())
m.logout()
"#,
    );
    assert_eq!(out, "1\n");
    finish(server);
}

#[test]
fn pop_mark_seen_on_retr_e2e() {
    let Some((env, server)) = setup() else { return };
    deliver(&env, "alice@example.test", "INBOX", "read-me");
    deliver(&env, "alice@example.test", "INBOX", "top-only");
    let script = r#"p = pop('alice@example.test', 'alice-pw')
p.retr(1)
p.top(2, 0)
p.quit()
m = imap('alice@example.test', 'alice-pw')
m.select('INBOX', readonly=True)
print(m.fetch('1:2', '(FLAGS)')[1])
m.logout()
"#;
    set(
        &env,
        "--user",
        "alice@example.test",
        "pop3.mark_seen_on_retr",
        "false",
    );
    let out = py(&server, script);
    // EXAMINE shows the messages no session has selected yet as \Recent (IMAP4rev1).
    assert_eq!(
        out.trim(),
        r"[b'1 (FLAGS (\\Recent))', b'2 (FLAGS (\\Recent))']"
    );
    set(
        &env,
        "--user",
        "alice@example.test",
        "pop3.mark_seen_on_retr",
        "true",
    );
    let out = py(&server, script);
    assert_eq!(
        out.trim(),
        r"[b'1 (FLAGS (\\Seen \\Recent))', b'2 (FLAGS (\\Recent))']"
    );
    finish(server);
}

#[test]
fn pop_junk_and_inbox_only_e2e() {
    let Some((env, server)) = setup() else { return };
    deliver(&env, "alice@example.test", "INBOX", "inbox");
    deliver(&env, "alice@example.test", "Junk", "spam");
    deliver(&env, "alice@example.test", "Sent", "sent");
    deliver(&env, "alice@example.test", "Archive", "archived");
    let script = "p = pop('alice@example.test', 'alice-pw')\nprint(subjects(p))\np.quit()\n";
    assert_eq!(py(&server, script).trim(), "['inbox']");
    set(
        &env,
        "--user",
        "alice@example.test",
        "pop3.include_junk",
        "true",
    );
    assert_eq!(py(&server, script).trim(), "['inbox', 'spam']");
    finish(server);
}

#[test]
fn pop_imported_inclusion_e2e() {
    let Some((env, server)) = setup() else { return };
    deliver(&env, "alice@example.test", "INBOX", "delivered");
    let mbox = env.dir.path().join("in.mbox");
    std::fs::write(
        &mbox,
        b"From someone@example.org Mon Jan  1 00:00:00 2024\nSubject: imported\nFrom: a@example.org\n\nhello\n",
    )
    .unwrap();
    let out = env.admin_ok(
        &[
            "import",
            "alice@example.test",
            mbox.to_str().unwrap(),
            "--format",
            "mbox",
        ],
        b"",
    );
    assert!(out.starts_with("imported 1 messages"), "{out}");
    let script = "p = pop('alice@example.test', 'alice-pw')\nprint(subjects(p))\np.quit()\n";
    assert_eq!(py(&server, script).trim(), "['delivered', 'imported']");
    set(
        &env,
        "--user",
        "alice@example.test",
        "pop3.include_imported",
        "false",
    );
    assert_eq!(py(&server, script).trim(), "['delivered']");
    finish(server);
}

#[test]
fn pop_retention_e2e() {
    let Some((env, server)) = setup() else { return };
    deliver(&env, "alice@example.test", "INBOX", "aging");
    deliver(&env, "bob@example.test", "INBOX", "kept");
    set(
        &env,
        "--user",
        "alice@example.test",
        "pop3.retention_days",
        "2",
    );
    // One day later nothing is due; three days later alice's message goes, bob (no
    // retention) keeps his.
    let day = 86_400;
    let at = (unix_now() + day).to_string();
    let out = env.admin_ok(&["retention", "run-now", "--at", &at], b"");
    assert_eq!(out, "retention: 2 accounts checked, 0 messages deleted\n");
    let at = (unix_now() + 3 * day).to_string();
    let out = env.admin_ok(&["retention", "run-now", "--at", &at], b"");
    assert_eq!(out, "retention: 2 accounts checked, 1 messages deleted\n");
    let out = py(
        &server,
        "print(pop('alice@example.test', 'alice-pw').stat()[0])\nprint(pop('bob@example.test', 'bob-pw').stat()[0])\n",
    );
    assert_eq!(out, "0\n1\n");
    finish(server);
}

#[test]
fn pop_retention_scheduler_runs_inside_the_server_e2e() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::new("[policy]\nretention_interval = \"1s\"\n");
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    deliver(&env, "alice@example.test", "INBOX", "x");
    // A retention period of one day with a scope in the future makes nothing due; a
    // negative check is all the clock allows, so assert the scheduler logs no error and
    // the message stays, then that the server stops cleanly with the task running.
    set(
        &env,
        "--user",
        "alice@example.test",
        "pop3.retention_days",
        "1",
    );
    let server = env.start();
    let out = common::python(&format!(
        "import poplib\np = poplib.POP3('127.0.0.1', {})\np.user('alice@example.test')\np.pass_('alice-pw')\nprint(p.stat()[0])\np.quit()\n",
        server.pop3().port()
    ));
    assert_eq!(out, "1\n");
    finish(server);
}

#[test]
fn imap_folder_visibility_e2e() {
    let Some((env, server)) = setup() else { return };
    deliver(&env, "alice@example.test", "INBOX", "in");
    set(
        &env,
        "--user",
        "alice@example.test",
        "imap.hidden_folders",
        "[\"Archive\"]",
    );
    let out = py(
        &server,
        r#"m = imap('alice@example.test', 'alice-pw')
names = [l.decode().split(' "/" ')[-1] for l in m.list()[1]]
print('Archive' in names, 'INBOX' in names, 'Sent' in names)
for cmd in [lambda: m.select('Archive'), lambda: m.select('Archive', readonly=True), lambda: m.status('Archive', '(MESSAGES)'), lambda: m.append('Archive', None, None, b'Subject: x\r\n\r\nx\r\n')]:
    print(cmd())
m.select('INBOX')
print(m.copy('1', 'Archive'))
m.logout()
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "False True True", "{out}");
    for l in &lines[1..] {
        assert_eq!(*l, "('NO', [b'[NONEXISTENT] No such mailbox'])", "{out}");
    }
    assert_eq!(lines.len(), 6, "{out}");
    finish(server);
}

#[test]
fn imap_deletion_mode_e2e() {
    let Some((env, server)) = setup() else { return };
    deliver(&env, "alice@example.test", "INBOX", "a");
    deliver(&env, "alice@example.test", "INBOX", "b");
    let script = r#"m = imap('alice@example.test', 'alice-pw')
m.select('INBOX')
m.store('1', '+FLAGS', '(\\Deleted)')
m.logout()
m = imap('alice@example.test', 'alice-pw')
print(m.select('INBOX')[1][0].decode())
m.logout()
"#;
    // Default: wait for the client's EXPUNGE.
    assert_eq!(py(&server, script).trim(), "2");
    set(
        &env,
        "--user",
        "alice@example.test",
        "imap.deletion_mode",
        "expunge_immediately",
    );
    assert_eq!(py(&server, script).trim(), "1");
    finish(server);
}

#[test]
fn protocol_disabled_per_org_and_user_e2e() {
    let Some((env, server)) = setup() else { return };
    set(&env, "--org", "example.test", "protocols.pop3", "false");
    set(
        &env,
        "--user",
        "bob@example.test",
        "admin.protocols.imap",
        "false",
    );
    set(
        &env,
        "--user",
        "bob@example.test",
        "admin.protocols.smtp",
        "false",
    );
    let out = py(
        &server,
        r#"print(pop_err('alice@example.test', 'alice-pw'))
print(imap_err('alice@example.test', 'alice-pw'))
print(imap_err('bob@example.test', 'bob-pw'))
print(smtp_err('bob@example.test', 'bob-pw', 'alice@example.test', 'Subject: x\r\n\r\nx\r\n'))
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "-ERR [AUTH] POP3 access is turned off for your organisation; ask your administrator to allow POP3 access"
    );
    assert_eq!(lines[1], "OK");
    assert_eq!(
        lines[2],
        "[CONTACTADMIN] IMAP access has been turned off for this account by an administrator; contact your administrator"
    );
    assert_eq!(
        lines[3],
        "AUTH 535 5.7.8 SMTP access has been turned off for this account by an administrator; contact your administrator"
    );
    // The user opt-in of the seed services, once the organisation requires it.
    set(&env, "--org", "example.test", "require_user_opt_in", "true");
    set(
        &env,
        "--user",
        "alice@example.test",
        "imap.enabled",
        "false",
    );
    let out = py(
        &server,
        "print(imap_err('alice@example.test', 'alice-pw'))\n",
    );
    assert_eq!(
        out.trim(),
        "[ALERT] IMAP access is not turned on for this account; turn it on in your mail settings (POP/IMAP) and try again"
    );
    finish(server);
}

#[test]
fn two_step_requires_app_password_e2e() {
    let Some((env, server)) = setup() else { return };
    let out = env.admin_ok(&["app-password", "add", "alice@example.test", "phone"], b"");
    let app = out
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    set(
        &env,
        "--user",
        "alice@example.test",
        "security.two_step",
        "true",
    );
    let out = py(
        &server,
        &format!(
            "print(pop_err('alice@example.test', 'alice-pw'))\nprint(pop_err('alice@example.test', '{app}'))\nprint(imap_err('alice@example.test', 'alice-pw'))\nprint(imap_err('alice@example.test', '{app}'))\nprint(smtp_err('alice@example.test', 'alice-pw', 'bob@example.test', 'Subject: x\\r\\n\\r\\nx\\r\\n'))\nprint(smtp_err('alice@example.test', '{app}', 'bob@example.test', 'Subject: x\\r\\n\\r\\nx\\r\\n'))\n"
        ),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "-ERR [AUTH] Two-step verification is on for this account: sign in with an app password (create one in your security settings), not the account password"
    );
    assert_eq!(lines[1], "OK");
    assert!(
        lines[2].starts_with("[ALERT] Two-step verification is on"),
        "{out}"
    );
    assert_eq!(lines[3], "OK");
    // SMTP AUTH carries the same text in the 535 (smtplib's SMTPAuthenticationError).
    assert_eq!(
        lines[4],
        "AUTH 535 5.7.8 Two-step verification is on for this account: sign in with an app password (create one in your security settings), not the account password"
    );
    assert_eq!(lines[5], "OK", "{out}");
    finish(server);
}

#[test]
fn federated_account_needs_app_password_e2e() {
    let Some((env, server)) = setup() else { return };
    set(
        &env,
        "--user",
        "alice@example.test",
        "security.federated",
        "true",
    );
    let out = py(
        &server,
        "print(pop_err('alice@example.test', 'alice-pw'))\nprint(imap_err('alice@example.test', 'alice-pw'))\nprint(smtp_err('alice@example.test', 'alice-pw', 'bob@example.test', 'x'))\n",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "-ERR [AUTH] This account signs in through an external identity provider and has no password for mail clients: create an app password in your security settings and use it here"
    );
    assert!(
        lines[1].starts_with("[ALERT] This account signs in through an external identity provider"),
        "{out}"
    );
    assert_eq!(
        lines[2],
        "AUTH 535 5.7.8 This account signs in through an external identity provider and has no password for mail clients: create an app password in your security settings and use it here"
    );
    finish(server);
}

#[test]
fn smtp_source_allowlist_e2e() {
    let Some((env, server)) = setup() else { return };
    let send = "print(smtp_err('alice@example.test', 'alice-pw', 'bob@example.test', 'Subject: hi\\r\\n\\r\\nhi\\r\\n'))\n";
    set(
        &env,
        "--org",
        "example.test",
        "smtp_allowed_sources",
        "[\"10.0.0.0/8\"]",
    );
    assert_eq!(
        py(&server, send).trim(),
        "MAIL 550 5.7.1 Sending from 127.0.0.1 is not allowed for your organisation; ask your administrator to add this address to the SMTP allowlist"
    );
    set(
        &env,
        "--org",
        "example.test",
        "smtp_allowed_sources",
        "[\"10.0.0.0/8\", \"127.0.0.0/8\"]",
    );
    assert_eq!(py(&server, send).trim(), "OK");
    finish(server);
}

#[test]
fn send_and_receive_size_limits_e2e() {
    let Some((env, server)) = setup() else { return };
    set(
        &env,
        "--user",
        "alice@example.test",
        "admin.max_send_size",
        "2000",
    );
    set(
        &env,
        "--user",
        "bob@example.test",
        "admin.max_receive_size",
        "1000",
    );
    let out = py(
        &server,
        r#"small = 'Subject: s\r\n\r\n' + 'x' * 500 + '\r\n'
mid = 'Subject: m\r\n\r\n' + 'x' * 1500 + '\r\n'
big = 'Subject: b\r\n\r\n' + 'x' * 3000 + '\r\n'
print(smtp_err('alice@example.test', 'alice-pw', 'bob@example.test', small))
print(smtp_err('alice@example.test', 'alice-pw', 'bob@example.test', mid))
print(smtp_err('alice@example.test', 'alice-pw', 'bob@example.test', big))
print(smtp_err('bob@example.test', 'bob-pw', 'alice@example.test', big))
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "OK", "{out}");
    // smtplib sends SIZE= in MAIL: the recipient's limit answers RCPT.
    assert!(
        lines[1].starts_with("RCPT 552 5.3.4 Message too large for this mailbox: "),
        "{out}"
    );
    assert!(
        lines[2].starts_with("MAIL 552 5.3.4 Message too large to send: "),
        "{out}"
    );
    assert_eq!(lines[3], "OK", "{out}");
    finish(server);
}

#[test]
fn imap_connection_limit_e2e() {
    let Some((env, server)) = setup() else { return };
    set(
        &env,
        "--user",
        "alice@example.test",
        "admin.max_imap_connections",
        "2",
    );
    let out = py(
        &server,
        r#"a = imap('alice@example.test', 'alice-pw')
b = imap('alice@example.test', 'alice-pw')
print(imap_err('alice@example.test', 'alice-pw'))
b.logout()
print(imap_err('alice@example.test', 'alice-pw'))
a.logout()
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "[LIMIT] Too many simultaneous IMAP connections for this account (limit 2); close another mail client and try again"
    );
    assert_eq!(lines[1], "OK");
    finish(server);
}

#[test]
fn filters_at_delivery_e2e() {
    let Some((env, server)) = setup() else { return };
    env.admin_ok(&["policy", "show", "--user", "alice@example.test"], b"");
    set(
        &env,
        "--user",
        "alice@example.test",
        "filters.rules",
        r#"[{ name = "news", conditions = [{ kind = "header", field = { field = "subject" }, op = "contains", value = "newsletter" }], actions = [{ action = "move_to", folder = "Archive" }, { action = "mark_read" }] }, { name = "big", conditions = [{ kind = "size", op = "greater_than", bytes = 5000 }], actions = [{ action = "flag" }] }]"#,
    );
    let out = py(
        &server,
        r#"s = smtplib.SMTP('127.0.0.1', MX, timeout=30)
s.sendmail('x@example.org', ['alice@example.test'], 'Subject: Weekly NEWSLETTER\r\n\r\nnews\r\n')
s.sendmail('x@example.org', ['alice@example.test'], 'Subject: hello\r\n\r\n' + 'y' * 6000 + '\r\n')
s.quit()
m = imap('alice@example.test', 'alice-pw')
m.select('Archive', readonly=True)
print(m.fetch('1:*', '(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')[1][0][1].decode().strip())
print(m.fetch('1:*', '(FLAGS)')[1])
m.select('INBOX', readonly=True)
print(m.fetch('1:*', '(FLAGS)')[1])
m.logout()
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Subject: Weekly NEWSLETTER", "{out}");
    assert_eq!(lines[1], r"[b'1 (FLAGS (\\Seen \\Recent))']", "{out}");
    assert_eq!(lines[2], r"[b'1 (FLAGS (\\Flagged \\Recent))']", "{out}");
    // The admin `deliver` path files the same way.
    let out = env.admin_ok(
        &["deliver", "alice@example.test"],
        b"Subject: another newsletter\r\n\r\nx\r\n",
    );
    assert!(
        out.contains("filter rules matched: [0] -> Archive"),
        "{out}"
    );
    finish(server);
}

#[test]
fn policy_show_and_set_refuse_bad_input() {
    let Some((env, server)) = setup() else { return };
    let out = env.admin_ok(&["policy", "show", "--user", "alice@example.test"], b"");
    assert!(
        out.starts_with(
            "# account alice@example.test\n# POP3: allowed\n# IMAP: allowed\n# SMTP: allowed\n"
        ),
        "{out}"
    );
    assert!(out.contains("[pop3]\nenabled = true\n"), "{out}");
    let bad = env.admin(
        &[
            "policy",
            "set",
            "--user",
            "alice@example.test",
            "pop3.nope",
            "1",
        ],
        b"",
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("unknown setting \"pop3.nope\""),
        "{bad:?}"
    );
    let bad = env.admin(
        &[
            "policy",
            "set",
            "--user",
            "alice@example.test",
            "imap.hidden_folders",
            "[\"INBOX\"]",
        ],
        b"",
    );
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    let bad = env.admin(
        &[
            "policy",
            "set",
            "--user",
            "alice@example.test",
            "admin.max_send_size",
            "999999999999",
        ],
        b"",
    );
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    let out = env.admin_ok(&["policy", "show", "--org", "example.test"], b"");
    assert!(
        out.starts_with("# organisation example.test\nrequire_user_opt_in = false\n"),
        "{out}"
    );
    finish(server);
}

#[test]
fn imap_consumer_mode_e2e() {
    let Some((env, server)) = setup() else { return };
    deliver(&env, "alice@example.test", "INBOX", "first");
    deliver(&env, "alice@example.test", "INBOX", "second");
    deliver(&env, "alice@example.test", "Archive", "elsewhere");
    set(
        &env,
        "--user",
        "alice@example.test",
        "imap.consumer",
        "{ mode = \"delete_fetched\" }",
    );
    let out = py(
        &server,
        r#"m = imap('alice@example.test', 'alice-pw')
print([l.decode().split(' "/" ')[-1] for l in m.list()[1]])
print(m.select('Archive')[0])
m.select('INBOX')
m.fetch('1', '(RFC822)')
m.fetch('2', '(BODY.PEEK[HEADER])')
m.close()
m.select('INBOX')
print(m.fetch('1:*', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')[1][0][1].decode().strip())
m.logout()
m = imap('alice@example.test', 'alice-pw')
print(m.select('INBOX')[1][0].decode())
m.logout()
"#,
    );
    // Only the INBOX is visible; the whole-message fetch of `first` deleted it at CLOSE,
    // the header-only fetch of `second` did not.
    assert_eq!(out, "['INBOX']\nNO\nSubject: second\n1\n");
    finish(server);
}
