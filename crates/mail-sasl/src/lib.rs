//! `mail-sasl`: work in progress; see docs/architecture.md.
