//! The event queue between a reflector and its consumer.
//!
//! Guarantees: the queue holds at most `capacity` events, so a consumer
//! that never drains it costs bounded memory. When it is full, the oldest
//! event is dropped to make room, and the next drain starts with one
//! [`WatchEvent::Desynced`] saying how many were lost: the consumer should
//! then treat the store (`read()`) as the truth, as after a relist. Events
//! hold `Arc`s shared with the store, so a queued Added or Modified event
//! costs a pointer, not a copy of the object.
//!
//! The queues of a [compact](crate::store#compact-stores) cache — a
//! compact reflector's, one made with
//! [`Reflector::from_informer`](crate::Reflector::from_informer) on a
//! compact informer, and a compact informer's subscribers' initial
//! `Added`s — hold their events' objects encoded instead — the very bytes
//! the store holds, shared, or the encoding of an object the store no
//! longer holds — and decode them when drained: queued events then cost a
//! pointer too, where decoded objects would hold as much as a default store
//! (the initial list queues an `Added` for every object before the first
//! `poll()` returns).

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::store::compact::{Codec, Packed};

/// A change to a reflector's cache, as its consumer sees it. Cloning it
/// clones an `Arc`, whatever `K` is.
#[derive(Debug)]
pub enum WatchEvent<K> {
    /// An object appeared.
    Added(Arc<K>),
    /// An object changed (its new state).
    Modified(Arc<K>),
    /// An object disappeared (its last known state). After a relist this may
    /// be older than the real final state (client-go's
    /// `DeletedFinalStateUnknown`).
    Deleted(Arc<K>),
    /// Listing or watching failed; the reflector retries by itself.
    Error(Arc<kube_client::Error>),
    /// The queue overflowed and `dropped` events were lost; the store is
    /// still correct.
    Desynced {
        /// How many events were dropped.
        dropped: u64,
    },
}

impl<K> Clone for WatchEvent<K> {
    fn clone(&self) -> Self {
        match self {
            Self::Added(o) => Self::Added(o.clone()),
            Self::Modified(o) => Self::Modified(o.clone()),
            Self::Deleted(o) => Self::Deleted(o.clone()),
            Self::Error(e) => Self::Error(e.clone()),
            Self::Desynced { dropped } => Self::Desynced { dropped: *dropped },
        }
    }
}

/// Which change a queued encoded object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Added,
    Modified,
    Deleted,
}

impl Change {
    /// The event of this change to `obj`.
    pub(crate) fn event<K>(self, obj: Arc<K>) -> WatchEvent<K> {
        match self {
            Change::Added => WatchEvent::Added(obj),
            Change::Modified => WatchEvent::Modified(obj),
            Change::Deleted => WatchEvent::Deleted(obj),
        }
    }
}

/// What the queue holds of one event.
pub(crate) enum Queued<K> {
    Event(WatchEvent<K>),
    /// A compact store's change, its object encoded until drained.
    Encoded(Change, Packed),
}

/// What [`EventQueue::take`] took: the events as they were queued (the
/// encoded ones still encoded), and how many were dropped before them.
pub(crate) struct Taken<K> {
    pub(crate) dropped: u64,
    pub(crate) events: VecDeque<Queued<K>>,
}

impl<K> Taken<K> {
    /// True if nothing was queued nor dropped.
    pub(crate) fn is_empty(&self) -> bool {
        self.dropped == 0 && self.events.is_empty()
    }
}

/// A bounded FIFO of [`WatchEvent`]s that drops its oldest on overflow.
pub struct EventQueue<K> {
    capacity: usize,
    inner: Mutex<(VecDeque<Queued<K>>, u64)>,
    /// How encoded events' objects are decoded: set when the queue's store
    /// is compact.
    decoder: OnceLock<Codec<K>>,
}

impl<K> std::fmt::Debug for EventQueue<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventQueue")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .field("encoded", &self.decoder.get().is_some())
            .finish()
    }
}

impl<K> EventQueue<K> {
    /// A queue holding at most `capacity` events (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new((VecDeque::new(), 0)),
            decoder: OnceLock::new(),
        }
    }

    /// Adds an event, dropping the oldest if full.
    pub fn push(&self, event: WatchEvent<K>) {
        self.push_queued(Queued::Event(event));
    }

    /// Adds a change whose object stays encoded until drained (a compact
    /// store's; see the module docs). Once [`decoding_with`](Self::decoding_with).
    pub(crate) fn push_encoded(&self, change: Change, object: Packed) {
        self.push_queued(Queued::Encoded(change, object));
    }

    /// Sets how encoded objects are decoded (the first call wins).
    pub(crate) fn decoding_with(&self, codec: Codec<K>) {
        let _ = self.decoder.set(codec);
    }

    /// Adds an event as it is to be held (see [`Store::queued_form`](crate::store::Store::queued_form)).
    pub(crate) fn push_queued(&self, queued: Queued<K>) {
        let mut inner = self.inner.lock();
        if inner.0.len() >= self.capacity {
            inner.0.pop_front();
            inner.1 += 1;
        }
        inner.0.push_back(queued);
    }

    /// Takes every queued event, oldest first, preceded by a `Desynced`
    /// marker if any were dropped since the last drain.
    pub fn drain(&self) -> Vec<WatchEvent<K>> {
        self.drain_iter().collect()
    }

    /// As [`drain`](Self::drain), but the events are taken now and handed
    /// out one by one: a compact store's encoded events are decoded as the
    /// iterator reaches them, so a consumer that handles each and drops it
    /// never holds them all decoded at once.
    pub fn drain_iter(&self) -> DrainedEvents<'_, K> {
        let Taken { dropped, events } = self.take();
        DrainedEvents {
            desynced: (dropped > 0).then_some(dropped),
            events: events.into_iter(),
            decoder: self.decoder.get(),
        }
    }

    /// Takes every queued event as it is held, decoding nothing: for
    /// moving them into another queue of the same store's events.
    pub(crate) fn take(&self) -> Taken<K> {
        let mut inner = self.inner.lock();
        Taken {
            events: std::mem::take(&mut inner.0),
            dropped: std::mem::take(&mut inner.1),
        }
    }

    /// Queued events whose object is still encoded.
    #[cfg(test)]
    pub(crate) fn encoded(&self) -> usize {
        let inner = self.inner.lock();
        inner
            .0
            .iter()
            .filter(|q| matches!(q, Queued::Encoded(..)))
            .count()
    }

    /// Queued events right now.
    pub fn len(&self) -> usize {
        self.inner.lock().0.len()
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The events taken by [`EventQueue::drain_iter`], oldest first.
pub struct DrainedEvents<'a, K> {
    desynced: Option<u64>,
    events: std::collections::vec_deque::IntoIter<Queued<K>>,
    decoder: Option<&'a Codec<K>>,
}

impl<K> std::fmt::Debug for DrainedEvents<'_, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrainedEvents")
            .field(
                "left",
                &(self.events.len() + usize::from(self.desynced.is_some())),
            )
            .finish()
    }
}

impl<K> DrainedEvents<'_, K> {
    /// No events.
    pub(crate) fn empty() -> Self {
        Self {
            desynced: None,
            events: VecDeque::new().into_iter(),
            decoder: None,
        }
    }
}

impl<K> Iterator for DrainedEvents<'_, K> {
    type Item = WatchEvent<K>;

    fn next(&mut self) -> Option<WatchEvent<K>> {
        if let Some(dropped) = self.desynced.take() {
            return Some(WatchEvent::Desynced { dropped });
        }
        loop {
            match self.events.next()? {
                Queued::Event(event) => return Some(event),
                Queued::Encoded(change, packed) => {
                    // An object that does not decode (logged) has no event.
                    let Some(obj) = self.decoder.and_then(|d| d.decode_queued(&packed)) else {
                        continue;
                    };
                    return Some(change.event(Arc::new(obj)));
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.events.len() + usize::from(self.desynced.is_some());
        (0, Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_drops_the_oldest_and_says_so() {
        let q = EventQueue::new(3);
        for i in 0..10 {
            q.push(WatchEvent::Added(Arc::new(i)));
        }
        assert_eq!(q.len(), 3);
        let drained = q.drain();
        assert!(matches!(drained[0], WatchEvent::Desynced { dropped: 7 }));
        let kept: Vec<i32> = drained[1..]
            .iter()
            .map(|e| match e {
                WatchEvent::Added(v) => **v,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(kept, [7, 8, 9]);
        assert!(q.drain().is_empty(), "the marker is reported once");
    }

    #[test]
    fn drain_iter_takes_the_same_events_one_by_one() {
        let q = EventQueue::new(2);
        for i in 0..3 {
            q.push(WatchEvent::Added(Arc::new(i)));
        }
        let mut drained = q.drain_iter();
        assert!(q.is_empty(), "taken at once");
        q.push(WatchEvent::Added(Arc::new(9)));
        assert!(matches!(
            drained.next(),
            Some(WatchEvent::Desynced { dropped: 1 })
        ));
        let rest: Vec<i32> = drained
            .map(|e| match e {
                WatchEvent::Added(v) => *v,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(rest, [1, 2], "not what was queued after the drain");
        assert_eq!(q.len(), 1);
    }
}
