//! Shared informers against the real control plane: one watch for many
//! users (counted by the API server itself), every subscriber sees every
//! change, an idle subscriber is desynced without holding anyone up, and a
//! transform shapes what is stored.

mod common;

use std::time::Duration;

use common::metrics::{open_watches, settles_at};
use common::{cm, describe};
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::Api;
use kube_client::params::{DeleteParams, Patch, PatchParams, PostParams};
use kube_runtime::informer::{InformerConfig, SharedInformers, Subscription, strip_managed_fields};
use kube_runtime::{Informer, Reflector, WatchEvent, WatcherConfig};
use serde_json::json;

/// Receives until `want` changes have been seen (bounded).
async fn collect(sub: &mut Subscription<ConfigMap>, want: usize) -> Vec<String> {
    let mut got = vec![];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while got.len() < want {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let batch = tokio::time::timeout(left, sub.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {want} changes in 30 s: {got:?}", got.len()));
        got.extend(describe(batch));
    }
    got
}

fn labelled(name: &str, label: &str) -> ConfigMap {
    let mut c = cm(name);
    c.metadata.labels = Some([("informer-test".to_string(), label.to_string())].into());
    c
}

/// Creates, changes and deletes objects labelled `label` in `ns`; returns
/// the changes a watcher of that label must report, in order.
async fn make_changes(api: &Api<ConfigMap>, label: &str) -> Vec<String> {
    for i in 0..5 {
        api.create(&PostParams::default(), &labelled(&format!("o-{i}"), label))
            .await
            .unwrap();
    }
    api.patch(
        "o-0",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "changed"}})),
    )
    .await
    .unwrap();
    api.delete("o-1", &DeleteParams::default()).await.unwrap();
    ["+o-0", "+o-1", "+o-2", "+o-3", "+o-4", "~o-0", "-o-1"]
        .map(String::from)
        .to_vec()
}

#[tokio::test]
async fn subscribers_and_a_reflector_share_one_watch_and_see_every_change() {
    let ns = common::env().namespace("shared").await.unwrap();
    let client = common::client();
    let namespaced: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    // Across all namespaces (scope "cluster" in the API server's metrics,
    // which no other test in this binary uses), selected by a label.
    let all: Api<ConfigMap> = Api::all(client.clone());
    let config = || {
        InformerConfig::new(WatcherConfig::default().labels(format!("informer-test={ns}").as_str()))
    };
    let before = open_watches(&client, "configmaps", "cluster").await;

    let informers = SharedInformers::new();
    let first = informers.informer(all.clone(), config());
    let second = informers.informer(all.clone(), config());
    assert!(
        first.same_as(&second),
        "same kind and selectors: same informer"
    );
    let mut sub_a = first.subscribe();
    let mut sub_b = second.subscribe();
    let mut rf = Reflector::from_informer(&informers.informer(all.clone(), config()));
    tokio::time::timeout(Duration::from_secs(30), rf.poll())
        .await
        .expect("ready within 30 s")
        .unwrap();
    assert_eq!(informers.running(), 1);
    assert_eq!(
        first.subscribers(),
        3,
        "two subscriptions and the reflector's"
    );
    assert_eq!(
        settles_at(&client, "configmaps", "cluster", before + 1).await,
        before + 1,
        "one watch on the server for three users"
    );

    let expected = make_changes(&namespaced, &ns).await;
    assert_eq!(collect(&mut sub_a, expected.len()).await, expected);
    assert_eq!(collect(&mut sub_b, expected.len()).await, expected);
    let mut seen = vec![];
    while seen.len() < expected.len() {
        tokio::time::timeout(Duration::from_secs(30), rf.poll())
            .await
            .expect("reflector changes within 30 s")
            .unwrap();
        seen.extend(describe(rf.events()));
    }
    assert_eq!(seen, expected);
    common::converges(&rf.reader(), &namespaced).await;
    assert!(
        rf.reader().events().is_empty(),
        "a shared store queues nothing itself"
    );

    // The count is real: an informer outside the registry is a second watch…
    let separate = Informer::new(all.clone(), config());
    separate.wait_until_ready().await;
    assert!(!separate.same_as(&first));
    assert_eq!(
        settles_at(&client, "configmaps", "cluster", before + 2).await,
        before + 2
    );
    // …and dropping every handle ends the watches.
    drop((separate, first, second, sub_a, sub_b, rf));
    assert_eq!(informers.running(), 0);
    assert_eq!(
        settles_at(&client, "configmaps", "cluster", before).await,
        before,
        "the informers stopped watching when their last handle was dropped"
    );
}

#[tokio::test]
async fn late_subscribers_and_reflectors_start_with_every_cached_object() {
    let ns = common::env().namespace("late").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    for i in 0..3 {
        api.create(&PostParams::default(), &cm(&format!("l-{i}")))
            .await
            .unwrap();
    }
    let informers = SharedInformers::new();
    let informer = informers.informer(api.clone(), InformerConfig::default());
    informer.wait_until_ready().await;

    let mut late = informer.subscribe();
    let mut rf = Reflector::from_informer(&informer);
    tokio::time::timeout(Duration::from_secs(5), rf.poll())
        .await
        .expect("the first poll of a reflector on a ready informer returns at once")
        .unwrap();
    let mut replay = describe(rf.events());
    replay.sort();
    assert_eq!(
        replay,
        ["+l-0", "+l-1", "+l-2"],
        "as a reflector of its own would"
    );
    let mut got = collect(&mut late, 3).await;
    got.sort();
    assert_eq!(got, ["+l-0", "+l-1", "+l-2"]);

    api.delete("l-1", &DeleteParams::default()).await.unwrap();
    assert_eq!(collect(&mut late, 1).await, ["-l-1"]);
    rf.poll().await.unwrap();
    assert_eq!(describe(rf.events()), ["-l-1"]);
}

#[tokio::test]
async fn an_idle_subscriber_is_desynced_and_holds_no_one_up() {
    let ns = common::env().namespace("idle").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    let informers = SharedInformers::new();
    let informer = informers.informer(api.clone(), InformerConfig::default());
    let mut idle = informer.subscribe_with_capacity(20);
    let mut active = informer.subscribe();
    informer.wait_until_ready().await;

    let names: Vec<String> = (0..200).map(|i| format!("q-{i:03}")).collect();
    for chunk in names.chunks(16) {
        futures::future::try_join_all(chunk.iter().map(|n| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), &cm(n)).await }
        }))
        .await
        .unwrap();
    }
    let mut got = collect(&mut active, 200).await;
    got.sort();
    let want: Vec<String> = names.iter().map(|n| format!("+{n}")).collect();
    assert_eq!(got, want, "the active subscriber saw every change");
    common::converges(&informer.store(), &api).await;
    assert!(idle.queued() <= 20, "{} queued", idle.queued());

    let missed = idle.try_recv();
    match missed.first() {
        Some(WatchEvent::Desynced { dropped }) => assert_eq!(*dropped, 180),
        other => panic!("expected Desynced first, got {other:?}"),
    }
    assert_eq!(missed.len(), 21, "the marker and the 20 newest changes");
    // Once read, it is in step again.
    api.delete("q-000", &DeleteParams::default()).await.unwrap();
    assert_eq!(collect(&mut idle, 1).await, ["-q-000"]);
    assert_eq!(collect(&mut active, 1).await, ["-q-000"]);
}

#[tokio::test]
async fn a_transform_strips_managed_fields_before_storing() {
    let ns = common::env().namespace("transform").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    let applied = api
        .patch(
            "applied",
            &PatchParams::apply("informer-test").force(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "applied"}, "data": {"k": "v"}})),
        )
        .await
        .unwrap();
    assert!(
        applied.metadata.managed_fields.is_some(),
        "the server records managed fields"
    );

    let informers = SharedInformers::new();
    let stripped = informers.informer(
        api.clone(),
        InformerConfig::default().transform(strip_managed_fields()),
    );
    let plain = informers.informer(api.clone(), InformerConfig::default().keep_managed_fields());
    assert!(
        !stripped.same_as(&plain),
        "a transform is part of an informer's identity"
    );
    assert_eq!(informers.running(), 2);
    let mut sub = stripped.subscribe();
    stripped.wait_until_ready().await;
    plain.wait_until_ready().await;

    let get = |store: &kube_runtime::Store<ConfigMap>| store.get(Some(&ns), "applied").unwrap();
    assert!(get(&stripped.store()).metadata.managed_fields.is_none());
    assert_eq!(get(&stripped.store()).data.as_ref().unwrap()["k"], "v");
    assert!(
        get(&plain.store()).metadata.managed_fields.is_some(),
        "without the transform, and told to keep them, they are kept"
    );

    api.patch(
        "applied",
        &PatchParams::apply("informer-test").force(),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "applied"}, "data": {"k": "w"}})),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let batch = tokio::time::timeout_at(deadline, sub.recv()).await.unwrap();
        if let Some(WatchEvent::Modified(obj)) =
            batch.iter().find(|e| matches!(e, WatchEvent::Modified(_)))
        {
            assert!(
                obj.metadata.managed_fields.is_none(),
                "subscribers get the stored object"
            );
            assert_eq!(obj.data.as_ref().unwrap()["k"], "w");
            break;
        }
    }
    assert!(get(&stripped.store()).metadata.managed_fields.is_none());
}

#[test]
fn a_reflector_made_outside_a_runtime_says_what_to_do() {
    let client_config = common::config_of(common::env().kubeconfig());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let api: Api<ConfigMap> = {
        let _guard = runtime.enter();
        Api::namespaced(
            kube_client::Client::try_from(client_config).unwrap(),
            "default",
        )
    };
    let outside = api.clone();
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        Reflector::new(outside)
    }))
    .expect_err("no runtime: it cannot spawn its watch");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("Reflector::new") && message.contains("outside a tokio runtime"),
        "{message}"
    );
    assert!(
        message.contains("runtime.enter()"),
        "says what to do: {message}"
    );

    let informers = SharedInformers::new();
    let outside = api.clone();
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        informers.informer(outside, InformerConfig::default())
    }))
    .expect_err("the same for an informer");
    assert!(
        panic
            .downcast_ref::<String>()
            .is_some_and(|m| m.contains("starting an informer")),
    );

    // Inside the runtime (entered, not even in async code) it works.
    let _guard = runtime.enter();
    let rf = Reflector::new(api);
    runtime.block_on(async move {
        let mut rf = rf;
        tokio::time::timeout(Duration::from_secs(30), rf.poll())
            .await
            .unwrap()
            .unwrap();
    });
}
