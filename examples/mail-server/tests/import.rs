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
