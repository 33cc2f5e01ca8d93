//! mbsync (isync) syncs a whole account both ways against the server: the first run pulls
//! every folder; local flag changes, deletions and a new local folder are pushed while a
//! new server-side delivery is pulled; a third run finds nothing to do (its counters are
//! all zero and the local Maildir is unchanged).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Env, python};

fn mbsync_available() -> bool {
    common::have("mbsync", "the two-way sync test runs Debian's isync")
}

/// Runs mbsync; returns its combined output. Fails the test on a non-zero exit.
fn mbsync(rc: &Path) -> String {
    let child = Command::new("mbsync")
        .arg("-c")
        .arg(rc)
        .arg("-a")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = common::wait_output(child, Duration::from_secs(120));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "mbsync failed: {}\n{text}",
        out.status
    );
    text
}

/// Every file under `dir` (relative path), skipping mbsync's state files.
fn tree(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                if !rel.contains(".mbsync") && !rel.contains(".uidvalidity") {
                    out.insert(rel);
                }
            }
        }
    }
    out
}

fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn mbsync_two_way_sync_then_nothing_to_do() {
    if !mbsync_available() || !common::have("python3", "the test checks the server with imaplib") {
        return;
    }
    let env = Env::with_listeners("", "imap = \"127.0.0.1:0\"\n");
    env.admin_ok(&["user", "add", "alice@example.test"], b"alice-pw\n");
    for s in ["one", "two", "three"] {
        env.admin_ok(&["deliver", "alice@example.test"], &common::message(s));
    }
    env.admin_ok(
        &["deliver", "alice@example.test", "--folder", "Sent"],
        &common::message("sent-one"),
    );
    let server = env.start();
    let imap = server.listeners["imap"].port();
    let local = env.dir.path().join("maildir");
    std::fs::create_dir_all(&local).unwrap();
    let rc = env.dir.path().join("mbsyncrc");
    // Loopback is in the tests' plaintext_networks, so mbsync can log in without TLS.
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount a\nHost 127.0.0.1\nPort {imap}\nUser alice@example.test\nPass alice-pw\nSSLType None\nAuthMechs LOGIN\n\n\
IMAPStore remote\nAccount a\n\n\
MaildirStore local\nPath {p}/\nInbox {p}/INBOX\nSubFolders Verbatim\n\n\
Channel c\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\nSyncState *\nSync All\n",
            p = local.display()
        ),
    )
    .unwrap();

    // 1. Everything is pulled.
    let first = mbsync(&rc);
    let inbox_new = local.join("INBOX").join("cur");
    let inbox_files: Vec<_> = files_in(&inbox_new)
        .into_iter()
        .chain(files_in(&local.join("INBOX").join("new")))
        .collect();
    assert_eq!(inbox_files.len(), 3, "{first}\n{:?}", tree(&local));
    let sent: Vec<_> = files_in(&local.join("Sent").join("cur"))
        .into_iter()
        .chain(files_in(&local.join("Sent").join("new")))
        .collect();
    assert_eq!(sent.len(), 1, "{:?}", tree(&local));
    for f in ["Drafts", "Junk", "Trash", "Archive"] {
        assert!(local.join(f).is_dir(), "folder {f} created locally");
    }

    // 2. Local changes: flag one message, delete another, a new folder with a message;
    //    and a new delivery on the server.
    let mut inbox_files = inbox_files;
    inbox_files.sort();
    let flag_me = inbox_files[0].clone();
    let name = flag_me.file_name().unwrap().to_string_lossy().into_owned();
    let base = name.split(":2,").next().unwrap().to_string();
    let old_flags = name.split(":2,").nth(1).unwrap_or("").to_string();
    let mut flags: Vec<char> = old_flags.chars().chain(['F', 'S']).collect();
    flags.sort_unstable();
    flags.dedup();
    let new_name = format!("{base}:2,{}", flags.into_iter().collect::<String>());
    std::fs::rename(&flag_me, local.join("INBOX").join("cur").join(&new_name)).unwrap();
    std::fs::remove_file(&inbox_files[1]).unwrap();
    let projects = local.join("Projects");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(projects.join(sub)).unwrap();
    }
    std::fs::write(
        projects.join("cur").join("1700000000.local1.host:2,S"),
        b"From: alice@example.test\r\nSubject: plan\r\nMessage-ID: <plan@local>\r\n\r\nthe plan\r\n",
    )
    .unwrap();
    env.admin_ok(&["deliver", "alice@example.test"], &common::message("four"));
    let second = mbsync(&rc);

    // The server has the flag, the deletion, the new folder; locally the new message.
    let script = format!(
        r#"
import imaplib
m = imaplib.IMAP4('127.0.0.1', {imap})
m.login('alice@example.test', 'alice-pw')
m.select('INBOX')
typ, d = m.fetch('1:*', '(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
print(sorted(x[1].decode().strip() + ' ' + x[0].decode().split('FLAGS ')[1].split(')')[0] + ')' for x in d if isinstance(x, tuple)))
print(m.select('Projects'))
typ, d = m.fetch('1', '(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
print(d[0][1].decode().strip(), 'Seen' in d[0][0].decode())
m.logout()
"#
    );
    let out = python(&script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "['Subject: four ()', 'Subject: one (\\\\Seen \\\\Flagged)', 'Subject: three ()']",
        "mbsync output:\n{second}\nserver:\n{out}"
    );
    assert_eq!(lines[1], "('OK', [b'1'])", "{out}");
    assert_eq!(lines[2], "Subject: plan True", "{out}");
    let inbox_now: usize = files_in(&local.join("INBOX").join("cur")).len()
        + files_in(&local.join("INBOX").join("new")).len();
    assert_eq!(inbox_now, 3, "{second}");

    // 3. Nothing left to do: the same local files, and no folder on the server changed
    //    (MESSAGES, UIDNEXT and HIGHESTMODSEQ of every folder are the same before and after).
    let status = format!(
        r#"
import imaplib
m = imaplib.IMAP4('127.0.0.1', {imap})
m.login('alice@example.test', 'alice-pw')
for line in sorted(m.list()[1]):
    name = line.decode().rsplit(' ', 1)[1]
    print(m.status(name, '(MESSAGES UIDNEXT HIGHESTMODSEQ)')[1][0].decode())
m.logout()
"#
    );
    let before = tree(&local);
    let server_before = python(&status);
    let third = mbsync(&rc);
    assert_eq!(
        tree(&local),
        before,
        "the third run changed the Maildir:\n{third}"
    );
    assert_eq!(
        python(&status),
        server_before,
        "the third run changed the server:\n{third}"
    );
    assert!(
        server_before.contains("Projects (MESSAGES 1 "),
        "{server_before}"
    );
}
