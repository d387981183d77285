//! Derived kinds against the real API server (kube-testenv): the generated
//! CRDs install and become Established, and their objects go through
//! create, get, patch, the status and scale subresources, CEL validation,
//! printer columns, field selectors and a Reflector.

mod common;

use std::time::Duration;

use common::shapes::{Backend, Inner, Mixed, Mode, Port, Shapes, ShapesSpec, ShapesStatus, Source};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_client::params::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube_client::{Api, ResourceExt};
use kube_derive::CustomResource;
use kube_runtime::{Reflector, WatchEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A widget.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(group = "crd.derive.test", version = "v1", kind = "Widget", namespaced)]
#[kube(status = "WidgetStatus", shortname = "wdg", category = "derivetest")]
#[kube(printcolumn = r#"{"name":"Size","type":"integer","jsonPath":".spec.size"}"#)]
#[kube(printcolumn = r#"{"name":"Ready","type":"boolean","jsonPath":".status.ready"}"#)]
#[kube(validation(rule = "self.size <= 10", message = "size must be at most 10"))]
#[kube(scale = r#"{"specReplicasPath":".spec.replicas","statusReplicasPath":".status.replicas"}"#)]
#[kube(selectable = ".spec.color")]
struct WidgetSpec {
    size: i32,
    replicas: i32,
    color: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
struct WidgetStatus {
    ready: bool,
    replicas: i32,
}

/// A cluster-scoped kind with nothing but a spec.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(group = "crd.derive.test", version = "v1", kind = "Policy")]
struct PolicySpec {
    allow: bool,
}

fn widget(name: &str, size: i32, color: &str) -> Widget {
    Widget::new(
        name,
        WidgetSpec {
            size,
            replicas: 1,
            color: color.into(),
        },
    )
}

async fn widgets(prefix: &str) -> Api<Widget> {
    common::install(Widget::crd()).await;
    Api::namespaced(common::client(), &common::namespace(prefix).await)
}

#[tokio::test]
async fn crd_installs_as_generated() {
    let installed = common::install(Widget::crd()).await;
    assert_eq!(
        installed.metadata.name.as_deref(),
        Some("widgets.crd.derive.test")
    );
    assert_eq!(installed.spec.scope, "Namespaced");
    let names = &installed.spec.names;
    assert_eq!(names.short_names.as_deref(), Some(&["wdg".to_string()][..]));
    assert_eq!(
        names.categories.as_deref(),
        Some(&["derivetest".to_string()][..])
    );
    let accepted = installed.status.unwrap().accepted_names.unwrap();
    assert_eq!(
        (accepted.plural.as_str(), accepted.kind.as_str()),
        ("widgets", "Widget")
    );

    let installed = common::install(Policy::crd()).await;
    assert_eq!(installed.spec.scope, "Cluster");
    let policies: Api<Policy> = Api::all(common::client());
    let created = policies
        .create(
            &PostParams::default(),
            &Policy::new("p1", PolicySpec { allow: true }),
        )
        .await
        .unwrap();
    assert_eq!(created.namespace(), None);
    assert!(policies.get("p1").await.unwrap().spec.allow);
    policies
        .delete("p1", &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn create_get_patch_and_status() {
    let api = widgets("crud").await;
    let created = api
        .create(&PostParams::default(), &widget("w", 3, "blue"))
        .await
        .unwrap();
    assert!(created.uid().is_some());
    assert_eq!(created.spec.size, 3);
    assert_eq!(created.status, None);

    let patched = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.size, 4);
    assert_eq!(api.get("w").await.unwrap().spec.size, 4);

    // Server-side apply of the typed object works too (apiVersion/kind are sent).
    let mut applied = widget("w", 5, "blue");
    applied.metadata.namespace = None;
    let applied = api
        .patch(
            "w",
            &PatchParams::apply("derive-test").force(),
            &Patch::Apply(&applied),
        )
        .await
        .unwrap();
    assert_eq!(applied.spec.size, 5);

    // Status goes through the status subresource only.
    let status = json!({"status": {"ready": true, "replicas": 1}});
    let with_status = api
        .patch_status("w", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(
        with_status.status,
        Some(WidgetStatus {
            ready: true,
            replicas: 1
        })
    );
    let ignored = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": false}})),
        )
        .await
        .unwrap();
    assert!(
        ignored.status.unwrap().ready,
        "the main endpoint ignores status"
    );
}

#[tokio::test]
async fn cel_rule_rejects_with_its_message() {
    let api = widgets("cel").await;
    let err = api
        .create(&PostParams::default(), &widget("big", 11, "red"))
        .await
        .unwrap_err();
    assert!(err.is_invalid(), "{err}");
    let message = err.status().unwrap().message.clone().unwrap_or_default();
    assert!(message.contains("size must be at most 10"), "{message}");
    api.create(&PostParams::default(), &widget("ok", 10, "red"))
        .await
        .unwrap();
}

#[tokio::test]
async fn printer_columns_in_table_output() {
    let api = widgets("table").await;
    api.create(&PostParams::default(), &widget("t", 7, "green"))
        .await
        .unwrap();
    let path = format!(
        "/apis/crd.derive.test/v1/namespaces/{}/widgets",
        api.namespace().unwrap()
    );
    let req = http::Request::get(path)
        .header(
            http::header::ACCEPT,
            "application/json;as=Table;g=meta.k8s.io;v=v1",
        )
        .body(Vec::new())
        .unwrap();
    let table: Value = api.client().request(req).await.unwrap();
    assert_eq!(table["kind"], "Table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns[..3], ["Name", "Size", "Ready"]);
    let cells = &table["rows"][0]["cells"];
    assert_eq!((&cells[0], &cells[1]), (&json!("t"), &json!(7)));
}

#[tokio::test]
async fn scale_subresource() {
    let api = widgets("scale").await;
    api.create(&PostParams::default(), &widget("s", 1, "red"))
        .await
        .unwrap();
    let scale = api.get_scale("s").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(1));
    let scaled = api
        .patch_scale(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(3));
    assert_eq!(api.get("s").await.unwrap().spec.replicas, 3);
}

#[tokio::test]
async fn selectable_field() {
    let api = widgets("select").await;
    for (name, color) in [("a", "red"), ("b", "blue"), ("c", "red")] {
        api.create(&PostParams::default(), &widget(name, 1, color))
            .await
            .unwrap();
    }
    let red = api
        .list(&ListParams::default().fields("spec.color=red"))
        .await
        .unwrap();
    let mut names: Vec<String> = red.items.iter().map(|w| w.name_any().to_string()).collect();
    names.sort();
    assert_eq!(names, ["a", "c"]);
}

#[tokio::test]
async fn reflector_sees_create_and_delete() {
    let api = widgets("reflector").await;
    let mut rf = Reflector::new(api.clone());
    rf.poll().await.unwrap();
    assert!(rf.read().is_empty());
    rf.events();

    api.create(&PostParams::default(), &widget("r", 2, "red"))
        .await
        .unwrap();
    wait_for(
        &mut rf,
        |e| matches!(e, WatchEvent::Added(w) if w.name_any() == "r"),
    )
    .await;
    assert_eq!(rf.read()[0].spec.size, 2);

    api.delete("r", &DeleteParams::default()).await.unwrap();
    wait_for(
        &mut rf,
        |e| matches!(e, WatchEvent::Deleted(w) if w.name_any() == "r"),
    )
    .await;
    assert!(rf.read().is_empty());
}

async fn wait_for(rf: &mut Reflector<Widget>, wanted: impl Fn(&WatchEvent<Widget>) -> bool) {
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            rf.poll().await.unwrap();
            if rf.events().iter().any(&wanted) {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "the reflector saw no such event in 30 s");
}

#[tokio::test]
async fn every_schema_shape_is_accepted_and_round_trips() {
    common::install(Shapes::crd()).await;
    let api: Api<Shapes> = Api::namespaced(common::client(), &common::namespace("shapes").await);
    let spec = ShapesSpec {
        replicas: 1,
        inner: Inner {
            name: "i".into(),
            note: None,
        },
        opt_inner: None,
        mode: Mode::Fast,
        opt_mode: None,
        plain: None,
        backend: Some(Backend::Disk {
            path: "/d".into(),
            size: 3,
        }),
        source: Source::Git {
            url: "https://example.com/r.git".into(),
        },
        mixed: Some(Mixed::Something(4)),
        port: Port::Name("http".into()),
        target: IntOrString::Int(8080),
        tags: ["a".to_string(), "b".to_string()].into(),
        labels: [("k".to_string(), "v".to_string())].into(),
        any: Some(json!({"free": ["form", 1]})),
        config: [("nested".to_string(), json!({"x": [1, 2]}))].into(),
        name: "n".into(),
        tree: None,
        pair: (1, "one".into()),
    };
    let created = api
        .create(&PostParams::default(), &Shapes::new("s", spec.clone()))
        .await
        .unwrap();
    assert_eq!(created.spec, spec, "nothing was pruned or changed");

    let mut other = spec.clone();
    other.mixed = Some(Mixed::Nothing);
    other.opt_mode = Some(Mode::Slow);
    other.port = Port::Number(80);
    other.backend = Some(Backend::S3 { bucket: "b".into() });
    other.source = Source::Image("img".into());
    let created = api
        .create(&PostParams::default(), &Shapes::new("t", other.clone()))
        .await
        .unwrap();
    assert_eq!(created.spec, other);

    let with_status = api
        .patch_status(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"seen": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(with_status.status, Some(ShapesStatus { seen: Some(9) }));

    // The spec's CEL rule and the field's are both enforced.
    let mut invalid = spec;
    invalid.replicas = -1;
    invalid.name = String::new();
    let err = api
        .create(&PostParams::default(), &Shapes::new("u", invalid))
        .await
        .unwrap_err();
    assert!(err.is_invalid(), "{err}");
    let message = err.status().unwrap().message.clone().unwrap_or_default();
    assert!(message.contains("self.replicas >= 0"), "{message}");
    assert!(message.contains("empty"), "{message}");
}

mod gadget_v1 {
    use super::*;

    /// Version 1.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
    #[kube(group = "crd.derive.test", version = "v1", kind = "Gadget", namespaced)]
    pub struct GadgetSpec {
        pub name: String,
    }
}

mod gadget_v2 {
    use super::*;

    /// Version 2: one more field.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
    #[kube(group = "crd.derive.test", version = "v2", kind = "Gadget", namespaced)]
    pub struct GadgetSpec {
        pub name: String,
        pub color: Option<String>,
    }
}

#[tokio::test]
async fn merged_versions_are_served_side_by_side() {
    let merged = kube_client::crd::merge_crds(
        vec![gadget_v1::Gadget::crd(), gadget_v2::Gadget::crd()],
        "v2",
    )
    .unwrap();
    let installed = common::install(merged).await;
    let stored = installed
        .status
        .unwrap()
        .stored_versions
        .unwrap_or_default();
    assert_eq!(stored, ["v2"]);

    let ns = common::namespace("versions").await;
    let old: Api<gadget_v1::Gadget> = Api::namespaced(common::client(), &ns);
    let new: Api<gadget_v2::Gadget> = Api::namespaced(common::client(), &ns);
    let spec = gadget_v1::GadgetSpec { name: "g".into() };
    old.create(&PostParams::default(), &gadget_v1::Gadget::new("g", spec))
        .await
        .unwrap();
    let read = new.get("g").await.unwrap();
    assert_eq!((read.spec.name.as_str(), read.spec.color), ("g", None));
    let patch = Patch::Merge(json!({"spec": {"color": "red"}}));
    let patched = new
        .patch("g", &PatchParams::default(), &patch)
        .await
        .unwrap();
    assert_eq!(patched.spec.color.as_deref(), Some("red"));
    // The v1 endpoint serves the same object as v1; a v2 body is not a v1
    // Gadget (typed reads check apiVersion).
    assert_eq!(old.get("g").await.unwrap().spec.name, "g");
    let as_v1 =
        serde_json::from_value::<gadget_v1::Gadget>(serde_json::to_value(&patched).unwrap());
    assert!(
        as_v1
            .unwrap_err()
            .to_string()
            .contains("expected `crd.derive.test/v1`")
    );
}
