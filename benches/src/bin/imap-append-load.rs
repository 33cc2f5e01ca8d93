//! `imap-append-load`: on one IMAP connection, `APPEND`s messages of a fixed size (10 KiB by
//! default) to a mailbox, one after the other (each waits for its tagged `OK`), for N
//! messages or until a time limit, and prints messages per second and MB/s.
//!
//! Benchmark tool for servers on 127.0.0.1 started by `benches/load/run.sh`; TLS does not
//! verify certificates. The last line of output is machine-readable (`RESULT ...`).

#[path = "load_common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use common::{Result, err};

/// Command line of `imap-append-load`.
#[derive(Parser, Debug)]
#[command(about = "APPEND messages on one IMAP connection; messages per second")]
struct Args {
    /// Server address (IMAP, or IMAPS with --tls).
    #[arg(long)]
    addr: SocketAddr,
    /// Implicit TLS (port 993 style).
    #[arg(long)]
    tls: bool,
    /// Login name.
    #[arg(long)]
    user: String,
    /// Password.
    #[arg(long)]
    pass: String,
    /// Target mailbox.
    #[arg(long, default_value = "INBOX")]
    mailbox: String,
    /// Message size in bytes.
    #[arg(long, default_value_t = 10240)]
    size: usize,
    /// Number of messages (the run also stops at --secs).
    #[arg(long, default_value_t = 1000)]
    messages: u64,
    /// Time limit in seconds.
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// Send `{n+}` (RFC 7888 LITERAL+) instead of waiting for the `+` continuation.
    #[arg(long)]
    literal_plus: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let timeout = Duration::from_secs(60);
    let mut c = common::connect(args.addr, args.tls, timeout).await?;
    c.imap_login(&args.user, &args.pass).await?;
    let limit = Duration::from_secs(args.secs);
    let started = Instant::now();
    let mut done = 0u64;
    let mut bytes = 0u64;
    while done < args.messages && started.elapsed() < limit {
        let msg = common::make_message(args.size, done);
        let tag = format!("A{done}");
        let plus = if args.literal_plus { "+" } else { "" };
        c.send(
            format!(
                "{tag} APPEND {} {{{}{plus}}}\r\n",
                common::quote(&args.mailbox),
                msg.len()
            )
            .as_bytes(),
        )
        .await?;
        if !args.literal_plus {
            let line = c.read_line().await?;
            if !line.starts_with(b"+") {
                return err(format!(
                    "APPEND literal refused: {}",
                    String::from_utf8_lossy(line).trim_end()
                ));
            }
        }
        let mut data = msg;
        data.extend_from_slice(b"\r\n");
        c.send(&data).await?;
        c.imap_until_tagged(&tag).await?;
        done += 1;
        bytes += (data.len() - 2) as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = c.send(b"Z LOGOUT\r\n").await;
    let rate = done as f64 / secs;
    let mbps = bytes as f64 / secs / 1e6;
    println!(
        "{done} APPENDs of {} bytes in {secs:.2}s: {rate:.1} msgs/s, {mbps:.2} MB/s",
        args.size
    );
    println!(
        "RESULT append messages={done} secs={secs:.3} msgs_per_sec={rate:.2} mb_per_sec={mbps:.3}"
    );
    Ok(())
}
