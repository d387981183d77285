//! The control plane is real: HTTPS with the admin client certificate, CRUD
//! on core resources, the pinned version, bounded failure, and no orphans.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kube_testenv::{Binaries, ControlPlane, Pins, TestEnv};
use serde_json::json;

fn env() -> &'static TestEnv {
    kube_testenv::shared().unwrap_or_else(|e| panic!("control plane: {e}"))
}

#[tokio::test]
async fn namespace_and_configmap_crud_over_https_with_the_admin_cert() {
    let access = env().access();
    let http = access.http_client().unwrap();

    // Namespace: create, read, list, delete.
    let ns = env().namespace("crud").await.unwrap();
    let got = access
        .request_ok(&http, "GET", &format!("/api/v1/namespaces/{ns}"), None)
        .await
        .unwrap();
    assert_eq!(got["metadata"]["name"], ns);
    let list = access
        .request_ok(&http, "GET", "/api/v1/namespaces", None)
        .await
        .unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert!(names.contains(&ns.as_str()), "{names:?}");

    // ConfigMap: create, read, list, delete.
    let cms = format!("/api/v1/namespaces/{ns}/configmaps");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one"}, "data": {"k": "v"}});
    let created = access
        .request_ok(&http, "POST", &cms, Some(&cm))
        .await
        .unwrap();
    assert!(
        created["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|rv| !rv.is_empty())
    );
    let got = access
        .request_ok(&http, "GET", &format!("{cms}/one"), None)
        .await
        .unwrap();
    assert_eq!(got["data"]["k"], "v");
    let list = access.request_ok(&http, "GET", &cms, None).await.unwrap();
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["metadata"]["name"] == "one")
    );
    access
        .request_ok(&http, "DELETE", &format!("{cms}/one"), None)
        .await
        .unwrap();
    let (status, body) = access
        .request(&http, "GET", &format!("{cms}/one"), None)
        .await
        .unwrap();
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["reason"], "NotFound");

    access
        .request_ok(&http, "DELETE", &format!("/api/v1/namespaces/{ns}"), None)
        .await
        .unwrap();
    let got = access
        .request_ok(&http, "GET", &format!("/api/v1/namespaces/{ns}"), None)
        .await;
    // Namespace deletion is asynchronous: it is gone or terminating.
    if let Ok(got) = got {
        assert_eq!(got["status"]["phase"], "Terminating");
    }
}

#[tokio::test]
async fn version_reports_the_pinned_release() {
    if env().control_plane().is_none() {
        return; // an existing cluster runs whatever version it runs
    }
    let access = env().access();
    let http = access.http_client().unwrap();
    let version = access
        .request_ok(&http, "GET", "/version", None)
        .await
        .unwrap();
    let pins = Pins::read().unwrap();
    assert_eq!(version["gitVersion"], pins.kubernetes, "{version}");
    let minor = pins.kubernetes.split('.').nth(1).unwrap();
    assert_eq!(version["minor"], minor, "{version}");
}

#[tokio::test]
async fn a_client_without_the_admin_cert_is_refused() {
    let mut anonymous = env().access().clone();
    anonymous.client_identity = None;
    anonymous.bearer_token = None;
    let http = anonymous.http_client().unwrap();
    let (status, body) = anonymous
        .request(&http, "GET", "/api/v1/namespaces", None)
        .await
        .unwrap();
    assert!(status == 401 || status == 403, "{status} {body}");
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// Re-runs this test binary as a child that starts a control plane, prints
/// the server pids and then dies the way its mode says; the servers must go.
fn servers_die_with(mode: &str) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--exact", "orphan_child", "--nocapture", "--test-threads=1"])
        .env("KUBE_TESTENV_ORPHAN_CHILD", mode)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pids: Vec<u32> = stdout
        .lines()
        .find_map(|l| l.split_once("PIDS ").map(|(_, pids)| pids.trim()))
        .unwrap_or_else(|| {
            panic!(
                "child printed no pids:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2);
    let deadline = Instant::now() + Duration::from_secs(20);
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            Instant::now() < deadline,
            "servers {pids:?} outlived a test process that {mode}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn servers_die_when_the_test_process_panics() {
    servers_die_with("panics");
}

#[test]
fn servers_die_when_the_test_process_is_killed() {
    servers_die_with("aborts");
}

/// Not a test on its own: the child half of the orphan tests.
#[test]
fn orphan_child() {
    let Ok(mode) = std::env::var("KUBE_TESTENV_ORPHAN_CHILD") else {
        return;
    };
    let env: &'static TestEnv = env();
    let (etcd, apiserver) = env
        .control_plane()
        .expect("orphan test needs our own control plane")
        .pids();
    println!("PIDS {etcd} {apiserver}");
    match mode.as_str() {
        // A shared control plane lives in a static and is never dropped:
        // only the watchdogs can stop it.
        "panics" => panic!("deliberate panic with a running control plane"),
        _ => std::process::abort(),
    }
}

#[test]
fn a_server_that_fails_to_start_is_reported_with_its_log_in_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("kube-apiserver");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'F1125 fake apiserver: flag provided but not defined' >&2\nexit 255\n",
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let (real, _) = kube_testenv::binaries::ensure(|_| {}).unwrap();
    let started = Instant::now();
    let err = ControlPlane::start(&Binaries {
        kube_apiserver: fake,
        etcd: real.etcd,
        kube_controller_manager: None,
        kube_scheduler: None,
        kwok: None,
    })
    .unwrap_err()
    .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert!(err.contains("kube-apiserver did not start"), "{err}");
    assert!(err.contains("exit status: 255"), "{err}");
    assert!(err.contains("flag provided but not defined"), "{err}");
}

#[test]
fn extra_apiserver_args_reach_kube_apiserver() {
    // A flag kube-apiserver does not know makes it exit at once: proof that
    // the argument reached it, and that the failure names it.
    let (binaries, _) = kube_testenv::binaries::ensure(|_| {}).unwrap();
    let started = Instant::now();
    let err = ControlPlane::start_with_apiserver_args(
        &binaries,
        Default::default(),
        &["--kube-testenv-no-such-flag=1".to_string()],
    )
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            kube_testenv::Error::Start {
                binary: "kube-apiserver",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("kube-testenv-no-such-flag"),
        "{err}"
    );
}

#[test]
fn a_missing_asset_is_named() {
    let err = kube_testenv::Error::MissingAsset {
        var: "KUBEBUILDER_ASSETS",
        path: Path::new("/nope/etcd").into(),
    };
    assert_eq!(
        err.to_string(),
        "KUBEBUILDER_ASSETS points at /nope/etcd, which is not an executable file"
    );
}

#[test]
fn the_apiserver_restarts_on_the_same_port_with_its_data() {
    let plane = ControlPlane::start(&kube_testenv::binaries::ensure(|_| {}).unwrap().0).unwrap();
    let access = plane.access().clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = access.http_client().unwrap();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "survivor"}});
    rt.block_on(access.request_ok(
        &http,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(&cm),
    ))
    .unwrap();
    let (_, old_pid) = plane.pids();
    plane.stop_apiserver();
    assert!(
        rt.block_on(access.request(&http, "GET", "/readyz", None))
            .is_err(),
        "still answering after stop"
    );
    plane.start_apiserver().unwrap();
    let (_, new_pid) = plane.pids();
    assert_ne!(old_pid, new_pid);
    let http = access.http_client().unwrap();
    let got = rt.block_on(access.request_ok(
        &http,
        "GET",
        "/api/v1/namespaces/default/configmaps/survivor",
        None,
    ));
    assert_eq!(got.unwrap()["metadata"]["name"], "survivor");
    let dir = plane.dir().to_path_buf();
    plane.stop();
    assert!(!alive(new_pid));
    assert!(!dir.exists(), "{} left behind", dir.display());
}
