//! `mail-net`: work in progress; see docs/architecture.md.
