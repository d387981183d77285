//! The admin server: `/metrics`, `/healthz` and `/readyz` over HTTP, for
//! Prometheus and the kubelet's probes. Opt-in, one expression to start.
//!
//! Kubernetes asks two questions of a controller's pod. *Liveness*
//! (`/healthz`): is the process alive, or should it be restarted? It answers
//! 200 as long as the server runs — a controller that is merely waiting (for
//! a lease, for its caches) must not be restarted for it. *Readiness*
//! (`/readyz`): is it doing its job now? It answers 200 only when every
//! registered check passes — typically "the caches have synced" (a
//! [`Store`](crate::Store)'s `is_ready`) and "leading, or standing by as
//! configured" (a check the leader-election code provides, e.g. a
//! `tokio::sync::watch` receiver's current value) — and 503 otherwise, with
//! a short body naming each check and whether it passed:
//!
//! ```text
//! [+]caches ok
//! [-]leader not ready
//! readyz check failed
//! ```
//!
//! `/metrics` serves a [`Registry`] — usually the one
//! [`Metrics`](crate::metrics::Metrics) registered controller-runtime's
//! families in, plus the program's own — in the OpenMetrics text format
//! (`application/openmetrics-text; version=1.0.0`), or in the classic
//! Prometheus text format (`text/plain; version=0.0.4`) to a client whose
//! `Accept` header asks for that and not for OpenMetrics. Both carry the
//! same samples under the same names.
//!
//! ```no_run
//! use kube_runtime::admin::AdminServer;
//! use kube_runtime::metrics::{Metrics, prometheus_client::registry::Registry};
//!
//! # async fn demo(store: kube_runtime::Store<k8s_openapi::api::core::v1::ConfigMap>)
//! # -> Result<(), kube_runtime::admin::AdminError> {
//! let mut registry = Registry::default();
//! let metrics = Metrics::register(&mut registry);
//! let admin = AdminServer::bind("0.0.0.0:8080")
//!     .metrics(registry)
//!     .ready_when("caches", move || store.is_ready())
//!     .spawn()
//!     .await?;
//! println!("admin server on {}", admin.local_addr());
//! # let _ = metrics; Ok(()) }
//! ```
//!
//! Guarantees:
//! - **Lean.** hyper's HTTP/1.1 server on tokio, no web framework; GET and
//!   HEAD only (other methods get 405), unknown paths 404.
//! - **Bounded.** At most 64 connections are served at once (further
//!   connections wait to be accepted), request headers must arrive within
//!   10 s, and request bodies are never read.
//! - **Checks cannot take it down.** Checks run on each `/readyz` request,
//!   synchronously: they must be quick (read a flag). A check that panics
//!   counts as not ready.
//! - **Lifetime.** The server runs on its own task until
//!   [`AdminHandle::shutdown`] or the runtime stops; dropping the handle
//!   leaves it running, so the one-line form above serves for the life of
//!   the process.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

/// The `Content-Type` of the OpenMetrics text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `Content-Type` of the classic Prometheus text format.
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str =
    prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Most connections served at once.
const MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the admin server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The address given to [`AdminServer::bind`] is not a socket address.
    #[error("admin server address {addr:?}: {source}")]
    Address {
        /// The address as given.
        addr: String,
        /// Why it could not be resolved.
        #[source]
        source: std::io::Error,
    },
    /// No listening socket could be opened on the address (in use, not
    /// permitted, no such interface).
    #[error("admin server: binding {addr}: {source}")]
    Bind {
        /// The address as given.
        addr: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

type Check = Box<dyn Fn() -> bool + Send + Sync>;

/// The admin server's configuration; see the module docs.
#[must_use = "nothing is served until `spawn` is awaited"]
pub struct AdminServer {
    addr: String,
    resolved: Result<Vec<SocketAddr>, std::io::Error>,
    registry: Option<Arc<Registry>>,
    checks: Vec<(String, Check)>,
}

impl fmt::Debug for AdminServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminServer")
            .field("addr", &self.addr)
            .field("metrics", &self.registry.is_some())
            .field(
                "checks",
                &self.checks.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl AdminServer {
    /// A server to listen on `addr` (`"0.0.0.0:8080"`, `"127.0.0.1:0"` for
    /// any free port, a `SocketAddr`, …) with no metrics and no readiness
    /// checks yet.
    pub fn bind<A: ToSocketAddrs + fmt::Debug>(addr: A) -> Self {
        Self {
            addr: format!("{addr:?}").trim_matches('"').to_string(),
            resolved: addr.to_socket_addrs().map(Iterator::collect),
            registry: None,
            checks: Vec::new(),
        }
    }

    /// Serves `registry` on `/metrics` (without it, `/metrics` is 404).
    pub fn metrics(mut self, registry: impl Into<Arc<Registry>>) -> Self {
        self.registry = Some(registry.into());
        self
    }

    /// Adds readiness check `name`: `/readyz` is 200 only while every
    /// check returns true. E.g. `move || store.is_ready()` for a cache, or
    /// `move || *leading.borrow()` for a `tokio::sync::watch` receiver.
    pub fn ready_when(
        mut self,
        name: impl Into<String>,
        check: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        self.checks.push((name.into(), Box::new(check)));
        self
    }

    /// Binds the address and starts serving on a task of its own.
    pub async fn spawn(self) -> Result<AdminHandle, AdminError> {
        let addrs = self.resolved.map_err(|source| AdminError::Address {
            addr: self.addr.clone(),
            source,
        })?;
        let listener = TcpListener::bind(&addrs[..])
            .await
            .map_err(|source| AdminError::Bind {
                addr: self.addr.clone(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| AdminError::Bind {
            addr: self.addr.clone(),
            source,
        })?;
        let routes = Arc::new(Routes {
            registry: self.registry,
            checks: self.checks,
        });
        tracing::info!(%local_addr, "admin server listening");
        let task = tokio::spawn(serve(listener, routes));
        Ok(AdminHandle { local_addr, task })
    }
}

/// A running admin server.
#[derive(Debug)]
pub struct AdminHandle {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl AdminHandle {
    /// The address it listens on (with the actual port when bound to 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and closes every open connection.
    pub async fn shutdown(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

struct Routes {
    registry: Option<Arc<Registry>>,
    checks: Vec<(String, Check)>,
}

/// Accepts connections until aborted; aborting drops the connections too.
async fn serve(listener: TcpListener, routes: Arc<Routes>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait, then go on.
                tracing::warn!(error = %e, "admin server: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let routes = routes.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let routes = routes.clone();
                async move { Ok::<_, std::convert::Infallible>(routes.answer(&req)) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "admin server: connection ended with an error");
            }
            drop(slot);
        });
    }
}

impl Routes {
    fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
            resp.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
            return resp;
        }
        match req.uri().path() {
            "/healthz" | "/livez" => text(StatusCode::OK, "ok\n"),
            "/readyz" => self.readyz(),
            "/metrics" => self.metrics(req.headers().get(header::ACCEPT)),
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    fn readyz(&self) -> Response<Full<Bytes>> {
        let mut body = String::new();
        let mut ready = true;
        for (name, check) in &self.checks {
            let ok = std::panic::catch_unwind(AssertUnwindSafe(check)).unwrap_or(false);
            ready &= ok;
            body.push_str(&format!(
                "[{}]{name} {}\n",
                if ok { '+' } else { '-' },
                if ok { "ok" } else { "not ready" }
            ));
        }
        if ready {
            body.push_str("ok\n");
            text(StatusCode::OK, body)
        } else {
            body.push_str("readyz check failed\n");
            text(StatusCode::SERVICE_UNAVAILABLE, body)
        }
    }

    fn metrics(&self, accept: Option<&header::HeaderValue>) -> Response<Full<Bytes>> {
        let Some(registry) = &self.registry else {
            return text(StatusCode::NOT_FOUND, "no metrics registry configured\n");
        };
        let openmetrics = accept
            .and_then(|a| a.to_str().ok())
            .is_none_or(accepts_openmetrics);
        let mut body = String::new();
        let (encoded, content_type) = if openmetrics {
            (
                prometheus_client::encoding::text::encode(&mut body, registry),
                OPENMETRICS_CONTENT_TYPE,
            )
        } else {
            (
                prometheus_client::encoding::prometheus_text::encode(&mut body, registry),
                PROMETHEUS_TEXT_CONTENT_TYPE,
            )
        };
        if encoded.is_err() {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding the metrics failed\n",
            );
        }
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(content_type),
        );
        resp
    }
}

/// Whether an `Accept` header value allows OpenMetrics: it names it, or
/// accepts anything (`*/*`, `application/*`), or is empty.
fn accepts_openmetrics(accept: &str) -> bool {
    accept.trim().is_empty()
        || accept.split(',').any(|range| {
            let media = range.split(';').next().unwrap_or("").trim();
            let q_zero = range
                .split(';')
                .skip(1)
                .any(|p| p.trim().replace(' ', "") == "q=0");
            !q_zero
                && matches!(
                    media,
                    "application/openmetrics-text" | "application/*" | "*/*"
                )
        })
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.into())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_negotiation_prefers_openmetrics() {
        // Prometheus' own scrape Accept header.
        assert!(accepts_openmetrics(
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,\
             application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;\
             escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
        ));
        assert!(accepts_openmetrics("*/*"));
        assert!(accepts_openmetrics(""));
        assert!(!accepts_openmetrics("text/plain; version=0.0.4"));
        assert!(!accepts_openmetrics(
            "text/plain, application/openmetrics-text; q=0"
        ));
    }

    #[tokio::test]
    async fn an_unresolvable_address_is_a_typed_error() {
        let server = AdminServer::bind("not an address");
        let e = server.spawn().await.unwrap_err();
        assert!(matches!(e, AdminError::Address { .. }), "{e:?}");
        assert!(e.to_string().contains("not an address"), "{e}");
    }
}
