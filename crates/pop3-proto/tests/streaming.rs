//! A 50 MiB RETR is never held whole: the server machine's output and the client machine's
//! chunks stay bounded by the chunk size, and the body survives the trip byte for byte.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Instant;

use pop3_proto::client;
use pop3_proto::server::{Config, Connection, Event, Reply};
use pop3_proto::types::{Command, MessageInfo};

#[test]
fn fifty_mib_retr_streams_in_bounded_chunks() {
    const CHUNK: usize = 64 * 1024;
    const TOTAL: usize = 50 * 1024 * 1024;
    // One 64 KiB chunk of 64-octet lines, some starting with a dot, repeated 800 times.
    let mut chunk = Vec::with_capacity(CHUNK);
    for i in 0..CHUNK / 64 {
        let lead = if i % 9 == 0 { "." } else { "" };
        chunk.extend_from_slice(
            format!("{lead}{:<61}\r\n", format!("line {i} of the body")).as_bytes(),
        );
        chunk.truncate(chunk.len().min(CHUNK));
    }
    chunk.resize(CHUNK - 2, b'x');
    chunk.extend_from_slice(b"\r\n");
    assert!(chunk.ends_with(b"\r\n"));
    let mut server = Connection::new(Config::default(), Instant::now());
    let mut client = client::Connection::new(client::Config::default());
    client.feed(&server.take_output().unwrap());
    assert!(matches!(
        client.next_event(),
        Some(client::Event::Greeting { .. })
    ));
    for cmd in [
        Command::User("u".into()),
        Command::Pass(pop3_proto::types::secret("p")),
        Command::Retr(1),
    ] {
        client.send(cmd).unwrap();
    }
    server.feed(&client.take_output().unwrap());
    assert!(matches!(server.next_event(), Some(Event::Login { .. })));
    server
        .reply(Reply::LoggedIn(vec![MessageInfo::new(TOTAL as u64, "big")]))
        .unwrap();
    assert!(matches!(server.next_event(), Some(Event::Retr { size, .. }) if size == TOTAL as u64));

    let (mut sent, mut received, mut max_out, mut max_chunk) = (0usize, 0usize, 0usize, 0usize);
    let check = |client: &mut client::Connection, received: &mut usize, max_chunk: &mut usize| {
        while let Some(ev) = client.next_event() {
            if let client::Event::BodyChunk(b) = ev {
                // Same content as what was sent, at the same offset.
                let off = *received % CHUNK;
                let n = b.len().min(CHUNK - off);
                assert_eq!(&b[..n], &chunk[off..off + n]);
                *received += b.len();
                *max_chunk = (*max_chunk).max(b.len());
            }
        }
    };
    while sent < TOTAL {
        server.send_body_chunk(&chunk).unwrap();
        sent += chunk.len();
        let out = server.take_output().unwrap();
        max_out = max_out.max(out.len());
        // Deliver in two uneven pieces so the client sees splits inside lines.
        let cut = out.len() / 3;
        client.feed(&out[..cut]);
        check(&mut client, &mut received, &mut max_chunk);
        client.feed(&out[cut..]);
        check(&mut client, &mut received, &mut max_chunk);
    }
    server.finish_body().unwrap();
    client.feed(&server.take_output().unwrap());
    check(&mut client, &mut received, &mut max_chunk);
    assert_eq!(received, TOTAL);
    assert!(!client.is_busy());
    // Bounded: one chunk plus its stuffing dots (and the +OK line once).
    assert!(max_out <= CHUNK + CHUNK / 32 + 64, "{max_out}");
    assert!(max_chunk <= CHUNK + CHUNK / 32 + 64, "{max_chunk}");
}
