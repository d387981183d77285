//! What the client needs to know about a kind to build its URLs.
//!
//! Every kind is described by an [`ApiResource`]: group, version, kind,
//! plural and scope. A [`Resource`] is a Rust type that can tell its
//! `ApiResource` and expose its `ObjectMeta`. Static types know theirs at
//! compile time (`DynamicType = ()`): every k8s-openapi type gets this for
//! free. Types whose kind is only known at run time ([`crate::DynamicObject`],
//! [`crate::Object`], [`crate::PartialObjectMetadata`]) carry an
//! `ApiResource` as their `DynamicType`, supplied when the `Api` is made.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::error::Error;
use crate::path::segment;

/// Whether objects of a kind live in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Namespaced, like Pods and ConfigMaps.
    Namespaced,
    /// Cluster-wide, like Namespaces and Nodes.
    Cluster,
}

/// Everything needed to address one kind on the API server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiResource {
    /// API group, empty for the core group.
    pub group: String,
    /// Version within the group, e.g. `v1`.
    pub version: String,
    /// `group/version`, or `version` for the core group.
    pub api_version: String,
    /// Kind, e.g. `ConfigMap`.
    pub kind: String,
    /// Plural resource name in URLs, e.g. `configmaps`.
    pub plural: String,
    /// Namespaced or cluster-scoped.
    pub scope: Scope,
}

impl ApiResource {
    /// The `ApiResource` of a static type, e.g. `ApiResource::of::<Pod>()`.
    pub fn of<K: Resource<DynamicType = ()>>() -> Self {
        K::api_resource(&()).into_owned()
    }

    /// Builds one from its parts; `api_version` is derived.
    pub fn new(group: &str, version: &str, kind: &str, plural: &str, scope: Scope) -> Self {
        let api_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Self {
            group: group.into(),
            version: version.into(),
            api_version,
            kind: kind.into(),
            plural: plural.into(),
            scope,
        }
    }

    /// The collection URL path: `/api/v1/namespaces/NS/pods` or `/apis/G/V/PLURAL`.
    /// `namespace` is ignored for cluster-scoped kinds. Every part (group,
    /// version, namespace, plural) passes [`crate::path::segment`]: a value
    /// that cannot be a path segment is an [`Error::InvalidPathSegment`].
    pub fn collection_path(&self, namespace: Option<&str>) -> Result<String, Error> {
        let prefix = crate::path::group_version_path(&self.group, &self.version)?;
        let plural = segment("plural", &self.plural)?;
        match (self.scope, namespace) {
            (Scope::Namespaced, Some(ns)) => Ok(format!(
                "{prefix}/namespaces/{}/{plural}",
                segment("namespace", ns)?
            )),
            _ => Ok(format!("{prefix}/{plural}")),
        }
    }
}

/// A Rust type for objects of a Kubernetes kind.
pub trait Resource: Sized {
    /// What it takes at run time to know the kind: `()` for static types,
    /// [`ApiResource`] for dynamic ones.
    type DynamicType: Send + Sync + 'static;

    /// The kind's group, version, kind, plural and scope.
    fn api_resource(dt: &Self::DynamicType) -> Cow<'_, ApiResource>;

    /// The object's metadata.
    fn meta(&self) -> &ObjectMeta;

    /// The object's metadata, mutably.
    fn meta_mut(&mut self) -> &mut ObjectMeta;
}

/// Scope of a k8s-openapi type, as a value.
pub trait ScopeOf {
    /// The scope.
    const SCOPE: Scope;
}
impl ScopeOf for k8s_openapi::NamespaceResourceScope {
    const SCOPE: Scope = Scope::Namespaced;
}
impl ScopeOf for k8s_openapi::ClusterResourceScope {
    const SCOPE: Scope = Scope::Cluster;
}
impl ScopeOf for k8s_openapi::SubResourceScope {
    const SCOPE: Scope = Scope::Namespaced;
}

impl<K> Resource for K
where
    K: k8s_openapi::Metadata<Ty = ObjectMeta>,
    K::Scope: ScopeOf,
{
    type DynamicType = ();

    fn api_resource(_: &()) -> Cow<'_, ApiResource> {
        Cow::Owned(ApiResource {
            group: K::GROUP.into(),
            version: K::VERSION.into(),
            api_version: K::API_VERSION.into(),
            kind: K::KIND.into(),
            plural: K::URL_PATH_SEGMENT.into(),
            scope: <K::Scope as ScopeOf>::SCOPE,
        })
    }

    fn meta(&self) -> &ObjectMeta {
        self.metadata()
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.metadata_mut()
    }
}

/// Shorthand accessors on any [`Resource`].
pub trait ResourceExt: Resource {
    /// `metadata.name`, or `""`.
    fn name_any(&self) -> &str {
        self.meta().name.as_deref().unwrap_or_default()
    }
    /// `metadata.namespace`.
    fn namespace(&self) -> Option<&str> {
        self.meta().namespace.as_deref()
    }
    /// `metadata.resourceVersion`.
    fn resource_version(&self) -> Option<&str> {
        self.meta().resource_version.as_deref()
    }
    /// `metadata.uid`.
    fn uid(&self) -> Option<&str> {
        self.meta().uid.as_deref()
    }
}
impl<K: Resource> ResourceExt for K {}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};

    #[test]
    fn static_types_know_their_urls() {
        let cm = ApiResource::of::<ConfigMap>();
        assert_eq!(
            cm.collection_path(Some("a")).unwrap(),
            "/api/v1/namespaces/a/configmaps"
        );
        assert_eq!(cm.collection_path(None).unwrap(), "/api/v1/configmaps");
        let deploy = ApiResource::of::<Deployment>();
        assert_eq!(deploy.api_version, "apps/v1");
        assert_eq!(
            deploy.collection_path(Some("b")).unwrap(),
            "/apis/apps/v1/namespaces/b/deployments"
        );
        let ns = ApiResource::of::<Namespace>();
        assert_eq!(ns.scope, Scope::Cluster);
        assert_eq!(
            ns.collection_path(Some("..")).unwrap(),
            "/api/v1/namespaces",
            "a cluster-scoped kind ignores the namespace"
        );
        for (ns, what) in [
            ("..", "namespace"),
            (".", "namespace"),
            ("a/b", "namespace"),
        ] {
            match cm.collection_path(Some(ns)) {
                Err(Error::InvalidPathSegment { what: w, .. }) => assert_eq!(w, what),
                other => panic!("{ns}: {other:?}"),
            }
        }
        let mut evil = ApiResource::of::<ConfigMap>();
        evil.plural = "..".into();
        assert!(evil.collection_path(None).is_err());
        evil = ApiResource::new("..", "v1", "X", "xs", Scope::Cluster);
        assert!(evil.collection_path(None).is_err());
    }
}
