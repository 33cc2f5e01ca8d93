//! Running a peer program (python3, curl, fetchmail, doveadm, ...) with a time limit.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The time limit of [`run`].
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(60);

/// What a finished program left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// Whether it exited with status 0.
    pub ok: bool,
    /// Its standard output (lossily decoded as UTF-8).
    pub stdout: String,
    /// Its standard error (lossily decoded as UTF-8).
    pub stderr: String,
}

/// [`run_for`] with [`DEFAULT_LIMIT`].
pub fn run(cmd: &mut Command) -> Ran {
    run_for(cmd, DEFAULT_LIMIT)
}

/// Runs `cmd` with its standard output and error captured, and returns them when it exits.
///
/// # Panics
/// When the program cannot be started, or when it is still running after `limit` (it is
/// killed first): a peer that hangs must fail the test, not hang it.
pub fn run_for(cmd: &mut Command, limit: Duration) -> Ran {
    let program = format!("{:?}", cmd.get_program());
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let out = wait_named(child, limit, &program);
    Ran {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Waits (bounded) for a spawned `child` to exit and collects what it wrote to the pipes
/// it was given (as [`Child::wait_with_output`]).
///
/// # Panics
/// When waiting fails, or when the child is still running after `limit` (it is killed
/// with SIGKILL first).
#[must_use]
pub fn wait_for(child: Child, limit: Duration) -> Output {
    let name = format!("process {}", child.id());
    wait_named(child, limit, &name)
}

fn wait_named(child: Child, limit: Duration, name: &str) -> Output {
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("waiting for {name} failed: {e}"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .stderr(Stdio::null())
                .status();
            panic!("{name} did not finish within {limit:?} (killed)");
        }
    }
}

/// Runs `program args` (with [`DEFAULT_LIMIT`]) and returns its standard output.
///
/// # Panics
/// When it cannot be started, does not finish in time, or exits unsuccessfully (the
/// message carries its standard error).
#[must_use]
pub fn stdout(program: &str, args: &[&str]) -> String {
    let ran = run(Command::new(program).args(args));
    assert!(
        ran.ok,
        "{program} {args:?} failed:\n{}{}",
        ran.stderr, ran.stdout
    );
    ran.stdout
}

/// Takes `child`'s standard output (spawned with `Stdio::piped()`) and forwards it line by
/// line over a channel from a thread that ends at end of file, so a test can wait for a
/// readiness line with `recv_timeout` instead of sleeping, and the child never blocks on a
/// full pipe while the channel lives.
///
/// # Panics
/// When the child's standard output was not piped or was already taken.
#[must_use]
pub fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child
        .stdout
        .take()
        .unwrap_or_else(|| panic!("stdout_lines needs a child spawned with stdout piped"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_and_status_are_collected() {
        let r = run(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]));
        assert_eq!(
            r,
            Ran {
                ok: false,
                stdout: "out\n".into(),
                stderr: "err\n".into()
            }
        );
        assert_eq!(stdout("sh", &["-c", "printf hi"]), "hi");
    }

    #[test]
    fn stdout_lines_arrive_in_order_then_the_channel_closes() {
        let mut child = Command::new("sh")
            .args(["-c", "echo one; echo two"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let rx = stdout_lines(&mut child);
        let limit = Duration::from_secs(10);
        assert_eq!(rx.recv_timeout(limit).unwrap(), "one");
        assert_eq!(rx.recv_timeout(limit).unwrap(), "two");
        assert!(rx.recv_timeout(limit).is_err());
        child.wait().unwrap();
    }

    #[test]
    #[should_panic(expected = "did not finish within")]
    fn a_hanging_program_is_killed_and_fails() {
        let _ = run_for(
            Command::new("sh").args(["-c", "exec sleep 30"]),
            Duration::from_millis(100),
        );
    }

    #[test]
    #[should_panic(expected = "failed")]
    fn stdout_panics_on_failure() {
        let _ = stdout("sh", &["-c", "echo nope >&2; exit 1"]);
    }
}
