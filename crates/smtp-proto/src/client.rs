//! Client (todo)
