//! Subresources against the real API server: `status` and `scale` of a
//! Deployment, Pod `log`, and Pod `eviction` with and without a
//! PodDisruptionBudget.
//!
//! Only kube-apiserver runs here: no scheduler, kubelet or controllers. Pods
//! stay Pending on no node, Deployments never get ReplicaSets, and nobody
//! computes a PodDisruptionBudget's status — the tests rely on exactly that
//! and assert what the API server itself answers.

mod common;

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube_client::api::subresource::LogParams;
use kube_client::client::RetryPolicy;
use kube_client::params::{DeleteParams, Patch, PatchParams, PostParams};
use kube_client::{Api, Client, Error, ResourceExt};
use serde_json::json;

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx"}]},
            },
        },
    }))
    .unwrap()
}

fn pod(name: &str, app: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
    }))
    .unwrap()
}

fn status_replicas(d: &Deployment) -> Option<i32> {
    d.status.as_ref().and_then(|s| s.replicas)
}

fn spec_replicas(d: &Deployment) -> Option<i32> {
    d.spec.replicas
}

/// A client that returns 429s at once instead of waiting out `Retry-After`.
fn no_retry_client() -> Client {
    Client::builder(common::config())
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

/// Waits (up to 10 s) until Pod `name` is gone or being deleted.
async fn wait_gone_or_deleting(api: &Api<Pod>, name: &str) {
    for _ in 0..100 {
        match api.get_opt(name).await.unwrap() {
            None => return,
            Some(p) if p.metadata.deletion_timestamp.is_some() => return,
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("pod {name} is neither gone nor being deleted after 10 s");
}

#[tokio::test]
async fn deployment_status_subresource() {
    let ns = common::namespace("status").await;
    let api: Api<Deployment> = Api::namespaced(common::client(), &ns);
    let created = api
        .create(&PostParams::default(), &deployment("web", 2))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(status_replicas(&created), None, "no controller fills it in");

    // patch_status changes the status, and ignores the spec in the same patch.
    let patched = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "spec": {"replicas": 9},
                "status": {"replicas": 2, "observedGeneration": 1},
            })),
        )
        .await
        .unwrap();
    assert_eq!(status_replicas(&patched), Some(2));
    assert_eq!(
        patched.status.as_ref().unwrap().observed_generation,
        Some(1)
    );
    assert_eq!(
        spec_replicas(&patched),
        Some(2),
        "the status endpoint ignores spec changes"
    );

    let read = api.get_status("web").await.unwrap();
    assert_eq!(status_replicas(&read), Some(2));
    assert_eq!(read.status.as_ref().unwrap().observed_generation, Some(1));
    assert_eq!(read.resource_version(), patched.resource_version());

    // The main endpoint ignores status changes.
    let through_main = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(status_replicas(&through_main), Some(2));
    assert_eq!(status_replicas(&api.get("web").await.unwrap()), Some(2));

    // replace_status with the current object.
    let mut current = api.get("web").await.unwrap();
    current.status.as_mut().unwrap().replicas = Some(3);
    current.status.as_mut().unwrap().updated_replicas = Some(1);
    let replaced = api
        .replace_status("web", &PostParams::default(), &current)
        .await
        .unwrap();
    assert_eq!(status_replicas(&replaced), Some(3));
    assert_eq!(replaced.status.as_ref().unwrap().updated_replicas, Some(1));
    assert_ne!(replaced.resource_version(), current.resource_version());
    assert_eq!(
        status_replicas(&api.get_status("web").await.unwrap()),
        Some(3)
    );

    // ... and with a stale one: a conflict.
    let err = api
        .replace_status("web", &PostParams::default(), &current)
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(
        err.to_string().contains(&format!(
            "/apis/apps/v1/namespaces/{ns}/deployments/web/status"
        )),
        "{err}"
    );

    // An invalid status is refused with the server's reason.
    let err = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": -1}})),
        )
        .await
        .unwrap_err();
    assert!(err.is_invalid(), "{err}");

    let err = api.get_status("missing").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn deployment_scale_subresource() {
    let ns = common::namespace("scale").await;
    let api: Api<Deployment> = Api::namespaced(common::client(), &ns);
    api.create(&PostParams::default(), &deployment("web", 2))
        .await
        .unwrap();

    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.metadata.name.as_deref(), Some("web"));
    assert_eq!(scale.metadata.namespace.as_deref(), Some(ns.as_str()));
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(2));
    assert_eq!(
        scale.status.as_ref().and_then(|s| s.selector.as_deref()),
        Some("app=web")
    );

    let scaled = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.as_ref().unwrap().replicas, Some(5));
    let d = api.get("web").await.unwrap();
    assert_eq!(spec_replicas(&d), Some(5));
    assert_eq!(d.metadata.generation, Some(2), "a spec change");
    assert_eq!(
        api.get_scale("web").await.unwrap().spec.unwrap().replicas,
        Some(5)
    );

    let err = api.get_scale("missing").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");

    // A kind without a scale subresource: the path does not exist.
    let cms: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    let err = cms.get_scale("anything").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(matches!(err, Error::Api { .. }), "{err:?}");
}

#[tokio::test]
async fn pod_logs_of_a_pod_that_never_ran() {
    let ns = common::namespace("logs").await;
    let api: Api<Pod> = Api::namespaced(common::client(), &ns);
    api.create(&PostParams::default(), &pod("idle", "idle"))
        .await
        .unwrap();
    let pending = api.get("idle").await.unwrap();
    assert!(pending.spec.as_ref().unwrap().node_name.is_none());

    // With no node, the API server has nowhere to fetch logs from and
    // answers an empty log (204 No Content) rather than an error.
    let app = LogParams {
        container: Some("app".into()),
        ..LogParams::default()
    };
    assert_eq!(api.logs("idle", &app).await.unwrap(), "");
    assert_eq!(
        api.logs("idle", &LogParams::default()).await.unwrap(),
        "",
        "the only container is the default"
    );
    let follow = LogParams {
        follow: true,
        ..app.clone()
    };
    let lines = tokio::time::timeout(
        Duration::from_secs(20),
        api.log_lines("idle", &follow)
            .await
            .unwrap()
            .collect::<Vec<_>>(),
    )
    .await
    .expect("a followed log of a pod on no node ends at once");
    assert!(lines.is_empty(), "{lines:?}");

    // A container the Pod does not have: 400 BadRequest, a typed Api error
    // naming the pod and the container, with the request path in the error.
    let bogus = LogParams {
        container: Some("bogus".into()),
        ..LogParams::default()
    };
    let err = api.logs("idle", &bogus).await.unwrap_err();
    let path = format!("/api/v1/namespaces/{ns}/pods/idle/log?container=bogus");
    match &err {
        Error::Api {
            method,
            url,
            status,
        } => {
            assert_eq!(method, "GET");
            assert!(url.ends_with(&path), "{url}");
            assert_eq!(status.code, Some(400), "{status:?}");
            assert_eq!(status.reason.as_deref(), Some("BadRequest"), "{status:?}");
            let message = status.message.as_deref().unwrap_or_default();
            assert!(
                message.contains("bogus") && message.contains("idle"),
                "{message}"
            );
        }
        other => panic!("expected an Api error, got {other:?}"),
    }
    assert!(err.to_string().contains(&path), "{err}");

    // The same through the streaming call, with follow.
    let follow_bogus = LogParams {
        follow: true,
        ..bogus
    };
    let err = match api.log_lines("idle", &follow_bogus).await {
        Ok(_) => panic!("a followed log of a bogus container is refused"),
        Err(e) => e,
    };
    assert_eq!(err.code(), Some(400), "{err}");
    assert!(matches!(err, Error::Api { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "/api/v1/namespaces/{ns}/pods/idle/log?container=bogus&follow=true"
        )),
        "{text}"
    );
    assert!(text.contains("idle") && text.contains("bogus"), "{text}");

    // A Pod that does not exist.
    let err = api.logs("missing", &app).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("/api/v1/namespaces/{ns}/pods/missing/log")),
        "{err}"
    );
    let err = match api.log_lines("missing", &follow).await {
        Ok(_) => panic!("a followed log of a missing pod is refused"),
        Err(e) => e,
    };
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn evicting_a_pending_pod_deletes_it() {
    let ns = common::namespace("evict").await;
    let api: Api<Pod> = Api::namespaced(common::client(), &ns);
    api.create(&PostParams::default(), &pod("victim", "victim"))
        .await
        .unwrap();

    let status = api.evict("victim", &DeleteParams::default()).await.unwrap();
    assert_eq!(status.status.as_deref(), Some("Success"), "{status:?}");
    wait_gone_or_deleting(&api, "victim").await;

    let err = api
        .evict("missing", &DeleteParams::default())
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("/api/v1/namespaces/{ns}/pods/missing/eviction")),
        "{err}"
    );
}

#[tokio::test]
async fn a_disruption_budget_refuses_eviction_with_429() {
    let ns = common::namespace("pdb").await;
    let client = common::client();
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "keep-one"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}},
    }))
    .unwrap();
    pdbs.create(&PostParams::default(), &pdb).await.unwrap();

    let api: Api<Pod> = Api::namespaced(client, &ns);
    api.create(&PostParams::default(), &pod("running", "guarded"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &pod("pending", "guarded"))
        .await
        .unwrap();
    // Play the kubelet: report one Pod as running.
    let running = api
        .patch_status(
            "running",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        running.status.as_ref().unwrap().phase.as_deref(),
        Some("Running")
    );

    // The budget matches the running Pod; nobody has computed its status,
    // so the server refuses the eviction with 429 TooManyRequests.
    let no_retry: Api<Pod> = Api::namespaced(no_retry_client(), &ns);
    let err = no_retry
        .evict("running", &DeleteParams::default())
        .await
        .unwrap_err();
    assert!(
        err.is_too_many_requests(),
        "the server said: {err} ({err:?})"
    );
    let status = err.status().expect("a Status");
    assert_eq!(status.reason.as_deref(), Some("TooManyRequests"), "{err}");
    let said = format!(
        "{} {:?}",
        status.message.as_deref().unwrap_or_default(),
        status.details
    );
    assert!(
        said.contains("disruption budget"),
        "the server said: {said}"
    );
    assert!(
        err.to_string()
            .contains(&format!("/api/v1/namespaces/{ns}/pods/running/eviction")),
        "{err}"
    );

    // With (quick) retries the outcome is the same 429, once they run out.
    let quick: Api<Pod> = Api::namespaced(
        Client::builder(common::config())
            .retry(RetryPolicy {
                max_retries: 2,
                min_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(100),
            })
            .build()
            .unwrap(),
        &ns,
    );
    let err = quick
        .evict("running", &DeleteParams::default())
        .await
        .unwrap_err();
    assert!(err.is_too_many_requests(), "{err}");

    // The Pod was not touched.
    let still = api.get("running").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_none());

    // A Pending Pod has not started, so it cannot be disrupted: the server
    // evicts it regardless of the budget.
    let status = no_retry
        .evict("pending", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(status.status.as_deref(), Some("Success"), "{status:?}");
    wait_gone_or_deleting(&api, "pending").await;
}
