//! Issue 12 ("Hardening") against the scripted server of `common::scripted`:
//! faults a real API server will not produce on demand.
//! - Retries never run a POST or PATCH twice: a 503/504 without
//!   `Retry-After` may mean the request ran, so it is not resent; 429 and a
//!   5xx with `Retry-After` are; idempotent methods keep retrying 503/504.
//! - Bodies are read under a limit: a huge answer, an endless watch line and
//!   a huge error body end with `Error::TooLarge`, and memory stays bounded.
//! - Errors never quote a body.

mod common;

use common::scripted::*;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_client::client::RetryPolicy;
use kube_client::params::{DeleteParams, Patch, PatchParams, PostParams, WatchParams};
use kube_client::{Api, Client, Error};

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
// Limits
// ---------------------------------------------------------------------------

/// The process's peak resident memory (VmHWM), in MiB.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

const MIB: usize = 1 << 20;

/// A client with small limits: 256 KiB bodies, 64 KiB watch events.
fn small_limits(server: &Server) -> Api<ConfigMap> {
    let client = Client::builder(config(&server.url))
        .retry(RetryPolicy::none())
        .max_body_bytes(256 << 10)
        .max_watch_event_bytes(64 << 10)
        .build()
        .unwrap();
    Api::namespaced(client, "default")
}

fn assert_too_large(err: &Error, what: &str, limit: usize, url: &str) {
    match err {
        Error::TooLarge {
            what: w,
            limit: l,
            url: u,
            ..
        } => {
            assert_eq!((*w, *l, u.as_str()), (what, limit, url), "{err:?}");
            let text = err.to_string();
            assert!(text.contains(&limit.to_string()), "{text}");
            assert!(
                text.contains("ClientBuilder::max_"),
                "names the setting: {text}"
            );
        }
        other => panic!("expected TooLarge {what}, got {other:?}"),
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_and_not_read() {
    within(60, async {
        // 512 MiB, announced by Content-Length.
        let mut announced = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            512 * MIB
        )
        .into_bytes();
        announced.extend_from_slice(b"{\"items\":[");
        // 512 MiB again, chunked, so only counting can stop it.
        let server = Server::start(vec![
            vec![Step::Write(announced), Step::Repeat(vec![b' '; MIB], 512)],
            vec![chunked_head(), Step::Repeat(chunk(&vec![b' '; MIB]), 512)],
            vec![
                Step::Write(
                    format!(
                        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\n\r\n",
                        512 * MIB
                    )
                    .into_bytes(),
                ),
                Step::Repeat(vec![b'x'; MIB], 512),
            ],
        ])
        .await;
        let api = small_limits(&server);
        for _ in 0..2 {
            let err = api.get("x").await.unwrap_err();
            assert_too_large(&err, "response body", 256 << 10, &server.cm_url("x"));
        }
        // An error body is capped too (at most 1 MiB, here the smaller body
        // limit): too large to be a Status, it is not read, and the answer's
        // code is kept.
        let err = api.get("x").await.unwrap_err();
        match &err {
            Error::HttpStatus {
                code: 500,
                url,
                body,
                ..
            } => {
                assert_eq!(url, &server.cm_url("x"));
                assert_eq!(body, "a body over the 262144-byte limit, not read");
            }
            other => panic!("expected HTTP 500, got {other:?}"),
        }
        assert!(
            peak_rss_mib() < 400,
            "memory stayed bounded: peak {} MiB",
            peak_rss_mib()
        );
    })
    .await
}

#[tokio::test]
async fn an_endless_watch_line_ends_the_stream_with_too_large() {
    within(60, async {
        let server = Server::start(vec![vec![
            chunked_head(),
            Step::Write(chunk(added("first").as_bytes())),
            // 512 MiB without a newline.
            Step::Repeat(chunk(&vec![b'x'; MIB]), 512),
        ]])
        .await;
        let api = small_limits(&server);
        let mut events = Box::pin(api.watch(&WatchParams::default(), "").await.unwrap());
        expect_added(next(&mut events).await, "first");
        let err = next(&mut events).await.expect("an error item").unwrap_err();
        let url = format!(
            "{}/api/v1/namespaces/default/configmaps?watch=true",
            server.url
        );
        let Error::TooLarge { url: u, .. } = &err else {
            panic!("expected TooLarge, got {err:?}")
        };
        assert!(u.starts_with(&url), "names the watch URL: {u}");
        assert_too_large(&err, "watch event", 64 << 10, u);
        assert!(next(&mut events).await.is_none(), "the stream ends");
        assert!(
            peak_rss_mib() < 400,
            "memory stayed bounded: peak {} MiB",
            peak_rss_mib()
        );
    })
    .await
}

#[tokio::test]
async fn zero_limits_are_configuration_errors() {
    let server = Server::start(vec![ok_cm()]).await;
    for builder in [
        Client::builder(config(&server.url)).max_body_bytes(0),
        Client::builder(config(&server.url)).max_watch_event_bytes(0),
    ] {
        match builder.build() {
            Err(e @ Error::Config(_)) => assert!(e.to_string().contains("ClientBuilder::max_")),
            other => panic!("{other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Bodies in errors
// ---------------------------------------------------------------------------

#[tokio::test]
async fn errors_describe_bodies_and_never_quote_them() {
    within(30, async {
        let secret = "c2VjcmV0LXZhbHVlLWh1bnRlcjI="; // base64 of secret-value-hunter2
        let not_status = format!("upstream said: token={secret}");
        let wrong_type = format!(r#"{{"kind":"ConfigMap","data":{{"k":{{"v":"{secret}"}}}}}}"#);
        let server = Server::start(vec![
            reply(
                "502 Bad Gateway",
                &[("Content-Type", "text/plain; charset=utf-8")],
                &not_status,
            ),
            reply(
                "200 OK",
                &[("Content-Type", "application/json")],
                &wrong_type,
            ),
        ])
        .await;
        let api = server.api(RetryPolicy::none());
        let http = api.get("x").await.unwrap_err();
        assert!(
            matches!(http, Error::HttpStatus { code: 502, .. }),
            "{http:?}"
        );
        assert!(
            http.to_string().ends_with(&format!(
                "HTTP 502, a {}-byte text/plain body",
                not_status.len()
            )),
            "{http}"
        );
        let decode = api.get("x").await.unwrap_err();
        assert!(matches!(decode, Error::Decode { .. }), "{decode:?}");
        for e in [&http, &decode] {
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(secret), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
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
