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
//! Errors never stop a reflector: the watcher retries with backoff (and
//! relists after a 410), `poll()` returns the error once and it is queued as
//! [`WatchEvent::Error`].

use std::fmt::Debug;
use std::sync::Arc;

use kube_client::{Api, Error, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::index::IndexFn;
use crate::queue::WatchEvent;
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
}

impl Default for ReflectorConfig {
    fn default() -> Self {
        Self {
            watcher: WatcherConfig::default(),
            queue_capacity: 10_000,
            channel_capacity: 1024,
        }
    }
}

/// A cache of one kind (in one namespace or all), kept current by
/// list + watch.
pub struct Reflector<K> {
    store: Store<K>,
    writer: Writer<K>,
    rx: mpsc::Receiver<Result<Event<K>, Error>>,
    task: tokio::task::JoinHandle<()>,
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
        self.task.abort();
    }
}

impl<K> Reflector<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
{
    /// A reflector over `api` with default settings. Starts watching at
    /// once (in a tokio task); call [`poll`](Reflector::poll) to apply.
    pub fn new(api: Api<K>) -> Self {
        Self::with_config(api, ReflectorConfig::default())
    }

    /// A reflector with explicit settings.
    pub fn with_config(api: Api<K>, config: ReflectorConfig) -> Self {
        Self::with_indexes(api, config, Vec::new())
    }

    /// A reflector whose store also keeps the named indexes (see
    /// [`crate::index`]), queried with [`Store::by_index`].
    pub fn with_indexes(
        api: Api<K>,
        config: ReflectorConfig,
        indexes: Vec<(String, IndexFn<K>)>,
    ) -> Self {
        let store = Store::with_indexes(config.queue_capacity, indexes);
        let (tx, rx) = mpsc::channel(config.channel_capacity.max(1));
        let mut watcher = Watcher::new(api, config.watcher);
        let task = tokio::spawn(async move {
            loop {
                let event = watcher.next().await;
                if tx.send(event).await.is_err() {
                    return; // the reflector is gone
                }
            }
        });
        Self {
            writer: Writer::new(store.clone()),
            store,
            rx,
            task,
        }
    }

    fn apply(&mut self, item: Result<Event<K>, Error>) -> Result<(), Error> {
        match item {
            Ok(event) => {
                self.writer.apply(event);
                Ok(())
            }
            Err(e) => {
                self.store
                    .push_event(WatchEvent::Error(Arc::new(e.clone())));
                Err(e)
            }
        }
    }

    async fn recv(&mut self) -> Result<Event<K>, Error> {
        match self.rx.recv().await {
            Some(item) => item,
            None => Err(Error::Config("the reflector's watcher task stopped".into())),
        }
    }

    /// Applies what the server has sent: the first call returns once the
    /// initial list is in; later calls wait for the next change and apply
    /// everything else already received. An error is returned once (and
    /// queued); the watcher keeps retrying by itself.
    pub async fn poll(&mut self) -> Result<(), Error> {
        if !self.store.is_ready() {
            while !self.store.is_ready() {
                let item = self.recv().await;
                self.apply(item)?;
            }
            return Ok(());
        }
        let first = self.recv().await;
        let mut result = self.apply(first);
        while let Ok(item) = self.rx.try_recv() {
            let applied = self.apply(item);
            if result.is_ok() {
                result = applied;
            }
        }
        result
    }

    /// Keeps the store current forever (errors are logged and queued).
    /// Spawn it, after taking a [`reader`](Reflector::reader).
    pub async fn run(mut self) {
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
        self.store.events()
    }

    /// A cloneable handle on the store for other tasks.
    pub fn reader(&self) -> Store<K> {
        self.store.clone()
    }
}
