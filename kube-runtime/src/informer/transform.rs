//! Transforms: change each object before it is cached.
//!
//! A cache holds every object of its kind for as long as it runs, so what is
//! stored matters. Every store already drops `metadata.managedFields`
//! (server-side apply's bookkeeping, often the largest part of an object;
//! see [`crate::store`]); some controllers read only a few fields of large
//! objects and can drop more. A transform (client-go's `SetTransform`) runs
//! on every object the watcher delivers, before it is stored or handed to
//! any subscriber, so the dropped parts are never kept.
//!
//! A transform has a **name**: informers are shared by what they watch *and*
//! by the name of their transform, since two caches transformed differently
//! hold different objects. Give different functions different names.

use std::fmt::Debug;
use std::sync::Arc;

use kube_client::Resource;

/// A named function applied to each object before it is cached.
pub struct Transform<K> {
    name: Arc<str>,
    function: Arc<dyn Fn(&mut K) + Send + Sync>,
}

impl<K> Clone for Transform<K> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            function: self.function.clone(),
        }
    }
}

impl<K> Debug for Transform<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Transform").field(&self.name).finish()
    }
}

impl<K> Transform<K> {
    /// A transform called `name` (part of the informer's identity; see the
    /// module docs) that applies `function` to each object in place.
    pub fn new(name: impl Into<String>, function: impl Fn(&mut K) + Send + Sync + 'static) -> Self {
        Self {
            name: name.into().into(),
            function: Arc::new(function),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Applies it to one object.
    pub fn apply(&self, object: &mut K) {
        (self.function)(object)
    }

    /// This transform, then `next` (named `"<self>+<next>"`).
    pub fn then(self, next: Transform<K>) -> Self
    where
        K: 'static,
    {
        let name = format!("{}+{}", self.name, next.name);
        Self::new(name, move |obj: &mut K| {
            self.apply(obj);
            next.apply(obj);
        })
    }
}

/// Drops `metadata.managedFields` (named `"strip-managed-fields"`). Every
/// store does that already unless told to keep them
/// ([`InformerConfig::keep_managed_fields`](super::InformerConfig::keep_managed_fields));
/// this transform remains for code written before that default.
pub fn strip_managed_fields<K: Resource>() -> Transform<K> {
    Transform::new("strip-managed-fields", |obj: &mut K| {
        obj.meta_mut().managed_fields = None;
    })
}

/// Drops the `kubectl.kubernetes.io/last-applied-configuration` annotation,
/// a full copy of the object that client-side `kubectl apply` leaves behind
/// (named `"strip-last-applied"`).
pub fn strip_last_applied<K: Resource>() -> Transform<K> {
    Transform::new("strip-last-applied", |obj: &mut K| {
        if let Some(annotations) = obj.meta_mut().annotations.as_mut() {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};

    #[test]
    fn stripping_keeps_everything_else() {
        let mut cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some("a".into()),
                managed_fields: Some(vec![ManagedFieldsEntry::default()]),
                annotations: Some(
                    [
                        (
                            "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                            "{}".to_string(),
                        ),
                        ("keep".to_string(), "me".to_string()),
                    ]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            data: Some([("k".to_string(), "v".to_string())].into()),
            ..ConfigMap::default()
        };
        let both = strip_managed_fields::<ConfigMap>().then(strip_last_applied());
        assert_eq!(both.name(), "strip-managed-fields+strip-last-applied");
        both.apply(&mut cm);
        assert!(cm.metadata.managed_fields.is_none());
        assert_eq!(
            cm.metadata.annotations,
            Some([("keep".to_string(), "me".to_string())].into())
        );
        assert_eq!(cm.metadata.name.as_deref(), Some("a"));
        assert_eq!(cm.data.unwrap()["k"], "v");
    }
}
