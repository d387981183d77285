//! The runner's metrics: `controller_runtime_*` for one controller.
//!
//! A [`ControllerMetrics`] is bound to its controller's name once; the
//! runner records each reconcile's result and duration and the number of
//! busy workers through it, without label lookups.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use super::{ControllerLabels, Families, QueueMetrics, ResultLabels};
use crate::controller::Action;

/// How a reconcile ended, as controller-runtime's `result` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReconcileResult {
    /// `Ok(Action::AwaitChange)`.
    Success,
    /// `Ok(Action::Requeue(_))`.
    RequeueAfter,
    /// `Ok(Action::Backoff)`: a rate-limited requeue.
    Requeue,
    /// The reconcile (or its error policy) failed.
    Error,
    /// It panicked: an error, also counted as a panic.
    Panic,
}

impl ReconcileResult {
    /// The result of a successful reconcile that asked for `action`.
    pub(crate) fn of_success(action: Action) -> Self {
        match action {
            Action::AwaitChange => Self::Success,
            Action::Requeue(_) => Self::RequeueAfter,
            Action::Backoff => Self::Requeue,
        }
    }
}

struct Handles {
    name: String,
    success: Counter,
    error: Counter,
    requeue: Counter,
    requeue_after: Counter,
    errors: Counter,
    panics: Counter,
    time: Histogram,
    active_workers: Gauge,
    max_concurrent_reconciles: Gauge,
    queue: QueueMetrics,
}

/// The `controller_runtime_*` series of one controller (and its queue's
/// `workqueue_*`, see [`ControllerMetrics::queue`]); give it to
/// [`RunnerConfig::metrics`](crate::controller::RunnerConfig::metrics).
/// Cheap to clone; clones record into the same series. Two handles are
/// equal when they are clones of one another.
#[derive(Clone)]
pub struct ControllerMetrics {
    handles: Arc<Handles>,
}

impl fmt::Debug for ControllerMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControllerMetrics")
            .field("controller", &self.handles.name)
            .finish_non_exhaustive()
    }
}

impl PartialEq for ControllerMetrics {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.handles, &other.handles)
    }
}

impl Eq for ControllerMetrics {}

impl ControllerMetrics {
    pub(super) fn new(families: &Families, name: &str) -> Self {
        let labels = ControllerLabels {
            controller: name.into(),
        };
        let result = |result: &str| {
            families.reconcile_total.get_or_create_owned(&ResultLabels {
                controller: name.into(),
                result: result.into(),
            })
        };
        // Every series exists from the start (at 0), as in controller-runtime,
        // so that rate() and alerts see a defined value before the first event.
        Self {
            handles: Arc::new(Handles {
                name: name.into(),
                success: result("success"),
                error: result("error"),
                requeue: result("requeue"),
                requeue_after: result("requeue_after"),
                errors: families.reconcile_errors.get_or_create_owned(&labels),
                panics: families.reconcile_panics.get_or_create_owned(&labels),
                time: families.reconcile_time.get_or_create_owned(&labels),
                active_workers: families.active_workers.get_or_create_owned(&labels),
                max_concurrent_reconciles: families
                    .max_concurrent_reconciles
                    .get_or_create_owned(&labels),
                queue: QueueMetrics::new(families, name),
            }),
        }
    }

    /// The controller's name (its `controller` label).
    pub fn name(&self) -> &str {
        &self.handles.name
    }

    /// The handle of this controller's work queue (same name), for
    /// [`WorkQueueConfig::metrics`](crate::controller::WorkQueueConfig::metrics).
    pub fn queue(&self) -> QueueMetrics {
        self.handles.queue.clone()
    }

    /// Records one finished reconcile; `duration` is `None` when it is not
    /// known (the task was cancelled from outside).
    pub(crate) fn reconciled(&self, result: ReconcileResult, duration: Option<Duration>) {
        let h = &self.handles;
        match result {
            ReconcileResult::Success => h.success.inc(),
            ReconcileResult::RequeueAfter => h.requeue_after.inc(),
            ReconcileResult::Requeue => h.requeue.inc(),
            ReconcileResult::Error => {
                h.errors.inc();
                h.error.inc()
            }
            ReconcileResult::Panic => {
                h.panics.inc();
                h.errors.inc();
                h.error.inc()
            }
        };
        if let Some(d) = duration {
            h.time.observe(d.as_secs_f64());
        }
    }

    /// Sets how many reconciles run now.
    pub(crate) fn set_active_workers(&self, n: usize) {
        self.handles
            .active_workers
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Sets the concurrency bound.
    pub(crate) fn set_max_concurrent_reconciles(&self, n: usize) {
        self.handles
            .max_concurrent_reconciles
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}
