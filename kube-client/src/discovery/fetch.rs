//! Reading discovery documents: the aggregated v2 form and the legacy
//! endpoints, turned into the model of the parent module.

use super::*;
// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// The two discovery roots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Root {
    /// `/api`: the core group.
    Core,
    /// `/apis`: every other group.
    Groups,
}

impl Root {
    pub(super) fn path(self) -> &'static str {
        match self {
            Root::Core => "/api",
            Root::Groups => "/apis",
        }
    }

    /// The kind of the legacy document at this root.
    pub(super) fn legacy_kind(self) -> &'static str {
        match self {
            Root::Core => "APIVersions",
            Root::Groups => "APIGroupList",
        }
    }
}

/// What one root contributed.
#[derive(Debug, Default)]
pub(super) struct Part {
    pub(super) groups: Vec<ApiGroup>,
    pub(super) unavailable: Vec<String>,
    pub(super) aggregated: bool,
}

/// A root's answer, decoded.
#[derive(Debug)]
pub(super) enum RootAnswer {
    /// Everything, in one document.
    Aggregated(WireDiscoveryList),
    /// Groups and their versions (preferred first); resources still to read.
    Legacy(Vec<LegacyGroup>),
}

/// A group named by a legacy root document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LegacyGroup {
    pub(super) name: String,
    /// Preferred first.
    pub(super) versions: Vec<String>,
}

pub(super) async fn read_root(client: &Client, root: Root, accept: &str) -> Result<Part> {
    let path = root.path();
    let body = get(client, path, accept).await?;
    match parse_root(&url_of(client, path), &body, root)? {
        RootAnswer::Aggregated(list) => Ok(from_aggregated(list)),
        RootAnswer::Legacy(groups) => {
            let tasks: Vec<(usize, &str, &str)> = groups
                .iter()
                .enumerate()
                .flat_map(|(i, g)| {
                    g.versions
                        .iter()
                        .map(move |v| (i, g.name.as_str(), v.as_str()))
                })
                .collect();
            let lists: Vec<(usize, Option<Vec<DiscoveredResource>>)> = futures::stream::iter(tasks)
                .map(|(i, group, version)| async move {
                    read_resource_list(client, group, version)
                        .await
                        .map(|l| (i, l))
                })
                .buffered(LEGACY_CONCURRENCY)
                .try_collect()
                .await?;
            let mut per_group: Vec<Vec<Option<Vec<DiscoveredResource>>>> =
                vec![Vec::new(); groups.len()];
            for (i, list) in lists {
                if let Some(slot) = per_group.get_mut(i) {
                    slot.push(list);
                }
            }
            Ok(from_legacy(groups, per_group))
        }
    }
}

/// Reads one group version's `APIResourceList`; `None` if the server
/// answered with an error (the group version is then unavailable).
pub(super) async fn read_resource_list(
    client: &Client,
    group: &str,
    version: &str,
) -> Result<Option<Vec<DiscoveredResource>>> {
    // Names from the server's documents pass the same check as a user's.
    let path = match crate::path::group_version_path(group, version) {
        Ok(path) => path,
        Err(e) => {
            tracing::warn!(error = %e, "discovery: group version cannot be addressed; skipped");
            return Ok(None);
        }
    };
    match get(client, &path, LEGACY_ACCEPT).await {
        Ok(body) => parse_resource_list(&url_of(client, &path), &body, group, version).map(Some),
        Err(e @ (Error::Api { .. } | Error::HttpStatus { .. })) => {
            tracing::warn!(group_version = %group_version(group, version), error = %e, "discovery: group version unavailable");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

pub(super) async fn get(client: &Client, path: &str, accept: &str) -> Result<String> {
    let req = http::Request::get(path)
        .header(http::header::ACCEPT, accept)
        .body(Vec::new())
        .map_err(|e| Error::InvalidRequest(format!("GET {path}: {e}")))?;
    client.request_text(req).await
}

pub(super) fn url_of(client: &Client, path: &str) -> String {
    format!("{}{path}", client.server_url())
}

pub(super) fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Whether `s` can be one segment of a URL path as-is: group, version and
/// resource names are DNS-like.
pub(super) fn is_path_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

pub(super) fn decode<T: DeserializeOwned>(url: &str, body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| decode_error(url, body, safe_json_error(&e)))
}

pub(super) fn decode_error(url: &str, body: &str, message: String) -> Error {
    Error::Decode {
        url: url.to_string(),
        message,
        body: describe_body(body.as_bytes(), None),
    }
}

/// The `kind` of a JSON document.
pub(super) fn kind_of(url: &str, body: &str) -> Result<String> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "nullable")]
        kind: String,
    }
    Ok(decode::<Probe>(url, body)?.kind)
}

pub(super) fn wrong_kind(url: &str, body: &str, expected: &str, got: &str) -> Error {
    let got = if got.is_empty() {
        "no kind".to_string()
    } else {
        format!("kind `{got}`")
    };
    decode_error(
        url,
        body,
        format!("expected a discovery document of kind {expected}, got {got}"),
    )
}

/// Decodes the answer of `/api` or `/apis`: aggregated, or the root's
/// legacy document.
pub(super) fn parse_root(url: &str, body: &str, root: Root) -> Result<RootAnswer> {
    let kind = kind_of(url, body)?;
    if kind == AGGREGATED_KIND {
        return decode(url, body).map(RootAnswer::Aggregated);
    }
    if kind != root.legacy_kind() {
        return Err(wrong_kind(
            url,
            body,
            &format!("{AGGREGATED_KIND} or {}", root.legacy_kind()),
            &kind,
        ));
    }
    let groups = match root {
        Root::Core => {
            let doc: WireApiVersions = decode(url, body)?;
            let versions = valid_versions("", doc.versions);
            if versions.is_empty() {
                Vec::new()
            } else {
                vec![LegacyGroup {
                    name: String::new(),
                    versions,
                }]
            }
        }
        Root::Groups => decode::<WireGroupList>(url, body)?
            .groups
            .into_iter()
            .filter_map(legacy_group)
            .collect(),
    };
    Ok(RootAnswer::Legacy(groups))
}

/// Keeps the versions that can be part of a path, each once, in order.
pub(super) fn valid_versions(
    group: &str,
    versions: impl IntoIterator<Item = String>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in versions {
        if !is_path_segment(&v) {
            tracing::debug!(group, version = %v, "discovery: skipping a version that is not a valid name");
        } else if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

pub(super) fn legacy_group(g: WireGroup) -> Option<LegacyGroup> {
    if !is_path_segment(&g.name) {
        tracing::debug!(group = %g.name, "discovery: skipping a group that is not a valid name");
        return None;
    }
    let mut versions = valid_versions(
        &g.name,
        g.versions.into_iter().map(WireGroupVersion::into_version),
    );
    if let Some(preferred) = g.preferred_version.map(WireGroupVersion::into_version)
        && let Some(at) = versions.iter().position(|v| *v == preferred)
    {
        let preferred = versions.remove(at);
        versions.insert(0, preferred);
    }
    if versions.is_empty() {
        return None;
    }
    Some(LegacyGroup {
        name: g.name,
        versions,
    })
}

/// Decodes one group version's `APIResourceList`; subresources (`pods/log`)
/// are attached to their parent.
pub(super) fn parse_resource_list(
    url: &str,
    body: &str,
    group: &str,
    version: &str,
) -> Result<Vec<DiscoveredResource>> {
    let kind = kind_of(url, body)?;
    if kind != "APIResourceList" {
        return Err(wrong_kind(url, body, "APIResourceList", &kind));
    }
    let list: WireResourceList = decode(url, body)?;
    let mut resources: Vec<DiscoveredResource> = Vec::new();
    let mut subresources = Vec::new();
    for r in list.resources {
        if let Some((parent, sub)) = r.name.split_once('/') {
            subresources.push((parent.to_string(), sub.to_string()));
            continue;
        }
        if !is_path_segment(&r.name) || r.kind.is_empty() {
            tracing::debug!(group, version, resource = %r.name, kind = %r.kind, "discovery: skipping a resource without a valid name or kind");
            continue;
        }
        let scope = if r.namespaced {
            Scope::Namespaced
        } else {
            Scope::Cluster
        };
        resources.push(discovered(
            group,
            version,
            &r.kind,
            r.name,
            scope,
            r.verbs,
            r.short_names,
            r.singular_name,
            Vec::new(),
        ));
    }
    for (parent, sub) in subresources {
        if sub.is_empty() {
            continue;
        }
        match resources.iter_mut().find(|r| r.resource.plural == parent) {
            Some(p) if !p.subresources.contains(&sub) => p.subresources.push(sub),
            Some(_) => {}
            None => {
                tracing::debug!(group, version, %parent, %sub, "discovery: subresource without its resource")
            }
        }
    }
    Ok(resources)
}

/// Assembles legacy groups from their versions' resource lists (`None`:
/// unavailable), given per group in the order of its versions.
pub(super) fn from_legacy(
    groups: Vec<LegacyGroup>,
    lists: Vec<Vec<Option<Vec<DiscoveredResource>>>>,
) -> Part {
    let mut part = Part {
        aggregated: false,
        ..Part::default()
    };
    for (g, lists) in groups.into_iter().zip(lists) {
        let mut versions = Vec::new();
        for (version, list) in g.versions.into_iter().zip(lists) {
            match list {
                Some(resources) => versions.push((version, resources)),
                None => part.unavailable.push(group_version(&g.name, &version)),
            }
        }
        part.groups
            .extend(ApiGroup::from_versions(g.name, versions));
    }
    part
}

/// Turns an aggregated discovery document into groups.
pub(super) fn from_aggregated(list: WireDiscoveryList) -> Part {
    let mut part = Part {
        aggregated: true,
        ..Part::default()
    };
    for item in list.items {
        let name = item.metadata.name;
        if !name.is_empty() && !is_path_segment(&name) {
            tracing::debug!(group = %name, "discovery: skipping a group that is not a valid name");
            continue;
        }
        let mut versions = Vec::new();
        for WireVersion {
            version,
            resources,
            freshness,
        } in item.versions
        {
            if !is_path_segment(&version) {
                tracing::debug!(group = %name, %version, "discovery: skipping a version that is not a valid name");
                continue;
            }
            if freshness == "Stale" {
                tracing::warn!(group_version = %group_version(&name, &version), "discovery: group version is stale");
                part.unavailable.push(group_version(&name, &version));
                continue;
            }
            let resources = resources
                .into_iter()
                .filter_map(|r| aggregated_resource(&name, &version, r))
                .collect();
            versions.push((version, resources));
        }
        part.groups.extend(ApiGroup::from_versions(name, versions));
    }
    part
}

pub(super) fn aggregated_resource(
    group: &str,
    version: &str,
    r: WireResource,
) -> Option<DiscoveredResource> {
    let kind = r.response_kind.map(|k| k.kind).unwrap_or_default();
    let scope = match r.scope.as_str() {
        "Namespaced" => Scope::Namespaced,
        "Cluster" => Scope::Cluster,
        other => {
            tracing::debug!(group, version, resource = %r.resource, scope = other, "discovery: skipping a resource of unknown scope");
            return None;
        }
    };
    if !is_path_segment(&r.resource) || kind.is_empty() {
        tracing::debug!(group, version, resource = %r.resource, %kind, "discovery: skipping a resource without a valid name or kind");
        return None;
    }
    let mut subresources: Vec<String> = Vec::new();
    for s in r.subresources {
        if !s.subresource.is_empty() && !subresources.contains(&s.subresource) {
            subresources.push(s.subresource);
        }
    }
    Some(discovered(
        group,
        version,
        &kind,
        r.resource,
        scope,
        r.verbs,
        r.short_names,
        r.singular_resource,
        subresources,
    ))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn discovered(
    group: &str,
    version: &str,
    kind: &str,
    plural: String,
    scope: Scope,
    verbs: Vec<String>,
    short_names: Vec<String>,
    singular: String,
    subresources: Vec<String>,
) -> DiscoveredResource {
    let singular = if singular.is_empty() {
        kind.to_ascii_lowercase()
    } else {
        singular
    };
    DiscoveredResource {
        resource: ApiResource::new(group, version, kind, &plural, scope),
        verbs,
        short_names,
        singular,
        subresources,
    }
}
