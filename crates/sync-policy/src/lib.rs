//! `sync-policy`: work in progress; see docs/architecture.md.
