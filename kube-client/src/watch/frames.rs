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
use futures::Stream;

use super::{Chunks, Refill};
use crate::error::{Error, Result};

/// Bytes of the length prefix of a frame.
const PREFIX: usize = 4;

/// Splits a stream of body chunks into length-prefixed frames (see the
/// module docs), each at most `max_frame_bytes` long.
///
/// A frame that lies whole inside one chunk (the usual case: the API server
/// flushes each event as it is written) is handed out as a slice of that
/// chunk, without a copy; only a frame split across chunks is assembled in a
/// buffer, and only its own bytes are copied there.
pub(crate) fn frames<S, E>(
    url: String,
    chunks: S,
    max_frame_bytes: usize,
) -> impl Stream<Item = Result<Bytes>> + Send
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
    E: Into<Error> + Send,
{
    futures::stream::unfold(Chunks::new(url, chunks), move |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            if st.partial.is_empty()
                && let Some(len) = announced(&st.pending)
            {
                if len > max_frame_bytes {
                    return Some((Err(st.too_large("watch event", max_frame_bytes)), st));
                }
                if st.pending.len() >= PREFIX + len {
                    // The whole frame is in this chunk: a slice, no copy.
                    st.pending.advance(PREFIX);
                    let frame = st.pending.split_to(len);
                    return Some((Ok(frame), st));
                }
            }
            if !st.pending.is_empty() {
                // Assemble a frame split across chunks: copy what it still
                // lacks (its prefix first, then its bytes) and no more.
                let wanted = match announced(&st.partial) {
                    None => PREFIX - st.partial.len(),
                    Some(len) if len > max_frame_bytes => {
                        return Some((Err(st.too_large("watch event", max_frame_bytes)), st));
                    }
                    Some(len) => PREFIX + len - st.partial.len(),
                };
                let take = wanted.min(st.pending.len());
                st.partial.extend_from_slice(&st.pending.split_to(take));
                match announced(&st.partial) {
                    Some(len) if len > max_frame_bytes => {
                        return Some((Err(st.too_large("watch event", max_frame_bytes)), st));
                    }
                    Some(len) if st.partial.len() == PREFIX + len => {
                        st.partial.advance(PREFIX);
                        let frame = st.partial.split().freeze();
                        return Some((Ok(frame), st));
                    }
                    _ => continue,
                }
            }
            match st.refill().await {
                Refill::Chunk => {}
                Refill::Failed(e) => return Some((Err(e), st)),
                Refill::Ended => {
                    if st.partial.is_empty() {
                        return None;
                    }
                    let message = match announced(&st.partial) {
                        Some(len) => format!(
                            "stream ended in the middle of a frame ({} of {len} bytes)",
                            st.partial.len() - PREFIX
                        ),
                        None => format!(
                            "stream ended in the middle of a frame's length ({} of {PREFIX} bytes)",
                            st.partial.len()
                        ),
                    };
                    st.partial = BytesMut::new();
                    let error = st.cut_short(message);
                    return Some((Err(error), st));
                }
            }
        }
    })
}

/// The length a buffer's frame announces, once its prefix is complete.
fn announced(buf: &[u8]) -> Option<usize> {
    let prefix: [u8; PREFIX] = buf.get(..PREFIX)?.try_into().ok()?;
    Some(u32::from_be_bytes(prefix) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

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
    async fn any_chunking_gives_the_same_frames_and_whole_frames_are_not_copied() {
        let mut body = frame(b"first");
        body.extend(frame(b""));
        body.extend(frame(&[9; 40]));
        body.extend(frame(b"last"));
        let whole = split(vec![body.clone()], 64).await;
        let whole: Vec<_> = whole.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(whole.len(), 4);
        for a in 0..=body.len() {
            for b in a..=body.len() {
                let parts = vec![body[..a].to_vec(), body[a..b].to_vec(), body[b..].to_vec()];
                let got: Vec<_> = split(parts, 64)
                    .await
                    .into_iter()
                    .map(|r| r.unwrap())
                    .collect();
                assert_eq!(got, whole, "chunks cut at {a} and {b}");
            }
        }
        // Frames inside one chunk are slices of it.
        let chunk = Bytes::from(body);
        let range = chunk.as_ptr_range();
        let chunks = futures::stream::iter(vec![Ok::<_, Error>(chunk.clone())]);
        let got: Vec<_> = frames("u".into(), chunks, 64).collect().await;
        for frame in got
            .iter()
            .map(|r| r.as_ref().unwrap())
            .filter(|f| !f.is_empty())
        {
            assert!(range.contains(&frame.as_ptr()), "a frame was copied");
        }
    }

    #[tokio::test]
    async fn a_split_prefix_over_the_limit_is_refused_too() {
        // The over-limit prefix arrives in two chunks, after a frame split
        // the same way: refused once its fourth byte is read.
        let mut body = frame(b"abc");
        body.extend(1000u32.to_be_bytes());
        let got = split(
            vec![body[..2].to_vec(), body[2..9].to_vec(), body[9..].to_vec()],
            16,
        )
        .await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].as_ref().unwrap(), &b"abc"[..]);
        assert!(
            matches!(got[1], Err(Error::TooLarge { limit: 16, .. })),
            "{got:?}"
        );
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
