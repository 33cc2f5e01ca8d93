#![no_main]
//! Fuzzes pop3-proto's response path; the body lives in `pop3_proto::fuzzing::response` so the
//! corpus replay test in crates/pop3-proto/tests/fuzz_corpus.rs runs the same code.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pop3_proto::fuzzing::response(data);
});
