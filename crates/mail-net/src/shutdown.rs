//! Graceful shutdown: a signal every task can wait on, and draining of live connections.
//!
//! The accept loop ([`crate::listen::serve`]) stops accepting as soon as [`Shutdown`] is
//! triggered; connection handlers should also watch it (for example `tokio::select!` on
//! [`Shutdown::wait`] between commands) and say goodbye in their protocol's words. Then
//! [`crate::listen::ConnectionLimiter::drain`] waits, up to a deadline, for the live
//! connections to finish.

use std::io;
use std::sync::Arc;

use tokio::sync::watch;

/// A clone-able shutdown signal. Triggering any clone triggers all of them, once and for
/// good.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A signal that has not been triggered.
    #[must_use]
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Triggers the shutdown. Idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether [`trigger`](Self::trigger) has been called on any clone.
    #[must_use]
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once the shutdown is triggered (at once if it already was). Cancel-safe.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail with "closed".
        let _ = rx.wait_for(|triggered| *triggered).await;
    }

    /// Triggers this shutdown on SIGINT (Ctrl-C) and, on Unix, SIGTERM. Must be called from
    /// within a tokio runtime; the listening task lives as long as the runtime.
    ///
    /// # Errors
    /// When the signal handlers cannot be registered.
    pub fn install_signal_handlers(&self) -> io::Result<()> {
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let this = self.clone();
        tokio::spawn(async move {
            #[cfg(unix)]
            let terminate = async {
                term.recv().await;
            };
            #[cfg(not(unix))]
            let terminate = std::future::pending::<()>();
            tokio::pin!(terminate);
            tokio::select! {
                result = tokio::signal::ctrl_c() => {
                    if let Err(e) = result {
                        tracing::warn!("cannot listen for Ctrl-C: {e}");
                        // Keep waiting for SIGTERM rather than shutting down.
                        (&mut terminate).await;
                    }
                    tracing::info!("shutdown requested by signal");
                }
                () = &mut terminate => tracing::info!("shutdown requested by SIGTERM"),
                () = this.wait() => return,
            }
            this.trigger();
        });
        Ok(())
    }
}
