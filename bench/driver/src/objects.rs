//! The objects the benchmark seeds: ConfigMaps of ~1 KiB data and Pods with
//! a realistic spec, each different per index and the same in every run
//! (no randomness: the index seeds a xorshift), and the change the watch
//! phase makes to each kind.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

/// The name of ConfigMap `i`.
pub fn config_map_name(i: u64) -> String {
    format!("cm-{i:06}")
}

/// The name of Pod `i`.
pub fn pod_name(i: u64) -> String {
    format!("pod-{i:06}")
}

/// `len` characters of `[a-zA-Z0-9]`, a function of `state` (advanced).
fn text(state: &mut u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..len)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            ALPHABET[(*state % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

fn seed_state(i: u64) -> u64 {
    i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
}

/// ~1 KiB of data: eight keys of 120 characters, different per object;
/// the annotation `kube-bench/want: W` with `want`.
pub fn config_map(i: u64, want: Option<&str>, want_key: &str) -> ConfigMap {
    let mut state = seed_state(i);
    let data = (0..8)
        .map(|k| (format!("key-{k}"), text(&mut state, 120)))
        .collect();
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(config_map_name(i)),
            labels: Some([("app".to_string(), "kube-bench".to_string())].into()),
            annotations: want.map(|w| [(want_key.to_string(), w.to_string())].into()),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..ConfigMap::default()
    }
}

/// A Pod as a Deployment's would look: two containers (an app and a
/// sidecar) with env, resources, probes and volume mounts; labels,
/// annotations, tolerations and a node affinity; ~3.5 KiB of JSON as
/// created, more as the server returns it (defaults, managedFields,
/// status). No node runs it: it stays Pending.
pub fn pod(i: u64) -> Result<Pod> {
    let mut state = seed_state(i);
    let hash = text(&mut state, 10).to_lowercase();
    let env = |state: &mut u64, prefix: &str, n: usize| -> Vec<Value> {
        (0..n)
            .map(|k| json!({"name": format!("{prefix}_{k}"), "value": text(state, 40)}))
            .collect()
    };
    let probe = |path: &str, port: u16| {
        json!({
            "httpGet": {"path": path, "port": port, "scheme": "HTTP"},
            "initialDelaySeconds": 5, "periodSeconds": 10, "timeoutSeconds": 2,
            "successThreshold": 1, "failureThreshold": 3
        })
    };
    let app_env = env(&mut state, "APP_SETTING", 8);
    let sidecar_env = env(&mut state, "PROXY_SETTING", 3);
    let value = json!({
        "metadata": {
            "name": pod_name(i),
            "labels": {
                "app": "kube-bench",
                "app.kubernetes.io/name": "kube-bench-web",
                "app.kubernetes.io/instance": format!("web-{}", i % 50),
                "app.kubernetes.io/version": "1.27.3",
                "pod-template-hash": hash,
                "tier": "frontend"
            },
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090",
                "kube-bench/config-checksum": text(&mut state, 64),
                "kube-bench/owner": "team-web@example.invalid"
            }
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example.invalid/web/app:1.27.3",
                    "args": ["--listen=:8080", "--metrics=:9090", "--log-level=info"],
                    "ports": [
                        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}
                    ],
                    "env": app_env,
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "256Mi"},
                        "limits": {"cpu": "1", "memory": "512Mi"}
                    },
                    "livenessProbe": probe("/healthz", 8080),
                    "readinessProbe": probe("/ready", 8080),
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/app", "readOnly": true},
                        {"name": "cache", "mountPath": "/var/cache/app"}
                    ]
                },
                {
                    "name": "proxy",
                    "image": "registry.example.invalid/mesh/proxy:2.4.1",
                    "ports": [{"name": "proxy", "containerPort": 15001, "protocol": "TCP"}],
                    "env": sidecar_env,
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "64Mi"},
                        "limits": {"cpu": "200m", "memory": "128Mi"}
                    },
                    "readinessProbe": probe("/healthz/ready", 15021),
                    "volumeMounts": [{"name": "mesh-certs", "mountPath": "/etc/certs", "readOnly": true}]
                }
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": format!("web-config-{}", i % 50)}},
                {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "mesh-certs", "secret": {"secretName": "mesh-certs"}}
            ],
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}
            ],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                            {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.large", "m5.xlarge"]}
                        ]}]
                    }
                },
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [{
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "kube-bench-web"}},
                            "topologyKey": "kubernetes.io/hostname"
                        }
                    }]
                }
            },
            "terminationGracePeriodSeconds": 30,
            "automountServiceAccountToken": false
        }
    });
    serde_json::from_value(value).context("the benchmark's Pod does not fit k8s-openapi's Pod")
}

/// The merge patch of the watch phase's change `tag`: a value never used
/// before, so each is a real change (one MODIFIED event). ConfigMaps:
/// `data.rev`; Pods: the annotation `kube-bench/rev` (a Pod's spec is
/// mostly immutable).
pub fn change(pods: bool, tag: String) -> Value {
    if pods {
        json!({"metadata": {"annotations": {"kube-bench/rev": tag}}})
    } else {
        json!({"data": {"rev": tag}})
    }
}

/// Sizes in bytes of the JSON of `value`, for the report.
pub fn json_len<T: serde::Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(0, |v| v.len())
}
