//! The `Client`: one configured connection pool to one API server.
//!
//! A `Client` is cheap to clone (an `Arc`) and is meant to be shared. Each
//! request goes through the same pipeline:
//! 1. the optional client-side rate limit (QPS and burst, off by default);
//! 2. credentials: the current bearer token or basic credentials (a token
//!    file is re-read when it changes, an exec plugin re-run before its
//!    credential expires) and impersonation headers;
//! 3. the HTTP request over reqwest + rustls (HTTP/2 when the server offers
//!    it), under a total timeout — except watches and log follows, which
//!    only have a connect timeout, so a long watch is never cut by us;
//! 4. retries: 429, 503 and 504 answers and refused connections are retried
//!    with capped exponential backoff, honouring `Retry-After`; a 401 drops
//!    cached credentials and retries once with fresh ones;
//! 5. the answer: 2xx is decoded, anything else becomes a typed
//!    [`Error`] carrying the server's `Status`.
//!
//! Every request runs in a `tracing` span (`kube.request`: method, path,
//! status, duration in ms), and every attempt is told to the optional
//! [`RequestObserver`] (for metrics, see [`observer`]). Credentials never
//! appear in spans, logs, observations or `Debug`.

mod pipeline;
mod ratelimit;
mod retry;
pub(crate) mod tls;

pub mod observer;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

pub use pipeline::ObjectOrStatus;
pub(crate) use pipeline::transport_error;
pub use ratelimit::RateLimit;
pub use retry::RetryPolicy;

pub use observer::{RequestAttempt, RequestObserver};

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
    /// The server URL without a trailing slash.
    base: String,
    /// The HTTP client, and the DER of the exec-plugin certificate it
    /// presents (rebuilt when an exec plugin hands out a new one).
    http: RwLock<(reqwest::Client, Option<Vec<u8>>)>,
    retry: RetryPolicy,
    observer: Option<observer::Observer>,
    rate_limit: Option<RateLimit>,
    timeout: Duration,
    user_agent: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.base)
            .field("auth", &self.inner.config.auth.kind())
            .field("default_namespace", &self.inner.config.default_namespace)
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

    /// The API server's URL.
    pub fn server_url(&self) -> &str {
        &self.inner.base
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
}

impl ClientBuilder {
    /// Defaults: 4 retries with backoff from 200 ms to 10 s, no rate limit.
    pub fn new(config: kube_config::Config) -> Self {
        Self {
            config,
            retry: RetryPolicy::default(),
            observer: observer::ObserverSlot::default(),
            rate_limit: None,
            user_agent: format!("kube-client/{} (rust)", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Sets the retry policy ([`RetryPolicy::none`] disables retries).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Limits requests to `qps` per second with bursts of `burst`, as
    /// client-go's token bucket does. Off by default.
    pub fn rate_limit(mut self, qps: f64, burst: u32) -> Self {
        self.rate_limit = Some((qps, burst));
        self
    }

    /// Sets the `User-Agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Builds the client. Fails on an unusable CA, client certificate or proxy.
    pub fn build(self) -> Result<Client> {
        let identity = self.config.identity.as_ref().map(|id| tls::Identity {
            chain: id.cert_chain_der(),
            key: id.key_der(),
        });
        let http = http_client(&self.config, identity, &self.user_agent)?;
        let base = self
            .config
            .cluster_url
            .as_str()
            .trim_end_matches('/')
            .to_string();
        let timeout = self.config.read_timeout.unwrap_or(DEFAULT_TIMEOUT);
        Ok(Client {
            inner: Arc::new(Inner {
                observer: self.observer.build(&self.config.cluster_url),
                base,
                http: RwLock::new((http, None)),
                retry: self.retry,
                rate_limit: self
                    .rate_limit
                    .map(|(qps, burst)| RateLimit::new(qps, burst)),
                timeout,
                user_agent: self.user_agent,
                config: self.config,
            }),
        })
    }
}

/// A reqwest client for `config`, presenting `identity`.
fn http_client(
    config: &kube_config::Config,
    identity: Option<tls::Identity>,
    user_agent: &str,
) -> Result<reqwest::Client> {
    let tls = tls::client_config(config, identity)?;
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(user_agent)
        .gzip(!config.disable_compression)
        .connect_timeout(config.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
        .tcp_keepalive(Duration::from_secs(30))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .http2_keep_alive_while_idle(true);
    if let Some(proxy) = &config.proxy_url {
        let proxy = reqwest::Proxy::all(proxy.as_str())
            .map_err(|e| Error::Config(format!("proxy-url {proxy}: {e}")))?;
        builder = builder.proxy(proxy);
    }
    builder.build().map_err(|e| {
        Error::Config(format!(
            "building the HTTP client for {}: {}",
            config.cluster_url,
            crate::error::error_chain(&e)
        ))
    })
}
