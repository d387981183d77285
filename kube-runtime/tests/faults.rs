//! Watcher behaviour the real API server will not show on demand, against a
//! tiny scripted HTTP/1.1 server on 127.0.0.1: a watch that goes silent
//! without closing, and a server that refuses streaming lists.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::config::{Config, Kubeconfig};
use kube_client::{Api, Client};
use kube_runtime::{BackoffConfig, Reflector, ReflectorConfig, WatcherConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the server does with one request.
#[derive(Clone)]
enum Reply {
    /// A complete JSON answer.
    Json(u16, String),
    /// A chunked watch answer: these lines, then silence (the connection
    /// stays open until the test ends).
    WatchThenHang(Vec<String>),
}

/// Serves the N-th request with `replies[N]` (the last repeats); returns
/// the URL and the request lines seen.
async fn serve(replies: Vec<Reply>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (replies, log) = (replies.clone(), log.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut tmp).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&tmp[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&buf)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push(line);
                    log.len() - 1
                };
                match &replies[n.min(replies.len() - 1)] {
                    Reply::Json(code, body) => {
                        let head = format!(
                            "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = socket.write_all(head.as_bytes()).await;
                        let _ = socket.write_all(body.as_bytes()).await;
                    }
                    Reply::WatchThenHang(lines) => {
                        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                        let _ = socket.write_all(head.as_bytes()).await;
                        for l in lines {
                            let data = format!("{l}\n");
                            let _ = socket
                                .write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes())
                                .await;
                        }
                        let _ = socket.flush().await;
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                }
            });
        }
    });
    (url, seen)
}

fn api(url: &str) -> Api<ConfigMap> {
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters: [{{name: f, cluster: {{server: '{url}'}}}}]\ncontexts: [{{name: f, context: {{cluster: f}}}}]\ncurrent-context: f\n"
    );
    let config =
        Config::from_kubeconfig(&Kubeconfig::from_yaml(&yaml).unwrap(), &Default::default())
            .unwrap();
    Api::namespaced(Client::try_from(config).unwrap(), "default")
}

fn added(name: &str, rv: u32) -> String {
    format!(
        r#"{{"type":"ADDED","object":{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","namespace":"default","resourceVersion":"{rv}"}}}}}}"#
    )
}

fn config(watcher: WatcherConfig) -> ReflectorConfig {
    ReflectorConfig {
        watcher: WatcherConfig {
            watch_timeout: Duration::from_secs(1),
            idle_margin: Duration::from_secs(1),
            backoff: BackoffConfig {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(200),
                ..BackoffConfig::default()
            },
            ..watcher
        },
        ..ReflectorConfig::default()
    }
}

#[tokio::test]
async fn a_silent_watch_is_abandoned_and_resumed_from_the_last_version() {
    let list = r#"{"metadata":{"resourceVersion":"7"},"items":[]}"#.to_string();
    let (url, seen) = serve(vec![
        Reply::Json(200, list),
        Reply::WatchThenHang(vec![]), // silent, never closed
        Reply::WatchThenHang(vec![added("after-silence", 8)]),
    ])
    .await;
    let mut rf = Reflector::with_config(
        api(&url),
        config(WatcherConfig::default().list_then_watch()),
    );
    tokio::time::timeout(Duration::from_secs(5), rf.poll())
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), rf.poll())
        .await
        .expect("the silent watch was not abandoned")
        .unwrap();
    assert!(rf.reader().get(Some("default"), "after-silence").is_some());
    let lines = seen.lock().unwrap().clone();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[1].contains("watch=true") && lines[1].contains("resourceVersion=7"),
        "{lines:?}"
    );
    assert!(
        lines[2].contains("watch=true") && lines[2].contains("resourceVersion=7"),
        "resumed, not relisted: {lines:?}"
    );
}

#[tokio::test]
async fn a_server_refusing_streaming_lists_gets_list_then_watch() {
    let refusal = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Invalid","code":422,
        "message":"ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"}"#;
    let list = format!(
        r#"{{"metadata":{{"resourceVersion":"3"}},"items":[{}]}}"#,
        r#"{"metadata":{"name":"listed","namespace":"default","resourceVersion":"3"}}"#
    );
    let (url, seen) = serve(vec![
        Reply::Json(422, refusal.replace('\n', "")),
        Reply::Json(200, list),
        Reply::WatchThenHang(vec![added("watched", 4)]),
    ])
    .await;
    let mut rf = Reflector::with_config(api(&url), config(WatcherConfig::default()));
    tokio::time::timeout(Duration::from_secs(5), rf.poll())
        .await
        .unwrap()
        .unwrap();
    assert!(rf.reader().get(Some("default"), "listed").is_some());
    tokio::time::timeout(Duration::from_secs(5), rf.poll())
        .await
        .unwrap()
        .unwrap();
    assert!(rf.reader().get(Some("default"), "watched").is_some());
    let lines = seen.lock().unwrap().clone();
    assert!(lines[0].contains("sendInitialEvents=true"), "{lines:?}");
    assert!(
        !lines[1].contains("watch=true") && lines[1].contains("resourceVersion=0"),
        "{lines:?}"
    );
    assert!(
        lines[2].contains("watch=true") && lines[2].contains("resourceVersion=3"),
        "{lines:?}"
    );
}
