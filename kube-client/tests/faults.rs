//! Faults the real API server will not produce on demand, against a tiny
//! scripted HTTP/1.1 server on 127.0.0.1 (plain http, no TLS): watches cut
//! mid-event, events split across TCP writes, non-JSON bodies, 429/503 with
//! and without `Retry-After`, refused connections, timeouts and the
//! client-side rate limit.
//!
//! The scripted server is `common::scripted`.

mod common;

use std::time::{Duration, Instant};

use common::scripted::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_client::client::RetryPolicy;
use kube_client::params::WatchParams;
use kube_client::{Api, Client, Error};

// ---------------------------------------------------------------------------
// Watches
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_watch_cut_mid_event_yields_the_first_event_then_a_transport_error_then_ends() {
    within(30, async {
        let first = added("one");
        let second = added("two");
        let half = &second.as_bytes()[..25];
        // (a) One chunk holding a full event and the first 25 bytes of the
        // next, then the connection closes without the body's last chunk.
        let mut partial = first.clone().into_bytes();
        partial.extend_from_slice(half);
        let in_a_chunk = vec![
            chunked_head(),
            Step::Write(chunk(&partial)),
            Step::Sleep(ms(50)),
        ];
        // (b) The full event, then a chunk announcing the whole second event
        // of which only 25 bytes arrive before the close.
        let mut truncated = format!("{:x}\r\n", second.len()).into_bytes();
        truncated.extend_from_slice(half);
        let mid_chunk = vec![
            chunked_head(),
            Step::Write(chunk(first.as_bytes())),
            Step::Sleep(ms(20)),
            Step::Write(truncated),
            Step::Sleep(ms(50)),
        ];
        for script in [in_a_chunk, mid_chunk] {
            let server = Server::start(vec![script]).await;
            let api = server.api(RetryPolicy::none());
            let mut events = Box::pin(api.watch(&WatchParams::default(), "5").await.unwrap());

            expect_added(next(&mut events).await, "one");
            match next(&mut events).await {
                Some(Err(e)) => {
                    assert!(e.is_transport(), "{e:?}");
                    let text = e.to_string();
                    assert!(
                        text.contains(&format!(
                            "{}/api/v1/namespaces/default/configmaps?watch=true",
                            server.url
                        )),
                        "names the URL: {text}"
                    );
                }
                other => panic!("expected a transport error, got {other:?}"),
            }
            assert!(next(&mut events).await.is_none(), "the stream ends");
            assert_eq!(server.count(), 1, "a cut watch is not resent by the client");
            let line = &server.hits()[0].line;
            assert!(line.starts_with("GET "), "{line}");
            assert!(line.contains("resourceVersion=5"), "{line}");
        }
    })
    .await
}

#[tokio::test]
async fn a_close_delimited_watch_body_cut_mid_event_reports_the_bytes_left() {
    // No Content-Length and no chunking: the body ends when the connection
    // closes, so HTTP sees a clean end and only the decoder can tell that an
    // event was cut.
    within(30, async {
        let mut body = added("one").into_bytes();
        body.extend_from_slice(&added("two").as_bytes()[..30]);
        let server = Server::start(vec![vec![
            Step::Write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            ),
            Step::Write(body),
        ]])
        .await;
        let api = server.api(RetryPolicy::none());
        let mut events = Box::pin(api.watch(&WatchParams::default(), "").await.unwrap());

        expect_added(next(&mut events).await, "one");
        match next(&mut events).await {
            Some(Err(e @ Error::Transport { .. })) => {
                let text = e.to_string();
                assert!(
                    text.contains("in the middle of an event (30 bytes left"),
                    "{text}"
                );
                assert!(text.contains(&server.url), "names the URL: {text}");
            }
            other => panic!("expected a transport error, got {other:?}"),
        }
        assert!(next(&mut events).await.is_none(), "the stream ends");
    })
    .await
}

#[tokio::test]
async fn an_event_split_across_several_writes_is_joined() {
    within(30, async {
        let event = added("split");
        let bytes = event.as_bytes();
        let (a, rest) = bytes.split_at(10);
        let (b, c) = rest.split_at(40);
        // Chunk b's framing is itself split across two writes.
        let b_chunk = chunk(b);
        let server = Server::start(vec![vec![
            chunked_head(),
            Step::Sleep(ms(30)),
            Step::Write(chunk(a)),
            Step::Sleep(ms(30)),
            Step::Write(b_chunk[..3].to_vec()),
            Step::Sleep(ms(30)),
            Step::Write(b_chunk[3..].to_vec()),
            Step::Sleep(ms(30)),
            Step::Write(chunk(c)),
            Step::Sleep(ms(30)),
            Step::Write(chunk(added("after").as_bytes())),
            end_chunk(),
        ]])
        .await;
        let api = server.api(RetryPolicy::none());
        let mut events = Box::pin(api.watch(&WatchParams::default(), "").await.unwrap());
        expect_added(next(&mut events).await, "split");
        expect_added(next(&mut events).await, "after");
        assert!(
            next(&mut events).await.is_none(),
            "a clean end of the body ends the stream without an error"
        );
    })
    .await
}

#[tokio::test]
async fn a_malformed_watch_line_is_an_error_item_and_the_next_event_still_arrives() {
    within(30, async {
        let server = Server::start(vec![vec![
            chunked_head(),
            Step::Write(chunk(added("before").as_bytes())),
            Step::Write(chunk(b"{not json at all\n")),
            Step::Sleep(ms(20)),
            Step::Write(chunk(added("good").as_bytes())),
            end_chunk(),
        ]])
        .await;
        let api = server.api(RetryPolicy::none());
        let mut events = Box::pin(api.watch(&WatchParams::default(), "").await.unwrap());
        expect_added(next(&mut events).await, "before");
        match next(&mut events).await {
            Some(Err(Error::Decode { url, body, .. })) => {
                assert!(url.starts_with(&server.url), "{url}");
                assert!(url.contains("watch=true"), "{url}");
                assert_eq!(body, "a 16-byte body", "described, never quoted");
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
        expect_added(next(&mut events).await, "good");
        assert!(next(&mut events).await.is_none());
    })
    .await
}

#[tokio::test]
async fn a_watch_is_not_cut_by_the_request_timeout() {
    // Watches only have a connect timeout: an event that comes later than
    // the (short) total timeout of ordinary requests still arrives.
    within(30, async {
        let server = Server::start(vec![vec![
            chunked_head(),
            Step::Sleep(ms(1200)),
            Step::Write(chunk(added("late").as_bytes())),
            end_chunk(),
        ]])
        .await;
        let mut config = config(&server.url);
        config.read_timeout = Some(ms(300));
        let client = Client::builder(config)
            .retry(RetryPolicy::none())
            .build()
            .unwrap();
        let api: Api<ConfigMap> = Api::namespaced(client, "default");
        let mut events = Box::pin(api.watch(&WatchParams::default(), "").await.unwrap());
        expect_added(next(&mut events).await, "late");
        assert!(next(&mut events).await.is_none());
    })
    .await
}

// ---------------------------------------------------------------------------
// Bodies that are not what they should be
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_non_json_success_body_is_a_decode_error_naming_the_url_and_describing_the_body() {
    within(30, async {
        let garbage = format!("<html>definitely not json</html>{}", "z".repeat(2000));
        let server = Server::start(vec![reply(
            "200 OK",
            &[("Content-Type", "application/json")],
            &garbage,
        )])
        .await;
        let err = server.api(RetryPolicy::none()).get("x").await.unwrap_err();
        match &err {
            Error::Decode { url, body, .. } => {
                assert_eq!(url, &server.cm_url("x"));
                assert_eq!(body, &format!("a {}-byte body", garbage.len()));
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains(&server.cm_url("x")), "{text}");
        assert!(text.contains("not valid JSON at line 1 column 1"), "{text}");
        assert!(
            !text.contains("definitely"),
            "never quotes the body: {text}"
        );
        assert_eq!(err.code(), None);
    })
    .await
}

#[tokio::test]
async fn a_non_json_error_body_is_an_http_status_error_describing_the_body() {
    within(30, async {
        let page = format!("upstream exploded: {}", "x".repeat(3000));
        // The default retry policy: a 500 is not retried.
        let server = Server::start(vec![reply(
            "500 Internal Server Error",
            &[("Content-Type", "text/plain")],
            &page,
        )])
        .await;
        let err = server
            .api(RetryPolicy::default())
            .get("x")
            .await
            .unwrap_err();
        match &err {
            Error::HttpStatus {
                method,
                url,
                code,
                body,
            } => {
                assert_eq!(method, "GET");
                assert_eq!(url, &server.cm_url("x"));
                assert_eq!(*code, 500);
                assert_eq!(body, &format!("a {}-byte text/plain body", page.len()));
            }
            other => panic!("expected an HTTP status error, got {other:?}"),
        }
        assert_eq!(err.code(), Some(500));
        assert!(err.status().is_none());
        assert_eq!(server.count(), 1, "a 500 is not retried");
    })
    .await
}

#[tokio::test]
async fn a_body_cut_short_is_a_transport_error_not_a_decode_error() {
    within(30, async {
        // Content-Length promises more than is sent before the close.
        let server =
            Server::start(vec![vec![Step::Write(cm_cut_short()), Step::Sleep(ms(20))]]).await;
        let err = server.api(RetryPolicy::none()).get("x").await.unwrap_err();
        match &err {
            Error::Transport { method, url, .. } => {
                assert_eq!(method, "GET");
                assert_eq!(url, &server.cm_url("x"));
            }
            other => panic!("expected a transport error, got {other:?}"),
        }
    })
    .await
}

// ---------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------

#[tokio::test]
async fn too_many_requests_with_retry_after_is_retried_after_that_delay() {
    within(30, async {
        let server = Server::start(vec![
            reply(
                "429 Too Many Requests",
                &[("Content-Type", "application/json"), ("Retry-After", "1")],
                &status_json(429, "TooManyRequests", "slow down"),
            ),
            ok_cm(),
        ])
        .await;
        let started = Instant::now();
        let cm = server.api(RetryPolicy::default()).get("x").await.unwrap();
        let took = started.elapsed();
        assert_eq!(cm.metadata.name.as_deref(), Some("x"));
        let hits = server.hits();
        assert_eq!(hits.len(), 2, "{hits:?}");
        let gap = hits[1].at - hits[0].at;
        assert!(gap >= ms(950), "the retry waited Retry-After: {gap:?}");
        assert!(took >= ms(950) && took < Duration::from_secs(8), "{took:?}");
    })
    .await
}

#[tokio::test]
async fn service_unavailable_is_retried_until_it_succeeds() {
    within(30, async {
        let unavailable = || reply("503 Service Unavailable", &[], "try later");
        let server =
            Server::start(vec![unavailable(), unavailable(), unavailable(), ok_cm()]).await;
        let cm = server.api(fast_retries()).get("x").await.unwrap();
        assert_eq!(cm.metadata.name.as_deref(), Some("x"));
        assert_eq!(server.count(), 4);
    })
    .await
}

#[tokio::test]
async fn retries_stop_after_max_retries_with_the_last_answer() {
    within(30, async {
        let server = Server::start(vec![reply(
            "504 Gateway Timeout",
            &[("Content-Type", "application/json")],
            &status_json(504, "Timeout", "the gateway gave up"),
        )])
        .await;
        let err = server.api(fast_retries()).get("x").await.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert!(matches!(err, Error::Api { .. }), "{err:?}");
        assert_eq!(server.count(), 5, "the first attempt and 4 retries");
    })
    .await
}

#[tokio::test]
async fn without_retries_a_429_is_returned_as_an_error() {
    within(30, async {
        let server = Server::start(vec![
            reply(
                "429 Too Many Requests",
                &[("Content-Type", "application/json"), ("Retry-After", "1")],
                &status_json(429, "TooManyRequests", "slow down"),
            ),
            ok_cm(),
        ])
        .await;
        let started = Instant::now();
        let err = server.api(RetryPolicy::none()).get("x").await.unwrap_err();
        assert!(err.is_too_many_requests(), "{err:?}");
        assert_eq!(err.status().unwrap().message.as_deref(), Some("slow down"));
        assert!(err.to_string().contains(&server.cm_url("x")), "{err}");
        assert_eq!(server.count(), 1);
        assert!(
            started.elapsed() < ms(900),
            "no Retry-After wait without retries"
        );

        // A 429 whose body is not a Status is still recognisable.
        let plain = Server::start(vec![reply("429 Too Many Requests", &[], "busy")]).await;
        let err = plain.api(RetryPolicy::none()).get("x").await.unwrap_err();
        assert!(err.is_too_many_requests(), "{err:?}");
        assert!(
            matches!(err, Error::HttpStatus { code: 429, .. }),
            "{err:?}"
        );
    })
    .await
}

#[tokio::test]
async fn a_retry_after_longer_than_max_delay_is_capped() {
    within(30, async {
        let server = Server::start(vec![
            reply(
                "429 Too Many Requests",
                &[("Retry-After", "120")],
                &status_json(429, "TooManyRequests", "come back in two minutes"),
            ),
            ok_cm(),
        ])
        .await;
        let policy = RetryPolicy {
            max_retries: 2,
            min_delay: ms(10),
            max_delay: ms(200),
        };
        let started = Instant::now();
        server.api(policy).get("x").await.unwrap();
        let took = started.elapsed();
        assert_eq!(server.count(), 2);
        assert!(
            took < Duration::from_secs(10),
            "capped at max_delay: {took:?}"
        );
        let hits = server.hits();
        assert!(hits[1].at - hits[0].at >= ms(150), "still waited: {hits:?}");
    })
    .await
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error_naming_the_url_after_the_retries() {
    within(60, async {
        // A port that nothing listens on any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let cm_url = format!("{url}/api/v1/namespaces/default/configmaps/x");
        for policy in [RetryPolicy::none(), RetryPolicy::default()] {
            let retries = policy.max_retries;
            let client = Client::builder(config(&url)).retry(policy).build().unwrap();
            let api: Api<ConfigMap> = Api::namespaced(client, "default");
            let started = Instant::now();
            let err = api.get("x").await.unwrap_err();
            let took = started.elapsed();
            match &err {
                Error::Transport {
                    method,
                    url,
                    message,
                } => {
                    assert_eq!(method, "GET");
                    assert_eq!(url, &cm_url);
                    assert!(message.to_lowercase().contains("refused"), "{message}");
                }
                other => panic!("expected a transport error, got {other:?}"),
            }
            assert!(err.is_transport());
            assert!(took < Duration::from_secs(30), "bounded: {took:?}");
            if retries > 0 {
                // 4 retries of at least min_delay (200 ms) each.
                assert!(
                    took >= ms(700),
                    "the refused connection was retried: {took:?}"
                );
            }
        }
    })
    .await
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_with_a_transport_error() {
    within(30, async {
        let server = Server::start(vec![vec![Step::Sleep(Duration::from_secs(20))]]).await;
        let mut config = config(&server.url);
        config.read_timeout = Some(ms(300));
        let client = Client::builder(config)
            .retry(fast_retries())
            .build()
            .unwrap();
        let api: Api<ConfigMap> = Api::namespaced(client, "default");
        let started = Instant::now();
        let err = api.get("x").await.unwrap_err();
        match &err {
            Error::Transport { url, message, .. } => {
                assert_eq!(url, &server.cm_url("x"));
                assert!(message.to_lowercase().contains("timed out"), "{message}");
            }
            other => panic!("expected a transport error, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(
            server.count(),
            1,
            "a request that may have reached the server is not resent"
        );
    })
    .await
}

// ---------------------------------------------------------------------------
// The client-side rate limit
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_client_side_rate_limit_spaces_requests_across_clones() {
    within(30, async {
        let server = Server::start(vec![ok_cm()]).await;
        let client = Client::builder(config(&server.url))
            .rate_limit(5.0, 1)
            .build()
            .unwrap();
        // Six requests at once through clones of one client: the first
        // takes the burst token, the other five wait 200 ms each.
        let gets = (0..6).map(|_| {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
            async move { api.get("x").await }
        });
        for result in futures::future::join_all(gets).await {
            result.unwrap();
        }
        let mut times: Vec<Instant> = server.hits().iter().map(|h| h.at).collect();
        assert_eq!(times.len(), 6);
        times.sort();
        let spread = times[5] - times[0];
        assert!(
            spread >= ms(900) && spread < Duration::from_secs(6),
            "6 requests at 5 per second with a burst of 1: {spread:?}"
        );
        for pair in times.windows(2) {
            assert!(pair[1] - pair[0] >= ms(50), "spaced out: {times:?}");
        }
    })
    .await
}

#[tokio::test]
async fn an_expired_continue_token_falls_back_to_one_full_list_without_repeats() {
    let cm = |name: &str| format!(r#"{{"metadata":{{"name":"{name}","namespace":"default"}}}}"#);
    let page1 = format!(
        r#"{{"metadata":{{"continue":"tok","resourceVersion":"5"}},"items":[{},{}]}}"#,
        cm("a"),
        cm("b")
    );
    let expired = status_json(410, "Expired", "The provided continue parameter is too old");
    let full = format!(
        r#"{{"metadata":{{"resourceVersion":"9"}},"items":[{},{},{}]}}"#,
        cm("a"),
        cm("b"),
        cm("c")
    );
    let server = Server::start(vec![
        reply("200 OK", &[("Content-Type", "application/json")], &page1),
        reply(
            "410 Gone",
            &[("Content-Type", "application/json")],
            &expired,
        ),
        reply("200 OK", &[("Content-Type", "application/json")], &full),
    ])
    .await;
    let api = server.api(RetryPolicy::none());
    let names: Vec<String> = within(
        10,
        api.list_stream(&kube_client::params::ListParams::default().limit(2))
            .collect::<Vec<_>>(),
    )
    .await
    .into_iter()
    .map(|r| r.unwrap().metadata.name.unwrap())
    .collect();
    assert_eq!(names, ["a", "b", "c"], "each object once");
    let lines: Vec<String> = server.hits().into_iter().map(|h| h.line).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[1].contains("continue=tok"), "{lines:?}");
    assert!(
        !lines[2].contains("continue=") && !lines[2].contains("limit="),
        "the fallback lists everything at once: {lines:?}"
    );
}

#[tokio::test]
async fn requests_go_through_the_configured_proxy_url() {
    // The "proxy" is the scripted server; the cluster's host is never
    // resolved or reached, only named in the proxied request line.
    let proxy = Server::start(vec![ok_cm()]).await;
    let mut config = config("http://kube.invalid:6443");
    config.proxy_url = Some(proxy.url.parse().unwrap());
    let api: Api<ConfigMap> = Api::namespaced(Client::try_from(config).unwrap(), "default");
    let cm = within(10, api.get("x")).await.unwrap();
    assert_eq!(cm.metadata.name.as_deref(), Some("x"));
    let lines: Vec<String> = proxy.hits().into_iter().map(|h| h.line).collect();
    assert_eq!(
        lines,
        ["GET http://kube.invalid:6443/api/v1/namespaces/default/configmaps/x HTTP/1.1"],
        "an absolute-form request to the proxy"
    );
}

#[tokio::test]
async fn userinfo_passwords_of_the_server_and_proxy_never_appear_in_errors() {
    within(30, async {
        let closed_port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (server_port, proxy_port) = (closed_port(), closed_port());
        let server = format!("http://user:hunter2@127.0.0.1:{server_port}");
        let shown = format!("http://user:REDACTED@127.0.0.1:{server_port}");
        let proxy = format!("http://u:hunter3@127.0.0.1:{proxy_port}");
        for via_proxy in [false, true] {
            let mut config = config(&server);
            if via_proxy {
                config.proxy_url = Some(proxy.parse().unwrap());
            }
            // What is sent keeps the credentials.
            assert_eq!(config.cluster_url.password(), Some("hunter2"));
            let client = Client::builder(config)
                .retry(RetryPolicy::none())
                .build()
                .unwrap();
            assert_eq!(client.server_url(), shown);
            let client_debug = format!("{client:?}");
            let api: Api<ConfigMap> = Api::namespaced(client, "default");
            let err = api.get("x").await.unwrap_err();
            match &err {
                Error::Transport { url, .. } => {
                    assert_eq!(
                        url,
                        &format!("{shown}/api/v1/namespaces/default/configmaps/x")
                    );
                }
                other => panic!("expected a transport error, got {other:?}"),
            }
            let watch_err = match api.watch(&WatchParams::default(), "0").await {
                Err(e) => e,
                Ok(_) => panic!("a watch of a closed port opened"),
            };
            for text in [
                client_debug,
                err.to_string(),
                format!("{err:?}"),
                watch_err.to_string(),
                format!("{watch_err:?}"),
            ] {
                assert!(
                    !text.contains("hunter2") && !text.contains("hunter3"),
                    "a password is shown (via proxy: {via_proxy}): {text}"
                );
            }
        }
    })
    .await
}
