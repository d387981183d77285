//! The protobuf half of negotiation: envelopes, objects, lists, `Status`
//! and watch frames, through `kube-protobuf`.
//!
//! A protobuf answer is an envelope: the magic `k8s\0`, then a
//! `runtime.Unknown` message naming the `apiVersion` and `kind` and holding
//! the object's own bytes. A watch is a stream of length-prefixed frames
//! (see [`crate::watch`]), each a `WatchEvent` message whose object is such
//! an envelope. Everything here turns a failure into an [`Error::Decode`]
//! naming the URL and what failed (the envelope, the object, the event),
//! described by size only: the bytes are never quoted.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube_protobuf::{Codec, Envelope, Message};
use serde::Serialize;

use super::{Answer, PROTOBUF};
use crate::client::ObjectOrStatus;
use crate::error::{Error, Result, describe_body};
use crate::object::ObjectList;
use crate::watch::{Bookmark, WatchEvent};

/// A decoding failure of `body` from `url`: `what` failed, `reason` says why.
fn failed(url: &str, what: &str, reason: impl std::fmt::Display, body: &[u8]) -> Error {
    Error::Decode {
        url: url.to_string(),
        message: format!("protobuf {what}: {reason}"),
        body: describe_body(body, Some(PROTOBUF)),
    }
}

/// Opens the envelope of `body`; its object must be raw protobuf (no
/// other content type or encoding inside).
fn open<'a>(url: &str, body: &'a [u8]) -> Result<Envelope<'a>> {
    let envelope =
        kube_protobuf::open_envelope(body).map_err(|e| failed(url, "envelope", e, body))?;
    let inner_type = envelope.content_type;
    if !(inner_type.is_empty() || inner_type.eq_ignore_ascii_case(PROTOBUF))
        || !envelope.content_encoding.is_empty()
    {
        return Err(failed(
            url,
            "envelope",
            "the object inside is not raw protobuf (it names a content type or encoding)",
            body,
        ));
    }
    Ok(envelope)
}

/// The `Status` in a protobuf error body, if it is one.
pub(super) fn status(body: &[u8]) -> Option<Status> {
    let envelope = open("", body).ok()?;
    if envelope.kind != "Status" {
        return None;
    }
    Status::decode(envelope.raw).ok()
}

/// `obj` as a protobuf request body: its message in an envelope naming
/// the codec's `apiVersion` and `kind`.
pub(super) fn body<K>(codec: &Codec<K>, obj: &K) -> Vec<u8> {
    let raw = (codec.encode)(obj);
    kube_protobuf::seal_envelope(codec.api_version, codec.kind, &raw)
}

/// The object an envelope holds.
pub(super) fn object_in<K>(codec: &Codec<K>, answer: &Answer, envelope: &Envelope) -> Result<K> {
    (codec.decode)(envelope.raw).map_err(|e| failed(&answer.url, "object", e, &answer.body))
}

/// The list an envelope holds.
pub(super) fn list_in<K>(
    codec: &Codec<K>,
    answer: &Answer,
    envelope: &Envelope,
) -> Result<ObjectList<K>> {
    let (metadata, items) = (codec.decode_list)(envelope.raw)
        .map_err(|e| failed(&answer.url, "list", e, &answer.body))?;
    Ok(ObjectList { metadata, items })
}

/// A function decoding what an envelope holds.
pub(super) type Inner<K, T> = fn(&Codec<K>, &Answer, &Envelope) -> Result<T>;

/// One object.
pub(super) fn object<K>(codec: &Codec<K>, answer: &Answer) -> Result<K> {
    object_in(codec, answer, &open(&answer.url, &answer.body)?)
}

/// One page of a list.
pub(super) fn list<K>(codec: &Codec<K>, answer: &Answer) -> Result<ObjectList<K>> {
    list_in(codec, answer, &open(&answer.url, &answer.body)?)
}

/// What `inner` decodes, or the `Status` the envelope holds instead.
pub(super) fn object_or_status<K, T>(
    codec: &Codec<K>,
    answer: &Answer,
    inner: Inner<K, T>,
) -> Result<ObjectOrStatus<T>> {
    let envelope = open(&answer.url, &answer.body)?;
    if envelope.kind == "Status" {
        let status = Status::decode(envelope.raw)
            .map_err(|e| failed(&answer.url, "Status", e, &answer.body))?;
        return Ok(ObjectOrStatus::Status(Box::new(status)));
    }
    inner(codec, answer, &envelope).map(ObjectOrStatus::Object)
}

/// The events of a protobuf watch: frames (see [`crate::watch`]) decoded
/// one by one. A frame that does not decode is an error item; the next
/// frame is read as usual, since the framing is intact.
pub(super) fn watch_events<K>(
    codec: &'static Codec<K>,
    url: String,
    chunks: futures::stream::BoxStream<'static, Result<Bytes>>,
    max_event_bytes: usize,
) -> impl Stream<Item = Result<WatchEvent<K>>> + Send + 'static
where
    K: Serialize + Send + 'static,
{
    crate::watch::frames(url.clone(), chunks, max_event_bytes)
        .map(move |frame| frame.and_then(|frame| event(codec, &url, &frame)))
}

/// One watch frame as an event.
fn event<K: Serialize>(codec: &Codec<K>, url: &str, frame: &[u8]) -> Result<WatchEvent<K>> {
    let event = kube_protobuf::decode_watch_event(frame)
        .map_err(|e| failed(url, "watch event", e, frame))?;
    let envelope = open(url, event.object)?;
    let object =
        || (codec.decode)(envelope.raw).map_err(|e| failed(url, "watch event object", e, frame));
    Ok(match event.event_type {
        "ADDED" => WatchEvent::Added(object()?),
        "MODIFIED" => WatchEvent::Modified(object()?),
        "DELETED" => WatchEvent::Deleted(object()?),
        "BOOKMARK" => WatchEvent::Bookmark(bookmark(&object()?, url, frame)?),
        "ERROR" if envelope.kind == "Status" => WatchEvent::Error(Box::new(
            Status::decode(envelope.raw)
                .map_err(|e| failed(url, "watch ERROR Status", e, frame))?,
        )),
        "ERROR" => {
            return Err(failed(
                url,
                "watch event",
                "an ERROR event without a Status",
                frame,
            ));
        }
        other => {
            return Err(failed(
                url,
                "watch event",
                format!("an unknown event type ({} bytes)", other.len()),
                frame,
            ));
        }
    })
}

/// The bookmark a BOOKMARK event's object carries (its resourceVersion and
/// annotations). Bookmarks are rare, so the metadata is taken through JSON
/// rather than through each kind's fields.
fn bookmark<K: Serialize>(object: &K, url: &str, frame: &[u8]) -> Result<Bookmark> {
    serde_json::to_value(object)
        .and_then(serde_json::from_value::<Bookmark>)
        .map_err(|e| {
            failed(
                url,
                "watch BOOKMARK",
                format!("no usable metadata ({})", crate::error::safe_json_error(&e)),
                frame,
            )
        })
}
