//! Parsing `#[kube(...)]`.
//!
//! Guarantees: every key is known; the single-valued ones are given at most
//! once and `group`, `version`, `kind` always; every value is checked as far
//! as compile time allows (names are valid Kubernetes names, printer columns
//! and scale are well-formed JSON with the fields the API server requires,
//! scale paths start with `.spec.`/`.status.`). Each error points at the
//! offending key or literal; a type or path given as a string is parsed with
//! the string's span, so rustc's own errors ("cannot find type") point there.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use serde_json::{Map, Value, json};
use syn::meta::ParseNestedMeta;
use syn::{DeriveInput, Error, Ident, LitStr, Path, Result, Token, Type};

/// The paths generated code uses for the crates it needs.
pub struct Crates {
    pub kube_client: Path,
    pub k8s_openapi: Path,
    pub serde: Path,
    pub serde_json: Path,
    pub schemars: Path,
}

/// Everything `#[kube(...)]` said, checked.
pub struct KubeAttrs {
    pub group: String,
    pub version: String,
    pub kind: String,
    /// The wrapper type's name: `kind`, spanned at the `kind` literal.
    pub kind_ident: Ident,
    pub namespaced: bool,
    pub status: Option<Type>,
    pub plural: Option<String>,
    pub singular: Option<String>,
    pub shortnames: Vec<String>,
    pub categories: Vec<String>,
    /// `additionalPrinterColumns` entries.
    pub printcolumns: Vec<Value>,
    /// `selectableFields` JSON paths.
    pub selectable: Vec<String>,
    /// `x-kubernetes-validations` entries for the spec schema.
    pub validations: Vec<Value>,
    /// The scale subresource.
    pub scale: Option<Value>,
    /// Extra derives for the wrapper type.
    pub derives: Vec<Path>,
    pub crates: Crates,
}

const KEYS: &str = "group, version, kind, namespaced, status, plural, singular, shortname, \
                    category, printcolumn, selectable, validation, scale, derive, crates";

#[derive(Default)]
struct Builder {
    group: Option<LitStr>,
    version: Option<LitStr>,
    kind: Option<LitStr>,
    namespaced: Option<()>,
    status: Option<Type>,
    plural: Option<LitStr>,
    singular: Option<LitStr>,
    shortnames: Vec<String>,
    categories: Vec<String>,
    printcolumns: Vec<Value>,
    selectable: Vec<String>,
    validations: Vec<Value>,
    scale: Option<Value>,
    derives: Vec<Path>,
    kube_client: Option<Path>,
    k8s_openapi: Option<Path>,
    serde: Option<Path>,
    serde_json: Option<Path>,
    schemars: Option<Path>,
}

fn key_name(path: &Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}

fn set_once<T>(slot: &mut Option<T>, value: T, path: &Path) -> Result<()> {
    if slot.is_some() {
        return Err(Error::new_spanned(
            path,
            format!("duplicate `{}` in #[kube(...)]", key_name(path)),
        ));
    }
    *slot = Some(value);
    Ok(())
}

fn string(meta: &ParseNestedMeta) -> Result<LitStr> {
    meta.value()?.parse()
}

/// A lowercase RFC 1123 DNS label: what the API server wants for plural,
/// singular, short names, categories and versions.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn label(lit: LitStr, what: &str) -> Result<LitStr> {
    if is_dns_label(&lit.value()) {
        Ok(lit)
    } else {
        Err(Error::new(
            lit.span(),
            format!("{what} must be a lowercase DNS label (a-z, 0-9, `-`)"),
        ))
    }
}

impl Builder {
    fn entry(&mut self, meta: ParseNestedMeta) -> Result<()> {
        let path = meta.path.clone();
        let Some(key) = path.get_ident().map(Ident::to_string) else {
            return Err(meta.error(format!("unknown attribute; expected one of: {KEYS}")));
        };
        match key.as_str() {
            "group" => {
                let lit = string(&meta)?;
                let v = lit.value();
                if !v.contains('.') || !v.split('.').all(is_dns_label) {
                    return Err(Error::new(
                        lit.span(),
                        "group must be a lowercase DNS subdomain with at least one dot, e.g. `example.com`",
                    ));
                }
                set_once(&mut self.group, lit, &path)
            }
            "version" => {
                let lit = label(string(&meta)?, "version")?;
                if !lit.value().starts_with(|c: char| c.is_ascii_lowercase()) {
                    return Err(Error::new(
                        lit.span(),
                        "version must start with a letter, e.g. `v1`",
                    ));
                }
                set_once(&mut self.version, lit, &path)
            }
            "kind" => {
                let lit = string(&meta)?;
                let v = lit.value();
                let ident_like = syn::parse_str::<Ident>(&v).is_ok();
                if !ident_like || !v.starts_with(|c: char| c.is_ascii_uppercase()) {
                    return Err(Error::new(
                        lit.span(),
                        "kind must be a CamelCase identifier, e.g. `Foo`: it names the generated type",
                    ));
                }
                set_once(&mut self.kind, lit, &path)
            }
            "namespaced" => {
                if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                    return Err(meta.error("`namespaced` takes no value"));
                }
                set_once(&mut self.namespaced, (), &path)
            }
            "status" => {
                let ty = string(&meta)?.parse::<Type>()?;
                set_once(&mut self.status, ty, &path)
            }
            "plural" => set_once(&mut self.plural, label(string(&meta)?, "plural")?, &path),
            "singular" => set_once(
                &mut self.singular,
                label(string(&meta)?, "singular")?,
                &path,
            ),
            "shortname" => {
                let lit = label(string(&meta)?, "shortname")?;
                self.shortnames.push(lit.value());
                Ok(())
            }
            "category" => {
                let lit = label(string(&meta)?, "category")?;
                self.categories.push(lit.value());
                Ok(())
            }
            "printcolumn" => {
                let lit = string(&meta)?;
                self.printcolumns.push(printcolumn(&lit)?);
                Ok(())
            }
            "selectable" => {
                let lit = string(&meta)?;
                let v = lit.value();
                if !(v.starts_with(".spec.") || v.starts_with(".status.")) {
                    return Err(Error::new(
                        lit.span(),
                        "selectable must be a JSON path into .spec or .status, e.g. `.spec.color`",
                    ));
                }
                self.selectable.push(v);
                Ok(())
            }
            "validation" => {
                let rule = validation(&meta)?;
                self.validations.push(rule);
                Ok(())
            }
            "scale" => {
                let lit = string(&meta)?;
                set_once(&mut self.scale, scale(&lit)?, &path)
            }
            "derive" => {
                self.derives.push(string(&meta)?.parse::<Path>()?);
                Ok(())
            }
            "crates" => meta.parse_nested_meta(|inner| self.crate_path(inner)),
            _ => Err(Error::new_spanned(
                &path,
                format!("unknown attribute `{key}`; expected one of: {KEYS}"),
            )),
        }
    }

    fn crate_path(&mut self, meta: ParseNestedMeta) -> Result<()> {
        let path = meta.path.clone();
        let slot = match path.get_ident().map(Ident::to_string).as_deref() {
            Some("kube_client") => &mut self.kube_client,
            Some("k8s_openapi") => &mut self.k8s_openapi,
            Some("serde") => &mut self.serde,
            Some("serde_json") => &mut self.serde_json,
            Some("schemars") => &mut self.schemars,
            _ => {
                return Err(Error::new_spanned(
                    &path,
                    format!(
                        "unknown crate `{}`; expected one of: kube_client, k8s_openapi, serde, serde_json, schemars",
                        key_name(&path)
                    ),
                ));
            }
        };
        let value = string(&meta)?.parse::<Path>()?;
        set_once(slot, value, &path)
    }
}

/// `validation = "rule"` or `validation(rule = "...", message = "...")`.
fn validation(meta: &ParseNestedMeta) -> Result<Value> {
    if meta.input.peek(Token![=]) {
        let lit = string(meta)?;
        return non_empty_rule(&lit).map(|rule| json!({ "rule": rule }));
    }
    let (mut rule, mut message) = (None, None);
    meta.parse_nested_meta(|inner| {
        let path = inner.path.clone();
        let slot = if path.is_ident("rule") {
            &mut rule
        } else if path.is_ident("message") {
            &mut message
        } else {
            return Err(Error::new_spanned(
                &path,
                "unknown key in validation(...); expected `rule` or `message`",
            ));
        };
        set_once(slot, string(&inner)?, &path)
    })?;
    let rule = rule.ok_or_else(|| meta.error("validation(...) needs `rule = \"...\"`"))?;
    let mut entry = json!({ "rule": non_empty_rule(&rule)? });
    if let Some(message) = message {
        entry["message"] = message.value().into();
    }
    Ok(entry)
}

fn non_empty_rule(lit: &LitStr) -> Result<String> {
    let rule = lit.value();
    if rule.trim().is_empty() {
        return Err(Error::new(
            lit.span(),
            "a validation rule must not be empty",
        ));
    }
    Ok(rule)
}

fn json_object(lit: &LitStr, what: &str, example: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(&lit.value()) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::new(
            lit.span(),
            format!("{what} must be a JSON object, e.g. {example}"),
        )),
        Err(e) => Err(Error::new(
            lit.span(),
            format!("{what} is not valid JSON: {e}"),
        )),
    }
}

fn string_field<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    lit: &LitStr,
    what: &str,
) -> Result<Option<&'a str>> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::new(
            lit.span(),
            format!("{what}: `{key}` must be a string"),
        )),
    }
}

fn printcolumn(lit: &LitStr) -> Result<Value> {
    const WHAT: &str = "printcolumn";
    let example = r#"{"name":"Size","type":"integer","jsonPath":".spec.size"}"#;
    let map = json_object(lit, WHAT, example)?;
    let err = |msg: String| Error::new(lit.span(), format!("{WHAT}: {msg}"));
    for key in map.keys() {
        if ![
            "name",
            "type",
            "jsonPath",
            "description",
            "format",
            "priority",
        ]
        .contains(&key.as_str())
        {
            return Err(err(format!(
                "unknown field `{key}`; expected name, type, jsonPath, description, format, priority"
            )));
        }
    }
    for key in ["name", "type", "jsonPath"] {
        if string_field(&map, key, lit, WHAT)?.is_none_or(str::is_empty) {
            return Err(err(format!("`{key}` is required, e.g. {example}")));
        }
    }
    let ty = string_field(&map, "type", lit, WHAT)?.unwrap_or_default();
    if !["integer", "number", "string", "boolean", "date"].contains(&ty) {
        return Err(err(format!(
            "type `{ty}` is not one of integer, number, string, boolean, date"
        )));
    }
    if !string_field(&map, "jsonPath", lit, WHAT)?.is_some_and(|p| p.starts_with('.')) {
        return Err(err(
            "`jsonPath` must start with `.`, e.g. `.spec.size`".into()
        ));
    }
    string_field(&map, "description", lit, WHAT)?;
    let formats = [
        "int32",
        "int64",
        "float",
        "double",
        "byte",
        "date",
        "date-time",
        "password",
    ];
    if let Some(format) = string_field(&map, "format", lit, WHAT)?
        && !formats.contains(&format)
    {
        return Err(err(format!(
            "format `{format}` is not one of {}",
            formats.join(", ")
        )));
    }
    if map
        .get("priority")
        .is_some_and(|p| p.as_u64().is_none_or(|p| p > i32::MAX as u64))
    {
        return Err(err("`priority` must be a non-negative integer".into()));
    }
    Ok(Value::Object(map))
}

fn scale(lit: &LitStr) -> Result<Value> {
    const WHAT: &str = "scale";
    let example =
        r#"{"specReplicasPath":".spec.replicas","statusReplicasPath":".status.replicas"}"#;
    let map = json_object(lit, WHAT, example)?;
    let err = |msg: String| Error::new(lit.span(), format!("{WHAT}: {msg}"));
    for key in map.keys() {
        if ![
            "specReplicasPath",
            "statusReplicasPath",
            "labelSelectorPath",
        ]
        .contains(&key.as_str())
        {
            return Err(err(format!(
                "unknown field `{key}`; expected specReplicasPath, statusReplicasPath, labelSelectorPath"
            )));
        }
    }
    let rules: [(&str, &[&str], bool); 3] = [
        ("specReplicasPath", &[".spec."], true),
        ("statusReplicasPath", &[".status."], true),
        ("labelSelectorPath", &[".spec.", ".status."], false),
    ];
    for (key, prefixes, required) in rules {
        match string_field(&map, key, lit, WHAT)? {
            None if required => return Err(err(format!("`{key}` is required, e.g. {example}"))),
            None => {}
            Some(path)
                if !prefixes
                    .iter()
                    .any(|p| path.starts_with(p) && path.len() > p.len()) =>
            {
                let under: Vec<String> = prefixes.iter().map(|p| format!("`{p}`")).collect();
                return Err(err(format!(
                    "`{key}` must be a JSON path under {}, got `{path}`",
                    under.join(" or ")
                )));
            }
            Some(_) => {}
        }
    }
    Ok(Value::Object(map))
}

fn default_path(name: &str) -> Path {
    let ident = Ident::new(name, Span::call_site());
    syn::parse_quote!(::#ident)
}

/// Reads every `#[kube(...)]` of the input.
pub fn parse(input: &DeriveInput) -> Result<KubeAttrs> {
    let mut b = Builder::default();
    let mut errors: Option<Error> = None;
    let mut anchor: TokenStream = input.ident.to_token_stream();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("kube")) {
        anchor = attr.to_token_stream();
        if let Err(e) = attr.parse_nested_meta(|meta| b.entry(meta)) {
            match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            }
        }
    }
    if let Some(e) = errors {
        return Err(e);
    }
    let missing = |what: &str, example: &str| {
        Error::new_spanned(
            &anchor,
            format!("missing `{what} = \"...\"` in #[kube(...)], e.g. `{what} = \"{example}\"`"),
        )
    };
    let (group, version, kind) = match (b.group, b.version, b.kind) {
        (Some(g), Some(v), Some(k)) => (g, v, k),
        (g, v, k) => {
            let mut all: Vec<Error> = Vec::new();
            if g.is_none() {
                all.push(missing("group", "example.com"));
            }
            if v.is_none() {
                all.push(missing("version", "v1"));
            }
            if k.is_none() {
                all.push(missing("kind", "Foo"));
            }
            let mut first = all.remove(0);
            all.into_iter().for_each(|e| first.combine(e));
            return Err(first);
        }
    };
    Ok(KubeAttrs {
        kind_ident: Ident::new(&kind.value(), kind.span()),
        group: group.value(),
        version: version.value(),
        kind: kind.value(),
        namespaced: b.namespaced.is_some(),
        status: b.status,
        plural: b.plural.map(|l| l.value()),
        singular: b.singular.map(|l| l.value()),
        shortnames: b.shortnames,
        categories: b.categories,
        printcolumns: b.printcolumns,
        selectable: b.selectable,
        validations: b.validations,
        scale: b.scale,
        derives: b.derives,
        crates: Crates {
            kube_client: b.kube_client.unwrap_or_else(|| default_path("kube_client")),
            k8s_openapi: b.k8s_openapi.unwrap_or_else(|| default_path("k8s_openapi")),
            serde: b.serde.unwrap_or_else(|| default_path("serde")),
            serde_json: b.serde_json.unwrap_or_else(|| default_path("serde_json")),
            schemars: b.schemars.unwrap_or_else(|| default_path("schemars")),
        },
    })
}

#[cfg(test)]
mod tests;
