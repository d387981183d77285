//! The request observer sees every attempt: a retried request once per
//! attempt with each attempt's status, a request that found no server with
//! no status. Retries need answers the real API server does not give on
//! demand, so a tiny scripted HTTP/1.1 server on 127.0.0.1 answers here
//! (the real control plane's 200/201/404 are observed in kube-runtime's
//! admin test).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::client::{RequestAttempt, RequestObserver, RetryPolicy};
use kube_client::config::{Config, Kubeconfig};
use kube_client::{Api, Client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One observed attempt: method, host, status, duration.
type Seen = (String, String, Option<u16>, Duration);

/// What the observer was told.
#[derive(Default)]
struct Recorder(Mutex<Vec<Seen>>);

impl RequestObserver for Recorder {
    fn observe(&self, a: &RequestAttempt<'_>) {
        self.0
            .lock()
            .unwrap()
            .push((a.method.into(), a.host.into(), a.status, a.duration));
    }
}

impl Recorder {
    /// The attempts without their durations.
    fn seen(&self) -> Vec<(String, String, Option<u16>)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(m, h, s, _)| (m.clone(), h.clone(), *s))
            .collect()
    }
}

/// Answers the N-th connection with `answers[N]` (status line and body),
/// one request per connection.
async fn scripted(answers: Vec<(&'static str, &'static str)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for (status, body) in answers {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    format!("127.0.0.1:{}", addr.port())
}

fn client(host: &str, retry: RetryPolicy, recorder: Arc<Recorder>) -> Client {
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n    \
         server: http://{host}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n\
         users:\n- name: u\n  user: {{}}\n"
    );
    let kc = Kubeconfig::from_yaml(&kubeconfig).unwrap();
    let config = Config::from_kubeconfig(&kc, &Default::default()).unwrap();
    Client::builder(config)
        .retry(retry)
        .request_observer(recorder)
        .build()
        .unwrap()
}

const CM: &str =
    r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"default"}}"#;

#[tokio::test]
async fn a_retried_request_is_observed_once_per_attempt() {
    let host = scripted(vec![
        ("503 Service Unavailable", "{}"),
        ("503 Service Unavailable", "{}"),
        ("200 OK", CM),
    ])
    .await;
    let recorder = Arc::new(Recorder::default());
    let retry = RetryPolicy {
        max_retries: 4,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    let api: Api<ConfigMap> = Api::namespaced(client(&host, retry, recorder.clone()), "default");
    api.get("x").await.unwrap();
    let get = |status| ("GET".to_string(), host.clone(), Some(status));
    assert_eq!(recorder.seen(), vec![get(503), get(503), get(200)]);
    // Each duration is one attempt's, not the backoff between them.
    for (_, _, _, took) in recorder.0.lock().unwrap().iter() {
        assert!(*took < Duration::from_secs(5), "{took:?}");
    }
}

#[tokio::test]
async fn an_attempt_without_an_answer_has_no_status() {
    // A port nobody listens on: bind one, then close it.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let host = format!("127.0.0.1:{port}");
    let recorder = Arc::new(Recorder::default());
    let api: Api<ConfigMap> = Api::namespaced(
        client(&host, RetryPolicy::none(), recorder.clone()),
        "default",
    );
    api.get("x").await.unwrap_err();
    assert_eq!(recorder.seen(), vec![("GET".to_string(), host, None)]);
}
