//! The `operator` example as real processes on the real control plane.
//!
//! The test builds the example once (`cargo build --example operator`),
//! runs replicas of it with short election timings (lease 3 s, renew
//! deadline 2 s, retry 0.5 s) and a short requeue, and judges them from
//! the outside:
//!
//! - **Who wrote what** comes from the API server: a watch on the managed
//!   ConfigMaps records every version with the annotations the writer
//!   stamped (identity, term, time). Ordered by resourceVersion (etcd's
//!   global revision), the (identity, term) pairs must form contiguous runs
//!   — a replica never writes again after another replica's term began —
//!   and each run's stamps must end before the next run's begin.
//! - **When leadership moved** comes from each replica's stdout (`leading
//!   term=N at=MICROS`) and the test's own clock, on the same machine.
//! - **Probes and metrics** are read over HTTP from each replica's admin
//!   port (127.0.0.1, a free port) and parsed with a Prometheus text parser.
//!
//! Faults are signals: SIGKILL (failover after the lease duration), SIGTERM
//! (release: failover within about a retry period), SIGSTOP past the renew
//! deadline then SIGCONT (the old leader must not write after waking, and
//! competes again). The process tests run one at a time (a lock), so that
//! their timing is not skewed by each other.

mod operator_support;

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube_client::Api;
use kube_client::params::{Patch, PatchParams, PostParams};
use operator_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_fail_over_on_kill_term_and_freeze_without_overlapping_terms() {
    let _serial = SERIAL.lock().await;
    let ns = env().namespace("op-e2e").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client(), &ns);
    for i in 0..3 {
        managed(&api, &format!("m{i}"), &[("k", "v")]).await;
    }
    let (writes, recorder) = record_writes(api.clone());
    let dir = scratch_dir("failover");
    let kubeconfig = env().kubeconfig().to_path_buf();
    let mut replicas: Vec<Replica> = ["a", "b", "c"]
        .iter()
        .map(|id| Replica::spawn(&dir, &ns, id, &kubeconfig, &[]))
        .collect();

    // three race: one leads and writes, the others do not
    let first = wait_for("a leader", Duration::from_secs(60), || {
        replicas.iter().position(|r| r.leading_since(0).is_some())
    })
    .await;
    let l1 = replicas[first].identity.clone();
    wait_for("the leader's writes", Duration::from_secs(20), || {
        (writes_by(&writes, &l1) >= 10).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let total = writes.lock().unwrap().len();
    assert_eq!(total, writes_by(&writes, &l1), "only {l1} wrote");

    // SIGKILL: another leads after the lease duration (it must see the
    // lease unchanged that long), within lease + a jittered retry
    let killed_at = micros_now();
    replicas[first].signal("KILL");
    let (second, led_at) = wait_for(
        "a new leader after SIGKILL",
        Duration::from_secs(20),
        || {
            replicas
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != first)
                .find_map(|(i, r)| r.leading_since(killed_at).map(|t| (i, t)))
        },
    )
    .await;
    let failover = led_at - killed_at;
    eprintln!("SIGKILL: failover after {} ms", failover / 1000);
    let max = secs(LEASE_S + RETRY_S * (1.0 + JITTER) + 1.0);
    assert!(
        failover <= max,
        "failover took {failover} µs, over {max} µs"
    );
    assert!(
        failover >= secs(LEASE_S - RETRY_S * (1.0 + JITTER)),
        "took over before the lease could have expired: {failover} µs"
    );
    let l2 = replicas[second].identity.clone();
    wait_for("the new leader's writes", Duration::from_secs(5), || {
        (writes_by(&writes, &l2) >= 3).then_some(())
    })
    .await;

    // SIGTERM: the leader finishes, releases, exits 0; the last one leads
    // within about a retry period (far less than the lease duration)
    let termed_at = micros_now();
    replicas[second].signal("TERM");
    let third = 3 - first - second;
    let led_at = wait_for("a leader after SIGTERM", Duration::from_secs(10), || {
        replicas[third].leading_since(termed_at)
    })
    .await;
    let handover = led_at - termed_at;
    eprintln!("SIGTERM: hand-over after {} ms", handover / 1000);
    assert!(
        handover <= secs(RETRY_S * (1.0 + JITTER) + 0.8),
        "hand-over took {handover} µs"
    );
    assert_eq!(
        replicas[second].exited(Duration::from_secs(10)).await,
        Some(0)
    );
    assert!(
        replicas[second]
            .lines()
            .iter()
            .any(|l| l.starts_with("stopped ")),
        "{l2} stopped cleanly"
    );
    let l3 = replicas[third].identity.clone();
    wait_for("the third leader's writes", Duration::from_secs(5), || {
        (writes_by(&writes, &l3) >= 3).then_some(())
    })
    .await;

    // SIGSTOP past the renew deadline: a fresh replica takes over; woken,
    // the old leader writes nothing more and stands by
    replicas.push(Replica::spawn(&dir, &ns, "d", &kubeconfig, &[]));
    let d = replicas.len() - 1;
    wait_for("d to sync and stand by", Duration::from_secs(30), || {
        replicas[d]
            .lines()
            .iter()
            .any(|l| l.starts_with("standing by"))
            .then_some(())
    })
    .await;
    let stopped_at = micros_now();
    replicas[third].signal("STOP");
    let d_led = wait_for("d to lead", Duration::from_secs(20), || {
        replicas[d].leading_since(stopped_at)
    })
    .await;
    eprintln!("SIGSTOP: d leads after {} ms", (d_led - stopped_at) / 1000);
    wait_for("d's writes", Duration::from_secs(5), || {
        (writes_by(&writes, "d") >= 3).then_some(())
    })
    .await;
    let l3_writes = writes_by(&writes, &l3);
    replicas[third].signal("CONT");
    let woke_at = micros_now();
    wait_for(
        "the old leader to stand by",
        Duration::from_secs(10),
        || {
            replicas[third]
                .times("standing by")
                .into_iter()
                .any(|t| t > stopped_at)
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        writes_by(&writes, &l3),
        l3_writes,
        "{l3} wrote after waking (woke at {woke_at})"
    );
    // ... and competes again: when d leaves, it leads a new term
    let d_termed = micros_now();
    replicas[d].signal("TERM");
    wait_for(
        "the old leader to lead again",
        Duration::from_secs(10),
        || replicas[third].leading_since(d_termed),
    )
    .await;
    assert_eq!(replicas[d].exited(Duration::from_secs(10)).await, Some(0));
    wait_for("its writes in a new term", Duration::from_secs(5), || {
        (writes_by(&writes, &l3) >= l3_writes + 3).then_some(())
    })
    .await;

    replicas[third].signal("TERM");
    assert_eq!(
        replicas[third].exited(Duration::from_secs(10)).await,
        Some(0)
    );
    recorder.abort();
    let all = writes.lock().unwrap().clone();
    let runs = terms_in_order(&all);
    eprintln!("terms in the API server's order: {runs:?}");
    // the leaders in order (a loaded machine may add a term of its own,
    // e.g. a leader that missed its renew deadline and won again)
    let expected = [l1.as_str(), &l2, &l3, "d", &l3];
    let mut rest = runs.iter();
    for want in expected {
        assert!(
            rest.any(|r| r.0 == want),
            "terms of {expected:?} in this order: {runs:?}"
        );
    }
    let l3_terms: Vec<u64> = runs.iter().filter(|r| r.0 == l3).map(|r| r.1).collect();
    assert!(
        l3_terms.windows(2).all(|w| w[1] > w[0]) && l3_terms.len() >= 2,
        "a new term for {l3}: {l3_terms:?}"
    );
    drop(replicas);
    // kept for a look when the test fails, removed when it passes
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_metrics_and_events_of_the_replicas() {
    let _serial = SERIAL.lock().await;
    let ns = env().namespace("op-probes").await.unwrap();
    let client = client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    for i in 0..3 {
        managed(&api, &format!("ok{i}"), &[("k", "v")]).await;
    }
    managed(&api, "broken", &[("fail", "true")]).await;
    api.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({
        "metadata": {"name": "unmanaged"}, "data": {"k": "v"}}))
        .unwrap(),
    )
    .await
    .unwrap();
    let dir = scratch_dir("probes");

    // p reaches the API server through a gate that is closed for now
    let upstream: SocketAddr = env()
        .access()
        .server
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    let gate = Gate::start(upstream).await;
    let gated = dir.join("gated.kubeconfig");
    let original = std::fs::read_to_string(env().kubeconfig()).unwrap();
    assert!(original.contains(&env().access().server));
    std::fs::write(
        &gated,
        original.replace(&env().access().server, &format!("https://{}", gate.addr)),
    )
    .unwrap();
    // Counting needs one leader throughout: election timings that a loaded
    // machine cannot miss (p's connections go through this process).
    let calm = [
        ("OPERATOR_REQUEUE", "3600"),
        ("OPERATOR_LEASE_DURATION", "15"),
        ("OPERATOR_RENEW_DEADLINE", "10"),
        ("OPERATOR_RETRY_PERIOD", "0.5"),
    ];
    let mut p = Replica::spawn(&dir, &ns, "p", &gated, &calm);
    let p_admin = wait_for("p's admin port", Duration::from_secs(30), || p.admin()).await;
    assert_eq!(
        get(p_admin, "/healthz").await.0,
        200,
        "alive while not synced"
    );
    for _ in 0..10 {
        let (status, body) = get(p_admin, "/readyz").await;
        assert_eq!(status, 503, "not ready before the caches sync: {body}");
        assert!(body.contains("[-]caches not ready"), "{body}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    gate.open.send_replace(true);
    let opened = tokio::time::Instant::now();
    loop {
        let (status, body) = get(p_admin, "/readyz").await;
        if status == 200 {
            assert!(body.contains("[+]caches ok"), "{body}");
            break;
        }
        assert!(
            opened.elapsed() < Duration::from_secs(30),
            "never ready: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // p leads (alone), reconciles the three once and fails on `broken`
    wait_for("p's three reconciles", Duration::from_secs(30), || {
        let n = p
            .lines()
            .iter()
            .filter(|l| l.starts_with("reconciled "))
            .count();
        (n == 3).then_some(())
    })
    .await;
    let kubeconfig = env().kubeconfig().to_path_buf();
    let mut q = Replica::spawn(
        &dir,
        &ns,
        "q",
        &kubeconfig,
        &[calm.as_slice(), &[("OPERATOR_READY_WHEN", "leading")]].concat(),
    );
    let q_admin = wait_for("q's admin port", Duration::from_secs(30), || q.admin()).await;
    let opened = tokio::time::Instant::now();
    loop {
        // standing by: synced, but not ready in `leading` mode
        let (status, body) = get(q_admin, "/readyz").await;
        if body.contains("[+]caches ok") {
            assert_eq!(status, 503, "{body}");
            assert!(body.contains("[-]leader not ready"), "{body}");
            break;
        }
        assert!(
            opened.elapsed() < Duration::from_secs(30),
            "q never synced: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get(p_admin, "/readyz").await.0, 200, "p leads");

    // metrics after known activity: three successes, failures on `broken`
    let (status, text) = get(p_admin, "/metrics").await;
    assert_eq!(status, 200);
    let ctl = [("controller", "operator")];
    let requeued = [("controller", "operator"), ("result", "requeue_after")];
    assert_eq!(
        sample(&text, "controller_runtime_reconcile_total", &requeued),
        Some(3.0),
        "{text}"
    );
    let errors = sample(&text, "controller_runtime_reconcile_errors_total", &ctl).unwrap();
    assert!(errors >= 1.0, "{errors}");
    assert_eq!(
        sample(
            &text,
            "controller_runtime_reconcile_total",
            &[("controller", "operator"), ("result", "error")]
        ),
        Some(errors)
    );
    assert_eq!(
        sample(
            &text,
            "leader_election_master_status",
            &[("name", LEASE_NAME)]
        ),
        Some(1.0)
    );
    let patches = sample(
        &text,
        "rest_client_requests_total",
        &[("method", "PATCH"), ("code", "200")],
    )
    .unwrap_or(0.0);
    assert!(patches >= 3.0, "{text}");
    let adds = sample(&text, "workqueue_adds_total", &[("name", "operator")]).unwrap();
    assert!(adds >= 4.0, "{adds}");
    let (_, q_text) = get(q_admin, "/metrics").await;
    assert_eq!(
        sample(
            &q_text,
            "leader_election_master_status",
            &[("name", LEASE_NAME)]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&q_text, "controller_runtime_reconcile_total", &requeued),
        Some(0.0),
        "the standby reconciled nothing"
    );

    // a change to a managed object's data: one more success
    api.patch(
        "ok0",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"k": "changed"}})),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, text) = get(p_admin, "/metrics").await;
        if sample(&text, "controller_runtime_reconcile_total", &requeued) == Some(4.0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Events: Normal Reconciled per object, Warning ReconcileFailed
    let events: Api<K8sEvent> = Api::namespaced(client, &ns);
    let list = wait_for_events(&events).await;
    for name in ["ok0", "ok1", "ok2"] {
        assert!(
            list.iter()
                .any(|e| e.reason.as_deref() == Some("Reconciled")
                    && e.type_.as_deref() == Some("Normal")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                    && e.reporting_instance.as_deref() == Some("p")),
            "a Reconciled event for {name}"
        );
    }
    assert!(
        list.iter()
            .any(|e| e.reason.as_deref() == Some("ReconcileFailed")
                && e.type_.as_deref() == Some("Warning")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("broken"))
    );
    assert!(
        !list
            .iter()
            .any(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("unmanaged"))
    );

    // p leaves: q leads, turns ready, and its gauge says so
    let termed = micros_now();
    p.signal("TERM");
    wait_for("q to lead", Duration::from_secs(10), || {
        q.leading_since(termed)
    })
    .await;
    assert_eq!(p.exited(Duration::from_secs(10)).await, Some(0));
    let (status, body) = get(q_admin, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    let (_, q_text) = get(q_admin, "/metrics").await;
    assert_eq!(
        sample(
            &q_text,
            "leader_election_master_status",
            &[("name", LEASE_NAME)]
        ),
        Some(1.0)
    );
    q.signal("TERM");
    assert_eq!(q.exited(Duration::from_secs(10)).await, Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

async fn wait_for_events(events: &Api<K8sEvent>) -> Vec<K8sEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let list = events.list(&Default::default()).await.unwrap().items;
        let reconciled = list
            .iter()
            .filter(|e| e.reason.as_deref() == Some("Reconciled"))
            .count();
        let failed = list
            .iter()
            .any(|e| e.reason.as_deref() == Some("ReconcileFailed"));
        if reconciled >= 3 && failed {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "events so far: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
