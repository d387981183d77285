//! The runner: a pool of workers that reconciles the keys of a work queue.
//!
//! [`run_workers`] takes keys from a [`WorkQueue`], looks each object up in
//! the cache, runs the user's `reconcile` on it and applies the returned
//! [`Action`] to the key. Guarantees:
//!
//! - **Never two reconciles of one object at once**: the queue hands a key
//!   out once until the runner marks it done, which it does only after the
//!   reconcile finished and its action was applied. Changes during a
//!   reconcile queue the key once more, for after it.
//! - **At most `concurrency` reconciles at once** (default 16, see
//!   [`RunnerConfig::concurrency`]). A key is taken from the queue only
//!   when a worker slot is free, so waiting keys stay deduplicated in the
//!   queue rather than piling up in the runner.
//! - **The latest state**: the object is read from the cache when its turn
//!   comes, not when it was queued. An object no longer in the cache (it
//!   was deleted meanwhile) is not reconciled: its key is done, its backoff
//!   forgotten, and the stream reports [`Error::ObjectNotFound`].
//! - **Actions** (see [`action`](super::action)): after `Ok`, `requeue(d)`
//!   resets the key's backoff and queues it in `d`, `await_change` resets
//!   it, `backoff` retries with it. After `Err(e)` the `error_policy`
//!   decides, and the backoff is never reset. A panicking reconcile is
//!   caught, reported as [`Error::ReconcilerPanicked`] and retried with
//!   backoff.
//! - **Graceful shutdown**: when the `shutdown` future completes the runner
//!   shuts the queue down (no new keys), lets the reconciles in flight
//!   finish and reports them, then ends the stream. Reconciles still
//!   running after [`RunnerConfig::shutdown_timeout`] are cancelled (their
//!   futures dropped) and the stream ends. The stream also ends when
//!   someone else shuts the queue down.
//!
//! - **Metrics** (off by default, [`RunnerConfig::metrics`]):
//!   controller-runtime's `controller_runtime_*` series — each reconcile's
//!   result and duration, the busy and maximum workers (see
//!   [`metrics`](crate::metrics)). Objects missing from the cache are not
//!   reconciles and are not counted.
//!
//! Reconciles run as tokio tasks (in parallel on a multi-threaded runtime),
//! owned by the stream: dropping the stream cancels them.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, Stream};
use kube_client::Resource;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use super::{Action, Error, ObjectRef, WorkQueue};
use crate::metrics::ControllerMetrics;
use crate::metrics::controller::ReconcileResult;

/// How a runner runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerConfig {
    /// Most reconciles at once (default 16).
    ///
    /// controller-runtime defaults to 1, which puts every object behind the
    /// slowest reconcile (one waiting 30 s on a timeout stalls all others);
    /// kube-rs defaults to no limit, which after a restart or a relist
    /// starts one reconcile per object at once — thousands of concurrent API
    /// calls at the moment the API server is most loaded. 16 keeps a few
    /// slow objects from stalling the rest while bounding the load a
    /// controller can put on the API server; raise it for controllers whose
    /// reconciles mostly wait on external systems.
    pub concurrency: NonZeroUsize,
    /// How long in-flight reconciles may run after shutdown is requested
    /// before they are cancelled (default 20 s: finished before Kubernetes'
    /// default 30 s termination grace period ends in a SIGKILL).
    pub shutdown_timeout: Duration,
    /// Where to record controller-runtime's `controller_runtime_*` metrics
    /// (default: nowhere).
    pub metrics: Option<ControllerMetrics>,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            concurrency: NonZeroUsize::new(16).expect("16 is not zero"),
            shutdown_timeout: Duration::from_secs(20),
            metrics: None,
        }
    }
}

impl RunnerConfig {
    /// Sets [`RunnerConfig::concurrency`].
    #[must_use]
    pub fn concurrency(mut self, concurrency: NonZeroUsize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Sets [`RunnerConfig::shutdown_timeout`].
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Records the runner's `controller_runtime_*` metrics into `metrics`.
    #[must_use]
    pub fn metrics(mut self, metrics: ControllerMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

/// One item of a controller's result stream: the object and the action
/// applied after a successful reconcile, or what went wrong.
pub type RunnerItem<K, E> = Result<(ObjectRef<K>, Action), Error<E>>;

/// How one reconcile ended.
enum Outcome<E> {
    Reconciled(Action),
    Failed(E, Action),
    Panicked,
}

enum Phase {
    Running,
    Draining(Instant),
    Done,
}

struct Workers<K: Resource, C, E, Look, Rec, Pol> {
    queue: WorkQueue<ObjectRef<K>>,
    lookup: Look,
    reconcile: Rec,
    error_policy: Arc<Pol>,
    ctx: Arc<C>,
    config: RunnerConfig,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Each task's outcome and how long the reconcile took.
    tasks: JoinSet<(Outcome<E>, Duration)>,
    /// The key each running task reconciles.
    in_flight: HashMap<tokio::task::Id, ObjectRef<K>>,
    phase: Phase,
}

/// Runs `reconcile` on the keys of `queue` until `shutdown` completes; see
/// the module docs for the guarantees.
///
/// - `lookup` reads an object from the cache (e.g. a reflector's store);
/// - `reconcile(object, ctx)` does the work and says what next;
/// - `error_policy(object, &error, ctx)` decides what follows a failure
///   ([`default_error_policy`](super::default_error_policy) backs off);
/// - the stream yields one item per finished reconcile (and per queued
///   object missing from the cache); it must be polled for anything to run.
pub fn run_workers<K, C, E, Look, Rec, Fut, Pol, Shutdown>(
    queue: WorkQueue<ObjectRef<K>>,
    lookup: Look,
    reconcile: Rec,
    error_policy: Pol,
    ctx: Arc<C>,
    config: RunnerConfig,
    shutdown: Shutdown,
) -> impl Stream<Item = RunnerItem<K, E>> + Send
where
    K: Resource + Send + Sync + 'static,
    K::DynamicType: Clone + Hash + Eq,
    C: Send + Sync + 'static,
    E: std::error::Error + Send + 'static,
    Look: Fn(&ObjectRef<K>) -> Option<Arc<K>> + Send + 'static,
    Rec: Fn(Arc<K>, Arc<C>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    Pol: Fn(Arc<K>, &E, Arc<C>) -> Action + Send + Sync + 'static,
    Shutdown: Future<Output = ()> + Send + 'static,
{
    if let Some(m) = &config.metrics {
        m.set_max_concurrent_reconciles(config.concurrency.get());
        m.set_active_workers(0);
    }
    let workers = Workers {
        queue,
        lookup,
        reconcile,
        error_policy: Arc::new(error_policy),
        ctx,
        config,
        shutdown: Box::pin(shutdown),
        tasks: JoinSet::new(),
        in_flight: HashMap::new(),
        phase: Phase::Running,
    };
    futures::stream::unfold(workers, |mut w| async move {
        let item = w.next_item().await?;
        Some((item, w))
    })
}

impl<K, C, E, Look, Rec, Fut, Pol> Workers<K, C, E, Look, Rec, Pol>
where
    K: Resource + Send + Sync + 'static,
    K::DynamicType: Clone + Hash + Eq,
    C: Send + Sync + 'static,
    E: std::error::Error + Send + 'static,
    Look: Fn(&ObjectRef<K>) -> Option<Arc<K>>,
    Rec: Fn(Arc<K>, Arc<C>) -> Fut,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    Pol: Fn(Arc<K>, &E, Arc<C>) -> Action + Send + Sync + 'static,
{
    async fn next_item(&mut self) -> Option<RunnerItem<K, E>> {
        loop {
            match self.phase {
                Phase::Running => {
                    let has_room = self.tasks.len() < self.config.concurrency.get();
                    tokio::select! {
                        biased;
                        () = &mut self.shutdown => {
                            tracing::info!(in_flight = self.tasks.len(), "controller shutting down");
                            self.queue.shut_down();
                            self.phase = Phase::Draining(Instant::now() + self.config.shutdown_timeout);
                        }
                        Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                            if let Some(item) = self.finish(joined) {
                                return Some(item);
                            }
                        }
                        key = self.queue.get(), if has_room => match key {
                            Some(key) => {
                                if let Some(item) = self.start(key) {
                                    return Some(item);
                                }
                            }
                            None => {
                                self.phase = Phase::Draining(Instant::now() + self.config.shutdown_timeout);
                            }
                        },
                    }
                }
                Phase::Draining(deadline) => {
                    if self.tasks.is_empty() {
                        self.phase = Phase::Done;
                        return None;
                    }
                    tokio::select! {
                        Some(joined) = self.tasks.join_next_with_id() => {
                            if let Some(item) = self.finish(joined) {
                                return Some(item);
                            }
                        }
                        () = tokio::time::sleep_until(deadline) => {
                            tracing::warn!(
                                cancelled = self.tasks.len(),
                                "reconciles still running at the shutdown timeout are cancelled"
                            );
                            self.tasks.abort_all();
                            for (_, key) in self.in_flight.drain() {
                                self.queue.done(&key);
                            }
                            self.record_active_workers(0);
                            self.phase = Phase::Done;
                            return None;
                        }
                    }
                }
                Phase::Done => return None,
            }
        }
    }

    /// Starts reconciling `key`; an item only if there is nothing to run.
    fn start(&mut self, key: ObjectRef<K>) -> Option<RunnerItem<K, E>> {
        let Some(obj) = (self.lookup)(&key) else {
            tracing::debug!(object = %key, "queued object is gone from the cache");
            self.queue.forget(&key);
            self.queue.done(&key);
            return Some(Err(Error::ObjectNotFound(key.erase())));
        };
        let span = tracing::info_span!("reconcile", object = %key);
        let run = (self.reconcile)(obj.clone(), self.ctx.clone());
        let (ctx, policy) = (self.ctx.clone(), self.error_policy.clone());
        let handle = self.tasks.spawn(
            async move {
                // The error policy is user code too: a panic in either is
                // caught and becomes a retry with backoff.
                let started = Instant::now();
                let attempt = async move {
                    match run.await {
                        Ok(action) => Outcome::Reconciled(action),
                        Err(e) => {
                            let action = policy(obj, &e, ctx);
                            Outcome::Failed(e, action)
                        }
                    }
                };
                let outcome = AssertUnwindSafe(attempt)
                    .catch_unwind()
                    .await
                    .unwrap_or(Outcome::Panicked);
                (outcome, started.elapsed())
            }
            .instrument(span),
        );
        self.in_flight.insert(handle.id(), key);
        self.record_active_workers(self.tasks.len());
        None
    }

    fn record_active_workers(&self, n: usize) {
        if let Some(m) = &self.config.metrics {
            m.set_active_workers(n);
        }
    }

    /// Applies a finished reconcile's action and reports it.
    fn finish(
        &mut self,
        joined: Result<(tokio::task::Id, (Outcome<E>, Duration)), tokio::task::JoinError>,
    ) -> Option<RunnerItem<K, E>> {
        let (id, outcome, took) = match joined {
            Ok((id, (outcome, took))) => (id, outcome, Some(took)),
            // Panics are caught inside the task; a task only fails here if
            // it was cancelled from outside (the runtime shutting down).
            Err(e) => (e.id(), Outcome::Panicked, None),
        };
        let key = self.in_flight.remove(&id)?;
        self.record_active_workers(self.tasks.len());
        if let Some(m) = &self.config.metrics {
            let result = match &outcome {
                Outcome::Reconciled(action) => ReconcileResult::of_success(*action),
                Outcome::Failed(..) => ReconcileResult::Error,
                Outcome::Panicked => ReconcileResult::Panic,
            };
            m.reconciled(result, took);
        }
        let item = match outcome {
            Outcome::Reconciled(action) => {
                self.apply(&key, action, true);
                Ok((key.clone(), action))
            }
            Outcome::Failed(e, action) => {
                tracing::debug!(object = %key, error = %e, ?action, "reconcile failed");
                self.apply(&key, action, false);
                Err(Error::ReconcilerFailed(e, key.erase()))
            }
            Outcome::Panicked => {
                tracing::error!(object = %key, "reconcile panicked");
                self.apply(&key, Action::Backoff, false);
                Err(Error::ReconcilerPanicked(key.erase()))
            }
        };
        self.queue.done(&key);
        Some(item)
    }

    fn apply(&self, key: &ObjectRef<K>, action: Action, succeeded: bool) {
        match action {
            Action::Requeue(delay) => {
                if succeeded {
                    self.queue.forget(key);
                }
                self.queue.add_after(key.clone(), delay);
            }
            Action::AwaitChange => {
                if succeeded {
                    self.queue.forget(key);
                }
            }
            Action::Backoff => self.queue.add_rate_limited(key.clone()),
        }
    }
}

#[cfg(test)]
mod tests;
