//! The Reflector against the real control plane: initial sync across pages,
//! ordered events, an API server restart, compaction while disconnected
//! (410 and relist), a connection cut mid-stream, and a slow consumer.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{cm, describe, fast};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodSpec, PodStatus};
use kube_client::params::{DeleteParams, Patch, PatchParams, PostParams};
use kube_client::{Api, ApiResource, Object, ResourceExt};
use kube_runtime::{Reflector, WatchEvent};
use serde_json::json;

async fn create_many(api: &Api<ConfigMap>, names: impl Iterator<Item = String>) {
    let names: Vec<String> = names.collect();
    for chunk in names.chunks(16) {
        futures::future::try_join_all(chunk.iter().map(|n| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), &cm(n)).await }
        }))
        .await
        .unwrap();
    }
}

/// Polls until `want` events have been collected (bounded).
async fn collect_events(rf: &mut Reflector<ConfigMap>, want: usize) -> Vec<String> {
    let mut got = vec![];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while got.len() < want {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let _ = tokio::time::timeout(left, rf.poll())
            .await
            .expect("events did not arrive in 30 s");
        got.extend(describe(rf.events()));
    }
    got
}

#[tokio::test]
async fn initial_sync_of_1000_objects_then_ordered_changes() {
    let ns = common::env().namespace("sync").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    create_many(&api, (0..1100).map(|i| format!("cm-{i:04}"))).await;

    let mut config = fast();
    config.watcher = config.watcher.list_then_watch();
    config.watcher.page_size = 250;
    let mut rf = Reflector::with_config(api.clone(), config);
    rf.poll().await.unwrap();
    assert!(rf.reader().is_ready());
    assert_eq!(rf.read().len(), 1100);
    common::converges(&rf.reader(), &api).await;
    assert_eq!(describe(rf.events()).len(), 1100, "one Added per object");

    api.create(&PostParams::default(), &cm("new"))
        .await
        .unwrap();
    api.patch(
        "new",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "changed"}})),
    )
    .await
    .unwrap();
    api.delete("cm-0000", &DeleteParams::default())
        .await
        .unwrap();
    api.delete("new", &DeleteParams::default()).await.unwrap();
    let events = collect_events(&mut rf, 4).await;
    assert_eq!(events, ["+new", "~new", "-cm-0000", "-new"]);
    common::converges(&rf.reader(), &api).await;
    assert_eq!(rf.read().len(), 1099);
}

#[tokio::test]
async fn object_spec_status_pods_like_the_original_readme() {
    let ns = common::env().namespace("pods").await.unwrap();
    let client = common::client();
    let typed: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "app", "image": "example/app"}, {"name": "sidecar", "image": "example/side"}]}
    }))
    .unwrap();
    typed.create(&PostParams::default(), &pod).await.unwrap();

    let api: Api<Object<PodSpec, PodStatus>> =
        Api::namespaced_with(client, &ns, &ApiResource::of::<Pod>());
    let mut rf = Reflector::new(api);
    rf.poll().await.unwrap();
    let pods = rf.read();
    assert_eq!(pods.len(), 1);
    let names: Vec<&str> = pods[0]
        .spec
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["app", "sidecar"]);
    assert_eq!(
        pods[0].status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Pending")
    );
}

#[tokio::test]
async fn selectors_and_metadata_only() {
    let ns = common::env().namespace("select").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    create_many(&api, (0..5).map(|i| format!("plain-{i}"))).await;
    api.patch(
        "plain-3",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}})),
    )
    .await
    .unwrap();

    let mut config = fast();
    config.watcher = config.watcher.labels("team=a");
    let mut rf = Reflector::with_config(api.clone(), config);
    rf.poll().await.unwrap();
    assert_eq!(
        rf.read()
            .iter()
            .map(|o| o.name_any().to_string())
            .collect::<Vec<_>>(),
        ["plain-3"]
    );

    let mut meta = Reflector::new(api.metadata());
    meta.poll().await.unwrap();
    assert_eq!(meta.read().len(), 5);
    assert!(meta.read().iter().all(|o| {
        o.types
            .as_ref()
            .is_some_and(|t| t.kind == "PartialObjectMetadata")
    }));
}

#[tokio::test]
async fn streaming_list_gives_the_same_state() {
    let ns = common::env().namespace("streaming").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    create_many(&api, (0..30).map(|i| format!("s-{i}"))).await;
    let mut config = fast();
    config.watcher = config.watcher.streaming_list();
    let mut rf = Reflector::with_config(api.clone(), config);
    tokio::time::timeout(Duration::from_secs(30), rf.poll())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rf.read().len(), 30);
    api.delete("s-0", &DeleteParams::default()).await.unwrap();
    rf.events();
    assert_eq!(collect_events(&mut rf, 1).await, ["-s-0"]);
    common::converges(&rf.reader(), &api).await;
}

#[tokio::test]
async fn a_connection_cut_mid_stream_resumes_without_loss() {
    let env = common::env();
    let ns = env.namespace("cut").await.unwrap();
    let (proxy, through_proxy) =
        common::proxy::client_through(&env.access().server, env.kubeconfig()).await;
    let via_proxy: Api<ConfigMap> = Api::namespaced(through_proxy, &ns);
    let direct: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    create_many(&direct, (0..20).map(|i| format!("c-{i}"))).await;

    let rf = Reflector::with_config(via_proxy, fast());
    let reader = rf.reader();
    tokio::spawn(rf.run());
    reader.wait_until_ready().await;

    for round in 0..3 {
        proxy.cut();
        direct
            .create(&PostParams::default(), &cm(&format!("after-cut-{round}")))
            .await
            .unwrap();
        direct
            .delete(&format!("c-{round}"), &DeleteParams::default())
            .await
            .unwrap();
        common::converges(&reader, &direct).await;
    }
    assert!(
        proxy.connections.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "the client reconnected"
    );
}

#[tokio::test]
async fn a_slow_consumer_does_not_grow_memory() {
    let ns = common::env().namespace("slow").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    let mut config = fast();
    config.queue_capacity = 50;
    let rf = Reflector::with_config(api.clone(), config);
    let reader = rf.reader();
    tokio::spawn(rf.run());
    reader.wait_until_ready().await;

    create_many(&api, (0..300).map(|i| format!("q-{i}"))).await;
    common::converges(&reader, &api).await;
    assert!(
        reader.queued_events() <= 50,
        "{} queued",
        reader.queued_events()
    );
    let events = reader.events();
    match events.first() {
        Some(WatchEvent::Desynced { dropped }) => assert!(*dropped >= 250, "dropped {dropped}"),
        other => panic!("expected a Desynced marker first, got {other:?}"),
    }
    assert!(events.len() <= 51);
}

#[tokio::test]
async fn indexes_by_label_and_owner() {
    let ns = common::env().namespace("index").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    let parent = api
        .create(&PostParams::default(), &cm("parent"))
        .await
        .unwrap();
    let uid = parent.uid().unwrap().to_string();
    for i in 0..3 {
        let mut child = cm(&format!("child-{i}"));
        child.metadata.labels = Some(BTreeMap::from([(
            "team".into(),
            if i == 0 { "a" } else { "b" }.into(),
        )]));
        child.metadata.owner_references = Some(vec![
            serde_json::from_value(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "parent", "uid": uid}),
            )
            .unwrap(),
        ]);
        api.create(&PostParams::default(), &child).await.unwrap();
    }
    let indexes = vec![
        ("team".to_string(), kube_runtime::index::by_label("team")),
        ("owner".to_string(), kube_runtime::index::by_owner_uid()),
    ];
    let mut rf = Reflector::with_indexes(api.clone(), fast(), indexes);
    rf.poll().await.unwrap();
    let store = rf.reader();
    let names = |v: Vec<std::sync::Arc<ConfigMap>>| {
        let mut n: Vec<String> = v.iter().map(|o| o.name_any().to_string()).collect();
        n.sort();
        n
    };
    assert_eq!(
        names(store.by_index("owner", &uid).unwrap()),
        ["child-0", "child-1", "child-2"]
    );
    assert_eq!(
        names(store.by_index("team", "b").unwrap()),
        ["child-1", "child-2"]
    );

    api.patch(
        "child-1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}})),
    )
    .await
    .unwrap();
    rf.events();
    collect_events(&mut rf, 1).await;
    assert_eq!(
        names(store.by_index("team", "a").unwrap()),
        ["child-0", "child-1"]
    );
    assert_eq!(names(store.by_index("team", "b").unwrap()), ["child-2"]);
}

#[tokio::test]
async fn dynamic_objects_and_cluster_scoped_kinds() {
    let client = common::client();
    let ns = common::env().namespace("dynamic").await.unwrap();
    let typed: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    typed
        .create(&PostParams::default(), &cm("dyn"))
        .await
        .unwrap();

    let ar = ApiResource::of::<ConfigMap>();
    let api: Api<kube_client::DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
    let mut rf = Reflector::with_config(api, fast());
    rf.poll().await.unwrap();
    let objs = rf.read();
    assert_eq!(objs.len(), 1);
    assert_eq!(objs[0].data["data"]["k"], "dyn");

    // Cluster-scoped, across the whole cluster: namespaces.
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    let mut rf = Reflector::with_config(namespaces, fast());
    rf.poll().await.unwrap();
    assert!(rf.reader().get(None, &ns).is_some(), "keyed by name alone");
    assert!(rf.reader().get(None, "kube-system").is_some());
}
