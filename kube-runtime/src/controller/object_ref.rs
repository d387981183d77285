//! Object references: the keys a controller queues and reconciles.
//!
//! A controller does not queue objects, it queues *names*: by the time a
//! worker gets to a key, the object may have changed again, so the worker
//! reads the current version from the cache. An [`ObjectRef`] is that name:
//! the kind (as the type `K` plus its dynamic type, so that it also works
//! for [`DynamicObject`] and other kinds known only at run time), the
//! namespace (`None` for cluster-scoped kinds) and the name.
//!
//! Guarantees:
//! - two refs are equal (and hash equally) exactly when kind, namespace and
//!   name are equal; nothing else about the object (uid, resourceVersion)
//!   takes part, so every change to one object maps to the same queue key;
//! - [`ObjectRef::erase`] keeps the kind as an [`ApiResource`] value, so
//!   errors can name the object without carrying the type parameter;
//! - `Display` is `Kind.version.group/name.namespace` (`.group` left out for
//!   the core group, `.namespace` for cluster-scoped objects), e.g.
//!   `ConfigMap.v1/settings.default` or `Deployment.v1.apps/web.prod`.

use std::fmt;
use std::hash::{Hash, Hasher};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube_client::{ApiResource, DynamicObject, Resource, ResourceExt};

/// The name of one object of kind `K`: what a controller queues.
pub struct ObjectRef<K: Resource> {
    /// The kind's run-time description (`()` for k8s-openapi types).
    pub dyntype: K::DynamicType,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
}

impl<K: Resource> ObjectRef<K>
where
    K::DynamicType: Default,
{
    /// A cluster-scoped ref (add a namespace with [`ObjectRef::within`]) for
    /// a kind whose dynamic type has a default, i.e. every static type.
    pub fn new(name: &str) -> Self {
        Self::new_with(name, K::DynamicType::default())
    }

    /// The ref of an object of a static kind.
    pub fn from_obj(obj: &K) -> Self {
        Self::from_obj_with(obj, K::DynamicType::default())
    }
}

impl<K: Resource> ObjectRef<K> {
    /// A cluster-scoped ref of a kind described by `dyntype`.
    pub fn new_with(name: &str, dyntype: K::DynamicType) -> Self {
        Self {
            dyntype,
            name: name.to_string(),
            namespace: None,
        }
    }

    /// The same ref, in namespace `namespace` (`None`: cluster-scoped).
    #[must_use]
    pub fn within<'a>(mut self, namespace: impl Into<Option<&'a str>>) -> Self {
        self.namespace = namespace.into().map(str::to_string);
        self
    }

    /// The ref of `obj`, whose kind is described by `dyntype`.
    pub fn from_obj_with(obj: &K, dyntype: K::DynamicType) -> Self {
        Self {
            dyntype,
            name: obj.name_any().to_string(),
            namespace: obj.namespace().map(str::to_string),
        }
    }

    /// The ref of the object `owner` points at, if `owner` is of kind `K`
    /// (same apiVersion and kind). Owner references carry no namespace: an
    /// owner is in its dependent's `namespace` or cluster-scoped, which the
    /// kind's scope decides.
    pub fn from_owner_ref(
        namespace: Option<&str>,
        owner: &OwnerReference,
        dyntype: K::DynamicType,
    ) -> Option<Self> {
        let ar = K::api_resource(&dyntype);
        if ar.api_version != owner.api_version || ar.kind != owner.kind {
            return None;
        }
        let namespace = match ar.scope {
            kube_client::Scope::Namespaced => namespace.map(str::to_string),
            kube_client::Scope::Cluster => None,
        };
        drop(ar);
        Some(Self {
            dyntype,
            name: owner.name.clone(),
            namespace,
        })
    }

    /// The kind's description.
    pub fn api_resource(&self) -> ApiResource {
        K::api_resource(&self.dyntype).into_owned()
    }

    /// The same ref with the kind kept as a value instead of a type, for
    /// errors and logs that must not depend on `K`.
    pub fn erase(&self) -> ObjectRef<DynamicObject> {
        ObjectRef {
            dyntype: self.api_resource(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

impl<K: Resource> Clone for ObjectRef<K>
where
    K::DynamicType: Clone,
{
    fn clone(&self) -> Self {
        Self {
            dyntype: self.dyntype.clone(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

impl<K: Resource> PartialEq for ObjectRef<K>
where
    K::DynamicType: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.namespace == other.namespace
            && self.dyntype == other.dyntype
    }
}

impl<K: Resource> Eq for ObjectRef<K> where K::DynamicType: Eq {}

impl<K: Resource> Hash for ObjectRef<K>
where
    K::DynamicType: Hash,
{
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.dyntype.hash(state);
        self.name.hash(state);
        self.namespace.hash(state);
    }
}

impl<K: Resource> fmt::Display for ObjectRef<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ar = K::api_resource(&self.dyntype);
        write!(f, "{}.{}", ar.kind, ar.version)?;
        if !ar.group.is_empty() {
            write!(f, ".{}", ar.group)?;
        }
        write!(f, "/{}", self.name)?;
        if let Some(ns) = &self.namespace {
            write!(f, ".{ns}")?;
        }
        Ok(())
    }
}

impl<K: Resource> fmt::Debug for ObjectRef<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ar = K::api_resource(&self.dyntype);
        f.debug_struct("ObjectRef")
            .field("kind", &ar.kind)
            .field("api_version", &ar.api_version)
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::HashSet;

    #[test]
    fn equality_and_hash_are_kind_namespace_and_name() {
        let a = ObjectRef::<ConfigMap>::new("x").within("ns");
        let mut cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some("x".into()),
                namespace: Some("ns".into()),
                resource_version: Some("7".into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        };
        assert_eq!(a, ObjectRef::from_obj(&cm));
        cm.metadata.resource_version = Some("8".into());
        let set: HashSet<_> = [a.clone(), ObjectRef::from_obj(&cm)].into();
        assert_eq!(set.len(), 1, "a new version is the same key");
        assert_ne!(a, ObjectRef::<ConfigMap>::new("x").within("other"));
        assert_ne!(a, ObjectRef::<ConfigMap>::new("x"));

        let ar = ApiResource::of::<ConfigMap>();
        let d1 = ObjectRef::<DynamicObject>::new_with("x", ar.clone()).within("ns");
        let d2 =
            ObjectRef::<DynamicObject>::new_with("x", ApiResource::of::<Deployment>()).within("ns");
        assert_ne!(d1, d2, "dynamic refs of different kinds differ");
        assert_eq!(a.erase(), d1);
    }

    #[test]
    fn display_names_kind_version_group_name_namespace() {
        assert_eq!(
            ObjectRef::<ConfigMap>::new("settings")
                .within("default")
                .to_string(),
            "ConfigMap.v1/settings.default"
        );
        assert_eq!(
            ObjectRef::<Deployment>::new("web")
                .within("prod")
                .to_string(),
            "Deployment.v1.apps/web.prod"
        );
        assert_eq!(
            ObjectRef::<Namespace>::new("kube-system").to_string(),
            "Namespace.v1/kube-system"
        );
        let erased = ObjectRef::<Deployment>::new("web").within("prod").erase();
        assert_eq!(erased.to_string(), "Deployment.v1.apps/web.prod");
    }

    #[test]
    fn owner_refs_resolve_only_for_their_kind() {
        let owner = OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "web".into(),
            uid: "u".into(),
            ..OwnerReference::default()
        };
        let r = ObjectRef::<Deployment>::from_owner_ref(Some("prod"), &owner, ()).unwrap();
        assert_eq!(r, ObjectRef::new("web").within("prod"));
        assert!(ObjectRef::<ConfigMap>::from_owner_ref(Some("prod"), &owner, ()).is_none());
        let ns_owner = OwnerReference {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            name: "prod".into(),
            uid: "u".into(),
            ..OwnerReference::default()
        };
        let r = ObjectRef::<Namespace>::from_owner_ref(Some("prod"), &ns_owner, ()).unwrap();
        assert_eq!(r.namespace, None, "cluster-scoped owners have no namespace");
    }
}
