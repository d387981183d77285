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

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube_client::config::{Config, Kubeconfig};
use kube_client::params::{Patch, PatchParams, PostParams};
use kube_client::{Api, Client, ResourceExt};
use kube_runtime::watcher::{Event, Watcher, WatcherConfig};
use prometheus_parse::{Scrape, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LEASE_S: f64 = 3.0;
const RENEW_S: f64 = 2.0;
const RETRY_S: f64 = 0.5;
const JITTER: f64 = 1.2;
const LEASE_NAME: &str = "operator-e2e";

/// One process test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn env() -> &'static kube_testenv::TestEnv {
    kube_testenv::shared().unwrap_or_else(|e| panic!("control plane: {e}"))
}

fn client() -> Client {
    let kc = Kubeconfig::read_from(env().kubeconfig()).unwrap();
    Client::try_from(Config::from_kubeconfig(&kc, &Default::default()).unwrap()).unwrap()
}

fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// The example's executable, built once.
fn operator_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // Only the variables a build needs: the test's own environment
        // (CARGO_PKG_*, CARGO_MANIFEST_DIR, ...) would make build scripts
        // that watch variables rebuild on every run.
        let keep = [
            "PATH",
            "HOME",
            "CARGO_HOME",
            "RUSTUP_HOME",
            "RUSTUP_TOOLCHAIN",
            "CARGO_TARGET_DIR",
        ];
        let mut cargo = Command::new(env!("CARGO"));
        cargo.env_clear();
        for (k, v) in std::env::vars_os() {
            if keep.iter().any(|keep| k == *keep) {
                cargo.env(k, v);
            }
        }
        let out = cargo
            .args([
                "build",
                "-p",
                "examples",
                "--example",
                "operator",
                "--message-format=json",
            ])
            .stderr(Stdio::inherit())
            .output()
            .expect("running cargo build");
        assert!(out.status.success(), "building the example failed");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "operator")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported the example's executable")
    })
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kube-operator-e2e-{name}-{}-{}",
        std::process::id(),
        micros_now()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One replica of the example; SIGKILLed when dropped.
struct Replica {
    identity: String,
    stdout: PathBuf,
    child: Child,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    fn spawn(
        dir: &Path,
        namespace: &str,
        identity: &str,
        kubeconfig: &Path,
        extra: &[(&str, &str)],
    ) -> Replica {
        let stdout = dir.join(format!("{identity}.out"));
        let mut cmd = Command::new(operator_binary());
        cmd.env_clear()
            .env("KUBECONFIG", kubeconfig)
            .env("OPERATOR_NAMESPACE", namespace)
            .env("OPERATOR_IDENTITY", identity)
            .env("OPERATOR_LEASE", LEASE_NAME)
            .env("OPERATOR_LEASE_DURATION", LEASE_S.to_string())
            .env("OPERATOR_RENEW_DEADLINE", RENEW_S.to_string())
            .env("OPERATOR_RETRY_PERIOD", RETRY_S.to_string())
            .env("OPERATOR_REQUEUE", "0.2")
            .env("OPERATOR_ADMIN_ADDR", "127.0.0.1:0");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(dir.join(format!("{identity}.err"))).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Replica {
            identity: identity.into(),
            stdout,
            child,
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {}", self.identity);
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.stdout)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// `at=` of each line starting with `prefix`.
    fn times(&self, prefix: &str) -> Vec<i64> {
        self.lines()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| field(l, "at"))
            .filter_map(|v| v.parse().ok())
            .collect()
    }

    fn leading_since(&self, after: i64) -> Option<i64> {
        self.times("leading ").into_iter().find(|t| *t > after)
    }

    fn admin(&self) -> Option<SocketAddr> {
        self.lines()
            .iter()
            .find_map(|l| l.strip_prefix("admin listening on "))
            .map(|a| a.parse().unwrap())
    }

    /// Waits (bounded) for the process to exit; its exit code.
    async fn exited(&mut self, limit: Duration) -> Option<i32> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} did not exit within {limit:?}",
                self.identity
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|w| w.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
}

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
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One write to a managed ConfigMap, as the API server recorded it.
#[derive(Debug, Clone)]
struct Write {
    revision: u64,
    by: String,
    term: u64,
    at: i64,
}

/// Records every version of the managed ConfigMaps that carries a stamp.
fn record_writes(api: Api<ConfigMap>) -> (Arc<Mutex<Vec<Write>>>, tokio::task::JoinHandle<()>) {
    let writes = Arc::new(Mutex::new(Vec::new()));
    let sink = writes.clone();
    let task = tokio::spawn(async move {
        let mut watcher = Watcher::new(
            api,
            WatcherConfig::default().labels("operator.kube.rs/managed=true"),
        );
        loop {
            let Ok(Event::Apply(cm) | Event::InitApply(cm)) = watcher.next().await else {
                continue;
            };
            let a = cm.metadata.annotations.clone().unwrap_or_default();
            let stamp = (
                a.get("operator.kube.rs/reconciled-by"),
                a.get("operator.kube.rs/term").and_then(|t| t.parse().ok()),
                a.get("operator.kube.rs/reconciled-at")
                    .and_then(|t| t.parse().ok()),
            );
            if let (Some(by), Some(term), Some(at)) = stamp {
                let revision = cm.resource_version().unwrap().parse().unwrap();
                let mut w = sink.lock().unwrap();
                if !w.iter().any(|x: &Write| x.revision == revision) {
                    w.push(Write {
                        revision,
                        by: by.clone(),
                        term,
                        at,
                    });
                }
            }
        }
    });
    (writes, task)
}

/// The writes in the API server's order, grouped into runs of one
/// (identity, term); asserts that no pair comes back after another began
/// and that each run's stamps precede the next run's. Returns the runs:
/// (identity, term, first stamp, last stamp, writes).
fn terms_in_order(writes: &[Write]) -> Vec<(String, u64, i64, i64, usize)> {
    let mut w = writes.to_vec();
    w.sort_by_key(|x| x.revision);
    let mut runs: Vec<(String, u64, i64, i64, usize)> = Vec::new();
    for x in &w {
        match runs.last_mut() {
            Some(r) if r.0 == x.by && r.1 == x.term => {
                r.3 = r.3.max(x.at);
                r.4 += 1;
            }
            _ => {
                assert!(
                    !runs.iter().any(|r| r.0 == x.by && r.1 == x.term),
                    "{} wrote in term {} again after another term began: {x:?}; runs so far {runs:?}",
                    x.by,
                    x.term
                );
                runs.push((x.by.clone(), x.term, x.at, x.at, 1));
            }
        }
    }
    for pair in runs.windows(2) {
        assert!(
            pair[0].3 < pair[1].2,
            "terms overlap in time: {:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
    runs
}

fn writes_by(writes: &Mutex<Vec<Write>>, identity: &str) -> usize {
    writes
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.by == identity)
        .count()
}

async fn managed(api: &Api<ConfigMap>, name: &str, data: &[(&str, &str)]) {
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"operator.kube.rs/managed": "true"}},
        "data": data.iter().cloned().collect::<BTreeMap<_, _>>(),
    }))
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
}

fn secs(s: f64) -> i64 {
    (s * 1e6) as i64
}

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

/// Holds every connection until opened, then forwards it: the replica
/// behind it cannot list until then.
struct Gate {
    addr: SocketAddr,
    open: tokio::sync::watch::Sender<bool>,
}

impl Gate {
    async fn start(upstream: SocketAddr) -> Gate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (open, _) = tokio::sync::watch::channel(false);
        let gate = open.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut opened = gate.subscribe();
                tokio::spawn(async move {
                    if opened.wait_for(|o| *o).await.is_err() {
                        return;
                    }
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Gate { addr, open }
    }
}

/// GET `path`: (status, body).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain; version=0.0.4\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("the admin server answers")
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// The value of the sample `name` whose labels include `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => f64::NAN,
        })
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
