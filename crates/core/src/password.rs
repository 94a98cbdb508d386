//! Passwords: the policy a new password must meet (NIST SP 800-63B §5.1.1.2)
//! and Argon2id hashing on a fixed set of dedicated threads, so a burst of
//! sign-ins can neither stall the async runtime nor exhaust memory.
//!
//! Each hash holds `memory_kib` of RAM while it runs. On the runtime's
//! blocking pool, successive hashes landed on ever-changing threads and the
//! allocator kept a freed 19 MiB block per thread: the benchmark measured a
//! resident set of 480 MB under load (16 MB idle). A few long-lived threads
//! reuse their memory, so the peak is about `max_concurrent × memory_kib`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Argon2Cost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for Argon2Cost {
    /// OWASP Password Storage Cheat Sheet: Argon2id, m=19456 KiB (19 MiB), t=2, p=1.
    fn default() -> Self {
        Self { memory_kib: 19_456, iterations: 2, parallelism: 1 }
    }
}

/// What a new password must satisfy.
#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    /// Minimum length in characters (NIST: at least 8).
    pub min_length: usize,
    /// Maximum length in characters (NIST: at least 64 must be allowed).
    pub max_length: usize,
    /// Minimum zxcvbn score, 0–4.
    pub min_score: u8,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_length: 8, max_length: 128, min_score: 3 }
    }
}

/// Why a new password was refused; the message tells the user what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    /// Too short.
    #[error("Use at least {0} characters.")]
    TooShort(usize),
    /// Too long.
    #[error("Use at most {0} characters.")]
    TooLong(usize),
    /// Guessable: common, based on the email, a pattern, … The advice is
    /// zxcvbn's, as message ids of the catalogs (`pw-…`).
    #[error("This password is too easy to guess ({}).", .0.join(", "))]
    TooWeak(Vec<String>),
    /// Known from data breaches: attackers try it first.
    #[error("This password has appeared in a data breach, so attackers try it first. Choose another one.")]
    Breached,
}

impl PasswordPolicy {
    /// Checks a candidate password. `hints` are words an attacker would try
    /// first (the email's local part, the user's name).
    pub fn check(&self, password: &str, hints: &[&str]) -> Result<(), PasswordProblem> {
        let length = password.chars().count();
        if length < self.min_length {
            return Err(PasswordProblem::TooShort(self.min_length));
        }
        if length > self.max_length {
            return Err(PasswordProblem::TooLong(self.max_length));
        }
        let estimate = zxcvbn::zxcvbn(password, hints);
        if u8::from(estimate.score()) < self.min_score {
            let mut advice: Vec<String> = estimate
                .feedback()
                .map(|f| {
                    let warning = f.warning().map(|w| advice_id(&format!("{w:?}")));
                    warning.into_iter().chain(f.suggestions().iter().map(|s| advice_id(&format!("{s:?}")))).collect()
                })
                .unwrap_or_default();
            if advice.is_empty() {
                advice.push(advice_id("AddAnotherWordOrTwo"));
            }
            return Err(PasswordProblem::TooWeak(advice));
        }
        Ok(())
    }
}

/// The message id of one of zxcvbn's warnings or suggestions, from its
/// variant name: `AvoidSequences` → `pw-avoid-sequences`.
fn advice_id(variant: &str) -> String {
    let mut id = String::from("pw");
    for c in variant.chars() {
        if c.is_ascii_uppercase() || c.is_ascii_digit() && !id.ends_with(|p: char| p.is_ascii_digit()) {
            id.push('-');
        }
        id.push(c.to_ascii_lowercase());
    }
    id
}

/// Result of checking a password against a stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordCheck {
    /// Wrong password.
    Mismatch,
    /// Right password; the hash uses the current parameters.
    Match,
    /// Right password, but the hash uses old parameters: store this new hash.
    MatchRehashed(String),
}

/// Hashing failures (not wrong passwords).
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The parameters or the stored hash are unusable.
    #[error("argon2: {0}")]
    Argon2(String),
    /// The blocking task did not complete.
    #[error("hashing task failed")]
    Task,
    /// More hashes are waiting than the configured limit: the request is
    /// refused at once rather than left to wait behind them.
    #[error("too many password hashes waiting")]
    Busy,
}

/// Work for a hashing thread.
type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// A hashing thread's state: the configured parameters and the Argon2 memory
/// it reuses for every hash at those parameters.
struct Worker {
    params: Params,
    blocks: Vec<Block>,
}

/// Length of new hashes' salts (RFC 9106 §3.1 recommends 16 bytes).
const SALT_LEN: usize = 16;

impl Worker {
    fn new(params: Params) -> Self {
        Self { params, blocks: Vec::new() }
    }

    /// Argon2 of `password` and `salt` with `params` into `out`, in this
    /// thread's memory when `params` are the configured ones.
    fn derive(&mut self, argon: &Argon2<'_>, params: &Params, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), HashError> {
        let failed = |e: argon2::Error| HashError::Argon2(e.to_string());
        if params.block_count() == self.params.block_count() {
            if self.blocks.len() != self.params.block_count() {
                self.blocks = vec![Block::default(); self.params.block_count()];
            }
            argon.hash_password_into_with_memory(password, salt, out, &mut self.blocks).map_err(failed)
        } else {
            // A stored hash with other parameters (it will be re-hashed): one-off memory.
            argon.hash_password_into(password, salt, out).map_err(failed)
        }
    }

    /// A PHC string of `password` with the configured parameters and a fresh salt.
    fn hash(&mut self, password: &[u8]) -> Result<String, HashError> {
        let bad = |e: argon2::password_hash::phc::Error| HashError::Argon2(e.to_string());
        let mut salt = [0u8; SALT_LEN];
        rand::rng().fill_bytes(&mut salt);
        let params = self.params.clone();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut out = Zeroizing::new([0u8; Params::DEFAULT_OUTPUT_LEN]);
        self.derive(&argon, &params, password, &salt, &mut out[..])?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| HashError::Argon2(e.to_string()))?,
            salt: Some(Salt::new(&salt).map_err(bad)?),
            hash: Some(Output::new(&out[..]).map_err(bad)?),
        };
        Ok(phc.to_string())
    }

    /// Checks `password` against a stored PHC string (constant-time comparison).
    fn verify(&mut self, password: &[u8], stored: &str) -> Result<PasswordCheck, HashError> {
        let bad = |e: argon2::password_hash::phc::Error| HashError::Argon2(e.to_string());
        let parsed = PasswordHash::new(stored).map_err(bad)?;
        let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).map_err(|e| HashError::Argon2(e.to_string()))?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).map_err(|e| HashError::Argon2(e.to_string()))?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).map_err(|e| HashError::Argon2(e.to_string()))?;
        let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
            return Err(HashError::Argon2("the stored hash has no salt or no output".into()));
        };
        let mut out = Zeroizing::new(vec![0u8; expected.len()]);
        self.derive(&Argon2::new(algorithm, version, params.clone()), &params, password, salt.as_ref(), &mut out)?;
        if !bool::from(out.as_slice().ct_eq(expected.as_bytes())) {
            return Ok(PasswordCheck::Mismatch);
        }
        let current = &self.params;
        let same_cost = params.m_cost() == current.m_cost() && params.t_cost() == current.t_cost() && params.p_cost() == current.p_cost();
        if same_cost && algorithm == Algorithm::Argon2id && version == Version::V0x13 {
            Ok(PasswordCheck::Match)
        } else {
            Ok(PasswordCheck::MatchRehashed(self.hash(password)?))
        }
    }
}

/// Argon2id hasher running at most `max_concurrent` hashes at once, on as many
/// dedicated threads (they stop when the last clone of the hasher is dropped).
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    jobs: std::sync::mpsc::Sender<Job>,
    /// Hashes accepted and not yet finished (running or waiting), shared by all clones.
    in_flight: Arc<AtomicUsize>,
    /// At most this many may be in flight: the threads plus the waiting room.
    max_in_flight: usize,
    /// A hash of a random password, verified against when the account does not
    /// exist so that unknown emails cost the same time as wrong passwords.
    decoy: Arc<String>,
    /// Hashing threads.
    threads: usize,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").field("params", &self.params).finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher with the given cost, running at most `max_concurrent` hashes
    /// at once; any number may wait (see [`with_max_waiting`](Self::with_max_waiting)).
    pub fn new(cost: Argon2Cost, max_concurrent: usize) -> Result<Self, HashError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None).map_err(|e| HashError::Argon2(e.to_string()))?;
        let decoy = Worker::new(params.clone()).hash(crate::secrets::random_token().as_bytes())?;
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..max_concurrent.max(1) {
            let queue = queue.clone();
            let mut worker = Worker::new(params.clone());
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job, never while hashing.
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        match job {
                            Ok(job) => job(&mut worker),
                            Err(_) => break,
                        }
                    }
                })
                .map_err(|e| HashError::Argon2(format!("cannot start a hashing thread: {e}")))?;
        }
        let threads = max_concurrent.max(1);
        Ok(Self { params, jobs, in_flight: Arc::new(AtomicUsize::new(0)), max_in_flight: usize::MAX, decoy: Arc::new(decoy), threads })
    }

    /// Refuses a hash with [`HashError::Busy`] when `max_waiting` are already
    /// waiting for a thread. Under overload a sign-in is then answered at once
    /// ("try again in a moment") instead of every sign-in waiting longer and
    /// longer; the ones accepted still finish in about
    /// `(threads + max_waiting) / hashes per second`.
    pub fn with_max_waiting(mut self, max_waiting: usize) -> Self {
        self.max_in_flight = self.threads.saturating_add(max_waiting);
        self
    }

    /// Hashing threads (hashes that can run at once).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Hashes accepted and not yet finished (running or waiting).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// A place in the waiting room for one hash, taken now ([`HashError::Busy`]
    /// when it is full): a caller that must count something before it
    /// hashes (an answer, an attempt) takes it first, so a refusal never
    /// comes after the counting.
    pub fn reserve(&self) -> Result<HashPermit, HashError> {
        InFlight::take(&self.in_flight, self.max_in_flight).map(HashPermit).ok_or(HashError::Busy)
    }

    /// Runs `work` on a hashing thread; waits (without blocking the runtime)
    /// for a free one, unless too many are already waiting.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce(&mut Worker) -> T + Send + 'static) -> Result<T, HashError> {
        let permit = self.reserve()?;
        self.run_reserved(permit, work).await
    }

    /// Runs `work` in the place `permit` holds.
    async fn run_reserved<T: Send + 'static>(
        &self,
        HashPermit(slot): HashPermit,
        work: impl FnOnce(&mut Worker) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |worker| {
            let out = work(worker);
            // Released as soon as the hash is done (or with the job, if it is dropped unrun).
            drop(slot);
            let _ = done.send(out);
        });
        self.jobs.send(job).map_err(|_| HashError::Task)?;
        result.await.map_err(|_| HashError::Task)
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = Zeroizing::new(password.to_owned());
        self.run(move |worker| worker.hash(password.as_bytes())).await?
    }

    /// Checks `password` against `stored`; re-hashes with current parameters when they changed.
    pub async fn verify(&self, password: &str, stored: &str) -> Result<PasswordCheck, HashError> {
        let permit = self.reserve()?;
        self.verify_reserved(permit, password, stored).await
    }

    /// [`verify`](Self::verify) in a place taken by [`reserve`](Self::reserve).
    pub async fn verify_reserved(&self, permit: HashPermit, password: &str, stored: &str) -> Result<PasswordCheck, HashError> {
        let password = Zeroizing::new(password.to_owned());
        let stored = stored.to_owned();
        self.run_reserved(permit, move |worker| worker.verify(password.as_bytes(), &stored)).await?
    }

    /// Spends the same effort as [`verify_reserved`](Self::verify_reserved)
    /// for an account that does not exist.
    pub async fn verify_decoy_reserved(&self, permit: HashPermit, password: &str) -> Result<(), HashError> {
        let decoy = self.decoy.as_str().to_owned();
        self.verify_reserved(permit, password, &decoy).await.map(|_| ())
    }
}

/// A place in the hashing waiting room ([`PasswordHasher::reserve`]),
/// given back when the hash it is used for is done, or when it is dropped.
pub struct HashPermit(InFlight);

/// One accepted hash, counted until it is dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// Counts one more unless `max` are already in flight.
    fn take(counter: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(Self(counter.clone()))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(Argon2Cost { memory_kib: 64, iterations: 1, parallelism: 1 }, 2).unwrap()
    }

    #[test]
    fn default_cost_is_the_owasp_recommendation() {
        let c = Argon2Cost::default();
        assert_eq!((c.memory_kib, c.iterations, c.parallelism), (19_456, 2, 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn default_cost_produces_argon2id_hashes_with_those_parameters() {
        let hasher = PasswordHasher::new(Argon2Cost::default(), 1).unwrap();
        let phc = hasher.hash("correct horse battery staple").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(hasher.verify("correct horse battery staple", &phc).await.unwrap(), PasswordCheck::Match);
    }

    #[tokio::test]
    async fn a_full_waiting_room_refuses_at_once_and_frees_up_when_hashes_finish() {
        // One thread and one waiting place: two in flight at most. Places are
        // held through `reserve` so that no hash can finish in between (a
        // thread finishing a hash while the test thread was descheduled made
        // an earlier, timing-based version of this test flaky on CI).
        let hasher = PasswordHasher::new(Argon2Cost { memory_kib: 64, iterations: 1, parallelism: 1 }, 1).unwrap().with_max_waiting(1);
        let held = hasher.reserve().unwrap();
        let accepted = hasher.reserve().unwrap();
        assert_eq!(hasher.in_flight(), 2);
        assert!(matches!(hasher.reserve(), Err(HashError::Busy)));
        assert!(matches!(hasher.hash("three-password").await, Err(HashError::Busy)), "a hash is refused at once when the room is full");
        assert!(matches!(hasher.verify("three-password", "$argon2id$v=19$m=64,t=1,p=1$bm9zYWx0").await, Err(HashError::Busy)));
        // A reserved place is used by the hash it was taken for, then given back.
        assert!(matches!(hasher.verify_decoy_reserved(accepted, "x").await, Ok(())));
        assert_eq!(hasher.in_flight(), 1, "only the held place is left");
        let phc = hasher.hash("two-password").await.unwrap();
        assert_eq!(hasher.verify("two-password", &phc).await.unwrap(), PasswordCheck::Match, "the freed place serves the next hash");
        // A place dropped unused is given back too.
        drop(held);
        assert_eq!(hasher.in_flight(), 0);
        // Without a limit every hash waits its turn.
        let unlimited = PasswordHasher::new(Argon2Cost { memory_kib: 4096, iterations: 1, parallelism: 1 }, 1).unwrap();
        let (a, b, c) = tokio::join!(unlimited.hash("one-password"), unlimited.hash("two-password"), unlimited.hash("three-password"));
        assert!(a.is_ok() && b.is_ok() && c.is_ok());
    }

    #[tokio::test]
    async fn verify_tells_right_from_wrong() {
        let h = cheap();
        let phc = h.hash("s3cret-enough").await.unwrap();
        assert_eq!(h.verify("s3cret-enough", &phc).await.unwrap(), PasswordCheck::Match);
        assert_eq!(h.verify("s3cret-enougH", &phc).await.unwrap(), PasswordCheck::Mismatch);
    }

    #[tokio::test]
    async fn hashes_agree_with_the_argon2_crates_own_phc_path() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let h = cheap();
        let params = Params::new(64, 1, 1, None).unwrap();
        let library = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        // A hash stored before the dedicated threads existed still verifies…
        let old = library.hash_password(b"pass phrase here").unwrap().to_string();
        assert_eq!(h.verify("pass phrase here", &old).await.unwrap(), PasswordCheck::Match);
        assert_eq!(h.verify("pass phrase herE", &old).await.unwrap(), PasswordCheck::Mismatch);
        // …and ours verifies with the library: standard PHC strings with a 16-byte salt.
        let ours = h.hash("pass phrase here").await.unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{ours}");
        assert!(library.verify_password(b"pass phrase here", &PasswordHash::new(&ours).unwrap()).is_ok());
        assert!(h.verify("pass phrase here", "$argon2id$v=19$m=64,t=1,p=1$bm9zYWx0").await.is_err(), "a hash without output is an error");
    }

    #[tokio::test]
    async fn changed_parameters_trigger_a_rehash() {
        let old = cheap();
        let phc = old.hash("pass phrase here").await.unwrap();
        let new = PasswordHasher::new(Argon2Cost { memory_kib: 128, iterations: 1, parallelism: 1 }, 1).unwrap();
        match new.verify("pass phrase here", &phc).await.unwrap() {
            PasswordCheck::MatchRehashed(h) => {
                assert!(h.contains("m=128"), "{h}");
                assert_eq!(new.verify("pass phrase here", &h).await.unwrap(), PasswordCheck::Match);
            }
            other => panic!("expected a rehash, got {other:?}"),
        }
    }

    #[test]
    fn policy_enforces_length_and_strength() {
        let p = PasswordPolicy::default();
        assert_eq!(p.check("short", &[]), Err(PasswordProblem::TooShort(8)));
        assert_eq!(p.check(&"x".repeat(129), &[]), Err(PasswordProblem::TooLong(128)));
        assert!(matches!(p.check("password1", &[]), Err(PasswordProblem::TooWeak(_))));
        assert!(matches!(p.check("alicealice2024", &["alice"]), Err(PasswordProblem::TooWeak(_))));
        assert!(p.check("tangerine-Quiver-87-lantern", &[]).is_ok());
        // 64 characters must be accepted (NIST SP 800-63B).
        assert!(p.check(&"correct horse battery staple ".repeat(3)[..64], &[]).is_ok());
    }
}
