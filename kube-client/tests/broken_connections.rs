//! Connections that break before the answer is complete, against the
//! scripted HTTP/1.1 server on 127.0.0.1 (`common::scripted`): the server
//! sends part of an answer's head and then closes the connection (an early
//! EOF) or resets it (RST).
//!
//! A GET is sent again, within the retry budget, as client-go does; every
//! other method gets a transport error after its one request, since the
//! server may already have acted on it. A body cut short after a complete
//! head is not retried (the answer had begun).

mod common;

use std::future::Future;

use common::scripted::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::client::RetryPolicy;
use kube_client::params::{DeleteParams, Patch, PatchParams, PostParams};
use kube_client::{Api, Error};

/// Part of an answer's head, then the connection ends: closed in order
/// (FIN, an early EOF for the client) or reset (RST).
fn broken(reset: bool) -> Reply {
    let mut steps = vec![
        Step::Write(b"HTTP/1.1 200 OK\r\nContent-Type: applic".to_vec()),
        Step::Sleep(ms(20)),
    ];
    if reset {
        steps.push(Step::Reset);
    }
    steps
}

fn assert_transport(err: &Error, method: &str) {
    match err {
        Error::Transport { method: m, .. } => assert_eq!(m, method, "{err:?}"),
        other => panic!("expected a transport error for {method}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_get_cut_off_by_an_early_eof_succeeds_on_the_second_attempt() {
    within(30, async {
        let server = Server::start(vec![broken(false), ok_cm()]).await;
        let cm = server.api(fast_retries()).get("x").await.unwrap();
        assert_eq!(cm.metadata.name.as_deref(), Some("x"));
        let hits = server.hits();
        assert_eq!(hits.len(), 2, "{hits:?}");
        assert!(hits.iter().all(|h| h.line.starts_with("GET ")), "{hits:?}");
    })
    .await
}

#[tokio::test]
async fn a_get_cut_off_by_a_reset_succeeds_on_the_second_attempt() {
    within(30, async {
        let server = Server::start(vec![broken(true), ok_cm()]).await;
        let cm = server.api(fast_retries()).get("x").await.unwrap();
        assert_eq!(cm.metadata.name.as_deref(), Some("x"));
        assert_eq!(server.count(), 2);
    })
    .await
}

#[tokio::test]
async fn a_get_that_keeps_breaking_stops_after_the_retry_budget() {
    within(30, async {
        let server = Server::start(vec![broken(true)]).await;
        let err = server.api(fast_retries()).get("x").await.unwrap_err();
        assert_transport(&err, "GET");
        assert_eq!(server.count(), 5, "the first attempt and 4 retries");
    })
    .await
}

/// Sends one request with `call` to a server that breaks the first
/// connection; asserts a transport error for `method` after one request.
async fn sent_once<T, Fut>(reset: bool, method: &str, call: impl FnOnce(Api<ConfigMap>) -> Fut)
where
    T: std::fmt::Debug,
    Fut: Future<Output = Result<T, Error>>,
{
    let server = Server::start(vec![broken(reset), ok_cm()]).await;
    let err = call(server.api(fast_retries())).await.unwrap_err();
    assert_transport(&err, method);
    assert_eq!(server.count(), 1, "{method}, reset={reset}");
}

#[tokio::test]
async fn writes_cut_off_are_sent_once_and_fail_with_a_transport_error() {
    within(60, async {
        for reset in [false, true] {
            let cm: ConfigMap = serde_json::from_str(CM_X).unwrap();
            let patch = Patch::Merge(serde_json::json!({"data": {"k": "v"}}));
            let (post, put) = (PostParams::default(), PostParams::default());
            sent_once(
                reset,
                "POST",
                |api| async move { api.create(&post, &cm).await },
            )
            .await;
            let cm: ConfigMap = serde_json::from_str(CM_X).unwrap();
            sent_once(reset, "PUT", |api| async move {
                api.replace("x", &put, &cm).await
            })
            .await;
            sent_once(reset, "PATCH", |api| async move {
                api.patch("x", &PatchParams::default(), &patch).await
            })
            .await;
            sent_once(reset, "DELETE", |api| async move {
                api.delete("x", &DeleteParams::default()).await
            })
            .await;
        }
    })
    .await
}

#[tokio::test]
async fn a_get_whose_body_is_cut_after_a_complete_head_is_not_retried() {
    within(30, async {
        let server = Server::start(vec![
            vec![Step::Write(cm_cut_short()), Step::Reset],
            ok_cm(),
        ])
        .await;
        let err = server.api(fast_retries()).get("x").await.unwrap_err();
        assert_transport(&err, "GET");
        assert_eq!(server.count(), 1);
    })
    .await
}

#[tokio::test]
async fn without_retries_a_broken_get_is_a_transport_error_after_one_request() {
    within(30, async {
        let server = Server::start(vec![broken(false), ok_cm()]).await;
        let err = server.api(RetryPolicy::none()).get("x").await.unwrap_err();
        assert_transport(&err, "GET");
        assert_eq!(server.count(), 1);
    })
    .await
}
