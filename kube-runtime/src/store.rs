//! The store: the reflector's cache of one kind, readable from any task.
//!
//! Guarantees:
//! - objects are keyed by `namespace/name` (`name` when cluster-scoped) and
//!   held as `Arc<K>`: [`Store::read`] and [`Store::get`] hand out clones of
//!   the `Arc`, never of the object;
//! - the map is a `DashMap` (sharded locks): a reader waits at most for
//!   the write of one object, never for a whole list;
//! - [`Store::is_ready`] turns true (and [`Store::wait_until_ready`]
//!   returns) once the first complete list has been applied;
//! - a relist is applied object by object: each new version replaces the
//!   old one in place, and what the new list lacks is removed at its end.
//!   Memory stays at one copy of the data set plus one page, never two full
//!   copies. During a relist readers may see a mix of old and new objects;
//!   each object is always one real version of itself.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::Arc;

use dashmap::DashMap;
use kube_client::{Resource, ResourceExt};

use crate::index::{Index, IndexFn};
use crate::queue::{EventQueue, WatchEvent};
use crate::watcher::Event;

/// The key of an object in a store.
pub fn object_key<K: Resource>(obj: &K) -> String {
    match obj.namespace() {
        Some(ns) => format!("{ns}/{}", obj.name_any()),
        None => obj.name_any().to_string(),
    }
}

/// A handle on a reflector's cache; clone it into any task.
pub struct Store<K> {
    inner: Arc<Inner<K>>,
}

struct Inner<K> {
    objects: DashMap<String, Arc<K>>,
    lists: std::sync::atomic::AtomicU64,
    indexes: Vec<Index<K>>,
    ready: tokio::sync::watch::Sender<bool>,
    queue: EventQueue<K>,
}

impl<K> Clone for Store<K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<K> Debug for Store<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("len", &self.inner.objects.len())
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl<K> Store<K> {
    pub(crate) fn with_indexes(queue_capacity: usize, indexes: Vec<(String, IndexFn<K>)>) -> Self {
        Self {
            inner: Arc::new(Inner {
                objects: DashMap::new(),
                lists: std::sync::atomic::AtomicU64::new(0),
                indexes: indexes
                    .into_iter()
                    .map(|(name, f)| Index::new(name, f))
                    .collect(),
                ready: tokio::sync::watch::channel(false).0,
                queue: EventQueue::new(queue_capacity),
            }),
        }
    }

    /// Every cached object, in no particular order.
    pub fn read(&self) -> Vec<Arc<K>> {
        self.inner
            .objects
            .iter()
            .map(|e| e.value().clone())
            .collect()
    }

    /// One object by namespace (`None` for cluster-scoped) and name.
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        let key = match namespace {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        };
        self.inner.objects.get(&key).map(|e| e.value().clone())
    }

    /// The cached objects filed under `value` in the index `name` (see
    /// [`crate::index`]); `None` if there is no such index.
    pub fn by_index(&self, name: &str, value: &str) -> Option<Vec<Arc<K>>> {
        let index = self.inner.indexes.iter().find(|i| i.name == name)?;
        Some(
            index
                .keys(value)
                .iter()
                .filter_map(|k| self.inner.objects.get(k).map(|e| e.value().clone()))
                .collect(),
        )
    }

    /// How many objects are cached.
    pub fn len(&self) -> usize {
        self.inner.objects.len()
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.inner.objects.is_empty()
    }

    /// True once the first complete list is in.
    pub fn is_ready(&self) -> bool {
        *self.inner.ready.borrow()
    }

    /// How many complete lists have been applied: 1 after the initial sync,
    /// one more for each relist (after a 410 Gone).
    pub fn lists_completed(&self) -> u64 {
        self.inner.lists.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits until the first complete list is in.
    pub async fn wait_until_ready(&self) {
        let mut rx = self.inner.ready.subscribe();
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// Takes the queued events (see [`crate::queue`]).
    pub fn events(&self) -> Vec<WatchEvent<K>> {
        self.inner.queue.drain()
    }

    /// Events waiting in the queue.
    pub fn queued_events(&self) -> usize {
        self.inner.queue.len()
    }

    pub(crate) fn push_event(&self, event: WatchEvent<K>) {
        self.inner.queue.push(event);
    }
}

/// Applies watcher events to a store and queues what changed.
pub(crate) struct Writer<K> {
    store: Store<K>,
    /// Keys seen by the relist in progress.
    seen: Option<HashSet<String>>,
}

impl<K: Resource> Writer<K> {
    pub(crate) fn new(store: Store<K>) -> Self {
        Self { store, seen: None }
    }

    fn upsert(&self, key: String, obj: K) {
        let obj = Arc::new(obj);
        let old = self.store.inner.objects.insert(key.clone(), obj.clone());
        for index in &self.store.inner.indexes {
            index.update(&key, old.as_deref(), Some(&obj));
        }
        let event = match old {
            None => Some(WatchEvent::Added(obj)),
            Some(old) if old.resource_version() != obj.resource_version() => {
                Some(WatchEvent::Modified(obj))
            }
            Some(_) => None,
        };
        if let Some(event) = event {
            self.store.push_event(event);
        }
    }

    pub(crate) fn apply(&mut self, event: Event<K>) {
        match event {
            Event::Init => self.seen = Some(HashSet::new()),
            Event::InitApply(obj) => {
                let key = object_key(&obj);
                if let Some(seen) = &mut self.seen {
                    seen.insert(key.clone());
                }
                self.upsert(key, obj);
            }
            Event::InitDone => {
                if let Some(seen) = self.seen.take() {
                    let mut gone = Vec::new();
                    self.store.inner.objects.retain(|key, obj| {
                        let keep = seen.contains(key);
                        if !keep {
                            gone.push((key.clone(), obj.clone()));
                        }
                        keep
                    });
                    for (key, obj) in gone {
                        for index in &self.store.inner.indexes {
                            index.update(&key, Some(&obj), None);
                        }
                        self.store.push_event(WatchEvent::Deleted(obj));
                    }
                }
                self.store
                    .inner
                    .lists
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                self.store.inner.ready.send_replace(true);
            }
            Event::Apply(obj) => self.upsert(object_key(&obj), obj),
            Event::Delete(obj) => {
                let key = object_key(&obj);
                if let Some(seen) = &mut self.seen {
                    seen.remove(&key);
                }
                if let Some((_, old)) = self.store.inner.objects.remove(&key) {
                    for index in &self.store.inner.indexes {
                        index.update(&key, Some(&old), None);
                    }
                }
                self.store.push_event(WatchEvent::Deleted(Arc::new(obj)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn cm(name: &str, rv: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(rv.into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    fn kinds(events: Vec<WatchEvent<ConfigMap>>) -> Vec<String> {
        events
            .into_iter()
            .map(|e| match e {
                WatchEvent::Added(o) => format!("+{}", o.name_any()),
                WatchEvent::Modified(o) => format!("~{}", o.name_any()),
                WatchEvent::Deleted(o) => format!("-{}", o.name_any()),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_relist_yields_only_the_differences() {
        let store = Store::with_indexes(100, Vec::new());
        let mut w = Writer::new(store.clone());
        for e in [
            Event::Init,
            Event::InitApply(cm("a", "1")),
            Event::InitApply(cm("b", "1")),
            Event::InitDone,
        ] {
            w.apply(e);
        }
        assert!(store.is_ready());
        assert_eq!(store.lists_completed(), 1);
        assert_eq!(kinds(store.events()), ["+a", "+b"]);

        // Relist: a unchanged, b changed, c new, (b's sibling) a2 never seen, old "a" kept.
        w.apply(Event::Apply(cm("gone", "2")));
        store.events();
        for e in [
            Event::Init,
            Event::InitApply(cm("a", "1")),
            Event::InitApply(cm("b", "3")),
            Event::InitApply(cm("c", "3")),
            Event::InitDone,
        ] {
            w.apply(e);
        }
        assert_eq!(kinds(store.events()), ["~b", "+c", "-gone"]);
        assert_eq!(store.lists_completed(), 2);
        let mut names: Vec<String> = store
            .read()
            .iter()
            .map(|o| o.name_any().to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(
            store.get(Some("ns"), "b").unwrap().resource_version(),
            Some("3")
        );
    }

    #[test]
    fn indexes_follow_every_write() {
        let labelled = |name: &str, rv: &str, team: &str| {
            let mut c = cm(name, rv);
            c.metadata.labels = Some([("team".to_string(), team.to_string())].into());
            c
        };
        let store = Store::with_indexes(100, vec![("team".into(), crate::index::by_label("team"))]);
        let mut w = Writer::new(store.clone());
        let names = |v: Option<Vec<Arc<ConfigMap>>>| {
            let mut n: Vec<String> = v
                .unwrap()
                .iter()
                .map(|o| o.name_any().to_string())
                .collect();
            n.sort();
            n
        };
        for e in [
            Event::Init,
            Event::InitApply(labelled("a", "1", "x")),
            Event::InitApply(labelled("b", "1", "x")),
            Event::InitDone,
        ] {
            w.apply(e);
        }
        assert_eq!(names(store.by_index("team", "x")), ["a", "b"]);
        w.apply(Event::Apply(labelled("b", "2", "y")));
        assert_eq!(names(store.by_index("team", "x")), ["a"]);
        assert_eq!(names(store.by_index("team", "y")), ["b"]);
        w.apply(Event::Delete(labelled("a", "3", "x")));
        assert!(names(store.by_index("team", "x")).is_empty());
        for e in [
            Event::Init,
            Event::InitApply(labelled("c", "4", "y")),
            Event::InitDone,
        ] {
            w.apply(e);
        }
        assert_eq!(
            names(store.by_index("team", "y")),
            ["c"],
            "the relist removed b from its index"
        );
        assert!(store.by_index("nope", "y").is_none());
    }

    #[test]
    fn watch_events_update_the_store() {
        let store = Store::with_indexes(100, Vec::new());
        let mut w = Writer::new(store.clone());
        w.apply(Event::Init);
        w.apply(Event::InitDone);
        w.apply(Event::Apply(cm("x", "1")));
        w.apply(Event::Apply(cm("x", "2")));
        w.apply(Event::Delete(cm("x", "3")));
        assert_eq!(kinds(store.events()), ["+x", "~x", "-x"]);
        assert!(store.is_empty());
    }
}
