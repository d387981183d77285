//! Compact stores against the real control plane: a compact Reflector over
//! real Pods and ConfigMaps reads exactly as a default one does (every
//! object compared as JSON), through creations, modifications and deletes;
//! a compact informer is a different informer from a default one; a
//! Secret's data never shows in the Debug of a compact cache.

mod common;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use common::fast;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, Pod, PodSpec,
    Secret, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_client::params::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube_client::{Api, Resource, ResourceExt};
use kube_runtime::informer::{InformerConfig, SharedInformers};
use kube_runtime::{Reflector, Store, WatchEvent};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

fn pod(name: &str) -> Pod {
    let container = |name: &str| Container {
        name: name.into(),
        image: Some("registry.example/app:1.2.3".into()),
        env: Some(
            (0..4)
                .map(|i| EnvVar {
                    name: format!("VAR_{i}"),
                    value: Some(format!("value-{i}")),
                    ..EnvVar::default()
                })
                .collect(),
        ),
        ..Container::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([("app".to_string(), "compact".to_string())].into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![container("app"), container("sidecar")],
            volumes: Some(vec![
                Volume {
                    name: "scratch".into(),
                    empty_dir: Some(EmptyDirVolumeSource::default()),
                    ..Volume::default()
                },
                Volume {
                    name: "config".into(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: "cm-a".into(),
                        ..ConfigMapVolumeSource::default()
                    }),
                    ..Volume::default()
                },
            ]),
            automount_service_account_token: Some(false),
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// Every cached object as JSON, sorted by key.
fn as_json<K: Resource + Serialize>(store: &Store<K>) -> Vec<(String, serde_json::Value)> {
    let mut v: Vec<_> = store
        .read()
        .iter()
        .map(|o| {
            (
                format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any()),
                serde_json::to_value(&**o).unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// `name → resourceVersion` of a fresh list.
async fn listed<K>(api: &Api<K>) -> BTreeMap<String, String>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
{
    let items: Vec<K> = api
        .list_stream(&ListParams::default())
        .try_collect()
        .await
        .unwrap();
    items
        .iter()
        .map(|o| {
            (
                o.name_any().to_string(),
                o.resource_version().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Polls both reflectors until each holds what a fresh list does
/// (bounded), then checks they read the same, object by object, and that
/// `get` agrees too. Returns the changes both saw meanwhile (checked to
/// be the same).
async fn converge<K>(
    default: &mut Reflector<K>,
    compact: &mut Reflector<K>,
    api: &Api<K>,
) -> Vec<WatchEvent<K>>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + PartialEq + Send + Sync + 'static,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut events = Vec::new();
    let mut default_events = Vec::new();
    for rf in [&mut *default, &mut *compact] {
        loop {
            let want = listed(api).await;
            let have: BTreeMap<String, String> = rf
                .read()
                .iter()
                .map(|o| {
                    (
                        o.name_any().to_string(),
                        o.resource_version().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            if want == have {
                break;
            }
            // A change may be in flight: wait for it, briefly.
            let _ = tokio::time::timeout(Duration::from_millis(500), rf.poll()).await;
            assert!(
                tokio::time::Instant::now() < deadline,
                "no convergence: {have:?} vs {want:?}"
            );
        }
        if rf.reader().is_compact() {
            events.extend(rf.events());
        } else {
            default_events.extend(rf.events());
        }
    }
    let (d, c) = (default.reader(), compact.reader());
    assert!(c.is_compact() && !d.is_compact());
    assert_eq!(
        as_json(&c),
        as_json(&d),
        "the compact store reads as the default one"
    );
    for o in d.read() {
        let ns = o.meta().namespace.as_deref();
        let name = o.meta().name.as_deref().unwrap_or_default();
        assert_eq!(c.get(ns, name), Some(o.clone()));
    }
    assert_eq!(summary(&events), summary(&default_events));
    events
}

fn summary<K: Resource>(events: &[WatchEvent<K>]) -> Vec<String> {
    let mut v: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Added(o) => Some(format!("+{}", o.name_any())),
            WatchEvent::Modified(o) => Some(format!("~{}", o.name_any())),
            WatchEvent::Deleted(o) => Some(format!("-{}", o.name_any())),
            _ => None,
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

#[tokio::test]
async fn a_compact_reflector_reads_as_a_default_one_through_every_change() {
    let ns = common::env().namespace("compact-reflector").await.unwrap();
    let client = common::client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let cms: Api<ConfigMap> = Api::namespaced(client, &ns);
    for name in ["p1", "p2", "p3"] {
        pods.create(&PostParams::default(), &pod(name))
            .await
            .unwrap();
    }
    for name in ["cm-a", "cm-b", "cm-c"] {
        // Server-side apply, so the server's objects carry managedFields.
        cms.patch(
            name,
            &PatchParams::apply("compact-test").force(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "labels": {"app": "compact"}},
                "data": {"k": name, "big": "x".repeat(1024)}})),
        )
        .await
        .unwrap();
    }

    let mut pods_default = Reflector::with_config(pods.clone(), fast());
    let mut pods_compact = Reflector::with_config(pods.clone(), fast().compact());
    let mut cms_default = Reflector::with_config(cms.clone(), fast());
    let mut cms_compact = Reflector::with_config(cms.clone(), fast().compact());
    for rf in [&mut pods_default, &mut pods_compact] {
        rf.poll().await.unwrap();
    }
    for rf in [&mut cms_default, &mut cms_compact] {
        rf.poll().await.unwrap();
    }
    let added = converge(&mut pods_default, &mut pods_compact, &pods).await;
    assert_eq!(summary(&added), ["+p1", "+p2", "+p3"]);
    let added = converge(&mut cms_default, &mut cms_compact, &cms).await;
    assert_eq!(summary(&added), ["+cm-a", "+cm-b", "+cm-c"]);
    assert_eq!(cms_compact.read().len(), 3);
    assert!(
        cms_compact
            .read()
            .iter()
            .all(|c| c.metadata.managed_fields.is_none()),
        "stored without managedFields, as a default store"
    );

    // Modify and delete.
    let relabel = Patch::Merge(json!({"metadata": {"labels": {"phase": "two"}}}));
    pods.patch("p1", &PatchParams::default(), &relabel)
        .await
        .unwrap();
    pods.delete(
        "p2",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap();
    cms.patch(
        "cm-a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "changed"}})),
    )
    .await
    .unwrap();
    cms.delete("cm-b", &DeleteParams::default()).await.unwrap();

    let changed = summary(&converge(&mut pods_default, &mut pods_compact, &pods).await);
    // A Pod's delete may first show as a Modified (its deletionTimestamp).
    assert!(
        changed.contains(&"-p2".to_string()) && changed.contains(&"~p1".to_string()),
        "{changed:?}"
    );
    assert_eq!(
        pods_compact
            .reader()
            .get(Some(&ns), "p1")
            .unwrap()
            .metadata
            .labels
            .as_ref()
            .unwrap()["phase"],
        "two"
    );
    assert!(pods_compact.reader().get(Some(&ns), "p2").is_none());
    let changed = converge(&mut cms_default, &mut cms_compact, &cms).await;
    assert_eq!(summary(&changed), ["-cm-b", "~cm-a"]);
    assert_eq!(
        cms_compact
            .reader()
            .get(Some(&ns), "cm-a")
            .unwrap()
            .data
            .as_ref()
            .unwrap()["k"],
        "changed"
    );
    assert_eq!(cms_compact.reader().len(), 2);
}

#[tokio::test]
async fn a_compact_informer_is_its_own_and_its_subscribers_see_every_change() {
    let ns = common::env().namespace("compact-informer").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    api.create(&PostParams::default(), &common::cm("a"))
        .await
        .unwrap();
    let informers = SharedInformers::new();
    let default = informers.informer(api.clone(), InformerConfig::default());
    let compact = informers.informer(api.clone(), InformerConfig::default().compact());
    assert!(!default.same_as(&compact));
    assert!(compact.key().compact && !default.key().compact);
    assert!(compact.same_as(&informers.informer(api.clone(), InformerConfig::default().compact())));
    let mut sub = compact.subscribe();
    compact.wait_until_ready().await;
    default.wait_until_ready().await;
    assert!(compact.store().is_compact());
    api.create(&PostParams::default(), &common::cm("b"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !seen.contains(&"+b".to_string()) {
        let batch = tokio::time::timeout_at(deadline, sub.recv())
            .await
            .expect("b arrives in 30 s");
        seen.extend(common::describe(batch));
    }
    assert_eq!(seen, ["+a", "+b"]);
    common::converges(&compact.store(), &api).await;
    common::converges(&default.store(), &api).await;
    assert_eq!(as_json(&compact.store()), as_json(&default.store()));
}

#[tokio::test]
async fn a_compact_cache_of_secrets_never_shows_their_data() {
    let ns = common::env().namespace("compact-secrets").await.unwrap();
    let api: Api<Secret> = Api::namespaced(common::client(), &ns);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("s".into()),
            ..ObjectMeta::default()
        },
        string_data: Some([("password".to_string(), "hunter2-compact".to_string())].into()),
        ..Secret::default()
    };
    api.create(&PostParams::default(), &secret).await.unwrap();
    let mut rf = Reflector::with_config(api, fast().compact());
    rf.poll().await.unwrap();
    let cached = rf.reader().get(Some(&ns), "s").unwrap();
    assert_eq!(
        cached.data.as_ref().unwrap()["password"].0,
        b"hunter2-compact"
    );
    for shown in [format!("{rf:?}"), format!("{:?}", rf.reader())] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("aHVudGVyMi"), "nor in base64: {shown}");
        assert!(shown.contains("protobuf"), "{shown}");
    }
}
