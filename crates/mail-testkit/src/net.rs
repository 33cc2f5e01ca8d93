//! Loopback ports for tests: a free port, and a bounded wait until a port accepts.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// How long one connect attempt of [`wait_for_port`] may take.
const CONNECT_ATTEMPT: Duration = Duration::from_millis(500);

/// A port on 127.0.0.1 that was free a moment ago (the OS picked it for a listener that is
/// closed again). For programs that cannot be told to bind port 0 and report the port.
///
/// # Panics
/// When 127.0.0.1 cannot be bound at all (no loopback interface).
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"))
}

/// `127.0.0.1:<port>`.
#[must_use]
pub fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Waits until a TCP connect to `addr` succeeds (readiness, not a sleep), trying again
/// every 10 ms until `deadline`. The probe connection is closed at once.
///
/// # Errors
/// The last connect error when `deadline` passes first.
pub fn wait_for_port(addr: SocketAddr, deadline: Instant) -> std::io::Result<()> {
    let mut last = None;
    let accepted = crate::poll::until(deadline, || {
        let left = deadline.saturating_duration_since(Instant::now());
        match TcpStream::connect_timeout(
            &addr,
            left.clamp(Duration::from_millis(1), CONNECT_ATTEMPT),
        ) {
            Ok(_) => true,
            Err(e) => {
                last = Some(e);
                false
            }
        }
    });
    match last {
        Some(err) if !accepted => Err(std::io::Error::new(
            err.kind(),
            format!("{addr} did not accept a connection before the deadline: {err}"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_port_is_ready_and_a_closed_one_times_out() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        wait_for_port(addr, Instant::now() + Duration::from_secs(5)).unwrap();

        let closed = localhost(free_port());
        let start = Instant::now();
        let err = wait_for_port(closed, start + Duration::from_millis(200)).unwrap_err();
        assert!(err.to_string().contains(&closed.to_string()), "{err}");
        assert!(start.elapsed() >= Duration::from_millis(200));
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn free_ports_can_be_bound() {
        let p = free_port();
        assert_ne!(p, 0);
        TcpListener::bind(localhost(p)).unwrap();
    }
}
