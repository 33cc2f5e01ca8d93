//! IMAP migration policy (MIG-2, MIG-3, MIG-4, MIG-6), as pure bookkeeping for the
//! migration engine that comes later: what to copy from a source folder, what a re-run
//! skips, the job queue and its notices, and what to undo when a job fails.
//!
//! The engine owns the I/O (an `imap-proto` client, the store). It snapshots each source
//! folder's UIDNEXT when the job starts, copies with [`plan_folder_copy`], records the
//! [`MigrationKey`]s of each stored message in its ledger and its [`JobJournal`] right
//! after storing it, and on failure applies [`JobJournal::rollback`].

use std::collections::{BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::facts::{MessageKey, UnixTime};

/// A message in a source folder, from `UID FETCH 1:* (UID INTERNALDATE RFC822.SIZE
/// BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMessage {
    /// UID in the source folder.
    pub uid: u32,
    /// INTERNALDATE.
    pub internal_date: UnixTime,
    /// RFC822.SIZE.
    pub size: u64,
    /// The Message-ID field's value, trimmed, if there is one.
    pub message_id: Option<String>,
}

/// A source folder as the job saw it when it started (MIG-2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFolder {
    /// Its name on the source server (also the destination name).
    pub name: String,
    /// Its UIDVALIDITY.
    pub uidvalidity: u32,
    /// Its UIDNEXT when the job started: messages with a UID at or above it arrived
    /// after the migration began and are not copied.
    pub uidnext_at_start: u32,
}

/// What identifies a migrated message across runs (MIG-6). Each stored message is
/// recorded under its UID key and, when it has a Message-ID, its content key, so a
/// re-run skips it even if the source server changed UIDVALIDITY in between.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum MigrationKey {
    /// Source folder, UIDVALIDITY and UID.
    Uid {
        /// Source folder name.
        folder: String,
        /// Its UIDVALIDITY.
        uidvalidity: u32,
        /// The message's UID.
        uid: u32,
    },
    /// Folder, Message-ID, INTERNALDATE and size. The folder is part of the key: the same
    /// message filed in two folders (Gmail labels) is copied into both.
    Content {
        /// Source folder name.
        folder: String,
        /// Message-ID.
        message_id: String,
        /// INTERNALDATE.
        internal_date: UnixTime,
        /// Size.
        size: u64,
    },
}

/// The ledger keys under which a stored message is recorded.
#[must_use]
pub fn migration_keys(folder: &SourceFolder, m: &SourceMessage) -> Vec<MigrationKey> {
    let mut keys = vec![MigrationKey::Uid {
        folder: folder.name.clone(),
        uidvalidity: folder.uidvalidity,
        uid: m.uid,
    }];
    if let Some(id) = m
        .message_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
    {
        keys.push(MigrationKey::Content {
            folder: folder.name.clone(),
            message_id: id.to_owned(),
            internal_date: m.internal_date,
            size: m.size,
        });
    }
    keys
}

/// What to do with one source folder.
#[must_use = "the plan lists the UIDs to copy"]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FolderCopyPlan {
    /// UIDs to copy, ascending.
    pub copy: Vec<u32>,
    /// Messages skipped because an earlier run copied them (MIG-6).
    pub already_copied: usize,
    /// Messages skipped because they arrived after the job started (MIG-2).
    pub arrived_later: usize,
}

/// Plans the copy of one folder: everything that was there when the job started (MIG-2)
/// and that no earlier run stored (MIG-6).
pub fn plan_folder_copy(
    folder: &SourceFolder,
    messages: &[SourceMessage],
    ledger: &BTreeSet<MigrationKey>,
) -> FolderCopyPlan {
    let mut plan = FolderCopyPlan::default();
    let mut seen = BTreeSet::new();
    for m in messages {
        if m.uid >= folder.uidnext_at_start {
            plan.arrived_later += 1;
        } else if migration_keys(folder, m).iter().any(|k| ledger.contains(k)) {
            plan.already_copied += 1;
        } else if seen.insert(m.uid) {
            plan.copy.push(m.uid);
        }
    }
    plan.copy.sort_unstable();
    plan
}

/// What the engine did for one job, so that a failure can be undone (MIG-4).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct JobJournal {
    /// Destination folders the job created, in creation order.
    pub created_folders: Vec<String>,
    /// Destination messages the job stored.
    pub stored: Vec<MessageKey>,
    /// Ledger keys the job added.
    pub ledger_added: Vec<MigrationKey>,
}

/// What to undo after a failed job.
#[must_use = "the destination must be restored"]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RollbackPlan {
    /// Expunge these messages.
    pub expunge: Vec<MessageKey>,
    /// Then delete these folders, children before parents (reverse creation order).
    pub delete_folders: Vec<String>,
    /// Remove these ledger keys, so a retry copies the messages again.
    pub forget: Vec<MigrationKey>,
}

impl JobJournal {
    /// Records a folder the job created.
    pub fn folder_created(&mut self, name: &str) {
        self.created_folders.push(name.to_owned());
    }

    /// Records a stored message and its ledger keys.
    pub fn message_stored(&mut self, key: MessageKey, ledger_keys: Vec<MigrationKey>) {
        self.stored.push(key);
        self.ledger_added.extend(ledger_keys);
    }

    /// The plan that restores the destination to its state before the job (MIG-4).
    pub fn rollback(&self) -> RollbackPlan {
        RollbackPlan {
            expunge: self.stored.clone(),
            delete_folders: self.created_folders.iter().rev().cloned().collect(),
            forget: self.ledger_added.clone(),
        }
    }
}

/// A notice to the user about a job (MIG-3).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The job is waiting behind others.
    Queued {
        /// Jobs ahead of it.
        ahead: usize,
    },
    /// The job started.
    Started,
    /// Progress.
    Progress {
        /// Messages handled.
        done: u64,
        /// Messages to handle.
        total: u64,
    },
    /// The job completed.
    Completed {
        /// Messages copied.
        copied: u64,
        /// Messages an earlier run had copied.
        already_copied: u64,
    },
    /// The job failed; the destination was restored.
    Failed {
        /// Why, as the engine reports it.
        reason: String,
    },
}

impl Notice {
    /// The text for the user.
    #[must_use]
    pub fn text(&self) -> String {
        match self {
            Notice::Queued { ahead: 0 } => "Your mail migration is queued and starts next".into(),
            Notice::Queued { ahead } => format!("Your mail migration is queued behind {ahead} other migration(s)"),
            Notice::Started => "Your mail migration has started. Keep the old account's password and leave its mail \
                                unchanged until the migration completes"
                .into(),
            Notice::Progress { done, total } => format!("Mail migration in progress: {done} of {total} messages"),
            Notice::Completed { copied, already_copied: 0 } => {
                format!("Mail migration completed: {copied} messages copied")
            }
            Notice::Completed { copied, already_copied } => format!(
                "Mail migration completed: {copied} messages copied, {already_copied} already copied by an earlier run"
            ),
            Notice::Failed { reason } => format!(
                "Mail migration failed ({}); your mailbox was restored to its state before the migration. You can \
                 run it again",
                reason.chars().filter(|c| !c.is_control()).take(200).collect::<String>()
            ),
        }
    }
}

/// Should a progress notice go out? One per `step_percent` of the total (e.g. 25: at
/// 25 %, 50 %, 75 %), never at 0 % or 100 % (those are Started and Completed).
#[must_use]
pub fn progress_notice(
    done_before: u64,
    done_now: u64,
    total: u64,
    step_percent: u8,
) -> Option<Notice> {
    if total == 0 || step_percent == 0 || done_now >= total {
        return None;
    }
    let bucket =
        |done: u64| u128::from(done) * 100 / (u128::from(total) * u128::from(step_percent));
    (bucket(done_now) > bucket(done_before)).then_some(Notice::Progress {
        done: done_now,
        total,
    })
}

/// Jobs run one at a time in the order they were registered (MIG-3).
#[derive(Debug, Clone, Default)]
pub struct MigrationQueue {
    waiting: VecDeque<u64>,
    running: Option<u64>,
}

impl MigrationQueue {
    /// An empty queue.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a job; the notice says how many jobs are ahead of it. Registering a job
    /// that is already queued or running changes nothing.
    pub fn enqueue(&mut self, job: u64) -> Notice {
        if self.running != Some(job) && !self.waiting.contains(&job) {
            self.waiting.push_back(job);
        }
        let ahead = self.waiting.iter().position(|j| *j == job).unwrap_or(0)
            + usize::from(self.running.is_some());
        Notice::Queued { ahead }
    }

    /// Starts the next job if none is running.
    pub fn start_next(&mut self) -> Option<u64> {
        if self.running.is_some() {
            return None;
        }
        self.running = self.waiting.pop_front();
        self.running
    }

    /// The running job ended (completed or failed).
    pub fn finish(&mut self, job: u64) {
        if self.running == Some(job) {
            self.running = None;
        }
    }

    /// The running job.
    #[must_use]
    pub fn running(&self) -> Option<u64> {
        self.running
    }

    /// Jobs waiting.
    #[must_use]
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}
