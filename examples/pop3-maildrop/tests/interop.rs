//! Real clients against the example server: Python's poplib, curl, fetchmail.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::Command;

use common::Server;
use mail_testkit::peer::require;
use mail_testkit::process::{Ran, run};

const SSL_CTX: &str = "import ssl\nctx = ssl.create_default_context()\nctx.check_hostname = False\nctx.verify_mode = ssl.CERT_NONE\n";

fn python(script: &str) -> String {
    let Ran {
        ok,
        stdout: out,
        stderr: err,
    } = run(Command::new("python3").arg("-c").arg(script));
    assert!(ok, "python failed:\n{out}\n{err}");
    out
}

#[test]
fn poplib_session_user_pass_list_uidl_top_retr_dele_rset_quit() {
    if !require("python3", "poplib interop") {
        return;
    }
    let s = Server::start(&[]);
    let script = format!(
        "import poplib, hashlib\n\
         p = poplib.POP3('127.0.0.1', {port}, timeout=30)\n\
         print(p.getwelcome().decode())\n\
         print(sorted(p.capa().keys()))\n\
         print(p.user('u').decode()); print(p.pass_('p').decode())\n\
         print(p.stat())\n\
         r, lines, n = p.list(); print(r.decode(), [l.decode() for l in lines])\n\
         print(p.uidl(2).decode())\n\
         r, lines, n = p.retr(2); print(r.decode(), hashlib.sha256(b''.join(l + b'\\r\\n' for l in lines)).hexdigest())\n\
         r, lines, n = p.retr(4); print(r.decode(), n, hashlib.sha256(b''.join(l + b'\\r\\n' for l in lines)).hexdigest())\n\
         r, lines, n = p.top(3, 1); print(r.decode(), lines[-2:])\n\
         print(p.dele(1).decode())\n\
         try:\n    p.retr(1)\nexcept poplib.error_proto as e:\n    print(e)\n\
         try:\n    p.list(9)\nexcept poplib.error_proto as e:\n    print(e)\n\
         print(p.rset().decode())\n\
         print(p.dele(2).decode())\n\
         print(p.quit().decode())\n",
        port = s.pop3
    );
    let out = python(&script);
    let lines: Vec<&str> = out.lines().collect();
    let sha = |name: &str| {
        use std::fmt::Write as _;
        let data = common::crlf(&std::fs::read(common::sample_dir().join(name)).unwrap());
        // unstuffed lines as poplib returns them, joined with CRLF: same bytes as the file
        let mut h = String::new();
        for b in sha256(&data) {
            write!(h, "{b:02x}").unwrap();
        }
        h
    };
    assert_eq!(lines[0], "+OK POP3 server ready");
    assert_eq!(
        lines[1],
        "['AUTH-RESP-CODE', 'IMPLEMENTATION', 'PIPELINING', 'RESP-CODES', 'SASL', 'STLS', 'TOP', 'UIDL', 'USER']"
    );
    assert_eq!(lines[2], "+OK send PASS");
    assert_eq!(
        lines[3],
        "+OK maildrop locked and ready, 4 messages (1123632 octets)"
    );
    assert_eq!(lines[4], "(4, 1123632)");
    assert_eq!(
        lines[5],
        "+OK 4 messages (1123632 octets) ['1 628', '2 419', '3 957', '4 1121628']"
    );
    assert_eq!(lines[6], "+OK 2 a76863aa6ff66802-402");
    assert_eq!(lines[7], format!("+OK 419 octets {}", sha("02-dots.eml")));
    assert!(lines[8].starts_with("+OK 1121628 octets "), "{}", lines[8]);
    assert!(lines[8].ends_with(&sha("04-big.eml")), "{}", lines[8]);
    assert_eq!(
        lines[9],
        "+OK top of message follows [b'', b'This is a multi-part message in MIME format.']"
    );
    assert_eq!(lines[10], "+OK message 1 deleted");
    assert_eq!(lines[11], "b'-ERR message 1 already deleted'");
    assert_eq!(
        lines[12],
        "b'-ERR no such message, only 3 messages in maildrop'"
    );
    assert_eq!(lines[13], "+OK maildrop has 4 messages (1123632 octets)");
    assert_eq!(lines[14], "+OK message 2 deleted");
    assert_eq!(lines[15], "+OK POP3 server signing off (3 messages left)");
    // DELE 1 was undone by RSET; DELE 2 + QUIT removed the file.
    assert_eq!(
        s.files(),
        ["01-welcome.eml", "03-multipart.eml", "04-big.eml"]
    );
}

/// A tiny SHA-256 so the test needs no extra crate (FIPS 180-4).
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for (a, b) in h.iter_mut().zip(v) {
            *a = a.wrapping_add(b);
        }
    }
    let mut out = [0u8; 32];
    for (i, x) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

#[test]
fn poplib_apop_stls_and_pop3s() {
    if !require("python3", "poplib interop") {
        return;
    }
    let s = Server::start(&["--apop"]);
    let script = format!(
        "import poplib\n{SSL_CTX}\
         p = poplib.POP3('127.0.0.1', {port}, timeout=30)\n\
         print('<' in p.getwelcome().decode())\n\
         print(p.apop('u', 'p').decode())\n\
         print(p.stat())\n\
         p.quit()\n\
         p = poplib.POP3('127.0.0.1', {port}, timeout=30)\n\
         try:\n    p.apop('u', 'wrong')\nexcept poplib.error_proto as e:\n    print(e)\n\
         print(p.stls(ctx).decode())\n\
         print('STLS' in p.capa())\n\
         p.user('u'); print(p.pass_('p').decode())\n\
         print(p.uidl(1).decode())\n\
         p.quit()\n\
         p = poplib.POP3_SSL('127.0.0.1', {tport}, context=ctx, timeout=30)\n\
         p.user('u'); p.pass_('p'); print(p.stat()); p.quit()\n",
        port = s.pop3,
        tport = s.pop3s
    );
    let out = python(&script);
    assert_eq!(
        out,
        "True\n+OK maildrop locked and ready, 4 messages (1123632 octets)\n(4, 1123632)\n\
         b'-ERR [AUTH] authentication failed'\n+OK Begin TLS negotiation\nFalse\n\
         +OK maildrop locked and ready, 4 messages (1123632 octets)\n+OK 1 7bbae04fc55193b7-609\n\
         (4, 1123632)\n"
    );
}

#[test]
fn curl_pop3_and_pop3s() {
    if !require("curl", "curl pop3:// interop") {
        return;
    }
    let s = Server::start(&[]);
    let Ran {
        ok,
        stdout: out,
        stderr: err,
    } = run(Command::new("curl")
        .args(["-sS", "--max-time", "30", "-u", "u:p"])
        .arg(format!("pop3://127.0.0.1:{}/", s.pop3)));
    assert!(ok, "{err}");
    assert_eq!(out, "1 628\r\n2 419\r\n3 957\r\n4 1121628\r\n");
    let Ran {
        ok,
        stdout: out,
        stderr: err,
    } = run(Command::new("curl")
        .args(["-sS", "--max-time", "30", "-k", "-u", "u:p"])
        .arg(format!("pop3s://127.0.0.1:{}/2", s.pop3s)));
    assert!(ok, "{err}");
    let want = common::crlf(&std::fs::read(common::sample_dir().join("02-dots.eml")).unwrap());
    assert_eq!(out.as_bytes(), &want[..]);
    // STLS on the plain port, required.
    let Ran {
        ok,
        stdout: out,
        stderr: err,
    } = run(Command::new("curl")
        .args(["-sS", "--max-time", "30", "-k", "--ssl-reqd", "-u", "u:p"])
        .arg(format!("pop3://127.0.0.1:{}/4", s.pop3)));
    assert!(ok, "{err}");
    let want = common::crlf(&std::fs::read(common::sample_dir().join("04-big.eml")).unwrap());
    assert!(
        out.as_bytes() == &want[..],
        "big message differs over curl + STLS"
    );
    // Bad password: curl reports a login denial.
    let Ran { ok, .. } = run(Command::new("curl")
        .args(["-sS", "--max-time", "30", "-u", "u:bad"])
        .arg(format!("pop3://127.0.0.1:{}/", s.pop3)));
    assert!(!ok);
}

#[test]
fn fetchmail_uidl_twice_fetches_nothing_the_second_time() {
    if !require("fetchmail", "fetchmail interop") {
        return;
    }
    let s = Server::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let mbox = work.path().join("mbox");
    let rc = work.path().join("fetchmailrc");
    let ids = work.path().join("fetchids");
    std::fs::write(
        &rc,
        format!(
            "set no bouncemail\nset idfile \"{}\"\npoll 127.0.0.1 service {} protocol pop3 uidl auth password\n  \
             user \"u\" there with password \"p\" is \"{}\" here\n  keep\n  sslproto '' no sslcertck\n  mda \"cat >> {}\"\n",
            ids.display(),
            s.pop3,
            whoami(),
            mbox.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let fetch = || {
        run(Command::new("fetchmail")
            .arg("-f")
            .arg(&rc)
            .args(["--nodetach", "--nosyslog", "-v"])
            .env("HOME", work.path())
            .env("FETCHMAILHOME", work.path()))
    };
    let Ran {
        ok,
        stdout: out,
        stderr: err,
    } = fetch();
    assert!(ok, "first fetchmail run failed:\n{out}\n{err}");
    let first = std::fs::read(&mbox).unwrap();
    for needle in [
        "Welcome to your new mailbox",
        "..and three",
        "Monthly archive",
    ] {
        assert!(
            String::from_utf8_lossy(&first).contains(needle),
            "missing {needle:?} in delivered mail"
        );
    }
    assert!(
        err.contains("4 messages") || out.contains("4 messages"),
        "{out}\n{err}"
    );
    let Ran {
        ok,
        stdout: out,
        stderr: err,
    } = fetch();
    // fetchmail exits 1 ("no mail") when there is nothing new.
    assert!(
        !ok || !err.contains("reading message"),
        "second run: {out}\n{err}"
    );
    assert_eq!(
        std::fs::read(&mbox).unwrap().len(),
        first.len(),
        "second run fetched again"
    );
    assert!(!err.contains("reading message"), "{err}");
    assert_eq!(s.files().len(), 4, "keep: nothing deleted");
}

fn whoami() -> String {
    let Ran { stdout: out, .. } = run(Command::new("id").arg("-un"));
    out.trim().to_string()
}
