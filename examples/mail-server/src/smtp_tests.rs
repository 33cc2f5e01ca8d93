//! Multi-recipient SMTP delivery when the store fails midway: the recipients already
//! served are not served twice (the reply is `250` and the failed ones are queued and
//! retried into the store), driven through the session's `Backend` methods with a store
//! whose second append fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use mailstore_core::*;
use smtp_proto::server::{MailDecision, MessageDecision, RcptDecision};
use smtp_proto::tokio::Backend;
use smtp_proto::{ForwardPath, MailParams, Mailbox, RcptParams, ReversePath};

use super::{Kind, Session};
use crate::config::Config;
use crate::outbound::Outbound;

/// A [`MemoryStore`] whose `fail_on`-th `begin_append` (1-based) fails with a
/// temporary error.
struct FlakyStore {
    inner: MemoryStore,
    appends: AtomicUsize,
    fail_on: usize,
}

impl MailStore for FlakyStore {
    type Append = <MemoryStore as MailStore>::Append;

    fn create_account(
        &self,
        spec: NewAccount,
    ) -> impl Future<Output = StoreResult<AccountInfo>> + Send {
        self.inner.create_account(spec)
    }
    fn delete_account(&self, account: AccountId) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.delete_account(account)
    }
    fn account(&self, account: AccountId) -> impl Future<Output = StoreResult<AccountInfo>> + Send {
        self.inner.account(account)
    }
    fn find_account(
        &self,
        address: &str,
    ) -> impl Future<Output = StoreResult<Option<AccountInfo>>> + Send {
        self.inner.find_account(address)
    }
    fn list_accounts(&self) -> impl Future<Output = StoreResult<Vec<AccountInfo>>> + Send {
        self.inner.list_accounts()
    }
    fn add_alias(
        &self,
        account: AccountId,
        alias: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.add_alias(account, alias)
    }
    fn remove_alias(
        &self,
        account: AccountId,
        alias: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.remove_alias(account, alias)
    }
    fn set_password(
        &self,
        account: AccountId,
        password: Option<&str>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.set_password(account, password)
    }
    fn set_access(
        &self,
        account: AccountId,
        access: ProtocolAccess,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.set_access(account, access)
    }
    fn set_quota(
        &self,
        account: AccountId,
        quota: Quota,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.set_quota(account, quota)
    }
    fn quota_usage(
        &self,
        account: AccountId,
    ) -> impl Future<Output = StoreResult<QuotaUsage>> + Send {
        self.inner.quota_usage(account)
    }
    fn create_app_password(
        &self,
        account: AccountId,
        name: &str,
    ) -> impl Future<Output = StoreResult<String>> + Send {
        self.inner.create_app_password(account, name)
    }
    fn revoke_app_password(
        &self,
        account: AccountId,
        name: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.revoke_app_password(account, name)
    }
    fn list_app_passwords(
        &self,
        account: AccountId,
    ) -> impl Future<Output = StoreResult<Vec<AppPasswordInfo>>> + Send {
        self.inner.list_app_passwords(account)
    }
    fn set_plaintext_secret(
        &self,
        account: AccountId,
        secret: Option<&str>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.set_plaintext_secret(account, secret)
    }
    fn plaintext_secret(
        &self,
        account: AccountId,
    ) -> impl Future<Output = StoreResult<Option<PlaintextSecret>>> + Send {
        self.inner.plaintext_secret(account)
    }
    fn verify_login(
        &self,
        address: &str,
        password: &str,
    ) -> impl Future<Output = StoreResult<AuthOutcome>> + Send {
        self.inner.verify_login(address, password)
    }
    fn get_setting(
        &self,
        scope: &SettingsScope,
        key: &str,
    ) -> impl Future<Output = StoreResult<Option<Vec<u8>>>> + Send {
        self.inner.get_setting(scope, key)
    }
    fn put_setting(
        &self,
        scope: &SettingsScope,
        key: &str,
        value: Vec<u8>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.put_setting(scope, key, value)
    }
    fn delete_setting(
        &self,
        scope: &SettingsScope,
        key: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.delete_setting(scope, key)
    }
    fn list_settings(
        &self,
        scope: &SettingsScope,
    ) -> impl Future<Output = StoreResult<Vec<String>>> + Send {
        self.inner.list_settings(scope)
    }
    fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        opts: CreateMailbox,
    ) -> impl Future<Output = StoreResult<MailboxInfo>> + Send {
        self.inner.create_mailbox(account, name, opts)
    }
    fn rename_mailbox(
        &self,
        account: AccountId,
        from: &str,
        to: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.rename_mailbox(account, from, to)
    }
    fn delete_mailbox(
        &self,
        account: AccountId,
        name: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.delete_mailbox(account, name)
    }
    fn set_subscribed(
        &self,
        account: AccountId,
        name: &str,
        subscribed: bool,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.set_subscribed(account, name, subscribed)
    }
    fn set_special_use(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.inner.set_special_use(account, name, special_use)
    }
    fn list_mailboxes(
        &self,
        account: AccountId,
    ) -> impl Future<Output = StoreResult<Vec<MailboxInfo>>> + Send {
        self.inner.list_mailboxes(account)
    }
    fn mailbox(
        &self,
        account: AccountId,
        name: &str,
    ) -> impl Future<Output = StoreResult<MailboxInfo>> + Send {
        self.inner.mailbox(account, name)
    }
    fn mailbox_status(
        &self,
        mailbox: MailboxRef,
    ) -> impl Future<Output = StoreResult<MailboxInfo>> + Send {
        self.inner.mailbox_status(mailbox)
    }
    fn begin_append(
        &self,
        mailbox: MailboxRef,
        opts: AppendOptions,
    ) -> impl Future<Output = StoreResult<Self::Append>> + Send {
        let n = self.appends.fetch_add(1, Ordering::SeqCst) + 1;
        let fail = n == self.fail_on;
        async move {
            if fail {
                return Err(StoreError::AppendAborted("simulated disk failure".into()));
            }
            self.inner.begin_append(mailbox, opts).await
        }
    }
    fn snapshot(
        &self,
        mailbox: MailboxRef,
    ) -> impl Future<Output = StoreResult<MailboxSnapshot>> + Send {
        self.inner.snapshot(mailbox)
    }
    fn message_meta(
        &self,
        mailbox: MailboxRef,
        uids: &UidSet,
    ) -> impl Future<Output = StoreResult<Vec<MessageMeta>>> + Send {
        self.inner.message_meta(mailbox, uids)
    }
    fn open_body(
        &self,
        mailbox: MailboxRef,
        uid: u32,
    ) -> impl Future<Output = StoreResult<BodyReader>> + Send {
        self.inner.open_body(mailbox, uid)
    }
    fn open_range(
        &self,
        mailbox: MailboxRef,
        uid: u32,
        offset: u64,
        len: u64,
    ) -> impl Future<Output = StoreResult<BodyReader>> + Send {
        self.inner.open_range(mailbox, uid, offset, len)
    }
    fn store_flags(
        &self,
        mailbox: MailboxRef,
        uids: &UidSet,
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<u64>,
    ) -> impl Future<Output = StoreResult<StoreFlagsOutcome>> + Send {
        self.inner
            .store_flags(mailbox, uids, op, flags, unchanged_since)
    }
    fn copy(
        &self,
        from: MailboxRef,
        uids: &UidSet,
        to: MailboxRef,
    ) -> impl Future<Output = StoreResult<CopyOutcome>> + Send {
        self.inner.copy(from, uids, to)
    }
    fn move_messages(
        &self,
        from: MailboxRef,
        uids: &UidSet,
        to: MailboxRef,
    ) -> impl Future<Output = StoreResult<CopyOutcome>> + Send {
        self.inner.move_messages(from, uids, to)
    }
    fn expunge(
        &self,
        mailbox: MailboxRef,
        uids: &UidSet,
    ) -> impl Future<Output = StoreResult<Vec<u32>>> + Send {
        self.inner.expunge(mailbox, uids)
    }
    fn changes_since(
        &self,
        mailbox: MailboxRef,
        modseq: u64,
    ) -> impl Future<Output = StoreResult<Changes>> + Send {
        self.inner.changes_since(mailbox, modseq)
    }
    fn purge_tombstones(
        &self,
        mailbox: MailboxRef,
        up_to_modseq: u64,
    ) -> impl Future<Output = StoreResult<usize>> + Send {
        self.inner.purge_tombstones(mailbox, up_to_modseq)
    }
    fn subscribe(
        &self,
        mailbox: MailboxRef,
    ) -> impl Future<Output = StoreResult<ChangeSubscription>> + Send {
        self.inner.subscribe(mailbox)
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    store: Arc<FlakyStore>,
    config: Arc<Config>,
    queue: Arc<Outbound<FlakyStore>>,
    inboxes: Vec<MailboxRef>,
}

async fn setup(fail_on: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_toml_str(
        &format!(
            "data_dir = {:?}\ndomains = [\"example.test\"]\nhostname = \"mx.example.test\"\n",
            dir.path().to_str().unwrap()
        ),
        Path::new("test.toml"),
    )
    .unwrap();
    let store = Arc::new(FlakyStore {
        inner: MemoryStore::new(),
        appends: AtomicUsize::new(0),
        fail_on,
    });
    let mut inboxes = Vec::new();
    for user in ["a", "b", "c"] {
        let acc = store
            .create_account(NewAccount::new(format!("{user}@example.test"), Some("pw")))
            .await
            .unwrap();
        inboxes.push(store.mailbox(acc.id, "INBOX").await.unwrap().mailbox);
    }
    // Without [relay] the queue still exists (local retries), but relays nothing.
    let queue = Outbound::new(&config, Arc::clone(&store)).unwrap().unwrap();
    assert!(!queue.relays());
    Setup {
        _dir: dir,
        store,
        config: Arc::new(config),
        queue,
        inboxes,
    }
}

const BODY: &[u8] = b"From: sender@remote.example\r\nSubject: to three\r\n\r\nhello\r\n";

/// One SMTP transaction (port 25) from sender@remote.example to a, b and c.
async fn transaction(s: &Setup, with_queue: bool) -> Vec<MessageDecision> {
    let mut session = Session::new(
        Arc::clone(&s.store),
        Arc::clone(&s.config),
        Kind::Mx,
        "127.0.0.1:40000".parse().unwrap(),
        false,
    );
    if with_queue {
        session = session.with_queue(Some(Arc::clone(&s.queue)));
    }
    let from = ReversePath::Mailbox(Mailbox::new("sender", "remote.example"));
    assert_eq!(
        session.mail_from(&from, &MailParams::default()).await,
        MailDecision::Accept
    );
    for user in ["a", "b", "c"] {
        let to = ForwardPath::Mailbox(Mailbox::new(user, "example.test"));
        assert_eq!(
            session.rcpt_to(&to, &RcptParams::default()).await,
            RcptDecision::Accept
        );
    }
    session.data_chunk(Bytes::from_static(BODY)).await;
    session.message(3).await
}

async fn messages(s: &Setup, inbox: MailboxRef) -> Vec<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    let snap = s.store.snapshot(inbox).await.unwrap();
    let mut out = Vec::new();
    for m in snap.messages {
        let mut body = s.store.open_body(inbox, m.uid).await.unwrap();
        let mut v = Vec::new();
        body.read_to_end(&mut v).await.unwrap();
        out.push(v);
    }
    out
}

fn queue_entries(s: &Setup) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(s.config.data_dir.join("queue"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "env").then(|| std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_failed_copy_is_queued_and_the_reply_is_250() {
    let s = setup(2).await;
    let decisions = transaction(&s, true).await;
    assert_eq!(decisions.len(), 1);
    let MessageDecision::Queued(id) = &decisions[0] else {
        panic!("a 250 was expected: {decisions:?}");
    };
    // a and c have their copy, b's failed and waits in the queue.
    let a = messages(&s, s.inboxes[0]).await;
    assert_eq!(a.len(), 1);
    assert!(a[0].starts_with(b"Received: from unknown ([127.0.0.1])\r\n\tby mx.example.test"));
    assert!(a[0].ends_with(BODY));
    assert!(messages(&s, s.inboxes[1]).await.is_empty());
    assert_eq!(messages(&s, s.inboxes[2]).await, a);
    let q = queue_entries(&s);
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(
        q[0].starts_with("from sender@remote.example\nrcpt b@example.test\nqueued "),
        "{}",
        q[0]
    );
    assert!(q[0].contains("\nattempts 0\n"), "{}", q[0]);
    assert_eq!(
        std::fs::read(s.config.data_dir.join("queue").join(format!("{id}.eml"))).unwrap(),
        a[0]
    );
    // The queue's pass delivers b's copy: one copy each, the same bytes, queue empty.
    tokio::time::timeout(std::time::Duration::from_secs(30), s.queue.pass())
        .await
        .unwrap();
    assert_eq!(messages(&s, s.inboxes[0]).await, a);
    assert_eq!(messages(&s, s.inboxes[1]).await, a);
    assert_eq!(messages(&s, s.inboxes[2]).await, a);
    assert!(queue_entries(&s).is_empty());
}

#[tokio::test]
async fn a_failed_first_copy_is_queued_too_and_a_lone_failure_is_the_reply() {
    // The first append fails, the other two commit: still a partial failure.
    let s = setup(1).await;
    let d = transaction(&s, true).await;
    assert!(matches!(&d[..], [MessageDecision::Queued(_)]), "{d:?}");
    assert_eq!(queue_entries(&s).len(), 1);
    assert!(queue_entries(&s)[0].contains("rcpt a@example.test\n"));

    // A single recipient whose append fails: nothing was stored, the client retries.
    let s = setup(1).await;
    let mut session = Session::new(
        Arc::clone(&s.store),
        Arc::clone(&s.config),
        Kind::Mx,
        "127.0.0.1:40000".parse().unwrap(),
        false,
    )
    .with_queue(Some(Arc::clone(&s.queue)));
    let from = ReversePath::Mailbox(Mailbox::new("sender", "remote.example"));
    let _ = session.mail_from(&from, &MailParams::default()).await;
    let to = ForwardPath::Mailbox(Mailbox::new("a", "example.test"));
    assert_eq!(
        session.rcpt_to(&to, &RcptParams::default()).await,
        RcptDecision::Accept
    );
    session.data_chunk(Bytes::from_static(BODY)).await;
    assert_eq!(
        session.message(1).await,
        [MessageDecision::TempFail(
            "the mail store is unavailable, try again later".into()
        )]
    );
    assert!(queue_entries(&s).is_empty());
    assert!(messages(&s, s.inboxes[0]).await.is_empty());
}

#[tokio::test]
async fn without_a_queue_the_failure_is_the_reply() {
    let s = setup(2).await;
    let d = transaction(&s, false).await;
    assert_eq!(
        d,
        [MessageDecision::TempFail(
            "the mail store is unavailable, try again later".into()
        )]
    );
    assert!(queue_entries(&s).is_empty());
}
