//! Discovery against a real kube-apiserver: aggregated and legacy discovery
//! find the built-in kinds and agree with each other, kubectl-style names
//! resolve, and a CRD found through discovery serves a dynamic `Api`.

mod common;

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use common::{client, namespace};
use kube_client::discovery::{DiscoveredResource, Discovery};
use kube_client::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_client::params::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube_client::{Api, ApiResource, DynamicObject, ObjectOrStatus, ResourceExt, Scope};
use serde_json::json;

/// Polls `check` every 250 ms until it gives `Some`, for at most `within`.
async fn poll<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The built-in kinds every kube-apiserver serves, found as expected.
fn assert_finds_builtin_kinds(d: &Discovery) {
    let cm = d
        .resolve_gvk("", "v1", "ConfigMap")
        .expect("core v1 ConfigMap");
    assert_eq!(
        cm,
        ApiResource::new("", "v1", "ConfigMap", "configmaps", Scope::Namespaced)
    );
    assert_eq!(d.resolve_kind("", "ConfigMap"), Some(cm.clone()));
    assert_eq!(d.resolve_plural(None, "cm"), Some(cm.clone()));
    assert_eq!(d.resolve_plural(Some(""), "configmaps"), Some(cm));

    let deploy = d
        .resolve_kind("apps", "Deployment")
        .expect("apps Deployment");
    assert_eq!(
        deploy,
        ApiResource::new("apps", "v1", "Deployment", "deployments", Scope::Namespaced)
    );
    assert_eq!(
        d.resolve_gvk("apps", "v1", "Deployment").as_ref(),
        Some(&deploy)
    );
    for name in [
        "deploy",
        "deployments",
        "deployment",
        "deployments.apps",
        "deployments.v1.apps",
    ] {
        assert_eq!(
            d.resolve_plural(None, name).as_ref(),
            Some(&deploy),
            "{name}"
        );
    }
    let apps = d.group("apps").expect("apps group");
    assert_eq!(apps.preferred_version, "v1");
    let deployments = apps
        .resources
        .iter()
        .find(|r| r.resource.plural == "deployments")
        .unwrap();
    assert!(deployments.short_names.contains(&"deploy".to_string()));
    assert!(
        deployments.subresources.contains(&"scale".to_string()),
        "{:?}",
        deployments.subresources
    );
    assert!(deployments.supports("watch"));

    let ns = d.resolve_plural(None, "namespaces").expect("namespaces");
    assert_eq!(
        ns,
        ApiResource::new("", "v1", "Namespace", "namespaces", Scope::Cluster)
    );
    assert_eq!(d.resolve_plural(None, "ns"), Some(ns));

    // The core group comes first; the core `events` wins over events.k8s.io.
    assert_eq!(d.groups()[0].name, "");
    assert_eq!(
        d.resolve_plural(None, "events").map(|ar| ar.group),
        Some(String::new())
    );
    assert_eq!(
        d.resolve_plural(None, "events.events.k8s.io")
            .map(|ar| ar.group),
        Some("events.k8s.io".into())
    );

    // Subresources are not resources; unknown names are None.
    assert!(
        d.groups()
            .iter()
            .flat_map(|g| &g.resources)
            .all(|r| !r.resource.plural.contains('/'))
    );
    assert_eq!(d.resolve_plural(None, "no-such-things"), None);
    assert_eq!(d.resolve_gvk("apps", "v1", "NoSuchKind"), None);
    assert_eq!(d.resolve_kind("no-such-group.io", "Deployment"), None);
    assert!(d.unavailable().is_empty(), "{:?}", d.unavailable());
}

#[tokio::test]
async fn aggregated_discovery_finds_builtin_kinds() {
    let d = Discovery::run(&client()).await.unwrap();
    assert!(
        d.is_aggregated(),
        "a v1.37 kube-apiserver serves aggregated discovery"
    );
    assert_finds_builtin_kinds(&d);
}

#[tokio::test]
async fn legacy_discovery_finds_builtin_kinds() {
    let d = Discovery::run_legacy(&client()).await.unwrap();
    assert!(!d.is_aggregated());
    assert_finds_builtin_kinds(&d);
}

#[tokio::test]
async fn aggregated_and_legacy_discovery_agree() {
    let client = client();
    let (aggregated, legacy) = (
        Discovery::run(&client).await.unwrap(),
        Discovery::run_legacy(&client).await.unwrap(),
    );
    type Entry = (
        String,
        String,
        String,
        String,
        bool,
        BTreeSet<String>,
        BTreeSet<String>,
        String,
        BTreeSet<String>,
    );
    let entries = |d: &Discovery, group: &str| -> BTreeSet<Entry> {
        let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
        d.group(group)
            .unwrap_or_else(|| panic!("group {group:?}"))
            .resources
            .iter()
            .map(|r: &DiscoveredResource| {
                let ar = &r.resource;
                (
                    ar.group.clone(),
                    ar.version.clone(),
                    ar.plural.clone(),
                    ar.kind.clone(),
                    ar.scope == Scope::Namespaced,
                    set(&r.verbs),
                    set(&r.short_names),
                    r.singular.clone(),
                    set(&r.subresources),
                )
            })
            .collect()
    };
    for group in [
        "",
        "apps",
        "batch",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
        "coordination.k8s.io",
    ] {
        let (a, l) = (entries(&aggregated, group), entries(&legacy, group));
        assert!(!a.is_empty(), "{group:?} has resources");
        assert_eq!(a, l, "group {group:?}");
        let (ag, lg) = (
            aggregated.group(group).unwrap(),
            legacy.group(group).unwrap(),
        );
        assert_eq!(
            (&ag.preferred_version, &ag.versions),
            (&lg.preferred_version, &lg.versions),
            "group {group:?}"
        );
    }
}

#[tokio::test]
async fn a_crd_found_through_discovery_serves_a_dynamic_api() {
    const GROUP: &str = "discovery.kube-test.io";
    const CRD_NAME: &str = "widgets.discovery.kube-test.io";
    let client = client();
    let ns = namespace("discovery").await;

    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "shortNames": ["wdgt"], "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
                }}
            }]
        }
    }))
    .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd).await.unwrap();

    poll("CRD Established", Duration::from_secs(30), || async {
        let crd = crds.get(CRD_NAME).await.unwrap();
        let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
            .then_some(())
    })
    .await;

    // Discovery lags the CRD a little: poll both ways of reading it.
    let ar = poll(
        "Widget in aggregated discovery",
        Duration::from_secs(30),
        || async {
            Discovery::run(&client)
                .await
                .unwrap()
                .resolve_kind(GROUP, "Widget")
        },
    )
    .await;
    assert_eq!(
        ar,
        ApiResource::new(GROUP, "v1", "Widget", "widgets", Scope::Namespaced)
    );
    let legacy = poll(
        "Widget in legacy discovery",
        Duration::from_secs(30),
        || async {
            Discovery::run_legacy(&client)
                .await
                .unwrap()
                .resolve_gvk(GROUP, "v1", "Widget")
        },
    )
    .await;
    assert_eq!(legacy, ar);
    let d = Discovery::run(&client).await.unwrap();
    for name in [
        "widgets",
        "widget",
        "wdgt",
        "widgets.discovery.kube-test.io",
        "wdgt.v1.discovery.kube-test.io",
    ] {
        assert_eq!(d.resolve_plural(None, name).as_ref(), Some(&ar), "{name}");
    }

    // The dynamic API, built from what discovery found.
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
    let spec = json!({"size": 3, "color": "blue", "tags": ["a", "b"], "nested": {"deep": true}});
    let widget = DynamicObject::new("w1", &ar).data(json!({"spec": spec}));
    let created = widgets
        .create(&PostParams::default(), &widget)
        .await
        .unwrap();
    assert_eq!(created.data["spec"], spec);
    assert_eq!(created.namespace(), Some(ns.as_str()));
    let types = created.types.as_ref().unwrap();
    assert_eq!(
        (types.api_version.as_str(), types.kind.as_str()),
        ("discovery.kube-test.io/v1", "Widget")
    );

    let got = widgets.get("w1").await.unwrap();
    assert_eq!(got.data["spec"], spec);
    assert_eq!(got.uid(), created.uid());

    let list = widgets.list(&ListParams::default()).await.unwrap();
    let names: Vec<&str> = list.items.iter().map(|w| w.name_any()).collect();
    assert_eq!(names, ["w1"]);
    assert_eq!(list.items[0].data["spec"], spec);

    let patch = json!({"spec": {"color": "red", "size": null}});
    let patched = widgets
        .patch("w1", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let expected = json!({"color": "red", "tags": ["a", "b"], "nested": {"deep": true}});
    assert_eq!(patched.data["spec"], expected);
    assert_ne!(patched.resource_version(), created.resource_version());
    assert_eq!(widgets.get("w1").await.unwrap().data["spec"], expected);

    match widgets
        .delete("w1", &DeleteParams::default())
        .await
        .unwrap()
    {
        ObjectOrStatus::Object(o) => assert_eq!(o.name_any(), "w1"),
        ObjectOrStatus::Status(s) => assert_eq!(s.status.as_deref(), Some("Success")),
    }
    poll("Widget deleted", Duration::from_secs(30), || async {
        widgets.get_opt("w1").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(widgets.get("w1").await.unwrap_err().is_not_found());

    crds.delete(CRD_NAME, &DeleteParams::default())
        .await
        .unwrap();
    poll(
        "CRD gone from discovery",
        Duration::from_secs(30),
        || async {
            Discovery::run(&client)
                .await
                .unwrap()
                .resolve_kind(GROUP, "Widget")
                .is_none()
                .then_some(())
        },
    )
    .await;
}
