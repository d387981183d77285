//! The controller engine end to end on the real control plane: a reflector
//! feeds object keys into the work queue, the runner reconciles them from
//! the reflector's store through the finalizer protocol, a failing Cleanup
//! is retried with backoff until it succeeds, and shutdown ends the stream.

mod common;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use common::cm;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::params::{DeleteParams, PostParams};
use kube_client::{Api, ResourceExt};
use kube_runtime::controller::{
    Action, Error, ObjectRef, RunnerConfig, WorkQueue, default_error_policy, run_workers,
};
use kube_runtime::finalizer::{self, Event, finalizer};
use kube_runtime::{Reflector, WatchEvent};
use parking_lot::Mutex;

const FINALIZER: &str = "kube-runtime.test/controller";

#[derive(Debug, thiserror::Error)]
#[error("the external system is down")]
struct Down;

struct Ctx {
    api: Api<ConfigMap>,
    applies: Mutex<HashMap<String, usize>>,
    cleanups: Mutex<HashMap<String, usize>>,
    /// How many Cleanups of each object fail before one succeeds.
    cleanup_failures: HashMap<String, usize>,
}

async fn reconcile(obj: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, finalizer::Error<Down>> {
    let ctx2 = ctx.clone();
    finalizer(&ctx.api, FINALIZER, obj, |event| async move {
        match event {
            Event::Apply(o) => {
                *ctx2.applies.lock().entry(o.name_any().into()).or_default() += 1;
                Ok(Action::await_change())
            }
            Event::Cleanup(o) => {
                let name = o.name_any().to_string();
                let n = {
                    let mut c = ctx2.cleanups.lock();
                    let n = c.entry(name.clone()).or_default();
                    *n += 1;
                    *n
                };
                if n <= ctx2.cleanup_failures.get(&name).copied().unwrap_or(0) {
                    Err(Down)
                } else {
                    Ok(Action::await_change())
                }
            }
        }
    })
    .await
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn reconciles_through_the_finalizer_and_retries_a_failing_cleanup() {
    let ns = common::env().namespace("ctrl").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);

    // The trigger: every change to a ConfigMap queues its key, after the
    // reflector's store has the new state.
    let mut rf = Reflector::new(api.clone());
    let store = rf.reader();
    let queue: WorkQueue<ObjectRef<ConfigMap>> = WorkQueue::default();
    let feeder = {
        let queue = queue.clone();
        tokio::spawn(async move {
            loop {
                if rf.poll().await.is_err() {
                    continue;
                }
                for event in rf.events() {
                    if let WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) =
                        event
                    {
                        queue.add(ObjectRef::from_obj(&*o));
                    }
                }
            }
        })
    };

    let ctx = Arc::new(Ctx {
        api: api.clone(),
        applies: Mutex::default(),
        cleanups: Mutex::default(),
        cleanup_failures: HashMap::from([("flaky".to_string(), 2)]),
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let results = tokio::spawn(
        run_workers(
            queue.clone(),
            move |r: &ObjectRef<ConfigMap>| store.get(r.namespace.as_deref(), &r.name),
            reconcile,
            default_error_policy,
            ctx.clone(),
            RunnerConfig::default().concurrency(NonZeroUsize::new(4).unwrap()),
            async move {
                let _ = stopped.await;
            },
        )
        .collect::<Vec<_>>(),
    );

    for name in ["steady", "flaky"] {
        api.create(&PostParams::default(), &cm(name)).await.unwrap();
    }
    eventually("both applied with the finalizer in place", || {
        let applies = ctx.applies.lock();
        applies.contains_key("steady") && applies.contains_key("flaky")
    })
    .await;
    for name in ["steady", "flaky"] {
        let obj = api.get(name).await.unwrap();
        assert_eq!(obj.metadata.finalizers, Some(vec![FINALIZER.to_string()]));
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    let mut left = 2;
    for _ in 0..300 {
        left = 0;
        for name in ["steady", "flaky"] {
            if api.get_opt(name).await.unwrap().is_some() {
                left += 1;
            }
        }
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "both objects deleted once cleaned up");
    let cleanups = ctx.cleanups.lock().clone();
    assert_eq!(cleanups["steady"], 1, "cleanup ran exactly once");
    assert_eq!(
        cleanups["flaky"], 3,
        "two failures, retried until it succeeded"
    );

    stop.send(()).unwrap();
    let items = tokio::time::timeout(Duration::from_secs(30), results)
        .await
        .expect("the stream ends after shutdown")
        .unwrap();
    feeder.abort();
    let cleanup_failures = items
        .iter()
        .filter(|i| {
            matches!(
                i,
                Err(Error::ReconcilerFailed(finalizer::Error::CleanupFailed(Down), r)) if r.name == "flaky"
            )
        })
        .count();
    assert_eq!(cleanup_failures, 2);
    assert!(
        items
            .iter()
            .any(|i| matches!(i, Ok((r, _)) if r.name == "steady"))
    );
}
