//! The JSON shapes of discovery documents, lenient about nulls.

use super::*;
// ---------------------------------------------------------------------------
// Wire shapes. Only the fields used; every field may be absent or null.
// ---------------------------------------------------------------------------

/// Treats `null` like an absent field.
pub(super) fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`.
#[derive(Debug, Deserialize)]
pub(super) struct WireDiscoveryList {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) items: Vec<WireDiscoveryGroup>,
}

/// `APIGroupDiscovery`.
#[derive(Debug, Deserialize)]
pub(super) struct WireDiscoveryGroup {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) metadata: WireName,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) versions: Vec<WireVersion>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct WireName {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) name: String,
}

/// `APIVersionDiscovery`.
#[derive(Debug, Deserialize)]
pub(super) struct WireVersion {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) resources: Vec<WireResource>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) freshness: String,
}

/// `APIResourceDiscovery`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireResource {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) resource: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) response_kind: Option<WireKind>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) scope: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) singular_resource: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) verbs: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) short_names: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) subresources: Vec<WireSubresource>,
}

/// `GroupVersionKind` (only the kind is used: group and version are the
/// containing ones).
#[derive(Debug, Default, Deserialize)]
pub(super) struct WireKind {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) kind: String,
}

/// `APISubresourceDiscovery`.
#[derive(Debug, Deserialize)]
pub(super) struct WireSubresource {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) subresource: String,
}

/// `APIVersions` (the legacy `/api`).
#[derive(Debug, Deserialize)]
pub(super) struct WireApiVersions {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) versions: Vec<String>,
}

/// `APIGroupList` (the legacy `/apis`).
#[derive(Debug, Deserialize)]
pub(super) struct WireGroupList {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) groups: Vec<WireGroup>,
}

/// `APIGroup`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireGroup {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) versions: Vec<WireGroupVersion>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) preferred_version: Option<WireGroupVersion>,
}

/// `GroupVersionForDiscovery`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireGroupVersion {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) group_version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) version: String,
}

impl WireGroupVersion {
    /// `version`, or the part of `groupVersion` after the `/`.
    pub(super) fn into_version(self) -> String {
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
pub(super) struct WireResourceList {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) resources: Vec<WireLegacyResource>,
}

/// `APIResource`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireLegacyResource {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) singular_name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) namespaced: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) verbs: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) short_names: Vec<String>,
}
