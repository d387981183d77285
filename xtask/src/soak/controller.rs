//! The soak's controller subject: a [`Controller`] on the soak's ConfigMaps,
//! connected through the fault proxy like the caches, whose reconcile
//! writes a derived child for each one.
//!
//! For every ConfigMap `kube-soak/<name>` (the parent), the desired state is
//! a ConfigMap `kube-soak-derived/<name>` (the child) whose annotation
//! [`SOURCE`] holds the parent's current resourceVersion and whose data
//! copies the parent's `generation`. Reconcile server-side applies that
//! child (a no-op when it already matches); the controller also watches the
//! children (`.watches`, mapped back to the parent by name), so a child
//! changed or deleted by someone else is put back.
//!
//! After each fault the soak compares the desired state with the API
//! server's: a fresh list of the parents against a fresh list of the
//! children, both read straight from kube-apiserver (not through the proxy,
//! not from any cache). A parent without a child is *lost*, a child whose
//! [`SOURCE`] is not its parent's resourceVersion is *stale*; the catch-up
//! time is when neither remains. Children of deleted parents (orphans) are
//! not part of the desired state and not checked: the children live in
//! another namespace, where owner references cannot reach, and no
//! reconcile runs for an object that is gone.
//!
//! Reconcile failures (server away, connections cut, 429s) go to the
//! default error policy: per-object backoff, under the controller's overall
//! retry rate limit — what a user gets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::params::{ListParams, Patch, PatchParams};
use kube_client::{Api, Client, ResourceExt};
use kube_runtime::WatcherConfig;
use kube_runtime::controller::{Action, Controller, ObjectRef, default_error_policy};
use serde_json::json;

use super::report::Divergence;
use super::subjects::{Received, Subject, View};

/// The children's namespace.
pub(super) const DERIVED_NAMESPACE: &str = "kube-soak-derived";
/// The child's annotation naming the parent's resourceVersion it reflects.
const SOURCE: &str = "soak.kube.rs/source-resource-version";
/// The field manager of the children.
const MANAGER: &str = "soak-controller";

struct Ctx {
    children: Api<ConfigMap>,
}

async fn reconcile(parent: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, kube_client::Error> {
    let name = parent.name_any();
    let generation = parent.data.as_ref().and_then(|d| d.get("generation"));
    let child = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "annotations": {SOURCE: parent.resource_version().unwrap_or_default()},
        },
        "data": {"generation": generation},
    });
    ctx.children
        .patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&child),
        )
        .await?;
    Ok(Action::await_change())
}

/// The running controller, as a subject.
pub(super) struct ControllerSubject {
    /// Straight to kube-apiserver, for the checks.
    direct_children: Api<ConfigMap>,
    reconciled: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ControllerSubject {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ControllerSubject {
    /// Starts the controller over the ConfigMaps of `namespace` through
    /// `proxied`; `direct` is used only to check its work.
    pub(super) fn start(proxied: &Client, direct: &Client, namespace: &str) -> Arc<dyn Subject> {
        let parents: Api<ConfigMap> = Api::namespaced(proxied.clone(), namespace);
        let children: Api<ConfigMap> = Api::namespaced(proxied.clone(), DERIVED_NAMESPACE);
        let parent_namespace = namespace.to_string();
        let controller = Controller::new(parents, WatcherConfig::default()).watches(
            children.clone(),
            WatcherConfig::default(),
            move |child: Arc<ConfigMap>| {
                Some(ObjectRef::new(child.name_any()).within(parent_namespace.as_str()))
            },
        );
        let reconciled = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (ok, err) = (reconciled.clone(), failed.clone());
        let task = tokio::spawn(
            controller
                .run(reconcile, default_error_policy, Arc::new(Ctx { children }))
                .for_each(move |result| {
                    match result {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => err.fetch_add(1, Ordering::Relaxed),
                    };
                    async {}
                }),
        );
        Arc::new(Self {
            direct_children: Api::namespaced(direct.clone(), DERIVED_NAMESPACE),
            reconciled,
            failed,
            task,
        })
    }
}

/// What differs between the children (`name → source resourceVersion`)
/// and the parents as listed (`namespace/name → resourceVersion`): a parent
/// without a child is lost, a child made from another resourceVersion is
/// stale; children without a parent are not counted.
fn divergence_of(sources: &View, listed: &View) -> Divergence {
    let mut divergence = Divergence::default();
    for (key, rv) in listed {
        let name = key.split_once('/').map_or(key.as_str(), |(_, n)| n);
        match sources.get(name) {
            None => divergence.lost += 1,
            Some(source) if source != rv => divergence.stale += 1,
            Some(_) => {}
        }
    }
    divergence
}

impl Subject for ControllerSubject {
    fn name(&self) -> &str {
        "controller"
    }

    fn is_cache(&self) -> bool {
        false
    }

    fn compare<'a>(&'a self, listed: &'a View) -> BoxFuture<'a, Option<Divergence>> {
        async move {
            let children: Vec<ConfigMap> = self
                .direct_children
                .list_stream(&ListParams::default())
                .try_collect()
                .await
                .ok()?;
            let sources: View = children
                .iter()
                .map(|c| {
                    let source = c
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(SOURCE))
                        .cloned()
                        .unwrap_or_default();
                    (c.name_any().to_string(), source)
                })
                .collect();
            Some(divergence_of(&sources, listed))
        }
        .boxed()
    }

    fn received(&self) -> Received {
        Received {
            changes: self.reconciled.load(Ordering::Relaxed),
            errors: self.failed.load(Ordering::Relaxed),
            ..Received::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::subjects::view;

    #[test]
    fn a_missing_child_is_lost_an_old_one_stale_an_orphan_ignored() {
        let listed = view(&[
            ("kube-soak/a", "10"),
            ("kube-soak/b", "11"),
            ("kube-soak/c", "12"),
        ]);
        let current = view(&[("a", "10"), ("b", "11"), ("c", "12"), ("orphan", "3")]);
        assert!(divergence_of(&current, &listed).is_none());
        let behind = view(&[("a", "10"), ("b", "9")]);
        assert_eq!(
            divergence_of(&behind, &listed),
            Divergence { lost: 1, stale: 1 }
        );
    }
}
