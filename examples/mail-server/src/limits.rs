//! Login throttling shared by every listener.
//!
//! [`AuthGuard`] counts failed logins per client IP address and per account name within a
//! window (`[auth] lockout`, default 15 minutes). Once either count reaches its limit
//! (`max_failures_per_address` / `max_failures_per_account`, default 10), further attempts
//! from that address or for that account are refused **without checking the password**
//! until the window that started with the first failure has passed. A successful login
//! clears the account's count (not the address's: one right password must not reset a
//! guessing run against other accounts from the same address). The protocol machines add
//! their own delay (2 s) before each failure answer.
//!
//! The guard is sans-IO: the caller passes the current [`Instant`]. Memory is bounded: at
//! most [`MAX_TRACKED`] addresses and accounts are remembered; when full, expired windows
//! are dropped first, then the oldest entries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::AuthConfig;

/// Most addresses (and, separately, accounts) tracked at once.
pub const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    first: Instant,
    failures: u32,
}

#[derive(Debug, Default)]
struct State {
    by_addr: HashMap<IpAddr, Window>,
    by_account: HashMap<String, Window>,
}

/// Why a login attempt was refused before the password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Locked {
    /// Too many failures from this address.
    Address,
    /// Too many failures for this account.
    Account,
}

/// Counts failed logins; see the module documentation.
#[derive(Debug)]
pub struct AuthGuard {
    max_per_addr: u32,
    max_per_account: u32,
    window: Duration,
    state: Mutex<State>,
}

fn account_key(user: &str) -> String {
    user.trim().to_ascii_lowercase()
}

fn prune<K: Clone + std::hash::Hash + Eq>(
    map: &mut HashMap<K, Window>,
    now: Instant,
    window: Duration,
) {
    if map.len() < MAX_TRACKED {
        return;
    }
    map.retain(|_, w| now.saturating_duration_since(w.first) < window);
    while map.len() >= MAX_TRACKED {
        let Some(oldest) = map
            .iter()
            .min_by_key(|(_, w)| w.first)
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        map.remove(&oldest);
    }
}

impl AuthGuard {
    /// A guard with the limits of `[auth]`.
    pub fn new(config: &AuthConfig) -> Self {
        Self {
            max_per_addr: config.max_failures_per_address.max(1),
            max_per_account: config.max_failures_per_account.max(1),
            window: config.lockout,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn over(&self, w: Option<&Window>, max: u32, now: Instant) -> bool {
        w.is_some_and(|w| w.failures >= max && now.saturating_duration_since(w.first) < self.window)
    }

    /// May `user` try a password from `ip` now?
    ///
    /// # Errors
    /// [`Locked`] when the address or the account is locked out.
    pub fn check(&self, ip: IpAddr, user: &str, now: Instant) -> Result<(), Locked> {
        let st = self.lock();
        if self.over(st.by_addr.get(&ip), self.max_per_addr, now) {
            return Err(Locked::Address);
        }
        if self.over(
            st.by_account.get(&account_key(user)),
            self.max_per_account,
            now,
        ) {
            return Err(Locked::Account);
        }
        Ok(())
    }

    /// Records a failed login.
    pub fn failed(&self, ip: IpAddr, user: &str, now: Instant) {
        let window = self.window;
        let mut st = self.lock();
        let bump = |w: &mut Window| {
            if now.saturating_duration_since(w.first) >= window {
                *w = Window {
                    first: now,
                    failures: 0,
                };
            }
            w.failures = w.failures.saturating_add(1);
        };
        prune(&mut st.by_addr, now, window);
        bump(st.by_addr.entry(ip).or_insert(Window {
            first: now,
            failures: 0,
        }));
        prune(&mut st.by_account, now, window);
        bump(st.by_account.entry(account_key(user)).or_insert(Window {
            first: now,
            failures: 0,
        }));
    }

    /// Records a successful login: the account's count starts over.
    pub fn succeeded(&self, user: &str) {
        self.lock().by_account.remove(&account_key(user));
    }
}

/// A POP3 backend whose password checks go through an [`AuthGuard`] for one client
/// address (USER/PASS and SASL PLAIN/LOGIN; APOP is checked by the protocol crate against
/// the stored secret and is not counted).
#[derive(Debug)]
pub struct GuardedPop3<B> {
    inner: B,
    guard: Arc<AuthGuard>,
    peer: IpAddr,
}

impl<B> GuardedPop3<B> {
    /// Wraps `inner` for a connection from `peer`.
    pub fn new(inner: B, guard: Arc<AuthGuard>, peer: IpAddr) -> Self {
        Self { inner, guard, peer }
    }
}

impl<B: pop3_proto::tokio::Backend> pop3_proto::tokio::Backend for GuardedPop3<B> {
    type Maildrop = B::Maildrop;
    type Body = B::Body;

    async fn verify_password(
        &self,
        user: &str,
        password: &pop3_proto::types::Secret,
    ) -> Result<(), pop3_proto::tokio::AuthError> {
        let now = Instant::now();
        if let Err(why) = self.guard.check(self.peer, user, now) {
            tracing::warn!(user, peer = %self.peer, ?why, "pop3 login refused: locked out after failed logins");
            return Err(pop3_proto::tokio::AuthError::Invalid);
        }
        let r = self.inner.verify_password(user, password).await;
        match &r {
            Ok(()) => self.guard.succeeded(user),
            Err(pop3_proto::tokio::AuthError::Invalid) => self.guard.failed(self.peer, user, now),
            Err(_) => {}
        }
        r
    }

    fn plaintext_secret(
        &self,
        user: &str,
    ) -> impl std::future::Future<
        Output = Result<Option<pop3_proto::types::Secret>, pop3_proto::tokio::AuthError>,
    > + Send {
        self.inner.plaintext_secret(user)
    }

    fn open_maildrop(
        &self,
        user: &str,
    ) -> impl std::future::Future<
        Output = Result<
            (Self::Maildrop, Vec<pop3_proto::types::MessageInfo>),
            pop3_proto::tokio::AuthError,
        >,
    > + Send {
        self.inner.open_maildrop(user)
    }

    fn read_message(
        &self,
        maildrop: &mut Self::Maildrop,
        index: usize,
    ) -> impl std::future::Future<Output = std::io::Result<Self::Body>> + Send {
        self.inner.read_message(maildrop, index)
    }

    fn prefetch(
        &self,
        maildrop: &mut Self::Maildrop,
        index: usize,
    ) -> impl std::future::Future<Output = ()> + Send {
        self.inner.prefetch(maildrop, index)
    }

    fn commit(
        &self,
        maildrop: Self::Maildrop,
        deleted: Vec<usize>,
    ) -> impl std::future::Future<Output = std::io::Result<()>> + Send {
        self.inner.commit(maildrop, deleted)
    }
}

/// An SMTP session whose password checks (AUTH PLAIN/LOGIN) go through an [`AuthGuard`]
/// for one client address; everything else is passed through.
#[derive(Debug)]
pub struct GuardedSmtp<B> {
    inner: B,
    guard: Arc<AuthGuard>,
    peer: IpAddr,
}

impl<B> GuardedSmtp<B> {
    /// Wraps `inner` for a connection from `peer`.
    pub fn new(inner: B, guard: Arc<AuthGuard>, peer: IpAddr) -> Self {
        Self { inner, guard, peer }
    }
}

impl<B: smtp_proto::tokio::Backend> smtp_proto::tokio::Backend for GuardedSmtp<B> {
    fn mail_from(
        &mut self,
        from: &smtp_proto::types::ReversePath,
        params: &smtp_proto::types::MailParams,
    ) -> impl std::future::Future<Output = smtp_proto::server::MailDecision> + Send {
        self.inner.mail_from(from, params)
    }

    fn rcpt_to(
        &mut self,
        to: &smtp_proto::types::ForwardPath,
        params: &smtp_proto::types::RcptParams,
    ) -> impl std::future::Future<Output = smtp_proto::server::RcptDecision> + Send {
        self.inner.rcpt_to(to, params)
    }

    fn data_chunk(&mut self, chunk: bytes::Bytes) -> impl std::future::Future<Output = ()> + Send {
        self.inner.data_chunk(chunk)
    }

    fn message(
        &mut self,
        recipients: usize,
    ) -> impl std::future::Future<Output = Vec<smtp_proto::server::MessageDecision>> + Send {
        self.inner.message(recipients)
    }

    fn reset(&mut self) -> impl std::future::Future<Output = ()> + Send {
        self.inner.reset()
    }

    fn hello(
        &mut self,
        verb: smtp_proto::types::HelloVerb,
        domain: &str,
    ) -> impl std::future::Future<Output = ()> + Send {
        self.inner.hello(verb, domain)
    }

    async fn verify(
        &mut self,
        credentials: mail_sasl::server::Verification,
    ) -> Result<mail_sasl::server::Identity, mail_sasl::AuthFailure> {
        let user = match &credentials {
            mail_sasl::server::Verification::Password { username, .. } => Some(username.clone()),
            _ => None,
        };
        let Some(user) = user else {
            return self.inner.verify(credentials).await;
        };
        let now = Instant::now();
        if let Err(why) = self.guard.check(self.peer, &user, now) {
            tracing::warn!(user, peer = %self.peer, ?why, "smtp login refused: locked out after failed logins");
            return Err(mail_sasl::AuthFailure::InvalidCredentials);
        }
        let r = self.inner.verify(credentials).await;
        match &r {
            Ok(_) => self.guard.succeeded(&user),
            Err(mail_sasl::AuthFailure::InvalidCredentials) => {
                self.guard.failed(self.peer, &user, now);
            }
            Err(_) => {}
        }
        r
    }

    fn scram_secret(
        &mut self,
        username: &str,
    ) -> impl std::future::Future<Output = Option<mail_sasl::ScramSecret>> + Send {
        self.inner.scram_secret(username)
    }

    fn authenticated(
        &mut self,
        identity: &mail_sasl::server::Identity,
    ) -> impl std::future::Future<Output = ()> + Send {
        self.inner.authenticated(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(per_addr: u32, per_account: u32) -> AuthGuard {
        AuthGuard::new(&AuthConfig {
            max_failures_per_address: per_addr,
            max_failures_per_account: per_account,
            lockout: Duration::from_secs(900),
            ..AuthConfig::default()
        })
    }

    #[test]
    fn address_lockout_and_expiry() {
        let g = guard(3, 100);
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for i in 0..3 {
            assert_eq!(g.check(ip, &format!("u{i}@x"), t0), Ok(()));
            g.failed(ip, &format!("u{i}@x"), t0);
        }
        assert_eq!(g.check(ip, "new@x", t0), Err(Locked::Address));
        assert_eq!(g.check(other, "new@x", t0), Ok(()));
        // A right password does not unlock the address.
        g.succeeded("u0@x");
        assert_eq!(g.check(ip, "u0@x", t0), Err(Locked::Address));
        let later = t0 + Duration::from_secs(900);
        assert_eq!(g.check(ip, "u0@x", later), Ok(()));
        g.failed(ip, "u0@x", later);
        assert_eq!(g.check(ip, "u0@x", later), Ok(()), "a new window starts");
    }

    #[test]
    fn account_lockout_from_many_addresses() {
        let g = guard(100, 2);
        let t0 = Instant::now();
        g.failed("192.0.2.1".parse().unwrap(), "Alice@Example.test", t0);
        g.failed("198.51.100.7".parse().unwrap(), "alice@example.test", t0);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(g.check(ip, "alice@example.test", t0), Err(Locked::Account));
        assert_eq!(g.check(ip, "bob@example.test", t0), Ok(()));
        assert_eq!(
            g.check(ip, "alice@example.test", t0 + Duration::from_secs(901)),
            Ok(())
        );
    }

    #[test]
    fn success_clears_the_account_count() {
        let g = guard(100, 2);
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        g.failed(ip, "a@x", t0);
        g.succeeded("a@x");
        g.failed(ip, "a@x", t0);
        assert_eq!(g.check(ip, "a@x", t0), Ok(()));
    }
}
