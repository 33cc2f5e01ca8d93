//! Export to and import from plain Maildir (Maildir++ folders) and mboxrd, so operators
//! can move mail with standard tools.
//!
//! **Maildir** ([`export_maildir`] / [`import_maildir`]): the account's INBOX is the
//! top directory, every other mailbox a `.Name` folder with `/` written as `.` (a `.` inside
//! a level is written `%2E`). Messages go to `cur/` named
//! `<internaldate>.U<uid>.mailstore,S=<size>:2,<flags>` with the file's mtime set to the
//! INTERNALDATE. Flags use the standard letters (`D` draft, `F` flagged, `R` answered,
//! `S` seen, `T` deleted); keywords use letters `a`..`z` mapped by a `dovecot-keywords`
//! file (at most 26 keywords per folder; more are counted in
//! [`TransferStats::keywords_dropped`]). UIDVALIDITY, UIDs and custom POP3 UIDLs are kept in
//! a `dovecot-uidlist` file (version 3: `3 V<uidvalidity> N<uidnext>`, then
//! `<uid> [P<uidl>] :<file name>`), subscriptions in `subscriptions`.
//!
//! **mbox** ([`export_mbox`] / [`import_mbox`]): mboxrd (`From ` lines quoted by adding a
//! `>` to any line matching `>*From `), one `From MAILER-DAEMON <asctime>` line per message
//! carrying the INTERNALDATE, an empty line after each message. Flags are added as
//! `Status:`/`X-Status:`/`X-Keywords:` header lines, announced by a first line
//! `X-Mailstore-Meta: uid=<uid> n=<count>` so our importer removes exactly what the exporter
//! added; foreign mboxes are read with their `Status:`/`X-Status:`/`X-Keywords:` headers
//! left in place. Bodies are read one message at a time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::StoreError;
use crate::store::{AppendSink, MailStore};
use crate::types::*;

/// Counters of an export or import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransferStats {
    /// Mailboxes written or read.
    pub mailboxes: usize,
    /// Messages written or stored.
    pub messages: usize,
    /// Bytes of messages.
    pub bytes: u64,
    /// Keywords that could not be represented (Maildir: more than 26 in a folder).
    pub keywords_dropped: usize,
    /// Files or mbox entries skipped because they were not messages (with reasons).
    pub skipped: Vec<String>,
}

/// Options for the importers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Keep UIDs and UIDVALIDITY from the source when it has them (Maildir
    /// `dovecot-uidlist`, our mbox meta line). A mailbox created by the import gets the
    /// source's UIDVALIDITY; UIDs below the target's UIDNEXT are renumbered. Default true.
    pub preserve_uids: bool,
    /// Origin recorded on every imported message. Default `Imported("import")`.
    pub origin: Origin,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            preserve_uids: true,
            origin: Origin::Imported("import".into()),
        }
    }
}

impl ImportOptions {
    /// Sets the origin label.
    pub fn origin(mut self, label: impl Into<String>) -> Self {
        self.origin = Origin::Imported(label.into());
        self
    }
    /// Do not keep source UIDs.
    pub fn renumber(mut self) -> Self {
        self.preserve_uids = false;
        self
    }
}

fn io_err(p: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::io(p, e)
}

/// Maildir++ folder directory name for a mailbox name (`None` for INBOX).
fn folder_dir(name: &str) -> Option<String> {
    if name == "INBOX" {
        return None;
    }
    let segs: Vec<String> = name.split('/').map(|s| s.replace('.', "%2E")).collect();
    Some(format!(".{}", segs.join(".")))
}

/// Mailbox name for a Maildir++ folder directory name.
fn folder_name(dir: &str) -> Option<String> {
    let rest = dir.strip_prefix('.')?;
    if rest.is_empty() || rest == "." {
        return None;
    }
    Some(
        rest.split('.')
            .map(|s| s.replace("%2E", "."))
            .collect::<Vec<_>>()
            .join("/"),
    )
}

const FLAG_LETTERS: [(char, SystemFlags); 5] = [
    ('D', SystemFlags::DRAFT),
    ('F', SystemFlags::FLAGGED),
    ('R', SystemFlags::ANSWERED),
    ('S', SystemFlags::SEEN),
    ('T', SystemFlags::DELETED),
];

/// Writes every mailbox of `account` under `dest` (created if missing).
pub async fn export_maildir<S: MailStore>(
    store: &S,
    account: AccountId,
    dest: &Path,
) -> Result<TransferStats, StoreError> {
    let mut stats = TransferStats::default();
    let mut subscriptions = String::new();
    for mb in store.list_mailboxes(account).await? {
        let dir = match folder_dir(&mb.name) {
            None => dest.to_path_buf(),
            Some(d) => dest.join(d),
        };
        for sub in ["cur", "new", "tmp"] {
            let p = dir.join(sub);
            tokio::fs::create_dir_all(&p).await.map_err(io_err(&p))?;
        }
        if mb.subscribed {
            subscriptions.push_str(&mb.name);
            subscriptions.push('\n');
        }
        let snap = store.snapshot(mb.mailbox).await?;
        let metas = store.message_meta(mb.mailbox, &UidSet::all()).await?;
        let mut keywords: Vec<String> = Vec::new();
        let mut uidlist = format!("3 V{} N{}\n", mb.uidvalidity, mb.uidnext);
        for (m, meta) in snap.messages.iter().zip(metas.iter()) {
            let mut suffix = String::new();
            for (c, f) in FLAG_LETTERS {
                if m.flags.system.contains(f) {
                    suffix.push(c);
                }
            }
            let mut letters = Vec::new();
            for k in m.flags.keywords() {
                let idx = match keywords.iter().position(|x| x == k) {
                    Some(i) => Some(i),
                    None if keywords.len() < 26 => {
                        keywords.push(k.clone());
                        Some(keywords.len() - 1)
                    }
                    None => None,
                };
                match idx.and_then(|i| u8::try_from(i).ok()) {
                    Some(i) => letters.push(char::from(b'a' + i)),
                    None => stats.keywords_dropped += 1,
                }
            }
            letters.sort_unstable();
            suffix.extend(letters);
            let base = format!(
                "{}.U{}.mailstore,S={}",
                meta.internal_date.0, m.uid, meta.size
            );
            let path = dir.join("cur").join(format!("{base}:2,{suffix}"));
            let mut body = store.open_body(mb.mailbox, m.uid).await?;
            let mut f = tokio::fs::File::create(&path)
                .await
                .map_err(io_err(&path))?;
            tokio::io::copy(&mut body, &mut f)
                .await
                .map_err(io_err(&path))?;
            f.flush().await.map_err(io_err(&path))?;
            let std_f = f.into_std().await;
            std_f
                .set_modified(meta.internal_date.to_system_time())
                .map_err(io_err(&path))?;
            let default_uidl = format!("{:08x}{:08x}", mb.uidvalidity, m.uid);
            if meta.uidl != default_uidl {
                uidlist.push_str(&format!("{} P{} :{base}\n", m.uid, meta.uidl));
            } else {
                uidlist.push_str(&format!("{} :{base}\n", m.uid));
            }
            stats.messages += 1;
            stats.bytes += meta.size;
        }
        let kw_text: String = keywords
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{i} {k}\n"))
            .collect();
        let kp = dir.join("dovecot-keywords");
        tokio::fs::write(&kp, kw_text).await.map_err(io_err(&kp))?;
        let up = dir.join("dovecot-uidlist");
        tokio::fs::write(&up, uidlist).await.map_err(io_err(&up))?;
        stats.mailboxes += 1;
    }
    let sp = dest.join("subscriptions");
    tokio::fs::write(&sp, subscriptions)
        .await
        .map_err(io_err(&sp))?;
    Ok(stats)
}

struct UidList {
    uidvalidity: Option<u32>,
    by_base: BTreeMap<String, (u32, Option<String>)>,
}

fn parse_uidlist(text: &str) -> UidList {
    let mut lines = text.lines();
    let mut uidvalidity = None;
    if let Some(h) = lines.next() {
        for tok in h.split(' ') {
            if let Some(v) = tok.strip_prefix('V') {
                uidvalidity = v.parse().ok();
            }
        }
    }
    let mut by_base = BTreeMap::new();
    for l in lines {
        let Some((head, base)) = l.split_once(" :").or_else(|| l.split_once(':')) else {
            continue;
        };
        let mut toks = head.split(' ');
        let Some(uid) = toks.next().and_then(|u| u.trim().parse::<u32>().ok()) else {
            continue;
        };
        let uidl = toks.find_map(|t| t.strip_prefix('P')).map(str::to_string);
        // Some writers keep the `:2,<flags>` part; the base name is what identifies a file.
        let base = base.split_once(":2,").map_or(base, |(b, _)| b);
        by_base.insert(base.to_string(), (uid, uidl));
    }
    UidList {
        uidvalidity,
        by_base,
    }
}

/// Reads a Maildir (INBOX at the top, Maildir++ `.Folder`s) into `account`, creating
/// mailboxes as needed. Files that are not messages are skipped and listed in the stats.
pub async fn import_maildir<S: MailStore>(
    store: &S,
    account: AccountId,
    src: &Path,
    opts: &ImportOptions,
) -> Result<TransferStats, StoreError> {
    let mut stats = TransferStats::default();
    let mut folders = vec![("INBOX".to_string(), src.to_path_buf())];
    let mut rd = tokio::fs::read_dir(src).await.map_err(io_err(src))?;
    while let Some(e) = rd.next_entry().await.map_err(io_err(src))? {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(mb) = folder_name(&name)
            && e.path().join("cur").is_dir()
        {
            folders.push((mb, e.path()));
        }
    }
    folders.sort();
    let subs = tokio::fs::read_to_string(src.join("subscriptions"))
        .await
        .unwrap_or_default();
    for (name, dir) in folders {
        let uidlist = parse_uidlist(
            &tokio::fs::read_to_string(dir.join("dovecot-uidlist"))
                .await
                .unwrap_or_default(),
        );
        let kws: BTreeMap<u8, String> = tokio::fs::read_to_string(dir.join("dovecot-keywords"))
            .await
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (i, k) = l.split_once(' ')?;
                Some((i.parse().ok()?, k.to_string()))
            })
            .collect();
        let mb = match store.mailbox(account, &name).await {
            Ok(m) => m,
            Err(StoreError::NoSuchMailbox(_)) => {
                let mut c = CreateMailbox::default();
                if opts.preserve_uids {
                    c.uidvalidity = uidlist.uidvalidity;
                }
                store.create_mailbox(account, &name, c).await?
            }
            Err(e) => return Err(e),
        };
        if subs.lines().any(|l| l == name) {
            store.set_subscribed(account, &name, true).await?;
        }
        stats.mailboxes += 1;
        let mut files: Vec<(u32, String, PathBuf, String)> = Vec::new();
        for sub in ["new", "cur"] {
            let d = dir.join(sub);
            let Ok(mut rd) = tokio::fs::read_dir(&d).await else {
                continue;
            };
            while let Some(e) = rd.next_entry().await.map_err(io_err(&d))? {
                let fname = e.file_name().to_string_lossy().into_owned();
                if fname.starts_with('.') {
                    continue;
                }
                let (base, info) = match fname.split_once(":2,") {
                    Some((b, i)) => (b.to_string(), i.to_string()),
                    None => (fname.clone(), String::new()),
                };
                let uid = uidlist.by_base.get(&base).map_or(u32::MAX, |u| u.0);
                files.push((uid, base, e.path(), info));
            }
        }
        // Source UID order, then file name (timestamps first) for the rest.
        files.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        for (uid, base, path, info) in files {
            let mut flags = Flags::new();
            for c in info.chars() {
                if let Some((_, f)) = FLAG_LETTERS.iter().find(|(l, _)| *l == c) {
                    flags.system = flags.system.union(*f);
                } else if c.is_ascii_lowercase()
                    && let Some(k) = kws.get(&(c as u8 - b'a'))
                {
                    flags.insert_keyword(k.clone());
                }
            }
            let meta = tokio::fs::metadata(&path).await.map_err(io_err(&path))?;
            let mut o = AppendOptions::with_flags(flags).origin(opts.origin.clone());
            o.internal_date = meta.modified().ok().map(Timestamp::from_system_time);
            let status = store.mailbox_status(mb.mailbox).await?;
            if opts.preserve_uids && uid != u32::MAX && uid >= status.uidnext {
                o.uid = Some(uid);
            }
            if let Some((_, Some(uidl))) = uidlist.by_base.get(&base) {
                o.uidl = Some(uidl.clone());
            }
            match append_file(store, mb.mailbox, o, &path).await {
                Ok(out) => {
                    stats.messages += 1;
                    stats.bytes += out.size;
                }
                Err(StoreError::InvalidMessage(e)) => {
                    stats.skipped.push(format!("{}: {e}", path.display()));
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(stats)
}

async fn append_file<S: MailStore>(
    store: &S,
    mailbox: MailboxRef,
    opts: AppendOptions,
    path: &Path,
) -> Result<AppendOutcome, StoreError> {
    let mut f = tokio::fs::File::open(path).await.map_err(io_err(path))?;
    let mut sink = store.begin_append(mailbox, opts).await?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).await.map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        sink.write(buf.get(..n).unwrap_or_default()).await?;
    }
    sink.commit().await
}

// ---------------- mbox ----------------

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `Thu Nov 24 23:47:15 2026` (UTC).
pub(crate) fn asctime(t: Timestamp) -> String {
    let days = t.0.div_euclid(86_400);
    let secs = t.0.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let wd = WEEKDAYS
        .get(usize::try_from(days.rem_euclid(7)).unwrap_or(0))
        .unwrap_or(&"Thu");
    let mon = MONTHS.get((m as usize).saturating_sub(1)).unwrap_or(&"Jan");
    format!(
        "{wd} {mon} {d:2} {:02}:{:02}:{:02} {y}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

pub(crate) fn parse_asctime(s: &str) -> Option<Timestamp> {
    let toks: Vec<&str> = s.split_whitespace().collect();
    // [weekday] month day hh:mm:ss year
    let (mon, day, time, year) = match toks.as_slice() {
        [_, mon, day, time, year, ..] => (*mon, *day, *time, *year),
        _ => return None,
    };
    let m = MONTHS.iter().position(|x| x.eq_ignore_ascii_case(mon))? + 1;
    let d: u32 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let y: i64 = year.parse().ok().filter(|y| (1..=9999).contains(y))?;
    let mut hms = time.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, se) = (
        hms.next()??,
        hms.next()??,
        hms.next().flatten().unwrap_or(0),
    );
    if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0..=60).contains(&se) {
        return None;
    }
    let days = days_from_civil(y, u32::try_from(m).ok()?, d);
    Some(Timestamp(days * 86_400 + h * 3600 + mi * 60 + se))
}

fn is_from_line(line: &[u8]) -> bool {
    line.starts_with(b"From ")
}

/// `>*From ` at the start of the line?
fn is_quoted_from(line: &[u8]) -> bool {
    let n = line.iter().take_while(|&&b| b == b'>').count();
    n > 0 && line.get(n..).is_some_and(|r| r.starts_with(b"From "))
}

/// Writes every message of `mailbox` as mboxrd to `out`.
pub async fn export_mbox<S: MailStore, W: AsyncWrite + Unpin + Send>(
    store: &S,
    mailbox: MailboxRef,
    out: &mut W,
) -> Result<TransferStats, StoreError> {
    let werr = |e| StoreError::io("<mbox output>", e);
    let mut stats = TransferStats {
        mailboxes: 1,
        ..Default::default()
    };
    let snap = store.snapshot(mailbox).await?;
    let metas = store.message_meta(mailbox, &UidSet::all()).await?;
    for (m, meta) in snap.messages.iter().zip(metas.iter()) {
        let body = store.open_body(mailbox, m.uid).await?.read_all().await?;
        let mut added = Vec::new();
        let mut status = String::new();
        if m.flags.system.contains(SystemFlags::SEEN) {
            status.push('R');
        }
        status.push('O');
        added.push(format!("Status: {status}"));
        let mut xs = String::new();
        for (c, f) in [
            ('A', SystemFlags::ANSWERED),
            ('F', SystemFlags::FLAGGED),
            ('T', SystemFlags::DRAFT),
            ('D', SystemFlags::DELETED),
        ] {
            if m.flags.system.contains(f) {
                xs.push(c);
            }
        }
        if !xs.is_empty() {
            added.push(format!("X-Status: {xs}"));
        }
        if !m.flags.keywords().is_empty() {
            added.push(format!("X-Keywords: {}", m.flags.keywords().join(" ")));
        }
        let mut chunk =
            format!("From MAILER-DAEMON {}\n", asctime(meta.internal_date)).into_bytes();
        chunk.extend_from_slice(
            format!("X-Mailstore-Meta: uid={} n={}\n", m.uid, added.len()).as_bytes(),
        );
        for a in &added {
            chunk.extend_from_slice(a.as_bytes());
            chunk.push(b'\n');
        }
        for line in body.split_inclusive(|&b| b == b'\n') {
            if is_from_line(line) || is_quoted_from(line) {
                chunk.push(b'>');
            }
            chunk.extend_from_slice(line);
        }
        chunk.push(b'\n');
        out.write_all(&chunk).await.map_err(werr)?;
        stats.messages += 1;
        stats.bytes += meta.size;
    }
    out.flush().await.map_err(werr)?;
    Ok(stats)
}

struct Parsed {
    body: Vec<u8>,
    flags: Flags,
    uid: Option<u32>,
    date: Option<Timestamp>,
}

fn finish_mbox_message(from_line: &[u8], mut raw: Vec<u8>) -> Parsed {
    // The separator: exactly one trailing newline belongs to the mbox, not the message.
    if raw.last() == Some(&b'\n') {
        raw.pop();
    }
    let date = std::str::from_utf8(from_line)
        .ok()
        .and_then(|l| l.trim_end().strip_prefix("From "))
        .and_then(|rest| rest.split_once(' ').map(|x| x.1))
        .and_then(parse_asctime);
    let mut flags = Flags::new();
    let mut uid = None;
    let mut body = raw;
    let apply_header = |flags: &mut Flags, line: &str| {
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n.trim(), v.trim()),
            None => return,
        };
        if name.eq_ignore_ascii_case("Status") {
            if value.contains('R') {
                flags.system = flags.system.union(SystemFlags::SEEN);
            }
        } else if name.eq_ignore_ascii_case("X-Status") {
            for (c, f) in [
                ('A', SystemFlags::ANSWERED),
                ('F', SystemFlags::FLAGGED),
                ('T', SystemFlags::DRAFT),
                ('D', SystemFlags::DELETED),
            ] {
                if value.contains(c) {
                    flags.system = flags.system.union(f);
                }
            }
        } else if name.eq_ignore_ascii_case("X-Keywords") {
            for k in value.split([' ', ',']).filter(|k| !k.is_empty()) {
                flags.insert_keyword(k.to_string());
            }
        }
    };
    if body.starts_with(b"X-Mailstore-Meta: ") {
        let mut lines: Vec<&[u8]> = Vec::new();
        let mut pos = 0;
        let first_end = memchr::memchr(b'\n', &body).map_or(body.len(), |i| i + 1);
        let meta = String::from_utf8_lossy(body.get(..first_end).unwrap_or_default()).into_owned();
        let mut n = 0usize;
        for tok in meta.trim().split(' ') {
            if let Some(v) = tok.strip_prefix("uid=") {
                uid = v.parse().ok();
            } else if let Some(v) = tok.strip_prefix("n=") {
                n = v.parse().unwrap_or(0);
            }
        }
        pos += first_end;
        for _ in 0..n {
            let rest = body.get(pos..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
            lines.push(rest.get(..end).unwrap_or_default());
            pos += end;
        }
        for l in lines {
            apply_header(&mut flags, String::from_utf8_lossy(l).trim_end());
        }
        body = body.split_off(pos.min(body.len()));
    } else {
        let end = crate::validate::header_block_len(&body).unwrap_or(body.len());
        for l in body.get(..end).unwrap_or_default().split(|&b| b == b'\n') {
            apply_header(&mut flags, String::from_utf8_lossy(l).trim_end());
        }
    }
    Parsed {
        body,
        flags,
        uid,
        date,
    }
}

/// Largest mbox entry (and line) the importer holds in memory.
const MBOX_LIMIT: usize = 64 * 1024 * 1024;

/// Reads an mboxrd (or plain mboxo/mboxcl without `Content-Length` reliance) stream into
/// `mailbox`, one message at a time.
pub async fn import_mbox<S: MailStore, R: AsyncBufRead + Unpin + Send>(
    store: &S,
    mailbox: MailboxRef,
    input: &mut R,
    opts: &ImportOptions,
) -> Result<TransferStats, StoreError> {
    let rerr = |e| StoreError::io("<mbox input>", e);
    let mut stats = TransferStats {
        mailboxes: 1,
        ..Default::default()
    };
    let mut from_line: Option<Vec<u8>> = None;
    let mut raw = Vec::new();
    let mut line = Vec::new();
    let mut index = 0usize;
    loop {
        line.clear();
        // Bounded: a file without newlines must not be read into memory whole.
        let n = (&mut *input)
            .take(MBOX_LIMIT as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
            .map_err(rerr)?;
        let at_end = n == 0;
        if at_end || is_from_line(&line) {
            if let Some(fl) = from_line.take() {
                index += 1;
                let p = finish_mbox_message(&fl, std::mem::take(&mut raw));
                let mut o = AppendOptions::with_flags(p.flags).origin(opts.origin.clone());
                o.internal_date = p.date;
                if opts.preserve_uids
                    && let Some(uid) = p.uid
                {
                    let st = store.mailbox_status(mailbox).await?;
                    if uid >= st.uidnext {
                        o.uid = Some(uid);
                    }
                }
                let size = p.body.len() as u64;
                match store.append(mailbox, o, Bytes::from(p.body)).await {
                    Ok(_) => {
                        stats.messages += 1;
                        stats.bytes += size;
                    }
                    Err(StoreError::InvalidMessage(e)) => {
                        stats.skipped.push(format!("message {index}: {e}"));
                    }
                    Err(e) => return Err(e),
                }
            }
            if at_end {
                break;
            }
            from_line = Some(line.clone());
            continue;
        }
        if from_line.is_none() {
            // Garbage before the first From_ line.
            continue;
        }
        if is_quoted_from(&line) {
            raw.extend_from_slice(line.get(1..).unwrap_or_default());
        } else {
            raw.extend_from_slice(&line);
        }
        let limit = MBOX_LIMIT;
        if raw.len() > limit {
            return Err(StoreError::InvalidArgument(format!(
                "mbox message {} is over {limit} bytes; is this an mbox file?",
                index + 1
            )));
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(asctime(Timestamp(0)), "Thu Jan  1 00:00:00 1970");
        assert_eq!(
            asctime(Timestamp(1_764_028_035)),
            "Mon Nov 24 23:47:15 2025"
        );
        for t in [0, 1, 951_782_400, 1_700_000_000, 4_102_444_800, -86_400] {
            assert_eq!(
                parse_asctime(&asctime(Timestamp(t))),
                Some(Timestamp(t)),
                "{t}"
            );
        }
        assert_eq!(parse_asctime("garbage"), None);
    }

    #[test]
    fn folder_names() {
        assert_eq!(folder_dir("INBOX"), None);
        assert_eq!(folder_dir("a/b.c").as_deref(), Some(".a.b%2Ec"));
        assert_eq!(folder_name(".a.b%2Ec").as_deref(), Some("a/b.c"));
        assert_eq!(folder_name(".."), None);
        assert_eq!(folder_name("cur"), None);
    }

    #[test]
    fn uidlist() {
        let u = parse_uidlist(
            "3 V1234 N9 Gabc\n5 :a.b.host,S=17\n7 W30 Pold-uidl :c.d.host:2,S\nbad line\n",
        );
        assert_eq!(u.uidvalidity, Some(1234));
        assert_eq!(u.by_base.get("a.b.host,S=17"), Some(&(5, None)));
        assert_eq!(
            u.by_base.get("c.d.host"),
            Some(&(7, Some("old-uidl".to_string())))
        );
        assert_eq!(u.by_base.len(), 2);
    }

    #[test]
    fn quoting() {
        assert!(is_quoted_from(b">From x"));
        assert!(is_quoted_from(b">>From x"));
        assert!(!is_quoted_from(b"From x"));
        assert!(!is_quoted_from(b"> From x"));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn mbox_entry(body: &[u8]) -> Vec<u8> {
        let mut chunk = b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n".to_vec();
        for line in body.split_inclusive(|&b| b == b'\n') {
            if is_from_line(line) || is_quoted_from(line) {
                chunk.push(b'>');
            }
            chunk.extend_from_slice(line);
        }
        chunk.push(b'\n');
        chunk
    }

    proptest! {
        #[test]
        fn asctime_round_trip(t in -2_000_000_000i64..10_000_000_000) {
            prop_assert_eq!(parse_asctime(&asctime(Timestamp(t))), Some(Timestamp(t)));
        }

        #[test]
        fn from_line_dates_never_panic(s in "\\PC{0,40}", y in any::<i64>(), d in any::<i64>()) {
            let _ = parse_asctime(&s);
            let _ = parse_asctime(&format!("Thu Jan {d} 10:00:00 {y}"));
            let _ = parse_asctime(&format!("Thu Jan 1 {d}:{y}:{d} 2000"));
        }

        #[test]
        fn folder_name_round_trip(segs in proptest::collection::vec("[a-zA-Z0-9 .äß_-]{1,8}", 1..4)) {
            let name = segs.join("/");
            prop_assume!(name != "INBOX" && !segs.iter().any(|s| s.starts_with('.')));
            let dir = folder_dir(&name).unwrap();
            prop_assert_eq!(folder_name(&dir), Some(name));
        }

        /// mboxrd quoting: any body (lines of `>`s, `From `, text) comes back byte for byte.
        #[test]
        fn mboxrd_quoting_round_trip(lines in proptest::collection::vec(
            prop_oneof![Just("From x".to_string()), Just(">From y".to_string()), Just(">>From".to_string()),
                        Just("".to_string()), "[ -~]{0,12}"], 0..8),
            crlf: bool, final_newline: bool) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut body = format!("Subject: t{eol}{eol}");
            body.push_str(&lines.join(eol));
            if final_newline {
                body.push_str(eol);
            }
            let out = mbox_entry(body.as_bytes());
            let mut raw = Vec::new();
            for line in out.split_inclusive(|&b| b == b'\n').skip(1) {
                if is_quoted_from(line) {
                    raw.extend_from_slice(&line[1..]);
                } else {
                    raw.extend_from_slice(line);
                }
            }
            let p = finish_mbox_message(b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n", raw);
            prop_assert_eq!(p.body, body.into_bytes());
            prop_assert_eq!(p.date, Some(Timestamp(0)));
        }

        /// Whatever follows a From_ line, parsing the entry never panics (or loops on a
        /// huge `n=` count).
        #[test]
        fn mbox_entries_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..200), n in any::<u64>()) {
            let mut v = format!("X-Mailstore-Meta: uid=1 n={n}\n").into_bytes();
            v.extend_from_slice(&raw);
            let _ = finish_mbox_message(b"From x\n", v);
            let _ = finish_mbox_message(&raw, raw.clone());
        }
    }
}
