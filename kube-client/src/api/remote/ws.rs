//! Opening a WebSocket to the API server, and what its failures become.
//!
//! Guarantees: the upgrade is an HTTP/1.1 GET sent through the client's
//! pipeline (see [`crate::client`]) on its HTTP/1.1-only connection pool;
//! the socket is used only after the answer was `101` with the
//! `Sec-WebSocket-Accept` derived from our key and a subprotocol we
//! offered; every message and frame read is capped at `max_message_bytes`.

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::client::Client;
use crate::error::{Error, Result};

/// An open WebSocket and what it is.
pub(super) struct Socket {
    pub stream: WebSocketStream<reqwest::Upgraded>,
    /// The subprotocol the server chose.
    pub protocol: &'static str,
    /// The full URL, for errors.
    pub url: String,
    /// The cap on one message, for errors.
    pub max_message_bytes: usize,
}

/// Upgrades a GET of `path` (path and query) to a WebSocket speaking one
/// of `protocols` (in order of preference).
pub(super) async fn connect(
    client: &Client,
    path: String,
    protocols: &[&'static str],
) -> Result<Socket> {
    let url = format!("{}{}", client.server_url(), path);
    let key = generate_key();
    let req = http::Request::builder()
        .method(http::Method::GET)
        .uri(path)
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "websocket")
        .header(http::header::SEC_WEBSOCKET_VERSION, "13")
        .header(http::header::SEC_WEBSOCKET_KEY, &key)
        .header(http::header::SEC_WEBSOCKET_PROTOCOL, protocols.join(", "))
        .header(http::header::ACCEPT_ENCODING, "identity")
        .body(Vec::new())
        .map_err(|e| Error::InvalidRequest(e.to_string()))?;
    let (resp, url_sent) = client.request_upgrade(req).await?;
    debug_assert_eq!(url, url_sent);
    let protocol_error = |message: String| Error::Protocol {
        url: url.clone(),
        message,
    };
    let accept = resp
        .headers()
        .get(http::header::SEC_WEBSOCKET_ACCEPT)
        .and_then(|v| v.to_str().ok());
    if accept != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return Err(protocol_error(
            "the answer's Sec-WebSocket-Accept does not match our key".into(),
        ));
    }
    let chosen = resp
        .headers()
        .get(http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(protocol) = protocols.iter().copied().find(|p| *p == chosen) else {
        return Err(protocol_error(format!(
            "the server chose no subprotocol we offered ({}): it may be too old",
            protocols.join(", ")
        )));
    };
    let upgraded = resp
        .upgrade()
        .await
        .map_err(|e| crate::client::transport_error("GET", &url, &e))?;
    let max_message_bytes = client.max_event_bytes();
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message_bytes))
        .max_frame_size(Some(max_message_bytes));
    let stream = WebSocketStream::from_raw_socket(upgraded, Role::Client, Some(config)).await;
    tracing::debug!(%url, protocol, "WebSocket open");
    Ok(Socket {
        stream,
        protocol,
        url,
        max_message_bytes,
    })
}

impl Socket {
    /// Sends one binary message.
    pub async fn send(&mut self, message: bytes::Bytes) -> Result<()> {
        self.stream
            .send(Message::Binary(message))
            .await
            .map_err(|e| self.error(e))
    }

    /// The next message: `Ok(None)` after the server's close (or the end of
    /// the connection right after it).
    pub async fn next(&mut self) -> Result<Option<Message>> {
        match self.stream.next().await {
            None | Some(Ok(Message::Close(_))) => Ok(None),
            Some(Ok(m)) => Ok(Some(m)),
            Some(Err(e)) => Err(self.error(e)),
        }
    }

    /// Closes the socket politely (errors ignored: it may be gone).
    pub async fn close(&mut self) {
        let _ = self.stream.close(None).await;
    }

    /// A tungstenite error as one of ours.
    pub fn error(&self, e: tungstenite::Error) -> Error {
        ws_error(&self.url, self.max_message_bytes, e)
    }
}

/// Maps a tungstenite error on the stream of `url`.
pub(super) fn ws_error(url: &str, limit: usize, e: tungstenite::Error) -> Error {
    use tungstenite::Error as E;
    match e {
        E::Capacity(_) => Error::TooLarge {
            url: url.to_string(),
            what: "WebSocket message",
            limit,
            setting: "ClientBuilder::max_watch_event_bytes",
        },
        E::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            Error::Transport {
                method: "GET".into(),
                url: url.to_string(),
                message: "the connection was cut without a WebSocket close".into(),
            }
        }
        E::Protocol(p) => Error::Protocol {
            url: url.to_string(),
            message: p.to_string(),
        },
        E::Utf8(_) => Error::Protocol {
            url: url.to_string(),
            message: "a text message that is not UTF-8".into(),
        },
        other => Error::Transport {
            method: "GET".into(),
            url: url.to_string(),
            message: format!("the stream broke: {other}"),
        },
    }
}
