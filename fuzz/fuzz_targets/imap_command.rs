#![no_main]
//! Parses arbitrary bytes as an IMAP command; whatever parses must re-encode to bytes that
//! parse back to the same value.
use imap_proto::encode::{self, EncodeOptions};
use imap_proto::parse;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok((used, cmd)) = parse::command(data) {
        assert!(used <= data.len());
        let wire = encode::command_to_vec(&cmd, &EncodeOptions::default());
        match parse::command(&wire) {
            Ok((n, again)) => {
                assert_eq!(n, wire.len());
                assert_eq!(again, cmd);
            }
            Err(e) => panic!("re-encoded command does not parse: {e:?}"),
        }
    }
    let _ = parse::append_prefix(data, &parse::ParserOptions::default());
});
