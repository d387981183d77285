//! Every refusal of `#[kube(...)]`, by message (trybuild checks where the
//! errors point for the main ones).

use syn::DeriveInput;

fn error(input: DeriveInput) -> String {
    match crate::expand(&input) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e
            .into_iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(" | "),
    }
}

macro_rules! refused {
    ($($attr:meta),* => $expected:expr) => {{
        let input: DeriveInput = syn::parse_quote! {
            $(#[$attr])*
            struct FooSpec {}
        };
        let message = error(input);
        assert!(message.contains($expected), "{message:?} does not contain {:?}", $expected);
    }};
}

#[test]
fn keys_are_known_and_single() {
    refused!(kube(group = "a.b", version = "v1", kind = "Foo", colour = "x") => "unknown attribute `colour`");
    refused!(kube(group = "a.b", version = "v1", kind = "Foo", group = "c.d") => "duplicate `group`");
    refused!(kube(group = "a.b", version = "v1", kind = "Foo"), kube(kind = "Bar") => "duplicate `kind`");
    refused!(kube(group = "a.b", version = "v1", kind = "Foo", namespaced = true) => "`namespaced` takes no value");
    refused!(kube(group = "a.b", version = "v1", kind = "Foo", crates(kube = "::kube")) => "unknown crate `kube`");
    refused!(kube(group = "a.b", version = "v1", kind = "Foo", crates(serde = "::a", serde = "::b")) => "duplicate `serde`");
}

#[test]
fn required_keys() {
    refused!(kube(namespaced) => "missing `group = \"...\"` in #[kube(...)], e.g. `group = \"example.com\"` | missing `version");
    refused!(kube(namespaced) => "missing `kind");
    let input: DeriveInput = syn::parse_quote! { struct FooSpec {} };
    assert!(error(input).starts_with("missing `group"));
}

#[test]
fn names_are_kubernetes_names() {
    refused!(kube(group = "example", version = "v1", kind = "Foo") => "group must be a lowercase DNS subdomain");
    refused!(kube(group = "Example.com", version = "v1", kind = "Foo") => "group must be");
    refused!(kube(group = "a.b", version = "V1", kind = "Foo") => "version must be a lowercase DNS label");
    refused!(kube(group = "a.b", version = "1", kind = "Foo") => "version must start with a letter");
    refused!(kube(group = "a.b", version = "v1", kind = "foo") => "kind must be a CamelCase identifier");
    refused!(kube(group = "a.b", version = "v1", kind = "Foo Bar") => "kind must be");
    refused!(kube(group = "a.b", version = "v1", kind = "Foo", plural = "Foos") => "plural must be a lowercase DNS label");
    refused!(kube(group = "a.b", version = "v1", kind = "Foo", shortname = "f_") => "shortname must be");
    refused!(kube(group = "a.b", version = "v1", kind = "FooSpec") => "must differ from the spec type's name");
}

#[test]
fn validations() {
    refused!(kube(group = "a.b", version = "v1", kind = "Foo", validation = " ") => "must not be empty");
    refused!(kube(group = "a.b", version = "v1", kind = "Foo", validation(message = "m")) => "needs `rule");
    refused!(kube(group = "a.b", version = "v1", kind = "Foo", validation(rule = "x", reason = "y")) => "expected `rule` or `message`");
}

#[test]
fn printcolumns() {
    let base = r#""name":"Size","type":"integer","jsonPath":".spec.size""#;
    for (json, expected) in [
        ("[1]".to_string(), "printcolumn must be a JSON object"),
        ("{".to_string(), "printcolumn is not valid JSON"),
        (
            r#"{"name":"Size","type":"integer"}"#.to_string(),
            "`jsonPath` is required",
        ),
        (format!("{{{base},\"colour\":1}}"), "unknown field `colour`"),
        (
            r#"{"name":"S","type":"int","jsonPath":".spec.s"}"#.to_string(),
            "type `int` is not one of",
        ),
        (
            r#"{"name":"S","type":"string","jsonPath":"spec.s"}"#.to_string(),
            "must start with `.`",
        ),
        (
            format!("{{{base},\"priority\":-1}}"),
            "`priority` must be a non-negative integer",
        ),
        (
            format!("{{{base},\"format\":\"uuid\"}}"),
            "format `uuid` is not one of",
        ),
        (
            r#"{"name":1,"type":"string","jsonPath":".spec.s"}"#.to_string(),
            "`name` must be a string",
        ),
    ] {
        let lit = syn::LitStr::new(&json, proc_macro2::Span::call_site());
        let input: DeriveInput = syn::parse_quote! {
            #[kube(group = "a.b", version = "v1", kind = "Foo", printcolumn = #lit)]
            struct FooSpec {}
        };
        let message = error(input);
        assert!(message.contains(expected), "{json}: {message}");
    }
}

#[test]
fn scale_paths() {
    for (json, expected) in [
        (
            r#"{"specReplicasPath":".spec.r"}"#,
            "`statusReplicasPath` is required",
        ),
        (
            r#"{"specReplicasPath":".status.r","statusReplicasPath":".status.r"}"#,
            "`specReplicasPath` must be a JSON path under `.spec.`",
        ),
        (
            r#"{"specReplicasPath":".spec.r","statusReplicasPath":".spec.r"}"#,
            "`statusReplicasPath` must be a JSON path under `.status.`",
        ),
        (
            r#"{"specReplicasPath":".spec.","statusReplicasPath":".status.r"}"#,
            "got `.spec.`",
        ),
        (
            r#"{"specReplicasPath":".spec.r","statusReplicasPath":".status.r","labelSelectorPath":"x"}"#,
            "under `.spec.` or `.status.`",
        ),
        (
            r#"{"specReplicasPath":".spec.r","statusReplicasPath":".status.r","replicas":1}"#,
            "unknown field `replicas`",
        ),
    ] {
        let lit = syn::LitStr::new(json, proc_macro2::Span::call_site());
        let input: DeriveInput = syn::parse_quote! {
            #[kube(group = "a.b", version = "v1", kind = "Foo", scale = #lit)]
            struct FooSpec {}
        };
        let message = error(input);
        assert!(message.contains(expected), "{json}: {message}");
    }
}

#[test]
fn spec_shape() {
    refused!(kube(group = "a.b", version = "v1", kind = "Foo", selectable = "spec.x") => "selectable must be a JSON path into .spec or .status");
    let generic: DeriveInput = syn::parse_quote! {
        #[kube(group = "a.b", version = "v1", kind = "Foo")]
        struct FooSpec<T> { t: T }
    };
    assert!(error(generic).contains("does not support generic spec types"));
    let union: DeriveInput = syn::parse_quote! {
        #[kube(group = "a.b", version = "v1", kind = "Foo")]
        union FooSpec { a: u32 }
    };
    assert!(error(union).contains("needs a struct or enum spec"));
}
