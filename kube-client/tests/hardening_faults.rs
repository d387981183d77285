//! Issue 12 ("Hardening") against the scripted server of `common::scripted`:
//! faults a real API server will not produce on demand.
//! - Retries never run a POST or PATCH twice: a 503/504 without
//!   `Retry-After` may mean the request ran, so it is not resent; 429 and a
//!   5xx with `Retry-After` are; idempotent methods keep retrying 503/504.

mod common;

use common::scripted::*;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_client::params::{DeleteParams, Patch, PatchParams, PostParams};
use kube_client::{Client, Error};

fn generated() -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            generate_name: Some("once-".into()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    }
}

fn unavailable(retry_after: Option<&str>) -> Reply {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(after) = retry_after {
        headers.push(("Retry-After", after));
    }
    reply(
        "503 Service Unavailable",
        &headers,
        &status_json(503, "ServiceUnavailable", "the server is busy"),
    )
}

fn methods(server: &Server) -> Vec<String> {
    server
        .hits()
        .iter()
        .map(|h| h.line.split(' ').next().unwrap_or_default().to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_create_answered_503_or_504_without_retry_after_is_sent_once() {
    within(30, async {
        let server = Server::start(vec![unavailable(None), ok_cm()]).await;
        let err = server
            .api(fast_retries())
            .create(&PostParams::default(), &generated())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(503), "{err:?}");
        assert_eq!(methods(&server), ["POST"], "exactly one POST");

        let timeout = reply(
            "504 Gateway Timeout",
            &[("Content-Type", "application/json")],
            &status_json(504, "Timeout", "the gateway gave up"),
        );
        let server = Server::start(vec![timeout, ok_cm()]).await;
        let patch = Patch::Merge(serde_json::json!({"data": {"k": "v"}}));
        let err = server
            .api(fast_retries())
            .patch("x", &PatchParams::default(), &patch)
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert_eq!(methods(&server), ["PATCH"], "exactly one PATCH");
    })
    .await
}

#[tokio::test]
async fn a_create_is_retried_when_the_server_says_so() {
    within(30, async {
        // 503 with Retry-After: the server asks for the request again.
        let server = Server::start(vec![unavailable(Some("0")), ok_cm()]).await;
        let cm = server
            .api(fast_retries())
            .create(&PostParams::default(), &generated())
            .await
            .unwrap();
        assert_eq!(cm.metadata.name.as_deref(), Some("x"));
        assert_eq!(methods(&server), ["POST", "POST"]);

        // 429, even without Retry-After: the request was refused unrun.
        let busy = reply(
            "429 Too Many Requests",
            &[("Content-Type", "application/json")],
            &status_json(429, "TooManyRequests", "slow down"),
        );
        let server = Server::start(vec![busy, ok_cm()]).await;
        server
            .api(fast_retries())
            .create(&PostParams::default(), &generated())
            .await
            .unwrap();
        assert_eq!(methods(&server), ["POST", "POST"]);

        // Any other 5xx with Retry-After too.
        let failing = reply(
            "500 Internal Server Error",
            &[("Content-Type", "application/json"), ("Retry-After", "0")],
            &status_json(500, "InternalError", "etcd leader changed"),
        );
        let server = Server::start(vec![failing, ok_cm()]).await;
        let patch = Patch::Merge(serde_json::json!({"data": {"k": "v"}}));
        server
            .api(fast_retries())
            .patch("x", &PatchParams::default(), &patch)
            .await
            .unwrap();
        assert_eq!(methods(&server), ["PATCH", "PATCH"]);
    })
    .await
}

#[tokio::test]
async fn idempotent_requests_are_retried_on_503_and_504() {
    within(30, async {
        let server = Server::start(vec![unavailable(None), unavailable(None), ok_cm()]).await;
        server.api(fast_retries()).get("x").await.unwrap();
        assert_eq!(methods(&server), ["GET", "GET", "GET"]);

        let server = Server::start(vec![unavailable(None), ok_cm()]).await;
        let mut cm = generated();
        cm.metadata.name = Some("x".into());
        server
            .api(fast_retries())
            .replace("x", &PostParams::default(), &cm)
            .await
            .unwrap();
        assert_eq!(methods(&server), ["PUT", "PUT"]);

        let server = Server::start(vec![unavailable(None), ok_cm()]).await;
        server
            .api(fast_retries())
            .delete("x", &DeleteParams::default())
            .await
            .unwrap();
        assert_eq!(methods(&server), ["DELETE", "DELETE"]);
    })
    .await
}

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

#[test]
fn out_of_range_client_settings_are_configuration_errors() {
    // Nothing is sent: build() refuses, so no server is needed.
    let url = "http://127.0.0.1:9";
    let cases = [
        (0.0, 5),
        (-1.0, 5),
        (-0.0, 5),
        (f64::NAN, 5),
        (f64::INFINITY, 5),
        (1e-300, 5),
        (10.0, 0),
    ];
    for (qps, burst) in cases {
        match Client::builder(config(url)).rate_limit(qps, burst).build() {
            Err(e @ Error::Config(_)) => assert!(e.to_string().contains("rate_limit"), "{e}"),
            other => panic!("rate_limit({qps}, {burst}): {other:?}"),
        }
    }
    assert!(
        Client::builder(config(url))
            .rate_limit(0.5, 1)
            .build()
            .is_ok()
    );
    match Client::builder(config(url))
        .user_agent("bad\nagent")
        .build()
    {
        Err(Error::Config(_)) => {}
        other => panic!("an invalid User-Agent: {other:?}"),
    }
}
