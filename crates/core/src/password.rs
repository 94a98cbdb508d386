//! Passwords: the policy a new password must meet (NIST SP 800-63B §5.1.1.2)
//! and Argon2id hashing on a bounded pool of blocking threads, so a burst of
//! sign-ins can neither stall the async runtime nor exhaust memory
//! (each hash holds `memory_kib` of RAM while it runs).

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::Semaphore;
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
    /// Guessable: common, based on the email, a pattern, …
    #[error("This password is too easy to guess. {0}")]
    TooWeak(String),
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
            let advice = estimate
                .feedback()
                .map(|f| {
                    let mut parts: Vec<String> = f.warning().map(|w| w.to_string()).into_iter().collect();
                    parts.extend(f.suggestions().iter().map(|s| s.to_string()));
                    parts.join(" ")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "Add another word or two; uncommon words are better.".to_owned());
            return Err(PasswordProblem::TooWeak(advice));
        }
        Ok(())
    }
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
}

/// Argon2id hasher with a bound on concurrent hashes.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the account does not
    /// exist so that unknown emails cost the same time as wrong passwords.
    decoy: Arc<String>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").field("params", &self.params).finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher with the given cost, running at most `max_concurrent` hashes at once.
    pub fn new(cost: Argon2Cost, max_concurrent: usize) -> Result<Self, HashError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None).map_err(|e| HashError::Argon2(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let decoy_password = crate::secrets::random_token();
        let decoy = argon.hash_password(decoy_password.as_bytes()).map_err(|e| HashError::Argon2(e.to_string()))?.to_string();
        Ok(Self { params, permits: Arc::new(Semaphore::new(max_concurrent.max(1))), decoy: Arc::new(decoy) })
    }

    fn argon(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Runs `work` on the blocking pool once a permit is free.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce(Argon2<'static>, Params) -> T + Send + 'static) -> Result<T, HashError> {
        let _permit = self.permits.acquire().await.map_err(|_| HashError::Task)?;
        let argon = self.argon();
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || work(argon, params)).await.map_err(|_| HashError::Task)
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = Zeroizing::new(password.to_owned());
        self.run(move |argon, _| {
            argon.hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| HashError::Argon2(e.to_string()))
        })
        .await?
    }

    /// Checks `password` against `stored`; re-hashes with current parameters when they changed.
    pub async fn verify(&self, password: &str, stored: &str) -> Result<PasswordCheck, HashError> {
        let password = Zeroizing::new(password.to_owned());
        let stored = stored.to_owned();
        self.run(move |argon, current| {
            let parsed = PasswordHash::new(&stored).map_err(|e| HashError::Argon2(e.to_string()))?;
            if argon.verify_password(password.as_bytes(), &parsed).is_err() {
                return Ok(PasswordCheck::Mismatch);
            }
            let same_cost = Params::try_from(&parsed)
                .map(|p| p.m_cost() == current.m_cost() && p.t_cost() == current.t_cost() && p.p_cost() == current.p_cost())
                .unwrap_or(false);
            if same_cost && parsed.algorithm.as_str() == "argon2id" {
                Ok(PasswordCheck::Match)
            } else {
                argon
                    .hash_password(password.as_bytes())
                    .map(|h| PasswordCheck::MatchRehashed(h.to_string()))
                    .map_err(|e| HashError::Argon2(e.to_string()))
            }
        })
        .await?
    }

    /// Spends the same effort as [`verify`](Self::verify) for an account that does not exist.
    pub async fn verify_decoy(&self, password: &str) {
        let decoy = self.decoy.as_str().to_owned();
        let _ = self.verify(password, &decoy).await;
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
    async fn verify_tells_right_from_wrong() {
        let h = cheap();
        let phc = h.hash("s3cret-enough").await.unwrap();
        assert_eq!(h.verify("s3cret-enough", &phc).await.unwrap(), PasswordCheck::Match);
        assert_eq!(h.verify("s3cret-enougH", &phc).await.unwrap(), PasswordCheck::Mismatch);
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
