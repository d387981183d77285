//! The client's one error type.
//!
//! An answer from the API server that is an error carries the decoded
//! `Status` ([`Error::Api`]); use the helpers (`is_not_found`, `is_conflict`,
//! `is_gone`, …) rather than matching codes. Failures that never reached a
//! decoded answer are distinct variants, each naming the URL: transport,
//! TLS, authentication, decoding, a non-JSON error body, a body over a
//! limit.
//!
//! No error quotes a body the server sent: a body may be a Secret. A
//! `Status`'s message is kept (the server wrote it for humans); any other
//! body is described by its size and content type, and a decoding failure
//! by its kind and position — with [`safe_json_error`], which code outside
//! this crate that decodes JSON it must not quote (cached objects, say)
//! uses too.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

/// Everything that can go wrong talking to the API server. Cheap to clone,
/// so that one error can be both returned and queued.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The server answered with a Kubernetes `Status` error.
    #[error("{method} {url}: {} {}: {}", status.code.unwrap_or_default(), status.reason.as_deref().unwrap_or("Unknown"), status.message.as_deref().unwrap_or_default())]
    Api {
        /// Request method.
        method: String,
        /// Request URL.
        url: String,
        /// The decoded Status (code, reason, message, details).
        status: Box<Status>,
    },
    /// The server answered an error status whose body is not a `Status`.
    /// Only the body's size and content type are kept: a body can be
    /// anything, including a Secret's data.
    #[error("{method} {url}: HTTP {code}, {body}")]
    HttpStatus {
        /// Request method.
        method: String,
        /// Request URL.
        url: String,
        /// HTTP status code.
        code: u16,
        /// What the body was, never its content: e.g. `a 42-byte text/html body`.
        body: String,
    },
    /// The connection failed, was refused, timed out or was cut.
    #[error("{method} {url}: {message}")]
    Transport {
        /// Request method.
        method: String,
        /// Request URL.
        url: String,
        /// The whole error chain.
        message: String,
    },
    /// TLS failed: untrusted certificate, wrong name, bad client identity.
    #[error("TLS with {url} failed: {message}")]
    Tls {
        /// Request URL (or server URL when building the client).
        url: String,
        /// The whole error chain.
        message: String,
    },
    /// Credentials could not be obtained (token file, exec plugin, …).
    #[error("credentials for {url}: {source}")]
    Auth {
        /// The server the credentials were for.
        url: String,
        /// What kube-config said.
        #[source]
        source: std::sync::Arc<kube_config::Error>,
    },
    /// Refreshing the ID token of an `oidc` user at its issuer failed (see
    /// [`crate::client::oidc`]).
    #[error("refreshing the oidc id-token of user `{user}`: {failure}")]
    OidcRefresh {
        /// The kubeconfig user.
        user: String,
        /// Which step failed, and how.
        #[source]
        failure: crate::client::OidcRefreshError,
    },
    /// A body could not be decoded into the expected type. The message says
    /// where decoding failed (line and column) and which kind of failure it
    /// was, but never quotes the body: a body can be a Secret.
    #[error("decoding the answer of {url}: {message} ({body})")]
    Decode {
        /// Request URL.
        url: String,
        /// What went wrong and where (never the decoded text).
        message: String,
        /// What the body was, never its content: e.g. `a 42-byte body`.
        body: String,
    },
    /// The server sent more than a configured limit allows; the rest was
    /// not read.
    #[error("{what} from {url} is larger than the limit of {limit} bytes ({setting})")]
    TooLarge {
        /// Request URL.
        url: String,
        /// What was too large: `"response body"`, `"watch event"`, `"log line"`.
        what: &'static str,
        /// The limit, in bytes.
        limit: usize,
        /// The setting that sets the limit, e.g. `ClientBuilder::max_body_bytes`.
        setting: &'static str,
    },
    /// The configuration cannot make a client (bad CA, bad proxy URL, …).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The request itself is invalid (e.g. an object without a name).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A name, namespace, plural, group, version or subresource cannot be a
    /// URL path segment (see [`crate::path`]); nothing was sent.
    #[error("invalid {what} {value}: {reason}")]
    InvalidPathSegment {
        /// Which segment: `"name"`, `"namespace"`, `"plural"`, ….
        what: &'static str,
        /// The refused value, escaped and cut to a readable length.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A WebSocket stream (exec, attach, port-forward) broke its protocol:
    /// the server did not switch protocols, agreed on none we offered, or
    /// sent a frame that has no meaning (an unknown channel, a text frame,
    /// a port prefix that is not the port asked for). The frame is never
    /// quoted.
    #[error("WebSocket stream of {url}: {message}")]
    Protocol {
        /// The stream's URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// A port-forward's error channel reported a failure, e.g. nothing
    /// listens on the Pod's port.
    #[error("port-forward to port {port} of {url}: {message}")]
    PortForward {
        /// The port-forward URL.
        url: String,
        /// The Pod's port.
        port: u16,
        /// What the kubelet said (cut to 1 KiB, printable text only).
        message: String,
    },
    /// A watch stream sent an `ERROR` event.
    #[error("watch of {url} failed: {} {}: {}", status.code.unwrap_or_default(), status.reason.as_deref().unwrap_or("Unknown"), status.message.as_deref().unwrap_or_default())]
    WatchError {
        /// The watch URL.
        url: String,
        /// The Status the server sent.
        status: Box<Status>,
    },
}

impl Error {
    /// The API `Status`, if the server answered with one.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Error::Api { status, .. } | Error::WatchError { status, .. } => Some(status),
            _ => None,
        }
    }

    /// The HTTP code of an answered error.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::HttpStatus { code, .. } => Some(*code),
            _ => self
                .status()
                .and_then(|s| s.code)
                .and_then(|c| u16::try_from(c).ok()),
        }
    }

    fn reason_is(&self, reason: &str) -> bool {
        self.status().and_then(|s| s.reason.as_deref()) == Some(reason)
    }

    /// 404 NotFound.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }
    /// 409 Conflict (including `AlreadyExists`).
    pub fn is_conflict(&self) -> bool {
        self.code() == Some(409)
    }
    /// 409 AlreadyExists.
    pub fn is_already_exists(&self) -> bool {
        self.reason_is("AlreadyExists")
    }
    /// 410 Gone / Expired: the resourceVersion is too old; relist.
    pub fn is_gone(&self) -> bool {
        self.code() == Some(410) || self.reason_is("Expired") || self.reason_is("Gone")
    }
    /// 403 Forbidden.
    pub fn is_forbidden(&self) -> bool {
        self.code() == Some(403)
    }
    /// 401 Unauthorized.
    pub fn is_unauthorized(&self) -> bool {
        self.code() == Some(401)
    }
    /// 422 Invalid.
    pub fn is_invalid(&self) -> bool {
        self.code() == Some(422)
    }
    /// 429 TooManyRequests.
    pub fn is_too_many_requests(&self) -> bool {
        self.code() == Some(429)
    }
    /// 504 / a server-side timeout.
    pub fn is_timeout(&self) -> bool {
        self.code() == Some(504) || self.reason_is("Timeout")
    }
    /// "Too large resource version": the server has not seen that version yet.
    pub fn is_resource_version_too_large(&self) -> bool {
        self.status().is_some_and(|s| {
            s.details
                .as_ref()
                .and_then(|d| d.causes.as_ref())
                .is_some_and(|causes| {
                    causes
                        .iter()
                        .any(|c| c.reason.as_deref() == Some("ResourceVersionTooLarge"))
                })
                || s.message
                    .as_deref()
                    .is_some_and(|m| m.contains("Too large resource version"))
        })
    }
    /// The connection could not be made or was lost.
    pub fn is_transport(&self) -> bool {
        matches!(self, Error::Transport { .. })
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A description of a body that never quotes it: its size and, when
/// known, its media type.
pub(crate) fn describe_body(body: &[u8], content_type: Option<&str>) -> String {
    match media_type(content_type) {
        Some(media) => format!("a {}-byte {media} body", body.len()),
        None => format!("a {}-byte body", body.len()),
    }
}

/// The media type of a `Content-Type` (`text/html`), never its parameters
/// (they are the server's text too), printable ASCII only, at most 64
/// characters.
pub(crate) fn media_type(content_type: Option<&str>) -> Option<String> {
    let media: String = content_type?
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect();
    (!media.is_empty()).then_some(media)
}

/// A serde_json error described without quoting the input, for errors and
/// logs about JSON that may hold secrets.
///
/// serde's messages for wrong types, values, variants and fields include
/// the offending text (`invalid type: string "…"`), so only the kind of
/// failure and its position are kept: `not valid JSON`, `JSON ended
/// early`, `JSON does not match the expected type` or `I/O error`, then
/// `at line L column C`. A missing field is named (`missing field `name``),
/// since its name comes from the Rust type, not from the input.
///
/// ```
/// let e = serde_json::from_str::<Vec<u32>>(r#"["hunter2"]"#).unwrap_err();
/// assert!(e.to_string().contains("hunter2"), "serde_json quotes it");
/// let said = kube_client::error::safe_json_error(&e);
/// assert_eq!(said, "JSON does not match the expected type at line 1 column 10");
/// ```
pub fn safe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let text = e.to_string();
    let kind = match e.classify() {
        Category::Io => "I/O error",
        Category::Syntax => "not valid JSON",
        Category::Eof => "JSON ended early",
        Category::Data => {
            if let Some(rest) = text.strip_prefix("missing field `")
                && let Some((field, _)) = rest.split_once('`')
                && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return format!(
                    "missing field `{field}` at line {} column {}",
                    e.line(),
                    e.column()
                );
            }
            "JSON does not match the expected type"
        }
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

/// An error and all its sources, joined with ": ".
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

/// True if TLS failed: a rustls error somewhere in the chain. Connectors
/// may box the rustls error in ways that hide its type, so the texts rustls
/// gives its errors are recognised too.
pub(crate) fn is_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    const RUSTLS_TEXTS: [&str; 6] = [
        "invalid peer certificate",
        "received fatal alert",
        "peer is incompatible",
        "peer misbehaved",
        "no server certificate chain resolved",
        "tls handshake eof",
    ];
    let text = error_chain(e).to_lowercase();
    if RUSTLS_TEXTS.iter().any(|t| text.contains(t)) {
        return true;
    }
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::safe_json_error;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Creds {
        user: String,
        token: u64,
        kind: Kind,
    }

    #[derive(Debug, serde::Deserialize)]
    enum Kind {
        Basic,
    }

    #[test]
    fn json_errors_keep_their_kind_and_position_but_never_the_input() {
        let cases = [
            (
                r#"{"user": "u", "token": "s3cr3t", "kind": "Basic"}"#,
                "JSON does not match the expected type at line 1 column 31",
            ),
            (
                r#"{"user": "u", "token": 1, "kind": "s3cr3t"}"#,
                "JSON does not match the expected type at line 1 column 42",
            ),
            (
                r#"{"user": "u", "token": 1, "kind": "Basic", "s3cr3t" ]"#,
                "not valid JSON at line 1 column 53",
            ),
            (
                r#"{"user": "s3cr3t"#,
                "JSON ended early at line 1 column 16",
            ),
            (
                r#"{"user": "u", "token": 1}"#,
                "missing field `kind` at line 1 column 25",
            ),
        ];
        for (input, expected) in cases {
            let e = serde_json::from_str::<Creds>(input).unwrap_err();
            let said = safe_json_error(&e);
            assert_eq!(said, expected, "{input}");
            assert!(!said.contains("s3cr3t"), "{said}");
        }
        let quoted = serde_json::from_str::<Creds>(cases[0].0).unwrap_err();
        assert!(
            quoted.to_string().contains("s3cr3t"),
            "serde_json's own text quotes the input: {quoted}"
        );
    }
}
