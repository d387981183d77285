//! Protobuf faults the real API server does not produce on demand, from a
//! scripted HTTP/1.1 server on 127.0.0.1: a watch cut inside a frame, a
//! frame announced over the limit, malformed frames, garbage after the
//! `k8s\0` magic, a wrong magic, a protobuf `Status` on an error, and a
//! server refusing protobuf bodies. Each is a typed error (or the JSON
//! fallback), never a panic or a hang: every test is bounded by `within`.
#![cfg(feature = "protobuf")]

mod common;

use std::time::Duration;

use common::scripted::*;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Status};
use kube_client::codec::PROTOBUF;
use kube_client::params::PostParams;
use kube_client::{Api, Client, Error, WatchEvent};

const WATCH_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

fn cm(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            resource_version: Some("7".into()),
            ..ObjectMeta::default()
        },
        data: Some([("k".to_string(), "hunter2-secret".to_string())].into()),
        ..ConfigMap::default()
    }
}

/// ConfigMap `name` in its envelope, as the server sends it.
fn cm_envelope(name: &str) -> Vec<u8> {
    let codec = kube_protobuf::codec::<ConfigMap>().expect("ConfigMap has a codec");
    kube_protobuf::seal_envelope("v1", "ConfigMap", &(codec.encode)(&cm(name)))
}

/// A protobuf varint.
fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A length-delimited protobuf field.
fn bytes_field(number: u8, bytes: &[u8], out: &mut Vec<u8>) {
    out.push(number << 3 | 2);
    varint(bytes.len(), out);
    out.extend_from_slice(bytes);
}

/// A watch frame: the 4-byte length, then a `meta.v1.WatchEvent` (type = 1,
/// object = 2, a `runtime.RawExtension` whose raw = 1 holds `object`).
fn frame(event_type: &str, object: &[u8]) -> Vec<u8> {
    let mut raw_extension = Vec::new();
    bytes_field(1, object, &mut raw_extension);
    let mut event = Vec::new();
    bytes_field(1, event_type.as_bytes(), &mut event);
    bytes_field(2, &raw_extension, &mut event);
    raw_frame(&event)
}

/// Any bytes behind a 4-byte length.
fn raw_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn watch_head() -> Step {
    Step::Write(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {WATCH_TYPE}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
    )
}

fn watch_api(server: &Server, max_event_bytes: usize) -> Api<ConfigMap> {
    let client = Client::builder(config(&server.url))
        .retry(fast_retries())
        .max_watch_event_bytes(max_event_bytes)
        .build()
        .unwrap();
    Api::namespaced(client, "default")
}

#[tokio::test]
async fn a_protobuf_watch_cut_inside_a_frame_ends_with_a_typed_error() {
    let second = frame("MODIFIED", &cm_envelope("b"));
    let server = Server::start(vec![vec![
        watch_head(),
        Step::Write(chunk(&frame("ADDED", &cm_envelope("a")))),
        Step::Write(chunk(&second[..second.len() - 5])),
        end_chunk(),
    ]])
    .await;
    within(20, async {
        let api = watch_api(&server, 1 << 20);
        let mut events = Box::pin(api.watch(&Default::default(), "").await.unwrap());
        assert!(
            server.hits()[0]
                .head
                .contains(&format!("accept: {PROTOBUF},application/json"))
        );
        expect_added(next(&mut events).await, "a");
        match next(&mut events).await {
            Some(Err(e @ Error::Transport { .. })) => {
                let text = e.to_string();
                assert!(text.contains("in the middle of a frame"), "{text}");
                assert!(text.contains(&server.url), "{text}");
            }
            other => panic!("expected the cut, got {other:?}"),
        }
        assert!(next(&mut events).await.is_none());
    })
    .await;
}

#[tokio::test]
async fn a_frame_over_the_limit_is_refused_without_being_read() {
    // The big frame's bytes never come: the refusal must not wait for them.
    let server = Server::start(vec![vec![
        watch_head(),
        Step::Write(chunk(&frame("ADDED", &cm_envelope("a")))),
        Step::Write(chunk(&(64u32 << 20).to_be_bytes())),
        Step::Sleep(Duration::from_secs(60)),
    ]])
    .await;
    within(20, async {
        let api = watch_api(&server, 4096);
        let mut events = Box::pin(api.watch(&Default::default(), "").await.unwrap());
        expect_added(next(&mut events).await, "a");
        match next(&mut events).await {
            Some(Err(Error::TooLarge {
                what: "watch event",
                limit: 4096,
                setting,
                ..
            })) => assert_eq!(setting, "ClientBuilder::max_watch_event_bytes"),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert!(next(&mut events).await.is_none());
    })
    .await;
}

#[tokio::test]
async fn malformed_frames_are_error_items_and_the_next_frame_decodes() {
    let mut wrong_magic = cm_envelope("x");
    wrong_magic[2] = b'X';
    let mut body = Vec::new();
    body.extend(raw_frame(b"\xff\xff\xff\xff hunter2-secret"));
    body.extend(frame("ADDED", &wrong_magic));
    body.extend(frame("ADDED", b"k8s\0\x0a\xff\xff hunter2-secret"));
    body.extend(frame("SIDEWAYS", &cm_envelope("x")));
    body.extend(frame("ADDED", &cm_envelope("after")));
    let server = Server::start(vec![vec![
        watch_head(),
        Step::Write(chunk(&body)),
        end_chunk(),
    ]])
    .await;
    within(20, async {
        let api = watch_api(&server, 1 << 20);
        let mut events = Box::pin(api.watch(&Default::default(), "").await.unwrap());
        for what in ["watch event", "envelope", "envelope", "unknown event type"] {
            match next(&mut events).await {
                Some(Err(e @ Error::Decode { .. })) => {
                    let text = e.to_string();
                    assert!(text.contains(what), "{what}: {text}");
                    assert!(text.contains(&server.url), "{text}");
                    assert!(!text.contains("hunter2"), "never quotes the frame: {text}");
                    assert!(!text.contains("SIDEWAYS"), "nor its type: {text}");
                }
                other => panic!("expected a decode error ({what}), got {other:?}"),
            }
        }
        expect_added(next(&mut events).await, "after");
        assert!(next(&mut events).await.is_none());
    })
    .await;
}

#[tokio::test]
async fn a_protobuf_error_event_and_bookmark_decode() {
    let status = Status {
        code: Some(410),
        reason: Some("Expired".into()),
        message: Some("too old resource version: 1 (5)".into()),
        status: Some("Failure".into()),
        ..Status::default()
    };
    let status_envelope = kube_protobuf::seal_envelope(
        "v1",
        "Status",
        &<Status as kube_protobuf::Message>::encode(&status),
    );
    let mut bookmark = ConfigMap::default();
    bookmark.metadata.resource_version = Some("99".into());
    bookmark.metadata.annotations =
        Some([("k8s.io/initial-events-end".to_string(), "true".to_string())].into());
    let codec = kube_protobuf::codec::<ConfigMap>().unwrap();
    let bookmark_envelope =
        kube_protobuf::seal_envelope("v1", "ConfigMap", &(codec.encode)(&bookmark));
    let mut body = frame("BOOKMARK", &bookmark_envelope);
    body.extend(frame("ERROR", &status_envelope));
    let server = Server::start(vec![vec![
        watch_head(),
        Step::Write(chunk(&body)),
        end_chunk(),
    ]])
    .await;
    within(20, async {
        let api = watch_api(&server, 1 << 20);
        let mut events = Box::pin(api.watch(&Default::default(), "").await.unwrap());
        match next(&mut events).await {
            Some(Ok(WatchEvent::Bookmark(b))) => {
                assert_eq!(b.metadata.resource_version, "99");
                assert!(b.is_initial_events_end());
            }
            other => panic!("expected the bookmark, got {other:?}"),
        }
        match next(&mut events).await {
            Some(Ok(WatchEvent::Error(s))) => assert_eq!(*s, status),
            other => panic!("expected the ERROR event, got {other:?}"),
        }
        assert!(next(&mut events).await.is_none());
    })
    .await;
}

#[tokio::test]
async fn garbage_after_the_magic_and_a_wrong_magic_are_typed_errors() {
    let mut wrong_magic = cm_envelope("x");
    wrong_magic[0] = b'K';
    let bodies: [(&str, Vec<u8>); 3] = [
        (
            "garbage after the magic",
            b"k8s\0\xff\xff\xff\xff hunter2-secret".to_vec(),
        ),
        ("a wrong magic", wrong_magic),
        ("too short for the magic", b"k8".to_vec()),
    ];
    for (case, body) in bodies {
        let server = Server::start(vec![vec![Step::Write(response(
            "200 OK",
            &[("Content-Type", PROTOBUF)],
            &body,
        ))]])
        .await;
        within(20, async {
            let api = server.api(fast_retries());
            match api.get("x").await {
                Err(e @ Error::Decode { .. }) => {
                    let text = e.to_string();
                    assert!(text.contains("protobuf envelope"), "{case}: {text}");
                    assert!(
                        text.contains(&format!("a {}-byte {PROTOBUF} body", body.len())),
                        "{case}: {text}"
                    );
                    assert!(!text.contains("hunter2"), "{case}: {text}");
                }
                other => panic!("{case}: expected a decode error, got {other:?}"),
            }
        })
        .await;
    }
}

#[tokio::test]
async fn a_protobuf_status_is_a_typed_error_and_a_broken_one_is_described() {
    let status = Status {
        code: Some(409),
        reason: Some("AlreadyExists".into()),
        message: Some("configmaps \"x\" already exists".into()),
        status: Some("Failure".into()),
        ..Status::default()
    };
    let envelope = kube_protobuf::seal_envelope(
        "v1",
        "Status",
        &<Status as kube_protobuf::Message>::encode(&status),
    );
    let server = Server::start(vec![
        vec![Step::Write(response(
            "409 Conflict",
            &[("Content-Type", PROTOBUF)],
            &envelope,
        ))],
        vec![Step::Write(response(
            "404 Not Found",
            &[("Content-Type", PROTOBUF)],
            b"k8s\0\xff hunter2-secret",
        ))],
    ])
    .await;
    within(20, async {
        let api = server.api(fast_retries());
        let e = api
            .create(&PostParams::default(), &cm("x"))
            .await
            .unwrap_err();
        assert!(e.is_already_exists(), "{e}");
        assert_eq!(e.status().unwrap().message, status.message);
        let e = api.get("x").await.unwrap_err();
        match &e {
            Error::HttpStatus {
                code: 404, body, ..
            } => {
                assert_eq!(body, &format!("a 20-byte {PROTOBUF} body"));
            }
            other => panic!("{other:?}"),
        }
        assert!(e.is_not_found());
        assert!(!e.to_string().contains("hunter2"));
    })
    .await;
}

#[tokio::test]
async fn a_server_refusing_protobuf_bodies_gets_json() {
    let refused = status_json(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format",
    );
    let server = Server::start(vec![
        reply(
            "415 Unsupported Media Type",
            &[("Content-Type", "application/json")],
            &refused,
        ),
        ok_cm(),
    ])
    .await;
    within(20, async {
        let api = server.api(fast_retries());
        let created = api.create(&PostParams::default(), &cm("x")).await.unwrap();
        assert_eq!(created.metadata.name.as_deref(), Some("x"));
        let hits = server.hits();
        assert_eq!(hits.len(), 2);
        assert!(
            hits[0].head.contains(&format!("content-type: {PROTOBUF}")),
            "{}",
            hits[0].head
        );
        assert!(
            hits[1].head.contains("content-type: application/json"),
            "{}",
            hits[1].head
        );
        // the client remembers: the next write to v1 is JSON at once, and
        // so is one through another Api on the same client
        api.replace("x", &PostParams::default(), &cm("x"))
            .await
            .unwrap();
        let other: Api<ConfigMap> = Api::namespaced(api.client().clone(), "other");
        other
            .create(&PostParams::default(), &cm("y"))
            .await
            .unwrap();
        let hits = server.hits();
        assert_eq!(hits.len(), 4, "no second refusal");
        for hit in &hits[2..] {
            assert!(
                hit.head.contains("content-type: application/json"),
                "{}",
                hit.head
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_client_with_protobuf_off_asks_only_for_json() {
    let server = Server::start(vec![ok_cm()]).await;
    within(20, async {
        let client = Client::builder(config(&server.url))
            .protobuf(false)
            .build()
            .unwrap();
        let api: Api<ConfigMap> = Api::namespaced(client, "default");
        api.create(&PostParams::default(), &cm("x")).await.unwrap();
        let head = &server.hits()[0].head;
        assert!(head.contains("accept: application/json\r\n"), "{head}");
        assert!(
            head.contains("content-type: application/json\r\n"),
            "{head}"
        );
    })
    .await;
}
