//! Which failed requests are tried again, and after how long.
//!
//! Retried: answers 429 (TooManyRequests), 503 (ServiceUnavailable) and 504
//! (GatewayTimeout), and connections that could not be made (the request
//! never reached the server, so even a POST is safe to resend). The delay is
//! the server's `Retry-After` (seconds, capped at `max_delay`) when given,
//! else capped exponential backoff with jitter (backon).

use std::time::Duration;

use backon::BackoffBuilder;

/// How many times, and how patiently, to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: usize,
    /// First backoff delay.
    pub min_delay: Duration,
    /// Longest delay, for backoff and for `Retry-After` alike.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    pub(crate) fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        backon::ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
            .build()
    }

    /// The delay before the next attempt, or `None` to give up.
    pub(crate) fn next_delay(
        &self,
        backoff: &mut impl Iterator<Item = Duration>,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let computed = backoff.next()?;
        Some(retry_after.map_or(computed, |d| d.min(self.max_delay)))
    }
}

/// Whether an HTTP status is worth retrying.
pub(crate) fn retryable_status(code: u16) -> bool {
    matches!(code, 429 | 503 | 504)
}

/// `Retry-After: <seconds>` (the HTTP-date form is not used by kube-apiserver).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_wins_but_is_capped() {
        let policy = RetryPolicy {
            max_retries: 2,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_secs(5),
        };
        let mut backoff = policy.backoff();
        assert_eq!(
            policy.next_delay(&mut backoff, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            policy.next_delay(&mut backoff, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            policy.next_delay(&mut backoff, None),
            None,
            "only max_retries retries"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 10,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let delays: Vec<Duration> = policy.backoff().collect();
        assert_eq!(delays.len(), 10);
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(2)),
            "{delays:?}"
        );
        assert!(delays[5] > delays[0], "{delays:?}");
    }

    #[test]
    fn statuses() {
        assert!(retryable_status(429) && retryable_status(503) && retryable_status(504));
        assert!(!retryable_status(500) && !retryable_status(409));
    }
}
