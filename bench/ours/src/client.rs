//! What both of our benchmark programs start from: a client built from the
//! kubeconfig the orchestrator wrote, with every option at its default (as a
//! user of the crates would start); the reflector's with the wire encoding
//! the orchestrator chooses (`BENCH_ENCODING`, see `bench_common::Encoding`).

use anyhow::{Context, Result};
use bench_common::Encoding;
use kube_client::k8s_openapi::api::core::v1::ConfigMap;
use kube_client::{Api, Client, ClientBuilder};

/// A client for the cluster of the kubeconfig at `kubeconfig` speaking
/// `encoding` (`ClientBuilder::protobuf`), or `Ok(None)` when this build of
/// kube-client cannot (built without its `protobuf` feature).
#[allow(dead_code)] // bench-ours's; this module is in both programs
pub fn client(kubeconfig: &str, encoding: Encoding) -> Result<Option<Client>> {
    let file = kube_config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("read {kubeconfig}"))?;
    let config =
        kube_config::Config::from_kubeconfig(&file, &kube_config::KubeconfigOptions::default())?;
    let protobuf = encoding == Encoding::Protobuf;
    let client = ClientBuilder::new(config).protobuf(protobuf).build()?;
    Ok((client.protobuf() == protobuf).then_some(client))
}

/// The ConfigMaps of `namespace`, through a client with every option at its
/// default, the encoding too (the controller scenario's; it does not vary
/// the encoding).
#[allow(dead_code)] // bench-ours-controller's; this module is in both programs
pub fn config_maps(kubeconfig: &str, namespace: &str) -> Result<Api<ConfigMap>> {
    let file = kube_config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("read {kubeconfig}"))?;
    let config =
        kube_config::Config::from_kubeconfig(&file, &kube_config::KubeconfigOptions::default())?;
    Ok(Api::namespaced(Client::try_from(config)?, namespace))
}
