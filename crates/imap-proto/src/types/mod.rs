//! types (work in progress).
