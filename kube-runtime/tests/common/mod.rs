//! Shared set-up: the real control plane, clients, and a TCP proxy that can
//! cut connections.
#![allow(dead_code)]

pub mod example;
pub mod metrics;
pub mod probe;
pub mod proxy;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_runtime::{BackoffConfig, ReflectorConfig, WatchEvent, WatcherConfig};

use std::path::Path;
use std::time::Duration;

use futures::TryStreamExt;
use kube_client::config::{Config, Kubeconfig};
use kube_client::params::ListParams;
use kube_client::{Api, Client, Resource, ResourceExt};
use kube_runtime::Store;

/// A control plane of the test's own, for tests that stop its servers.
pub async fn own_control_plane() -> kube_testenv::ControlPlane {
    let (binaries, _) = kube_testenv::binaries::ensure(|_| {}).unwrap();
    tokio::task::spawn_blocking(move || kube_testenv::ControlPlane::start(&binaries).unwrap())
        .await
        .unwrap()
}

/// Stops and starts `plane`'s kube-apiserver (etcd keeps running).
pub async fn restart_apiserver(plane: kube_testenv::ControlPlane) -> kube_testenv::ControlPlane {
    tokio::task::spawn_blocking(move || {
        plane.stop_apiserver();
        plane.start_apiserver().unwrap();
        plane
    })
    .await
    .unwrap()
}

/// Each change as `+name`, `~name`, `-name` or `desynced N` (errors left
/// out), for comparing what a reflector or informer saw with what was done.
pub fn describe(events: Vec<WatchEvent<ConfigMap>>) -> Vec<String> {
    events
        .into_iter()
        .filter_map(|e| match e {
            WatchEvent::Added(o) => Some(format!("+{}", o.name_any())),
            WatchEvent::Modified(o) => Some(format!("~{}", o.name_any())),
            WatchEvent::Deleted(o) => Some(format!("-{}", o.name_any())),
            WatchEvent::Error(_) => None,
            WatchEvent::Desynced { dropped } => Some(format!("desynced {dropped}")),
        })
        .collect()
}

pub fn env() -> &'static kube_testenv::TestEnv {
    kube_testenv::shared().unwrap_or_else(|e| panic!("control plane: {e}"))
}

pub fn config_of(kubeconfig: &Path) -> Config {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    Config::from_kubeconfig(&kc, &Default::default()).unwrap()
}

pub fn client() -> Client {
    Client::try_from(config_of(env().kubeconfig())).unwrap()
}

/// `(namespace/name, resourceVersion)` of every object, sorted.
pub fn snapshot<K: Resource>(
    objects: impl IntoIterator<Item = impl std::ops::Deref<Target = K>>,
) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = objects
        .into_iter()
        .map(|o| {
            (
                format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any()),
                o.resource_version().unwrap_or_default().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Waits (bounded) until the store equals a fresh list of `api`.
pub async fn converges<K>(store: &Store<K>, api: &Api<K>)
where
    K: Resource
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let fresh: Vec<K> = api
            .list_stream(&ListParams::default())
            .try_collect()
            .await
            .unwrap();
        let want = snapshot::<K>(fresh.iter());
        let have = snapshot::<K>(store.read());
        if want == have {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "store did not converge: {} cached vs {} listed; first differences: {:?}",
                have.len(),
                want.len(),
                want.iter()
                    .filter(|w| !have.contains(w))
                    .take(5)
                    .collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A ConfigMap named `name` with one data entry.
pub fn cm(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("k".into(), name.into())])),
        ..ConfigMap::default()
    }
}

/// Reflector settings with a short backoff, for tests that break connections.
pub fn fast() -> ReflectorConfig {
    ReflectorConfig {
        watcher: WatcherConfig {
            backoff: BackoffConfig {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(1),
                ..BackoffConfig::default()
            },
            ..WatcherConfig::default()
        },
        ..ReflectorConfig::default()
    }
}
