//! Triggers: what makes a controller reconcile an object.
//!
//! Each trigger is a [`Subscription`] to a shared informer turned into keys
//! of the controller's kind `K`:
//!
//! - **self** (the controller's kind): an added or changed object queues
//!   itself. Deletions queue nothing — the object is gone from the cache, so
//!   there is nothing to reconcile (use a finalizer to act on deletion);
//! - **owns** (a child kind `C`): a child whose *controller* owner
//!   reference (`controller: true`) names an object of kind `K` queues that
//!   owner — when it is added, changed, or deleted (so the owner can
//!   recreate it). Other owner references are ignored, as in
//!   controller-runtime's `Owns`;
//! - **watches** (any kind `C`): the user's mapper names the objects to
//!   queue, for additions, changes and deletions alike;
//! - **reconcile all**: an external stream (e.g. a timer, or a change to
//!   something outside Kubernetes) queues every cached object of kind `K`.
//!
//! A subscription that fell behind and was desynced (see
//! [`crate::informer::subscription`]) queues every cached object of kind
//! `K`: the keys it lost are unknown, but the cache is right, and the work
//! queue folds duplicates. A watch error is reported on the controller's
//! stream as [`Error::QueueError`](super::Error::QueueError); the informer
//! retries by itself.
//!
//! An optional [predicate](super::predicates) on a trigger drops changes
//! whose predicate value did not move.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use kube_client::{Resource, ResourceExt};

use super::ObjectRef;
use super::predicates::{Predicate, PredicateFilter};
use crate::informer::{Informer, InformerConfig, Subscription, Transform};
use crate::queue::WatchEvent;
use crate::watcher::WatcherConfig;

/// How one trigger watches (an informer's settings: selectors, transform)
/// and which changes it lets through (an optional predicate).
///
/// Every `Controller` method that takes one also takes a plain
/// [`WatcherConfig`] or [`InformerConfig`], so `Controller::new(api,
/// WatcherConfig::default())` reads as in kube-rs.
pub struct TriggerConfig<K> {
    /// The shared informer's settings; its selectors and transform decide
    /// which informer is used (see [`crate::informer`]).
    pub informer: InformerConfig<K>,
    /// Changes whose predicate value did not move are dropped.
    pub predicate: Option<Predicate<K>>,
}

impl<K> Clone for TriggerConfig<K> {
    fn clone(&self) -> Self {
        Self {
            informer: self.informer.clone(),
            predicate: self.predicate.clone(),
        }
    }
}

impl<K> Debug for TriggerConfig<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerConfig")
            .field("informer", &self.informer)
            .field("predicate", &self.predicate.as_ref().map(|_| "Fn"))
            .finish()
    }
}

impl<K> Default for TriggerConfig<K> {
    fn default() -> Self {
        Self::from(InformerConfig::default())
    }
}

impl<K> From<WatcherConfig> for TriggerConfig<K> {
    fn from(watcher: WatcherConfig) -> Self {
        Self::from(InformerConfig::new(watcher))
    }
}

impl<K> From<InformerConfig<K>> for TriggerConfig<K> {
    fn from(informer: InformerConfig<K>) -> Self {
        Self {
            informer,
            predicate: None,
        }
    }
}

impl<K> TriggerConfig<K> {
    /// These watcher settings, no transform, no predicate.
    pub fn new(watcher: WatcherConfig) -> Self {
        Self::from(watcher)
    }

    /// Drops changes whose `predicate` value did not move, e.g.
    /// [`predicates::generation`](super::predicates::generation).
    #[must_use]
    pub fn predicate(
        mut self,
        predicate: impl Fn(&K) -> Option<u64> + Send + Sync + 'static,
    ) -> Self {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// Transforms objects before they are cached (see [`Transform`]).
    #[must_use]
    pub fn transform(mut self, transform: Transform<K>) -> Self {
        self.informer.transform = Some(transform);
        self
    }

    /// Caches objects with their `metadata.managedFields`, which every
    /// cache drops by default (see [`crate::store`]); the reconcile then
    /// sees them in the objects it reads from the cache.
    #[must_use]
    pub fn keep_managed_fields(mut self) -> Self {
        self.informer.keep_managed_fields = true;
        self
    }

    /// Caches objects encoded and decodes them on every read (see
    /// [compact stores](crate::store#compact-stores)): for a kind with
    /// many objects that the reconcile reads a few at a time. Triggers
    /// still see the objects as they arrived.
    #[must_use]
    pub fn compact(mut self) -> Self {
        self.informer.compact = true;
        self
    }
}

/// What a trigger asks of the controller.
pub(crate) enum Trigger<K: Resource> {
    /// Queue this object.
    Reconcile(ObjectRef<K>),
    /// Queue every cached object of the controller's kind.
    ReconcileAll,
    /// A watch failed (it retries by itself).
    WatchFailed(Arc<kube_client::Error>),
}

/// Turns a subscription into triggers: `map` names the objects to queue for
/// a change (`deleted` tells whether the object was deleted).
pub(crate) fn from_subscription<C, K, M, I>(
    subscription: Subscription<C>,
    predicate: Option<Predicate<C>>,
    map: M,
) -> BoxStream<'static, Trigger<K>>
where
    C: Resource + Send + Sync + 'static,
    K: Resource + Send + 'static,
    K::DynamicType: Send,
    M: Fn(&Arc<C>, bool) -> I + Send + 'static,
    I: IntoIterator<Item = ObjectRef<K>>,
{
    struct State<C, K: Resource, M> {
        subscription: Subscription<C>,
        filter: Option<PredicateFilter<C>>,
        map: M,
        pending: VecDeque<Trigger<K>>,
    }
    let state = State {
        subscription,
        filter: predicate.map(PredicateFilter::new),
        map,
        pending: VecDeque::new(),
    };
    futures::stream::unfold(state, |mut s| async move {
        while s.pending.is_empty() {
            for event in s.subscription.recv().await {
                match event {
                    WatchEvent::Added(obj) | WatchEvent::Modified(obj) => {
                        if s.filter.as_mut().is_none_or(|f| f.passes(&obj)) {
                            s.pending
                                .extend((s.map)(&obj, false).into_iter().map(Trigger::Reconcile));
                        }
                    }
                    WatchEvent::Deleted(obj) => {
                        if let Some(f) = s.filter.as_mut() {
                            f.forget(&obj);
                        }
                        s.pending
                            .extend((s.map)(&obj, true).into_iter().map(Trigger::Reconcile));
                    }
                    WatchEvent::Error(e) => s.pending.push_back(Trigger::WatchFailed(e)),
                    WatchEvent::Desynced { dropped } => {
                        tracing::warn!(
                            dropped,
                            "controller trigger fell behind; reconciling every object"
                        );
                        if let Some(f) = s.filter.as_mut() {
                            f.reset();
                        }
                        s.pending.push_back(Trigger::ReconcileAll);
                    }
                }
            }
        }
        let next = s.pending.pop_front()?;
        Some((next, s))
    })
    .boxed()
}

/// The owners of `child` of kind `K`, through its controller owner
/// reference (there is at most one).
pub(crate) fn controller_owner<K, C>(child: &C, dyntype: &K::DynamicType) -> Option<ObjectRef<K>>
where
    K: Resource,
    K::DynamicType: Clone,
    C: Resource,
{
    child
        .meta()
        .owner_references
        .iter()
        .flatten()
        .filter(|o| o.controller == Some(true))
        .find_map(|o| ObjectRef::from_owner_ref(child.namespace(), o, dyntype.clone()))
}

/// A cache the controller waits for before reconciling.
pub(crate) trait Cache: Send + Sync {
    fn is_ready(&self) -> bool;
    fn wait_until_ready(&self) -> BoxFuture<'static, ()>;
    /// What it caches and, if it is not ready, why (its last error).
    fn describe(&self) -> String;
}

impl<C: Resource + Send + Sync + 'static> Cache for Informer<C> {
    fn is_ready(&self) -> bool {
        Informer::is_ready(self)
    }

    fn wait_until_ready(&self) -> BoxFuture<'static, ()> {
        let store = self.store();
        async move { store.wait_until_ready().await }.boxed()
    }

    fn describe(&self) -> String {
        let key = self.key();
        let mut s = format!(
            "{}{}/{}",
            if key.group.is_empty() {
                String::new()
            } else {
                format!("{}/", key.group)
            },
            key.version,
            key.plural
        );
        if let Some(ns) = &key.namespace {
            s.push_str(&format!(" in {ns}"));
        }
        if let Some(l) = &key.label_selector {
            s.push_str(&format!(" labels {l}"));
        }
        if let Some(f) = &key.field_selector {
            s.push_str(&format!(" fields {f}"));
        }
        match self.last_error() {
            Some(e) => s.push_str(&format!(" (last error: {e})")),
            None => s.push_str(" (no error yet)"),
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn owned_by(owners: Vec<(&str, &str, Option<bool>)>) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("child".into()),
                namespace: Some("ns".into()),
                owner_references: Some(
                    owners
                        .into_iter()
                        .map(|(kind, name, controller)| OwnerReference {
                            api_version: if kind == "Deployment" {
                                "apps/v1"
                            } else {
                                "v1"
                            }
                            .into(),
                            kind: kind.into(),
                            name: name.into(),
                            uid: format!("uid-{name}"),
                            controller,
                            ..OwnerReference::default()
                        })
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    #[test]
    fn only_the_controller_reference_of_the_right_kind_counts() {
        let child = owned_by(vec![
            ("ConfigMap", "not-controller", None),
            ("ConfigMap", "parent", Some(true)),
        ]);
        assert_eq!(
            controller_owner::<ConfigMap, _>(&child, &()),
            Some(ObjectRef::new("parent").within("ns"))
        );
        let other_kind = owned_by(vec![("Deployment", "web", Some(true))]);
        assert_eq!(controller_owner::<ConfigMap, _>(&other_kind, &()), None);
        let no_controller = owned_by(vec![("ConfigMap", "p", Some(false))]);
        assert_eq!(controller_owner::<ConfigMap, _>(&no_controller, &()), None);
    }
}
