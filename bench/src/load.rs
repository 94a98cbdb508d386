//! A closed-loop load runner: `concurrency` workers repeat one operation for
//! a fixed time; each operation's latency is recorded. A worker refused with
//! `503` waits what `Retry-After` says before it tries again, as a browser's
//! user told "try again in a moment" would.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why an operation did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The server refused it for now (`503`), saying how long to wait.
    Refused {
        /// `Retry-After`.
        retry_after: Duration,
    },
    /// Anything else: counted as an error.
    Error(String),
}

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Self::Error(e)
    }
}

impl From<&str> for Failure {
    fn from(e: &str) -> Self {
        Self::Error(e.to_owned())
    }
}

/// What a load run measured.
#[derive(Debug, Default)]
pub struct Stats {
    /// Successful operations.
    pub ok: u64,
    /// Operations refused with `503` and `Retry-After` (overload).
    pub refused: u64,
    /// Failed operations.
    pub errors: u64,
    /// The first failure, to show.
    pub first_error: Option<String>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Latencies of the successful operations, sorted.
    latencies: Vec<Duration>,
}

impl Stats {
    /// Successful operations per second.
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// Refused operations' part of all attempts.
    pub fn refused_share(&self) -> f64 {
        self.refused as f64 / (self.ok + self.refused + self.errors).max(1) as f64
    }

    /// The `p`th percentile latency in milliseconds (nearest rank).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1].as_secs_f64() * 1000.0
    }
}

/// Runs `op` from `concurrency` workers for `duration`.
pub async fn run_load<F, Fut>(concurrency: usize, duration: Duration, op: F) -> Stats
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send + 'static,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let op = op.clone();
        workers.push(tokio::spawn(async move {
            let mut local = Stats::default();
            while Instant::now() < deadline {
                let t = Instant::now();
                match op().await {
                    Ok(()) => {
                        local.ok += 1;
                        local.latencies.push(t.elapsed());
                    }
                    Err(Failure::Refused { retry_after }) => {
                        local.refused += 1;
                        tokio::time::sleep(retry_after.min(deadline.saturating_duration_since(Instant::now()))).await;
                    }
                    Err(Failure::Error(e)) => {
                        local.errors += 1;
                        local.first_error.get_or_insert(e);
                    }
                }
            }
            local
        }));
    }
    let mut all = Stats::default();
    for w in workers {
        if let Ok(s) = w.await {
            all.ok += s.ok;
            all.refused += s.refused;
            all.errors += s.errors;
            if all.first_error.is_none() {
                all.first_error = s.first_error;
            }
            all.latencies.extend(s.latencies);
        }
    }
    all.elapsed = start.elapsed();
    all.latencies.sort_unstable();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let s =
            Stats { ok: 4, latencies: (1..=100).map(Duration::from_millis).collect(), elapsed: Duration::from_secs(2), ..Stats::default() };
        assert_eq!(s.percentile_ms(50.0), 50.0);
        assert_eq!(s.percentile_ms(99.0), 99.0);
        assert_eq!(s.percentile_ms(100.0), 100.0);
        assert_eq!(s.per_second(), 2.0);
        assert_eq!(Stats::default().percentile_ms(50.0), 0.0);
    }
}
