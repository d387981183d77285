//! Every attribute at once, with the crate paths taken from re-exports.
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod reexports {
    pub use ::k8s_openapi;
    pub use ::kube_client;
    pub use ::schemars;
    pub use ::serde;
    pub use ::serde_json;
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(group = "example.com", version = "v1alpha1", kind = "Policy", namespaced)]
#[kube(status = "PolicyStatus", plural = "policies", singular = "policy")]
#[kube(shortname = "pol", shortname = "po", category = "all", category = "security")]
#[kube(printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#)]
#[kube(printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode","priority":1,"description":"how"}"#)]
#[kube(selectable = ".spec.mode", validation = "self.replicas >= 0")]
#[kube(validation(rule = "self.replicas <= 5", message = "at most 5"))]
#[kube(scale = r#"{"specReplicasPath":".spec.replicas","statusReplicasPath":".status.replicas","labelSelectorPath":".status.selector"}"#)]
#[kube(derive = "PartialEq", derive = "Default")]
#[kube(crates(
    kube_client = "crate::reexports::kube_client",
    k8s_openapi = "crate::reexports::k8s_openapi",
    serde = "crate::reexports::serde",
    serde_json = "crate::reexports::serde_json",
    schemars = "crate::reexports::schemars",
))]
pub struct PolicySpec {
    pub replicas: i32,
    pub mode: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PolicyStatus {
    pub replicas: i32,
    pub selector: Option<String>,
}

fn main() {
    assert_eq!(Policy::default().spec, PolicySpec::default());
    let crd = Policy::crd();
    assert_eq!(Policy::CRD_NAME, "policies.example.com");
    let names = &crd.spec.names;
    assert_eq!(names.short_names, Some(vec!["pol".into(), "po".into()]));
    assert_eq!(names.categories, Some(vec!["all".into(), "security".into()]));
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    assert_eq!(version.additional_printer_columns.as_ref().unwrap().len(), 2);
    assert_eq!(version.selectable_fields.as_ref().unwrap()[0].json_path, ".spec.mode");
    let scale = version.subresources.as_ref().unwrap().scale.as_ref().unwrap();
    assert_eq!(scale.label_selector_path.as_deref(), Some(".status.selector"));
    let spec = &version.schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap().properties.as_ref().unwrap()["spec"];
    assert_eq!(spec.x_kubernetes_validations.as_ref().unwrap().len(), 2);
}
