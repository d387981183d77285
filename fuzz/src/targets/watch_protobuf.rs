//! Target `watch_protobuf`: the protobuf watch-stream decoder
//! ([`kube_client::watch::decode_protobuf_events_with_limit`]): 4-byte
//! big-endian length-prefixed frames, each a `WatchEvent` whose object is a
//! `k8s\0` envelope.
//!
//! Properties, for any body and any way of cutting it into chunks:
//! - the items follow a reference model of the framing alone: walking the
//!   whole body, each complete frame gives exactly one item — the event, or
//!   an [`Error::Decode`] naming the URL and describing the frame by its
//!   size — and that item is the one the frame gives on its own (frames are
//!   independent); a frame announced over the limit ends the stream with
//!   [`Error::TooLarge`]; bytes of an incomplete length or frame at the end
//!   give one [`Error::Transport`] "in the middle of a frame";
//! - so the result is identical whatever the chunking;
//! - no other error, no panic, no `Pending` on a ready stream, and no
//!   error shows a marked secret (the generator puts `SECRET` values in
//!   ConfigMap data and Status messages);
//! - a transport error after a prefix ends the stream right after the
//!   items of the frames complete before it.

use bytes::Bytes;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Status};
use kube_client::Error;
use kube_client::watch::{DEFAULT_MAX_EVENT_BYTES, WatchEvent, decode_protobuf_events_with_limit};
use proptest::prelude::*;

use super::{Target, assert_hidden};
use crate::mutate::{Rng, fnv1a};
use crate::targets::watch::drain;

const URL: &str = "https://127.0.0.1:6443/api/v1/configmaps?watch=true";

/// The target.
pub fn target() -> Target {
    Target {
        name: "watch_protobuf",
        about: "protobuf watch frames (length prefix, WatchEvent, envelope) under arbitrary chunking",
        check,
        strategy: || body().boxed(),
        dictionary: &[
            b"k8s\0",
            b"\x0a\x05ADDED",
            b"\x0a\x08MODIFIED",
            b"\x0a\x07DELETED",
            b"\x0a\x08BOOKMARK",
            b"\x0a\x05ERROR",
            b"\x0a\x02v1\x12\x09ConfigMap",
            b"\x0a\x02v1\x12\x06Status",
            b"\x00\x00\x00\x00",
            b"\x00\x00\x00\x10",
            b"\xff\xff\xff\xff",
        ],
    }
}

/// What the decoder yields for one item.
#[derive(Debug, PartialEq)]
enum Item {
    Event(Box<WatchEvent<ConfigMap>>),
    /// A frame that is not an event, by its length.
    BadFrame(usize),
    TooLarge,
    Cut,
    Transport,
}

fn decode(chunks: Vec<Result<Bytes, Error>>, limit: usize, secrets: &[String]) -> Vec<Item> {
    let stream = decode_protobuf_events_with_limit::<ConfigMap, _, _>(
        URL.to_owned(),
        futures::stream::iter(chunks),
        limit,
    )
    .expect("ConfigMap has a protobuf codec");
    drain(stream)
        .into_iter()
        .map(|item| match item {
            Ok(event) => Item::Event(Box::new(event)),
            Err(e) => {
                let text = e.to_string();
                assert_hidden(secrets, &text, "the error");
                assert_hidden(secrets, &format!("{e:?}"), "the error's Debug");
                assert!(
                    text.contains(URL),
                    "the error does not name the URL: {text}"
                );
                match e {
                    Error::Decode { body, .. } => {
                        let n: usize = body
                            .strip_prefix("a ")
                            .and_then(|b| {
                                b.strip_suffix("-byte application/vnd.kubernetes.protobuf body")
                            })
                            .and_then(|n| n.parse().ok())
                            .unwrap_or_else(|| {
                                panic!("a bad frame is not described by its size: {body:?}")
                            });
                        Item::BadFrame(n)
                    }
                    Error::TooLarge { what, limit: l, .. } => {
                        assert_eq!((what, l), ("watch event", limit));
                        Item::TooLarge
                    }
                    Error::Transport { message, .. }
                        if message.contains("in the middle of a frame") =>
                    {
                        Item::Cut
                    }
                    Error::Transport { message, .. } if message == "injected" => Item::Transport,
                    other => panic!("an untyped or unexpected error: {other:?}"),
                }
            }
        })
        .collect()
}

/// The framing model: the frames of `body` (each on its own) and how the
/// body ends.
fn model(body: &[u8], limit: usize, clean_end: bool, secrets: &[String]) -> Vec<Item> {
    let mut out = Vec::new();
    let mut at = 0;
    while body.len() - at >= 4 {
        let len = u32::from_be_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]) as usize;
        if len > limit {
            out.push(Item::TooLarge);
            return out;
        }
        if body.len() - at - 4 < len {
            break;
        }
        let frame = &body[at..at + 4 + len];
        let mut alone = decode(vec![Ok(Bytes::copy_from_slice(frame))], limit, secrets);
        assert_eq!(alone.len(), 1, "one frame, one item: {alone:?}");
        let item = alone.remove(0);
        match &item {
            Item::Event(_) => {}
            Item::BadFrame(n) => assert_eq!(*n, len, "the bad frame's size"),
            other => panic!("a complete frame gave {other:?}"),
        }
        out.push(item);
        at += 4 + len;
    }
    if clean_end && at < body.len() {
        out.push(Item::Cut);
    }
    out
}

/// Ways to cut `body` into chunks: derived from its hash, so reproducible.
fn chunkings(body: &[u8]) -> Vec<Vec<Bytes>> {
    let mut out = vec![vec![Bytes::copy_from_slice(body)]];
    if body.len() <= 1024 {
        out.push(body.iter().map(|&b| Bytes::copy_from_slice(&[b])).collect());
    }
    let mut rng = Rng::new(fnv1a(body));
    for round in 0..3 {
        let mut chunks = Vec::new();
        let mut at = 0;
        while at < body.len() {
            let max = if round == 0 { 5 } else { 1 + body.len() / 3 };
            let n = (1 + rng.below(max)).min(body.len() - at);
            chunks.push(Bytes::copy_from_slice(&body[at..at + n]));
            if rng.chance(1, 5) {
                chunks.push(Bytes::new());
            }
            at += n;
        }
        out.push(chunks);
    }
    out
}

/// The marked secret strings of `body` (runs of printable bytes with the marker).
fn secrets_in(body: &[u8]) -> Vec<String> {
    let runs = body
        .split(|b| !b.is_ascii_graphic())
        .filter_map(|run| std::str::from_utf8(run).ok());
    super::marked_secrets(runs)
}

/// Runs one input.
pub fn check(body: &[u8]) {
    let secrets = secrets_in(body);
    let small = 8 + (fnv1a(body) % 300) as usize;
    for limit in [DEFAULT_MAX_EVENT_BYTES, small] {
        let want = model(body, limit, true, &secrets);
        for chunks in chunkings(body) {
            let sizes: Vec<usize> = chunks.iter().map(Bytes::len).collect();
            let got = decode(chunks.into_iter().map(Ok).collect(), limit, &secrets);
            assert_eq!(got, want, "limit {limit}, chunking {sizes:?}");
        }
    }
    if !body.is_empty() {
        let cut = fnv1a(body) as usize % (body.len() + 1);
        let got = decode(
            vec![
                Ok(Bytes::copy_from_slice(&body[..cut])),
                Err(Error::Transport {
                    method: "GET".into(),
                    url: URL.into(),
                    message: "injected".into(),
                }),
                Ok(Bytes::copy_from_slice(&body[cut..])),
            ],
            DEFAULT_MAX_EVENT_BYTES,
            &secrets,
        );
        let mut want = model(&body[..cut], DEFAULT_MAX_EVENT_BYTES, false, &secrets);
        if want.last() != Some(&Item::TooLarge) {
            want.push(Item::Transport);
        }
        assert_eq!(got, want, "transport error at {cut}");
    }
}

// ---- generators --------------------------------------------------------

fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn bytes_field(number: u8, bytes: &[u8], out: &mut Vec<u8>) {
    out.push((number << 3) | 2);
    varint(bytes.len(), out);
    out.extend_from_slice(bytes);
}

fn envelope(kind: &str, raw: &[u8]) -> Vec<u8> {
    kube_protobuf::seal_envelope("v1", kind, raw)
}

fn config_map(name: String, rv: String, data: Vec<(String, String)>, end: bool) -> Vec<u8> {
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name),
            resource_version: Some(rv),
            annotations: end
                .then(|| [("k8s.io/initial-events-end".to_string(), "true".to_string())].into()),
            ..ObjectMeta::default()
        },
        data: (!data.is_empty()).then(|| data.into_iter().collect()),
        ..ConfigMap::default()
    };
    let codec = kube_protobuf::codec::<ConfigMap>().expect("ConfigMap has a protobuf codec");
    envelope("ConfigMap", &(codec.encode)(&cm))
}

fn status(code: i32, message: String) -> Vec<u8> {
    let status = Status {
        code: Some(code),
        message: Some(message),
        reason: Some("Expired".into()),
        status: Some("Failure".into()),
        ..Status::default()
    };
    envelope("Status", &kube_protobuf::Message::encode(&status))
}

/// A `WatchEvent` message.
fn event(event_type: &str, object: &[u8]) -> Vec<u8> {
    let mut raw_extension = Vec::new();
    bytes_field(1, object, &mut raw_extension);
    let mut out = Vec::new();
    bytes_field(1, event_type.as_bytes(), &mut out);
    bytes_field(2, &raw_extension, &mut out);
    out
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{1,12}",
        "\\PC{0,16}",
        Just("value-SECRET-hunter2".to_owned()),
        Just("ünïcødé ✓ 🚀".to_owned()),
    ]
}

fn message() -> impl Strategy<Value = Vec<u8>> {
    let object = (
        prop::sample::select(vec!["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]),
        "[a-z0-9-]{1,12}",
        "[0-9]{1,8}",
        prop::collection::vec(("[a-z]{1,6}", text()), 0..3),
        any::<bool>(),
    )
        .prop_map(|(t, name, rv, data, end)| event(t, &config_map(name, rv, data, end)));
    let error = (prop::sample::select(vec![410, 500, 0]), text())
        .prop_map(|(code, msg)| event("ERROR", &status(code, msg)));
    let odd = prop::sample::select(vec![
        event("SIDEWAYS", b"k8s\0"),
        event("ADDED", b"k8x\0\x0a\x00"),
        event("ADDED", b""),
        event("ERROR", &envelope("ConfigMap", b"")),
        vec![0xff, 0xff, 0xff, 0xff, 0x0f],
        vec![0x0a, 0x80],
        Vec::new(),
    ]);
    let garbage = prop::collection::vec(any::<u8>(), 0..24);
    prop_oneof![6 => object, 1 => error, 2 => odd, 1 => garbage]
}

/// A protobuf watch body: frames of events, errors and garbage, some with a
/// wrong length, maybe ending inside a frame.
pub fn body() -> impl Strategy<Value = Vec<u8>> {
    let frame = (message(), prop::bool::weighted(0.1), any::<u16>());
    (
        prop::collection::vec(frame, 0..6),
        any::<u16>(),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(frames, cut, truncate)| {
            let mut out = Vec::new();
            for (message, lie, by) in frames {
                let len = if lie {
                    message.len().wrapping_add(usize::from(by) % 64)
                } else {
                    message.len()
                };
                out.extend((len as u32).to_be_bytes());
                out.extend(message);
            }
            if truncate && !out.is_empty() {
                out.truncate(usize::from(cut) % out.len());
            }
            out
        })
}
