//! Backoff between failed list or watch attempts, with client-go's
//! reflector defaults: 800 ms, doubling up to 30 s, with jitter, and back to
//! the start once the watcher has been healthy for 2 minutes.

use std::time::Duration;

use backon::BackoffBuilder;
use tokio::time::Instant;

/// How a watcher waits after errors.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// After this long without an error, the next error starts from `initial` again.
    pub reset_after: Duration,
    /// Randomise delays (between 1× and 2× the computed one).
    pub jitter: bool,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(800),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(120),
            jitter: true,
        }
    }
}

/// The running state of a backoff.
pub(crate) struct Backoff {
    config: BackoffConfig,
    delays: Box<dyn Iterator<Item = Duration> + Send>,
    last_error: Option<Instant>,
}

impl Backoff {
    pub(crate) fn new(config: BackoffConfig) -> Self {
        let delays = Self::delays(&config);
        Self {
            config,
            delays,
            last_error: None,
        }
    }

    fn delays(config: &BackoffConfig) -> Box<dyn Iterator<Item = Duration> + Send> {
        let mut b = backon::ExponentialBuilder::default()
            .with_min_delay(config.initial)
            .with_max_delay(config.max)
            .with_factor(2.0)
            .without_max_times();
        if config.jitter {
            b = b.with_jitter();
        }
        Box::new(b.build())
    }

    /// The delay to wait after an error that happens now.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let now = Instant::now();
        if self
            .last_error
            .is_some_and(|t| now.duration_since(t) >= self.config.reset_after)
        {
            self.delays = Self::delays(&self.config);
        }
        self.last_error = Some(now);
        self.delays.next().unwrap_or(self.config.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn doubles_caps_and_resets_after_health() {
        let config = BackoffConfig {
            jitter: false,
            ..BackoffConfig::default()
        };
        let mut b = Backoff::new(config);
        let first: Vec<u64> = (0..8).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(first, [800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
        tokio::time::advance(Duration::from_secs(121)).await;
        assert_eq!(
            b.next_delay(),
            Duration::from_millis(800),
            "reset after 2 min without errors"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_stays_within_bounds() {
        let mut b = Backoff::new(BackoffConfig::default());
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(800) && d <= Duration::from_secs(60),
                "{d:?}"
            );
        }
    }
}
