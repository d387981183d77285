//! Indexes: find cached objects by something other than their name.
//!
//! client-go's `Indexer` lets a controller ask "which pods belong to this
//! ReplicaSet?" or "which objects carry label app=web?" without scanning
//! the cache. An index is a named function from an object to the values it
//! is filed under (none, one or several); the store keeps, per index, a map
//! from value to object keys, updated with every write.
//!
//! Guarantees: after each applied event, `Store::by_index(name, value)`
//! returns exactly the cached objects whose index function yields `value`
//! (an object changed so that it no longer yields it is removed from that
//! value). A reader racing a write may miss the object being written, never
//! see one that is not cached.

use std::collections::HashSet;
use std::sync::Arc;

use dashmap::DashMap;
use kube_client::{Resource, ResourceExt};

/// A function from an object to the values it is indexed under.
pub type IndexFn<K> = Arc<dyn Fn(&K) -> Vec<String> + Send + Sync>;

/// Index by the value of one label (objects without it are not indexed).
pub fn by_label<K: Resource>(key: &str) -> IndexFn<K> {
    let key = key.to_string();
    Arc::new(move |obj: &K| {
        obj.meta()
            .labels
            .as_ref()
            .and_then(|l| l.get(&key))
            .cloned()
            .into_iter()
            .collect()
    })
}

/// The name under which [`Store::owned_by`](crate::Store::owned_by) looks
/// for an index by owner uid ([`by_owner_uid`]); controllers add it to the
/// stores of the kinds they own.
pub const BY_OWNER_UID: &str = "owner-uid";

/// Index by the uid of each owner reference (e.g. the ReplicaSet of a Pod).
pub fn by_owner_uid<K: Resource>() -> IndexFn<K> {
    Arc::new(|obj: &K| {
        obj.meta()
            .owner_references
            .iter()
            .flatten()
            .map(|o| o.uid.clone())
            .collect()
    })
}

/// Index by namespace (cluster-scoped objects are not indexed).
pub fn by_namespace<K: Resource>() -> IndexFn<K> {
    Arc::new(|obj: &K| obj.namespace().map(str::to_string).into_iter().collect())
}

/// One index: its function and its value → keys map.
pub(crate) struct Index<K> {
    pub(crate) name: String,
    function: IndexFn<K>,
    entries: DashMap<String, HashSet<String>>,
}

impl<K> Index<K> {
    pub(crate) fn new(name: String, function: IndexFn<K>) -> Self {
        Self {
            name,
            function,
            entries: DashMap::new(),
        }
    }

    /// Files `key` under the values of `new`, unfiling it from those of `old`.
    pub(crate) fn update(&self, key: &str, old: Option<&K>, new: Option<&K>) {
        let old_values = old.map(|o| (self.function)(o)).unwrap_or_default();
        let new_values = new.map(|n| (self.function)(n)).unwrap_or_default();
        for value in old_values.iter().filter(|v| !new_values.contains(v)) {
            if let Some(mut keys) = self.entries.get_mut(value) {
                keys.remove(key);
            }
            self.entries.remove_if(value, |_, keys| keys.is_empty());
        }
        for value in new_values {
            self.entries
                .entry(value)
                .or_default()
                .insert(key.to_string());
        }
    }

    /// Unfiles `key` from every value (when its old values are unknown).
    pub(crate) fn forget(&self, key: &str) {
        self.entries.retain(|_, keys| {
            keys.remove(key);
            !keys.is_empty()
        });
    }

    /// The keys filed under `value`.
    pub(crate) fn keys(&self, value: &str) -> Vec<String> {
        self.entries
            .get(value)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }
}
