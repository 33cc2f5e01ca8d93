//! `.eml` upload (UPL-1): store files into a chosen folder, each checked first.

use std::path::{Path, PathBuf};

use mailstore_core::{AccountId, AppendOptions, MailStore, Origin, Timestamp};

use super::EngineError;

/// Upload options.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UploadOptions {
    /// Files of this size or more are refused. Default 50 MiB (the import limit).
    pub size_limit: u64,
    /// Origin label recorded on the stored messages. Default `upload`.
    pub origin_label: String,
    /// Bare LF line ends (common in `.eml` files saved on Unix) are turned into CRLF.
    /// Default `true`.
    pub normalize_line_ends: bool,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            size_limit: crate::import::DEFAULT_IMPORT_SIZE_LIMIT,
            origin_label: "upload".into(),
            normalize_line_ends: true,
        }
    }
}

/// A file that was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadedFile {
    /// The file.
    pub path: PathBuf,
    /// Its UID in the folder.
    pub uid: u32,
    /// The INTERNALDATE given to it (from `Date:`, else the file's modification time).
    pub internal_date: Timestamp,
}

/// A file that was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectedFile {
    /// The file.
    pub path: PathBuf,
    /// Why, for the user.
    pub reason: String,
}

/// What [`upload`] did.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct UploadReport {
    /// Stored files, in the order given.
    pub stored: Vec<UploadedFile>,
    /// Refused files, in the order given; the others are stored regardless.
    pub rejected: Vec<RejectedFile>,
}

/// Stores each file in `paths` into `folder` (which must exist). A file is refused, with
/// its reason in the report, when it cannot be read, is empty, reaches the size limit, or
/// does not start with an RFC 5322 header block (`Name: value` fields, folded lines,
/// ending with an empty line or the end of the file). INTERNALDATE is the `Date:` field
/// when it parses, else the file's modification time.
///
/// # Errors
/// Only a missing folder or an account the store does not know; every per-file problem is
/// in [`UploadReport::rejected`].
pub async fn upload<S: MailStore>(
    store: &S,
    account: AccountId,
    folder: &str,
    paths: &[PathBuf],
    opts: &UploadOptions,
) -> Result<UploadReport, EngineError> {
    let mbx = store.mailbox(account, folder).await?;
    let mut report = UploadReport::default();
    for path in paths {
        let reject = |reason: String| RejectedFile {
            path: path.clone(),
            reason,
        };
        let (bytes, mtime) = match read_checked(path, opts.size_limit).await {
            Ok(v) => v,
            Err(reason) => {
                report.rejected.push(reject(reason));
                continue;
            }
        };
        let bytes = if opts.normalize_line_ends {
            to_crlf(bytes)
        } else {
            bytes
        };
        if bytes.len() as u64 >= opts.size_limit {
            report.rejected.push(reject(format!(
                "the message is {} bytes, the limit is less than {}",
                bytes.len(),
                opts.size_limit
            )));
            continue;
        }
        if let Err(reason) = check_header_block(&bytes) {
            report.rejected.push(reject(reason));
            continue;
        }
        let internal_date = date_header(&bytes).unwrap_or(mtime);
        let append = AppendOptions::default()
            .internal_date(internal_date)
            .origin(Origin::Imported(opts.origin_label.clone()));
        match store
            .append(mbx.mailbox, append, bytes::Bytes::from(bytes))
            .await
        {
            Ok(o) => report.stored.push(UploadedFile {
                path: path.clone(),
                uid: o.uid,
                internal_date,
            }),
            Err(e @ mailstore_core::StoreError::InvalidMessage(_)) => {
                report.rejected.push(reject(e.to_string()));
            }
            Err(e @ mailstore_core::StoreError::OverQuota { .. }) => {
                report.rejected.push(reject(e.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(report)
}

async fn read_checked(path: &Path, limit: u64) -> Result<(Vec<u8>, Timestamp), String> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() == 0 {
        return Err("the file is empty".into());
    }
    if meta.len() >= limit {
        return Err(format!(
            "the file is {} bytes, the limit is less than {limit}",
            meta.len()
        ));
    }
    let mtime = meta
        .modified()
        .map(Timestamp::from_system_time)
        .unwrap_or(Timestamp(0));
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| format!("cannot read the file: {e}"))?;
    Ok((bytes, mtime))
}

/// LF not preceded by CR becomes CRLF.
fn to_crlf(bytes: Vec<u8>) -> Vec<u8> {
    let bare = bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' && (i == 0 || bytes.get(i - 1) != Some(&b'\r')))
        .count();
    if bare == 0 {
        return bytes;
    }
    let mut out = Vec::with_capacity(bytes.len() + bare);
    let mut prev = 0u8;
    for b in bytes {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// Checks the RFC 5322 header block: at least one field, every line a field
/// (`ftext+ *WSP ":"`) or a continuation (starting with WSP), no NUL, ended by an empty
/// line or the end of the data.
pub fn check_header_block(bytes: &[u8]) -> Result<(), String> {
    let mut fields = 0usize;
    let mut pos = 0usize;
    let mut line_no = 0usize;
    while pos < bytes.len() {
        line_no += 1;
        let rest = bytes.get(pos..).unwrap_or_default();
        let nl = rest.iter().position(|&b| b == b'\n');
        let line = rest.get(..nl.unwrap_or(rest.len())).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.contains(&0) {
            return Err(format!("header line {line_no} contains a NUL byte"));
        }
        if line.len() > 998 {
            return Err(format!(
                "header line {line_no} is longer than 998 characters (RFC 5322 2.1.1)"
            ));
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if fields == 0 {
                return Err("the file starts with a continuation line, not a header field".into());
            }
        } else {
            let name_len = line
                .iter()
                .take_while(|&&b| (33..=126).contains(&b) && b != b':')
                .count();
            let after = line.get(name_len..).unwrap_or_default();
            let colon = after.iter().find(|&&b| b != b' ' && b != b'\t');
            if name_len == 0 || colon != Some(&b':') {
                return Err(format!(
                    "line {line_no} is not a header field (\"Name: value\"); the file does not look like an RFC 5322 message"
                ));
            }
            fields += 1;
        }
        pos += nl.map_or(rest.len(), |n| n + 1);
    }
    if fields == 0 {
        return Err("the file has no header fields".into());
    }
    Ok(())
}

/// The `Date:` field as a timestamp, if present and valid.
fn date_header(bytes: &[u8]) -> Option<Timestamp> {
    let msg = mail_parser::MessageParser::default().parse_headers(bytes)?;
    let d = msg.date()?;
    if !d.is_valid() {
        return None;
    }
    Some(Timestamp(d.to_timestamp()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_block_rules() {
        assert!(check_header_block(b"Subject: x\r\n\r\nbody").is_ok());
        assert!(check_header_block(b"Subject: x\r\n folded\r\nFrom: a@b\r\n").is_ok());
        assert!(check_header_block(b"Subject : obsolete space\r\n\r\n").is_ok());
        assert_eq!(
            check_header_block(b"hello world\r\n\r\n").unwrap_err(),
            "line 1 is not a header field (\"Name: value\"); the file does not look like an RFC 5322 message"
        );
        assert!(check_header_block(b" cont\r\n").is_err());
        assert!(check_header_block(b"\r\nbody").is_err());
        assert!(check_header_block(b"A: \0\r\n").is_err());
    }

    #[test]
    fn crlf_normalisation() {
        assert_eq!(to_crlf(b"a\nb\r\nc\n".to_vec()), b"a\r\nb\r\nc\r\n");
        assert_eq!(to_crlf(b"a\r\n".to_vec()), b"a\r\n");
    }

    #[test]
    fn date_header_parses() {
        assert_eq!(
            date_header(b"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n\r\n"),
            Some(Timestamp(1_057_049_557))
        );
        assert_eq!(date_header(b"Date: yesterday\r\n\r\n"), None);
        assert_eq!(date_header(b"Subject: x\r\n\r\n"), None);
    }
}
