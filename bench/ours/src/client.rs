//! What both of our benchmark programs start from: the ConfigMaps of the
//! benchmark's namespace, through a client built from the kubeconfig the
//! orchestrator wrote, with every option at its default (as a user of the
//! crates would start).

use anyhow::{Context, Result};
use kube_client::k8s_openapi::api::core::v1::ConfigMap;
use kube_client::{Api, Client};

/// The ConfigMaps of `namespace`, through a client for the cluster of the
/// kubeconfig at `kubeconfig`.
pub fn config_maps(kubeconfig: &str, namespace: &str) -> Result<Api<ConfigMap>> {
    let file = kube_config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("read {kubeconfig}"))?;
    let config =
        kube_config::Config::from_kubeconfig(&file, &kube_config::KubeconfigOptions::default())?;
    let client = Client::try_from(config)?;
    Ok(Api::namespaced(client, namespace))
}
