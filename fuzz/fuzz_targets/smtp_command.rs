#![no_main]
//! Fuzzes smtp-proto's command path; the body lives in `smtp_proto::fuzzing::command` so the corpus
//! replay test in crates/smtp-proto/tests/fuzz_corpus.rs runs the same code.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    smtp_proto::fuzzing::command(data);
});
