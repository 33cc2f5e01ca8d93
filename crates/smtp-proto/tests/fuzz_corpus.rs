//! Replays the committed cargo-fuzz seed corpus (fuzz/corpus/smtp_*) through the same code
//! the fuzz targets run, so a normal `cargo test` catches regressions on those inputs.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_file() {
            f(&std::fs::read(&path).unwrap());
            n += 1;
        }
    }
    assert!(
        n >= 10,
        "expected a seed corpus in {}, found {n} files",
        dir.display()
    );
}

#[test]
fn smtp_command_corpus() {
    replay("smtp_command", smtp_proto::fuzzing::command);
}

#[test]
fn smtp_reply_corpus() {
    replay("smtp_reply", smtp_proto::fuzzing::reply);
}

#[test]
fn smtp_server_corpus() {
    replay("smtp_server", smtp_proto::fuzzing::server);
}
