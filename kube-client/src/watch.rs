//! Watch events and the decoder of a watch stream.
//!
//! A watch answer is a chunked body of JSON documents, one per line:
//! `{"type":"ADDED","object":{…}}`. The decoder reads chunks as they arrive
//! and yields each complete line as a [`WatchEvent`]; it never holds more
//! than the current incomplete line plus one chunk:
//! - an event split across chunks is joined;
//! - a line longer than the limit ([`DEFAULT_MAX_EVENT_BYTES`], 16 MiB,
//!   unless the client sets another with
//!   [`ClientBuilder::max_watch_event_bytes`](crate::ClientBuilder::max_watch_event_bytes))
//!   ends the stream with an [`Error::TooLarge`]: no API server sends an
//!   event that large (etcd refuses objects over ~1.5 MiB), so the line is
//!   not a watch event and is not read further;
//! - a line that is not a valid event yields an `Err` item (which never
//!   quotes the line) and decoding goes on with the next line;
//! - a clean end of the body ends the stream; a body cut mid-line ends it
//!   with an `Err` naming how many bytes were left over;
//! - a transport error ends the stream with that error.
//!
//! A watch answered in protobuf is framed differently (length-prefixed
//! frames: a 4-byte big-endian length, then one `WatchEvent` message) but
//! decodes into the same [`WatchEvent`] with the same guarantees — a frame
//! announced over the limit is refused from its length prefix without being
//! read, a cut inside a frame ends the stream with an error, a frame that
//! does not decode is an `Err` item and the next frame is read (the framing
//! is intact). [`Api::watch`](crate::Api::watch) picks the decoder by the
//! answer's `Content-Type`; `decode_protobuf_events_with_limit` is the
//! protobuf decoder on its own.

#[cfg(feature = "protobuf")]
mod frames;

#[cfg(feature = "protobuf")]
pub(crate) use frames::frames;

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result, describe_body, safe_json_error};

/// Default limit of one watch event (one line of a watch body) or one line
/// of a followed log: 16 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 << 20;

/// The setting that sets the event limit, for error messages.
const EVENT_SETTING: &str = "ClientBuilder::max_watch_event_bytes";

/// The annotation on the bookmark that ends a streaming list's initial events.
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// One event of a watch.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    tag = "type",
    content = "object",
    bound(deserialize = "K: DeserializeOwned")
)]
pub enum WatchEvent<K> {
    /// An object was created (or is part of a streaming list's initial state).
    #[serde(rename = "ADDED")]
    Added(K),
    /// An object changed.
    #[serde(rename = "MODIFIED")]
    Modified(K),
    /// An object was deleted; this is its last state.
    #[serde(rename = "DELETED")]
    Deleted(K),
    /// Progress: everything up to this resourceVersion has been sent.
    #[serde(rename = "BOOKMARK")]
    Bookmark(Bookmark),
    /// The server reports an error in-stream (410 Gone when the version is too old).
    #[serde(rename = "ERROR")]
    Error(Box<Status>),
}

/// The body of a BOOKMARK event: only a resourceVersion and annotations.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Bookmark {
    /// Bookmark metadata.
    pub metadata: BookmarkMeta,
}

/// Metadata of a bookmark.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookmarkMeta {
    /// Everything up to this version has been delivered.
    pub resource_version: String,
    /// `k8s.io/initial-events-end: "true"` ends a streaming list.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl Bookmark {
    /// True for the bookmark that ends a streaming list's initial events.
    pub fn is_initial_events_end(&self) -> bool {
        self.metadata
            .annotations
            .get(INITIAL_EVENTS_END)
            .is_some_and(|v| v == "true")
    }
}

/// Splits a stream of body chunks into lines (without `\n` or `\r\n`),
/// with the same guarantees as the event decoder: bounded buffering (lines
/// up to [`DEFAULT_MAX_EVENT_BYTES`]), a cut mid-line reported as an error,
/// a transport error ending the stream.
pub fn lines<S, E>(url: String, chunks: S) -> impl Stream<Item = Result<String>> + Send
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
    E: Into<Error> + Send,
{
    lines_with_limit(url, chunks, DEFAULT_MAX_EVENT_BYTES)
}

/// [`lines`], with lines of at most `max_line_bytes`.
pub fn lines_with_limit<S, E>(
    url: String,
    chunks: S,
    max_line_bytes: usize,
) -> impl Stream<Item = Result<String>> + Send
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
    E: Into<Error> + Send,
{
    raw_lines(url, chunks, true, max_line_bytes, "log line")
        .map(|r| r.map(|line| String::from_utf8_lossy(&line).into_owned()))
}

/// Decodes a stream of body chunks into watch events (see module docs),
/// each at most [`DEFAULT_MAX_EVENT_BYTES`] long.
pub fn decode_events<K, S, E>(
    url: String,
    chunks: S,
) -> impl Stream<Item = Result<WatchEvent<K>>> + Send
where
    K: DeserializeOwned + Send,
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
    E: Into<Error> + Send,
{
    decode_events_with_limit(url, chunks, DEFAULT_MAX_EVENT_BYTES)
}

/// [`decode_events`], with events of at most `max_event_bytes`.
pub fn decode_events_with_limit<K, S, E>(
    url: String,
    chunks: S,
    max_event_bytes: usize,
) -> impl Stream<Item = Result<WatchEvent<K>>> + Send
where
    K: DeserializeOwned + Send,
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
    E: Into<Error> + Send,
{
    decode_json_events(url, chunks, max_event_bytes, false)
}

/// [`decode_events_with_limit`], leaving each object's
/// `metadata.managedFields` out when `skip_managed_fields` (see
/// `codec::json_skip`).
pub(crate) fn decode_json_events<K, S, E>(
    url: String,
    chunks: S,
    max_event_bytes: usize,
    skip_managed_fields: bool,
) -> impl Stream<Item = Result<WatchEvent<K>>> + Send
where
    K: DeserializeOwned + Send,
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
    E: Into<Error> + Send,
{
    let decode_url = url.clone();
    let decode: fn(&[u8]) -> serde_json::Result<WatchEvent<K>> = if skip_managed_fields {
        crate::codec::json_skip::from_slice
    } else {
        |line| serde_json::from_slice(line)
    };
    raw_lines(url, chunks, false, max_event_bytes, "watch event").filter_map(move |line| {
        let item = match line {
            Ok(line) if line.iter().all(u8::is_ascii_whitespace) => None,
            Ok(line) => Some(decode(&line).map_err(|e| Error::Decode {
                url: decode_url.clone(),
                message: format!("watch event: {}", safe_json_error(&e)),
                body: describe_body(&line, None),
            })),
            Err(e) => Some(Err(e)),
        };
        futures::future::ready(item)
    })
}

/// Decodes a stream of body chunks of a protobuf watch
/// (`application/vnd.kubernetes.protobuf;stream=watch`: length-prefixed
/// `WatchEvent` frames) into watch events, each frame at most
/// `max_event_bytes`, with the guarantees of [`decode_events`] (see the
/// `frames` notes in the module docs). `None` when `K` has no protobuf
/// codec (custom resources and the generic object shapes are JSON only).
#[cfg(feature = "protobuf")]
pub fn decode_protobuf_events_with_limit<K, S, E>(
    url: String,
    chunks: S,
    max_event_bytes: usize,
) -> Option<impl Stream<Item = Result<WatchEvent<K>>> + Send>
where
    K: serde::Serialize + Send + 'static,
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
    E: Into<Error> + Send,
{
    let codec = kube_protobuf::codec::<K>()?;
    Some(crate::codec::protobuf::watch_events(
        codec,
        kube_protobuf::DecodeOptions::default(),
        url,
        chunks,
        max_event_bytes,
    ))
}

/// The line splitter under [`decode_events`] and [`lines`]. With
/// `tail_is_line`, bytes after the last newline at a clean end are one more
/// line (logs); without, they mean the body was cut mid-event (watches).
///
/// A line that lies whole inside one chunk (the usual case: the API server
/// flushes each event as it is written) is handed out as a slice of that
/// chunk, without a copy; only a line split across chunks is assembled in a
/// buffer. Each byte is searched for the newline once.
fn raw_lines<S, E>(
    url: String,
    chunks: S,
    tail_is_line: bool,
    max_line: usize,
    what: &'static str,
) -> impl Stream<Item = Result<Bytes>> + Send
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
    E: Into<Error> + Send,
{
    futures::stream::unfold(Chunks::new(url, chunks), move |mut st| async move {
        loop {
            let newline = memchr::memchr(b'\n', &st.pending);
            let line_len = st.partial.len() + newline.unwrap_or(st.pending.len());
            if line_len > max_line {
                // Not an event any server sends: stop reading here.
                let err = st.too_large(what, max_line);
                return Some((Err(err), st));
            }
            if let Some(pos) = newline {
                let mut line = if st.partial.is_empty() {
                    // The whole line is in this chunk: a slice, no copy.
                    st.pending.split_to(pos + 1)
                } else {
                    st.partial.extend_from_slice(&st.pending.split_to(pos + 1));
                    st.partial.split().freeze()
                };
                line.truncate(line.len() - 1);
                if line.last() == Some(&b'\r') {
                    line.truncate(line.len() - 1);
                }
                return Some((Ok(line), st));
            }
            if !st.pending.is_empty() {
                st.partial.extend_from_slice(&st.pending);
                st.pending = Bytes::new();
            }
            if st.done {
                return None;
            }
            match st.refill().await {
                Refill::Chunk => {}
                Refill::Failed(e) => return Some((Err(e), st)),
                Refill::Ended => {
                    let rest = st.partial.split().freeze();
                    if rest.is_empty()
                        || (!tail_is_line && rest.iter().all(u8::is_ascii_whitespace))
                    {
                        return None;
                    }
                    if tail_is_line {
                        return Some((Ok(rest), st));
                    }
                    let error = st.cut_short(format!(
                        "stream ended in the middle of an event ({} bytes left)",
                        rest.len()
                    ));
                    return Some((Err(error), st));
                }
            }
        }
    })
}

/// A splitter's place in a body: what it has read of the thing (line or
/// frame) it is assembling, and what is left of the last chunk. Shared by
/// the JSON line splitter here and the protobuf frame splitter
/// ([`frames`]).
pub(crate) struct Chunks<S> {
    pub(crate) url: String,
    chunks: S,
    /// The start of a line or frame split across chunks.
    pub(crate) partial: BytesMut,
    /// What is left of the last chunk read, not yet looked at.
    pub(crate) pending: Bytes,
    /// The body ended, failed or was given up: nothing more is read.
    pub(crate) done: bool,
}

/// What [`Chunks::refill`] found.
pub(crate) enum Refill {
    /// A chunk, now in `pending`.
    Chunk,
    /// The transport failed: the stream ends with this error.
    Failed(Error),
    /// The body ended; `partial` holds what was left unfinished.
    Ended,
}

impl<S, E> Chunks<S>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: Into<Error>,
{
    pub(crate) fn new(url: String, chunks: S) -> Self {
        Self {
            url,
            chunks,
            partial: BytesMut::new(),
            pending: Bytes::new(),
            done: false,
        }
    }

    /// Reads the next chunk into `pending`. On a transport error or the
    /// end of the body the splitter is `done`; on an error what it was
    /// assembling is dropped.
    pub(crate) async fn refill(&mut self) -> Refill {
        match self.chunks.next().await {
            Some(Ok(chunk)) => {
                self.pending = chunk;
                Refill::Chunk
            }
            Some(Err(e)) => {
                self.done = true;
                self.partial = BytesMut::new();
                Refill::Failed(e.into())
            }
            None => {
                self.done = true;
                Refill::Ended
            }
        }
    }

    /// Gives up on a line or frame over `limit` bytes: the error, with
    /// nothing buffered kept and nothing more read.
    pub(crate) fn too_large(&mut self, what: &'static str, limit: usize) -> Error {
        self.done = true;
        self.partial = BytesMut::new();
        self.pending = Bytes::new();
        Error::TooLarge {
            url: self.url.clone(),
            what,
            limit,
            setting: EVENT_SETTING,
        }
    }

    /// The error of a body that ended in the middle of a line or frame.
    pub(crate) fn cut_short(&self, message: String) -> Error {
        Error::Transport {
            method: "GET".into(),
            url: self.url.clone(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn chunks(
        parts: &[&str],
    ) -> impl Stream<Item = std::result::Result<Bytes, Error>> + Send + Unpin {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from(p.to_string())))
                .collect::<Vec<_>>(),
        )
    }

    async fn collect(parts: &[&str]) -> Vec<Result<WatchEvent<ConfigMap>>> {
        decode_events_with_limit("https://h/w".into(), chunks(parts), 1024)
            .collect()
            .await
    }

    const ADDED: &str = r#"{"type":"ADDED","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"1"}}}"#;

    #[tokio::test]
    async fn split_events_are_joined() {
        let (a, b) = ADDED.split_at(17);
        let second = r#"{"type":"DELETED","object":{"metadata":{"name":"a"}}}"#;
        let events = collect(&[a, b, "\n", second, "\n"]).await;
        assert_eq!(events.len(), 2);
        match &events[0] {
            Ok(WatchEvent::Added(cm)) => assert_eq!(cm.metadata.name.as_deref(), Some("a")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(events[1], Ok(WatchEvent::Deleted(_))));
    }

    #[tokio::test]
    async fn any_chunking_gives_the_same_lines_and_whole_lines_are_not_copied() {
        let body = "first\r\n\nsecond line\nthird\nlast";
        let split_at = |cuts: &[usize]| {
            let mut parts = Vec::new();
            let mut from = 0;
            for &cut in cuts {
                parts.push(&body[from..cut]);
                from = cut;
            }
            parts.push(&body[from..]);
            parts
        };
        async fn lines_of(parts: Vec<&str>) -> Vec<String> {
            lines_with_limit("u".into(), chunks(&parts), 64)
                .map(|r| r.unwrap())
                .collect::<Vec<_>>()
                .await
        }
        let whole = lines_of(vec![body]).await;
        assert_eq!(whole, ["first", "", "second line", "third", "last"]);
        for a in 0..=body.len() {
            for b in a..=body.len() {
                assert_eq!(
                    lines_of(split_at(&[a, b])).await,
                    whole,
                    "cut at {a} and {b}"
                );
            }
        }
        // Lines inside one chunk are slices of it.
        let chunk = Bytes::from_static(b"one\ntwo\n");
        let range = chunk.as_ptr_range();
        let got: Vec<_> = raw_lines(
            "u".into(),
            futures::stream::iter(vec![Ok::<_, Error>(chunk.clone())]),
            false,
            64,
            "watch event",
        )
        .collect()
        .await;
        assert_eq!(got.len(), 2);
        for line in &got {
            assert!(
                range.contains(&line.as_ref().unwrap().as_ptr()),
                "a line was copied"
            );
        }
    }

    #[tokio::test]
    async fn a_line_over_the_limit_across_chunks_is_refused() {
        // 40 bytes in one chunk, 40 more in the next, no newline yet: over
        // the limit of 64 once the second chunk is read.
        let a = "a".repeat(40);
        let got: Vec<_> = lines_with_limit("u".into(), chunks(&["ok\n", &a, &a, "\nnever\n"]), 64)
            .collect()
            .await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            matches!(got[1], Err(Error::TooLarge { limit: 64, .. })),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn a_malformed_line_is_an_error_item_and_decoding_goes_on() {
        let events = collect(&["{not json\n", ADDED, "\n"]).await;
        assert_eq!(events.len(), 2);
        let err = events[0].as_ref().unwrap_err().to_string();
        assert!(
            err.contains("https://h/w") && err.contains("not valid JSON at line 1 column 2"),
            "{err}"
        );
        assert!(!err.contains("{not json"), "never quotes the line: {err}");
        assert!(matches!(events[1], Ok(WatchEvent::Added(_))));
    }

    #[tokio::test]
    async fn a_cut_mid_event_ends_with_an_error() {
        let events = collect(&[ADDED, "\n", &ADDED[..30]]).await;
        assert_eq!(events.len(), 2);
        let err = events[1].as_ref().unwrap_err().to_string();
        assert!(
            err.contains("ended in the middle of an event (30 bytes left"),
            "{err}"
        );
        assert!(err.contains("https://h/w"), "{err}");
    }

    #[tokio::test]
    async fn bookmarks_and_errors_decode() {
        let bookmark = r#"{"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"77","annotations":{"k8s.io/initial-events-end":"true"}}}}"#;
        let error = r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}}"#;
        let events = collect(&[bookmark, "\n", error, "\n"]).await;
        match &events[0] {
            Ok(WatchEvent::Bookmark(b)) => {
                assert_eq!(b.metadata.resource_version, "77");
                assert!(b.is_initial_events_end());
            }
            other => panic!("{other:?}"),
        }
        match &events[1] {
            Ok(WatchEvent::Error(s)) => assert_eq!(s.code, Some(410)),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn log_lines_keep_blank_lines_and_the_tail() {
        let got: Vec<String> = lines_with_limit("u".into(), chunks(&["a\r\n\nb", "c\nlast"]), 64)
            .map(|r| r.unwrap())
            .collect()
            .await;
        assert_eq!(got, ["a", "", "bc", "last"]);
    }

    #[tokio::test]
    async fn a_line_over_the_limit_ends_the_stream_with_too_large() {
        // Exactly the limit passes; one byte more, with or without its
        // newline yet, is refused and nothing more is read.
        let fits = format!("{}\n", " ".repeat(1024));
        let over = "x".repeat(600);
        let events = collect(&[ADDED, "\n", &fits, ADDED, "\n", &over, &over, ADDED, "\n"]).await;
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(matches!(events[0], Ok(WatchEvent::Added(_))));
        assert!(matches!(events[1], Ok(WatchEvent::Added(_))));
        match &events[2] {
            Err(
                e @ Error::TooLarge {
                    limit: 1024,
                    what: "watch event",
                    ..
                },
            ) => {
                let text = e.to_string();
                assert!(
                    text.contains("https://h/w") && text.contains("1024 bytes"),
                    "{text}"
                );
                assert!(text.contains("max_watch_event_bytes"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        let long_line = format!("{}\n", "y".repeat(65));
        let got: Vec<_> = lines_with_limit("u".into(), chunks(&["ok\n", &long_line]), 64)
            .collect()
            .await;
        assert_eq!(got.len(), 2);
        assert!(
            matches!(
                &got[1],
                Err(Error::TooLarge {
                    what: "log line",
                    ..
                })
            ),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn a_clean_end_ends_the_stream() {
        assert!(collect(&[]).await.is_empty());
        assert_eq!(collect(&[ADDED, "\n", "\n"]).await.len(), 1);
    }
}
