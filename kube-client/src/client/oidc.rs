//! Refreshing the ID token of a kubeconfig user with `auth-provider: oidc`
//! (see [`kube_config::OidcAuth`]), as client-go's `oidc` plugin does.
//!
//! An OpenID Connect issuer publishes a discovery document at
//! `<idp-issuer-url>/.well-known/openid-configuration`; its
//! `token_endpoint` exchanges a refresh token for a new ID token (OAuth 2
//! `grant_type=refresh_token`, a form-encoded POST). The client
//! authenticates there with `client-id` and `client-secret`: first as HTTP
//! Basic credentials (RFC 6749 §2.3.1), and when the endpoint refuses that
//! (400 or 401) once more with both in the form, which is how Go's
//! `oauth2` package (used by client-go) finds out what an issuer wants.
//! Without a secret, `client_id` goes in the form.
//!
//! Guarantees:
//!
//! - The ID token is used while it is valid; a request that finds it
//!   expired or missing (or a retry after a 401 that dropped it) refreshes
//!   first. Concurrent requests share one refresh: they queue on one lock,
//!   and those behind the refresher find the fresh token — or the
//!   refresher's error — when they get it. A failure is not cached beyond
//!   that: a later request tries again.
//! - The issuer is reached over HTTPS only (`idp-issuer-url` and the
//!   `token_endpoint` must be `https://` URLs), verified against
//!   `idp-certificate-authority(-data)` when the kubeconfig has one, and
//!   only against it, else against the platform's roots — never without
//!   verification, whatever the cluster's `insecure-skip-tls-verify` says.
//!   Proxies come from the environment (`HTTPS_PROXY`, `NO_PROXY`), as Go's
//!   default transport does, not from the cluster's `proxy-url`.
//! - Every answer of the issuer is read under [`MAX_ISSUER_ANSWER_BYTES`];
//!   every request is bounded by [`ISSUER_TIMEOUT`].
//! - Failures are [`Error::OidcRefresh`] carrying an [`OidcRefreshError`]
//!   that says which step failed (discovery, token endpoint status, no
//!   `id_token` in the answer, ...). Neither errors nor logs contain the
//!   tokens, the client secret or the issuer's answer bodies; of an OAuth
//!   error answer only its `error` code is kept (e.g. `invalid_grant`).
//! - A rotated `refresh_token` in the answer replaces the old one.
//! - After each refresh, the new `id-token` (and a rotated `refresh-token`)
//!   are written back to the kubeconfig file the user was read from, as
//!   client-go does (see [`OidcAuth::persist_refreshed`]: only those two
//!   keys of that user change, the file is replaced atomically with its
//!   permissions, comments are lost). The write runs on a blocking thread
//!   while the refresh lock is still held, so refreshes of one `Client`
//!   write in order. Writing failing does not fail the request: the tokens
//!   are used from memory and a warning names the file and the error.
//!   Switch it off with
//!   [`Config::with_oidc_token_persisting(false)`][persisting]; users not
//!   read from a file (a kubeconfig string, in-cluster) are never written.
//!
//! [persisting]: kube_config::Config::with_oidc_token_persisting

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use base64::Engine;
use bytes::{Bytes, BytesMut};
use kube_config::{Credential, JwtError, OidcAuth, SecretString};

use super::{Client, tls};
use crate::error::{Error, Result, error_chain, safe_json_error};

/// The most read of any one answer of the issuer (discovery document,
/// token answer): 256 KiB.
pub const MAX_ISSUER_ANSWER_BYTES: usize = 256 * 1024;

/// The longest any one request to the issuer may take, connection included.
pub const ISSUER_TIMEOUT: Duration = Duration::from_secs(60);

/// Which step of refreshing an `oidc` ID token failed, and how. Never holds
/// a token, the client secret or an answer body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OidcRefreshError {
    /// The issuer or its token endpoint is not an `https://` URL.
    #[error("{what} `{url}` is not an https:// URL")]
    NotHttps {
        /// `idp-issuer-url` or `token_endpoint`.
        what: &'static str,
        /// The URL.
        url: String,
    },
    /// The TLS setup for the issuer failed (e.g. an unusable
    /// `idp-certificate-authority`).
    #[error("TLS setup for the issuer: {message}")]
    Tls {
        /// What failed.
        message: String,
    },
    /// The discovery document could not be fetched or read.
    #[error("discovery GET {url}: {problem}")]
    Discovery {
        /// The discovery URL.
        url: String,
        /// What went wrong (connection, HTTP status, size, JSON, no
        /// `token_endpoint`).
        problem: String,
    },
    /// The token endpoint could not be reached or its answer not read.
    #[error("token endpoint POST {url}: {problem}")]
    TokenEndpoint {
        /// The token endpoint.
        url: String,
        /// What went wrong (connection, size, JSON).
        problem: String,
    },
    /// The token endpoint refused the refresh.
    #[error("token endpoint POST {url} answered HTTP {code}{}", oauth_error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default())]
    TokenEndpointStatus {
        /// The token endpoint.
        url: String,
        /// The HTTP status.
        code: u16,
        /// The OAuth `error` code of the answer, e.g. `invalid_grant`,
        /// when it had one (its description is not kept).
        oauth_error: Option<String>,
    },
    /// The token endpoint answered without an `id_token`.
    #[error("token endpoint POST {url} answered without an id_token")]
    MissingIdToken {
        /// The token endpoint.
        url: String,
    },
    /// The token endpoint answered an `id_token` whose expiry cannot be read.
    #[error("token endpoint POST {url} answered an id_token that is not usable: {problem}")]
    BadIdToken {
        /// The token endpoint.
        url: String,
        /// What is wrong with it.
        problem: JwtError,
    },
}

/// The single-flight lock of a [`Client`]'s refreshes, and what it learnt
/// about the issuer.
#[derive(Default)]
pub(crate) struct Refresher {
    /// How many refreshes have finished, either way: a caller that saw this
    /// change while it waited for the lock takes the outcome of the refresh
    /// it waited for instead of trying again.
    finished: AtomicU64,
    state: tokio::sync::Mutex<RefreshState>,
}

#[derive(Default)]
struct RefreshState {
    issuer: Option<Issuer>,
    /// How the last refresh failed, if it did.
    last_failure: Option<OidcRefreshError>,
}

/// An HTTP client for the issuer and its token endpoint, once discovered.
struct Issuer {
    http: reqwest::Client,
    token_endpoint: Option<String>,
}

/// What a successful refresh answered.
#[derive(serde::Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
    refresh_token: Option<String>,
}

impl Client {
    /// The credential of an `oidc` user: its ID token, refreshed first when
    /// it is expired or missing (one refresh for concurrent callers).
    pub(super) async fn oidc_credential(&self, oidc: &OidcAuth) -> Result<Credential> {
        let config_error = |source: kube_config::Error| Error::Auth {
            url: self.inner.shown_base.clone(),
            source: source.into(),
        };
        if let Some(token) = oidc
            .valid_id_token(SystemTime::now())
            .map_err(config_error)?
        {
            return Ok(credential(token));
        }
        let refresher = &self.inner.oidc;
        let failed = |failure| Error::OidcRefresh {
            user: oidc.user().to_string(),
            failure,
        };
        let seen = refresher.finished.load(Ordering::SeqCst);
        let mut state = refresher.state.lock().await;
        // Whoever held the lock before may have refreshed already...
        if let Some(token) = oidc
            .valid_id_token(SystemTime::now())
            .map_err(config_error)?
        {
            return Ok(credential(token));
        }
        // ... or failed to, while this caller waited: share that outcome.
        if refresher.finished.load(Ordering::SeqCst) != seen
            && let Some(failure) = &state.last_failure
        {
            return Err(failed(failure.clone()));
        }
        let outcome = refresh_once(&mut state.issuer, oidc, &self.inner.user_agent).await;
        state.last_failure = outcome.as_ref().err().cloned();
        refresher.finished.fetch_add(1, Ordering::SeqCst);
        let (id_token, refresh_token) = outcome.map_err(failed)?;
        tracing::debug!(user = oidc.user(), "refreshed the oidc id-token");
        oidc.store_refreshed(id_token.clone(), refresh_token.clone());
        if oidc.persist_file().is_some() {
            // Still under the lock, so that writes land in refresh order;
            // on a blocking thread, not the executor's. A failure is logged
            // there and does not fail the refresh.
            let (persisting, id) = (oidc.clone(), id_token.clone());
            let written = tokio::task::spawn_blocking(move || {
                persisting.persist_refreshed(&id, refresh_token.as_ref());
            })
            .await;
            if written.is_err() {
                tracing::warn!(
                    user = oidc.user(),
                    "writing the refreshed oidc tokens back to the kubeconfig did not finish"
                );
            }
        }
        Ok(credential(id_token))
    }
}

/// One refresh, with the issuer's HTTP client made on first use.
async fn refresh_once(
    issuer: &mut Option<Issuer>,
    oidc: &OidcAuth,
    user_agent: &str,
) -> std::result::Result<(SecretString, Option<SecretString>), OidcRefreshError> {
    let issuer = match issuer {
        Some(issuer) => issuer,
        slot @ None => slot.insert(Issuer {
            http: issuer_http(oidc, user_agent)?,
            token_endpoint: None,
        }),
    };
    let outcome = refresh(issuer, oidc).await;
    if outcome.is_err() {
        // Discover again next time: the issuer may have moved.
        issuer.token_endpoint = None;
    }
    outcome
}

fn credential(token: SecretString) -> Credential {
    Credential {
        expires_at: kube_config::jwt_expiry(token.expose()).ok().flatten(),
        token: Some(token),
        ..Credential::default()
    }
}

/// The HTTP client for the issuer: verified TLS against the provider's CA
/// or the platform's roots.
fn issuer_http(
    oidc: &OidcAuth,
    user_agent: &str,
) -> std::result::Result<reqwest::Client, OidcRefreshError> {
    let tls_failed = |message: String| OidcRefreshError::Tls { message };
    let roots = match &oidc.provider().issuer_root_certs {
        Some(certs) => {
            let mut roots = rustls::RootCertStore::empty();
            for der in certs {
                roots
                    .add(rustls::pki_types::CertificateDer::from(der.clone()))
                    .map_err(|e| tls_failed(format!("idp-certificate-authority: {e}")))?;
            }
            std::sync::Arc::new(roots)
        }
        None => tls::system_roots(),
    };
    if roots.is_empty() {
        return Err(tls_failed(
            "no idp-certificate-authority and the platform has no trusted roots".into(),
        ));
    }
    let config = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_failed(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .user_agent(user_agent)
        .connect_timeout(ISSUER_TIMEOUT)
        .timeout(ISSUER_TIMEOUT)
        .build()
        .map_err(|e| tls_failed(error_chain(&e)))
}

/// One refresh: discovery (unless known), then the token endpoint.
async fn refresh(
    issuer: &mut Issuer,
    oidc: &OidcAuth,
) -> std::result::Result<(SecretString, Option<SecretString>), OidcRefreshError> {
    let provider = oidc.provider();
    let issuer_url = provider.issuer_url.as_deref().unwrap_or_default();
    let endpoint = match &issuer.token_endpoint {
        Some(endpoint) => endpoint.clone(),
        None => {
            let endpoint = discover(&issuer.http, issuer_url).await?;
            issuer.token_endpoint = Some(endpoint.clone());
            endpoint
        }
    };
    let refresh_token = oidc.refresh_token().unwrap_or_default();
    let client_id = provider.client_id.as_deref().unwrap_or_default();
    let secret = provider.client_secret.as_ref().filter(|s| !s.is_empty());
    let mut resp = post_token(
        &issuer.http,
        &endpoint,
        &refresh_token,
        client_id,
        secret,
        true,
    )
    .await?;
    if secret.is_some() && matches!(resp.status().as_u16(), 400 | 401) {
        // The endpoint may want the client's credentials in the form.
        resp = post_token(
            &issuer.http,
            &endpoint,
            &refresh_token,
            client_id,
            secret,
            false,
        )
        .await?;
    }
    let code = resp.status().as_u16();
    let body = read_capped(resp)
        .await
        .map_err(|problem| OidcRefreshError::TokenEndpoint {
            url: endpoint.clone(),
            problem,
        })?;
    if !(200..300).contains(&code) {
        return Err(OidcRefreshError::TokenEndpointStatus {
            url: endpoint,
            code,
            oauth_error: oauth_error_code(&body),
        });
    }
    let answer: TokenAnswer =
        serde_json::from_slice(&body).map_err(|e| OidcRefreshError::TokenEndpoint {
            url: endpoint.clone(),
            problem: format!("the answer is not a token answer: {}", safe_json_error(&e)),
        })?;
    let Some(id_token) = answer.id_token.filter(|t| !t.is_empty()) else {
        return Err(OidcRefreshError::MissingIdToken { url: endpoint });
    };
    kube_config::jwt_expiry(&id_token).map_err(|problem| OidcRefreshError::BadIdToken {
        url: endpoint.clone(),
        problem,
    })?;
    Ok((
        SecretString::new(id_token),
        answer.refresh_token.map(SecretString::new),
    ))
}

/// The `token_endpoint` of the issuer's discovery document.
async fn discover(
    http: &reqwest::Client,
    issuer_url: &str,
) -> std::result::Result<String, OidcRefreshError> {
    require_https("idp-issuer-url", issuer_url)?;
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer_url.trim_end_matches('/')
    );
    let failed = |problem: String| OidcRefreshError::Discovery {
        url: url.clone(),
        problem,
    };
    let resp = http
        .get(&url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| failed(transport_message(&e)))?;
    let code = resp.status().as_u16();
    if !(200..300).contains(&code) {
        return Err(failed(format!("HTTP {code}")));
    }
    let body = read_capped(resp).await.map_err(failed)?;
    #[derive(serde::Deserialize)]
    struct Discovery {
        token_endpoint: Option<String>,
    }
    let doc: Discovery = serde_json::from_slice(&body)
        .map_err(|e| failed(format!("not a discovery document: {}", safe_json_error(&e))))?;
    let endpoint = doc
        .token_endpoint
        .filter(|e| !e.is_empty())
        .ok_or_else(|| failed("the document has no token_endpoint".into()))?;
    require_https("token_endpoint", &endpoint)?;
    Ok(endpoint)
}

/// POSTs the refresh grant, with the client's credentials as HTTP Basic
/// (`in_header`) or in the form.
async fn post_token(
    http: &reqwest::Client,
    endpoint: &str,
    refresh_token: &SecretString,
    client_id: &str,
    secret: Option<&SecretString>,
    in_header: bool,
) -> std::result::Result<reqwest::Response, OidcRefreshError> {
    let failed = |problem: String| OidcRefreshError::TokenEndpoint {
        url: endpoint.to_string(),
        problem,
    };
    let (form, authorization) = token_form(refresh_token, client_id, secret, in_header);
    let mut request = http
        .post(endpoint)
        .header(reqwest::header::ACCEPT, "application/json")
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
    if let Some(authorization) = authorization {
        let mut value = reqwest::header::HeaderValue::from_str(authorization.expose())
            .map_err(|_| failed("the client credentials do not make a header value".into()))?;
        value.set_sensitive(true);
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    request
        .body(form.into_inner())
        .send()
        .await
        .map_err(|e| failed(transport_message(&e)))
}

/// The form of a refresh grant, and the `Authorization` header value when
/// the client's credentials go there (`in_header` and a secret).
fn token_form(
    refresh_token: &SecretString,
    client_id: &str,
    secret: Option<&SecretString>,
    in_header: bool,
) -> (SecretString, Option<SecretString>) {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "refresh_token");
    form.append_pair("refresh_token", refresh_token.expose());
    let mut authorization = None;
    match secret {
        Some(secret) if in_header => {
            // RFC 6749 section 2.3.1: both parts form-encoded, then Basic.
            let encode =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", encode(client_id), encode(secret.expose()));
            let basic = base64::engine::general_purpose::STANDARD.encode(pair);
            authorization = Some(SecretString::new(format!("Basic {basic}")));
        }
        Some(secret) => {
            form.append_pair("client_id", client_id);
            form.append_pair("client_secret", secret.expose());
        }
        None => {
            form.append_pair("client_id", client_id);
        }
    }
    (SecretString::new(form.finish()), authorization)
}

fn require_https(what: &'static str, url: &str) -> std::result::Result<(), OidcRefreshError> {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some() => Ok(()),
        _ => Err(OidcRefreshError::NotHttps {
            what,
            url: kube_config::redact_url(url).into_owned(),
        }),
    }
}

/// A transport failure's whole chain, any URL password in it redacted.
fn transport_message(e: &reqwest::Error) -> String {
    kube_config::redact_url(&error_chain(e)).into_owned()
}

/// The whole body of `resp`, at most [`MAX_ISSUER_ANSWER_BYTES`].
async fn read_capped(mut resp: reqwest::Response) -> std::result::Result<Bytes, String> {
    let too_large = || format!("the answer is over the {MAX_ISSUER_ANSWER_BYTES}-byte limit");
    if resp
        .content_length()
        .is_some_and(|len| len > MAX_ISSUER_ANSWER_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading the answer: {}", transport_message(&e)))?
    {
        if body.len() + chunk.len() > MAX_ISSUER_ANSWER_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The OAuth `error` code of an error answer, when it is a short token of
/// the characters RFC 6749 error codes use (anything else is not shown).
fn oauth_error_code(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct OauthError {
        error: String,
    }
    let e: OauthError = serde_json::from_slice(body).ok()?;
    let plain = !e.error.is_empty()
        && e.error.len() <= 64
        && e.error
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    plain.then_some(e.error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_oauth_error_codes_are_kept() {
        assert_eq!(
            oauth_error_code(br#"{"error":"invalid_grant","error_description":"SECRET rt"}"#),
            Some("invalid_grant".into())
        );
        assert_eq!(oauth_error_code(br#"{"error":"SECRET token abc"}"#), None);
        assert_eq!(oauth_error_code(&[b'a'; 100]), None);
        assert_eq!(
            oauth_error_code(format!(r#"{{"error":"{}"}}"#, "x".repeat(65)).as_bytes()),
            None
        );
        assert_eq!(oauth_error_code(b"<html>"), None);
    }

    #[test]
    fn the_refresh_form() {
        let rt = SecretString::new("r t&1");
        let secret = SecretString::new("s:e/c");
        let (form, auth) = token_form(&rt, "my client", Some(&secret), true);
        assert_eq!(
            form.expose(),
            "grant_type=refresh_token&refresh_token=r+t%261"
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("my+client:s%3Ae%2Fc");
        assert_eq!(auth.unwrap().expose(), format!("Basic {basic}"));
        let (form, auth) = token_form(&rt, "c", Some(&secret), false);
        assert_eq!(
            form.expose(),
            "grant_type=refresh_token&refresh_token=r+t%261&client_id=c&client_secret=s%3Ae%2Fc"
        );
        assert!(auth.is_none());
        let (form, auth) = token_form(&rt, "c", None, true);
        assert!(form.expose().ends_with("&client_id=c") && auth.is_none());
    }

    #[test]
    fn the_issuer_must_be_https() {
        assert!(require_https("idp-issuer-url", "https://issuer.example/x").is_ok());
        for url in ["http://issuer", "issuer", "", "https://"] {
            let e = require_https("idp-issuer-url", url).unwrap_err();
            assert!(matches!(e, OidcRefreshError::NotHttps { .. }), "{url}");
        }
        let e = require_https("token_endpoint", "http://u:SECRET@h/t").unwrap_err();
        assert!(!e.to_string().contains("SECRET"), "{e}");
    }

    #[test]
    fn errors_say_which_step_failed() {
        let e = OidcRefreshError::TokenEndpointStatus {
            url: "https://i/token".into(),
            code: 400,
            oauth_error: Some("invalid_grant".into()),
        };
        assert_eq!(
            e.to_string(),
            "token endpoint POST https://i/token answered HTTP 400 (invalid_grant)"
        );
        let e = Error::OidcRefresh {
            user: "u".into(),
            failure: OidcRefreshError::MissingIdToken {
                url: "https://i/token".into(),
            },
        };
        assert_eq!(
            e.to_string(),
            "refreshing the oidc id-token of user `u`: token endpoint POST https://i/token answered without an id_token"
        );
    }
}
