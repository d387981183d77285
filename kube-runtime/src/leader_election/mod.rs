//! Leader election: of several replicas of a controller, exactly one works.
//!
//! The replicas ("candidates") share one `coordination.k8s.io/v1` `Lease`.
//! Its spec says who leads (`holderIdentity`), since when (`acquireTime`),
//! when the holder last renewed (`renewTime`), for how long a renewal counts
//! (`leaseDurationSeconds`) and how often leadership changed hands
//! (`leaseTransitions`). This is client-go's `tools/leaderelection`
//! algorithm with its defaults (see [`LeaderElectionConfig`]):
//!
//! - **Writes are compare-and-swap.** Every change is a replace (PUT) that
//!   carries the `resourceVersion` the candidate read, or a create when the
//!   lease does not exist. The API server refuses a stale version (409), so
//!   of two candidates racing for the same lease version exactly one wins;
//!   two can never both take the same term.
//! - **Expiry is judged by observation, not by timestamps.** A candidate
//!   remembers, on its own monotonic clock, when it first saw the current
//!   version of the lease (holder and renewal). Only when it has seen that
//!   version unchanged for `leaseDurationSeconds` does it try to take over.
//!   Clocks of different machines may disagree: the timestamps in the lease
//!   are informational and never compared with the local wall clock.
//! - **A leader stops first.** The leader renews every retry period. Its
//!   term lasts until the *start* of its last successful renewal plus the
//!   renew deadline, on its local monotonic clock. Any other candidate saw
//!   that renewal no earlier than it was sent and waits the longer lease
//!   duration after that, so the old leader has stopped before anyone can
//!   take over (for clocks that run at about the same rate — the margin is
//!   `lease duration - renew deadline`, 5 s by default). client-go measures
//!   the renew deadline from the start of a renew round, which can begin a
//!   retry period after the last success; counting from the request itself
//!   is the stricter choice.
//! - **Leaving is immediate.** When stopped while leading, the elector ends
//!   its term and then releases the lease (empties `holderIdentity`, sets
//!   `leaseDurationSeconds` to 1, as client-go's `ReleaseOnCancel`), so the
//!   next candidate takes over at its next attempt.
//!
//! The end of a term is logged (`tracing`, with the reason), reported to the
//! [`Term`]'s cancellation token, to [`LeaderHandle::subscribe`] and in
//! [`LeaderHandle::status`] (whose [`LeaderStatus::master_status`] is the
//! `leader_election_master_status` gauge).
//!
//! ```no_run
//! use k8s_openapi::api::coordination::v1::Lease;
//! use kube_client::{Api, Client};
//! use kube_runtime::leader_election::{LeaderElectionConfig, LeaderElector};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::try_default().await?;
//! let leases: Api<Lease> = Api::namespaced(client, "my-operator");
//! let identity = std::env::var("POD_NAME")?;
//! let elector = LeaderElector::new(leases, "my-operator-lock", &identity, LeaderElectionConfig::default())?;
//! let handle = elector.handle();
//! let election = tokio::spawn(elector.run());
//! while let Some(term) = handle.acquired().await {
//!     let stop = term.cancellation_token();
//!     // run the controller until `stop` is cancelled; before any write,
//!     // `term.is_current()` tells whether this replica still leads
//!     stop.cancelled().await;
//! }
//! // on shutdown: handle.release(); election.await?;
//! # Ok(()) }
//! ```

mod config;
mod handle;

pub use config::{ConfigError, LeaderElectionConfig};
pub use handle::{LeaderHandle, LeaderStatus, Term};

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube_client::Api;
use kube_client::params::PostParams;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use handle::Shared;

/// One candidate in the election for one lease. Make it with
/// [`new`](Self::new), take a [`handle`](Self::handle), then drive
/// [`run`](Self::run) (usually in its own task).
#[derive(Debug)]
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    shared: Arc<Shared>,
    /// The lease as last read or written by us, and when we first saw its
    /// current holder and renewal.
    observed: Option<Observed>,
}

#[derive(Debug)]
struct Observed {
    lease: Lease,
    at: Instant,
}

/// What one attempt to acquire or renew found.
#[derive(Debug, PartialEq)]
enum Attempt {
    /// We hold the lease now (created, taken over or renewed).
    Holding,
    /// Someone else holds a lease that has not expired in our observation.
    HeldBy(String),
    /// Our write lost a race (409): someone wrote the lease meanwhile.
    Conflict,
}

impl LeaderElector {
    /// A candidate named `identity` (unique among the candidates: the pod
    /// name, or host name plus a random suffix) for the lease `lease_name`
    /// in the namespace of `api`. Checks the settings; does no I/O.
    pub fn new(
        api: Api<Lease>,
        lease_name: &str,
        identity: &str,
        config: LeaderElectionConfig,
    ) -> Result<Self, ConfigError> {
        if lease_name.is_empty() {
            return Err(ConfigError::EmptyLeaseName);
        }
        if identity.is_empty() {
            return Err(ConfigError::EmptyIdentity);
        }
        if api.namespace().is_none() {
            return Err(ConfigError::NoNamespace);
        }
        config.validate()?;
        Ok(Self {
            api,
            config,
            shared: Arc::new(Shared::new(lease_name.into(), identity.into())),
            observed: None,
        })
    }

    /// A handle to watch and stop this election; clone it freely.
    pub fn handle(&self) -> LeaderHandle {
        LeaderHandle {
            shared: self.shared.clone(),
        }
    }

    /// Runs the election until [`LeaderHandle::release`] is called: tries
    /// to acquire the lease every (jittered) retry period, and while
    /// leading renews it every retry period. Errors of the API server are
    /// logged, kept in [`LeaderStatus::last_error`] and retried; they never
    /// end the election. On release while leading, the term ends first and
    /// then the lease is released (if `release_on_shutdown`).
    pub async fn run(mut self) {
        let shutdown = self.shared.shutdown.clone();
        tracing::info!(lease = %self.lease_name(), identity = %self.shared.identity, "leader election: candidate started");
        while !shutdown.is_cancelled() {
            let started = Instant::now();
            let attempt = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                a = tokio::time::timeout(self.config.renew_deadline, self.try_acquire_or_renew()) => a,
            };
            if let Some(Attempt::Holding) = self.note(attempt) {
                self.lead(started).await;
                continue;
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.config.jittered_retry()) => {}
            }
        }
        if self.config.release_on_shutdown {
            self.release().await;
        }
        self.shared.state.lock().stopped = true;
        self.shared.leading.send_replace(false);
        tracing::info!(lease = %self.lease_name(), identity = %self.shared.identity, "leader election: candidate stopped");
    }

    fn lease_name(&self) -> &str {
        &self.shared.lease_name
    }

    /// Records the outcome of an attempt in the status; `None` if the
    /// attempt failed or timed out.
    fn note(
        &self,
        attempt: Result<Result<Attempt, kube_client::Error>, tokio::time::error::Elapsed>,
    ) -> Option<Attempt> {
        let mut state = self.shared.state.lock();
        match attempt {
            Ok(Ok(a)) => {
                state.last_error = None;
                Some(a)
            }
            Ok(Err(e)) => {
                tracing::warn!(lease = %self.shared.lease_name, error = %e, "leader election: request failed");
                state.last_error = Some(e.to_string());
                None
            }
            Err(_) => {
                let e = "no answer before the deadline".to_string();
                tracing::warn!(lease = %self.shared.lease_name, "leader election: {e}");
                state.last_error = Some(e);
                None
            }
        }
    }

    /// Leads from a successful attempt that started at `started` until the
    /// term ends: renewal failed past the deadline, the lease was taken, or
    /// shutdown (which releases).
    async fn lead(&mut self, started: Instant) {
        let renew_deadline = self.config.renew_deadline;
        let (term, ended) = self.begin_term(started + renew_deadline);
        let shutdown = self.shared.shutdown.clone();
        tracing::info!(lease = %self.lease_name(), identity = %self.shared.identity, term, "leader election: acquired the lease, leading");
        loop {
            let deadline = self.leading_until();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return self.end_term(term, &ended, "shutting down"),
                () = tokio::time::sleep_until(deadline) => {
                    return self.end_term(term, &ended, "the lease was not renewed within the renew deadline");
                }
                () = tokio::time::sleep(self.config.retry_period) => {}
            }
            let started = Instant::now();
            let attempt = tokio::select! {
                biased;
                () = shutdown.cancelled() => return self.end_term(term, &ended, "shutting down"),
                a = tokio::time::timeout_at(deadline, self.try_acquire_or_renew()) => a,
            };
            match self.note(attempt) {
                Some(Attempt::Holding) => self.extend_term(started + renew_deadline),
                Some(Attempt::HeldBy(other)) => {
                    let why = format!("the lease is held by {other}");
                    return self.end_term(term, &ended, &why);
                }
                // a lost race or a failed request: try again while the
                // deadline allows; the select above ends the term after it
                Some(Attempt::Conflict) | None => {}
            }
        }
    }

    fn leading_until(&self) -> Instant {
        self.shared
            .state
            .lock()
            .leading_until
            .unwrap_or_else(Instant::now)
    }

    fn begin_term(&self, until: Instant) -> (u64, CancellationToken) {
        let ended = CancellationToken::new();
        let term = {
            let mut state = self.shared.state.lock();
            state.term += 1;
            state.leading_until = Some(until);
            state.term_ended = ended.clone();
            state.term
        };
        self.shared.leading.send_replace(true);
        (term, ended)
    }

    fn extend_term(&self, until: Instant) {
        let mut state = self.shared.state.lock();
        if let Some(current) = state.leading_until
            && until > current
        {
            state.leading_until = Some(until);
        }
    }

    fn end_term(&self, term: u64, ended: &CancellationToken, why: &str) {
        self.shared.state.lock().leading_until = None;
        ended.cancel();
        self.shared.leading.send_replace(false);
        if self.shared.shutdown.is_cancelled() {
            tracing::info!(lease = %self.lease_name(), identity = %self.shared.identity, term, "leader election: stopped leading: {why}");
        } else {
            tracing::warn!(lease = %self.lease_name(), identity = %self.shared.identity, term, "leader election: stopped leading: {why}");
        }
    }

    /// Releases the lease if we are its holder (whether or not our term
    /// is still running: client-go releases whenever it last saw itself as
    /// holder), and logs the outcome.
    async fn release(&mut self) {
        match tokio::time::timeout(self.config.renew_deadline, self.release_lease()).await {
            Ok(Ok(true)) => {
                tracing::info!(lease = %self.lease_name(), identity = %self.shared.identity, "leader election: released the lease")
            }
            Ok(Ok(false)) => {
                tracing::debug!(lease = %self.lease_name(), "leader election: nothing to release: the lease is not ours")
            }
            Ok(Err(e)) => {
                tracing::warn!(lease = %self.lease_name(), error = %e, "leader election: releasing the lease failed; others take over after its duration")
            }
            Err(_) => {
                tracing::warn!(lease = %self.lease_name(), "leader election: releasing the lease timed out; others take over after its duration")
            }
        }
    }

    /// One step of client-go's `tryAcquireOrRenew`: read the lease (create
    /// it if absent), and if it is ours or expired in our observation, write
    /// ourselves as holder guarded by the version read.
    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube_client::Error> {
        let me = self.shared.identity.clone();
        let Some(current) = self.api.get_opt(self.lease_name()).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.lease_name().to_string()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.record(None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(created);
                    Ok(Attempt::Holding)
                }
                Err(e) if e.is_already_exists() || e.is_conflict() => Ok(Attempt::Conflict),
                Err(e) => Err(e),
            };
        };
        self.observe(current.clone());
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        if let Some(other) = holder.as_ref().filter(|h| **h != me) {
            let seconds = spec
                .lease_duration_seconds
                .filter(|s| *s > 0)
                .unwrap_or_else(|| self.config.lease_seconds());
            let seen_at = self.observed.as_ref().map_or_else(Instant::now, |o| o.at);
            if seen_at + Duration::from_secs(seconds.unsigned_abs().into()) > Instant::now() {
                return Ok(Attempt::HeldBy(other.clone()));
            }
        }
        let mut lease = current;
        lease.spec = Some(self.record(Some(&spec)));
        match self
            .api
            .replace(self.lease_name(), &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                self.observe(written);
                Ok(Attempt::Holding)
            }
            Err(e) if e.is_conflict() => Ok(Attempt::Conflict),
            Err(e) => Err(e),
        }
    }

    /// Our record: renewing keeps `acquireTime` and `leaseTransitions`;
    /// taking over (or creating) sets `acquireTime` and counts a transition.
    fn record(&self, old: Option<&LeaseSpec>) -> LeaseSpec {
        let now = now();
        let renewing =
            old.is_some_and(|o| o.holder_identity.as_deref() == Some(&self.shared.identity));
        let transitions = old.and_then(|o| o.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.shared.identity.clone()),
            lease_duration_seconds: Some(self.config.lease_seconds()),
            acquire_time: if renewing {
                old.and_then(|o| o.acquire_time.clone())
                    .or_else(|| Some(now.clone()))
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(if renewing || old.is_none() {
                transitions
            } else {
                transitions.saturating_add(1)
            }),
            ..old.cloned().unwrap_or_default()
        }
    }

    /// Remembers `lease`; the observation time restarts only when holder or
    /// renewal changed (client-go compares the whole record).
    fn observe(&mut self, lease: Lease) {
        let spec = lease.spec.clone().unwrap_or_default();
        let same = self.observed.as_ref().is_some_and(|o| {
            let old = o.lease.spec.clone().unwrap_or_default();
            old.holder_identity == spec.holder_identity
                && old.renew_time == spec.renew_time
                && old.lease_duration_seconds == spec.lease_duration_seconds
                && o.lease.metadata.resource_version == lease.metadata.resource_version
        });
        {
            let mut state = self.shared.state.lock();
            state.observed_holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
            state.lease_transitions = spec.lease_transitions.unwrap_or(0);
        }
        let at = match &self.observed {
            Some(o) if same => o.at,
            _ => Instant::now(),
        };
        self.observed = Some(Observed { lease, at });
    }

    /// Writes the released record if we are still the holder; `Ok(false)`
    /// if someone else holds the lease. A renewal cut short by the shutdown
    /// may have been applied without our seeing its answer: on a conflict
    /// the lease is read again and, if still ours, released at its new
    /// version.
    async fn release_lease(&mut self) -> Result<bool, kube_client::Error> {
        let Some(mut lease) = self.observed.as_ref().map(|o| o.lease.clone()) else {
            return Ok(false);
        };
        for _ in 0..3 {
            let old = lease.spec.clone().unwrap_or_default();
            if old.holder_identity.as_deref() != Some(&self.shared.identity) {
                return Ok(false);
            }
            let now = now();
            lease.spec = Some(LeaseSpec {
                holder_identity: None,
                lease_duration_seconds: Some(1),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                ..old
            });
            match self
                .api
                .replace(self.lease_name(), &PostParams::default(), &lease)
                .await
            {
                Ok(written) => {
                    self.observe(written);
                    return Ok(true);
                }
                Err(e) if e.is_conflict() => match self.api.get_opt(self.lease_name()).await? {
                    Some(fresh) => lease = fresh,
                    None => return Ok(false),
                },
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }
}

/// The wall clock as a `MicroTime`, for the lease's informational stamps.
fn now() -> MicroTime {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let micros = i64::try_from(since.as_micros()).unwrap_or(i64::MAX);
    MicroTime(Timestamp::from_microsecond(micros).unwrap_or(Timestamp::UNIX_EPOCH))
}
