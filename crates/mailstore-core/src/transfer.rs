//! Maildir and mbox export/import.
