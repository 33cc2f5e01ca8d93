//! tokio (work in progress).
