//! The request pipeline of [`Client`]: rate limit, credentials,
//! impersonation, send, retry, and the mapping of answers to errors.

use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use reqwest::header::{HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::{Client, Protocol, body, http_client, retry, tls};
use crate::codec::{Answer, status_of_body};
use crate::error::{
    Error, Result, describe_body, error_chain, is_tls_error, media_type, safe_json_error,
};

/// How an answer is read, which decides the timeout, the HTTP client and
/// which status codes are success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Read whole, under the total timeout.
    Whole,
    /// Streamed (watches, followed logs): no total timeout.
    Streaming,
    /// A WebSocket upgrade over the HTTP/1.1-only client: success is
    /// `101 Switching Protocols`, no total timeout.
    Upgrade,
}

/// A decoded answer, or the `Status` the server sent instead (DELETE may
/// answer either).
#[derive(Debug, Clone)]
pub enum ObjectOrStatus<T> {
    /// The object.
    Object(T),
    /// A success `Status`.
    Status(Box<Status>),
}

impl Client {
    /// Sends `req` (its URI is the path and query) and decodes the JSON answer.
    pub async fn request<T: DeserializeOwned>(&self, req: http::Request<Vec<u8>>) -> Result<T> {
        let (url, bytes) = self.request_bytes(req).await?;
        decode_json(&url, &bytes)
    }

    /// Sends `req` and returns the body as text (e.g. Pod logs).
    pub async fn request_text(&self, req: http::Request<Vec<u8>>) -> Result<String> {
        let (_, bytes) = self.request_bytes(req).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Sends `req` and decodes the answer as `T`, or as a `Status` when the
    /// server sent one (`kind: Status`).
    pub async fn request_object_or_status<T: DeserializeOwned>(
        &self,
        req: http::Request<Vec<u8>>,
    ) -> Result<ObjectOrStatus<T>> {
        let (url, bytes) = self.request_bytes(req).await?;
        #[derive(serde::Deserialize)]
        struct Kind {
            #[serde(default)]
            kind: String,
        }
        match serde_json::from_slice::<Kind>(&bytes) {
            Ok(k) if k.kind == "Status" => {
                Ok(ObjectOrStatus::Status(Box::new(decode_json(&url, &bytes)?)))
            }
            _ => Ok(ObjectOrStatus::Object(decode_json(&url, &bytes)?)),
        }
    }

    /// Sends `req` and returns the open response for streaming (watches,
    /// followed logs). No total timeout applies.
    ///
    /// Streams are requested uncompressed (`Accept-Encoding: identity`):
    /// events are small and arrive one by one, and kube-apiserver's gzip of
    /// a streaming list cannot be decoded as one gzip member.
    ///
    /// Read the answer's `Content-Type` before its body: a watch that asked
    /// for protobuf may be answered in JSON (see [`crate::codec`]).
    pub async fn request_streaming(
        &self,
        mut req: http::Request<Vec<u8>>,
    ) -> Result<reqwest::Response> {
        req.headers_mut().insert(
            http::header::ACCEPT_ENCODING,
            http::HeaderValue::from_static("identity"),
        );
        self.send(&req, Mode::Streaming).await.map(|(resp, _)| resp)
    }

    /// Sends `req`, a WebSocket upgrade request, over the HTTP/1.1-only
    /// client and returns the `101 Switching Protocols` answer and the full
    /// URL. Credentials, impersonation, retries and error mapping are those
    /// of every request; a 2xx answer (the server did not switch) is an
    /// [`Error::Protocol`].
    pub(crate) async fn request_upgrade(
        &self,
        req: http::Request<Vec<u8>>,
    ) -> Result<(reqwest::Response, String)> {
        self.send(&req, Mode::Upgrade).await
    }

    async fn request_bytes(&self, req: http::Request<Vec<u8>>) -> Result<(String, bytes::Bytes)> {
        let answer = self.request_answer(req).await?;
        Ok((answer.url, answer.body))
    }

    /// Sends `req` and reads the whole answer: its URL (as shown), body and
    /// `Content-Type`, for decoding by the encoding the server chose.
    pub(crate) async fn request_answer(&self, req: http::Request<Vec<u8>>) -> Result<Answer> {
        let (resp, url) = self.send(&req, Mode::Whole).await?;
        let content_type = content_type_of(&resp);
        let body = body::read_limited(
            resp,
            req.method().as_str(),
            &url,
            self.inner.max_body_bytes,
            "response body",
        )
        .await?;
        Ok(Answer {
            url,
            body,
            content_type,
        })
    }

    /// Runs the pipeline; returns a 2xx response and the full URL as shown
    /// (any userinfo password redacted; the request itself keeps it).
    async fn send(
        &self,
        req: &http::Request<Vec<u8>>,
        mode: Mode,
    ) -> Result<(reqwest::Response, String)> {
        crate::path::check_request_uri(req.uri())?;
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let url = format!("{}{path}", self.inner.base);
        let shown_url = format!("{}{path}", self.inner.shown_base);
        let method = req.method().as_str().to_string();
        let span = tracing::debug_span!(
            "kube.request",
            method = %method,
            path = %req.uri().path(),
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = self
            .send_with_retries(req, &url, &shown_url, mode)
            .instrument(span.clone())
            .await;
        span.record("duration_ms", started.elapsed().as_millis() as u64);
        match &result {
            Ok(resp) => span.record("status", resp.status().as_u16()),
            Err(e) => span.record("status", e.code().unwrap_or(0)),
        };
        let resp = result?;
        Ok((resp, shown_url))
    }

    async fn send_with_retries(
        &self,
        req: &http::Request<Vec<u8>>,
        url: &str,
        shown_url: &str,
        mode: Mode,
    ) -> Result<reqwest::Response> {
        let method = req.method().as_str();
        let mut backoff = self.inner.retry.backoff();
        let mut refreshed_after_401 = false;
        loop {
            if let Some(limit) = &self.inner.rate_limit {
                limit.acquire().await;
            }
            // One credential per attempt: it picks the TLS identity (exec
            // client certificates) and the Authorization header alike.
            let credential = self.credential().await?;
            let protocol = match mode {
                Mode::Upgrade => Protocol::Http1Only,
                Mode::Whole | Mode::Streaming => Protocol::Negotiated,
            };
            let http = self.http_for_request(credential.as_ref(), protocol)?;
            let mut builder = http
                .request(req.method().clone(), url)
                .headers(req.headers().clone());
            if mode == Mode::Whole {
                builder = builder.timeout(self.inner.timeout);
            }
            let used = credential.clone();
            builder = self.authenticate(builder, credential)?;
            let outcome = self
                .send_observed(
                    req.method(),
                    req.headers().get(http::header::CONTENT_TYPE),
                    builder.body(req.body().clone()),
                )
                .await;
            match outcome {
                Ok(resp) if mode == Mode::Upgrade && resp.status().as_u16() == 101 => {
                    return Ok(resp);
                }
                Ok(resp) if mode == Mode::Upgrade && resp.status().is_success() => {
                    return Err(Error::Protocol {
                        url: shown_url.to_string(),
                        message: format!(
                            "the server answered {} instead of switching to a WebSocket",
                            resp.status().as_u16()
                        ),
                    });
                }
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let code = resp.status().as_u16();
                    if code == 401 && !refreshed_after_401 && self.can_refresh() {
                        tracing::debug!("401: refreshing credentials and retrying once");
                        refreshed_after_401 = true;
                        self.inner.config.auth.invalidate_rejected(used.as_ref());
                        continue;
                    }
                    let after = retry::retry_after(resp.headers());
                    if retry::retryable_answer(req.method(), code, after)
                        && let Some(delay) = self.inner.retry.next_delay(&mut backoff, after)
                    {
                        tracing::debug!(code, ?delay, "retrying");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    let limit = self.inner.max_body_bytes.min(body::MAX_ERROR_BODY_BYTES);
                    return Err(error_from_response(method, shown_url, resp, limit).await);
                }
                Err(e)
                    if retry::retryable_failure(
                        req.method(),
                        &e,
                        is_tls_error(&e),
                        mode == Mode::Upgrade,
                    ) =>
                {
                    if let Some(delay) = self.inner.retry.next_delay(&mut backoff, None) {
                        tracing::debug!(?delay, "connection failed or broke off; retrying");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Err(transport_error(method, shown_url, &e));
                }
                Err(e) => return Err(transport_error(method, shown_url, &e)),
            }
        }
    }

    fn can_refresh(&self) -> bool {
        match &self.inner.config.auth {
            kube_config::Auth::Exec(_)
            | kube_config::Auth::Bearer(kube_config::TokenSource::File(_)) => true,
            kube_config::Auth::Oidc(oidc) => oidc.can_refresh(),
            _ => false,
        }
    }

    async fn credential(&self) -> Result<Option<kube_config::Credential>> {
        // An oidc ID token is refreshed over HTTP, which kube-config does
        // not do: the client does it (one refresh for concurrent requests).
        if let kube_config::Auth::Oidc(oidc) = &self.inner.config.auth {
            return self.oidc_credential(oidc).await.map(Some);
        }
        // An exec plugin runs on a thread of its own; concurrent requests
        // await one shared run without blocking the async threads.
        self.inner
            .config
            .auth
            .current_credential_async()
            .await
            .map_err(|source| Error::Auth {
                url: self.inner.shown_base.clone(),
                source: source.into(),
            })
    }

    /// The HTTP client to use now: rebuilt when an exec plugin hands out a
    /// new client certificate.
    fn http_for_request(
        &self,
        credential: Option<&kube_config::Credential>,
        protocol: Protocol,
    ) -> Result<reqwest::Client> {
        let slot = match protocol {
            Protocol::Negotiated => &self.inner.http,
            Protocol::Http1Only => &self.inner.http1,
        };
        let Some(identity) = credential.and_then(|c| c.identity.as_ref()) else {
            return Ok(slot.read().0.clone());
        };
        let leaf = identity.cert_chain_der().first().map(|c| c.to_vec());
        {
            let current = slot.read();
            if current.1 == leaf {
                return Ok(current.0.clone());
            }
        }
        let fresh = http_client(
            &self.inner.config,
            Some(tls::Identity {
                chain: identity.cert_chain_der(),
                key: identity.key_der(),
            }),
            &self.inner.user_agent,
            protocol,
        )?;
        *slot.write() = (fresh.clone(), leaf);
        Ok(fresh)
    }

    fn authenticate(
        &self,
        mut builder: reqwest::RequestBuilder,
        credential: Option<kube_config::Credential>,
    ) -> Result<reqwest::RequestBuilder> {
        if let Some(header) = credential.and_then(|c| c.authorization_header()) {
            let mut value = HeaderValue::from_str(header.expose())
                .map_err(|_| Error::Config("the credential is not a valid header value".into()))?;
            value.set_sensitive(true);
            builder = builder.header(reqwest::header::AUTHORIZATION, value);
        }
        if let Some(imp) = &self.inner.config.impersonate {
            builder = builder.header("Impersonate-User", &imp.user);
            if let Some(uid) = &imp.uid {
                builder = builder.header("Impersonate-Uid", uid);
            }
            for group in &imp.groups {
                builder = builder.header("Impersonate-Group", group);
            }
            for (key, values) in &imp.extra {
                let name = HeaderName::from_bytes(
                    format!("Impersonate-Extra-{}", percent_encode(key)).as_bytes(),
                )
                .map_err(|e| Error::Config(format!("as-user-extra key `{key}`: {e}")))?;
                for v in values {
                    builder = builder.header(name.clone(), v);
                }
            }
        }
        Ok(builder)
    }
}

/// Percent-encodes what may not appear in a header name (client-go does the same).
fn percent_encode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-!#$&'*+.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `bytes` from `url` decoded as JSON; a failure never quotes them.
pub(crate) fn decode_json<T: DeserializeOwned>(url: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| json_decode_error(url, bytes, &e))
}

/// The error of `bytes` from `url` failing to decode as JSON with `e`; it
/// never quotes them.
pub(crate) fn json_decode_error(url: &str, bytes: &[u8], e: &serde_json::Error) -> Error {
    Error::Decode {
        url: url.to_string(),
        message: safe_json_error(e),
        body: describe_body(bytes, None),
    }
}

/// The `Content-Type` of `resp`, if it has a readable one.
pub(crate) fn content_type_of(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A transport error for `url` (as shown). The message is redacted too: it
/// may quote a URL with credentials (e.g. the proxy's).
pub(crate) fn transport_error(method: &str, url: &str, e: &reqwest::Error) -> Error {
    let message = kube_config::redact_url(&error_chain(e)).into_owned();
    if is_tls_error(e) {
        Error::Tls {
            url: url.to_string(),
            message,
        }
    } else {
        Error::Transport {
            method: method.to_string(),
            url: url.to_string(),
            message,
        }
    }
}

/// Turns a non-2xx answer into an error, decoding a `Status` if there is one.
/// Reads at most `limit` bytes of it; a larger body is not a `Status`, and
/// becomes an [`Error::HttpStatus`] saying so (the code is kept).
async fn error_from_response(
    method: &str,
    url: &str,
    resp: reqwest::Response,
    limit: usize,
) -> Error {
    let code = resp.status().as_u16();
    let content_type = content_type_of(&resp);
    match body::read_limited(resp, method, url, limit, "error body").await {
        Ok(bytes) => status_error(method, url, code, &bytes, content_type.as_deref()),
        // Too large to be a Status: keep the answer's code, say why the
        // body was not read.
        Err(Error::TooLarge { limit, .. }) => Error::HttpStatus {
            method: method.to_string(),
            url: url.to_string(),
            code,
            body: match media_type(content_type.as_deref()) {
                Some(media) => format!("a {media} body over the {limit}-byte limit, not read"),
                None => format!("a body over the {limit}-byte limit, not read"),
            },
        },
        Err(e) => e,
    }
}

impl Error {
    /// The error for a non-2xx answer with HTTP status `code`, body `body`
    /// and `Content-Type` `content_type`, as the client builds it:
    /// [`Error::Api`] when the body is a `Status` (JSON, or a protobuf
    /// envelope when `content_type` says protobuf) with a code, reason or
    /// message (a missing code is taken from the HTTP status), otherwise
    /// [`Error::HttpStatus`] describing the body by size and media type,
    /// never quoting it. Never panics, whatever the body.
    pub fn from_error_response(
        method: &str,
        url: &str,
        code: u16,
        body: &[u8],
        content_type: Option<&str>,
    ) -> Error {
        status_error(method, url, code, body, content_type)
    }
}

pub(crate) fn status_error(
    method: &str,
    url: &str,
    code: u16,
    bytes: &[u8],
    content_type: Option<&str>,
) -> Error {
    match status_of_body(bytes, content_type) {
        Some(mut status)
            if status.code.is_some() || status.reason.is_some() || status.message.is_some() =>
        {
            status.code.get_or_insert(i32::from(code));
            Error::Api {
                method: method.to_string(),
                url: url.to_string(),
                status: Box::new(status),
            }
        }
        _ => Error::HttpStatus {
            method: method.to_string(),
            url: url.to_string(),
            code,
            body: describe_body(bytes, content_type),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_keys_are_percent_encoded() {
        assert_eq!(percent_encode("scopes"), "scopes");
        assert_eq!(
            percent_encode("example.com/key one"),
            "example.com%2Fkey%20one"
        );
    }

    #[test]
    fn a_status_body_becomes_an_api_error() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"configmaps \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"configmaps"},"code":404}"#;
        let e = status_error(
            "GET",
            "https://h/api/v1/namespaces/d/configmaps/x",
            404,
            body,
            Some("application/json"),
        );
        assert!(e.is_not_found());
        assert_eq!(
            e.status()
                .unwrap()
                .details
                .as_ref()
                .unwrap()
                .name
                .as_deref(),
            Some("x")
        );
        assert_eq!(
            e.to_string(),
            "GET https://h/api/v1/namespaces/d/configmaps/x: 404 NotFound: configmaps \"x\" not found"
        );
    }

    #[test]
    fn a_non_json_error_is_described_never_quoted() {
        let body = "<html>bad gateway</html>".repeat(100);
        let e = status_error(
            "GET",
            "https://h/x",
            502,
            body.as_bytes(),
            Some("text/html; charset=utf-8"),
        );
        match &e {
            Error::HttpStatus {
                code: 502, body, ..
            } => assert_eq!(body, "a 2400-byte text/html body"),
            other => panic!("{other:?}"),
        }
        assert_eq!(e.code(), Some(502));
        assert_eq!(
            e.to_string(),
            "GET https://h/x: HTTP 502, a 2400-byte text/html body"
        );
        let e = status_error("GET", "https://h/x", 500, b"c2VjcmV0", None);
        assert_eq!(e.to_string(), "GET https://h/x: HTTP 500, a 8-byte body");
    }

    #[test]
    fn a_decode_error_never_quotes_the_body() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Wanted {
            count: u32,
            mode: Mode,
        }
        #[derive(Debug, serde::Deserialize)]
        enum Mode {
            On,
        }
        let bodies: [&[u8]; 5] = [
            br#"{"count":"hunter2-secret"}"#,
            br#"{"count":1,"mode":"hunter2-secret"}"#,
            br#"{"count":1,"hunter2-secret":1}"#,
            br#"hunter2-secret"#,
            br#"{"count":12345678901234567890123,"x":"hunter2-secret"}"#,
        ];
        for body in bodies {
            let e = decode_json::<Wanted>("https://h/x", body).unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(
                shown.contains("https://h/x") && shown.contains("line 1"),
                "{shown}"
            );
        }
        let e = decode_json::<Wanted>("https://h/x", br#"{"mode":"On"}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `count`"), "{e}");
    }
}
