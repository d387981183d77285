//! Length-prefixed frames: the framing of a protobuf watch.
//!
//! A watch answered in protobuf (`application/vnd.kubernetes.protobuf;stream=watch`)
//! is not lines: its body is a sequence of frames, each a 4-byte big-endian
//! length followed by that many bytes (one `WatchEvent` message). The
//! splitter here reads body chunks as they arrive and yields each complete
//! frame, with the guarantees of the JSON line splitter:
//! - a frame split across chunks is joined; several frames in one chunk
//!   are yielded one by one;
//! - a frame whose announced length is over the limit (the client's
//!   [`max_watch_event_bytes`](crate::ClientBuilder::max_watch_event_bytes))
//!   ends the stream with an [`Error::TooLarge`] as soon as its 4-byte
//!   prefix is read: the frame is not read, so memory never holds more than
//!   the limit plus one chunk;
//! - a clean end of the body between frames ends the stream; a body cut
//!   inside a length prefix or a frame ends it with an `Err` saying how many
//!   bytes of the frame had arrived;
//! - a transport error ends the stream with that error.
//!
//! What a frame holds is not looked at here: a frame that does not decode
//! is the decoder's error item, and since the framing itself is intact the
//! next frame is read as usual.

use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};

use super::EVENT_SETTING;
use crate::error::{Error, Result};

/// Bytes of the length prefix of a frame.
const PREFIX: usize = 4;

/// Splits a stream of body chunks into length-prefixed frames (see the
/// module docs), each at most `max_frame_bytes` long.
pub(crate) fn frames<S, E>(
    url: String,
    chunks: S,
    max_frame_bytes: usize,
) -> impl Stream<Item = Result<Bytes>> + Send
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
    E: Into<Error> + Send,
{
    struct State<S> {
        chunks: S,
        buf: BytesMut,
        done: bool,
    }
    let init = State {
        chunks,
        buf: BytesMut::new(),
        done: false,
    };
    futures::stream::unfold(init, move |mut st| {
        let url = url.clone();
        async move {
            if st.done {
                return None;
            }
            loop {
                let announced = (st.buf.len() >= PREFIX).then(|| {
                    let len = u32::from_be_bytes([st.buf[0], st.buf[1], st.buf[2], st.buf[3]]);
                    len as usize
                });
                if let Some(len) = announced {
                    if len > max_frame_bytes {
                        // Not an event any server sends: stop reading here.
                        st.done = true;
                        st.buf = BytesMut::new();
                        let err = Error::TooLarge {
                            url,
                            what: "watch event",
                            limit: max_frame_bytes,
                            setting: EVENT_SETTING,
                        };
                        return Some((Err(err), st));
                    }
                    if st.buf.len() >= PREFIX + len {
                        st.buf.advance(PREFIX);
                        let frame = st.buf.split_to(len).freeze();
                        return Some((Ok(frame), st));
                    }
                }
                match st.chunks.next().await {
                    Some(Ok(chunk)) => st.buf.extend_from_slice(&chunk),
                    Some(Err(e)) => {
                        st.done = true;
                        st.buf = BytesMut::new();
                        return Some((Err(e.into()), st));
                    }
                    None => {
                        st.done = true;
                        if st.buf.is_empty() {
                            return None;
                        }
                        let message = match announced {
                            Some(len) => format!(
                                "stream ended in the middle of a frame ({} of {len} bytes)",
                                st.buf.len() - PREFIX
                            ),
                            None => format!(
                                "stream ended in the middle of a frame's length ({} of {PREFIX} bytes)",
                                st.buf.len()
                            ),
                        };
                        st.buf = BytesMut::new();
                        return Some((
                            Err(Error::Transport {
                                method: "GET".into(),
                                url,
                                message,
                            }),
                            st,
                        ));
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    async fn split(parts: Vec<Vec<u8>>, limit: usize) -> Vec<Result<Bytes>> {
        let chunks = futures::stream::iter(
            parts
                .into_iter()
                .map(|p| Ok::<_, Error>(Bytes::from(p)))
                .collect::<Vec<_>>(),
        );
        frames("https://h/w".into(), chunks, limit).collect().await
    }

    #[tokio::test]
    async fn frames_are_joined_across_chunks_and_split_within_one() {
        let mut both = frame(b"first");
        both.extend(frame(b""));
        both.extend(frame(b"third"));
        let (a, b) = both.split_at(2);
        let (b, c) = b.split_at(5);
        let got = split(vec![a.to_vec(), b.to_vec(), c.to_vec()], 64).await;
        let got: Vec<_> = got.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(got, [&b"first"[..], b"", b"third"]);
    }

    #[tokio::test]
    async fn a_frame_over_the_limit_is_refused_from_its_prefix() {
        // Only the prefix of the big frame arrives: the error comes without
        // waiting for (or reading) its bytes, and nothing after it is read.
        let mut body = frame(&[7; 16]);
        body.extend((17u32).to_be_bytes());
        let got = split(vec![body, frame(b"never")], 16).await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].as_ref().unwrap().len(), 16);
        match &got[1] {
            Err(
                e @ Error::TooLarge {
                    what: "watch event",
                    limit: 16,
                    ..
                },
            ) => assert!(e.to_string().contains("max_watch_event_bytes"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_cut_inside_a_frame_or_its_prefix_is_an_error() {
        let whole = frame(b"abcdef");
        let got = split(vec![frame(b"ok"), whole[..7].to_vec()], 64).await;
        assert_eq!(got.len(), 2);
        let err = got[1].as_ref().unwrap_err().to_string();
        assert!(
            err.contains("middle of a frame (3 of 6 bytes)") && err.contains("https://h/w"),
            "{err}"
        );
        let got = split(vec![vec![0, 0]], 64).await;
        let err = got[0].as_ref().unwrap_err().to_string();
        assert!(err.contains("frame's length (2 of 4 bytes)"), "{err}");
    }

    #[tokio::test]
    async fn a_transport_error_ends_the_stream() {
        let chunks = futures::stream::iter(vec![
            Ok(Bytes::from(frame(b"a"))),
            Err(Error::Transport {
                method: "GET".into(),
                url: "u".into(),
                message: "reset".into(),
            }),
            Ok(Bytes::from(frame(b"b"))),
        ]);
        let got: Vec<_> = frames("u".into(), chunks, 64).collect().await;
        assert_eq!(got.len(), 2);
        assert!(matches!(&got[1], Err(Error::Transport { message, .. }) if message == "reset"));
        assert!(split(vec![], 64).await.is_empty());
    }
}
