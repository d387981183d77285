//! The WebSocket protocols of exec, attach and port-forward against a
//! scripted WebSocket server on 127.0.0.1 (plain http): what a real server
//! will not do on demand — a connection cut mid-stream, frames that break
//! the protocol, an oversized message, a refused upgrade, a server that
//! only speaks `v4.channel.k8s.io` — and the exact frames the client sends
//! (the `v5` close of stdin, resize messages, the port query).

mod common;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::scripted::{config, within};
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube_client::api::remote::{AttachParams, ProcessStatus, TerminalSize, io_error_cause};
use kube_client::client::RetryPolicy;
use kube_client::{Api, Client, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

type Ws = WebSocketStream<TcpStream>;

/// A WebSocket server choosing `protocol` and running `script` on every
/// connection; returns its URL and the request URIs it saw.
async fn ws_server<F, Fut>(protocol: &'static str, script: F) -> (String, Arc<Mutex<Vec<String>>>)
where
    F: Fn(Ws) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let script = Arc::new(script);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (record, script) = (record.clone(), script.clone());
            tokio::spawn(async move {
                // tungstenite's callback type fixes the (large) error type.
                #[allow(clippy::result_large_err)]
                let callback = |req: &Request, mut resp: Response| {
                    record.lock().unwrap().push(req.uri().to_string());
                    resp.headers_mut()
                        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
                    Ok(resp)
                };
                if let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await {
                    script(ws).await;
                }
            });
        }
    });
    (url, seen)
}

/// The binary messages a scripted server received, in order.
type Received = Arc<Mutex<Vec<Vec<u8>>>>;

/// [`ws_server`] whose script is also handed the record of what the
/// client sent, which the test reads afterwards.
async fn recording_ws_server<F, Fut>(
    protocol: &'static str,
    script: F,
) -> (String, Arc<Mutex<Vec<String>>>, Received)
where
    F: Fn(Ws, Received) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let received = Received::default();
    let record = received.clone();
    let (url, seen) = ws_server(protocol, move |ws| script(ws, record.clone())).await;
    (url, seen, received)
}

fn pods(url: &str) -> Api<Pod> {
    pods_with(url, 16 * 1024 * 1024)
}

fn pods_with(url: &str, max_message: usize) -> Api<Pod> {
    let client = Client::builder(config(url))
        .retry(RetryPolicy::none())
        .max_watch_event_bytes(max_message)
        .build()
        .unwrap();
    Api::namespaced(client, "default")
}

fn bin(channel: u8, data: &[u8]) -> Message {
    let mut v = vec![channel];
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

/// The next binary message, or `None` at the end or after 500 ms of silence.
async fn recv(ws: &mut Ws) -> Option<Vec<u8>> {
    loop {
        match tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => return Some(b.to_vec()),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => return None,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

const EXIT_3: &str = r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;

async fn read_all(mut r: impl tokio::io::AsyncRead + Unpin) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).await.map(|_| out)
}

#[tokio::test]
async fn v5_exec_sends_stdin_then_its_close_and_decodes_output_and_exit_code() {
    within(20, async {
        let (url, seen, got) =
            recording_ws_server("v5.channel.k8s.io", |mut ws, record| async move {
                // Everything the client sends until its stdin close.
                while let Some(m) = recv(&mut ws).await {
                    let close = m == [255, 0];
                    record.lock().unwrap().push(m);
                    if close {
                        break;
                    }
                }
                ws.send(bin(1, b"out\n")).await.unwrap();
                ws.send(bin(2, b"err\n")).await.unwrap();
                ws.send(bin(3, EXIT_3.as_bytes())).await.unwrap();
                ws.close(None).await.unwrap();
            })
            .await;
        let ap = AttachParams::default().stdin(true).container("main");
        let mut p = pods(&url)
            .exec("shell", ["sh", "-c", "cat; exit 3"], &ap)
            .await
            .unwrap();
        assert_eq!(p.protocol(), "v5.channel.k8s.io");
        let mut stdin = p.stdin().unwrap();
        stdin.write_all(b"hello").await.unwrap();
        stdin.shutdown().await.unwrap();
        let (out, err) = (p.stdout().unwrap(), p.stderr().unwrap());
        let (out, err) = tokio::join!(read_all(out), read_all(err));
        assert_eq!(out.unwrap(), b"out\n");
        assert_eq!(err.unwrap(), b"err\n");
        let status = p.take_status().unwrap().await.unwrap();
        assert_eq!(status, ProcessStatus::ExitCode(3));
        assert_eq!(
            *got.lock().unwrap(),
            vec![b"\x00hello".to_vec(), vec![255, 0]]
        );
        assert_eq!(
            seen.lock().unwrap()[0],
            "/api/v1/namespaces/default/pods/shell/exec?command=sh&command=-c\
             &command=cat%3B%20exit%203&container=main&stdin=true&stdout=true&stderr=true"
        );
    })
    .await
}

#[tokio::test]
async fn a_v4_server_gets_no_close_message_and_a_clean_end_is_success() {
    within(20, async {
        let (url, _, got) = recording_ws_server("v4.channel.k8s.io", |mut ws, record| async move {
            // Until 500 ms of silence: v4 has no close message.
            while let Some(m) = recv(&mut ws).await {
                record.lock().unwrap().push(m);
            }
            ws.send(bin(1, b"done")).await.unwrap();
            ws.close(None).await.unwrap();
        })
        .await;
        let mut p = pods(&url)
            .exec("shell", ["cat"], &AttachParams::default().stdin(true))
            .await
            .unwrap();
        assert_eq!(p.protocol(), "v4.channel.k8s.io");
        let mut stdin = p.stdin().unwrap();
        stdin.write_all(b"x").await.unwrap();
        drop(stdin);
        assert_eq!(read_all(p.stdout().unwrap()).await.unwrap(), b"done");
        // No status on the error channel: success, as client-go reads v4.
        assert_eq!(
            p.take_status().unwrap().await.unwrap(),
            ProcessStatus::Success
        );
        assert_eq!(*got.lock().unwrap(), vec![b"\x00x".to_vec()]);
    })
    .await
}

#[tokio::test]
async fn a_tty_resize_is_sent_as_json_on_channel_4() {
    within(20, async {
        let (url, seen, got) =
            recording_ws_server("v5.channel.k8s.io", |mut ws, record| async move {
                if let Some(m) = recv(&mut ws).await {
                    record.lock().unwrap().push(m);
                }
                ws.send(bin(3, br#"{"status":"Success"}"#)).await.unwrap();
                ws.close(None).await.unwrap();
            })
            .await;
        let mut p = pods(&url)
            .attach("shell", &AttachParams::interactive_tty())
            .await
            .unwrap();
        let resize = p.terminal_size().unwrap();
        resize
            .send(TerminalSize {
                width: 100,
                height: 30,
            })
            .await
            .unwrap();
        assert_eq!(
            p.take_status().unwrap().await.unwrap(),
            ProcessStatus::Success
        );
        assert_eq!(
            *got.lock().unwrap(),
            vec![b"\x04{\"Width\":100,\"Height\":30}".to_vec()]
        );
        assert_eq!(
            seen.lock().unwrap()[0],
            "/api/v1/namespaces/default/pods/shell/attach?stdin=true&stdout=true&tty=true"
        );
    })
    .await
}

#[tokio::test]
async fn a_connection_cut_mid_stream_is_a_transport_error_for_readers_and_status() {
    within(20, async {
        let (url, _) = ws_server("v5.channel.k8s.io", |mut ws| async move {
            ws.send(bin(1, b"partial")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            // Dropped: the TCP connection ends without a WebSocket close.
            drop(ws);
        })
        .await;
        let mut p = pods(&url)
            .exec("shell", ["yes"], &AttachParams::default())
            .await
            .unwrap();
        let mut out = p.stdout().unwrap();
        let mut buf = Vec::new();
        let e = out.read_to_end(&mut buf).await.unwrap_err();
        assert_eq!(buf, b"partial");
        assert!(
            matches!(io_error_cause(&e), Some(Error::Transport { .. })),
            "{e:?}"
        );
        let e = p.take_status().unwrap().await.unwrap_err();
        assert!(e.is_transport(), "{e:?}");
        assert!(e.to_string().contains("/pods/shell/exec"), "{e}");
    })
    .await
}

/// Runs `script`, execs, and returns the status's error.
async fn exec_error<F, Fut>(max_message: usize, script: F) -> Error
where
    F: Fn(Ws) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (url, _) = ws_server("v5.channel.k8s.io", script).await;
    let mut p = pods_with(&url, max_message)
        .exec("shell", ["true"], &AttachParams::default())
        .await
        .unwrap();
    let (out, err) = (p.stdout().unwrap(), p.stderr().unwrap());
    let (out, _) = tokio::join!(read_all(out), read_all(err));
    assert!(out.is_err(), "a reader sees the failure");
    p.take_status().unwrap().await.unwrap_err()
}

#[tokio::test]
async fn garbage_frames_oversized_messages_and_unknown_channels_are_typed_errors() {
    within(30, async {
        // A frame with a reserved opcode.
        let e = exec_error(1 << 20, |mut ws| async move {
            ws.get_mut().write_all(&[0x83, 0x00]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
        })
        .await;
        assert!(matches!(e, Error::Protocol { .. }), "{e:?}");

        // A message over the client's limit (1 KiB here).
        let e = exec_error(1024, |mut ws| async move {
            let _ = ws.send(bin(1, &[b'x'; 4096])).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        })
        .await;
        match &e {
            Error::TooLarge {
                limit: 1024,
                setting,
                ..
            } => {
                assert_eq!(*setting, "ClientBuilder::max_watch_event_bytes")
            }
            other => panic!("{other:?}"),
        }

        // A channel exec does not use, and a text message.
        for message in [bin(9, b"?"), Message::Text("hunter2".into())] {
            let e = exec_error(1 << 20, move |mut ws| {
                let message = message.clone();
                async move {
                    let _ = ws.send(message).await;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            })
            .await;
            assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }

        // An error channel that is not a Status.
        let e = exec_error(1 << 20, |mut ws| async move {
            ws.send(bin(3, b"secret-ish text")).await.unwrap();
            ws.close(None).await.unwrap();
        })
        .await;
        assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
        assert!(!e.to_string().contains("secret-ish"), "{e}");
    })
    .await
}

/// A plain HTTP server answering every request with `answer`.
async fn http_answer(answer: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp.write_all(answer.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn a_refused_upgrade_is_the_servers_status_and_a_non_upgrade_is_a_protocol_error() {
    within(20, async {
        let url = http_answer(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: 94\r\n\r\n\
             {\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"no exec for you\",\"reason\":\"Forbidden\",\"code\":403}",
        )
        .await;
        let e = pods(&url)
            .exec("shell", ["true"], &AttachParams::default())
            .await
            .unwrap_err();
        assert!(e.is_forbidden(), "{e:?}");

        let url = http_answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").await;
        let e = pods(&url).portforward("web", 80).await.unwrap_err();
        assert!(matches!(e, Error::Protocol { .. }), "{e:?}");

        // A 101 without the right accept key.
        let url = http_answer(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: bm90IHRoZSBrZXk=\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n",
        )
        .await;
        let e = pods(&url)
            .exec("shell", ["true"], &AttachParams::default())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Protocol { .. }), "{e:?}");

        // A subprotocol we did not offer.
        let (url, _) = ws_server("v3.channel.k8s.io", |_| async {}).await;
        let e = pods(&url)
            .exec("shell", ["true"], &AttachParams::default())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
    })
    .await
}

/// A port-forward server for `port`: announces it on both channels, then
/// echoes channel 0 upper-cased; a message `fail` makes it report an error.
async fn echo_forward(port: u16) -> (String, Arc<Mutex<Vec<String>>>) {
    ws_server("v4.channel.k8s.io", move |mut ws| async move {
        let prefix = port.to_le_bytes();
        ws.send(bin(0, &prefix)).await.unwrap();
        ws.send(bin(1, &prefix)).await.unwrap();
        while let Some(m) = recv(&mut ws).await {
            assert_eq!(m[0], 0, "the client writes on the data channel");
            if &m[1..] == b"fail" {
                ws.send(bin(1, b"connection refused\n")).await.unwrap();
                break;
            }
            ws.send(bin(0, &m[1..].to_ascii_uppercase())).await.unwrap();
        }
        let _ = ws.close(None).await;
    })
    .await
}

#[tokio::test]
async fn port_forward_strips_the_port_prefix_and_reports_the_error_channel() {
    within(20, async {
        let (url, seen) = echo_forward(8080).await;
        let api = pods(&url);
        let mut stream = api.portforward("web", 8080).await.unwrap();
        stream.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"PING");
        stream.write_all(b"fail").await.unwrap();
        let mut rest = Vec::new();
        let e = stream.read_to_end(&mut rest).await.unwrap_err();
        match io_error_cause(&e) {
            Some(Error::PortForward {
                port: 8080,
                message,
                ..
            }) => {
                assert_eq!(message, "connection refused")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            seen.lock().unwrap()[0],
            "/api/v1/namespaces/default/pods/web/portforward?ports=8080"
        );

        // A prefix naming another port.
        let (url, _) = echo_forward(9999).await;
        let mut stream = pods(&url).portforward("web", 8080).await.unwrap();
        let e = stream.read_to_end(&mut Vec::new()).await.unwrap_err();
        assert!(
            matches!(io_error_cause(&e), Some(Error::Protocol { .. })),
            "{e:?}"
        );
    })
    .await
}

#[tokio::test]
async fn the_local_listener_forwards_concurrent_connections_each_on_its_own_stream() {
    within(30, async {
        let (url, seen) = echo_forward(80).await;
        let api = pods(&url);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let forwarder = api.portforward_listener("web", 80, listener).unwrap();
        let local = forwarder.local_addr();
        let clients = (0..50).map(|i| async move {
            let mut conn = TcpStream::connect(local).await.unwrap();
            let text = format!("connection {i}");
            conn.write_all(text.as_bytes()).await.unwrap();
            let mut buf = vec![0u8; text.len()];
            conn.read_exact(&mut buf).await.unwrap();
            assert_eq!(buf, text.to_ascii_uppercase().as_bytes());
        });
        futures::future::join_all(clients).await;
        assert_eq!(
            seen.lock().unwrap().len(),
            50,
            "one WebSocket per connection"
        );
    })
    .await
}

#[tokio::test]
async fn debug_output_shows_neither_streamed_bytes_nor_the_command() {
    within(20, async {
        // Forwarded data waiting in a reader's buffer.
        let (url, _) = echo_forward(8080).await;
        let mut stream = pods(&url).portforward("web", 8080).await.unwrap();
        stream.write_all(b"hunter2").await.unwrap();
        let mut first = [0u8; 1];
        stream.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"H");
        let shown = format!("{stream:?}");
        assert!(!shown.contains("UNTER2"), "{shown}");
        assert!(shown.contains("8080"), "{shown}");

        // The command (it may carry a password) and the streams of a process.
        let (url, _) = ws_server("v5.channel.k8s.io", |mut ws| async move {
            while recv(&mut ws).await.is_some() {}
        })
        .await;
        let mut process = pods(&url)
            .exec(
                "web",
                ["sh", "-c", "login --password s3cret"],
                &AttachParams::default().stdin(true),
            )
            .await
            .unwrap();
        let shown = format!("{process:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        let stdout = process.stdout().unwrap();
        let shown = format!("{stdout:?} {process:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        process.abort();
    })
    .await
}
