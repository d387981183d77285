//! A client-side token bucket, as client-go's `flowcontrol` rate limiter:
//! up to `burst` requests at once, refilled at `qps` per second. Waiting
//! requests sleep; none is refused.

use std::time::Duration;

use tokio::time::Instant;

/// A token bucket shared by all clones of a client.
#[derive(Debug)]
pub struct RateLimit {
    qps: f64,
    burst: f64,
    state: tokio::sync::Mutex<(f64, Instant)>,
}

impl RateLimit {
    /// `qps` tokens per second, at most `burst` saved up (both at least 1).
    pub fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            qps: qps.max(f64::MIN_POSITIVE),
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
            let wait = Duration::from_secs_f64((1.0 - *tokens) / self.qps);
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
}
