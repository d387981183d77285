//! How a store's changes wait for their consumers.
//!
//! A standalone reflector's store has a queue of its own
//! ([`Store::events`]); a shared informer's has none, and each of its
//! subscribers — and each reflector made with
//! [`Reflector::from_informer`](crate::Reflector::from_informer) — has a
//! queue fed with the informer's changes (see [`crate::queue`]).
//!
//! Guarantees: every queue of a [compact](super#compact-stores) store's
//! events holds their objects encoded where it can — the store's own bytes,
//! shared, for the version the store holds; an encoding made for the
//! occasion for any other (a deleted object, a version already replaced) —
//! and decodes each with the store's codec when drained; an object that
//! cannot be encoded, an error and a `Desynced` marker are held as they
//! are. A default store's events hold its `Arc`s.

use kube_client::Resource;

use super::Store;
use super::compact::Packed;
use crate::queue::{Change, EventQueue, Queued, WatchEvent};

impl<K> Store<K> {
    /// Takes the queued events (see [`crate::queue`]). Always empty for
    /// the store of a shared informer: subscribe to the informer instead.
    pub fn events(&self) -> Vec<WatchEvent<K>> {
        self.inner
            .queue
            .as_ref()
            .map(EventQueue::drain)
            .unwrap_or_default()
    }

    /// As [`Store::events`], handing the events out one by one: for a
    /// [compact](super#compact-stores) store each is decoded only when the
    /// iterator reaches it, so a consumer that handles each and drops it
    /// never holds a large batch (e.g. the initial list's `Added`s) decoded
    /// at once. For a default store it is `events()` as an iterator.
    pub fn events_iter(&self) -> crate::queue::DrainedEvents<'_, K> {
        match &self.inner.queue {
            Some(queue) => queue.drain_iter(),
            None => crate::queue::DrainedEvents::empty(),
        }
    }

    /// Events waiting in the queue (0 for a shared informer's store).
    pub fn queued_events(&self) -> usize {
        self.inner.queue.as_ref().map_or(0, EventQueue::len)
    }

    pub(crate) fn push_event(&self, event: WatchEvent<K>) {
        if let Some(queue) = &self.inner.queue {
            queue.push(event);
        }
    }

    /// Queues an `Added` for every object cached now (a new subscriber's
    /// first events): for a compact store, held encoded and decoded when
    /// drained (see [`crate::queue`]). True if there was any.
    pub(crate) fn queue_added(&self, queue: &EventQueue<K>) -> bool {
        match self.compact() {
            None => {
                let mut any = false;
                for entry in self.inner.objects.iter() {
                    queue.push(WatchEvent::Added(entry.value().clone()));
                    any = true;
                }
                any
            }
            Some(compact) => compact.queue_added(queue),
        }
    }

    /// Makes `queue` decode the encoded events of a compact store (nothing
    /// to do for a default store).
    pub(crate) fn decode_events_in(&self, queue: &EventQueue<K>) {
        if let Some(compact) = self.compact() {
            queue.decoding_with(compact.codec());
        }
    }

    /// How a queue of this store's events holds `event`: for a compact
    /// store, with its object encoded (see the module docs); else as it is.
    pub(crate) fn queued_form(&self, event: WatchEvent<K>) -> Queued<K>
    where
        K: Resource,
    {
        match self.compact() {
            None => Queued::Event(event),
            Some(compact) => compact.queued(event),
        }
    }

    /// Queues a compact store's change with its object still encoded.
    pub(super) fn push_encoded(&self, change: Change, object: Packed) {
        if let Some(queue) = &self.inner.queue {
            queue.push_encoded(change, object);
        }
    }
}
