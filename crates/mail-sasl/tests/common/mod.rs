//! Helpers for interop tests with external programs.

use std::process::Command;

/// Returns true when `program` can be run (`program args` exits at all). When it cannot,
/// prints "skipping: <why>" and returns false, unless `MAIL_INTEROP_REQUIRED=1`, in which
/// case it panics so CI notices the missing peer.
pub fn have(program: &str, probe_args: &[&str]) -> bool {
    match Command::new(program).args(probe_args).output() {
        Ok(_) => true,
        Err(e) => {
            let why = format!("{program} cannot be run: {e}");
            if std::env::var("MAIL_INTEROP_REQUIRED").as_deref() == Ok("1") {
                panic!("MAIL_INTEROP_REQUIRED=1 but {why}");
            }
            println!("skipping: {why}");
            false
        }
    }
}

/// Runs `program args` and returns its stdout, panicking with its stderr on failure.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
