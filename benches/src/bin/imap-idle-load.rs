//! `imap-idle-load`: opens N IMAP connections, each `LOGIN`, `SELECT INBOX`, `IDLE`; waits
//! until every one has its `+` continuation (or holds them earlier, `--stage`), then reads the server's memory from `/proc`
//! (the process given with `--pid` and all its descendants: for Dovecot pass the master's
//! pid, which sums the `imap` and `imap-login` children) and prints the memory per idle
//! connection: `(after - before) / N` for VmRSS and for Pss.
//!
//! Benchmark tool for servers on 127.0.0.1 started by `benches/load/run.sh`; TLS does not
//! verify certificates. The last line of output is machine-readable (`RESULT ...`).

#[path = "load_common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use common::{Result, err, tree_memory};
use tokio::sync::{Semaphore, mpsc, watch};

/// Command line of `imap-idle-load`.
#[derive(Parser, Debug)]
#[command(about = "N IMAP connections in IDLE; server memory per idle connection")]
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
    /// Number of idle connections.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Connections being set up at the same time.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Pid of the server process; it and its descendants are measured.
    #[arg(long)]
    pid: u32,
    /// Time cap for the whole run, in seconds.
    #[arg(long, default_value_t = 180)]
    cap_secs: u64,
    /// How far each connection goes before it is held (to find where memory goes):
    /// `greeting` (TLS + greeting only), `login`, `select`, or `idle` (the load itself).
    #[arg(long, default_value = "idle", value_parser = ["greeting", "login", "select", "idle"])]
    stage: String,
    /// Per-response timeout, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

/// What one connection task reports.
enum Report {
    Idling,
    Failed(String),
}

async fn one(
    args: Arc<Args>,
    tls: Option<Arc<mail_net::TlsConnector>>,
    setup: Arc<Semaphore>,
    ready: mpsc::Sender<Report>,
    mut stop: watch::Receiver<bool>,
) {
    let timeout = Duration::from_secs(args.timeout_secs);
    let conn = async {
        let _permit = setup.acquire().await?;
        let mut c = common::connect_with(args.addr, tls.as_deref(), timeout).await?;
        if args.stage == "greeting" {
            c.read_line().await?;
            return Ok(c);
        }
        c.imap_login(&args.user, &args.pass).await?;
        if args.stage == "login" {
            return Ok(c);
        }
        c.send(b"S SELECT INBOX\r\n").await?;
        c.imap_until_tagged("S").await?;
        if args.stage == "select" {
            return Ok(c);
        }
        c.send(b"I IDLE\r\n").await?;
        loop {
            let line = c.read_line().await?;
            if line.starts_with(b"+") {
                break;
            }
            if line.starts_with(b"I ") {
                return err(format!(
                    "IDLE refused: {}",
                    String::from_utf8_lossy(line).trim_end()
                ));
            }
        }
        Ok::<_, common::BoxError>(c)
    }
    .await;
    match conn {
        Ok(mut c) => {
            if ready.send(Report::Idling).await.is_err() {
                return;
            }
            // Hold the connection (reading nothing: an idle client) until told to stop.
            let _ = stop.wait_for(|s| *s).await;
            let bye: &[u8] = if args.stage == "idle" {
                b"DONE\r\nZ LOGOUT\r\n"
            } else {
                b"Z LOGOUT\r\n"
            };
            let _ = c.send(bye).await;
        }
        Err(e) => {
            let _ = ready.send(Report::Failed(e.to_string())).await;
        }
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Arc::new(Args::parse());
    let n = args.connections;
    let tls = if args.tls {
        Some(Arc::new(common::insecure_connector()?))
    } else {
        None
    };
    let before = tree_memory(args.pid)?;
    let started = Instant::now();
    let setup = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let (ready_tx, mut ready_rx) = mpsc::channel(n.max(1));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        tasks.push(tokio::spawn(one(
            Arc::clone(&args),
            tls.clone(),
            Arc::clone(&setup),
            ready_tx.clone(),
            stop_rx.clone(),
        )));
    }
    drop(ready_tx);

    let cap = Duration::from_secs(args.cap_secs);
    let mut idling = 0usize;
    let mut failures = Vec::new();
    let collect = async {
        while let Some(r) = ready_rx.recv().await {
            match r {
                Report::Idling => idling += 1,
                Report::Failed(e) => failures.push(e),
            }
            if idling + failures.len() == n {
                break;
            }
        }
    };
    let capped = tokio::time::timeout(cap, collect).await.is_err();
    let setup_secs = started.elapsed().as_secs_f64();
    // Measure while all connections are idle.
    let after = tree_memory(args.pid)?;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }

    if let Some(first) = failures.first() {
        eprintln!(
            "{} connection(s) failed; first error: {first}",
            failures.len()
        );
    }
    if capped {
        eprintln!("time cap of {cap:?} reached with {idling} of {n} connections idling");
    }
    let per = |a: u64, b: u64| {
        if idling == 0 {
            0
        } else {
            a.saturating_sub(b) / idling as u64
        }
    };
    let rss_per = per(after.rss, before.rss);
    let pss_per = per(after.pss, before.pss);
    println!(
        "{idling}/{n} connections idling after {setup_secs:.1}s; server processes {} -> {}, \
         threads {} -> {}",
        before.processes, after.processes, before.threads, after.threads
    );
    println!(
        "VmRSS {:.1} MiB -> {:.1} MiB: {:.1} KiB per idle connection",
        mib(before.rss),
        mib(after.rss),
        rss_per as f64 / 1024.0
    );
    println!(
        "Pss   {:.1} MiB -> {:.1} MiB: {:.1} KiB per idle connection",
        mib(before.pss),
        mib(after.pss),
        pss_per as f64 / 1024.0
    );
    println!(
        "RESULT idle connections={idling} wanted={n} failed={} setup_secs={setup_secs:.2} \
         rss_before={} rss_after={} rss_per_conn={rss_per} pss_before={} pss_after={} \
         pss_per_conn={pss_per} procs_before={} procs_after={} threads_before={} \
         threads_after={}",
        failures.len(),
        before.rss,
        after.rss,
        before.pss,
        after.pss,
        before.processes,
        after.processes,
        before.threads,
        after.threads
    );
    if idling < n {
        return err(format!("only {idling} of {n} connections reached IDLE"));
    }
    Ok(())
}
