//! How a [`Controller`](super::Controller) runs: concurrency, debounce,
//! retry rate limits, and its two timeouts.
//!
//! - **Concurrency**: at most this many reconciles at once (default 16, see
//!   [`RunnerConfig::concurrency`](super::RunnerConfig::concurrency) for
//!   why); 0 means no limit, as in kube-rs.
//! - **Debounce**: wait this long after an object's last change before
//!   reconciling it (default 0, see [`WorkQueueConfig`]).
//! - **Cache sync timeout**: reconciles start only once every cache the
//!   controller reads (its kind, owned kinds, watched kinds) holds a
//!   complete list. If that takes longer than this (default 2 minutes, as
//!   controller-runtime), the controller gives up loudly: its stream yields
//!   one [`Error::CacheSyncTimeout`](super::Error::CacheSyncTimeout) naming
//!   the caches that were not ready and why, then ends.
//! - **Shutdown timeout**: after a graceful shutdown is requested, reconciles
//!   in flight may run this long (default 20 s) before they are cancelled.
//! - **Metrics** (off by default): controller-runtime's
//!   `controller_runtime_*` and `workqueue_*` series under the handle's
//!   name, see [`metrics`](crate::metrics). With no concurrency limit,
//!   `controller_runtime_max_concurrent_reconciles` reads 2^63 − 1.

use std::num::NonZeroUsize;
use std::time::Duration;

use super::{RateLimiterConfig, RunnerConfig, WorkQueueConfig};
use crate::metrics::ControllerMetrics;

/// A controller's settings; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Most reconciles at once; 0 for no limit (default 16).
    pub concurrency: usize,
    /// Quiet time after an object's last change before it is reconciled
    /// (default 0).
    pub debounce: Duration,
    /// How long to wait for every cache's first complete list before giving
    /// up (default 2 minutes).
    pub cache_sync_timeout: Duration,
    /// How long reconciles in flight may finish after a graceful shutdown
    /// is requested (default 20 s).
    pub shutdown_timeout: Duration,
    /// Retry backoff per object and overall (default: client-go's).
    pub rate_limiter: RateLimiterConfig,
    /// Where to record the controller's and its queue's metrics (default:
    /// nowhere).
    pub metrics: Option<ControllerMetrics>,
}

impl Default for Config {
    fn default() -> Self {
        let runner = RunnerConfig::default();
        Self {
            concurrency: runner.concurrency.get(),
            debounce: Duration::ZERO,
            cache_sync_timeout: Duration::from_secs(120),
            shutdown_timeout: runner.shutdown_timeout,
            rate_limiter: RateLimiterConfig::default(),
            metrics: None,
        }
    }
}

impl Config {
    /// Sets [`Config::concurrency`] (0: no limit).
    #[must_use]
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Sets [`Config::debounce`].
    #[must_use]
    pub fn debounce(mut self, debounce: Duration) -> Self {
        self.debounce = debounce;
        self
    }

    /// Sets [`Config::cache_sync_timeout`].
    #[must_use]
    pub fn cache_sync_timeout(mut self, timeout: Duration) -> Self {
        self.cache_sync_timeout = timeout;
        self
    }

    /// Sets [`Config::shutdown_timeout`].
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Sets [`Config::rate_limiter`].
    #[must_use]
    pub fn rate_limiter(mut self, rate_limiter: RateLimiterConfig) -> Self {
        self.rate_limiter = rate_limiter;
        self
    }

    /// Records the controller's `controller_runtime_*` metrics and its
    /// queue's `workqueue_*` into `metrics` (from
    /// [`Metrics::controller`](crate::metrics::Metrics::controller)).
    #[must_use]
    pub fn metrics(mut self, metrics: ControllerMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub(crate) fn runner(&self) -> RunnerConfig {
        let concurrency = NonZeroUsize::new(self.concurrency).unwrap_or(NonZeroUsize::MAX);
        RunnerConfig {
            concurrency,
            shutdown_timeout: self.shutdown_timeout,
            metrics: self.metrics.clone(),
        }
    }

    pub(crate) fn work_queue(&self) -> WorkQueueConfig {
        WorkQueueConfig {
            debounce: self.debounce,
            rate_limiter: self.rate_limiter.clone(),
            metrics: self.metrics.as_ref().map(ControllerMetrics::queue),
        }
    }
}
