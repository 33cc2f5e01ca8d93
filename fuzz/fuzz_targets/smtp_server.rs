#![no_main]
//! Fuzzes smtp-proto's server path; the body lives in `smtp_proto::fuzzing::server` so the corpus
//! replay test in crates/smtp-proto/tests/fuzz_corpus.rs runs the same code.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    smtp_proto::fuzzing::server(data);
});
