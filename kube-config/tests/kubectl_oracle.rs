//! kubectl as an oracle: for three overlapping kubeconfig files with
//! relative paths, `kubectl config view --minify --flatten --raw -o json`
//! must select and resolve what we do.
//!
//! kubectl is found through `KUBECTL` or `PATH`. Without it this test fails
//! (install Debian's `kubernetes-client`); it uses only flags that kubectl
//! 1.20 already had, and runs kubectl with a temp `HOME`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use common::{copy_fixture, fixture_b64, write};
use kube_config::{Config, Kubeconfig, KubeconfigLoader, KubeconfigOptions};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

fn find_kubectl() -> PathBuf {
    if let Some(k) = std::env::var_os("KUBECTL").filter(|k| !k.is_empty()) {
        let k = PathBuf::from(k);
        assert!(
            k.is_file(),
            "KUBECTL={} is not a file; install Debian's `kubernetes-client` package (apt-get install kubernetes-client)",
            k.display()
        );
        return k;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("kubectl");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "kubectl not found on PATH and KUBECTL is not set: the kubectl oracle test needs it. \
         Install Debian's `kubernetes-client` package (apt-get install kubernetes-client; CI installs it), \
         or set KUBECTL to a kubectl binary."
    );
}

struct Files {
    _dir: tempfile::TempDir,
    home: PathBuf,
    kubeconfig_env: String,
}

fn write_files() -> Files {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    copy_fixture("ca.crt", root, "a/certs/ca.crt");
    copy_fixture("client-rsa.crt", root, "pki/alice.crt");
    copy_fixture("client-rsa-pkcs8.key", root, "pki/alice.key");
    let a = write(
        root,
        "a/config",
        r#"apiVersion: v1
kind: Config
clusters:
- name: shared
  cluster:
    server: https://a.example:6443
    certificate-authority: certs/ca.crt
users:
- name: alice
  user:
    client-certificate: ../pki/alice.crt
    client-key: ../pki/alice.key
contexts:
- name: ctx-a
  context: {cluster: shared, user: alice, namespace: ns-a}
current-context: ""
"#,
    );
    let b = write(
        root,
        "b/config",
        format!(
            r#"apiVersion: v1
kind: Config
clusters:
- name: shared
  cluster:
    server: https://loses.example
- name: cluster-b
  cluster:
    server: https://b.example:443/prefix
    certificate-authority-data: {bundle}
users:
- name: alice
  user: {{token: alice-loses}}
- name: bob
  user: {{token: bob-token-123}}
contexts:
- name: ctx-a
  context: {{cluster: cluster-b, user: bob}}
- name: ctx-b
  context: {{cluster: cluster-b, user: bob, namespace: ns-b}}
current-context: ctx-b
"#,
            bundle = fixture_b64("ca-bundle.crt")
        ),
    );
    let c = write(
        root,
        "c/config",
        format!(
            r#"apiVersion: v1
kind: Config
clusters:
- name: cluster-c
  cluster:
    server: http://c.example:8080
users:
- name: carol
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: ctx-c
  context: {{cluster: cluster-c, user: carol}}
- name: ctx-mix
  context: {{cluster: shared, user: carol, namespace: mix}}
current-context: ctx-c
"#,
            cert = fixture_b64("client-ec.crt"),
            key = fixture_b64("client-ec.key")
        ),
    );
    let missing = root.join("missing/config");
    let kubeconfig_env = [
        "",
        &a.display().to_string(),
        &missing.display().to_string(),
        "",
        &b.display().to_string(),
        &c.display().to_string(),
    ]
    .join(":");
    let home = root.join("home");
    std::fs::create_dir_all(&home).expect("home");
    Files {
        _dir: dir,
        home,
        kubeconfig_env,
    }
}

fn kubectl_view(kubectl: &Path, files: &Files, context: Option<&str>) -> Value {
    let mut cmd = Command::new(kubectl);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &files.home)
        .env("KUBECONFIG", &files.kubeconfig_env)
        .args([
            "config",
            "view",
            "--minify",
            "--flatten",
            "--raw",
            "-o",
            "json",
        ]);
    if let Some(ctx) = context {
        cmd.args(["--context", ctx]);
    }
    let out = cmd.output().expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("kubectl json")
}

fn b64(v: &Value) -> Option<Vec<u8>> {
    v.as_str().map(|s| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .expect("kubectl base64")
    })
}

/// Compares kubectl's minified view with our selection and Config.
fn compare(kubectl: &Path, files: &Files, kc: &Kubeconfig, context: Option<&str>) {
    let view = kubectl_view(kubectl, files, context);
    let label = context.unwrap_or("<current-context>");
    let options = KubeconfigOptions {
        context: context.map(Into::into),
        ..Default::default()
    };
    let sel = kc.select(&options).expect("select");
    let config = Config::from_kubeconfig(kc, &options).expect("config");

    let k_ctx = &view["contexts"][0];
    let k_cluster = &view["clusters"][0];
    let k_user = &view["users"][0];
    assert_eq!(
        view["current-context"].as_str(),
        sel.context.map(|c| c.name.as_str()),
        "{label}"
    );
    assert_eq!(
        k_ctx["name"].as_str(),
        sel.context.map(|c| c.name.as_str()),
        "{label}"
    );
    assert_eq!(
        k_cluster["name"].as_str(),
        Some(sel.cluster.name.as_str()),
        "{label}"
    );
    assert_eq!(
        k_user["name"].as_str(),
        sel.user.map(|u| u.name.as_str()),
        "{label}"
    );
    assert_eq!(
        k_ctx["context"]["cluster"].as_str(),
        Some(sel.cluster.name.as_str()),
        "{label}"
    );

    let server = k_cluster["cluster"]["server"].as_str().expect("server");
    assert_eq!(
        url::Url::parse(server).expect("kubectl url"),
        config.cluster_url,
        "{label}"
    );

    let k_ns = k_ctx["context"]["namespace"].as_str().unwrap_or("default");
    assert_eq!(k_ns, config.default_namespace, "{label}");

    let k_ca = b64(&k_cluster["cluster"]["certificate-authority-data"]).map(|pem| {
        CertificateDer::pem_slice_iter(&pem)
            .map(|c| c.expect("kubectl CA").as_ref().to_vec())
            .collect::<Vec<_>>()
    });
    assert_eq!(k_ca, config.root_certs, "{label}: CA");

    let user = &k_user["user"];
    let cred = config.auth.current_credential().expect("credential");
    let token = cred
        .as_ref()
        .and_then(|c| c.token.as_ref())
        .map(|t| t.expose().to_owned());
    assert_eq!(
        user["token"].as_str().map(str::to_owned),
        token,
        "{label}: token"
    );

    let k_cert = b64(&user["client-certificate-data"]);
    let k_key = b64(&user["client-key-data"]);
    match (&config.identity, k_cert, k_key) {
        (None, None, None) => {}
        (Some(id), Some(cert), Some(key)) => {
            assert_eq!(id.cert_pem(), cert.as_slice(), "{label}: client cert");
            let k_der = PrivateKeyDer::from_pem_slice(&key).expect("kubectl key");
            assert_eq!(
                id.key_der().secret_der(),
                k_der.secret_der(),
                "{label}: client key"
            );
        }
        (ours, cert, key) => panic!(
            "{label}: identity mismatch: ours {ours:?}, kubectl cert {:?} key {:?}",
            cert.is_some(),
            key.is_some()
        ),
    }
}

#[test]
fn kubectl_agrees_on_merge_selection_and_resolution() {
    let kubectl = find_kubectl();
    let files = write_files();
    let kc = KubeconfigLoader::new()
        .with_kubeconfig_env(&files.kubeconfig_env)
        .with_home(&files.home)
        .load()
        .expect("load");
    for context in [
        None,
        Some("ctx-a"),
        Some("ctx-b"),
        Some("ctx-c"),
        Some("ctx-mix"),
    ] {
        compare(&kubectl, &files, &kc, context);
    }
}
