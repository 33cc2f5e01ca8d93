//! `mailstore-core`: work in progress; see docs/architecture.md.
