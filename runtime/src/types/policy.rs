//! Step policies: retries with exponential backoff and jitter, and timeouts.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How a step (`#[step(retry(...))]`) or a compensation (`compensate_retry(...)`) is retried.
///
/// Attempt `n` (from 1) that fails with a transient error is followed, after a delay, by
/// attempt `n + 1`, up to `1 + retries` attempts in all. The delay before retry `n` is
/// `backoff * 2^(n-1)`, capped at `max_backoff`; with jitter (the default) it is drawn
/// uniformly from the upper half of that, `[d/2, d]`, so that many runs retrying together
/// spread out.
///
/// ```
/// # use hookflow_runtime::RetryPolicy;
/// # use std::time::Duration;
/// let policy = RetryPolicy::new(3, Duration::from_millis(100)).without_jitter();
/// assert_eq!(policy.delay(1), Duration::from_millis(100));
/// assert_eq!(policy.delay(2), Duration::from_millis(200));
/// assert_eq!(policy.delay(3), Duration::from_millis(400));
/// assert_eq!(policy.max_attempts(), 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    retries: u32,
    backoff: Duration,
    max_backoff: Duration,
    jitter: bool,
}

impl RetryPolicy {
    /// Up to `retries` retries, the first after `backoff`; at most 30 s between attempts;
    /// with jitter.
    pub const fn new(retries: u32, backoff: Duration) -> Self {
        RetryPolicy {
            retries,
            backoff,
            max_backoff: Duration::from_secs(30),
            jitter: true,
        }
    }

    /// Caps the delay between two attempts.
    #[must_use]
    pub const fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// Uses the exact exponential delays, without jitter.
    #[must_use]
    pub const fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// How many attempts at most: the first and the retries.
    pub const fn max_attempts(&self) -> u32 {
        self.retries.saturating_add(1)
    }

    /// The number of retries after the first attempt.
    pub const fn retries(&self) -> u32 {
        self.retries
    }

    /// The delay before retry `n` (from 1), before jitter.
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// The delay before retry `n`, with jitter if the policy has it.
    pub(crate) fn jittered_delay(&self, retry: u32) -> Duration {
        let delay = self.delay(retry);
        if !self.jitter || delay.is_zero() {
            return delay;
        }
        let half = delay / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(random_u64() % nanos.saturating_add(1))
    }
}

/// A random number for jitter, from the standard library's randomly keyed hasher.
fn random_u64() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// The error of a step that ran past its `timeout`: the step's future was dropped.
///
/// A step with `#[step(timeout = "...")]` needs its error type to implement
/// `From<StepTimeout>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct StepTimeout {
    pub(crate) step: &'static str,
    pub(crate) after: Duration,
}

impl StepTimeout {
    /// The step.
    pub fn step(&self) -> &'static str {
        self.step
    }
    /// The timeout it ran past.
    pub fn after(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for StepTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step `{}` timed out after {:?}", self.step, self.after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap() {
        let p = RetryPolicy::new(10, Duration::from_millis(100))
            .max_backoff(Duration::from_millis(500))
            .without_jitter();
        let delays: Vec<u128> = (1..=5).map(|n| p.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        assert_eq!(p.delay(200), Duration::from_millis(500), "no overflow");
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let p = RetryPolicy::new(3, Duration::from_millis(100));
        for _ in 0..1000 {
            let d = p.jittered_delay(2);
            assert!(
                d >= Duration::from_millis(100) && d <= Duration::from_millis(200),
                "{d:?}"
            );
        }
    }
}
