//! What the operator's process tests share: the example's executable,
//! replicas as child processes, the API server's record of their writes,
//! a gate in front of the API server, and HTTP and Prometheus helpers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::config::{Config, Kubeconfig};
use kube_client::params::PostParams;
use kube_client::{Api, Client, ResourceExt};
use kube_runtime::watcher::{Event, Watcher, WatcherConfig};
use prometheus_parse::{Scrape, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const LEASE_S: f64 = 3.0;
pub const RENEW_S: f64 = 2.0;
pub const RETRY_S: f64 = 0.5;
pub const JITTER: f64 = 1.2;
pub const LEASE_NAME: &str = "operator-e2e";

/// One process test at a time.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn env() -> &'static kube_testenv::TestEnv {
    kube_testenv::shared().unwrap_or_else(|e| panic!("control plane: {e}"))
}

pub fn client() -> Client {
    let kc = Kubeconfig::read_from(env().kubeconfig()).unwrap();
    Client::try_from(Config::from_kubeconfig(&kc, &Default::default()).unwrap()).unwrap()
}

pub fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// The example's executable, built once.
pub fn operator_binary() -> &'static Path {
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

pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kube-operator-e2e-{name}-{}-{}",
        std::process::id(),
        micros_now()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One replica of the example; SIGKILLed when dropped.
pub struct Replica {
    pub identity: String,
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
    pub fn spawn(
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

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {}", self.identity);
    }

    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.stdout)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// `at=` of each line starting with `prefix`.
    pub fn times(&self, prefix: &str) -> Vec<i64> {
        self.lines()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| field(l, "at"))
            .filter_map(|v| v.parse().ok())
            .collect()
    }

    pub fn leading_since(&self, after: i64) -> Option<i64> {
        self.times("leading ").into_iter().find(|t| *t > after)
    }

    pub fn admin(&self) -> Option<SocketAddr> {
        self.lines()
            .iter()
            .find_map(|l| l.strip_prefix("admin listening on "))
            .map(|a| a.parse().unwrap())
    }

    /// Waits (bounded) for the process to exit; its exit code.
    pub async fn exited(&mut self, limit: Duration) -> Option<i32> {
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

pub fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|w| w.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
}

pub async fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
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
pub struct Write {
    revision: u64,
    by: String,
    term: u64,
    at: i64,
}

/// Records every version of the managed ConfigMaps that carries a stamp.
pub fn record_writes(api: Api<ConfigMap>) -> (Arc<Mutex<Vec<Write>>>, tokio::task::JoinHandle<()>) {
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
pub fn terms_in_order(writes: &[Write]) -> Vec<(String, u64, i64, i64, usize)> {
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

pub fn writes_by(writes: &Mutex<Vec<Write>>, identity: &str) -> usize {
    writes
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.by == identity)
        .count()
}

pub async fn managed(api: &Api<ConfigMap>, name: &str, data: &[(&str, &str)]) {
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"operator.kube.rs/managed": "true"}},
        "data": data.iter().cloned().collect::<BTreeMap<_, _>>(),
    }))
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
}

pub fn secs(s: f64) -> i64 {
    (s * 1e6) as i64
}

/// Holds every connection until opened, then forwards it: the replica
/// behind it cannot list until then.
pub struct Gate {
    pub addr: SocketAddr,
    pub open: tokio::sync::watch::Sender<bool>,
}

impl Gate {
    pub async fn start(upstream: SocketAddr) -> Gate {
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
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
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
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
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
