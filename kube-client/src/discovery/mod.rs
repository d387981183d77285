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
use crate::error::{Error, Result, describe_body, safe_json_error};
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

mod fetch;
#[cfg(test)]
mod tests;
mod wire;

use fetch::*;
use wire::*;
