//! Malformed and hostile protobuf input gives a typed `DecodeError` naming
//! the message type, field and byte offset — never a panic, never the
//! input's bytes in the message.

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube_protobuf::{
    DecodeErrorKind, Message, WireType, decode_list, decode_watch_event, open_envelope,
};
use proptest::prelude::*;

/// A length-delimited field: key, length, bytes.
fn len_field(field: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = varint(u64::from(field) << 3 | 2);
    out.extend(varint(bytes.len() as u64));
    out.extend_from_slice(bytes);
    out
}

fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
    out
}

fn rich_pod() -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"},
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "managedFields": [{"manager": "m", "operation": "Apply", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {"f:a": {}}}}}]},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}],
            "resources": {"limits": {"cpu": "1"}},
            "livenessProbe": {"httpGet": {"port": "http", "path": "/"}}}]},
        "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}]}
    }))
    .unwrap()
}

#[test]
fn every_truncation_of_a_pod_is_an_error_or_a_prefix_of_fields() {
    let bytes = rich_pod().encode();
    for cut in 0..bytes.len() {
        // A cut at a top-level field boundary is a valid (shorter) Pod; any
        // other cut must be an error, and none may panic.
        if let Err(e) = Pod::decode(&bytes[..cut]) {
            assert!(
                e.offset() <= cut,
                "offset {} beyond the input of {cut} bytes",
                e.offset()
            );
            assert!(e.message_type().is_some(), "{e}");
        }
    }
    assert_eq!(Pod::decode(&bytes).unwrap(), rich_pod());
}

#[test]
fn a_cut_inside_a_nested_message_names_it() {
    let bytes = rich_pod().encode();
    // field 1 (metadata) comes first: cut inside it
    let e = Pod::decode(&bytes[..bytes.len().min(10)]).unwrap_err();
    assert!(
        matches!(e.kind(), DecodeErrorKind::LengthOutOfBounds { .. }),
        "{e}"
    );
    assert_eq!(
        (e.message_type(), e.field()),
        (Some("k8s.io.api.core.v1.Pod"), 1)
    );
}

#[test]
fn an_overlong_varint_is_an_error() {
    let mut bytes = vec![0x20]; // ConfigMap.immutable: field 4, varint
    bytes.extend([0xff; 10]);
    bytes.push(0x01);
    let e = ConfigMap::decode(&bytes).unwrap_err();
    assert_eq!(e.kind(), &DecodeErrorKind::VarintOverflow);
    // a key that never ends
    let e = ConfigMap::decode(&[0x80; 12]).unwrap_err();
    assert_eq!(e.kind(), &DecodeErrorKind::VarintOverflow);
    assert_eq!(
        (e.message_type(), e.field(), e.offset()),
        (Some("k8s.io.api.core.v1.ConfigMap"), 0, 9)
    );
}

#[test]
fn a_huge_length_is_an_error_before_any_allocation() {
    let mut bytes = varint(1 << 3 | 2);
    bytes.extend(varint(1 << 40));
    bytes.extend_from_slice(b"abc");
    let e = ConfigMap::decode(&bytes).unwrap_err();
    assert_eq!(
        e.kind(),
        &DecodeErrorKind::LengthOutOfBounds {
            declared: 1 << 40,
            remaining: 3
        }
    );
    assert_eq!(
        (e.message_type(), e.field(), e.offset()),
        (Some("k8s.io.api.core.v1.ConfigMap"), 1, 1)
    );
    let list = decode_list::<ConfigMap>(&bytes).unwrap_err();
    assert!(matches!(
        list.kind(),
        DecodeErrorKind::LengthOutOfBounds { .. }
    ));
}

#[test]
fn nesting_beyond_the_limit_is_an_error() {
    // JSONSchemaProps.not (field 28) nested 150 deep
    let mut bytes = Vec::new();
    for _ in 0..150 {
        bytes = len_field(28, &bytes);
    }
    let e = JSONSchemaProps::decode(&bytes).unwrap_err();
    assert_eq!(e.kind(), &DecodeErrorKind::TooDeep);
    assert_eq!(
        e.message_type(),
        Some("k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps")
    );
    // 50 deep is fine
    let mut bytes = Vec::new();
    for _ in 0..50 {
        bytes = len_field(28, &bytes);
    }
    let mut schema = JSONSchemaProps::decode(&bytes).unwrap();
    let mut depth = 0;
    while let Some(not) = schema.not {
        schema = *not;
        depth += 1;
    }
    assert_eq!(depth, 50);
}

#[test]
fn a_wrong_wire_type_names_both() {
    // ConfigMap.metadata (field 1, a message) sent as a varint
    let e = ConfigMap::decode(&[0x08, 0x01]).unwrap_err();
    assert_eq!(
        e.kind(),
        &DecodeErrorKind::WrongWireType {
            expected: WireType::Len,
            found: WireType::Varint
        }
    );
    assert_eq!(e.field(), 1);
    // ConfigMap.immutable (field 4, bool) sent as bytes
    let e = ConfigMap::decode(&len_field(4, b"x")).unwrap_err();
    assert_eq!(
        e.kind(),
        &DecodeErrorKind::WrongWireType {
            expected: WireType::Varint,
            found: WireType::Len
        }
    );
}

#[test]
fn invalid_keys_and_groups_are_errors() {
    assert_eq!(
        ConfigMap::decode(&[0x00]).unwrap_err().kind(),
        &DecodeErrorKind::InvalidKey
    );
    assert_eq!(
        ConfigMap::decode(&[0x0e]).unwrap_err().kind(),
        &DecodeErrorKind::InvalidKey
    );
    assert_eq!(
        ConfigMap::decode(&[0x0b]).unwrap_err().kind(),
        &DecodeErrorKind::GroupUnsupported
    );
}

#[test]
fn unknown_fields_are_skipped() {
    let mut bytes = ConfigMap {
        immutable: Some(true),
        ..Default::default()
    }
    .encode();
    bytes.extend(len_field(99, b"from a newer server"));
    bytes.extend([0xa0, 0x06, 0x05]); // field 100, varint 5
    bytes.extend([0xa9, 0x06, 1, 2, 3, 4, 5, 6, 7, 8]); // field 101, fixed64
    bytes.extend([0xad, 0x06, 1, 2, 3, 4]); // field 101, fixed32
    assert_eq!(ConfigMap::decode(&bytes).unwrap().immutable, Some(true));
}

#[test]
fn invalid_utf8_and_invalid_json_never_show_the_bytes() {
    // Secret.stringData entry with a non-UTF-8 value: `hunter2` then an invalid byte
    let entry = [len_field(1, b"password"), len_field(2, b"hunter2\xff")].concat();
    let e = Secret::decode(&len_field(4, &entry)).unwrap_err();
    assert_eq!(e.kind(), &DecodeErrorKind::InvalidUtf8);
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
    // CRD schema `default` (a JSON in bytes) that is not JSON
    let schema = len_field(8, &len_field(1, b"{not json hunter2"));
    let e = JSONSchemaProps::decode(&schema).unwrap_err();
    assert_eq!(e.kind(), &DecodeErrorKind::InvalidJson);
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[test]
fn envelopes_are_checked() {
    let e = open_envelope(b"{\"kind\":\"Pod\"}").unwrap_err();
    assert_eq!(e.kind(), &DecodeErrorKind::MissingMagic);
    let sealed = kube_protobuf::seal_envelope("v1", "Pod", &rich_pod().encode());
    let envelope = open_envelope(&sealed).unwrap();
    assert_eq!((envelope.api_version, envelope.kind), ("v1", "Pod"));
    assert_eq!(Pod::decode(envelope.raw).unwrap(), rich_pod());
    // every truncation of an envelope: an error or a shorter envelope, never a panic
    for cut in 0..sealed.len() {
        let _ = open_envelope(&sealed[..cut]);
    }
    // Debug never shows the payload (it may be a Secret)
    let secret = kube_protobuf::seal_envelope("v1", "Secret", b"hunter2");
    let shown = format!("{:?}", open_envelope(&secret).unwrap());
    assert!(
        !shown.contains("104") && !shown.contains("hunter2") && shown.contains("<7 bytes>"),
        "{shown}"
    );
    let e = open_envelope(&sealed[..12]).unwrap_err();
    assert!(e.offset() <= 12 && e.message_type().is_some(), "{e}");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Pod::decode(&bytes);
        let _ = CustomResourceDefinition::decode(&bytes);
        let _ = decode_list::<Pod>(&bytes);
        let _ = decode_watch_event(&bytes);
        let _ = open_envelope(&[b"k8s\0".as_slice(), &bytes].concat());
    }

    #[test]
    fn mutated_pods_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = rich_pod().encode();
        for (index, value) in flips {
            let i = index.index(bytes.len());
            bytes[i] = value;
        }
        let _ = Pod::decode(&bytes);
    }
}

/// Found by `cargo xtask fuzz` (watch_protobuf): an enveloped watch frame
/// whose envelope has no `raw` field made the frame-relative offset
/// underflow (its empty slice does not point into the frame).
#[test]
fn an_enveloped_watch_frame_without_raw_is_not_a_panic() {
    for frame in [
        kube_protobuf::MAGIC.to_vec(),
        [
            kube_protobuf::MAGIC,
            &len_field(1, &len_field(2, b"ConfigMap")),
        ]
        .concat(),
    ] {
        let event = decode_watch_event(&frame).expect("an empty event, not an error");
        assert_eq!((event.event_type, event.object), ("", &[][..]));
    }
}
