//! Predicates: skip changes a controller does not care about.
//!
//! Every write to an object reaches the controller's watch, including ones
//! that cannot change what a reconcile does — most often status updates
//! (which the controller itself may be writing). A predicate maps an
//! object to a value (a hash) of the parts that matter; a change whose value
//! equals the one seen last for that object is dropped before it is
//! queued (kube-rs's `predicate_filter`, controller-runtime's
//! `GenerationChangedPredicate`).
//!
//! Rules, per object:
//! - the first time an object is seen, it passes;
//! - a value of `None` ("cannot tell", e.g. a kind without
//!   `metadata.generation`) always passes;
//! - a recreated object (new uid) passes, whatever its value;
//! - deletions always pass (and the object is forgotten);
//! - after a desync every object is reconciled anyway (see
//!   [`crate::informer::subscription`]).
//!
//! Use one with [`TriggerConfig::predicate`](super::TriggerConfig::predicate)
//! on the controller's own kind or an owned kind.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use kube_client::{Resource, ResourceExt};

use crate::store::object_key;

/// A predicate: the value of the parts of an object that matter.
pub type Predicate<K> = Arc<dyn Fn(&K) -> Option<u64> + Send + Sync>;

/// `metadata.generation`, which the API server bumps on spec changes only
/// (for kinds with a status subresource, and custom resources). `None` for
/// kinds that have none, e.g. ConfigMaps: every change passes.
pub fn generation<K: Resource>(obj: &K) -> Option<u64> {
    obj.meta().generation.map(|g| g as u64)
}

/// The labels.
pub fn labels<K: Resource>(obj: &K) -> Option<u64> {
    Some(hash(&obj.meta().labels))
}

/// The annotations.
pub fn annotations<K: Resource>(obj: &K) -> Option<u64> {
    Some(hash(&obj.meta().annotations))
}

/// The finalizers (whether the object is being deleted shows in them too,
/// since deletion is blocked on them).
pub fn finalizers<K: Resource>(obj: &K) -> Option<u64> {
    Some(hash(&(
        &obj.meta().finalizers,
        obj.meta().deletion_timestamp.is_some(),
    )))
}

/// The generation and the labels: a change to either passes.
pub fn generation_or_labels<K: Resource>(obj: &K) -> Option<u64> {
    generation(obj).map(|g| hash(&(g, labels(obj))))
}

fn hash(value: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// What a predicate saw last, per object.
pub(crate) struct PredicateFilter<K> {
    predicate: Predicate<K>,
    /// object key → (uid, value)
    last: HashMap<String, (String, u64)>,
}

impl<K: Resource> PredicateFilter<K> {
    pub(crate) fn new(predicate: Predicate<K>) -> Self {
        Self {
            predicate,
            last: HashMap::new(),
        }
    }

    /// Whether a change to `obj` (added or modified) passes.
    pub(crate) fn passes(&mut self, obj: &K) -> bool {
        let Some(value) = (self.predicate)(obj) else {
            return true;
        };
        let uid = obj.uid().unwrap_or_default().to_string();
        let entry = (uid, value);
        match self.last.insert(object_key(obj), entry.clone()) {
            Some(previous) => previous != entry,
            None => true,
        }
    }

    /// `obj` was deleted.
    pub(crate) fn forget(&mut self, obj: &K) {
        self.last.remove(&object_key(obj));
    }

    /// Forget everything (after a desync).
    pub(crate) fn reset(&mut self) {
        self.last.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn deploy(uid: &str, generation: i64, replicas_status: i32) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("d".into()),
                namespace: Some("ns".into()),
                uid: Some(uid.into()),
                generation: Some(generation),
                ..ObjectMeta::default()
            },
            status: Some(k8s_openapi::api::apps::v1::DeploymentStatus {
                replicas: Some(replicas_status),
                ..Default::default()
            }),
            ..Deployment::default()
        }
    }

    #[test]
    fn generation_skips_status_only_changes() {
        let mut f = PredicateFilter::new(Arc::new(generation::<Deployment>));
        assert!(f.passes(&deploy("u1", 1, 0)), "first sight");
        assert!(!f.passes(&deploy("u1", 1, 3)), "status only");
        assert!(f.passes(&deploy("u1", 2, 3)), "spec change");
        assert!(f.passes(&deploy("u2", 2, 3)), "recreated: new uid");
        f.forget(&deploy("u2", 2, 3));
        assert!(f.passes(&deploy("u2", 2, 3)), "forgotten after deletion");
        f.reset();
        assert!(f.passes(&deploy("u2", 2, 3)), "forgotten after a desync");

        let mut no_generation = deploy("u3", 1, 0);
        no_generation.metadata.generation = None;
        assert!(f.passes(&no_generation));
        assert!(f.passes(&no_generation), "None always passes");
    }

    #[test]
    fn labels_and_combinations() {
        let mut f = PredicateFilter::new(Arc::new(generation_or_labels::<Deployment>));
        let mut d = deploy("u", 1, 0);
        assert!(f.passes(&d));
        d.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
        assert!(f.passes(&d), "label change");
        d.status = None;
        assert!(!f.passes(&d));
    }
}
