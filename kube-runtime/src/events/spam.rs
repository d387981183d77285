//! The spam filter: a token bucket per event source and object.
//!
//! This is client-go's `tools/record` `EventSourceObjectSpamFilter` (the
//! events.k8s.io recorder of `tools/events` has none): every
//! `(reportingController, reportingInstance, regarding object)` may publish
//! a burst of 25 events, then one more per 5 minutes. Repeats of the same
//! event take tokens too — 100 identical events in a burst leave 25. What
//! the filter drops is counted, never written. Buckets are kept for at most
//! `capacity` objects; the least recently used are forgotten (as client-go's
//! LRU of 4096).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// The settings of the spam filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpamFilter {
    /// Events one source may publish about one object at once. Default 25.
    pub burst: u32,
    /// One more event is allowed every `refill_every`. Default 5 minutes.
    pub refill_every: Duration,
}

impl Default for SpamFilter {
    fn default() -> Self {
        Self {
            burst: 25,
            refill_every: Duration::from_secs(300),
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    used: u64,
}

/// Token buckets by key, bounded in number.
#[derive(Debug)]
pub(crate) struct Buckets<K> {
    config: SpamFilter,
    capacity: usize,
    buckets: HashMap<K, Bucket>,
    uses: u64,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub(crate) fn new(config: SpamFilter, capacity: usize) -> Self {
        Self {
            config,
            capacity: capacity.max(1),
            buckets: HashMap::new(),
            uses: 0,
        }
    }

    /// Takes a token for `key` at `now`; false if there is none (drop the event).
    pub(crate) fn try_take(&mut self, key: &K, now: Instant) -> bool {
        self.uses += 1;
        let burst = f64::from(self.config.burst);
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.capacity {
            self.evict_least_recent();
        }
        let bucket = self.buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            updated: now,
            used: 0,
        });
        let refill = if self.config.refill_every.is_zero() {
            burst
        } else {
            now.saturating_duration_since(bucket.updated).as_secs_f64()
                / self.config.refill_every.as_secs_f64()
        };
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.updated = now;
        bucket.used = self.uses;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn evict_least_recent(&mut self) {
        if let Some(oldest) = self
            .buckets
            .iter()
            .min_by_key(|(_, b)| b.used)
            .map(|(k, _)| k.clone())
        {
            self.buckets.remove(&oldest);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_25_then_one_per_five_minutes() {
        let mut b = Buckets::new(SpamFilter::default(), 10);
        let t0 = Instant::now();
        let passed = (0..100).filter(|_| b.try_take(&"pod-a", t0)).count();
        assert_eq!(passed, 25);
        // another object has its own bucket
        assert!(b.try_take(&"pod-b", t0));
        // 4:59 later still nothing; at 5:00 exactly one more
        assert!(!b.try_take(&"pod-a", t0 + Duration::from_secs(299)));
        assert!(b.try_take(&"pod-a", t0 + Duration::from_secs(300)));
        assert!(!b.try_take(&"pod-a", t0 + Duration::from_secs(301)));
        // after a long quiet time the bucket is full again, not fuller
        let later = t0 + Duration::from_secs(300 * 1000);
        assert_eq!((0..100).filter(|_| b.try_take(&"pod-a", later)).count(), 25);
    }

    #[test]
    fn the_least_recently_used_bucket_is_forgotten() {
        let mut b = Buckets::new(
            SpamFilter {
                burst: 1,
                refill_every: Duration::from_secs(300),
            },
            2,
        );
        let t = Instant::now();
        assert!(b.try_take(&1, t));
        assert!(b.try_take(&2, t));
        assert!(!b.try_take(&2, t));
        assert!(b.try_take(&3, t)); // evicts 1, the least recent
        assert_eq!(b.len(), 2);
        assert!(b.try_take(&1, t)); // a fresh bucket; evicts 2
        assert!(!b.try_take(&3, t)); // 3 was kept, and is empty
        assert!(b.try_take(&2, t)); // 2 was forgotten: fresh again
        assert_eq!(b.len(), 2);
    }
}
