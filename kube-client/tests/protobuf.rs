//! Protobuf for built-in kinds against the real API server: every typed
//! operation of a client with protobuf on (the default) really travels as
//! protobuf — the request observer sees each attempt's request and answer
//! media types — and gives exactly the objects a JSON client
//! (`protobuf(false)`) reads; errors arrive as typed `Status`es; custom
//! resources and metadata-only reads stay JSON on the same client.
#![cfg(feature = "protobuf")]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_client::client::{RequestAttempt, RequestObserver};
use kube_client::codec::PROTOBUF;
use kube_client::params::{DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams};
use kube_client::{
    Api, ApiResource, Client, DynamicObject, ObjectOrStatus, ResourceExt, Scope, WatchEvent,
};
use serde_json::json;

const JSON: &str = "application/json";

/// One attempt as observed: method, status, request and answer media types.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: String,
    status: Option<u16>,
    sent: Option<String>,
    answered: Option<String>,
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Seen>>);

impl RequestObserver for Recorder {
    fn observe(&self, a: &RequestAttempt<'_>) {
        self.0.lock().unwrap().push(Seen {
            method: a.method.into(),
            status: a.status,
            sent: a.request_content_type.map(str::to_string),
            answered: a.content_type.map(str::to_string),
        });
    }
}

impl Recorder {
    /// Every attempt since the last call.
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// Asserts that exactly one attempt was made since the last call, with
    /// `method`, and the request and answer media types given.
    #[track_caller]
    fn assert_one(&self, method: &str, sent: Option<&str>, answered: &str) {
        let seen = self.take();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].method, method, "{seen:?}");
        assert_eq!(seen[0].sent.as_deref(), sent, "{seen:?}");
        assert_eq!(seen[0].answered.as_deref(), Some(answered), "{seen:?}");
    }
}

/// A protobuf client (the default) with its recorder, and a JSON client.
fn clients() -> (Client, Arc<Recorder>, Client) {
    let recorder = Arc::new(Recorder::default());
    let protobuf = Client::builder(common::config())
        .request_observer(recorder.clone())
        .build()
        .unwrap();
    assert!(protobuf.protobuf(), "protobuf is the default");
    let json = Client::builder(common::config())
        .protobuf(false)
        .build()
        .unwrap();
    assert!(!json.protobuf());
    (protobuf, recorder, json)
}

fn cm(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([("app".to_string(), "proto".to_string())].into()),
            annotations: Some([("note".to_string(), "ünïcödé ✓".to_string())].into()),
            ..ObjectMeta::default()
        },
        data: Some([("key".to_string(), value.to_string())].into()),
        binary_data: Some(
            [(
                "bin".to_string(),
                k8s_openapi::ByteString(vec![0, 1, 2, 255]),
            )]
            .into(),
        ),
        ..ConfigMap::default()
    }
}

async fn next<S: futures::Stream + Unpin>(s: &mut S) -> S::Item {
    tokio::time::timeout(Duration::from_secs(20), s.next())
        .await
        .expect("no event within 20 s")
        .expect("stream ended")
}

#[tokio::test]
async fn config_map_operations_travel_as_protobuf_and_read_as_json_does() {
    let ns = common::namespace("proto-ops").await;
    let (pb, seen, json) = clients();
    let api: Api<ConfigMap> = Api::namespaced(pb, &ns);
    let plain: Api<ConfigMap> = Api::namespaced(json, &ns);

    // create: a protobuf body, a protobuf answer, the object the server stored.
    let created = api
        .create(&PostParams::default(), &cm("a", "1"))
        .await
        .unwrap();
    seen.assert_one("POST", Some(PROTOBUF), PROTOBUF);
    assert_eq!(created, plain.get("a").await.unwrap());
    assert_eq!(created.data.as_ref().unwrap()["key"], "1");
    assert_eq!(
        created.binary_data.as_ref().unwrap()["bin"].0,
        [0, 1, 2, 255]
    );
    assert_eq!(
        created.metadata.annotations.as_ref().unwrap()["note"],
        "ünïcödé ✓"
    );
    assert!(created.metadata.managed_fields.is_some());

    // get
    assert_eq!(api.get("a").await.unwrap(), created);
    seen.assert_one("GET", None, PROTOBUF);

    // replace
    let mut changed = created.clone();
    changed.data = Some([("key".to_string(), "2".to_string())].into());
    let replaced = api
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    seen.assert_one("PUT", Some(PROTOBUF), PROTOBUF);
    assert_eq!(replaced, plain.get("a").await.unwrap());
    assert_eq!(replaced.data.as_ref().unwrap()["key"], "2");

    // patch (merge and server-side apply): JSON bodies, protobuf answers
    let merged = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"merged": "yes"}})),
        )
        .await
        .unwrap();
    seen.assert_one("PATCH", Some("application/merge-patch+json"), PROTOBUF);
    assert_eq!(merged, plain.get("a").await.unwrap());
    let applied = api
        .patch(
            "b",
            &PatchParams::apply("proto-test"),
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "b"}, "data": {"k": "v"},
            })),
        )
        .await
        .unwrap();
    seen.assert_one("PATCH", Some("application/apply-patch+yaml"), PROTOBUF);
    assert_eq!(applied, plain.get("b").await.unwrap());
    assert_eq!(
        applied.metadata.managed_fields.as_ref().unwrap()[0]
            .manager
            .as_deref(),
        Some("proto-test")
    );

    // list, whole and paged (the continue token comes from protobuf ListMeta)
    api.create(&PostParams::default(), &cm("c", "3"))
        .await
        .unwrap();
    seen.take();
    let list = api.list(&ListParams::default()).await.unwrap();
    seen.assert_one("GET", None, PROTOBUF);
    assert!(list.metadata.resource_version.is_some());
    let plain_list = plain.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items, plain_list.items);
    assert_eq!(
        list.items.iter().map(|c| c.name_any()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    let paged: Vec<ConfigMap> = api
        .list_stream(&ListParams::default().limit(1))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(paged, plain_list.items);
    let pages = seen.take();
    assert_eq!(pages.len(), 3, "one page per object: {pages:?}");
    assert!(
        pages
            .iter()
            .all(|p| p.answered.as_deref() == Some(PROTOBUF))
    );

    // delete: the server answers a ConfigMap delete with a success Status
    match api.delete("a", &DeleteParams::default()).await.unwrap() {
        ObjectOrStatus::Status(status) => assert_eq!(status.status.as_deref(), Some("Success")),
        ObjectOrStatus::Object(o) => panic!("expected a Status, got {o:?}"),
    }
    seen.assert_one("DELETE", Some(JSON), PROTOBUF);
    match plain.delete("b", &DeleteParams::default()).await.unwrap() {
        ObjectOrStatus::Status(status) => assert_eq!(status.status.as_deref(), Some("Success")),
        ObjectOrStatus::Object(o) => panic!("the JSON client too gets a Status, got {o:?}"),
    }
    // delete_collection answers the deleted list
    match api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap()
    {
        ObjectOrStatus::Object(list) => {
            assert_eq!(list.items.len(), 1);
            assert_eq!(list.items[0].name_any(), "c");
            assert_eq!(list.items[0].data.as_ref().unwrap()["key"], "3");
        }
        ObjectOrStatus::Status(s) => panic!("expected the deleted list, got {s:?}"),
    }
    seen.assert_one("DELETE", Some(JSON), PROTOBUF);
    assert!(
        plain
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn status_and_scale_subresources_travel_as_protobuf() {
    let ns = common::namespace("proto-sub").await;
    let (pb, seen, json) = clients();
    let api: Api<Deployment> = Api::namespaced(pb, &ns);
    let plain: Api<Deployment> = Api::namespaced(json, &ns);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "d"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "example.invalid/app:1",
                    "ports": [{"containerPort": 8080}],
                    "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}}]}
            }
        }
    }))
    .unwrap();
    let created = api
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    seen.assert_one("POST", Some(PROTOBUF), PROTOBUF);
    assert_eq!(created, plain.get("d").await.unwrap());
    let container = &created.spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(
        container
            .resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap()["cpu"]
            .0,
        "500m"
    );

    let status = api.get_status("d").await.unwrap();
    seen.assert_one("GET", None, PROTOBUF);
    assert_eq!(status, plain.get_status("d").await.unwrap());

    let patched = api
        .patch_status(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observedGeneration": 1, "replicas": 0}})),
        )
        .await
        .unwrap();
    seen.assert_one("PATCH", Some("application/merge-patch+json"), PROTOBUF);
    assert_eq!(
        patched.status.as_ref().unwrap().observed_generation,
        Some(1)
    );
    assert_eq!(patched, plain.get("d").await.unwrap());

    let mut with_status = patched.clone();
    with_status.status.as_mut().unwrap().unavailable_replicas = Some(2);
    let replaced = api
        .replace_status("d", &PostParams::default(), &with_status)
        .await
        .unwrap();
    seen.assert_one("PUT", Some(PROTOBUF), PROTOBUF);
    assert_eq!(
        replaced.status.as_ref().unwrap().unavailable_replicas,
        Some(2)
    );
    assert_eq!(replaced, plain.get("d").await.unwrap());

    let scale = api.get_scale("d").await.unwrap();
    seen.assert_one("GET", None, PROTOBUF);
    assert_eq!(scale, plain.get_scale("d").await.unwrap());
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(2));
    let scaled = api
        .patch_scale(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    seen.assert_one("PATCH", Some("application/merge-patch+json"), PROTOBUF);
    assert_eq!(scaled.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(scaled, plain.get_scale("d").await.unwrap());
}

#[tokio::test]
async fn a_protobuf_watch_sees_what_a_json_watch_sees() {
    let ns = common::namespace("proto-watch").await;
    let (pb, seen, json) = clients();
    let api: Api<ConfigMap> = Api::namespaced(pb, &ns);
    let plain: Api<ConfigMap> = Api::namespaced(json, &ns);
    let rv = plain
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let wp = WatchParams::default().bookmarks(false);
    let mut events = Box::pin(api.watch(&wp, &rv).await.unwrap());
    seen.assert_one("GET", None, PROTOBUF);
    let mut plain_events = Box::pin(plain.watch(&wp, &rv).await.unwrap());

    plain
        .create(&PostParams::default(), &cm("w", "1"))
        .await
        .unwrap();
    plain
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"key": "2"}})),
        )
        .await
        .unwrap();
    plain.delete("w", &DeleteParams::default()).await.unwrap();

    for expected in ["ADDED", "MODIFIED", "DELETED"] {
        let event = next(&mut events).await.unwrap();
        let plain_event = next(&mut plain_events).await.unwrap();
        let kind = match &event {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(kind, expected);
        assert_eq!(event, plain_event, "the same event, decoded from protobuf");
    }
}

#[tokio::test]
async fn a_protobuf_streaming_list_ends_with_the_initial_events_bookmark() {
    let ns = common::namespace("proto-stream").await;
    let (pb, seen, json) = clients();
    let api: Api<ConfigMap> = Api::namespaced(pb, &ns);
    let plain: Api<ConfigMap> = Api::namespaced(json, &ns);
    for name in ["a", "b", "c"] {
        plain
            .create(&PostParams::default(), &cm(name, name))
            .await
            .unwrap();
    }
    let mut events = Box::pin(
        api.watch(&WatchParams::default().streaming_list(), "")
            .await
            .unwrap(),
    );
    seen.assert_one("GET", None, PROTOBUF);
    let mut added = vec![];
    let bookmark = loop {
        match next(&mut events).await.unwrap() {
            WatchEvent::Added(o) => added.push(o),
            WatchEvent::Bookmark(b) if b.is_initial_events_end() => break b,
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(bookmark.metadata.resource_version.parse::<u64>().unwrap() > 0);
    assert_eq!(
        bookmark.metadata.annotations["k8s.io/initial-events-end"],
        "true"
    );
    added.sort_by_key(|o| o.name_any().to_string());
    assert_eq!(
        added,
        plain.list(&ListParams::default()).await.unwrap().items
    );
}

#[tokio::test]
async fn errors_in_protobuf_are_typed() {
    let ns = common::namespace("proto-err").await;
    let (pb, seen, json) = clients();
    let api: Api<ConfigMap> = Api::namespaced(pb, &ns);
    let plain: Api<ConfigMap> = Api::namespaced(json, &ns);

    let missing = api.get("missing").await.unwrap_err();
    let seen_404 = seen.take();
    assert_eq!(seen_404.len(), 1);
    assert_eq!(seen_404[0].status, Some(404));
    assert_eq!(
        seen_404[0].answered.as_deref(),
        Some(PROTOBUF),
        "the Status came as protobuf"
    );
    assert!(missing.is_not_found(), "{missing}");
    let plain_missing = plain.get("missing").await.unwrap_err();
    assert_eq!(missing.status(), plain_missing.status());
    assert_eq!(
        missing.status().unwrap().reason.as_deref(),
        Some("NotFound")
    );

    api.create(&PostParams::default(), &cm("x", "1"))
        .await
        .unwrap();
    seen.take();
    let exists = api
        .create(&PostParams::default(), &cm("x", "1"))
        .await
        .unwrap_err();
    let seen_409 = seen.take();
    assert_eq!(
        (seen_409[0].status, seen_409[0].answered.as_deref()),
        (Some(409), Some(PROTOBUF))
    );
    assert!(
        exists.is_conflict() && exists.is_already_exists(),
        "{exists}"
    );
    let details = exists.status().unwrap().details.as_ref().unwrap();
    assert_eq!(details.name.as_deref(), Some("x"));
    assert_eq!(details.kind.as_deref(), Some("configmaps"));

    let invalid = api
        .create(&PostParams::default(), &cm("Not_A_Valid_Name", "1"))
        .await
        .unwrap_err();
    let seen_422 = seen.take();
    assert_eq!(
        (seen_422[0].status, seen_422[0].answered.as_deref()),
        (Some(422), Some(PROTOBUF))
    );
    assert!(invalid.is_invalid(), "{invalid}");
    let status = invalid.status().unwrap();
    assert_eq!(status.reason.as_deref(), Some("Invalid"));
    let causes = status.details.as_ref().unwrap().causes.as_ref().unwrap();
    assert_eq!(causes[0].field.as_deref(), Some("metadata.name"));
    let plain_invalid = plain
        .create(&PostParams::default(), &cm("Not_A_Valid_Name", "1"))
        .await
        .unwrap_err();
    assert_eq!(invalid.status(), plain_invalid.status());
}

#[tokio::test]
async fn a_too_old_resource_version_is_a_protobuf_error_event() {
    // A control plane of its own: the test compacts etcd and restarts the
    // API server (as in tests/watch.rs), so that the watch cache cannot
    // serve the old version.
    let (binaries, _) = kube_testenv::binaries::ensure(|_| {}).unwrap();
    let plane =
        tokio::task::spawn_blocking(move || kube_testenv::ControlPlane::start(&binaries).unwrap())
            .await
            .unwrap();
    let kc = kube_client::config::Kubeconfig::read_from(plane.kubeconfig()).unwrap();
    let config = kube_client::config::Config::from_kubeconfig(&kc, &Default::default()).unwrap();
    let recorder = Arc::new(Recorder::default());
    let client = Client::builder(config)
        .request_observer(recorder.clone())
        .build()
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let old = api
        .create(&PostParams::default(), &cm("x", "0"))
        .await
        .unwrap();
    let old_rv = old.resource_version().unwrap();
    for i in 1..4 {
        api.patch(
            "x",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"key": i.to_string()}})),
        )
        .await
        .unwrap();
    }
    plane.compact_etcd().unwrap();
    let plane = tokio::task::spawn_blocking(move || {
        plane.stop_apiserver();
        plane.start_apiserver().unwrap();
        plane
    })
    .await
    .unwrap();
    recorder.take();
    let mut events = Box::pin(api.watch(&WatchParams::default(), &old_rv).await.unwrap());
    recorder.assert_one("GET", None, PROTOBUF);
    match next(&mut events).await.unwrap() {
        WatchEvent::Error(status) => {
            assert_eq!(status.code, Some(410), "{status:?}");
            assert_eq!(status.reason.as_deref(), Some("Expired"));
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    drop(events);
    tokio::task::spawn_blocking(move || plane.stop())
        .await
        .unwrap();
}

#[tokio::test]
async fn custom_resources_and_metadata_reads_stay_json_on_a_protobuf_client() {
    const GROUP: &str = "proto.kube-client.test";
    let ns = common::namespace("proto-cr").await;
    let (pb, seen, _) = clients();
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": format!("gadgets.{GROUP}")},
        "spec": {
            "group": GROUP,
            "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget", "listKind": "GadgetList"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}
            }]
        }
    }))
    .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(pb.clone());
    match crds.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => {}
        Err(e) => panic!("{e}"),
    }
    // The CRD itself is a built-in kind: protobuf (or JSON if its server
    // refused protobuf bodies).
    let crd_attempts = seen.take();
    assert_eq!(
        crd_attempts.last().unwrap().answered.as_deref(),
        Some(PROTOBUF),
        "{crd_attempts:?}"
    );

    let ar = ApiResource::new(GROUP, "v1", "Gadget", "gadgets", Scope::Namespaced);
    let gadgets: Api<DynamicObject> = Api::namespaced_with(pb.clone(), &ns, &ar);
    let gadget = DynamicObject::new("g", &ar).data(json!({"spec": {"size": 3}}));
    // Until the CRD is established the create may be a 404.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let created = loop {
        match gadgets.create(&PostParams::default(), &gadget).await {
            Ok(created) => break created,
            Err(e) if e.is_not_found() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(created.data["spec"]["size"], 3);
    let attempts = seen.take();
    let last = attempts.last().unwrap();
    assert_eq!(
        (last.sent.as_deref(), last.answered.as_deref()),
        (Some(JSON), Some(JSON))
    );
    assert_eq!(gadgets.get("g").await.unwrap().data["spec"]["size"], 3);
    seen.assert_one("GET", None, JSON);
    assert_eq!(
        gadgets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    seen.assert_one("GET", None, JSON);
    let mut watch = Box::pin(
        gadgets
            .watch(&WatchParams::default().streaming_list(), "")
            .await
            .unwrap(),
    );
    seen.assert_one("GET", None, JSON);
    match next(&mut watch).await.unwrap() {
        WatchEvent::Added(o) => assert_eq!(o.name_any(), "g"),
        other => panic!("{other:?}"),
    }

    // Metadata-only reads of a built-in kind stay JSON too.
    let cms: Api<ConfigMap> = Api::namespaced(pb, &ns);
    cms.create(&PostParams::default(), &cm("m", "1"))
        .await
        .unwrap();
    seen.take();
    let meta = cms.metadata().get("m").await.unwrap();
    seen.assert_one("GET", None, JSON);
    assert_eq!(meta.metadata.name.as_deref(), Some("m"));
    assert_eq!(
        cms.metadata()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    seen.assert_one("GET", None, JSON);
}
