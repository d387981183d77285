//! Target `watch`: the watch-stream decoder
//! ([`kube_client::watch::decode_events_with_limit`]) and the log-line splitter
//! ([`kube_client::watch::lines`]).
//!
//! Properties, for any body and any way of cutting it into chunks:
//! - the decoded items equal those of a reference model that splits the
//!   whole body at `\n` (dropping one `\r` before it), skips blank lines,
//!   decodes each line with `serde_json`, and ends with a "cut mid-event"
//!   error if non-blank bytes follow the last newline;
//! - so the result is identical whatever the chunking (whole body, single
//!   bytes, random cuts, empty chunks in between);
//! - a bad line is an [`Error::Decode`] naming the URL that describes the
//!   line by its size, never quoting it; a cut is an [`Error::Transport`];
//!   with a small limit (derived from the input), a line over it ends the
//!   stream with [`Error::TooLarge`]; no other error, no panic, and the
//!   decoder never returns `Pending` on a ready stream;
//! - a transport error after some chunks ends the stream right after the
//!   events of the lines complete before it;
//! - [`lines`] yields the same lines as the
//!   model, lossily decoded, plus the tail as a last line.

use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures::Stream;
use kube_client::watch::{DEFAULT_MAX_EVENT_BYTES, WatchEvent, decode_events_with_limit, lines};
use kube_client::{DynamicObject, Error};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::Target;
use crate::mutate::{Rng, fnv1a};

const URL: &str = "https://127.0.0.1:6443/api/v1/configmaps?watch=true";

/// The target.
pub fn target() -> Target {
    Target {
        name: "watch",
        about: "watch-stream decoder and log-line splitter under arbitrary chunking",
        check,
        strategy: || body().boxed(),
        dictionary: &[
            b"{\"type\":\"ADDED\",\"object\":",
            b"{\"type\":\"MODIFIED\",\"object\":{}}",
            b"{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"x\"}}}",
            b"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}",
            b"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410}}",
            b"\"resourceVersion\":\"",
            b"\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}",
            b"\"metadata\":",
            b"\n",
            b"\r\n",
            b"\n\n",
            b"\\u0000",
            b"\\ud800",
            b"null",
            b"[]",
            b"{}",
        ],
    }
}

/// What the decoder must yield for one item.
#[derive(Debug, PartialEq)]
enum Item<K> {
    Event(WatchEvent<K>),
    /// A line that is not an event, by its length.
    BadLine(usize),
    Cut(usize),
    TooLarge,
    Transport,
}

/// The reference model: events of the complete lines, then the tail; a
/// line (or tail) over `limit` bytes ends it with `TooLarge`.
fn model<K: DeserializeOwned>(body: &[u8], ends_cleanly: bool, limit: usize) -> Vec<Item<K>> {
    let mut out = Vec::new();
    let mut pieces: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    let tail = pieces.pop().unwrap_or_default();
    for line in pieces {
        if line.len() > limit {
            out.push(Item::TooLarge);
            return out;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        out.push(match serde_json::from_slice::<WatchEvent<K>>(line) {
            Ok(event) => Item::Event(event),
            Err(_) => Item::BadLine(line.len()),
        });
    }
    if !ends_cleanly {
        out.push(Item::Transport);
    } else if tail.len() > limit {
        out.push(Item::TooLarge);
    } else if !tail.iter().all(u8::is_ascii_whitespace) {
        out.push(Item::Cut(tail.len()));
    }
    out
}

/// Polls a stream that is always ready to its end (panics on `Pending`).
pub fn drain<S: Stream>(stream: S) -> Vec<S::Item> {
    let mut stream = pin!(stream);
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    loop {
        match stream.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(item)) => out.push(item),
            Poll::Ready(None) => return out,
            Poll::Pending => {
                panic!("the decoder returned Pending on a stream that is always ready")
            }
        }
    }
}

/// Ways to cut `body` into chunks: derived from its hash, so reproducible.
fn chunkings(body: &[u8]) -> Vec<Vec<Bytes>> {
    let mut out = vec![vec![Bytes::copy_from_slice(body)]];
    if body.len() <= 2048 {
        out.push(body.iter().map(|&b| Bytes::copy_from_slice(&[b])).collect());
    }
    let mut rng = Rng::new(fnv1a(body));
    for round in 0..3 {
        let mut chunks = Vec::new();
        let mut at = 0;
        while at < body.len() {
            let max = if round == 0 { 8 } else { 1 + body.len() / 3 };
            let n = (1 + rng.below(max)).min(body.len() - at);
            chunks.push(Bytes::copy_from_slice(&body[at..at + n]));
            if rng.chance(1, 5) {
                chunks.push(Bytes::new());
            }
            at += n;
        }
        out.push(chunks);
    }
    // Cuts right before and after each newline, where line ends meet chunk ends.
    let mut chunks = Vec::new();
    let mut start = 0;
    for (i, &b) in body.iter().enumerate() {
        if b == b'\n' {
            for cut in [i, i + 1] {
                if cut > start {
                    chunks.push(Bytes::copy_from_slice(&body[start..cut]));
                    start = cut;
                }
            }
        }
    }
    chunks.push(Bytes::copy_from_slice(&body[start..]));
    out.push(chunks);
    out
}

fn decode<K: DeserializeOwned + Send>(
    chunks: Vec<Result<Bytes, Error>>,
    limit: usize,
) -> Vec<Item<K>> {
    let items = drain(decode_events_with_limit::<K, _, _>(
        URL.to_owned(),
        futures::stream::iter(chunks),
        limit,
    ));
    items
        .into_iter()
        .map(|item| match item {
            Ok(event) => Item::Event(event),
            Err(e) => {
                let text = e.to_string();
                let _ = format!("{e:?}");
                assert!(
                    text.contains(URL),
                    "the error does not name the URL: {text}"
                );
                match e {
                    Error::Decode { url, message, body } => {
                        assert_eq!(url, URL);
                        assert!(message.starts_with("watch event: "), "{message}");
                        // The line is described by its size, never quoted.
                        let n: usize = body
                            .strip_prefix("a ")
                            .and_then(|b| b.strip_suffix("-byte body"))
                            .and_then(|n| n.parse().ok())
                            .unwrap_or_else(|| {
                                panic!("a bad line is not described by its size: {body:?}")
                            });
                        Item::BadLine(n)
                    }
                    Error::TooLarge {
                        url,
                        what,
                        limit: l,
                        ..
                    } => {
                        assert_eq!((url.as_str(), what, l), (URL, "watch event", limit));
                        Item::TooLarge
                    }
                    Error::Transport { message, .. }
                        if message.starts_with("stream ended in the middle of an event (") =>
                    {
                        let n: usize = message["stream ended in the middle of an event (".len()..]
                            .split(' ')
                            .next()
                            .and_then(|n| n.parse().ok())
                            .unwrap_or_else(|| panic!("no byte count in {message:?}"));
                        Item::Cut(n)
                    }
                    Error::Transport { message, .. } if message == "injected" => Item::Transport,
                    other => panic!("an untyped or unexpected error: {other:?}"),
                }
            }
        })
        .collect()
}

fn check_typed<K: DeserializeOwned + Send + PartialEq + std::fmt::Debug>(body: &[u8]) {
    // The default limit (16 MiB, never reached here) and a small one
    // derived from the input, so that lines over the limit occur.
    let small = 16 + (fnv1a(body) % 400) as usize;
    for limit in [DEFAULT_MAX_EVENT_BYTES, small] {
        let want = model::<K>(body, true, limit);
        for chunks in chunkings(body) {
            let got = decode::<K>(chunks.iter().cloned().map(Ok).collect(), limit);
            assert_eq!(
                got,
                want,
                "limit {limit}, chunking {:?}",
                chunks.iter().map(Bytes::len).collect::<Vec<_>>()
            );
        }
    }
    // A transport error after a prefix: the complete lines of the prefix,
    // then that error.
    if !body.is_empty() {
        let cut = fnv1a(body) as usize % (body.len() + 1);
        let got = decode::<K>(
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
        );
        assert_eq!(
            got,
            model::<K>(&body[..cut], false, DEFAULT_MAX_EVENT_BYTES),
            "transport error at {cut}"
        );
    }
}

fn check_lines(body: &[u8]) {
    let mut want: Vec<String> = Vec::new();
    let mut pieces: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    let tail = pieces.pop().unwrap_or_default();
    for line in pieces {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        want.push(String::from_utf8_lossy(line).into_owned());
    }
    if !tail.is_empty() {
        want.push(String::from_utf8_lossy(tail).into_owned());
    }
    for chunks in chunkings(body) {
        let got: Vec<String> = drain(lines(
            URL.to_owned(),
            futures::stream::iter(chunks.into_iter().map(Ok::<_, Error>)),
        ))
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("lines failed on a clean stream: {e}")))
        .collect();
        assert_eq!(got, want);
    }
}

/// Runs one input.
pub fn check(body: &[u8]) {
    check_typed::<Value>(body);
    check_typed::<DynamicObject>(body);
    check_lines(body);
}

// ---- generators --------------------------------------------------------

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{1,12}",
        "\\PC{0,16}",
        Just("ünïcødé ✓ 🚀".to_owned()),
        Just("line\nbreak \"quoted\" \\ back".to_owned()),
    ]
}

fn object() -> impl Strategy<Value = Value> {
    (
        text(),
        prop::option::of("[a-z]{1,8}"),
        "[0-9]{1,8}",
        prop::collection::btree_map("[a-z./]{1,10}", text(), 0..3),
        prop::collection::btree_map("[a-zA-Z0-9._-]{1,10}", text(), 0..3),
        prop::sample::select(vec!["ConfigMap", "Pod", "Widget", ""]),
    )
        .prop_map(|(name, namespace, rv, labels, data, kind)| {
            json!({
                "apiVersion": "v1",
                "kind": kind,
                "metadata": {
                    "name": name, "namespace": namespace, "resourceVersion": rv,
                    "labels": labels, "uid": "0b0c2f4e-0000-4000-8000-000000000001",
                },
                "data": data,
            })
        })
}

fn event_line() -> impl Strategy<Value = String> {
    let event = (
        prop::sample::select(vec!["ADDED", "MODIFIED", "DELETED"]),
        object(),
    )
        .prop_map(|(t, o)| json!({"type": t, "object": o}).to_string());
    let bookmark = ("[0-9]{1,8}", any::<bool>()).prop_map(|(rv, end)| {
        let annotations = if end {
            json!({"k8s.io/initial-events-end": "true"})
        } else {
            json!({})
        };
        json!({"type": "BOOKMARK", "object": {"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"resourceVersion": rv, "annotations": annotations}}})
        .to_string()
    });
    let error =
        (prop::sample::select(vec![410, 500, 403, -1, 0]), text()).prop_map(|(code, msg)| {
            json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
            "status": "Failure", "message": msg, "reason": "Expired", "code": code}})
            .to_string()
        });
    let odd = prop::sample::select(vec![
        "",
        "   ",
        "\t",
        "null",
        "[]",
        "{}",
        r#"{"type":"ADDED"}"#,
        r#"{"type":"ADDED","object":5}"#,
        r#"{"type":"UNKNOWN","object":{}}"#,
        r#"{"object":{}}"#,
        r#"{"type":"BOOKMARK","object":{"metadata":{}}}"#,
        r#"{"type":"ADDED","object":{"metadata":{"name":5}}}"#,
        r#"{"type":"ADDED","object":{}} trailing"#,
        r#"{"type":"ADDED","type":"DELETED","object":{}}"#,
    ])
    .prop_map(str::to_owned);
    let garbage = "[^\n]{0,40}";
    prop_oneof![
        4 => event,
        2 => bookmark,
        1 => error,
        2 => odd,
        1 => garbage,
    ]
}

/// A watch body: lines of events, bookmarks, errors, blanks and garbage,
/// some truncated, ended by `\n` or `\r\n`, maybe with a partial tail.
pub fn body() -> impl Strategy<Value = Vec<u8>> {
    let line = (
        event_line(),
        any::<bool>(),
        any::<u16>(),
        prop::bool::weighted(0.1),
    );
    (
        prop::collection::vec(line, 0..8),
        prop::option::weighted(0.3, event_line()),
        any::<u16>(),
    )
        .prop_map(|(lines, tail, cut)| {
            let mut out = Vec::new();
            for (line, crlf, cut_at, truncate) in lines {
                let bytes = line.as_bytes();
                let bytes = if truncate && !bytes.is_empty() {
                    &bytes[..usize::from(cut_at) % bytes.len()]
                } else {
                    bytes
                };
                out.extend_from_slice(bytes);
                out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
            if let Some(tail) = tail {
                let t = tail.as_bytes();
                if !t.is_empty() {
                    out.extend_from_slice(&t[..usize::from(cut) % t.len()]);
                }
            }
            out
        })
}
