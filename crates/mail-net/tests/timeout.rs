//! Idle timeouts on a virtual clock (tokio's paused time: deterministic, no real waiting).

// Test helpers outside #[test] functions may unwrap and panic too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::ErrorKind;
use std::time::Duration;

use mail_net::{IdleTimeout, NetConfig, read_with_idle_timeout};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const IDLE: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn idle_timeout_fires_after_exactly_the_idle_period() {
    let (mut client, server) = tokio::io::duplex(1024);
    let mut server = IdleTimeout::new(server, IDLE);
    let start = Instant::now();
    client.write_all(b"x").await.unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(server.read(&mut buf).await.unwrap(), 1);
    let err = server.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_eq!(start.elapsed(), IDLE);
    assert!(err.to_string().contains("idle for 60s"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn activity_in_either_direction_restarts_the_timer() {
    let (mut client, server) = tokio::io::duplex(1024);
    let mut server = IdleTimeout::new(server, IDLE);
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_secs(40)).await;
            client.write_all(b"y").await.unwrap();
        }
        client
    });
    let mut buf = [0u8; 8];
    assert_eq!(server.read(&mut buf).await.unwrap(), 1);
    assert_eq!(server.read(&mut buf).await.unwrap(), 1);
    assert_eq!(start.elapsed(), Duration::from_secs(80));
    let _client = writer.await.unwrap();

    // a write 30 s later also counts as activity
    tokio::time::sleep(Duration::from_secs(30)).await;
    server.write_all(b"+OK\r\n").await.unwrap();
    let err = server.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_eq!(start.elapsed(), Duration::from_secs(80 + 30 + 60));
}

#[tokio::test(start_paused = true)]
async fn end_of_stream_is_not_a_timeout() {
    let (client, server) = tokio::io::duplex(1024);
    let mut server = IdleTimeout::new(server, IDLE);
    drop(client);
    let mut buf = [0u8; 8];
    assert_eq!(server.read(&mut buf).await.unwrap(), 0);
    let _inner = server.into_inner();
}

#[tokio::test(start_paused = true)]
async fn read_with_idle_timeout_reads_or_times_out() {
    let (mut client, mut server) = tokio::io::duplex(1024);
    client.write_all(b"abc").await.unwrap();
    let mut buf = [0u8; 8];
    let n = read_with_idle_timeout(&mut server, &mut buf, IDLE)
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"abc");
    let start = Instant::now();
    let err = read_with_idle_timeout(&mut server, &mut buf, IDLE)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_eq!(start.elapsed(), IDLE);
}

#[test]
fn net_config_defaults_are_documented_values() {
    let config = NetConfig::default();
    assert_eq!(config.idle_timeout, Duration::from_secs(1800));
    assert_eq!(config.handshake_timeout, Duration::from_secs(30));
    assert_eq!(config.max_connections_per_ip, 20);
    assert_eq!(config.max_connections, 1000);
}
