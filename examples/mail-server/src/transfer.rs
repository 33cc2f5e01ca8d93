//! `export` and `import` of plain Maildir and mbox, through the store's
//! `mailstore_core::transfer` functions.
//!
//! - Maildir: one Maildir++ tree (INBOX at the top, `.Folder` sub-Maildirs), flags in the
//!   `:2,` suffix, keywords as Dovecot-style letters.
//! - mbox: one mboxrd file per mailbox, `<path>/<mailbox name>.mbox` (`Lists/rust` becomes
//!   `<path>/Lists/rust.mbox`). Import takes such a directory, or a single mbox file that
//!   goes into one folder (INBOX unless `--folder` says otherwise).

use std::path::{Path, PathBuf};

use mailstore_core::transfer::{self, ImportOptions, TransferStats};
use mailstore_core::{AccountInfo, CreateMailbox, MailStore, MailboxRef, StoreError};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};

use crate::admin::MailFormat;
use crate::error::ServerError;

fn summary(verb: &str, format: MailFormat, path: &Path, s: &TransferStats) -> Vec<String> {
    let mut out = vec![format!(
        "{verb} {} messages ({} bytes) in {} mailboxes {} {} {}",
        s.messages,
        s.bytes,
        s.mailboxes,
        if verb == "exported" { "to" } else { "from" },
        format.as_str(),
        path.display()
    )];
    if s.keywords_dropped > 0 {
        out.push(format!(
            "{} keywords could not be represented and were dropped",
            s.keywords_dropped
        ));
    }
    for skipped in &s.skipped {
        out.push(format!("skipped: {skipped}"));
    }
    out
}

fn add(total: &mut TransferStats, s: &TransferStats) {
    total.mailboxes += s.mailboxes;
    total.messages += s.messages;
    total.bytes += s.bytes;
    total.keywords_dropped += s.keywords_dropped;
    total.skipped.extend(s.skipped.iter().cloned());
}

fn io(what: &str, path: &Path, e: std::io::Error) -> ServerError {
    ServerError::io(format!("{what} {}", path.display()), e)
}

/// Exports every folder of `account` to `path`.
///
/// # Errors
/// The store's or the file system's error, naming the path.
pub async fn export<S: MailStore>(
    store: &S,
    account: &AccountInfo,
    format: MailFormat,
    path: &Path,
) -> Result<Vec<String>, ServerError> {
    let stats = match format {
        MailFormat::Maildir => transfer::export_maildir(store, account.id, path).await?,
        MailFormat::Mbox => {
            let mut total = TransferStats::default();
            tokio::fs::create_dir_all(path)
                .await
                .map_err(|e| io("creating", path, e))?;
            for mb in store.list_mailboxes(account.id).await? {
                let file = mbox_path(path, &mb.name);
                if let Some(parent) = file.parent() {
                    tokio::fs::create_dir_all(parent)
                        .await
                        .map_err(|e| io("creating", parent, e))?;
                }
                let f = tokio::fs::File::create(&file)
                    .await
                    .map_err(|e| io("creating", &file, e))?;
                let mut w = BufWriter::new(f);
                let s = transfer::export_mbox(store, mb.mailbox, &mut w).await?;
                w.flush().await.map_err(|e| io("writing", &file, e))?;
                w.get_ref()
                    .sync_all()
                    .await
                    .map_err(|e| io("syncing", &file, e))?;
                add(&mut total, &s);
            }
            total
        }
    };
    Ok(summary("exported", format, path, &stats))
}

/// `<dir>/<mailbox name>.mbox`, one path component per hierarchy level.
fn mbox_path(dir: &Path, mailbox: &str) -> PathBuf {
    let mut p = dir.to_path_buf();
    let mut segs = mailbox.split(mailstore_core::DELIMITER).peekable();
    while let Some(seg) = segs.next() {
        if segs.peek().is_some() {
            p.push(seg);
        } else {
            p.push(format!("{seg}.mbox"));
        }
    }
    p
}

async fn mailbox_or_create<S: MailStore>(
    store: &S,
    account: &AccountInfo,
    name: &str,
) -> Result<MailboxRef, ServerError> {
    match store.mailbox(account.id, name).await {
        Ok(m) => Ok(m.mailbox),
        Err(StoreError::NoSuchMailbox(_)) => Ok(store
            .create_mailbox(account.id, name, CreateMailbox::default())
            .await?
            .mailbox),
        Err(e) => Err(e.into()),
    }
}

/// The `.mbox` files under `dir`, with the mailbox name each stands for.
fn mbox_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, ServerError> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|e| io("reading", &d, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| io("reading", &d, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let ft = entry.file_type().map_err(|e| io("reading", &path, e))?;
            if ft.is_dir() {
                stack.push((path, format!("{prefix}{name}/")));
            } else if let Some(stem) = name.strip_suffix(".mbox") {
                let mailbox = format!("{prefix}{stem}");
                let mailbox = if mailbox.eq_ignore_ascii_case("inbox") {
                    "INBOX".to_string()
                } else {
                    mailbox
                };
                out.push((mailbox, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Imports `path` into `account`.
///
/// # Errors
/// The store's or the file system's error, naming the path.
pub async fn import<S: MailStore>(
    store: &S,
    account: &AccountInfo,
    format: MailFormat,
    path: &Path,
    folder: Option<&str>,
) -> Result<Vec<String>, ServerError> {
    let opts = ImportOptions::default().origin(format!("{} import", format.as_str()));
    let stats = match format {
        MailFormat::Maildir => {
            if folder.is_some() {
                return Err(ServerError::Usage(
                    "--folder applies to a single mbox file; a Maildir brings its own folders"
                        .into(),
                ));
            }
            transfer::import_maildir(store, account.id, path, &opts).await?
        }
        MailFormat::Mbox => {
            let meta = std::fs::metadata(path).map_err(|e| io("reading", path, e))?;
            let files = if meta.is_dir() {
                if folder.is_some() {
                    return Err(ServerError::Usage(
                        "--folder applies to a single mbox file; a directory of .mbox files names its own folders"
                            .into(),
                    ));
                }
                mbox_files(path)?
            } else {
                vec![(folder.unwrap_or("INBOX").to_string(), path.to_path_buf())]
            };
            let mut total = TransferStats::default();
            for (name, file) in files {
                let mailbox = mailbox_or_create(store, account, &name).await?;
                let f = tokio::fs::File::open(&file)
                    .await
                    .map_err(|e| io("opening", &file, e))?;
                let mut r = BufReader::new(f);
                let s = transfer::import_mbox(store, mailbox, &mut r, &opts).await?;
                add(&mut total, &s);
            }
            total
        }
    };
    Ok(summary("imported", format, path, &stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_paths() {
        assert_eq!(
            mbox_path(Path::new("/x"), "INBOX"),
            PathBuf::from("/x/INBOX.mbox")
        );
        assert_eq!(
            mbox_path(Path::new("/x"), "Lists/rust"),
            PathBuf::from("/x/Lists/rust.mbox")
        );
    }
}
