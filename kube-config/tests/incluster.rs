//! In-cluster configuration from a temp service-account dir, and inference.

mod common;

use std::path::Path;

use common::{copy_fixture, fixture_certs_der, write};
use kube_config::{Config, InClusterEnv, KubeconfigLoader, KubeconfigOptions};

fn sa_dir(dir: &Path) -> InClusterEnv {
    write(dir, "token", "sa-token-1\n");
    copy_fixture("ca-bundle.crt", dir, "ca.crt");
    write(dir, "namespace", "team-a\n");
    InClusterEnv {
        service_host: Some("10.96.0.1".into()),
        service_port: Some("443".into()),
        pod_namespace: None,
        service_account_dir: dir.to_path_buf(),
    }
}

fn token(c: &Config) -> String {
    let cred = c
        .auth
        .current_credential()
        .expect("credential")
        .expect("some");
    cred.token.expect("token").expose().to_owned()
}

#[test]
fn reads_the_service_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = sa_dir(dir.path());
    let c = Config::incluster_with(&env).expect("incluster");
    assert_eq!(c.cluster_url.as_str(), "https://10.96.0.1/");
    assert_eq!(c.cluster_url.port_or_known_default(), Some(443));
    assert_eq!(c.default_namespace, "team-a");
    assert_eq!(c.root_certs, Some(fixture_certs_der("ca-bundle.crt")));
    assert_eq!(c.auth.kind(), "token-file");
    assert_eq!(token(&c), "sa-token-1");

    // bound tokens rotate: the new one is picked up
    write(dir.path(), "token", "sa-token-2-rotated");
    assert_eq!(token(&c), "sa-token-2-rotated");
    assert!(!format!("{c:?}").contains("sa-token"));
}

#[test]
fn ipv6_port_and_namespace_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = sa_dir(dir.path());
    env.service_host = Some("fd00::1".into());
    let c = Config::incluster_with(&env).expect("v6");
    assert_eq!(c.cluster_url.as_str(), "https://[fd00::1]/");
    assert_eq!(c.cluster_url.host_str(), Some("[fd00::1]"));

    env.service_port = Some("6443".into());
    env.pod_namespace = Some("from-env".into());
    let c = Config::incluster_with(&env).expect("v6 port");
    assert_eq!(c.cluster_url.as_str(), "https://[fd00::1]:6443/");
    assert_eq!(c.default_namespace, "from-env");

    // no namespace file and no POD_NAMESPACE: default; no CA: platform roots
    std::fs::remove_file(dir.path().join("namespace")).expect("rm");
    std::fs::remove_file(dir.path().join("ca.crt")).expect("rm");
    env.pod_namespace = None;
    let c = Config::incluster_with(&env).expect("defaults");
    assert_eq!(c.default_namespace, "default");
    assert!(c.root_certs.is_none());
}

#[test]
fn empty_token_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = sa_dir(dir.path());
    write(dir.path(), "token", "");
    assert_eq!(
        Config::incluster_with(&env).unwrap_err().to_string(),
        format!(
            "in-cluster configuration: token file {}: the file is empty",
            dir.path().join("token").display()
        )
    );
}

#[test]
fn infer_prefers_kubeconfig_then_incluster_then_lists_tries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sa = dir.path().join("sa");
    let env = sa_dir(&sa);
    let home = dir.path().join("home");
    let defaults = KubeconfigOptions::default();

    // nothing in HOME: in-cluster
    let loader = KubeconfigLoader::new().with_home(&home);
    let c = Config::infer_with(&loader, &env, &defaults).expect("incluster");
    assert_eq!(c.cluster_url.as_str(), "https://10.96.0.1/");
    let ns = KubeconfigOptions {
        namespace: Some("other".into()),
        ..Default::default()
    };
    assert_eq!(
        Config::infer_with(&loader, &env, &ns)
            .expect("ns")
            .default_namespace,
        "other"
    );

    // neither: every try listed
    let err = Config::infer_with(&loader, &InClusterEnv::default(), &defaults).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no Kubernetes configuration found; tried: default kubeconfig {}: not found; in-cluster configuration: KUBERNETES_SERVICE_HOST is not set",
            home.join(".kube/config").display()
        )
    );

    // a kubeconfig wins over in-cluster
    write(
        &home,
        ".kube/config",
        "clusters: [{name: c, cluster: {server: 'https://kc.example'}}]\ncontexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n",
    );
    let c = Config::infer_with(&loader, &env, &defaults).expect("kubeconfig");
    assert_eq!(c.cluster_url.as_str(), "https://kc.example/");

    // a broken kubeconfig is an error, not a reason to fall back
    write(&home, ".kube/config", "current-context: [\n");
    let err = Config::infer_with(&loader, &env, &defaults).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{}: invalid kubeconfig: ",
            home.join(".kube/config").display()
        )),
        "{err}"
    );
}
