//! Replays the committed seed corpus of the `sasl_server` cargo-fuzz target through the same
//! driver (`mail_sasl::fuzzing`), so a plain `cargo test` catches what the fuzzer once found.
use mail_testkit::corpus;

#[test]
fn sasl_server_corpus_replays() {
    corpus::replay_target("sasl_server", 4, |data| {
        assert!(
            mail_sasl::fuzzing::server_exchange(data),
            "exchange did not end within eight steps: {data:?}"
        );
    });
}

#[test]
fn complete_seed_exchanges_finish() {
    // The PLAIN and LOGIN seeds are whole exchanges: they must end, not merely not panic.
    for seed in [&b"\x00\x00user\x00pencil"[..], b"\x01user\xffpass"] {
        assert!(mail_sasl::fuzzing::server_exchange(seed));
    }
}
