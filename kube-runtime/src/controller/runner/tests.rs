//! The runner's behaviour under tokio's paused clock, with a fake cache:
//! per-key exclusion, the concurrency bound, backoff timings, collapsing,
//! error policies, panics and shutdown.

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

/// A runner over the fake cache, driven in a task of its own.
struct Running<E: std::error::Error + 'static> {
    stop: tokio::sync::oneshot::Sender<()>,
    items: tokio::task::JoinHandle<Vec<RunnerItem<ConfigMap, E>>>,
}

impl<E: std::error::Error + Send + 'static> Running<E> {
    /// Starts `run_workers` on `queue`, looking objects up in `cache`; it
    /// runs until [`Running::stop`].
    fn start<C, Rec, Fut, Pol>(
        queue: &WorkQueue<Key>,
        cache: &Cache,
        reconcile: Rec,
        error_policy: Pol,
        ctx: Arc<C>,
        config: RunnerConfig,
    ) -> Self
    where
        C: Send + Sync + 'static,
        Rec: Fn(Arc<ConfigMap>, Arc<C>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        Pol: Fn(Arc<ConfigMap>, &E, Arc<C>) -> Action + Send + Sync + 'static,
    {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let stream = run_workers(
            queue.clone(),
            cache.lookup(),
            reconcile,
            error_policy,
            ctx,
            config,
            shutdown,
        );
        Running {
            stop,
            items: tokio::spawn(stream.collect::<Vec<_>>()),
        }
    }

    /// Signals shutdown and returns every item the stream gave, once it
    /// has ended.
    async fn stop(self) -> Vec<RunnerItem<ConfigMap, E>> {
        self.stop.send(()).unwrap();
        self.items.await.unwrap()
    }

    /// Waits for the stream to end without signalling shutdown (the
    /// signal stays pending meanwhile), and returns its items.
    async fn ended(self) -> Vec<RunnerItem<ConfigMap, E>> {
        let Running { stop, items } = self;
        let items = items.await.unwrap();
        drop(stop);
        items
    }
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
    let run = Running::start(
        &queue,
        &cache,
        timed(ms(10)),
        default_error_policy,
        gauges.clone(),
        workers(8),
    );
    // 1,000 rapid adds per key, one every millisecond, while each
    // reconcile takes 10 ms.
    for _ in 0..1000 {
        for k in &keys {
            queue.add(k.clone());
        }
        tokio::time::sleep(ms(1)).await;
    }
    tokio::time::sleep(ms(100)).await;
    let items = run.stop().await;
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
    let run = Running::start(
        &queue,
        &cache,
        timed(ms(10)),
        default_error_policy,
        gauges.clone(),
        workers(7),
    );
    let start = Instant::now();
    while gauges.total.load(Ordering::SeqCst) < 500 || gauges.now.load(Ordering::SeqCst) > 0 {
        tokio::time::sleep(ms(1)).await;
    }
    // ceil(500 / 7) = 72 rounds of 10 ms.
    assert!(start.elapsed() <= ms(730), "{:?}", start.elapsed());
    let items = run.stop().await;
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
    let run = Running::start(
        &queue,
        &cache,
        reconcile,
        default_error_policy,
        Arc::new(()),
        workers(2),
    );
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
    let items = run.stop().await;

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
    let reconcile = {
        let seen = seen.clone();
        move |_obj: Arc<ConfigMap>, _ctx: Arc<()>| {
            seen.lock().push(Instant::now());
            async { Ok::<_, Failure>(Action::requeue(Duration::from_secs(60))) }
        }
    };
    let run = Running::start(
        &queue,
        &cache,
        reconcile,
        default_error_policy,
        Arc::new(()),
        workers(1),
    );
    let start = Instant::now();
    queue.add(a.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    queue.add(a); // a change, before the 60 s requeue
    tokio::time::sleep(Duration::from_secs(64)).await;
    run.stop().await;
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
    let reconcile = {
        let seen = seen.clone();
        move |_obj: Arc<ConfigMap>, _ctx: Arc<()>| {
            seen.lock().push(Instant::now());
            async { Err::<Action, _>(Failure(0)) }
        }
    };
    let policy =
        |_obj: Arc<ConfigMap>, _e: &Failure, _ctx: Arc<()>| Action::requeue(Duration::from_secs(2));
    let run = Running::start(&queue, &cache, reconcile, policy, Arc::new(()), workers(1));
    let start = Instant::now();
    queue.add(a.clone());
    queue.add(key("never-cached"));
    tokio::time::sleep(Duration::from_secs(5)).await;
    // One counted failure, then the object is deleted before its retry.
    queue.add_rate_limited(a.clone());
    assert_eq!(queue.num_requeues(&a), 1);
    cache.0.lock().clear();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let items = run.stop().await;
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
    let run = Running::start(
        &queue,
        &cache,
        reconcile,
        default_error_policy,
        Arc::new(()),
        workers(1),
    );
    queue.add(a);
    tokio::time::sleep(ms(100)).await;
    let items = run.stop().await;
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
    let run = Running::start(
        &queue,
        &cache,
        timed(Duration::from_secs(10)),
        default_error_policy,
        gauges.clone(),
        workers(1),
    );
    let start = Instant::now();
    queue.add(slow.clone());
    queue.add(waiting);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let items = run.stop().await;
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
    let run = Running::start(
        &queue,
        &cache,
        timed(Duration::from_secs(3600)),
        default_error_policy,
        gauges.clone(),
        workers(4).shutdown_timeout(Duration::from_secs(5)),
    );
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let items = run.stop().await;
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

#[tokio::test(start_paused = true)]
async fn the_stream_ends_when_the_queue_is_shut_down_elsewhere() {
    let cache = Cache::default();
    let queue = WorkQueue::default();
    queue.add(cache.insert("a"));
    let gauges = Arc::new(Gauges::default());
    let run = Running::start(
        &queue,
        &cache,
        timed(Duration::from_secs(2)),
        default_error_policy,
        gauges.clone(),
        workers(2),
    );
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    queue.shut_down();
    let items = run.ended().await;
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(2),
        "after the in-flight reconcile"
    );
    assert_eq!(items.len(), 1);
}
