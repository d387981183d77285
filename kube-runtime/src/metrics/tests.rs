//! The metrics after known activity, read back the way Prometheus reads
//! them: encoded by the registry, parsed by a Prometheus text parser.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_client::client::{RequestAttempt, RequestObserver};
use prometheus_client::registry::Registry;
use prometheus_parse::{Sample, Scrape, Value};

use super::*;
use crate::controller::{Action, ObjectRef, RunnerConfig, WorkQueue, WorkQueueConfig, run_workers};

/// The registry's samples, as the classic text format carries them.
fn scrape(registry: &Registry) -> Vec<Sample> {
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, registry).unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap()
        .samples
}

/// The value of the counter, gauge or untyped sample `name` with exactly
/// `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.metric == name
                && s.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?} in {samples:#?}");
    match found[0].value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("{name} is {other:?}"),
    }
}

/// Every metric name in the text as exposed (sample names, not families).
fn sample_names(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

#[test]
fn exposed_names_are_controller_runtimes_in_both_formats() {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let controller = metrics.controller("cm");
    let queue = WorkQueue::<String>::new(WorkQueueConfig::default().metrics(controller.queue()));
    metrics.leader_election("lease");
    metrics.client().observe(&RequestAttempt::new(
        "GET",
        "h:1",
        Some(200),
        Duration::ZERO,
    ));

    let mut expected: std::collections::BTreeSet<String> = [
        "controller_runtime_reconcile_total",
        "controller_runtime_reconcile_errors_total",
        "controller_runtime_reconcile_panics_total",
        "controller_runtime_active_workers",
        "controller_runtime_max_concurrent_reconciles",
        "workqueue_depth",
        "workqueue_adds_total",
        "workqueue_retries_total",
        "workqueue_unfinished_work_seconds",
        "workqueue_longest_running_processor_seconds",
        "leader_election_master_status",
        "rest_client_requests_total",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for histogram in [
        "controller_runtime_reconcile_time_seconds",
        "workqueue_queue_duration_seconds",
        "workqueue_work_duration_seconds",
        "rest_client_request_duration_seconds",
    ] {
        for suffix in ["_bucket", "_sum", "_count"] {
            expected.insert(format!("{histogram}{suffix}"));
        }
    }

    let mut openmetrics = String::new();
    prometheus_client::encoding::text::encode(&mut openmetrics, &registry).unwrap();
    let mut classic = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut classic, &registry).unwrap();
    assert_eq!(sample_names(&openmetrics), expected, "{openmetrics}");
    assert_eq!(sample_names(&classic), expected, "{classic}");
    assert!(openmetrics.ends_with("# EOF\n"));
    assert!(!openmetrics.contains("_total_total"));
    // OpenMetrics names a counter family without `_total`, the classic
    // format with it; Prometheus stores the sample names, identical above.
    assert!(openmetrics.contains("# TYPE controller_runtime_reconcile counter\n"));
    assert!(classic.contains("# TYPE controller_runtime_reconcile_total counter\n"));

    // controller-runtime's buckets.
    let samples = scrape(&registry);
    let buckets = |name: &str| -> Vec<f64> {
        let s = samples.iter().find(|s| s.metric == name).unwrap();
        match &s.value {
            Value::Histogram(h) => h.iter().map(|b| b.less_than).collect(),
            other => panic!("{other:?}"),
        }
    };
    let with_inf = |b: &[f64]| {
        let mut v = b.to_vec();
        v.push(f64::INFINITY);
        v
    };
    assert_eq!(
        buckets("controller_runtime_reconcile_time_seconds"),
        with_inf(&RECONCILE_TIME_BUCKETS)
    );
    assert_eq!(
        buckets("workqueue_queue_duration_seconds"),
        with_inf(&WORKQUEUE_DURATION_BUCKETS)
    );
    assert_eq!(
        buckets("rest_client_request_duration_seconds"),
        with_inf(&REST_CLIENT_DURATION_BUCKETS)
    );
    drop(queue);
}

#[tokio::test(start_paused = true)]
async fn queue_counts_adds_retries_depth_and_durations() {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let q = WorkQueue::new(WorkQueueConfig::default().metrics(metrics.queue("q")));
    let labels = [("name", "q"), ("controller", "q")];

    // 5 distinct keys, each added 3 times: 5 adds, depth 5.
    for _ in 0..3 {
        for k in ["a", "b", "c", "d", "e"] {
            q.add(k);
        }
    }
    let s = scrape(&registry);
    assert_eq!(value(&s, "workqueue_adds_total", &labels), 5.0);
    assert_eq!(value(&s, "workqueue_depth", &labels), 5.0);
    assert_eq!(value(&s, "workqueue_retries_total", &labels), 0.0);

    // Two keys taken after waiting 100 ms, one finished 250 ms later.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(q.get().await, Some("a"));
    assert_eq!(q.get().await, Some("b"));
    tokio::time::sleep(Duration::from_millis(250)).await;
    q.done(&"a");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let s = scrape(&registry);
    assert_eq!(value(&s, "workqueue_depth", &labels), 3.0);
    assert_eq!(
        value(&s, "workqueue_queue_duration_seconds_count", &labels),
        2.0
    );
    assert!((value(&s, "workqueue_queue_duration_seconds_sum", &labels) - 0.2).abs() < 1e-9);
    assert_eq!(
        value(&s, "workqueue_work_duration_seconds_count", &labels),
        1.0
    );
    assert!((value(&s, "workqueue_work_duration_seconds_sum", &labels) - 0.25).abs() < 1e-9);
    // "b" has been processing for 300 ms, and is the only one.
    let longest = value(&s, "workqueue_longest_running_processor_seconds", &labels);
    assert!((longest - 0.3).abs() < 1e-9, "{longest}");
    let unfinished = value(&s, "workqueue_unfinished_work_seconds", &labels);
    assert!((unfinished - 0.3).abs() < 1e-9, "{unfinished}");

    // Re-adding the processing "b" makes it due again: an add, depth 4.
    q.add("b");
    let s = scrape(&registry);
    assert_eq!(value(&s, "workqueue_adds_total", &labels), 6.0);
    assert_eq!(value(&s, "workqueue_depth", &labels), 4.0);

    // Delayed adds are retries; a delayed key counts in the depth once due,
    // even if no worker asks for it.
    q.add_after("x", Duration::from_millis(10));
    q.add_rate_limited("y");
    q.add_rate_limited("y"); // absorbed by the earlier due time, still a retry
    let s = scrape(&registry);
    assert_eq!(value(&s, "workqueue_retries_total", &labels), 3.0);
    assert_eq!(
        value(&s, "workqueue_depth", &labels),
        4.0,
        "x, y not due yet"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let s = scrape(&registry);
    assert_eq!(value(&s, "workqueue_depth", &labels), 6.0);
    assert_eq!(value(&s, "workqueue_adds_total", &labels), 8.0);
    assert_eq!(q.len(), 5, "ready: c d e x y (b waits for its reconcile)");

    // A dropped queue leaves the scrape-time gauges.
    drop(q);
    let s = scrape(&registry);
    assert!(!s.iter().any(|s| s.metric == "workqueue_depth"));
    assert_eq!(value(&s, "workqueue_adds_total", &labels), 8.0);
}

#[tokio::test(start_paused = true)]
async fn a_queue_without_metrics_records_nothing() {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let _unused = metrics.queue("q");
    let q = WorkQueue::default();
    q.add("a");
    q.add_after("b", Duration::from_millis(1));
    assert_eq!(q.get().await, Some("a"));
    q.done(&"a");
    let s = scrape(&registry);
    let labels = [("name", "q"), ("controller", "q")];
    assert_eq!(value(&s, "workqueue_adds_total", &labels), 0.0);
    assert_eq!(value(&s, "workqueue_retries_total", &labels), 0.0);
    assert!(!s.iter().any(|s| s.metric == "workqueue_depth"));
}

#[derive(Debug, thiserror::Error)]
#[error("failed on purpose")]
struct Failed;

fn configmap(name: &str) -> Arc<ConfigMap> {
    Arc::new(ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    })
}

#[tokio::test(start_paused = true)]
async fn runner_counts_reconciles_by_result_errors_time_and_workers() {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let controller = metrics.controller("cm");
    let queue = WorkQueue::new(WorkQueueConfig::default().metrics(controller.queue()));
    // The name says what an object's first reconcile does; every later
    // reconcile succeeds. Each takes 40 ms.
    let names = [
        "ok-1",
        "ok-2",
        "ok-3",
        "requeue-1",
        "backoff-1",
        "fail-1",
        "fail-2",
        "panic-1",
    ];
    let objects: std::collections::HashMap<ObjectRef<ConfigMap>, Arc<ConfigMap>> = names
        .iter()
        .map(|n| {
            let cm = configmap(n);
            (ObjectRef::from_obj(&*cm), cm)
        })
        .collect();
    queue.add(ObjectRef::new("gone").within("ns"));
    for key in objects.keys() {
        queue.add(key.clone());
    }
    let runs = Arc::new(parking_lot::Mutex::new(std::collections::HashMap::<
        String,
        u32,
    >::new()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stream = run_workers(
        queue.clone(),
        move |k| objects.get(k).cloned(),
        move |cm: Arc<ConfigMap>, _ctx: Arc<()>| {
            let runs = runs.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(40)).await;
                let name = cm.metadata.name.clone().unwrap();
                let first = {
                    let mut runs = runs.lock();
                    let n = runs.entry(name.clone()).or_default();
                    *n += 1;
                    *n == 1
                };
                if !first {
                    return Ok(Action::await_change());
                }
                match name.split('-').next().unwrap() {
                    "ok" => Ok(Action::await_change()),
                    "requeue" => Ok(Action::requeue(Duration::from_secs(3600))),
                    "backoff" => Ok(Action::backoff()),
                    "fail" => Err(Failed),
                    _ => panic!("reconcile panics on purpose"),
                }
            }
        },
        // Failures wait for a change: they are reconciled once.
        |_, _: &Failed, _| Action::await_change(),
        Arc::new(()),
        RunnerConfig::default()
            .concurrency(NonZeroUsize::new(3).unwrap())
            .metrics(controller.clone()),
        async move {
            let _ = stopped.await;
        },
    );
    let (items_tx, mut items) = tokio::sync::mpsc::unbounded_channel();
    let consumer = tokio::spawn(async move {
        tokio::pin!(stream);
        while let Some(item) = stream.next().await {
            let _ = items_tx.send(item.is_ok());
        }
    });
    let controller_label = [("controller", "cm")];
    // While the first three reconciles run, three workers are busy.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let s = scrape(&registry);
    assert_eq!(
        value(&s, "controller_runtime_active_workers", &controller_label),
        3.0
    );
    assert_eq!(
        value(
            &s,
            "controller_runtime_max_concurrent_reconciles",
            &controller_label
        ),
        3.0
    );
    // "gone", the 8 objects, and the retries of backoff-1 and panic-1.
    for _ in 0..11 {
        items.recv().await.unwrap();
    }
    let _ = stop.send(());
    consumer.await.unwrap();
    assert!(items.recv().await.is_none(), "no more reconciles");

    let s = scrape(&registry);
    let result = |r: &str| {
        value(
            &s,
            "controller_runtime_reconcile_total",
            &[("controller", "cm"), ("result", r)],
        )
    };
    assert_eq!(result("success"), 5.0, "3 ok, then backoff-1 and panic-1");
    assert_eq!(result("requeue_after"), 1.0);
    assert_eq!(result("requeue"), 1.0);
    assert_eq!(result("error"), 3.0, "two failures and a panic");
    assert_eq!(
        value(
            &s,
            "controller_runtime_reconcile_errors_total",
            &controller_label
        ),
        3.0
    );
    assert_eq!(
        value(
            &s,
            "controller_runtime_reconcile_panics_total",
            &controller_label
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "controller_runtime_reconcile_time_seconds_count",
            &controller_label
        ),
        10.0
    );
    let time = value(
        &s,
        "controller_runtime_reconcile_time_seconds_sum",
        &controller_label,
    );
    assert!((time - 10.0 * 0.04).abs() < 1e-6, "{time}");
    assert_eq!(
        value(&s, "controller_runtime_active_workers", &controller_label),
        0.0
    );
    // The queue: 9 initial adds and 2 retries that came due; retries are
    // the 1 h requeue and the two backoffs; 11 keys handed out and done.
    let q = [("name", "cm"), ("controller", "cm")];
    assert_eq!(value(&s, "workqueue_adds_total", &q), 11.0);
    assert_eq!(value(&s, "workqueue_retries_total", &q), 3.0);
    assert_eq!(value(&s, "workqueue_work_duration_seconds_count", &q), 11.0);
    assert_eq!(
        value(&s, "workqueue_queue_duration_seconds_count", &q),
        11.0
    );
    assert_eq!(value(&s, "workqueue_depth", &q), 0.0);
}

#[test]
fn client_metrics_count_every_attempt_by_code_method_and_host() {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let client = metrics.client();
    let ms = Duration::from_millis;
    client.observe(&RequestAttempt::new(
        "GET",
        "10.0.0.1:6443",
        Some(200),
        ms(3),
    ));
    client.observe(&RequestAttempt::new(
        "GET",
        "10.0.0.1:6443",
        Some(200),
        ms(30),
    ));
    client.observe(&RequestAttempt::new(
        "GET",
        "10.0.0.1:6443",
        Some(503),
        ms(2),
    ));
    client.observe(&RequestAttempt::new("POST", "10.0.0.1:6443", None, ms(1)));
    let s = scrape(&registry);
    let requests = |code: &str, method: &str| {
        value(
            &s,
            "rest_client_requests_total",
            &[
                ("code", code),
                ("method", method),
                ("host", "10.0.0.1:6443"),
            ],
        )
    };
    assert_eq!(requests("200", "GET"), 2.0);
    assert_eq!(requests("503", "GET"), 1.0);
    assert_eq!(requests("<error>", "POST"), 1.0);
    let get = [("verb", "GET"), ("host", "10.0.0.1:6443")];
    assert_eq!(
        value(&s, "rest_client_request_duration_seconds_count", &get),
        3.0
    );
    assert!((value(&s, "rest_client_request_duration_seconds_sum", &get) - 0.035).abs() < 1e-9);
}

#[test]
fn leader_election_gauge_starts_at_standby() {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let leader = metrics.leader_election("my-lease");
    let lease = [("name", "my-lease")];
    assert_eq!(
        value(&scrape(&registry), "leader_election_master_status", &lease),
        0.0
    );
    leader.set_leading(true);
    assert!(leader.is_leading());
    assert_eq!(
        value(&scrape(&registry), "leader_election_master_status", &lease),
        1.0
    );
    leader.set_leading(false);
    assert_eq!(
        value(&scrape(&registry), "leader_election_master_status", &lease),
        0.0
    );
}
