//! Test support for the engine tests: a private Dovecot (mail-testkit's launcher) serving
//! IMAP and POP3 on free 127.0.0.1 ports, whose mailboxes are seeded by writing Maildir
//! files directly, and sample messages.
#![allow(dead_code)]

use std::ops::{Deref, DerefMut};
use std::time::{SystemTime, UNIX_EPOCH};

use mail_testkit::dovecot::{self, Protocol};

/// The migration source: Dovecot serving IMAP and POP3 (plain with STARTTLS/STLS, and
/// implicit TLS with [`Dovecot::cert`]), stopped on drop. Users `tester` and `other`,
/// password `secret`. Hierarchy separator `.` (Maildir++), and a `\Sent` folder called
/// `Sent Messages`. Everything else (ports, seeding, log, stop) comes from
/// [`mail_testkit::dovecot::Dovecot`] through `Deref`.
pub struct Dovecot {
    server: dovecot::Dovecot,
    /// The certificate of the TLS listeners.
    pub cert: mail_net::DevCertificate,
}

impl Dovecot {
    pub fn start() -> Option<Self> {
        let cert = mail_net::DevCertificate::generate(&[]).ok()?;
        let server = dovecot::Dovecot::builder("sync-policy")
            .protocol(Protocol::Imap)
            .protocol(Protocol::Pop3)
            .user("tester", "secret")
            .user("other", "secret")
            .tls(cert.cert_pem(), cert.key_pem())
            .auth_mechanisms("plain login apop")
            .separator('.')
            .mailbox("Sent Messages", "\\Sent")
            .mailbox("Drafts", "\\Drafts")
            .start()?;
        Some(Self { server, cert })
    }

    /// A TLS client configuration trusting this Dovecot's certificate.
    pub fn connector(&self) -> mail_net::TlsConnector {
        mail_net::TlsConnector::from(self.cert.client_config().unwrap())
    }
}

impl Deref for Dovecot {
    type Target = dovecot::Dovecot;
    fn deref(&self) -> &dovecot::Dovecot {
        &self.server
    }
}

impl DerefMut for Dovecot {
    fn deref_mut(&mut self) -> &mut dovecot::Dovecot {
        &mut self.server
    }
}

/// A small RFC 5322 message.
pub fn message(n: usize, subject: &str, extra_body: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Sender {n} <sender{n}@example.net>\r\nTo: tester@example.org\r\n\
         Subject: {subject}\r\nMessage-ID: <msg{n}.{subject_len}@example.net>\r\n\
         Date: Mon, 2 Jan 2023 10:00:00 +0000\r\n\r\nBody of message {n}.\r\n",
        subject_len = subject.len()
    )
    .into_bytes();
    for _ in 0..extra_body / 64 {
        m.extend_from_slice(b"0123456789012345678901234567890123456789012345678901234567890\r\n");
    }
    m
}

/// Seconds since the epoch now (for fake clocks that start at the real time).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
