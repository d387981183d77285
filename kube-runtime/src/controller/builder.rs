//! The controller builder: kube-rs's `Controller`, on shared informers.
//!
//! ```text
//! Controller::new(api, cfg)          the kind to reconcile (K)
//!     .owns(child_api, cfg)          children whose controller ownerReference is a K
//!     .watches(other_api, cfg, map)  anything else, mapped to K's by a function
//!     .reconcile_all_on(stream)      reconcile everything on each item
//!     .with_config(Config { .. })    concurrency, debounce, timeouts
//!     .shutdown_on_signal()          SIGTERM/SIGINT: graceful, then at once
//!     .leader_election(handle)       reconcile only while leading (see leading)
//!     .run(reconcile, error_policy, ctx)  → Stream of results
//! ```
//!
//! What [`Controller::run`] guarantees, beyond the [runner](super::runner)'s
//! (never two reconciles of one object at once, at most `concurrency` at
//! once, latest state read from the cache, graceful shutdown):
//!
//! - **Caches first.** No reconcile starts before every cache the
//!   controller reads — its own kind's, each owned kind's, each watched
//!   kind's — holds a complete list. Then every object of the controller's
//!   kind is reconciled once, and changes from then on (including those made
//!   while waiting) trigger reconciles. If the caches are not all ready within
//!   [`Config::cache_sync_timeout`], the stream yields one
//!   [`Error::CacheSyncTimeout`] and ends.
//! - **Shared watches.** Every trigger takes its informer from the
//!   controller's [`SharedInformers`] registry: the controller's kind and a
//!   watched kind with the same selectors share one watch, and so do
//!   several controllers and reflectors built on one registry
//!   ([`Controller::new_with_informers`], [`Reflector::from_informer`](crate::Reflector::from_informer)).
//! - **Children from the cache.** [`Controller::owned_store`] gives an owned
//!   kind's store, indexed by owner uid ([`Store::owned_by`]), for reconcile
//!   to read children without a request.
//! - **Lean caches.** Every cache drops `metadata.managedFields` from the
//!   objects it stores (see [`crate::store`]), so the objects reconcile
//!   and the triggers see lack them;
//!   [`TriggerConfig::keep_managed_fields`] keeps them for one kind.
//! - **Nothing is lost while it runs.** A trigger that fell behind
//!   reconciles every cached object (see [`triggers`]); the
//!   informers resume or relist across watch failures and API server
//!   restarts by themselves.

use std::any::{Any, TypeId};
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;

use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt, Stream, StreamExt};
use kube_client::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::config::Config;
use super::runner::RunnerItem;
use super::shutdown::{Request, Shutdown};
use super::triggers::{self, Cache, Trigger, TriggerConfig};
use super::{Action, Error, ObjectRef, WorkQueue, leading, run_workers};
use crate::index;
use crate::informer::{Informer, SharedInformers};
use crate::leader_election::LeaderHandle;
use crate::store::Store;

/// What a kind needs to be watched and cached by a controller.
pub trait Watchable:
    Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static
{
}
impl<T> Watchable for T where
    T: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static
{
}

/// A controller of kind `K` under construction; see the module docs.
pub struct Controller<K: Resource> {
    informers: SharedInformers,
    dyntype: K::DynamicType,
    main: Informer<K>,
    triggers: Vec<BoxStream<'static, Trigger<K>>>,
    caches: Vec<Box<dyn Cache>>,
    owned_stores: Vec<(TypeId, Box<dyn Any + Send + Sync>)>,
    config: Config,
    shutdown: Shutdown,
    /// The election gating reconciles, and whether to serve one term only.
    leadership: Option<(LeaderHandle, bool)>,
}

impl<K: Resource> Debug for Controller<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("kind", &K::api_resource(&self.dyntype).kind)
            .field("triggers", &self.triggers.len())
            .field("caches", &self.caches.len())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<K> Controller<K>
where
    K: Watchable,
    K::DynamicType: Clone + Default + Hash + Eq + Send + Sync,
{
    /// A controller of the objects of `api` (its namespace, or all), on a
    /// registry of its own (its triggers share watches among themselves).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (it starts its informer at once), with a
    /// message saying how to call it.
    pub fn new(api: Api<K>, config: impl Into<TriggerConfig<K>>) -> Self {
        Self::new_with_informers(&SharedInformers::new(), api, config)
    }
}

impl<K> Controller<K>
where
    K: Watchable,
    K::DynamicType: Clone + Hash + Eq + Send + Sync,
{
    /// As [`Controller::new`], for a kind known at run time (e.g.
    /// `DynamicObject`), described by `dyntype`.
    pub fn new_with(
        api: Api<K>,
        config: impl Into<TriggerConfig<K>>,
        dyntype: K::DynamicType,
    ) -> Self {
        Self::build(&SharedInformers::new(), api, config.into(), dyntype)
    }

    fn build(
        informers: &SharedInformers,
        api: Api<K>,
        config: TriggerConfig<K>,
        dyntype: K::DynamicType,
    ) -> Self {
        let main = informers.informer(api, config.informer);
        let subscription = main.subscribe();
        let self_dyntype = dyntype.clone();
        let trigger = triggers::from_subscription(
            subscription,
            config.predicate,
            move |obj: &Arc<K>, deleted: bool| {
                (!deleted).then(|| ObjectRef::<K>::from_obj_with(&**obj, self_dyntype.clone()))
            },
        );
        Self {
            informers: informers.clone(),
            dyntype,
            caches: vec![Box::new(main.clone())],
            main,
            triggers: vec![trigger],
            owned_stores: Vec::new(),
            config: Config::default(),
            shutdown: Shutdown::default(),
            leadership: None,
        }
    }

    /// Reconcile children of kind `C` (in `api`'s namespace, or all) whose
    /// controller owner reference (`controller: true`) points at an object
    /// of kind `K`, when they are added, changed or deleted. Their cache is
    /// indexed by owner uid: read children in `reconcile` with
    /// [`Controller::owned_store`] and [`Store::owned_by`].
    pub fn owns<C>(self, api: Api<C>, config: impl Into<TriggerConfig<C>>) -> Self
    where
        C: Watchable,
    {
        let config = config.into();
        let informer = self.informers.informer(api, config.informer);
        self.owns_informer(informer, config.predicate)
    }

    fn owns_informer<C>(
        mut self,
        informer: Informer<C>,
        predicate: Option<super::predicates::Predicate<C>>,
    ) -> Self
    where
        C: Watchable,
    {
        let store = informer.store();
        store.add_index(index::BY_OWNER_UID, index::by_owner_uid());
        let dyntype = self.dyntype.clone();
        self.triggers.push(triggers::from_subscription(
            informer.subscribe(),
            predicate,
            move |child: &Arc<C>, _deleted| triggers::controller_owner::<K, C>(&**child, &dyntype),
        ));
        self.owned_stores.push((TypeId::of::<C>(), Box::new(store)));
        self.caches.push(Box::new(informer));
        self
    }

    /// Reconcile the objects that `mapper` names whenever an object of kind
    /// `C` (in `api`'s namespace, or all) is added, changed or deleted.
    pub fn watches<C, I>(
        mut self,
        api: Api<C>,
        config: impl Into<TriggerConfig<C>>,
        mapper: impl Fn(Arc<C>) -> I + Send + Sync + 'static,
    ) -> Self
    where
        C: Watchable,
        I: IntoIterator<Item = ObjectRef<K>>,
    {
        let config = config.into();
        let informer = self.informers.informer(api, config.informer);
        self.triggers.push(triggers::from_subscription(
            informer.subscribe(),
            config.predicate,
            move |obj: &Arc<C>, _deleted| mapper(obj.clone()),
        ));
        self.caches.push(Box::new(informer));
        self
    }

    /// Reconcile every cached object of kind `K` on each item of `trigger`
    /// (e.g. an interval, or a change in a configuration file). The
    /// stream ending stops only this trigger.
    pub fn reconcile_all_on(mut self, trigger: impl Stream<Item = ()> + Send + 'static) -> Self {
        self.triggers
            .push(trigger.map(|()| Trigger::ReconcileAll).boxed());
        self
    }

    /// Replaces the settings.
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// On SIGTERM or SIGINT, shut down gracefully: take no new keys, let the
    /// reconciles in flight finish (up to [`Config::shutdown_timeout`]),
    /// then end the stream. A second signal ends the stream at once,
    /// cancelling what still runs. The handlers are installed by this call.
    pub fn shutdown_on_signal(mut self) -> Self {
        self.shutdown.on_signal();
        self
    }

    /// Shut down gracefully (as [`Controller::shutdown_on_signal`]'s first
    /// signal) when `trigger` completes.
    pub fn graceful_shutdown_on(
        mut self,
        trigger: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.shutdown.graceful_on(trigger.boxed());
        self
    }

    /// Reconcile only while `handle`'s elector leads (warm standby: the
    /// caches run on every replica); a term's end cancels the reconciles in
    /// flight, a new term reconciles everything, and a graceful shutdown
    /// releases the lease. See [`leading`] for the
    /// guarantees, and [`run_per_term`](super::run_per_term) for cold
    /// standby. Run the elector (`LeaderElector::run`) yourself, e.g. in a
    /// task. Several controllers may share one handle; the first to shut
    /// down gracefully releases it (stops the elector) for all.
    pub fn leader_election(mut self, handle: LeaderHandle) -> Self {
        self.leadership = Some((handle, false));
        self
    }

    /// As [`leader_election`](Self::leader_election), ending the stream
    /// when the current term ends.
    pub(super) fn single_term(mut self, handle: LeaderHandle) -> Self {
        self.leadership = Some((handle, true));
        self
    }

    /// The cache of kind `K`: the objects reconcile is given, readable from
    /// anywhere (it fills as soon as the controller is built).
    pub fn store(&self) -> Store<K> {
        self.main.store()
    }

    /// The cache of the owned kind `C` (the first one added with
    /// [`Controller::owns`] if several share the Rust type, e.g.
    /// `DynamicObject`; get the others from [`Controller::informers`]).
    /// Indexed by owner uid: see [`Store::owned_by`].
    pub fn owned_store<C: 'static>(&self) -> Option<Store<C>> {
        self.owned_stores
            .iter()
            .find(|(t, _)| *t == TypeId::of::<C>())
            .and_then(|(_, s)| s.downcast_ref::<Store<C>>())
            .cloned()
    }

    /// The registry the controller's informers come from: build reflectors
    /// or other controllers on it to share its watches.
    pub fn informers(&self) -> &SharedInformers {
        &self.informers
    }

    /// Runs the controller: `reconcile(object, ctx)` for each object that
    /// needs it, `error_policy(object, &error, ctx)` after a failure (e.g.
    /// [`default_error_policy`](super::default_error_policy)). The stream
    /// yields one item per finished reconcile, per queued object missing
    /// from the cache, and per watch error; it must be polled for anything
    /// to happen, and it ends after a shutdown (or a cache sync timeout).
    /// Dropping it cancels the reconciles in flight.
    pub fn run<C, E, Rec, Fut, Pol>(
        self,
        reconcile: Rec,
        error_policy: Pol,
        ctx: Arc<C>,
    ) -> impl Stream<Item = RunnerItem<K, E>> + Send
    where
        C: Send + Sync + 'static,
        E: std::error::Error + Send + 'static,
        Rec: Fn(Arc<K>, Arc<C>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        Pol: Fn(Arc<K>, &E, Arc<C>) -> Action + Send + Sync + 'static,
    {
        let (graceful, forceful) = self.shutdown.into_requests();
        if let Some((handle, single_term)) = self.leadership {
            let parts = leading::Parts {
                caches: self.caches,
                triggers: futures::stream::select_all(self.triggers),
                store: self.main.store(),
                dyntype: self.dyntype,
                config: self.config,
                graceful,
                forceful,
                handle,
                single_term,
            };
            return leading::run(parts, reconcile, error_policy, ctx).left_stream();
        }
        let queue = WorkQueue::new(self.config.work_queue());
        let store = self.main.store();
        let lookup_store = store.clone();
        let runner = run_workers(
            queue.clone(),
            move |r: &ObjectRef<K>| lookup_store.get(r.namespace.as_deref(), &r.name),
            reconcile,
            error_policy,
            ctx,
            self.config.runner(),
            graceful.clone(),
        );
        let running = Running {
            runner: runner.boxed(),
            triggers: futures::stream::select_all(self.triggers),
            queue,
            store,
            dyntype: self.dyntype,
            forceful,
            caches: Vec::new(),
        };
        let syncing = Syncing {
            caches: self.caches,
            timeout: self.config.cache_sync_timeout,
            graceful,
            running,
        };
        futures::stream::unfold(Phase::Syncing(Box::new(syncing)), Phase::step).right_stream()
    }
}

impl<K> Controller<K>
where
    K: Watchable,
    K::DynamicType: Clone + Default + Hash + Eq + Send + Sync,
{
    /// A controller of the objects of `api` whose informers come from
    /// `informers`: it shares watches with every controller, reflector and
    /// subscriber on the same registry.
    ///
    /// # Panics
    ///
    /// As [`Controller::new`].
    pub fn new_with_informers(
        informers: &SharedInformers,
        api: Api<K>,
        config: impl Into<TriggerConfig<K>>,
    ) -> Self {
        Self::build(informers, api, config.into(), K::DynamicType::default())
    }
}

/// Waiting for the caches.
struct Syncing<K: Resource, E: std::error::Error + 'static> {
    caches: Vec<Box<dyn Cache>>,
    timeout: std::time::Duration,
    graceful: Request,
    running: Running<K, E>,
}

/// Reconciling.
struct Running<K: Resource, E: std::error::Error + 'static> {
    runner: BoxStream<'static, RunnerItem<K, E>>,
    triggers: SelectAll<BoxStream<'static, Trigger<K>>>,
    queue: WorkQueue<ObjectRef<K>>,
    store: Store<K>,
    dyntype: K::DynamicType,
    forceful: Request,
    /// The informers, kept running as long as the stream.
    caches: Vec<Box<dyn Cache>>,
}

enum Phase<K: Resource, E: std::error::Error + 'static> {
    Syncing(Box<Syncing<K, E>>),
    Running(Box<Running<K, E>>),
    Done,
}

type Step<K, E> = Pin<Box<dyn Future<Output = Option<(RunnerItem<K, E>, Phase<K, E>)>> + Send>>;

impl<K, E> Phase<K, E>
where
    K: Watchable,
    K::DynamicType: Clone + Hash + Eq + Send + Sync,
    E: std::error::Error + Send + 'static,
{
    fn step(self) -> Step<K, E> {
        async move {
            match self {
                Phase::Syncing(syncing) => {
                    let Syncing {
                        caches,
                        timeout,
                        graceful,
                        mut running,
                    } = *syncing;
                    let all_ready =
                        futures::future::join_all(caches.iter().map(|c| c.wait_until_ready()));
                    tokio::select! {
                        _ = all_ready => {}
                        () = graceful => return None,
                        () = running.forceful.clone() => return None,
                        () = tokio::time::sleep(timeout) => {
                            let not_ready: Vec<String> = caches
                                .iter()
                                .filter(|c| !c.is_ready())
                                .map(|c| c.describe())
                                .collect();
                            tracing::error!(?timeout, ?not_ready, "controller caches did not sync; giving up");
                            return Some((
                                Err(Error::CacheSyncTimeout { waited: timeout, not_ready }),
                                Phase::Done,
                            ));
                        }
                    }
                    tracing::debug!(caches = caches.len(), "controller caches synced");
                    running.caches = caches;
                    running.start();
                    running.next().await
                }
                Phase::Running(running) => running.next().await,
                Phase::Done => None,
            }
        }
        .boxed()
    }
}

impl<K, E> Running<K, E>
where
    K: Watchable,
    K::DynamicType: Clone + Hash + Eq + Send + Sync,
    E: std::error::Error + Send + 'static,
{
    /// Before the first reconcile: queue what the triggers buffered while
    /// the caches synced (the initial lists' objects among them), then every
    /// cached object. The queue folds duplicates, so each object is
    /// reconciled once to start with.
    fn start(&mut self) {
        while let Some(Some(trigger)) = self.triggers.next().now_or_never() {
            match trigger {
                Trigger::Reconcile(key) => self.queue.add(key),
                Trigger::ReconcileAll => {}
                Trigger::WatchFailed(e) => {
                    tracing::debug!(error = %e, "watch error while the caches synced");
                }
            }
        }
        self.reconcile_all();
    }

    fn reconcile_all(&self) {
        for obj in self.store.read() {
            self.queue
                .add(ObjectRef::<K>::from_obj_with(&*obj, self.dyntype.clone()));
        }
    }

    async fn next(mut self) -> Option<(RunnerItem<K, E>, Phase<K, E>)> {
        loop {
            tokio::select! {
                biased;
                () = self.forceful.clone() => return None,
                item = self.runner.next() => {
                    let item = item?;
                    return Some((item, Phase::Running(Box::new(self))));
                }
                Some(trigger) = self.triggers.next() => match trigger {
                    Trigger::Reconcile(key) => self.queue.add(key),
                    Trigger::ReconcileAll => self.reconcile_all(),
                    Trigger::WatchFailed(e) => {
                        let item = Err(Error::QueueError((*e).clone()));
                        return Some((item, Phase::Running(Box::new(self))));
                    }
                },
            }
        }
    }
}
