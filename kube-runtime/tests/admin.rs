//! The admin server end to end: a `Controller` runs over the real control
//! plane with metrics on, and `/metrics`, `/healthz` and `/readyz` are
//! read over HTTP the way Prometheus and the kubelet read them; the
//! metrics text is parsed by a Prometheus text parser.

mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::params::PostParams;
use kube_client::{Api, Client};
use kube_runtime::admin::{AdminServer, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_TEXT_CONTENT_TYPE};
use kube_runtime::controller::{Action, Config, Controller};
use kube_runtime::metrics::Metrics;
use kube_runtime::metrics::prometheus_client::registry::Registry;
use kube_runtime::{Store, WatcherConfig};
use prometheus_parse::{Sample, Scrape, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP/1.1 answer: status, headers (lower-case names), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request over a fresh connection to `addr`.
async fn http(addr: std::net::SocketAddr, method: &str, path: &str, accept: &str) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("the admin server answers within 10 s")
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

fn parse(text: &str) -> Vec<Sample> {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap()
        .samples
}

/// The value of the sample `name` with exactly `labels`, if there is one.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.metric == name
                && s.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} twice");
    found.first().map(|s| match s.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("{name} is {other:?}"),
    })
}

#[derive(Debug, thiserror::Error)]
#[error("objects named bad-* fail")]
struct Bad;

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn admin_server_serves_controller_metrics_health_and_readiness() {
    let ns = common::env().namespace("admin").await.unwrap();
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let client = Client::builder(common::config_of(common::env().kubeconfig()))
        .request_observer(metrics.client())
        .build()
        .unwrap();
    let host = client
        .server_url()
        .split_once("://")
        .unwrap()
        .1
        .trim_end_matches('/')
        .to_string();
    let api: Api<ConfigMap> = Api::namespaced(client, &ns);

    // Known activity on the API: 3 creates, one 404.
    for name in ["good-1", "good-2", "bad-1"] {
        api.create(&PostParams::default(), &common::cm(name))
            .await
            .unwrap();
    }
    assert!(api.get_opt("missing").await.unwrap().is_none());

    // The readiness checks: the controller's cache (once it exists) and a
    // leader flag as leader election would hold it.
    let cache: Arc<OnceLock<Store<ConfigMap>>> = Arc::default();
    let (leading_tx, leading) = tokio::sync::watch::channel(false);
    let admin = AdminServer::bind("127.0.0.1:0")
        .metrics(registry)
        .ready_when("caches", {
            let cache = cache.clone();
            move || cache.get().is_some_and(Store::is_ready)
        })
        .ready_when("leader", move || *leading.borrow())
        .spawn()
        .await
        .unwrap();
    let addr = admin.local_addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0);

    // Alive from the start; not ready before the caches synced.
    let healthz = http(addr, "GET", "/healthz", "*/*").await;
    assert_eq!((healthz.status, healthz.body.as_str()), (200, "ok\n"));
    let readyz = http(addr, "GET", "/readyz", "*/*").await;
    assert_eq!(readyz.status, 503, "{}", readyz.body);
    assert!(
        readyz.body.contains("[-]caches not ready\n"),
        "{}",
        readyz.body
    );
    assert!(
        readyz.body.contains("[-]leader not ready\n"),
        "{}",
        readyz.body
    );

    // The controller, with metrics; bad-* fail once and wait for a change.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = Controller::new(api.clone(), WatcherConfig::default())
        .with_config(
            Config::default()
                .concurrency(2)
                .metrics(metrics.controller("configmaps")),
        )
        .graceful_shutdown_on(async move {
            let _ = stopped.await;
        });
    let store = controller.store();
    cache.set(store.clone()).unwrap();
    let results = tokio::spawn(
        controller
            .run(
                |cm: Arc<ConfigMap>, _ctx: Arc<()>| async move {
                    if cm
                        .metadata
                        .name
                        .as_deref()
                        .unwrap_or_default()
                        .starts_with("bad")
                    {
                        Err(Bad)
                    } else {
                        Ok(Action::await_change())
                    }
                },
                |_, _: &Bad, _| Action::await_change(),
                Arc::new(()),
            )
            .collect::<Vec<_>>(),
    );

    // Caches synced, not yet leading: still 503, naming only the leader.
    store.wait_until_ready().await;
    let readyz = http(addr, "GET", "/readyz", "*/*").await;
    assert_eq!(readyz.status, 503);
    assert!(readyz.body.contains("[+]caches ok\n"), "{}", readyz.body);
    assert!(
        readyz.body.contains("[-]leader not ready\n"),
        "{}",
        readyz.body
    );
    leading_tx.send_replace(true);
    let readyz = http(addr, "GET", "/readyz", "*/*").await;
    assert_eq!(
        (readyz.status, readyz.body.as_str()),
        (200, "[+]caches ok\n[+]leader ok\nok\n")
    );

    // Wait until the three reconciles are in the metrics, as scraped.
    let reconciles = [("controller", "configmaps"), ("result", "success")];
    eventually("three reconciles scraped", async || {
        let scraped = http(addr, "GET", "/metrics", PROMETHEUS_TEXT_CONTENT_TYPE).await;
        let s = parse(&scraped.body);
        value(&s, "controller_runtime_reconcile_total", &reconciles) == Some(2.0)
            && value(
                &s,
                "controller_runtime_reconcile_errors_total",
                &[("controller", "configmaps")],
            ) == Some(1.0)
    })
    .await;

    // The classic text format, asked for by Accept.
    let classic = http(addr, "GET", "/metrics", "text/plain; version=0.0.4").await;
    assert_eq!(classic.status, 200);
    assert_eq!(
        classic.header("content-type"),
        Some(PROMETHEUS_TEXT_CONTENT_TYPE)
    );
    let s = parse(&classic.body);
    let c = [("controller", "configmaps")];
    let q = [("name", "configmaps"), ("controller", "configmaps")];
    let result = |r: &str| {
        value(
            &s,
            "controller_runtime_reconcile_total",
            &[("controller", "configmaps"), ("result", r)],
        )
    };
    assert_eq!(result("success"), Some(2.0));
    assert_eq!(result("error"), Some(1.0));
    assert_eq!(result("requeue"), Some(0.0));
    assert_eq!(result("requeue_after"), Some(0.0));
    assert_eq!(
        value(&s, "controller_runtime_reconcile_time_seconds_count", &c),
        Some(3.0)
    );
    assert_eq!(
        value(&s, "controller_runtime_max_concurrent_reconciles", &c),
        Some(2.0)
    );
    assert_eq!(
        value(&s, "controller_runtime_active_workers", &c),
        Some(0.0)
    );
    assert_eq!(value(&s, "workqueue_adds_total", &q), Some(3.0));
    assert_eq!(value(&s, "workqueue_depth", &q), Some(0.0));
    assert_eq!(value(&s, "workqueue_retries_total", &q), Some(0.0));
    assert_eq!(
        value(&s, "workqueue_work_duration_seconds_count", &q),
        Some(3.0)
    );
    assert_eq!(
        value(&s, "workqueue_longest_running_processor_seconds", &q),
        Some(0.0)
    );
    // The client: exactly the 3 creates and the 404; the reflector's
    // list+watch (one streaming watch, or a list and a watch) as GET 200.
    let requests = |code: &str, method: &str| {
        value(
            &s,
            "rest_client_requests_total",
            &[("code", code), ("method", method), ("host", &host)],
        )
    };
    assert_eq!(requests("201", "POST"), Some(3.0));
    assert_eq!(requests("404", "GET"), Some(1.0));
    let gets = requests("200", "GET").unwrap();
    assert!(gets >= 1.0, "{gets}");
    let timed = value(
        &s,
        "rest_client_request_duration_seconds_count",
        &[("verb", "GET"), ("host", &host)],
    )
    .unwrap();
    assert_eq!(timed, gets + 1.0, "every GET attempt is timed");

    // OpenMetrics by default: same sample names, `# EOF` at the end.
    let open = http(addr, "GET", "/metrics", "*/*").await;
    assert_eq!(open.status, 200);
    assert_eq!(open.header("content-type"), Some(OPENMETRICS_CONTENT_TYPE));
    assert!(open.body.ends_with("# EOF\n"));
    let names = |samples: &[Sample]| {
        samples
            .iter()
            .map(|s| s.metric.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let open_samples = parse(&open.body);
    assert_eq!(names(&open_samples), names(&s));
    assert_eq!(
        value(
            &open_samples,
            "controller_runtime_reconcile_total",
            &reconciles
        ),
        Some(2.0)
    );
    assert!(!open.body.contains("_total_total"));

    // Anything else.
    assert_eq!(http(addr, "GET", "/nope", "*/*").await.status, 404);
    let post = http(addr, "POST", "/metrics", "*/*").await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), results)
        .await
        .expect("the runner stops")
        .unwrap();
    admin.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the port is closed after shutdown"
    );
}

#[tokio::test]
async fn readiness_checks_that_panic_fail_and_other_edges() {
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let admin = AdminServer::bind("127.0.0.1:0")
        .ready_when("flag", {
            let flag = flag.clone();
            move || flag.load(std::sync::atomic::Ordering::SeqCst)
        })
        .ready_when("boom", || panic!("a check that panics"))
        .spawn()
        .await
        .unwrap();
    let addr = admin.local_addr();
    let readyz = http(addr, "GET", "/readyz", "*/*").await;
    assert_eq!(readyz.status, 503);
    assert_eq!(
        readyz.body,
        "[-]flag not ready\n[-]boom not ready\nreadyz check failed\n"
    );
    flag.store(true, std::sync::atomic::Ordering::SeqCst);
    let readyz = http(addr, "GET", "/readyz", "*/*").await;
    assert_eq!(readyz.status, 503, "the panicking check still fails");
    assert!(readyz.body.starts_with("[+]flag ok\n[-]boom not ready\n"));
    // The server survived the panics.
    let healthz = http(addr, "HEAD", "/healthz", "*/*").await;
    assert_eq!((healthz.status, healthz.body.as_str()), (200, ""));
    assert_eq!(healthz.header("content-length"), Some("3"));
    // No registry: no metrics.
    assert_eq!(http(addr, "GET", "/metrics", "*/*").await.status, 404);

    // The port is taken while the server runs: a second one says so.
    let e = AdminServer::bind(addr).spawn().await.unwrap_err();
    assert!(
        matches!(e, kube_runtime::admin::AdminError::Bind { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains(&addr.to_string()), "{e}");
    admin.shutdown().await;
}
