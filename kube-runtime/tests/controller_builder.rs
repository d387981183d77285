//! The Controller builder against the real control plane: every object
//! reconciled, bursts folded without overlapping reconciles, the
//! concurrency bound, owned children, shared watches, predicates, cache
//! sync timeout and graceful shutdown.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::cm;
use common::metrics::settles_at;
use common::probe::{Probe, drain};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::params::{DeleteParams, Patch, PatchParams, PostParams};
use kube_client::{Api, ApiResource, DynamicObject, ResourceExt, Scope};
use kube_runtime::controller::{
    Action, Config, Controller, Error, TriggerConfig, default_error_policy, predicates,
};
use kube_runtime::{Reflector, SharedInformers, WatchEvent, WatcherConfig};
use serde_json::json;

async fn create_many(api: &Api<ConfigMap>, names: &[String]) {
    for chunk in names.chunks(16) {
        futures::future::try_join_all(chunk.iter().map(|n| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), &cm(n)).await }
        }))
        .await
        .unwrap();
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:03}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_object_is_reconciled_existing_and_new() {
    let ns = common::env().namespace("ctl-each").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    create_many(&api, &names("before", 10)).await;

    let probe = Probe::with_delay(Duration::ZERO);
    let controller = Controller::new(api.clone(), WatcherConfig::default());
    let store = controller.store();
    let (errors, _task) =
        drain(controller.run(Probe::reconcile, default_error_policy, probe.clone()));
    probe
        .until("the existing objects", 30, |p| p.reconciled() == 10)
        .await;
    assert!(store.is_ready());
    create_many(&api, &names("after", 5)).await;
    probe
        .until("the new objects", 30, |p| p.reconciled() == 15)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(probe.total(), 15, "each once: nothing changed after");
    assert!(errors.lock().is_empty(), "{:?}", errors.lock());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_rapid_updates_fold_and_never_overlap() {
    let ns = common::env().namespace("ctl-burst").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    api.create(&PostParams::default(), &cm("hot"))
        .await
        .unwrap();

    let probe = Probe::with_delay(Duration::from_millis(50));
    let (errors, _task) = drain(
        Controller::new(api.clone(), WatcherConfig::default())
            .with_config(Config::default().concurrency(8))
            .run(Probe::reconcile, default_error_policy, probe.clone()),
    );
    probe
        .until("the first reconcile", 30, |p| p.count("hot") >= 1)
        .await;
    // 999 updates, 16 in flight at a time, then a last one.
    let updates: Vec<usize> = (0..999).collect();
    for chunk in updates.chunks(16) {
        futures::future::try_join_all(chunk.iter().map(|i| {
            let api = api.clone();
            async move {
                api.patch(
                    "hot",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {"k": i.to_string()}})),
                )
                .await
            }
        }))
        .await
        .unwrap();
    }
    api.patch(
        "hot",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "last"}})),
    )
    .await
    .unwrap();
    probe
        .until("the last version reconciled", 60, |p| {
            p.last_seen.lock().get("hot").map(String::as_str) == Some("last")
        })
        .await;
    let reconciles = probe.count("hot");
    assert_eq!(
        probe.overlaps.load(Ordering::SeqCst),
        0,
        "two reconciles of one key at once"
    );
    assert!(
        reconciles < 250,
        "{reconciles} reconciles for 1000 updates: not folded"
    );
    assert!(reconciles >= 2);
    assert_eq!(probe.max_in_flight.load(Ordering::SeqCst), 1);
    assert!(errors.lock().is_empty(), "{:?}", errors.lock());
    eprintln!("1000 updates → {reconciles} reconciles");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_objects_with_concurrency_four() {
    let ns = common::env().namespace("ctl-conc").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    create_many(&api, &names("c", 500)).await;

    let probe = Probe::with_delay(Duration::from_millis(20));
    let (errors, _task) = drain(
        Controller::new(api.clone(), WatcherConfig::default())
            .with_config(Config::default().concurrency(4))
            .run(Probe::reconcile, default_error_policy, probe.clone()),
    );
    probe.until("all 500", 90, |p| p.reconciled() == 500).await;
    assert_eq!(
        probe.max_in_flight.load(Ordering::SeqCst),
        4,
        "never more than 4 at once, and the bound was reached"
    );
    assert_eq!(probe.overlaps.load(Ordering::SeqCst), 0);
    assert!(errors.lock().is_empty(), "{:?}", errors.lock());
}

/// The owner's reconcile: its child `<owner>-child` exists, is controlled
/// by it, and holds `data.k = "desired"`. Reads the child from the cache.
struct Owners {
    api: Api<ConfigMap>,
    children: kube_runtime::Store<ConfigMap>,
    reconciles: parking_lot::Mutex<Vec<String>>,
}

async fn reconcile_owner(
    owner: Arc<ConfigMap>,
    ctx: Arc<Owners>,
) -> Result<Action, kube_client::Error> {
    ctx.reconciles.lock().push(owner.name_any().to_string());
    let uid = owner.uid().unwrap().to_string();
    let cached = ctx.children.owned_by(&uid);
    let in_order = cached.len() == 1
        && cached[0]
            .data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str)
            == Some("desired");
    if in_order {
        return Ok(Action::await_change());
    }
    let child = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": format!("{}-child", owner.name_any()),
            "labels": {"role": "child"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner.name_any(),
                                 "uid": uid, "controller": true}],
        },
        "data": {"k": "desired"},
    });
    ctx.api
        .patch(
            &format!("{}-child", owner.name_any()),
            &PatchParams::apply("ctl-test").force(),
            &Patch::Apply(child),
        )
        .await?;
    Ok(Action::await_change())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_edited_or_deleted_by_hand_is_put_back_by_its_owner() {
    let ns = common::env().namespace("ctl-owns").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    let mut parent = cm("parent");
    parent.metadata.labels = Some([("role".to_string(), "parent".to_string())].into());
    api.create(&PostParams::default(), &parent).await.unwrap();

    let controller = Controller::new(api.clone(), WatcherConfig::default().labels("role=parent"))
        .owns(api.clone(), WatcherConfig::default().labels("role=child"));
    let children = controller
        .owned_store::<ConfigMap>()
        .expect("an owned store");
    let ctx = Arc::new(Owners {
        api: api.clone(),
        children: children.clone(),
        reconciles: Default::default(),
    });
    let (errors, _task) = drain(controller.run(reconcile_owner, default_error_policy, ctx.clone()));

    let desired = |api: Api<ConfigMap>| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(c) = api.get_opt("parent-child").await.unwrap()
                && c.data.as_ref().unwrap()["k"] == "desired"
            {
                return c;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "child not put in order"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let child = desired(api.clone()).await;
    let owner_ref = &child.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner_ref.controller, Some(true));

    // Edited by hand: the owner is reconciled and puts it back.
    let before = ctx.reconciles.lock().len();
    api.patch(
        "parent-child",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "tampered"}})),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    desired(api.clone()).await;
    assert!(ctx.reconciles.lock().len() > before);
    assert!(
        ctx.reconciles.lock().iter().all(|n| n == "parent"),
        "only the owner is reconciled"
    );

    // Deleted by hand: recreated.
    api.delete("parent-child", &DeleteParams::default())
        .await
        .unwrap();
    let recreated = desired(api.clone()).await;
    assert_ne!(recreated.uid(), child.uid());
    assert_eq!(
        children.owned_by(parent_uid(&api).await.as_str()).len(),
        1,
        "the owner-uid index finds the child in the cache"
    );
    assert!(errors.lock().is_empty(), "{:?}", errors.lock());
}

async fn parent_uid(api: &Api<ConfigMap>) -> String {
    api.get("parent").await.unwrap().uid().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_controllers_and_a_reflector_share_one_watch() {
    let ns = common::env().namespace("ctl-share").await.unwrap();
    let client = common::client();
    let namespaced: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    // All namespaces, selected by a label: the only cluster-scope ConfigMap
    // watch of this test binary, so the API server's gauge counts ours.
    let all: Api<ConfigMap> = Api::all(client.clone());
    let watcher = WatcherConfig::default().labels(format!("share-test={ns}").as_str());
    let before = common::metrics::open_watches(&client, "configmaps", "cluster").await;

    let informers = SharedInformers::new();
    let first = Probe::with_delay(Duration::ZERO);
    let second = Probe::with_delay(Duration::ZERO);
    let (e1, _t1) = drain(
        Controller::new_with_informers(&informers, all.clone(), watcher.clone()).run(
            Probe::reconcile,
            default_error_policy,
            first.clone(),
        ),
    );
    let (e2, _t2) = drain(
        Controller::new_with_informers(&informers, all.clone(), watcher.clone()).run(
            Probe::reconcile,
            default_error_policy,
            second.clone(),
        ),
    );
    let mut rf = Reflector::from_informer(&informers.informer(all.clone(), watcher.clone().into()));
    rf.poll().await.unwrap();
    assert_eq!(informers.running(), 1);
    assert_eq!(
        settles_at(&client, "configmaps", "cluster", before + 1).await,
        before + 1,
        "one watch for two controllers and a reflector"
    );

    for name in names("s", 5) {
        let mut c = cm(&name);
        c.metadata.labels = Some([("share-test".to_string(), ns.clone())].into());
        namespaced.create(&PostParams::default(), &c).await.unwrap();
    }
    namespaced
        .patch(
            "s-000",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "v2"}})),
        )
        .await
        .unwrap();
    for probe in [&first, &second] {
        probe
            .until("every change", 30, |p| {
                p.reconciled() == 5
                    && p.last_seen.lock().get("s-000").map(String::as_str) == Some("v2")
            })
            .await;
    }
    let mut seen = vec![];
    while seen.len() < 6 {
        tokio::time::timeout(Duration::from_secs(30), rf.poll())
            .await
            .unwrap()
            .unwrap();
        seen.extend(rf.events().into_iter().filter_map(|e| match e {
            WatchEvent::Added(o) => Some(format!("+{}", o.name_any())),
            WatchEvent::Modified(o) => Some(format!("~{}", o.name_any())),
            _ => None,
        }));
    }
    assert_eq!(
        seen,
        ["+s-000", "+s-001", "+s-002", "+s-003", "+s-004", "~s-000"]
    );
    assert_eq!(
        common::metrics::open_watches(&client, "configmaps", "cluster").await,
        before + 1
    );
    assert!(e1.lock().is_empty() && e2.lock().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generation_predicate_skips_status_only_updates() {
    let ns = common::env().namespace("ctl-pred").await.unwrap();
    let api: Api<Deployment> = Api::namespaced(common::client(), &ns);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "example/app"}]}}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &deployment)
        .await
        .unwrap();

    let seen = Arc::new(parking_lot::Mutex::new(Vec::<i64>::new()));
    let reconcile = |d: Arc<Deployment>, seen: Arc<parking_lot::Mutex<Vec<i64>>>| async move {
        seen.lock().push(d.metadata.generation.unwrap_or(-1));
        Ok::<_, kube_client::Error>(Action::await_change())
    };
    let (_items, _task) = {
        let stream = Controller::new(
            api.clone(),
            TriggerConfig::new(WatcherConfig::default()).predicate(predicates::generation),
        )
        .run(reconcile, default_error_policy, seen.clone());
        let task = tokio::spawn(stream.for_each(|_| async {}));
        ((), task)
    };
    let wait_for = |n: usize| {
        let seen = seen.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while seen.lock().len() < n {
                assert!(tokio::time::Instant::now() < deadline, "{:?}", seen.lock());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    wait_for(1).await;
    for i in 0..5 {
        api.patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observedGeneration": 1, "replicas": i}})),
        )
        .await
        .unwrap();
    }
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        *seen.lock(),
        [1, 2],
        "status updates skipped, the spec change reconciled"
    );
}

#[tokio::test]
async fn caches_that_never_sync_end_the_stream_with_an_error() {
    let ns = common::env().namespace("ctl-sync").await.unwrap();
    let client = common::client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &cm("x")).await.unwrap();
    let missing = ApiResource::new(
        "nonexistent.example.com",
        "v1",
        "Widget",
        "widgets",
        Scope::Namespaced,
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, &ns, &missing);

    let probe = Probe::with_delay(Duration::ZERO);
    let started = tokio::time::Instant::now();
    let items: Vec<_> = Controller::new(api, WatcherConfig::default())
        .owns(widgets, WatcherConfig::default())
        .with_config(Config::default().cache_sync_timeout(Duration::from_secs(3)))
        .run(Probe::reconcile, default_error_policy, probe.clone())
        .collect()
        .await;
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(items.len(), 1, "one error, then the end");
    match &items[0] {
        Err(e @ Error::CacheSyncTimeout { not_ready, .. }) => {
            assert_eq!(not_ready.len(), 1, "{not_ready:?}");
            assert!(
                not_ready[0].contains("nonexistent.example.com/v1/widgets"),
                "{e}"
            );
            assert!(not_ready[0].contains("404"), "names the cause: {e}");
        }
        other => panic!("expected CacheSyncTimeout, got {other:?}"),
    }
    assert_eq!(
        probe.total(),
        0,
        "nothing reconciled before the caches synced"
    );
}

/// A controller of one ConfigMap `name` in a fresh namespace, whose
/// reconciles take `reconcile_takes`, with `shutdown_timeout`: returned
/// once that reconcile is in flight, with the sender that asks for a
/// graceful shutdown and the controller's stream (polled so far).
async fn reconcile_in_flight(
    ns_prefix: &str,
    name: &str,
    reconcile_takes: Duration,
    shutdown_timeout: Duration,
) -> (
    Api<ConfigMap>,
    Arc<Probe>,
    tokio::sync::oneshot::Sender<()>,
    std::pin::Pin<Box<dyn futures::Stream<Item = common::probe::Item> + Send>>,
) {
    let ns = common::env().namespace(ns_prefix).await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    api.create(&PostParams::default(), &cm(name)).await.unwrap();

    let probe = Probe::with_delay(reconcile_takes);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut stream = Box::pin(
        Controller::new(api.clone(), WatcherConfig::default())
            .with_config(Config::default().shutdown_timeout(shutdown_timeout))
            .graceful_shutdown_on(async move {
                let _ = stopped.await;
            })
            .run(Probe::reconcile, default_error_policy, probe.clone()),
    );
    // Poll until the reconcile is in flight.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while probe.max_in_flight.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        let _ = tokio::time::timeout(Duration::from_millis(50), stream.next()).await;
    }
    (api, probe, stop, stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_a_slow_reconcile_finish_then_ends() {
    let (api, probe, stop, stream) = reconcile_in_flight(
        "ctl-stop",
        "slow",
        Duration::from_secs(2),
        Duration::from_secs(10),
    )
    .await;
    stop.send(()).unwrap();
    let asked = tokio::time::Instant::now();
    api.create(&PostParams::default(), &cm("too-late"))
        .await
        .unwrap();
    let rest: Vec<_> = tokio::time::timeout(Duration::from_secs(15), stream.collect::<Vec<_>>())
        .await
        .expect("the stream ends after shutdown");
    assert!(asked.elapsed() < Duration::from_secs(10));
    let done: Vec<String> = rest
        .iter()
        .filter_map(|i| i.as_ref().ok().map(|(r, _)| r.name.clone()))
        .collect();
    assert_eq!(
        done,
        ["slow"],
        "the reconcile in flight finished and was reported"
    );
    assert_eq!(probe.count("slow"), 1);
    assert_eq!(probe.count("too-late"), 0, "no new keys after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_past_the_shutdown_timeout_is_cancelled() {
    let (_api, probe, stop, stream) = reconcile_in_flight(
        "ctl-stop-timeout",
        "stuck",
        Duration::from_secs(120),
        Duration::from_secs(1),
    )
    .await;
    stop.send(()).unwrap();
    let asked = tokio::time::Instant::now();
    let rest: Vec<_> = tokio::time::timeout(Duration::from_secs(10), stream.collect::<Vec<_>>())
        .await
        .expect("the stream ends at the shutdown timeout");
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(probe.count("stuck"), 0, "cancelled, not finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_map_other_kinds_and_reconcile_all_on_reconciles_everything() {
    use k8s_openapi::api::core::v1::Secret;
    use kube_runtime::controller::ObjectRef;
    let ns = common::env().namespace("ctl-watches").await.unwrap();
    let client = common::client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client, &ns);
    create_many(&api, &names("w", 3)).await;

    let probe = Probe::with_delay(Duration::ZERO);
    let (tick, ticks) = futures::channel::mpsc::unbounded::<()>();
    let (errors, _task) = drain(
        Controller::new(api.clone(), WatcherConfig::default())
            // A Secret `for-<name>` concerns the ConfigMap `<name>`.
            .watches(
                secrets.clone(),
                WatcherConfig::default(),
                |s: Arc<Secret>| {
                    s.name_any()
                        .strip_prefix("for-")
                        .map(|target| ObjectRef::new(target).within(s.namespace()))
                },
            )
            .reconcile_all_on(ticks)
            .run(Probe::reconcile, default_error_policy, probe.clone()),
    );
    probe.until("start", 30, |p| p.total() == 3).await;

    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "for-w-001"}})).unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    probe
        .until("the mapped object", 30, |p| p.count("w-001") == 2)
        .await;
    secrets
        .delete("for-w-001", &DeleteParams::default())
        .await
        .unwrap();
    probe
        .until("mapped on deletion too", 30, |p| p.count("w-001") == 3)
        .await;
    assert_eq!(
        probe.count("w-000") + probe.count("w-002"),
        2,
        "only the mapped one"
    );

    tick.unbounded_send(()).unwrap();
    probe
        .until("everything again", 30, |p| p.total() == 8)
        .await;
    assert_eq!(
        [
            probe.count("w-000"),
            probe.count("w-001"),
            probe.count("w-002")
        ],
        [2, 4, 2]
    );
    assert!(errors.lock().is_empty(), "{:?}", errors.lock());
}
