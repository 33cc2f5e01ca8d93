//! `smtp-proto`: work in progress; see docs/architecture.md.
