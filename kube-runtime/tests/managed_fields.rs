//! Every cache drops `metadata.managedFields` by default, against the real
//! control plane: the server's objects carry them (a plain get shows it),
//! the objects a Reflector, a shared informer and a Controller cache — and
//! hand out in events — do not; each cache's opt-out keeps them.

mod common;

use std::time::Duration;

use common::{cm, fast};
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::Api;
use kube_client::params::{Patch, PatchParams};
use kube_runtime::controller::{Controller, TriggerConfig};
use kube_runtime::informer::{InformerConfig, SharedInformers, Transform};
use kube_runtime::{Reflector, Store, WatchEvent, WatcherConfig};
use serde_json::json;

/// Applies (server-side) a ConfigMap `name` with `data.k = value`, so that
/// the server records a managed-fields entry for it; returns what the
/// server sends back to a plain get.
async fn apply(api: &Api<ConfigMap>, name: &str, value: &str) -> ConfigMap {
    api.patch(
        name,
        &PatchParams::apply("managed-fields-test").force(),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name}, "data": {"k": value}})),
    )
    .await
    .unwrap();
    let got = api.get(name).await.unwrap();
    let entries = got.metadata.managed_fields.as_deref().unwrap_or_default();
    assert!(
        entries
            .iter()
            .any(|e| e.manager.as_deref() == Some("managed-fields-test")),
        "the server's object records its field manager: {entries:?}"
    );
    got
}

fn cached(store: &Store<ConfigMap>, ns: &str, name: &str) -> std::sync::Arc<ConfigMap> {
    store
        .get(Some(ns), name)
        .unwrap_or_else(|| panic!("{name} is cached"))
}

/// Polls `rf` until an event for `name` with `data.k == value` arrives
/// (bounded); returns whether its object had managed fields.
async fn event_has_managed_fields(rf: &mut Reflector<ConfigMap>, name: &str, value: &str) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        for event in rf.events() {
            if let WatchEvent::Added(o) | WatchEvent::Modified(o) = event
                && o.metadata.name.as_deref() == Some(name)
                && o.data.as_ref().and_then(|d| d.get("k")).map(String::as_str) == Some(value)
            {
                return o.metadata.managed_fields.is_some();
            }
        }
        tokio::time::timeout_at(deadline, rf.poll())
            .await
            .expect("the change arrives in 30 s")
            .unwrap();
    }
}

#[tokio::test]
async fn a_reflector_stores_objects_without_managed_fields_unless_told() {
    let ns = common::env().namespace("mf-reflector").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    let server = apply(&api, "a", "1").await;
    assert_eq!(server.data.as_ref().unwrap()["k"], "1");

    let mut lean = Reflector::with_config(api.clone(), fast());
    let mut kept = Reflector::with_config(api.clone(), fast().keep_managed_fields());
    lean.poll().await.unwrap();
    kept.poll().await.unwrap();

    let stored = cached(&lean.reader(), &ns, "a");
    assert!(stored.metadata.managed_fields.is_none(), "{stored:?}");
    assert_eq!(stored.data.as_ref().unwrap()["k"], "1", "the rest is kept");
    assert_eq!(stored.metadata.uid, server.metadata.uid);
    assert_eq!(
        stored.metadata.resource_version,
        server.metadata.resource_version
    );
    assert_eq!(
        cached(&kept.reader(), &ns, "a").metadata.managed_fields,
        server.metadata.managed_fields,
        "kept as the server sent them"
    );

    // The initial list's events, then a watch event: the stored objects.
    assert!(!event_has_managed_fields(&mut lean, "a", "1").await);
    assert!(event_has_managed_fields(&mut kept, "a", "1").await);
    apply(&api, "a", "2").await;
    assert!(!event_has_managed_fields(&mut lean, "a", "2").await);
    assert!(event_has_managed_fields(&mut kept, "a", "2").await);
    assert!(
        cached(&lean.reader(), &ns, "a")
            .metadata
            .managed_fields
            .is_none()
    );
    assert!(
        cached(&kept.reader(), &ns, "a")
            .metadata
            .managed_fields
            .is_some()
    );
}

#[tokio::test]
async fn shared_informers_drop_managed_fields_unless_told_and_transforms_still_see_them() {
    let ns = common::env().namespace("mf-informer").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    apply(&api, "a", "1").await;

    let informers = SharedInformers::new();
    let lean = informers.informer(api.clone(), InformerConfig::default());
    let kept = informers.informer(api.clone(), InformerConfig::default().keep_managed_fields());
    assert!(!lean.same_as(&kept), "keeping them is part of the identity");
    assert!(lean.same_as(&informers.informer(api.clone(), InformerConfig::default())));
    assert!(!lean.key().keep_managed_fields && kept.key().keep_managed_fields);
    // A transform runs before they are dropped: it can read them.
    let counted = informers.informer(
        api.clone(),
        InformerConfig::default().transform(Transform::new(
            "count-managers",
            |o: &mut ConfigMap| {
                let n = o.metadata.managed_fields.as_ref().map_or(0, Vec::len);
                o.metadata
                    .annotations
                    .get_or_insert_default()
                    .insert("managers".into(), n.to_string());
            },
        )),
    );
    let mut lean_sub = lean.subscribe();
    for informer in [&lean, &kept, &counted] {
        informer.wait_until_ready().await;
    }

    assert!(
        cached(&lean.store(), &ns, "a")
            .metadata
            .managed_fields
            .is_none()
    );
    assert!(
        cached(&kept.store(), &ns, "a")
            .metadata
            .managed_fields
            .is_some()
    );
    let with_count = cached(&counted.store(), &ns, "a");
    assert!(with_count.metadata.managed_fields.is_none());
    assert_eq!(
        with_count.metadata.annotations.as_ref().unwrap()["managers"],
        "1"
    );

    // A subscriber's objects are the stored ones, watch events included.
    apply(&api, "a", "2").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let batch = tokio::time::timeout_at(deadline, lean_sub.recv())
            .await
            .expect("the change arrives in 30 s");
        let changed = batch.into_iter().find_map(|e| match e {
            WatchEvent::Modified(o) => Some(o),
            _ => None,
        });
        if let Some(o) = changed {
            assert!(o.metadata.managed_fields.is_none(), "{o:?}");
            assert_eq!(o.data.as_ref().unwrap()["k"], "2");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controllers_caches_drop_managed_fields_unless_told() {
    let ns = common::env().namespace("mf-controller").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    apply(&api, "a", "1").await;
    api.create(&Default::default(), &cm("b")).await.unwrap();

    let informers = SharedInformers::new();
    // Its own kind with the defaults; an owned kind kept (different
    // selectors, so a different informer).
    let controller =
        Controller::new_with_informers(&informers, api.clone(), WatcherConfig::default()).owns(
            api.clone(),
            TriggerConfig::new(WatcherConfig::default().fields("metadata.name=a"))
                .keep_managed_fields(),
        );
    let main = controller.store();
    let owned = controller.owned_store::<ConfigMap>().unwrap();
    main.wait_until_ready().await;
    owned.wait_until_ready().await;
    assert_eq!(main.len(), 2);
    assert!(
        main.read()
            .iter()
            .all(|o| o.metadata.managed_fields.is_none())
    );
    assert_eq!(owned.len(), 1);
    assert!(cached(&owned, &ns, "a").metadata.managed_fields.is_some());
}
