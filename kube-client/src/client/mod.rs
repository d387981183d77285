//! The `Client`: one configured connection pool to one API server.
//!
//! A `Client` is cheap to clone (an `Arc`) and is meant to be shared. Each
//! request goes through the same pipeline:
//! 1. the optional client-side rate limit (QPS and burst, off by default);
//! 2. credentials: the current bearer token or basic credentials (a token
//!    file is re-read when it changes, an exec plugin re-run before its
//!    credential expires, an `oidc` ID token refreshed when it expires) and
//!    impersonation headers;
//! 3. the HTTP request over reqwest + rustls (HTTP/2 when the server offers
//!    it), under a total timeout — except watches and log follows, which
//!    only have a connect timeout, so a long watch is never cut by us;
//! 4. retries: refused connections and 429 answers, any 5xx carrying
//!    `Retry-After`, and for idempotent methods also 503 and 504, are
//!    retried with capped exponential backoff, honouring `Retry-After` (a
//!    POST or PATCH is never resent after an answer that may mean it ran);
//!    a 401 drops cached credentials and retries once with fresh ones
//!    (re-reading a token file, re-running an exec plugin, refreshing an
//!    `oidc` ID token, see [`oidc`]);
//! 5. the answer, read under a limit (see `body` and
//!    [`ClientBuilder::max_body_bytes`]): 2xx is decoded, anything else
//!    becomes a typed [`Error`] carrying the server's `Status`.
//!
//! Every request runs in a `tracing` span (`kube.request`: method, path,
//! status, duration in ms), and every attempt is told to the optional
//! [`RequestObserver`] (for metrics, see [`observer`]). Credentials never
//! appear in spans, logs, observations or `Debug`.

mod body;
pub mod oidc;
mod pipeline;
mod ratelimit;
mod retry;
pub(crate) mod tls;

pub mod observer;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

pub use crate::watch::DEFAULT_MAX_EVENT_BYTES;
pub use body::{DEFAULT_MAX_BODY_BYTES, MAX_ERROR_BODY_BYTES};
pub use pipeline::ObjectOrStatus;
pub(crate) use pipeline::{content_type_of, decode_json, json_decode_error, transport_error};
pub use ratelimit::RateLimit;
pub use retry::RetryPolicy;

pub use observer::{RequestAttempt, RequestObserver};
pub use oidc::OidcRefreshError;

use crate::error::{Error, Result};

/// Default total timeout of a non-streaming request.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(295);
/// Default connect timeout.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for one API server. Clone it freely.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: kube_config::Config,
    /// The server URL without a trailing slash, as used for connecting.
    base: String,
    /// [`base`](Self::base) as shown in errors and `Debug`: a password in
    /// its userinfo replaced by [`kube_config::REDACTED`].
    shown_base: String,
    /// The HTTP client, and the DER of the exec-plugin certificate it
    /// presents (rebuilt when an exec plugin hands out a new one).
    http: RwLock<(reqwest::Client, Option<Vec<u8>>)>,
    /// The same for HTTP/1.1 only (ALPN `http/1.1`), which carries the
    /// WebSocket upgrades of exec, attach and port-forward.
    http1: RwLock<(reqwest::Client, Option<Vec<u8>>)>,
    retry: RetryPolicy,
    observer: Option<observer::Observer>,
    rate_limit: Option<RateLimit>,
    timeout: Duration,
    user_agent: String,
    max_body_bytes: usize,
    max_event_bytes: usize,
    protobuf: bool,
    /// The API group/versions (`apps/v1`) whose server refused a protobuf
    /// body with 415: later writes to them send JSON at once.
    protobuf_bodies_refused: RwLock<HashSet<String>>,
    /// The one-refresh-at-a-time lock of an `oidc` user (see [`oidc`]).
    oidc: oidc::Refresher,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.shown_base)
            .field("auth", &self.inner.config.auth.kind())
            .field("default_namespace", &self.inner.config.default_namespace)
            .field("protobuf", &self.inner.protobuf)
            .finish_non_exhaustive()
    }
}

impl TryFrom<kube_config::Config> for Client {
    type Error = Error;

    fn try_from(config: kube_config::Config) -> Result<Self> {
        ClientBuilder::new(config).build()
    }
}

impl Client {
    /// A client from the inferred configuration: `KUBECONFIG` or
    /// `~/.kube/config`, else in-cluster credentials.
    pub async fn try_default() -> Result<Self> {
        let config = tokio::task::spawn_blocking(kube_config::Config::infer)
            .await
            .map_err(|e| Error::Config(format!("inferring the configuration panicked: {e}")))?
            .map_err(|source| Error::Auth {
                url: "(inferred configuration)".into(),
                source: source.into(),
            })?;
        Self::try_from(config)
    }

    /// A builder, to set retries or a rate limit.
    pub fn builder(config: kube_config::Config) -> ClientBuilder {
        ClientBuilder::new(config)
    }

    /// The namespace of the selected context (or `default`).
    pub fn default_namespace(&self) -> &str {
        &self.inner.config.default_namespace
    }

    /// The API server's URL without a trailing slash, as shown in errors:
    /// a password in its userinfo is replaced by [`kube_config::REDACTED`]
    /// (requests still send it; see [`kube_config::redact_url`]).
    pub fn server_url(&self) -> &str {
        &self.inner.shown_base
    }

    /// The longest watch event or streamed log line this client reads.
    pub(crate) fn max_event_bytes(&self) -> usize {
        self.inner.max_event_bytes
    }

    /// True when typed requests for built-in kinds ask for protobuf (see
    /// [`ClientBuilder::protobuf`]); always false without the `protobuf`
    /// cargo feature.
    pub fn protobuf(&self) -> bool {
        self.inner.protobuf
    }

    /// Whether the server of the API group/version `api_version` refused a
    /// protobuf body (415) from this client before.
    pub(crate) fn refuses_protobuf_bodies(&self, api_version: &str) -> bool {
        self.inner
            .protobuf_bodies_refused
            .read()
            .contains(api_version)
    }

    /// Notes that the server of `api_version` refused a protobuf body.
    pub(crate) fn note_protobuf_bodies_refused(&self, api_version: &str) {
        self.inner
            .protobuf_bodies_refused
            .write()
            .insert(api_version.to_string());
    }
}

/// Options of a [`Client`] beyond its [`kube_config::Config`].
#[derive(Debug)]
pub struct ClientBuilder {
    config: kube_config::Config,
    retry: RetryPolicy,
    observer: observer::ObserverSlot,
    rate_limit: Option<(f64, u32)>,
    user_agent: String,
    max_body_bytes: usize,
    max_event_bytes: usize,
    protobuf: bool,
}

impl ClientBuilder {
    /// Defaults: 4 retries with backoff from 200 ms to 10 s, no rate limit,
    /// protobuf for built-in kinds.
    pub fn new(config: kube_config::Config) -> Self {
        Self {
            config,
            retry: RetryPolicy::default(),
            observer: observer::ObserverSlot::default(),
            rate_limit: None,
            user_agent: format!("kube-client/{} (rust)", env!("CARGO_PKG_VERSION")),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            protobuf: cfg!(feature = "protobuf"),
        }
    }

    /// Whether typed requests for built-in kinds (every k8s-openapi type
    /// the `kube-protobuf` codec knows) speak protobuf: ask
    /// `Accept: application/vnd.kubernetes.protobuf,application/json`,
    /// send create and replace bodies as protobuf, and decode protobuf
    /// answers and watches into the same k8s-openapi structs. Answers are
    /// decoded by their `Content-Type`, so a server answering JSON still
    /// works. Custom resources, `DynamicObject`, `Object` and
    /// `PartialObjectMetadata` stay JSON whatever this says (see
    /// [`crate::codec`]).
    ///
    /// **On by default** (with the default `protobuf` cargo feature):
    /// protobuf is smaller and much cheaper to decode, which is most of
    /// what syncing and holding a large cache costs (issue #14). client-go
    /// defaults to JSON and leaves protobuf to each program's
    /// `rest.Config` (Kubernetes' own controllers turn it on); here the
    /// default is the fast path and `protobuf(false)` the opt-out, e.g. to
    /// read the wire with a debugging proxy. Without the cargo feature
    /// this has no effect: everything is JSON.
    pub fn protobuf(mut self, enabled: bool) -> Self {
        self.protobuf = enabled && cfg!(feature = "protobuf");
        self
    }

    /// The largest whole answer body read into memory (objects, lists,
    /// logs read at once); a larger one is an [`Error::TooLarge`] and is not
    /// read further. Default [`DEFAULT_MAX_BODY_BYTES`] (1 GiB). Must be at
    /// least 1.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// The largest single watch event (one line of a watch) or line of a
    /// followed log; a larger one ends the stream with an
    /// [`Error::TooLarge`]. Default [`DEFAULT_MAX_EVENT_BYTES`] (16 MiB,
    /// ten times what etcd lets one object be). Must be at least 1.
    pub fn max_watch_event_bytes(mut self, limit: usize) -> Self {
        self.max_event_bytes = limit;
        self
    }

    /// Sets the retry policy ([`RetryPolicy::none`] disables retries).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Limits requests to `qps` per second with bursts of `burst`, as
    /// client-go's token bucket does. Off by default. `qps` must be a
    /// positive, finite number (fractions allowed, down to one request per
    /// [`RateLimit::LONGEST_WAIT`]) and `burst` at least 1, else
    /// [`build`](Self::build) fails with [`Error::Config`].
    pub fn rate_limit(mut self, qps: f64, burst: u32) -> Self {
        self.rate_limit = Some((qps, burst));
        self
    }

    /// Sets the `User-Agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Builds the client. Fails on an unusable CA, client certificate or
    /// proxy, and on settings out of range (rate limit, body limits).
    pub fn build(self) -> Result<Client> {
        let rate_limit = self
            .rate_limit
            .map(|(qps, burst)| RateLimit::try_new(qps, burst))
            .transpose()?;
        for (setting, value) in [
            ("max_body_bytes", self.max_body_bytes),
            ("max_watch_event_bytes", self.max_event_bytes),
        ] {
            if value == 0 {
                return Err(Error::Config(format!(
                    "ClientBuilder::{setting} must be at least 1 byte, got 0"
                )));
            }
        }
        let identity = || {
            self.config.identity.as_ref().map(|id| tls::Identity {
                chain: id.cert_chain_der(),
                key: id.key_der(),
            })
        };
        let http = http_client(
            &self.config,
            identity(),
            &self.user_agent,
            Protocol::Negotiated,
        )?;
        let http1 = http_client(
            &self.config,
            identity(),
            &self.user_agent,
            Protocol::Http1Only,
        )?;
        let base = self
            .config
            .cluster_url
            .as_str()
            .trim_end_matches('/')
            .to_string();
        let shown_base = kube_config::redact_url(self.config.cluster_url.as_str())
            .trim_end_matches('/')
            .to_string();
        let timeout = self.config.read_timeout.unwrap_or(DEFAULT_TIMEOUT);
        Ok(Client {
            inner: Arc::new(Inner {
                observer: self.observer.build(&self.config.cluster_url),
                base,
                shown_base,
                http: RwLock::new((http, None)),
                http1: RwLock::new((http1, None)),
                retry: self.retry,
                rate_limit,
                timeout,
                user_agent: self.user_agent,
                max_body_bytes: self.max_body_bytes,
                max_event_bytes: self.max_event_bytes,
                protobuf: self.protobuf,
                protobuf_bodies_refused: RwLock::new(HashSet::new()),
                oidc: oidc::Refresher::default(),
                config: self.config,
            }),
        })
    }
}

/// Which HTTP versions a reqwest client may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// HTTP/2 when the server offers it, else HTTP/1.1.
    Negotiated,
    /// HTTP/1.1 only, for WebSocket upgrades.
    Http1Only,
}

/// A reqwest client for `config`, presenting `identity`.
fn http_client(
    config: &kube_config::Config,
    identity: Option<tls::Identity>,
    user_agent: &str,
    protocol: Protocol,
) -> Result<reqwest::Client> {
    let tls = tls::client_config(config, identity, protocol == Protocol::Negotiated)?;
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(user_agent)
        .gzip(!config.disable_compression)
        .connect_timeout(config.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
        .tcp_keepalive(Duration::from_secs(30))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .http2_keep_alive_while_idle(true);
    if let Some(proxy) = &config.proxy_url {
        let proxy = reqwest::Proxy::all(proxy.as_str()).map_err(|e| {
            let message = format!("proxy-url {proxy}: {e}");
            Error::Config(kube_config::redact_url(&message).into_owned())
        })?;
        builder = builder.proxy(proxy);
    }
    if protocol == Protocol::Http1Only {
        builder = builder.http1_only();
    }
    builder.build().map_err(|e| {
        let message = format!(
            "building the HTTP client for {}: {}",
            config.cluster_url,
            crate::error::error_chain(&e)
        );
        Error::Config(kube_config::redact_url(&message).into_owned())
    })
}
