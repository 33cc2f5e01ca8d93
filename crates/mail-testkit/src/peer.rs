//! Skip-or-require for interop tests that need an external program.
//!
//! The rule of the house: when a peer program is missing, an interop test prints
//! `skipping: <why>` and returns (it passes), unless the environment variable
//! `MAIL_INTEROP_REQUIRED=1` is set, in which case it panics so that CI, where every peer
//! is installed, cannot pass by skipping.

use std::path::{Path, PathBuf};

/// The environment variable that turns a skip into a failure when set to `1`.
pub const REQUIRED_VAR: &str = "MAIL_INTEROP_REQUIRED";

/// Whether missing peers must fail the test (`MAIL_INTEROP_REQUIRED=1`).
#[must_use]
pub fn interop_required() -> bool {
    std::env::var(REQUIRED_VAR).as_deref() == Ok("1")
}

/// Reports that a test cannot run here: prints `skipping: <why>`, or panics with `why`
/// when [`interop_required`]. The caller returns right after.
pub fn skip(why: &str) {
    if interop_required() {
        panic!("{REQUIRED_VAR}=1 but: {why}");
    }
    println!("skipping: {why}");
}

/// True when `program` is installed; otherwise [`skip`]s with
/// `<program> is not installed (<why>)` and returns false.
///
/// Detection is a lookup of an executable file along `PATH` (no shell is spawned, and the
/// program is not run). A `program` containing a `/` is checked as a path.
#[must_use]
pub fn require(program: &str, why: &str) -> bool {
    if find_program(program).is_some() {
        return true;
    }
    skip(&format!("{program} is not installed ({why})"));
    false
}

/// True when `swaks` is installed with TLS support; otherwise [`skip`]s and returns false.
///
/// swaks needs the Perl module Net::SSLeay (Debian: `libnet-ssleay-perl`) for `--tls`,
/// and Debian only recommends it, so an install with `--no-install-recommends` has a
/// swaks that exits with "TLS not available". `swaks --support` reports this without
/// opening a connection.
#[must_use]
pub fn require_swaks_tls(why: &str) -> bool {
    if !require("swaks", why) {
        return false;
    }
    let support = std::process::Command::new("swaks")
        .arg("--support")
        .output();
    let report = support
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default();
    if report.lines().any(|l| l.trim() == "=== TLS supported") {
        return true;
    }
    skip(&format!(
        "swaks has no TLS support; install libnet-ssleay-perl ({why})"
    ));
    false
}

/// True when this process runs as root; otherwise [`skip`]s with
/// `this test must run as root (<why>)` and returns false.
#[must_use]
pub fn require_root(why: &str) -> bool {
    if is_root() {
        return true;
    }
    skip(&format!("this test must run as root ({why})"));
    false
}

/// The full path of `program`: the first executable file of that name along `PATH`, or
/// `program` itself when it contains a `/` and is an executable file.
#[must_use]
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

/// Whether the effective user id of this process is 0 (read from `/proc/self/status`, so
/// nothing is spawned; false where that file does not exist).
#[must_use]
pub fn is_root() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    // "Uid:\treal\teffective\tsaved\tfs"
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_program_along_path_and_by_path() {
        let sh = find_program("sh").unwrap();
        assert!(sh.is_absolute(), "{}", sh.display());
        assert_eq!(find_program(sh.to_str().unwrap()), Some(sh.clone()));
        assert!(require("sh", "always there"));
    }

    #[test]
    fn missing_programs_are_not_found() {
        assert_eq!(find_program("no-such-program-mail-testkit"), None);
        assert_eq!(find_program(""), None);
        assert_eq!(find_program("/nonexistent/sh"), None);
        // A directory on PATH is not a program.
        assert_eq!(find_program("/tmp"), None);
    }

    #[test]
    fn root_is_read_from_proc() {
        let uid = std::process::Command::new("id").arg("-u").output().unwrap();
        let want = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        assert_eq!(is_root(), want);
    }
}
