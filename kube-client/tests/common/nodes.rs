//! The control plane with KWOK's simulated nodes (kube-testenv's
//! `shared_with_nodes`) and what the streaming tests (remote*.rs) share:
//! a client, kubectl on the same cluster, a Running Pod.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube_client::params::PostParams;
use kube_client::{Api, Client};
use kube_testenv::{ControlPlane, TestEnv};
use tokio::io::{AsyncRead, AsyncReadExt};

/// How long a new Pod may take to become Running.
const RUNNING: Duration = Duration::from_secs(90);

/// The test binary's control plane with simulated nodes.
pub fn env() -> &'static TestEnv {
    kube_testenv::shared_with_nodes().unwrap_or_else(|e| panic!("control plane with nodes: {e}"))
}

/// That control plane (started by this test binary, not an existing cluster).
pub fn plane() -> &'static ControlPlane {
    env().control_plane().expect("our own control plane")
}

/// An admin client of it.
pub fn client() -> Client {
    let kc = kube_client::config::Kubeconfig::read_from(env().kubeconfig()).unwrap();
    let config = kube_client::config::Config::from_kubeconfig(&kc, &Default::default()).unwrap();
    Client::try_from(config).unwrap()
}

/// kubectl (`$KUBECTL` or on PATH) on it, in namespace `ns`.
pub fn kubectl(ns: &str) -> Command {
    let kubectl = std::env::var_os("KUBECTL")
        .filter(|k| !k.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"));
    let mut cmd = Command::new(kubectl);
    cmd.arg("--kubeconfig")
        .arg(env().kubeconfig())
        .args(["--namespace", ns]);
    cmd
}

/// Fails the test instead of hanging.
pub async fn within<F: Future>(secs: u64, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("not finished within {secs} s"))
}

/// A Running one-container Pod (container `main`, port 8080) in a fresh
/// namespace; returns the Api and the namespace.
pub async fn running_pod(prefix: &str, name: &str) -> (Api<Pod>, String) {
    let main = serde_json::json!({"name": "main", "image": "busybox",
                                  "ports": [{"containerPort": 8080}]});
    running_pod_with(prefix, name, main).await
}

/// A Running Pod whose one container is `container`, in a fresh namespace.
pub async fn running_pod_with(
    prefix: &str,
    name: &str,
    container: serde_json::Value,
) -> (Api<Pod>, String) {
    let ns = env().namespace(prefix).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client(), &ns);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let started = Instant::now();
    loop {
        let pod = pods.get(name).await.unwrap();
        if pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
            return (pods, ns);
        }
        assert!(
            started.elapsed() < RUNNING,
            "pod {name} not Running: {:?}",
            pod.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// RFC 3339 with nanoseconds, `secs` seconds ago.
pub fn seconds_ago(secs: u64) -> String {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        - Duration::from_secs(secs);
    let at = k8s_openapi::jiff::Timestamp::new(
        since_epoch.as_secs() as i64,
        since_epoch.subsec_nanos() as i32,
    )
    .unwrap();
    format!("{at:.9}")
}

/// Lines in the CRI log format KWOK serves (`<RFC3339Nano> stdout F <text>`).
pub fn cri_log(lines: &[(&str, &str)]) -> String {
    lines
        .iter()
        .map(|(at, text)| format!("{at} stdout F {text}\n"))
        .collect()
}

/// Everything `r` yields until its end.
pub async fn read_all(mut r: impl AsyncRead + Unpin) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).await?;
    Ok(out)
}
