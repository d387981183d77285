//! Captures real seeds for the corpus from a real control plane: watch
//! bodies (initial events and their closing bookmark, changes, an in-stream
//! `410 Expired` after a compaction), error bodies (404, 409
//! AlreadyExists and Conflict, 422 with causes, a non-Status 404, a 504
//! "Too large resource version") and the control plane's kubeconfig.
//!
//! The seeds are committed; a program, not a test, refreshes them:
//! `cargo run -p kube-fuzz --example capture_corpus`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

fn corpus(target: &str, name: &str, bytes: &[u8]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    std::fs::write(dir.join(name), bytes).expect("write a seed");
}

async fn raw(
    client: &reqwest::Client,
    server: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, Vec<u8>) {
    let mut req = client
        .request(method, format!("{server}{path}"))
        .header("Accept", "application/json");
    if let Some(body) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    let resp = req.send().await.expect("send");
    let code = resp.status().as_u16();
    (code, resp.bytes().await.expect("body").to_vec())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    use reqwest::Method;
    let env = kube_testenv::shared().expect("a control plane");
    let access = env.access();
    let client = access.http_client().expect("client");
    let server = access.server.as_str();
    let ns = env.namespace("fuzz-seeds").await.expect("namespace");
    let cms = format!("/api/v1/namespaces/{ns}/configmaps");
    let cm = |name: &str, data: serde_json::Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"app": "fuzz", "tier": "seed"}, "annotations": {"note": "ünïcødé ✓"}},
            "data": data})
    };
    for (name, data) in [
        ("a", json!({"k": "v"})),
        (
            "b",
            json!({"multi": "line one\nline \"two\"\n", "empty": ""}),
        ),
    ] {
        let (code, _) = raw(&client, server, Method::POST, &cms, Some(cm(name, data))).await;
        assert_eq!(code, 201);
    }

    // A streaming list: the initial ADDED events and the closing bookmark.
    let (code, body) = raw(&client, server, Method::GET,
        &format!("{cms}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=2"), None).await;
    assert_eq!(code, 200);
    assert!(
        body.windows(8).any(|w| w == b"BOOKMARK"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    corpus("watch", "real-streaming-list.jsonl", &body);

    // Changes while watching from the current version.
    let (_, list) = raw(&client, server, Method::GET, &cms, None).await;
    let list: serde_json::Value = serde_json::from_slice(&list).expect("list");
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_owned();
    let watch = {
        let client = client.clone();
        let path = format!("{cms}?watch=true&resourceVersion={rv}&timeoutSeconds=3");
        let server = server.to_owned();
        tokio::spawn(async move { raw(&client, &server, Method::GET, &path, None).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    raw(
        &client,
        server,
        Method::POST,
        &cms,
        Some(cm("c", json!({"x": "1"}))),
    )
    .await;
    raw(
        &client,
        server,
        Method::PUT,
        &format!("{cms}/c"),
        Some(cm("c", json!({"x": "2"}))),
    )
    .await;
    raw(&client, server, Method::DELETE, &format!("{cms}/c"), None).await;
    let (code, body) = watch.await.expect("watch task");
    assert_eq!(code, 200);
    corpus("watch", "real-changes.jsonl", &body);

    // A watch from a compacted version, on a fresh API server (whose watch
    // cache cannot serve it): an in-stream ERROR (410 Expired); a list at
    // that exact version: a 410 Gone body.
    let plane = env.control_plane().expect("own control plane");
    plane.compact_etcd().expect("compact");
    tokio::task::block_in_place(|| {
        plane.stop_apiserver();
        plane.start_apiserver().expect("restart the API server");
    });
    let (_, body) = raw(
        &client,
        server,
        Method::GET,
        &format!("{cms}?watch=true&resourceVersion={rv}&timeoutSeconds=2"),
        None,
    )
    .await;
    assert!(
        body.windows(7).any(|w| w == b"Expired"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    corpus("watch", "real-expired.jsonl", &body);
    let (code, body) = raw(
        &client,
        server,
        Method::GET,
        &format!("{cms}?resourceVersion={rv}&resourceVersionMatch=Exact"),
        None,
    )
    .await;
    assert_eq!(code, 410);
    corpus("status", "real-410-gone.json", &body);

    // Error bodies.
    let (code, body) = raw(&client, server, Method::GET, &format!("{cms}/nope"), None).await;
    assert_eq!(code, 404);
    corpus("status", "real-404-not-found.json", &body);
    let (code, body) = raw(
        &client,
        server,
        Method::POST,
        &cms,
        Some(cm("a", json!({}))),
    )
    .await;
    assert_eq!(code, 409);
    corpus("status", "real-409-already-exists.json", &body);
    let mut stale = cm("a", json!({"k": "w"}));
    stale["metadata"]["resourceVersion"] = json!("1");
    let (code, body) = raw(
        &client,
        server,
        Method::PUT,
        &format!("{cms}/a"),
        Some(stale),
    )
    .await;
    assert_eq!(code, 409);
    corpus("status", "real-409-conflict.json", &body);
    let (code, body) = raw(
        &client,
        server,
        Method::POST,
        &cms,
        Some(cm("Not_Valid", json!({"bad key!": "v"}))),
    )
    .await;
    assert_eq!(code, 422);
    corpus("status", "real-422-invalid.json", &body);
    let (code, body) = raw(
        &client,
        server,
        Method::GET,
        "/apis/nope.example.com/v1/things",
        None,
    )
    .await;
    assert_eq!(code, 404);
    corpus("status", "real-404-not-a-status.txt", &body);
    let (code, body) = raw(
        &client,
        server,
        Method::GET,
        &format!("{cms}?resourceVersion=999999999&resourceVersionMatch=NotOlderThan"),
        None,
    )
    .await;
    assert!(code >= 400, "{code}");
    corpus(
        "status",
        &format!("real-{code}-too-large-resource-version.json"),
        &body,
    );

    // The control plane's kubeconfig (a throw-away cluster's credentials).
    let kubeconfig = std::fs::read(env.kubeconfig()).expect("kubeconfig");
    corpus("kubeconfig", "real-testenv.yaml", &kubeconfig);
}
