//! The errors a controller's result stream reports.
//!
//! None of them stops the controller: each says what happened to one
//! object (or one watch), and the controller has already scheduled what
//! comes next (a retry with backoff, or nothing for a deleted object).
//! Objects are named by their kind-erased [`ObjectRef`], so the error type
//! depends only on the reconciler's error type `E`.

use kube_client::DynamicObject;

use super::ObjectRef;

/// What went wrong for one item of a controller's result stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error<E: std::error::Error + 'static> {
    /// The reconciler returned an error for the object; the error policy's
    /// [`Action`](super::Action) was applied.
    #[error("reconciling {1} failed: {0}")]
    ReconcilerFailed(#[source] E, ObjectRef<DynamicObject>),
    /// The reconciler panicked; the object is retried with backoff.
    #[error("the reconciler panicked while reconciling {0}")]
    ReconcilerPanicked(ObjectRef<DynamicObject>),
    /// The object was queued but is no longer in the cache (it was deleted
    /// before its turn). Nothing to do; informational.
    #[error("{0} was queued but is no longer in the cache")]
    ObjectNotFound(ObjectRef<DynamicObject>),
    /// A watch feeding the queue failed; it retries by itself.
    #[error("a watch feeding the controller failed: {0}")]
    QueueError(#[source] kube_client::Error),
    /// The controller's caches did not all complete their first list within
    /// the cache sync timeout: nothing was reconciled, and this is the
    /// stream's last item.
    #[error("controller caches not ready after {waited:?}: {}", not_ready.join("; "))]
    CacheSyncTimeout {
        /// How long it waited.
        waited: std::time::Duration,
        /// Each cache that was not ready, with its last list/watch error.
        not_ready: Vec<String>,
    },
}
