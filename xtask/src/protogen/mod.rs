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
//! Output: one module per API group version, formatted with rustfmt — a
//! file, or a directory of parts when the file would pass the project's line
//! limit (see [`layout`]) — and `mod.rs` with the table of kinds.
//! Regenerating twice gives the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use protox_parse::parse;

mod layout;
mod sources;
use layout::PackageCode;
use sources::{
    GoField, GoStruct, RustField, RustStruct, find_protos, go_mod_cache, go_structs,
    k8s_openapi_source, module_dir, module_name, rust_module_dir, rust_path, rust_path_of,
    rust_structs, workspace_root,
};

/// The version of the Kubernetes Go modules whose protobuf schema is generated
/// (the kube-apiserver kube-testenv pins is v1.37.2).
pub const K8S_MODULE_VERSION: &str = "v0.37.2";

/// The Go modules with `generated.proto` files.
pub(super) const MODULES: &[&str] = &[
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

/// Fields a flag of kube-protobuf's `DecodeOptions` skips without decoding:
/// (message, JSON name, the `DecodeOptions` field).
const OPTIONAL_FIELDS: &[(&str, &str, &str)] = &[(
    "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    "managedFields",
    "skip_managed_fields",
)];

/// Protobuf fields deliberately not mapped to a Rust field: (message, field
/// name, why). Everything else without a Rust field is an error.
const SKIPPED_FIELDS: &[(&str, &str, &str)] = &[];

pub fn run(args: &[&str]) -> Result<()> {
    let check = match args {
        [] => false,
        ["--check"] => true,
        _ => bail!("usage: cargo xtask protogen [--check]"),
    };
    let root = workspace_root()?;
    let committed = root.join("kube-protobuf/src/generated");
    // --check: generate into a scratch directory and compare with what is committed
    let out = if check {
        root.join("target/protogen-check")
    } else {
        committed.clone()
    };
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
        let mut impls = Vec::new();
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
            impls.push((
                message.name().to_string(),
                message_impl(&full, message, go, rust, &all)?,
            ));
            if rust.is_resource {
                kinds.push(format!("{}::{}", rust_path(package), message.name()));
            }
        }
        if !impls.is_empty() {
            generated.push(PackageCode {
                module: module_name(package),
                package: package.to_string(),
                impls,
            });
        }
    }

    let mod_rs = mod_rs_text(&generated, &kinds, &skipped_messages);
    let written = layout::write_all(&out, &generated, &mod_rs)?;
    if check {
        return layout::compare_dirs(&out, &committed);
    }
    println!(
        "protogen: {} files, {} kinds, {} messages skipped (listed in {})",
        written.len(),
        kinds.len(),
        skipped_messages.len(),
        committed.join("mod.rs").display()
    );
    Ok(())
}

fn is_list(message: &prost_types::DescriptorProto) -> bool {
    let field = |n: i32| message.field.iter().find(|f| f.number() == n);
    message.name().ends_with("List")
        && field(1).is_some_and(|f| f.name() == "metadata")
        && field(2).is_some_and(|f| f.name() == "items")
}

fn mod_rs_text(generated: &[PackageCode], kinds: &[String], skipped: &[(String, &str)]) -> String {
    let mut text = String::from(
        "//! The generated `Message` impls, one module per protobuf package, and the\n\
         //! table of top-level kinds behind [`codec`](crate::codec()). A package\n\
         //! whose impls would pass 800 lines is a directory of parts.\n//!\n\
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
    for PackageCode {
        module, package, ..
    } in generated
    {
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
        let merge = format!("Field::merge_from(&mut self.{name}, wire, {reader})");
        match OPTIONAL_FIELDS
            .iter()
            .find(|(m, json, _)| *m == full && *json == go_field.json)
        {
            Some((_, _, option)) => {
                let _ = writeln!(
                    code.merge,
                    "{number} => if {reader}.options().{option} {{ {reader}.skip(wire) }} else {{ {merge} }},"
                );
            }
            None => {
                let _ = writeln!(code.merge, "{number} => {merge},");
            }
        }
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
