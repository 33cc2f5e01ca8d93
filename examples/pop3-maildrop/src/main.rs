//! pop3-maildrop: work in progress.
fn main() {}
