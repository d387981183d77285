//! Finalizers: run cleanup code before Kubernetes deletes an object.
//!
//! A finalizer is a name in `metadata.finalizers`. While the list is not
//! empty, deleting the object only sets `metadata.deletionTimestamp`; the
//! object stays until every finalizer is removed. A controller that must
//! clean up external state (a cloud resource, a DNS record) adds its own
//! finalizer, and removes it once the cleanup is done.
//!
//! [`finalizer`] wraps a reconcile in that protocol (kube-rs's semantics):
//!
//! | the object | what happens | returns |
//! |---|---|---|
//! | not being deleted, lacks our finalizer | the finalizer is added | [`Action::await_change`]: the change triggers the next reconcile, which sees it |
//! | not being deleted, has our finalizer | the user's code runs with [`Event::Apply`] | its action |
//! | being deleted, has our finalizer | the user's code runs with [`Event::Cleanup`]; when it succeeds the finalizer is removed (and the API server deletes the object) | its action |
//! | being deleted, lacks our finalizer | nothing: our cleanup already ran | [`Action::await_change`] |
//!
//! Guarantees:
//! - **Apply never runs without the finalizer in place**, so every object
//!   the user's code may have acted on gets a Cleanup before it disappears.
//! - **Cleanup is retried until it succeeds.** A failed Cleanup returns
//!   [`Error::CleanupFailed`] and leaves the finalizer, so the object stays
//!   and the controller retries it with its per-key backoff. Cleanup must be
//!   idempotent: it runs again if removing the finalizer fails.
//! - **Races fail instead of clobbering.** The finalizer is added and
//!   removed with JSON patches that first `test` what they change: adding
//!   tests the whole finalizers list as read, removing tests that our name
//!   is still at the index read. If another writer changed the list
//!   meanwhile, the API server rejects the patch (422), nothing is written,
//!   and the error ([`Error::AddFinalizer`], [`Error::RemoveFinalizer`])
//!   makes the controller retry with the object's newer version.
//!
//! The `api` must address the object's namespace (or be for a
//! cluster-scoped kind); an all-namespaces `Api` of a namespaced kind cannot
//! patch one object and is refused with [`Error::WrongNamespace`].

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use kube_client::params::{Patch, PatchParams};
use kube_client::{Api, Resource, ResourceExt, Scope};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::controller::Action;

/// What the user's code is asked to do.
#[derive(Debug, Clone)]
pub enum Event<K> {
    /// Make the world match the object (it is not being deleted, and our
    /// finalizer is in place).
    Apply(Arc<K>),
    /// The object is being deleted: release what Apply created. The
    /// finalizer is removed once this succeeds.
    Cleanup(Arc<K>),
}

/// What went wrong in [`finalizer`].
#[derive(Debug, thiserror::Error)]
pub enum Error<E: std::error::Error + 'static> {
    /// The user's Apply failed.
    #[error("apply failed: {0}")]
    ApplyFailed(#[source] E),
    /// The user's Cleanup failed; the finalizer stays, so it is retried.
    #[error("cleanup failed: {0}")]
    CleanupFailed(#[source] E),
    /// Adding the finalizer failed (a 422 means the finalizers changed
    /// since the object was read).
    #[error("adding the finalizer failed: {0}")]
    AddFinalizer(#[source] kube_client::Error),
    /// Removing the finalizer failed (a 422 means the finalizers changed
    /// since the object was read).
    #[error("removing the finalizer failed: {0}")]
    RemoveFinalizer(#[source] kube_client::Error),
    /// The object has no `metadata.name`.
    #[error("the object has no metadata.name")]
    UnnamedObject,
    /// The finalizer name is not a valid Kubernetes finalizer name.
    #[error("invalid finalizer name {name:?}: {reason}")]
    InvalidFinalizer {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The `Api` does not address the object's namespace.
    #[error("the Api addresses namespace {api:?} but the object is in {object:?}")]
    WrongNamespace {
        /// The `Api`'s namespace (`None`: all namespaces).
        api: Option<String>,
        /// The object's namespace.
        object: Option<String>,
    },
}

/// Runs `reconcile` for `obj` within the finalizer protocol; see the module
/// docs. `finalizer_name` should be domain-qualified, e.g.
/// `example.com/cleanup`.
pub async fn finalizer<K, E, Fut>(
    api: &Api<K>,
    finalizer_name: &str,
    obj: Arc<K>,
    reconcile: impl FnOnce(Event<K>) -> Fut,
) -> Result<Action, Error<E>>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
    E: std::error::Error + 'static,
    Fut: Future<Output = Result<Action, E>>,
{
    validate_finalizer_name(finalizer_name)?;
    let name = obj
        .meta()
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or(Error::UnnamedObject)?;
    check_namespace(api, obj.namespace())?;
    let finalizers = obj.meta().finalizers.as_deref().unwrap_or_default();
    let ours = finalizers.iter().position(|f| f == finalizer_name);
    let deleting = obj.meta().deletion_timestamp.is_some();
    match (ours, deleting) {
        (Some(_), false) => reconcile(Event::Apply(obj))
            .await
            .map_err(Error::ApplyFailed),
        (Some(index), true) => {
            let action = reconcile(Event::Cleanup(obj))
                .await
                .map_err(Error::CleanupFailed)?;
            let path = format!("/metadata/finalizers/{index}");
            let patch = Patch::<()>::Json(vec![
                json!({ "op": "test", "path": path, "value": finalizer_name }),
                json!({ "op": "remove", "path": path }),
            ]);
            match api.patch(&name, &PatchParams::default(), &patch).await {
                Ok(_) => Ok(action),
                // Already gone: nothing is left to finalize.
                Err(e) if e.is_not_found() => Ok(action),
                Err(e) => Err(Error::RemoveFinalizer(e)),
            }
        }
        (None, false) => {
            let ops = if finalizers.is_empty() {
                // `test` with null passes when the list is absent.
                vec![
                    json!({ "op": "test", "path": "/metadata/finalizers", "value": null }),
                    json!({ "op": "add", "path": "/metadata/finalizers", "value": [finalizer_name] }),
                ]
            } else {
                vec![
                    json!({ "op": "test", "path": "/metadata/finalizers", "value": finalizers }),
                    json!({ "op": "add", "path": "/metadata/finalizers/-", "value": finalizer_name }),
                ]
            };
            api.patch(&name, &PatchParams::default(), &Patch::<()>::Json(ops))
                .await
                .map_err(Error::AddFinalizer)?;
            Ok(Action::await_change())
        }
        (None, true) => Ok(Action::await_change()),
    }
}

fn check_namespace<K, E: std::error::Error + 'static>(
    api: &Api<K>,
    object: Option<&str>,
) -> Result<(), Error<E>> {
    let fits = match (api.resource().scope, api.namespace(), object) {
        (Scope::Cluster, _, _) => true,
        (Scope::Namespaced, Some(a), Some(o)) => a == o,
        (Scope::Namespaced, Some(_), None) => true,
        (Scope::Namespaced, None, _) => false,
    };
    if fits {
        Ok(())
    } else {
        Err(Error::WrongNamespace {
            api: api.namespace().map(str::to_string),
            object: object.map(str::to_string),
        })
    }
}

/// A finalizer name must be a Kubernetes qualified name: an optional DNS
/// subdomain prefix and `/`, then 1–63 alphanumerics, `-`, `_`, `.`,
/// starting and ending alphanumeric.
fn validate_finalizer_name<E: std::error::Error + 'static>(name: &str) -> Result<(), Error<E>> {
    let invalid = |reason| {
        Err(Error::InvalidFinalizer {
            name: name.to_string(),
            reason,
        })
    };
    let (prefix, local) = match name.split_once('/') {
        Some((p, l)) => (Some(p), l),
        None => (None, name),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() || prefix.len() > 253 {
            return invalid("the prefix before '/' must be 1-253 characters");
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !prefix.split('.').all(label_ok) {
            return invalid("the prefix before '/' must be a lowercase DNS subdomain");
        }
    }
    if local.is_empty() || local.len() > 63 {
        return invalid("the name (after any '/') must be 1-63 characters");
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge_ok(local.chars().next()) || !edge_ok(local.chars().last()) {
        return invalid("the name (after any '/') must start and end with a letter or digit");
    }
    if !local
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return invalid("the name (after any '/') may only contain letters, digits, '-', '_', '.'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("never")]
    struct Never;

    fn check(name: &str) -> Result<(), String> {
        validate_finalizer_name::<Never>(name).map_err(|e| e.to_string())
    }

    #[test]
    fn finalizer_names_are_qualified_names() {
        for ok in [
            "example.com/cleanup",
            "kubernetes",
            "a.b-c.io/Clean_up.v2",
            "x",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("", "1-63"),
            ("example.com/", "1-63"),
            ("/cleanup", "prefix"),
            ("Example.com/cleanup", "lowercase DNS subdomain"),
            ("ex..com/cleanup", "lowercase DNS subdomain"),
            ("example.com/-cleanup", "start and end"),
            ("example.com/clean up", "may only contain"),
            ("a/b/c", "may only contain"),
        ] {
            let err = check(bad).unwrap_err();
            assert!(
                err.contains(says) && err.contains(&format!("{bad:?}")),
                "{bad}: {err}"
            );
        }
        assert!(check(&format!("example.com/{}", "a".repeat(64))).is_err());
    }
}
