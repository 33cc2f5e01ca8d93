//! `.eml` upload (UPL-1).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, UNIX_EPOCH};

use mailstore_core::{MailStore, MemoryStore, NewAccount, Origin, Timestamp, UidSet};
use sync_policy::engine::EngineError;
use sync_policy::engine::upload::{UploadOptions, upload};

#[tokio::test]
async fn upl1_good_files_stored_bad_files_reported_by_name_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(
        p("dated.eml"),
        "Date: Tue, 1 Jul 2003 10:52:37 +0200\r\nFrom: a@example.net\r\nSubject: dated\r\n\r\nbody\r\n",
    )
    .unwrap();
    std::fs::write(
        p("undated.eml"),
        "Subject: no date\nFrom: b@example.net\n\nunix line ends\n",
    )
    .unwrap();
    std::fs::File::options()
        .write(true)
        .open(p("undated.eml"))
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::from_secs(1_600_000_000))
        .unwrap();
    std::fs::write(p("bad-date.eml"), "Date: someday\r\nSubject: x\r\n\r\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(p("bad-date.eml"))
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::from_secs(1_500_000_000))
        .unwrap();
    std::fs::write(
        p("text.eml"),
        "Dear Sir,\r\nthis is not a message file.\r\n",
    )
    .unwrap();
    std::fs::write(p("empty.eml"), "").unwrap();
    std::fs::write(
        p("big.eml"),
        format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(300)),
    )
    .unwrap();
    std::fs::create_dir(p("folder.eml")).unwrap();

    let store = MemoryStore::new();
    let acct = store
        .create_account(NewAccount::new("alice@example.org", None))
        .await
        .unwrap()
        .id;
    let mut opts = UploadOptions::default();
    opts.size_limit = 200;
    let files: Vec<_> = [
        "dated.eml",
        "text.eml",
        "undated.eml",
        "empty.eml",
        "missing.eml",
        "big.eml",
        "folder.eml",
        "bad-date.eml",
    ]
    .iter()
    .map(|n| p(n))
    .collect();
    let report = upload(&store, acct, "Archive", &files, &opts)
        .await
        .unwrap();

    let stored: Vec<(String, u32, Timestamp)> = report
        .stored
        .iter()
        .map(|f| {
            (
                f.path.file_name().unwrap().to_string_lossy().into_owned(),
                f.uid,
                f.internal_date,
            )
        })
        .collect();
    assert_eq!(
        stored,
        vec![
            ("dated.eml".into(), 1, Timestamp(1_057_049_557)),
            ("undated.eml".into(), 2, Timestamp(1_600_000_000)),
            ("bad-date.eml".into(), 3, Timestamp(1_500_000_000)),
        ]
    );
    let rejected: Vec<(String, String)> = report
        .rejected
        .iter()
        .map(|f| {
            (
                f.path.file_name().unwrap().to_string_lossy().into_owned(),
                f.reason.clone(),
            )
        })
        .collect();
    assert_eq!(rejected.len(), 5, "{rejected:?}");
    assert_eq!(rejected[0].0, "text.eml");
    assert_eq!(
        rejected[0].1,
        "line 1 is not a header field (\"Name: value\"); the file does not look like an RFC 5322 message"
    );
    assert_eq!(
        rejected[1],
        ("empty.eml".into(), "the file is empty".into())
    );
    assert_eq!(rejected[2].0, "missing.eml");
    assert!(
        rejected[2].1.starts_with("cannot read the file: "),
        "{}",
        rejected[2].1
    );
    assert_eq!(
        rejected[3],
        (
            "big.eml".into(),
            "the file is 318 bytes, the limit is less than 200".into()
        )
    );
    assert_eq!(
        rejected[4],
        ("folder.eml".into(), "not a regular file".into())
    );

    // Stored as given, LF turned into CRLF, with the upload origin.
    let mbx = store.mailbox(acct, "Archive").await.unwrap();
    let body = store
        .open_body(mbx.mailbox, 2)
        .await
        .unwrap()
        .read_all()
        .await
        .unwrap();
    assert_eq!(
        body,
        b"Subject: no date\r\nFrom: b@example.net\r\n\r\nunix line ends\r\n"
    );
    let meta = store
        .message_meta(mbx.mailbox, &UidSet::all())
        .await
        .unwrap();
    assert!(
        meta.iter()
            .all(|m| m.origin == Origin::Imported("upload".into()))
    );
    assert_eq!(meta[0].internal_date, Timestamp(1_057_049_557));
}

#[tokio::test]
async fn upl1_missing_folder_is_an_error() {
    let store = MemoryStore::new();
    let acct = store
        .create_account(NewAccount::new("alice@example.org", None))
        .await
        .unwrap()
        .id;
    let err = upload(&store, acct, "Nope", &[], &UploadOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Store(mailstore_core::StoreError::NoSuchMailbox(_))
        ),
        "{err}"
    );
}
