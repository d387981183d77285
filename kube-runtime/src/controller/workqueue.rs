//! The work queue: which keys to reconcile next, each at most once at a time.
//!
//! Triggers (watch events, requeues, retries) *add* keys; workers *get* a
//! key, reconcile it and mark it *done*. The queue keeps client-go's
//! workqueue guarantees:
//!
//! - **Dedup.** A key added while already queued is queued once: a burst of
//!   a thousand changes to one object costs one reconcile, which reads the
//!   latest version.
//! - **One at a time per key.** A key handed out by [`WorkQueue::get`] is
//!   *processing* until [`WorkQueue::done`]; it is never handed out again
//!   meanwhile. An add during processing is remembered, and the key is
//!   queued again when `done` is called — the change is not lost, and it is
//!   reconciled after the reconcile in progress, never beside it.
//! - **Delayed adds collapse to the earliest.** [`WorkQueue::add_after`]
//!   makes a key ready later. A key has at most one due time: adding it
//!   again (now or delayed) keeps whichever is earlier. A requeue in an
//!   hour and a change now make one reconcile, now.
//! - **Debounce** (off by default, [`WorkQueueConfig::debounce`]), kube-rs's
//!   semantics: every add is pushed `debounce` further into the future, and
//!   an add that arrives before the key's pending due time moves that time
//!   to `debounce` after the new add. A key changing many times within the
//!   window becomes ready once, `debounce` after its *last* change. An add
//!   that is due after the key's pending time (a requeue in an hour while a
//!   change is pending) is absorbed by the earlier one.
//! - **Retries** go through a [`RateLimiter`] (per-key exponential backoff
//!   combined with an overall token bucket, client-go's defaults):
//!   [`WorkQueue::add_rate_limited`] delays the key by its next backoff,
//!   [`WorkQueue::forget`] resets it after a success.
//! - **Bounded memory.** The queue holds at most one entry per distinct key
//!   (plus one backoff counter per key that failed), however many adds are
//!   made.
//! - **Shutdown.** After [`WorkQueue::shut_down`], `get` returns `None` and
//!   adds are ignored; [`WorkQueue::shut_down_with_drain`] also waits until
//!   every key handed out is done.
//!
//! - **Metrics** (off by default, [`WorkQueueConfig::metrics`]): client-go's
//!   `workqueue_*` series (see [`metrics`](crate::metrics)). With metrics
//!   off the queue does no extra work; with them on, a few counter
//!   increments and clock reads per key, and the depth and in-flight ages
//!   are read from the queue itself when scraped.
//!
//! Ready keys are handed out in the order they became ready. The queue is a
//! cheap-to-clone handle (`Arc` inside); its lock is a plain mutex held only
//! for a few map operations, never across an `.await`. Waiting in `get` is a
//! [`tokio::sync::Notify`] plus a sleep until the next due time — no polling.
//! Time is `tokio::time`, so tests can pause and advance it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::rate_limit::{RateLimiter, RateLimiterConfig};
use crate::metrics::QueueMetrics;
use crate::metrics::workqueue::{QueueProbe, QueueSample};

/// The settings of a [`WorkQueue`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkQueueConfig {
    /// Wait this long after a key's last add before it is ready (default 0:
    /// no debounce). Useful when an object is written several times in quick
    /// succession (e.g. by the controller's own status updates).
    pub debounce: Duration,
    /// The retry rate limiter (default: client-go's).
    pub rate_limiter: RateLimiterConfig,
    /// Where to record client-go's `workqueue_*` metrics (default: nowhere).
    pub metrics: Option<QueueMetrics>,
}

impl WorkQueueConfig {
    /// Records the queue's `workqueue_*` metrics into `metrics`.
    #[must_use]
    pub fn metrics(mut self, metrics: QueueMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

/// When a queued key is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// Ready now; in `ready` unless the key is processing.
    Now,
    /// Ready at a time; in `timers` under `(at, seq)`.
    At(Instant, u64),
}

#[derive(Debug)]
struct Entry {
    processing: bool,
    due: Option<Due>,
    /// When the key last became due (for the queue-duration metric).
    due_since: Option<Instant>,
    /// When and under which sequence number a worker took it (metrics
    /// only; the same pair is in `State::in_flight`).
    taken: Option<(Instant, u64)>,
}

impl Entry {
    fn new() -> Self {
        Self {
            processing: false,
            due: None,
            due_since: None,
            taken: None,
        }
    }
}

struct State<T> {
    entries: HashMap<T, Entry>,
    /// Keys with `due == Now` and not processing, in readiness order.
    ready: VecDeque<T>,
    /// Keys with `due == At`, by time (the sequence number breaks ties).
    timers: BTreeMap<(Instant, u64), T>,
    next_seq: u64,
    processing: usize,
    shutting_down: bool,
    limiter: RateLimiter<T>,
    /// Keys due and not handed out: client-go's depth (its "dirty" set
    /// minus the processing keys not due again).
    due_now: usize,
    /// When each key being processed was taken (metrics only).
    in_flight: BTreeSet<(Instant, u64)>,
    metrics: Option<QueueMetrics>,
}

struct Inner<T> {
    state: Mutex<State<T>>,
    debounce: Duration,
    /// Wakes `get` when a key may have become ready or the next due time
    /// moved earlier.
    changed: Notify,
    /// Wakes `shut_down_with_drain` when a key is done.
    drained: Notify,
}

/// A queue of keys to reconcile; see the module docs.
pub struct WorkQueue<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for WorkQueue<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for WorkQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.inner.state.lock();
        f.debug_struct("WorkQueue")
            .field("ready", &s.ready.len())
            .field("delayed", &s.timers.len())
            .field("processing", &s.processing)
            .field("shutting_down", &s.shutting_down)
            .finish()
    }
}

impl<T: Hash + Eq + Clone + Send + 'static> Default for WorkQueue<T> {
    fn default() -> Self {
        Self::new(WorkQueueConfig::default())
    }
}

impl<T: Hash + Eq + Clone> State<T> {
    /// Hands out the next ready key, if any, marking it processing.
    fn take_ready(&mut self, now: Instant) -> Option<T> {
        let key = self.ready.pop_front()?;
        let seq = self.next_seq;
        self.next_seq += 1;
        let e = self
            .entries
            .get_mut(&key)
            .expect("a ready key has an entry");
        e.processing = true;
        e.due = None;
        let due_since = e.due_since.take();
        self.processing += 1;
        self.due_now -= 1;
        if let Some(m) = &self.metrics {
            m.handed_out(due_since.map_or(Duration::ZERO, |t| now.saturating_duration_since(t)));
            e.taken = Some((now, seq));
            self.in_flight.insert((now, seq));
        }
        Some(key)
    }

    /// The depth and in-flight ages now, for the metrics.
    fn sample(&mut self, now: Instant) -> QueueSample {
        self.promote_due(now);
        let unfinished = self
            .in_flight
            .iter()
            .map(|(taken, _)| now.saturating_duration_since(*taken))
            .sum();
        let longest = self.in_flight.first().map_or(Duration::ZERO, |(taken, _)| {
            now.saturating_duration_since(*taken)
        });
        QueueSample {
            depth: self.due_now,
            unfinished,
            longest,
        }
    }

    /// Moves every key due by `now` to ready.
    fn promote_due(&mut self, now: Instant) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let at = entry.key().0;
            let key = entry.remove();
            let e = self
                .entries
                .get_mut(&key)
                .expect("a timer always has an entry");
            e.due = Some(Due::Now);
            e.due_since = Some(at);
            self.due_now += 1;
            if let Some(m) = &self.metrics {
                m.added();
            }
            if !e.processing {
                self.ready.push_back(key);
            }
        }
    }

    /// Makes `key` due at `at` (now if `at <= now`), replacing its timer.
    fn set_due(&mut self, key: T, at: Instant, now: Instant) {
        let entry = self.entries.entry(key.clone()).or_insert_with(Entry::new);
        if let Some(Due::At(old, seq)) = entry.due {
            self.timers.remove(&(old, seq));
        }
        if at <= now {
            // `add_after` never reschedules a key already due now.
            debug_assert_ne!(entry.due, Some(Due::Now));
            entry.due = Some(Due::Now);
            entry.due_since = Some(now);
            self.due_now += 1;
            if let Some(m) = &self.metrics {
                m.added();
            }
            if !entry.processing {
                self.ready.push_back(key);
            }
        } else {
            let seq = self.next_seq;
            self.next_seq += 1;
            entry.due = Some(Due::At(at, seq));
            self.timers.insert((at, seq), key);
        }
    }
}

impl<T: Hash + Eq + Clone + Send + 'static> QueueProbe for Inner<T> {
    fn sample(&self) -> QueueSample {
        self.state.lock().sample(Instant::now())
    }
}

impl<T: Hash + Eq + Clone + Send + 'static> WorkQueue<T> {
    /// An empty queue.
    pub fn new(config: WorkQueueConfig) -> Self {
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                entries: HashMap::new(),
                ready: VecDeque::new(),
                timers: BTreeMap::new(),
                next_seq: 0,
                processing: 0,
                shutting_down: false,
                limiter: RateLimiter::new(&config.rate_limiter),
                due_now: 0,
                in_flight: BTreeSet::new(),
                metrics: config.metrics.clone(),
            }),
            debounce: config.debounce,
            changed: Notify::new(),
            drained: Notify::new(),
        });
        if let Some(metrics) = &config.metrics {
            let probe: std::sync::Weak<dyn QueueProbe> = Arc::downgrade(&inner) as _;
            metrics.register_probe(probe);
        }
        Self { inner }
    }

    /// Queues `key` now (after the debounce, if any).
    pub fn add(&self, key: T) {
        self.add_at(key, Duration::ZERO, false);
    }

    /// Queues `key` to be ready after `delay` (plus the debounce, if any);
    /// if it is already due earlier, nothing changes. Counts as a retry in
    /// the metrics, as client-go's `AddAfter` does.
    pub fn add_after(&self, key: T, delay: Duration) {
        self.add_at(key, delay, true);
    }

    /// Queues `key` after `delay`; `retry` says whether it counts as one.
    fn add_at(&self, key: T, delay: Duration, retry: bool) {
        let now = Instant::now();
        let wanted = now.checked_add(delay).unwrap_or_else(far_future);
        let at = wanted
            .checked_add(self.inner.debounce)
            .unwrap_or_else(far_future);
        let mut s = self.inner.state.lock();
        if s.shutting_down {
            return;
        }
        if retry && let Some(m) = &s.metrics {
            m.retried();
        }
        let current = s.entries.get(&key).and_then(|e| e.due);
        let reschedule = match current {
            None => true,
            Some(Due::Now) => false,
            // kube-rs's rule: a pending time no earlier than the new add's
            // own time is replaced (by that time plus the debounce).
            Some(Due::At(pending, _)) => pending >= wanted,
        };
        if reschedule {
            s.set_due(key, at, now);
            drop(s);
            self.inner.changed.notify_one();
        }
    }

    /// Queues `key` after its next retry delay (see [`RateLimiter::when`]).
    pub fn add_rate_limited(&self, key: T) {
        let delay = self.inner.state.lock().limiter.when(&key);
        self.add_after(key, delay);
    }

    /// Resets `key`'s retry backoff (after a success). Does not dequeue it.
    pub fn forget(&self, key: &T) {
        self.inner.state.lock().limiter.forget(key);
    }

    /// How many consecutive retries of `key` the rate limiter counts.
    pub fn num_requeues(&self, key: &T) -> u32 {
        self.inner.state.lock().limiter.num_requeues(key)
    }

    /// The next ready key, marked processing until [`WorkQueue::done`];
    /// waits until one is ready. `None` once the queue is shut down.
    ///
    /// Cancel-safe: a `get` dropped before it returns has taken no key.
    pub async fn get(&self) -> Option<T> {
        loop {
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let next_due = {
                let mut s = self.inner.state.lock();
                if s.shutting_down {
                    return None;
                }
                let now = Instant::now();
                s.promote_due(now);
                if let Some(key) = s.take_ready(now) {
                    let more = !s.ready.is_empty();
                    drop(s);
                    if more {
                        // Let another waiting worker take the next one.
                        self.inner.changed.notify_one();
                    }
                    return Some(key);
                }
                s.timers.first_key_value().map(|((at, _), _)| *at)
            };
            match next_due {
                Some(at) => {
                    tokio::select! {
                        _ = &mut changed => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    /// Marks `key` finished. If it was added while processing, it is queued
    /// again now (or stays due at its later time). A key that is not
    /// processing is left as it is.
    pub fn done(&self, key: &T) {
        let mut s = self.inner.state.lock();
        let Some(e) = s.entries.get_mut(key) else {
            return;
        };
        if !e.processing {
            return;
        }
        e.processing = false;
        let due = e.due;
        let taken = e.taken.take();
        s.processing -= 1;
        if let (Some(m), Some((at, seq))) = (&s.metrics, taken) {
            m.finished(Instant::now().saturating_duration_since(at));
            s.in_flight.remove(&(at, seq));
        }
        match due {
            None => {
                s.entries.remove(key);
            }
            Some(Due::Now) => {
                s.ready.push_back(key.clone());
            }
            Some(Due::At(..)) => {}
        }
        drop(s);
        self.inner.changed.notify_one();
        self.inner.drained.notify_waiters();
    }

    /// Stops handing out keys: `get` returns `None` and adds are ignored
    /// from now on. Keys being processed may still be marked done.
    pub fn shut_down(&self) {
        self.inner.state.lock().shutting_down = true;
        // Every waiting `get` must see it, and a `get` about to wait finds
        // the flag under the lock.
        self.inner.changed.notify_waiters();
        self.inner.changed.notify_one();
    }

    /// [`WorkQueue::shut_down`], then waits until every key handed out is
    /// done.
    pub async fn shut_down_with_drain(&self) {
        self.shut_down();
        loop {
            let drained = self.inner.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.inner.state.lock().processing == 0 {
                return;
            }
            drained.await;
        }
    }

    /// True once [`WorkQueue::shut_down`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.state.lock().shutting_down
    }

    /// How many keys are ready and waiting for a worker (client-go's `Len`,
    /// the queue depth).
    pub fn len(&self) -> usize {
        let mut s = self.inner.state.lock();
        s.promote_due(Instant::now());
        s.ready.len()
    }

    /// True if no key is ready.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many keys wait for a due time (delayed adds, retries).
    pub fn delayed_len(&self) -> usize {
        let mut s = self.inner.state.lock();
        s.promote_due(Instant::now());
        s.timers.len()
    }

    /// How many keys are handed out and not yet done.
    pub fn processing_len(&self) -> usize {
        self.inner.state.lock().processing
    }

    /// The largest of the internal structures, in entries: what the queue's
    /// memory grows with. For tests and metrics.
    pub fn tracked_entries(&self) -> usize {
        let s = self.inner.state.lock();
        s.entries
            .len()
            .max(s.ready.len())
            .max(s.timers.len())
            .max(s.limiter.tracked_keys())
    }
}

/// A time far enough away to mean "never" (about 30 years), for delays too
/// large to add to `now`.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365 * 30)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The next key if one is ready now, without waiting.
    fn try_get(q: &WorkQueue<&'static str>) -> Option<&'static str> {
        futures::FutureExt::now_or_never(q.get()).flatten()
    }

    #[tokio::test(start_paused = true)]
    async fn adds_of_a_queued_key_collapse() {
        let q = WorkQueue::default();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await, Some("a"));
        assert_eq!(q.get().await, Some("b"));
        assert_eq!(try_get(&q), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_is_never_handed_out_twice_and_requeues_on_done() {
        let q = WorkQueue::default();
        q.add("a");
        assert_eq!(q.get().await, Some("a"));
        q.add("a");
        q.add("a");
        assert_eq!(try_get(&q), None, "a is processing");
        assert_eq!(q.len(), 0);
        q.done(&"a");
        assert_eq!(q.len(), 1, "the adds during processing became one");
        assert_eq!(q.get().await, Some("a"));
        q.done(&"a");
        assert_eq!(try_get(&q), None);
        assert_eq!(q.tracked_entries(), 0, "a finished key leaves nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_adds_collapse_to_the_earliest() {
        let q = WorkQueue::default();
        q.add_after("a", ms(100));
        q.add_after("a", ms(50));
        q.add_after("a", ms(300));
        assert_eq!(q.delayed_len(), 1);
        let start = Instant::now();
        assert_eq!(q.get().await, Some("a"));
        assert_eq!(start.elapsed(), ms(50));
        q.done(&"a");
        tokio::time::advance(ms(1000)).await;
        assert_eq!(try_get(&q), None, "the later adds were absorbed");

        // A requeue in an hour, then a change now: one key, now.
        q.add_after("b", Duration::from_secs(3600));
        q.add("b");
        assert_eq!(q.get().await, Some("b"));
        assert_eq!(start.elapsed(), ms(1050));
        q.done(&"b");
        assert_eq!(q.delayed_len(), 0);
        // And the other way round: ready now absorbs a later requeue.
        q.add("c");
        q.add_after("c", ms(10));
        assert_eq!(q.get().await, Some("c"));
        q.done(&"c");
        tokio::time::advance(ms(20)).await;
        assert_eq!(try_get(&q), None);
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_add_while_processing_waits_for_done() {
        let q = WorkQueue::default();
        q.add("a");
        assert_eq!(q.get().await, Some("a"));
        q.add_after("a", ms(10));
        tokio::time::advance(ms(20)).await;
        assert_eq!(try_get(&q), None, "due, but still processing");
        q.done(&"a");
        assert_eq!(try_get(&q), Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn get_waits_for_the_next_due_time_without_polling() {
        let q = WorkQueue::<&str>::default();
        let q2 = q.clone();
        let waiter = tokio::spawn(async move {
            let start = Instant::now();
            let key = q2.get().await;
            (key, start.elapsed())
        });
        tokio::time::sleep(ms(5)).await;
        q.add_after("late", ms(500));
        q.add_after("early", ms(20));
        let (key, waited) = waiter.await.unwrap();
        assert_eq!(key, Some("early"));
        assert_eq!(waited, ms(25));
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_waits_after_the_last_add() {
        let q = WorkQueue::new(WorkQueueConfig {
            debounce: ms(100),
            ..WorkQueueConfig::default()
        });
        let start = Instant::now();
        for _ in 0..5 {
            q.add("a");
            tokio::time::sleep(ms(50)).await;
        }
        // Last add at 200 ms: ready at 300 ms, once.
        assert_eq!(try_get(&q), None);
        assert_eq!(q.get().await, Some("a"));
        assert_eq!(start.elapsed(), ms(300));
        q.done(&"a");
        // A later requeue does not postpone a pending change...
        q.add("b");
        q.add_after("b", Duration::from_secs(60));
        assert_eq!(q.get().await, Some("b"));
        assert_eq!(start.elapsed(), ms(400));
        q.done(&"b");
        // ...but a change moves a pending requeue earlier.
        q.add_after("c", Duration::from_secs(60));
        q.add("c");
        assert_eq!(q.get().await, Some("c"));
        assert_eq!(start.elapsed(), ms(500));
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_adds_back_off_per_key_until_forgotten() {
        let q = WorkQueue::default();
        let mut delays = vec![];
        for _ in 0..5 {
            let start = Instant::now();
            q.add_rate_limited("a");
            assert_eq!(q.get().await, Some("a"));
            delays.push(start.elapsed().as_millis());
            q.done(&"a");
        }
        assert_eq!(delays, [5, 10, 20, 40, 80]);
        assert_eq!(q.num_requeues(&"a"), 5);
        q.forget(&"a");
        assert_eq!(q.num_requeues(&"a"), 0);
        let start = Instant::now();
        q.add_rate_limited("a");
        q.get().await;
        assert_eq!(start.elapsed(), ms(5));
    }

    #[tokio::test(start_paused = true)]
    async fn memory_is_bounded_by_distinct_keys_not_adds() {
        let q = WorkQueue::default();
        let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        let mut max_tracked = 0;
        for i in 0..1_000_000usize {
            let key = keys[i % 10].clone();
            match i % 4 {
                0 => q.add(key),
                1 => q.add_after(key, ms((i % 1000) as u64)),
                2 => q.add_rate_limited(key),
                _ => q.add_after(key, Duration::from_secs(3600)),
            }
            if i % 10_000 == 0 {
                max_tracked = max_tracked.max(q.tracked_entries());
            }
        }
        max_tracked = max_tracked.max(q.tracked_entries());
        assert!(max_tracked <= 10, "{max_tracked} entries for 10 keys");
        // Every key had an add due within a second.
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(q.len(), 10);
        let mut got = vec![];
        while let Some(k) = futures::FutureExt::now_or_never(q.get()).flatten() {
            got.push(k);
        }
        got.sort();
        assert_eq!(got, keys, "each key handed out once");
        assert!(q.tracked_entries() <= 10);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_get_and_drain_waits_for_in_flight() {
        let q = WorkQueue::default();
        q.add("a");
        q.add("b");
        assert_eq!(q.get().await, Some("a"));
        let waiting = {
            let q = q.clone();
            tokio::spawn(async move {
                q.done(&"b"); // not processing: ignored
                let _ = q.get().await; // takes "b"
                q.get().await // waits: nothing else is ready
            })
        };
        tokio::time::sleep(ms(1)).await;
        let drain = {
            let q = q.clone();
            tokio::spawn(async move {
                q.shut_down_with_drain().await;
                Instant::now()
            })
        };
        assert_eq!(waiting.await.unwrap(), None, "a waiting get ends");
        tokio::time::sleep(ms(100)).await;
        assert!(!drain.is_finished(), "a and b are still processing");
        q.add("c");
        assert_eq!(q.len(), 0, "adds after shutdown are ignored");
        q.done(&"a");
        tokio::time::sleep(ms(1)).await;
        assert!(!drain.is_finished());
        let finished_at = Instant::now();
        q.done(&"b");
        assert_eq!(drain.await.unwrap(), finished_at);
        assert_eq!(q.get().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn many_workers_share_the_ready_keys() {
        let q = WorkQueue::default();
        let handed = Arc::new(Mutex::new(Vec::new()));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (q, handed) = (q.clone(), handed.clone());
                tokio::spawn(async move {
                    while let Some(k) = q.get().await {
                        handed.lock().push(k);
                        tokio::time::sleep(ms(10)).await;
                        q.done(&k);
                    }
                })
            })
            .collect();
        tokio::time::sleep(ms(1)).await;
        for k in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            q.add(k);
        }
        tokio::time::sleep(ms(25)).await;
        assert_eq!(handed.lock().len(), 8, "4 workers, 10 ms each: two rounds");
        q.shut_down();
        for w in workers {
            w.await.unwrap();
        }
    }
}
