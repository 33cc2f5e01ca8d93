//! `pop3-proto`: work in progress; see docs/architecture.md.
