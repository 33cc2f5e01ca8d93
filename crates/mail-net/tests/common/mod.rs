//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::panic)]

use std::process::Command;

/// Whether the external program `name` can be run (`name <version_args>` succeeds). When it
/// cannot, prints "skipping: <why>" and returns false, unless `MAIL_INTEROP_REQUIRED=1`, in
/// which case it panics.
pub fn require_program(name: &str, version_args: &[&str], why: &str) -> bool {
    let found = Command::new(name)
        .args(version_args)
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return true;
    }
    let message = format!("{name} is not installed ({why})");
    if std::env::var("MAIL_INTEROP_REQUIRED").as_deref() == Ok("1") {
        panic!("MAIL_INTEROP_REQUIRED=1 but {message}");
    }
    println!("skipping: {message}");
    false
}

/// Guard against hangs: every test body runs under this.
pub const TEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
