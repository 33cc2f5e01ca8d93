//! encode (work in progress).
