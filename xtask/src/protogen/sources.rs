//! The three sources `cargo xtask protogen` joins, read without a Go or Rust
//! toolchain API: the Go struct tags next to each `generated.proto`
//! (protobuf field number → JSON name, `omitempty`, pointer, inline), the
//! k8s-openapi sources (JSON name → Rust field, `Option` or not, `Default`
//! or not, top-level kind or not), and where the Go module cache and the
//! k8s-openapi sources are. Anything unexpected is an error naming the file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{K8S_MODULE_VERSION, MODULES};

// ---- Go struct tags ----------------------------------------------------------------

pub(super) struct GoField {
    pub(super) json: String,
    pub(super) omitempty: bool,
    pub(super) pointer: bool,
}

pub(super) struct GoStruct {
    pub(super) fields: BTreeMap<i32, GoField>,
}

/// The protobuf-tagged fields of every struct in the Go package in `dir`.
pub(super) fn go_structs(dir: &Path) -> Result<BTreeMap<String, GoStruct>> {
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
pub(super) fn go_imports(source: &str) -> BTreeMap<String, String> {
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
pub(super) fn go_package_dir(import: &str) -> Result<PathBuf> {
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
pub(super) fn tag<'a>(tags: &'a str, key: &str) -> Option<&'a str> {
    let start = tags.find(&format!("{key}:\""))? + key.len() + 2;
    let end = tags[start..].find('"')?;
    Some(&tags[start..start + end])
}

// ---- k8s-openapi ---------------------------------------------------------------------

pub(super) struct RustField {
    pub(super) name: String,
    pub(super) optional: bool,
}

pub(super) struct RustStruct {
    /// JSON name → Rust field
    pub(super) fields: BTreeMap<String, RustField>,
    /// every field, in declaration order
    pub(super) all_fields: Vec<String>,
    /// whether it derives `Default`
    pub(super) has_default: bool,
    /// a `serde_json::Value` newtype standing for an empty Go struct
    pub(super) empty_object: bool,
    pub(super) is_resource: bool,
}

/// The structs of one k8s-openapi module directory, by name.
pub(super) fn rust_structs(dir: &Path) -> Result<BTreeMap<String, RustStruct>> {
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
pub(super) fn rust_module_dir(openapi: &Path, package: &str) -> Option<PathBuf> {
    let relative = package.strip_prefix("k8s.io.")?.replace('.', "/");
    let dir = openapi.join(relative);
    dir.is_dir().then_some(dir)
}

/// `k8s.io.api.core.v1` → `k8s_openapi::api::core::v1`.
pub(super) fn rust_path(package: &str) -> String {
    format!(
        "k8s_openapi::{}",
        package.trim_start_matches("k8s.io.").replace('.', "::")
    )
}

pub(super) fn rust_path_of(full: &str) -> String {
    let (package, name) = full.rsplit_once('.').unwrap_or(("", full));
    format!("{}::{name}", rust_path(package))
}

/// `k8s.io.api.core.v1` → `api_core_v1`.
pub(super) fn module_name(package: &str) -> String {
    package
        .trim_start_matches("k8s.io.")
        .trim_start_matches("apimachinery.pkg.")
        .trim_start_matches("apiextensions_apiserver.pkg.apis.")
        .trim_start_matches("kube_aggregator.pkg.apis.")
        .replace('.', "_")
}

// ---- locations -------------------------------------------------------------------------

pub(super) fn workspace_root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Ok(manifest
        .parent()
        .context("xtask has no parent directory")?
        .to_path_buf())
}

/// The k8s-openapi 0.29 `src/v1_37` directory in the cargo registry.
pub(super) fn k8s_openapi_source() -> Result<PathBuf> {
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

pub(super) fn go_mod_cache() -> Result<PathBuf> {
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
pub(super) fn module_dir(cache: &Path, module: &str) -> Result<PathBuf> {
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
pub(super) fn find_protos(dir: &Path) -> Result<Vec<PathBuf>> {
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
