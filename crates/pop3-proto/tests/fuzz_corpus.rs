//! Replays the committed cargo-fuzz seed corpus (fuzz/corpus/pop3_*) through the same code
//! the fuzz targets run, so a normal `cargo test` catches regressions on those inputs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use mail_testkit::corpus::replay_target;

#[test]
fn pop3_command_corpus() {
    replay_target("pop3_command", 10, pop3_proto::fuzzing::command);
}

#[test]
fn pop3_response_corpus() {
    replay_target("pop3_response", 10, pop3_proto::fuzzing::response);
}

#[test]
fn pop3_server_corpus() {
    replay_target("pop3_server", 10, pop3_proto::fuzzing::server);
}
