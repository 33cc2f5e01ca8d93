//! Replays the committed cargo-fuzz seed corpora (`fuzz/corpus/<target>/`) in a plain
//! `cargo test`, through the same driver the fuzz target runs.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};

/// The seed corpus directory of the cargo-fuzz target `target`:
/// `<workspace>/fuzz/corpus/<target>`.
#[must_use]
pub fn dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// The regular files of `dir` with their contents, sorted by path.
///
/// # Panics
/// When `dir` or one of its files cannot be read (the message names it).
#[must_use]
pub fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read the seed corpus {}: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries
        .map(|e| {
            e.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .path()
        })
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let data =
                std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            (p, data)
        })
        .collect()
}

/// Runs `check` on every file of `dir` (see [`files`]) and returns how many there were.
/// When `check` panics on a file, the panic is raised again with the file's path in front
/// of the original message.
pub fn replay(dir: &Path, mut check: impl FnMut(&[u8])) -> usize {
    let files = files(dir);
    for (path, data) in &files {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| check(data))) {
            let msg = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            match msg {
                Some(msg) => panic!("corpus file {}: {msg}", path.display()),
                None => resume_unwind(payload),
            }
        }
    }
    files.len()
}

/// [`replay`] over the seed corpus of the fuzz target `target` ([`dir`]), asserting that it
/// holds at least `min_files` files (so a lost corpus cannot pass as an empty one).
/// Returns how many files were replayed.
///
/// # Panics
/// When fewer than `min_files` files are found, or `check` panics on a file.
pub fn replay_target(target: &str, min_files: usize, check: impl FnMut(&[u8])) -> usize {
    let dir = dir(target);
    let n = replay(&dir, check);
    assert!(
        n >= min_files,
        "expected a seed corpus of at least {min_files} files in {}, found {n}",
        dir.display()
    );
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("b-two"), b"2").unwrap();
        std::fs::write(d.path().join("a-one"), b"1").unwrap();
        std::fs::create_dir(d.path().join("subdir")).unwrap();
        d
    }

    #[test]
    fn replays_files_in_order_and_counts_them() {
        let d = sample();
        let mut seen = Vec::new();
        assert_eq!(replay(d.path(), |b| seen.push(b.to_vec())), 2);
        assert_eq!(seen, vec![b"1".to_vec(), b"2".to_vec()]);
    }

    #[test]
    #[should_panic(expected = "b-two: boom on [50]")]
    fn a_failing_file_is_named_in_the_panic() {
        let d = sample();
        replay(d.path(), |b| assert!(b != b"2", "boom on {b:?}"));
    }

    #[test]
    fn the_workspace_corpora_are_found() {
        assert!(!files(&dir("pop3_command")).is_empty());
        let mut n = 0;
        assert_eq!(replay_target("pop3_command", 1, |_| n += 1), n);
    }

    #[test]
    #[should_panic(expected = "expected a seed corpus of at least 100000 files")]
    fn a_too_small_corpus_fails() {
        replay_target("pop3_command", 100_000, |_| {});
    }
}
