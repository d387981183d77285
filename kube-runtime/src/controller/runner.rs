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
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            concurrency: NonZeroUsize::new(16).expect("16 is not zero"),
            shutdown_timeout: Duration::from_secs(20),
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
    tasks: JoinSet<Outcome<E>>,
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
                let attempt = async move {
                    match run.await {
                        Ok(action) => Outcome::Reconciled(action),
                        Err(e) => {
                            let action = policy(obj, &e, ctx);
                            Outcome::Failed(e, action)
                        }
                    }
                };
                AssertUnwindSafe(attempt)
                    .catch_unwind()
                    .await
                    .unwrap_or(Outcome::Panicked)
            }
            .instrument(span),
        );
        self.in_flight.insert(handle.id(), key);
        None
    }

    /// Applies a finished reconcile's action and reports it.
    fn finish(
        &mut self,
        joined: Result<(tokio::task::Id, Outcome<E>), tokio::task::JoinError>,
    ) -> Option<RunnerItem<K, E>> {
        let (id, outcome) = match joined {
            Ok(done) => done,
            // Panics are caught inside the task; a task only fails here if
            // it was cancelled from outside (the runtime shutting down).
            Err(e) => (e.id(), Outcome::Panicked),
        };
        let key = self.in_flight.remove(&id)?;
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
mod tests {
    use super::*;
    use crate::controller::{WorkQueueConfig, default_error_policy};
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use kube_client::ResourceExt;
    use parking_lot::Mutex;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, thiserror::Error)]
    #[error("failure number {0}")]
    struct Failure(usize);

    type Key = ObjectRef<ConfigMap>;

    /// A fake cache: a map from key to object.
    #[derive(Clone, Default)]
    struct Cache(Arc<Mutex<HashMap<Key, Arc<ConfigMap>>>>);

    impl Cache {
        fn insert(&self, name: &str) -> Key {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some("ns".into()),
                    ..ObjectMeta::default()
                },
                ..ConfigMap::default()
            };
            let key = ObjectRef::from_obj(&cm);
            self.0.lock().insert(key.clone(), Arc::new(cm));
            key
        }
        fn lookup(&self) -> impl Fn(&Key) -> Option<Arc<ConfigMap>> + Send + 'static {
            let map = self.0.clone();
            move |k| map.lock().get(k).cloned()
        }
    }

    fn key(name: &str) -> Key {
        ObjectRef::new(name).within("ns")
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn workers(n: usize) -> RunnerConfig {
        RunnerConfig::default().concurrency(NonZeroUsize::new(n).unwrap())
    }

    /// Collects a runner's stream in a task; returns the items when it ends.
    fn collect<S>(stream: S) -> tokio::task::JoinHandle<Vec<S::Item>>
    where
        S: Stream + Send + 'static,
        S::Item: Send,
    {
        tokio::spawn(stream.collect::<Vec<_>>())
    }

    fn shutdown_signal() -> (
        tokio::sync::oneshot::Sender<()>,
        impl Future<Output = ()> + Send + 'static,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        (tx, async move {
            let _ = rx.await;
        })
    }

    /// Per-key and overall in-reconcile counters, with their maxima.
    #[derive(Default)]
    struct Gauges {
        per_key: Mutex<HashMap<String, usize>>,
        max_per_key: AtomicUsize,
        now: AtomicUsize,
        max: AtomicUsize,
        total: AtomicUsize,
        by_key: Mutex<HashMap<String, usize>>,
    }

    impl Gauges {
        fn enter(&self, name: &str) {
            let n = {
                let mut m = self.per_key.lock();
                let n = m.entry(name.to_string()).or_default();
                *n += 1;
                *n
            };
            self.max_per_key.fetch_max(n, Ordering::SeqCst);
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.max.fetch_max(now, Ordering::SeqCst);
            self.total.fetch_add(1, Ordering::SeqCst);
            *self.by_key.lock().entry(name.to_string()).or_default() += 1;
        }
        fn leave(&self, name: &str) {
            *self.per_key.lock().get_mut(name).unwrap() -= 1;
            self.now.fetch_sub(1, Ordering::SeqCst);
        }
    }

    type BoxedReconcile = Pin<Box<dyn Future<Output = Result<Action, Failure>> + Send>>;

    /// A reconcile taking `took` and counting itself in the gauges.
    fn timed(
        took: Duration,
    ) -> impl Fn(Arc<ConfigMap>, Arc<Gauges>) -> BoxedReconcile + Send + 'static {
        move |obj, g| {
            Box::pin(async move {
                let name = obj.name_any().to_string();
                g.enter(&name);
                tokio::time::sleep(took).await;
                g.leave(&name);
                Ok(Action::await_change())
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_key_is_never_reconciled_twice_at_once() {
        let cache = Cache::default();
        let keys: Vec<Key> = ["a", "b", "c"].iter().map(|n| cache.insert(n)).collect();
        let queue = WorkQueue::default();
        let gauges = Arc::new(Gauges::default());
        let (stop, shutdown) = shutdown_signal();
        let run = collect(run_workers(
            queue.clone(),
            cache.lookup(),
            timed(ms(10)),
            default_error_policy,
            gauges.clone(),
            workers(8),
            shutdown,
        ));
        // 1,000 rapid adds per key, one every millisecond, while each
        // reconcile takes 10 ms.
        for _ in 0..1000 {
            for k in &keys {
                queue.add(k.clone());
            }
            tokio::time::sleep(ms(1)).await;
        }
        tokio::time::sleep(ms(100)).await;
        stop.send(()).unwrap();
        let items = run.await.unwrap();
        assert_eq!(gauges.max_per_key.load(Ordering::SeqCst), 1);
        let total = gauges.total.load(Ordering::SeqCst);
        // One reconcile per 10 ms per key: ~100 each, never 1,000.
        assert!((3 * 80..=3 * 110).contains(&total), "{total} reconciles");
        assert_eq!(items.len(), total);
        assert!(items.iter().all(Result::is_ok));
        for name in ["a", "b", "c"] {
            assert!(gauges.by_key.lock()[name] >= 80);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_bounded_and_every_key_is_reconciled() {
        let cache = Cache::default();
        let queue = WorkQueue::default();
        for i in 0..500 {
            queue.add(cache.insert(&format!("o{i}")));
        }
        let gauges = Arc::new(Gauges::default());
        let (stop, shutdown) = shutdown_signal();
        let run = collect(run_workers(
            queue.clone(),
            cache.lookup(),
            timed(ms(10)),
            default_error_policy,
            gauges.clone(),
            workers(7),
            shutdown,
        ));
        let start = Instant::now();
        while gauges.total.load(Ordering::SeqCst) < 500 || gauges.now.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(ms(1)).await;
        }
        // ceil(500 / 7) = 72 rounds of 10 ms.
        assert!(start.elapsed() <= ms(730), "{:?}", start.elapsed());
        stop.send(()).unwrap();
        let items = run.await.unwrap();
        assert_eq!(
            gauges.max.load(Ordering::SeqCst),
            7,
            "exactly 7 at once at the peak"
        );
        let by_key = gauges.by_key.lock();
        assert_eq!(by_key.len(), 500);
        assert!(by_key.values().all(|n| *n == 1));
        assert_eq!(items.len(), 500);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_per_key_and_reset_on_success() {
        let cache = Cache::default();
        let bad = cache.insert("bad");
        let good = cache.insert("good");
        let queue = WorkQueue::default();
        let attempts: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let (stop, shutdown) = shutdown_signal();
        let fails_left = Arc::new(AtomicUsize::new(5));
        let reconcile = {
            let (attempts, fails_left) = (attempts.clone(), fails_left.clone());
            move |obj: Arc<ConfigMap>, _ctx: Arc<()>| {
                let (attempts, fails_left) = (attempts.clone(), fails_left.clone());
                async move {
                    let name = obj.name_any().to_string();
                    attempts.lock().push((name.clone(), Instant::now()));
                    if name == "bad" {
                        let left = fails_left.load(Ordering::SeqCst);
                        if left > 0 {
                            fails_left.store(left - 1, Ordering::SeqCst);
                            return Err(Failure(6 - left));
                        }
                    }
                    Ok(Action::await_change())
                }
            }
        };
        let run = collect(run_workers(
            queue.clone(),
            cache.lookup(),
            reconcile,
            default_error_policy,
            Arc::new(()),
            workers(2),
            shutdown,
        ));
        let start = Instant::now();
        queue.add(bad.clone());
        // The other key keeps changing every 3 ms meanwhile.
        for _ in 0..60 {
            queue.add(good.clone());
            tokio::time::sleep(ms(3)).await;
        }
        assert_eq!(queue.num_requeues(&bad), 0, "the success reset the backoff");
        fails_left.store(1, Ordering::SeqCst);
        let again = Instant::now();
        queue.add(bad.clone());
        tokio::time::sleep(ms(50)).await;
        stop.send(()).unwrap();
        let items = run.await.unwrap();

        let attempts = attempts.lock();
        let bad_at: Vec<u128> = attempts
            .iter()
            .filter(|(n, t)| n == "bad" && *t < again)
            .map(|(_, t)| (*t - start).as_millis())
            .collect();
        // Attempts at 0, then 5, 10, 20, 40, 80 ms apart.
        assert_eq!(bad_at, [0, 5, 15, 35, 75, 155]);
        let retry: Vec<u128> = attempts
            .iter()
            .filter(|(n, t)| n == "bad" && *t >= again)
            .map(|(_, t)| (*t - again).as_millis())
            .collect();
        assert_eq!(
            retry,
            [0, 5],
            "after the reset the first retry waits 5 ms again"
        );
        let good_during_backoff = attempts
            .iter()
            .filter(|(n, t)| n == "good" && *t > start + ms(80) && *t < start + ms(155))
            .count();
        assert!(good_during_backoff >= 20, "{good_during_backoff}");
        let failures: Vec<String> = items
            .iter()
            .filter_map(|i| i.as_ref().err())
            .map(ToString::to_string)
            .collect();
        assert_eq!(failures.len(), 6);
        assert_eq!(
            failures[0],
            "reconciling ConfigMap.v1/bad.ns failed: failure number 1"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_requeue_and_a_change_collapse_into_one_reconcile() {
        let cache = Cache::default();
        let a = cache.insert("a");
        let queue = WorkQueue::default();
        let seen: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let (stop, shutdown) = shutdown_signal();
        let reconcile = {
            let seen = seen.clone();
            move |_obj: Arc<ConfigMap>, _ctx: Arc<()>| {
                seen.lock().push(Instant::now());
                async { Ok::<_, Failure>(Action::requeue(Duration::from_secs(60))) }
            }
        };
        let run = collect(run_workers(
            queue.clone(),
            cache.lookup(),
            reconcile,
            default_error_policy,
            Arc::new(()),
            workers(1),
            shutdown,
        ));
        let start = Instant::now();
        queue.add(a.clone());
        tokio::time::sleep(Duration::from_secs(1)).await;
        queue.add(a); // a change, before the 60 s requeue
        tokio::time::sleep(Duration::from_secs(64)).await;
        stop.send(()).unwrap();
        run.await.unwrap();
        let secs: Vec<u64> = seen.lock().iter().map(|t| (*t - start).as_secs()).collect();
        // Without collapsing there would also be one at 60 s.
        assert_eq!(secs, [0, 1, 61]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_error_policy_decides_and_missing_objects_are_skipped() {
        let cache = Cache::default();
        let a = cache.insert("a");
        let queue = WorkQueue::default();
        let seen: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let (stop, shutdown) = shutdown_signal();
        let reconcile = {
            let seen = seen.clone();
            move |_obj: Arc<ConfigMap>, _ctx: Arc<()>| {
                seen.lock().push(Instant::now());
                async { Err::<Action, _>(Failure(0)) }
            }
        };
        let policy = |_obj: Arc<ConfigMap>, _e: &Failure, _ctx: Arc<()>| {
            Action::requeue(Duration::from_secs(2))
        };
        let run = collect(run_workers(
            queue.clone(),
            cache.lookup(),
            reconcile,
            policy,
            Arc::new(()),
            workers(1),
            shutdown,
        ));
        let start = Instant::now();
        queue.add(a.clone());
        queue.add(key("never-cached"));
        tokio::time::sleep(Duration::from_secs(5)).await;
        // One counted failure, then the object is deleted before its retry.
        queue.add_rate_limited(a.clone());
        assert_eq!(queue.num_requeues(&a), 1);
        cache.0.lock().clear();
        tokio::time::sleep(Duration::from_secs(5)).await;
        stop.send(()).unwrap();
        let items = run.await.unwrap();
        let secs: Vec<u64> = seen.lock().iter().map(|t| (*t - start).as_secs()).collect();
        assert_eq!(secs, [0, 2, 4], "requeued every 2 s until deleted at 5 s");
        let not_found: Vec<String> = items
            .iter()
            .filter_map(|i| match i {
                Err(Error::ObjectNotFound(r)) => Some(r.name.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(not_found, ["never-cached", "a"]);
        assert_eq!(
            queue.num_requeues(&a),
            0,
            "a deleted object's backoff is forgotten"
        );
        assert_eq!(queue.tracked_entries(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_reconcile_is_reported_and_retried_with_backoff() {
        let cache = Cache::default();
        let a = cache.insert("a");
        let queue = WorkQueue::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let (stop, shutdown) = shutdown_signal();
        let reconcile = {
            let calls = calls.clone();
            move |_obj: Arc<ConfigMap>, _ctx: Arc<()>| {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        panic!("reconcile bug");
                    }
                    Ok::<_, Failure>(Action::await_change())
                }
            }
        };
        let run = collect(run_workers(
            queue.clone(),
            cache.lookup(),
            reconcile,
            default_error_policy,
            Arc::new(()),
            workers(1),
            shutdown,
        ));
        queue.add(a);
        tokio::time::sleep(ms(100)).await;
        stop.send(()).unwrap();
        let items = run.await.unwrap();
        assert!(matches!(items[0], Err(Error::ReconcilerPanicked(_))));
        assert!(items[1].is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_lets_in_flight_reconciles_finish_then_ends() {
        let cache = Cache::default();
        let slow = cache.insert("slow");
        let waiting = cache.insert("waiting");
        let queue = WorkQueue::default();
        let gauges = Arc::new(Gauges::default());
        let (stop, shutdown) = shutdown_signal();
        let run = collect(run_workers(
            queue.clone(),
            cache.lookup(),
            timed(Duration::from_secs(10)),
            default_error_policy,
            gauges.clone(),
            workers(1),
            shutdown,
        ));
        let start = Instant::now();
        queue.add(slow.clone());
        queue.add(waiting);
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.send(()).unwrap();
        let items = run.await.unwrap();
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(10),
            "ended when the slow one finished"
        );
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].as_ref().unwrap().0, slow);
        assert_eq!(
            gauges.by_key.lock().get("waiting"),
            None,
            "no new key after shutdown"
        );
        assert!(queue.is_shutting_down());
        assert_eq!(queue.processing_len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn reconciles_past_the_shutdown_timeout_are_cancelled() {
        let cache = Cache::default();
        let queue = WorkQueue::new(WorkQueueConfig::default());
        queue.add(cache.insert("stuck"));
        let gauges = Arc::new(Gauges::default());
        let (stop, shutdown) = shutdown_signal();
        let run = collect(run_workers(
            queue.clone(),
            cache.lookup(),
            timed(Duration::from_secs(3600)),
            default_error_policy,
            gauges.clone(),
            workers(4).shutdown_timeout(Duration::from_secs(5)),
            shutdown,
        ));
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.send(()).unwrap();
        let items = run.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(6));
        assert!(items.is_empty());
        assert_eq!(gauges.total.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_secs(7200)).await;
        assert_eq!(
            gauges.now.load(Ordering::SeqCst),
            1,
            "the reconcile was dropped, never finished"
        );
        assert_eq!(queue.processing_len(), 0, "its key was released");
    }
}
