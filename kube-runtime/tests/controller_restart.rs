//! A controller outlives an API server restart: after kube-apiserver is
//! stopped and started again under it, it keeps going and every object
//! ends in its desired state. Runs its own control plane.

mod common;

use std::time::Duration;

use common::cm;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::params::{ListParams, Patch, PatchParams, PostParams};
use kube_client::{Api, Client, ResourceExt};
use kube_runtime::controller::{Action, Controller, default_error_policy};
use kube_testenv::ControlPlane;
use serde_json::json;
use std::sync::Arc;

fn seen(obj: &ConfigMap) -> Option<&String> {
    obj.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("seen"))
}

/// Desired state: annotation `seen` equals `data.k`.
async fn reconcile(
    obj: Arc<ConfigMap>,
    api: Arc<Api<ConfigMap>>,
) -> Result<Action, kube_client::Error> {
    let k = obj
        .data
        .as_ref()
        .and_then(|d| d.get("k"))
        .cloned()
        .unwrap_or_default();
    if seen(&obj) != Some(&k) {
        api.patch(
            obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"seen": k}}})),
        )
        .await?;
    }
    Ok(Action::await_change())
}

/// Waits (bounded) until every object is in its desired state.
async fn all_desired(api: &Api<ConfigMap>, want: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let list = api.list(&ListParams::default()).await;
        if let Ok(list) = list {
            let objs: Vec<_> = list
                .items
                .iter()
                .filter(|o| o.name_any().starts_with("r-"))
                .collect();
            let off: Vec<_> = objs
                .iter()
                .filter(|o| seen(o) != o.data.as_ref().and_then(|d| d.get("k")))
                .map(|o| o.name_any().to_string())
                .collect();
            if objs.len() == want && off.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} objects, not in desired state: {off:?}",
                objs.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_carries_on_after_an_apiserver_restart() {
    let (binaries, _) = kube_testenv::binaries::ensure(|_| {}).unwrap();
    let plane = tokio::task::spawn_blocking(move || ControlPlane::start(&binaries).unwrap())
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(
        Client::try_from(common::config_of(plane.kubeconfig())).unwrap(),
        "default",
    );
    for i in 0..10 {
        api.create(&PostParams::default(), &cm(&format!("r-{i}")))
            .await
            .unwrap();
    }
    let stream = Controller::new(api.clone(), common::fast().watcher).run(
        reconcile,
        default_error_policy,
        Arc::new(api.clone()),
    );
    let errors = Arc::new(parking_lot::Mutex::new(0usize));
    let count = errors.clone();
    let task = tokio::spawn(stream.for_each(move |item| {
        if item.is_err() {
            *count.lock() += 1;
        }
        async {}
    }));
    all_desired(&api, 10).await;

    let plane = tokio::task::spawn_blocking(move || {
        plane.stop_apiserver();
        std::thread::sleep(Duration::from_secs(2));
        plane.start_apiserver().unwrap();
        plane
    })
    .await
    .unwrap();

    for i in 0..5 {
        api.patch(
            &format!("r-{i}"),
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "after-restart"}})),
        )
        .await
        .unwrap();
    }
    for i in 10..15 {
        api.create(&PostParams::default(), &cm(&format!("r-{i}")))
            .await
            .unwrap();
    }
    all_desired(&api, 15).await;
    assert!(!task.is_finished(), "the controller is still running");
    assert!(*errors.lock() >= 1, "the outage was reported on the stream");
    task.abort();
    tokio::task::spawn_blocking(move || plane.stop())
        .await
        .unwrap();
}
