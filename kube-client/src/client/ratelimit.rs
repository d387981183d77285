//! A client-side token bucket, as client-go's `flowcontrol` rate limiter:
//! up to `burst` requests at once, refilled at `qps` per second. Waiting
//! requests sleep; none is refused.
//!
//! The settings are checked when the bucket is made ([`RateLimit::try_new`]):
//! `qps` must be positive and finite and no slower than one request per
//! [`RateLimit::LONGEST_WAIT`], `burst` at least 1, so that no wait is ever
//! computed from zero, NaN or infinity.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};

/// A token bucket shared by all clones of a client.
#[derive(Debug)]
pub struct RateLimit {
    qps: f64,
    burst: f64,
    state: tokio::sync::Mutex<(f64, Instant)>,
}

impl RateLimit {
    /// The longest wait for one token the bucket accepts: one day, i.e. a
    /// `qps` of at least 1/86400.
    pub const LONGEST_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

    /// `qps` tokens per second, at most `burst` saved up; an [`Error::Config`]
    /// naming the setting when `qps` is not a positive finite number of at
    /// least one per [`Self::LONGEST_WAIT`], or `burst` is 0.
    pub fn try_new(qps: f64, burst: u32) -> Result<Self> {
        let slowest = 1.0 / Self::LONGEST_WAIT.as_secs_f64();
        if !qps.is_finite() || qps < slowest {
            return Err(Error::Config(format!(
                "rate_limit: qps must be a finite number of requests per second of at least \
                 {slowest:e} (one a day), got {qps}"
            )));
        }
        if burst == 0 {
            return Err(Error::Config(
                "rate_limit: burst must be at least 1, got 0".into(),
            ));
        }
        Ok(Self::checked(qps, burst))
    }

    /// Like [`Self::try_new`], but out-of-range settings are brought into
    /// range instead of refused: `qps` to between one a day and
    /// `f64::MAX` (NaN counts as the slowest), `burst` to at least 1.
    pub fn new(qps: f64, burst: u32) -> Self {
        let slowest = 1.0 / Self::LONGEST_WAIT.as_secs_f64();
        let qps = if qps.is_nan() {
            slowest
        } else {
            qps.clamp(slowest, f64::MAX)
        };
        Self::checked(qps, burst.max(1))
    }

    /// The bucket, for settings already in range.
    fn checked(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst);
        Self {
            qps,
            burst,
            state: tokio::sync::Mutex::new((burst, Instant::now())),
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        let mut state = self.state.lock().await;
        let (tokens, last) = &mut *state;
        let now = Instant::now();
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.qps).min(self.burst);
        *last = now;
        if *tokens < 1.0 {
            let wait = Duration::try_from_secs_f64((1.0 - *tokens) / self.qps)
                .unwrap_or(Self::LONGEST_WAIT)
                .min(Self::LONGEST_WAIT);
            tokio::time::sleep(wait).await;
            *tokens = 1.0;
            *last = Instant::now();
        }
        *tokens -= 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_qps() {
        let limit = RateLimit::new(10.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            limit.acquire().await;
        }
        assert!(
            start.elapsed() < Duration::from_millis(1),
            "the burst is free"
        );
        for _ in 0..5 {
            limit.acquire().await;
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(490) && took <= Duration::from_millis(520),
            "{took:?}"
        );
    }

    #[test]
    fn out_of_range_settings_are_config_errors_naming_the_setting() {
        for qps in [
            0.0,
            -1.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-300,
            f64::MIN_POSITIVE,
        ] {
            match RateLimit::try_new(qps, 5) {
                Err(e @ Error::Config(_)) => {
                    assert!(e.to_string().contains("rate_limit: qps"), "{e}")
                }
                other => panic!("qps {qps}: {other:?}"),
            }
        }
        match RateLimit::try_new(1.0, 0) {
            Err(e @ Error::Config(_)) => assert!(e.to_string().contains("burst"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(RateLimit::try_new(f64::MAX, u32::MAX).is_ok());
        assert!(RateLimit::try_new(1.0 / 86_400.0, 1).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn clamped_settings_never_panic() {
        for qps in [0.0, -5.0, f64::NAN, 1e-300, f64::INFINITY, f64::MAX] {
            let limit = RateLimit::new(qps, 0);
            limit.acquire().await;
            // The second token needs a wait of at most LONGEST_WAIT (the
            // paused clock skips it).
            let start = Instant::now();
            limit.acquire().await;
            assert!(start.elapsed() <= RateLimit::LONGEST_WAIT, "{qps}");
        }
    }
}
