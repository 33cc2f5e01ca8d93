//! tokio adapter (todo)
