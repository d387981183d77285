//! Hostile input against the real API server (issue 12): names and
//! namespaces that would change which URL is addressed, and errors that
//! must not carry a Secret's data.

mod common;

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_client::params::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube_client::{Api, ApiResource, DynamicObject, Error, ResourceExt, Scope};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..ConfigMap::default()
    }
}

/// Names kube-apiserver could never address as one object: refused by the
/// client before anything is sent.
const REFUSED: [&str; 11] = [
    ".", "..", "", "a/b", "/", "%2e%2e", "..%2f", "%2e", "../..", "./x", "x/..",
];

/// Names that are not valid object names but can be sent, percent-encoded,
/// as one path segment: the server looks up exactly that name (and finds
/// nothing).
const ENCODED: [&str; 9] = [
    "x?y",
    "x#y",
    " ",
    "?",
    "#",
    "..;",
    "?labelSelector=k",
    "..\\",
    "名前",
];

fn assert_refused<T: std::fmt::Debug>(what: &str, name: &str, op: &str, r: kube_client::Result<T>) {
    match r {
        Err(Error::InvalidPathSegment { what: w, .. }) => assert_eq!(w, what, "{op} {name:?}"),
        other => panic!("{op} {name:?}: expected an invalid {what}, got {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(name: &str, op: &str, r: kube_client::Result<T>) {
    match r {
        Err(e) if e.is_not_found() => {}
        other => panic!("{op} {name:?}: expected 404 for exactly that name, got {other:?}"),
    }
}

/// Every ConfigMap of `ns`, name → data; and the Namespace's labels.
async fn state(
    ns: &str,
) -> (
    BTreeMap<String, BTreeMap<String, String>>,
    BTreeMap<String, String>,
) {
    let api: Api<ConfigMap> = Api::namespaced(common::client(), ns);
    let cms = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| (c.name_any().to_string(), c.data.unwrap_or_default()))
        .collect();
    let namespace = Api::<Namespace>::all(common::client())
        .get(ns)
        .await
        .unwrap();
    (cms, namespace.metadata.labels.unwrap_or_default())
}

#[tokio::test]
async fn hostile_object_names_never_address_another_object() {
    let ns = common::namespace("hostile-names").await;
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    for name in ["keep-1", "keep-2"] {
        api.create(&PostParams::default(), &cm(name)).await.unwrap();
    }
    let before = state(&ns).await;
    assert!(
        before.0.contains_key("keep-1") && before.0.contains_key("keep-2"),
        "{before:?}"
    );

    let label = Patch::Merge(json!({"metadata": {"labels": {"hijacked": "yes"}}}));
    let pp = PatchParams::default();
    for name in REFUSED {
        assert_refused("name", name, "get", api.get(name).await);
        assert_refused(
            "name",
            name,
            "delete",
            api.delete(name, &DeleteParams::default()).await,
        );
        assert_refused("name", name, "patch", api.patch(name, &pp, &label).await);
        assert_refused(
            "name",
            name,
            "replace",
            api.replace(name, &PostParams::default(), &cm("keep-1"))
                .await,
        );
        assert_refused("name", name, "get_status", api.get_status(name).await);
        assert_refused(
            "name",
            name,
            "patch_status",
            api.patch_status(name, &pp, &label).await,
        );
    }
    for name in ENCODED {
        assert_not_found(name, "get", api.get(name).await);
        assert_not_found(
            name,
            "delete",
            api.delete(name, &DeleteParams::default()).await,
        );
        assert_not_found(name, "patch", api.patch(name, &pp, &label).await);
        match api.replace(name, &PostParams::default(), &cm(name)).await {
            Err(Error::Api { status, .. }) => {
                assert!(
                    matches!(status.code, Some(400 | 404 | 422)),
                    "replace {name:?}: {status:?}"
                )
            }
            other => panic!("replace {name:?}: expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(state(&ns).await, before, "nothing was deleted or changed");
}

#[tokio::test]
async fn hostile_namespaces_and_plurals_are_refused_before_sending() {
    let ns = common::namespace("hostile-ns").await;
    let api: Api<ConfigMap> = Api::namespaced(common::client(), &ns);
    api.create(&PostParams::default(), &cm("keep"))
        .await
        .unwrap();
    let before = state(&ns).await;

    for bad in ["..", ".", "", "a/b", "%2e%2e", "x?y/.."] {
        let api: Api<ConfigMap> = Api::namespaced(common::client(), bad);
        assert_refused(
            "namespace",
            bad,
            "list",
            api.list(&ListParams::default()).await,
        );
        assert_refused("namespace", bad, "get", api.get("keep").await);
        assert_refused(
            "namespace",
            bad,
            "delete_collection",
            api.delete_collection(&DeleteParams::default(), &ListParams::default())
                .await,
        );
        assert_refused(
            "namespace",
            bad,
            "create",
            api.create(&PostParams::default(), &cm("new")).await,
        );
        assert_refused(
            "namespace",
            bad,
            "watch",
            api.watch(&Default::default(), "").await.map(|_| ()),
        );
    }
    // A namespace that is only odd is sent encoded and addresses nothing.
    let odd: Api<ConfigMap> = Api::namespaced(common::client(), "x?y");
    assert!(
        odd.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    for plural in ["..", ".", "a/b", "%2e"] {
        let ar = ApiResource::new("", "v1", "ConfigMap", plural, Scope::Namespaced);
        let api: Api<DynamicObject> = Api::namespaced_with(common::client(), &ns, &ar);
        assert_refused(
            "plural",
            plural,
            "list",
            api.list(&ListParams::default()).await,
        );
    }
    let ar = ApiResource::new("..", "v1", "ConfigMap", "configmaps", Scope::Namespaced);
    let api: Api<DynamicObject> = Api::namespaced_with(common::client(), &ns, &ar);
    assert_refused(
        "group",
        "..",
        "list",
        api.list(&ListParams::default()).await,
    );
    let ar = ApiResource::new("", "..", "ConfigMap", "configmaps", Scope::Namespaced);
    let api: Api<DynamicObject> = Api::namespaced_with(common::client(), &ns, &ar);
    assert_refused(
        "version",
        "..",
        "list",
        api.list(&ListParams::default()).await,
    );

    assert_eq!(state(&ns).await, before);
}

/// A type a Secret does not decode into: its values are strings, this
/// wants numbers — so serde's error would quote a value.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
struct SecretAsNumbers {
    metadata: ObjectMeta,
    data: BTreeMap<String, u64>,
}

impl kube_client::Resource for SecretAsNumbers {
    type DynamicType = ();
    fn api_resource(_: &()) -> std::borrow::Cow<'_, ApiResource> {
        std::borrow::Cow::Owned(ApiResource::of::<Secret>())
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// A request built by hand for `Client::request` is checked when it is
/// sent: a path that would address another object than it names is
/// refused, the cluster unchanged; the same request built right succeeds.
#[tokio::test]
async fn hand_built_paths_that_address_something_else_are_refused() {
    let ns = common::namespace("hostile-path").await;
    let client = common::client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &cm("keep"))
        .await
        .unwrap();
    let before = state(&ns).await;
    let delete = |path: String| {
        http::Request::delete(path)
            .body(Vec::new())
            .expect("a request")
    };
    for path in [
        format!("/api/v1/namespaces/{ns}/configmaps/keep/.."),
        format!("/api/v1/namespaces/{ns}/configmaps/keep/%2e%2E"),
        format!("/api/v1/namespaces/{ns}/configmaps/x/../keep"),
        format!("/api/v1/namespaces/{ns}/configmaps//keep"),
        format!("/api/v1/namespaces/{ns}%2Fconfigmaps/keep"),
        format!("https://127.0.0.1:1/api/v1/namespaces/{ns}/configmaps/keep"),
    ] {
        match client
            .request::<serde_json::Value>(delete(path.clone()))
            .await
        {
            Err(Error::InvalidPathSegment { what: "path", .. }) => {}
            other => panic!("{path}: expected the path refused, got {other:?}"),
        }
    }
    assert_eq!(state(&ns).await, before, "nothing was deleted");
    let deleted: serde_json::Value = client
        .request(delete(format!("/api/v1/namespaces/{ns}/configmaps/keep")))
        .await
        .unwrap();
    assert_eq!(deleted["details"]["name"], "keep", "{deleted}");
    assert!(state(&ns).await.0.is_empty());
}

#[tokio::test]
async fn decoding_errors_never_carry_a_secrets_data() {
    use base64::Engine;
    let ns = common::namespace("secret-errors").await;
    let plain = "s3cr3t-hunter2-value";
    let encoded = base64::engine::general_purpose::STANDARD.encode(plain);
    let secrets: Api<Secret> = Api::namespaced(common::client(), &ns);
    secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some("db".into()),
                    ..ObjectMeta::default()
                },
                string_data: Some(BTreeMap::from([("password".into(), plain.into())])),
                ..Secret::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        secrets.get("db").await.unwrap().data.unwrap()["password"].0,
        plain.as_bytes()
    );

    let wrong: Api<SecretAsNumbers> = Api::namespaced(common::client(), &ns);
    let mut errors = vec![
        wrong.get("db").await.unwrap_err(),
        wrong.list(&ListParams::default()).await.unwrap_err(),
    ];
    let mut events = Box::pin(wrong.watch(&Default::default(), "0").await.unwrap());
    match tokio::time::timeout(std::time::Duration::from_secs(20), events.next()).await {
        Ok(Some(Err(e))) => errors.push(e),
        other => panic!("expected a decode error for the watch event, got {other:?}"),
    }
    for e in &errors {
        assert!(matches!(e, Error::Decode { .. }), "{e:?}");
        let shown = format!("{e}\n{e:?}");
        for leaked in [plain, encoded.as_str(), "hunter2"] {
            assert!(!shown.contains(leaked), "{leaked} in: {shown}");
        }
        assert!(
            shown.contains("does not match the expected type"),
            "{shown}"
        );
    }
}
