//! Shared by the test binaries: the `Shapes` kind, and for the cluster
//! tests the real control plane (kube-testenv) with helpers to install a
//! CRD and wait until it is served.
#![allow(dead_code)]

pub mod shapes;

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_client::params::{Patch, PatchParams};
use kube_client::{Api, Client};

/// The test binary's control plane (or existing cluster).
pub fn env() -> &'static kube_testenv::TestEnv {
    kube_testenv::shared().unwrap_or_else(|e| panic!("control plane: {e}"))
}

/// An admin client.
pub fn client() -> Client {
    let kubeconfig = kube_config::Kubeconfig::read_from(env().kubeconfig()).unwrap();
    let config = kube_config::Config::from_kubeconfig(&kubeconfig, &Default::default()).unwrap();
    Client::try_from(config).unwrap()
}

/// A fresh namespace.
pub async fn namespace(prefix: &str) -> String {
    env().namespace(prefix).await.unwrap()
}

/// Applies the CRD (creating or updating it) and waits, at most 30 s,
/// until it is Established and its objects can be listed.
pub async fn install(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let client = client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().unwrap();
    // Server-side apply: creates it, or updates one left by an earlier run,
    // without conflicts between tests installing the same CRD at once.
    let apply = PatchParams::apply("kube-derive-tests").force();
    crds.patch(&name, &apply, &Patch::Apply(&crd))
        .await
        .unwrap_or_else(|e| panic!("applying CRD {name}: {e}"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let current = crds.get(&name).await.unwrap();
        let established = current
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        if established {
            return current;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "CRD {name} not Established after 30 s: {:?}",
            current.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
