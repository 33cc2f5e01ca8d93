//! SIGTERM triggers the shutdown (its own test binary: it signals its own process).

// Test helpers outside #[test] functions may unwrap and panic too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use mail_net::Shutdown;

#[cfg(unix)]
#[tokio::test]
async fn sigterm_triggers_shutdown() {
    let shutdown = Shutdown::new();
    shutdown.install_signal_handlers().unwrap();
    assert!(!shutdown.is_triggered());
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::timeout(Duration::from_secs(20), shutdown.wait())
        .await
        .expect("SIGTERM did not trigger the shutdown");
    assert!(shutdown.is_triggered());
}

#[tokio::test]
async fn wait_returns_for_every_clone() {
    let shutdown = Shutdown::default();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let s = shutdown.clone();
            tokio::spawn(async move { s.wait().await })
        })
        .collect();
    shutdown.clone().trigger();
    shutdown.trigger(); // idempotent
    for w in waiters {
        tokio::time::timeout(Duration::from_secs(20), w)
            .await
            .unwrap()
            .unwrap();
    }
    // already triggered: returns at once
    shutdown.wait().await;
}
