//! Watches against the real API server: order of events, bookmarks, the
//! streaming list, and a too-old resourceVersion.

mod common;

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_client::params::{ListParams, Patch, PatchParams, PostParams, VersionMatch, WatchParams};
use kube_client::{Api, ResourceExt, WatchEvent};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
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
async fn a_watch_from_a_resource_version_sees_changes_in_order() {
    let ns = common::namespace("watch").await;
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut events = Box::pin(
        api.watch(&WatchParams::default().bookmarks(false), &rv)
            .await
            .unwrap(),
    );

    api.create(&PostParams::default(), &cm("w")).await.unwrap();
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v"}})),
    )
    .await
    .unwrap();
    api.delete("w", &Default::default()).await.unwrap();

    let mut seen = vec![];
    let mut last_rv = 0u64;
    while seen.len() < 3 {
        let (kind, obj) = match next(&mut events).await.unwrap() {
            WatchEvent::Added(o) => ("Added", o),
            WatchEvent::Modified(o) => ("Modified", o),
            WatchEvent::Deleted(o) => ("Deleted", o),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(obj.name_any(), "w");
        let rv: u64 = obj.resource_version().unwrap().parse().unwrap();
        assert!(rv > last_rv, "resourceVersions increase");
        last_rv = rv;
        seen.push(kind);
    }
    assert_eq!(seen, ["Added", "Modified", "Deleted"]);
}

#[tokio::test]
async fn the_streaming_list_ends_with_the_initial_events_bookmark() {
    let ns = common::namespace("stream").await;
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    // Enough data that kube-apiserver would gzip the stream if asked to.
    for name in ["a", "b", "c"] {
        let mut big = cm(name);
        big.data = Some([("blob".to_string(), "x".repeat(200_000))].into());
        api.create(&PostParams::default(), &big).await.unwrap();
    }
    let mut events = Box::pin(
        api.watch(&WatchParams::default().streaming_list(), "")
            .await
            .unwrap(),
    );
    let mut names = vec![];
    loop {
        match next(&mut events).await.unwrap() {
            WatchEvent::Added(o) => names.push(o.name_any().to_string()),
            WatchEvent::Bookmark(b) if b.is_initial_events_end() => {
                assert!(!b.metadata.resource_version.is_empty());
                break;
            }
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
}

#[tokio::test]
async fn bookmarks_arrive_when_asked_and_the_stream_ends_at_the_timeout() {
    let ns = common::namespace("bookmark").await;
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut events = Box::pin(
        api.watch(&WatchParams::default().timeout(6), &rv)
            .await
            .unwrap(),
    );
    // The API server only bookmarks progress it has made: move the global
    // resourceVersion on with a change elsewhere, invisible to this watch.
    let elsewhere: Api<ConfigMap> =
        Api::namespaced(common::client(), &common::namespace("elsewhere").await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    elsewhere
        .create(&PostParams::default(), &cm("progress"))
        .await
        .unwrap();
    let mut bookmarks = 0;
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(ev) = events.next().await {
            if let WatchEvent::Bookmark(b) = ev.unwrap() {
                assert!(!b.metadata.resource_version.is_empty());
                bookmarks += 1;
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the server's timeoutSeconds ends the stream cleanly"
    );
    assert!(
        bookmarks >= 1,
        "a watch with allowWatchBookmarks gets a bookmark before its timeout"
    );
}

#[tokio::test]
async fn a_too_old_resource_version_is_gone() {
    // A control plane of its own: this test compacts etcd and restarts the
    // API server, which would disturb the other tests.
    let (binaries, _) = kube_testenv::binaries::ensure(|_| {}).unwrap();
    let plane =
        tokio::task::spawn_blocking(move || kube_testenv::ControlPlane::start(&binaries).unwrap())
            .await
            .unwrap();
    let kc = kube_client::config::Kubeconfig::read_from(plane.kubeconfig()).unwrap();
    let config = kube_client::config::Config::from_kubeconfig(&kc, &Default::default()).unwrap();
    let api: Api<ConfigMap> =
        Api::namespaced(kube_client::Client::try_from(config).unwrap(), "default");

    let old = api.create(&PostParams::default(), &cm("x")).await.unwrap();
    let old_rv = old.resource_version().unwrap().to_string();
    for i in 0..3 {
        api.patch(
            "x",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"i": i.to_string()}})),
        )
        .await
        .unwrap();
    }
    plane.compact_etcd().unwrap();

    // A fresh API server has a fresh watch cache, so neither of these can be
    // served from memory. A list at an exact, compacted version is 410 Gone;
    // a watch from before the compaction ends with a 410 Expired event.
    let plane = tokio::task::spawn_blocking(move || {
        plane.stop_apiserver();
        plane.start_apiserver().unwrap();
        plane
    })
    .await
    .unwrap();
    let err = api
        .list(&ListParams::default().at(&old_rv, Some(VersionMatch::Exact)))
        .await
        .unwrap_err();
    assert!(err.is_gone(), "{err}");
    assert_eq!(err.code(), Some(410));
    let mut events = Box::pin(api.watch(&WatchParams::default(), &old_rv).await.unwrap());
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
