//! Leader election with real processes on the real control plane.
//!
//! Each candidate is a separate process: the example
//! `kube-runtime/examples/leader_election_candidate.rs`, built once by the
//! first test that needs it and configured through `LE_*` variables (its
//! timings are this file's constants). A candidate runs a `LeaderElector`
//! and, every 20 ms, takes the wall-clock time, checks that it still leads,
//! and only then appends `tick TERM MICROS` to its own file. Since the
//! check comes after the timestamp, every tick lies within a term; the
//! intervals of different candidates' terms must therefore never overlap —
//! that is the safety property, judged on one machine's clock. The
//! processes are then killed (SIGKILL), stopped (SIGTERM) and frozen
//! (SIGSTOP/SIGCONT) to measure failover and to show that a frozen leader
//! does not act after waking.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::coordination::v1::Lease;
use kube_client::Api;
use kube_runtime::leader_election::{LeaderElectionConfig, LeaderElector};

const LEASE: Duration = Duration::from_secs(3);
const RENEW: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_millis(500);
const JITTER: f64 = 1.2;

fn test_config() -> LeaderElectionConfig {
    LeaderElectionConfig {
        lease_duration: LEASE,
        renew_deadline: RENEW,
        retry_period: RETRY,
        jitter_factor: JITTER,
        release_on_shutdown: true,
    }
}

fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// A candidate process; killed when dropped.
struct Candidate {
    identity: String,
    out: PathBuf,
    child: Child,
}

impl Drop for Candidate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Candidate {
    fn spawn(dir: &Path, namespace: &str, lease: &str, identity: &str) -> Candidate {
        let out = dir.join(format!("{identity}.log"));
        let stderr = std::fs::File::create(dir.join(format!("{identity}.stderr"))).unwrap();
        let child = Command::new(common::example::binary("leader_election_candidate"))
            .env("LE_OUT", &out)
            .env("LE_KUBECONFIG", common::env().kubeconfig())
            .env("LE_NAMESPACE", namespace)
            .env("LE_LEASE", lease)
            .env("LE_IDENTITY", identity)
            .env("LE_LEASE_DURATION_MS", LEASE.as_millis().to_string())
            .env("LE_RENEW_DEADLINE_MS", RENEW.as_millis().to_string())
            .env("LE_RETRY_PERIOD_MS", RETRY.as_millis().to_string())
            .env("LE_JITTER_FACTOR", JITTER.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Candidate {
            identity: identity.into(),
            out,
            child,
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {}", self.child.id());
    }

    /// `(kind, term, micros)` of each line written so far.
    fn lines(&self) -> Vec<(String, u64, i64)> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let parts: Vec<&str> = l.split_whitespace().collect();
                match parts.as_slice() {
                    ["stopped", ts] => Some(("stopped".into(), 0, ts.parse().ok()?)),
                    [kind, term, ts, ..] => {
                        Some((kind.to_string(), term.parse().ok()?, ts.parse().ok()?))
                    }
                    _ => None,
                }
            })
            .collect()
    }

    fn ticks(&self) -> Vec<(u64, i64)> {
        self.lines()
            .into_iter()
            .filter(|(k, ..)| k == "tick")
            .map(|(_, term, ts)| (term, ts))
            .collect()
    }
}

/// The latest tick of any candidate: `(index, term, micros)`.
fn latest_tick(cands: &[&Candidate]) -> Option<(usize, u64, i64)> {
    cands
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.ticks().last().map(|&(t, ts)| (i, t, ts)))
        .max_by_key(|&(_, _, ts)| ts)
}

/// Waits (bounded) until `f` gives a value.
async fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The first tick of any candidate but `except` after `after`.
fn first_tick_after(cands: &[&Candidate], except: usize, after: i64) -> Option<(usize, i64)> {
    cands
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != except)
        .filter_map(|(i, c)| {
            c.ticks()
                .into_iter()
                .find(|&(_, ts)| ts > after)
                .map(|(_, ts)| (i, ts))
        })
        .min_by_key(|&(_, ts)| ts)
}

/// Asserts that no two terms (of any candidates) overlap, and returns the
/// terms `(identity, term, first tick, last tick)` in order.
fn assert_terms_disjoint(cands: &[&Candidate]) -> Vec<(String, u64, i64, i64)> {
    let mut terms: BTreeMap<(String, u64), (i64, i64)> = BTreeMap::new();
    for c in cands {
        for (term, ts) in c.ticks() {
            let e = terms.entry((c.identity.clone(), term)).or_insert((ts, ts));
            e.0 = e.0.min(ts);
            e.1 = e.1.max(ts);
        }
    }
    let mut v: Vec<_> = terms
        .into_iter()
        .map(|((id, term), (a, b))| (id, term, a, b))
        .collect();
    v.sort_by_key(|t| t.2);
    for pair in v.windows(2) {
        assert!(
            pair[0].3 < pair[1].2,
            "terms overlap: {:?} and {:?} (all terms: {v:?})",
            pair[0],
            pair[1]
        );
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_candidates_one_leader_then_failover_on_kill_and_on_release() {
    let ns = common::env().namespace("le-race").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cands: Vec<Candidate> = ["a", "b", "c"]
        .iter()
        .map(|id| Candidate::spawn(dir.path(), &ns, "race", id))
        .collect();
    let all: Vec<&Candidate> = cands.iter().collect();

    // the race: someone leads; let terms run for a while
    wait_for("a first leader", Duration::from_secs(60), || {
        latest_tick(&all)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_terms_disjoint(&all);

    // SIGKILL the leader: another leads once the lease has expired
    let (first, ..) = latest_tick(&all).unwrap();
    let killed_at = micros_now();
    all[first].signal("KILL");
    let (second, took_over) = wait_for("a leader after SIGKILL", Duration::from_secs(20), || {
        first_tick_after(&all, first, killed_at)
    })
    .await;
    let kill_gap = Duration::from_micros((took_over - killed_at) as u64);
    let bound = LEASE + RETRY.mul_f64(2.0 * (1.0 + JITTER)) + Duration::from_secs(2);
    eprintln!(
        "SIGKILL: {} took over after {kill_gap:?}",
        all[second].identity
    );
    assert!(
        kill_gap < bound,
        "failover took {kill_gap:?}, bound {bound:?}"
    );
    // the last renewal was at most a retry period before the kill, and
    // others wait a whole lease duration after seeing it
    assert!(
        kill_gap > LEASE - RETRY - Duration::from_millis(100),
        "took over after {kill_gap:?}: before the lease could have expired"
    );

    // SIGTERM the new leader: it releases, the third takes over at once
    tokio::time::sleep(Duration::from_secs(1)).await;
    let third = 3 - first - second;
    let termed_at = micros_now();
    all[second].signal("TERM");
    let (who, took_over) = wait_for("a leader after SIGTERM", Duration::from_secs(20), || {
        first_tick_after(&all, second, termed_at)
    })
    .await;
    assert_eq!(who, third, "the killed candidate cannot lead");
    let release_gap = Duration::from_micros((took_over - termed_at) as u64);
    let bound = RETRY.mul_f64(1.0 + JITTER) + Duration::from_millis(1300);
    eprintln!(
        "SIGTERM: {} took over after {release_gap:?}",
        all[third].identity
    );
    assert!(
        release_gap < bound,
        "release should hand over within a retry period: took {release_gap:?}, bound {bound:?}"
    );
    wait_for(
        "the released candidate to exit",
        Duration::from_secs(10),
        || {
            all[second]
                .lines()
                .iter()
                .any(|(k, ..)| k == "stopped")
                .then_some(())
        },
    )
    .await;
    let lost: Vec<_> = all[second]
        .lines()
        .into_iter()
        .filter(|(k, ..)| k == "lost")
        .collect();
    assert!(!lost.is_empty(), "the released leader ended its term");
    assert!(
        lost.last().unwrap().2 <= took_over,
        "its term ended before the next began"
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    let terms = assert_terms_disjoint(&all);
    eprintln!("terms: {terms:?}");
    let lease = Api::<Lease>::namespaced(common::client(), &ns)
        .get("race")
        .await
        .unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(
        spec.holder_identity.as_deref(),
        Some(all[third].identity.as_str())
    );
    assert_eq!(spec.lease_duration_seconds, Some(3));
    // created by the first (0), taken over twice
    assert_eq!(spec.lease_transitions, Some(2), "{spec:?}");
    assert!(spec.acquire_time.is_some() && spec.renew_time.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_leader_does_not_act_after_losing_the_lease() {
    let ns = common::env().namespace("le-freeze").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cands: Vec<Candidate> = ["x", "y"]
        .iter()
        .map(|id| Candidate::spawn(dir.path(), &ns, "freeze", id))
        .collect();
    let all: Vec<&Candidate> = cands.iter().collect();
    wait_for("a first leader", Duration::from_secs(60), || {
        latest_tick(&all)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // freeze the leader past its renew deadline and the lease duration
    let (old, old_term, _) = latest_tick(&all).unwrap();
    let other = 1 - old;
    let stopped_at = micros_now();
    all[old].signal("STOP");
    let (_, took_over) = wait_for("the other to lead", Duration::from_secs(20), || {
        first_tick_after(&all, old, stopped_at)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let continued_at = micros_now();
    all[old].signal("CONT");

    // on waking it notices, on its own clock, that its term is over
    let lost_at = wait_for(
        "the old leader to step down",
        Duration::from_secs(10),
        || {
            all[old]
                .lines()
                .into_iter()
                .find(|(k, t, _)| k == "lost" && *t == old_term)
                .map(|(.., ts)| ts)
        },
    )
    .await;
    assert!(lost_at >= continued_at);
    let text = std::fs::read_to_string(&all[old].out).unwrap();
    assert!(
        text.contains(&format!("lost {old_term} {lost_at} master_status=0")),
        "{text}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let late: Vec<_> = all[old]
        .ticks()
        .into_iter()
        .filter(|&(t, ts)| t == old_term && (ts >= continued_at || ts >= took_over))
        .collect();
    assert!(
        late.is_empty(),
        "the frozen leader wrote after waking: {late:?}"
    );
    assert_terms_disjoint(&all);

    // it is a candidate again: when the other dies, it leads once more
    let killed_at = micros_now();
    all[other].signal("KILL");
    let (who, _) = wait_for(
        "the old leader to lead again",
        Duration::from_secs(20),
        || first_tick_after(&all, other, killed_at),
    )
    .await;
    assert_eq!(who, old);
    let new_term = all[old].ticks().last().unwrap().0;
    assert!(new_term > old_term, "a new term: {new_term} > {old_term}");
    assert_terms_disjoint(&all);
}

/// A renewal cut short by the shutdown may be applied without its answer
/// being seen, leaving the elector with a stale version of its own lease:
/// the release must still happen (here the lease is changed behind its
/// back, as such a renewal would).
#[tokio::test]
async fn release_succeeds_when_the_lease_changed_behind_the_leaders_back() {
    let ns = common::env().namespace("le-release").await.unwrap();
    let api: Api<Lease> = Api::namespaced(common::client(), &ns);
    // default timings: the next renewal is 2 s away, time enough to test
    let elector =
        LeaderElector::new(api.clone(), "rel", "solo", LeaderElectionConfig::default()).unwrap();
    let handle = elector.handle();
    let election = tokio::spawn(elector.run());
    let term = handle.acquired().await.unwrap();
    assert!(term.is_current() && handle.status().master_status() == 1);
    let patch = serde_json::json!({"metadata": {"labels": {"touched": "yes"}}});
    let touched = api
        .patch(
            "rel",
            &kube_client::params::PatchParams::default(),
            &kube_client::params::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    assert_eq!(
        touched.spec.unwrap().holder_identity.as_deref(),
        Some("solo")
    );
    handle.release();
    election.await.unwrap();
    assert!(!term.is_current() && !handle.is_leader());
    let status = handle.status();
    assert!(status.stopped && status.master_status() == 0, "{status:?}");
    let spec = api.get("rel").await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity, None, "released: {spec:?}");
    assert_eq!(spec.lease_duration_seconds, Some(1));
    assert!(
        handle.acquired().await.is_none(),
        "a stopped elector never leads"
    );
}

/// A leader cut off from the API server stops leading at its renew
/// deadline, before the other candidate (who waits the longer lease
/// duration) takes over; reconnected, it follows the new leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_server_stops_before_another_starts() {
    let env = common::env();
    let ns = env.namespace("le-cut").await.unwrap();
    let (proxy, through_proxy) =
        common::proxy::client_through(&env.access().server, env.kubeconfig()).await;
    let via_proxy: Api<Lease> = Api::namespaced(through_proxy, &ns);
    let direct: Api<Lease> = Api::namespaced(common::client(), &ns);

    let a = LeaderElector::new(via_proxy, "cut", "a", test_config()).unwrap();
    let (ha, run_a) = (a.handle(), tokio::spawn(a.run()));
    let term_a = ha.acquired().await.unwrap();
    let b = LeaderElector::new(direct.clone(), "cut", "b", test_config()).unwrap();
    let (hb, run_b) = (b.handle(), tokio::spawn(b.run()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(term_a.is_current() && !hb.is_leader());
    assert_eq!(hb.status().holder.as_deref(), Some("a"));

    let cut_at = tokio::time::Instant::now();
    proxy.disconnect();
    let (lost_at, b_at) = {
        let lost = async {
            term_a.ended().await;
            tokio::time::Instant::now()
        };
        let won = async {
            hb.acquired().await.unwrap();
            tokio::time::Instant::now()
        };
        tokio::time::timeout(Duration::from_secs(20), async { tokio::join!(lost, won) })
            .await
            .expect("a stops and b leads")
    };
    let stopped_after = lost_at - cut_at;
    let b_after = b_at - cut_at;
    eprintln!("cut off: a stopped after {stopped_after:?}, b leads after {b_after:?}");
    assert!(
        lost_at < b_at,
        "a stopped ({stopped_after:?}) before b started ({b_after:?})"
    );
    // a's last successful renewal started at most a retry period (plus its
    // request) before the cut; its term ends a renew deadline after that
    assert!(
        stopped_after <= RENEW + Duration::from_millis(300),
        "a kept leading {stopped_after:?} after the cut"
    );
    assert!(
        stopped_after >= RENEW - 2 * RETRY,
        "a stopped early: {stopped_after:?}"
    );
    let status = ha.status();
    assert!(!status.leading && status.master_status() == 0, "{status:?}");
    assert!(
        status.last_error.is_some(),
        "the failure is exposed: {status:?}"
    );

    // reconnected, a follows b
    proxy.resume();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!ha.is_leader() && hb.is_leader());
    assert_eq!(ha.status().holder.as_deref(), Some("b"));
    assert_eq!(ha.status().last_error, None);
    let spec = direct.get("cut").await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));

    ha.release();
    hb.release();
    run_a.await.unwrap();
    run_b.await.unwrap();
    let spec = direct.get("cut").await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity, None, "b released it");
}

/// `run_while_leading` gives the work each term, the work sees its term
/// end, and the loop stops after release.
#[tokio::test]
async fn work_runs_per_term_until_release() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let ns = common::env().namespace("le-work").await.unwrap();
    let api: Api<Lease> = Api::namespaced(common::client(), &ns);
    let elector = LeaderElector::new(api.clone(), "work", "w", test_config()).unwrap();
    let handle = elector.handle();
    let election = tokio::spawn(elector.run());
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let work = {
        let (handle, started, finished) = (handle.clone(), started.clone(), finished.clone());
        tokio::spawn(async move {
            handle
                .run_while_leading(|term| {
                    let (started, finished) = (started.clone(), finished.clone());
                    async move {
                        started.fetch_add(1, Ordering::SeqCst);
                        assert!(term.is_current());
                        term.cancellation_token().cancelled().await;
                        assert!(!term.is_current());
                        finished.fetch_add(1, Ordering::SeqCst);
                    }
                })
                .await
        })
    };
    wait_for("the work to start", Duration::from_secs(20), || {
        (started.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    assert_eq!(finished.load(Ordering::SeqCst), 0);
    handle.release();
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .expect("run_while_leading returns after release")
        .unwrap();
    election.await.unwrap();
    assert_eq!(
        (
            started.load(Ordering::SeqCst),
            finished.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
    let spec = api.get("work").await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity, None);
}
