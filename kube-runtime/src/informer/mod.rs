//! Shared informers: one list + watch per kind, however many users.
//!
//! A [`Reflector`](crate::Reflector) owns its watch. Ten controllers and
//! reflectors on ConfigMaps that each own one would cost the API server ten
//! watches and the process ten copies of every ConfigMap. client-go's
//! `SharedInformerFactory` and controller-runtime's cache share instead; so
//! does this module:
//!
//! - [`SharedInformers`] is a registry. [`SharedInformers::informer`] hands
//!   out the **same** [`Informer`] for the same kind (group, version,
//!   plural and Rust type), namespace (or all), label selector, field
//!   selector and [`Transform`] name; anything else gets its own.
//! - An [`Informer`] runs **one** watcher (list, then watch, with resumption
//!   and relists; see [`crate::watcher`]) in a background task, applies
//!   every change to **one** [`Store`], and then hands it to every
//!   [`Subscription`] — a late subscriber first gets an `Added` for each
//!   object already cached. Each subscriber has its own bounded queue: a slow or
//!   idle subscriber loses its oldest changes and gets a
//!   [`WatchEvent::Desynced`] marker; it never
//!   holds up the store or the other subscribers (see [`subscription`]).
//! - The store drops `metadata.managedFields` from every object, as every
//!   store does by default (see [`crate::store`]);
//!   [`InformerConfig::keep_managed_fields`] keeps them (an informer that
//!   keeps them is not the same informer as one that does not). An
//!   informer that neither keeps them nor has a transform has its watch
//!   decode protobuf answers without them
//!   ([`Api::skip_managed_fields`](kube_client::Api::skip_managed_fields)):
//!   what would be dropped is never built.
//! - [`InformerConfig::compact`] holds the store's objects encoded and
//!   decodes them on every read (see
//!   [compact stores](crate::store#compact-stores)); it is part of the
//!   identity too.
//! - An optional [`Transform`] (e.g. [`strip_last_applied`]) changes each
//!   object before it is stored or handed out (it still sees
//!   `managedFields`, which an informer with a transform always decodes;
//!   they are dropped after it).
//! - Errors never stop an informer: the watcher retries with backoff. Each
//!   error is handed to subscribers as `WatchEvent::Error` and kept as
//!   [`Informer::last_error`] until the next complete list.
//!
//! An informer runs while any handle on it (an [`Informer`] clone, a
//! [`Subscription`], or a [`Reflector`](crate::Reflector) built on it) is
//! alive, and stops when the last one is dropped; the registry does not
//! keep it alive. A [`Store`] handle alone does not either.
//!
//! The first request for an informer decides what is not part of its
//! identity: the client (and so the credentials) of its `Api`, and the
//! watcher's timeouts, page size and backoff. Use one registry per cluster
//! and identity.
//!
//! ```no_run
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube_client::{Api, Client};
//! use kube_runtime::informer::{strip_last_applied, InformerConfig, SharedInformers};
//! use kube_runtime::{Reflector, WatchEvent};
//!
//! # async fn demo() -> Result<(), kube_client::Error> {
//! let client = Client::try_default().await?;
//! let api: Api<ConfigMap> = Api::namespaced(client, "default");
//! let informers = SharedInformers::new();
//! let config = InformerConfig::default().transform(strip_last_applied());
//! let informer = informers.informer(api.clone(), config.clone());
//!
//! let mut audit = informer.subscribe(); // every change, in its own queue
//! let mut rf = Reflector::from_informer(&informers.informer(api, config)); // same watch
//! rf.poll().await?;
//! println!("{} config maps", rf.read().len());
//! for event in audit.recv().await {
//!     if let WatchEvent::Modified(cm) = event {
//!         println!("changed: {:?}", cm.metadata.name);
//!     }
//! }
//! # Ok(()) }
//! ```

mod registry;
pub mod subscription;
pub mod transform;

use std::fmt::Debug;
use std::sync::Arc;

use kube_client::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::queue::WatchEvent;
use crate::store::{Store, Writer};
use crate::watcher::{Event, Watcher, WatcherConfig};

pub use registry::{InformerKey, SharedInformers};
pub use subscription::Subscription;
pub use transform::{Transform, strip_last_applied, strip_managed_fields};

use subscription::Hub;

/// How an informer watches, what it stores, and how much each subscriber
/// may have queued.
pub struct InformerConfig<K> {
    /// The watcher's settings. Its selectors are part of the informer's
    /// identity; the rest is decided by the informer's first user.
    pub watcher: WatcherConfig,
    /// Applied to each object before it is stored (part of the identity, by
    /// name).
    pub transform: Option<Transform<K>>,
    /// The most changes one subscriber may have queued before it is
    /// desynced (default 10,000).
    pub subscriber_capacity: usize,
    /// Store objects with their `metadata.managedFields` (default false:
    /// they are dropped before storing, see [`crate::store`]). Part of the
    /// identity.
    pub keep_managed_fields: bool,
    /// Hold objects encoded and decode them on every read (default false;
    /// see [compact stores](crate::store#compact-stores)). Part of the
    /// identity.
    pub compact: bool,
}

impl<K> Clone for InformerConfig<K> {
    fn clone(&self) -> Self {
        Self {
            watcher: self.watcher.clone(),
            transform: self.transform.clone(),
            subscriber_capacity: self.subscriber_capacity,
            keep_managed_fields: self.keep_managed_fields,
            compact: self.compact,
        }
    }
}

impl<K> Debug for InformerConfig<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InformerConfig")
            .field("watcher", &self.watcher)
            .field("transform", &self.transform)
            .field("subscriber_capacity", &self.subscriber_capacity)
            .field("keep_managed_fields", &self.keep_managed_fields)
            .field("compact", &self.compact)
            .finish()
    }
}

impl<K> Default for InformerConfig<K> {
    fn default() -> Self {
        Self::new(WatcherConfig::default())
    }
}

impl<K> From<WatcherConfig> for InformerConfig<K> {
    fn from(watcher: WatcherConfig) -> Self {
        Self::new(watcher)
    }
}

impl<K> InformerConfig<K> {
    /// These watcher settings, no transform, the default subscriber
    /// capacity, `managedFields` dropped.
    pub fn new(watcher: WatcherConfig) -> Self {
        Self {
            watcher,
            transform: None,
            subscriber_capacity: 10_000,
            keep_managed_fields: false,
            compact: false,
        }
    }

    /// Stores objects with their `metadata.managedFields`, which are
    /// dropped by default (see [`crate::store`]).
    #[must_use]
    pub fn keep_managed_fields(mut self) -> Self {
        self.keep_managed_fields = true;
        self
    }

    /// Makes the store compact: each object held encoded (protobuf for
    /// built-in kinds, JSON otherwise) and decoded on every read (see
    /// [compact stores](crate::store#compact-stores)). Subscribers still
    /// get the changes' objects as they arrived, without decoding; the
    /// `Added` for each object already cached when one subscribes waits in
    /// its queue encoded and is decoded when taken. An informer with a
    /// compact store is not the same informer as one without.
    #[must_use]
    pub fn compact(mut self) -> Self {
        self.compact = true;
        self
    }

    /// Whether the watch decodes protobuf answers without
    /// `managedFields`: when the store drops them and no transform may
    /// read them first (what is dropped anyway is then never built).
    pub(crate) fn skips_managed_fields_when_decoding(&self) -> bool {
        !self.keep_managed_fields && self.transform.is_none()
    }

    /// Sets the transform.
    pub fn transform(mut self, transform: Transform<K>) -> Self {
        self.transform = Some(transform);
        self
    }

    /// Sets the default capacity of each subscriber's queue.
    pub fn subscriber_capacity(mut self, capacity: usize) -> Self {
        self.subscriber_capacity = capacity.max(1);
        self
    }
}

/// What every handle on one informer shares; dropping the last one stops
/// the watch.
pub(crate) struct Shared<K> {
    key: InformerKey,
    store: Store<K>,
    hub: Arc<Hub<K>>,
    subscriber_capacity: usize,
    task: tokio::task::JoinHandle<()>,
}

impl<K> Drop for Shared<K> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One shared list + watch of one kind and its store; see the module docs.
/// Cheap to clone (every clone is the same informer).
pub struct Informer<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K> Debug for Informer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Informer")
            .field("key", &self.shared.key)
            .field("store", &self.shared.store)
            .field("subscribers", &self.shared.hub.live())
            .finish()
    }
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
{
    /// An informer of its own, outside any registry (it shares with no one
    /// but its clones). Starts watching at once.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, with a message saying how to call it.
    pub fn new(api: Api<K>, config: InformerConfig<K>) -> Self {
        let key = InformerKey::of(&api, &config);
        Self::start(key, api, config)
    }

    /// The store, the fan-out, and the writer that fills the one and
    /// feeds the other.
    fn parts(config: &InformerConfig<K>) -> (Store<K>, Arc<Hub<K>>, Writer<K>) {
        let store = Store::without_queue();
        if config.compact {
            store.make_compact();
        }
        let hub = Arc::new(Hub::new());
        let emit_hub = hub.clone();
        let writer = Writer::emitting(store.clone(), Box::new(move |e| emit_hub.broadcast(e)))
            .keeping_managed_fields(config.keep_managed_fields);
        (store, hub, writer)
    }

    /// An informer without a watch, for unit tests: `feed` applies each
    /// event to its store and hands it to its subscribers, as the watch
    /// task of a real one does.
    #[cfg(test)]
    pub(crate) fn fed_by_hand(config: InformerConfig<K>) -> (Self, impl FnMut(Event<K>)) {
        let (store, hub, mut writer) = Self::parts(&config);
        let feed_hub = hub.clone();
        let feed = move |event| feed_hub.applying(|| writer.apply(event));
        let shared = Shared {
            key: InformerKey::unnamed::<K>(),
            store,
            hub,
            subscriber_capacity: config.subscriber_capacity.max(1),
            task: tokio::spawn(async {}),
        };
        (Self::from_shared(Arc::new(shared)), feed)
    }

    pub(crate) fn start(key: InformerKey, api: Api<K>, config: InformerConfig<K>) -> Self {
        let runtime = crate::runtime::require_runtime("starting an informer");
        let (store, hub, mut writer) = Self::parts(&config);
        let api = api.skip_managed_fields(config.skips_managed_fields_when_decoding());
        let mut watcher = Watcher::new(api, config.watcher);
        let transform = config.transform;
        let task_hub = hub.clone();
        let task = runtime.spawn(async move {
            loop {
                match watcher.next().await {
                    Ok(mut event) => {
                        if let Some(t) = &transform {
                            match &mut event {
                                Event::InitApply(obj) | Event::Apply(obj) | Event::Delete(obj) => {
                                    t.apply(obj)
                                }
                                Event::Init | Event::InitDone => {}
                            }
                        }
                        let done = matches!(event, Event::InitDone);
                        task_hub.applying(|| writer.apply(event));
                        if done {
                            task_hub.clear_error();
                        }
                    }
                    Err(e) => task_hub.broadcast(WatchEvent::Error(Arc::new(e))),
                }
            }
        });
        Self {
            shared: Arc::new(Shared {
                key,
                store,
                hub,
                subscriber_capacity: config.subscriber_capacity.max(1),
                task,
            }),
        }
    }
}

impl<K> Informer<K> {
    pub(crate) fn from_shared(shared: Arc<Shared<K>>) -> Self {
        Self { shared }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared<K>> {
        &self.shared
    }

    /// What identifies this informer in a registry.
    pub fn key(&self) -> &InformerKey {
        &self.shared.key
    }

    /// The cache (one for all users of this informer).
    pub fn store(&self) -> Store<K> {
        self.shared.store.clone()
    }

    /// An `Added` for each object cached now, then every change, in a
    /// queue of the informer's default subscriber capacity (see
    /// [`subscription`]).
    pub fn subscribe(&self) -> Subscription<K> {
        self.subscribe_with_capacity(self.shared.subscriber_capacity)
    }

    /// As [`Informer::subscribe`], in a queue of at most `capacity` changes.
    pub fn subscribe_with_capacity(&self, capacity: usize) -> Subscription<K> {
        Subscription::new(
            self.shared.hub.add(capacity.max(1), &self.shared.store),
            self.clone(),
        )
    }

    /// The default capacity of a subscriber's queue.
    pub fn subscriber_capacity(&self) -> usize {
        self.shared.subscriber_capacity
    }

    /// How many subscriptions are alive.
    pub fn subscribers(&self) -> usize {
        self.shared.hub.live()
    }

    /// True once the first complete list is in the store.
    pub fn is_ready(&self) -> bool {
        self.shared.store.is_ready()
    }

    /// Waits until the first complete list is in the store.
    pub async fn wait_until_ready(&self) {
        self.shared.store.wait_until_ready().await
    }

    /// The latest list or watch error since the last complete list, if
    /// any: why an informer is not ready yet, typically.
    pub fn last_error(&self) -> Option<Arc<kube_client::Error>> {
        self.shared.hub.last_error()
    }

    /// True if both handles are the same informer.
    pub fn same_as(&self, other: &Informer<K>) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn the_watch_skips_managed_fields_only_when_nothing_reads_them() {
        let plain = InformerConfig::<ConfigMap>::default();
        assert!(plain.skips_managed_fields_when_decoding());
        assert!(
            !plain
                .clone()
                .keep_managed_fields()
                .skips_managed_fields_when_decoding()
        );
        let transformed = plain.transform(crate::informer::strip_last_applied());
        assert!(!transformed.skips_managed_fields_when_decoding());
    }
}
