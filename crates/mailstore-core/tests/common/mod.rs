//! Shared test helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bytes::Bytes;
use mailstore_core::*;

/// Makes fresh stores of one backend; the guard keeps a temp dir alive.
pub trait Fixture {
    type Store: MailStore + Clone;
    fn make() -> (Self::Store, Option<tempfile::TempDir>);
}

pub struct Mem;
impl Fixture for Mem {
    type Store = MemoryStore;
    fn make() -> (MemoryStore, Option<tempfile::TempDir>) {
        (MemoryStore::with_config(StoreConfig::for_tests()), None)
    }
}

pub struct Disk;
impl Fixture for Disk {
    type Store = DiskStore;
    fn make() -> (DiskStore, Option<tempfile::TempDir>) {
        let dir = tempfile::tempdir().unwrap();
        let s = DiskStore::open(dir.path(), StoreConfig::for_tests()).unwrap();
        (s, Some(dir))
    }
}

pub fn msg(subject: &str, body: &str) -> Bytes {
    Bytes::from(format!(
        "From: a@example.org\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.org>\r\n\r\n{body}\r\n"
    ))
}

/// Skips (prints why) unless MAIL_INTEROP_REQUIRED=1, in which case it panics.
pub fn require_program(name: &str) -> bool {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("MAIL_INTEROP_REQUIRED").as_deref() == Ok("1") {
            panic!("{name} is required (MAIL_INTEROP_REQUIRED=1) but not installed");
        }
        println!("skipping: {name} is not installed");
    }
    found
}
