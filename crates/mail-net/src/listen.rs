//! Listeners: connection limits and a generic accept loop with implicit TLS.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::shutdown::Shutdown;
use crate::stream::{MaybeTls, TlsInfo};
use crate::{Error, NetConfig};

/// How a listening port uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsMode {
    /// Plaintext at connect; the protocol may offer STARTTLS/STLS (ports 25, 587, 143, 110).
    Plain,
    /// TLS from the first byte (ports 465, 993, 995).
    Implicit,
}

/// One listening port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerSpec {
    /// The address to bind.
    pub addr: SocketAddr,
    /// Whether TLS starts at connect.
    pub tls: TlsMode,
}

impl ListenerSpec {
    /// A spec for `addr` in mode `tls`.
    #[must_use]
    pub fn new(addr: SocketAddr, tls: TlsMode) -> Self {
        Self { addr, tls }
    }

    /// A plaintext (STARTTLS-capable) port.
    #[must_use]
    pub fn plain(addr: SocketAddr) -> Self {
        Self::new(addr, TlsMode::Plain)
    }

    /// An implicit-TLS port.
    #[must_use]
    pub fn implicit_tls(addr: SocketAddr) -> Self {
        Self::new(addr, TlsMode::Implicit)
    }

    /// Binds a TCP listener on [`addr`](Self::addr).
    ///
    /// # Errors
    /// [`Error::Bind`] naming the address.
    pub async fn bind(&self) -> Result<TcpListener, Error> {
        TcpListener::bind(self.addr)
            .await
            .map_err(|source| Error::Bind {
                addr: self.addr,
                source,
            })
    }
}

/// What the accept loop knows about a connection, handed to the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// Our address (which listener accepted it).
    pub local: SocketAddr,
    /// The implicit-TLS session, `None` on a plaintext port.
    pub tls: Option<TlsInfo>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The client's IP address already has [`NetConfig::max_connections_per_ip`]
    /// connections.
    PerIpLimit,
    /// The server already has [`NetConfig::max_connections`] connections.
    GlobalLimit,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PerIpLimit => "too many connections from your IP address",
            Self::GlobalLimit => "too many connections, try again later",
        })
    }
}

/// A refused connection, handed to the refusal hook of [`ServeOptions::on_refused`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefusedConn {
    /// The client's address.
    pub peer: SocketAddr,
    /// Our address.
    pub local: SocketAddr,
    /// Why it was refused.
    pub reason: Refusal,
}

/// The outcome of [`ConnectionLimiter::drain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a drain that timed out leaves connections open"]
pub enum Drained {
    /// Every connection finished.
    All,
    /// The deadline passed with this many connections still open.
    TimedOut {
        /// Connections still open.
        remaining: usize,
    },
}

#[derive(Debug, Default)]
struct Counts {
    by_ip: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct LimiterInner {
    per_ip: usize,
    global: usize,
    counts: Mutex<Counts>,
    /// Total live connections; `watch` so `drain` can wait for zero.
    live: watch::Sender<usize>,
}

/// Caps simultaneous connections per IP address and in total, and tracks live connections
/// for [`drain`](Self::drain). Clone it to share one budget across listeners.
#[derive(Debug, Clone)]
pub struct ConnectionLimiter {
    inner: Arc<LimiterInner>,
}

/// A slot held by one live connection; the slot is released when the guard is dropped.
#[derive(Debug)]
#[must_use = "the connection slot is released as soon as the guard is dropped"]
pub struct ConnectionGuard {
    limiter: Arc<LimiterInner>,
    ip: IpAddr,
}

impl ConnectionLimiter {
    /// A limiter allowing `per_ip` connections per address and `global` in total.
    #[must_use]
    pub fn new(per_ip: usize, global: usize) -> Self {
        Self {
            inner: Arc::new(LimiterInner {
                per_ip,
                global,
                counts: Mutex::new(Counts::default()),
                live: watch::Sender::new(0),
            }),
        }
    }

    /// A limiter with the caps of `config`.
    #[must_use]
    pub fn from_config(config: &NetConfig) -> Self {
        Self::new(config.max_connections_per_ip, config.max_connections)
    }

    /// Takes a slot for a connection from `ip`, or `None` when a cap is reached.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<ConnectionGuard> {
        self.acquire(ip).ok()
    }

    /// Takes a slot for a connection from `ip`, or says which cap is reached.
    ///
    /// # Errors
    /// The [`Refusal`] reason.
    pub fn acquire(&self, ip: IpAddr) -> Result<ConnectionGuard, Refusal> {
        let ip = canonical_ip(ip);
        let mut counts = lock(&self.inner.counts);
        let total = *self.inner.live.borrow();
        if total >= self.inner.global {
            return Err(Refusal::GlobalLimit);
        }
        let for_ip = counts.by_ip.entry(ip).or_insert(0);
        if *for_ip >= self.inner.per_ip {
            if *for_ip == 0 {
                counts.by_ip.remove(&ip);
            }
            return Err(Refusal::PerIpLimit);
        }
        *for_ip += 1;
        self.inner.live.send_modify(|n| *n += 1);
        drop(counts);
        Ok(ConnectionGuard {
            limiter: Arc::clone(&self.inner),
            ip,
        })
    }

    /// Live connections in total.
    #[must_use]
    pub fn live(&self) -> usize {
        *self.inner.live.borrow()
    }

    /// Live connections from `ip`.
    #[must_use]
    pub fn live_for(&self, ip: IpAddr) -> usize {
        lock(&self.inner.counts)
            .by_ip
            .get(&canonical_ip(ip))
            .copied()
            .unwrap_or(0)
    }

    /// Completes once at most `n` connections are live (at once if that is already so).
    pub async fn wait_live_at_most(&self, n: usize) {
        let mut rx = self.inner.live.subscribe();
        // The sender lives in `self.inner`, so `wait_for` cannot fail with "closed".
        let _ = rx.wait_for(|live| *live <= n).await;
    }

    /// Waits until no connection is live, or until `deadline`.
    pub async fn drain(&self, deadline: tokio::time::Instant) -> Drained {
        match tokio::time::timeout_at(deadline, self.wait_live_at_most(0)).await {
            Ok(_) => Drained::All,
            Err(_) => Drained::TimedOut {
                remaining: self.live(),
            },
        }
    }
}

impl ConnectionGuard {
    /// The (canonical) address this slot is counted against.
    #[must_use]
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut counts = lock(&self.limiter.counts);
        if let Some(n) = counts.by_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.by_ip.remove(&self.ip);
            }
        }
        self.limiter.live.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A poisoned lock only means another thread panicked while counting; the counts are still
/// usable, so carry on rather than propagate the panic.
fn lock(m: &Mutex<Counts>) -> MutexGuard<'_, Counts> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, seen on dual-stack sockets) count as
/// their IPv4 address.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

type RefusalHook = Arc<
    dyn Fn(MaybeTls<TcpStream>, RefusedConn) -> Pin<Box<dyn Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// Options of [`serve_with`].
#[non_exhaustive]
pub struct ServeOptions {
    /// The port's address and TLS mode.
    pub spec: ListenerSpec,
    /// The TLS acceptor; required for [`TlsMode::Implicit`].
    pub tls: Option<TlsAcceptor>,
    /// Connection caps and live-connection tracking.
    pub limiter: ConnectionLimiter,
    /// Stops the accept loop when triggered.
    pub shutdown: Shutdown,
    /// Time allowed for the implicit-TLS handshake. Default: [`NetConfig`]'s (30 s).
    pub handshake_timeout: Duration,
    /// Refused connections handled at once by the refusal hook; more are closed without a
    /// word. Default: 64.
    pub max_pending_refusals: usize,
    on_refused: Option<RefusalHook>,
}

impl fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeOptions")
            .field("spec", &self.spec)
            .field("tls", &self.tls.is_some())
            .field("limiter", &self.limiter)
            .field("shutdown", &self.shutdown)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_pending_refusals", &self.max_pending_refusals)
            .field("on_refused", &self.on_refused.is_some())
            .finish()
    }
}

impl ServeOptions {
    /// Options with the defaults above and no TLS acceptor and no refusal hook.
    #[must_use]
    pub fn new(spec: ListenerSpec, limiter: ConnectionLimiter, shutdown: Shutdown) -> Self {
        Self {
            spec,
            tls: None,
            limiter,
            shutdown,
            handshake_timeout: NetConfig::default().handshake_timeout,
            max_pending_refusals: 64,
            on_refused: None,
        }
    }

    /// Sets the TLS acceptor.
    #[must_use]
    pub fn tls(mut self, acceptor: TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// Sets the implicit-TLS handshake timeout.
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets a hook that receives refused connections, so the protocol can write its own
    /// refusal (`-ERR`, `* BYE`, `421`) before closing. On an implicit-TLS port the hook
    /// gets the stream after the TLS handshake. The hook's future is cut off after the
    /// handshake timeout. Without a hook, refused connections are closed at once.
    #[must_use]
    pub fn on_refused<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(MaybeTls<TcpStream>, RefusedConn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_refused = Some(Arc::new(move |stream, refused| {
            Box::pin(hook(stream, refused))
        }));
        self
    }
}

/// Runs the accept loop of one listener until `shutdown` is triggered, with default
/// [`ServeOptions`] (see [`serve_with`]).
///
/// # Errors
/// As [`serve_with`].
pub async fn serve<H, Fut>(
    listener: TcpListener,
    spec: ListenerSpec,
    tls: Option<TlsAcceptor>,
    limiter: ConnectionLimiter,
    shutdown: Shutdown,
    handler: H,
) -> Result<(), Error>
where
    H: Fn(MaybeTls<TcpStream>, ConnInfo) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut options = ServeOptions::new(spec, limiter, shutdown);
    options.tls = tls;
    serve_with(listener, options, handler).await
}

/// Runs the accept loop of one listener until [`ServeOptions::shutdown`] is triggered.
///
/// For each accepted connection: takes a slot from the limiter (over-cap connections go to
/// the refusal hook, or are closed), spawns a task that performs the implicit-TLS handshake
/// within the handshake timeout (when the port is [`TlsMode::Implicit`]) and then runs
/// `handler(stream, info)`. The slot is released when the handler's future completes.
/// `TCP_NODELAY` is set: mail protocols are request/response and latency-bound.
///
/// Returns once the shutdown is triggered; connections already accepted keep running (use
/// [`ConnectionLimiter::drain`] to wait for them).
///
/// # Errors
/// [`Error::MissingTlsAcceptor`] for an implicit-TLS port without an acceptor. Errors from
/// `accept` itself (such as running out of file descriptors) are logged and retried after a
/// short pause, never returned.
pub async fn serve_with<H, Fut>(
    listener: TcpListener,
    options: ServeOptions,
    handler: H,
) -> Result<(), Error>
where
    H: Fn(MaybeTls<TcpStream>, ConnInfo) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let acceptor = match (options.spec.tls, options.tls.clone()) {
        (TlsMode::Implicit, None) => return Err(Error::MissingTlsAcceptor(options.spec.addr)),
        (TlsMode::Implicit, Some(acceptor)) => Some(acceptor),
        (_, _) => None,
    };
    let handler = Arc::new(handler);
    let refusals = Arc::new(Semaphore::new(options.max_pending_refusals));
    let shutdown = options.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.wait() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                if is_per_connection_error(&e) {
                    tracing::debug!("accept: {e}");
                } else {
                    // EMFILE/ENFILE/ENOBUFS: pause instead of spinning.
                    tracing::warn!("accept failed: {e}; pausing");
                    tokio::select! {
                        () = shutdown.wait() => break,
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
                continue;
            }
        };
        let local = tcp.local_addr().unwrap_or(options.spec.addr);
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, "cannot set TCP_NODELAY: {e}");
        }
        match options.limiter.acquire(peer.ip()) {
            Ok(guard) => {
                let handler = Arc::clone(&handler);
                let acceptor = acceptor.clone();
                let timeout = options.handshake_timeout;
                tokio::spawn(async move {
                    let _guard = guard;
                    let Some((stream, tls)) =
                        handshake(tcp, acceptor.as_ref(), timeout, peer).await
                    else {
                        return;
                    };
                    handler(stream, ConnInfo { peer, local, tls }).await;
                });
            }
            Err(reason) => {
                tracing::info!(%peer, %local, "connection refused: {reason}");
                let Some(hook) = options.on_refused.clone() else {
                    drop(tcp);
                    continue;
                };
                let Ok(permit) = Arc::clone(&refusals).try_acquire_owned() else {
                    drop(tcp);
                    continue;
                };
                let acceptor = acceptor.clone();
                let timeout = options.handshake_timeout;
                tokio::spawn(async move {
                    let _permit = permit;
                    let refused = RefusedConn {
                        peer,
                        local,
                        reason,
                    };
                    let _ = tokio::time::timeout(timeout, async move {
                        if let Some((stream, _)) =
                            handshake(tcp, acceptor.as_ref(), timeout, peer).await
                        {
                            hook(stream, refused).await;
                        }
                    })
                    .await;
                });
            }
        }
    }
    Ok(())
}

/// Implicit-TLS handshake (or nothing, on a plaintext port). `None` when it failed or timed
/// out; that is logged, not returned, because it is the client's problem.
async fn handshake(
    tcp: TcpStream,
    acceptor: Option<&TlsAcceptor>,
    timeout: Duration,
    peer: SocketAddr,
) -> Option<(MaybeTls<TcpStream>, Option<TlsInfo>)> {
    let stream = MaybeTls::Plain(tcp);
    let Some(acceptor) = acceptor else {
        return Some((stream, None));
    };
    match stream.upgrade_server_timeout(acceptor, timeout).await {
        Ok(stream) => {
            let info = stream.tls_info();
            Some((stream, info))
        }
        Err(e) => {
            tracing::info!(%peer, "implicit TLS: {e}");
            None
        }
    }
}

/// Accept errors that concern one connection only (the peer went away before we took it).
fn is_per_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionAborted | K::ConnectionReset | K::ConnectionRefused | K::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn per_ip_and_global_caps() {
        let limiter = ConnectionLimiter::new(2, 3);
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        let a1 = limiter.acquire(a).unwrap();
        let a2 = limiter.acquire(a).unwrap();
        assert_eq!(limiter.acquire(a).unwrap_err(), Refusal::PerIpLimit);
        let b1 = limiter.acquire(b).unwrap();
        assert_eq!(limiter.live(), 3);
        assert_eq!(limiter.acquire(b).unwrap_err(), Refusal::GlobalLimit);
        drop(a1);
        assert_eq!(limiter.live_for(a), 1);
        let a3 = limiter.try_acquire(a).expect("slot freed by drop");
        drop((a2, a3, b1));
        assert_eq!(limiter.live(), 0);
        assert_eq!(limiter.live_for(a), 0);
        assert!(
            lock(&limiter.inner.counts).by_ip.is_empty(),
            "no stale entries"
        );
    }

    #[test]
    fn mapped_ipv6_counts_as_ipv4() {
        let limiter = ConnectionLimiter::new(1, 10);
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        let _g = limiter.acquire(v4).unwrap();
        assert_eq!(limiter.acquire(mapped).unwrap_err(), Refusal::PerIpLimit);
        let _other = limiter.acquire(IpAddr::V6(Ipv6Addr::LOCALHOST)).unwrap();
    }

    #[test]
    fn zero_per_ip_cap_refuses_without_leaking_entries() {
        let limiter = ConnectionLimiter::new(0, 10);
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(limiter.acquire(ip).unwrap_err(), Refusal::PerIpLimit);
        assert!(lock(&limiter.inner.counts).by_ip.is_empty());
    }
}
