//! `pop3-retr-load`: logs in over POP3 and `RETR`s messages 1..=N one after the other
//! (each waits for its terminating `.`, so one round trip per message, as a downloading
//! client does), then `QUIT`s without deleting anything. Runs this
//! `--rounds` times (the first round also pays for the server's first scan of the mailbox)
//! and prints messages per second and MB/s of every round; the `RESULT` line carries the
//! best round.
//!
//! Benchmark tool for servers on 127.0.0.1 started by `benches/load/run.sh`; TLS does not
//! verify certificates. The last line of output is machine-readable (`RESULT ...`).

#[path = "load_common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use common::{Result, err};

/// Command line of `pop3-retr-load`.
#[derive(Parser, Debug)]
#[command(about = "RETR N messages over POP3; messages per second and MB/s")]
struct Args {
    /// Server address (POP3, or POP3S with --tls).
    #[arg(long)]
    addr: SocketAddr,
    /// Implicit TLS (port 995 style).
    #[arg(long)]
    tls: bool,
    /// Login name.
    #[arg(long)]
    user: String,
    /// Password.
    #[arg(long)]
    pass: String,
    /// Messages to retrieve (the maildrop must hold at least this many).
    #[arg(long, default_value_t = 2000)]
    messages: u64,
    /// How many times to run the whole session.
    #[arg(long, default_value_t = 2)]
    rounds: u32,
    /// Time limit per round, in seconds.
    #[arg(long, default_value_t = 120)]
    secs: u64,
    /// Read each body line by line (the reader used before 2026-11-25 02:40; it costs the
    /// client more per message than a fast server does). Default: read whole buffers and
    /// look for the terminator at their end.
    #[arg(long)]
    per_line: bool,
}

/// One round's figures.
struct Round {
    messages: u64,
    bytes: u64,
    login_secs: f64,
    retr_secs: f64,
}

async fn round(args: &Args) -> Result<Round> {
    let started = Instant::now();
    let mut c = common::connect(args.addr, args.tls, Duration::from_secs(60)).await?;
    c.pop3_login(&args.user, &args.pass).await?;
    c.send(b"STAT\r\n").await?;
    let stat = c.pop3_ok().await?;
    let count: u64 = stat
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if count < args.messages {
        return err(format!(
            "maildrop holds {count} messages, {} wanted ({stat})",
            args.messages
        ));
    }
    let login_secs = started.elapsed().as_secs_f64();
    let limit = Duration::from_secs(args.secs);
    let retr_start = Instant::now();
    let mut bytes = 0u64;
    let mut n = 0u64;
    while n < args.messages {
        if retr_start.elapsed() > limit {
            eprintln!("time cap reached after {n} messages");
            break;
        }
        c.send(format!("RETR {}\r\n", n + 1).as_bytes()).await?;
        c.pop3_ok().await?;
        bytes += if args.per_line {
            c.pop3_multiline_lines().await?
        } else {
            c.pop3_multiline().await?
        };
        n += 1;
    }
    let retr_secs = retr_start.elapsed().as_secs_f64();
    c.send(b"QUIT\r\n").await?;
    c.pop3_ok().await?;
    Ok(Round {
        messages: n,
        bytes,
        login_secs,
        retr_secs,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut best: Option<Round> = None;
    for i in 1..=args.rounds.max(1) {
        let r = round(&args).await?;
        let rate = r.messages as f64 / r.retr_secs;
        println!(
            "round {i}: login+STAT {:.3}s, {} RETRs ({} bytes) in {:.2}s: {rate:.1} msgs/s, {:.2} MB/s",
            r.login_secs,
            r.messages,
            r.bytes,
            r.retr_secs,
            r.bytes as f64 / r.retr_secs / 1e6
        );
        let better = best
            .as_ref()
            .is_none_or(|b| r.messages as f64 / r.retr_secs > b.messages as f64 / b.retr_secs);
        if better {
            best = Some(r);
        }
    }
    let Some(b) = best else {
        return err("no round ran");
    };
    println!(
        "RESULT retr messages={} bytes={} secs={:.3} msgs_per_sec={:.2} mb_per_sec={:.3} login_secs={:.3}",
        b.messages,
        b.bytes,
        b.retr_secs,
        b.messages as f64 / b.retr_secs,
        b.bytes as f64 / b.retr_secs / 1e6,
        b.login_secs
    );
    Ok(())
}
