//! `pop3-maildrop`: serves a directory of `.eml` files, in file-name order, as one POP3
//! maildrop, embedding `pop3-proto` alone (plus `mail-net` for TLS).
//!
//! ```text
//! pop3-maildrop --dir DIR --listen 127.0.0.1:2110 --user U --pass P [--tls-listen ADDR] [--apop]
//! ```
//!
//! UIDL of a message: 16 hex digits of the FNV-1a hash of its file name, `-`, its size in
//! octets on disk; stable across restarts while the file is unchanged. `DELE` + `QUIT`
//! removes the files (and fsyncs the directory) before the `+OK`.
use std::{io, path::PathBuf, sync::Arc};

use clap::Parser;
use mail_net::{DevCertificate, MaybeTls, TlsAcceptor};
use pop3_proto::tokio::{AuthError, Backend, ServeConfig, serve};
use pop3_proto::types::{MessageInfo, Secret};
use tokio::{net::TcpListener, sync::OwnedMutexGuard};

#[derive(Parser, Debug)]
#[command(about = "A small POP3 server over a directory of .eml files")]
struct Args {
    /// Directory of .eml files (the maildrop).
    #[arg(long)]
    dir: PathBuf,
    /// Plain POP3 address (STLS is offered); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:2110")]
    listen: String,
    /// Implicit-TLS (POP3S) address, with a self-signed development certificate.
    #[arg(long)]
    tls_listen: Option<String>,
    /// The one user name.
    #[arg(long)]
    user: String,
    /// Its password.
    #[arg(long)]
    pass: String,
    /// Offer APOP (verified against --pass).
    #[arg(long)]
    apop: bool,
}

struct Dir {
    dir: PathBuf,
    user: String,
    pass: String,
    lock: Arc<tokio::sync::Mutex<()>>,
}

/// Size with CRLF line ends (what the client receives, counted in 64 KiB reads, never the
/// whole file in memory) and an FNV-1a based UIDL.
fn info(path: &std::path::Path) -> io::Result<MessageInfo> {
    use std::io::Read;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (mut file, mut buf) = (std::fs::File::open(path)?, vec![0u8; 64 * 1024]);
    let (mut len, mut extra, mut last) = (0u64, 0u64, b'\n');
    loop {
        let n = file.read(&mut buf)?;
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
            break;
        };
        for &b in chunk {
            extra += u64::from(b == b'\n' && last != b'\r');
            last = b;
        }
        len += n as u64;
    }
    extra += if last == b'\n' { 0 } else { 2 };
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    Ok(MessageInfo::new(len + extra, format!("{hash:016x}-{len}")))
}

impl Backend for Dir {
    type Maildrop = (OwnedMutexGuard<()>, Vec<PathBuf>);
    type Body = tokio::fs::File;

    async fn verify_password(&self, user: &str, password: &Secret) -> Result<(), AuthError> {
        let ok = user == self.user && password.expose()[..] == *self.pass.as_bytes();
        if ok { Ok(()) } else { Err(AuthError::Invalid) }
    }

    async fn plaintext_secret(&self, user: &str) -> Result<Option<Secret>, AuthError> {
        Ok((user == self.user).then(|| pop3_proto::types::secret(self.pass.clone())))
    }

    async fn open_maildrop(
        &self,
        _user: &str,
    ) -> Result<(Self::Maildrop, Vec<MessageInfo>), AuthError> {
        let guard = self
            .lock
            .clone()
            .try_lock_owned()
            .map_err(|_| AuthError::InUse)?;
        let temp = |e: io::Error| AuthError::Temporary(e.to_string());
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(temp)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        paths.sort();
        let list = paths
            .iter()
            .map(|p| info(p))
            .collect::<io::Result<Vec<_>>>()
            .map_err(temp)?;
        Ok(((guard, paths), list))
    }

    async fn read_message(&self, m: &mut Self::Maildrop, index: usize) -> io::Result<Self::Body> {
        let path =
            m.1.get(index)
                .ok_or_else(|| io::Error::other("no such message"))?;
        tokio::fs::File::open(path).await
    }

    async fn commit(&self, m: Self::Maildrop, deleted: Vec<usize>) -> io::Result<()> {
        for i in &deleted {
            if let Some(p) = m.1.get(*i) {
                tokio::fs::remove_file(p).await?;
            }
        }
        if !deleted.is_empty() {
            std::fs::File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let cert = DevCertificate::generate(&[])?;
    let acceptor = TlsAcceptor::from(cert.server_config()?);
    let backend = Arc::new(Dir {
        dir: args.dir.clone(),
        user: args.user.clone(),
        pass: args.pass,
        lock: Default::default(),
    });
    let mut config = ServeConfig::default();
    config.tls = Some(acceptor.clone());
    config.apop = args.apop;
    config.protocol.implementation = Some("pop3-maildrop".into());
    config.protocol.sasl_mechanisms = ["PLAIN", "LOGIN", "CRAM-MD5"].map(Into::into).to_vec();
    let plain = TcpListener::bind(&args.listen).await?;
    println!(
        "pop3-maildrop: serving {} as the maildrop of user {:?}",
        args.dir.display(),
        args.user
    );
    println!("  POP3  {} (plain; STLS offered)", plain.local_addr()?);
    let tls = match &args.tls_listen {
        Some(a) => Some(TcpListener::bind(a).await?),
        None => None,
    };
    if let Some(l) = &tls {
        println!("  POP3S {} (implicit TLS)", l.local_addr()?);
    }
    println!("  the TLS certificate is self-signed: tell clients not to verify it (curl -k)");
    println!("ready");
    let accept = |l: TcpListener, implicit: bool| {
        let (backend, config, acceptor) = (backend.clone(), config.clone(), acceptor.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = l.accept().await {
                let (backend, config, acceptor) =
                    (backend.clone(), config.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let stream = if implicit {
                        match MaybeTls::Plain(tcp).upgrade_server(&acceptor).await {
                            Ok(s) => s,
                            Err(_) => return,
                        }
                    } else {
                        MaybeTls::Plain(tcp)
                    };
                    if let Err(e) = serve(stream, config, &*backend).await {
                        eprintln!("session ended: {e}");
                    }
                });
            }
        })
    };
    let plain_task = accept(plain, false);
    if let Some(l) = tls {
        accept(l, true);
    }
    plain_task.await?;
    Ok(())
}
