//! What a reconcile asks the controller to do next with its object.
//!
//! A reconcile (or, after a failure, the error policy) returns an
//! [`Action`]; the runner applies it to the object's key in the
//! [`WorkQueue`](super::WorkQueue):
//!
//! | Action | after `Ok` | after `Err` (from the error policy) |
//! |---|---|---|
//! | [`Action::requeue`]`(d)` | backoff reset, reconcile again in `d` | reconcile again in `d`; the backoff is not reset |
//! | [`Action::await_change`] | backoff reset, wait for the next change | wait for the next change; the backoff is not reset |
//! | [`Action::backoff`] | retry after the key's next backoff delay | retry after the key's next backoff delay |
//!
//! Whatever the action, a change to the object (or anything that triggers
//! it) still queues it: a requeue and a change collapse into one reconcile
//! at the earlier time.
//!
//! [`Action::backoff`] is the default policy for failures
//! ([`default_error_policy`]): the key waits 5 ms, 10 ms, 20 ms … up to
//! 1000 s, per key, and all retries together stay within 10 per second
//! after a burst of 100 (client-go's `DefaultControllerRateLimiter`; see
//! [`rate_limit`](super::rate_limit)). kube-rs has no per-key backoff: its
//! error policy must return a fixed requeue delay, so a broken object is
//! retried at that fixed rate forever, and many failing objects retry all
//! at once. Here the delay grows while the object keeps failing and resets
//! on its first success.

use std::sync::Arc;
use std::time::Duration;

/// What to do with an object after reconciling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Reconcile again after this delay, even if nothing changes (periodic
    /// resync, polling an external system).
    Requeue(Duration),
    /// Reconcile again only when the object (or a trigger) changes.
    AwaitChange,
    /// Retry after the key's next exponential backoff delay, rate limited
    /// across all keys.
    Backoff,
}

impl Action {
    /// Reconcile again after `delay`.
    pub fn requeue(delay: Duration) -> Self {
        Action::Requeue(delay)
    }

    /// Reconcile again only on a change.
    pub fn await_change() -> Self {
        Action::AwaitChange
    }

    /// Retry with the per-key backoff (the default after a failure).
    pub fn backoff() -> Self {
        Action::Backoff
    }

    /// The requeue delay, if this is a [`Action::Requeue`].
    pub fn requeue_after(&self) -> Option<Duration> {
        match self {
            Action::Requeue(d) => Some(*d),
            _ => None,
        }
    }
}

/// The error policy to use when a failure needs no special handling:
/// always [`Action::backoff`].
pub fn default_error_policy<K, E, C>(_obj: Arc<K>, _error: &E, _ctx: Arc<C>) -> Action {
    Action::backoff()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_and_accessors_agree() {
        assert_eq!(
            Action::requeue(Duration::from_secs(3)).requeue_after(),
            Some(Duration::from_secs(3))
        );
        assert_eq!(Action::await_change(), Action::AwaitChange);
        assert_eq!(Action::await_change().requeue_after(), None);
        assert_eq!(Action::backoff().requeue_after(), None);
        assert_eq!(
            default_error_policy(Arc::new(()), &"boom", Arc::new(())),
            Action::Backoff
        );
    }
}
