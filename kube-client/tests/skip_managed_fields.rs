//! `Api::skip_managed_fields` against the real API server: the server's
//! objects carry `metadata.managedFields` (a plain get shows them); an Api
//! with the option reads them — get, list, every page of `list_stream`,
//! watch events (a streaming list too), the answer of a write — as
//! protobuf (the request observer sees each answer's media type) without
//! them and otherwise identical; without the option they are there. On a
//! JSON client the option leaves them out of JSON answers the same way.
#![cfg(feature = "protobuf")]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_client::client::{RequestAttempt, RequestObserver};
use kube_client::codec::PROTOBUF;
use kube_client::params::{ListParams, Patch, PatchParams, PostParams, WatchParams};
use kube_client::{Api, Client, ResourceExt, WatchEvent};
use serde_json::json;

/// The media type of every answer since the last `take`.
#[derive(Default)]
struct Answers(Mutex<Vec<Option<String>>>);

impl RequestObserver for Answers {
    fn observe(&self, a: &RequestAttempt<'_>) {
        self.0
            .lock()
            .unwrap()
            .push(a.content_type.map(str::to_string));
    }
}

impl Answers {
    /// Asserts that `n` answers came since the last call, all protobuf.
    #[track_caller]
    fn assert_protobuf(&self, n: usize) {
        let seen = std::mem::take(&mut *self.0.lock().unwrap());
        assert_eq!(seen.len(), n, "{seen:?}");
        assert!(
            seen.iter().all(|ct| ct.as_deref() == Some(PROTOBUF)),
            "{seen:?}"
        );
    }
}

/// A protobuf client (the default) and what it was answered.
fn protobuf_client() -> (Client, Arc<Answers>) {
    let answers = Arc::new(Answers::default());
    let client = Client::builder(common::config())
        .request_observer(answers.clone())
        .build()
        .unwrap();
    assert!(client.protobuf());
    (client, answers)
}

fn cm(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([("app".to_string(), "skip".to_string())].into()),
            ..ObjectMeta::default()
        },
        data: Some([("k".to_string(), name.to_string())].into()),
        ..ConfigMap::default()
    }
}

/// `obj` without its managed fields: what a skipping Api must read.
fn stripped(mut obj: ConfigMap) -> ConfigMap {
    obj.metadata.managed_fields = None;
    obj
}

/// The server's objects, sorted by name, read as JSON: each with its
/// managed fields.
async fn server_objects(ns: &str) -> Vec<ConfigMap> {
    let json = Client::builder(common::config())
        .protobuf(false)
        .build()
        .unwrap();
    let mut items = Api::<ConfigMap>::namespaced(json, ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    items.sort_by_key(|o| o.name_any().to_string());
    assert!(!items.is_empty());
    for o in &items {
        assert!(
            !o.metadata
                .managed_fields
                .as_deref()
                .unwrap_or_default()
                .is_empty(),
            "the server records managed fields: {o:?}"
        );
    }
    items
}

async fn next<S: futures::Stream + Unpin>(s: &mut S) -> S::Item {
    tokio::time::timeout(Duration::from_secs(20), s.next())
        .await
        .expect("no event within 20 s")
        .expect("stream ended")
}

#[tokio::test]
async fn get_list_and_list_stream_skip_managed_fields_only_when_asked() {
    let ns = common::namespace("skip-mf-read").await;
    let (client, answers) = protobuf_client();
    let api: Api<ConfigMap> = Api::namespaced(client, &ns);
    assert!(!api.skips_managed_fields(), "off by default");
    let skip = api.clone().skip_managed_fields(true);
    assert!(skip.skips_managed_fields());
    assert!(
        !skip
            .clone()
            .skip_managed_fields(false)
            .skips_managed_fields()
    );
    for name in ["a", "b", "c"] {
        api.create(&PostParams::default(), &cm(name)).await.unwrap();
    }
    answers.assert_protobuf(3);
    let server = server_objects(&ns).await;
    answers.assert_protobuf(0);

    // get
    assert_eq!(api.get("a").await.unwrap(), server[0]);
    assert_eq!(skip.get("a").await.unwrap(), stripped(server[0].clone()));
    answers.assert_protobuf(2);

    // list: one page
    let kept = api.list(&ListParams::default()).await.unwrap();
    let skipped = skip.list(&ListParams::default()).await.unwrap();
    answers.assert_protobuf(2);
    assert_eq!(kept.items, server);
    assert_eq!(
        skipped.items,
        server.iter().cloned().map(stripped).collect::<Vec<_>>()
    );

    // list_stream: every page (one object each)
    let paged: Vec<ConfigMap> = skip
        .list_stream(&ListParams::default().limit(1))
        .try_collect()
        .await
        .unwrap();
    answers.assert_protobuf(3);
    assert_eq!(
        paged,
        server.iter().cloned().map(stripped).collect::<Vec<_>>()
    );

    // A write's answer is decoded the same way.
    let patched = skip
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "patched"}})),
        )
        .await
        .unwrap();
    answers.assert_protobuf(1);
    assert!(patched.metadata.managed_fields.is_none(), "{patched:?}");
    assert_eq!(patched.data.unwrap()["k"], "patched");
    // ... and the server's record is untouched by it.
    let after = api.get("a").await.unwrap();
    assert!(after.metadata.managed_fields.is_some());
    assert_eq!(
        after.metadata.resource_version,
        patched.metadata.resource_version
    );

    // An object read without them, sent back whole: the server keeps its
    // record (an update without managedFields does not clear them).
    let mut changed = skip.get("a").await.unwrap();
    changed.data = Some([("k".to_string(), "replaced".to_string())].into());
    let replaced = skip
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert!(replaced.metadata.managed_fields.is_none());
    let after = api.get("a").await.unwrap();
    assert_eq!(after.data.as_ref().unwrap()["k"], "replaced");
    assert_eq!(
        after.metadata.managed_fields.as_ref().map(Vec::len),
        server[0].metadata.managed_fields.as_ref().map(Vec::len),
        "{after:?}"
    );
}

#[tokio::test]
async fn watch_events_skip_managed_fields_only_when_asked() {
    let ns = common::namespace("skip-mf-watch").await;
    let (client, answers) = protobuf_client();
    let api: Api<ConfigMap> = Api::namespaced(client, &ns);
    let skip = api.clone().skip_managed_fields(true);
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    answers.assert_protobuf(2);

    let wp = WatchParams::default().bookmarks(false);
    let mut kept = Box::pin(api.watch(&wp, &rv).await.unwrap());
    let mut skipped = Box::pin(skip.watch(&wp, &rv).await.unwrap());
    answers.assert_protobuf(2);

    api.create(&PostParams::default(), &cm("w")).await.unwrap();
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    api.delete("w", &Default::default()).await.unwrap();

    for expected in ["ADDED", "MODIFIED", "DELETED"] {
        let (with, without) = match (
            next(&mut kept).await.unwrap(),
            next(&mut skipped).await.unwrap(),
        ) {
            (WatchEvent::Added(a), WatchEvent::Added(b)) if expected == "ADDED" => (a, b),
            (WatchEvent::Modified(a), WatchEvent::Modified(b)) if expected == "MODIFIED" => (a, b),
            (WatchEvent::Deleted(a), WatchEvent::Deleted(b)) if expected == "DELETED" => (a, b),
            other => panic!("expected {expected}: {other:?}"),
        };
        assert!(
            !with
                .metadata
                .managed_fields
                .as_deref()
                .unwrap_or_default()
                .is_empty(),
            "{expected}: the server's event carries managed fields"
        );
        assert_eq!(without, stripped(with), "{expected}");
    }

    // A streaming list: the initial events, then the end bookmark.
    let server = server_objects(&ns).await;
    let mut stream = Box::pin(
        skip.watch(&WatchParams::default().streaming_list(), "")
            .await
            .unwrap(),
    );
    let mut added = vec![];
    loop {
        match next(&mut stream).await.unwrap() {
            WatchEvent::Added(o) => added.push(o),
            WatchEvent::Bookmark(b) if b.is_initial_events_end() => break,
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    answers.assert_protobuf(4); // create, patch, delete, the streaming watch
    assert_eq!(added, server.into_iter().map(stripped).collect::<Vec<_>>());
}

#[tokio::test]
async fn on_a_json_client_the_option_skips_them_too() {
    let ns = common::namespace("skip-mf-json").await;
    let json = Client::builder(common::config())
        .protobuf(false)
        .build()
        .unwrap();
    let skip: Api<ConfigMap> = Api::namespaced(json, &ns).skip_managed_fields(true);
    skip.create(&PostParams::default(), &cm("a")).await.unwrap();
    let server = server_objects(&ns).await;
    let want: Vec<ConfigMap> = server.into_iter().map(stripped).collect();
    assert_eq!(skip.get("a").await.unwrap(), want[0]);
    assert_eq!(skip.list(&ListParams::default()).await.unwrap().items, want);

    // watch events, as JSON lines
    let mut events = Box::pin(
        skip.watch(&WatchParams::default().streaming_list(), "")
            .await
            .unwrap(),
    );
    loop {
        match next(&mut events).await.unwrap() {
            WatchEvent::Added(o) => assert_eq!(o, want[0]),
            WatchEvent::Bookmark(b) if b.is_initial_events_end() => break,
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    skip.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    match next(&mut events).await.unwrap() {
        WatchEvent::Modified(o) => {
            assert!(o.metadata.managed_fields.is_none(), "{o:?}");
            assert_eq!(o.data.unwrap()["k"], "2");
        }
        other => panic!("expected MODIFIED: {other:?}"),
    }
}
