//! `kube-derive`: `#[derive(CustomResource)]`.
//!
//! From a spec type, the derive generates the custom resource type, its
//! Kubernetes traits and its CustomResourceDefinition:
//!
//! ```no_run
//! use kube_derive::CustomResource;
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
//! #[kube(group = "example.com", version = "v1", kind = "Foo", namespaced, status = "FooStatus")]
//! #[kube(printcolumn = r#"{"name":"Size","type":"integer","jsonPath":".spec.size"}"#)]
//! #[kube(validation(rule = "self.size <= 10", message = "at most 10"))]
//! pub struct FooSpec {
//!     size: i32,
//! }
//!
//! #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
//! pub struct FooStatus {
//!     ready: bool,
//! }
//!
//! # async fn demo(client: kube_client::Client) -> Result<(), kube_client::Error> {
//! use kube_client::{Api, params::PostParams};
//! let crds = Api::all(client.clone());
//! crds.create(&PostParams::default(), &Foo::crd()).await?;
//! let foos: Api<Foo> = Api::namespaced(client, "default");
//! foos.create(&PostParams::default(), &Foo::new("a", FooSpec { size: 3 })).await?;
//! # Ok(()) }
//! ```
//!
//! # What is generated
//!
//! - `pub struct Foo { pub metadata: ObjectMeta, pub spec: FooSpec, pub status: Option<FooStatus> }`
//!   (no `status` field without `status = "..."`; the visibility is the
//!   spec's), deriving `Clone` and `Debug` plus each `derive = "Trait"`;
//! - `Foo::new(name, spec)` and `Foo::CRD_NAME` (`plural.group`);
//! - `impl k8s_openapi::Resource + ListableResource + Metadata for Foo`, so
//!   kube-client's blanket impl makes `Foo` a `kube_client::Resource` with
//!   `DynamicType = ()`: `Api<Foo>`, watches and `kube_runtime::Reflector<Foo>`
//!   take it like any k8s-openapi type;
//! - `Serialize`: `apiVersion` and `kind` are always written, a `None` status
//!   is left out. `Deserialize`: `apiVersion` and `kind` may be absent (as in
//!   bodies that omit them), but when present they must be this kind's — a
//!   `Bar` or a `example.com/v2` body is an error naming what was expected,
//!   so a typed `Foo` never silently holds another kind or version;
//! - `Foo::crd()`: the CustomResourceDefinition (one version, served and
//!   storage; several versions merge with `kube_client::crd::merge_crds`).
//!
//! # Attributes: `#[kube(...)]`
//!
//! | key | meaning |
//! | --- | --- |
//! | `group = "example.com"` | API group (required) |
//! | `version = "v1"` | version (required) |
//! | `kind = "Foo"` | kind, and the name of the generated type (required) |
//! | `namespaced` | namespaced kind (default: cluster-scoped) |
//! | `status = "FooStatus"` | status type; adds the `status` field and subresource |
//! | `plural = "foos"`, `singular = "foo"` | resource names (default: lowercase kind and its English plural: `Policy` → `policies`, `Ingress` → `ingresses`) |
//! | `shortname = "f"`, `category = "all"` | short names, categories (repeatable) |
//! | `printcolumn = r#"{"name":..,"type":..,"jsonPath":..}"#` | an `additionalPrinterColumns` entry, JSON checked at compile time (repeatable) |
//! | `selectable = ".spec.color"` | a `selectableFields` entry (repeatable) |
//! | `validation = "CEL"` or `validation(rule = "CEL", message = "...")` | an `x-kubernetes-validations` rule on the spec; `self` is the spec (repeatable) |
//! | `scale = r#"{"specReplicasPath":".spec.replicas","statusReplicasPath":".status.replicas"}"#` | the scale subresource; paths checked to be under `.spec.`/`.status.` (`labelSelectorPath` optional) |
//! | `derive = "PartialEq"` | an extra derive on `Foo` (repeatable) |
//! | `crates(kube_client = "::kube_client", k8s_openapi = "...", serde = "...", serde_json = "...", schemars = "...")` | paths of the crates the generated code uses |
//!
//! Unknown or duplicate keys, a missing `group`/`version`/`kind`, malformed
//! names, JSON or scale paths are compile errors pointing at the attribute.
//! The generated code needs `k8s-openapi`, `kube-client`, `serde` (with
//! `derive`), `serde_json` and `schemars` 1 as dependencies (or `crates`).
//!
//! # The schema
//!
//! schemars generates the spec and status schemas (OpenAPI 3 settings, every
//! subschema inlined); `kube_client::crd::structural_schema` makes them
//! structural: no `$ref`, `nullable: true` for `Option` (not for enums: the
//! server fails a null against any `enum` but drops nulls of non-nullable
//! fields, so `None` is stored as absent), `type: string` + `enum` for enums
//! of unit variants, `x-kubernetes-int-or-string` for
//! untagged integer-or-string enums, object unions (tagged enums with data)
//! hoisted into one object, `uniqueItems` (sets) replaced by
//! `x-kubernetes-list-type: set`. What the API server cannot check becomes
//! `x-kubernetes-preserve-unknown-fields: true` (any value): a
//! `serde_json::Value`, a recursive type where it recurs, tuples of mixed
//! types, enums mixing unit and data variants.
//!
//! Kubernetes extensions go on fields with schemars' `extend`:
//!
//! ```text
//! #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
//! config: BTreeMap<String, serde_json::Value>,
//! #[schemars(extend("x-kubernetes-validations" = [{"rule": "self.startsWith('a')"}]))]
//! name: String,
//! // IntOrString has no JsonSchema unless k8s-openapi's `schemars` feature is on:
//! #[schemars(with = "serde_json::Value", extend("x-kubernetes-int-or-string" = true))]
//! port: IntOrString,
//! ```

mod attrs;
mod crd;
mod names;
mod wrapper;

use proc_macro::TokenStream;
use syn::{Data, DeriveInput, Error};

/// Derives a custom resource type from its spec: see the crate docs.
#[proc_macro_derive(CustomResource, attributes(kube))]
pub fn derive_custom_resource(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

fn expand(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    if let Data::Union(u) = &input.data {
        return Err(Error::new_spanned(
            u.union_token,
            "CustomResource needs a struct or enum spec",
        ));
    }
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        return Err(Error::new_spanned(
            &input.generics,
            "CustomResource does not support generic spec types",
        ));
    }
    let attrs = attrs::parse(input)?;
    if attrs.kind_ident == input.ident {
        return Err(Error::new(
            attrs.kind_ident.span(),
            format!(
                "kind `{}` names the generated type: it must differ from the spec type's name",
                attrs.kind
            ),
        ));
    }
    let names = names::Names::new(
        &attrs.kind,
        attrs.singular.as_deref(),
        attrs.plural.as_deref(),
    );
    let mut out = wrapper::generate(input, &attrs, &names);
    out.extend(crd::generate(input, &attrs, &names));
    Ok(out)
}
