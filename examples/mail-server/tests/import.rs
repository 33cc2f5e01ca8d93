//! End-to-end tests of the import commands against the running server binary:
//! `upload` (UPL-1). Python's imaplib checks the result.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::Env;

const PY_WHY: &str = "the import end-to-end tests check the mailbox with imaplib";

#[test]
fn upload_keeps_good_files_and_reports_bad_ones_e2e() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::with_listeners("", "imaps = \"127.0.0.1:0\"\n");
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    let server = env.start();
    let dir = env.dir.path();
    let good = dir.join("good.eml");
    let lf = dir.join("bare-lf.eml");
    let bad = dir.join("not-mail.eml");
    let empty = dir.join("empty.eml");
    std::fs::write(&good, common::message("uploaded")).unwrap();
    std::fs::write(&lf, b"Subject: lf\nFrom: a@example.org\n\nline\n").unwrap();
    std::fs::write(&bad, b"this is not a header\n\nbody\n").unwrap();
    std::fs::write(&empty, b"").unwrap();
    let missing = dir.join("missing.eml");
    let out = env.admin_ok(
        &[
            "upload",
            "--user",
            "alice@example.test",
            "--folder",
            "Archive",
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
            lf.to_str().unwrap(),
            empty.to_str().unwrap(),
            missing.to_str().unwrap(),
        ],
        b"",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("stored {} (UID 1)", good.display()),
        "{out}"
    );
    assert_eq!(
        lines[1],
        format!("stored {} (UID 2)", lf.display()),
        "{out}"
    );
    for (line, path) in lines[2..5].iter().zip([&bad, &empty, &missing]) {
        assert!(
            line.starts_with(&format!("rejected {}: ", path.display())),
            "{out}"
        );
    }
    assert_eq!(
        lines[5],
        "uploaded 2 of 5 files into Archive of alice@example.test"
    );
    let out = common::python(&format!(
        r#"import imaplib, ssl
m = imaplib.IMAP4_SSL('127.0.0.1', {}, ssl_context=ssl._create_unverified_context())
m.login('alice@example.test', 'alice-pw')
print(m.select('Archive', readonly=True)[1][0].decode())
print(m.fetch('2', '(BODY.PEEK[])')[1][0][1])
m.logout()
"#,
        server.listeners["imaps"].port()
    ));
    assert_eq!(
        out,
        "2\nb'Subject: lf\\r\\nFrom: a@example.org\\r\\n\\r\\nline\\r\\n'\n"
    );
    // The plan gate (ACC-5): an organisation without uploads is refused with the reason.
    env.admin_ok(
        &[
            "policy",
            "set",
            "--org",
            "example.test",
            "plan.eml_upload",
            "false",
        ],
        b"",
    );
    let refused = env.admin(
        &[
            "upload",
            "--user",
            "alice@example.test",
            good.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("Mail upload is not included in your organisation's plan"),
        "{refused:?}"
    );
    let (status, _) = server.terminate();
    assert!(status.success());
}

/// `import add|list|run|status|remove` against our own server as the remote POP3 server
/// (plain POP3 on 127.0.0.1): the first run imports everything, the second nothing new
/// (IMP-2); status shows the state; a failing account is reported with its reason.
#[test]
fn pop3_import_cli_from_our_own_server_e2e() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::with_listeners("", "imaps = \"127.0.0.1:0\"\n");
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    env.admin_ok(&["user", "add", "remote@example.org"], b"remote-pw\n");
    for subject in ["r1", "r2"] {
        env.admin_ok(
            &["deliver", "remote@example.org"],
            &common::message(subject),
        );
    }
    let server = env.start();
    let port = server.pop3().port().to_string();
    let out = env.admin_ok(
        &[
            "import",
            "add",
            "--user",
            "alice@example.test",
            "--id",
            "old",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--tls",
            "none",
            "--username",
            "remote@example.org",
            "--folder",
            "Imported",
        ],
        b"remote-pw\n",
    );
    assert_eq!(
        out,
        format!(
            "import old added for alice@example.test: remote@example.org@127.0.0.1:{port} (None) into Imported\n"
        )
    );
    let out = env.admin_ok(
        &[
            "import",
            "run",
            "--user",
            "alice@example.test",
            "--id",
            "old",
        ],
        b"",
    );
    assert!(
        out.starts_with("import old: 2 new, 0 already imported, 0 skipped (too large), 0 deleted on the server\n"),
        "{out}"
    );
    env.admin_ok(&["deliver", "remote@example.org"], &common::message("r3"));
    let out = env.admin_ok(
        &[
            "import",
            "run",
            "--user",
            "alice@example.test",
            "--id",
            "old",
        ],
        b"",
    );
    assert!(
        out.starts_with("import old: 1 new, 2 already imported,"),
        "{out}"
    );
    let out = env.admin_ok(&["import", "status", "--user", "alice@example.test"], b"");
    assert!(
        out.starts_with(&format!(
            "old  remote@example.org@127.0.0.1:{port} -> Imported  known=3  failures=0  last-run="
        )),
        "{out}"
    );
    assert!(out.contains("next fetch "), "{out}");
    // A wrong remote password: the run fails with the reason and counts as a failure.
    let out = env.admin_ok(
        &[
            "import",
            "add",
            "--user",
            "alice@example.test",
            "--id",
            "bad",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--tls",
            "none",
            "--username",
            "nobody@example.org",
        ],
        b"wrong\n",
    );
    assert!(out.starts_with("import bad added"), "{out}");
    let failed = env.admin(
        &[
            "import",
            "run",
            "--user",
            "alice@example.test",
            "--id",
            "bad",
        ],
        b"",
    );
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("the remote server refused the login"),
        "{failed:?}"
    );
    let out = env.admin_ok(&["import", "list", "--user", "alice@example.test"], b"");
    let bad_line = out.lines().find(|l| l.starts_with("bad ")).unwrap();
    assert!(bad_line.contains("failures=1"), "{out}");
    let out = env.admin_ok(
        &[
            "import",
            "remove",
            "--user",
            "alice@example.test",
            "--id",
            "bad",
        ],
        b"",
    );
    assert_eq!(out, "import bad of alice@example.test removed\n");
    // The imported mail is in the chosen folder, marked as imported (POP-4 hides it from
    // alice's POP3 once include_imported is off).
    let out = common::python(&format!(
        "import imaplib, ssl\nm = imaplib.IMAP4_SSL('127.0.0.1', {}, ssl_context=ssl._create_unverified_context())\nm.login('alice@example.test', 'alice-pw')\nprint(m.select('Imported', readonly=True)[1][0].decode())\nm.logout()\n",
        server.listeners["imaps"].port()
    ));
    assert_eq!(out, "3\n");
    let (status, _) = server.terminate();
    assert!(status.success());
}

/// Registers job `move-1` for alice@example.test: old@example.org (password `old-pw`) on
/// our own server's IMAPS port, trusting its development certificate.
fn migrate_add_from_our_imaps(env: &Env, port: &str, cert: &std::path::Path) -> String {
    env.admin_ok(
        &[
            "migrate",
            "add",
            "--user",
            "alice@example.test",
            "--id",
            "move-1",
            "--host",
            "127.0.0.1",
            "--port",
            port,
            "--tls",
            "implicit",
            "--username",
            "old@example.org",
            "--ca-file",
            cert.to_str().unwrap(),
        ],
        b"old-pw\n",
    )
}

/// `migrate run` when no server holds the destination store: the CLI runs the job itself
/// (drawing progress bars when stderr is a terminal) and prints the same per-folder summary;
/// the source comes from an administrator's `[[migration_templates]]` entry.
#[test]
fn imap_migration_from_a_template_runs_in_the_cli_when_no_server_holds_the_store_e2e() {
    let source = Env::with_listeners("", "imaps = \"127.0.0.1:0\"\n");
    source.admin_ok(&["user", "add", "old@example.org"], b"old-pw\n");
    source.admin_ok(&["deliver", "old@example.org"], &common::message("m1"));
    source.admin_ok(
        &["deliver", "old@example.org", "--folder", "Archive"],
        &common::message("m2"),
    );
    let server = source.start();
    let port = server.listeners["imaps"].port().to_string();
    let cert = source.dev_cert();
    // The destination has no running server: `migrate run` opens its store directly. Its
    // administrator offers the source as a template (MIG-1), so the user names only it.
    let dest = Env::new(&format!(
        "[[migration_templates]]\nname = \"old-server\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"implicit\"\n"
    ));
    dest.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    let bad = dest.admin(
        &[
            "migrate",
            "add",
            "--user",
            "alice@example.test",
            "--id",
            "x",
            "--template",
            "nope",
            "--username",
            "old@example.org",
        ],
        b"old-pw\n",
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--template \"nope\": no such [[migration_templates]] entry")
            && err.contains("old-server"),
        "{err}"
    );
    dest.admin_ok(
        &[
            "migrate",
            "add",
            "--user",
            "alice@example.test",
            "--id",
            "move-1",
            "--template",
            "old-server",
            "--username",
            "old@example.org",
            "--ca-file",
            cert.to_str().unwrap(),
        ],
        b"old-pw\n",
    );
    let out = dest.admin_ok(&["migrate", "run", "--user", "alice@example.test"], b"");
    assert!(
        out.starts_with("migration job move-1: completed: 2 copied ("),
        "{out}"
    );
    assert!(out.contains("  Archive: 1 copied\n"), "{out}");
    let (status, _) = server.terminate();
    assert!(status.success());
}

/// `migrate add|run|status` with our own server as the IMAP source (implicit TLS, its
/// development certificate as the trust anchor): every folder copied, a re-run copies
/// nothing twice (MIG-6), status shows the outcomes.
#[test]
fn imap_migration_cli_from_our_own_server_e2e() {
    let env = Env::with_listeners("", "imaps = \"127.0.0.1:0\"\n");
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    env.admin_ok(&["user", "add", "old@example.org"], b"old-pw\n");
    env.admin_ok(&["deliver", "old@example.org"], &common::message("m1"));
    env.admin_ok(&["deliver", "old@example.org"], &common::message("m2"));
    env.admin_ok(
        &["deliver", "old@example.org", "--folder", "Archive"],
        &common::message("m3"),
    );
    let server = env.start();
    let port = server.listeners["imaps"].port().to_string();
    let cert = env.dev_cert();
    let out = migrate_add_from_our_imaps(&env, &port, &cert);
    assert_eq!(
        out,
        format!(
            "migration job move-1 (number 1) added for alice@example.test: old@example.org@127.0.0.1:{port}\n"
        )
    );
    let out = env.admin_ok(&["migrate", "run", "--user", "alice@example.test"], b"");
    assert!(
        out.starts_with("migration job move-1: completed: 3 copied ("),
        "{out}"
    );
    assert!(out.contains("  Archive: 1 copied\n"), "{out}");
    let out = env.admin_ok(
        &[
            "migrate",
            "run",
            "--user",
            "alice@example.test",
            "--id",
            "move-1",
        ],
        b"",
    );
    assert!(
        out.starts_with("migration job move-1: completed: 0 copied (0 bytes), 3 already there"),
        "{out}"
    );
    let out = env.admin_ok(&["migrate", "status", "--user", "alice@example.test"], b"");
    assert!(
        out.starts_with(&format!(
            "1. move-1  old@example.org@127.0.0.1:{port}  completed: 0 copied"
        )),
        "{out}"
    );
    let (status, _) = server.terminate();
    assert!(status.success());
}

/// IMP-5: the server's scheduler fetches a registered import by itself (the first fetch is
/// due at once; `[policy] import_tick` makes the scheduler look every second). The test
/// waits for the imported messages to appear (bounded).
#[test]
fn automatic_fetch_runs_inside_the_server_e2e() {
    let env = Env::new("[policy]\nimport_tick = \"1s\"\n");
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    env.admin_ok(&["user", "add", "remote@example.org"], b"remote-pw\n");
    env.admin_ok(
        &["deliver", "remote@example.org"],
        &common::message("auto1"),
    );
    let server = env.start();
    let port = server.pop3().port().to_string();
    env.admin_ok(
        &[
            "import",
            "add",
            "--user",
            "alice@example.test",
            "--id",
            "auto",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--tls",
            "none",
            "--username",
            "remote@example.org",
        ],
        b"remote-pw\n",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut out = String::new();
    // Each check runs the admin command: every 200 ms, not every 10.
    let every = std::time::Duration::from_millis(200);
    let fetched = mail_testkit::poll::until_every(every, deadline, || {
        out = env.admin_ok(&["import", "status", "--user", "alice@example.test"], b"");
        out.contains("known=1")
    });
    assert!(fetched, "the scheduler did not fetch: {out}");
    assert!(out.contains("failures=0"), "{out}");
    assert!(out.contains("next fetch "), "{out}");
    let (status, _) = server.terminate();
    assert!(status.success());
}

/// A 127.0.0.1 port nothing listens on (bound, then released): connecting fails at once.
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port().to_string()
}

/// IMP-5: after `MAX_CONSECUTIVE_FAILURES` (10) failed runs automatic fetch turns itself
/// off (status says why); `import reenable` through the running server's admin socket turns
/// it back on with the failure count reset.
#[test]
fn import_reenable_after_auto_fetch_turned_off_e2e() {
    let env = Env::new("");
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    let server = env.start();
    let port = closed_port();
    let add = [
        "import",
        "add",
        "--user",
        "alice@example.test",
        "--id",
        "gone",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--tls",
        "none",
        "--username",
        "remote@example.org",
    ];
    env.admin_ok(&add, b"pw\n");
    let run = [
        "import",
        "run",
        "--user",
        "alice@example.test",
        "--id",
        "gone",
    ];
    for _ in 0..10 {
        let failed = env.admin(&run, b"");
        assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    }
    let out = env.admin_ok(&["import", "status", "--user", "alice@example.test"], b"");
    assert!(out.contains("failures=10"), "{out}");
    assert!(
        out.contains(
            "automatic fetch OFF: Automatic fetch was turned off after 10 failed attempts in a row"
        ),
        "{out}"
    );
    let reenable = [
        "import",
        "reenable",
        "--user",
        "alice@example.test",
        "--id",
        "gone",
    ];
    let out = env.admin_ok(&reenable, b"");
    assert_eq!(
        out,
        "import gone of alice@example.test: automatic fetch turned back on\n"
    );
    let out = env.admin_ok(&["import", "status", "--user", "alice@example.test"], b"");
    assert!(out.contains("failures=0"), "{out}");
    assert!(out.contains("next fetch "), "{out}");
    assert!(!out.contains("OFF"), "{out}");
    // Again: nothing to turn on, the answer says so.
    let out = env.admin_ok(&reenable, b"");
    assert_eq!(
        out,
        "import gone of alice@example.test: automatic fetch was not off; failure count reset\n"
    );
    // An unknown id is an error with the id in it.
    let bad = env.admin(
        &[
            "import",
            "reenable",
            "--user",
            "alice@example.test",
            "--id",
            "nope",
        ],
        b"",
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("import nope of alice@example.test"),
        "{bad:?}"
    );
    let (status, _) = server.terminate();
    assert!(status.success());
}

/// ACC-10: `import add` / `migrate add --oauth2 xoauth2|oauthbearer` take a bearer token
/// (from `--token-file` or stdin) instead of a password and store which mechanism to use
/// (`status` shows `auth=`). Our own server accepts no OAuth tokens, so no run is made.
#[test]
fn oauth2_sources_parse_and_are_stored() {
    let env = Env::new("");
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    let token = env.dir.path().join("token.txt");
    std::fs::write(&token, "ya29.a0-test-token\n").unwrap();
    let out = env.admin_ok(
        &[
            "import",
            "add",
            "--user",
            "alice@example.test",
            "--id",
            "gmail",
            "--provider",
            "gmail",
            "--username",
            "alice@gmail.example",
            "--oauth2",
            "xoauth2",
            "--token-file",
            token.to_str().unwrap(),
        ],
        b"",
    );
    assert!(out.starts_with("import gmail added"), "{out}");
    let out = env.admin_ok(&["import", "list", "--user", "alice@example.test"], b"");
    assert!(out.trim_end().ends_with("auth=xoauth2"), "{out}");
    // A password import shows no auth= note.
    env.admin_ok(
        &[
            "import",
            "add",
            "--user",
            "alice@example.test",
            "--id",
            "plain",
            "--host",
            "127.0.0.1",
            "--username",
            "u",
        ],
        b"pw\n",
    );
    let out = env.admin_ok(&["import", "list", "--user", "alice@example.test"], b"");
    let plain = out.lines().find(|l| l.starts_with("plain ")).unwrap();
    assert!(!plain.contains("auth="), "{out}");
    // migrate: the token on stdin.
    env.admin_ok(
        &[
            "migrate",
            "add",
            "--user",
            "alice@example.test",
            "--id",
            "m365",
            "--host",
            "outlook.office365.example",
            "--username",
            "alice@contoso.example",
            "--oauth2",
            "oauthbearer",
        ],
        b"eyJ0eXAi.token\n",
    );
    let out = env.admin_ok(&["migrate", "status", "--user", "alice@example.test"], b"");
    assert!(
        out.starts_with(
            "1. m365  alice@contoso.example@outlook.office365.example:993  not run yet  auth=oauthbearer"
        ),
        "{out}"
    );
    // Unknown mechanism, --token-file without --oauth2, empty token file: usage errors.
    let bad = env.admin(
        &[
            "migrate",
            "add",
            "--user",
            "alice@example.test",
            "--id",
            "x",
            "--host",
            "h",
            "--username",
            "u",
            "--oauth2",
            "plain",
        ],
        b"t\n",
    );
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    let bad = env.admin(
        &[
            "migrate",
            "add",
            "--user",
            "alice@example.test",
            "--id",
            "x",
            "--host",
            "h",
            "--username",
            "u",
            "--token-file",
            token.to_str().unwrap(),
        ],
        b"t\n",
    );
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    let empty = env.dir.path().join("empty.txt");
    std::fs::write(&empty, "\n").unwrap();
    let bad = env.admin(
        &[
            "import",
            "add",
            "--user",
            "alice@example.test",
            "--id",
            "x",
            "--provider",
            "gmail",
            "--username",
            "u",
            "--oauth2",
            "oauthbearer",
            "--token-file",
            empty.to_str().unwrap(),
        ],
        b"",
    );
    assert_ne!(bad.status.code(), Some(0), "{bad:?}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("is empty"),
        "{bad:?}"
    );
}
