//! The event queue between a reflector and its consumer.
//!
//! Guarantees: the queue holds at most `capacity` events, so a consumer
//! that never drains it costs bounded memory. When it is full, the oldest
//! event is dropped to make room, and the next drain starts with one
//! [`WatchEvent::Desynced`] saying how many were lost: the consumer should
//! then treat the store (`read()`) as the truth, as after a relist. Events
//! hold `Arc`s shared with the store, so a queued Added or Modified event
//! costs a pointer, not a copy of the object.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

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

/// A bounded FIFO of [`WatchEvent`]s that drops its oldest on overflow.
#[derive(Debug)]
pub struct EventQueue<K> {
    capacity: usize,
    inner: Mutex<(VecDeque<WatchEvent<K>>, u64)>,
}

impl<K> EventQueue<K> {
    /// A queue holding at most `capacity` events (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new((VecDeque::new(), 0)),
        }
    }

    /// Adds an event, dropping the oldest if full.
    pub fn push(&self, event: WatchEvent<K>) {
        let mut inner = self.inner.lock();
        if inner.0.len() >= self.capacity {
            inner.0.pop_front();
            inner.1 += 1;
        }
        inner.0.push_back(event);
    }

    /// Takes every queued event, oldest first, preceded by a `Desynced`
    /// marker if any were dropped since the last drain.
    pub fn drain(&self) -> Vec<WatchEvent<K>> {
        let (events, dropped) = {
            let mut inner = self.inner.lock();
            (std::mem::take(&mut inner.0), std::mem::take(&mut inner.1))
        };
        let mut out = Vec::with_capacity(events.len() + 1);
        if dropped > 0 {
            out.push(WatchEvent::Desynced { dropped });
        }
        out.extend(events);
        out
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
}
