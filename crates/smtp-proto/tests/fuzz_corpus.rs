//! Replays the committed cargo-fuzz seed corpus (fuzz/corpus/smtp_*) through the same code
//! the fuzz targets run, so a normal `cargo test` catches regressions on those inputs.
#![allow(clippy::unwrap_used, clippy::panic)]

use mail_testkit::corpus::replay_target;

#[test]
fn smtp_command_corpus() {
    replay_target("smtp_command", 10, smtp_proto::fuzzing::command);
}

#[test]
fn smtp_reply_corpus() {
    replay_target("smtp_reply", 10, smtp_proto::fuzzing::reply);
}

#[test]
fn smtp_server_corpus() {
    replay_target("smtp_server", 10, smtp_proto::fuzzing::server);
}
