#![no_main]
//! Feeds arbitrary bytes to `imap_proto::server::Connection`, answering every event with a
//! canned reply. Must never panic, and the output must stay proportional to the input.
//! The harness lives in `imap_proto::fuzzing` so the corpus replay test runs the same code.

libfuzzer_sys::fuzz_target!(|data: &[u8]| imap_proto::fuzzing::server(data));
