//! Bounded polling with a deadline, for conditions no event announces (a pidfile appears, a
//! process goes away). Prefer a readiness signal (a printed line, a connect) where one exists.

use std::path::Path;
use std::time::{Duration, Instant};

/// The pause between two checks.
pub const INTERVAL: Duration = Duration::from_millis(10);

/// Checks `ready` until it returns true (then true) or `deadline` passes (then false).
/// `ready` is checked at least once, even when the deadline has already passed.
pub fn until(deadline: Instant, ready: impl FnMut() -> bool) -> bool {
    until_every(INTERVAL, deadline, ready)
}

/// [`until`] with another pause between checks, for a check that is costly itself (one
/// that runs a program, say).
pub fn until_every(interval: Duration, deadline: Instant, mut ready: impl FnMut() -> bool) -> bool {
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(interval);
    }
}

/// Waits until `path` exists with non-blank content (a pidfile, a port file) and returns
/// that content trimmed, or `None` when `deadline` passes first.
#[must_use]
pub fn file(path: &Path, deadline: Instant) -> Option<String> {
    let mut found = None;
    until(deadline, || {
        found = std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        found.is_some()
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_stops_when_ready_or_at_the_deadline() {
        let mut n = 0;
        assert!(until(Instant::now() + Duration::from_secs(5), || {
            n += 1;
            n == 3
        }));
        assert_eq!(n, 3);
        let start = Instant::now();
        assert!(!until(start + Duration::from_millis(50), || false));
        assert!(start.elapsed() >= Duration::from_millis(50));
        // Checked once even with a deadline in the past.
        let mut checked = false;
        assert!(until(start, || {
            checked = true;
            true
        }));
        assert!(checked);
    }

    #[test]
    fn file_returns_trimmed_content_or_none() {
        let dir = tempfile::tempdir().unwrap();
        let pid = dir.path().join("x.pid");
        assert_eq!(file(&pid, Instant::now() + Duration::from_millis(30)), None);
        std::fs::write(&pid, " \n").unwrap();
        assert_eq!(file(&pid, Instant::now() + Duration::from_millis(30)), None);
        std::fs::write(&pid, "1234\n").unwrap();
        assert_eq!(
            file(&pid, Instant::now() + Duration::from_secs(5)).as_deref(),
            Some("1234")
        );
    }
}
