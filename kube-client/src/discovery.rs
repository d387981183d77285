//! API discovery: which groups, versions and kinds an API server serves.
//!
//! # The idea
//!
//! A Kubernetes API is not fixed. Besides the built-in kinds, a cluster
//! serves whatever its CustomResourceDefinitions and aggregated API servers
//! add, and that set changes while the cluster runs. Code that handles kinds
//! it was not compiled with (`kubectl get widgets`, a generic garbage
//! collector, a controller for a CRD created at run time) must first ask the
//! server what it serves. That is *discovery*.
//!
//! The server arranges its API in three levels:
//! - **groups**: `""` (the *core* group: Pods, ConfigMaps, Namespaces, …),
//!   `apps`, `batch`, `example.com`, …;
//! - **versions** of each group (`v1`, `v1beta1`, …). One of them is
//!   *preferred*: the version a client should use when it has no reason to
//!   pick another;
//! - **resources** in each group version. A resource has a plural name used
//!   in URLs (`deployments`), the *kind* of its objects (`Deployment`), a
//!   scope (in a namespace, or cluster-wide), the verbs it supports, short
//!   names (`deploy`), a singular name (`deployment`) and subresources
//!   (`deployments/scale`).
//!
//! Code usually holds one of two names for a kind: a *GVK* (group, version,
//! kind) taken from an object's `apiVersion` and `kind`, or what a person
//! typed (`deploy`, `deployments.apps`). Resolving either one through a
//! [`Discovery`] gives the [`ApiResource`] that an [`Api`](crate::Api) needs:
//!
//! ```no_run
//! use kube_client::discovery::Discovery;
//! use kube_client::{Api, Client, DynamicObject};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::try_default().await?;
//! let discovery = Discovery::run(&client).await?;
//!
//! // What a person typed, resolved the way kubectl does…
//! let deployments = discovery.resolve_plural(None, "deploy").ok_or("no resource `deploy`")?;
//! assert_eq!(deployments.api_version, "apps/v1");
//!
//! // …or the apiVersion and kind of an object.
//! let widgets = discovery.resolve_gvk("example.com", "v1", "Widget").ok_or("Widget is not served")?;
//! let api: Api<DynamicObject> = Api::namespaced_with(client, "default", &widgets);
//! # let _ = api;
//! # Ok(()) }
//! ```
//!
//! # How it is read
//!
//! [`Discovery::run`] asks for *aggregated discovery*
//! (`apidiscovery.k8s.io/v2`, served since Kubernetes 1.30): two requests,
//! `/api` and `/apis`, return every group, version and resource. When the
//! server answers with the older documents instead (`APIVersions`,
//! `APIGroupList`), it is read the *legacy* way: those two documents, then
//! one `APIResourceList` per group version (`/api/v1`, `/apis/apps/v1`, …),
//! a few requests at a time. [`Discovery::run_legacy`] always reads the
//! legacy way. Both build the same model, and
//! [`is_aggregated`](Discovery::is_aggregated) tells which way was taken.
//!
//! # What is guaranteed
//!
//! - **A snapshot.** A `Discovery` is what the server served when it was
//!   read, and never changes. A CRD created later is not in it: run
//!   discovery again. A CRD that was just established can take a moment to
//!   appear in the server's discovery documents, so poll for it with a
//!   deadline.
//! - **Priority order.** The core group comes first, then the other groups
//!   in the order the server lists them (its priority order). Within a
//!   group the preferred version comes first, then the others in the
//!   server's order; [`ApiGroup::resources`] follows that version order.
//!   Group names are unique.
//! - **Read, or recorded as unreadable.** Every version in the model comes
//!   with its resources. A group version the server lists but whose
//!   resources could not be read (legacy: its `APIResourceList` request was
//!   answered with an error, typically an aggregated API server that is
//!   down; aggregated: the server marked it `Stale`) is left out of the
//!   model and named in [`unavailable`](Discovery::unavailable) instead, as
//!   `group/version` (or `version` for the core group). A group left with
//!   no version is left out.
//! - **Resolution.** [`resolve_gvk`](Discovery::resolve_gvk) matches
//!   exactly. [`resolve_kind`](Discovery::resolve_kind) picks the group's
//!   preferred version, or the first version in priority order that serves
//!   the kind. [`resolve_plural`](Discovery::resolve_plural) follows
//!   kubectl: a plural or singular name wins over a short name, names are
//!   compared without regard to ASCII case, and without a group every group
//!   is searched in priority order (so `events` is the core group's).
//!   Anything that is not served resolves to `None`.
//! - **Subresources are not resources.** `pods/log` or `deployments/scale`
//!   are listed in their parent's
//!   [`subresources`](DiscoveredResource::subresources), never on their own.
//! - **Errors, never panics.** A request that fails (transport, TLS,
//!   credentials, or an error answer to `/api` or `/apis`) fails the run
//!   with that [`Error`]. An answer that is not JSON, has the wrong shape, or
//!   is of an unexpected `kind` is an [`Error::Decode`] naming the URL. A
//!   single entry the model cannot hold (a resource without a kind, an
//!   unknown scope, a name that cannot be part of a URL path) is skipped
//!   and logged at debug level; the rest of the answer is kept.

use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::client::Client;
use crate::error::{Error, Result, body_prefix};
use crate::resource::{ApiResource, Scope};

/// Accept header asking for aggregated discovery, with the legacy documents
/// as fallback.
const AGGREGATED_ACCEPT: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
/// Accept header for the legacy documents.
const LEGACY_ACCEPT: &str = "application/json";
/// The kind of an aggregated discovery document.
const AGGREGATED_KIND: &str = "APIGroupDiscoveryList";
/// How many legacy `APIResourceList` requests are in flight at once.
const LEGACY_CONCURRENCY: usize = 8;

/// The groups, versions and resources one API server served when it was read.
///
/// See the [module documentation](self) for what it guarantees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    groups: Vec<ApiGroup>,
    unavailable: Vec<String>,
    aggregated: bool,
}

/// One API group: its versions, and the resources each version serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiGroup {
    /// The group's name: `""` for the core group, else e.g. `apps`.
    pub name: String,
    /// The version to use without a reason to pick another; the first of
    /// [`versions`](Self::versions).
    pub preferred_version: String,
    /// Every version read: the preferred one first, then the others in the
    /// server's priority order.
    pub versions: Vec<String>,
    /// The resources of every version, in the order of
    /// [`versions`](Self::versions); each names its version in
    /// `resource.version`.
    pub resources: Vec<DiscoveredResource>,
}

/// One resource of one group version, as discovery describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredResource {
    /// What an [`Api`](crate::Api) needs: group, version, kind, plural, scope.
    pub resource: ApiResource,
    /// The verbs it supports: `get`, `list`, `watch`, `create`, `update`,
    /// `patch`, `delete`, `deletecollection`, ….
    pub verbs: Vec<String>,
    /// Short names, e.g. `deploy`, `cm`.
    pub short_names: Vec<String>,
    /// The singular name, e.g. `deployment`; the lowercased kind when the
    /// server gives none.
    pub singular: String,
    /// The names of its subresources, e.g. `status`, `scale`, `log`.
    pub subresources: Vec<String>,
}

impl DiscoveredResource {
    /// Whether the resource supports `verb` (e.g. `"watch"`).
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

impl Discovery {
    /// Reads what the server serves, with aggregated discovery when the
    /// server offers it, else the legacy way.
    pub async fn run(client: &Client) -> Result<Self> {
        Self::read(client, AGGREGATED_ACCEPT).await
    }

    /// Reads what the server serves the legacy way: `/api`, `/apis`, then
    /// one request per group version. Slower than [`run`](Self::run); for
    /// servers or proxies that mishandle aggregated discovery.
    pub async fn run_legacy(client: &Client) -> Result<Self> {
        Self::read(client, LEGACY_ACCEPT).await
    }

    async fn read(client: &Client, accept: &str) -> Result<Self> {
        let (core, apis) = futures::try_join!(
            read_root(client, Root::Core, accept),
            read_root(client, Root::Groups, accept)
        )?;
        Ok(Self::from_parts([core, apis]))
    }

    /// Every group, the core group first, then in the server's priority order.
    pub fn groups(&self) -> &[ApiGroup] {
        &self.groups
    }

    /// The group named `name` (`""` for the core group).
    pub fn group(&self, name: &str) -> Option<&ApiGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The group versions the server listed but whose resources could not be
    /// read, as `group/version` (or `version` for the core group). They are
    /// not in [`groups`](Self::groups).
    pub fn unavailable(&self) -> &[String] {
        &self.unavailable
    }

    /// True if both `/api` and `/apis` answered with aggregated discovery.
    pub fn is_aggregated(&self) -> bool {
        self.aggregated
    }

    /// The resource serving `kind` in exactly `group` and `version`, e.g.
    /// `("apps", "v1", "Deployment")`; `group` is `""` for the core group.
    pub fn resolve_gvk(&self, group: &str, version: &str, kind: &str) -> Option<ApiResource> {
        let group = self.group(group)?;
        group
            .resources
            .iter()
            .find(|r| r.resource.version == version && r.resource.kind == kind)
            .map(|r| r.resource.clone())
    }

    /// The resource serving `kind` in `group`, in the group's preferred
    /// version if it serves the kind, else in the first version (in the
    /// server's priority order) that does.
    pub fn resolve_kind(&self, group: &str, kind: &str) -> Option<ApiResource> {
        let group = self.group(group)?;
        group
            .resources
            .iter()
            .find(|r| r.resource.kind == kind)
            .map(|r| r.resource.clone())
    }

    /// The resource a person means by `name`, resolved as kubectl does.
    ///
    /// `name` is a plural (`deployments`), singular (`deployment`) or short
    /// name (`deploy`), compared without regard to ASCII case; a plural or
    /// singular match anywhere wins over a short-name match. With
    /// `group: Some(g)` only group `g` is searched. With `None`, `name` may
    /// name its group as kubectl allows: `deployments.apps`, or with a
    /// version `deployments.v1.apps` (`pods.v1.` for the core group);
    /// without a dot every group is searched in priority order, the core
    /// group first. Within a group the preferred version wins.
    pub fn resolve_plural(&self, group: Option<&str>, name: &str) -> Option<ApiResource> {
        let found = match group {
            Some(group) => self.find_named(Some(group), None, name),
            None => match name.split_once('.') {
                None => self.find_named(None, None, name),
                Some((resource, rest)) => {
                    self.find_named(Some(rest), None, resource).or_else(|| {
                        let (version, group) = rest.split_once('.')?;
                        self.find_named(Some(group), Some(version), resource)
                    })
                }
            },
        };
        found.map(|r| r.resource.clone())
    }

    /// The first resource named `name` in the groups (and version) allowed:
    /// plural and singular names first, then short names.
    fn find_named(
        &self,
        group: Option<&str>,
        version: Option<&str>,
        name: &str,
    ) -> Option<&DiscoveredResource> {
        if name.is_empty() {
            return None;
        }
        let candidates = || {
            self.groups
                .iter()
                .filter(move |g| group.is_none_or(|want| g.name.eq_ignore_ascii_case(want)))
                .flat_map(|g| &g.resources)
                .filter(move |r| version.is_none_or(|want| r.resource.version == want))
        };
        candidates()
            .find(|r| {
                r.resource.plural.eq_ignore_ascii_case(name)
                    || r.singular.eq_ignore_ascii_case(name)
            })
            .or_else(|| {
                candidates().find(|r| r.short_names.iter().any(|s| s.eq_ignore_ascii_case(name)))
            })
    }

    /// Joins what `/api` and `/apis` gave, merging groups of the same name.
    fn from_parts(parts: impl IntoIterator<Item = Part>) -> Self {
        let mut discovery = Self {
            groups: Vec::new(),
            unavailable: Vec::new(),
            aggregated: true,
        };
        for part in parts {
            discovery.aggregated &= part.aggregated;
            discovery.unavailable.extend(part.unavailable);
            for group in part.groups {
                match discovery.groups.iter_mut().find(|g| g.name == group.name) {
                    Some(existing) => existing.merge(group),
                    None => discovery.groups.push(group),
                }
            }
        }
        discovery
    }
}

impl ApiGroup {
    /// A group from its versions (in priority order) and their resources;
    /// `None` if no version is left. A version listed twice keeps its first
    /// listing.
    fn from_versions(
        name: String,
        versions: Vec<(String, Vec<DiscoveredResource>)>,
    ) -> Option<Self> {
        let mut group = Self {
            name,
            preferred_version: String::new(),
            versions: Vec::new(),
            resources: Vec::new(),
        };
        for (version, resources) in versions {
            group.add_version(version, resources);
        }
        group.preferred_version = group.versions.first()?.clone();
        Some(group)
    }

    fn add_version(&mut self, version: String, resources: Vec<DiscoveredResource>) {
        if self.versions.contains(&version) {
            tracing::debug!(group = %self.name, %version, "discovery: version listed twice; keeping the first");
            return;
        }
        self.versions.push(version);
        self.resources.extend(resources);
    }

    /// Adds the versions of `other` (the same group) that `self` lacks.
    fn merge(&mut self, other: ApiGroup) {
        for version in other.versions {
            let resources = other
                .resources
                .iter()
                .filter(|r| r.resource.version == version)
                .cloned()
                .collect();
            self.add_version(version, resources);
        }
    }
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// The two discovery roots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    /// `/api`: the core group.
    Core,
    /// `/apis`: every other group.
    Groups,
}

impl Root {
    fn path(self) -> &'static str {
        match self {
            Root::Core => "/api",
            Root::Groups => "/apis",
        }
    }

    /// The kind of the legacy document at this root.
    fn legacy_kind(self) -> &'static str {
        match self {
            Root::Core => "APIVersions",
            Root::Groups => "APIGroupList",
        }
    }
}

/// What one root contributed.
#[derive(Debug, Default)]
struct Part {
    groups: Vec<ApiGroup>,
    unavailable: Vec<String>,
    aggregated: bool,
}

/// A root's answer, decoded.
#[derive(Debug)]
enum RootAnswer {
    /// Everything, in one document.
    Aggregated(WireDiscoveryList),
    /// Groups and their versions (preferred first); resources still to read.
    Legacy(Vec<LegacyGroup>),
}

/// A group named by a legacy root document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LegacyGroup {
    name: String,
    /// Preferred first.
    versions: Vec<String>,
}

async fn read_root(client: &Client, root: Root, accept: &str) -> Result<Part> {
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
async fn read_resource_list(
    client: &Client,
    group: &str,
    version: &str,
) -> Result<Option<Vec<DiscoveredResource>>> {
    let path = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
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

async fn get(client: &Client, path: &str, accept: &str) -> Result<String> {
    let req = http::Request::get(path)
        .header(http::header::ACCEPT, accept)
        .body(Vec::new())
        .map_err(|e| Error::InvalidRequest(format!("GET {path}: {e}")))?;
    client.request_text(req).await
}

fn url_of(client: &Client, path: &str) -> String {
    format!("{}{path}", client.server_url())
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Whether `s` can be one segment of a URL path as-is: group, version and
/// resource names are DNS-like.
fn is_path_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

fn decode<T: DeserializeOwned>(url: &str, body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| decode_error(url, body, e.to_string()))
}

fn decode_error(url: &str, body: &str, message: String) -> Error {
    Error::Decode {
        url: url.to_string(),
        message,
        body: body_prefix(body.as_bytes()),
    }
}

/// The `kind` of a JSON document.
fn kind_of(url: &str, body: &str) -> Result<String> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "nullable")]
        kind: String,
    }
    Ok(decode::<Probe>(url, body)?.kind)
}

fn wrong_kind(url: &str, body: &str, expected: &str, got: &str) -> Error {
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
fn parse_root(url: &str, body: &str, root: Root) -> Result<RootAnswer> {
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
fn valid_versions(group: &str, versions: impl IntoIterator<Item = String>) -> Vec<String> {
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

fn legacy_group(g: WireGroup) -> Option<LegacyGroup> {
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
fn parse_resource_list(
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
fn from_legacy(groups: Vec<LegacyGroup>, lists: Vec<Vec<Option<Vec<DiscoveredResource>>>>) -> Part {
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
fn from_aggregated(list: WireDiscoveryList) -> Part {
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

fn aggregated_resource(group: &str, version: &str, r: WireResource) -> Option<DiscoveredResource> {
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
fn discovered(
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

// ---------------------------------------------------------------------------
// Wire shapes. Only the fields used; every field may be absent or null.
// ---------------------------------------------------------------------------

/// Treats `null` like an absent field.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`.
#[derive(Debug, Deserialize)]
struct WireDiscoveryList {
    #[serde(default, deserialize_with = "nullable")]
    items: Vec<WireDiscoveryGroup>,
}

/// `APIGroupDiscovery`.
#[derive(Debug, Deserialize)]
struct WireDiscoveryGroup {
    #[serde(default, deserialize_with = "nullable")]
    metadata: WireName,
    #[serde(default, deserialize_with = "nullable")]
    versions: Vec<WireVersion>,
}

#[derive(Debug, Default, Deserialize)]
struct WireName {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
}

/// `APIVersionDiscovery`.
#[derive(Debug, Deserialize)]
struct WireVersion {
    #[serde(default, deserialize_with = "nullable")]
    version: String,
    #[serde(default, deserialize_with = "nullable")]
    resources: Vec<WireResource>,
    #[serde(default, deserialize_with = "nullable")]
    freshness: String,
}

/// `APIResourceDiscovery`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireResource {
    #[serde(default, deserialize_with = "nullable")]
    resource: String,
    #[serde(default, deserialize_with = "nullable")]
    response_kind: Option<WireKind>,
    #[serde(default, deserialize_with = "nullable")]
    scope: String,
    #[serde(default, deserialize_with = "nullable")]
    singular_resource: String,
    #[serde(default, deserialize_with = "nullable")]
    verbs: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    short_names: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    subresources: Vec<WireSubresource>,
}

/// `GroupVersionKind` (only the kind is used: group and version are the
/// containing ones).
#[derive(Debug, Default, Deserialize)]
struct WireKind {
    #[serde(default, deserialize_with = "nullable")]
    kind: String,
}

/// `APISubresourceDiscovery`.
#[derive(Debug, Deserialize)]
struct WireSubresource {
    #[serde(default, deserialize_with = "nullable")]
    subresource: String,
}

/// `APIVersions` (the legacy `/api`).
#[derive(Debug, Deserialize)]
struct WireApiVersions {
    #[serde(default, deserialize_with = "nullable")]
    versions: Vec<String>,
}

/// `APIGroupList` (the legacy `/apis`).
#[derive(Debug, Deserialize)]
struct WireGroupList {
    #[serde(default, deserialize_with = "nullable")]
    groups: Vec<WireGroup>,
}

/// `APIGroup`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireGroup {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    versions: Vec<WireGroupVersion>,
    #[serde(default, deserialize_with = "nullable")]
    preferred_version: Option<WireGroupVersion>,
}

/// `GroupVersionForDiscovery`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireGroupVersion {
    #[serde(default, deserialize_with = "nullable")]
    group_version: String,
    #[serde(default, deserialize_with = "nullable")]
    version: String,
}

impl WireGroupVersion {
    /// `version`, or the part of `groupVersion` after the `/`.
    fn into_version(self) -> String {
        if !self.version.is_empty() {
            return self.version;
        }
        match self.group_version.rsplit_once('/') {
            Some((_, v)) => v.to_string(),
            None => self.group_version,
        }
    }
}

/// `APIResourceList`.
#[derive(Debug, Deserialize)]
struct WireResourceList {
    #[serde(default, deserialize_with = "nullable")]
    resources: Vec<WireLegacyResource>,
}

/// `APIResource`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireLegacyResource {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    singular_name: String,
    #[serde(default, deserialize_with = "nullable")]
    namespaced: bool,
    #[serde(default, deserialize_with = "nullable")]
    kind: String,
    #[serde(default, deserialize_with = "nullable")]
    verbs: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    short_names: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://h/apis";
    const RW: &str =
        r#"["create","delete","deletecollection","get","list","patch","update","watch"]"#;

    /// An aggregated `/api`, as kube-apiserver sends it (trimmed).
    fn aggregated_core() -> String {
        format!(
            r#"{{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","metadata":{{}},"items":[
              {{"metadata":{{"creationTimestamp":null}},"versions":[{{"version":"v1","freshness":"Current","resources":[
                {{"resource":"configmaps","responseKind":{{"group":"","version":"","kind":"ConfigMap"}},"scope":"Namespaced","singularResource":"configmap","verbs":{RW},"shortNames":["cm"]}},
                {{"resource":"events","responseKind":{{"group":"","version":"","kind":"Event"}},"scope":"Namespaced","singularResource":"event","verbs":{RW},"shortNames":["ev"]}},
                {{"resource":"namespaces","responseKind":{{"group":"","version":"","kind":"Namespace"}},"scope":"Cluster","singularResource":"namespace","verbs":["create","delete","get","list","patch","update","watch"],"shortNames":["ns"],
                  "subresources":[{{"subresource":"finalize","responseKind":{{"group":"","version":"","kind":"Namespace"}},"verbs":["update"]}},{{"subresource":"status","responseKind":{{"group":"","version":"","kind":"Namespace"}},"verbs":["get","patch","update"]}}]}},
                {{"resource":"pods","responseKind":{{"group":"","version":"","kind":"Pod"}},"scope":"Namespaced","singularResource":"pod","verbs":{RW},"shortNames":["po"],"categories":["all"],
                  "subresources":[{{"subresource":"log","responseKind":{{"group":"","version":"","kind":"Pod"}},"verbs":["get"]}},{{"subresource":"status","responseKind":{{"group":"","version":"","kind":"Pod"}},"verbs":["get","patch","update"]}}]}}
              ]}}]}}
            ]}}"#
        )
    }

    /// An aggregated `/apis`: apps, events.k8s.io, a CRD group with two
    /// versions (v2 preferred), and an aggregated API server that is down.
    fn aggregated_groups() -> String {
        format!(
            r#"{{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","metadata":{{}},"items":[
              {{"metadata":{{"name":"apps","creationTimestamp":null}},"versions":[{{"version":"v1","freshness":"Current","resources":[
                {{"resource":"deployments","responseKind":{{"group":"","version":"","kind":"Deployment"}},"scope":"Namespaced","singularResource":"deployment","verbs":{RW},"shortNames":["deploy"],"categories":["all"],
                  "subresources":[{{"subresource":"scale","responseKind":{{"group":"autoscaling","version":"v1","kind":"Scale"}},"verbs":["get","patch","update"]}},{{"subresource":"status","responseKind":{{"group":"","version":"","kind":"Deployment"}},"verbs":["get","patch","update"]}}]}}
              ]}}]}},
              {{"metadata":{{"name":"events.k8s.io"}},"versions":[{{"version":"v1","resources":[
                {{"resource":"events","responseKind":{{"group":"","version":"","kind":"Event"}},"scope":"Namespaced","singularResource":"event","verbs":{RW},"shortNames":["ev"]}}
              ]}}]}},
              {{"metadata":{{"name":"example.com"}},"versions":[
                {{"version":"v2","resources":[
                  {{"resource":"widgets","responseKind":{{"group":"example.com","version":"v2","kind":"Widget"}},"scope":"Cluster","singularResource":"widget","verbs":{RW},"shortNames":["wdg"]}}
                ]}},
                {{"version":"v1","resources":[
                  {{"resource":"widgets","responseKind":{{"group":"example.com","version":"v1","kind":"Widget"}},"scope":"Cluster","singularResource":"widget","verbs":{RW},"shortNames":["wdg"]}},
                  {{"resource":"gadgets","responseKind":{{"group":"example.com","version":"v1","kind":"Gadget"}},"scope":"Namespaced","singularResource":"","verbs":null}}
                ]}}
              ]}},
              {{"metadata":{{"name":"metrics.k8s.io"}},"versions":[{{"version":"v1beta1","freshness":"Stale","resources":[]}}]}}
            ]}}"#
        )
    }

    fn legacy_core() -> &'static str {
        r#"{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"10.0.0.1:6443"}]}"#
    }

    /// The same groups as `aggregated_groups`, as a legacy `APIGroupList`.
    /// example.com lists v1 first but prefers v2.
    fn legacy_groups() -> &'static str {
        r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[
          {"name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}],"preferredVersion":{"groupVersion":"apps/v1","version":"v1"}},
          {"name":"events.k8s.io","versions":[{"groupVersion":"events.k8s.io/v1","version":"v1"}],"preferredVersion":{"groupVersion":"events.k8s.io/v1","version":"v1"}},
          {"name":"example.com","versions":[{"groupVersion":"example.com/v1","version":"v1"},{"groupVersion":"example.com/v2"}],"preferredVersion":{"groupVersion":"example.com/v2","version":"v2"}},
          {"name":"metrics.k8s.io","versions":[{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"}],"preferredVersion":{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"}}
        ]}"#
    }

    /// The legacy `APIResourceList` of a group version; `None` where the
    /// server answers with an error.
    fn legacy_list(gv: &str) -> Option<String> {
        let rw = RW;
        let resources = match gv {
            "v1" => format!(
                r#"[{{"name":"configmaps","singularName":"configmap","namespaced":true,"kind":"ConfigMap","verbs":{rw},"shortNames":["cm"]}},
                   {{"name":"events","singularName":"event","namespaced":true,"kind":"Event","verbs":{rw},"shortNames":["ev"]}},
                   {{"name":"namespaces","singularName":"namespace","namespaced":false,"kind":"Namespace","verbs":["create","delete","get","list","patch","update","watch"],"shortNames":["ns"]}},
                   {{"name":"namespaces/finalize","singularName":"","namespaced":false,"kind":"Namespace","verbs":["update"]}},
                   {{"name":"namespaces/status","singularName":"","namespaced":false,"kind":"Namespace","verbs":["get","patch","update"]}},
                   {{"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":{rw},"shortNames":["po"],"categories":["all"]}},
                   {{"name":"pods/log","singularName":"","namespaced":true,"kind":"Pod","verbs":["get"]}},
                   {{"name":"pods/status","singularName":"","namespaced":true,"kind":"Pod","verbs":["get","patch","update"]}}]"#
            ),
            "apps/v1" => format!(
                r#"[{{"name":"deployments","singularName":"deployment","namespaced":true,"kind":"Deployment","verbs":{rw},"shortNames":["deploy"]}},
                   {{"name":"deployments/scale","singularName":"","namespaced":true,"group":"autoscaling","version":"v1","kind":"Scale","verbs":["get","patch","update"]}},
                   {{"name":"deployments/status","singularName":"","namespaced":true,"kind":"Deployment","verbs":["get","patch","update"]}}]"#
            ),
            "events.k8s.io/v1" => format!(
                r#"[{{"name":"events","singularName":"event","namespaced":true,"kind":"Event","verbs":{rw},"shortNames":["ev"]}}]"#
            ),
            "example.com/v2" => format!(
                r#"[{{"name":"widgets","singularName":"widget","namespaced":false,"kind":"Widget","verbs":{rw},"shortNames":["wdg"]}}]"#
            ),
            "example.com/v1" => format!(
                r#"[{{"name":"widgets","singularName":"widget","namespaced":false,"kind":"Widget","verbs":{rw},"shortNames":["wdg"]}},
                   {{"name":"gadgets","namespaced":true,"kind":"Gadget","verbs":null}}]"#
            ),
            _ => return None,
        };
        Some(format!(
            r#"{{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"{gv}","resources":{resources}}}"#
        ))
    }

    fn aggregated_part(body: &str, root: Root) -> Part {
        match parse_root(URL, body, root).unwrap() {
            RootAnswer::Aggregated(list) => from_aggregated(list),
            other => panic!("expected an aggregated answer, got {other:?}"),
        }
    }

    fn legacy_part(body: &str, root: Root) -> Part {
        let groups = match parse_root(URL, body, root).unwrap() {
            RootAnswer::Legacy(groups) => groups,
            other => panic!("expected a legacy answer, got {other:?}"),
        };
        let lists = groups
            .iter()
            .map(|g| {
                g.versions
                    .iter()
                    .map(|v| {
                        let gv = group_version(&g.name, v);
                        legacy_list(&gv)
                            .map(|body| parse_resource_list(URL, &body, &g.name, v).unwrap())
                    })
                    .collect()
            })
            .collect();
        from_legacy(groups, lists)
    }

    fn aggregated() -> Discovery {
        Discovery::from_parts([
            aggregated_part(&aggregated_core(), Root::Core),
            aggregated_part(&aggregated_groups(), Root::Groups),
        ])
    }

    fn legacy() -> Discovery {
        Discovery::from_parts([
            legacy_part(legacy_core(), Root::Core),
            legacy_part(legacy_groups(), Root::Groups),
        ])
    }

    fn gvr(ar: &ApiResource) -> (&str, &str, &str) {
        (&ar.group, &ar.version, &ar.plural)
    }

    #[test]
    fn aggregated_documents_become_groups_in_priority_order() {
        let d = aggregated();
        assert!(d.is_aggregated());
        let names: Vec<&str> = d.groups().iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["", "apps", "events.k8s.io", "example.com"]);

        let core = d.group("").unwrap();
        assert_eq!(
            (core.preferred_version.as_str(), core.versions.as_slice()),
            ("v1", &["v1".to_string()][..])
        );
        let pods = core
            .resources
            .iter()
            .find(|r| r.resource.plural == "pods")
            .unwrap();
        assert_eq!(
            pods.resource,
            ApiResource::new("", "v1", "Pod", "pods", Scope::Namespaced)
        );
        assert_eq!(pods.subresources, ["log", "status"]);
        assert_eq!(pods.short_names, ["po"]);
        assert_eq!(pods.singular, "pod");
        assert!(pods.supports("watch") && !pods.supports("proxy"));
        let ns = core
            .resources
            .iter()
            .find(|r| r.resource.plural == "namespaces")
            .unwrap();
        assert_eq!(ns.resource.scope, Scope::Cluster);
        // Subresources never appear as resources.
        assert!(
            d.groups()
                .iter()
                .flat_map(|g| &g.resources)
                .all(|r| !r.resource.plural.contains('/'))
        );

        let deploy = d.resolve_gvk("apps", "v1", "Deployment").unwrap();
        assert_eq!(deploy.api_version, "apps/v1");
        assert_eq!(
            deploy.collection_path(Some("x")),
            "/apis/apps/v1/namespaces/x/deployments"
        );
        assert_eq!(
            d.group("apps").unwrap().resources[0].subresources,
            ["scale", "status"]
        );

        let example = d.group("example.com").unwrap();
        assert_eq!(example.preferred_version, "v2");
        assert_eq!(example.versions, ["v2", "v1"]);
        let gadget = example
            .resources
            .iter()
            .find(|r| r.resource.kind == "Gadget")
            .unwrap();
        assert_eq!(
            gadget.singular, "gadget",
            "singular falls back to the lowercased kind"
        );
        assert!(gadget.verbs.is_empty(), "null verbs are none");
    }

    #[test]
    fn stale_or_unreadable_group_versions_are_recorded_not_served() {
        for d in [aggregated(), legacy()] {
            assert_eq!(d.unavailable(), ["metrics.k8s.io/v1beta1"]);
            assert!(d.group("metrics.k8s.io").is_none());
            assert!(d.resolve_plural(Some("metrics.k8s.io"), "pods").is_none());
        }
    }

    #[test]
    fn legacy_documents_give_the_same_model() {
        let (a, l) = (aggregated(), legacy());
        assert!(!l.is_aggregated());
        assert_eq!(a.groups(), l.groups());
        assert_eq!(
            l.group("example.com").unwrap().versions,
            ["v2", "v1"],
            "preferred version first"
        );
        assert_eq!(
            l.group("")
                .unwrap()
                .resources
                .iter()
                .find(|r| r.resource.plural == "namespaces")
                .unwrap()
                .subresources,
            ["finalize", "status"]
        );
    }

    #[test]
    fn kinds_resolve_in_the_preferred_version() {
        let d = aggregated();
        assert_eq!(
            gvr(&d.resolve_kind("example.com", "Widget").unwrap()),
            ("example.com", "v2", "widgets")
        );
        assert_eq!(
            gvr(&d.resolve_kind("example.com", "Gadget").unwrap()),
            ("example.com", "v1", "gadgets")
        );
        assert_eq!(
            gvr(&d.resolve_gvk("example.com", "v1", "Widget").unwrap()),
            ("example.com", "v1", "widgets")
        );
        assert_eq!(
            gvr(&d.resolve_kind("", "ConfigMap").unwrap()),
            ("", "v1", "configmaps")
        );
        assert!(d.resolve_kind("", "Deployment").is_none());
        assert!(d.resolve_gvk("example.com", "v2", "Gadget").is_none());
        assert!(
            d.resolve_gvk("apps", "v1", "deployment").is_none(),
            "kinds are case-sensitive"
        );
        assert!(d.resolve_kind("nope.io", "Widget").is_none());
    }

    #[test]
    fn names_resolve_like_kubectl() {
        let d = aggregated();
        let resolve = |group: Option<&str>, name: &str| {
            d.resolve_plural(group, name)
                .map(|ar| gvr(&ar).0.to_string() + "/" + gvr(&ar).1 + "/" + gvr(&ar).2)
        };
        let some = |s: &str| Some(s.to_string());
        assert_eq!(resolve(None, "deploy"), some("apps/v1/deployments"));
        assert_eq!(resolve(None, "deployments"), some("apps/v1/deployments"));
        assert_eq!(resolve(None, "Deployment"), some("apps/v1/deployments"));
        assert_eq!(
            resolve(None, "deployments.apps"),
            some("apps/v1/deployments")
        );
        assert_eq!(resolve(None, "deploy.apps"), some("apps/v1/deployments"));
        assert_eq!(
            resolve(None, "deployments.v1.apps"),
            some("apps/v1/deployments")
        );
        assert_eq!(resolve(Some("apps"), "deploy"), some("apps/v1/deployments"));
        assert_eq!(resolve(None, "cm"), some("/v1/configmaps"));
        assert_eq!(resolve(None, "pods.v1."), some("/v1/pods"));
        assert_eq!(
            resolve(None, "pods."),
            some("/v1/pods"),
            "an empty group after the dot is the core group"
        );
        // The core group wins a name served by two groups.
        assert_eq!(resolve(None, "events"), some("/v1/events"));
        assert_eq!(resolve(None, "ev"), some("/v1/events"));
        assert_eq!(
            resolve(None, "events.events.k8s.io"),
            some("events.k8s.io/v1/events")
        );
        assert_eq!(
            resolve(Some("events.k8s.io"), "ev"),
            some("events.k8s.io/v1/events")
        );
        // The preferred version wins; a version can be asked for.
        assert_eq!(resolve(None, "wdg"), some("example.com/v2/widgets"));
        assert_eq!(
            resolve(None, "widgets.v1.example.com"),
            some("example.com/v1/widgets")
        );
        assert_eq!(
            resolve(None, "widgets.example.com"),
            some("example.com/v2/widgets")
        );
        for missing in [
            "",
            "nope",
            "deploy.batch",
            "deployments.v2.apps",
            ".",
            "..",
            "pods.apps",
            "scale",
            "pods/log",
        ] {
            assert_eq!(resolve(None, missing), None, "{missing:?}");
        }
        assert_eq!(resolve(Some("apps"), "pods"), None);
    }

    #[test]
    fn a_plural_or_singular_name_wins_over_a_short_name() {
        let body = format!(
            r#"{{"kind":"APIGroupDiscoveryList","items":[
              {{"metadata":{{"name":"a.io"}},"versions":[{{"version":"v1","resources":[
                {{"resource":"things","responseKind":{{"kind":"Thing"}},"scope":"Cluster","verbs":{RW},"shortNames":["stuff"]}}]}}]}},
              {{"metadata":{{"name":"b.io"}},"versions":[{{"version":"v1","resources":[
                {{"resource":"stuff","responseKind":{{"kind":"Stuff"}},"scope":"Cluster","verbs":{RW}}}]}}]}}]}}"#
        );
        let d = Discovery::from_parts([aggregated_part(&body, Root::Groups)]);
        assert_eq!(d.resolve_plural(None, "stuff").unwrap().group, "b.io");
        assert_eq!(d.resolve_plural(None, "thing").unwrap().group, "a.io");
        assert_eq!(
            d.resolve_plural(Some("a.io"), "stuff").unwrap().kind,
            "Thing"
        );
    }

    #[test]
    fn wrong_kinds_and_malformed_json_are_decode_errors() {
        let cases: [(&str, Root); 7] = [
            ("not json", Root::Core),
            ("[1,2]", Root::Core),
            ("", Root::Groups),
            (r#"{"kind":"Status","status":"Failure"}"#, Root::Core),
            (r#"{"kind":"APIGroupList","groups":[]}"#, Root::Core),
            (r#"{"versions":["v1"]}"#, Root::Core),
            (
                r#"{"kind":"APIGroupDiscoveryList","items":{"not":"a list"}}"#,
                Root::Groups,
            ),
        ];
        for (body, root) in cases {
            match parse_root(URL, body, root) {
                Err(Error::Decode {
                    url, body: prefix, ..
                }) => {
                    assert_eq!(url, URL);
                    assert_eq!(prefix, body);
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        let err = parse_root(URL, r#"{"kind":"Pod"}"#, Root::Groups)
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().contains("expected a discovery document of kind APIGroupDiscoveryList or APIGroupList, got kind `Pod`"), "{err}");

        for body in [
            r#"{"kind":"APIVersions"}"#,
            r#"{"kind":"APIResourceList","resources":[{"name":7}]}"#,
            "{",
        ] {
            assert!(
                matches!(
                    parse_resource_list(URL, body, "", "v1"),
                    Err(Error::Decode { .. })
                ),
                "{body}"
            );
        }
        let deep = "[".repeat(100_000);
        assert!(matches!(
            parse_root(URL, &deep, Root::Core),
            Err(Error::Decode { .. })
        ));
    }

    #[test]
    fn entries_the_model_cannot_hold_are_skipped() {
        let body = r#"{"kind":"APIGroupDiscoveryList","items":[
          {"metadata":{"name":"ok.io"},"versions":[
            {"version":"v1","resources":[
              {"resource":"good","responseKind":{"kind":"Good"},"scope":"Namespaced"},
              {"resource":"nokind","scope":"Namespaced"},
              {"resource":"weird","responseKind":{"kind":"Weird"},"scope":"Galaxy"},
              {"resource":"a?b","responseKind":{"kind":"Query"},"scope":"Cluster"},
              {"resource":"..","responseKind":{"kind":"Dots"},"scope":"Cluster"},
              null
            ]},
            {"version":"v/2","resources":[]},
            {"version":"v1","resources":[{"resource":"dup","responseKind":{"kind":"Dup"},"scope":"Cluster"}]}
          ]},
          {"metadata":{"name":"bad/group"},"versions":[{"version":"v1"}]},
          {"metadata":null,"versions":null}
        ]}"#;
        // A null resource is a shape error, not something to skip.
        assert!(matches!(
            parse_root(URL, body, Root::Groups),
            Err(Error::Decode { .. })
        ));
        let body = body.replace(",\n              null", "");
        let d = Discovery::from_parts([aggregated_part(&body, Root::Groups)]);
        assert_eq!(d.groups().len(), 1);
        let g = &d.groups()[0];
        assert_eq!(
            (g.name.as_str(), g.versions.as_slice()),
            ("ok.io", &["v1".to_string()][..])
        );
        let plurals: Vec<&str> = g
            .resources
            .iter()
            .map(|r| r.resource.plural.as_str())
            .collect();
        assert_eq!(plurals, ["good"]);

        let list = r#"{"kind":"APIResourceList","groupVersion":"x.io/v1","resources":[
          {"name":"orphans/status","kind":"Orphan"},
          {"name":"things","kind":"Thing","namespaced":null,"verbs":["get"],"shortNames":null,"singularName":null},
          {"name":"things/","kind":"Thing"},
          {"name":"nokind","kind":""}
        ]}"#;
        let resources = parse_resource_list(URL, list, "x.io", "v1").unwrap();
        assert_eq!(resources.len(), 1);
        assert_eq!(
            resources[0].resource,
            ApiResource::new("x.io", "v1", "Thing", "things", Scope::Cluster)
        );
        assert_eq!(resources[0].singular, "thing");
        assert!(resources[0].subresources.is_empty());
    }

    #[test]
    fn legacy_roots_keep_valid_groups_and_versions() {
        let body = r#"{"kind":"APIGroupList","groups":[
          {"name":"a.io","versions":[{"groupVersion":"a.io/v1beta1","version":"v1beta1"},{"groupVersion":"a.io/v1","version":"v1"},{"groupVersion":"a.io/v1","version":"v1"}],"preferredVersion":{"groupVersion":"a.io/v1","version":"v1"}},
          {"name":"b.io","versions":[{"groupVersion":"b.io/v1","version":"v1"}],"preferredVersion":{"groupVersion":"b.io/v9","version":"v9"}},
          {"name":"","versions":[{"groupVersion":"v1","version":"v1"}]},
          {"name":"c.io","versions":[]},
          {"name":"d.io","versions":[{"groupVersion":"d.io/v 1"}]}
        ]}"#;
        let RootAnswer::Legacy(groups) = parse_root(URL, body, Root::Groups).unwrap() else {
            panic!("legacy expected")
        };
        assert_eq!(
            groups,
            [
                LegacyGroup {
                    name: "a.io".into(),
                    versions: vec!["v1".into(), "v1beta1".into()]
                },
                LegacyGroup {
                    name: "b.io".into(),
                    versions: vec!["v1".into()]
                },
            ]
        );
        let RootAnswer::Legacy(core) =
            parse_root(URL, r#"{"kind":"APIVersions","versions":null}"#, Root::Core).unwrap()
        else {
            panic!("legacy expected")
        };
        assert!(core.is_empty());
    }

    #[test]
    fn groups_of_the_same_name_merge() {
        let core = Part {
            groups: ApiGroup::from_versions(
                "".into(),
                vec![(
                    "v1".into(),
                    vec![discovered(
                        "",
                        "v1",
                        "Pod",
                        "pods".into(),
                        Scope::Namespaced,
                        vec![],
                        vec![],
                        String::new(),
                        vec![],
                    )],
                )],
            )
            .into_iter()
            .collect(),
            unavailable: vec![],
            aggregated: true,
        };
        let again = Part {
            groups: ApiGroup::from_versions(
                "".into(),
                vec![
                    ("v1".into(), vec![]),
                    (
                        "v2".into(),
                        vec![discovered(
                            "",
                            "v2",
                            "Pod",
                            "pods".into(),
                            Scope::Namespaced,
                            vec![],
                            vec![],
                            String::new(),
                            vec![],
                        )],
                    ),
                ],
            )
            .into_iter()
            .collect(),
            unavailable: vec!["v3".into()],
            aggregated: false,
        };
        let d = Discovery::from_parts([core, again]);
        assert!(!d.is_aggregated());
        assert_eq!(d.groups().len(), 1);
        assert_eq!(d.groups()[0].versions, ["v1", "v2"]);
        assert_eq!(d.groups()[0].resources.len(), 2);
        assert_eq!(d.resolve_kind("", "Pod").unwrap().version, "v1");
        assert_eq!(d.unavailable(), ["v3"]);
    }
}
