//! Fan-out: every subscriber of an informer gets every change, at its own
//! pace, in bounded memory.
//!
//! A new subscriber first gets an `Added` for every object already in the
//! store (as client-go does for a handler added to a running informer), then
//! every change after those, with nothing missed or doubled in between.
//! For a [compact](crate::store#compact-stores) store those `Added`s wait
//! in the queue encoded (the store's bytes, shared) and are decoded when
//! taken.
//! The informer's task applies each change to the store, then pushes it into
//! one bounded queue per subscriber and wakes that subscriber. Pushing never
//! waits: a subscriber whose queue is full loses its oldest change and its
//! next read starts with a [`WatchEvent::Desynced`] marker (as the
//! reflector's own queue does, see [`crate::queue`]). So a subscriber that
//! stops reading costs at most its queue's capacity in `Arc`s, and never
//! delays the store or the other subscribers. After a `Desynced`, treat the
//! store as the truth (e.g. a controller reconciles every cached object).

use std::fmt::Debug;
use std::sync::{Arc, Weak};

use futures::Stream;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::queue::{EventQueue, Taken, WatchEvent};
use crate::store::Store;

use super::Informer;

/// One subscriber's queue and its wake-up.
pub(crate) struct SubscriberQueue<K> {
    queue: EventQueue<K>,
    notify: Notify,
}

/// The informer's side of the fan-out: the live subscribers.
pub(crate) struct Hub<K> {
    subscribers: Mutex<Vec<Weak<SubscriberQueue<K>>>>,
    last_error: Mutex<Option<Arc<kube_client::Error>>>,
    /// Held by the informer while it applies one change to the store and
    /// hands it out, and by a new subscriber while it copies the store:
    /// so each object is either in the copy or in a later change, never
    /// both, never neither.
    apply: Mutex<()>,
}

impl<K> Hub<K> {
    pub(crate) fn new() -> Self {
        Self {
            subscribers: Mutex::new(Vec::new()),
            last_error: Mutex::new(None),
            apply: Mutex::new(()),
        }
    }

    /// Runs `f` (one change applied and broadcast) exclusive of subscribing.
    pub(crate) fn applying<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.apply.lock();
        f()
    }

    /// Hands `event` to every live subscriber (never waits).
    pub(crate) fn broadcast(&self, event: WatchEvent<K>) {
        if let WatchEvent::Error(e) = &event {
            *self.last_error.lock() = Some(e.clone());
        }
        let mut subscribers = self.subscribers.lock();
        subscribers.retain(|weak| match weak.upgrade() {
            Some(sub) => {
                sub.queue.push(event.clone());
                sub.notify.notify_one();
                true
            }
            None => false,
        });
    }

    /// A new subscriber whose queue starts with an `Added` for each object
    /// in `store` now.
    pub(crate) fn add(&self, capacity: usize, store: &Store<K>) -> Arc<SubscriberQueue<K>> {
        let sub = Arc::new(SubscriberQueue {
            queue: EventQueue::new(capacity),
            notify: Notify::new(),
        });
        let _guard = self.apply.lock();
        // A compact store's objects are queued encoded, decoded when taken.
        if store.queue_added(&sub.queue) {
            sub.notify.notify_one();
        }
        self.subscribers.lock().push(Arc::downgrade(&sub));
        sub
    }

    pub(crate) fn live(&self) -> usize {
        self.subscribers
            .lock()
            .iter()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    pub(crate) fn last_error(&self) -> Option<Arc<kube_client::Error>> {
        self.last_error.lock().clone()
    }

    pub(crate) fn clear_error(&self) {
        *self.last_error.lock() = None;
    }
}

/// One subscriber's view of an informer: an `Added` for each object cached
/// when it subscribed, then every change, in order, with [`WatchEvent::Desynced`] where
/// its bounded queue overflowed (see the module docs). Keeps the informer
/// running while it exists.
pub struct Subscription<K> {
    queue: Arc<SubscriberQueue<K>>,
    informer: Informer<K>,
}

impl<K> Debug for Subscription<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("queued", &self.queue.queue.len())
            .field("informer", &self.informer)
            .finish()
    }
}

impl<K> Subscription<K> {
    pub(crate) fn new(queue: Arc<SubscriberQueue<K>>, informer: Informer<K>) -> Self {
        Self { queue, informer }
    }

    /// Waits until at least one change is queued, then takes all of them
    /// (oldest first, after a `Desynced` marker if some were lost).
    pub async fn recv(&mut self) -> Vec<WatchEvent<K>> {
        loop {
            let batch = self.queue.queue.drain();
            if !batch.is_empty() {
                return batch;
            }
            // A push between the drain and here leaves a permit, so this
            // returns at once rather than missing it.
            self.queue.notify.notified().await;
        }
    }

    /// Takes whatever is queued now, without waiting.
    pub fn try_recv(&mut self) -> Vec<WatchEvent<K>> {
        self.queue.queue.drain()
    }

    /// As [`recv`](Self::recv), the events as they are queued: those of a
    /// compact store's objects may be encoded (for a queue of the same
    /// store's events to take over without decoding them).
    pub(crate) async fn recv_queued(&mut self) -> Taken<K> {
        loop {
            let taken = self.queue.queue.take();
            if !taken.is_empty() {
                return taken;
            }
            self.queue.notify.notified().await;
        }
    }

    /// As [`try_recv`](Self::try_recv), the events as they are queued.
    pub(crate) fn try_recv_queued(&mut self) -> Taken<K> {
        self.queue.queue.take()
    }

    /// Queued events whose object is still encoded.
    #[cfg(test)]
    pub(crate) fn queued_encoded(&self) -> usize {
        self.queue.queue.encoded()
    }

    /// Changes waiting to be taken.
    pub fn queued(&self) -> usize {
        self.queue.queue.len()
    }

    /// The informer's store.
    pub fn store(&self) -> Store<K> {
        self.informer.store()
    }

    /// The informer this subscription is on.
    pub fn informer(&self) -> &Informer<K> {
        &self.informer
    }

    /// The changes one at a time, as an endless stream.
    pub fn into_stream(self) -> impl Stream<Item = WatchEvent<K>> + Send
    where
        K: Send + Sync + 'static,
    {
        futures::stream::unfold(
            (self, std::collections::VecDeque::new()),
            |(mut sub, mut pending)| async move {
                if pending.is_empty() {
                    pending.extend(sub.recv().await);
                }
                let next = pending.pop_front()?;
                Some((next, (sub, pending)))
            },
        )
    }
}
