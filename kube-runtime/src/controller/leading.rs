//! A controller that reconciles only while its replica leads.
//!
//! Several replicas of an operator run for availability; a
//! [`LeaderElector`](crate::leader_election::LeaderElector) picks the one that
//! acts. [`Controller::leader_election`](super::Controller::leader_election)
//! ties a controller to an election's [`LeaderHandle`]:
//!
//! ```text
//!  syncing ──caches ready──▶ standby ──term begins──▶ leading
//!                              ▲                         │
//!                              └──────term ends──────────┘
//! ```
//!
//! - **Warm standby.** The informers start when the controller is built and
//!   run on every replica, leading or not: a replica that wins the lease
//!   has complete caches and starts reconciling at once. While standing by,
//!   the controller drains its triggers (so subscriptions never fall
//!   behind) and queues nothing.
//! - **Reconciles only within a term.** When a term begins the controller
//!   makes a fresh work queue and worker pool and queues every cached
//!   object — as after a fresh start, since the previous leader's work is
//!   unknown. Before each step of the loop it checks the term on the local
//!   clock ([`Term::is_current`]), and so does each reconcile before it
//!   calls the user's function (a step waiting on the queue can start one
//!   late), so it starts nothing once the renew deadline has passed, even
//!   if the election task has not run since.
//! - **A term's end stops its work at once.** When the term ends (renew
//!   deadline passed, lease taken, or released) the controller drops the
//!   term's worker pool: reconciles in flight are cancelled at their next
//!   `.await` (their futures dropped), their keys are forgotten with the
//!   queue, and the controller goes back to standing by. Cancelling is the
//!   safe choice: another replica may begin its term `lease duration −
//!   renew deadline` after this one ended, and a reconcile allowed to finish
//!   could write in that term. This is logged (`warn`, with the number of
//!   reconciles cancelled). A request already sent may still be applied by
//!   the API server; a reconcile that must not write outside a term checks
//!   [`current_term`] right before each write (after a process freeze, the
//!   runtime may resume a reconcile's task before the election notices the
//!   deadline; the local-clock check does not depend on that).
//! - **Graceful shutdown releases the lease.** On a graceful shutdown
//!   request the controller stops taking keys, lets reconciles in flight
//!   finish (up to the shutdown timeout, and never past the term's end),
//!   then calls [`LeaderHandle::release`] and waits (bounded by the shutdown
//!   timeout) until the elector has stopped, so that the lease is free and
//!   another replica takes over at its next attempt. An immediate shutdown
//!   releases without waiting. If the elector stops for another reason
//!   (someone released the handle), the stream ends.
//!
//! The `leader_election_master_status` gauge follows the elector with
//! [`report_leadership`].
//!
//! **Cold standby** — informers started only on election, stopped when the
//! term ends — is [`run_per_term`]: it builds a fresh controller for each
//! term. It costs no watches while standing by, but every new leader lists
//! everything before reconciling.
//!
//! kube-rs has no leader election; with it, every replica reconciles.
//! controller-runtime's manager gates every leader-election runnable behind
//! one election and *exits the process* when leadership is lost; here a
//! replica that loses its term stands by again and competes for the next
//! one, with warm caches.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{BoxStream, SelectAll};
use futures::{Stream, StreamExt};
use kube_client::Resource;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::builder::Watchable;
use super::config::Config;
use super::runner::RunnerItem;
use super::shutdown::Request;
use super::triggers::{Cache, Trigger};
use super::{Action, Controller, Error, ObjectRef, WorkQueue, run_workers};
use crate::leader_election::{LeaderHandle, Term};
use crate::metrics::LeaderElectionMetrics;
use crate::store::Store;

tokio::task_local! {
    static CURRENT_TERM: Term;
}

/// The leadership term under which the calling reconcile runs, when its
/// controller uses leader election; `None` elsewhere (outside a reconcile,
/// or in a controller without leader election).
///
/// Check it right before a write that only the leader may make:
///
/// ```no_run
/// # fn demo() -> Result<(), &'static str> {
/// use kube_runtime::controller::current_term;
/// if current_term().is_some_and(|term| !term.is_current()) {
///     return Err("no longer leading: not writing");
/// }
/// # Ok(()) }
/// ```
pub fn current_term() -> Option<Term> {
    CURRENT_TERM.try_with(Term::clone).ok()
}

/// What a leader-elected controller needs besides its triggers.
pub(super) struct Parts<K: Resource> {
    pub(super) caches: Vec<Box<dyn Cache>>,
    pub(super) triggers: SelectAll<BoxStream<'static, Trigger<K>>>,
    pub(super) store: Store<K>,
    pub(super) dyntype: K::DynamicType,
    pub(super) config: Config,
    pub(super) graceful: Request,
    pub(super) forceful: Request,
    pub(super) handle: LeaderHandle,
    /// End the stream when the first term ends ([`run_per_term`]).
    pub(super) single_term: bool,
}

type Reconciler<K, C, E> =
    Box<dyn Fn(Arc<K>, Arc<C>) -> BoxFuture<'static, Result<Action, E>> + Send>;
type BoxFuture<'a, T> = futures::future::BoxFuture<'a, T>;
type Policy<K, C, E> = Arc<dyn Fn(Arc<K>, &E, Arc<C>) -> Action + Send + Sync>;

enum Phase<K: Resource, E: std::error::Error + 'static> {
    Syncing,
    Standby,
    Leading(Box<Leading<K, E>>),
    /// Shutting down gracefully: release, then end.
    Releasing,
    Done,
}

struct Leading<K: Resource, E: std::error::Error + 'static> {
    term: Term,
    ended: CancellationToken,
    queue: WorkQueue<ObjectRef<K>>,
    runner: BoxStream<'static, RunnerItem<K, E>>,
}

struct Gated<K: Resource, C, E: std::error::Error + 'static> {
    parts: Parts<K>,
    reconcile: Arc<Mutex<Reconciler<K, C, E>>>,
    error_policy: Policy<K, C, E>,
    ctx: Arc<C>,
    phase: Phase<K, E>,
}

/// The stream of [`Controller::run`] with leader election.
pub(super) fn run<K, C, E, Rec, Fut, Pol>(
    parts: Parts<K>,
    reconcile: Rec,
    error_policy: Pol,
    ctx: Arc<C>,
) -> impl Stream<Item = RunnerItem<K, E>> + Send
where
    K: Watchable,
    K::DynamicType: Clone + Hash + Eq + Send + Sync,
    C: Send + Sync + 'static,
    E: std::error::Error + Send + 'static,
    Rec: Fn(Arc<K>, Arc<C>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    Pol: Fn(Arc<K>, &E, Arc<C>) -> Action + Send + Sync + 'static,
{
    let reconcile: Reconciler<K, C, E> = Box::new(move |obj, ctx| Box::pin(reconcile(obj, ctx)));
    let gated = Gated {
        parts,
        // The reconciler is called (to make its future) from each term's
        // worker pool in turn; the lock makes one `Fn + Send` shareable.
        reconcile: Arc::new(Mutex::new(reconcile)),
        error_policy: Arc::new(error_policy),
        ctx,
        phase: Phase::Syncing,
    };
    futures::stream::unfold(gated, |mut g| async move {
        let item = g.next_item().await?;
        Some((item, g))
    })
}

impl<K, C, E> Gated<K, C, E>
where
    K: Watchable,
    K::DynamicType: Clone + Hash + Eq + Send + Sync,
    C: Send + Sync + 'static,
    E: std::error::Error + Send + 'static,
{
    async fn next_item(&mut self) -> Option<RunnerItem<K, E>> {
        loop {
            match &mut self.phase {
                Phase::Syncing => {
                    let caches = &self.parts.caches;
                    let all_ready =
                        futures::future::join_all(caches.iter().map(|c| c.wait_until_ready()));
                    let timeout = self.parts.config.cache_sync_timeout;
                    tokio::select! {
                        _ = all_ready => {
                            tracing::debug!(caches = caches.len(), "controller caches synced; standing by for leadership");
                            self.phase = Phase::Standby;
                        }
                        () = self.parts.graceful.clone() => self.phase = Phase::Releasing,
                        () = self.parts.forceful.clone() => return self.stop_now(),
                        () = tokio::time::sleep(timeout) => {
                            let not_ready: Vec<String> = caches
                                .iter()
                                .filter(|c| !c.is_ready())
                                .map(|c| c.describe())
                                .collect();
                            tracing::error!(?timeout, ?not_ready, "controller caches did not sync; giving up");
                            self.parts.handle.release();
                            self.phase = Phase::Done;
                            return Some(Err(Error::CacheSyncTimeout { waited: timeout, not_ready }));
                        }
                    }
                }
                Phase::Standby if self.parts.single_term => {
                    // run_per_term: this controller serves one term only.
                    match self.parts.handle.current_term() {
                        Some(term) => self.begin_term(term),
                        None => {
                            self.phase = Phase::Done;
                            return None;
                        }
                    }
                }
                Phase::Standby => {
                    let handle = self.parts.handle.clone();
                    tokio::select! {
                        biased;
                        () = self.parts.forceful.clone() => return self.stop_now(),
                        () = self.parts.graceful.clone() => self.phase = Phase::Releasing,
                        term = handle.acquired() => match term {
                            Some(term) => self.begin_term(term),
                            None => {
                                tracing::info!("leader election stopped; the controller stops");
                                self.phase = Phase::Done;
                                return None;
                            }
                        },
                        Some(trigger) = self.parts.triggers.next() => {
                            // Not leading: the next term reconciles everything anyway.
                            if let Trigger::WatchFailed(e) = trigger {
                                return Some(Err(Error::QueueError((*e).clone())));
                            }
                        }
                    }
                }
                Phase::Leading(leading) => {
                    if !leading.term.is_current() {
                        self.end_term("the term is over on the local clock");
                        continue;
                    }
                    let ended = leading.ended.clone();
                    tokio::select! {
                        biased;
                        () = self.parts.forceful.clone() => return self.stop_now(),
                        () = ended.cancelled() => self.end_term("the term ended"),
                        item = leading.runner.next() => match item {
                            Some(item) => return Some(item),
                            // Only a graceful shutdown ends the runner.
                            None => self.phase = Phase::Releasing,
                        },
                        Some(trigger) = self.parts.triggers.next() => match trigger {
                            Trigger::Reconcile(key) => leading.queue.add(key),
                            Trigger::ReconcileAll => reconcile_all(&self.parts, &leading.queue),
                            Trigger::WatchFailed(e) => {
                                return Some(Err(Error::QueueError((*e).clone())));
                            }
                        },
                    }
                }
                Phase::Releasing => {
                    self.phase = Phase::Done;
                    release_and_wait(&self.parts.handle, self.parts.config.shutdown_timeout).await;
                    return None;
                }
                Phase::Done => return None,
            }
        }
    }

    fn begin_term(&mut self, term: Term) {
        let queue = WorkQueue::new(self.parts.config.work_queue());
        let store = self.parts.store.clone();
        let reconcile = self.reconcile.clone();
        let policy = self.error_policy.clone();
        let in_term = term.clone();
        let runner = run_workers(
            queue.clone(),
            move |r: &ObjectRef<K>| store.get(r.namespace.as_deref(), &r.name),
            move |obj, ctx| {
                let (reconcile, term) = (reconcile.clone(), in_term.clone());
                CURRENT_TERM.scope(in_term.clone(), async move {
                    // The loop checks the term before each step, but while
                    // it waits in one, a requeue timer can start a reconcile
                    // after the renew deadline (before the election task
                    // has ended the term): that reconcile never runs the
                    // user's code, it waits for the term's end to cancel it.
                    if !term.is_current() {
                        std::future::pending::<()>().await;
                    }
                    let fut = (reconcile.lock())(obj, ctx);
                    fut.await
                })
            },
            move |obj, e: &E, ctx| policy(obj, e, ctx),
            self.ctx.clone(),
            self.parts.config.runner(),
            self.parts.graceful.clone(),
        );
        // What piled up while standing by is covered by reconciling all.
        while let Some(Some(_)) = futures::FutureExt::now_or_never(self.parts.triggers.next()) {}
        reconcile_all(&self.parts, &queue);
        tracing::info!(
            term = term.number(),
            objects = queue.len(),
            "leading: the controller reconciles every cached object, then changes"
        );
        self.phase = Phase::Leading(Box::new(Leading {
            ended: term.cancellation_token(),
            term,
            queue,
            runner: runner.boxed(),
        }));
    }

    fn end_term(&mut self, why: &str) {
        let Phase::Leading(leading) = std::mem::replace(&mut self.phase, Phase::Standby) else {
            return;
        };
        let Leading {
            term,
            queue,
            runner,
            ..
        } = *leading;
        // Dropping the worker pool aborts the reconciles in flight.
        let in_flight = queue.processing_len();
        queue.shut_down();
        drop(runner);
        tracing::warn!(
            term = term.number(),
            cancelled = in_flight,
            "stopped leading ({why}): reconciles in flight cancelled; standing by"
        );
        if self.parts.single_term {
            self.phase = Phase::Done;
        }
    }

    /// An immediate shutdown: the worker pool is dropped with the stream.
    fn stop_now(&mut self) -> Option<RunnerItem<K, E>> {
        self.phase = Phase::Done;
        self.parts.handle.release();
        None
    }
}

fn reconcile_all<K>(parts: &Parts<K>, queue: &WorkQueue<ObjectRef<K>>)
where
    K: Watchable,
    K::DynamicType: Clone + Hash + Eq,
{
    for obj in parts.store.read() {
        queue.add(ObjectRef::<K>::from_obj_with(&*obj, parts.dyntype.clone()));
    }
}

/// Stops the election (releasing the lease if held) and waits, at most
/// `limit`, until the elector says it stopped.
async fn release_and_wait(handle: &LeaderHandle, limit: Duration) {
    let mut changes = handle.subscribe();
    handle.release();
    let stopped = async {
        while !handle.status().stopped {
            if changes.changed().await.is_err() {
                return;
            }
        }
    };
    if tokio::time::timeout(limit, stopped).await.is_err() {
        tracing::warn!(
            ?limit,
            "the leader elector did not stop in time; is its `run` future driven?"
        );
    }
}

/// Keeps `leader_election_master_status` (from
/// [`Metrics::leader_election`](crate::metrics::Metrics::leader_election))
/// equal to whether `handle`'s elector leads, until the elector stops (then
/// 0). Spawn it next to the elector.
pub async fn report_leadership(handle: LeaderHandle, metrics: LeaderElectionMetrics) {
    let mut changes = handle.subscribe();
    loop {
        metrics.set_leading(handle.is_leader());
        if handle.status().stopped || changes.changed().await.is_err() {
            metrics.set_leading(false);
            return;
        }
    }
}

/// Cold standby: waits for each term of `handle`'s election, builds a fresh
/// controller with `build` (its informers start now), and runs it until the
/// term ends (reconciles in flight cancelled, informers stopped), then
/// waits for the next term. The stream ends when the election stops
/// ([`LeaderHandle::release`]): to shut down, stop your work and release the
/// handle; the lease is released by the elector.
///
/// Each controller syncs its caches after its term began; the term's first
/// reconciles wait for that (up to [`Config::cache_sync_timeout`]).
/// Shutdown settings given to the built controllers apply within their
/// term only.
pub fn run_per_term<K, C, E, B, Rec, Fut, Pol>(
    handle: LeaderHandle,
    build: B,
    reconcile: Rec,
    error_policy: Pol,
    ctx: Arc<C>,
) -> impl Stream<Item = RunnerItem<K, E>> + Send
where
    K: Watchable,
    K::DynamicType: Clone + Hash + Eq + Send + Sync,
    C: Send + Sync + 'static,
    E: std::error::Error + Send + 'static,
    B: FnMut(&Term) -> Controller<K> + Send + 'static,
    Rec: Fn(Arc<K>, Arc<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    Pol: Fn(Arc<K>, &E, Arc<C>) -> Action + Send + Sync + 'static,
{
    struct Terms<K: Resource, C, E: std::error::Error + 'static, B, Rec, Pol> {
        handle: LeaderHandle,
        build: B,
        reconcile: Arc<Rec>,
        error_policy: Arc<Pol>,
        ctx: Arc<C>,
        current: Option<BoxStream<'static, RunnerItem<K, E>>>,
    }
    let terms = Terms {
        handle,
        build,
        reconcile: Arc::new(reconcile),
        error_policy: Arc::new(error_policy),
        ctx,
        current: None,
    };
    futures::stream::unfold(terms, |mut t| async move {
        loop {
            if let Some(current) = &mut t.current {
                match current.next().await {
                    Some(item) => return Some((item, t)),
                    None => t.current = None,
                }
            }
            let term = t.handle.acquired().await?;
            tracing::info!(
                term = term.number(),
                "leading: starting the controller's caches"
            );
            let (rec, pol) = (t.reconcile.clone(), t.error_policy.clone());
            let stream = (t.build)(&term)
                .single_term(t.handle.clone())
                .run(
                    move |obj, ctx| rec(obj, ctx),
                    move |obj, e: &E, ctx| pol(obj, e, ctx),
                    t.ctx.clone(),
                )
                .boxed();
            t.current = Some(stream);
        }
    })
}
