//! The store: the cache of one kind, readable from any task.
//!
//! A store is filled either by a standalone [`Reflector`](crate::Reflector)
//! or by a shared [`Informer`](crate::informer::Informer); either way there
//! is exactly one writer.
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
//!   An object listed at the resourceVersion the store holds is not
//!   replaced: the store keeps the object it has (readers' `Arc`s stay the
//!   store's) and drops the copy at once. The live heap stays at one copy
//!   of the data set plus what is in flight (a page, or the reflector's
//!   channel), never two full copies.
//!   The process's RSS can still rise during a relist that changed many
//!   objects: with glibc's malloc each thread allocates from its own arena,
//!   so when the relist is decoded on another tokio worker than the initial
//!   list was, the new versions take fresh pages while the old ones free
//!   theirs in an arena that keeps them (measured and explained in
//!   `docs/bench/relist-memory.md`; an application that needs a flat relist
//!   whatever changed sets `MALLOC_ARENA_MAX` or its own allocator). Keeping
//!   unchanged objects is what keeps the usual relist — after an API server
//!   restart or a 410, most objects unchanged — flat: each dropped copy's
//!   memory is reused by the next object decoded on that thread.
//!   During a relist readers may see a mix of old and new objects; each
//!   object is always one real version of itself;
//! - objects are stored **without `metadata.managedFields`** unless the
//!   cache was told to keep them (see below): the same object is what
//!   [`Store::read`], [`Store::get`], `events()` and informer subscribers
//!   hand out;
//! - an index added with [`Store::add_index`] after objects are cached is
//!   built from them before any further write, so it is never partial;
//! - a standalone reflector's store queues the changes it applies for
//!   [`Store::events`] (bounded, see [`crate::queue`]); a shared informer's
//!   store has no queue of its own — each subscriber gets its own queue
//!   (see [`crate::informer`]) — and its `events()` is always empty.
//!
//! # What is stored: no `managedFields` by default
//!
//! `metadata.managedFields` is server-side apply's record of which field
//! manager set which field. The server sends it with every object, it is
//! often the largest part of small objects (for the benchmark's 1.5-KiB
//! ConfigMaps, more than half of the heap each cached object holds), and a
//! controller reading its cache almost never needs it: it is for the server
//! to resolve apply conflicts. So every store — a [`Reflector`](crate::Reflector)'s,
//! a shared [`Informer`](crate::informer::Informer)'s (and so every
//! [`Controller`](crate::Controller) cache), and one filled by hand through a
//! [`Writer`] — drops it from each object before storing it, as
//! controller-runtime's cache does by default with client-go's
//! `TransformStripManagedFields`. The objects of `Added`, `Modified` and
//! `Deleted` events are the stored ones, so they lack it too. A cache that
//! needs it opts out: [`ReflectorConfig::keep_managed_fields`](crate::ReflectorConfig::keep_managed_fields),
//! [`InformerConfig::keep_managed_fields`](crate::InformerConfig::keep_managed_fields)
//! (which is part of an informer's identity), the controller's
//! [`TriggerConfig::keep_managed_fields`](crate::controller::TriggerConfig::keep_managed_fields),
//! or [`Writer::keep_managed_fields`]. A shared informer's
//! [`Transform`](crate::informer::Transform) runs before the field is
//! dropped, so it may still read it.
//!
//! Dropping after decoding still pays for decoding. So the watch of a
//! reflector that does not keep the field, and of an informer that neither
//! keeps it nor has a transform (every controller cache without one), asks
//! its `Api` to
//! [skip it while decoding](kube_client::Api::skip_managed_fields): a
//! protobuf answer's `managedFields` are stepped over on the wire and
//! never built (for a 500-ConfigMap page, half the decode time and
//! less than half the allocations); a JSON answer's (custom resources, a
//! client with protobuf off) are read past as text and not built either
//! (0.58× the decode time of that page in JSON). What is stored is the
//! same either way.
//!
//! # Compact stores
//!
//! A default store holds each object as the `Arc<K>` it was decoded into,
//! so a read is an `Arc` clone. But k8s-openapi's types are built of inline
//! `Option`s of large structs (a `Container` is 2,336 bytes before any of
//! its strings, a `Volume` 3,280, an `EnvVar` 360), so a decoded object
//! holds many times what its encoding does. A **compact** store holds each
//! object encoded instead — protobuf for built-in kinds, JSON otherwise
//! (custom resources, dynamic objects), after `managedFields` were dropped —
//! in one allocation, and decodes it on every read. It is opt-in, per
//! cache: [`ReflectorConfig::compact`](crate::ReflectorConfig::compact),
//! [`InformerConfig::compact`](crate::InformerConfig::compact) (part of an
//! informer's identity), the controller's
//! [`TriggerConfig::compact`](crate::controller::TriggerConfig::compact),
//! or [`Writer::compact`].
//!
//! Heap held per cached object, counted by the allocator
//! (`bench-driver heap`, `bench/README.md`; the benchmark's objects, store
//! bookkeeping included), and the mean time of one [`Store::get`]:
//!
//! | per object | default store | compact store |
//! |---|---|---|
//! | ConfigMap (1 KiB of data, 1,585 bytes of JSON) | 2,693 B, 26.6 allocations | 1,272 B, 2.1 allocations |
//! | Pod (2 containers, 11 env vars, 3 volumes; 8,156 bytes of JSON) | 28,258 B, 149 allocations | 2,403 B, 2.0 allocations |
//! | one `get` of such a Pod (mean over 10,000) | 0.45 µs (an `Arc` clone) | 19 µs (a protobuf decode) |
//!
//! (10,000 Pods and 200 ConfigMaps; the times on a shared two-core machine,
//! with the counting allocator: an order of magnitude.)
//!
//! So choose it for large caches that are read rarely or a few objects at
//! a time: a node-wide or cluster-wide Pod cache looked up by key, an audit
//! that lists once in a while. Do not choose it for a controller that
//! reads its whole store often: each `read()` decodes every object, and
//! the objects it hands out are its own (holding them all at once costs
//! what a default store holds, plus the time).
//!
//! What a compact store does differently, besides decoding on reads:
//! - every read method keeps its signature and hands out equal objects,
//!   each read a fresh `Arc` (two `get`s of one object: equal, not the
//!   same `Arc`);
//! - a write never decodes the old object to tell `Modified` from
//!   unchanged (the resourceVersion is kept beside the bytes); it decodes
//!   it only when the store has indexes, to unfile it from its old values.
//!   A write of the version already held (a relist's unchanged objects) is
//!   not even encoded: the store keeps what it has;
//! - a shared informer's subscribers (and so controllers' triggers) get the
//!   changes' objects as they were written, never decoded again; a
//!   `Deleted` for an object a relist no longer lists is decoded from the
//!   store; the `Added` for each object already cached when one subscribes
//!   waits in its queue encoded (the store's bytes, shared) and is decoded
//!   when taken;
//! - a standalone reflector's own queue ([`Store::events`]), and the queue
//!   of a reflector made with
//!   [`Reflector::from_informer`](crate::Reflector::from_informer) on a
//!   compact informer, hold their events' objects encoded — the bytes the
//!   store holds, shared, or a deleted object's encoding — and decode them
//!   when drained: otherwise the initial list, which queues an `Added` per
//!   object before the first `poll()` returns, would hold every object
//!   decoded. Drain it with [`Store::events_iter`] (or
//!   [`Reflector::events_iter`](crate::Reflector::events_iter)), which
//!   decodes one event at a time, rather than `events()`, which decodes
//!   the whole batch at once (measured: a compact reflector of 10,000 Pods
//!   peaks at 47 MiB of RSS drained one by one, at 339 MiB drained whole,
//!   more than a default store's 314 MiB);
//! - the memory figures above hold for the store and its queue, plus the
//!   reflector's channel: up to
//!   [`ReflectorConfig::channel_capacity`](crate::ReflectorConfig::channel_capacity)
//!   watch events (1,024 by default) wait there *decoded* between the
//!   watcher and the store, so lower it for a very large compact cache;
//! - [`Store::owned_by`] on a store without the
//!   [`index::BY_OWNER_UID`](crate::index::BY_OWNER_UID) index decodes
//!   every object to read its owner references: add that index to a
//!   compact store you query by owner;
//! - bytes that do not decode (which the store never writes) are logged
//!   without any of their content (it may be a Secret's) and the object is
//!   treated as absent; `Debug` shows sizes, never bytes.

pub(crate) mod compact;
mod queueing;

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use kube_client::{Resource, ResourceExt};
use parking_lot::RwLock;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::index::{Index, IndexFn};
use crate::queue::{Change, EventQueue, WatchEvent};
use crate::watcher::Event;
use compact::{Codec, CompactObjects, Packed, Slot};

/// The key of an object in a store.
pub fn object_key<K: Resource>(obj: &K) -> String {
    match obj.namespace() {
        Some(ns) => format!("{ns}/{}", obj.name_any()),
        None => obj.name_any().to_string(),
    }
}

/// A handle on a reflector's or informer's cache; clone it into any task.
///
/// A store handle does not keep its writer alive: once the reflector or
/// every handle on the informer is dropped, the store stops changing.
pub struct Store<K> {
    inner: Arc<Inner<K>>,
}

struct Inner<K> {
    /// The objects of a default store (empty in a compact one).
    objects: DashMap<String, Arc<K>>,
    /// Set once a store is made compact: its objects are then here,
    /// encoded (see [`compact`]).
    compact: OnceLock<CompactObjects<K>>,
    lists: std::sync::atomic::AtomicU64,
    /// Read-locked by the writer for each write, write-locked to add an
    /// index, so that an index is never built concurrently with a write.
    indexes: RwLock<Vec<Index<K>>>,
    ready: tokio::sync::watch::Sender<bool>,
    queue: Option<EventQueue<K>>,
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
            .field("len", &self.len())
            .field("ready", &self.is_ready())
            .field("compact", &self.compact().map(CompactObjects::format))
            .finish()
    }
}

impl<K> Store<K> {
    /// A store whose writer queues changes for [`Store::events`].
    pub(crate) fn with_indexes(queue_capacity: usize, indexes: Vec<(String, IndexFn<K>)>) -> Self {
        Self::make(Some(EventQueue::new(queue_capacity)), indexes)
    }

    /// A store without an event queue (its changes go to subscribers).
    pub(crate) fn without_queue() -> Self {
        Self::make(None, Vec::new())
    }

    fn make(queue: Option<EventQueue<K>>, indexes: Vec<(String, IndexFn<K>)>) -> Self {
        Self {
            inner: Arc::new(Inner {
                objects: DashMap::new(),
                compact: OnceLock::new(),
                lists: std::sync::atomic::AtomicU64::new(0),
                indexes: RwLock::new(
                    indexes
                        .into_iter()
                        .map(|(name, f)| Index::new(name, f))
                        .collect(),
                ),
                ready: tokio::sync::watch::channel(false).0,
                queue,
            }),
        }
    }

    /// Adds the index `name` (see [`crate::index`]), built at once from the
    /// cached objects and kept current by every later write. Returns false,
    /// changing nothing, if the store already has an index of that name:
    /// the name identifies the index, so users sharing a store should agree
    /// on what each name means (e.g. `"owner"` for [`crate::index::by_owner_uid`]).
    pub fn add_index(&self, name: &str, function: IndexFn<K>) -> bool {
        let mut indexes = self.inner.indexes.write();
        if indexes.iter().any(|i| i.name == name) {
            return false;
        }
        let index = Index::new(name.to_string(), function);
        match self.compact() {
            None => {
                for entry in self.inner.objects.iter() {
                    index.update(entry.key(), None, Some(entry.value()));
                }
            }
            Some(compact) => {
                for (key, obj) in compact.entries() {
                    index.update(&key, None, Some(&obj));
                }
            }
        }
        indexes.push(index);
        true
    }

    /// True if the store has an index named `name`.
    pub fn has_index(&self, name: &str) -> bool {
        self.inner.indexes.read().iter().any(|i| i.name == name)
    }

    /// The compact representation, if this store has it.
    fn compact(&self) -> Option<&CompactObjects<K>> {
        self.inner.compact.get()
    }

    /// True if the store holds its objects encoded and decodes them on
    /// every read (see [`compact`](self#compact-stores)).
    pub fn is_compact(&self) -> bool {
        self.compact().is_some()
    }

    /// The object stored under `key`.
    fn get_key(&self, key: &str) -> Option<Arc<K>> {
        match self.compact() {
            None => self.inner.objects.get(key).map(|e| e.value().clone()),
            Some(compact) => compact.get(key),
        }
    }

    /// Every cached object, in no particular order (in a compact store,
    /// each decoded afresh).
    pub fn read(&self) -> Vec<Arc<K>> {
        match self.compact() {
            None => self
                .inner
                .objects
                .iter()
                .map(|e| e.value().clone())
                .collect(),
            Some(compact) => compact.objects(),
        }
    }

    /// One object by namespace (`None` for cluster-scoped) and name.
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        let key = match namespace {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        };
        self.get_key(&key)
    }

    /// The cached objects filed under `value` in the index `name` (see
    /// [`crate::index`]); `None` if there is no such index.
    pub fn by_index(&self, name: &str, value: &str) -> Option<Vec<Arc<K>>> {
        let indexes = self.inner.indexes.read();
        let index = indexes.iter().find(|i| i.name == name)?;
        Some(
            index
                .keys(value)
                .iter()
                .filter_map(|k| self.get_key(k))
                .collect(),
        )
    }

    /// The cached objects with an owner reference to `owner_uid` (e.g. the
    /// children of a controller's object): through the
    /// [`index::BY_OWNER_UID`](crate::index::BY_OWNER_UID) index if the
    /// store has it (the stores of a controller's owned kinds do), else by
    /// scanning every object (in a compact store, decoding every one).
    pub fn owned_by(&self, owner_uid: &str) -> Vec<Arc<K>>
    where
        K: Resource,
    {
        if let Some(found) = self.by_index(crate::index::BY_OWNER_UID, owner_uid) {
            return found;
        }
        let owned = |obj: &K| {
            obj.meta()
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == owner_uid)
        };
        match self.compact() {
            None => self
                .inner
                .objects
                .iter()
                .filter(|e| owned(e.value()))
                .map(|e| e.value().clone())
                .collect(),
            Some(compact) => compact
                .objects()
                .into_iter()
                .filter(|obj| owned(obj))
                .collect(),
        }
    }

    /// How many objects are cached.
    pub fn len(&self) -> usize {
        match self.compact() {
            None => self.inner.objects.len(),
            Some(compact) => compact.map.len(),
        }
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    /// Makes the store compact (see [`compact`](self#compact-stores)):
    /// from now on it holds its objects encoded, protobuf if `K` has a
    /// codec, JSON otherwise. Objects already cached are encoded at once
    /// (readers see them throughout); a store already compact is left as
    /// it is. Only its writer calls this, before it writes.
    pub(crate) fn make_compact(&self)
    where
        K: Resource + Serialize + DeserializeOwned + 'static,
    {
        if self.is_compact() {
            return;
        }
        let compact = CompactObjects::new(Codec::of());
        for entry in self.inner.objects.iter() {
            let slot = compact.pack(entry.key(), entry.value());
            compact.map.insert(entry.key().clone(), slot);
        }
        if let Some(queue) = &self.inner.queue {
            queue.decoding_with(compact.codec());
        }
        // Only the writer sets it, so this is the first set.
        let _ = self.inner.compact.set(compact);
        self.inner.objects.clear();
    }
}

/// Where a writer sends each change it applied.
pub(crate) type Emit<K> = Box<dyn FnMut(WatchEvent<K>) + Send>;

/// The one writer of a store: applies [watcher events](Event) to it and
/// emits what changed.
///
/// Reflectors and informers make their own. [`Writer::detached`] makes a
/// store filled by hand: for tests of code that reads a [`Store`], or a
/// cache fed from somewhere other than a [`Watcher`](crate::Watcher). It
/// drops `managedFields` as every store does (see the
/// [module docs](self)), unless told to [keep them](Writer::keep_managed_fields).
pub struct Writer<K> {
    store: Store<K>,
    /// Keys seen by the relist in progress.
    seen: Option<HashSet<String>>,
    emit: Emit<K>,
    /// True when `emit` queues in the store's own queue: a compact store
    /// then queues its changes' objects encoded (see [`crate::queue`]).
    own_queue: bool,
    keep_managed_fields: bool,
}

impl<K> Debug for Writer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("store", &self.store)
            .field("relisting", &self.seen.is_some())
            .field("keep_managed_fields", &self.keep_managed_fields)
            .field("compact", &self.store.is_compact())
            .finish_non_exhaustive()
    }
}

impl<K: Resource + Send + Sync + 'static> Writer<K> {
    /// A new, empty store whose changes are queued for [`Store::events`]
    /// (at most `queue_capacity`, see [`crate::queue`]), and its writer.
    /// Get the store with [`Writer::store`].
    pub fn detached(queue_capacity: usize) -> Self {
        Self::new(Store::with_indexes(queue_capacity, Vec::new()))
    }

    /// A writer that queues changes in the store's own queue.
    pub(crate) fn new(store: Store<K>) -> Self {
        let queue = store.clone();
        let mut writer = Self::emitting(store, Box::new(move |e| queue.push_event(e)));
        writer.own_queue = true;
        writer
    }

    /// A writer that hands each change to `emit`.
    pub(crate) fn emitting(store: Store<K>, emit: Emit<K>) -> Self {
        Self {
            store,
            seen: None,
            emit,
            own_queue: false,
            keep_managed_fields: false,
        }
    }

    /// Stores objects with their `metadata.managedFields` (dropped by
    /// default; see the [module docs](self)).
    #[must_use]
    pub fn keep_managed_fields(mut self) -> Self {
        self.keep_managed_fields = true;
        self
    }

    /// Makes the store compact: it holds each object encoded (protobuf for
    /// built-in kinds, JSON otherwise) and decodes it on every read — a
    /// fraction of the memory for a decode per read; see
    /// [compact stores](self#compact-stores) for the figures and when to
    /// choose it. The store's own queue ([`Store::events`]) holds its
    /// events' objects encoded as well and decodes them when drained.
    /// Objects already stored are encoded at once.
    #[must_use]
    pub fn compact(self) -> Self
    where
        K: Serialize + DeserializeOwned,
    {
        self.store.make_compact();
        self
    }

    /// Sets whether objects keep `metadata.managedFields`.
    pub(crate) fn keeping_managed_fields(mut self, keep: bool) -> Self {
        self.keep_managed_fields = keep;
        self
    }

    /// A handle on the store this writer fills.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// What the store keeps of an object it is given (see [`crate::lean`]).
    fn lean(&self, obj: &mut K) {
        crate::lean::lean(obj, self.keep_managed_fields);
    }

    /// Whether the store holds `obj`'s key at `obj`'s resourceVersion
    /// already (a relist's unchanged object). Such a write keeps the held
    /// object: the store neither refiles nor announces it, and the new copy
    /// is dropped at once, on the thread that just decoded it, so the next
    /// object decoded there reuses its memory (a relist that replaced every
    /// object would free the old ones into the malloc arena of the thread
    /// that decoded the initial list and take new pages for the copies; see
    /// `docs/bench/relist-memory.md`).
    fn holds_version(&self, key: &str, obj: &K) -> bool {
        let Some(version) = obj.meta().resource_version.as_deref() else {
            return false;
        };
        if version.is_empty() {
            return false;
        }
        match self.store.compact() {
            None => self
                .store
                .inner
                .objects
                .get(key)
                .is_some_and(|old| old.resource_version() == Some(version)),
            Some(compact) => compact
                .map
                .get(key)
                .is_some_and(|old| old.resource_version() == Some(version.as_bytes())),
        }
    }

    fn upsert(&mut self, key: String, mut obj: K) {
        if self.holds_version(&key, &obj) {
            return;
        }
        self.lean(&mut obj);
        let obj = Arc::new(obj);
        // What a compact store queues for its own queue instead of `obj`.
        let mut encoded = None;
        // None: new; Some(true): a new version; Some(false): unchanged.
        let changed = {
            let indexes = self.store.inner.indexes.read();
            match self.store.compact() {
                None => {
                    let old = self.store.inner.objects.insert(key.clone(), obj.clone());
                    for index in indexes.iter() {
                        index.update(&key, old.as_deref(), Some(&obj));
                    }
                    old.map(|old| old.resource_version() != obj.resource_version())
                }
                Some(compact) => {
                    let version = obj.meta().resource_version.as_deref();
                    let slot = compact.pack(&key, &obj);
                    if let (Slot::Packed(packed), true) = (&slot, self.own_queue) {
                        encoded = Some(packed.clone());
                    }
                    let old = compact.map.insert(key.clone(), slot);
                    if !indexes.is_empty() {
                        let old_obj = old.as_ref().map(|slot| compact.unpack(&key, slot));
                        refile(&indexes, &key, old_obj, Some(&obj));
                    }
                    old.map(|old| old.resource_version() != version.map(str::as_bytes))
                }
            }
        };
        let change = match changed {
            None => Change::Added,
            Some(true) => Change::Modified,
            Some(false) => return,
        };
        match encoded {
            Some(packed) => self.store.push_encoded(change, packed),
            None => (self.emit)(change.event(obj)),
        }
    }

    /// Applies one watcher event: `Init` … `InitDone` (re)fill the store
    /// in place (what the list lacked is removed at `InitDone`, which also
    /// makes the store ready), `Apply` and `Delete` change one object.
    pub fn apply(&mut self, event: Event<K>) {
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
                    for removed in self.remove_unseen(&seen) {
                        match removed {
                            Removed::Object(obj) => (self.emit)(WatchEvent::Deleted(obj)),
                            Removed::Encoded(packed) => {
                                self.store.push_encoded(Change::Deleted, packed)
                            }
                        }
                    }
                }
                self.store
                    .inner
                    .lists
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                self.store.inner.ready.send_replace(true);
            }
            Event::Apply(obj) => self.upsert(object_key(&obj), obj),
            Event::Delete(mut obj) => {
                self.lean(&mut obj);
                let key = object_key(&obj);
                if let Some(seen) = &mut self.seen {
                    seen.remove(&key);
                }
                let obj = Arc::new(obj);
                // What a compact store queues for its own queue instead.
                let mut encoded = None;
                {
                    let indexes = self.store.inner.indexes.read();
                    match self.store.compact() {
                        None => {
                            if let Some((_, old)) = self.store.inner.objects.remove(&key) {
                                for index in indexes.iter() {
                                    index.update(&key, Some(&old), None);
                                }
                            }
                        }
                        Some(compact) => {
                            if let Some((_, old)) = compact.map.remove(&key)
                                && !indexes.is_empty()
                            {
                                refile(&indexes, &key, Some(compact.unpack(&key, &old)), None);
                            }
                            if self.own_queue
                                && let Slot::Packed(packed) = compact.pack(&key, &obj)
                            {
                                encoded = Some(packed);
                            }
                        }
                    }
                }
                match encoded {
                    Some(packed) => self.store.push_encoded(Change::Deleted, packed),
                    None => (self.emit)(WatchEvent::Deleted(obj)),
                }
            }
        }
    }

    /// Removes what a relist did not list (keys not in `seen`) and returns
    /// each removed object, for its `Deleted` event: encoded for a compact
    /// store's own queue, else decoded (one of a compact store that no
    /// longer decodes is left out, logged).
    fn remove_unseen(&self, seen: &HashSet<String>) -> Vec<Removed<K>> {
        let indexes = self.store.inner.indexes.read();
        match self.store.compact() {
            None => {
                let mut gone = Vec::new();
                self.store.inner.objects.retain(|key, obj| {
                    let keep = seen.contains(key);
                    if !keep {
                        gone.push((key.clone(), obj.clone()));
                    }
                    keep
                });
                for (key, obj) in &gone {
                    for index in indexes.iter() {
                        index.update(key, Some(obj), None);
                    }
                }
                gone.into_iter()
                    .map(|(_, obj)| Removed::Object(obj))
                    .collect()
            }
            Some(compact) => {
                let unseen: Vec<String> = compact
                    .map
                    .iter()
                    .filter(|e| !seen.contains(e.key()))
                    .map(|e| e.key().clone())
                    .collect();
                let mut gone = Vec::with_capacity(unseen.len());
                for key in unseen {
                    let Some((key, slot)) = compact.map.remove(&key) else {
                        continue;
                    };
                    let queue_encoded = self.own_queue && matches!(slot, Slot::Packed(_));
                    // Decoded only for the indexes or a decoded event.
                    let obj = (!indexes.is_empty() || !queue_encoded)
                        .then(|| compact.unpack(&key, &slot));
                    if !indexes.is_empty() {
                        refile(&indexes, &key, obj.clone(), None);
                    }
                    match (slot, obj) {
                        (Slot::Packed(packed), _) if queue_encoded => {
                            gone.push(Removed::Encoded(packed))
                        }
                        (_, Some(Some(obj))) => gone.push(Removed::Object(obj)),
                        _ => {}
                    }
                }
                gone
            }
        }
    }
}

/// An object a relist removed, as its `Deleted` event will carry it.
enum Removed<K> {
    Object(Arc<K>),
    Encoded(Packed),
}

/// Refiles `key` in every index of a compact store, from its old object
/// (`Some(None)` when that no longer decodes: then the key is unfiled from
/// every value, as the old values are unknown) to `new`.
fn refile<K>(indexes: &[Index<K>], key: &str, old: Option<Option<Arc<K>>>, new: Option<&K>) {
    for index in indexes {
        match &old {
            Some(None) => {
                index.forget(key);
                index.update(key, None, new);
            }
            Some(Some(old)) => index.update(key, Some(old), new),
            None => index.update(key, None, new),
        }
    }
}

#[cfg(test)]
mod tests;
