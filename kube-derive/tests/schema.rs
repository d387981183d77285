//! What `#[derive(CustomResource)]` generates, without a cluster: the
//! wrapper's serde and Resource behaviour and the structural schema rules
//! (no `$ref`, `nullable` for `Option` but enums, unit enums as string enums,
//! int-or-string, preserve-unknown-fields, hoisted tagged enums, CEL rules).
//! `tests/crd.rs` proves the same schemas are accepted by a real API server.

mod common;

use common::shapes::Shapes;
use kube_client::{ApiResource, ResourceExt, Scope};
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A small spec.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "schema.test",
    version = "v1",
    kind = "Small",
    derive = "PartialEq"
)]
pub struct SmallSpec {
    /// How many.
    pub size: i32,
}

fn schema<T>(crd: &T) -> Value
where
    T: Serialize,
{
    let crd = serde_json::to_value(crd).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Every `(path, value)` of a JSON tree whose key is `key`.
fn find_keys(value: &Value, key: &str, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == key {
                    out.push(format!("{path}/{k}"));
                }
                find_keys(v, key, &format!("{path}/{k}"), out);
            }
        }
        Value::Array(all) => {
            for (i, v) in all.iter().enumerate() {
                find_keys(v, key, &format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn wrapper_serializes_type_meta_and_checks_it() {
    let small = Small::new("a", SmallSpec { size: 3 });
    assert_eq!(
        serde_json::to_value(&small).unwrap(),
        json!({"apiVersion": "schema.test/v1", "kind": "Small", "metadata": {"name": "a"}, "spec": {"size": 3}})
    );
    let back: Small = serde_json::from_value(serde_json::to_value(&small).unwrap()).unwrap();
    assert_eq!(back, small);
    // Without apiVersion and kind: accepted.
    let bare: Small = serde_json::from_value(json!({"spec": {"size": 1}})).unwrap();
    assert_eq!(bare.spec.size, 1);
    assert_eq!(bare.metadata, Default::default());
    // Another kind or version: refused, naming what was expected.
    let err = serde_json::from_value::<Small>(json!({"kind": "Big", "spec": {"size": 1}}));
    assert_eq!(
        err.unwrap_err().to_string(),
        "kind is `Big`, expected `Small` for Small"
    );
    let err = serde_json::from_value::<Small>(
        json!({"apiVersion": "schema.test/v2", "kind": "Small", "spec": {"size": 1}}),
    );
    assert_eq!(
        err.unwrap_err().to_string(),
        "apiVersion is `schema.test/v2`, expected `schema.test/v1` for Small"
    );

    let mut shapes: Shapes = serde_json::from_value(json!({
        "apiVersion": "schema.test/v1", "kind": "Shapes", "metadata": {"name": "s", "namespace": "n"},
        "spec": {
            "replicas": 1, "inner": {"name": "i"}, "mode": "Fast", "source": {"image": "x"},
            "port": 80, "target": "http", "tags": [], "labels": {}, "config": {}, "name": "n", "pair": [1, "a"]
        },
        "status": {"seen": 4}
    }))
    .unwrap();
    assert_eq!(shapes.status.as_ref().unwrap().seen, Some(4));
    assert_eq!(shapes.namespace(), Some("n"));
    shapes.status = None;
    let json = serde_json::to_value(&shapes).unwrap();
    assert!(json.get("status").is_none(), "a None status is left out");
}

#[test]
fn wrapper_is_a_static_resource() {
    let small = ApiResource::of::<Small>();
    assert_eq!(
        small,
        ApiResource::new("schema.test", "v1", "Small", "smalls", Scope::Cluster)
    );
    let shapes = ApiResource::of::<Shapes>();
    assert_eq!(shapes.scope, Scope::Namespaced);
    assert_eq!(
        shapes.collection_path(Some("ns")).unwrap(),
        "/apis/schema.test/v1/namespaces/ns/shapes"
    );
    assert_eq!(
        <Shapes as k8s_openapi::ListableResource>::LIST_KIND,
        "ShapesList"
    );
    assert_eq!(Shapes::CRD_NAME, "shapes.schema.test");
}

#[test]
fn top_level_schema_describes_spec_and_status_only() {
    let top = schema(&Small::crd());
    assert_eq!(
        top,
        json!({
            "type": "object",
            "required": ["spec"],
            "properties": {"spec": {
                "type": "object",
                "description": "A small spec.",
                "required": ["size"],
                "properties": {"size": {"type": "integer", "format": "int32", "description": "How many."}}
            }}
        })
    );
    let crd = Small::crd();
    assert_eq!(crd.spec.versions[0].subresources, None);
    assert_eq!(crd.spec.scope, "Cluster");
}

#[test]
fn no_refs_definitions_titles_or_schema_keywords() {
    let top = schema(&Shapes::crd());
    for key in [
        "$ref",
        "$defs",
        "definitions",
        "components",
        "$schema",
        "title",
        "anyOf",
        "allOf",
        "uniqueItems",
        "const",
    ] {
        let mut found = Vec::new();
        find_keys(&top, key, "", &mut found);
        assert!(found.is_empty(), "{key} at {found:?}");
    }
    // A recursive type is inlined once, then accepts anything where it recurs.
    let tree = &top["properties"]["spec"]["properties"]["tree"];
    assert_eq!(tree["nullable"], true);
    assert_eq!(
        tree["properties"]["children"]["items"]["properties"]["children"]["items"],
        json!({"x-kubernetes-preserve-unknown-fields": true})
    );
}

#[test]
fn options_are_nullable() {
    let top = schema(&Shapes::crd());
    let spec = &top["properties"]["spec"];
    assert_eq!(spec["properties"]["optInner"]["nullable"], true);
    assert_eq!(spec["properties"]["optInner"]["type"], "object");
    assert_eq!(
        spec["properties"]["inner"]["properties"]["note"],
        json!({"type": "string", "nullable": true})
    );
    assert_eq!(spec["properties"]["inner"].get("nullable"), None);
    let required = spec["required"].as_array().unwrap();
    assert!(required.contains(&json!("inner")));
    assert!(!required.contains(&json!("optInner")));
    assert_eq!(
        top["properties"]["status"]["properties"]["seen"]["nullable"],
        true
    );
}

#[test]
fn unit_enums_are_string_enums() {
    let top = schema(&Shapes::crd());
    let props = &top["properties"]["spec"]["properties"];
    assert_eq!(
        props["mode"],
        json!({"type": "string", "enum": ["Fast", "Slow"], "description": "Modes."})
    );
    // Not nullable: the API server would fail a null against the enum, but
    // it drops nulls of non-nullable fields first, so `None` round-trips.
    assert_eq!(
        props["optMode"],
        json!({"type": "string", "enum": ["Fast", "Slow"], "description": "Modes."})
    );
    assert_eq!(
        props["plain"],
        json!({"type": "string", "enum": ["A", "B"]})
    );
}

#[test]
fn int_or_string() {
    let top = schema(&Shapes::crd());
    let props = &top["properties"]["spec"]["properties"];
    assert_eq!(props["port"], json!({"x-kubernetes-int-or-string": true}));
    assert_eq!(props["target"], json!({"x-kubernetes-int-or-string": true}));
}

#[test]
fn preserve_unknown_fields() {
    let top = schema(&Shapes::crd());
    let props = &top["properties"]["spec"]["properties"];
    assert_eq!(
        props["any"],
        json!({"x-kubernetes-preserve-unknown-fields": true})
    );
    assert_eq!(
        props["config"],
        json!({
            "type": "object",
            "additionalProperties": {"x-kubernetes-preserve-unknown-fields": true},
            "x-kubernetes-preserve-unknown-fields": true
        })
    );
    assert_eq!(
        props["labels"],
        json!({"type": "object", "additionalProperties": {"type": "string"}})
    );
    // An enum mixing unit and data variants cannot be structural: any value.
    assert_eq!(props["mixed"]["x-kubernetes-preserve-unknown-fields"], true);
    assert_eq!(props["mixed"].get("oneOf"), None);
    // A tuple of mixed types: any items, but two of them.
    assert_eq!(
        props["pair"],
        json!({"type": "array", "items": {"x-kubernetes-preserve-unknown-fields": true}, "minItems": 2, "maxItems": 2})
    );
}

#[test]
fn tagged_enums_are_hoisted_objects() {
    let top = schema(&Shapes::crd());
    let props = &top["properties"]["spec"]["properties"];
    assert_eq!(
        props["backend"],
        json!({
            "type": "object",
            "nullable": true,
            "description": "Internally tagged.",
            "properties": {
                "type": {"type": "string", "enum": ["S3", "Disk"]},
                "bucket": {"type": "string"},
                "path": {"type": "string"},
                "size": {"type": "integer", "format": "uint32", "minimum": 0.0}
            },
            "required": ["type"],
            "oneOf": [{"required": ["bucket"]}, {"required": ["path", "size"]}]
        })
    );
    assert_eq!(
        props["source"],
        json!({
            "type": "object",
            "description": "Externally tagged, data variants only.",
            "properties": {
                "git": {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
                "image": {"type": "string"}
            },
            "oneOf": [{"required": ["git"]}, {"required": ["image"]}]
        })
    );
}

#[test]
fn sets_and_cel_rules() {
    let top = schema(&Shapes::crd());
    let spec = &top["properties"]["spec"];
    assert_eq!(
        spec["properties"]["tags"],
        json!({"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"})
    );
    assert_eq!(
        spec["x-kubernetes-validations"],
        json!([{"rule": "self.replicas >= 0"}])
    );
    assert_eq!(
        spec["properties"]["name"]["x-kubernetes-validations"],
        json!([{"rule": "self.size() > 0", "message": "empty"}])
    );
}

#[test]
fn crd_metadata() {
    let crd = Shapes::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("shapes.schema.test"));
    assert_eq!(crd.spec.names.plural, "shapes");
    assert_eq!(crd.spec.names.list_kind.as_deref(), Some("ShapesList"));
    let version = &crd.spec.versions[0];
    assert!(version.served && version.storage);
    assert!(version.subresources.as_ref().unwrap().status.is_some());
}

/// One kind at two versions, as an operator keeps them.
mod v1 {
    use super::*;

    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
    #[kube(group = "schema.test", version = "v1", kind = "Gizmo", namespaced)]
    pub struct GizmoSpec {
        pub name: String,
    }
}

mod v2 {
    use super::*;

    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
    #[kube(group = "schema.test", version = "v2", kind = "Gizmo", namespaced)]
    pub struct GizmoSpec {
        pub name: String,
        pub color: Option<String>,
    }
}

/// Not the same CRD: another plural (so another name) and scope.
mod v3 {
    use super::*;

    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
    #[kube(
        group = "schema.test",
        version = "v3",
        kind = "Gizmo",
        plural = "gizmoz"
    )]
    pub struct GizmoSpec {
        pub name: String,
    }
}

#[test]
fn merge_crds_keeps_one_storage_version() {
    use kube_client::crd::merge_crds;
    let merged = merge_crds(vec![v1::Gizmo::crd(), v2::Gizmo::crd()], "v2").unwrap();
    let versions: Vec<_> = merged
        .spec
        .versions
        .iter()
        .map(|v| (v.name.as_str(), v.served, v.storage))
        .collect();
    assert_eq!(versions, [("v1", true, false), ("v2", true, true)]);
    let merged = serde_json::to_value(&merged).unwrap();
    let v2_color = &merged["spec"]["versions"][1]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ["properties"]["color"];
    assert_eq!(v2_color["type"], "string");
}

#[test]
fn merge_crds_refuses_what_cannot_be_one_crd() {
    use kube_client::crd::{MergeError, merge_crds};
    assert_eq!(
        merge_crds(vec![v1::Gizmo::crd(), v1::Gizmo::crd()], "v1").unwrap_err(),
        MergeError::DuplicateVersion("v1".into())
    );
    assert_eq!(
        merge_crds(vec![v1::Gizmo::crd(), v2::Gizmo::crd()], "v3").unwrap_err(),
        MergeError::MissingStorageVersion("v3".into())
    );
    assert_eq!(merge_crds(vec![], "v1").unwrap_err(), MergeError::Empty);
    let err = merge_crds(vec![v1::Gizmo::crd(), v3::Gizmo::crd()], "v1").unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot merge CRDs with different metadata.name: `gizmos.schema.test` and `gizmoz.schema.test`"
    );
    let mut other_group = v2::Gizmo::crd();
    other_group.spec.group = "other.test".into();
    let err = merge_crds(vec![v1::Gizmo::crd(), other_group], "v1").unwrap_err();
    assert!(
        matches!(
            err,
            MergeError::Mismatch {
                field: "spec.group",
                ..
            }
        ),
        "{err}"
    );
    let mut cluster = v2::Gizmo::crd();
    cluster.spec.scope = "Cluster".into();
    let err = merge_crds(vec![v1::Gizmo::crd(), cluster], "v1").unwrap_err();
    assert!(
        matches!(
            err,
            MergeError::Mismatch {
                field: "spec.scope",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn structural_schema_of_hand_written_json() {
    // Input schemars never writes but others do: $defs with a percent-encoded
    // name, type arrays, anyOf int/string, uniqueItems, closed objects.
    let schema = kube_client::crd::structural_schema(json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Spec",
        "type": "object",
        "properties": {
            "next": {"$ref": "#/$defs/Node%3CT%3E", "description": "the next"},
            "port": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "mode": {"type": ["string", "null"], "enum": ["a", "b", null]},
            "size": {"type": ["integer", "null"]},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
            "any": {}
        },
        "additionalProperties": false,
        "$defs": {"Node<T>": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node%3CT%3E"}}}}
    }));
    assert_eq!(
        schema,
        json!({
            "type": "object",
            "properties": {
                "next": {
                    "type": "object",
                    "description": "the next",
                    "properties": {"next": {"x-kubernetes-preserve-unknown-fields": true}}
                },
                "port": {"x-kubernetes-int-or-string": true},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "size": {"type": "integer", "nullable": true},
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                "any": {"x-kubernetes-preserve-unknown-fields": true}
            }
        })
    );
}
