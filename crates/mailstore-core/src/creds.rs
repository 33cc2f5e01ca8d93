//! Password hashing (argon2id) and app-password generation.
//!
//! # Memory
//!
//! An Argon2 computation needs `m_cost` KiB of working memory (19 MiB with the default
//! [`HashParams`]). Allocating and freeing that per login lets glibc's malloc raise its
//! dynamic mmap threshold after the first free, after which every later block comes from
//! (and stays in) the per-thread heaps: a busy server ended up holding ~9 MiB per
//! connection. So every hash and verification here runs in a block of memory taken from a
//! small process-wide pool ([`verify_slots`] blocks, allocated on first use, reused for
//! the life of the process, never freed), and at most that many run at once (further callers
//! wait). The retained memory is therefore fixed: `verify_slots() * m_cost` KiB (14 MiB
//! with the default 7 MiB on a 2-core machine), whatever the number of logins or
//! connections. A stored hash with a larger `m_cost` than the slot it lands in (e.g. one
//! made with the earlier 19 MiB default) grows that slot once, to the larger size, which
//! it then keeps: such hashes still verify, and the pool then retains up to
//! `verify_slots()` blocks of the largest `m_cost` seen (bounded by [`MAX_VERIFY_M_COST`]).

use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::Rng;

use crate::error::StoreError;
use crate::types::HashParams;

/// Largest `m_cost` (KiB) a stored hash may ask for when it is verified (1 GiB): a hash with
/// more does not verify, rather than making the process allocate without bound.
pub(crate) const MAX_VERIFY_M_COST: u32 = 1024 * 1024;

/// How many Argon2 computations may run at once (and so how many memory blocks the pool
/// keeps): the available parallelism, at least 1 and at most 4 (2 when it is unknown).
pub(crate) fn verify_slots() -> usize {
    static SLOTS: OnceLock<usize> = OnceLock::new();
    *SLOTS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get().clamp(1, 4))
            .unwrap_or(2)
    })
}

/// The asynchronous gate in front of the blocking pool: callers take a permit before
/// `spawn_blocking`, so a burst of logins queues as futures, not as blocking threads.
pub(crate) async fn verify_permit() -> Result<tokio::sync::SemaphorePermit<'static>, StoreError> {
    static GATE: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    GATE.get_or_init(|| tokio::sync::Semaphore::new(verify_slots()))
        .acquire()
        .await
        .map_err(|e| StoreError::Task(format!("password verification gate: {e}")))
}

struct PoolState {
    idle: Vec<Vec<Block>>,
    in_use: usize,
}

struct MemoryPool {
    state: Mutex<PoolState>,
    freed: Condvar,
}

fn pool() -> &'static MemoryPool {
    static POOL: OnceLock<MemoryPool> = OnceLock::new();
    POOL.get_or_init(|| MemoryPool {
        state: Mutex::new(PoolState {
            idle: Vec::new(),
            in_use: 0,
        }),
        freed: Condvar::new(),
    })
}

impl MemoryPool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // The state is a list and a counter: still consistent after a panic elsewhere.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a free slot and returns its memory, grown to at least `blocks` blocks.
    fn take(&'static self, blocks: usize) -> PooledMemory {
        let mut st = self.lock();
        while st.in_use >= verify_slots() {
            st = self.freed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.in_use += 1;
        // Prefer a block that is already big enough, so one large stored hash does not
        // make every slot grow.
        let pos = st
            .idle
            .iter()
            .position(|b| b.len() >= blocks)
            .or(if st.idle.is_empty() { None } else { Some(0) });
        let mut mem = match pos {
            Some(i) => st.idle.swap_remove(i),
            None => Vec::new(),
        };
        drop(st);
        if mem.len() < blocks {
            // First use of this slot (or a hash with a larger m_cost than any before):
            // allocate once at the final size rather than growing in steps.
            mem = vec![Block::default(); blocks];
        }
        PooledMemory { mem, pool: self }
    }
}

/// A slot's memory, returned to the pool on drop.
struct PooledMemory {
    mem: Vec<Block>,
    pool: &'static MemoryPool,
}

impl Drop for PooledMemory {
    fn drop(&mut self) {
        let mem = std::mem::take(&mut self.mem);
        let mut st = self.pool.lock();
        st.idle.push(mem);
        st.in_use = st.in_use.saturating_sub(1);
        drop(st);
        self.pool.freed.notify_one();
    }
}

/// Runs one Argon2 computation in pooled memory.
fn argon2_into(
    argon: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let mut mem = pool().take(params.block_count());
    argon.hash_password_into_with_memory(password, salt, out, mem.mem.as_mut_slice())
}

/// Hashes a password into a PHC string (`$argon2id$v=19$m=...`), which records its own
/// parameters.
pub(crate) fn hash_password(params: HashParams, password: &str) -> Result<String, StoreError> {
    let p = Params::new(params.m_cost, params.t_cost, params.p_cost, None)
        .map_err(|e| StoreError::InvalidArgument(format!("argon2 parameters: {e}")))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, p.clone());
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| StoreError::InvalidArgument(format!("salt: {e}")))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2_into(&argon, &p, password.as_bytes(), &salt_bytes, &mut out)
        .map_err(|e| StoreError::InvalidArgument(format!("password hash: {e}")))?;
    let err = |e: argon2::password_hash::Error| {
        StoreError::InvalidArgument(format!("password hash: {e}"))
    };
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&p).map_err(err)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(err)?),
    };
    Ok(phc.to_string())
}

/// Verifies a password against a PHC string; false on mismatch or an unreadable hash.
///
/// Accepts every Argon2 variant and version the `argon2` crate reads (`$argon2id$`,
/// `$argon2i$`, `$argon2d$`, v=16 and v=19), with the parameters the string records.
pub(crate) fn verify_password(phc: &str, password: &str) -> bool {
    verify_inner(phc, password).unwrap_or(false)
}

fn verify_inner(phc: &str, password: &str) -> Option<bool> {
    let h = PasswordHash::new(phc).ok()?;
    let algorithm = Algorithm::try_from(h.algorithm).ok()?;
    let version = match h.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(&h).ok()?;
    if params.m_cost() > MAX_VERIFY_M_COST {
        return None;
    }
    let expected = h.hash?;
    let mut salt_buf = [0u8; 64];
    let salt = h.salt?.decode_b64(&mut salt_buf).ok()?;
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = out.get_mut(..expected.len())?;
    let argon = Argon2::new(algorithm, version, params.clone());
    argon2_into(&argon, &params, password.as_bytes(), salt, out).ok()?;
    // `Output`'s equality is constant-time.
    Some(Output::new(out).ok()? == expected)
}

/// A new app password: four groups of four lower-case letters (about 75 bits).
pub(crate) fn generate_app_password() -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(19);
    for i in 0..16 {
        if i > 0 && i % 4 == 0 {
            s.push('-');
        }
        let c = rng.random_range(b'a'..=b'z');
        s.push(char::from(c));
    }
    s
}

/// A fixed hash to verify against when the account does not exist, so that unknown and
/// known accounts cost the same.
pub(crate) fn dummy_hash(params: HashParams) -> String {
    hash_password(params, "dummy password for timing").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_password(HashParams::insecure_for_tests(), "secret").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(verify_password(&h, "secret"));
        assert!(!verify_password(&h, "Secret"));
        assert!(!verify_password("garbage", "secret"));
        let a = generate_app_password();
        assert_eq!(a.len(), 19);
        assert_ne!(a, generate_app_password());
    }
}

#[cfg(test)]
mod pool_tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[test]
    fn compatible_with_the_argon2_crate_both_ways() {
        let p = Params::new(64, 1, 1, None).unwrap();
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, p);
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let phc = theirs.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(verify_password(&phc, "pw"));
        assert!(!verify_password(&phc, "pW"));
        // Other variants and the old version still verify.
        for (alg, ver) in [
            (Algorithm::Argon2i, Version::V0x13),
            (Algorithm::Argon2d, Version::V0x10),
        ] {
            let a = Argon2::new(alg, ver, Params::new(32, 2, 2, Some(24)).unwrap());
            let phc = a.hash_password(b"pw", &salt).unwrap().to_string();
            assert!(verify_password(&phc, "pw"), "{phc}");
            assert!(!verify_password(&phc, "px"), "{phc}");
        }
        let ours = hash_password(HashParams::insecure_for_tests(), "pw").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"pw", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"px", &parsed).is_err());
    }

    #[test]
    fn a_fixed_known_hash_keeps_verifying() {
        // A PHC string from the `argon2` crate's own `PasswordHasher`, the code path the store used before the pool.
        let p = Params::new(8, 1, 1, None).unwrap();
        let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, p);
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let phc = a.hash_password(b"secret", &salt).unwrap().to_string();
        assert!(verify_password(&phc, "secret"));
    }

    #[test]
    fn refuses_oversized_and_malformed_hashes() {
        let huge = "$argon2id$v=19$m=2000000,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$\
                    AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(!verify_password(huge, "x"));
        assert!(!verify_password(
            "$argon2id$v=19$m=8,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg",
            "x"
        ));
        assert!(!verify_password("$scrypt$ln=1$abc$def", "x"));
        assert!(!verify_password("", "x"));
    }

    #[test]
    fn many_threads_share_a_bounded_pool() {
        let h = hash_password(HashParams::insecure_for_tests(), "s").unwrap();
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let h = h.clone();
                std::thread::spawn(move || {
                    (0..20)
                        .all(|_| verify_password(&h, "s") && !verify_password(&h, &i.to_string()))
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap());
        }
        let st = pool().lock();
        assert_eq!(st.in_use, 0);
        assert!(st.idle.len() <= verify_slots());
    }
}
