//! CustomResourceDefinitions: structural schemas and multi-version CRDs.
//!
//! - [`structural_schema`] turns a JSON schema, as schemars' OpenAPI 3
//!   settings generate it, into a *structural* schema that kube-apiserver
//!   accepts: `$ref`s inlined, `Option` unions turned into `nullable` (but
//!   for enums: the server drops their nulls instead), enums of unit
//!   variants into `type: string` + `enum`, integer-or-string unions
//!   into `x-kubernetes-int-or-string`, object unions hoisted, and every
//!   shape the API server cannot check turned into
//!   `x-kubernetes-preserve-unknown-fields` rather than rejected.
//! - [`merge_crds`] merges CRDs of one kind (one per version, e.g. from
//!   `v1::Foo::crd()` and `v2::Foo::crd()`) into one CRD with exactly one
//!   storage version.
//!
//! `#[derive(CustomResource)]` (kube-derive) generates `Foo::crd()`, which
//! goes through [`structural_schema`] for the spec and status schemas.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Map, Value, json};

const PRESERVE: &str = "x-kubernetes-preserve-unknown-fields";
const INT_OR_STRING: &str = "x-kubernetes-int-or-string";
/// The keys a union branch may have and still be pure validation (allowed
/// inside `anyOf`/`oneOf` of a structural schema).
const VALIDATION_ONLY: &[&str] = &["required", "minProperties", "maxProperties", "pattern"];
/// Keywords of the root only: definitions, meta-schema, the type's name.
const ROOT_ONLY: &[&str] = &[
    "components",
    "$defs",
    "definitions",
    "$schema",
    "$id",
    "title",
];
/// Keywords the API server does not know (or does not want).
const UNSUPPORTED: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "readOnly",
    "writeOnly",
    "examples",
];

/// Rewrites a JSON schema into a structural schema (see the module docs).
///
/// `root` may carry definitions (`components/schemas`, `$defs` or
/// `definitions`); `$ref`s into it are inlined and the definitions dropped.
/// A recursive reference cannot be described structurally: it becomes
/// `x-kubernetes-preserve-unknown-fields: true` (any value) at the point
/// where the recursion starts again. Unions that are not nullable, string
/// enums, integer-or-string or all objects (e.g. an externally tagged enum
/// mixing unit and data variants) become the same "any value" schema.
pub fn structural_schema(root: Value) -> Value {
    let mut schema = root.clone();
    if let Value::Object(map) = &mut schema {
        ROOT_ONLY.iter().for_each(|key| drop(map.remove(*key)));
    }
    inline_refs(&mut schema, &root, &mut Vec::new());
    rewrite(&mut schema);
    fill_types(&mut schema);
    schema
}

/// Calls `f` on every direct subschema of a schema object.
fn for_each_subschema(map: &mut Map<String, Value>, f: &mut dyn FnMut(&mut Value)) {
    for (key, value) in map.iter_mut() {
        match (key.as_str(), value) {
            ("properties", Value::Object(props)) => props.values_mut().for_each(&mut *f),
            ("items" | "allOf" | "anyOf" | "oneOf", Value::Array(all)) => {
                all.iter_mut().for_each(&mut *f)
            }
            ("items" | "additionalProperties" | "not", v) => f(v),
            _ => {}
        }
    }
}

fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    // A URI fragment: percent-decoded, it is a JSON pointer into the root.
    let mut bytes = reference.strip_prefix('#')?.bytes();
    let mut pointer = Vec::new();
    while let Some(b) = bytes.next() {
        pointer.push(match b {
            b'%' => u8::from_str_radix(
                std::str::from_utf8(&[bytes.next()?, bytes.next()?]).ok()?,
                16,
            )
            .ok()?,
            b => b,
        });
    }
    root.pointer(&String::from_utf8(pointer).ok()?)
}

fn inline_refs(node: &mut Value, root: &Value, stack: &mut Vec<String>) {
    let Value::Object(map) = node else { return };
    for_each_subschema(map, &mut |s| inline_refs(s, root, stack));
    let Some(Value::String(reference)) = map.remove("$ref") else {
        return;
    };
    let mut target = match resolve(root, &reference) {
        Some(found) if !stack.contains(&reference) => {
            let mut found = found.clone();
            stack.push(reference);
            inline_refs(&mut found, root, stack);
            stack.pop();
            found
        }
        _ => json!({ PRESERVE: true }),
    };
    match &mut target {
        // The `$ref`'s siblings (e.g. a field's description) win.
        Value::Object(t) => t.extend(std::mem::take(map)),
        _ => target = Value::Object(std::mem::take(map)),
    }
    *node = target;
}

/// Bottom-up: subschemas first, then this schema.
fn rewrite(node: &mut Value) {
    if *node == Value::Bool(true) {
        *node = json!({});
    }
    let Value::Object(map) = node else { return };
    for_each_subschema(map, &mut rewrite);

    if let Some(title) = map.remove("title") {
        map.entry("description").or_insert(title);
    }
    UNSUPPORTED.iter().for_each(|key| drop(map.remove(*key)));
    if let Some(value) = map.remove("const") {
        map.entry("enum").or_insert_with(|| json!([value]));
    }
    type_arrays(map);
    if let Some(Value::Array(all)) = map.remove("allOf") {
        for branch in all {
            merge_into(map, branch);
        }
    }
    while simplify_union(map, "anyOf") | simplify_union(map, "oneOf") {}
    match map.get("additionalProperties") {
        Some(Value::Bool(false)) => {
            map.remove("additionalProperties");
        }
        Some(_) if has_properties(map) => {
            // Structs with a flattened map: properties win, the rest is kept.
            map.remove("additionalProperties");
            map.insert(PRESERVE.into(), true.into());
        }
        _ => {}
    }
    if let Some(Value::Array(tuple)) = map.get_mut("items") {
        let first = tuple.first().cloned();
        let same = tuple.iter().all(|t| Some(t) == first.as_ref());
        let items = first
            .filter(|_| same)
            .unwrap_or_else(|| json!({ PRESERVE: true }));
        map.insert("items".into(), items);
    }
    if map.remove("uniqueItems") == Some(Value::Bool(true)) {
        let scalar = ["string", "integer", "number", "boolean"].map(Value::from);
        if let Some(Value::Object(items)) = map.get("items")
            && items.get("type").is_some_and(|t| scalar.contains(t))
        {
            map.insert("x-kubernetes-list-type".into(), "set".into());
        }
    }
    // The API server fails a null against any `enum` (even one listing
    // null) but first drops nulls of non-nullable fields: so an optional
    // enum is not nullable, and `None` is stored as an absent field.
    if let Some(Value::Array(values)) = map.get_mut("enum")
        && values.iter().any(|v| !v.is_null())
    {
        values.retain(|v| !v.is_null());
        map.remove("nullable");
    }
}

fn push_unique(all: &mut Vec<Value>, more: impl IntoIterator<Item = Value>) {
    for v in more {
        if !all.contains(&v) {
            all.push(v);
        }
    }
}

fn has_properties(map: &Map<String, Value>) -> bool {
    matches!(map.get("properties"), Some(Value::Object(p)) if !p.is_empty())
}

/// `type: [T, "null"]` → `type: T, nullable: true`; `[integer, string]` →
/// int-or-string; any other list of types → any value.
fn type_arrays(map: &mut Map<String, Value>) {
    let Some(Value::Array(types)) = map.get("type") else {
        return;
    };
    let mut types: Vec<Value> = types.clone();
    if types.contains(&json!("null")) {
        types.retain(|t| t != "null");
        map.insert("nullable".into(), true.into());
    }
    map.remove("type");
    match types.as_slice() {
        [] => {}
        [one] => {
            map.insert("type".into(), one.clone());
        }
        [a, b] if (a == "integer" && b == "string") || (a == "string" && b == "integer") => {
            map.remove("format");
            map.insert(INT_OR_STRING.into(), true.into());
        }
        _ => {
            map.insert(PRESERVE.into(), true.into());
        }
    }
}

/// Merges `from` into `map`; what `map` already says wins, except that
/// properties, `required` and `x-kubernetes-validations` are combined.
fn merge_into(map: &mut Map<String, Value>, from: Value) {
    let Value::Object(from) = from else { return };
    for (key, value) in from {
        match (map.get_mut(&key), value) {
            (None, value) => {
                map.insert(key, value);
            }
            (Some(Value::Object(mine)), Value::Object(theirs)) if key == "properties" => {
                for (name, schema) in theirs {
                    merge_property(mine, name, schema);
                }
            }
            (Some(Value::Array(mine)), Value::Array(theirs))
                if key == "required" || key == "x-kubernetes-validations" =>
            {
                push_unique(mine, theirs)
            }
            _ => {}
        }
    }
}

/// Adds a property seen in one branch of a union to the hoisted ones.
fn merge_property(props: &mut Map<String, Value>, name: String, schema: Value) {
    let Some(existing) = props.get_mut(&name) else {
        props.insert(name, schema);
        return;
    };
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Value::Object(m) = &mut v {
            m.remove("description");
            m.remove("enum");
        }
        v
    };
    if strip(existing) != strip(&schema) {
        // The branches disagree on this field: accept any value.
        let description = existing.get("description").cloned();
        *existing = json!({ PRESERVE: true });
        if let Some(d) = description {
            existing["description"] = d;
        }
        return;
    }
    match (existing.get_mut("enum"), schema.get("enum")) {
        (Some(Value::Array(mine)), Some(Value::Array(theirs))) => {
            push_unique(mine, theirs.iter().cloned())
        }
        // Only one side restricts the values: the union does not.
        (Some(_), None) => {
            if let Value::Object(m) = existing {
                m.remove("enum");
            }
        }
        _ => {}
    }
}

fn is_null_schema(branch: &Value) -> bool {
    let Value::Object(m) = branch else {
        return false;
    };
    let only_null = m.get("type") == Some(&json!("null"))
        || m.get("enum") == Some(&json!([null]))
        || m.get("const") == Some(&Value::Null);
    only_null
        && m.keys().all(|k| {
            ["type", "enum", "const", "nullable", "description", "title"].contains(&k.as_str())
        })
}

fn keys_within(branch: &Value, allowed: &[&str]) -> bool {
    branch
        .as_object()
        .is_some_and(|m| m.keys().all(|k| allowed.contains(&k.as_str())))
}

/// Simplifies `anyOf`/`oneOf`; true if it merged a lone branch into `map`
/// (which may bring in a new union to simplify).
fn simplify_union(map: &mut Map<String, Value>, key: &str) -> bool {
    let Some(Value::Array(mut branches)) = map.remove(key) else {
        return false;
    };
    let before = branches.len();
    branches.retain(|b| !is_null_schema(b));
    if branches.len() != before {
        map.insert("nullable".into(), true.into());
    }
    if branches.is_empty() {
        return false;
    }
    if branches.iter().all(|b| keys_within(b, VALIDATION_ONLY)) {
        map.insert(key.into(), Value::Array(branches));
        return false;
    }
    if branches.len() == 1 {
        merge_into(map, branches.remove(0));
        return true;
    }
    let types: Vec<Option<&str>> = branches
        .iter()
        .map(|b| b.get("type").and_then(Value::as_str))
        .collect();
    let string_enums = branches.iter().all(|b| {
        b.get("type") == Some(&json!("string"))
            && b.get("enum").is_some_and(Value::is_array)
            && keys_within(b, &["type", "enum", "description"])
    });
    if string_enums {
        let mut values: Vec<Value> = Vec::new();
        for b in &branches {
            push_unique(
                &mut values,
                b["enum"].as_array().into_iter().flatten().cloned(),
            );
        }
        map.insert("type".into(), "string".into());
        map.insert("enum".into(), Value::Array(values));
    } else if matches!(
        types.as_slice(),
        [Some("integer"), Some("string")] | [Some("string"), Some("integer")]
    ) {
        map.remove("type");
        map.remove("format");
        map.insert(INT_OR_STRING.into(), true.into());
    } else if types.iter().all(|t| *t == Some("object")) {
        hoist_objects(map, key, branches);
    } else {
        map.remove("type");
        map.insert(PRESERVE.into(), true.into());
    }
    false
}

/// A union of objects (tagged or untagged enum with data): the properties of
/// every branch move up, the `required` common to all branches too, and the
/// union is kept as `required` lists only when they tell the branches apart.
fn hoist_objects(map: &mut Map<String, Value>, key: &str, branches: Vec<Value>) {
    map.insert("type".into(), "object".into());
    let mut props = match map.remove("properties") {
        Some(Value::Object(p)) => p,
        _ => Map::new(),
    };
    let mut requireds: Vec<Vec<Value>> = Vec::new();
    for branch in branches {
        let Value::Object(mut b) = branch else {
            continue;
        };
        if let Some(Value::Object(bp)) = b.remove("properties") {
            for (name, schema) in bp {
                merge_property(&mut props, name, schema);
            }
        }
        if b.get(PRESERVE) == Some(&Value::Bool(true)) {
            map.insert(PRESERVE.into(), true.into());
        }
        requireds.push(match b.remove("required") {
            Some(Value::Array(r)) => r,
            _ => Vec::new(),
        });
    }
    map.insert("properties".into(), Value::Object(props));
    let common: Vec<Value> = requireds[0]
        .iter()
        .filter(|r| requireds.iter().all(|rs| rs.contains(r)))
        .cloned()
        .collect();
    let rest: Vec<Vec<Value>> = requireds
        .iter()
        .map(|rs| rs.iter().filter(|r| !common.contains(r)).cloned().collect())
        .collect();
    if !common.is_empty() {
        merge_into(map, json!({ "required": common }));
    }
    let subset = |a: &Vec<Value>, b: &Vec<Value>| a.iter().all(|x| b.contains(x));
    let distinct = rest.iter().all(|r| !r.is_empty())
        && (key == "anyOf"
            || rest.iter().enumerate().all(|(i, a)| {
                rest.iter()
                    .enumerate()
                    .all(|(j, b)| i == j || !subset(a, b))
            }));
    if distinct {
        let union = rest.into_iter().map(|r| json!({ "required": r })).collect();
        map.insert(key.into(), Value::Array(union));
    }
}

/// Top-down: a field, item or map value without a type (e.g. a
/// `serde_json::Value`) accepts any value.
fn fill_types(node: &mut Value) {
    let Value::Object(map) = node else { return };
    let typed = ["type", INT_OR_STRING, PRESERVE]
        .iter()
        .any(|k| map.contains_key(*k));
    if !typed {
        map.insert(PRESERVE.into(), true.into());
    }
    for (key, value) in map.iter_mut() {
        match (key.as_str(), value) {
            ("properties", Value::Object(props)) => props.values_mut().for_each(fill_types),
            ("items" | "additionalProperties", v) => fill_types(v),
            _ => {}
        }
    }
}

/// Why [`merge_crds`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// No CRD was given.
    #[error("no CustomResourceDefinition to merge")]
    Empty,
    /// The CRDs are not of one kind: name, group, names or scope differ.
    #[error("cannot merge CRDs with different {field}: `{first}` and `{other}`")]
    Mismatch {
        /// What differs (`metadata.name`, `spec.group`, `spec.names`, `spec.scope`).
        field: &'static str,
        /// The first CRD's value.
        first: String,
        /// The differing CRD's value.
        other: String,
    },
    /// Two CRDs define the same version.
    #[error("version `{0}` is defined more than once")]
    DuplicateVersion(String),
    /// The requested storage version is not among the versions.
    #[error("storage version `{0}` is not one of the merged versions")]
    MissingStorageVersion(String),
}

/// Merges CRDs of one kind into one CRD holding all their versions (in the
/// order given), with `storage_version` as the only storage version.
///
/// Fails if the CRDs differ in name, group, names or scope, if a version
/// appears twice, or if `storage_version` is not one of the versions.
pub fn merge_crds(
    crds: Vec<CustomResourceDefinition>,
    storage_version: &str,
) -> Result<CustomResourceDefinition, MergeError> {
    let identity = |c: &CustomResourceDefinition| {
        let (name, spec) = (c.metadata.name.clone().unwrap_or_default(), &c.spec);
        let names = serde_json::to_string(&spec.names).unwrap_or_default();
        let group_scope = [("spec.group", &spec.group), ("spec.scope", &spec.scope)];
        let group_scope = group_scope.map(|(field, v)| (field, v.clone()));
        [("metadata.name", name), ("spec.names", names)]
            .into_iter()
            .chain(group_scope)
    };
    let mut crds = crds.into_iter();
    let mut merged = crds.next().ok_or(MergeError::Empty)?;
    for crd in crds {
        let differing = identity(&merged)
            .zip(identity(&crd))
            .find(|(a, b)| a.1 != b.1);
        if let Some(((field, first), (_, other))) = differing {
            return Err(MergeError::Mismatch {
                field,
                first,
                other,
            });
        }
        for version in crd.spec.versions {
            if merged.spec.versions.iter().any(|v| v.name == version.name) {
                return Err(MergeError::DuplicateVersion(version.name));
            }
            merged.spec.versions.push(version);
        }
    }
    if !merged
        .spec
        .versions
        .iter()
        .any(|v| v.name == storage_version)
    {
        return Err(MergeError::MissingStorageVersion(storage_version.into()));
    }
    for version in &mut merged.spec.versions {
        version.storage = version.name == storage_version;
    }
    Ok(merged)
}

/// Used by `#[derive(CustomResource)]`: the CRD from its skeleton (written
/// at compile time, with `{}` or extra keywords where the spec and status
/// schemas go) and the schemas schemars generated. Not a stable API.
#[doc(hidden)]
pub fn __derive_crd(
    skeleton: &str,
    spec: Value,
    status: Option<Value>,
) -> CustomResourceDefinition {
    let mut crd: Value = serde_json::from_str(skeleton).expect("the derive writes valid JSON");
    let props = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"];
    for (key, schema) in [("spec", Some(spec)), ("status", status)] {
        if let Some(schema) = schema {
            let extra = props[key].take();
            let mut schema = structural_schema(schema);
            if let Value::Object(map) = &mut schema {
                // The attributes' CEL rules come after the type's own.
                merge_into(map, extra);
            }
            props[key] = schema;
        }
    }
    serde_json::from_value(crd).expect("the derive writes a valid CustomResourceDefinition")
}
