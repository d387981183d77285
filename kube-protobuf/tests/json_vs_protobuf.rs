//! Every built-in kind the real API server returns decodes to the same
//! k8s-openapi value from protobuf as from JSON.
//!
//! On a control plane with controllers and simulated nodes (so Pods, Nodes,
//! ReplicaSets, EndpointSlices, Events and Leases have real content), after
//! creating a few rich objects, the test walks discovery: for every listable
//! resource it lists all objects once as JSON and once as protobuf at the
//! same resourceVersion (`resourceVersionMatch=Exact`), decodes the first
//! with serde and the second with this crate's codec, and compares the
//! items. Kinds the server serves that have no codec fail the test unless
//! they are custom resources (JSON only) or have no k8s-openapi type.
//!
//! Normalisation: protobuf cannot tell an empty list or map from an absent
//! one; where the typed values differ only by that (checked by comparing
//! their JSON with empty arrays and objects removed), the items count as
//! equal and the kind is reported as "equal up to empty collections".

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::serde::de::DeserializeOwned;
use kube_client::params::PostParams;
use kube_client::{Api, Client};
use kube_testenv::TestEnv;
use serde_json::{Value, json};

fn env() -> &'static TestEnv {
    kube_testenv::shared_with_nodes().unwrap_or_else(|e| panic!("control plane with nodes: {e}"))
}

fn client() -> Client {
    let kc = kube_client::config::Kubeconfig::read_from(env().kubeconfig()).unwrap();
    let config = kube_client::config::Config::from_kubeconfig(&kc, &Default::default()).unwrap();
    Client::try_from(config).unwrap()
}

async fn get(client: &Client, path: &str, accept: &str) -> Vec<u8> {
    let req = http::Request::get(path)
        .header(http::header::ACCEPT, accept)
        .body(Vec::new())
        .unwrap();
    let resp = client
        .request_streaming(req)
        .await
        .unwrap_or_else(|e| panic!("GET {path} ({accept}): {e}"));
    resp.bytes()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .to_vec()
}

async fn get_json(client: &Client, path: &str) -> Value {
    serde_json::from_slice(&get(client, path, "application/json").await).unwrap()
}

/// Creates `manifest` with the typed Api of `K` (namespaced in `ns` when given).
async fn create<K>(client: &Client, ns: Option<&str>, manifest: Value)
where
    K: k8s_openapi::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>
        + DeserializeOwned
        + serde::Serialize
        + Clone
        + Send
        + Sync
        + std::fmt::Debug
        + 'static,
{
    let object: K = serde_json::from_value(manifest).unwrap();
    let api: Api<K> = Api::namespaced(client.clone(), ns.unwrap());
    api.create(&PostParams::default(), &object).await.unwrap();
}

/// POSTs the JSON `manifest` to `path`.
async fn post(client: &Client, path: &str, manifest: Value) {
    let req = http::Request::post(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&manifest).unwrap())
        .unwrap();
    match client.request::<Value>(req).await {
        Ok(_) => {}
        Err(e) if e.code() == Some(409) => {}
        Err(e) => panic!("POST {path}: {e}"),
    }
}

/// One object of many more kinds, so that few kinds are compared empty.
async fn create_more_objects(client: &Client, ns: &str) {
    let labels = json!({"app": "more"});
    let template = json!({"metadata": {"labels": labels}, "spec": {
        "containers": [{"name": "main", "image": "registry.example/app:1"}],
        "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]
    }});
    let n = |kind: &str| format!("/api/v1/namespaces/{ns}/{kind}");
    let a = |gv: &str, kind: &str| format!("/apis/{gv}/namespaces/{ns}/{kind}");
    post(client, &a("apps/v1", "statefulsets"), json!({"metadata": {"name": "db"}, "spec": {
        "replicas": 1, "serviceName": "db", "selector": {"matchLabels": labels}, "template": template,
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}}]}})).await;
    post(
        client,
        &a("apps/v1", "daemonsets"),
        json!({"metadata": {"name": "agent"}, "spec": {
        "selector": {"matchLabels": labels}, "template": template}}),
    )
    .await;
    post(
        client,
        &a("policy/v1", "poddisruptionbudgets"),
        json!({"metadata": {"name": "web"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "proto"}}}}),
    )
    .await;
    post(client, &a("networking.k8s.io/v1", "networkpolicies"), json!({"metadata": {"name": "deny"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [
            {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}], "ports": [{"port": 80}]}]}})).await;
    post(
        client,
        &a("autoscaling/v2", "horizontalpodautoscalers"),
        json!({"metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 5, "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}}),
    )
    .await;
    post(
        client,
        &n("limitranges"),
        json!({"metadata": {"name": "limits"}, "spec": {"limits": [
        {"type": "Container", "default": {"memory": "256Mi"}, "max": {"cpu": "2"}}]}}),
    )
    .await;
    post(
        client,
        &n("resourcequotas"),
        json!({"metadata": {"name": "quota"},
        "spec": {"hard": {"pods": "50", "requests.cpu": "10"}}}),
    )
    .await;
    post(
        client,
        &n("podtemplates"),
        json!({"metadata": {"name": "tpl"}, "template": template}),
    )
    .await;
    post(client, &n("replicationcontrollers"), json!({"metadata": {"name": "rc"},
        "spec": {"replicas": 0, "selector": {"rc": "x"}, "template": {"metadata": {"labels": {"rc": "x"}},
            "spec": {"containers": [{"name": "main", "image": "registry.example/app:1"}]}}}})).await;
    post(
        client,
        &n("serviceaccounts"),
        json!({"metadata": {"name": "robot"}, "automountServiceAccountToken": false}),
    )
    .await;
    post(
        client,
        "/api/v1/persistentvolumes",
        json!({"metadata": {"name": format!("{ns}-pv")},
        "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": "/tmp/pv"}}}),
    )
    .await;
    post(client, "/apis/storage.k8s.io/v1/storageclasses", json!({"metadata": {"name": format!("{ns}-fast")},
        "provisioner": "example.com/fast", "parameters": {"type": "ssd"}, "allowVolumeExpansion": true,
        "volumeBindingMode": "WaitForFirstConsumer"})).await;
    post(client, "/apis/storage.k8s.io/v1/csidrivers", json!({"metadata": {"name": format!("{ns}.csi.example.com")},
        "spec": {"attachRequired": false, "podInfoOnMount": true, "volumeLifecycleModes": ["Ephemeral"]}})).await;
    post(
        client,
        "/apis/networking.k8s.io/v1/ingressclasses",
        json!({"metadata": {"name": format!("{ns}-nginx")},
        "spec": {"controller": "example.com/ingress"}}),
    )
    .await;
    post(
        client,
        "/apis/node.k8s.io/v1/runtimeclasses",
        json!({"metadata": {"name": format!("{ns}-gvisor")},
        "handler": "runsc", "overhead": {"podFixed": {"memory": "16Mi"}}}),
    )
    .await;
    post(
        client,
        "/apis/scheduling.k8s.io/v1/priorityclasses",
        json!({"metadata": {"name": format!("{ns}-high")},
        "value": 1000, "description": "high", "preemptionPolicy": "Never"}),
    )
    .await;
    post(client, "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies", json!({
        "metadata": {"name": format!("{ns}-replicas")},
        "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"],
            "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]},
            "validations": [{"expression": "object.spec.replicas <= 100", "message": "too many"}]}})).await;
    post(
        client,
        "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings",
        json!({
        "metadata": {"name": format!("{ns}-replicas")},
        "spec": {"policyName": format!("{ns}-replicas"), "validationActions": ["Audit"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"none": "none"}}}}}),
    )
    .await;
    post(client, "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", json!({
        "metadata": {"name": format!("{ns}-hook")},
        "webhooks": [{"name": "check.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Ignore", "timeoutSeconds": 1,
            "clientConfig": {"url": "https://127.0.0.1:1/check", "caBundle": "AAECAwQ="},
            "namespaceSelector": {"matchLabels": {"none": "none"}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}]}]
    })).await;
}

async fn create_objects(client: &Client, ns: &str) {
    use k8s_openapi::api::{
        apps::v1 as apps, batch::v1 as batch, core::v1 as core, networking::v1 as net,
    };
    let labels = json!({"app": "proto", "tier": "backend"});
    create::<core::ConfigMap>(
        client,
        Some(ns),
        json!({
            "metadata": {"name": "rich", "labels": labels, "annotations": {"note": "ünïcode ✓"}},
            "data": {"a": "1", "empty": ""},
            "binaryData": {"bin": "AAEC/w=="}
        }),
    )
    .await;
    create::<core::Secret>(
        client,
        Some(ns),
        json!({
            "metadata": {"name": "rich"}, "type": "Opaque",
            "data": {"password": "c2VjcmV0"}, "stringData": {"user": "admin"}
        }),
    )
    .await;
    create::<core::Service>(
        client,
        Some(ns),
        json!({
            "metadata": {"name": "web"},
            "spec": {"selector": labels, "ports": [
                {"name": "http", "port": 80, "targetPort": "http"},
                {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"}
            ]}
        }),
    )
    .await;
    let pod_spec = json!({
        "containers": [{
            "name": "main", "image": "registry.example/app:1",
            "command": ["sleep", "infinity"], "env": [{"name": "A", "value": "b"},
                {"name": "FROM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "ports": [{"name": "http", "containerPort": 8080}],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
            "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false}
        }],
        "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
        "terminationGracePeriodSeconds": 0
    });
    create::<apps::Deployment>(client, Some(ns), json!({
        "metadata": {"name": "web", "labels": labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                 "template": {"metadata": {"labels": labels}, "spec": pod_spec}}
    })).await;
    create::<batch::Job>(client, Some(ns), json!({
        "metadata": {"name": "once"},
        "spec": {"backoffLimit": 2, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "registry.example/job:1", "command": ["true"]}],
            "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]
        }}}
    })).await;
    create::<batch::CronJob>(
        client,
        Some(ns),
        json!({
            "metadata": {"name": "nightly"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure",
                "containers": [{"name": "main", "image": "registry.example/job:1"}]
            }}}}}
        }),
    )
    .await;
    create::<net::Ingress>(client, Some(ns), json!({
        "metadata": {"name": "web"},
        "spec": {"rules": [{"host": "web.example", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"name": "http"}}}}
        ]}}]}
    })).await;
    create::<core::PersistentVolumeClaim>(
        client,
        Some(ns),
        json!({
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                     "resources": {"requests": {"storage": "1Gi"}}}
        }),
    )
    .await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "widgets.proto.kube.test"},
        "spec": {"group": "proto.kube.test", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
                        "mode": {"type": "string", "enum": ["a", "b"]},
                        "ratio": {"type": "number", "multipleOf": 0.5},
                        "port": {"x-kubernetes-int-or-string": true},
                        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                        "extra": {"type": "object", "additionalProperties": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "nested": {"type": "object", "properties": {"deeper": {"type": "object",
                            "properties": {"leaf": {"type": "boolean", "nullable": true}}}}}
                    },
                    "x-kubernetes-validations": [{"rule": "self.size <= 10", "message": "too big"}]},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }}}
            }]
        }
    }))
    .unwrap();
    match crds.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(e) if e.code() == Some(409) => {}
        Err(e) => panic!("create CRD: {e}"),
    }
}

/// What comparing one kind found.
#[derive(Debug, Default)]
struct Outcome {
    objects: usize,
    exact: bool,
}

/// Lists `path` as JSON and, at the same resourceVersion, as protobuf, and
/// compares the items decoded into `K`.
async fn compare<K>(client: &Client, path: &str) -> Result<Outcome, String>
where
    K: DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug + 'static,
{
    let codec = kube_protobuf::codec::<K>().ok_or("no codec")?;
    let json = get_json(client, path).await;
    // ComponentStatus lists are computed, not stored: no resourceVersion.
    let rv = json["metadata"]["resourceVersion"].as_str();
    let json_items: Vec<K> =
        serde_json::from_value(json["items"].clone()).map_err(|e| format!("JSON items: {e}"))?;
    let proto_path = match rv {
        Some(rv) => format!("{path}?resourceVersion={rv}&resourceVersionMatch=Exact"),
        None => path.to_string(),
    };
    let body = get(client, &proto_path, "application/vnd.kubernetes.protobuf").await;
    let envelope = kube_protobuf::open_envelope(&body).map_err(|e| format!("envelope: {e}"))?;
    if envelope.kind != format!("{}List", codec.kind) {
        return Err(format!(
            "envelope kind {} for a list of {}",
            envelope.kind, codec.kind
        ));
    }
    let (meta, mut proto_items) =
        (codec.decode_list)(envelope.raw).map_err(|e| format!("decode: {e}"))?;
    let mut json_items = json_items;
    if rv.is_none() {
        // computed lists (ComponentStatus) come in no fixed order
        let name = |item: &K| serde_json::to_value(item).unwrap()["metadata"]["name"].to_string();
        json_items.sort_by_key(name);
        proto_items.sort_by_key(name);
    }
    if meta.resource_version.as_deref() != rv {
        return Err(format!(
            "protobuf list at {:?}, JSON at {rv:?}",
            meta.resource_version
        ));
    }
    if json_items.len() != proto_items.len() {
        return Err(format!(
            "{} items as JSON, {} as protobuf",
            json_items.len(),
            proto_items.len()
        ));
    }
    let mut exact = true;
    for (j, p) in json_items.iter().zip(&proto_items) {
        if j == p {
            continue;
        }
        exact = false;
        let (mut jv, mut pv) = (
            serde_json::to_value(j).unwrap(),
            serde_json::to_value(p).unwrap(),
        );
        prune_empty(&mut jv);
        prune_empty(&mut pv);
        if jv != pv {
            return Err(format!("items differ: {}", first_difference(&jv, &pv, "")));
        }
    }
    // The codec's encoder gives back bytes that decode to the same items.
    for item in &proto_items {
        let again = (codec.decode)(&(codec.encode)(item)).map_err(|e| format!("re-decode: {e}"))?;
        if &again != item {
            return Err("encode → decode changed an item".into());
        }
    }
    Ok(Outcome {
        objects: json_items.len(),
        exact,
    })
}

/// Removes empty arrays and objects (and nulls) everywhere: what protobuf cannot tell from absent.
fn prune_empty(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for v in map.values_mut() {
                prune_empty(v);
            }
            map.retain(|_, v| !matches!(v, Value::Null) && v != &json!([]) && v != &json!({}));
        }
        Value::Array(items) => items.iter_mut().for_each(prune_empty),
        _ => {}
    }
}

fn first_difference(a: &Value, b: &Value, path: &str) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys()) {
                let (xa, ya) = (
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                );
                if xa != ya {
                    return first_difference(xa, ya, &format!("{path}.{key}"));
                }
            }
            format!("{path}: ?")
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (xa, ya)) in x.iter().zip(y).enumerate() {
                if xa != ya {
                    return first_difference(xa, ya, &format!("{path}[{i}]"));
                }
            }
            format!("{path}: ?")
        }
        _ => format!("{path}: JSON {a} vs protobuf {b}"),
    }
}

/// (apiVersion, kind) → compare::<K> for every kind with a codec.
type Comparer =
    for<'a> fn(
        &'a Client,
        &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Outcome, String>> + Send + 'a>>;

fn comparers() -> BTreeMap<(String, String), Comparer> {
    let mut table: BTreeMap<(String, String), Comparer> = BTreeMap::new();
    macro_rules! add {
        ($ty:ty) => {
            table.insert(
                (
                    <$ty as k8s_openapi::Resource>::API_VERSION.to_string(),
                    <$ty as k8s_openapi::Resource>::KIND.to_string(),
                ),
                |client, path| Box::pin(compare::<$ty>(client, path)),
            );
        };
    }
    kube_protobuf::for_each_kind!(add);
    table
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_built_in_kind_decodes_from_protobuf_as_from_json() {
    let client = client();
    let ns = env().namespace("protobuf").await.unwrap();
    create_objects(&client, &ns).await;
    create_more_objects(&client, &ns).await;
    // Let the controllers and nodes fill in ReplicaSets, Pods, EndpointSlices, Events.
    for _ in 0..60 {
        let pods = get_json(&client, &format!("/api/v1/namespaces/{ns}/pods")).await;
        let running = pods["items"].as_array().map_or(0, |items| {
            items
                .iter()
                .filter(|p| p["status"]["phase"] == "Running")
                .count()
        });
        if running >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let custom_groups: Vec<String> = get_json(
        &client,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    )
    .await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|crd| crd["spec"]["group"].as_str().unwrap().to_string())
        .collect();
    let mut group_versions = vec!["v1".to_string()];
    for group in get_json(&client, "/apis").await["groups"]
        .as_array()
        .unwrap()
    {
        for version in group["versions"].as_array().unwrap() {
            group_versions.push(version["groupVersion"].as_str().unwrap().to_string());
        }
    }

    let comparers = comparers();
    let (mut kinds, mut objects, mut exact, mut custom) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    let mut no_openapi_type = Vec::new();
    for gv in &group_versions {
        let base = if gv == "v1" {
            "/api/v1".to_string()
        } else {
            format!("/apis/{gv}")
        };
        let list = get_json(&client, &base).await;
        for resource in list["resources"].as_array().unwrap() {
            let name = resource["name"].as_str().unwrap();
            let kind = resource["kind"].as_str().unwrap();
            let listable = resource["verbs"]
                .as_array()
                .is_some_and(|v| v.iter().any(|v| v == "list"));
            if name.contains('/') || !listable {
                continue;
            }
            let group = gv.split_once('/').map_or("", |(g, _)| g);
            if custom_groups.iter().any(|g| g == group) {
                custom += 1;
                continue;
            }
            let Some(compare) = comparers.get(&(gv.clone(), kind.to_string())) else {
                no_openapi_type.push(format!("{gv} {kind}"));
                continue;
            };
            match compare(&client, &format!("{base}/{name}")).await {
                Ok(outcome) => {
                    kinds += 1;
                    objects += outcome.objects;
                    exact += usize::from(outcome.exact);
                    println!(
                        "{gv} {kind}: {} objects, {}",
                        outcome.objects,
                        if outcome.exact {
                            "equal"
                        } else {
                            "equal up to empty collections"
                        }
                    );
                }
                Err(e) => failures.push(format!("{gv} {kind}: {e}")),
            }
        }
    }
    println!(
        "compared {kinds} kinds ({exact} exactly equal), {objects} objects; \
         {custom} custom resource kinds skipped (JSON only); served without a k8s-openapi type: {no_openapi_type:?}"
    );
    assert!(
        failures.is_empty(),
        "{} kinds differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        no_openapi_type.is_empty(),
        "built-in kinds without a codec: {no_openapi_type:?}"
    );
    assert!(kinds >= 40, "only {kinds} kinds compared");
    assert!(objects >= 100, "only {objects} objects compared");
}

/// A protobuf watch stream is 4-byte big-endian length-prefixed frames, each
/// a WatchEvent whose object is the object's own envelope; an error answer
/// is a protobuf `Status`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_frames_and_status_decode_from_the_real_server() {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
    use kube_protobuf::Message;

    let client = client();
    let ns = env().namespace("protowatch").await.unwrap();
    let list = get_json(&client, &format!("/api/v1/namespaces/{ns}/configmaps")).await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let req = http::Request::get(format!(
        "/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"
    ))
    .header(http::header::ACCEPT, "application/vnd.kubernetes.protobuf;stream=watch")
    .body(Vec::new())
    .unwrap();
    let resp = client.request_streaming(req).await.unwrap();
    assert_eq!(
        resp.headers()[http::header::CONTENT_TYPE],
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    for name in ["one", "two"] {
        post(
            &client,
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            json!({"metadata": {"name": name}, "data": {"k": name}}),
        )
        .await;
    }
    let mut body = resp.bytes_stream();
    let mut buffer = Vec::new();
    let mut seen = Vec::new();
    let read = async {
        while seen.len() < 2 {
            let chunk = body.next().await.expect("stream ended").unwrap();
            buffer.extend_from_slice(&chunk);
            while buffer.len() >= 4 {
                let len = u32::from_be_bytes(buffer[..4].try_into().unwrap()) as usize;
                if buffer.len() < 4 + len {
                    break;
                }
                let frame: Vec<u8> = buffer.drain(..4 + len).skip(4).collect();
                // kube-apiserver 1.37 writes bare WatchEvents; their objects are enveloped
                assert!(!frame.starts_with(kube_protobuf::MAGIC));
                let event = kube_protobuf::decode_watch_event(&frame).unwrap();
                let object = kube_protobuf::open_envelope(event.object).unwrap();
                assert_eq!((object.api_version, object.kind), ("v1", "ConfigMap"));
                let codec = kube_protobuf::codec::<ConfigMap>().unwrap();
                let cm = (codec.decode)(object.raw).unwrap();
                seen.push((
                    event.event_type.to_string(),
                    cm.metadata.name.unwrap(),
                    cm.data.unwrap()["k"].clone(),
                ));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("two watch events within 30 s");
    assert_eq!(
        seen,
        [
            ("ADDED".into(), "one".into(), "one".into()),
            ("ADDED".into(), "two".into(), "two".into())
        ]
    );

    // Deleting a ConfigMap answers with a `Status` (Success), in protobuf when asked.
    let req = http::Request::delete(format!("/api/v1/namespaces/{ns}/configmaps/one"))
        .header(http::header::ACCEPT, "application/vnd.kubernetes.protobuf")
        .body(Vec::new())
        .unwrap();
    let body = client
        .request_streaming(req)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let envelope = kube_protobuf::open_envelope(&body).unwrap();
    assert_eq!((envelope.api_version, envelope.kind), ("v1", "Status"));
    let status = Status::decode(envelope.raw).unwrap();
    assert_eq!(status.status.as_deref(), Some("Success"));
    let details = status.details.unwrap();
    assert_eq!(
        (details.name.as_deref(), details.kind.as_deref()),
        (Some("one"), Some("configmaps"))
    );
}
