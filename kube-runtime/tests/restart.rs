//! The Reflector survives its API server: a restart mid-watch, several
//! restarts in a row (each caught up within seconds, with the default
//! backoff), and etcd compacted past its resourceVersion while it was
//! disconnected. Each test runs its own control plane, since it stops
//! servers.

mod common;

use std::time::Duration;

use common::{cm, fast, own_control_plane, restart_apiserver};
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::params::{DeleteParams, PostParams};
use kube_client::{Api, Client, ResourceExt};
use kube_runtime::{Reflector, WatchEvent};

#[tokio::test]
async fn the_reflector_resumes_after_an_apiserver_restart() {
    let plane = own_control_plane().await;
    let api: Api<ConfigMap> = Api::namespaced(
        Client::try_from(common::config_of(plane.kubeconfig())).unwrap(),
        "default",
    );
    for i in 0..10 {
        api.create(&PostParams::default(), &cm(&format!("r-{i}")))
            .await
            .unwrap();
    }
    let rf = Reflector::with_config(api.clone(), fast());
    let reader = rf.reader();
    tokio::spawn(rf.run());
    reader.wait_until_ready().await;
    common::converges(&reader, &api).await;

    let plane = restart_apiserver(plane).await;
    api.create(&PostParams::default(), &cm("after-restart"))
        .await
        .unwrap();
    api.delete("r-0", &DeleteParams::default()).await.unwrap();
    common::converges(&reader, &api).await;
    assert!(reader.get(Some("default"), "after-restart").is_some());
    assert!(reader.get(Some("default"), "r-0").is_none());
    tokio::task::spawn_blocking(move || plane.stop())
        .await
        .unwrap();
}

/// Issue 12, defect 8: each restart used to cost two backoff steps (the cut,
/// then the 410 of the fresh watch cache) and the backoff only reset after
/// 2 minutes, so the catch-up grew 0, 3, 24, 73 s… With the default
/// settings a user gets, every restart must now be caught up within
/// seconds of the server being ready.
#[tokio::test]
async fn the_cache_catches_up_within_seconds_after_each_of_several_restarts() {
    const RESTARTS: usize = 4;
    // The soak measures the 1 s target; here, room for a loaded machine.
    const BOUND: Duration = Duration::from_secs(5);
    let mut plane = own_control_plane().await;
    let api: Api<ConfigMap> = Api::namespaced(
        Client::try_from(common::config_of(plane.kubeconfig())).unwrap(),
        "default",
    );
    let rf = Reflector::new(api.clone());
    let reader = rf.reader();
    tokio::spawn(rf.run());
    reader.wait_until_ready().await;

    let mut catch_up = Vec::new();
    for round in 0..RESTARTS {
        for i in 0..3 {
            api.create(&PostParams::default(), &cm(&format!("before-{round}-{i}")))
                .await
                .unwrap();
        }
        common::converges(&reader, &api).await;
        // Returns once /readyz answers 200 again.
        plane = restart_apiserver(plane).await;
        let ready = tokio::time::Instant::now();
        api.create(&PostParams::default(), &cm(&format!("after-{round}")))
            .await
            .unwrap();
        common::converges(&reader, &api).await;
        catch_up.push(ready.elapsed());
    }
    assert!(
        catch_up.iter().all(|d| *d <= BOUND),
        "catch-up after each restart (bound {BOUND:?}): {catch_up:?}"
    );
    println!("catch-up after each restart: {catch_up:?}");
    tokio::task::spawn_blocking(move || plane.stop())
        .await
        .unwrap();
}

#[tokio::test]
async fn compaction_while_disconnected_relists_and_reports_deletions() {
    compaction_while_disconnected(fast()).await;
}

#[tokio::test]
async fn compaction_while_disconnected_relists_with_list_then_watch() {
    let mut config = fast();
    config.watcher = config.watcher.list_then_watch();
    compaction_while_disconnected(config).await;
}

async fn compaction_while_disconnected(reflector_config: kube_runtime::ReflectorConfig) {
    let plane = own_control_plane().await;
    let direct: Api<ConfigMap> = Api::namespaced(
        Client::try_from(common::config_of(plane.kubeconfig())).unwrap(),
        "default",
    );
    for i in 0..10 {
        direct
            .create(&PostParams::default(), &cm(&format!("k-{i}")))
            .await
            .unwrap();
    }
    let (proxy, through_proxy) =
        common::proxy::client_through(plane.server_url(), plane.kubeconfig()).await;
    let via_proxy: Api<ConfigMap> = Api::namespaced(through_proxy, "default");

    let mut rf = Reflector::with_config(via_proxy, reflector_config);
    rf.poll().await.unwrap();
    rf.events();

    // Disconnected: objects change, etcd is compacted, and a restart empties
    // the API server's watch cache, so the old version cannot be served.
    proxy.disconnect();
    for i in 0..4 {
        direct
            .delete(&format!("k-{i}"), &DeleteParams::default())
            .await
            .unwrap();
    }
    direct
        .create(&PostParams::default(), &cm("born-while-away"))
        .await
        .unwrap();
    plane.compact_etcd().unwrap();
    let plane = restart_apiserver(plane).await;
    proxy.resume();

    let mut seen = vec![];
    let mut saw_gone = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "events so far: {seen:?}"
        );
        let _ = tokio::time::timeout(Duration::from_secs(5), rf.poll()).await;
        for e in rf.events() {
            match e {
                WatchEvent::Deleted(o) => seen.push(format!("-{}", o.name_any())),
                WatchEvent::Added(o) => seen.push(format!("+{}", o.name_any())),
                WatchEvent::Modified(o) => seen.push(format!("~{}", o.name_any())),
                WatchEvent::Error(err) => saw_gone |= err.is_gone(),
                WatchEvent::Desynced { .. } => {}
            }
        }
    }
    seen.sort();
    assert_eq!(seen, ["+born-while-away", "-k-0", "-k-1", "-k-2", "-k-3"]);
    assert!(
        saw_gone,
        "the resume was refused with 410 and the reflector relisted"
    );
    assert_eq!(
        rf.reader().lists_completed(),
        2,
        "one initial list, one relist"
    );
    common::converges(&rf.reader(), &direct).await;
    tokio::task::spawn_blocking(move || plane.stop())
        .await
        .unwrap();
}
