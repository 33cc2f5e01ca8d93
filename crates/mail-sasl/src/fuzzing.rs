//! Drivers shared by the cargo-fuzz targets in `fuzz/` and the corpus replay tests, so both
//! run exactly the same code. Not part of the stable API.

use crate::server::{Exchange, Identity, ServerContext, Step};
use crate::{Mechanism, ScramSecret};

/// Runs one server-side exchange on arbitrary input: the first byte picks the mechanism, the
/// rest is split into client messages at `0xFF` bytes. Every credential check succeeds, so
/// the whole state machine is reachable. Returns true when the exchange ended (success or
/// failure) within eight steps.
pub fn server_exchange(data: &[u8]) -> bool {
    let Some((&selector, rest)) = data.split_first() else {
        return true;
    };
    let Some(&mechanism) = Mechanism::ALL.get(usize::from(selector) % Mechanism::ALL.len()) else {
        return true;
    };
    let mut messages = rest.split(|&b| b == 0xFF);
    let ctx = ServerContext::new("fuzz.example", "fuzznonce0123456789".to_string());
    let mut exchange = Exchange::new(mechanism, ctx);
    let mut step = exchange.start(messages.next());
    for _ in 0..8 {
        step = match step {
            Step::Challenge(_) => exchange.step(messages.next().unwrap_or_default()),
            Step::Verify(_) => exchange.credentials_checked(Ok(Identity::new("user"))),
            Step::NeedScramSecret { .. } => {
                exchange.scram_secret(Some(ScramSecret::derive(b"pencil", b"salt", 4096)))
            }
            Step::Success { .. } | Step::Failure(_) => return true,
        };
    }
    exchange.is_done()
}
