//! `Foo::crd()`: the CustomResourceDefinition of the kind.
//!
//! Guarantees: everything the attributes decide (name `plural.group`, names,
//! scope, the one served storage version, subresources, printer columns,
//! selectable fields, the spec's CEL rules) is written into a JSON skeleton
//! at compile time, so `crd()` cannot fail on it; at run time schemars
//! generates the spec and status schemas with its OpenAPI 3 settings, all
//! subschemas inlined and no meta-schema, and
//! `kube_client::crd::structural_schema` makes them structural (the rules
//! are documented there). The top-level schema is
//! `{type: object, properties: {spec, status}, required: [spec]}`; metadata
//! is not described, as the API server wants.

use proc_macro2::TokenStream;
use quote::quote;
use serde_json::{Value, json};
use syn::DeriveInput;

use crate::attrs::KubeAttrs;
use crate::names::Names;

/// The CRD as JSON, with `{}` (or the CEL rules) where the schemas go.
fn skeleton(attrs: &KubeAttrs, names: &Names) -> Value {
    let mut properties = json!({ "spec": {} });
    if !attrs.validations.is_empty() {
        properties["spec"]["x-kubernetes-validations"] = json!(attrs.validations);
    }
    let mut version = json!({
        "name": attrs.version,
        "served": true,
        "storage": true,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "properties": properties,
                "required": ["spec"],
            }
        },
    });
    let mut subresources = json!({});
    if attrs.status.is_some() {
        version["schema"]["openAPIV3Schema"]["properties"]["status"] = json!({});
        subresources["status"] = json!({});
    }
    if let Some(scale) = &attrs.scale {
        subresources["scale"] = scale.clone();
    }
    if subresources != json!({}) {
        version["subresources"] = subresources;
    }
    if !attrs.printcolumns.is_empty() {
        version["additionalPrinterColumns"] = json!(attrs.printcolumns);
    }
    if !attrs.selectable.is_empty() {
        let fields: Vec<Value> = attrs
            .selectable
            .iter()
            .map(|path| json!({ "jsonPath": path }))
            .collect();
        version["selectableFields"] = json!(fields);
    }
    let mut crd_names = json!({
        "kind": attrs.kind,
        "listKind": names.list_kind,
        "plural": names.plural,
        "singular": names.singular,
    });
    if !attrs.shortnames.is_empty() {
        crd_names["shortNames"] = json!(attrs.shortnames);
    }
    if !attrs.categories.is_empty() {
        crd_names["categories"] = json!(attrs.categories);
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("{}.{}", names.plural, attrs.group) },
        "spec": {
            "group": attrs.group,
            "names": crd_names,
            "scope": if attrs.namespaced { "Namespaced" } else { "Cluster" },
            "versions": [version],
        }
    })
}

pub fn generate(input: &DeriveInput, attrs: &KubeAttrs, names: &Names) -> TokenStream {
    let vis = &input.vis;
    let spec = &input.ident;
    let kind_type = &attrs.kind_ident;
    let crates = &attrs.crates;
    let (kube_client, k8s, schemars, serde_json) = (
        &crates.kube_client,
        &crates.k8s_openapi,
        &crates.schemars,
        &crates.serde_json,
    );
    let skeleton = skeleton(attrs, names).to_string();
    let crd_name = format!("{}.{}", names.plural, attrs.group);
    let status = match &attrs.status {
        Some(status) => {
            quote!(::core::option::Option::Some(schema_of(generator().into_root_schema_for::<#status>())))
        }
        None => quote!(::core::option::Option::None),
    };
    let doc = format!(
        "The CustomResourceDefinition `{crd_name}`: this kind at version `{}` only (served, \
         storage), with structural schemas for the spec and status. Merge several versions \
         with `kube_client::crd::merge_crds`.",
        attrs.version
    );

    quote! {
        impl #kind_type {
            #[doc = #doc]
            #vis fn crd() -> #k8s::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
                let generator = || {
                    #schemars::generate::SchemaSettings::openapi3()
                        .with(|s| {
                            s.inline_subschemas = true;
                            s.meta_schema = ::core::option::Option::None;
                        })
                        .into_generator()
                };
                let schema_of = |schema: #schemars::Schema| -> #serde_json::Value { schema.into() };
                #kube_client::crd::__derive_crd(
                    #skeleton,
                    schema_of(generator().into_root_schema_for::<#spec>()),
                    #status,
                )
            }

            /// The name of the CustomResourceDefinition: `plural.group`.
            #vis const CRD_NAME: &'static str = #crd_name;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::parse;

    fn crd_of(input: DeriveInput) -> Value {
        let attrs = parse(&input).unwrap();
        let names = Names::new(
            &attrs.kind,
            attrs.singular.as_deref(),
            attrs.plural.as_deref(),
        );
        skeleton(&attrs, &names)
    }

    #[test]
    fn minimal_is_cluster_scoped_without_subresources() {
        let crd = crd_of(syn::parse_quote! {
            #[kube(group = "example.com", version = "v1", kind = "Policy")]
            struct PolicySpec {}
        });
        assert_eq!(crd["metadata"]["name"], "policies.example.com");
        assert_eq!(crd["spec"]["scope"], "Cluster");
        assert_eq!(
            crd["spec"]["names"],
            json!({"kind": "Policy", "listKind": "PolicyList", "plural": "policies", "singular": "policy"})
        );
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version.get("subresources"), None);
        assert_eq!(
            version["schema"]["openAPIV3Schema"],
            json!({"type": "object", "properties": {"spec": {}}, "required": ["spec"]})
        );
    }

    #[test]
    fn every_attribute_lands_in_the_crd() {
        let crd = crd_of(syn::parse_quote! {
            #[kube(group = "example.com", version = "v2", kind = "Foo", namespaced)]
            #[kube(status = "FooStatus", plural = "fooz", singular = "foo1")]
            #[kube(shortname = "f", shortname = "fo", category = "all", category = "ours")]
            #[kube(printcolumn = r#"{"name":"Size","type":"integer","jsonPath":".spec.size"}"#)]
            #[kube(selectable = ".spec.color", validation = "self.size <= 10")]
            #[kube(validation(rule = "self.size >= 0", message = "negative"))]
            #[kube(scale = r#"{"specReplicasPath":".spec.replicas","statusReplicasPath":".status.replicas"}"#)]
            struct FooSpec {}
        });
        assert_eq!(crd["metadata"]["name"], "fooz.example.com");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(crd["spec"]["names"]["shortNames"], json!(["f", "fo"]));
        assert_eq!(crd["spec"]["names"]["categories"], json!(["all", "ours"]));
        assert_eq!(crd["spec"]["names"]["singular"], "foo1");
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], "v2");
        assert_eq!(
            version["subresources"],
            json!({"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}})
        );
        assert_eq!(
            version["additionalPrinterColumns"][0]["jsonPath"],
            ".spec.size"
        );
        assert_eq!(
            version["selectableFields"],
            json!([{"jsonPath": ".spec.color"}])
        );
        assert_eq!(
            version["schema"]["openAPIV3Schema"]["properties"],
            json!({
                "spec": {"x-kubernetes-validations": [
                    {"rule": "self.size <= 10"},
                    {"rule": "self.size >= 0", "message": "negative"}
                ]},
                "status": {}
            })
        );
    }
}
