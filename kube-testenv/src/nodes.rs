//! The simulated nodes of a control plane started with
//! [`crate::ControlPlaneOptions::nodes`], and the per-pod rules that say
//! what their kubelet API does (see [`crate::kwok`] for the mechanism).
//!
//! The nodes are ordinary Node objects named `kube-testenv-node-0`,
//! `kube-testenv-node-1`, … with the annotation that hands them to KWOK, the
//! usual `kubernetes.io/hostname`, `kubernetes.io/os=linux` and
//! `kubernetes.io/arch=amd64` labels, and no taints, so that any Pod
//! schedules onto them. Guarantee: when the start returns, each of them is
//! `Ready` with InternalIP `127.0.0.1`.
//!
//! The rules are KWOK custom resources named after the Pod, in its namespace
//! ([`ControlPlane::forward_pod_port`], [`ControlPlane::serve_pod_logs`]).
//! KWOK learns of them through a watch, so a rule takes effect shortly after
//! the call returns (typically well under a second), not at once: a test
//! that port-forwards right away should retry its first connection.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::access::Access;
use crate::controlplane::ControlPlane;
use crate::error::{Error, Result};
use crate::kwok::NODE_ANNOTATION;

/// How long the nodes may take to become Ready.
const NODES_READY: Duration = Duration::from_secs(60);

/// The name of simulated node `index`.
pub fn node_name(index: u32) -> String {
    format!("kube-testenv-node-{index}")
}

fn node(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {NODE_ANNOTATION: "fake"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
    })
}

/// Whether a Node object is Ready and reachable at 127.0.0.1 only.
fn ready_on_loopback(node: &Value) -> bool {
    let ready = node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    let internal_ips: Vec<&Value> = node["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == "InternalIP")
        .map(|a| &a["address"])
        .collect();
    ready && !internal_ips.is_empty() && internal_ips.iter().all(|ip| *ip == "127.0.0.1")
}

/// Creates `count` nodes and waits until all are Ready; returns their names.
pub(crate) async fn create(admin: &Access, count: u32) -> Result<Vec<String>> {
    let http = admin.http_client()?;
    let names: Vec<String> = (0..count).map(node_name).collect();
    for name in &names {
        admin
            .request_ok(&http, "POST", "/api/v1/nodes", Some(&node(name)))
            .await?;
    }
    let started = Instant::now();
    for name in &names {
        loop {
            let node = admin
                .request_ok(&http, "GET", &format!("/api/v1/nodes/{name}"), None)
                .await?;
            if ready_on_loopback(&node) {
                break;
            }
            if started.elapsed() > NODES_READY {
                return Err(Error::Nodes(format!(
                    "node {name} not Ready on 127.0.0.1 within {} s (is KWOK running? see kwok.log); status: {}",
                    NODES_READY.as_secs(),
                    node["status"]
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(names)
}

/// Creates or replaces KWOK rule `kind` (`PortForward`, `Logs`, `Attach`)
/// for Pod `namespace/pod`, changing its list `field` with `edit`.
pub(crate) async fn upsert_rule(
    admin: &Access,
    namespace: &str,
    pod: &str,
    (kind, plural, field): (&str, &str, &str),
    edit: impl Fn(&mut Vec<Value>),
) -> Result<()> {
    let http = admin.http_client()?;
    let collection = format!("/apis/kwok.x-k8s.io/v1alpha1/namespaces/{namespace}/{plural}");
    let path = format!("{collection}/{pod}");
    for _ in 0..5 {
        let (status, existing) = admin.request(&http, "GET", &path, None).await?;
        let (method, mut object) = match status {
            200 => ("PUT", existing),
            404 => (
                "POST",
                json!({
                    "apiVersion": "kwok.x-k8s.io/v1alpha1",
                    "kind": kind,
                    "metadata": {"name": pod, "namespace": namespace},
                    "spec": {field: []},
                }),
            ),
            _ => {
                return Err(Error::Nodes(format!(
                    "reading {kind} {namespace}/{pod}: HTTP {status}: {existing}"
                )));
            }
        };
        let mut entries: Vec<Value> = object["spec"][field]
            .as_array()
            .cloned()
            .unwrap_or_default();
        edit(&mut entries);
        object["spec"][field] = Value::Array(entries);
        let target = if method == "PUT" { &path } else { &collection };
        let (status, body) = admin.request(&http, method, target, Some(&object)).await?;
        match status {
            200..=299 => return Ok(()),
            // Someone changed it in between: read again.
            409 => continue,
            _ => {
                return Err(Error::Nodes(format!(
                    "writing {kind} {namespace}/{pod}: HTTP {status}: {body}"
                )));
            }
        }
    }
    Err(Error::Nodes(format!(
        "writing {kind} {namespace}/{pod}: conflicts on five attempts"
    )))
}

impl ControlPlane {
    /// Makes `kubectl port-forward` (and any client of `pods/portforward`)
    /// to `port` of Pod `namespace/pod` reach `target`, which must be a
    /// loopback address (an error naming it otherwise). Replaces an earlier
    /// target for the same port; other ports of the Pod keep theirs. Takes
    /// effect once KWOK has seen the rule (see the module docs).
    pub async fn forward_pod_port(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
        target: SocketAddr,
    ) -> Result<()> {
        if !target.ip().is_loopback() {
            return Err(Error::Nodes(format!(
                "port-forward target {target} for {namespace}/{pod}:{port} is not a loopback address"
            )));
        }
        let forward = json!({
            "ports": [port],
            "target": {"address": target.ip().to_string(), "port": target.port()},
        });
        upsert_rule(
            self.access(),
            namespace,
            pod,
            ("PortForward", "portforwards", "forwards"),
            |forwards| {
                forwards.retain(|f| f["ports"] != json!([port]));
                forwards.push(forward.clone());
            },
        )
        .await
    }

    /// Makes the logs of `container` in Pod `namespace/pod` (`pods/log`,
    /// `kubectl logs`) and what attaching to it prints (`pods/attach`) the
    /// contents of `file` on this machine, read when asked (so appending
    /// to it is what `kubectl logs -f` sees). The file must be in the CRI
    /// log format the kubelet serves from ([`crate::kwok::cri_log`] writes
    /// it); KWOK answers 400 to a request for a file in any other format. Replaces an earlier file for
    /// the same container. Takes effect once KWOK has seen the rule (see the
    /// module docs).
    pub async fn serve_pod_logs(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        file: &Path,
    ) -> Result<()> {
        let file = file.display().to_string();
        let entry = json!({"containers": [container], "logsFile": file});
        let edit = |entries: &mut Vec<Value>| {
            entries.retain(|e| e["containers"] != json!([container]));
            entries.push(entry.clone());
        };
        let access = self.access();
        upsert_rule(access, namespace, pod, ("Logs", "logs", "logs"), edit).await?;
        upsert_rule(
            access,
            namespace,
            pod,
            ("Attach", "attaches", "attaches"),
            edit,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_with_a_loopback_internal_ip() {
        let mut n = json!({"status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "n"}],
        }});
        assert!(ready_on_loopback(&n));
        n["status"]["addresses"][0]["address"] = json!("10.0.0.1");
        assert!(!ready_on_loopback(&n));
        n["status"]["addresses"] = json!([]);
        assert!(!ready_on_loopback(&n));
        n["status"]["addresses"] = json!([{"type": "InternalIP", "address": "127.0.0.1"}]);
        n["status"]["conditions"][0]["status"] = json!("False");
        assert!(!ready_on_loopback(&n));
    }

    #[test]
    fn nodes_are_handed_to_kwok_untainted() {
        let n = node(&node_name(2));
        assert_eq!(n["metadata"]["name"], "kube-testenv-node-2");
        assert_eq!(n["metadata"]["annotations"][NODE_ANNOTATION], "fake");
        assert!(n["spec"]["taints"].is_null());
    }
}
