//! A Controller with leader election, on the real control plane: it
//! reconciles only while leading, a term's end cancels the reconciles in
//! flight, a new term reconciles everything again, a graceful shutdown
//! releases the lease, and cold standby builds its caches per term.
//! (The same with real processes: examples/tests/operator.rs.)

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::cm;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::params::{Patch, PatchParams, PostParams};
use kube_client::{Api, ResourceExt};
use kube_runtime::WatcherConfig;
use kube_runtime::controller::{Action, Config, Controller, current_term, run_per_term};
use kube_runtime::leader_election::{LeaderElectionConfig, LeaderElector, LeaderHandle};
use parking_lot::Mutex;
use serde_json::json;

fn timings() -> LeaderElectionConfig {
    LeaderElectionConfig {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
        ..LeaderElectionConfig::default()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

/// What the reconciles of one replica saw.
#[derive(Default)]
struct Log {
    /// (object name, term number) of each reconcile started.
    started: Mutex<Vec<(String, u64)>>,
    /// Reconciles of `slow` whose future was dropped before finishing.
    dropped: AtomicUsize,
}

impl Log {
    fn count(&self, name: &str) -> usize {
        self.started
            .lock()
            .iter()
            .filter(|(n, _)| n == name)
            .count()
    }
    fn terms(&self) -> Vec<u64> {
        let mut t: Vec<u64> = self.started.lock().iter().map(|(_, t)| *t).collect();
        t.dedup();
        t
    }
}

/// Sets `dropped` when dropped unfinished.
struct DropGuard(Arc<Log>, bool);
impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.1 {
            self.0.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn reconcile(cm: Arc<ConfigMap>, log: Arc<Log>) -> Result<Action, Never> {
    let term = current_term().expect("a leader-elected reconcile runs within a term");
    assert!(term.is_current());
    log.started
        .lock()
        .push((cm.name_any().to_string(), term.number()));
    if cm.name_any() == "slow" {
        let mut guard = DropGuard(log.clone(), false);
        tokio::time::sleep(Duration::from_secs(60)).await;
        guard.1 = true;
    }
    Ok(Action::await_change())
}

async fn until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn elector(leases: &Api<Lease>, identity: &str) -> (LeaderHandle, tokio::task::JoinHandle<()>) {
    let e = LeaderElector::new(leases.clone(), "ctl", identity, timings()).unwrap();
    (e.handle(), tokio::spawn(e.run()))
}

/// Someone else takes the lease (as another replica would after this one
/// stalled): a merge patch of the holder, long lease.
async fn steal(leases: &Api<Lease>, thief: &str) {
    let patch = json!({"spec": {"holderIdentity": thief, "leaseDurationSeconds": 3600}});
    leases
        .patch("ctl", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

async fn give_back(leases: &Api<Lease>) {
    let patch = json!({"spec": {"holderIdentity": null, "leaseDurationSeconds": 1}});
    leases
        .patch("ctl", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciles_only_while_leading_and_a_lost_term_cancels_its_reconciles() {
    let ns = common::env().namespace("ctl-leader").await.unwrap();
    let client = common::client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let leases: Api<Lease> = Api::namespaced(client, &ns);
    for n in ["a", "b", "slow"] {
        cms.create(&PostParams::default(), &cm(n)).await.unwrap();
    }
    // the lease is someone else's for now: the controller syncs and waits
    leases
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "ctl"},
                "spec": {"holderIdentity": "other", "leaseDurationSeconds": 3600}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let (handle, election) = elector(&leases, "me");
    let log = Arc::new(Log::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = Controller::new(cms.clone(), WatcherConfig::default())
        .with_config(Config::default().shutdown_timeout(Duration::from_secs(5)))
        .leader_election(handle.clone())
        .graceful_shutdown_on(async move {
            let _ = stop_rx.await;
        });
    let store = controller.store();
    let items = Arc::new(AtomicUsize::new(0));
    let run = {
        let items = items.clone();
        tokio::spawn(
            controller
                .run(reconcile, |_, _, _| Action::backoff(), log.clone())
                .for_each(move |_| {
                    items.fetch_add(1, Ordering::SeqCst);
                    async {}
                }),
        )
    };
    until("the cache", 20, || store.is_ready()).await;
    // standing by: changes are seen by the cache, nothing is reconciled
    cms.create(&PostParams::default(), &cm("while-standby"))
        .await
        .unwrap();
    until("the new object in the cache", 10, || store.len() == 4).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!handle.is_leader());
    assert_eq!(log.started.lock().len(), 0, "nothing reconciled in standby");

    // the lease is free: the first term reconciles everything, once
    give_back(&leases).await;
    until("every object in term 1", 20, || {
        ["a", "b", "slow", "while-standby"]
            .iter()
            .all(|n| log.count(n) == 1)
    })
    .await;
    assert_eq!(log.terms(), vec![1]);
    // changes while leading are reconciled
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(&json!({"data": {"k": "changed"}})),
    )
    .await
    .unwrap();
    until("the change", 10, || log.count("a") == 2).await;

    // the lease is taken: the term ends, `slow` (in flight) is cancelled
    assert_eq!(log.dropped.load(Ordering::SeqCst), 0);
    steal(&leases, "thief").await;
    until("the term's end", 10, || !handle.is_leader()).await;
    until("the slow reconcile to be dropped", 5, || {
        log.dropped.load(Ordering::SeqCst) == 1
    })
    .await;
    let before = log.started.lock().len();
    cms.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(&json!({"data": {"k": "changed"}})),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(log.started.lock().len(), before, "standby again: nothing");

    // given back: term 2 reconciles everything again, as after a restart
    give_back(&leases).await;
    until("every object in term 2", 20, || {
        ["a", "b", "slow", "while-standby"]
            .iter()
            .all(|n| log.started.lock().iter().any(|(m, t)| m == n && *t == 2))
    })
    .await;
    assert_eq!(log.terms(), vec![1, 2]);

    // graceful shutdown: `slow` is given the shutdown timeout (5 s, then
    // cancelled), the stream ends, and the lease is released
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the controller stops")
        .unwrap();
    assert_eq!(log.dropped.load(Ordering::SeqCst), 2);
    assert!(handle.status().stopped, "the elector stopped");
    election.await.unwrap();
    let spec = leases.get("ctl").await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity, None, "released: {spec:?}");
    // term 1: a, b, while-standby, the change of a; term 2: a, b,
    // while-standby (`slow` never finished)
    let reported = items.load(Ordering::SeqCst);
    assert!(reported >= 7, "results were reported: {reported}");
}

/// Two replicas in one process: only the leader reconciles; when it shuts
/// down gracefully the other takes over at its next attempt (about a
/// retry period, not a lease duration).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_hands_over_within_a_retry_period() {
    let ns = common::env().namespace("ctl-handover").await.unwrap();
    let client = common::client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let leases: Api<Lease> = Api::namespaced(client, &ns);
    for n in ["x", "y"] {
        cms.create(&PostParams::default(), &cm(n)).await.unwrap();
    }
    let seen: Arc<Mutex<BTreeMap<String, Vec<String>>>> = Arc::default();
    let mut replicas = Vec::new();
    for id in ["r1", "r2"] {
        let (handle, election) = elector(&leases, id);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let seen = seen.clone();
        let me = id.to_string();
        let run = tokio::spawn(
            Controller::new(cms.clone(), WatcherConfig::default())
                .leader_election(handle.clone())
                .graceful_shutdown_on(async move {
                    let _ = stop_rx.await;
                })
                .run(
                    move |cm: Arc<ConfigMap>, _ctx: Arc<()>| {
                        let (seen, me) = (seen.clone(), me.clone());
                        async move {
                            seen.lock()
                                .entry(me)
                                .or_default()
                                .push(cm.name_any().to_string());
                            Ok::<_, Never>(Action::await_change())
                        }
                    },
                    |_, _, _| Action::backoff(),
                    Arc::new(()),
                )
                .for_each(|_| async {}),
        );
        replicas.push((id, handle, election, stop_tx, run));
    }
    until("one leader reconciling", 20, || {
        seen.lock().values().map(Vec::len).sum::<usize>() == 2
    })
    .await;
    let leader = replicas
        .iter()
        .position(|r| r.1.is_leader())
        .expect("a leader");
    let standby = 1 - leader;
    assert_eq!(seen.lock().len(), 1, "only the leader reconciled");
    assert!(seen.lock().contains_key(replicas[leader].0));

    let (_, handle, election, stop_tx, run) = replicas.remove(leader);
    let stopped = tokio::time::Instant::now();
    stop_tx.send(()).unwrap();
    run.await.unwrap();
    election.await.unwrap();
    assert!(!handle.is_leader());
    let next = &replicas[0];
    until("the other replica to lead", 10, || next.1.is_leader()).await;
    let after = stopped.elapsed();
    let other = ["r1", "r2"][standby];
    until("the other replica to reconcile", 10, || {
        seen.lock().get(other).is_some_and(|v| v.len() == 2)
    })
    .await;
    eprintln!("handed over after {after:?}");
    // retry 0.5 s with jitter 1.2: at most 1.1 s, plus requests
    assert!(after < Duration::from_secs(2), "hand-over took {after:?}");
    let (_, handle, election, stop_tx, run) = replicas.remove(0);
    stop_tx.send(()).unwrap();
    run.await.unwrap();
    election.await.unwrap();
    assert!(handle.status().stopped);
}

/// Cold standby: no controller (and so no watch) before the first term; a
/// fresh one per term; the stream ends when the election stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_standby_builds_a_controller_per_term() {
    let ns = common::env().namespace("ctl-cold").await.unwrap();
    let client = common::client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let leases: Api<Lease> = Api::namespaced(client, &ns);
    cms.create(&PostParams::default(), &cm("c")).await.unwrap();
    let e = LeaderElector::new(leases.clone(), "ctl", "cold", timings()).unwrap();
    let handle = e.handle();
    let builds = Arc::new(AtomicUsize::new(0));
    let log = Arc::new(Log::default());
    let stream = {
        let (cms, builds) = (cms.clone(), builds.clone());
        run_per_term(
            handle.clone(),
            move |_term| {
                builds.fetch_add(1, Ordering::SeqCst);
                Controller::new(cms.clone(), WatcherConfig::default())
            },
            reconcile,
            |_, _, _| Action::backoff(),
            log.clone(),
        )
    };
    let run = tokio::spawn(stream.for_each(|_| async {}));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(builds.load(Ordering::SeqCst), 0, "nothing before a term");
    let election = tokio::spawn(e.run());
    until("term 1's reconcile", 20, || log.count("c") == 1).await;
    assert_eq!(builds.load(Ordering::SeqCst), 1);

    steal(&leases, "thief").await;
    until("the term's end", 10, || !handle.is_leader()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    give_back(&leases).await;
    until("term 2's reconcile", 20, || log.count("c") == 2).await;
    assert_eq!(builds.load(Ordering::SeqCst), 2, "a fresh controller");
    assert_eq!(log.terms(), vec![1, 2]);

    handle.release();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the stream ends when the election stops")
        .unwrap();
    election.await.unwrap();
    let spec = leases.get("ctl").await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity, None);
}

/// A leader cut off from the API server (its elector's connections go
/// through a proxy that is cut) reaches its renew deadline: the controller
/// starts no reconcile after that, on the local clock; reconnected, it
/// leads again and resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reconcile_starts_after_the_renew_deadline() {
    let env = common::env();
    let ns = env.namespace("ctl-deadline").await.unwrap();
    let (proxy, through_proxy) =
        common::proxy::client_through(&env.access().server, env.kubeconfig()).await;
    let via_proxy: Api<Lease> = Api::namespaced(through_proxy, &ns);
    let cms: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    cms.create(&PostParams::default(), &cm("tick"))
        .await
        .unwrap();
    let e = LeaderElector::new(via_proxy, "ctl", "cut", timings()).unwrap();
    let (handle, election) = (e.handle(), tokio::spawn(e.run()));

    // every reconcile: (when it started, its term, whether that term was current)
    let starts: Arc<Mutex<Vec<(tokio::time::Instant, u64, bool)>>> = Arc::default();
    let run = {
        let starts = starts.clone();
        tokio::spawn(
            Controller::new(cms.clone(), WatcherConfig::default())
                .leader_election(handle.clone())
                .run(
                    move |_cm: Arc<ConfigMap>, _ctx: Arc<()>| {
                        let starts = starts.clone();
                        async move {
                            let term = current_term().unwrap();
                            starts.lock().push((
                                tokio::time::Instant::now(),
                                term.number(),
                                term.is_current(),
                            ));
                            Ok::<_, Never>(Action::requeue(Duration::from_millis(50)))
                        }
                    },
                    |_, _, _| Action::backoff(),
                    Arc::new(()),
                )
                .for_each(|_| async {}),
        )
    };
    let term = tokio::time::timeout(Duration::from_secs(20), handle.acquired())
        .await
        .unwrap()
        .unwrap();
    until("reconciles in term 1", 20, || starts.lock().len() >= 10).await;

    let cut_at = tokio::time::Instant::now();
    proxy.disconnect();
    tokio::time::timeout(Duration::from_secs(10), term.ended())
        .await
        .expect("the term ends at the renew deadline");
    let ended_at = tokio::time::Instant::now();
    assert!(
        ended_at - cut_at <= Duration::from_millis(2300),
        "{:?}",
        ended_at - cut_at
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    {
        let starts = starts.lock();
        assert!(
            starts.iter().all(|(_, _, current)| *current),
            "every reconcile ran within a current term"
        );
        let late: Vec<_> = starts.iter().filter(|(at, _, _)| *at > ended_at).collect();
        assert!(late.is_empty(), "reconciles after the term ended: {late:?}");
    }
    let before = starts.lock().len();

    // reconnected: a new term, reconciles resume
    proxy.resume();
    until("reconciles in term 2", 30, || {
        starts.lock().iter().any(|(_, t, _)| *t == 2)
    })
    .await;
    assert!(starts.lock().len() > before);
    handle.release();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the stream ends when the election stops")
        .unwrap();
    election.await.unwrap();
}
