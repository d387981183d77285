//! Request observers: a hook called once for every HTTP attempt the client
//! makes, for metrics.
//!
//! kube-client has no metrics library of its own. Instead a
//! [`RequestObserver`] set with
//! [`ClientBuilder::request_observer`](super::ClientBuilder::request_observer)
//! is told about every attempt — its method, the API server's host, the
//! status code (or that no answer came) and how long it took — and records
//! what it likes. `kube_runtime::metrics` implements it with client-go's
//! `rest_client_requests_total` and `rest_client_request_duration_seconds`.
//! This keeps the client free of a metrics dependency and of any choice of
//! metric names, and lets a program feed its own metrics system instead.
//!
//! Guarantees:
//! - **Every attempt**, not every call: a request retried twice is observed
//!   three times (client-go counts the same way), each with its own status,
//!   so retries show up in the metrics. Requests that never reach the wire
//!   (no credential could be obtained, the request was invalid) are not
//!   observed.
//! - **The duration** runs from handing the request to the connection pool
//!   until the response headers arrive (or the attempt fails): it includes
//!   connecting and TLS, not the client-side rate limit, credential
//!   refreshes, retry backoff or reading the body. A watch is observed once,
//!   when its stream opens.
//! - **Nothing secret** reaches the observer: the method, the server's host
//!   (`host:port` as configured), the numeric status, and the media types
//!   of the request and answer bodies (which encoding was used, see
//!   [`crate::codec`]). Never the path, query, other headers or a body, so
//!   label cardinality stays bounded too.
//! - The observer is called on the request's task, synchronously: it must
//!   be quick (increment counters) and must not block.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// One HTTP attempt, as told to a [`RequestObserver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestAttempt<'a> {
    /// The HTTP method, upper case (`GET`, `POST`, …).
    pub method: &'a str,
    /// The API server's `host:port` (the port only if the URL has one).
    pub host: &'a str,
    /// The answer's status code; `None` when no answer came (connection
    /// refused, TLS failure, timeout).
    pub status: Option<u16>,
    /// From sending the request until the response headers (or the failure).
    pub duration: Duration,
    /// The media type of the request body (its `Content-Type` without
    /// parameters), if it had one: e.g. `application/vnd.kubernetes.protobuf`
    /// for a create sent as protobuf.
    pub request_content_type: Option<&'a str>,
    /// The media type of the answer (its `Content-Type` without
    /// parameters), if one came with one: e.g.
    /// `application/vnd.kubernetes.protobuf` when the server answered in
    /// protobuf.
    pub content_type: Option<&'a str>,
}

impl<'a> RequestAttempt<'a> {
    /// An attempt (for observers' own tests; the client makes the real ones).
    pub fn new(method: &'a str, host: &'a str, status: Option<u16>, duration: Duration) -> Self {
        Self {
            method,
            host,
            status,
            duration,
            request_content_type: None,
            content_type: None,
        }
    }
}

/// Called once for every HTTP attempt of a [`Client`](super::Client); see
/// the module docs.
pub trait RequestObserver: Send + Sync + 'static {
    /// Records one attempt. Must be quick and must not block.
    fn observe(&self, attempt: &RequestAttempt<'_>);
}

/// An observer and the host label it reports (computed once).
#[derive(Clone)]
pub(crate) struct Observer {
    observer: Arc<dyn RequestObserver>,
    host: String,
}

impl Observer {
    pub(crate) fn new(observer: Arc<dyn RequestObserver>, server: &url::Url) -> Self {
        let host = match (server.host_str(), server.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => String::new(),
        };
        Self { observer, host }
    }
}

/// The builder's observer, if one was set (`Debug` says only whether).
#[derive(Clone, Default)]
pub(crate) struct ObserverSlot(Option<Arc<dyn RequestObserver>>);

impl std::fmt::Debug for ObserverSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

impl ObserverSlot {
    pub(crate) fn build(self, server: &url::Url) -> Option<Observer> {
        self.0.map(|o| Observer::new(o, server))
    }
}

impl super::ClientBuilder {
    /// Tells `observer` about every HTTP attempt (method, host, status,
    /// duration), e.g. `kube_runtime::metrics`' client metrics; see
    /// [the module docs](self).
    pub fn request_observer(mut self, observer: Arc<dyn RequestObserver>) -> Self {
        self.observer = ObserverSlot(Some(observer));
        self
    }
}

impl super::Client {
    /// Sends one attempt and tells the observer, if there is one, about it;
    /// `request_content_type` is the request body's `Content-Type`.
    pub(super) async fn send_observed(
        &self,
        method: &http::Method,
        request_content_type: Option<&http::HeaderValue>,
        request: reqwest::RequestBuilder,
    ) -> reqwest::Result<reqwest::Response> {
        let Some(observer) = &self.inner.observer else {
            return request.send().await;
        };
        let started = Instant::now();
        let outcome = request.send().await;
        let duration = started.elapsed();
        let answer_type = outcome.as_ref().ok().and_then(|r| {
            r.headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
        });
        observer.observer.observe(&RequestAttempt {
            method: method.as_str(),
            host: &observer.host,
            status: outcome.as_ref().ok().map(|r| r.status().as_u16()),
            duration,
            request_content_type: media(request_content_type.and_then(|v| v.to_str().ok())),
            content_type: media(answer_type),
        });
        outcome
    }
}

/// The media type of a `Content-Type`: without parameters, trimmed.
fn media(content_type: Option<&str>) -> Option<&str> {
    let media = content_type?.split(';').next()?.trim();
    (!media.is_empty()).then_some(media)
}
