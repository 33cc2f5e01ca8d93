//! The admin socket: the server side (a Unix listener in the data directory, mode 0600)
//! and the client side the CLI uses when the store is locked by a running server.
//!
//! The protocol is described in [`crate::admin`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mail_net::Shutdown;
use mailstore_core::MailStore;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::admin::{self, ParsedLine, Request, ResponseLine};
use crate::config::Config;
use crate::error::ServerError;

/// How long one admin request may take to arrive.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the CLI waits for the server's answer (imports can be long).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3600);

/// Binds the admin socket at `path` (replacing a stale one) with mode 0600.
///
/// Call it only while holding the store lock: then no other server can be using `path`.
///
/// # Errors
/// [`ServerError::Io`] naming the path.
pub fn bind(path: &Path) -> Result<UnixListener, ServerError> {
    if path.exists() {
        std::fs::remove_file(path).map_err(|e| {
            ServerError::io(
                format!("removing the stale admin socket {}", path.display()),
                e,
            )
        })?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| ServerError::io(format!("binding the admin socket {}", path.display()), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| ServerError::io(format!("setting mode 0600 on {}", path.display()), e))?;
    }
    Ok(listener)
}

/// Serves admin requests until `shutdown` fires.
pub async fn serve<S: MailStore>(
    listener: UnixListener,
    store: Arc<S>,
    config: Arc<Config>,
    shutdown: Shutdown,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.wait() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, _)) => {
                let store = Arc::clone(&store);
                let config = Arc::clone(&config);
                tokio::spawn(async move {
                    if let Err(e) = handle(stream, &*store, &config).await {
                        tracing::warn!("admin socket: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("admin socket accept failed: {e}");
                tokio::select! {
                    () = shutdown.wait() => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
}

async fn read_request(
    reader: &mut BufReader<UnixStream>,
    config: &Config,
) -> Result<Request, String> {
    let mut line = Vec::new();
    let n = (&mut *reader)
        .take(admin::MAX_REQUEST_LINE as u64 + 1)
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| format!("reading the request: {e}"))?;
    if n == 0 {
        return Err("empty request".into());
    }
    if line.last() != Some(&b'\n') {
        return Err(format!(
            "request line longer than {} bytes",
            admin::MAX_REQUEST_LINE
        ));
    }
    line.pop();
    let text = String::from_utf8(line).map_err(|_| "the request line is not UTF-8".to_string())?;
    match admin::parse_request_line(&text)? {
        ParsedLine::Complete(r) => Ok(r),
        ParsedLine::Deliver {
            address,
            folder,
            size,
        } => {
            if size > config.max_message_size {
                return Err(format!(
                    "message refused, nothing stored: the message is {size} bytes, over the limit of {} bytes",
                    config.max_message_size
                ));
            }
            let len = usize::try_from(size).map_err(|_| "message too large".to_string())?;
            let mut body = vec![0u8; len];
            reader
                .read_exact(&mut body)
                .await
                .map_err(|e| format!("reading the message: {e}"))?;
            Ok(ParsedLine::finish_deliver(
                address,
                folder,
                Bytes::from(body),
            ))
        }
    }
}

async fn handle<S: MailStore>(
    stream: UnixStream,
    store: &S,
    config: &Config,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let request =
        match tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut reader, config)).await {
            Ok(r) => r,
            Err(_) => Err("the request did not arrive in time".into()),
        };
    let result = match request {
        Ok(r) => admin::execute(store, config, r)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    let mut stream = reader.into_inner();
    stream
        .write_all(admin::encode_response(&result).as_bytes())
        .await?;
    stream.shutdown().await
}

/// Sends one request to the server listening on `path`; returns its output lines.
///
/// # Errors
/// [`ServerError::Io`] when the socket cannot be used, [`ServerError::Remote`] with the
/// server's reason when it refused the request.
pub async fn request(path: &Path, request: &Request) -> Result<Vec<String>, ServerError> {
    let stream = UnixStream::connect(path).await.map_err(|e| {
        ServerError::io(
            format!(
                "the store is locked but the server's admin socket {} does not answer",
                path.display()
            ),
            e,
        )
    })?;
    let (line, body) = request.encode();
    let mut reader = BufReader::new(stream);
    let exchange = async {
        let s = reader.get_mut();
        s.write_all(line.as_bytes()).await?;
        s.write_all(b"\n").await?;
        if let Some(b) = body {
            s.write_all(&b).await?;
        }
        s.flush().await?;
        let mut out = Vec::new();
        let mut text = String::new();
        loop {
            text.clear();
            let n = (&mut reader).take(1024 * 1024).read_line(&mut text).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(Err(
                    "the server closed the admin connection without an answer".to_string(),
                ));
            }
            let l = text.strip_suffix('\n').unwrap_or(&text);
            match admin::parse_response_line(l) {
                Ok(ResponseLine::Data(d)) => out.push(d),
                Ok(ResponseLine::Ok) => return Ok(Ok(out)),
                Ok(ResponseLine::Err(e)) => return Ok(Err(e)),
                Err(e) => return Ok(Err(e)),
            }
        }
    };
    match tokio::time::timeout(RESPONSE_TIMEOUT, exchange).await {
        Ok(Ok(Ok(lines))) => Ok(lines),
        Ok(Ok(Err(e))) => Err(ServerError::Remote(e)),
        Ok(Err(e)) => Err(ServerError::io(
            format!("talking to the admin socket {}", path.display()),
            e,
        )),
        Err(_) => Err(ServerError::Remote(
            "the server did not answer in time".into(),
        )),
    }
}
