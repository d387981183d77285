//! Rate limiters for retries: how long a failed key waits before its next
//! attempt.
//!
//! A controller that retries a failing object at once and forever burns the
//! API server and its own CPU on one broken object. client-go answers with
//! two limits, combined here the same way (the longer delay wins):
//!
//! 1. **Per-key exponential backoff** ([`ExponentialBackoff`]): the n-th
//!    consecutive failure of one key waits `base_delay × 2ⁿ`, capped at
//!    `max_delay` — by default 5 ms, 10 ms, 20 ms … up to 1000 s, client-go's
//!    `DefaultControllerRateLimiter` values. 5 ms makes a transient conflict
//!    (a 409 on update) retry almost at once; the doubling reaches a minute
//!    after about 14 failures and the cap keeps a permanently broken object
//!    to one attempt every ~17 minutes. [`RateLimiter::forget`] (called by
//!    the runner after a successful reconcile) starts the key over.
//! 2. **An overall token bucket** ([`TokenBucket`]): at most `qps` retries
//!    per second on average across all keys, with bursts of `burst` — by
//!    default 10 and 100, client-go's values. When many objects fail at once
//!    (the API server restarted, a webhook is down), their first retries are
//!    spread out at 10 per second instead of all landing together.
//!
//! Guarantees: memory is one counter per key that failed and was not
//! forgotten since, plus O(1) for the bucket; no delay computation
//! overflows (the exponent saturates, the result is capped); time is
//! `tokio::time`, so tests can pause and advance it.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// The settings of a [`RateLimiter`]; the defaults are client-go's.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimiterConfig {
    /// Delay after a key's first failure (default 5 ms).
    pub base_delay: Duration,
    /// Largest per-key delay (default 1000 s).
    pub max_delay: Duration,
    /// Retries per second across all keys, on average (default 10). Zero or
    /// less turns the bucket off.
    pub qps: f64,
    /// Retries allowed at once before `qps` applies (default 100).
    pub burst: u32,
}

impl Default for RateLimiterConfig {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_secs(1000),
            qps: 10.0,
            burst: 100,
        }
    }
}

/// Per-key exponential backoff: `base × 2^failures`, capped.
#[derive(Debug, Clone)]
pub struct ExponentialBackoff<T> {
    base: Duration,
    max: Duration,
    failures: HashMap<T, u32>,
}

impl<T: Hash + Eq + Clone> ExponentialBackoff<T> {
    /// A backoff starting at `base` and capped at `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: HashMap::new(),
        }
    }

    /// The delay for this failure of `key`, and counts it.
    pub fn when(&mut self, key: &T) -> Duration {
        let n = self.failures.entry(key.clone()).or_insert(0);
        let exp = *n;
        *n = n.saturating_add(1);
        let factor = 2f64.powi(exp.min(1024) as i32);
        let secs = self.base.as_secs_f64() * factor;
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// How many failures of `key` are counted.
    pub fn num_requeues(&self, key: &T) -> u32 {
        self.failures.get(key).copied().unwrap_or(0)
    }

    /// Starts `key` over.
    pub fn forget(&mut self, key: &T) {
        self.failures.remove(key);
    }

    /// How many keys have failures counted.
    pub fn len(&self) -> usize {
        self.failures.len()
    }

    /// True if no key has failures counted.
    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }
}

/// A token bucket: `burst` tokens, refilled at `qps` per second. Each call
/// to [`TokenBucket::when`] takes a token, going into debt if none is left,
/// and returns how long until that token exists (client-go's
/// `BucketRateLimiter`, i.e. `rate.Limiter.Reserve().Delay()`).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. `qps <= 0` (or not finite) means no limit.
    pub fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            qps,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// The delay before the next retry may run.
    pub fn when(&mut self) -> Duration {
        if !(self.qps.is_finite() && self.qps > 0.0) {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.qps;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.qps)
        }
    }
}

/// client-go's default controller rate limiter: the longer of a per-key
/// [`ExponentialBackoff`] and an overall [`TokenBucket`].
#[derive(Debug, Clone)]
pub struct RateLimiter<T> {
    backoff: ExponentialBackoff<T>,
    bucket: TokenBucket,
}

impl<T: Hash + Eq + Clone> Default for RateLimiter<T> {
    fn default() -> Self {
        Self::new(&RateLimiterConfig::default())
    }
}

impl<T: Hash + Eq + Clone> RateLimiter<T> {
    /// A limiter with these settings.
    pub fn new(config: &RateLimiterConfig) -> Self {
        Self {
            backoff: ExponentialBackoff::new(config.base_delay, config.max_delay),
            bucket: TokenBucket::new(config.qps, config.burst),
        }
    }

    /// How long `key` waits before its next attempt, after one more failure.
    pub fn when(&mut self, key: &T) -> Duration {
        let per_key = self.backoff.when(key);
        let overall = self.bucket.when();
        per_key.max(overall)
    }

    /// How many consecutive failures of `key` are counted.
    pub fn num_requeues(&self, key: &T) -> u32 {
        self.backoff.num_requeues(key)
    }

    /// Starts `key`'s backoff over (after a success).
    pub fn forget(&mut self, key: &T) {
        self.backoff.forget(key);
    }

    /// How many keys have failures counted (memory use).
    pub fn tracked_keys(&self) -> usize {
        self.backoff.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    #[test]
    fn per_key_backoff_doubles_caps_and_forgets() {
        let mut b = ExponentialBackoff::new(Duration::from_millis(5), Duration::from_secs(1000));
        let delays: Vec<f64> = (0..5).map(|_| ms(b.when(&"a"))).collect();
        assert_eq!(delays, [5.0, 10.0, 20.0, 40.0, 80.0]);
        assert_eq!(b.num_requeues(&"a"), 5);
        assert_eq!(ms(b.when(&"b")), 5.0, "keys are independent");
        for _ in 0..100_000 {
            b.when(&"a");
        }
        assert_eq!(
            b.when(&"a"),
            Duration::from_secs(1000),
            "capped, no overflow"
        );
        b.forget(&"a");
        assert_eq!(b.num_requeues(&"a"), 0);
        assert_eq!(ms(b.when(&"a")), 5.0);
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn backoff_reaches_the_cap_after_about_18_failures() {
        let mut b = ExponentialBackoff::new(Duration::from_millis(5), Duration::from_secs(1000));
        let first_capped = (0..40)
            .position(|_| b.when(&1) == Duration::from_secs(1000))
            .unwrap();
        // 5 ms × 2^18 ≈ 1311 s is the first delay past 1000 s.
        assert_eq!(first_capped, 18);
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_the_burst_then_spaces_at_qps() {
        let mut t = TokenBucket::new(10.0, 100);
        for i in 0..100 {
            assert_eq!(t.when(), Duration::ZERO, "token {i} is in the burst");
        }
        let next: Vec<f64> = (0..3).map(|_| ms(t.when()).round()).collect();
        assert_eq!(next, [100.0, 200.0, 300.0]);
        tokio::time::advance(Duration::from_secs(10)).await;
        // 10 s refill 100 tokens, minus the 3 borrowed.
        let free = (0..200).take_while(|_| t.when() == Duration::ZERO).count();
        assert_eq!(free, 97);
    }

    #[tokio::test(start_paused = true)]
    async fn combined_takes_the_longer_delay() {
        let mut r = RateLimiter::new(&RateLimiterConfig {
            qps: 1.0,
            burst: 2,
            ..RateLimiterConfig::default()
        });
        assert_eq!(ms(r.when(&"a")), 5.0);
        assert_eq!(ms(r.when(&"b")), 5.0);
        // The bucket is empty: the third retry waits a second even though
        // "c" never failed before.
        assert_eq!(ms(r.when(&"c")).round(), 1000.0);
        assert_eq!(r.num_requeues(&"c"), 1);
        r.forget(&"c");
        assert_eq!(r.tracked_keys(), 2);
        let mut unlimited = RateLimiter::new(&RateLimiterConfig {
            qps: 0.0,
            ..RateLimiterConfig::default()
        });
        for _ in 0..1000 {
            unlimited.when(&"x");
            unlimited.forget(&"x");
        }
        assert_eq!(ms(unlimited.when(&"x")), 5.0, "qps 0 turns the bucket off");
    }
}
