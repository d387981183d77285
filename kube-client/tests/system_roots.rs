//! A cluster with no `certificate-authority` is verified against the
//! platform's trusted roots, as kubectl does, and a configured CA stays the
//! only one trusted.
//!
//! The platform's roots are read from `SSL_CERT_FILE` when it is set, and
//! they are read once per process; environment variables are process-wide.
//! So the checks run in child processes of this test binary, each with its
//! own `SSL_CERT_FILE`: the parent starts the control plane and writes the
//! CA files; [`child_connects_without_a_configured_ca`] is the child's part
//! and does nothing unless the parent started it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::config::{Config, Kubeconfig};
use kube_client::params::ListParams;
use kube_client::{Api, Client, Error};

/// Set by the parent for the child: the kubeconfig to use.
const CHILD_KUBECONFIG: &str = "KUBE_CLIENT_TEST_SYSTEM_ROOTS_KUBECONFIG";

fn pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Runs the child test with `SSL_CERT_FILE=cert_file`; its combined output
/// and whether it passed.
fn run_child(kubeconfig: &Path, cert_file: &Path, expect: &str) -> (bool, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_connects_without_a_configured_ca",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_KUBECONFIG, kubeconfig)
        .env("SSL_CERT_FILE", cert_file)
        .env_remove("SSL_CERT_DIR")
        .env("KUBE_CLIENT_TEST_SYSTEM_ROOTS_EXPECT", expect)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn without_a_configured_ca_the_platform_roots_are_used() {
    let env = common::env();
    let config = common::config();
    let ca_der = config
        .root_certs
        .as_ref()
        .and_then(|c| c.first())
        .expect("the test control plane has a CA")
        .clone();
    let dir = tempfile::tempdir().unwrap();
    let right: PathBuf = dir.path().join("right-ca.pem");
    std::fs::write(&right, pem(&ca_der)).unwrap();
    let wrong: PathBuf = dir.path().join("other-ca.pem");
    std::fs::write(
        &wrong,
        kube_testenv::certs::Certs::generate().unwrap().ca_pem,
    )
    .unwrap();

    let (ok, out) = run_child(env.kubeconfig(), &right, "ok");
    assert!(ok, "with SSL_CERT_FILE holding the cluster's CA: {out}");
    assert!(
        out.contains("child: listed through the platform roots"),
        "{out}"
    );

    let (ok, out) = run_child(env.kubeconfig(), &wrong, "tls-error");
    assert!(ok, "with SSL_CERT_FILE holding another CA: {out}");
    assert!(out.contains("child: refused by verification"), "{out}");
}

/// The child's part (see the module docs); a no-op in a normal test run.
#[test]
fn child_connects_without_a_configured_ca() {
    let Ok(kubeconfig) = std::env::var(CHILD_KUBECONFIG) else {
        return;
    };
    let expect = std::env::var("KUBE_CLIENT_TEST_SYSTEM_ROOTS_EXPECT").unwrap();
    let kc = Kubeconfig::read_from(&kubeconfig).unwrap();
    let mut config = Config::from_kubeconfig(&kc, &Default::default()).unwrap();
    config.root_certs = None;
    // A CA configured for another cluster stays exclusive: with it, even
    // the right platform roots do not help.
    let mut exclusive = config.clone();
    exclusive.root_certs = Some(vec![pem_der(
        &kube_testenv::certs::Certs::generate().unwrap().ca_pem,
    )]);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let list = |config: Config| async move {
            let api: Api<ConfigMap> = Api::namespaced(Client::try_from(config)?, "default");
            api.list(&ListParams::default())
                .await
                .map(|l| l.items.len())
        };
        let result = list(config).await;
        match expect.as_str() {
            "ok" => {
                result.unwrap();
                println!("child: listed through the platform roots");
            }
            _ => {
                let err = result.unwrap_err();
                assert!(matches!(err, Error::Tls { .. }), "{err:?}");
                let text = err.to_string().to_lowercase();
                assert!(
                    text.contains("invalid peer certificate"),
                    "names the failed verification: {text}"
                );
                println!("child: refused by verification");
            }
        }
        let err = list(exclusive).await.unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    });
}

fn pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}
