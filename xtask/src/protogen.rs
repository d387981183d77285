//! `cargo xtask protogen`: generates `kube-protobuf/src/generated/` — the
//! protobuf `Message` impls of the k8s-openapi types.
//!
//! Three sources are joined, and any disagreement stops the generator with
//! the message and field named (nothing is dropped silently):
//!
//! 1. the upstream `generated.proto` files of k8s.io/api, apimachinery,
//!    apiextensions-apiserver and kube-aggregator at [`K8S_MODULE_VERSION`]
//!    (from the Go module cache; `go mod download` fetches them when missing),
//!    parsed with `protox-parse`: message names, field numbers;
//! 2. the Go struct tags next to them (`json:"name,omitempty"
//!    protobuf:"bytes,3,opt,name=name"`): for each protobuf field number
//!    the JSON name, whether JSON omits its zero value, whether the Go field
//!    is a pointer (protobuf then says "absent" exactly when JSON does) and
//!    whether it is inlined (`json:",inline"`);
//! 3. the k8s-openapi 0.29 source (`v1_37`): for each JSON name the Rust
//!    field (k8s-openapi renames `continue`, `type`, `$ref`,
//!    `x-kubernetes-*`…) and whether it is an `Option`, and which types are
//!    top-level kinds (`impl Resource`).
//!
//! Output: one file per API group version, formatted with rustfmt, and
//! `mod.rs` with the table of kinds. Regenerating twice gives the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use protox_parse::parse;

/// The version of the Kubernetes Go modules whose protobuf schema is generated
/// (the kube-apiserver kube-testenv pins is v1.37.2).
pub const K8S_MODULE_VERSION: &str = "v0.37.2";

/// The Go modules with `generated.proto` files.
const MODULES: &[&str] = &[
    "k8s.io/api",
    "k8s.io/apimachinery",
    "k8s.io/apiextensions-apiserver",
    "k8s.io/kube-aggregator",
];

/// Messages written by hand in kube-protobuf/src/special.rs (their Rust shape
/// differs from their protobuf message).
const HAND_WRITTEN: &[&str] = &[
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1",
    "k8s.io.apimachinery.pkg.api.resource.Quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString",
    "k8s.io.apimachinery.pkg.runtime.RawExtension",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
];

/// Protobuf fields deliberately not mapped to a Rust field: (message, field
/// name, why). Everything else without a Rust field is an error.
const SKIPPED_FIELDS: &[(&str, &str, &str)] = &[];

pub fn run(args: &[&str]) -> Result<()> {
    if !args.is_empty() {
        bail!("usage: cargo xtask protogen (no options)");
    }
    let root = workspace_root()?;
    let out = root.join("kube-protobuf/src/generated");
    let openapi = k8s_openapi_source()?;
    let mod_cache = go_mod_cache()?;

    let mut packages = Vec::new();
    for module in MODULES {
        let dir = module_dir(&mod_cache, module)?;
        for proto in find_protos(&dir)? {
            let source = std::fs::read_to_string(&proto)?;
            let name = proto
                .strip_prefix(&mod_cache)
                .unwrap_or(&proto)
                .display()
                .to_string();
            let file = parse(&name, &source).map_err(|e| anyhow::anyhow!("{name}: {e:?}"))?;
            packages.push((proto, file));
        }
    }
    packages.sort_by(|a, b| a.1.package().cmp(b.1.package()));
    let mut all = All::default();
    for (proto, file) in &packages {
        let dir = proto.parent().context("proto without directory")?;
        all.go.insert(file.package().to_string(), go_structs(dir)?);
        for message in &file.message_type {
            all.messages.insert(
                format!(".{}.{}", file.package(), message.name()),
                message.clone(),
            );
        }
    }

    let mut generated = Vec::new();
    let mut skipped_messages: Vec<(String, &str)> = Vec::new();
    let mut kinds = Vec::new();
    for (proto, file) in &packages {
        let package = file.package();
        let _ = proto;
        let Some(rust_dir) = rust_module_dir(&openapi, package) else {
            skipped_messages.push((
                package.to_string(),
                "API version not in k8s-openapi 0.29 (v1_37)",
            ));
            continue;
        };
        let go_structs = &all.go[package];
        let rust_structs = rust_structs(&rust_dir)?;
        let mut code = String::new();
        let mut count = 0;
        for message in &file.message_type {
            let full = format!("{package}.{}", message.name());
            if HAND_WRITTEN.contains(&full.as_str()) {
                continue;
            }
            let Some(rust) = rust_structs.get(message.name()) else {
                let why = if is_list(message) {
                    "a list: decoded by `decode_list` into `(ListMeta, Vec<K>)`"
                } else {
                    "no k8s-openapi type"
                };
                skipped_messages.push((full, why));
                continue;
            };
            let no_fields = GoStruct {
                fields: BTreeMap::new(),
            };
            let go = go_structs
                .get(message.name())
                .or(rust.empty_object.then_some(&no_fields))
                .with_context(|| {
                    format!(
                        "{full}: no Go struct {} next to {}",
                        message.name(),
                        proto.display()
                    )
                })?;
            code.push_str(&message_impl(&full, message, go, rust, &all)?);
            count += 1;
            if rust.is_resource {
                kinds.push(format!("{}::{}", rust_path(package), message.name()));
            }
        }
        if count > 0 {
            let module = module_name(package);
            generated.push((module, package.to_string(), code));
        }
    }

    std::fs::create_dir_all(&out)?;
    for entry in std::fs::read_dir(&out)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs") {
            std::fs::remove_file(path)?;
        }
    }
    let mut written = Vec::new();
    for (module, package, code) in &generated {
        let path = out.join(format!("{module}.rs"));
        let text = format!(
            "//! Generated by `cargo xtask protogen` from the protobuf package `{package}` \
             ({K8S_MODULE_VERSION}); do not edit.\n\n\
             use crate::error::{{DecodeError, WireType}};\n\
             #[allow(unused_imports)]\nuse crate::field::{{Field, OmitEmpty}};\n\
             use crate::message::Message;\nuse crate::wire::{{Reader, Writer}};\n\n{code}"
        );
        std::fs::write(&path, text)?;
        written.push(path);
    }
    let mod_rs = out.join("mod.rs");
    std::fs::write(&mod_rs, mod_rs_text(&generated, &kinds, &skipped_messages))?;
    written.push(mod_rs.clone());
    let status = Command::new("rustfmt")
        .arg("--edition")
        .arg("2024")
        .args(&written)
        .status()?;
    if !status.success() {
        bail!("rustfmt failed on the generated code");
    }
    println!(
        "protogen: {} files, {} kinds, {} messages skipped (listed in {})",
        written.len(),
        kinds.len(),
        skipped_messages.len(),
        mod_rs.display()
    );
    Ok(())
}

fn is_list(message: &prost_types::DescriptorProto) -> bool {
    let field = |n: i32| message.field.iter().find(|f| f.number() == n);
    message.name().ends_with("List")
        && field(1).is_some_and(|f| f.name() == "metadata")
        && field(2).is_some_and(|f| f.name() == "items")
}

fn mod_rs_text(
    generated: &[(String, String, String)],
    kinds: &[String],
    skipped: &[(String, &str)],
) -> String {
    let mut text = String::from(
        "//! The generated `Message` impls, one module per protobuf package, and the\n\
         //! table of top-level kinds behind [`codec`](crate::codec()).\n//!\n\
         //! Generated by `cargo xtask protogen`; do not edit. Regenerate after\n\
         //! changing the pinned Kubernetes modules or k8s-openapi.\n//!\n\
         //! Protobuf messages without a generated impl:\n//!\n\
         //! | message or package | why |\n//! |---|---|\n",
    );
    for (name, why) in skipped {
        let _ = writeln!(text, "//! | `{name}` | {why} |");
    }
    for (message, field, why) in SKIPPED_FIELDS {
        let _ = writeln!(text, "//! | `{message}.{field}` (field) | {why} |");
    }
    text.push_str("//!\n//! Hand-written in [`crate::special`]:");
    for name in HAND_WRITTEN {
        let _ = write!(text, " `{}`", name.rsplit('.').next().unwrap_or(name));
    }
    text.push_str(".\n\n");
    for (module, package, _) in generated {
        let _ = writeln!(text, "/// `{package}`.\nmod {module};");
    }
    text.push_str(
        "\nuse crate::codec::{Entry, entry};\n\n\
         /// Every top-level kind the API server serves as protobuf.\n\
         pub(crate) static CODECS: &[Entry] = &[\n",
    );
    for kind in kinds {
        let _ = writeln!(text, "    entry::<{kind}>,");
    }
    text.push_str("];\n\n");
    text.push_str(
        "/// Calls `$callback!(Type)` for every top-level kind that has a codec\n\
         /// (for tests that go over all of them).\n\
         #[doc(hidden)]\n#[macro_export]\nmacro_rules! for_each_kind {\n    ($callback:ident) => {\n",
    );
    for kind in kinds {
        let _ = writeln!(text, "        $callback!({kind});");
    }
    text.push_str("    };\n}\n");
    text
}

// ---- one message ------------------------------------------------------------

fn message_impl(
    full: &str,
    message: &prost_types::DescriptorProto,
    go: &GoStruct,
    rust: &RustStruct,
    all: &All,
) -> Result<String> {
    let ty = rust_path_of(full);
    if rust.empty_object {
        if !message.field.is_empty() {
            bail!("{full} has fields but k8s-openapi holds it as an opaque JSON value");
        }
        return Ok(format!(
            "impl Message for {ty} {{\n\
             const PROTO_NAME: &'static str = \"{full}\";\n\
             fn empty() -> Self {{\nSelf(serde_json::Value::Object(serde_json::Map::new()))\n}}\n\
             fn merge_field(&mut self, _field: u32, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {{\n\
             reader.skip(wire)\n}}\n\
             fn encode_fields(&self, _writer: &mut Writer) {{}}\n}}\n\n"
        ));
    }
    let mut code = Code::default();
    fields_code(full, full, message, go, rust, all, 0, &mut code)?;
    let Code {
        merge,
        encode,
        finish,
    } = code;
    let finish = if finish.is_empty() {
        String::new()
    } else {
        format!("fn finish(&mut self) {{\n{finish}}}\n")
    };
    let writer_unused = if encode.is_empty() { "_" } else { "" };
    let empty = if rust.has_default {
        "Self::default()".to_string()
    } else {
        let fields: String = rust
            .all_fields
            .iter()
            .map(|f| format!("{f}: crate::field::Empty::empty(),\n"))
            .collect();
        format!("Self {{\n{fields}}}")
    };
    Ok(format!(
        "impl Message for {ty} {{\n\
         const PROTO_NAME: &'static str = \"{full}\";\n\
         fn empty() -> Self {{\n{empty}\n}}\n\
         fn merge_field(&mut self, field: u32, wire: WireType, reader: &mut Reader<'_>) -> Result<(), DecodeError> {{\n\
         match field {{\n{merge}_ => reader.skip(wire),\n}}\n}}\n\
         fn encode_fields(&self, {writer_unused}writer: &mut Writer) {{\n{encode}}}\n\
         {finish}}}\n\n"
    ))
}

/// Every parsed message (by `.package.Name`) and Go struct (by package, name).
#[derive(Default)]
struct All {
    messages: BTreeMap<String, prost_types::DescriptorProto>,
    go: BTreeMap<String, BTreeMap<String, GoStruct>>,
}

impl All {
    /// Resolves type name `name` used in message `scope` (`a.b.C`) as protobuf
    /// does: fully qualified if it starts with a dot, else from the innermost
    /// enclosing package outwards.
    fn resolve(&self, scope: &str, name: &str) -> Option<(String, &prost_types::DescriptorProto)> {
        if name.starts_with('.') {
            return self.messages.get(name).map(|m| (name.to_string(), m));
        }
        let mut prefix = scope;
        while let Some((outer, _)) = prefix.rsplit_once('.') {
            let candidate = format!(".{outer}.{name}");
            if let Some(message) = self.messages.get(&candidate) {
                return Some((candidate, message));
            }
            prefix = outer;
        }
        let candidate = format!(".{name}");
        self.messages.get(&candidate).map(|m| (candidate, m))
    }
}

#[derive(Default)]
struct Code {
    merge: String,
    encode: String,
    finish: String,
}

/// The merge arms, encode lines and normalisations of `message`'s fields,
/// whose Rust fields are in `rust` (itself, or the struct it is inlined in
/// at nesting `depth`).
#[allow(clippy::too_many_arguments)]
fn fields_code(
    outer: &str,
    full: &str,
    message: &prost_types::DescriptorProto,
    go: &GoStruct,
    rust: &RustStruct,
    all: &All,
    depth: usize,
    code: &mut Code,
) -> Result<()> {
    let (reader, writer) = if depth == 0 {
        ("reader".to_string(), "writer".to_string())
    } else {
        (format!("inner{depth}"), format!("inner{depth}"))
    };
    for field in &message.field {
        let number = field.number();
        let go_field = go.fields.get(&number).with_context(|| {
            format!(
                "{full}: protobuf field {} ({number}) has no Go struct field with that number",
                field.name()
            )
        })?;
        if go_field.json.is_empty() {
            // an inlined struct: its fields are fields of the outer Rust struct
            let (type_name, inner_message) =
                all.resolve(full, field.type_name()).with_context(|| {
                    format!(
                        "{full}: inlined field {} of unknown type {}",
                        field.name(),
                        field.type_name()
                    )
                })?;
            let inner_full = type_name.trim_start_matches('.').to_string();
            let (inner_package, inner_name) =
                inner_full.rsplit_once('.').unwrap_or(("", &inner_full));
            let inner_go = all
                .go
                .get(inner_package)
                .and_then(|structs| structs.get(inner_name))
                .with_context(|| format!("{full}: inlined {inner_full} has no Go struct"))?;
            let mut inner = Code::default();
            fields_code(
                outer,
                &inner_full,
                inner_message,
                inner_go,
                rust,
                all,
                depth + 1,
                &mut inner,
            )?;
            let var = format!("inner{}", depth + 1);
            let Code {
                merge,
                encode,
                finish,
            } = inner;
            let _ = writeln!(
                code.merge,
                "{number} => {reader}.nested(wire, |{var}| {{\n\
                 while let Some((field, wire)) = {var}.read_key()? {{\n\
                 match field {{\n{merge}_ => {var}.skip(wire),\n}}\n\
                 .map_err(|e| e.within(\"{inner_full}\", field))?;\n}}\nOk(())\n}}),"
            );
            let _ = writeln!(
                code.encode,
                "{writer}.put_nested({number}, |{var}| {{\n{encode}}});"
            );
            code.finish.push_str(&finish);
            continue;
        }
        let Some(rust_field) = rust.fields.get(&go_field.json) else {
            if SKIPPED_FIELDS
                .iter()
                .any(|(m, f, _)| *m == full && *f == field.name())
            {
                continue;
            }
            bail!(
                "{full}: protobuf field {} ({number}, JSON `{}`) has no field in the k8s-openapi struct of {outer} \
                 (add it to SKIPPED_FIELDS with a reason if that is deliberate)",
                field.name(),
                go_field.json
            );
        };
        let name = &rust_field.name;
        let _ = writeln!(
            code.merge,
            "{number} => Field::merge_from(&mut self.{name}, wire, {reader}),"
        );
        let _ = writeln!(
            code.encode,
            "Field::encode_as(&self.{name}, {number}, {writer});"
        );
        code.finish
            .push_str(&normalisation(field, go_field, rust_field));
    }
    Ok(())
}

/// The `finish` line for a field whose zero value the Go protobuf encoder
/// writes but the JSON encoder omits: a non-pointer scalar with `omitempty`.
fn normalisation(
    field: &prost_types::FieldDescriptorProto,
    go: &GoField,
    rust: &RustField,
) -> String {
    use prost_types::field_descriptor_proto::Type;
    let scalar = field.type_name().is_empty()
        && matches!(
            field.r#type(),
            Type::String | Type::Bool | Type::Int32 | Type::Int64 | Type::Double | Type::Bytes
        );
    let repeated = field.label() == prost_types::field_descriptor_proto::Label::Repeated;
    if scalar && !repeated && go.omitempty && !go.pointer && rust.optional {
        format!("self.{}.omit_empty();\n", rust.name)
    } else {
        String::new()
    }
}

// ---- Go struct tags ----------------------------------------------------------------

struct GoField {
    json: String,
    omitempty: bool,
    pointer: bool,
}

struct GoStruct {
    fields: BTreeMap<i32, GoField>,
}

/// The protobuf-tagged fields of every struct in the Go package in `dir`.
fn go_structs(dir: &Path) -> Result<BTreeMap<String, GoStruct>> {
    let mut structs = BTreeMap::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.sort();
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !name.ends_with(".go") || name.ends_with("_test.go") || name.ends_with(".pb.go") {
            continue;
        }
        let source = std::fs::read_to_string(&path)?;
        let mut current: Option<(String, GoStruct)> = None;
        let imports = go_imports(&source);
        for line in source.lines() {
            let trimmed = line.trim();
            // `type MatchCondition v1.MatchCondition`: a struct of another package
            if let Some(rest) = trimmed.strip_prefix("type ") {
                let tokens: Vec<&str> = rest.split_whitespace().collect();
                if let [name, target] = tokens.as_slice()
                    && let Some((alias, type_name)) = target.split_once('.')
                    && let Some(import) = imports.get(alias)
                {
                    let dir = go_package_dir(import)?;
                    let mut other = go_structs(&dir)?;
                    if let Some(found) = other.remove(type_name) {
                        structs.insert(name.to_string(), found);
                    }
                }
            }
            if let Some(rest) = trimmed.strip_prefix("type ")
                && let Some(name) = rest.strip_suffix(" struct {")
            {
                current = Some((
                    name.trim().to_string(),
                    GoStruct {
                        fields: BTreeMap::new(),
                    },
                ));
                continue;
            }
            if line == "}" {
                if let Some((name, go)) = current.take() {
                    structs.insert(name, go);
                }
                continue;
            }
            let Some((_, go)) = current.as_mut() else {
                continue;
            };
            let Some((decl, tags)) = trimmed.split_once('`') else {
                continue;
            };
            let Some(protobuf) = tag(tags, "protobuf").filter(|p| *p != "-") else {
                continue;
            };
            let number: i32 = protobuf
                .split(',')
                .nth(1)
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("{}: bad protobuf tag in `{trimmed}`", path.display()))?;
            let json = tag(tags, "json").unwrap_or_default();
            let mut json_parts = json.split(',');
            let json_name = json_parts.next().unwrap_or_default().to_string();
            let options: Vec<&str> = json_parts.collect();
            let omitempty = options.contains(&"omitempty");
            let tokens: Vec<&str> = decl.split_whitespace().collect();
            let go_type = if tokens.len() >= 2 {
                tokens[1]
            } else {
                tokens.first().copied().unwrap_or("")
            };
            let inline = json_name.is_empty() || options.contains(&"inline");
            go.fields.insert(
                number,
                GoField {
                    json: if inline { String::new() } else { json_name },
                    omitempty,
                    pointer: go_type.starts_with('*'),
                },
            );
        }
    }
    Ok(structs)
}

/// The imports of a Go file: alias (or last path element) → import path.
fn go_imports(source: &str) -> BTreeMap<String, String> {
    let mut imports = BTreeMap::new();
    for line in source.lines() {
        let line = line.trim().trim_start_matches("import ").trim();
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let (alias, path) = match tokens.as_slice() {
            [path] if path.starts_with("\"k8s.io/") => {
                let path = path.trim_matches('"');
                (path.rsplit('/').next().unwrap_or(path), path)
            }
            [alias, path] if path.starts_with("\"k8s.io/") => (*alias, path.trim_matches('"')),
            _ => continue,
        };
        imports.insert(alias.to_string(), path.to_string());
    }
    imports
}

/// The directory of Go package `import` (`k8s.io/api/core/v1`) in the module cache.
fn go_package_dir(import: &str) -> Result<PathBuf> {
    let cache = go_mod_cache()?;
    for module in MODULES {
        if let Some(rest) = import.strip_prefix(module)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return Ok(module_dir(&cache, module)?.join(rest.trim_start_matches('/')));
        }
    }
    bail!("Go package {import} is outside the generated modules")
}

/// The value of `key:"value"` in a Go struct tag.
fn tag<'a>(tags: &'a str, key: &str) -> Option<&'a str> {
    let start = tags.find(&format!("{key}:\""))? + key.len() + 2;
    let end = tags[start..].find('"')?;
    Some(&tags[start..start + end])
}

// ---- k8s-openapi ---------------------------------------------------------------------

struct RustField {
    name: String,
    optional: bool,
}

struct RustStruct {
    /// JSON name → Rust field
    fields: BTreeMap<String, RustField>,
    /// every field, in declaration order
    all_fields: Vec<String>,
    /// whether it derives `Default`
    has_default: bool,
    /// a `serde_json::Value` newtype standing for an empty Go struct
    empty_object: bool,
    is_resource: bool,
}

/// The structs of one k8s-openapi module directory, by name.
fn rust_structs(dir: &Path) -> Result<BTreeMap<String, RustStruct>> {
    let mut structs = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("mod.rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path)?;
        let Some(name) = source.lines().find_map(|l| {
            l.strip_prefix("pub struct ")
                .map(|r| r.trim_end_matches(" {").trim().to_string())
        }) else {
            continue;
        };
        // An empty Go struct is a JSON object without properties in the
        // OpenAPI schema, which k8s-openapi holds as a `serde_json::Value`.
        if let Some(newtype) = name.strip_suffix("(pub crate::serde_json::Value);") {
            let rust = RustStruct {
                fields: BTreeMap::new(),
                all_fields: Vec::new(),
                has_default: false,
                is_resource: false,
                empty_object: true,
            };
            structs.insert(newtype.to_string(), rust);
            continue;
        }
        // field declarations: `    pub name: Type,` inside the struct
        let mut optional = BTreeMap::new();
        let mut all_fields = Vec::new();
        for line in source
            .lines()
            .skip_while(|l| !l.starts_with("pub struct "))
            .skip(1)
        {
            if line == "}" {
                break;
            }
            if let Some(rest) = line.trim().strip_prefix("pub ")
                && let Some((field, ty)) = rest.split_once(": ")
            {
                optional.insert(field.to_string(), ty.starts_with("Option<"));
                all_fields.push(field.to_string());
            }
        }
        // JSON names: `"json" => Field::Key_rust,` of the Deserialize impl
        let mut fields = BTreeMap::new();
        for line in source.lines() {
            let line = line.trim();
            let Some((json, rest)) = line.split_once("\" => Field::Key_") else {
                continue;
            };
            let json = json.trim_start_matches('"').to_string();
            let rust = rest.trim_end_matches(',').to_string();
            let Some(&is_optional) = optional.get(&rust) else {
                if json == "apiVersion" || json == "kind" {
                    // a top-level kind's type meta: implied by its `Resource` impl
                    continue;
                }
                bail!(
                    "{}: JSON `{json}` maps to `{rust}`, which is not a field of {name}",
                    path.display()
                );
            };
            fields.insert(
                json,
                RustField {
                    name: rust,
                    optional: is_optional,
                },
            );
        }
        let is_resource = source.contains(&format!("impl crate::Resource for {name} {{"));
        let has_default = source
            .lines()
            .take_while(|l| !l.starts_with("pub struct "))
            .any(|l| l.starts_with("#[derive(") && l.contains("Default"));
        let rust = RustStruct {
            fields,
            all_fields,
            has_default,
            is_resource,
            empty_object: false,
        };
        structs.insert(name, rust);
    }
    Ok(structs)
}

/// `k8s.io.api.core.v1` → `api/core/v1` under the k8s-openapi v1_37 source, if it exists.
fn rust_module_dir(openapi: &Path, package: &str) -> Option<PathBuf> {
    let relative = package.strip_prefix("k8s.io.")?.replace('.', "/");
    let dir = openapi.join(relative);
    dir.is_dir().then_some(dir)
}

/// `k8s.io.api.core.v1` → `k8s_openapi::api::core::v1`.
fn rust_path(package: &str) -> String {
    format!(
        "k8s_openapi::{}",
        package.trim_start_matches("k8s.io.").replace('.', "::")
    )
}

fn rust_path_of(full: &str) -> String {
    let (package, name) = full.rsplit_once('.').unwrap_or(("", full));
    format!("{}::{name}", rust_path(package))
}

/// `k8s.io.api.core.v1` → `api_core_v1`.
fn module_name(package: &str) -> String {
    package
        .trim_start_matches("k8s.io.")
        .trim_start_matches("apimachinery.pkg.")
        .trim_start_matches("apiextensions_apiserver.pkg.apis.")
        .trim_start_matches("kube_aggregator.pkg.apis.")
        .replace('.', "_")
}

// ---- locations -------------------------------------------------------------------------

fn workspace_root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Ok(manifest
        .parent()
        .context("xtask has no parent directory")?
        .to_path_buf())
}

/// The k8s-openapi 0.29 `src/v1_37` directory in the cargo registry.
fn k8s_openapi_source() -> Result<PathBuf> {
    let output = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(workspace_root()?)
        .output()
        .context("cargo metadata")?;
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("cargo metadata output")?;
    let manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| {
            p["name"] == "k8s-openapi"
                && p["version"]
                    .as_str()
                    .is_some_and(|v| v.starts_with("0.29."))
        })
        .and_then(|p| p["manifest_path"].as_str())
        .context("k8s-openapi 0.29 is not a dependency of the workspace")?;
    let dir = Path::new(manifest)
        .parent()
        .context("manifest path")?
        .join("src/v1_37");
    if !dir.is_dir() {
        bail!("{} does not exist", dir.display());
    }
    Ok(dir)
}

fn go_mod_cache() -> Result<PathBuf> {
    let output = Command::new("go")
        .args(["env", "GOMODCACHE"])
        .output()
        .context("go env GOMODCACHE (is Go installed?)")?;
    let path = String::from_utf8(output.stdout)?.trim().to_string();
    if path.is_empty() {
        bail!("go env GOMODCACHE printed nothing");
    }
    Ok(PathBuf::from(path))
}

/// The module's directory in the module cache, downloaded if missing.
fn module_dir(cache: &Path, module: &str) -> Result<PathBuf> {
    let dir = cache.join(format!("{module}@{K8S_MODULE_VERSION}"));
    if !dir.is_dir() {
        let target = format!("{module}@{K8S_MODULE_VERSION}");
        println!("protogen: go mod download {target}");
        let status = Command::new("go")
            .args(["mod", "download", &target])
            .env("GOFLAGS", "-mod=mod")
            .status()
            .context("go mod download")?;
        if !status.success() || !dir.is_dir() {
            bail!("go mod download {target} failed");
        }
    }
    Ok(dir)
}

/// Every `generated.proto` under `dir`, sorted, except test-only API groups.
fn find_protos(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.ends_with("generated.proto")
                && !path.to_string_lossy().contains("testapigroup")
            {
                found.push(path);
            }
        }
    }
    let found: BTreeSet<PathBuf> = found.into_iter().collect();
    Ok(found.into_iter().collect())
}
