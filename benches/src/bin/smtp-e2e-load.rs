//! `smtp-e2e-load`: SMTP delivery end to end. Reads a mailbox's message count over IMAP
//! (`STATUS ... (MESSAGES)`), starts the given sender command (Postfix's `smtp-source`),
//! and polls `STATUS` until the count has grown by `--expect`: the time from the start
//! of the sender to "every message is readable over IMAP" is the end-to-end figure. Also
//! prints when the sender itself finished (every message accepted by the SMTP server).
//!
//! ```text
//! smtp-e2e-load --imap-addr 127.0.0.1:993 --tls --user u --pass p --expect 2000 -- \
//!     smtp-source -s 10 -m 2000 -l 10240 -f from@example.test -t u@example.test 127.0.0.1:25
//! ```
//!
//! Benchmark tool for servers on 127.0.0.1 started by `benches/load/run.sh`; TLS does not
//! verify certificates. The last line of output is machine-readable (`RESULT ...`).

#[path = "load_common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use common::{Conn, Result, err};

/// Command line of `smtp-e2e-load`.
#[derive(Parser, Debug)]
#[command(about = "Time from starting an SMTP sender until every message is readable over IMAP")]
struct Args {
    /// IMAP server to poll (IMAPS with --tls).
    #[arg(long)]
    imap_addr: SocketAddr,
    /// Implicit TLS for the IMAP connection.
    #[arg(long)]
    tls: bool,
    /// IMAP login name.
    #[arg(long)]
    user: String,
    /// IMAP password.
    #[arg(long)]
    pass: String,
    /// Mailbox the messages arrive in.
    #[arg(long, default_value = "INBOX")]
    mailbox: String,
    /// How many new messages must become readable.
    #[arg(long)]
    expect: u64,
    /// Poll interval, in milliseconds.
    #[arg(long, default_value_t = 50)]
    poll_ms: u64,
    /// Time cap in seconds; the sender is killed when it is reached.
    #[arg(long, default_value_t = 300)]
    cap_secs: u64,
    /// The sender command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

async fn count(c: &mut Conn, mailbox: &str) -> Result<u64> {
    c.send(format!("T STATUS {} (MESSAGES)\r\n", common::quote(mailbox)).as_bytes())
        .await?;
    match c.imap_until_tagged("T").await? {
        Some(n) => Ok(n),
        None => err("STATUS answered without MESSAGES"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut c = common::connect(args.imap_addr, args.tls, Duration::from_secs(60)).await?;
    c.imap_login(&args.user, &args.pass).await?;
    let base = count(&mut c, &args.mailbox).await?;
    let target = base + args.expect;
    let Some((program, rest)) = args.command.split_first() else {
        return err("no sender command given");
    };
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(rest)
        .spawn()
        .map_err(|e| common::Msg(format!("starting {program}: {e}")))?;
    let cap = Duration::from_secs(args.cap_secs);
    let mut sender_secs = None;
    let mut sender_ok = true;
    let mut seen;
    loop {
        if sender_secs.is_none()
            && let Some(status) = child.try_wait()?
        {
            sender_secs = Some(started.elapsed().as_secs_f64());
            sender_ok = status.success();
            if !sender_ok {
                eprintln!("{program} exited with {status}");
            }
        }
        seen = count(&mut c, &args.mailbox).await?;
        if seen >= target {
            break;
        }
        if started.elapsed() > cap {
            if sender_secs.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = c.send(b"Z LOGOUT\r\n").await;
            println!(
                "RESULT smtp_e2e delivered={} expected={} secs=cap",
                seen - base,
                args.expect
            );
            return err(format!(
                "time cap {cap:?} reached: {} of {} messages readable",
                seen - base,
                args.expect
            ));
        }
        tokio::time::sleep(Duration::from_millis(args.poll_ms)).await;
    }
    let e2e = started.elapsed().as_secs_f64();
    if sender_secs.is_none() {
        // Every message is readable; the sender is only closing its sessions.
        let status = child.wait()?;
        sender_secs = Some(started.elapsed().as_secs_f64());
        sender_ok = status.success();
    }
    let _ = c.send(b"Z LOGOUT\r\n").await;
    let sender = sender_secs.unwrap_or(e2e);
    let rate = args.expect as f64 / e2e;
    println!(
        "{} messages readable over IMAP {e2e:.2}s after the sender started \
         ({rate:.1} msgs/s end to end); the sender finished after {sender:.2}s",
        seen - base
    );
    println!(
        "RESULT smtp_e2e delivered={} expected={} secs={e2e:.3} msgs_per_sec={rate:.2} \
         sender_secs={sender:.3} sender_ok={sender_ok}",
        seen - base,
        args.expect
    );
    if !sender_ok {
        return err("the sender command failed");
    }
    Ok(())
}
