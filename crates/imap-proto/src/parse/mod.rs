//! parse (work in progress).
