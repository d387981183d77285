//! Query parameters and bodies of requests: list and watch options, label
//! and field selectors, create/replace options, patches and deletes.
//!
//! Every type renders to the exact query string kube-apiserver reads;
//! unset options are left out so that server defaults apply.

use std::fmt::Write as _;

use serde::Serialize;

/// Appends `key=value` (percent-encoded) to a query string.
pub(crate) fn push_query(q: &mut String, key: &str, value: &str) {
    q.push(if q.is_empty() { '?' } else { '&' });
    q.push_str(key);
    q.push('=');
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            q.push(b as char);
        } else {
            let _ = write!(q, "%{b:02X}");
        }
    }
}

/// Appends the non-empty label and field selectors.
fn push_selectors(q: &mut String, labels: &Option<Selector>, fields: &Option<Selector>) {
    for (key, selector) in [("labelSelector", labels), ("fieldSelector", fields)] {
        if let Some(s) = selector.as_ref().filter(|s| !s.is_empty()) {
            push_query(q, key, &s.to_string());
        }
    }
}

/// A label selector, built from requirements or given raw.
///
/// ```
/// use kube_client::params::Selector;
/// let s = Selector::new().eq("app", "web").not_in("tier", ["cache", "db"]).exists("team");
/// assert_eq!(s.to_string(), "app=web,tier notin (cache,db),team");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(Vec<String>);

impl Selector {
    /// An empty selector (matches everything).
    pub fn new() -> Self {
        Self::default()
    }
    /// A selector from its string form, e.g. `app=web,tier!=db`.
    pub fn raw(s: impl Into<String>) -> Self {
        let s = s.into();
        if s.is_empty() {
            Self::default()
        } else {
            Self(vec![s])
        }
    }
    fn with(mut self, requirement: String) -> Self {
        self.0.push(requirement);
        self
    }
    /// `key=value`.
    pub fn eq(self, key: &str, value: &str) -> Self {
        self.with(format!("{key}={value}"))
    }
    /// `key!=value`.
    pub fn ne(self, key: &str, value: &str) -> Self {
        self.with(format!("{key}!={value}"))
    }
    /// `key in (v1,v2)`.
    pub fn in_<'a>(self, key: &str, values: impl IntoIterator<Item = &'a str>) -> Self {
        self.with(format!(
            "{key} in ({})",
            values.into_iter().collect::<Vec<_>>().join(",")
        ))
    }
    /// `key notin (v1,v2)`.
    pub fn not_in<'a>(self, key: &str, values: impl IntoIterator<Item = &'a str>) -> Self {
        self.with(format!(
            "{key} notin ({})",
            values.into_iter().collect::<Vec<_>>().join(",")
        ))
    }
    /// `key` (the label exists).
    pub fn exists(self, key: &str) -> Self {
        self.with(key.to_string())
    }
    /// `!key` (the label does not exist).
    pub fn not_exists(self, key: &str) -> Self {
        self.with(format!("!{key}"))
    }
    /// True if it has no requirement.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

/// How a list's `resourceVersion` is interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionMatch {
    /// At least as new as the given version (served from the watch cache).
    NotOlderThan,
    /// Exactly the given version (needs etcd to still hold it).
    Exact,
}

/// Options of a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    /// Label selector.
    pub label_selector: Option<Selector>,
    /// Field selector, e.g. `metadata.name=foo`.
    pub field_selector: Option<Selector>,
    /// Page size.
    pub limit: Option<u32>,
    /// The `continue` token of the previous page.
    pub continue_token: Option<String>,
    /// `resourceVersion`: `"0"` for any cached version, or a version.
    pub resource_version: Option<String>,
    /// How `resource_version` is interpreted.
    pub version_match: Option<VersionMatch>,
    /// Server-side timeout.
    pub timeout_seconds: Option<u32>,
}

impl ListParams {
    /// Sets the label selector.
    pub fn labels(mut self, selector: impl Into<Selector>) -> Self {
        self.label_selector = Some(selector.into());
        self
    }
    /// Sets the field selector.
    pub fn fields(mut self, selector: impl Into<Selector>) -> Self {
        self.field_selector = Some(selector.into());
        self
    }
    /// Sets the page size.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
    /// Sets `resourceVersion` (and optionally how to match it).
    pub fn at(
        mut self,
        resource_version: impl Into<String>,
        version_match: Option<VersionMatch>,
    ) -> Self {
        self.resource_version = Some(resource_version.into());
        self.version_match = version_match;
        self
    }

    pub(crate) fn query(&self) -> String {
        let mut q = String::new();
        push_selectors(&mut q, &self.label_selector, &self.field_selector);
        if let Some(l) = self.limit {
            push_query(&mut q, "limit", &l.to_string());
        }
        if let Some(c) = &self.continue_token {
            push_query(&mut q, "continue", c);
        }
        if let Some(rv) = &self.resource_version {
            push_query(&mut q, "resourceVersion", rv);
        }
        match self.version_match {
            Some(VersionMatch::NotOlderThan) => {
                push_query(&mut q, "resourceVersionMatch", "NotOlderThan")
            }
            Some(VersionMatch::Exact) => push_query(&mut q, "resourceVersionMatch", "Exact"),
            None => {}
        }
        if let Some(t) = self.timeout_seconds {
            push_query(&mut q, "timeoutSeconds", &t.to_string());
        }
        q
    }
}

impl From<&str> for Selector {
    fn from(s: &str) -> Self {
        Selector::raw(s)
    }
}

/// Options of a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchParams {
    /// Label selector.
    pub label_selector: Option<Selector>,
    /// Field selector.
    pub field_selector: Option<Selector>,
    /// Server-side timeout (default 290 s, as client-go's reflector uses ~5 min).
    pub timeout_seconds: Option<u32>,
    /// Ask for BOOKMARK events (default true).
    pub bookmarks: bool,
    /// Streaming list: send the current state as ADDED events first, ending
    /// with a bookmark annotated `k8s.io/initial-events-end`.
    pub send_initial_events: bool,
}

impl Default for WatchParams {
    fn default() -> Self {
        Self {
            label_selector: None,
            field_selector: None,
            timeout_seconds: Some(290),
            bookmarks: true,
            send_initial_events: false,
        }
    }
}

impl WatchParams {
    /// Sets the label selector.
    pub fn labels(mut self, selector: impl Into<Selector>) -> Self {
        self.label_selector = Some(selector.into());
        self
    }
    /// Sets the field selector.
    pub fn fields(mut self, selector: impl Into<Selector>) -> Self {
        self.field_selector = Some(selector.into());
        self
    }
    /// Sets the server-side timeout.
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout_seconds = Some(seconds);
        self
    }
    /// Turns bookmarks on or off.
    pub fn bookmarks(mut self, on: bool) -> Self {
        self.bookmarks = on;
        self
    }
    /// Turns the streaming list on.
    pub fn streaming_list(mut self) -> Self {
        self.send_initial_events = true;
        self
    }

    pub(crate) fn query(&self, resource_version: &str) -> String {
        let mut q = String::new();
        push_query(&mut q, "watch", "true");
        push_selectors(&mut q, &self.label_selector, &self.field_selector);
        if let Some(t) = self.timeout_seconds {
            push_query(&mut q, "timeoutSeconds", &t.to_string());
        }
        if self.bookmarks || self.send_initial_events {
            push_query(&mut q, "allowWatchBookmarks", "true");
        }
        if self.send_initial_events {
            push_query(&mut q, "sendInitialEvents", "true");
            push_query(&mut q, "resourceVersionMatch", "NotOlderThan");
        }
        if !resource_version.is_empty() {
            push_query(&mut q, "resourceVersion", resource_version);
        }
        q
    }
}

/// Options of create and replace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostParams {
    /// Validate and default, but store nothing.
    pub dry_run: bool,
    /// The field manager recorded in managedFields.
    pub field_manager: Option<String>,
}

impl PostParams {
    pub(crate) fn query(&self) -> String {
        let mut q = String::new();
        if self.dry_run {
            push_query(&mut q, "dryRun", "All");
        }
        if let Some(m) = &self.field_manager {
            push_query(&mut q, "fieldManager", m);
        }
        q
    }
}

/// A patch, in one of the four kinds kube-apiserver takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Patch<T: Serialize> {
    /// JSON merge patch (RFC 7386): `null` deletes a key.
    Merge(T),
    /// JSON patch (RFC 6902): a list of operations.
    Json(Vec<serde_json::Value>),
    /// Strategic merge patch (built-in kinds only): lists merge by key.
    Strategic(T),
    /// Server-side apply: the full intent of one field manager (needs
    /// [`PatchParams::field_manager`]).
    Apply(T),
}

impl<T: Serialize> Patch<T> {
    pub(crate) fn content_type(&self) -> &'static str {
        match self {
            Patch::Merge(_) => "application/merge-patch+json",
            Patch::Json(_) => "application/json-patch+json",
            Patch::Strategic(_) => "application/strategic-merge-patch+json",
            Patch::Apply(_) => "application/apply-patch+yaml",
        }
    }

    pub(crate) fn body(&self) -> serde_json::Result<Vec<u8>> {
        match self {
            Patch::Merge(v) | Patch::Strategic(v) | Patch::Apply(v) => serde_json::to_vec(v),
            Patch::Json(ops) => serde_json::to_vec(ops),
        }
    }
}

/// Options of a patch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchParams {
    /// Validate and default, but store nothing.
    pub dry_run: bool,
    /// Take over fields owned by other managers (server-side apply only).
    pub force: bool,
    /// The field manager; required for server-side apply.
    pub field_manager: Option<String>,
}

impl PatchParams {
    /// Server-side apply as `manager`.
    pub fn apply(manager: &str) -> Self {
        Self {
            field_manager: Some(manager.into()),
            ..Self::default()
        }
    }
    /// Force conflicts (server-side apply).
    pub fn force(mut self) -> Self {
        self.force = true;
        self
    }

    pub(crate) fn query(&self) -> String {
        let mut q = String::new();
        if self.dry_run {
            push_query(&mut q, "dryRun", "All");
        }
        if self.force {
            push_query(&mut q, "force", "true");
        }
        if let Some(m) = &self.field_manager {
            push_query(&mut q, "fieldManager", m);
        }
        q
    }
}

/// What happens to dependents of a deleted object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PropagationPolicy {
    /// Leave dependents alone.
    Orphan,
    /// Delete dependents in the background.
    Background,
    /// Delete dependents first; the owner goes last.
    Foreground,
}

/// Conditions that must hold for a delete to go ahead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preconditions {
    /// The object's uid must be this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The object's resourceVersion must be this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

/// Options of a delete (sent as a `DeleteOptions` body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteParams {
    /// Validate, but delete nothing.
    #[serde(
        skip_serializing_if = "std::ops::Not::not",
        serialize_with = "dry_run_all"
    )]
    pub dry_run: bool,
    /// Seconds before the object is deleted (0: now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<u32>,
    /// What happens to dependents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation_policy: Option<PropagationPolicy>,
    /// Conditions to check first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preconditions: Option<Preconditions>,
}

fn dry_run_all<S: serde::Serializer>(_: &bool, s: S) -> Result<S::Ok, S::Error> {
    ["All"].serialize(s)
}

impl DeleteParams {
    pub(crate) fn body(&self) -> Vec<u8> {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = v.as_object_mut() {
            map.insert("apiVersion".into(), "v1".into());
            map.insert("kind".into(), "DeleteOptions".into());
        }
        v.to_string().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query() {
        let lp = ListParams::default()
            .labels(Selector::new().eq("a", "b").ne("c", "d"))
            .limit(500)
            .at("0", None);
        assert_eq!(
            lp.query(),
            "?labelSelector=a%3Db%2Cc%21%3Dd&limit=500&resourceVersion=0"
        );
        let exact = ListParams::default().at("42", Some(VersionMatch::Exact));
        assert_eq!(
            exact.query(),
            "?resourceVersion=42&resourceVersionMatch=Exact"
        );
    }

    #[test]
    fn watch_query() {
        let wp = WatchParams::default().fields("metadata.name=x");
        assert_eq!(
            wp.query("10"),
            "?watch=true&fieldSelector=metadata.name%3Dx&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=10"
        );
        let streaming = WatchParams::default().bookmarks(false).streaming_list();
        assert!(
            streaming
                .query("")
                .contains("sendInitialEvents=true&resourceVersionMatch=NotOlderThan")
        );
    }

    #[test]
    fn delete_body() {
        let dp = DeleteParams {
            dry_run: true,
            grace_period_seconds: Some(0),
            propagation_policy: Some(PropagationPolicy::Foreground),
            preconditions: Some(Preconditions {
                uid: Some("u".into()),
                resource_version: None,
            }),
        };
        let v: serde_json::Value = serde_json::from_slice(&dp.body()).unwrap();
        assert_eq!(v["dryRun"], serde_json::json!(["All"]));
        assert_eq!(v["gracePeriodSeconds"], 0);
        assert_eq!(v["propagationPolicy"], "Foreground");
        assert_eq!(v["preconditions"]["uid"], "u");
        assert_eq!(v["kind"], "DeleteOptions");
        let plain: serde_json::Value =
            serde_json::from_slice(&DeleteParams::default().body()).unwrap();
        assert!(plain.get("dryRun").is_none());
    }

    #[test]
    fn selector_builder() {
        let s = Selector::new().in_("env", ["a", "b"]).not_exists("x");
        assert_eq!(s.to_string(), "env in (a,b),!x");
    }
}
