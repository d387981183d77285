//! With the opt-in kube-controller-manager, the cluster's own controllers
//! act: the real garbage collector deletes the children of a deleted owner
//! (background and foreground), and the namespace controller empties and
//! finalizes a deleted namespace. Without the option nothing does either.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube_testenv::{Access, Binaries, ControlPlane, ControlPlaneOptions, TestEnv};
use serde_json::{Value, json};

/// The garbage collector acts only after its informers have synced.
const GC_TIMEOUT: Duration = Duration::from_secs(60);

fn with_cm() -> &'static TestEnv {
    kube_testenv::shared_with_controller_manager()
        .unwrap_or_else(|e| panic!("control plane with controller manager: {e}"))
}

fn without_cm() -> &'static TestEnv {
    kube_testenv::shared().unwrap_or_else(|e| panic!("control plane: {e}"))
}

/// Polls `check` every 200 ms until it returns `Some`, or panics naming `what`.
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not within {} s",
            limit.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn get(access: &Access, http: &reqwest::Client, path: &str) -> (u16, Value) {
    access.request(http, "GET", path, None).await.unwrap()
}

/// Creates ConfigMap `owner`, and `child` owned by it; returns the owner's uid.
async fn owner_and_child(
    access: &Access,
    http: &reqwest::Client,
    ns: &str,
    child_finalizers: &[&str],
) -> String {
    let cms = format!("/api/v1/namespaces/{ns}/configmaps");
    let owner = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}});
    let created = access
        .request_ok(http, "POST", &cms, Some(&owner))
        .await
        .unwrap();
    let uid = created["metadata"]["uid"].as_str().unwrap().to_string();
    let child = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "child",
            "finalizers": child_finalizers,
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": "owner",
                "uid": uid,
                "blockOwnerDeletion": true,
            }],
        },
    });
    access
        .request_ok(http, "POST", &cms, Some(&child))
        .await
        .unwrap();
    uid
}

async fn delete(access: &Access, http: &reqwest::Client, path: &str, propagation: &str) -> Value {
    let options =
        json!({"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation});
    access
        .request_ok(http, "DELETE", path, Some(&options))
        .await
        .unwrap()
}

#[tokio::test]
async fn background_deletion_of_an_owner_lets_the_garbage_collector_delete_the_child() {
    let env = with_cm();
    if let Some(plane) = env.control_plane() {
        assert!(plane.controller_manager_pid().is_some());
    }
    let (access, http) = (env.access(), env.access().http_client().unwrap());
    let ns = env.namespace("gc-background").await.unwrap();
    owner_and_child(access, &http, &ns, &[]).await;
    let cms = format!("/api/v1/namespaces/{ns}/configmaps");

    delete(access, &http, &format!("{cms}/owner"), "Background").await;
    let (status, _) = get(access, &http, &format!("{cms}/owner")).await;
    assert_eq!(status, 404, "background deletion removes the owner at once");
    eventually(
        "the garbage collector deletes the child",
        GC_TIMEOUT,
        || async {
            let (status, body) = get(access, &http, &format!("{cms}/child")).await;
            (status == 404).then_some(()).or_else(|| {
                assert_eq!(status, 200, "{body}");
                None
            })
        },
    )
    .await;
}

#[tokio::test]
async fn foreground_deletion_keeps_the_owner_until_the_child_is_gone() {
    const HOLD: &str = "kube-testenv.example/hold";
    let env = with_cm();
    let (access, http) = (env.access(), env.access().http_client().unwrap());
    let ns = env.namespace("gc-foreground").await.unwrap();
    // The child carries a finalizer of ours, so it cannot vanish before we
    // say: the owner must wait for it.
    let uid = owner_and_child(access, &http, &ns, &[HOLD]).await;
    let cms = format!("/api/v1/namespaces/{ns}/configmaps");

    let answer = delete(access, &http, &format!("{cms}/owner"), "Foreground").await;
    assert_eq!(answer["metadata"]["uid"], uid.as_str(), "{answer}");
    assert!(
        answer["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "foregroundDeletion")),
        "{answer}"
    );

    // The garbage collector deletes the child (it gets a deletionTimestamp;
    // our finalizer keeps it) ...
    eventually(
        "the garbage collector deletes the child",
        GC_TIMEOUT,
        || async {
            let (status, child) = get(access, &http, &format!("{cms}/child")).await;
            assert_eq!(status, 200, "the child went despite its finalizer: {child}");
            child["metadata"]["deletionTimestamp"].as_str().map(|_| ())
        },
    )
    .await;
    // ... while the owner waits for it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, owner) = get(access, &http, &format!("{cms}/owner")).await;
    assert_eq!(status, 200, "the owner went before its child: {owner}");
    assert!(
        owner["metadata"]["deletionTimestamp"].is_string(),
        "{owner}"
    );

    // Release the child: it goes, and then so does the owner.
    eventually(
        "our finalizer is removed from the child",
        GC_TIMEOUT,
        || async {
            let (_, mut child) = get(access, &http, &format!("{cms}/child")).await;
            child["metadata"]["finalizers"] = json!([]);
            let (status, body) = access
                .request(&http, "PUT", &format!("{cms}/child"), Some(&child))
                .await
                .unwrap();
            // 409: someone else wrote in between; read again.
            (status != 409).then(|| assert_eq!(status, 200, "{body}"))
        },
    )
    .await;
    eventually(
        "the owner is deleted after its child",
        GC_TIMEOUT,
        || async {
            let (status, _) = get(access, &http, &format!("{cms}/owner")).await;
            (status == 404).then_some(())
        },
    )
    .await;
    let (status, _) = get(access, &http, &format!("{cms}/child")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_deleted_namespace_is_emptied_and_goes_away() {
    let env = with_cm();
    let (access, http) = (env.access(), env.access().http_client().unwrap());
    let ns = env.namespace("ns-delete").await.unwrap();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "content"}});
    access
        .request_ok(
            &http,
            "POST",
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            Some(&cm),
        )
        .await
        .unwrap();

    access
        .request_ok(&http, "DELETE", &format!("/api/v1/namespaces/{ns}"), None)
        .await
        .unwrap();
    eventually(
        "the namespace controller finalizes the namespace",
        GC_TIMEOUT,
        || async {
            let (status, body) = get(access, &http, &format!("/api/v1/namespaces/{ns}")).await;
            (status == 404).then_some(()).or_else(|| {
                assert_eq!(body["status"]["phase"], "Terminating", "{body}");
                None
            })
        },
    )
    .await;
}

#[tokio::test]
async fn without_the_option_no_controller_acts() {
    let env = without_cm();
    let Some(plane) = env.control_plane() else {
        return; // an existing cluster runs its own controllers
    };
    assert_eq!(plane.controller_manager_pid(), None);
    let (access, http) = (env.access(), env.access().http_client().unwrap());
    let ns = env.namespace("no-gc").await.unwrap();
    owner_and_child(access, &http, &ns, &[]).await;
    let cms = format!("/api/v1/namespaces/{ns}/configmaps");
    delete(access, &http, &format!("{cms}/owner"), "Background").await;
    access
        .request_ok(&http, "DELETE", &format!("/api/v1/namespaces/{ns}"), None)
        .await
        .unwrap();

    // With a controller manager both happen within a few seconds; here
    // neither may happen at all.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (status, child) = get(access, &http, &format!("{cms}/child")).await;
    assert_eq!(status, 200, "the orphaned child was collected: {child}");
    let (status, namespace) = get(access, &http, &format!("/api/v1/namespaces/{ns}")).await;
    assert_eq!(status, 200, "{namespace}");
    assert_eq!(namespace["status"]["phase"], "Terminating", "{namespace}");
}

/// `shared()` never hands out the richer environment, even when that one
/// is already running in this test binary (it is started first here): its
/// callers rely on no controller acting, as the test above does.
#[tokio::test]
async fn shared_is_never_the_running_controller_manager_environment() {
    let rich = with_cm();
    let plain = without_cm();
    let (Some(rich_plane), Some(plain_plane)) = (rich.control_plane(), plain.control_plane())
    else {
        return; // an existing cluster: both are that cluster
    };
    assert_ne!(rich.access().server, plain.access().server);
    assert!(rich_plane.controller_manager_pid().is_some());
    assert_eq!(plain_plane.controller_manager_pid(), None);
}

#[test]
fn asking_for_a_controller_manager_without_its_binary_is_a_typed_error() {
    let binaries = Binaries {
        kube_apiserver: PathBuf::from("/nonexistent/kube-apiserver"),
        etcd: PathBuf::from("/nonexistent/etcd"),
        kube_controller_manager: None,
        kube_scheduler: None,
        kwok: None,
    };
    let err = ControlPlane::start_with(
        &binaries,
        ControlPlaneOptions::default().with_controller_manager(),
    )
    .unwrap_err();
    assert!(
        matches!(err, kube_testenv::Error::NoControllerManager { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("ensure_with"), "{err}");
}

#[test]
fn a_controller_manager_that_fails_to_start_is_reported_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("kube-controller-manager");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'E1125 fake controller manager: unknown flag' >&2\nexit 7\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .unwrap();
    let (mut binaries, _) = kube_testenv::binaries::ensure(|_| {}).unwrap();
    binaries.kube_controller_manager = Some(fake);
    let started = Instant::now();
    let err = ControlPlane::start_with(
        &binaries,
        ControlPlaneOptions::default().with_controller_manager(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(180),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.contains("kube-controller-manager did not start"),
        "{err}"
    );
    assert!(err.contains("exit status: 7"), "{err}");
    assert!(
        err.contains("fake controller manager: unknown flag"),
        "{err}"
    );
}

#[tokio::test]
async fn a_deployment_becomes_a_replicaset_with_pods() {
    let env = with_cm();
    let (access, http) = (env.access(), env.access().http_client().unwrap());
    let ns = env.namespace("deploy").await.unwrap();
    let labels = json!({"app": "web"});
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            // Never pulled: there are no nodes, so Pods stay Pending.
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]},
            },
        },
    });
    access
        .request_ok(
            &http,
            "POST",
            &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
            Some(&deployment),
        )
        .await
        .unwrap();
    let replicaset = eventually(
        "the deployment controller creates a ReplicaSet",
        GC_TIMEOUT,
        || async {
            let (_, list) = get(
                access,
                &http,
                &format!("/apis/apps/v1/namespaces/{ns}/replicasets"),
            )
            .await;
            list["items"]
                .as_array()
                .and_then(|items| items.first().cloned())
        },
    )
    .await;
    assert_eq!(
        replicaset["metadata"]["ownerReferences"][0]["kind"], "Deployment",
        "{replicaset}"
    );
    assert_eq!(
        replicaset["metadata"]["ownerReferences"][0]["name"], "web",
        "{replicaset}"
    );
    eventually(
        "the replicaset controller creates two Pods",
        GC_TIMEOUT,
        || async {
            let (_, list) = get(access, &http, &format!("/api/v1/namespaces/{ns}/pods")).await;
            let pods = list["items"].as_array().map_or(0, Vec::len);
            assert!(pods <= 2, "{list}");
            (pods == 2).then_some(())
        },
    )
    .await;
}

/// Socket inodes of `pid`'s open sockets.
fn socket_inodes(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            target
                .strip_prefix("socket:[")
                .and_then(|rest| rest.strip_suffix(']'))
                .map(str::to_string)
        })
        .collect()
}

/// Local addresses (as in /proc/net/tcp*, hex) of listening TCP sockets
/// whose inode is in `inodes`.
fn listening_addresses(inodes: &[String]) -> Vec<String> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    // local_address is field 1, state 3 (0A = LISTEN), inode 9.
                    (fields.len() > 9 && fields[3] == "0A" && inodes.iter().any(|i| i == fields[9]))
                        .then(|| fields[1].to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn the_controller_manager_listens_on_loopback_only_and_checks_who_asks() {
    let env = with_cm();
    let Some(plane) = env.control_plane() else {
        return; // an existing cluster's controller manager is not ours to inspect
    };
    let url = plane.controller_manager_url().unwrap();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let pid = plane.controller_manager_pid().unwrap();
    let listening = listening_addresses(&socket_inodes(pid));
    assert!(
        !listening.is_empty(),
        "no listening socket found for pid {pid}"
    );
    for address in &listening {
        // 127.0.0.1 in /proc/net/tcp's little-endian hex.
        assert!(
            address.starts_with("0100007F:"),
            "listens on {address}: {listening:?}"
        );
    }

    let admin = Access {
        server: url.to_string(),
        ..env.access().clone()
    };
    let anonymous = Access {
        client_identity: None,
        bearer_token: None,
        ..admin.clone()
    };
    let (admin_http, anonymous_http) = (
        admin.http_client().unwrap(),
        anonymous.http_client().unwrap(),
    );
    let (status, body) = anonymous
        .request(&anonymous_http, "GET", "/healthz", None)
        .await
        .unwrap();
    assert_eq!((status, body), (200, json!("ok")));
    let (status, body) = anonymous
        .request(&anonymous_http, "GET", "/metrics", None)
        .await
        .unwrap();
    assert!(
        status == 401 || status == 403,
        "anonymous /metrics: {status} {body}"
    );
    let (status, body) = admin
        .request(&admin_http, "GET", "/metrics", None)
        .await
        .unwrap();
    assert_eq!(status, 200, "admin /metrics: {body}");
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[test]
fn the_controller_manager_dies_with_the_test_process() {
    if std::env::var("USE_EXISTING_CLUSTER").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "orphan_child", "--nocapture", "--test-threads=1"])
        .env("KUBE_TESTENV_CM_ORPHAN_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pid: u32 = stdout
        .lines()
        .find_map(|l| l.split_once("CM_PID ").map(|(_, pid)| pid))
        .unwrap_or_else(|| {
            panic!(
                "child printed no pid:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "kube-controller-manager {pid} outlived a killed test process"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Not a test on its own: the child half of the orphan test.
#[test]
fn orphan_child() {
    if std::env::var_os("KUBE_TESTENV_CM_ORPHAN_CHILD").is_none() {
        return;
    }
    let pid = with_cm()
        .control_plane()
        .and_then(ControlPlane::controller_manager_pid)
        .expect("a controller manager");
    println!("CM_PID {pid}");
    std::process::abort();
}
