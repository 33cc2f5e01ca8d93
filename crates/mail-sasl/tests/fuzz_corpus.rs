//! Replays the committed seed corpus of the `sasl_server` cargo-fuzz target through the same
//! driver (`mail_sasl::fuzzing`), so a plain `cargo test` catches what the fuzzer once found.
use std::path::Path;

#[test]
fn sasl_server_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/sasl_server");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            mail_sasl::fuzzing::server_exchange(&data),
            "exchange did not end within eight steps: {data:?}"
        );
        count += 1;
    }
    assert!(count >= 4, "seed corpus missing in {}", dir.display());
}

#[test]
fn complete_seed_exchanges_finish() {
    // The PLAIN and LOGIN seeds are whole exchanges: they must end, not merely not panic.
    for seed in [&b"\x00\x00user\x00pencil"[..], b"\x01user\xffpass"] {
        assert!(mail_sasl::fuzzing::server_exchange(seed));
    }
}
