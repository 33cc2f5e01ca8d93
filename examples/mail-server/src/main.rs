//! mail-server: work in progress.
fn main() {}
