//! Unsolicited mailbox updates the application queues, and the rules for when they may go out.

use bytes::{BufMut, BytesMut};

/// A mailbox change the application wants the client to learn about.
///
/// Queue it with [`Connection::queue_unsolicited`](super::Connection::queue_unsolicited); the
/// machine sends it only where RFC 9051 section 7.5 allows: right away while the client
/// IDLEs, otherwise when the next command in the selected state is handed out (before its
/// own responses) and before each tagged completion; SELECT, EXAMINE, CLOSE and UNSELECT
/// drop them. A client that enabled QRESYNC must get `Vanished`, never `Expunge`
/// (RFC 7162 section 3.2.10).
/// `EXPUNGE` and `VANISHED` (and everything queued after them, whose sequence numbers
/// depend on them) are held back while a `FETCH`, `STORE` or `SEARCH` that uses sequence
/// numbers is in progress (RFC 9051 section 7.5.1, RFC 7162 section 3.2.10).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsolicited {
    /// `* n EXISTS`.
    Exists(u32),
    /// `* n RECENT`: IMAP4rev1 only; dropped for clients that enabled IMAP4rev2.
    Recent(u32),
    /// `* n EXPUNGE`.
    Expunge(u32),
    /// `* VANISHED uid-set` (RFC 7162, for clients that enabled QRESYNC): inclusive UID
    /// ranges.
    Vanished(Vec<(u32, u32)>),
    /// `* n FETCH (...)` with the flags (and UID / MODSEQ) of a changed message. `MODSEQ` is
    /// sent only to clients that enabled CONDSTORE or QRESYNC.
    Fetch {
        /// Message sequence number.
        seq: u32,
        /// The message's UID, if it should be included.
        uid: Option<u32>,
        /// The new flags, e.g. `\Seen`.
        flags: Vec<String>,
        /// The new mod-sequence (RFC 7162).
        modseq: Option<u64>,
    },
    /// `* FLAGS (...)`: the mailbox's flag list changed.
    Flags(Vec<String>),
}

impl Unsolicited {
    /// Whether the update shifts sequence numbers (EXPUNGE / VANISHED).
    pub(crate) fn is_expunge(&self) -> bool {
        matches!(self, Self::Expunge(_) | Self::Vanished(_))
    }

    /// Writes the untagged response with its CRLF.
    pub(crate) fn encode(&self, modseq_enabled: bool, out: &mut BytesMut) {
        match self {
            Self::Exists(n) => out.put_slice(format!("* {n} EXISTS\r\n").as_bytes()),
            Self::Recent(n) => out.put_slice(format!("* {n} RECENT\r\n").as_bytes()),
            Self::Expunge(n) => out.put_slice(format!("* {n} EXPUNGE\r\n").as_bytes()),
            Self::Vanished(ranges) => {
                out.put_slice(b"* VANISHED ");
                out.put_slice(uid_set(ranges).as_bytes());
                out.put_slice(b"\r\n");
            }
            Self::Fetch {
                seq,
                uid,
                flags,
                modseq,
            } => {
                let mut items = Vec::new();
                if let Some(uid) = uid {
                    items.push(format!("UID {uid}"));
                }
                items.push(format!("FLAGS ({})", clean_list(flags)));
                if let (Some(m), true) = (modseq, modseq_enabled) {
                    items.push(format!("MODSEQ ({m})"));
                }
                out.put_slice(format!("* {seq} FETCH ({})\r\n", items.join(" ")).as_bytes());
            }
            Self::Flags(flags) => {
                out.put_slice(format!("* FLAGS ({})\r\n", clean_list(flags)).as_bytes());
            }
        }
    }
}

/// Joins flags with spaces, dropping anything that could break the line.
fn clean_list(flags: &[String]) -> String {
    flags
        .iter()
        .filter(|f| {
            !f.is_empty()
                && f.bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) && !b"(){\"".contains(&b))
        })
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `sequence-set` text for inclusive ranges, e.g. `1:3,7`.
pub(crate) fn uid_set(ranges: &[(u32, u32)]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}:{b}")
            }
        })
        .collect();
    parts.join(",")
}
