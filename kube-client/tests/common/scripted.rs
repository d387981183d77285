//! A tiny scripted HTTP/1.1 server on 127.0.0.1 (plain http, no TLS), for
//! faults the real API server will not produce on demand.
//!
//! Each test scripts the server's raw bytes: the server answers the N-th
//! request with the N-th reply (the last one repeats), one request per
//! connection, and records when each request arrived.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::client::RetryPolicy;
use kube_client::config::{Config, Kubeconfig};
use kube_client::{Api, Client, WatchEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One step of a reply: bytes to write (and flush), the same bytes written
/// many times (a body too large to script as one buffer), or a pause.
pub enum Step {
    Write(Vec<u8>),
    Repeat(Vec<u8>, usize),
    Sleep(Duration),
}

/// The whole scripted answer to one request; the connection is closed after it.
pub type Reply = Vec<Step>;

/// A request the server saw.
#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    /// The request line, e.g. `GET /api/v1/... HTTP/1.1`.
    pub line: String,
    /// The whole request head (request line and headers).
    pub head: String,
}

pub struct Server {
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Server {
    /// Listens on 127.0.0.1:0; the N-th request gets `replies[N]` (the last
    /// reply repeats).
    pub async fn start(replies: Vec<Reply>) -> Self {
        assert!(!replies.is_empty());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(Vec::new()));
        let replies = Arc::new(replies);
        let accept = tokio::spawn({
            let hits = hits.clone();
            async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let hits = hits.clone();
                    let replies = replies.clone();
                    tokio::spawn(async move {
                        let _ = serve_one(socket, &hits, &replies).await;
                    });
                }
            }
        });
        Self { url, hits, accept }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.hits.lock().unwrap().len()
    }

    /// A client for this server.
    pub fn client(&self, retry: RetryPolicy) -> Client {
        Client::builder(config(&self.url))
            .retry(retry)
            .build()
            .unwrap()
    }

    /// ConfigMaps in `default` through this server.
    pub fn api(&self, retry: RetryPolicy) -> Api<ConfigMap> {
        Api::namespaced(self.client(retry), "default")
    }

    /// The URL the client uses for ConfigMap `name` in `default`.
    pub fn cm_url(&self, name: &str) -> String {
        format!("{}/api/v1/namespaces/default/configmaps/{name}", self.url)
    }
}

async fn serve_one(
    mut socket: TcpStream,
    hits: &Mutex<Vec<Hit>>,
    replies: &[Reply],
) -> std::io::Result<()> {
    let head = read_request(&mut socket).await?;
    let line = head.lines().next().unwrap_or_default().to_string();
    let index = {
        let mut hits = hits.lock().unwrap();
        hits.push(Hit {
            at: Instant::now(),
            line,
            head,
        });
        hits.len() - 1
    };
    for step in &replies[index.min(replies.len() - 1)] {
        match step {
            Step::Write(bytes) => {
                socket.write_all(bytes).await?;
                socket.flush().await?;
            }
            Step::Repeat(bytes, times) => {
                for _ in 0..*times {
                    socket.write_all(bytes).await?;
                }
                socket.flush().await?;
            }
            Step::Sleep(d) => tokio::time::sleep(*d).await,
        }
    }
    socket.shutdown().await
}

/// Reads one request (head and `Content-Length` body); returns its head.
async fn read_request(socket: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = socket.read(&mut tmp).await?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let content_length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < content_length {
        let n = socket.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        have += n;
    }
    Ok(head)
}

/// A complete response with `Content-Length` and `Connection: close`.
pub fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

pub fn reply(status: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    vec![Step::Write(response(status, headers, body.as_bytes()))]
}

pub const CM_X: &str =
    r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"default"}}"#;

pub fn ok_cm() -> Reply {
    reply("200 OK", &[("Content-Type", "application/json")], CM_X)
}

pub fn status_json(code: u16, reason: &str, message: &str) -> String {
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    })
    .to_string()
}

/// The head of a chunked 200 answer (a watch).
pub fn chunked_head() -> Step {
    Step::Write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_vec(),
    )
}

/// One chunk of a chunked body, framing included.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// The last chunk: a clean end of the body.
pub fn end_chunk() -> Step {
    Step::Write(b"0\r\n\r\n".to_vec())
}

/// A watch line (with its newline) adding ConfigMap `name`.
pub fn added(name: &str) -> String {
    format!(
        "{}\n",
        serde_json::json!({
            "type": "ADDED",
            "object": {"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "namespace": "default", "resourceVersion": "7"}},
        })
    )
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 4,
        min_delay: ms(10),
        max_delay: ms(50),
    }
}

/// A config for `url` made the way a user's kubeconfig would make it: no
/// CA, no user, everything else default.
pub fn config(url: &str) -> Config {
    let yaml = format!(
        "apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: '{url}'}}}}]
contexts: [{{name: fake, context: {{cluster: fake}}}}]
current-context: fake
"
    );
    let config =
        Config::from_kubeconfig(&Kubeconfig::from_yaml(&yaml).unwrap(), &Default::default())
            .unwrap();
    assert!(config.root_certs.is_none());
    assert_eq!(config.cluster_url.scheme(), "http");
    config
}

/// Fails the test instead of hanging.
pub async fn within<F: Future>(secs: u64, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("the test did not finish within {secs} s"))
}

/// The next item of a stream (`None` at its end), or a failure after 10 s.
pub async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("no item and no end of stream within 10 s")
}

pub fn expect_added(item: Option<kube_client::Result<WatchEvent<ConfigMap>>>, name: &str) {
    match item {
        Some(Ok(WatchEvent::Added(cm))) => {
            assert_eq!(cm.metadata.name.as_deref(), Some(name))
        }
        other => panic!("expected ADDED {name}, got {other:?}"),
    }
}
