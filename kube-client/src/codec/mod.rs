//! Content negotiation: which encoding a request asks for and sends, and
//! how an answer is decoded.
//!
//! The API server speaks JSON for every kind, and protobuf
//! (`application/vnd.kubernetes.protobuf`) for the built-in ones. Protobuf
//! is smaller on the wire and cheaper to decode, which is most of what a
//! large cache costs (issue #14). So for a typed `Api<K>` whose `K` is a
//! built-in k8s-openapi kind with a protobuf codec (`kube-protobuf`), and
//! a client with [`ClientBuilder::protobuf`](crate::ClientBuilder::protobuf)
//! on (the default), a request — get, list, watch (streaming lists too),
//! create, replace, patch, delete, and the `status` and `scale`
//! subresources:
//! - asks `Accept: application/vnd.kubernetes.protobuf,application/json`
//!   — protobuf, with JSON as the server's fallback;
//! - sends a create or replace body as protobuf (the object in a `k8s\0`
//!   envelope, `Content-Type: application/vnd.kubernetes.protobuf`);
//!   should a server refuse that with 415 Unsupported Media Type, the body
//!   is sent once more as JSON, and the client remembers it: later bodies
//!   for the same API group/version (an aggregated server without protobuf
//!   serves a whole group/version) go as JSON at once. Patches and delete options stay JSON (the
//!   patch formats are JSON formats).
//!
//! Every other request asks for and sends JSON exactly as before: custom
//! resources, [`DynamicObject`](crate::DynamicObject),
//! [`Object`](crate::Object), [`PartialObjectMetadata`](crate::PartialObjectMetadata)
//! (the server serves custom resources only as JSON, and the generic shapes
//! have no protobuf schema), and everything on a client with protobuf off.
//!
//! Guarantees:
//! - **An answer is decoded by its `Content-Type`**, never by what was
//!   asked: a protobuf answer through the codec, anything else as JSON (a
//!   server, proxy or scripted test may always answer JSON). A protobuf
//!   answer to a request that did not ask for it is a typed
//!   [`Error::Decode`], not a guess.
//! - **Errors stay typed**: a non-2xx answer carrying a `Status`, in JSON
//!   or in a protobuf envelope, becomes the same [`Error::Api`] (see
//!   [`Error::from_error_response`]).
//! - **A protobuf watch** is read as length-prefixed frames with the same
//!   guarantees as a JSON one (bounded frames, a cut or malformed frame a
//!   typed error; see [`crate::watch`]). A BOOKMARK's object is decoded as
//!   the kind and its resourceVersion and annotations taken from it; an
//!   ERROR event carries its `Status`.
//! - **`managedFields` can be left out**:
//!   with [`Api::skip_managed_fields`](crate::Api::skip_managed_fields)
//!   every object of an answer (an object, a list's items, a watch event's
//!   object) is decoded with `metadata.managedFields` `None` — never
//!   built, so never paid for: stepped over on the wire in protobuf, read
//!   as ignored text in JSON (`json_skip`; custom resources are JSON only).
//! - **Bodies are never quoted**: a decoding failure names the URL, what
//!   failed and the body's size and media type only.
//! - Without the `protobuf` cargo feature everything is JSON and
//!   `ClientBuilder::protobuf` has no effect.

#[cfg(feature = "protobuf")]
pub(crate) mod protobuf;

pub(crate) mod json_skip;

use std::marker::PhantomData;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::ObjectOrStatus;
use crate::error::{Error, Result, describe_body};
use crate::object::ObjectList;
use crate::watch::WatchEvent;

/// The JSON media type.
pub(crate) const JSON: &str = "application/json";
/// The Kubernetes protobuf media type.
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
/// `Accept` of a request that prefers protobuf and takes JSON.
pub(crate) const PROTOBUF_OR_JSON: &str = "application/vnd.kubernetes.protobuf,application/json";

/// A whole answer body with what it was.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The request URL, as shown in errors.
    pub url: String,
    /// The body.
    pub body: Bytes,
    /// The answer's `Content-Type`, if it had one.
    pub content_type: Option<String>,
}

/// How a body is encoded, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// JSON, or no or an unknown media type (decoded as JSON).
    Json,
    /// `application/vnd.kubernetes.protobuf` (any parameters, e.g.
    /// `;stream=watch`).
    Protobuf,
}

impl Encoding {
    /// The encoding of a body with `Content-Type` `content_type`.
    pub(crate) fn of(content_type: Option<&str>) -> Self {
        let media = content_type
            .and_then(|ct| ct.split(';').next())
            .unwrap_or_default()
            .trim();
        if media.eq_ignore_ascii_case(PROTOBUF) {
            Encoding::Protobuf
        } else {
            Encoding::Json
        }
    }
}

/// The decoded `Status` of an error body, if it is one: a protobuf
/// envelope holding a `Status` when the `Content-Type` says protobuf (and
/// the `protobuf` feature is on), JSON otherwise. `None` for anything
/// else; never panics.
pub(crate) fn status_of_body(body: &[u8], content_type: Option<&str>) -> Option<Status> {
    match Encoding::of(content_type) {
        #[cfg(feature = "protobuf")]
        Encoding::Protobuf => protobuf::status(body),
        _ => serde_json::from_slice(body).ok(),
    }
}

/// The encoding of one typed request: JSON only, or protobuf preferred
/// through `K`'s codec. Made by [`Wire::negotiate`].
pub(crate) struct Wire<K: 'static> {
    #[cfg(feature = "protobuf")]
    codec: Option<&'static kube_protobuf::Codec<K>>,
    /// What protobuf decoding leaves out.
    #[cfg(feature = "protobuf")]
    options: kube_protobuf::DecodeOptions,
    /// JSON answers are decoded without `metadata.managedFields`
    /// ([`json_skip`]).
    skip_managed_fields: bool,
    _kind: PhantomData<fn() -> K>,
}

impl<K: 'static> Clone for Wire<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K: 'static> Copy for Wire<K> {}

impl<K> Wire<K>
where
    K: DeserializeOwned + Serialize + Send + 'static,
{
    /// JSON only.
    pub(crate) fn json() -> Self {
        Self {
            #[cfg(feature = "protobuf")]
            codec: None,
            #[cfg(feature = "protobuf")]
            options: kube_protobuf::DecodeOptions::default(),
            skip_managed_fields: false,
            _kind: PhantomData,
        }
    }

    /// Protobuf when `enabled` and `K` has a codec, else JSON.
    pub(crate) fn negotiate(enabled: bool) -> Self {
        #[cfg(feature = "protobuf")]
        if enabled {
            return Self {
                codec: kube_protobuf::codec::<K>(),
                options: kube_protobuf::DecodeOptions::default(),
                skip_managed_fields: false,
                _kind: PhantomData,
            };
        }
        let _ = enabled;
        Self::json()
    }

    /// This wire, decoding answers without `metadata.managedFields` when
    /// `skip`: never built — stepped over on the wire in protobuf, read as
    /// ignored text in JSON ([`json_skip`]).
    pub(crate) fn skipping_managed_fields(self, skip: bool) -> Self {
        Self {
            #[cfg(feature = "protobuf")]
            options: self.options.skip_managed_fields(skip),
            skip_managed_fields: skip,
            ..self
        }
    }

    /// A JSON answer's `T`, without `managedFields` when this wire skips them.
    fn decode_json_answer<T: DeserializeOwned>(&self, answer: &Answer) -> Result<T> {
        if self.skip_managed_fields {
            json_skip::from_slice(&answer.body)
                .map_err(|e| crate::client::json_decode_error(&answer.url, &answer.body, &e))
        } else {
            decode_json(answer)
        }
    }

    /// True when this request asks for (and sends) protobuf.
    pub(crate) fn is_protobuf(&self) -> bool {
        #[cfg(feature = "protobuf")]
        return self.codec.is_some();
        #[cfg(not(feature = "protobuf"))]
        false
    }

    /// The `Accept` header.
    pub(crate) fn accept(&self) -> &'static str {
        if self.is_protobuf() {
            PROTOBUF_OR_JSON
        } else {
            JSON
        }
    }

    /// `obj` as a request body: its `Content-Type` and
    /// bytes (protobuf in an envelope when negotiated, else JSON).
    pub(crate) fn body(&self, obj: &K) -> Result<(&'static str, Vec<u8>)> {
        #[cfg(feature = "protobuf")]
        if let Some(codec) = self.codec {
            return Ok((PROTOBUF, protobuf::body(codec, obj)));
        }
        json_body(obj).map(|body| (JSON, body))
    }

    /// One object.
    pub(crate) fn object(&self, answer: &Answer) -> Result<K> {
        match self.encoding(answer)? {
            #[cfg(feature = "protobuf")]
            (Encoding::Protobuf, Some(codec)) => protobuf::object(codec, self.options, answer),
            _ => self.decode_json_answer(answer),
        }
    }

    /// One page of a list.
    pub(crate) fn list(&self, answer: &Answer) -> Result<ObjectList<K>> {
        match self.encoding(answer)? {
            #[cfg(feature = "protobuf")]
            (Encoding::Protobuf, Some(codec)) => protobuf::list(codec, self.options, answer),
            _ => self.decode_json_answer(answer),
        }
    }

    /// An object, or the success `Status` the server sent instead.
    pub(crate) fn object_or_status(&self, answer: &Answer) -> Result<ObjectOrStatus<K>> {
        match self.encoding(answer)? {
            #[cfg(feature = "protobuf")]
            (Encoding::Protobuf, Some(codec)) => {
                protobuf::object_or_status(codec, self.options, answer, protobuf::object_in)
            }
            _ => json_object_or_status(answer),
        }
    }

    /// A list, or the success `Status` the server sent instead.
    pub(crate) fn list_or_status(&self, answer: &Answer) -> Result<ObjectOrStatus<ObjectList<K>>> {
        match self.encoding(answer)? {
            #[cfg(feature = "protobuf")]
            (Encoding::Protobuf, Some(codec)) => {
                protobuf::object_or_status(codec, self.options, answer, protobuf::list_in)
            }
            _ => json_object_or_status(answer),
        }
    }

    /// The events of a watch answered with `content_type`: length-prefixed
    /// protobuf frames or JSON lines, each event at most `max_event_bytes`
    /// (see [`crate::watch`]).
    pub(crate) fn watch_events(
        &self,
        url: String,
        content_type: Option<&str>,
        chunks: BoxStream<'static, Result<Bytes>>,
        max_event_bytes: usize,
    ) -> BoxStream<'static, Result<WatchEvent<K>>> {
        let encoding = Encoding::of(content_type);
        #[cfg(feature = "protobuf")]
        if let (Encoding::Protobuf, Some(codec)) = (encoding, self.codec) {
            return protobuf::watch_events(codec, self.options, url, chunks, max_event_bytes)
                .boxed();
        }
        match encoding {
            Encoding::Protobuf => {
                let error = unasked_protobuf(&url, "a protobuf watch stream".into());
                futures::stream::once(async move { Err(error) }).boxed()
            }
            Encoding::Json => crate::watch::decode_json_events(
                url,
                chunks,
                max_event_bytes,
                self.skip_managed_fields,
            )
            .boxed(),
        }
    }

    /// The answer's encoding and the codec to decode it with; protobuf
    /// without a codec (not asked for) is an error.
    #[allow(clippy::type_complexity)]
    fn encoding(&self, answer: &Answer) -> Result<(Encoding, Option<&'static CodecOf<K>>)> {
        let encoding = Encoding::of(answer.content_type.as_deref());
        #[cfg(feature = "protobuf")]
        let codec = self.codec;
        #[cfg(not(feature = "protobuf"))]
        let codec: Option<&'static CodecOf<K>> = None;
        if encoding == Encoding::Protobuf && codec.is_none() {
            let body = describe_body(&answer.body, answer.content_type.as_deref());
            return Err(unasked_protobuf(&answer.url, body));
        }
        Ok((encoding, codec))
    }
}

/// `K`'s protobuf codec (a placeholder type without the feature).
#[cfg(feature = "protobuf")]
type CodecOf<K> = kube_protobuf::Codec<K>;
#[cfg(not(feature = "protobuf"))]
type CodecOf<K> = PhantomData<K>;

/// A protobuf answer to a request that accepted only JSON.
fn unasked_protobuf(url: &str, body: String) -> Error {
    Error::Decode {
        url: url.to_string(),
        message: "the server answered protobuf, which was not asked for \
                  (JSON only for this kind or client)"
            .into(),
        body,
    }
}

/// `value` as a JSON request body.
pub(crate) fn json_body<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|e| Error::InvalidRequest(format!("cannot serialize the body: {e}")))
}

fn decode_json<T: DeserializeOwned>(answer: &Answer) -> Result<T> {
    crate::client::decode_json(&answer.url, &answer.body)
}

fn json_object_or_status<T: DeserializeOwned>(answer: &Answer) -> Result<ObjectOrStatus<T>> {
    #[derive(serde::Deserialize)]
    struct Kind {
        #[serde(default)]
        kind: String,
    }
    match serde_json::from_slice::<Kind>(&answer.body) {
        Ok(k) if k.kind == "Status" => Ok(ObjectOrStatus::Status(Box::new(decode_json(answer)?))),
        _ => Ok(ObjectOrStatus::Object(decode_json(answer)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoding_is_the_media_type_without_parameters() {
        assert_eq!(Encoding::of(Some(PROTOBUF)), Encoding::Protobuf);
        assert_eq!(
            Encoding::of(Some("application/vnd.kubernetes.protobuf;stream=watch")),
            Encoding::Protobuf
        );
        assert_eq!(
            Encoding::of(Some(" Application/Vnd.Kubernetes.Protobuf ; x=y")),
            Encoding::Protobuf
        );
        for json in [
            None,
            Some("application/json"),
            Some("application/json;stream=watch"),
            Some("text/plain"),
            Some(""),
            Some("application/vnd.kubernetes.protobuf2"),
        ] {
            assert_eq!(Encoding::of(json), Encoding::Json, "{json:?}");
        }
    }

    #[test]
    fn a_protobuf_answer_to_a_json_request_is_a_typed_error() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let answer = Answer {
            url: "https://h/x".into(),
            body: Bytes::from_static(b"k8s\0secret"),
            content_type: Some(PROTOBUF.into()),
        };
        let e = Wire::<ConfigMap>::json().object(&answer).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::Decode { .. }), "{e:?}");
        assert!(
            text.contains("https://h/x") && text.contains("a 10-byte"),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");
    }

    #[tokio::test]
    async fn a_watch_is_decoded_by_its_content_type() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let line = br#"{"type":"ADDED","object":{"metadata":{"name":"a"}}}
"#;
        let chunks = || futures::stream::iter([Ok(Bytes::from_static(line))]).boxed();
        // JSON lines decode whatever the request asked for.
        for wire in [Wire::<ConfigMap>::json(), Wire::negotiate(true)] {
            let events: Vec<_> = wire
                .watch_events("u".into(), Some("application/json"), chunks(), 1024)
                .collect()
                .await;
            assert!(
                matches!(&events[..], [Ok(WatchEvent::Added(_))]),
                "{events:?}"
            );
        }
        // Protobuf frames to a JSON-only request: one typed error, the end.
        let events: Vec<_> = Wire::<ConfigMap>::json()
            .watch_events("u".into(), Some(PROTOBUF), chunks(), 1024)
            .collect()
            .await;
        assert!(
            matches!(&events[..], [Err(Error::Decode { .. })]),
            "{events:?}"
        );
    }

    #[test]
    fn json_stays_json_and_a_json_status_is_a_status() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let wire = Wire::<ConfigMap>::json();
        assert_eq!(wire.accept(), JSON);
        assert!(!wire.is_protobuf());
        let answer = Answer {
            url: "u".into(),
            body: Bytes::from_static(br#"{"kind":"Status","status":"Success","code":200}"#),
            content_type: Some(JSON.into()),
        };
        assert!(matches!(
            wire.object_or_status(&answer),
            Ok(ObjectOrStatus::Status(s)) if s.code == Some(200)
        ));
        assert_eq!(
            status_of_body(&answer.body, None).and_then(|s| s.code),
            Some(200)
        );
        assert!(status_of_body(b"<html>", Some("text/html")).is_none());
    }

    /// Decoding with and without `skip_managed_fields`, through the wire a
    /// typed `Api` uses: protobuf answers lose exactly `managedFields`, JSON
    /// answers keep everything.
    #[cfg(feature = "protobuf")]
    mod skip_managed_fields {
        use super::*;
        use k8s_openapi::api::core::v1::ConfigMap;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
            FieldsV1, ManagedFieldsEntry, ObjectMeta,
        };
        use kube_protobuf::wire::Writer;

        const WATCH: &str = "application/vnd.kubernetes.protobuf;stream=watch";

        fn cm(name: &str, rv: &str) -> ConfigMap {
            ConfigMap {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some("ns".into()),
                    resource_version: Some(rv.into()),
                    labels: Some([("app".to_string(), "x".to_string())].into()),
                    managed_fields: Some(vec![ManagedFieldsEntry {
                        manager: Some("test".into()),
                        operation: Some("Update".into()),
                        api_version: Some("v1".into()),
                        fields_type: Some("FieldsV1".into()),
                        fields_v1: Some(FieldsV1(serde_json::json!({"f:data": {"f:k": {}}}))),
                        ..ManagedFieldsEntry::default()
                    }]),
                    ..ObjectMeta::default()
                },
                data: Some([("k".to_string(), format!("v{rv}"))].into()),
                ..ConfigMap::default()
            }
        }

        fn without_managed_fields(mut cm: ConfigMap) -> ConfigMap {
            cm.metadata.managed_fields = None;
            cm
        }

        fn envelope(cm: &ConfigMap) -> Vec<u8> {
            let codec = kube_protobuf::codec::<ConfigMap>().unwrap();
            kube_protobuf::seal_envelope("v1", "ConfigMap", &(codec.encode)(cm))
        }

        /// One watch frame: a 4-byte length, then a `WatchEvent` (type = 1,
        /// object = 2: a RawExtension whose raw = 1 is the envelope).
        fn frame(event_type: &str, cm: &ConfigMap) -> Vec<u8> {
            let mut event = Writer::new();
            event.put_bytes_field(1, event_type.as_bytes());
            event.put_nested(2, |raw| raw.put_bytes_field(1, &envelope(cm)));
            let event = event.into_bytes();
            let mut out = (event.len() as u32).to_be_bytes().to_vec();
            out.extend(event);
            out
        }

        fn wire(skip: bool) -> Wire<ConfigMap> {
            let wire = Wire::negotiate(true).skipping_managed_fields(skip);
            assert!(wire.is_protobuf());
            wire
        }

        /// Every event kind that carries an object, the frames cut into
        /// 7-byte chunks so that frames are joined across chunks.
        async fn watch(skip: bool) -> Vec<WatchEvent<ConfigMap>> {
            let mut body = Vec::new();
            body.extend(frame("ADDED", &cm("a", "1")));
            body.extend(frame("MODIFIED", &cm("a", "2")));
            body.extend(frame("DELETED", &cm("a", "3")));
            body.extend(frame("BOOKMARK", &cm("", "4")));
            let chunks: Vec<Result<Bytes>> = body
                .chunks(7)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            wire(skip)
                .watch_events(
                    "u".into(),
                    Some(WATCH),
                    futures::stream::iter(chunks).boxed(),
                    4096,
                )
                .map(|event| event.unwrap())
                .collect()
                .await
        }

        #[tokio::test]
        async fn watch_frames_are_decoded_without_managed_fields_when_asked() {
            let skipped = watch(true).await;
            let kept = watch(false).await;
            for (events, strip) in [(&skipped, true), (&kept, false)] {
                let expect = |cm: ConfigMap| {
                    if strip {
                        without_managed_fields(cm)
                    } else {
                        cm
                    }
                };
                match &events[..] {
                    [
                        WatchEvent::Added(a),
                        WatchEvent::Modified(m),
                        WatchEvent::Deleted(d),
                        WatchEvent::Bookmark(b),
                    ] => {
                        assert_eq!(*a, expect(cm("a", "1")));
                        assert_eq!(*m, expect(cm("a", "2")));
                        assert_eq!(*d, expect(cm("a", "3")));
                        assert_eq!(b.metadata.resource_version, "4");
                    }
                    other => panic!("{other:?}"),
                }
            }
            let WatchEvent::Added(a) = &skipped[0] else {
                unreachable!()
            };
            assert!(a.metadata.managed_fields.is_none());
            let WatchEvent::Added(a) = &kept[0] else {
                unreachable!()
            };
            assert_eq!(a.metadata.managed_fields.as_ref().unwrap().len(), 1);
        }

        #[test]
        fn objects_and_lists_are_decoded_without_managed_fields_when_asked() {
            let object = Answer {
                url: "u".into(),
                body: envelope(&cm("a", "1")).into(),
                content_type: Some(PROTOBUF.into()),
            };
            assert_eq!(wire(false).object(&object).unwrap(), cm("a", "1"));
            assert_eq!(
                wire(true).object(&object).unwrap(),
                without_managed_fields(cm("a", "1"))
            );
            let ObjectOrStatus::Object(deleted) = wire(true).object_or_status(&object).unwrap()
            else {
                panic!("an object")
            };
            assert!(deleted.metadata.managed_fields.is_none());

            let mut list = Writer::new();
            list.put_nested(1, |meta| meta.put_bytes_field(2, b"9"));
            for i in 0..3 {
                let codec = kube_protobuf::codec::<ConfigMap>().unwrap();
                list.put_bytes_field(2, &(codec.encode)(&cm(&format!("c{i}"), "1")));
            }
            let list = Answer {
                url: "u".into(),
                body: kube_protobuf::seal_envelope("v1", "ConfigMapList", &list.into_bytes())
                    .into(),
                content_type: Some(PROTOBUF.into()),
            };
            let kept = wire(false).list(&list).unwrap();
            let skipped = wire(true).list(&list).unwrap();
            assert_eq!(skipped.metadata.resource_version.as_deref(), Some("9"));
            assert_eq!(skipped.items.len(), 3);
            assert!(
                kept.items
                    .iter()
                    .all(|o| o.metadata.managed_fields.is_some())
            );
            assert_eq!(
                skipped.items,
                kept.items
                    .into_iter()
                    .map(without_managed_fields)
                    .collect::<Vec<_>>()
            );
        }

        #[test]
        fn json_answers_lose_them_too_and_only_when_asked() {
            let answer = Answer {
                url: "u".into(),
                body: serde_json::to_vec(&cm("a", "1")).unwrap().into(),
                content_type: Some(JSON.into()),
            };
            assert!(cm("a", "1").metadata.managed_fields.is_some());
            assert_eq!(wire(false).object(&answer).unwrap(), cm("a", "1"));
            assert_eq!(
                wire(true).object(&answer).unwrap(),
                without_managed_fields(cm("a", "1"))
            );
        }
    }
}
