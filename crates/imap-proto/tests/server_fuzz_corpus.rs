//! Replays the seed corpus of the `imap_server` fuzz target (fuzz/corpus/imap_server/) and
//! runs the same harness (`imap_proto::fuzzing::server`) over random input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use imap_proto::fuzzing::server as run;

#[test]
fn replay_seed_corpus() {
    mail_testkit::corpus::replay_target("imap_server", 7, run);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
        run(&data);
    }

    #[test]
    fn command_like_input_never_panics(lines in proptest::collection::vec(
        "(a|b1|\\*|\\+)? ?(LOGIN|SELECT|FETCH|UID FETCH|APPEND|IDLE|DONE|AUTHENTICATE PLAIN|STARTTLS|ENABLE|COMPRESS DEFLATE|NOOP|LOGOUT|\\*)? ?(INBOX|\\{[0-9]{1,4}\\+?\\}|\\(\\\\Seen\\)|\"q\"|=|x)*\r?\n",
        0..40,
    )) {
        let mut data = vec![1u8];
        for l in lines {
            data.extend_from_slice(l.as_bytes());
        }
        run(&data);
    }
}
