//! encode → decode gives back the value, for generated values of a few rich
//! types (maps, bytes, IntOrString, Quantity, MicroTime, nested messages)
//! and for a CRD whose schema uses every JSONSchemaProps union.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServicePort, ServiceSpec};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube_protobuf::Message;
use proptest::prelude::*;

/// Non-empty text: an empty `omitempty` string decodes to None, as in JSON.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9.\\-_/ üñ✓]{1,24}"
}

fn map() -> impl Strategy<Value = Option<BTreeMap<String, String>>> {
    proptest::option::of(proptest::collection::btree_map(text(), "[ -~]{0,40}", 1..6))
}

fn meta() -> impl Strategy<Value = ObjectMeta> {
    (
        proptest::option::of(text()),
        proptest::option::of(text()),
        map(),
        map(),
        proptest::option::of(1i64..1 << 40),
    )
        .prop_map(
            |(name, namespace, labels, annotations, generation)| ObjectMeta {
                name,
                namespace,
                labels,
                annotations,
                generation,
                ..Default::default()
            },
        )
}

fn config_map() -> impl Strategy<Value = ConfigMap> {
    let binary = proptest::option::of(proptest::collection::btree_map(
        text(),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(ByteString),
        1..4,
    ));
    (meta(), map(), binary, proptest::option::of(Just(true))).prop_map(
        |(metadata, data, binary_data, immutable)| ConfigMap {
            metadata,
            data,
            binary_data,
            immutable,
        },
    )
}

fn service() -> impl Strategy<Value = Service> {
    let target = prop_oneof![
        any::<i32>().prop_map(IntOrString::Int),
        text().prop_map(IntOrString::String)
    ];
    let port = (
        proptest::option::of(text()),
        1..65535i32,
        proptest::option::of(target),
        proptest::option::of(1..32767i32),
    )
        .prop_map(|(name, port, target_port, node_port)| ServicePort {
            name,
            port,
            target_port,
            node_port,
            ..Default::default()
        });
    (meta(), proptest::collection::vec(port, 1..4), map()).prop_map(
        |(metadata, ports, selector)| Service {
            metadata,
            spec: Some(ServiceSpec {
                ports: Some(ports),
                selector,
                ..Default::default()
            }),
            status: None,
        },
    )
}

fn lease() -> impl Strategy<Value = Lease> {
    let time = (0i64..4_000_000_000, 0i32..1_000_000_000)
        .prop_map(|(s, n)| MicroTime(Timestamp::new(s, n).unwrap()));
    (
        meta(),
        proptest::option::of(text()),
        proptest::option::of(1..3600i32),
        proptest::option::of(time),
    )
        .prop_map(
            |(metadata, holder_identity, lease_duration_seconds, renew_time)| Lease {
                metadata,
                spec: Some(LeaseSpec {
                    holder_identity,
                    lease_duration_seconds,
                    renew_time,
                    ..Default::default()
                }),
            },
        )
}

proptest! {
    #[test]
    fn config_maps_round_trip(value in config_map()) {
        prop_assert_eq!(ConfigMap::decode(&value.encode()).unwrap(), value);
    }

    #[test]
    fn services_round_trip(value in service()) {
        prop_assert_eq!(Service::decode(&value.encode()).unwrap(), value);
    }

    #[test]
    fn leases_round_trip(value in lease()) {
        prop_assert_eq!(Lease::decode(&value.encode()).unwrap(), value);
    }
}

#[test]
fn a_crd_with_every_schema_union_round_trips() {
    let crd: CustomResourceDefinition = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "things.example.com"},
        "spec": {"group": "example.com", "scope": "Cluster",
            "names": {"plural": "things", "kind": "Thing"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "a": {"type": "object", "additionalProperties": {"type": "integer", "format": "int64"}},
                        "b": {"type": "array", "items": {"type": "string", "enum": ["x", "y"]}},
                        "c": {"type": "array", "items": [{"type": "string"}, {"type": "number"}]},
                        "d": {"type": "number", "minimum": -1.5, "maximum": 1e300, "default": 0.25},
                        "e": {"not": {"type": "string"}, "example": {"k": [1, "two", null]}},
                        "f": {"x-kubernetes-int-or-string": true, "x-kubernetes-validations": [
                            {"rule": "self != 0", "messageExpression": "'bad'", "reason": "FieldValueInvalid"}]}
                    },
                    "dependencies": {"a": ["b"], "c": {"required": ["d"]}}
                }}
            }]
        }
    }))
    .unwrap();
    assert_eq!(
        CustomResourceDefinition::decode(&crd.encode()).unwrap(),
        crd
    );
}
