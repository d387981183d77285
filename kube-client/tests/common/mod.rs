//! Shared set-up of the integration tests: the real control plane of this
//! test binary (kube-testenv) and clients for it.
#![allow(dead_code)]

pub mod nodes;
pub mod scripted;

use kube_client::Client;
use kube_testenv::TestEnv;

/// The test binary's control plane (or existing cluster).
pub fn env() -> &'static TestEnv {
    kube_testenv::shared().unwrap_or_else(|e| panic!("control plane: {e}"))
}

/// The resolved configuration of the admin kubeconfig.
pub fn config() -> kube_client::config::Config {
    let kc = kube_client::config::Kubeconfig::read_from(env().kubeconfig()).unwrap();
    kube_client::config::Config::from_kubeconfig(&kc, &Default::default()).unwrap()
}

/// An admin client.
pub fn client() -> Client {
    Client::try_from(config()).unwrap()
}

/// A fresh namespace.
pub async fn namespace(prefix: &str) -> String {
    env().namespace(prefix).await.unwrap()
}
