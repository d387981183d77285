//! Streaming subresources of a Pod over WebSocket: `exec`, `attach` and
//! `portforward`.
//!
//! # How the streams travel
//!
//! kube-apiserver serves these subresources by *upgrading* an HTTP/1.1 GET
//! to a WebSocket and relaying it to the node's kubelet. Several byte
//! streams share the one socket: each binary message starts with one byte,
//! the *channel*, and the rest is that channel's data.
//!
//! - exec and attach (subprotocol `v5.channel.k8s.io`, else
//!   `v4.channel.k8s.io`): channel 0 is stdin, 1 stdout, 2 stderr, 3 the
//!   error channel (one `metav1.Status` saying how the process ended) and 4
//!   terminal resizes (JSON `{"Width":…,"Height":…}`). `v5` adds channel
//!   255: the message `[255, c]` closes channel `c`, which is how the end of
//!   stdin reaches a command such as `cat`. `v4` has no such message, so
//!   with a server that only speaks `v4` a command reading stdin to its end
//!   never sees it.
//! - port-forward (subprotocol `v4.channel.k8s.io`, the kubelet's WebSocket
//!   protocol): one WebSocket per connection, for one port; channel 0
//!   carries the data and channel 1 the errors; the server starts each of
//!   them with the port number (2 bytes, little endian).
//!
//! # Guarantees
//!
//! - The upgrade goes through the client's own pipeline — credentials
//!   (exec plugins included), impersonation, user agent, TLS (the
//!   configured CA or the platform's roots, `tls-server-name`, client
//!   certificates), proxies including SOCKS5, retries of refused
//!   connections — but over a second HTTP client that speaks HTTP/1.1 only
//!   and offers only `http/1.1` in TLS ALPN: a connection that negotiated
//!   HTTP/2 cannot be upgraded.
//! - The answer must be `101 Switching Protocols` with the right
//!   `Sec-WebSocket-Accept` and one of the subprotocols offered; anything
//!   else is a typed error ([`Error::Api`](crate::Error::Api) when the
//!   server refused with a `Status`, [`Error::Protocol`](crate::Error::Protocol)
//!   otherwise).
//! - Every message read is capped at the client's
//!   [`max_watch_event_bytes`](crate::ClientBuilder::max_watch_event_bytes)
//!   (16 MiB by default); a larger one ends the stream with
//!   [`Error::TooLarge`](crate::Error::TooLarge). A message on a channel the
//!   protocol does not use, or a text message, ends it with
//!   [`Error::Protocol`](crate::Error::Protocol). A connection cut without a
//!   WebSocket close ends it with [`Error::Transport`](crate::Error::Transport).
//!   Each of these reaches the readers as an `io::Error` wrapping the
//!   [`Error`](crate::Error) (see [`io_error_cause`]) and the status future,
//!   never as a hang.
//! - Pod name, namespace and subresource go through
//!   [`crate::path::segment`]; the command, container and ports go into the
//!   query, percent-encoded.
//! - Output is handed over through bounded buffers: a reader that does not
//!   read holds the stream back (as a full pipe does) rather than letting
//!   memory grow. Read stdout and stderr concurrently with writing stdin.
//! - `Debug` of a reader, a port-forward stream or an
//!   [`AttachedProcess`] never shows the bytes streamed (output, forwarded
//!   data) nor the exec URL, which holds the command.

mod exec;
mod portforward;
mod ws;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

pub use exec::{AttachParams, AttachedProcess, ProcessStatus, TerminalSize};
pub use portforward::{PortForwardStream, PortForwarder};

/// How many messages of output wait for their reader before the stream is
/// held back.
const OUTPUT_QUEUE: usize = 16;

/// The sending side of a [`ChannelReader`].
type OutputTx = mpsc::Sender<io::Result<Bytes>>;

/// The [`Error`](crate::Error) inside an `io::Error` that a stream of this
/// module returned, if it carries one (a cut connection, a protocol
/// violation, a port-forward failure).
pub fn io_error_cause(e: &io::Error) -> Option<&crate::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<crate::Error>())
}

/// One output channel of a remote stream (stdout, stderr, a forwarded
/// port's data), as an [`AsyncRead`]. It ends (reads 0 bytes) when the
/// remote side closed the channel, and fails with an `io::Error` wrapping
/// the [`Error`](crate::Error) when the stream broke. Its `Debug` shows how
/// many bytes wait to be read, never the bytes (process output, forwarded
/// data).
pub struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    pending: Bytes,
}

impl ChannelReader {
    fn new() -> (OutputTx, Self) {
        let (tx, rx) = mpsc::channel(OUTPUT_QUEUE);
        (
            tx,
            Self {
                rx,
                pending: Bytes::new(),
            },
        )
    }
}

impl std::fmt::Debug for ChannelReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelReader")
            .field("buffered_bytes", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl AsyncRead for ChannelReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.pending.is_empty() {
            match ready!(self.rx.poll_recv(cx)) {
                Some(Ok(bytes)) => self.pending = bytes,
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = self.pending.len().min(buf.remaining());
        let chunk = self.pending.split_to(n);
        buf.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}

/// Hands `error` to a reader without blocking the caller: the reader gets
/// it after the output already queued, or never if it was dropped.
fn deliver_error(tx: OutputTx, error: &crate::Error) {
    let e = io::Error::other(error.clone());
    tokio::spawn(async move {
        let _ = tx.send(Err(e)).await;
    });
}

/// A message for `channel` carrying `data`.
fn frame(channel: u8, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(channel);
    out.extend_from_slice(data);
    Bytes::from(out)
}
