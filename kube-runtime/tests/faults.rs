//! Watcher behaviour the real API server will not show on demand, against a
//! tiny scripted HTTP/1.1 server on 127.0.0.1: a watch that goes silent
//! without closing, a server that refuses streaming lists, the backoff's
//! timing around 410 Gone and after a healthy watch, and timeouts too large
//! for arithmetic.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::config::{Config, Kubeconfig};
use kube_client::{Api, Client};
use kube_runtime::{BackoffConfig, Event, Reflector, ReflectorConfig, Watcher, WatcherConfig};
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
    /// A chunked watch answer: these lines, then the end of the stream.
    WatchThenClose(Vec<String>),
    /// A chunked watch answer: these lines, each after this pause, then
    /// silence.
    WatchPaced(Vec<String>, Duration),
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
                    Reply::WatchPaced(lines, pause) => {
                        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                        let _ = socket.write_all(head.as_bytes()).await;
                        let _ = socket.flush().await;
                        for l in lines {
                            tokio::time::sleep(*pause).await;
                            let data = format!("{l}\n");
                            let _ = socket
                                .write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes())
                                .await;
                            let _ = socket.flush().await;
                        }
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    Reply::WatchThenHang(lines) | Reply::WatchThenClose(lines) => {
                        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                        let _ = socket.write_all(head.as_bytes()).await;
                        for l in lines {
                            let data = format!("{l}\n");
                            let _ = socket
                                .write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes())
                                .await;
                        }
                        let _ = socket.flush().await;
                        if matches!(&replies[n.min(replies.len() - 1)], Reply::WatchThenClose(_)) {
                            let _ = socket.write_all(b"0\r\n\r\n").await;
                            let _ = socket.shutdown().await;
                        } else {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
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
async fn silence_counts_from_the_last_event_not_from_the_watch_start() {
    // Silence allowed: 1 s + 1 s. Events every 0.8 s for 3.2 s (longer than
    // that) keep the watch; 2 s after the last one it is given up and
    // resumed from the last event's version.
    let events = (8..12).map(|rv| added(&format!("cm-{rv}"), rv)).collect();
    let (url, seen) = serve(vec![
        Reply::Json(200, EMPTY_LIST.into()),
        Reply::WatchPaced(events, Duration::from_millis(800)),
        Reply::WatchThenHang(vec![]),
    ])
    .await;
    let mut w = Watcher::<ConfigMap>::new(
        api(&url),
        config(WatcherConfig::default().list_then_watch()).watcher,
    );
    assert_eq!(timed_next(&mut w).await.0.unwrap(), Event::Init);
    assert_eq!(timed_next(&mut w).await.0.unwrap(), Event::InitDone);
    for rv in 8..12 {
        match timed_next(&mut w).await.0.unwrap() {
            Event::Apply(cm) => assert_eq!(cm.metadata.name.unwrap(), format!("cm-{rv}")),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "one watch carried every event"
    );
    let started = tokio::time::Instant::now();
    // The next call gives up the silent watch and opens another.
    let resumed = tokio::time::timeout(Duration::from_secs(4), async {
        while seen.lock().unwrap().len() < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    tokio::select! {
        item = w.next() => panic!("nothing more was sent, yet: {item:?}"),
        done = resumed => done.expect("the silent watch was not given up"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_millis(3500),
        "given up {waited:?} after the last event, the limit is 2 s"
    );
    let lines = seen.lock().unwrap().clone();
    assert!(
        lines[2].contains("watch=true") && lines[2].contains("resourceVersion=11"),
        "resumed from the last event: {lines:?}"
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

const EMPTY_LIST: &str = r#"{"metadata":{"resourceVersion":"7"},"items":[]}"#;

fn gone_event() -> String {
    r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 7 (9)","reason":"Expired","code":410}}"#.into()
}

fn internal_error() -> Reply {
    Reply::Json(
        500,
        r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"boom","reason":"InternalError","code":500}"#.into(),
    )
}

fn watcher(url: &str, backoff: BackoffConfig) -> Watcher<ConfigMap> {
    Watcher::new(
        api(url),
        WatcherConfig {
            backoff,
            ..WatcherConfig::default().list_then_watch()
        },
    )
}

/// `watcher.next()` within 10 s, and how long it took.
async fn timed_next(
    w: &mut Watcher<ConfigMap>,
) -> (Result<Event<ConfigMap>, kube_client::Error>, Duration) {
    let started = tokio::time::Instant::now();
    let item = tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("watcher.next() hung");
    (item, started.elapsed())
}

#[tokio::test]
async fn an_expired_version_relists_at_once_but_only_once_per_healthy_spell() {
    let (url, seen) = serve(vec![
        Reply::Json(200, EMPTY_LIST.into()),
        Reply::WatchThenHang(vec![gone_event()]),
        Reply::Json(200, EMPTY_LIST.into()),
        // Gone again before the watch delivered anything: a failure now.
        Reply::WatchThenHang(vec![gone_event()]),
        Reply::Json(200, EMPTY_LIST.into()),
        Reply::WatchThenHang(vec![added("after", 8)]),
    ])
    .await;
    let backoff = BackoffConfig {
        initial: Duration::from_secs(2),
        max: Duration::from_secs(2),
        jitter: false,
    };
    let mut w = watcher(&url, backoff);
    assert_eq!(timed_next(&mut w).await.0.unwrap(), Event::Init);
    assert_eq!(timed_next(&mut w).await.0.unwrap(), Event::InitDone);
    let (gone, _) = timed_next(&mut w).await;
    assert!(gone.unwrap_err().is_gone());
    let (relist, waited) = timed_next(&mut w).await;
    assert_eq!(relist.unwrap(), Event::Init);
    assert!(
        waited < Duration::from_secs(1),
        "the expected relist waited {waited:?} (backoff 2 s)"
    );
    assert_eq!(timed_next(&mut w).await.0.unwrap(), Event::InitDone);
    assert!(timed_next(&mut w).await.0.unwrap_err().is_gone());
    let (relist, waited) = timed_next(&mut w).await;
    assert_eq!(relist.unwrap(), Event::Init);
    assert!(
        waited >= Duration::from_millis(1900),
        "a second 410 without a delivering watch in between backs off: {waited:?}"
    );
    assert_eq!(timed_next(&mut w).await.0.unwrap(), Event::InitDone);
    assert!(matches!(
        timed_next(&mut w).await.0.unwrap(),
        Event::Apply(_)
    ));
    let lines = seen.lock().unwrap().clone();
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert!(
        !lines[2].contains("watch=true") && !lines[2].contains("resourceVersion="),
        "the relist is a consistent list: {lines:?}"
    );
}

#[tokio::test]
async fn a_watch_that_delivers_again_resets_the_backoff() {
    let (url, _) = serve(vec![
        Reply::Json(200, EMPTY_LIST.into()),
        internal_error(),
        internal_error(),
        internal_error(),
        Reply::WatchThenClose(vec![added("x", 8)]),
        internal_error(),
        Reply::WatchThenHang(vec![added("y", 9)]),
    ])
    .await;
    let backoff = BackoffConfig {
        initial: Duration::from_millis(300),
        max: Duration::from_secs(10),
        jitter: false,
    };
    let mut w = watcher(&url, backoff);
    assert_eq!(timed_next(&mut w).await.0.unwrap(), Event::Init);
    assert_eq!(timed_next(&mut w).await.0.unwrap(), Event::InitDone);
    let mut waits = vec![];
    for _ in 0..3 {
        let (err, waited) = timed_next(&mut w).await;
        assert_eq!(err.unwrap_err().code(), Some(500));
        waits.push(waited);
    }
    // Failures in a row double the delay: 0, 300 ms, 600 ms …
    assert!(waits[1] >= Duration::from_millis(280), "{waits:?}");
    assert!(waits[2] >= Duration::from_millis(580), "{waits:?}");
    let (x, waited) = timed_next(&mut w).await;
    assert!(matches!(x.unwrap(), Event::Apply(_)));
    assert!(
        waited >= Duration::from_millis(1150),
        "third step 1.2 s: {waited:?}"
    );
    // The watch ends cleanly and the resume fails: the first step again.
    assert_eq!(timed_next(&mut w).await.0.unwrap_err().code(), Some(500));
    let (y, waited) = timed_next(&mut w).await;
    assert!(matches!(y.unwrap(), Event::Apply(_)));
    assert!(
        waited < Duration::from_millis(900),
        "after a delivering watch the backoff restarts at 300 ms, not 2.4 s: {waited:?}"
    );
}

#[tokio::test]
async fn extreme_timeouts_and_backoff_saturate() {
    let (url, seen) = serve(vec![
        Reply::Json(200, EMPTY_LIST.into()),
        Reply::WatchThenHang(vec![added("watched", 8)]),
    ])
    .await;
    let mut w = Watcher::<ConfigMap>::new(
        api(&url),
        WatcherConfig {
            watch_timeout: Duration::MAX,
            idle_margin: Duration::MAX,
            backoff: BackoffConfig {
                initial: Duration::MAX,
                max: Duration::MAX,
                jitter: true,
            },
            ..WatcherConfig::default().list_then_watch()
        },
    );
    assert_eq!(timed_next(&mut w).await.0.unwrap(), Event::Init);
    assert_eq!(timed_next(&mut w).await.0.unwrap(), Event::InitDone);
    assert!(matches!(
        timed_next(&mut w).await.0.unwrap(),
        Event::Apply(_)
    ));
    let lines = seen.lock().unwrap().clone();
    assert!(
        lines[1].contains("timeoutSeconds=4294967295"),
        "the server is asked for the longest timeout a u32 holds: {lines:?}"
    );
}
