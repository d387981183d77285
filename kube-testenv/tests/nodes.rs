//! The control plane with nodes is a cluster as far as the API can tell:
//! KWOK's simulated nodes are Ready on 127.0.0.1, the real controller manager
//! and scheduler turn a Deployment into a ReplicaSet and Running Pods bound
//! to them, and kube-apiserver proxies the kubelet API to KWOK's server —
//! checked with kubectl as the client: `exec` runs a command on this machine
//! and returns its stdout, stderr and exit code, `logs` returns a served
//! file, and `port-forward` reaches a local HTTP server.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube_testenv::{Access, Binaries, ControlPlane, ControlPlaneOptions, TestEnv};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Scheduling and KWOK's stages are quick; this is generous for a loaded
/// machine.
const RUNNING: Duration = Duration::from_secs(90);

fn env() -> &'static TestEnv {
    kube_testenv::shared_with_nodes().unwrap_or_else(|e| panic!("control plane with nodes: {e}"))
}

fn plane() -> &'static ControlPlane {
    env().control_plane().expect("our own control plane")
}

fn find_kubectl() -> PathBuf {
    if let Some(k) = std::env::var_os("KUBECTL").filter(|k| !k.is_empty()) {
        return PathBuf::from(k);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|c| c.is_file())
        .unwrap_or_else(|| {
            panic!(
                "kubectl not found on PATH and KUBECTL is not set: these tests use it as the \
                 client. Install Debian's `kubernetes-client` package, or set KUBECTL."
            )
        })
}

fn kubectl(ns: &str) -> Command {
    let mut cmd = Command::new(find_kubectl());
    cmd.arg("--kubeconfig")
        .arg(env().kubeconfig())
        .args(["--namespace", ns]);
    cmd
}

/// Polls `check` every 200 ms until it returns `Some`, or panics naming `what`
/// and the last state `check` described.
async fn eventually<T>(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let started = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if started.elapsed() > limit => {
                panic!("{what}: not within {} s; last: {last}", limit.as_secs())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn get(access: &Access, path: &str) -> Value {
    let http = access.http_client().unwrap();
    access.request_ok(&http, "GET", path, None).await.unwrap()
}

/// Creates a one-container Pod `name` (container `main`) and waits until it
/// is Running on one of our nodes; returns it.
async fn running_pod(ns: &str, name: &str) -> Value {
    let access = env().access();
    let http = access.http_client().unwrap();
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": "busybox", "ports": [{"containerPort": 8080}]}]},
    });
    access
        .request_ok(
            &http,
            "POST",
            &format!("/api/v1/namespaces/{ns}/pods"),
            Some(&pod),
        )
        .await
        .unwrap();
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
    eventually(&format!("pod {name} Running"), RUNNING, async || {
        let pod = get(access, &path).await;
        match pod["status"]["phase"].as_str() {
            Some("Running") => Ok(pod),
            _ => Err(pod["status"].to_string()),
        }
    })
    .await
}

#[tokio::test]
async fn nodes_are_ready_on_loopback_with_kwok_as_their_kubelet() {
    let plane = plane();
    assert_eq!(plane.nodes().len(), kube_testenv::SHARED_NODES as usize);
    let kwok_port: u64 = plane
        .kwok_url()
        .and_then(|u| u.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("kwok url with a port");
    for name in plane.nodes() {
        let node = get(env().access(), &format!("/api/v1/nodes/{name}")).await;
        let ready = node["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "True", "{node}");
        let addresses = node["status"]["addresses"].as_array().unwrap();
        assert!(
            addresses
                .iter()
                .any(|a| a["type"] == "InternalIP" && a["address"] == "127.0.0.1"),
            "{addresses:?}"
        );
        for a in addresses {
            assert!(
                a["type"] != "InternalIP" && a["type"] != "ExternalIP"
                    || a["address"] == "127.0.0.1",
                "a non-loopback node address: {a}"
            );
        }
        assert_eq!(
            node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"].as_u64(),
            Some(kwok_port),
            "{node}"
        );
    }
    // kubectl agrees.
    let out = kubectl("default")
        .args(["get", "nodes", "--no-headers"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for name in plane.nodes() {
        assert!(
            text.lines()
                .any(|l| l.starts_with(name.as_str()) && l.contains(" Ready ")),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn a_deployment_of_three_becomes_a_replicaset_and_three_running_pods() {
    let access = env().access();
    let http = access.http_client().unwrap();
    let ns = env().namespace("nodes-deploy").await.unwrap();
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    });
    let created = access
        .request_ok(
            &http,
            "POST",
            &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
            Some(&deployment),
        )
        .await
        .unwrap();
    let deployment_uid = created["metadata"]["uid"].as_str().unwrap().to_string();

    let pods = eventually("three Running pods", RUNNING, async || {
        let list = get(
            access,
            &format!("/api/v1/namespaces/{ns}/pods?labelSelector=app%3Dweb"),
        )
        .await;
        let pods = list["items"].as_array().cloned().unwrap_or_default();
        let running = pods
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .count();
        if pods.len() == 3 && running == 3 {
            Ok(pods)
        } else {
            Err(format!("{} pods, {running} Running", pods.len()))
        }
    })
    .await;

    let replicasets = get(
        access,
        &format!("/apis/apps/v1/namespaces/{ns}/replicasets"),
    )
    .await;
    let replicasets = replicasets["items"].as_array().unwrap();
    assert_eq!(replicasets.len(), 1, "{replicasets:?}");
    let rs = &replicasets[0];
    assert_eq!(rs["metadata"]["ownerReferences"][0]["uid"], deployment_uid);
    let rs_uid = rs["metadata"]["uid"].as_str().unwrap();
    let nodes = plane().nodes();
    for pod in &pods {
        assert_eq!(
            pod["metadata"]["ownerReferences"][0]["uid"], rs_uid,
            "{pod}"
        );
        let node = pod["spec"]["nodeName"]
            .as_str()
            .expect("bound by the scheduler");
        assert!(nodes.iter().any(|n| n == node), "{node} not in {nodes:?}");
        let ip: std::net::IpAddr = pod["status"]["podIP"].as_str().unwrap().parse().unwrap();
        assert!(ip.is_loopback(), "pod IP {ip} is not loopback");
        assert_eq!(pod["status"]["hostIP"], "127.0.0.1", "{pod}");
    }

    // The Deployment controller sees them ready too.
    eventually("deployment readyReplicas 3", RUNNING, async || {
        let d = get(
            access,
            &format!("/apis/apps/v1/namespaces/{ns}/deployments/web"),
        )
        .await;
        if d["status"]["readyReplicas"] == 3 && d["status"]["availableReplicas"] == 3 {
            Ok(())
        } else {
            Err(d["status"].to_string())
        }
    })
    .await;
}

#[tokio::test]
async fn kubectl_exec_runs_on_the_host_with_stdout_stderr_and_exit_code() {
    let ns = env().namespace("nodes-exec").await.unwrap();
    running_pod(&ns, "shell").await;
    let out = kubectl(&ns)
        .args([
            "exec",
            "shell",
            "-c",
            "main",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout, "out\n", "stderr: {stderr}");
    assert!(stderr.contains("err\n"), "stderr: {stderr}");
    assert_eq!(
        out.status.code(),
        Some(3),
        "stdout: {stdout} stderr: {stderr}"
    );

    // It is this machine: a file the test writes is what the command reads.
    let marker = tempfile::NamedTempFile::new().unwrap();
    let secret = format!("written-by-the-test-{}", std::process::id());
    std::fs::write(marker.path(), &secret).unwrap();
    let out = kubectl(&ns)
        .args(["exec", "shell", "--", "cat"])
        .arg(marker.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), secret);
    assert!(out.status.success());

    // stdin reaches the command.
    let mut child = kubectl(&ns)
        .args(["exec", "-i", "shell", "--", "tr", "a-z", "A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"shout\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "SHOUT\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn kubectl_logs_returns_the_served_file() {
    let ns = env().namespace("nodes-logs").await.unwrap();
    running_pod(&ns, "talker").await;

    // Without a rule of its own, the default file.
    let out = kubectl(&ns).args(["logs", "talker"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        kube_testenv::kwok::DEFAULT_LOG_CONTENT,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "line one\nline two\nline three\n").unwrap();
    plane()
        .serve_pod_logs(&ns, "talker", "main", file.path())
        .await
        .unwrap();
    eventually(
        "kubectl logs shows the file",
        Duration::from_secs(30),
        async || {
            let out = kubectl(&ns)
                .args(["logs", "talker", "-c", "main"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if text == "line one\nline two\nline three\n" {
                Ok(())
            } else {
                Err(format!("{text:?} {}", String::from_utf8_lossy(&out.stderr)))
            }
        },
    )
    .await;
    // The kubelet API's options are honoured: the last line only.
    let out = kubectl(&ns)
        .args(["logs", "talker", "--tail=1"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "line three\n");
}

/// An HTTP server on 127.0.0.1 that answers every request with `body`.
async fn http_server(body: String) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    addr
}

/// Kills the child when dropped, so a failing test leaves no kubectl behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn kubectl_port_forward_reaches_a_local_server() {
    let ns = env().namespace("nodes-pf").await.unwrap();
    running_pod(&ns, "server").await;
    let body = format!("hello through the kubelet API {}", std::process::id());
    let target = http_server(body.clone()).await;
    plane()
        .forward_pod_port(&ns, "server", 8080, target)
        .await
        .unwrap();

    let mut child = kubectl(&ns)
        .args([
            "port-forward",
            "--address",
            "127.0.0.1",
            "pod/server",
            ":8080",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let kubectl = KillOnDrop(child);
    // "Forwarding from 127.0.0.1:PORT -> 8080"; then keep reading, or kubectl
    // dies of SIGPIPE when it reports a connection.
    let (port_tx, port_rx) = std::sync::mpsc::channel::<u16>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let port = line
                .strip_prefix("Forwarding from 127.0.0.1:")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|p| p.parse().ok());
            if let Some(port) = port {
                let _ = port_tx.send(port);
            }
        }
    });
    std::thread::spawn(move || std::io::copy(&mut { stderr }, &mut std::io::sink()));
    let local_port =
        tokio::task::spawn_blocking(move || port_rx.recv_timeout(Duration::from_secs(30)))
            .await
            .unwrap()
            .expect("kubectl port-forward printed its local port");

    let reply = eventually(
        "a reply through port-forward",
        Duration::from_secs(30),
        async || {
            let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", local_port))
                .await
                .map_err(|e| e.to_string())?;
            conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .map_err(|e| e.to_string())?;
            let mut reply = String::new();
            conn.read_to_string(&mut reply)
                .await
                .map_err(|e| e.to_string())?;
            if reply.starts_with("HTTP/1.1 200") {
                Ok(reply)
            } else {
                Err(format!("reply {reply:?}"))
            }
        },
    )
    .await;
    assert!(reply.ends_with(&body), "{reply}");
    drop(kubectl);
}

#[tokio::test]
async fn a_port_forward_target_off_loopback_is_refused() {
    let err = plane()
        .forward_pod_port("default", "any", 80, "10.1.2.3:80".parse().unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("10.1.2.3:80") && err.contains("not a loopback"),
        "{err}"
    );
}

#[test]
fn nodes_without_kwok_binary_is_an_error_naming_it() {
    let binaries = Binaries {
        kube_apiserver: PathBuf::from("/nonexistent/kube-apiserver"),
        etcd: PathBuf::from("/nonexistent/etcd"),
        kube_controller_manager: Some(PathBuf::from("/nonexistent/kcm")),
        kube_scheduler: Some(PathBuf::from("/nonexistent/sched")),
        kwok: None,
    };
    let err = ControlPlane::start_with(&binaries, ControlPlaneOptions::default().with_nodes(1))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no kwok") && err.contains("Binaries::kwok"),
        "{err}"
    );
    let binaries = Binaries {
        kube_scheduler: None,
        ..binaries
    };
    let err = ControlPlane::start_with(&binaries, ControlPlaneOptions::default().with_scheduler())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no kube-scheduler"), "{err}");
}
