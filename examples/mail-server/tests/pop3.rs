//! End-to-end tests of `mail-server serve`: POP3 through Python's poplib and through our
//! own `pop3_proto::tokio::Client`, admin commands while the server runs (admin socket) and
//! while it does not (direct store access), shutdown and restart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::{Env, Server, message, py_prelude, python};
use mail_net::TlsConnector;
use pop3_proto::tokio::Client;

const PY_WHY: &str = "the poplib interop tests drive the server with Python";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Adds alice@example.test with password "alice-pw" through the CLI.
fn add_alice(env: &Env) {
    let out = env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    assert_eq!(out, "created alice@example.test\n");
}

fn deliver(env: &Env, to: &str, msg: &[u8]) -> String {
    env.admin_ok(&["deliver", to], msg)
}

#[test]
fn poplib_session_retr_dele_quit_and_stls() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::new("");
    // Server not running yet: the CLI opens the store directly.
    add_alice(&env);
    for s in ["one", "two", "six"] {
        let out = deliver(&env, "alice@example.test", &message(s));
        assert!(
            out.starts_with("delivered to alice@example.test INBOX (UID "),
            "{out}"
        );
    }
    let server = env.start();
    let script = format!(
        r#"{}
p = poplib.POP3(HOST, POP3)
print(p.getwelcome().decode())
caps = p.capa()
print('STLS' in caps, 'UIDL' in caps, 'USER' in caps)
p.stls(context=ctx)
p.user('alice@example.test')
print(p.pass_('alice-pw').decode())
print(p.stat())
resp, listing, _ = p.list()
print(resp.decode(), [l.decode() for l in listing])
resp, uidls, _ = p.uidl()
print(len(set(u.split()[1] for u in uidls)))
resp, lines, octets = p.retr(2)
print(resp.decode(), lines[2].decode(), lines[-1].decode(), octets)
print(p.dele(1).decode())
print(p.quit().decode())
p = poplib.POP3_SSL(HOST, POP3S, context=ctx)
p.user('alice@example.test')
p.pass_('alice-pw')
print(p.stat())
resp, uidls2, _ = p.uidl()
print([u.split()[1] for u in uidls2] == [u.split()[1] for u in uidls[1:]])
p.quit()
"#,
        py_prelude(&server)
    );
    let out = python(&script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "+OK POP3 server ready");
    assert_eq!(lines[1], "True True True");
    assert_eq!(
        lines[2],
        "+OK maildrop locked and ready, 3 messages (375 octets)"
    );
    assert_eq!(lines[3], "(3, 375)");
    assert_eq!(
        lines[4],
        "+OK 3 messages (375 octets) ['1 125', '2 125', '3 125']"
    );
    assert_eq!(lines[5], "3");
    // poplib un-stuffs ".dot line" itself.
    assert_eq!(lines[6], "+OK 125 octets Subject: two .dot line 125");
    assert_eq!(lines[7], "+OK message 1 deleted");
    assert!(lines[8].starts_with("+OK"), "{}", lines[8]);
    assert_eq!(lines[9], "(2, 250)");
    assert_eq!(lines[10], "True");
    let (status, _) = server.terminate();
    assert!(status.success(), "{status}");
}

async fn tls_connector(env: &Env) -> TlsConnector {
    let pem = std::fs::read(env.dev_cert()).unwrap();
    TlsConnector::from(mail_net::tls::client_config_from_pem_roots(&pem).unwrap())
}

#[test]
fn rust_client_stls_and_implicit_tls_with_verified_dev_certificate() {
    let env = Env::new("");
    add_alice(&env);
    deliver(&env, "alice@example.test", &message("hello"));
    let server = env.start();
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let connector = tls_connector(&env).await;
            // Plain port, STLS, certificate verified against the development certificate.
            let mut c = Client::connect(server.pop3()).await.unwrap();
            assert!(!c.is_tls());
            c.stls(&connector, "localhost").await.unwrap();
            assert!(c.is_tls());
            c.login("alice@example.test", "alice-pw").await.unwrap();
            assert_eq!(c.stat().await.unwrap(), (1, 131));
            let uidl = c.uidl().await.unwrap();
            assert_eq!(uidl.len(), 1);
            let body = c.retr(1).await.unwrap();
            assert_eq!(body, message("hello"));
            let top = c.top(1, 0).await.unwrap();
            assert!(top.starts_with(b"From: Tester"));
            assert!(
                top.ends_with(b"\r\n\r\n"),
                "{:?}",
                String::from_utf8_lossy(&top)
            );
            c.quit().await.unwrap();

            // Implicit TLS.
            let mut c = Client::connect_tls(server.pop3s(), &connector, "localhost")
                .await
                .unwrap();
            assert!(c.is_tls());
            c.login("alice@example.test", "alice-pw").await.unwrap();
            assert_eq!(c.uidl().await.unwrap(), uidl);
            c.quit().await.unwrap();

            // Wrong password: [AUTH].
            let mut c = Client::connect(server.pop3()).await.unwrap();
            let e = c.login("alice@example.test", "nope").await.unwrap_err();
            assert!(e.to_string().contains("AUTH"), "{e}");
        })
        .await
        .unwrap();
    });
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn admin_commands_through_the_socket_while_serving() {
    let env = Env::new("");
    let server = env.start();
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(120), async {
            // user add while the server runs (the store is locked: the socket is used).
            add_alice(&env);
            let list = env.admin_ok(&["user", "list"], b"");
            assert_eq!(
                list,
                "alice@example.test  access=pop3,imap,smtp  password=set  apop=off\n"
            );

            // deliver while serving; the message shows in STAT.
            let mut c = Client::connect(server.pop3()).await.unwrap();
            c.login("alice@example.test", "alice-pw").await.unwrap();
            assert_eq!(c.stat().await.unwrap(), (0, 0));
            c.quit().await.unwrap();
            let out = deliver(&env, "alice@example.test", b"Subject: lf only\n\nline\n");
            assert!(out.contains("(UID 1, "), "{out}");
            let mut c = Client::connect(server.pop3()).await.unwrap();
            c.login("alice@example.test", "alice-pw").await.unwrap();
            // Bare LF became CRLF: 26 bytes.
            assert_eq!(c.stat().await.unwrap(), (1, 26));
            assert_eq!(
                c.retr(1).await.unwrap(),
                b"Subject: lf only\r\n\r\nline\r\n"
            );
            c.quit().await.unwrap();

            // Invalid messages are refused with the reason, nothing stored.
            let out = env.admin(&["deliver", "alice@example.test"], b"just some text\n");
            assert_eq!(out.status.code(), Some(1));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("not a mail message"), "{err}");
            let out = env.admin(&["deliver", "alice@example.test"], b"");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("empty"),
                "{out:?}"
            );
            let out = env.admin(&["deliver", "nobody@example.test"], &message("x"));
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("no such account"),
                "{out:?}"
            );
            let out = env.admin(
                &["deliver", "alice@example.test", "--folder", "Nope"],
                &message("x"),
            );
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("no such mailbox"),
                "{out:?}"
            );
            let mut c = Client::connect(server.pop3()).await.unwrap();
            c.login("alice@example.test", "alice-pw").await.unwrap();
            assert_eq!(c.stat().await.unwrap(), (1, 26));
            c.quit().await.unwrap();

            // Password change takes effect at once.
            env.admin_ok(&["user", "passwd", "alice@example.test"], b"new-pw\n");
            let mut c = Client::connect(server.pop3()).await.unwrap();
            c.login("alice@example.test", "new-pw").await.unwrap();
            c.quit().await.unwrap();

            // App password: printed once, works, listed, revoked -> refused.
            let out = env.admin_ok(&["app-password", "add", "alice@example.test", "phone"], b"");
            let first = out.lines().next().unwrap();
            let secret = first.rsplit(' ').next().unwrap().to_string();
            assert!(
                first.starts_with("app password \"phone\" for alice@example.test: "),
                "{out}"
            );
            let mut c = Client::connect(server.pop3()).await.unwrap();
            c.login("alice@example.test", &secret).await.unwrap();
            c.quit().await.unwrap();
            let list = env.admin_ok(&["app-password", "list", "alice@example.test"], b"");
            assert!(list.starts_with("phone  created="), "{list}");
            assert!(
                !list.contains("last-used=never"),
                "a login marks it used: {list}"
            );
            let out = env.admin_ok(
                &["app-password", "revoke", "alice@example.test", "phone"],
                b"",
            );
            assert_eq!(
                out,
                "app password \"phone\" of alice@example.test revoked\n"
            );
            let mut c = Client::connect(server.pop3()).await.unwrap();
            let e = c.login("alice@example.test", &secret).await.unwrap_err();
            assert!(e.to_string().contains("AUTH"), "{e}");

            // POP3 access off: refused with a text that says so, after a correct password.
            let out = env.admin_ok(
                &["user", "access", "alice@example.test", "--pop3", "off"],
                b"",
            );
            assert_eq!(out, "alice@example.test  access=imap,smtp\n");
            let mut c = Client::connect(server.pop3()).await.unwrap();
            let e = c.login("alice@example.test", "new-pw").await.unwrap_err();
            assert!(e.to_string().contains("POP3 access is disabled"), "{e}");
            env.admin_ok(
                &["user", "access", "alice@example.test", "--pop3", "on"],
                b"",
            );
            let mut c = Client::connect(server.pop3()).await.unwrap();
            c.login("alice@example.test", "new-pw").await.unwrap();

            // A second session on the same maildrop is refused [IN-USE].
            let mut c2 = Client::connect(server.pop3()).await.unwrap();
            let e = c2.login("alice@example.test", "new-pw").await.unwrap_err();
            assert!(e.to_string().contains("IN-USE"), "{e}");
            c.quit().await.unwrap();

            // Errors from the server side of the socket reach the CLI.
            let out = env.admin(&["user", "add", "alice@example.test"], b"x\n");
            assert_eq!(out.status.code(), Some(1));
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("already in use"),
                "{out:?}"
            );
            let out = env.admin(&["user", "add", "eve@elsewhere.test"], b"x\n");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("not in a local domain"),
                "{out:?}"
            );
        })
        .await
        .unwrap();
    });
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn sigterm_exits_cleanly_and_a_restart_keeps_everything() {
    let env = Env::new("[limits]\nshutdown_grace = \"1s\"\n");
    add_alice(&env);
    for s in ["a", "b", "c"] {
        deliver(&env, "alice@example.test", &message(s));
    }
    let server = env.start();
    let (uidl_before, uidl_after_dele) = rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let mut c = Client::connect(server.pop3()).await.unwrap();
            c.login("alice@example.test", "alice-pw").await.unwrap();
            let before = c.uidl().await.unwrap();
            c.dele(2).await.unwrap();
            c.quit().await.unwrap();
            let mut c = Client::connect(server.pop3()).await.unwrap();
            c.login("alice@example.test", "alice-pw").await.unwrap();
            let after = c.uidl().await.unwrap();
            c.quit().await.unwrap();
            (before, after)
        })
        .await
        .unwrap()
    });
    assert_eq!(uidl_before.len(), 3);
    assert_eq!(uidl_after_dele.len(), 2);
    assert_eq!(uidl_after_dele[0].uid, uidl_before[0].uid);
    assert_eq!(uidl_after_dele[1].uid, uidl_before[2].uid);
    // A session left open does not block the shutdown beyond the grace period.
    let idle = std::net::TcpStream::connect(server.pop3()).unwrap();
    let (status, rest) = server.terminate();
    drop(idle);
    assert!(status.success(), "{status}");
    assert_eq!(rest, ["shutting down", "stopped"]);
    assert!(
        !env.data.join("admin.sock").exists(),
        "the admin socket is removed"
    );

    // The store is unlocked: the CLI works directly, and a restart serves the same UIDLs.
    deliver(&env, "alice@example.test", &message("d"));
    let server = env.start();
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let mut c = Client::connect(server.pop3()).await.unwrap();
            c.login("alice@example.test", "alice-pw").await.unwrap();
            let now = c.uidl().await.unwrap();
            assert_eq!(now.len(), 3);
            assert_eq!(now[0].uid, uidl_after_dele[0].uid);
            assert_eq!(now[1].uid, uidl_after_dele[1].uid);
            assert!(now[2].uid != now[1].uid);
            c.quit().await.unwrap();
        })
        .await
        .unwrap();
    });
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn a_second_server_on_the_same_data_directory_is_refused() {
    let env = Env::new("");
    let server = env.start();
    let out = env.admin(&["serve"], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another mail-server"), "{err}");
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn apop_only_for_accounts_that_opted_in() {
    if !common::have("python3", PY_WHY) {
        return;
    }
    let env = Env::new("[pop3]\napop = true\n");
    add_alice(&env);
    env.admin_ok(&["user", "add", "bob@example.test"], b"bob-pw\n");
    let out = env.admin_ok(
        &["user", "apop-secret", "alice@example.test"],
        b"alice-apop\n",
    );
    assert!(
        out.starts_with("APOP secret stored for alice@example.test"),
        "{out}"
    );
    let server = env.start();
    let script = format!(
        r#"{}
p = poplib.POP3(HOST, POP3)
print(p.getwelcome().decode().split(' <')[0], '<' in p.getwelcome().decode())
print(p.apop('alice@example.test', 'alice-apop').decode())
p.quit()
p = poplib.POP3(HOST, POP3)
try:
    p.apop('bob@example.test', 'bob-pw')
    print('bob apop accepted')
except poplib.error_proto as e:
    print(e.args[0].decode())
"#,
        py_prelude(&server)
    );
    let out = python(&script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "+OK POP3 server ready True");
    assert!(
        lines[1].starts_with("+OK maildrop locked and ready"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "-ERR [AUTH] authentication failed");
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn curl_lists_and_retrieves_over_pop3s() {
    if !common::have("curl", "the curl interop test uses curl's pop3s:// support") {
        return;
    }
    let env = Env::new("");
    add_alice(&env);
    deliver(&env, "alice@example.test", &message("curl"));
    let server = env.start();
    let url = format!("pop3s://127.0.0.1:{}/", server.pop3s().port());
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-k",
            "--max-time",
            "30",
            "--user",
            "alice@example.test:alice-pw",
            &url,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1 128\r\n");
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-k",
            "--max-time",
            "30",
            "--user",
            "alice@example.test:alice-pw",
            &format!("{url}1"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, message("curl"));
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn no_config_demo_start_in_a_fresh_directory() {
    // The embedded configuration listens on fixed ports; skip when another program holds
    // them (the check binds and releases them).
    for port in [2110u16, 2995, 2143, 2993, 2525, 2587, 2465] {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            eprintln!("skipping: 127.0.0.1:{port} is in use, the no-config demo needs it");
            return;
        }
    }
    let cwd = tempfile::tempdir().unwrap();
    let server = Server::start(None, cwd.path());
    let banner = server.banner.join("\n");
    assert!(
        banner.contains("listening pop3 127.0.0.1:2110 (plaintext, STLS offered)"),
        "{banner}"
    );
    assert!(
        banner.contains("listening pop3s 127.0.0.1:2995 (implicit TLS)"),
        "{banner}"
    );
    assert!(
        banner.contains("demo account: demo@example.test password: demo-password"),
        "{banner}"
    );
    assert!(banner.contains("self-signed"), "{banner}");
    assert!(
        banner
            .contains("curl -k --user 'demo@example.test:demo-password' pop3s://127.0.0.1:2995/1"),
        "{banner}"
    );
    assert!(cwd.path().join("mail-data/tls/dev-cert.pem").exists());
    let cert_before = std::fs::read(cwd.path().join("mail-data/tls/dev-cert.pem")).unwrap();
    let uidl = rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let mut c = Client::connect(server.pop3()).await.unwrap();
            c.login("demo@example.test", "demo-password").await.unwrap();
            let (n, _) = c.stat().await.unwrap();
            assert_eq!(n, 3);
            let u = c.uidl().await.unwrap();
            c.quit().await.unwrap();
            u
        })
        .await
        .unwrap()
    });
    let (status, _) = server.terminate();
    assert!(status.success());
    // Restart: same certificate, the demo INBOX is not duplicated, UIDLs unchanged.
    let server = Server::start(None, cwd.path());
    assert_eq!(
        std::fs::read(cwd.path().join("mail-data/tls/dev-cert.pem")).unwrap(),
        cert_before
    );
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let mut c = Client::connect(server.pop3()).await.unwrap();
            c.login("demo@example.test", "demo-password").await.unwrap();
            assert_eq!(c.uidl().await.unwrap(), uidl);
            c.quit().await.unwrap();
        })
        .await
        .unwrap();
    });
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn check_config_prints_the_effective_config_and_names_unknown_keys() {
    let env = Env::new("");
    let out = env.admin_ok(&["check-config"], b"");
    assert!(
        out.contains("domains = [\"example.test\", \"example.org\"]"),
        "{out}"
    );
    assert!(out.contains("pop3 = \"127.0.0.1:0\""), "{out}");
    assert!(out.contains("idle_timeout = \"10m\""), "{out}");
    let bad = env.dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "data_dir = \"/tmp/x\"\n[listeners]\npop3 = \"127.0.0.1:0\"\nimap4 = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let out = common::run_bin(Some(&bad), env.dir.path(), &["check-config"], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `imap4`"), "{err}");
    assert!(err.contains("bad.toml"), "{err}");
    // Without --config: the embedded defaults.
    let out = common::run_bin(None, env.dir.path(), &["check-config"], b"");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pop3s = \"127.0.0.1:2995\""), "{text}");
    assert!(text.contains("demo_account = true"), "{text}");
}

#[test]
fn export_and_import_maildir_and_mbox_through_both_paths() {
    let env = Env::new("");
    add_alice(&env);
    env.admin_ok(&["user", "add", "bob@example.test"], b"bob-pw\n");
    env.admin_ok(&["user", "add", "carol@example.org"], b"carol-pw\n");
    for s in ["one", "two"] {
        deliver(&env, "alice@example.test", &message(s));
    }
    deliver(&env, "alice@example.test", &message("sent"));
    env.admin_ok(
        &["deliver", "alice@example.test", "--folder", "Sent"],
        &message("out"),
    );
    let maildir = env.dir.path().join("export-maildir");
    let mboxdir = env.dir.path().join("export-mbox");
    let server = env.start();
    // While serving: through the socket.
    let out = env.admin_ok(
        &["export", "alice@example.test", maildir.to_str().unwrap()],
        b"",
    );
    assert!(out.starts_with("exported 4 messages ("), "{out}");
    let out = env.admin_ok(
        &[
            "export",
            "alice@example.test",
            mboxdir.to_str().unwrap(),
            "--format",
            "mbox",
        ],
        b"",
    );
    assert!(out.starts_with("exported 4 messages ("), "{out}");
    let inbox_mbox = std::fs::read_to_string(mboxdir.join("INBOX.mbox")).unwrap();
    assert_eq!(
        inbox_mbox
            .lines()
            .filter(|l| l.starts_with("From "))
            .count(),
        3
    );
    assert!(mboxdir.join("Sent.mbox").exists());
    let out = env.admin_ok(
        &[
            "import",
            "bob@example.test",
            mboxdir.join("INBOX.mbox").to_str().unwrap(),
            "--format",
            "mbox",
        ],
        b"",
    );
    assert!(out.starts_with("imported 3 messages ("), "{out}");
    let out = env.admin(
        &[
            "import",
            "bob@example.test",
            "/nonexistent/dir",
            "--format",
            "mbox",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dir"),
        "{out:?}"
    );
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let mut c = Client::connect(server.pop3()).await.unwrap();
            c.login("bob@example.test", "bob-pw").await.unwrap();
            assert_eq!(c.stat().await.unwrap(), (3, 378));
            assert_eq!(c.retr(1).await.unwrap(), message("one"));
            c.quit().await.unwrap();
        })
        .await
        .unwrap();
    });
    let (status, _) = server.terminate();
    assert!(status.success());

    // Stopped: the CLI opens the store directly.
    let out = env.admin_ok(
        &["import", "carol@example.org", maildir.to_str().unwrap()],
        b"",
    );
    assert!(out.starts_with("imported 4 messages ("), "{out}");
    let server = env.start();
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let mut c = Client::connect(server.pop3()).await.unwrap();
            c.login("carol@example.org", "carol-pw").await.unwrap();
            // POP3 sees INBOX only; Sent came along but is not in the maildrop.
            assert_eq!(c.stat().await.unwrap(), (3, 378));
            c.quit().await.unwrap();
        })
        .await
        .unwrap();
    });
    let (status, _) = server.terminate();
    assert!(status.success());

    // The export is plain Maildir: Python's mailbox module reads it.
    if common::have("python3", PY_WHY) {
        let out = python(&format!(
            "import mailbox\nm = mailbox.Maildir({:?}, create=False)\nprint(sorted(x['Subject'] for x in m))\nprint(sorted(m.list_folders()))\nprint(len(m.get_folder('Sent')))\n",
            maildir.to_str().unwrap()
        ));
        assert_eq!(
            out,
            "['one', 'sent', 'two']\n['Archive', 'Drafts', 'Junk', 'Sent', 'Trash']\n1\n"
        );
    }
}

#[test]
fn concurrent_admin_commands_without_a_server_wait_for_the_store_lock() {
    let env = Env::new("");
    add_alice(&env);
    let children: Vec<_> = (0..4)
        .map(|i| {
            let mut c = std::process::Command::new(common::BIN)
                .args([
                    "--config",
                    env.config.to_str().unwrap(),
                    "deliver",
                    "alice@example.test",
                ])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write as _;
            c.stdin
                .take()
                .unwrap()
                .write_all(&message(&format!("c{i}")))
                .unwrap();
            c
        })
        .collect();
    for c in children {
        let out = common::wait_output(c, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let server = env.start();
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let mut c = Client::connect(server.pop3()).await.unwrap();
            c.login("alice@example.test", "alice-pw").await.unwrap();
            assert_eq!(c.stat().await.unwrap().0, 4);
            c.quit().await.unwrap();
        })
        .await
        .unwrap();
    });
    let (status, _) = server.terminate();
    assert!(status.success());
}

/// fetchmail in "keep" (leave on server) mode with a UIDL id file: every run fetches only
/// what is new, including after a server restart (stable UIDLs, pain point 3 of the field
/// notes).
#[test]
fn fetchmail_keep_uidl_fetches_only_new_mail_across_restarts() {
    if !common::have(
        "fetchmail",
        "the leave-on-server interop test uses fetchmail",
    ) {
        return;
    }
    let env = Env::new("");
    add_alice(&env);
    for s in ["fm1", "fm2"] {
        deliver(&env, "alice@example.test", &message(s));
    }
    let work = tempfile::tempdir().unwrap();
    let mbox = work.path().join("mbox");
    let ids = work.path().join("fetchids");
    let rc = work.path().join("fetchmailrc");
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "root".into());
    let fetch = |port: u16| {
        std::fs::write(
            &rc,
            format!(
                "set no bouncemail\nset idfile \"{}\"\npoll 127.0.0.1 service {port} protocol pop3 uidl auth password\n  \
                 user \"alice@example.test\" there with password \"alice-pw\" is \"{user}\" here\n  \
                 keep\n  ssl no sslcertck\n  mda \"cat >> {}\"\n",
                ids.display(),
                mbox.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let child = std::process::Command::new("fetchmail")
            .arg("-f")
            .arg(&rc)
            .args(["--nodetach", "--nosyslog"])
            .env("HOME", work.path())
            .env("FETCHMAILHOME", work.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = common::wait_output(child, Duration::from_secs(60));
        let count = std::fs::read_to_string(&mbox)
            .unwrap_or_default()
            .matches("Subject: fm")
            .count();
        (out, count)
    };
    let server = env.start();
    let (out, count) = fetch(server.pop3s().port());
    assert!(out.status.success(), "{out:?}");
    assert_eq!(count, 2);
    deliver(&env, "alice@example.test", &message("fm3"));
    let (out, count) = fetch(server.pop3s().port());
    assert!(out.status.success(), "{out:?}");
    assert_eq!(count, 3, "only the new message is fetched");
    let (status, _) = server.terminate();
    assert!(status.success());

    let server = env.start();
    let (out, count) = fetch(server.pop3s().port());
    // fetchmail exits 1 ("no mail") when there is nothing new.
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(count, 3, "nothing is fetched twice after a restart");
    let (status, _) = server.terminate();
    assert!(status.success());
}
