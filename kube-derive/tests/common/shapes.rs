//! The `Shapes` kind: a spec with every shape the schema rewriting handles,
//! shared by `tests/schema.rs` (what the schema says) and `tests/crd.rs`
//! (the API server accepts it and round-trips an object).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Modes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub enum Mode {
    /// Fast.
    Fast,
    /// Slow.
    Slow,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub enum Plain {
    A,
    B,
}

/// Internally tagged.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(tag = "type")]
pub enum Backend {
    S3 { bucket: String },
    Disk { path: String, size: u32 },
}

/// Externally tagged, data variants only.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    Git { url: String },
    Image(String),
}

/// Externally tagged, unit and data variants.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub enum Mixed {
    Nothing,
    Something(i32),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum Port {
    Number(i32),
    Name(String),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct Inner {
    pub name: String,
    pub note: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct Tree {
    pub children: Vec<Tree>,
}

/// Every shape the rewriting handles.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "schema.test",
    version = "v1",
    kind = "Shapes",
    namespaced,
    plural = "shapes"
)]
#[kube(
    status = "ShapesStatus",
    validation = "self.replicas >= 0",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct ShapesSpec {
    pub replicas: i32,
    pub inner: Inner,
    pub opt_inner: Option<Inner>,
    pub mode: Mode,
    pub opt_mode: Option<Mode>,
    pub plain: Option<Plain>,
    pub backend: Option<Backend>,
    pub source: Source,
    pub mixed: Option<Mixed>,
    pub port: Port,
    #[schemars(with = "serde_json::Value", extend("x-kubernetes-int-or-string" = true))]
    pub target: IntOrString,
    pub tags: BTreeSet<String>,
    pub labels: BTreeMap<String, String>,
    pub any: Option<Value>,
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub config: BTreeMap<String, Value>,
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self.size() > 0", "message": "empty"}]))]
    pub name: String,
    pub tree: Option<Tree>,
    pub pair: (i32, String),
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ShapesStatus {
    pub seen: Option<i64>,
}
