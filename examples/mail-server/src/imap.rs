//! IMAP over the store: an [`imap_proto::tokio::Backend`] whose sessions keep their own
//! view of the selected mailbox (sequence number to UID map) and learn about other
//! connections' changes from the store's change feed.
//!
//! - Login is the full address (or an alias) with the password or an app password; an
//!   account whose IMAP access is off is refused with `NO [CONTACTADMIN]` after a correct
//!   password.
//! - Every mailbox of the account is visible (hierarchy delimiter `/`, special-use
//!   attributes from the store).
//! - FETCH serves FLAGS, UID, INTERNALDATE, RFC822.SIZE, MODSEQ, ENVELOPE, BODY,
//!   BODYSTRUCTURE, RFC822(.HEADER/.TEXT) and `BODY[section]<partial>` (built with
//!   `mail-parser`); non-PEEK body fetches set `\Seen`.
//! - Unsolicited EXISTS / EXPUNGE (VANISHED with QRESYNC) / FETCH come from the change
//!   feed, between commands and during IDLE, only as far as the adapter's machine allows
//!   them; the session's own flag changes are not echoed back; a session that fell behind
//!   the feed resynchronises from a snapshot.
//! - CONDSTORE/QRESYNC: FETCH CHANGEDSINCE, UID FETCH ... VANISHED, SELECT (QRESYNC ...)
//!   from the store's MODSEQs and expunge tombstones; SEARCH MODSEQ.
//! - Logins go through the shared failed-login lockout ([`crate::limits::AuthGuard`]) and
//!   the per-account connection limit when built with [`StoreBackend::with_limits`].

use std::collections::VecDeque;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use imap_proto::server::{Status, Unsolicited};
use imap_proto::tokio::{
    Backend, Expunged, FetchResult, MoveResult, QuotaInfo, SearchResult, SelectInfo, Session,
    StoreRequest, StoreResult,
};
use imap_proto::types::{
    Atom, Code, Data, Date, DateTime, FetchAttr, FetchItem, FetchModifiers, Flag, ListData,
    ListPattern, Mailbox, MailboxAttr, QuotaResource, SearchKey, SelectParams, SeqNum, SeqRange,
    SequenceSet, StatusAttr, StatusItem, StoreKind,
};
use mailstore_core::{
    AccountInfo, AppendOptions, AppendSink, ChangeEvent, ChangeSubscription, CreateMailbox, FlagOp,
    Flags, MailStore, MailboxRef, MessageFlags, MessageMeta, Protocol, SpecialUse, StoreError,
    SystemFlags, Timestamp, UidSet,
};

use crate::limits::AuthGuard;
use crate::recent::{RecentFloors, RecentSet};

/// The IMAP backend over a shared store.
#[derive(Debug)]
pub struct StoreBackend<S> {
    store: Arc<S>,
    guard: Option<Arc<AuthGuard>>,
    connections: crate::policy::ImapConnections,
    recent: Arc<RecentFloors>,
}

impl<S: MailStore> StoreBackend<S> {
    /// A backend over `store`, without login throttling or a connection limit.
    pub fn new(store: Arc<S>) -> Self {
        Self {
            store,
            guard: None,
            connections: crate::policy::ImapConnections::new(),
            recent: Arc::new(RecentFloors::default()),
        }
    }

    /// Counts failed logins in `guard` (lockout per address and per account) and allows at
    /// most `max_per_account` logged-in connections per account, or fewer where the
    /// account's policy says so.
    #[must_use]
    pub fn with_limits(mut self, guard: Arc<AuthGuard>, max_per_account: u32) -> Self {
        self.guard = Some(guard);
        self.connections = crate::policy::ImapConnections::with_ceiling(max_per_account);
        self
    }

    async fn login_from(
        &self,
        peer: Option<IpAddr>,
        username: &str,
        password: &[u8],
    ) -> Result<StoreSession<S>, Status> {
        let now = Instant::now();
        let guarded = peer.zip(self.guard.as_deref());
        if let Some((ip, guard)) = guarded
            && let Err(why) = guard.check(ip, username, now)
        {
            tracing::warn!(user = username, peer = %ip, ?why, "imap login refused: locked out after failed logins");
            return Err(Status::no(LOCKED_OUT).with_code("AUTHENTICATIONFAILED"));
        }
        let result = self.check_login(username, password).await;
        if let Some((ip, guard)) = guarded {
            match &result {
                Ok(_) => guard.succeeded(username),
                Err(st) if st.code.as_deref() == Some("AUTHENTICATIONFAILED") => {
                    guard.failed(ip, username, now);
                }
                Err(_) => {}
            }
        }
        result
    }

    async fn check_login(
        &self,
        username: &str,
        password: &[u8],
    ) -> Result<StoreSession<S>, Status> {
        let Ok(password) = std::str::from_utf8(password) else {
            return Err(Status::no("Invalid credentials").with_code("AUTHENTICATIONFAILED"));
        };
        match self.store.verify_login(username, password).await {
            Ok(outcome) => {
                if !outcome.account.allows(Protocol::Imap) {
                    tracing::info!(user = username, "imap refused: access disabled");
                    return Err(Status::no(IMAP_DISABLED).with_code("CONTACTADMIN"));
                }
                // Policy (docs/policy.md): switches, opt-in, two-step, federated, ACC-9.
                let (policy, policy_slot) =
                    crate::policy::imap_login(&*self.store, &self.connections, &outcome).await?;
                tracing::info!(user = username, via = ?outcome.via, "imap login");
                Ok(StoreSession {
                    policy,
                    _slot: policy_slot,
                    consumer: crate::policy::ConsumerLedger::default(),
                    store: Arc::clone(&self.store),
                    recent: Arc::clone(&self.recent),
                    account: outcome.account,
                    view: None,
                    append: None,
                    append_target: None,
                    condstore: false,
                    qresync: false,
                    rev2: false,
                })
            }
            Err(StoreError::AuthFailed) => {
                tracing::info!(user = username, "imap login failed");
                Err(Status::no("Invalid credentials").with_code("AUTHENTICATIONFAILED"))
            }
            Err(e) => Err(store_status(&e)),
        }
    }
}

/// One connection's view of the shared backend: knows the client's address, for the
/// failed-login lockout.
#[derive(Debug)]
pub struct PeerBackend<S> {
    inner: Arc<StoreBackend<S>>,
    peer: IpAddr,
}

impl<S> PeerBackend<S> {
    /// The backend for a connection from `peer`.
    pub fn new(inner: Arc<StoreBackend<S>>, peer: IpAddr) -> Self {
        Self { inner, peer }
    }
}

impl<S: MailStore> Backend for PeerBackend<S>
where
    S::Append: Send,
{
    type Session = StoreSession<S>;

    async fn login(&self, username: &str, password: &[u8]) -> Result<StoreSession<S>, Status> {
        self.inner
            .login_from(Some(self.peer), username, password)
            .await
    }
}

/// The answer while an address or account is locked out.
pub const LOCKED_OUT: &str = "Too many failed logins; try again later";

/// The text sent when an account may not use IMAP.
pub const IMAP_DISABLED: &str =
    "IMAP access is disabled for this account; ask the administrator to enable it";

fn store_status(e: &StoreError) -> Status {
    match e {
        StoreError::NoSuchMailbox(_) => Status::no("No such mailbox").with_code("NONEXISTENT"),
        StoreError::MailboxExists(_) => {
            Status::no("Mailbox already exists").with_code("ALREADYEXISTS")
        }
        StoreError::InvalidName(n) => {
            Status::no(format!("Invalid mailbox name: {n}")).with_code("CANNOT")
        }
        StoreError::NotAllowed(t) => Status::no(format!("Not allowed: {t}")).with_code("CANNOT"),
        StoreError::OverQuota { .. } => Status::no(e.to_string()).with_code("OVERQUOTA"),
        StoreError::InvalidMessage(m) => {
            Status::no(format!("Message refused: {m}")).with_code("CANNOT")
        }
        StoreError::InvalidArgument(t) => Status::no(format!("Invalid argument: {t}")),
        other => {
            tracing::warn!("imap: store error: {other}");
            Status::no("The mail store is unavailable, try again later").with_code("UNAVAILABLE")
        }
    }
}

impl<S: MailStore> Backend for StoreBackend<S>
where
    S::Append: Send,
{
    type Session = StoreSession<S>;

    async fn login(&self, username: &str, password: &[u8]) -> Result<StoreSession<S>, Status> {
        self.login_from(None, username, password).await
    }
}

struct View {
    mailbox: MailboxRef,
    read_only: bool,
    uids: Vec<u32>,
    sub: ChangeSubscription,
    pending: VecDeque<ChangeEvent>,
    /// MODSEQs of flag changes this session made itself: their change-feed echoes are not
    /// reported back (the STORE / FETCH response already did, or `.SILENT` asked for none).
    own: VecDeque<u64>,
    /// The change feed overflowed (this session fell behind): compare with a fresh
    /// snapshot before the next command that touches messages.
    stale: bool,
    /// The messages that are `\Recent` in this session.
    recent: RecentSet,
}

/// At most this many own MODSEQs are remembered (echoes arrive within moments).
const MAX_OWN: usize = 10_000;

impl View {
    fn note_own(&mut self, modseqs: impl IntoIterator<Item = u64>) {
        self.own.extend(modseqs);
        while self.own.len() > MAX_OWN {
            self.own.pop_front();
        }
    }
}

/// One logged-in IMAP connection.
pub struct StoreSession<S: MailStore> {
    policy: sync_policy::EffectivePolicy,
    _slot: crate::policy::ImapSlot,
    store: Arc<S>,
    recent: Arc<RecentFloors>,
    account: AccountInfo,
    view: Option<View>,
    append: Option<S::Append>,
    append_target: Option<MailboxRef>,
    /// CONDSTORE is on (ENABLE, a CONDSTORE-using command or SELECT parameter): MODSEQ
    /// goes with every unsolicited FETCH.
    condstore: bool,
    /// QRESYNC was enabled: expunges are reported as VANISHED.
    qresync: bool,
    /// IMAP4rev2 was enabled: SELECT also answers with the mailbox's LIST response.
    rev2: bool,
    consumer: crate::policy::ConsumerLedger,
}

impl<S: MailStore> std::fmt::Debug for StoreSession<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSession")
            .field("account", &self.account.address)
            .field("selected", &self.view.as_ref().map(|v| v.mailbox))
            .finish()
    }
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

fn to_imap_flags(f: &Flags) -> Vec<Flag> {
    f.names()
        .iter()
        .filter_map(|n| Flag::parse(n).ok())
        .collect()
}

/// The stored flags, plus `\Recent` when the message is recent in this session.
fn session_flags(f: &Flags, recent: bool) -> Vec<Flag> {
    let mut out = to_imap_flags(f);
    if recent {
        out.push(Flag::Recent);
    }
    out
}

fn from_imap_flags(flags: &[Flag]) -> Flags {
    let names: Vec<String> = flags
        .iter()
        // \Recent is session state and unknown `\Name` flags cannot be stored.
        .filter(|f| !matches!(f, Flag::Recent | Flag::Extension(_)))
        .map(ToString::to_string)
        .collect();
    Flags::from_names(names.iter().map(String::as_str))
}

fn special_attr(u: SpecialUse) -> Option<MailboxAttr> {
    Some(match u {
        SpecialUse::Sent => MailboxAttr::Sent,
        SpecialUse::Drafts => MailboxAttr::Drafts,
        SpecialUse::Junk => MailboxAttr::Junk,
        SpecialUse::Trash => MailboxAttr::Trash,
        SpecialUse::Archive => MailboxAttr::Archive,
        SpecialUse::All => MailboxAttr::All,
        SpecialUse::Flagged => MailboxAttr::Flagged,
        _ => return None,
    })
}

fn special_from_attr(a: &MailboxAttr) -> Option<SpecialUse> {
    Some(match a {
        MailboxAttr::Sent => SpecialUse::Sent,
        MailboxAttr::Drafts => SpecialUse::Drafts,
        MailboxAttr::Junk => SpecialUse::Junk,
        MailboxAttr::Trash => SpecialUse::Trash,
        MailboxAttr::Archive => SpecialUse::Archive,
        MailboxAttr::All => SpecialUse::All,
        MailboxAttr::Flagged => SpecialUse::Flagged,
        _ => return None,
    })
}

/// LIST pattern matching: `*` matches anything, `%` anything but the delimiter; INBOX
/// is case-insensitive.
fn matches(pattern: &[u8], name: &[u8]) -> bool {
    // Iterative matcher with backtracking over the last wildcard (bounded work).
    fn go(p: &[u8], n: &[u8], budget: &mut u32) -> bool {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => {
                (0..=n.len()).any(|i| n.get(i..).is_some_and(|t| go(rest, t, budget)))
            }
            Some((b'%', rest)) => (0..=n.len())
                .take_while(|&i| i == 0 || n.get(i - 1) != Some(&b'/'))
                .any(|i| n.get(i..).is_some_and(|t| go(rest, t, budget))),
            Some((c, rest)) => n
                .split_first()
                .is_some_and(|(x, t)| x == c && go(rest, t, budget)),
        }
    }
    let mut budget = 100_000;
    go(pattern, name, &mut budget)
}

fn imap_date(t: Timestamp) -> Option<DateTime> {
    let secs = t.0;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let date = Date::new(
        u16::try_from(y).ok()?,
        u8::try_from(m).ok()?,
        u8::try_from(d).ok()?,
    )
    .ok()?;
    DateTime::new(
        date,
        u8::try_from(rem / 3600).ok()?,
        u8::try_from(rem % 3600 / 60).ok()?,
        u8::try_from(rem % 60).ok()?,
        0,
    )
    .ok()
}

/// Days since 1970-01-01 of a calendar date (proleptic Gregorian).
fn civil_days(y: i64, m: i64, d: i64) -> i64 {
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn day_number(d: &Date) -> i64 {
    civil_days(
        i64::from(d.year()),
        i64::from(d.month()),
        i64::from(d.day()),
    )
}

/// The day of the message's Date: header field (in its own zone, as RFC 9051 asks).
fn sent_day(head: Option<&[u8]>) -> Option<i64> {
    let msg = crate::mime::parse(head?)?;
    let d = msg.date()?;
    Some(civil_days(
        i64::from(d.year),
        i64::from(d.month),
        i64::from(d.day),
    ))
}

fn timestamp_of(d: &DateTime) -> Timestamp {
    let days = day_number(&d.date());
    let secs = days * 86_400
        + i64::from(d.hour()) * 3600
        + i64::from(d.minute()) * 60
        + i64::from(d.second())
        - i64::from(d.zone_minutes()) * 60;
    Timestamp(secs)
}

/// The `<origin.count>` slice of a section's data, and the origin to report with it.
fn partial_of(
    data: Option<Bytes>,
    partial: Option<(u32, NonZeroU32)>,
) -> (Option<Bytes>, Option<u32>) {
    match (data, partial) {
        (Some(d), Some((start, len))) => {
            let s = usize::try_from(start).unwrap_or(usize::MAX).min(d.len());
            let e = s
                .saturating_add(usize::try_from(len.get()).unwrap_or(usize::MAX))
                .min(d.len());
            (Some(d.slice(s..e)), Some(start))
        }
        (d, Some((start, _))) => (d, Some(start)),
        (d, None) => (d, None),
    }
}

/// The tagged `NO` for a `BINARY[...]` section that cannot be decoded (RFC 3516 section
/// 4.3 names `UNKNOWN-CTE`).
fn binary_status(e: &crate::mime::BinaryError) -> Status {
    match e {
        crate::mime::BinaryError::UnknownCte(cte) => Status::no(format!(
            "Content-Transfer-Encoding {cte} is unknown; fetch the part with BODY[] instead"
        ))
        .with_code("UNKNOWN-CTE"),
        crate::mime::BinaryError::Corrupt => {
            Status::no("The part's encoded content is corrupt; fetch it with BODY[] instead")
                .with_code("PARSE")
        }
    }
}

fn item_needs_body(i: &FetchItem) -> bool {
    matches!(
        i,
        FetchItem::Rfc822
            | FetchItem::Rfc822Header
            | FetchItem::Rfc822Text
            | FetchItem::Envelope
            | FetchItem::Body
            | FetchItem::BodyStructure
            | FetchItem::BodySection { .. }
            | FetchItem::Binary { .. }
            | FetchItem::BinarySize { .. }
    )
}

/// Items answered from the header block alone.
fn header_only(i: &FetchItem) -> bool {
    use imap_proto::types::SectionText;
    match i {
        FetchItem::Rfc822Header | FetchItem::Envelope => true,
        FetchItem::BodySection { section, .. } => {
            section.part.is_empty()
                && matches!(
                    section.text,
                    Some(
                        SectionText::Header
                            | SectionText::HeaderFields(_)
                            | SectionText::HeaderFieldsNot(_)
                    )
                )
        }
        _ => false,
    }
}

/// The beginning of a message, up to and including its header block: reads 16 KiB, then
/// four times more until the empty line that ends the header is in (or the message ends).
async fn read_head<S: MailStore>(
    store: &S,
    mailbox: MailboxRef,
    uid: u32,
    size: u64,
) -> Result<Bytes, StoreError> {
    let mut want: u64 = 16 * 1024;
    loop {
        let got = store
            .open_range(mailbox, uid, 0, want.min(size))
            .await?
            .read_all()
            .await?;
        let end = memchr::memmem::find(&got, b"\r\n\r\n")
            .map(|p| p + 4)
            .or_else(|| memchr::memmem::find(&got, b"\n\n").map(|p| p + 2));
        match end {
            Some(e) => return Ok(Bytes::from(got).slice(..e)),
            None if want >= size => return Ok(Bytes::from(got)),
            None => want = want.saturating_mul(4),
        }
    }
}

/// The unfolded values of every `name:` field of a header block.
fn header_values(head: &[u8], name: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for line in head.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first().is_some_and(|c| *c == b' ' || *c == b'\t') {
            if let Some(v) = current.as_mut() {
                v.extend_from_slice(line);
            }
            continue;
        }
        out.extend(current.take());
        if line.len() > name.len()
            && line
                .get(..name.len())
                .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()))
            && line.get(name.len()) == Some(&b':')
        {
            current = Some(line.get(name.len() + 1..).unwrap_or_default().to_vec());
        }
    }
    out.extend(current);
    out
}

/// An unstructured header value with RFC 2047 encoded words decoded (by mail-parser).
fn decode_unstructured(value: &[u8]) -> String {
    if !value.windows(2).any(|w| w == b"=?") && value.is_ascii() {
        return String::from_utf8_lossy(value).into_owned();
    }
    let mut m = b"Subject:".to_vec();
    m.extend_from_slice(value);
    m.extend_from_slice(b"\r\n\r\n");
    crate::mime::parse(&m)
        .and_then(|p| p.subject().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(value).into_owned())
}

/// Case-insensitive (Unicode lower case) substring test of decoded text.
fn decoded_contains(text: &str, needle: &[u8]) -> bool {
    let needle = String::from_utf8_lossy(needle).to_lowercase();
    text.to_lowercase().contains(&needle)
}

/// SEARCH BODY/TEXT on the decoded text parts (transfer encoding and charset undone by
/// mail-parser); TEXT also looks at the decoded Subject.
fn decoded_body_contains(raw: &[u8], needle: &[u8], with_header: bool) -> bool {
    let Some(msg) = crate::mime::parse(raw) else {
        return false;
    };
    if with_header && msg.subject().is_some_and(|s| decoded_contains(s, needle)) {
        return true;
    }
    (0..msg.text_body_count()).any(|i| {
        msg.body_text(i)
            .is_some_and(|t| decoded_contains(&t, needle))
    })
}

fn seqset(numbers: &[u32]) -> Option<SequenceSet> {
    let mut sorted: Vec<u32> = numbers.iter().copied().filter(|&n| n != 0).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges: Vec<SeqRange> = Vec::new();
    let mut iter = sorted.into_iter().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last += 1;
            iter.next();
        }
        let a = SeqNum::new(first).ok()?;
        let b = SeqNum::new(last).ok()?;
        ranges.push(SeqRange::new(a, b));
    }
    SequenceSet::new(ranges).ok()
}

/// At most this many UIDs are enumerated when the store's expunge history for a MODSEQ is
/// incomplete and VANISHED must be computed from the UID range instead.
const MAX_VANISHED_SCAN: u32 = 1_000_000;

/// UIDs expunged from a mailbox after a MODSEQ, as far as `set` (largest UID `largest`)
/// covers them and the view no longer has them. `present` is sorted.
fn vanished_uids(
    changes: &mailstore_core::Changes,
    present: &[u32],
    uidnext: u32,
    set: Option<&SequenceSet>,
) -> Vec<u32> {
    let largest = uidnext.saturating_sub(1).max(1);
    let mut out: Vec<u32> = if changes.vanished_complete {
        changes.vanished.clone()
    } else {
        // The history was purged: everything below UIDNEXT the mailbox no longer has.
        (1..uidnext.min(MAX_VANISHED_SCAN))
            .filter(|u| present.binary_search(u).is_err())
            .collect()
    };
    out.retain(|u| {
        present.binary_search(u).is_err() && set.is_none_or(|s| s.contains(*u, largest))
    });
    out.sort_unstable();
    out.dedup();
    out
}

/// Inclusive ranges of sorted UIDs.
fn uid_ranges(uids: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &u in uids {
        match out.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(u) => *end = u,
            _ => out.push((u, u)),
        }
    }
    out
}

impl<S: MailStore> StoreSession<S> {
    /// Looks a mailbox up (the future borrows only the store, so it stays `Send`).
    fn mailbox_ref(
        &self,
        mailbox: &Mailbox,
    ) -> impl std::future::Future<Output = Result<mailstore_core::MailboxInfo, Status>> + Send + use<S>
    {
        let store = Arc::clone(&self.store);
        let account = self.account.id;
        let name = mailbox.as_str().to_string();
        let hidden = !crate::policy::imap_visible(&self.policy, &name);
        async move {
            if hidden {
                return Err(Status::no("No such mailbox").with_code("NONEXISTENT"));
            }
            store
                .mailbox(account, &name)
                .await
                .map_err(|e| store_status(&e))
        }
    }

    /// After the change feed overflowed: turns the difference between the view and a
    /// fresh snapshot into change events (expunges, new messages, every message's flags),
    /// queued before the events still pending.
    async fn resync(&mut self) {
        let store = Arc::clone(&self.store);
        let Some(view) = self.view.as_mut() else {
            return;
        };
        if !view.stale {
            return;
        }
        let Ok(snap) = store.snapshot(view.mailbox).await else {
            return;
        };
        view.stale = false;
        tracing::debug!(mailbox = ?view.mailbox, "imap: change feed overflowed; resynchronising the session");
        let present: std::collections::HashSet<u32> = snap.messages.iter().map(|m| m.uid).collect();
        let gone: Vec<u32> = view
            .uids
            .iter()
            .copied()
            .filter(|u| !present.contains(u))
            .collect();
        let last = view.uids.last().copied().unwrap_or(0);
        let mut synth = Vec::new();
        if !gone.is_empty() {
            synth.push(ChangeEvent::Expunged {
                uids: gone,
                modseq: snap.info.highest_modseq,
            });
        }
        for m in &snap.messages {
            if m.uid > last {
                synth.push(ChangeEvent::New {
                    uid: m.uid,
                    modseq: m.modseq,
                });
            } else if view.uids.binary_search(&m.uid).is_ok() {
                synth.push(ChangeEvent::FlagsChanged {
                    uid: m.uid,
                    flags: m.flags.clone(),
                    modseq: m.modseq,
                });
            }
        }
        for e in synth.into_iter().rev() {
            view.pending.push_front(e);
        }
    }

    /// Whether FETCH shows `\Recent` on `uid`: recent in this session, and the client did
    /// not enable IMAP4rev2 (which deprecated the flag).
    fn recent_flag(&self, uid: u32) -> bool {
        !self.rev2 && self.view.as_ref().is_some_and(|v| v.recent.contains(uid))
    }

    fn selected(&self) -> Result<&View, Status> {
        self.view
            .as_ref()
            .ok_or_else(|| Status::bad("No mailbox selected"))
    }

    /// (seq, uid) of the view's messages in a set.
    /// The (sequence number, UID) pairs of `set`. Message sequence numbers beyond the
    /// mailbox (or `*` in an empty one) are a `BAD` command (RFC 9051 section 9); UIDs
    /// that are not there are simply left out.
    fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<(u32, u32)>, Status> {
        let Some(view) = &self.view else {
            return Ok(Vec::new());
        };
        let count = u32::try_from(view.uids.len()).unwrap_or(u32::MAX);
        if !uid && !set.within(count) {
            return Err(Status::bad(format!(
                "Invalid message sequence number: the mailbox has {count} messages"
            )));
        }
        let largest = if uid {
            view.uids.last().copied().unwrap_or(0)
        } else {
            count
        };
        if largest == 0 {
            return Ok(Vec::new());
        }
        Ok(view
            .uids
            .iter()
            .enumerate()
            .filter_map(|(i, &u)| {
                let seq = u32::try_from(i + 1).ok()?;
                let n = if uid { u } else { seq };
                set.contains(n, largest).then_some((seq, u))
            })
            .collect())
    }

    /// Removes UIDs from the view; returns their (seq, uid) in the order to report them.
    fn remove_from_view(&mut self, uids: &[u32]) -> Vec<Expunged> {
        let Some(view) = self.view.as_mut() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(&u) = view.uids.get(i) {
            if uids.contains(&u) {
                out.push(Expunged {
                    seq: nz(u32::try_from(i + 1).unwrap_or(u32::MAX)),
                    uid: nz(u),
                });
                view.uids.remove(i);
            } else {
                i += 1;
            }
        }
        out
    }

    fn search_matches(
        key: &SearchKey,
        seq: u32,
        meta: &MessageMeta,
        body: Option<&[u8]>,
        largest: (u32, u32),
        recent: bool,
    ) -> bool {
        let sys = meta.flags.system;
        let contains = |hay: &[u8], needle: &[u8]| {
            needle.is_empty()
                || hay
                    .windows(needle.len())
                    .any(|w| w.eq_ignore_ascii_case(needle))
        };
        let header = |name: &str, needle: &[u8]| {
            let Some(b) = body else { return false };
            let end = memchr::memmem::find(b, b"\r\n\r\n").unwrap_or(b.len());
            header_values(b.get(..end).unwrap_or_default(), name)
                .iter()
                .any(|v| contains(v, needle) || decoded_contains(&decode_unstructured(v), needle))
        };
        match key {
            SearchKey::All => true,
            SearchKey::Seen => sys.contains(SystemFlags::SEEN),
            SearchKey::Unseen => !sys.contains(SystemFlags::SEEN),
            SearchKey::Deleted => sys.contains(SystemFlags::DELETED),
            SearchKey::Undeleted => !sys.contains(SystemFlags::DELETED),
            SearchKey::Flagged => sys.contains(SystemFlags::FLAGGED),
            SearchKey::Unflagged => !sys.contains(SystemFlags::FLAGGED),
            SearchKey::Answered => sys.contains(SystemFlags::ANSWERED),
            SearchKey::Unanswered => !sys.contains(SystemFlags::ANSWERED),
            SearchKey::Draft => sys.contains(SystemFlags::DRAFT),
            SearchKey::Undraft => !sys.contains(SystemFlags::DRAFT),
            SearchKey::Uid(set) => set.contains(meta.uid, largest.1),
            SearchKey::SequenceSet(set) => set.contains(seq, largest.0),
            SearchKey::Not(k) => !Self::search_matches(k, seq, meta, body, largest, recent),
            SearchKey::Or(a, b) => {
                Self::search_matches(a, seq, meta, body, largest, recent)
                    || Self::search_matches(b, seq, meta, body, largest, recent)
            }
            SearchKey::And(keys) => keys
                .iter()
                .all(|k| Self::search_matches(k, seq, meta, body, largest, recent)),
            SearchKey::Subject(s) => header("Subject", s),
            SearchKey::From(s) => header("From", s),
            SearchKey::To(s) => header("To", s),
            SearchKey::Cc(s) => header("Cc", s),
            SearchKey::Bcc(s) => header("Bcc", s),
            SearchKey::Header(name, s) => header(&String::from_utf8_lossy(name), s),
            SearchKey::Text(s) => {
                body.is_some_and(|b| contains(b, s) || decoded_body_contains(b, s, true))
            }
            SearchKey::Body(s) => body.is_some_and(|b| {
                let start = memchr::memmem::find(b, b"\r\n\r\n").map_or(b.len(), |p| p + 4);
                contains(b.get(start..).unwrap_or_default(), s)
                    || decoded_body_contains(b, s, false)
            }),
            SearchKey::Larger(n) => meta.size > *n,
            SearchKey::Smaller(n) => meta.size < *n,
            SearchKey::ModSeq { modseq, .. } => meta.modseq >= *modseq,
            SearchKey::Keyword(k) => meta.flags.has_keyword(k.as_str()),
            SearchKey::Unkeyword(k) => !meta.flags.has_keyword(k.as_str()),
            SearchKey::Recent => recent,
            SearchKey::New => recent && !sys.contains(SystemFlags::SEEN),
            SearchKey::Old => !recent,
            // INTERNALDATE, compared by date (RFC 9051 6.4.4: time and zone disregarded).
            SearchKey::Before(d) => meta.internal_date.0.div_euclid(86_400) < day_number(d),
            SearchKey::On(d) => meta.internal_date.0.div_euclid(86_400) == day_number(d),
            SearchKey::Since(d) => meta.internal_date.0.div_euclid(86_400) >= day_number(d),
            // The Date: header field.
            SearchKey::SentBefore(d) => sent_day(body).is_some_and(|x| x < day_number(d)),
            SearchKey::SentOn(d) => sent_day(body).is_some_and(|x| x == day_number(d)),
            SearchKey::SentSince(d) => sent_day(body).is_some_and(|x| x >= day_number(d)),
            // Keys added to imap-proto later are not evaluated: they match everything.
            _ => true,
        }
    }

    fn uses_modseq(key: &SearchKey) -> bool {
        match key {
            SearchKey::ModSeq { .. } => true,
            SearchKey::Not(k) => Self::uses_modseq(k),
            SearchKey::Or(a, b) => Self::uses_modseq(a) || Self::uses_modseq(b),
            SearchKey::And(keys) => keys.iter().any(Self::uses_modseq),
            _ => false,
        }
    }

    fn needs_full_body(key: &SearchKey) -> bool {
        match key {
            SearchKey::Text(_) | SearchKey::Body(_) => true,
            SearchKey::Not(k) => Self::needs_full_body(k),
            SearchKey::Or(a, b) => Self::needs_full_body(a) || Self::needs_full_body(b),
            SearchKey::And(keys) => keys.iter().any(Self::needs_full_body),
            _ => false,
        }
    }

    /// Levels of the hierarchy that hold visible mailboxes without being mailboxes
    /// themselves (a parent deleted while its children stayed, or one never created by an
    /// import), with `\NonExistent` (IMAP4rev2, RFC 9051 section 7.3.1) or `\Noselect`
    /// (IMAP4rev1) and `\HasChildren`. RFC 9051 section 6.3.9 asks for them when a pattern
    /// ends in `%`; they are listed for any pattern they match, as Dovecot does, so a
    /// client that lists `*` can still place the children in its folder tree.
    fn missing_levels(
        &self,
        all: &[mailstore_core::MailboxInfo],
        reference: &Mailbox,
        patterns: &[ListPattern],
    ) -> Vec<ListData> {
        let full: Vec<String> = patterns
            .iter()
            .map(|p| format!("{}{}", reference.as_str(), p.as_str()))
            .collect();
        let names: std::collections::HashSet<&str> = all.iter().map(|m| m.name.as_str()).collect();
        let mut levels: Vec<&str> = Vec::new();
        for m in all
            .iter()
            .filter(|m| crate::policy::imap_visible(&self.policy, &m.name))
        {
            for (i, _) in m.name.match_indices('/') {
                let level = m.name.get(..i).unwrap_or_default();
                if !level.is_empty()
                    && !names.contains(level)
                    && !levels.contains(&level)
                    && full.iter().any(|p| matches(p.as_bytes(), level.as_bytes()))
                {
                    levels.push(level);
                }
            }
        }
        let missing = if self.rev2 {
            MailboxAttr::NonExistent
        } else {
            MailboxAttr::NoSelect
        };
        levels
            .into_iter()
            .filter_map(|level| {
                Some(ListData {
                    attributes: vec![missing.clone(), MailboxAttr::HasChildren],
                    delimiter: Some('/'),
                    mailbox: Mailbox::new(level.to_owned()).ok()?,
                    extended: Vec::new(),
                })
            })
            .collect()
    }

    /// Creates the missing superior levels of `name` after a CREATE or RENAME made it
    /// (RFC 9051 sections 6.3.4 and 6.3.6: the server SHOULD), so that `a/b/c` does not
    /// leave `a` and `a/b` as holes in the hierarchy. Best effort: the command itself has
    /// already succeeded, so a failure here is logged, not reported.
    async fn create_superiors(store: &S, account: mailstore_core::AccountId, name: &str) {
        for (i, _) in name.match_indices('/') {
            let level = name.get(..i).unwrap_or_default();
            if level.is_empty() {
                continue;
            }
            match store
                .create_mailbox(account, level, CreateMailbox::default())
                .await
            {
                Ok(_) | Err(StoreError::MailboxExists(_)) => {}
                Err(e) => tracing::warn!(mailbox = level, "imap: superior not created: {e}"),
            }
        }
    }

    fn needs_body(key: &SearchKey) -> bool {
        match key {
            SearchKey::Cc(_)
            | SearchKey::Bcc(_)
            | SearchKey::Header(..)
            | SearchKey::SentBefore(_)
            | SearchKey::SentOn(_)
            | SearchKey::SentSince(_) => true,
            SearchKey::Subject(_)
            | SearchKey::From(_)
            | SearchKey::To(_)
            | SearchKey::Text(_)
            | SearchKey::Body(_) => true,
            SearchKey::Not(k) => Self::needs_body(k),
            SearchKey::Or(a, b) => Self::needs_body(a) || Self::needs_body(b),
            SearchKey::And(keys) => keys.iter().any(Self::needs_body),
            _ => false,
        }
    }
}

impl<S: MailStore> Session for StoreSession<S>
where
    S::Append: Send,
{
    async fn list(
        &mut self,
        reference: &Mailbox,
        patterns: &[ListPattern],
        subscribed_only: bool,
    ) -> Result<Vec<ListData>, Status> {
        let all = self
            .store
            .list_mailboxes(self.account.id)
            .await
            .map_err(|e| store_status(&e))?;
        let mut out = Vec::new();
        for m in &all {
            if (subscribed_only && !m.subscribed)
                || !crate::policy::imap_visible(&self.policy, &m.name)
            {
                continue;
            }
            let hit = patterns.iter().any(|p| {
                let full = format!("{}{}", reference.as_str(), p.as_str());
                if m.name == "INBOX" {
                    matches(full.to_ascii_uppercase().as_bytes(), b"INBOX")
                } else {
                    matches(full.as_bytes(), m.name.as_bytes())
                }
            });
            if !hit {
                continue;
            }
            let prefix = format!("{}/", m.name);
            let children = all.iter().any(|o| o.name.starts_with(&prefix));
            let mut attributes = vec![if children {
                MailboxAttr::HasChildren
            } else {
                MailboxAttr::HasNoChildren
            }];
            if let Some(a) = m.special_use.and_then(special_attr) {
                attributes.push(a);
            }
            if subscribed_only || m.subscribed {
                attributes.push(MailboxAttr::Subscribed);
            }
            out.push(ListData {
                attributes,
                delimiter: Some('/'),
                mailbox: Mailbox::new(m.name.clone())
                    .map_err(|_| Status::no("Invalid mailbox name"))?,
                extended: Vec::new(),
            });
        }
        if !subscribed_only {
            out.extend(self.missing_levels(&all, reference, patterns));
        }
        Ok(out)
    }

    async fn status(
        &mut self,
        mailbox: &Mailbox,
        items: &[StatusItem],
    ) -> Result<Vec<StatusAttr>, Status> {
        let info = self.mailbox_ref(mailbox).await?;
        // RECENT: the messages no session has taken as \Recent yet (UIDs from the floor).
        let recent_floor = if items.contains(&StatusItem::Recent) {
            Some(
                self.recent
                    .load(&*self.store, self.account.id, info.mailbox.mailbox)
                    .await,
            )
        } else {
            None
        };
        // One snapshot serves both counts, and none is read when neither needs one.
        let snap = if items.contains(&StatusItem::Deleted)
            || recent_floor.is_some_and(|f| f < info.uidnext)
        {
            Some(
                self.store
                    .snapshot(info.mailbox)
                    .await
                    .map_err(|e| store_status(&e))?,
            )
        } else {
            None
        };
        let count = |keep: &dyn Fn(&MessageFlags) -> bool| {
            snap.as_ref().map_or(0, |s| {
                u32::try_from(s.messages.iter().filter(|m| keep(m)).count()).unwrap_or(u32::MAX)
            })
        };
        let recent = recent_floor.map_or(0, |floor| count(&|m| m.uid >= floor));
        let deleted = count(&|m| m.flags.system.contains(SystemFlags::DELETED));
        Ok(items
            .iter()
            .filter_map(|i| {
                Some(match i {
                    StatusItem::Messages => StatusAttr::Messages(info.messages),
                    StatusItem::Recent => StatusAttr::Recent(recent),
                    StatusItem::UidNext => StatusAttr::UidNext(info.uidnext),
                    StatusItem::UidValidity => StatusAttr::UidValidity(info.uidvalidity),
                    StatusItem::Unseen => StatusAttr::Unseen(info.unseen),
                    StatusItem::Deleted => StatusAttr::Deleted(deleted),
                    StatusItem::Size => StatusAttr::Size(info.size),
                    StatusItem::HighestModSeq => StatusAttr::HighestModSeq(info.highest_modseq),
                    _ => return None,
                })
            })
            .collect())
    }

    async fn select(
        &mut self,
        mailbox: &Mailbox,
        read_only: bool,
        params: &SelectParams,
    ) -> Result<SelectInfo, Status> {
        self.view = None;
        self.consumer.finish(&*self.store, &self.policy).await;
        let info = self.mailbox_ref(mailbox).await?;
        // Subscribe first so no change between the snapshot and the subscription is lost.
        let sub = self
            .store
            .subscribe(info.mailbox)
            .await
            .map_err(|e| store_status(&e))?;
        let snap = self
            .store
            .snapshot(info.mailbox)
            .await
            .map_err(|e| store_status(&e))?;
        let uids: Vec<u32> = snap.messages.iter().map(|m| m.uid).collect();
        let mut si = SelectInfo::new(
            u32::try_from(uids.len()).unwrap_or(u32::MAX),
            nz(snap.info.uidvalidity),
            nz(snap.info.uidnext),
        );
        si.highest_modseq = Some(snap.info.highest_modseq);
        si.read_only = read_only;
        si.first_unseen = snap
            .messages
            .iter()
            .position(|m| !m.flags.system.contains(SystemFlags::SEEN))
            .and_then(|i| NonZeroU32::new(u32::try_from(i + 1).ok()?));
        // RFC 3501 section 2.3.2: SELECT takes the messages no session has seen yet as its
        // \Recent ones; EXAMINE shows them without taking them.
        let (mbx, uid_next) = (info.mailbox.mailbox, snap.info.uidnext);
        let floor = self.recent.load(&*self.store, self.account.id, mbx).await;
        let taken = if read_only {
            (floor < uid_next).then_some((floor, uid_next))
        } else {
            self.recent
                .claim(&self.store, self.account.id, mbx, uid_next)
        };
        let mut recent = RecentSet::default();
        if let Some(range) = taken {
            recent.add(range);
        }
        si.recent = recent.count_in(&uids);
        // RFC 9051 section 6.3.2: SELECT/EXAMINE answer with the mailbox's LIST response.
        if self.rev2 {
            let mut attributes = Vec::new();
            if let Some(a) = info.special_use.and_then(special_attr) {
                attributes.push(a);
            }
            if let Ok(name) = Mailbox::new(info.name.clone()) {
                si.extra
                    .push(imap_proto::types::Response::Data(Data::List(ListData {
                        attributes,
                        delimiter: Some('/'),
                        mailbox: name,
                        extended: Vec::new(),
                    })));
            }
        }
        if params.condstore || params.qresync.is_some() {
            self.condstore = true;
        }
        // RFC 7162 section 3.2.5: with a matching UIDVALIDITY, report what vanished and
        // what changed since the client's MODSEQ.
        if let Some(q) = params
            .qresync
            .as_ref()
            .filter(|q| q.uid_validity.get() == snap.info.uidvalidity)
        {
            let changes = self
                .store
                .changes_since(info.mailbox, q.modseq)
                .await
                .map_err(|e| store_status(&e))?;
            let vanished = vanished_uids(&changes, &uids, snap.info.uidnext, q.known_uids.as_ref());
            if let Some(set) = seqset(&vanished) {
                si.extra
                    .push(imap_proto::types::Response::Data(Data::Vanished {
                        earlier: true,
                        uids: set,
                    }));
            }
            for m in &changes.changed {
                let Ok(i) = uids.binary_search(&m.uid) else {
                    continue;
                };
                si.extra
                    .push(imap_proto::types::Response::Data(Data::Fetch {
                        seq: nz(u32::try_from(i + 1).unwrap_or(u32::MAX)),
                        items: vec![
                            FetchAttr::Uid(nz(m.uid)),
                            FetchAttr::Flags(session_flags(
                                &m.flags,
                                !self.rev2 && recent.contains(m.uid),
                            )),
                            FetchAttr::ModSeq(m.modseq),
                        ],
                    }));
            }
        }
        self.view = Some(View {
            mailbox: info.mailbox,
            read_only,
            uids,
            sub,
            pending: VecDeque::new(),
            own: VecDeque::new(),
            stale: false,
            recent,
        });
        Ok(si)
    }

    async fn unselect(&mut self, expunge: bool) -> Result<(), Status> {
        self.consumer.finish(&*self.store, &self.policy).await;
        if expunge && self.view.as_ref().is_some_and(|v| !v.read_only) {
            let _ = self.expunge(None).await?;
        }
        self.view = None;
        Ok(())
    }

    async fn fetch(
        &mut self,
        set: &SequenceSet,
        uid: bool,
        items: &[FetchItem],
        modifiers: &FetchModifiers,
    ) -> Result<Vec<FetchResult>, Status> {
        self.resync().await;
        let (mailbox, read_only) = {
            let v = self.selected()?;
            (v.mailbox, v.read_only)
        };
        let targets = self.resolve(set, uid)?;
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let uidset: UidSet = targets.iter().map(|&(_, u)| u).collect();
        let consumed = targets.iter().map(|&(_, u)| u);
        self.consumer
            .note_fetch(&self.policy, mailbox, items, consumed);
        let mut metas = self
            .store
            .message_meta(mailbox, &uidset)
            .await
            .map_err(|e| store_status(&e))?;
        // CHANGEDSINCE (RFC 7162 section 3.1.4.1): only messages changed after the MODSEQ,
        // and MODSEQ is reported with them.
        if let Some(since) = modifiers.changed_since {
            self.condstore = true;
            metas.retain(|m| m.modseq > since);
        }
        let with_modseq = modifiers.changed_since.is_some() && !items.contains(&FetchItem::ModSeq);
        let needs_body = items.iter().any(item_needs_body);
        // Header-only items (Thunderbird's and Apple Mail's sync fetches) read only the
        // beginning of each message, not its attachments.
        let head_only = items.iter().all(|i| !item_needs_body(i) || header_only(i));
        let sets_seen = !read_only
            && items.iter().any(|i| {
                matches!(
                    i,
                    FetchItem::Rfc822
                        | FetchItem::Rfc822Text
                        | FetchItem::BodySection { peek: false, .. }
                        | FetchItem::Binary { peek: false, .. }
                )
            });
        // Set \Seen first, so the FETCH responses carry the new flags and MODSEQ.
        let mut seen_now: Vec<u32> = Vec::new();
        if sets_seen {
            let unseen: UidSet = metas
                .iter()
                .filter(|m| !m.flags.system.contains(SystemFlags::SEEN))
                .map(|m| m.uid)
                .collect();
            if !unseen.is_empty() {
                let outcome = self
                    .store
                    .store_flags(
                        mailbox,
                        &unseen,
                        FlagOp::Add,
                        &Flags::system(SystemFlags::SEEN),
                        None,
                    )
                    .await
                    .map_err(|e| store_status(&e))?;
                seen_now = outcome.updated.iter().map(|x| x.uid).collect();
                if let Some(v) = self.view.as_mut() {
                    v.note_own(outcome.updated.iter().map(|x| x.modseq));
                }
                for m in &mut metas {
                    if let Some(up) = outcome.updated.iter().find(|x| x.uid == m.uid) {
                        m.flags = up.flags.clone();
                        m.modseq = up.modseq;
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(targets.len());
        for (seq, u) in targets {
            let Some(meta) = metas.iter().find(|m| m.uid == u) else {
                continue; // expunged meanwhile, or unchanged since CHANGEDSINCE
            };
            let raw = if needs_body {
                let read = if head_only {
                    read_head(&*self.store, mailbox, u, meta.size).await
                } else {
                    match self.store.open_body(mailbox, u).await {
                        Ok(r) => r.read_all().await.map(Bytes::from),
                        Err(e) => Err(e),
                    }
                };
                match read {
                    Ok(b) => Some(b),
                    Err(StoreError::NoSuchMessage(_)) => continue,
                    Err(e) => return Err(store_status(&e)),
                }
            } else {
                None
            };
            let raw_ref = raw.clone().unwrap_or_default();
            let parsed = if items.iter().any(|i| {
                matches!(
                    i,
                    FetchItem::Envelope
                        | FetchItem::Body
                        | FetchItem::BodyStructure
                        | FetchItem::BodySection { .. }
                        | FetchItem::Binary { .. }
                        | FetchItem::BinarySize { .. }
                )
            }) {
                crate::mime::parse(&raw_ref)
            } else {
                None
            };
            let mut attrs = Vec::new();
            if uid {
                attrs.push(FetchAttr::Uid(nz(u)));
            }
            let flags = meta.flags.clone();
            let is_recent = self.recent_flag(u);
            let newly_seen = seen_now.contains(&u);
            for item in items {
                match item {
                    FetchItem::Uid if !uid => attrs.push(FetchAttr::Uid(nz(u))),
                    FetchItem::Flags => {
                        attrs.push(FetchAttr::Flags(session_flags(&flags, is_recent)));
                    }
                    FetchItem::InternalDate => {
                        if let Some(d) = imap_date(meta.internal_date) {
                            attrs.push(FetchAttr::InternalDate(d));
                        }
                    }
                    FetchItem::Rfc822Size => attrs.push(FetchAttr::Rfc822Size(meta.size)),
                    FetchItem::ModSeq => attrs.push(FetchAttr::ModSeq(meta.modseq)),
                    FetchItem::Rfc822 => attrs.push(FetchAttr::Rfc822(Some(raw_ref.clone()))),
                    FetchItem::Rfc822Header => {
                        let s = imap_proto::types::Section {
                            part: Vec::new(),
                            text: Some(imap_proto::types::SectionText::Header),
                        };
                        attrs.push(FetchAttr::Rfc822Header(crate::mime::section(
                            &raw_ref, None, &s,
                        )));
                    }
                    FetchItem::Rfc822Text => {
                        let s = imap_proto::types::Section {
                            part: Vec::new(),
                            text: Some(imap_proto::types::SectionText::Text),
                        };
                        attrs.push(FetchAttr::Rfc822Text(crate::mime::section(
                            &raw_ref, None, &s,
                        )));
                    }
                    FetchItem::Envelope => {
                        let e = parsed
                            .as_ref()
                            .map(crate::mime::envelope)
                            .unwrap_or_default();
                        attrs.push(FetchAttr::Envelope(Box::new(e)));
                    }
                    FetchItem::Body | FetchItem::BodyStructure => {
                        let extended = matches!(item, FetchItem::BodyStructure);
                        if let Some(p) = parsed.as_ref() {
                            let bs = crate::mime::body_structure(p, &raw_ref, extended);
                            attrs.push(if extended {
                                FetchAttr::BodyStructure(Box::new(bs))
                            } else {
                                FetchAttr::Body(Box::new(bs))
                            });
                        }
                    }
                    FetchItem::BodySection {
                        section, partial, ..
                    } => {
                        let data = crate::mime::section(&raw_ref, parsed.as_ref(), section);
                        let (data, origin) = partial_of(data, *partial);
                        attrs.push(FetchAttr::BodySection {
                            section: section.clone(),
                            origin,
                            data,
                        });
                    }
                    FetchItem::Binary { part, partial, .. } => {
                        let data = crate::mime::binary(&raw_ref, parsed.as_ref(), part)
                            .map_err(|e| binary_status(&e))?;
                        let (data, origin) = partial_of(data, *partial);
                        attrs.push(FetchAttr::Binary {
                            part: part.clone(),
                            origin,
                            data,
                        });
                    }
                    FetchItem::BinarySize { part } => {
                        let data = crate::mime::binary(&raw_ref, parsed.as_ref(), part)
                            .map_err(|e| binary_status(&e))?;
                        attrs.push(FetchAttr::BinarySize {
                            part: part.clone(),
                            size: data.map_or(0, |d| d.len() as u64),
                        });
                    }
                    _ => {}
                }
            }
            if newly_seen && !items.contains(&FetchItem::Flags) {
                attrs.push(FetchAttr::Flags(session_flags(&flags, is_recent)));
            }
            // RFC 7162 section 3.2.4: with CONDSTORE on, a FETCH that set \Seen carries
            // UID and MODSEQ.
            if !uid && newly_seen && self.condstore && !items.contains(&FetchItem::Uid) {
                attrs.push(FetchAttr::Uid(nz(u)));
            }
            if with_modseq || (newly_seen && self.condstore && !items.contains(&FetchItem::ModSeq))
            {
                attrs.push(FetchAttr::ModSeq(meta.modseq));
            }
            out.push((nz(seq), attrs));
        }
        Ok(out)
    }

    async fn store(&mut self, request: StoreRequest) -> Result<StoreResult, Status> {
        self.resync().await;
        let (mailbox, read_only) = {
            let v = self.selected()?;
            (v.mailbox, v.read_only)
        };
        if read_only {
            return Err(Status::no("The mailbox is read-only (EXAMINE)"));
        }
        let targets = self.resolve(&request.set, request.uid)?;
        let uidset: UidSet = targets.iter().map(|&(_, u)| u).collect();
        if uidset.is_empty() {
            return Ok(StoreResult::default());
        }
        let op = match request.kind {
            StoreKind::Add => FlagOp::Add,
            StoreKind::Remove => FlagOp::Remove,
            StoreKind::Replace => FlagOp::Replace,
        };
        let outcome = self
            .store
            .store_flags(
                mailbox,
                &uidset,
                op,
                &from_imap_flags(&request.flags),
                request.unchanged_since,
            )
            .await
            .map_err(|e| store_status(&e))?;
        if let Some(v) = self.view.as_mut() {
            v.note_own(outcome.updated.iter().map(|m| m.modseq));
        }
        let mut result = StoreResult::default();
        for m in &outcome.updated {
            let Some(&(seq, _)) = targets.iter().find(|(_, u)| *u == m.uid) else {
                continue;
            };
            let mut attrs = Vec::new();
            if request.uid {
                attrs.push(FetchAttr::Uid(nz(m.uid)));
            }
            let is_recent = self.recent_flag(m.uid);
            attrs.push(FetchAttr::Flags(session_flags(&m.flags, is_recent)));
            if self.condstore || request.unchanged_since.is_some() {
                attrs.push(FetchAttr::ModSeq(m.modseq));
            }
            result.updated.push((nz(seq), attrs));
        }
        if !outcome.modified.is_empty() {
            let numbers: Vec<u32> = if request.uid {
                outcome.modified.clone()
            } else {
                targets
                    .iter()
                    .filter(|(_, u)| outcome.modified.contains(u))
                    .map(|(s, _)| *s)
                    .collect()
            };
            result.modified = seqset(&numbers);
        }
        crate::policy::imap_after_store(&*self.store, mailbox, &self.policy, &outcome.updated)
            .await;
        Ok(result)
    }

    async fn search(&mut self, criteria: &[SearchKey], uid: bool) -> Result<SearchResult, Status> {
        self.resync().await;
        let (mailbox, uids) = {
            let v = self.selected()?;
            (v.mailbox, v.uids.clone())
        };
        let metas = self
            .store
            .message_meta(mailbox, &uids.iter().copied().collect())
            .await
            .map_err(|e| store_status(&e))?;
        let need_body = criteria.iter().any(Self::needs_body);
        let need_full = criteria.iter().any(Self::needs_full_body);
        let largest = (
            u32::try_from(uids.len()).unwrap_or(u32::MAX),
            uids.last().copied().unwrap_or(0),
        );
        let mut numbers = Vec::new();
        let recent = self.view.as_ref().map(|v| &v.recent);
        let uses_modseq = criteria.iter().any(Self::uses_modseq);
        let mut highest: u64 = 0;
        for (i, u) in uids.iter().enumerate() {
            let Some(meta) = metas.iter().find(|m| m.uid == *u) else {
                continue;
            };
            let body = if need_full {
                match self.store.open_body(mailbox, *u).await {
                    Ok(r) => Some(r.read_all().await.map_err(|e| store_status(&e))?),
                    Err(_) => None,
                }
            } else if need_body {
                read_head(&*self.store, mailbox, *u, meta.size)
                    .await
                    .ok()
                    .map(|b| b.to_vec())
            } else {
                None
            };
            let seq = u32::try_from(i + 1).unwrap_or(u32::MAX);
            if criteria.iter().all(|k| {
                let is_recent = recent.is_some_and(|r| r.contains(*u));
                Self::search_matches(k, seq, meta, body.as_deref(), largest, is_recent)
            }) {
                numbers.push(if uid { *u } else { seq });
                highest = highest.max(meta.modseq);
            }
        }
        let mut result = SearchResult::new(numbers);
        // RFC 7162 section 3.1.5: a SEARCH with MODSEQ reports the highest MODSEQ of the
        // matches.
        if uses_modseq && !result.numbers.is_empty() {
            self.condstore = true;
            result.highest_modseq = Some(highest);
        }
        Ok(result)
    }

    async fn copy(
        &mut self,
        set: &SequenceSet,
        uid: bool,
        target: &Mailbox,
    ) -> Result<Option<Code>, Status> {
        let mailbox = self.selected()?.mailbox;
        crate::policy::imap_guard(&self.policy, target.as_str())?;
        let to = match self.store.mailbox(self.account.id, target.as_str()).await {
            Ok(m) => m.mailbox,
            Err(StoreError::NoSuchMailbox(_)) => {
                return Err(Status::no("No such mailbox").with_code("TRYCREATE"));
            }
            Err(e) => return Err(store_status(&e)),
        };
        let uidset: UidSet = self.resolve(set, uid)?.iter().map(|&(_, u)| u).collect();
        if uidset.is_empty() {
            return Ok(None);
        }
        let outcome = self
            .store
            .copy(mailbox, &uidset, to)
            .await
            .map_err(|e| store_status(&e))?;
        let from: Vec<u32> = outcome.mapping.iter().map(|m| m.from).collect();
        let into: Vec<u32> = outcome.mapping.iter().map(|m| m.to).collect();
        Ok(match (seqset(&from), seqset(&into)) {
            (Some(source), Some(target)) => Some(Code::CopyUid {
                uid_validity: nz(outcome.uidvalidity),
                source,
                target,
            }),
            _ => None,
        })
    }

    async fn move_messages(
        &mut self,
        set: &SequenceSet,
        uid: bool,
        target: &Mailbox,
    ) -> Result<MoveResult, Status> {
        let (mailbox, read_only) = {
            let v = self.selected()?;
            (v.mailbox, v.read_only)
        };
        if read_only {
            return Err(Status::no("The mailbox is read-only (EXAMINE)"));
        }
        crate::policy::imap_guard(&self.policy, target.as_str())?;
        let to = match self.store.mailbox(self.account.id, target.as_str()).await {
            Ok(m) => m.mailbox,
            Err(StoreError::NoSuchMailbox(_)) => {
                return Err(Status::no("No such mailbox").with_code("TRYCREATE"));
            }
            Err(e) => return Err(store_status(&e)),
        };
        let uids: Vec<u32> = self.resolve(set, uid)?.iter().map(|&(_, u)| u).collect();
        if uids.is_empty() {
            return Ok(MoveResult::new(None, Vec::new()));
        }
        let outcome = self
            .store
            .move_messages(mailbox, &uids.iter().copied().collect(), to)
            .await
            .map_err(|e| store_status(&e))?;
        let from: Vec<u32> = outcome.mapping.iter().map(|m| m.from).collect();
        let into: Vec<u32> = outcome.mapping.iter().map(|m| m.to).collect();
        let code = match (seqset(&from), seqset(&into)) {
            (Some(source), Some(target)) => Some(Code::CopyUid {
                uid_validity: nz(outcome.uidvalidity),
                source,
                target,
            }),
            _ => None,
        };
        let expunged = self.remove_from_view(&from);
        Ok(MoveResult::new(code, expunged))
    }

    async fn expunge(&mut self, uids: Option<&SequenceSet>) -> Result<Vec<Expunged>, Status> {
        self.resync().await;
        let (mailbox, read_only, view_uids) = {
            let v = self.selected()?;
            (v.mailbox, v.read_only, v.uids.clone())
        };
        if read_only {
            return Err(Status::no("The mailbox is read-only (EXAMINE)"));
        }
        let metas = self
            .store
            .message_meta(mailbox, &view_uids.iter().copied().collect())
            .await
            .map_err(|e| store_status(&e))?;
        let largest = view_uids.last().copied().unwrap_or(0);
        let doomed: UidSet = metas
            .iter()
            .filter(|m| {
                m.flags.system.contains(SystemFlags::DELETED)
                    && uids.is_none_or(|s| s.contains(m.uid, largest))
            })
            .map(|m| m.uid)
            .collect();
        if doomed.is_empty() {
            return Ok(Vec::new());
        }
        let removed = self
            .store
            .expunge(mailbox, &doomed)
            .await
            .map_err(|e| store_status(&e))?;
        Ok(self.remove_from_view(&removed))
    }

    async fn append_begin(
        &mut self,
        mailbox: &Mailbox,
        flags: &[Flag],
        date: Option<&DateTime>,
        _size: u64,
    ) -> Result<(), Status> {
        crate::policy::imap_guard(&self.policy, mailbox.as_str())?;
        let target = match self.store.mailbox(self.account.id, mailbox.as_str()).await {
            Ok(m) => m.mailbox,
            Err(StoreError::NoSuchMailbox(_)) => {
                return Err(Status::no("No such mailbox").with_code("TRYCREATE"));
            }
            Err(e) => return Err(store_status(&e)),
        };
        let mut opts = AppendOptions::with_flags(from_imap_flags(flags));
        opts.internal_date = date.map(timestamp_of);
        let sink = self
            .store
            .begin_append(target, opts)
            .await
            .map_err(|e| store_status(&e))?;
        self.append = Some(sink);
        self.append_target = Some(target);
        Ok(())
    }

    async fn append_chunk(&mut self, chunk: Bytes) -> Result<(), Status> {
        match self.append.as_mut() {
            Some(sink) => sink.write(&chunk).await.map_err(|e| store_status(&e)),
            None => Err(Status::bad("No APPEND in progress")),
        }
    }

    async fn append_end(&mut self) -> Result<Option<Code>, Status> {
        let Some(sink) = self.append.take() else {
            return Err(Status::bad("No APPEND in progress"));
        };
        self.append_target = None;
        let o = sink.commit().await.map_err(|e| store_status(&e))?;
        Ok(SequenceSet::single(o.uid).ok().map(|uids| Code::AppendUid {
            uid_validity: nz(o.uidvalidity),
            uids,
        }))
    }

    async fn append_abort(&mut self) {
        self.append_target = None;
        if let Some(sink) = self.append.take() {
            sink.abort().await;
        }
    }

    async fn create(
        &mut self,
        mailbox: &Mailbox,
        special_use: &[MailboxAttr],
    ) -> Result<(), Status> {
        let mut opts = CreateMailbox::default();
        opts.special_use = special_use.iter().find_map(special_from_attr);
        let name = mailbox.as_str().trim_end_matches('/');
        self.store
            .create_mailbox(self.account.id, name, opts)
            .await
            .map_err(|e| store_status(&e))?;
        Self::create_superiors(&self.store, self.account.id, name).await;
        Ok(())
    }

    async fn delete(&mut self, mailbox: &Mailbox) -> Result<(), Status> {
        let id = self
            .store
            .mailbox(self.account.id, mailbox.as_str())
            .await
            .ok();
        self.store
            .delete_mailbox(self.account.id, mailbox.as_str())
            .await
            .map_err(|e| store_status(&e))?;
        if let Some(info) = id {
            self.recent
                .forget(&*self.store, self.account.id, info.mailbox.mailbox)
                .await;
        }
        Ok(())
    }

    async fn rename(&mut self, from: &Mailbox, to: &Mailbox) -> Result<(), Status> {
        self.store
            .rename_mailbox(self.account.id, from.as_str(), to.as_str())
            .await
            .map_err(|e| store_status(&e))?;
        Self::create_superiors(&self.store, self.account.id, to.as_str()).await;
        Ok(())
    }

    async fn subscribe(&mut self, mailbox: &Mailbox, subscribe: bool) -> Result<(), Status> {
        self.store
            .set_subscribed(self.account.id, mailbox.as_str(), subscribe)
            .await
            .map_err(|e| store_status(&e))
    }

    async fn quota(
        &mut self,
        mailbox: Option<&Mailbox>,
        root: Option<&[u8]>,
    ) -> Result<QuotaInfo, Status> {
        let _ = mailbox;
        if root.is_some_and(|r| !r.is_empty()) {
            return Err(Status::no("No such quota root").with_code("NONEXISTENT"));
        }
        let usage = self
            .store
            .quota_usage(self.account.id)
            .await
            .map_err(|e| store_status(&e))?;
        let mut resources = Vec::new();
        if let (Some(limit), Ok(name)) = (usage.quota.max_bytes, Atom::try_from("STORAGE")) {
            // RFC 9208: STORAGE is in units of 1024 octets.
            resources.push(QuotaResource {
                name,
                usage: usage.bytes.div_ceil(1024),
                limit: limit / 1024,
            });
        }
        if let (Some(limit), Ok(name)) = (usage.quota.max_messages, Atom::try_from("MESSAGE")) {
            resources.push(QuotaResource {
                name,
                usage: usage.messages,
                limit,
            });
        }
        let mut info = QuotaInfo::default();
        if !resources.is_empty() {
            info.roots.push(Bytes::new());
            info.quotas.push((Bytes::new(), resources));
        }
        Ok(info)
    }

    fn enabled(&mut self, capabilities: &[String]) {
        if capabilities
            .iter()
            .any(|c| c == "CONDSTORE" || c == "QRESYNC")
        {
            self.condstore = true;
        }
        if capabilities.iter().any(|c| c == "QRESYNC") {
            self.qresync = true;
        }
        if capabilities.iter().any(|c| c == "IMAP4rev2") {
            self.rev2 = true;
        }
    }

    async fn fetch_vanished(
        &mut self,
        set: &SequenceSet,
        changed_since: u64,
    ) -> Result<Vec<u32>, Status> {
        // VANISHED before ENABLE QRESYNC never gets here: the state machine answers BAD.
        let (mailbox, present) = {
            let v = self.selected()?;
            (v.mailbox, v.uids.clone())
        };
        let changes = self
            .store
            .changes_since(mailbox, changed_since)
            .await
            .map_err(|e| store_status(&e))?;
        let uidnext = self
            .store
            .mailbox_status(mailbox)
            .await
            .map_err(|e| store_status(&e))?
            .uidnext;
        Ok(vanished_uids(&changes, &present, uidnext, Some(set)))
    }

    fn take_changes(&mut self) -> Vec<Unsolicited> {
        let condstore = self.condstore;
        let qresync = self.qresync;
        let (floors, store, account) = (&self.recent, &self.store, self.account.id);
        let rev2 = self.rev2;
        let Some(view) = self.view.as_mut() else {
            return Vec::new();
        };
        while let Some(e) = view.sub.try_recv() {
            if e == ChangeEvent::Resync {
                view.stale = true;
            }
            view.pending.push_back(e);
        }
        if view.stale {
            // Events were lost: nothing is reported until a fresh snapshot (taken before
            // the next command that touches messages, or at once in IDLE) says what
            // changed; the events meanwhile are covered by that snapshot.
            view.pending.clear();
            return Vec::new();
        }
        let mut out = Vec::new();
        // How many messages the client knows about (sequence numbers it may use).
        let mut announced = view.uids.len();
        while let Some(event) = view.pending.pop_front() {
            match event {
                ChangeEvent::New { uid, .. } if view.uids.last().is_none_or(|&last| uid > last) => {
                    view.uids.push(uid);
                }
                ChangeEvent::Expunged { uids, .. } => {
                    let mut i = 0;
                    let mut gone = Vec::new();
                    while let Some(&u) = view.uids.get(i) {
                        if !uids.contains(&u) {
                            i += 1;
                            continue;
                        }
                        view.uids.remove(i);
                        if i < announced {
                            announced -= 1;
                            if qresync {
                                gone.push(u);
                            } else {
                                out.push(Unsolicited::Expunge(
                                    u32::try_from(i + 1).unwrap_or(u32::MAX),
                                ));
                            }
                        }
                    }
                    // RFC 7162 section 3.2.10: VANISHED instead of EXPUNGE once QRESYNC is on.
                    if !gone.is_empty() {
                        gone.sort_unstable();
                        out.push(Unsolicited::Vanished(uid_ranges(&gone)));
                    }
                }
                ChangeEvent::FlagsChanged { uid, flags, modseq } => {
                    if let Some(p) = view.own.iter().position(|&m| m == modseq) {
                        view.own.remove(p);
                        continue;
                    }
                    if let Some(i) = view.uids.iter().position(|&u| u == uid)
                        && i < announced
                    {
                        let mut names = flags.names();
                        if !rev2 && view.recent.contains(uid) {
                            names.push("\\Recent".to_string());
                        }
                        out.push(Unsolicited::Fetch {
                            seq: u32::try_from(i + 1).unwrap_or(u32::MAX),
                            uid: Some(uid),
                            flags: names,
                            modseq: condstore.then_some(modseq),
                        });
                    }
                }
                _ => {}
            }
        }
        if view.uids.len() > announced {
            out.push(Unsolicited::Exists(
                u32::try_from(view.uids.len()).unwrap_or(u32::MAX),
            ));
            // The session told about new messages first takes them as \Recent (RFC 3501
            // section 7.3.2: RECENT follows EXISTS; IMAP4rev2 clients do not get it).
            if !view.read_only
                && let Some(&last) = view.uids.last()
                && let Some(claimed) =
                    floors.claim(store, account, view.mailbox.mailbox, last.saturating_add(1))
            {
                view.recent.add(claimed);
            }
            out.push(Unsolicited::Recent(view.recent.count_in(&view.uids)));
        }
        out
    }

    async fn logout(&mut self) {
        self.consumer.finish(&*self.store, &self.policy).await;
    }

    async fn wait_changes(&mut self) {
        match self.view.as_mut() {
            Some(view) => {
                let e = view.sub.recv().await;
                if e == ChangeEvent::Resync {
                    view.stale = true;
                    self.resync().await;
                } else {
                    view.pending.push_back(e);
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_patterns() {
        assert!(matches(b"*", b"Lists/rust"));
        assert!(!matches(b"%", b"Lists/rust"));
        assert!(matches(b"Lists/%", b"Lists/rust"));
        assert!(matches(b"INBOX", b"INBOX"));
        assert!(!matches(b"Sent", b"Sent Items"));
        assert!(matches(b"S*", b"Sent Items"));
    }

    #[test]
    fn dates_round_trip() {
        for t in [0i64, 951_782_400, 1_795_564_035] {
            let d = imap_date(Timestamp(t)).unwrap();
            assert_eq!(timestamp_of(&d), Timestamp(t));
        }
        let d = imap_date(Timestamp(1_795_564_035)).unwrap();
        assert_eq!(
            (d.date().year(), d.date().month(), d.date().day()),
            (2026, 11, 24)
        );
        assert_eq!((d.hour(), d.minute(), d.second()), (23, 47, 15));
    }

    #[test]
    fn search_text_is_decoded_and_case_folded() {
        let raw: &[u8] = b"From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.test>\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n \
aus Berlin\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\r\nS8Okc2UgdW5kIEJyb3Q=\r\n";
        let head = raw
            .get(..memchr::memmem::find(raw, b"\r\n\r\n").unwrap())
            .unwrap();
        let subj = header_values(head, "subject");
        assert_eq!(subj.len(), 1);
        let decoded = decode_unstructured(&subj[0]);
        assert!(decoded.starts_with("Grüße"), "{decoded}");
        assert!(!decoded_contains(&decoded, "GRÜSS".as_bytes()));
        assert!(decoded_contains(&decoded, "GRÜ".as_bytes()));
        assert!(
            decoded_contains(&decoded, b"BERLIN"),
            "folded line unfolded: {decoded}"
        );
        let from = header_values(head, "From");
        assert!(decoded_contains(
            &decode_unstructured(&from[0]),
            "jürgen".as_bytes()
        ));
        // The body is base64 "Käse und Brot".
        assert!(decoded_body_contains(raw, "KÄSE".as_bytes(), false));
        assert!(!decoded_body_contains(raw, b"Wurst", false));
        assert!(decoded_body_contains(raw, "grüße".as_bytes(), true));
        assert!(!decoded_body_contains(raw, "grüße".as_bytes(), false));
    }

    #[tokio::test]
    async fn select_reports_the_first_unseen_message_and_claims_recent_once() {
        use mailstore_core::{MemoryStore, NewAccount, StoreConfig};
        let store = Arc::new(MemoryStore::with_config(StoreConfig::for_tests()));
        let acc = store
            .create_account(NewAccount::new("u@example.test".to_string(), Some("pw")))
            .await
            .unwrap();
        let inbox = store.mailbox(acc.id, "INBOX").await.unwrap().mailbox;
        for i in 0..3 {
            let body = Bytes::from(format!("Subject: {i}\r\n\r\nx\r\n"));
            store
                .append(inbox, AppendOptions::default(), body)
                .await
                .unwrap();
        }
        let seen: UidSet = [1u32, 2].into_iter().collect();
        let flag = Flags::system(SystemFlags::SEEN);
        store
            .store_flags(inbox, &seen, FlagOp::Add, &flag, None)
            .await
            .unwrap();
        let backend = StoreBackend::new(Arc::clone(&store));
        let name = Mailbox::new("INBOX").unwrap();
        let mut first = backend.login("u@example.test", b"pw").await.unwrap();
        let info = first
            .select(&name, false, &SelectParams::default())
            .await
            .unwrap();
        assert_eq!((info.first_unseen, info.recent), (NonZeroU32::new(3), 3));
        let mut second = backend.login("u@example.test", b"pw").await.unwrap();
        let info = second
            .select(&name, false, &SelectParams::default())
            .await
            .unwrap();
        assert_eq!((info.first_unseen, info.recent), (NonZeroU32::new(3), 0));
        store
            .store_flags(
                inbox,
                &[3u32].into_iter().collect(),
                FlagOp::Add,
                &flag,
                None,
            )
            .await
            .unwrap();
        let info = second
            .select(&name, true, &SelectParams::default())
            .await
            .unwrap();
        assert_eq!(info.first_unseen, None);
    }

    #[tokio::test]
    async fn a_session_that_fell_behind_the_feed_resynchronises() {
        use mailstore_core::{MemoryStore, NewAccount, StoreConfig};
        let mut cfg = StoreConfig::default();
        cfg.limits.feed_capacity = 2;
        let store = Arc::new(MemoryStore::with_config(cfg));
        let acc = store
            .create_account(NewAccount::new("a@example.test".to_string(), Some("pw")))
            .await
            .unwrap();
        let inbox = store.mailbox(acc.id, "INBOX").await.unwrap().mailbox;
        let add = |i: u32| {
            let store = Arc::clone(&store);
            async move {
                store
                    .append(
                        inbox,
                        AppendOptions::default(),
                        Bytes::from(format!("Subject: {i}\r\n\r\nx\r\n")),
                    )
                    .await
                    .unwrap();
            }
        };
        for i in 0..3 {
            add(i).await;
        }
        let backend = StoreBackend::new(Arc::clone(&store));
        let mut s = backend.login("a@example.test", b"pw").await.unwrap();
        s.select(
            &Mailbox::new("INBOX").unwrap(),
            false,
            &SelectParams::default(),
        )
        .await
        .unwrap();
        // Another writer: flag 2, expunge 1, five new messages: more than the feed holds.
        let two: UidSet = [2u32].into_iter().collect();
        store
            .store_flags(
                inbox,
                &two,
                FlagOp::Add,
                &Flags::system(SystemFlags::FLAGGED),
                None,
            )
            .await
            .unwrap();
        let one: UidSet = [1u32].into_iter().collect();
        store.expunge(inbox, &one).await.unwrap();
        for i in 3..8 {
            add(i).await;
        }
        assert_eq!(s.take_changes(), Vec::new(), "nothing until the snapshot");
        let r = s.search(&[SearchKey::All], true).await.unwrap();
        assert_eq!(
            r.numbers,
            vec![2, 3],
            "the command still runs on the old view"
        );
        let changes = s.take_changes();
        assert_eq!(
            changes.first(),
            Some(&Unsolicited::Expunge(1)),
            "{changes:?}"
        );
        assert!(
            changes.iter().any(|c| matches!(c, Unsolicited::Fetch { seq: 1, uid: Some(2), flags, .. } if flags.contains(&"\\Flagged".to_string()))),
            "{changes:?}"
        );
        // EXISTS, then RECENT: the first SELECT took UIDs 1-3, this announcement 4-8.
        assert_eq!(
            changes.get(changes.len().saturating_sub(2)..),
            Some(&[Unsolicited::Exists(7), Unsolicited::Recent(7)][..]),
            "{changes:?}"
        );
        let r = s.search(&[SearchKey::All], true).await.unwrap();
        assert_eq!(r.numbers, vec![2, 3, 4, 5, 6, 7, 8]);
        let r = s.search(&[SearchKey::Recent], true).await.unwrap();
        assert_eq!(r.numbers, vec![2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn uid_sets() {
        let s = seqset(&[5, 1, 2, 3, 9]).unwrap();
        assert!(s.contains(2, 9) && s.contains(9, 9) && !s.contains(4, 9));
        assert!(seqset(&[]).is_none());
    }
}
