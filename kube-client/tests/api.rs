//! `Api<K>` against the real API server: CRUD, every patch kind, server-side
//! apply conflicts, pagination, delete options and typed errors.

mod common;

use std::collections::BTreeMap;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_client::params::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy,
    Selector,
};
use kube_client::{Api, ObjectOrStatus, ResourceExt};
use serde_json::json;

fn cm(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..ConfigMap::default()
    }
}

fn data(cm: &ConfigMap) -> BTreeMap<String, String> {
    cm.data.clone().unwrap_or_default()
}

#[tokio::test]
async fn configmap_crud() {
    let ns = common::namespace("crud").await;
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);

    let created = api
        .create(&PostParams::default(), &cm("a", &[("k", "v")]))
        .await
        .unwrap();
    assert_eq!(created.namespace(), Some(ns.as_str()));
    assert!(created.uid().is_some());

    let got = api.get("a").await.unwrap();
    assert_eq!(data(&got)["k"], "v");
    assert!(api.get_opt("missing").await.unwrap().is_none());

    let mut changed = got.clone();
    changed
        .data
        .as_mut()
        .unwrap()
        .insert("k".into(), "v2".into());
    let replaced = api
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(data(&replaced)["k"], "v2");
    assert_ne!(replaced.resource_version(), got.resource_version());

    // Replacing with the stale resourceVersion is a conflict.
    let err = api
        .replace("a", &PostParams::default(), &got)
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(err.status().unwrap().reason.as_deref(), Some("Conflict"));

    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.resource_version.is_some());

    match api.delete("a", &DeleteParams::default()).await.unwrap() {
        ObjectOrStatus::Object(o) => assert_eq!(o.name_any(), "a"),
        ObjectOrStatus::Status(s) => assert_eq!(s.status.as_deref(), Some("Success")),
    }
    let err = api.get("a").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn every_patch_kind() {
    let ns = common::namespace("patch").await;
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    api.create(&PostParams::default(), &cm("p", &[("a", "1"), ("b", "2")]))
        .await
        .unwrap();

    let merged = api
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": null, "c": "3"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        data(&merged),
        BTreeMap::from([("b".into(), "2".into()), ("c".into(), "3".into())])
    );

    let ops = vec![
        json!({"op": "replace", "path": "/data/b", "value": "20"}),
        json!({"op": "remove", "path": "/data/c"}),
    ];
    let jsoned = api
        .patch("p", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .unwrap();
    assert_eq!(data(&jsoned), BTreeMap::from([("b".into(), "20".into())]));

    let strategic = api
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(strategic.metadata.labels.unwrap()["x"], "y");

    let apply = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p"}, "data": {"owned": "yes"}});
    let applied = api
        .patch("p", &PatchParams::apply("tester"), &Patch::Apply(&apply))
        .await
        .unwrap();
    assert_eq!(data(&applied)["owned"], "yes");
    assert!(
        applied
            .metadata
            .managed_fields
            .unwrap()
            .iter()
            .any(|m| m.manager.as_deref() == Some("tester"))
    );

    // Dry run changes nothing.
    let dry = PatchParams {
        dry_run: true,
        ..PatchParams::default()
    };
    let would = api
        .patch("p", &dry, &Patch::Merge(json!({"data": {"dry": "run"}})))
        .await
        .unwrap();
    assert_eq!(data(&would)["dry"], "run");
    assert!(!data(&api.get("p").await.unwrap()).contains_key("dry"));

    // Apply without a field manager is refused before sending.
    let err = api
        .patch("p", &PatchParams::default(), &Patch::Apply(&apply))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("field_manager"), "{err}");
}

#[tokio::test]
async fn server_side_apply_conflict_and_force() {
    let ns = common::namespace("ssa").await;
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    let mine = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "data": {"k": "alice"}});
    api.patch("s", &PatchParams::apply("alice"), &Patch::Apply(&mine))
        .await
        .unwrap();

    let theirs = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "data": {"k": "bob"}});
    let err = api
        .patch("s", &PatchParams::apply("bob"), &Patch::Apply(&theirs))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(
        err.to_string().contains("alice"),
        "the conflict names the owner: {err}"
    );

    let forced = api
        .patch(
            "s",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(&theirs),
        )
        .await
        .unwrap();
    assert_eq!(data(&forced)["k"], "bob");
}

#[tokio::test]
async fn pagination_over_more_than_a_page() {
    let ns = common::namespace("pages").await;
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    // 1,200 objects, created 16 at a time.
    let names: Vec<String> = (0..1200).map(|i| format!("cm-{i:04}")).collect();
    for chunk in names.chunks(16) {
        futures::future::try_join_all(chunk.iter().map(|n| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &cm(n, &[("i", n)]))
                    .await
            }
        }))
        .await
        .unwrap();
    }

    let first = api.list(&ListParams::default().limit(500)).await.unwrap();
    assert_eq!(first.items.len(), 500);
    assert!(
        first
            .metadata
            .continue_
            .as_deref()
            .is_some_and(|c| !c.is_empty())
    );

    let all: Vec<ConfigMap> = api
        .list_stream(&ListParams::default().limit(500))
        .try_collect()
        .await
        .unwrap();
    let mut got: Vec<String> = all.iter().map(|c| c.name_any().to_string()).collect();
    got.sort();
    assert_eq!(got, names);

    // Selectors go through the stream too.
    api.patch(
        "cm-0007",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"pick": "me"}}})),
    )
    .await
    .unwrap();
    let picked: Vec<ConfigMap> = api
        .list_stream(&ListParams::default().labels(Selector::new().eq("pick", "me")))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(picked.len(), 1);
    assert_eq!(picked[0].name_any(), "cm-0007");
    let by_field = api
        .list(&ListParams::default().fields("metadata.name=cm-0008"))
        .await
        .unwrap();
    assert_eq!(by_field.items.len(), 1);

    // delete_collection with a selector removes only the match.
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("pick=me"),
    )
    .await
    .unwrap();
    assert!(api.get_opt("cm-0007").await.unwrap().is_none());
    assert!(api.get_opt("cm-0008").await.unwrap().is_some());
}

#[tokio::test]
async fn typed_errors_404_409_422() {
    let ns = common::namespace("errors").await;
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);

    let e404 = api.get("nope").await.unwrap_err();
    assert!(e404.is_not_found());
    let status = e404.status().unwrap();
    assert_eq!(status.code, Some(404));
    assert_eq!(status.reason.as_deref(), Some("NotFound"));
    assert_eq!(
        status.details.as_ref().unwrap().name.as_deref(),
        Some("nope")
    );
    assert!(
        e404.to_string()
            .contains(&format!("/api/v1/namespaces/{ns}/configmaps/nope")),
        "{e404}"
    );

    api.create(&PostParams::default(), &cm("dup", &[]))
        .await
        .unwrap();
    let e409 = api
        .create(&PostParams::default(), &cm("dup", &[]))
        .await
        .unwrap_err();
    assert!(e409.is_conflict() && e409.is_already_exists(), "{e409}");

    let e422 = api
        .create(&PostParams::default(), &cm("Not_A_Valid_Name", &[]))
        .await
        .unwrap_err();
    assert!(e422.is_invalid(), "{e422}");
    let causes = e422
        .status()
        .unwrap()
        .details
        .as_ref()
        .unwrap()
        .causes
        .clone()
        .unwrap();
    assert!(
        causes
            .iter()
            .any(|c| c.field.as_deref() == Some("metadata.name")),
        "{causes:?}"
    );

    // A delete precondition that does not hold is a conflict.
    let pre = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let e = api.delete("dup", &pre).await.unwrap_err();
    assert!(e.is_conflict(), "{e}");
    // Dry-run delete keeps it; a real one with a propagation policy removes it.
    let dry = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    api.delete("dup", &dry).await.unwrap();
    assert!(api.get_opt("dup").await.unwrap().is_some());
    let fg = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    api.delete("dup", &fg).await.unwrap();
    assert!(api.get_opt("dup").await.unwrap().is_none());
}

#[tokio::test]
async fn cluster_scoped_and_metadata_only() {
    let client = common::client();
    let ns = common::namespace("meta").await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let got = namespaces.get(&ns).await.unwrap();
    assert_eq!(got.name_any(), ns);

    let api: Api<ConfigMap> = Api::namespaced(client, &ns);
    api.create(
        &PostParams::default(),
        &cm("big", &[("payload", &"x".repeat(10_000))]),
    )
    .await
    .unwrap();
    let meta = api.metadata();
    let list = meta.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let item = &list.items[0];
    assert_eq!(item.types.as_ref().unwrap().kind, "PartialObjectMetadata");
    assert_eq!(item.metadata.name.as_deref(), Some("big"));
    let one = meta.get("big").await.unwrap();
    assert_eq!(one.types.unwrap().kind, "PartialObjectMetadata");
}
