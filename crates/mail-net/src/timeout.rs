//! Transport-level limits and timeouts: [`NetConfig`], [`IdleTimeout`] and
//! [`read_with_idle_timeout`].
//!
//! Protocol timers (autologout, SMTP command timeouts, login delays) belong to the protocol
//! state machines (`poll_timeout`/`handle_timeout`). The idle timeout here is a transport
//! backstop: a connection that moves no byte in either direction for that long is cut,
//! whatever the protocol layer thinks.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Network-level limits shared by every listener of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetConfig {
    /// A connection that moves no byte for this long is closed. Default: 30 minutes (the
    /// IMAP autologout minimum of RFC 9051 section 5.4; POP3 and SMTP machines enforce their
    /// shorter protocol timers themselves). The accept loop does not apply it by itself:
    /// adapters wrap their stream in [`IdleTimeout`] (re-wrapping after a STARTTLS upgrade).
    pub idle_timeout: Duration,
    /// The TLS handshake (implicit TLS or STARTTLS) must complete within this. Default:
    /// 30 seconds.
    pub handshake_timeout: Duration,
    /// Simultaneous connections from one IP address (IPv4-mapped IPv6 addresses count as
    /// their IPv4 address). Default: 20.
    pub max_connections_per_ip: usize,
    /// Simultaneous connections in total, across all listeners sharing the limiter.
    /// Default: 1000.
    pub max_connections: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            handshake_timeout: Duration::from_secs(30),
            max_connections_per_ip: 20,
            max_connections: 1000,
        }
    }
}

/// The error [`IdleTimeout`] and [`read_with_idle_timeout`] return when the timer fires:
/// kind [`io::ErrorKind::TimedOut`].
#[must_use]
pub fn idle_timeout_error(after: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("connection idle for {}s, closing", after.as_secs()),
    )
}

/// Reads into `buf`, failing with [`io::ErrorKind::TimedOut`] when nothing arrives within
/// `timeout`. Returns the byte count like [`AsyncReadExt::read`] (0 at end of stream).
///
/// # Errors
/// The read's error, or the time-out.
pub async fn read_with_idle_timeout<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
    timeout: Duration,
) -> io::Result<usize> {
    match tokio::time::timeout(timeout, reader.read(buf)).await {
        Ok(result) => result,
        Err(_) => Err(idle_timeout_error(timeout)),
    }
}

/// Wraps a stream so that reads and writes fail with [`io::ErrorKind::TimedOut`] once no
/// byte has moved in either direction for the configured duration. Any successful read or
/// write restarts the timer.
#[derive(Debug)]
pub struct IdleTimeout<S> {
    inner: S,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl<S> IdleTimeout<S> {
    /// Wraps `inner`; the timer starts now. Must be called within a tokio runtime.
    pub fn new(inner: S, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// The wrapped stream.
    #[must_use]
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped stream, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the stream (for example to upgrade it to TLS).
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn touch(&mut self) {
        let deadline = Instant::now() + self.timeout;
        self.sleep.as_mut().reset(deadline);
    }

    fn check_expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(idle_timeout_error(self.timeout)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.touch();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.check_expired(cx).map(Err),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.touch();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.check_expired(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.touch();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.check_expired(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.check_expired(cx).map(Err),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
