//! How long a watcher waits between failed attempts.
//!
//! A watcher that cannot reach its API server must neither hammer it nor
//! stay away longer than needed once it is back. The policy:
//!
//! - **Exponential, capped.** After the n-th failure in a row the ceiling is
//!   `initial × 2ⁿ⁻¹`, never more than `max` (800 ms doubling to 30 s by
//!   default, client-go's reflector figures). The arithmetic saturates, so
//!   any `Duration`, even `Duration::MAX`, is a valid setting.
//! - **Jitter below the ceiling.** With `jitter` on, the delay is drawn
//!   uniformly from `[ceiling / 2, ceiling]` ("equal jitter"): watchers that
//!   failed together spread out, and no delay ever exceeds `max`. A server
//!   that stays down therefore sees each watcher at most once per `max / 2`,
//!   once per `¾ max` on average.
//! - **Reset on health.** The watcher resets the backoff as soon as a watch
//!   delivers an event or a bookmark again, or a list succeeds: the next
//!   failure starts from `initial` again. A server that
//!   restarts every minute thus costs each restart only the first steps.
//!
//! What counts as a failure is the watcher's business (see
//! [`crate::watcher`]): an expired resourceVersion (410) is not one, it
//! relists at once.

use std::time::Duration;

/// How a watcher waits after errors.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// The delay after the first failure.
    pub initial: Duration,
    /// The longest delay, jitter included.
    pub max: Duration,
    /// Randomise each delay within `[d / 2, d]` of the computed one `d`.
    pub jitter: bool,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(800),
            max: Duration::from_secs(30),
            jitter: true,
        }
    }
}

/// The running state of a backoff: how many failures in a row.
#[derive(Debug)]
pub(crate) struct Backoff {
    config: BackoffConfig,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(config: BackoffConfig) -> Self {
        Self {
            config,
            failures: 0,
        }
    }

    /// The ceiling for the next delay: `initial × 2^failures`, at most `max`.
    fn ceiling(&self) -> Duration {
        let initial = self.config.initial.min(self.config.max);
        2u32.checked_pow(self.failures)
            .and_then(|factor| initial.checked_mul(factor))
            .map_or(self.config.max, |d| d.min(self.config.max))
    }

    /// Records a failure now and returns how long to wait before the next
    /// attempt (never more than `max`).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        if !self.config.jitter {
            return ceiling;
        }
        let fraction = 0.5 + fastrand::f64() * 0.5;
        Duration::try_from_secs_f64(ceiling.as_secs_f64() * fraction)
            .map_or(ceiling, |d| d.min(ceiling))
    }

    /// The watcher is healthy again: the next failure starts from `initial`.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last reset.
    #[cfg(test)]
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_jitter() -> BackoffConfig {
        BackoffConfig {
            jitter: false,
            ..BackoffConfig::default()
        }
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new(no_jitter());
        let delays: Vec<u128> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
    }

    #[test]
    fn the_cap_holds_with_jitter_over_many_draws() {
        let config = BackoffConfig::default();
        let mut b = Backoff::new(config.clone());
        let mut capped = Vec::new();
        for i in 0..20_000 {
            let d = b.next_delay();
            assert!(d <= config.max, "draw {i}: {d:?} above the cap");
            assert!(d >= config.initial / 2, "draw {i}: {d:?} below initial/2");
            if i >= 6 {
                capped.push(d);
            }
        }
        // Once at the cap, delays spread over [max/2, max] (not a constant).
        let (lo, hi) = (
            capped.iter().min().copied().unwrap(),
            capped.iter().max().copied().unwrap(),
        );
        assert!(lo >= config.max / 2, "{lo:?}");
        assert!(
            lo < config.max * 6 / 10,
            "jitter reaches the lower half: {lo:?}"
        );
        assert!(hi > config.max * 9 / 10, "jitter reaches the top: {hi:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_stays_down_sees_about_one_attempt_per_cap() {
        // Ten minutes of failures, waiting out each delay on tokio's clock.
        let config = BackoffConfig::default();
        let mut b = Backoff::new(config.clone());
        let start = tokio::time::Instant::now();
        let mut attempts = 0u32;
        while start.elapsed() < Duration::from_secs(600) {
            attempts += 1;
            tokio::time::sleep(b.next_delay()).await;
        }
        // Six quick ramp-up steps, then at least max/2 (mean 3/4 max) apart.
        assert!(attempts <= 6 + 600 / 15, "{attempts} attempts in 10 min");
        assert!(attempts >= 600 / 30, "{attempts} attempts in 10 min");
    }

    #[tokio::test(start_paused = true)]
    async fn health_resets_to_the_first_step_at_once() {
        let mut b = Backoff::new(no_jitter());
        for _ in 0..10 {
            b.next_delay();
        }
        assert_eq!(b.failures(), 10);
        tokio::time::advance(Duration::from_secs(1)).await;
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(800));
        assert_eq!(b.next_delay(), Duration::from_millis(1600));
    }

    #[test]
    fn extreme_settings_saturate_instead_of_overflowing() {
        let mut b = Backoff::new(BackoffConfig {
            initial: Duration::MAX,
            max: Duration::MAX,
            jitter: true,
        });
        for _ in 0..100 {
            assert!(b.next_delay() >= Duration::MAX / 2);
        }
        let mut b = Backoff::new(BackoffConfig {
            initial: Duration::from_secs(60),
            max: Duration::from_secs(1),
            jitter: false,
        });
        assert_eq!(b.next_delay(), Duration::from_secs(1), "initial above max");
        let mut b = Backoff::new(BackoffConfig {
            initial: Duration::from_nanos(1),
            max: Duration::MAX,
            jitter: false,
        });
        let last = (0..200).map(|_| b.next_delay()).last().unwrap();
        assert_eq!(last, Duration::MAX, "2^n overflow saturates at max");
    }
}
