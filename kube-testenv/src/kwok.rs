//! Simulated nodes with KWOK (`sigs.k8s.io/kwok`, "Kubernetes WithOut
//! Kubelet", a SIG Scheduling project), so that the kubelet half of the
//! API works against this control plane.
//!
//! # What a kubelet does, and what KWOK does instead
//!
//! A real node runs a kubelet: it registers the Node, keeps it `Ready` with
//! heartbeats, starts the containers of Pods bound to it and reports them
//! `Running`, and serves an HTTPS API (port 10250) through which
//! kube-apiserver *proxies* the streaming subresources — `pods/exec`,
//! `pods/attach`, `pods/portforward` and `pods/log`. A client never talks to
//! a kubelet; it asks the API server, which opens a connection to the node's
//! address and kubelet port and relays the stream.
//!
//! The single `kwok` process here replaces every kubelet:
//! - its controller watches Nodes carrying the annotation
//!   `kwok.x-k8s.io/node=fake` and plays *stages* (status templates, see
//!   `src/kwok/stages.yaml`) on them: such a Node becomes `Ready` at once,
//!   with InternalIP `127.0.0.1` and its kubelet endpoint at KWOK's own
//!   server port, and keeps a renewed node Lease; Pods bound to it become
//!   `Running` (with a pod IP from `127.1.0.0/16`), Pods of Jobs complete,
//!   deleted Pods go away. No container exists.
//! - its server answers the kubelet API on 127.0.0.1 over TLS, with the
//!   control plane's serving certificate (so kube-apiserver verifies it with
//!   `--kubelet-certificate-authority`): **exec** runs the command on this
//!   machine (in `<dir>/kwok/work`, as this user — see the `ClusterExec`
//!   written by [`config_yaml`]), **logs** and **attach** serve a host file
//!   (by default [`DEFAULT_LOG`], `<dir>/kwok/default.log`, for every
//!   container), and **port-forward** dials a configured target.
//!
//! Per-pod rules are KWOK custom resources, which this module installs
//! (namespaced `Exec`, `Logs`, `Attach` and `PortForward` in
//! `kwok.x-k8s.io/v1alpha1`) and KWOK watches (`--enable-crds`); see
//! [`crate::ControlPlane::forward_pod_port`] and
//! [`crate::ControlPlane::serve_pod_logs`]. A per-pod rule takes precedence
//! over the cluster-wide one. Port-forward has no cluster-wide rule: a Pod's
//! port reaches nothing until a `PortForward` names a 127.0.0.1 target.
//!
//! # Guarantees when [`crate::ControlPlane::start_with`] asked for nodes
//! - KWOK's server listens on 127.0.0.1 only, every node's addresses are
//!   `127.0.0.1` and its name, kube-apiserver prefers `InternalIP`, and pod
//!   IPs are loopback addresses: nothing connects to a non-loopback address
//!   (port-forward targets are checked to be loopback too);
//! - KWOK reads only the configuration written here (`KWOK_WORKDIR` points
//!   into the control plane's directory, so a `~/.kwok/kwok.yaml` is
//!   ignored), and talks to kube-apiserver as `kube-testenv-kwok` in group
//!   `system:masters`;
//! - its `/healthz` has answered 200 over TLS before the nodes are created,
//!   and every node was `Ready` before the start returned.
//!
//! What is *not* simulated: containers (a command run by exec sees the host's
//! file system and processes, not an image), resource usage, restarts,
//! probes, volumes, and the pod network (pod IPs are labels; nothing routes
//! them).

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::access::Access;
use crate::controlplane::{block_on, wait_ready};
use crate::error::{Error, Result, io};
use crate::process::ServerProcess;

/// The stages KWOK plays on nodes and pods.
const STAGES: &str = include_str!("kwok/stages.yaml");

/// The annotation that makes KWOK manage a node.
pub const NODE_ANNOTATION: &str = "kwok.x-k8s.io/node";

/// The log file served for every container that has no [`Logs`] rule of its
/// own, relative to the control plane's directory.
///
/// [`Logs`]: crate::ControlPlane::serve_pod_logs
pub const DEFAULT_LOG: &str = "kwok/default.log";

/// The contents of [`DEFAULT_LOG`].
pub const DEFAULT_LOG_CONTENT: &str =
    "kube-testenv: simulated container (KWOK); no log file configured for this pod\n";

/// Pod IPs come from here (loopback: nothing may route to them).
const POD_CIDR: &str = "127.1.0.0/16";

/// The KWOK custom resources installed for per-pod rules: (kind, plural).
const CRDS: [(&str, &str); 4] = [
    ("Exec", "execs"),
    ("Logs", "logs"),
    ("Attach", "attaches"),
    ("PortForward", "portforwards"),
];

/// How long KWOK may take to answer `/healthz`.
const READY: Duration = Duration::from_secs(60);

/// KWOK's configuration: the stages, and cluster-wide exec, logs and attach
/// rules rooted in `dir` (the control plane's directory).
pub(crate) fn config_yaml(dir: &Path) -> String {
    let quote = |p: &Path| Value::String(p.display().to_string()).to_string();
    let work = quote(&dir.join("kwok/work"));
    let log = quote(&dir.join(DEFAULT_LOG));
    format!(
        "{STAGES}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterExec
metadata:
  name: kube-testenv-exec-on-host
spec:
  execs:
  - local:
      workDir: {work}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: kube-testenv-default-log
spec:
  logs:
  - logsFile: {log}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterAttach
metadata:
  name: kube-testenv-default-attach
spec:
  attaches:
  - logsFile: {log}
"
    )
}

/// The files and ports KWOK is started with.
pub(crate) struct Files<'a> {
    /// The configuration written from [`config_yaml`].
    pub config: &'a Path,
    /// Its kubeconfig (server, CA, its own client certificate).
    pub kubeconfig: &'a Path,
    /// Serving certificate valid for 127.0.0.1 (the API server verifies it).
    pub serving_cert: &'a str,
    /// The serving key.
    pub serving_key: &'a str,
}

/// The command line for KWOK serving the kubelet API on 127.0.0.1:`port`.
pub(crate) fn args(files: &Files<'_>, port: u16) -> Vec<String> {
    let crds: Vec<&str> = CRDS.iter().map(|(kind, _)| *kind).collect();
    vec![
        format!("--config={}", files.config.display()),
        format!("--kubeconfig={}", files.kubeconfig.display()),
        format!("--manage-nodes-with-annotation-selector={NODE_ANNOTATION}=fake"),
        "--node-ip=127.0.0.1".into(),
        format!("--node-port={port}"),
        format!("--server-address=127.0.0.1:{port}"),
        format!("--cidr={POD_CIDR}"),
        "--node-lease-duration-seconds=40".into(),
        format!("--tls-cert-file={}", files.serving_cert),
        format!("--tls-private-key-file={}", files.serving_key),
        format!("--enable-crds={}", crds.join(",")),
    ]
}

/// A minimal definition of one KWOK custom resource (namespaced, any spec).
/// KWOK decodes the objects itself; the API server only stores them.
fn crd(kind: &str, plural: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.kwok.x-k8s.io")},
        "spec": {
            "group": "kwok.x-k8s.io",
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": format!("{kind}List"),
                "plural": plural,
                "singular": kind.to_ascii_lowercase(),
            },
            "versions": [{
                "name": "v1alpha1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                }},
            }],
        },
    })
}

/// Installs the KWOK custom resources and waits until each is established.
async fn install_crds(admin: &Access) -> Result<()> {
    let http = admin.http_client()?;
    let base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    for (kind, plural) in CRDS {
        let (status, body) = admin
            .request(&http, "POST", base, Some(&crd(kind, plural)))
            .await?;
        if !(200..300).contains(&status) && status != 409 {
            return Err(Error::Nodes(format!(
                "installing the KWOK {kind} resource: HTTP {status}: {body}"
            )));
        }
    }
    let started = std::time::Instant::now();
    for (kind, plural) in CRDS {
        let path = format!("{base}/{plural}.kwok.x-k8s.io");
        loop {
            let crd = admin.request_ok(&http, "GET", &path, None).await?;
            let established = crd["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Established" && c["status"] == "True");
            if established {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(Error::Nodes(format!(
                    "the KWOK {kind} resource was not established within 30 s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Installs the custom resources, writes the configuration and the default
/// log, starts KWOK and waits for its `/healthz`. `dir` is the control
/// plane's directory; returns the process and KWOK's `https://127.0.0.1:PORT`.
pub(crate) fn start(
    binary: &Path,
    dir: &Path,
    files: &Files<'_>,
    port: u16,
    admin: &Access,
) -> Result<(ServerProcess, String)> {
    block_on(install_crds(admin))?;
    let kwok_dir = dir.join("kwok");
    for sub in [kwok_dir.join("work"), kwok_dir.join("home")] {
        std::fs::create_dir_all(&sub).map_err(io("create directory", &sub))?;
    }
    let default_log = dir.join(DEFAULT_LOG);
    std::fs::write(&default_log, DEFAULT_LOG_CONTENT).map_err(io("write", &default_log))?;
    std::fs::write(files.config, config_yaml(dir)).map_err(io("write", files.config))?;
    let workdir = kwok_dir.join("home");
    let mut server = ServerProcess::spawn_with_env(
        "kwok",
        binary,
        &args(files, port),
        &[("KWOK_WORKDIR", workdir.as_os_str())],
        &dir.join("kwok.log"),
    )?;
    let access = Access {
        server: format!("https://127.0.0.1:{port}"),
        ..admin.clone()
    };
    let client = block_on(async { access.http_client() })?;
    wait_ready(&mut server, READY, || {
        block_on(async {
            matches!(
                access.request(&client, "GET", "/healthz", None).await,
                Ok((200, _))
            )
        })
    })?;
    Ok((server, access.server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_on_loopback() {
        let files = Files {
            config: Path::new("/d/kwok.yaml"),
            kubeconfig: Path::new("/d/kwok.kubeconfig"),
            serving_cert: "/d/s.crt",
            serving_key: "/d/s.key",
        };
        let args = args(&files, 4321);
        for expected in [
            "--node-ip=127.0.0.1",
            "--node-port=4321",
            "--server-address=127.0.0.1:4321",
            "--cidr=127.1.0.0/16",
            "--config=/d/kwok.yaml",
            "--enable-crds=Exec,Logs,Attach,PortForward",
        ] {
            assert!(
                args.iter().any(|a| a == expected),
                "{expected} not in {args:?}"
            );
        }
    }

    #[test]
    fn config_roots_exec_and_logs_in_the_directory() {
        let yaml = config_yaml(Path::new("/tmp/kt/1-0"));
        assert!(yaml.contains("kind: ClusterExec"), "{yaml}");
        assert!(
            yaml.contains(r#"workDir: "/tmp/kt/1-0/kwok/work""#),
            "{yaml}"
        );
        assert!(
            yaml.contains(r#"logsFile: "/tmp/kt/1-0/kwok/default.log""#),
            "{yaml}"
        );
        assert_eq!(yaml.matches("kind: Stage").count(), 5, "{yaml}");
    }
}
