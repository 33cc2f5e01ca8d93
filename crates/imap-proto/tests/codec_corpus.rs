//! Replays the fuzz seed corpora (fuzz/corpus/imap_command, fuzz/corpus/imap_response) with
//! the fuzz targets' checks: no panic, and whatever parses re-encodes to an equal value.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::path::PathBuf;

use imap_proto::encode::{self, EncodeOptions};
use imap_proto::parse;

fn corpus(name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    mail_testkit::corpus::files(&mail_testkit::corpus::dir(name))
}

/// Seeds named `seed-*` are valid messages; `bad-*` ones are deliberately broken.
fn is_valid_seed(path: &std::path::Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("seed-"))
}

#[test]
fn command_corpus() {
    let files = corpus("imap_command");
    assert!(files.len() >= 30, "seed corpus too small: {}", files.len());
    for (path, data) in files {
        let r = parse::command(&data);
        assert_eq!(r.is_ok(), is_valid_seed(&path), "{}: {r:?}", path.display());
        if let Ok((used, cmd)) = r {
            assert_eq!(used, data.len(), "{}", path.display());
            let wire = encode::command_to_vec(&cmd, &EncodeOptions::default());
            let (_, again) = parse::command(&wire)
                .unwrap_or_else(|e| panic!("{}: re-encoded does not parse: {e:?}", path.display()));
            assert_eq!(again, cmd, "{}", path.display());
        }
        let _ = parse::append_prefix(&data, &parse::ParserOptions::default());
    }
}

#[test]
fn response_corpus() {
    let files = corpus("imap_response");
    assert!(files.len() >= 30, "seed corpus too small: {}", files.len());
    for (path, data) in files {
        let r = parse::response(&data);
        // The greeting seed is also a valid response.
        assert_eq!(r.is_ok(), is_valid_seed(&path), "{}: {r:?}", path.display());
        if let Ok((used, resp)) = r {
            assert_eq!(used, data.len(), "{}", path.display());
            let mut wire = Vec::new();
            encode::response(&resp, &mut wire);
            let (_, again) = parse::response(&wire)
                .unwrap_or_else(|e| panic!("{}: re-encoded does not parse: {e:?}", path.display()));
            assert_eq!(again, resp, "{}", path.display());
        }
        if let Ok((_, g)) = parse::greeting(&data) {
            let mut wire = Vec::new();
            encode::greeting(&g, &mut wire);
            assert_eq!(parse::greeting(&wire).unwrap().1, g);
        }
        let _ = parse::fetch_literal_prefix(&data, &parse::ParserOptions::default());
    }
}
