//! The finalizer protocol against the real control plane: the finalizer is
//! added before Apply runs, deletion runs Cleanup once and lets the object
//! go, concurrent changes to the finalizers make our patches fail instead
//! of clobbering them, and a failing Cleanup keeps the object.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::cm;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::Api;
use kube_client::params::{DeleteParams, Patch, PatchParams, PostParams};
use kube_runtime::controller::Action;
use kube_runtime::finalizer::{Error, Event, finalizer};
use serde_json::json;

const OURS: &str = "kube-runtime.test/cleanup";
const OTHER: &str = "other.example.com/keep";

#[derive(Debug, thiserror::Error)]
#[error("the external system is down")]
struct Down;

/// Counts what the user's code was asked to do.
#[derive(Default)]
struct Calls {
    apply: AtomicUsize,
    cleanup: AtomicUsize,
}

impl Calls {
    fn get(&self) -> (usize, usize) {
        (
            self.apply.load(Ordering::SeqCst),
            self.cleanup.load(Ordering::SeqCst),
        )
    }
}

/// Runs `finalizer` with a reconcile that counts and, for Cleanup, fails
/// when `cleanup_fails`.
async fn run(
    api: &Api<ConfigMap>,
    obj: ConfigMap,
    calls: &Calls,
    cleanup_fails: bool,
) -> Result<Action, Error<Down>> {
    finalizer(api, OURS, Arc::new(obj), |event| async move {
        match event {
            Event::Apply(_) => {
                calls.apply.fetch_add(1, Ordering::SeqCst);
                Ok(Action::requeue(Duration::from_secs(300)))
            }
            Event::Cleanup(_) if cleanup_fails => {
                calls.cleanup.fetch_add(1, Ordering::SeqCst);
                Err(Down)
            }
            Event::Cleanup(_) => {
                calls.cleanup.fetch_add(1, Ordering::SeqCst);
                Ok(Action::await_change())
            }
        }
    })
    .await
}

fn finalizers(obj: &ConfigMap) -> Vec<String> {
    obj.metadata.finalizers.clone().unwrap_or_default()
}

async fn set_finalizers(api: &Api<ConfigMap>, name: &str, list: &[&str]) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": list}})),
    )
    .await
    .unwrap();
}

/// Waits (bounded) until `name` no longer exists.
async fn gone(api: &Api<ConfigMap>, name: &str) -> bool {
    for _ in 0..50 {
        if api.get_opt(name).await.unwrap().is_none() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn added_before_apply_then_cleanup_once_on_delete() {
    let ns = common::env().namespace("fin-life").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    let created = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let calls = Calls::default();

    let action = run(&api, created, &calls, false).await.unwrap();
    assert_eq!(
        action,
        Action::await_change(),
        "the add triggers the next reconcile"
    );
    assert_eq!(
        calls.get(),
        (0, 0),
        "no Apply before the finalizer is in place"
    );
    let fresh = api.get("a").await.unwrap();
    assert_eq!(finalizers(&fresh), [OURS]);

    let action = run(&api, fresh, &calls, false).await.unwrap();
    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(300)),
        "Apply's own action"
    );
    assert_eq!(calls.get(), (1, 0));
    assert_eq!(
        finalizers(&api.get("a").await.unwrap()),
        [OURS],
        "added once"
    );

    api.delete("a", &DeleteParams::default()).await.unwrap();
    let deleting = api.get("a").await.unwrap();
    assert!(
        deleting.metadata.deletion_timestamp.is_some(),
        "held by the finalizer"
    );
    run(&api, deleting, &calls, false).await.unwrap();
    assert_eq!(calls.get(), (1, 1), "Cleanup ran exactly once");
    assert!(
        gone(&api, "a").await,
        "the object went once the finalizer was removed"
    );
}

#[tokio::test]
async fn a_deleted_object_without_our_finalizer_is_left_alone() {
    let ns = common::env().namespace("fin-other").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    set_finalizers(&api, "b", &[OTHER]).await;
    api.delete("b", &DeleteParams::default()).await.unwrap();
    let deleting = api.get("b").await.unwrap();
    let calls = Calls::default();
    let action = run(&api, deleting, &calls, false).await.unwrap();
    assert_eq!(action, Action::await_change());
    assert_eq!(calls.get(), (0, 0));
    assert_eq!(
        finalizers(&api.get("b").await.unwrap()),
        [OTHER],
        "not added while deleting"
    );
    set_finalizers(&api, "b", &[]).await;
    assert!(gone(&api, "b").await);
}

#[tokio::test]
async fn concurrent_finalizer_changes_fail_instead_of_clobbering() {
    let ns = common::env().namespace("fin-race").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    let calls = Calls::default();

    // Adding: our copy was read before another controller added its own.
    let stale = api.create(&PostParams::default(), &cm("c")).await.unwrap();
    set_finalizers(&api, "c", &[OTHER]).await;
    let err = run(&api, stale, &calls, false).await.unwrap_err();
    match &err {
        Error::AddFinalizer(e) => assert_eq!(e.code(), Some(422), "{e}"),
        other => panic!("expected AddFinalizer, got {other}"),
    }
    assert_eq!(
        finalizers(&api.get("c").await.unwrap()),
        [OTHER],
        "theirs kept, nothing added"
    );
    // The retry with the current version adds ours after theirs.
    let fresh = api.get("c").await.unwrap();
    run(&api, fresh, &calls, false).await.unwrap();
    assert_eq!(finalizers(&api.get("c").await.unwrap()), [OTHER, OURS]);

    // Removing: our copy says ours is at index 1, but the other finalizer
    // was removed meanwhile, so ours moved to index 0.
    api.delete("c", &DeleteParams::default()).await.unwrap();
    let stale = api.get("c").await.unwrap();
    set_finalizers(&api, "c", &[OURS]).await;
    let err = run(&api, stale, &calls, false).await.unwrap_err();
    match &err {
        Error::RemoveFinalizer(e) => assert_eq!(e.code(), Some(422), "{e}"),
        other => panic!("expected RemoveFinalizer, got {other}"),
    }
    let still = api.get("c").await.unwrap();
    assert_eq!(finalizers(&still), [OURS], "nothing removed blindly");
    assert_eq!(calls.get(), (0, 1));
    // The retry with the current version cleans up (again: Cleanup is
    // idempotent) and lets the object go.
    run(&api, still, &calls, false).await.unwrap();
    assert_eq!(calls.get(), (0, 2));
    assert!(gone(&api, "c").await);
}

#[tokio::test]
async fn a_failing_cleanup_keeps_the_object_until_it_succeeds() {
    let ns = common::env().namespace("fin-fail").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    let calls = Calls::default();
    let created = api.create(&PostParams::default(), &cm("d")).await.unwrap();
    run(&api, created, &calls, false).await.unwrap();
    api.delete("d", &DeleteParams::default()).await.unwrap();

    for attempt in 1..=3 {
        let deleting = api.get("d").await.unwrap();
        let err = run(&api, deleting, &calls, true).await.unwrap_err();
        assert!(matches!(err, Error::CleanupFailed(Down)), "{err}");
        assert_eq!(calls.get(), (0, attempt));
        let still = api
            .get_opt("d")
            .await
            .unwrap()
            .expect("kept while Cleanup fails");
        assert_eq!(finalizers(&still), [OURS]);
    }
    let deleting = api.get("d").await.unwrap();
    run(&api, deleting, &calls, false).await.unwrap();
    assert_eq!(calls.get(), (0, 4));
    assert!(gone(&api, "d").await);
}

#[tokio::test]
async fn bad_input_is_refused_before_any_request() {
    let ns = common::env().namespace("fin-bad").await.unwrap();
    let client = common::client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let created = api.create(&PostParams::default(), &cm("e")).await.unwrap();
    let calls = Calls::default();

    let all: Api<ConfigMap> = Api::all(client);
    let err = run(&all, created.clone(), &calls, false).await.unwrap_err();
    assert!(
        matches!(err, Error::WrongNamespace { api: None, .. }),
        "{err}"
    );

    let mut unnamed = created.clone();
    unnamed.metadata.name = None;
    let err = run(&api, unnamed, &calls, false).await.unwrap_err();
    assert!(matches!(err, Error::UnnamedObject), "{err}");

    let err = finalizer(&api, "Not A Finalizer", Arc::new(created), |_| async {
        Ok::<_, Down>(Action::await_change())
    })
    .await
    .unwrap_err();
    assert!(matches!(err, Error::InvalidFinalizer { .. }), "{err}");
    assert!(
        finalizers(&api.get("e").await.unwrap()).is_empty(),
        "nothing was written"
    );
}
