//! Generic object shapes for kinds without a dedicated Rust type.
//!
//! - [`Object<Spec, Status>`]: metadata + typed spec + optional status, the
//!   shape of most kinds (`Object<PodSpec, PodStatus>` is a Pod);
//! - [`DynamicObject`]: metadata + any JSON, for kinds found at run time;
//! - [`PartialObjectMetadata`]: metadata only, for large caches that need
//!   names, labels and owners but not bodies.
//!
//! All three take their [`ApiResource`] at run time; `apiVersion` and `kind`
//! are kept as they came from (or go to) the server.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, ObjectMeta};
use serde::{Deserialize, Serialize};

use crate::resource::{ApiResource, Resource};

/// `Resource` for a type with a `metadata` field whose kind is given at run
/// time as an [`ApiResource`].
macro_rules! dynamic_resource {
    (impl<$($g:ident),*> for $t:ty) => {
        impl<$($g),*> Resource for $t {
            type DynamicType = ApiResource;
            fn api_resource(dt: &ApiResource) -> Cow<'_, ApiResource> {
                Cow::Borrowed(dt)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

/// `apiVersion` and `kind`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeMeta {
    /// `group/version`.
    #[serde(default)]
    pub api_version: String,
    /// The kind.
    #[serde(default)]
    pub kind: String,
}

impl TypeMeta {
    /// The `TypeMeta` of objects of `ar`.
    pub fn of(ar: &ApiResource) -> Self {
        Self {
            api_version: ar.api_version.clone(),
            kind: ar.kind.clone(),
        }
    }
}

/// An object of some kind with a typed spec and status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Object<Spec, Status> {
    /// `apiVersion` and `kind`.
    #[serde(flatten, default)]
    pub types: Option<TypeMeta>,
    /// Standard metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the user wants.
    pub spec: Spec,
    /// What the system observed; absent until a controller writes it.
    #[serde(default = "Option::default", skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

impl<Spec, Status> Object<Spec, Status> {
    /// A new object of kind `ar` named `name`.
    pub fn new(name: &str, ar: &ApiResource, spec: Spec) -> Self {
        Self {
            types: Some(TypeMeta::of(ar)),
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }
}

dynamic_resource!(impl<Spec, Status> for Object<Spec, Status>);

/// An object of a kind known only at run time: metadata plus raw JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynamicObject {
    /// `apiVersion` and `kind`.
    #[serde(flatten, default)]
    pub types: Option<TypeMeta>,
    /// Standard metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Every other top-level field (`spec`, `status`, `data`, …).
    #[serde(flatten)]
    pub data: serde_json::Value,
}

impl DynamicObject {
    /// A new, empty object of kind `ar` named `name`.
    pub fn new(name: &str, ar: &ApiResource) -> Self {
        Self {
            types: Some(TypeMeta::of(ar)),
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: serde_json::Value::Object(Default::default()),
        }
    }

    /// Sets the other fields (must be a JSON object) and returns the object.
    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }
}

dynamic_resource!(impl<> for DynamicObject);

/// Only the metadata of an object (`meta.k8s.io/v1` `PartialObjectMetadata`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartialObjectMetadata {
    /// `meta.k8s.io/v1`, `PartialObjectMetadata`.
    #[serde(flatten, default)]
    pub types: Option<TypeMeta>,
    /// Standard metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
}

dynamic_resource!(impl<> for PartialObjectMetadata);

/// A page of a list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(deserialize = "K: Deserialize<'de>", serialize = "K: Serialize"))]
pub struct ObjectList<K> {
    /// `resourceVersion` and `continue` of the list.
    #[serde(default)]
    pub metadata: ListMeta,
    /// The objects; `null` from the server reads as empty.
    #[serde(default = "Vec::new", deserialize_with = "null_as_empty")]
    pub items: Vec<K>,
}

fn null_as_empty<'de, D, K>(d: D) -> Result<Vec<K>, D::Error>
where
    D: serde::Deserializer<'de>,
    K: Deserialize<'de>,
{
    Ok(Option::<Vec<K>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Scope;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};

    #[test]
    fn object_reads_a_pod() {
        let pod: Object<PodSpec, PodStatus> = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "n"},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running"}
        }))
        .unwrap();
        assert_eq!(pod.types.as_ref().unwrap().kind, "Pod");
        assert_eq!(pod.spec.containers[0].name, "c");
        assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Running"));
    }

    #[test]
    fn dynamic_object_round_trips_unknown_fields() {
        let ar = ApiResource::new("example.com", "v1", "Foo", "foos", Scope::Namespaced);
        let obj = DynamicObject::new("x", &ar).data(serde_json::json!({"spec": {"size": 3}}));
        let json = serde_json::to_value(&obj).unwrap();
        assert_eq!(json["apiVersion"], "example.com/v1");
        assert_eq!(json["spec"]["size"], 3);
        let back: DynamicObject = serde_json::from_value(json).unwrap();
        assert_eq!(back.data["spec"]["size"], 3);
        assert_eq!(back.metadata.name.as_deref(), Some("x"));
    }

    #[test]
    fn null_items_read_as_empty() {
        let list: ObjectList<DynamicObject> =
            serde_json::from_str(r#"{"metadata":{"resourceVersion":"5"},"items":null}"#).unwrap();
        assert!(list.items.is_empty());
        assert_eq!(list.metadata.resource_version.as_deref(), Some("5"));
    }
}
