//! `portforward`: a byte stream to a port of a Pod, and a local TCP
//! listener that forwards each accepted connection, as
//! `kubectl port-forward` does.
//!
//! Each [`PortForwardStream`] is its own WebSocket (subprotocol
//! `v4.channel.k8s.io`, query `ports=N`: the API server's name, which it
//! passes on to the kubelet as `port`), as kubectl's WebSocket
//! port-forward opens one per connection. The kubelet begins both of its
//! channels (0: data, 1: error) with the port in two little-endian bytes;
//! this module checks that prefix and strips it.
//!
//! Guarantees: a failure the kubelet reports on the error channel (nothing
//! listening, the Pod gone) ends the stream with [`Error::PortForward`],
//! carrying the kubelet's text cut to 1 KiB of printable characters; a
//! prefix naming another port, or a message on another channel, is an
//! [`Error::Protocol`]; reads fail with these (wrapped in `io::Error`, see
//! [`super::io_error_cause`]) rather than ending quietly. Dropping the
//! stream closes its WebSocket. The protocol cannot half-close: shutting
//! down the write side stops sending, but the kubelet only learns of it
//! when the stream is dropped.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use k8s_openapi::api::core::v1::Pod;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, DuplexStream, ReadBuf};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::ws::{self, Socket};
use super::{ChannelReader, OutputTx, deliver_error, frame};
use crate::api::Api;
use crate::error::{Error, Result};
use crate::params::push_query;

const DATA: u8 = 0;
const ERROR: u8 = 1;
const PROTOCOL: &str = "v4.channel.k8s.io";
/// How much of the error channel's text is kept.
const MAX_ERROR_TEXT: usize = 1024;
/// How much one data message carries at most.
const CHUNK: usize = 32 * 1024;

/// A connection to a port of a Pod: read what the Pod's side sends, write
/// what it receives. Its `Debug` shows the port and how many bytes wait
/// to be read, never the bytes.
pub struct PortForwardStream {
    reader: ChannelReader,
    writer: DuplexStream,
    port: u16,
    task: JoinHandle<()>,
}

impl PortForwardStream {
    /// The Pod's port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl std::fmt::Debug for PortForwardStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortForwardStream")
            .field("port", &self.port)
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

impl Drop for PortForwardStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AsyncRead for PortForwardStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for PortForwardStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}

impl Api<Pod> {
    /// Opens a connection to `port` of Pod `name` (`pods/portforward`).
    pub async fn portforward(&self, name: &str, port: u16) -> Result<PortForwardStream> {
        if port == 0 {
            return Err(Error::InvalidRequest(
                "port-forward: port 0 is not a port".into(),
            ));
        }
        let mut query = String::new();
        push_query(&mut query, "ports", &port.to_string());
        let path = self.path(Some(name), Some("portforward"), &query)?;
        let socket = ws::connect(self.client(), path, &[PROTOCOL]).await?;
        Ok(spawn(socket, port))
    }

    /// Forwards every connection accepted by `listener` to `port` of Pod
    /// `name`, each over a stream of its own, until the returned
    /// [`PortForwarder`] is dropped or stopped. A connection whose stream
    /// fails to open or breaks is closed and logged (`tracing` warn).
    pub fn portforward_listener(
        &self,
        name: &str,
        port: u16,
        listener: TcpListener,
    ) -> std::io::Result<PortForwarder> {
        let local_addr = listener.local_addr()?;
        let api = self.clone();
        let name = name.to_string();
        let task = tokio::spawn(async move {
            loop {
                let (mut local, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "port-forward: accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (api, name) = (api.clone(), name.clone());
                tokio::spawn(async move {
                    let mut remote = match api.portforward(&name, port).await {
                        Ok(remote) => remote,
                        Err(e) => {
                            tracing::warn!(%peer, error = %e, "port-forward: cannot open a stream");
                            return;
                        }
                    };
                    if let Err(e) = tokio::io::copy_bidirectional(&mut local, &mut remote).await {
                        tracing::warn!(%peer, error = %e, "port-forward: connection ended");
                    }
                });
            }
        });
        Ok(PortForwarder { local_addr, task })
    }
}

/// A running local listener of [`Api::portforward_listener`]. Dropping it
/// stops accepting (connections already forwarded go on to their end).
#[derive(Debug)]
pub struct PortForwarder {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl PortForwarder {
    /// The local address being forwarded.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for PortForwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn spawn(socket: Socket, port: u16) -> PortForwardStream {
    let (writer, from_user) = tokio::io::duplex(2 * CHUNK);
    let (tx, reader) = ChannelReader::new();
    let pump = Pump {
        socket,
        port,
        from_user: Some(from_user),
        to_user: Some(tx.clone()),
        prefix: [Vec::new(), Vec::new()],
        error_text: Vec::new(),
    };
    let task = tokio::spawn(async move {
        if let Err(e) = pump.run().await {
            deliver_error(tx, &e);
        }
    });
    PortForwardStream {
        reader,
        writer,
        port,
        task,
    }
}

struct Pump {
    socket: Socket,
    port: u16,
    from_user: Option<DuplexStream>,
    to_user: Option<OutputTx>,
    /// The port prefix read so far on the data and error channels.
    prefix: [Vec<u8>; 2],
    error_text: Vec<u8>,
}

impl Pump {
    async fn run(mut self) -> Result<()> {
        let outcome = self.pump().await;
        self.socket.close().await;
        // What the kubelet reported stands even if the connection broke
        // after it.
        if !self.error_text.is_empty() {
            let text = String::from_utf8_lossy(&self.error_text);
            return Err(Error::PortForward {
                url: self.socket.url.clone(),
                port: self.port,
                message: text.chars().filter(|c| !c.is_control()).collect(),
            });
        }
        outcome
    }

    /// Moves data until the server closes the socket.
    async fn pump(&mut self) -> Result<()> {
        let mut buf = vec![0u8; CHUNK];
        loop {
            tokio::select! {
                message = self.socket.next() => match message? {
                    None => return Ok(()),
                    Some(message) => self.incoming(message).await?,
                },
                read = async { self.from_user.as_mut()?.read(&mut buf).await.ok() }, if self.from_user.is_some() => {
                    match read {
                        Some(n) if n > 0 => self.socket.send(frame(DATA, &buf[..n])).await?,
                        // The user shut down writing: nothing to tell
                        // the kubelet (the protocol has no half-close).
                        _ => self.from_user = None,
                    }
                },
            }
        }
    }

    async fn incoming(&mut self, message: Message) -> Result<()> {
        let data = match message {
            Message::Binary(data) => data,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Close(_) => {
                return Ok(());
            }
            Message::Text(_) => {
                return Err(self.violation("a text message on a binary protocol".into()));
            }
        };
        let Some(&channel) = data.first() else {
            return Ok(());
        };
        if channel != DATA && channel != ERROR {
            return Err(self.violation(format!(
                "a message on channel {channel}; a port-forward of one port uses 0 and 1"
            )));
        }
        let mut payload = data.slice(1..);
        let prefix = &mut self.prefix[usize::from(channel)];
        if prefix.len() < 2 {
            let take = (2 - prefix.len()).min(payload.len());
            prefix.extend_from_slice(&payload.split_to(take));
            if prefix.len() == 2 {
                let announced = u16::from_le_bytes([prefix[0], prefix[1]]);
                if announced != self.port {
                    return Err(self.violation(format!(
                        "channel {channel} began with port {announced}, not {}",
                        self.port
                    )));
                }
            }
        }
        if payload.is_empty() {
            return Ok(());
        }
        if channel == DATA {
            if let Some(tx) = &self.to_user
                && tx.send(Ok(payload)).await.is_err()
            {
                self.to_user = None;
            }
        } else {
            let room = MAX_ERROR_TEXT.saturating_sub(self.error_text.len());
            self.error_text
                .extend_from_slice(&payload[..room.min(payload.len())]);
        }
        Ok(())
    }

    fn violation(&self, message: String) -> Error {
        Error::Protocol {
            url: self.socket.url.clone(),
            message,
        }
    }
}
