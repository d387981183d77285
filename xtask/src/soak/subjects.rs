//! What the soak checks: every *subject* keeps its own view of the soak's
//! objects and must agree with the API server after every fault.
//!
//! A [`Subject`] exposes that view as `namespace/name → resourceVersion`
//! and counts what it has received. Today the subjects are reflectors, one
//! per combination of
//!
//! - object kind: typed (`Api<ConfigMap>`), dynamic (`Api<DynamicObject>`),
//!   metadata only (`api.metadata()`, `PartialObjectMetadata`), and
//! - initial state: streaming list (`sendInitialEvents`) or list then watch,
//!
//! all with the default settings a user gets (backoff included), all
//! connected through the fault proxy. Anything else that must converge with
//! the cluster joins the soak by implementing [`Subject`]: the controller of
//! [`super::controller`] does, checked by the state it writes rather than
//! by a view.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::{Api, ApiResource, Client, DynamicObject, Resource, ResourceExt};
use kube_runtime::{Reflector, ReflectorConfig, Store, WatchEvent, WatcherConfig};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::report::Divergence;

/// `namespace/name → resourceVersion`.
pub(super) type View = BTreeMap<String, String>;

/// What a subject has received so far.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Received {
    /// Added, modified and deleted notifications.
    pub(super) changes: u64,
    /// Errors reported (cuts, 429s, 410s, refused connections).
    pub(super) errors: u64,
    /// Times the change queue overflowed.
    pub(super) desynced: u64,
    /// Complete lists applied (the initial one and every relist).
    pub(super) lists: u64,
}

/// Something that must converge with the soak's objects on the API server;
/// see the module docs.
pub(super) trait Subject: Send + Sync {
    /// A short name for the report, e.g. `typed/streaming`.
    fn name(&self) -> &str;
    /// A cache (its view must equal the list), or not (a controller: the
    /// cluster must be in the state it derives from the list). The report
    /// gives the two catch-up times apart.
    fn is_cache(&self) -> bool {
        true
    }
    /// How far it is from `listed` (a fresh list of the soak's objects);
    /// `None` if that cannot be told now (a request of its own failed).
    fn compare<'a>(&'a self, listed: &'a View) -> BoxFuture<'a, Option<Divergence>>;
    /// What it has received so far (cumulative).
    fn received(&self) -> Received;
}

/// The key of an object in a [`View`].
pub(super) fn key_of<K: Resource>(o: &K) -> String {
    format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any())
}

/// A [`View`] from `(key, resourceVersion)` pairs, for tests.
#[cfg(test)]
pub(super) fn view(items: &[(&str, &str)]) -> View {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A reflector running in the background, as a subject.
struct ReflectorSubject<K> {
    name: String,
    store: Store<K>,
    received: Mutex<Received>,
}

impl<K> Subject for ReflectorSubject<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn compare<'a>(&'a self, listed: &'a View) -> BoxFuture<'a, Option<Divergence>> {
        let view: View = self
            .store
            .read()
            .iter()
            .map(|o| {
                let rv = o.resource_version().unwrap_or_default().to_string();
                (key_of(o.as_ref()), rv)
            })
            .collect();
        futures::future::ready(Some(Divergence::between(&view, listed))).boxed()
    }

    fn received(&self) -> Received {
        let mut r = self.received.lock();
        for event in self.store.events() {
            match event {
                WatchEvent::Added(_) | WatchEvent::Modified(_) | WatchEvent::Deleted(_) => {
                    r.changes += 1
                }
                WatchEvent::Error(_) => r.errors += 1,
                WatchEvent::Desynced { .. } => r.desynced += 1,
            }
        }
        r.lists = self.store.lists_completed();
        *r
    }
}

fn spawn<K>(name: String, api: Api<K>, watcher: WatcherConfig) -> Arc<dyn Subject>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
{
    let config = ReflectorConfig {
        watcher,
        ..ReflectorConfig::default()
    };
    let reflector = Reflector::with_config(api, config);
    let store = reflector.reader();
    tokio::spawn(reflector.run());
    Arc::new(ReflectorSubject {
        name,
        store,
        received: Mutex::new(Received::default()),
    })
}

/// Starts a reflector of every kind and mode over the ConfigMaps of
/// `namespace`, through `client` (the one connected via the fault proxy).
pub(super) fn reflectors(client: &Client, namespace: &str) -> Vec<Arc<dyn Subject>> {
    let typed: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let dynamic: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &ApiResource::of::<ConfigMap>());
    let metadata = typed.metadata();
    let modes = [
        ("streaming", WatcherConfig::default()),
        ("list+watch", WatcherConfig::default().list_then_watch()),
    ];
    let mut subjects = Vec::new();
    for (mode, watcher) in modes {
        subjects.push(spawn(
            format!("typed/{mode}"),
            typed.clone(),
            watcher.clone(),
        ));
        subjects.push(spawn(
            format!("dynamic/{mode}"),
            dynamic.clone(),
            watcher.clone(),
        ));
        subjects.push(spawn(format!("metadata/{mode}"), metadata.clone(), watcher));
    }
    subjects
}
