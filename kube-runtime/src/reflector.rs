//! The Reflector: a [`Store`] kept current by a [`Watcher`].
//!
//! A reflector owns a watcher and a store. The watcher runs in a background
//! task and hands its events over a bounded channel (so a reflector that is
//! not polled stops pulling from the server instead of buffering without
//! limit). Applying them to the store is the job of [`Reflector::poll`]:
//!
//! - the first `poll()` returns once the initial list is in the store;
//! - each later `poll()` waits for the next change, then applies everything
//!   else that has already arrived, and returns;
//! - [`Reflector::read`] gives the current objects, [`Reflector::events`]
//!   drains the queue of changes (see [`crate::queue`]), and
//!   [`Reflector::reader`] a cloneable handle for other tasks;
//! - [`Reflector::run`] polls forever: spawn it to keep a store current in
//!   the background.
//!
//! What the store holds of each object: everything but
//! `metadata.managedFields`, unless [`ReflectorConfig::keep_managed_fields`]
//! says otherwise (see [`crate::store`]); with [`ReflectorConfig::compact`],
//! held encoded and decoded on every read (see
//! [compact stores](crate::store#compact-stores)). The objects `events()` hands out
//! are the stored ones. Unless it keeps them, a reflector's watch decodes
//! protobuf answers without `managedFields` in the first place
//! ([`Api::skip_managed_fields`]), whatever the `Api` it was given says.
//!
//! Errors never stop a reflector: the watcher retries with backoff (and
//! relists after a 410), `poll()` returns the error once and it is queued as
//! [`WatchEvent::Error`].
//!
//! A reflector made with [`Reflector::new`] (or `with_config`,
//! `with_indexes`) owns its watch. One made with [`Reflector::from_informer`]
//! shares the watch and the store of a [shared informer](crate::informer)
//! with everyone else using it, and keeps a subscription of its own: its
//! `poll()`, `read()` and `events()` behave the same, except that the
//! informer applies changes to the store by itself (`poll()` only moves the
//! reflector's changes into its queue), and the store's own `events()` is
//! empty — take them from the reflector.

use std::fmt::Debug;
use std::sync::Arc;

use kube_client::{Api, Error, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::index::IndexFn;
use crate::informer::{Informer, Subscription};
use crate::queue::{EventQueue, Queued, Taken, WatchEvent};
use crate::store::{Store, Writer};
use crate::watcher::{Event, Watcher, WatcherConfig};

/// How a reflector watches and how many events it queues.
#[derive(Debug, Clone)]
pub struct ReflectorConfig {
    /// The watcher's settings (selectors, page size, timeouts, backoff).
    pub watcher: WatcherConfig,
    /// The most events kept for [`Reflector::events`] (default 10,000).
    pub queue_capacity: usize,
    /// Watcher events buffered between the background task and `poll()`.
    pub channel_capacity: usize,
    /// Store objects with their `metadata.managedFields` (default false:
    /// they are dropped before storing, see [`crate::store`]).
    pub keep_managed_fields: bool,
    /// Hold objects encoded and decode them on every read (default false;
    /// see [compact stores](crate::store#compact-stores)).
    pub compact: bool,
}

impl Default for ReflectorConfig {
    fn default() -> Self {
        Self {
            watcher: WatcherConfig::default(),
            queue_capacity: 10_000,
            channel_capacity: 1024,
            keep_managed_fields: false,
            compact: false,
        }
    }
}

impl ReflectorConfig {
    /// Stores objects with their `metadata.managedFields`, which are
    /// dropped by default (see [`crate::store`]): for a reflector whose
    /// users read which field manager set what.
    #[must_use]
    pub fn keep_managed_fields(mut self) -> Self {
        self.keep_managed_fields = true;
        self
    }

    /// Makes the store compact: each object held encoded (protobuf for
    /// built-in kinds, JSON otherwise) and decoded on every read — a
    /// fraction of the memory for a decode per `read()`/`get()`. For
    /// large caches read rarely; see
    /// [compact stores](crate::store#compact-stores). The queue of
    /// `events()` holds their objects encoded too (shared with the store)
    /// and decodes them when drained. The channel in front of the store
    /// still holds up to [`channel_capacity`](Self::channel_capacity)
    /// decoded objects in flight.
    #[must_use]
    pub fn compact(mut self) -> Self {
        self.compact = true;
        self
    }

    /// Whether the watch decodes protobuf answers without
    /// `managedFields`: whenever the store drops them (what is dropped
    /// anyway is then never built).
    pub(crate) fn skips_managed_fields_when_decoding(&self) -> bool {
        !self.keep_managed_fields
    }
}

/// A cache of one kind (in one namespace or all), kept current by
/// list + watch.
pub struct Reflector<K> {
    store: Store<K>,
    feed: Feed<K>,
}

/// Where a reflector's changes come from.
enum Feed<K> {
    /// Its own watcher task; `poll()` applies to the store, which queues.
    Own {
        writer: Writer<K>,
        rx: mpsc::Receiver<Result<Event<K>, Error>>,
        task: tokio::task::JoinHandle<()>,
    },
    /// A shared informer; `poll()` moves the subscription's changes here.
    Shared {
        subscription: Subscription<K>,
        queue: EventQueue<K>,
        polled: bool,
    },
}

impl<K> Debug for Reflector<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reflector")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<K> Drop for Reflector<K> {
    fn drop(&mut self) {
        if let Feed::Own { task, .. } = &self.feed {
            task.abort();
        }
    }
}

impl<K> Reflector<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
{
    /// A reflector over `api` with default settings. Starts watching at
    /// once (in a tokio task); call [`poll`](Reflector::poll) to apply.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (it spawns its watch task), with a message
    /// saying so: call it from async code run by tokio, or after
    /// `let _guard = runtime.enter();`.
    pub fn new(api: Api<K>) -> Self {
        Self::with_config(api, ReflectorConfig::default())
    }

    /// A reflector with explicit settings.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as [`Reflector::new`].
    pub fn with_config(api: Api<K>, config: ReflectorConfig) -> Self {
        Self::with_indexes(api, config, Vec::new())
    }

    /// A reflector whose store also keeps the named indexes (see
    /// [`crate::index`]), queried with [`Store::by_index`].
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as [`Reflector::new`].
    pub fn with_indexes(
        api: Api<K>,
        config: ReflectorConfig,
        indexes: Vec<(String, IndexFn<K>)>,
    ) -> Self {
        let runtime =
            crate::runtime::require_runtime("Reflector::new (or with_config, with_indexes)");
        let store = Store::with_indexes(config.queue_capacity, indexes);
        if config.compact {
            store.make_compact();
        }
        let (tx, rx) = mpsc::channel(config.channel_capacity.max(1));
        let keep_managed_fields = config.keep_managed_fields;
        let api = api.skip_managed_fields(config.skips_managed_fields_when_decoding());
        let mut watcher = Watcher::new(api, config.watcher);
        let task = runtime.spawn(async move {
            loop {
                let mut event = watcher.next().await;
                // Lean before the channel, so that what waits in it is
                // already lean (the writer's pass is then a no-op).
                if let Ok(Event::InitApply(obj) | Event::Apply(obj) | Event::Delete(obj)) =
                    &mut event
                {
                    crate::lean::lean(obj, keep_managed_fields);
                }
                if tx.send(event).await.is_err() {
                    return; // the reflector is gone
                }
            }
        });
        Self {
            feed: Feed::Own {
                writer: Writer::new(store.clone())
                    .keeping_managed_fields(config.keep_managed_fields),
                rx,
                task,
            },
            store,
        }
    }

    /// A reflector on a shared informer: its store is the informer's, and
    /// its queue gets an `Added` for each object already cached, then every
    /// change (the informer's subscriber capacity bounds it), as a reflector
    /// of its own would. The first `poll()` returns once the store is ready
    /// (at once if it already is). No watch of its own; nothing to spawn.
    ///
    /// On a [compact](crate::informer::InformerConfig::compact) informer this queue holds
    /// its events' objects encoded, as a compact reflector of its own does
    /// (see [compact stores](crate::store#compact-stores)): the initial
    /// `Added`s and every change of the version the store holds share the
    /// store's bytes, a `Deleted` holds its object's encoding, and each is
    /// decoded when drained — one at a time with
    /// [`events_iter`](Reflector::events_iter).
    pub fn from_informer(informer: &Informer<K>) -> Self {
        let store = informer.store();
        let queue = EventQueue::new(informer.subscriber_capacity());
        store.decode_events_in(&queue);
        Self {
            feed: Feed::Shared {
                subscription: informer.subscribe(),
                queue,
                polled: false,
            },
            store,
        }
    }
}

impl<K> Reflector<K> {
    /// Applies what the server has sent: the first call returns once the
    /// initial list is in; later calls wait for the next change and apply
    /// everything else already received. An error is returned once (and
    /// queued); the watcher keeps retrying by itself.
    pub async fn poll(&mut self) -> Result<(), Error>
    where
        K: Resource + Send + Sync + 'static,
    {
        match &mut self.feed {
            Feed::Own { writer, rx, .. } => poll_own(&self.store, writer, rx).await,
            Feed::Shared {
                subscription,
                queue,
                polled,
            } => {
                let first = !std::mem::replace(polled, true);
                poll_shared(&self.store, subscription, queue, first).await
            }
        }
    }

    /// Keeps the store current forever (errors are logged and queued).
    /// Spawn it, after taking a [`reader`](Reflector::reader).
    pub async fn run(mut self)
    where
        K: Resource + Send + Sync + 'static,
    {
        loop {
            match self.poll().await {
                Ok(()) => {}
                Err(e) if crate::watcher::requires_relist(&e) => {
                    tracing::info!(error = %e, "reflector: resourceVersion expired; relisting");
                }
                Err(e) => tracing::warn!(error = %e, "reflector: list/watch failed; retrying"),
            }
        }
    }

    /// The current objects (`Arc` clones).
    pub fn read(&self) -> Vec<Arc<K>> {
        self.store.read()
    }

    /// Drains the queue of changes since the last call.
    pub fn events(&self) -> Vec<WatchEvent<K>> {
        match &self.feed {
            Feed::Own { .. } => self.store.events(),
            Feed::Shared { queue, .. } => queue.drain(),
        }
    }

    /// As [`Reflector::events`], handing the events out one by one; with a
    /// [compact](ReflectorConfig::compact) store each is decoded only when
    /// reached (see [`Store::events_iter`]): the way to drain a compact
    /// reflector's initial list without holding it all decoded.
    pub fn events_iter(&self) -> crate::queue::DrainedEvents<'_, K> {
        match &self.feed {
            Feed::Own { .. } => self.store.events_iter(),
            Feed::Shared { queue, .. } => queue.drain_iter(),
        }
    }

    /// A cloneable handle on the store for other tasks.
    pub fn reader(&self) -> Store<K> {
        self.store.clone()
    }

    /// How many events wait with their object encoded: in the
    /// subscription of a reflector on an informer, then in its own queue.
    #[cfg(test)]
    fn held_encoded(&self) -> (usize, usize) {
        match &self.feed {
            Feed::Own { .. } => (0, 0),
            Feed::Shared {
                subscription,
                queue,
                ..
            } => (subscription.queued_encoded(), queue.encoded()),
        }
    }
}

async fn recv_own<K>(rx: &mut mpsc::Receiver<Result<Event<K>, Error>>) -> Result<Event<K>, Error> {
    match rx.recv().await {
        Some(item) => item,
        None => Err(Error::Config("the reflector's watcher task stopped".into())),
    }
}

fn apply_own<K: Resource + Send + Sync + 'static>(
    store: &Store<K>,
    writer: &mut Writer<K>,
    item: Result<Event<K>, Error>,
) -> Result<(), Error> {
    match item {
        Ok(event) => {
            writer.apply(event);
            Ok(())
        }
        Err(e) => {
            store.push_event(WatchEvent::Error(Arc::new(e.clone())));
            Err(e)
        }
    }
}

async fn poll_own<K: Resource + Send + Sync + 'static>(
    store: &Store<K>,
    writer: &mut Writer<K>,
    rx: &mut mpsc::Receiver<Result<Event<K>, Error>>,
) -> Result<(), Error> {
    if !store.is_ready() {
        while !store.is_ready() {
            let item = recv_own(rx).await;
            apply_own(store, writer, item)?;
        }
        return Ok(());
    }
    let first = recv_own(rx).await;
    let mut result = apply_own(store, writer, first);
    while let Ok(item) = rx.try_recv() {
        let applied = apply_own(store, writer, item);
        if result.is_ok() {
            result = applied;
        }
    }
    result
}

/// Moves what a subscription had queued into the reflector's queue,
/// without decoding what is encoded and with the objects of a compact
/// store's changes encoded (see [`Store::queued_form`]); returns its first
/// error.
fn take<K: Resource>(store: &Store<K>, queue: &EventQueue<K>, taken: Taken<K>) -> Option<Error> {
    if taken.dropped > 0 {
        queue.push(WatchEvent::Desynced {
            dropped: taken.dropped,
        });
    }
    let mut first_error = None;
    for queued in taken.events {
        let queued = match queued {
            Queued::Event(event) => {
                if let (WatchEvent::Error(e), None) = (&event, &first_error) {
                    first_error = Some((**e).clone());
                }
                store.queued_form(event)
            }
            encoded @ Queued::Encoded(..) => encoded,
        };
        queue.push_queued(queued);
    }
    first_error
}

/// Moves a subscription's changes into the reflector's queue: on the first
/// call until the store is ready (at once if it is), later until at least
/// one arrived. The first error among them is returned (all stay queued).
async fn poll_shared<K: Resource>(
    store: &Store<K>,
    subscription: &mut Subscription<K>,
    queue: &EventQueue<K>,
    first: bool,
) -> Result<(), Error> {
    if first && store.is_ready() {
        return match take(store, queue, subscription.try_recv_queued()) {
            Some(e) => Err(e),
            None => Ok(()),
        };
    }
    if !store.is_ready() {
        // Wake on each change (and error) until the list is complete.
        loop {
            let error = tokio::select! {
                taken = subscription.recv_queued() => take(store, queue, taken),
                () = store.wait_until_ready() => None,
            };
            if let Some(e) = error {
                return Err(e);
            }
            if store.is_ready() {
                take(store, queue, subscription.try_recv_queued());
                return Ok(());
            }
        }
    }
    match take(store, queue, subscription.recv_queued().await) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::informer::InformerConfig;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn cm(name: &str, version: &str, data: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            data: Some([("k".to_string(), data.to_string())].into()),
            ..ConfigMap::default()
        }
    }

    /// What a reflector on an informer queues for a list of `a` and `b`,
    /// then a change, a delete and a creation: the events (drained whole or
    /// one by one) as `(change, object)`, and how many events were held
    /// encoded in its subscription before the first `poll()` and in its
    /// queue before the drain.
    async fn from_informer_events(
        config: InformerConfig<ConfigMap>,
        one_by_one: bool,
    ) -> (Vec<(char, ConfigMap)>, (usize, usize)) {
        let (informer, mut feed) = Informer::fed_by_hand(config);
        feed(Event::Init);
        feed(Event::InitApply(cm("a", "1", "a1")));
        feed(Event::InitApply(cm("b", "2", "b1")));
        feed(Event::InitDone);
        let mut rf = Reflector::from_informer(&informer);
        let in_subscription = rf.held_encoded().0;
        rf.poll().await.unwrap();
        feed(Event::Apply(cm("a", "3", "a2")));
        feed(Event::Delete(cm("b", "4", "b1")));
        feed(Event::Apply(cm("c", "5", "c1")));
        rf.poll().await.unwrap();
        assert_eq!(rf.held_encoded().0, 0, "all moved to the reflector");
        let in_queue = rf.held_encoded().1;
        let events: Vec<WatchEvent<ConfigMap>> = if one_by_one {
            rf.events_iter().collect()
        } else {
            rf.events()
        };
        let mut events: Vec<(char, ConfigMap)> = events
            .into_iter()
            .map(|e| match e {
                WatchEvent::Added(o) => ('+', (*o).clone()),
                WatchEvent::Modified(o) => ('~', (*o).clone()),
                WatchEvent::Deleted(o) => ('-', (*o).clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        // The initial Addeds come in the store's order, which is none.
        let initial = events.len().min(2);
        events[..initial].sort_by(|x, y| x.1.metadata.name.cmp(&y.1.metadata.name));
        (events, (in_subscription, in_queue))
    }

    #[tokio::test]
    async fn a_reflector_on_a_compact_informer_queues_its_events_encoded() {
        let (expected, held) = from_informer_events(InformerConfig::default(), false).await;
        assert_eq!(held, (0, 0), "a default informer's are decoded");
        let names: Vec<String> = expected
            .iter()
            .map(|(c, o)| format!("{c}{}", o.metadata.name.as_deref().unwrap()))
            .collect();
        assert_eq!(names, ["+a", "+b", "~a", "-b", "+c"]);
        for one_by_one in [false, true] {
            let compact = InformerConfig::default().compact();
            let (events, held) = from_informer_events(compact, one_by_one).await;
            assert_eq!(
                held,
                (2, 5),
                "the initial Addeds wait encoded in the subscription, then \
                 every event in the reflector's queue"
            );
            assert_eq!(events, expected, "decoded when drained, equal objects");
        }
    }

    #[test]
    fn the_watch_skips_managed_fields_unless_the_store_keeps_them() {
        let config = ReflectorConfig::default();
        assert!(config.skips_managed_fields_when_decoding());
        assert!(
            !config
                .keep_managed_fields()
                .skips_managed_fields_when_decoding()
        );
    }
}
