#![no_main]
//! Parses arbitrary bytes as an IMAP response (and greeting); whatever parses must re-encode
//! to bytes that parse back to the same value.
use imap_proto::{encode, parse};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok((used, resp)) = parse::response(data) {
        assert!(used <= data.len());
        let mut wire = Vec::new();
        encode::response(&resp, &mut wire);
        match parse::response(&wire) {
            Ok((n, again)) => {
                assert_eq!(n, wire.len());
                assert_eq!(again, resp);
            }
            Err(e) => panic!("re-encoded response does not parse: {e:?}"),
        }
    }
    if let Ok((_, g)) = parse::greeting(data) {
        let mut wire = Vec::new();
        encode::greeting(&g, &mut wire);
        let (_, again) = parse::greeting(&wire).expect("re-encoded greeting parses");
        assert_eq!(again, g);
    }
    let _ = parse::fetch_literal_prefix(data, &parse::ParserOptions::default());
});
