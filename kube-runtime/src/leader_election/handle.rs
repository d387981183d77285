//! What the rest of the program sees of an election: a cloneable
//! [`LeaderHandle`], the [`Term`] of one leadership and a [`LeaderStatus`].
//!
//! Leadership is judged on the local monotonic clock: a term lasts until
//! `start of the last successful renewal + renew deadline`, and
//! [`LeaderHandle::is_leader`] and [`Term::is_current`] compare that instant
//! with *now* at every call. So a process that was frozen (SIGSTOP, a long
//! GC-like pause, a stalled runtime) sees at once, on waking, that it no
//! longer leads — before its background task has run a single step. Check
//! it immediately before every write that only the leader may make.

use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// State shared between the election task and its handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) lease_name: String,
    pub(crate) identity: String,
    pub(crate) state: Mutex<State>,
    /// `true` while leading; every change of leadership is sent.
    pub(crate) leading: watch::Sender<bool>,
    /// Cancelled to stop the election (and release the lease).
    pub(crate) shutdown: CancellationToken,
}

#[derive(Debug)]
pub(crate) struct State {
    /// Terms begun so far; the current or last term's number.
    pub(crate) term: u64,
    /// While leading: the instant the current term ends unless renewed.
    pub(crate) leading_until: Option<Instant>,
    /// Cancelled when the current term ends.
    pub(crate) term_ended: CancellationToken,
    /// The holder last seen on the lease (`None`: free or released).
    pub(crate) observed_holder: Option<String>,
    /// `leaseTransitions` last seen on the lease.
    pub(crate) lease_transitions: i32,
    /// The last failed request, if the last attempt failed.
    pub(crate) last_error: Option<String>,
    /// Whether the election task has stopped.
    pub(crate) stopped: bool,
}

impl Shared {
    pub(crate) fn new(lease_name: String, identity: String) -> Self {
        let ended = CancellationToken::new();
        ended.cancel();
        Self {
            lease_name,
            identity,
            state: Mutex::new(State {
                term: 0,
                leading_until: None,
                term_ended: ended,
                observed_holder: None,
                lease_transitions: 0,
                last_error: None,
                stopped: false,
            }),
            leading: watch::channel(false).0,
            shutdown: CancellationToken::new(),
        }
    }
}

impl State {
    fn leading_now(&self) -> bool {
        self.leading_until
            .is_some_and(|until| Instant::now() < until)
    }
}

/// A cheap, cloneable view of a running [`LeaderElector`](super::LeaderElector):
/// whether it leads, a future for the next term, and the way to stop it.
#[derive(Debug, Clone)]
pub struct LeaderHandle {
    pub(crate) shared: Arc<Shared>,
}

impl LeaderHandle {
    /// Whether this candidate leads *now*, judged on the local clock (see
    /// the module documentation): false as soon as the renew deadline has
    /// passed, even if the election task has not run since.
    pub fn is_leader(&self) -> bool {
        self.shared.state.lock().leading_now()
    }

    /// The current term, if this candidate leads now.
    pub fn current_term(&self) -> Option<Term> {
        let state = self.shared.state.lock();
        state.leading_now().then(|| Term {
            number: state.term,
            ended: state.term_ended.clone(),
            shared: self.shared.clone(),
        })
    }

    /// Waits until this candidate leads and returns that term; `None` once
    /// the elector has stopped (after [`release`](Self::release)).
    pub async fn acquired(&self) -> Option<Term> {
        let mut changes = self.shared.leading.subscribe();
        loop {
            if let Some(term) = self.current_term() {
                return Some(term);
            }
            if self.shared.state.lock().stopped || self.shared.shutdown.is_cancelled() {
                return None;
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return None },
                () = self.shared.shutdown.cancelled() => {}
            }
        }
    }

    /// Runs `work` once per term, for as long as the elector runs: waits to
    /// lead, calls `work(term)`, and after it returns waits for the term to
    /// end before competing again. `work` must return once
    /// `term.cancellation_token()` is cancelled (e.g. run a controller until
    /// then, and let reconciles in flight finish). Returns after
    /// [`release`](Self::release).
    pub async fn run_while_leading<F, Fut>(&self, mut work: F)
    where
        F: FnMut(Term) -> Fut,
        Fut: Future<Output = ()>,
    {
        while let Some(term) = self.acquired().await {
            work(term.clone()).await;
            term.ended().await;
        }
    }

    /// Every change of leadership: `true` when a term begins, `false` when
    /// it ends. The value is the election task's view; for a write that
    /// only the leader may make, check [`is_leader`](Self::is_leader).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.shared.leading.subscribe()
    }

    /// Stops the election. If leading, the term ends at once and — with
    /// `release_on_shutdown` — the lease is released so that another
    /// candidate takes over at its next attempt. The elector's
    /// [`run`](super::LeaderElector::run) future returns when done; await it
    /// to know the release was written. Stop your own leader-only work
    /// before calling this.
    pub fn release(&self) {
        self.shared.shutdown.cancel();
    }

    /// A snapshot of the election, for logs, health checks and metrics.
    pub fn status(&self) -> LeaderStatus {
        let state = self.shared.state.lock();
        LeaderStatus {
            lease_name: self.shared.lease_name.clone(),
            identity: self.shared.identity.clone(),
            leading: state.leading_now(),
            term: state.term,
            holder: state.observed_holder.clone(),
            lease_transitions: state.lease_transitions,
            last_error: state.last_error.clone(),
            stopped: state.stopped,
        }
    }
}

/// One uninterrupted leadership of this candidate. Hand its
/// [`cancellation_token`](Self::cancellation_token) to the work that may only
/// run while leading: it is cancelled when the term ends (renew deadline
/// passed, lease taken, or released).
#[derive(Debug, Clone)]
pub struct Term {
    number: u64,
    ended: CancellationToken,
    shared: Arc<Shared>,
}

impl Term {
    /// This term's number: 1 for the first term this elector won, then 2, …
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Whether this term is still running *now* (the local clock check of
    /// [`LeaderHandle::is_leader`], for this term).
    pub fn is_current(&self) -> bool {
        let state = self.shared.state.lock();
        state.term == self.number && state.leading_now()
    }

    /// Resolves when this term has ended.
    pub fn ended(&self) -> WaitForCancellationFuture<'_> {
        self.ended.cancelled()
    }

    /// A token cancelled when this term ends: give it to leader-only work,
    /// e.g. run a controller until it is cancelled.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.ended.clone()
    }
}

/// A snapshot of an election, from [`LeaderHandle::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderStatus {
    /// The lease's name.
    pub lease_name: String,
    /// This candidate's identity.
    pub identity: String,
    /// Whether this candidate leads now.
    pub leading: bool,
    /// The number of terms this candidate has begun (the current one if
    /// leading).
    pub term: u64,
    /// The holder last seen on the lease; `None` if free or released.
    pub holder: Option<String>,
    /// The lease's `leaseTransitions` last seen.
    pub lease_transitions: i32,
    /// The error of the last attempt, if it failed (the API error's text).
    pub last_error: Option<String>,
    /// Whether the elector has stopped.
    pub stopped: bool,
}

impl LeaderStatus {
    /// The value of client-go's `leader_election_master_status` gauge
    /// (labelled `name` = the lease name): 1 while leading, else 0.
    pub fn master_status(&self) -> u8 {
        u8::from(self.leading)
    }
}
