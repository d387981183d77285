//! How the test environment itself talks to a cluster: the admin's HTTPS
//! client, used to wait for readiness and to create namespaces. This is a
//! deliberately small reqwest + rustls client (kube-client's own tests use
//! this crate, so it cannot use kube-client).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

/// What it takes to reach a cluster as its admin.
#[derive(Clone)]
pub struct Access {
    /// `https://127.0.0.1:PORT`, no trailing slash.
    pub server: String,
    /// PEM CA bundle that signs the server's certificate.
    pub ca_pem: String,
    /// Client certificate and key (PEM), if the admin authenticates with one.
    pub client_identity: Option<(String, String)>,
    /// Bearer token, if the admin authenticates with one.
    pub bearer_token: Option<String>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("server", &self.server)
            .field(
                "client_identity",
                &self.client_identity.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

impl Access {
    fn err(&self, method: &'static str, path: &str, reason: impl ToString) -> Error {
        Error::Http {
            method,
            url: format!("{}{path}", self.server),
            reason: reason.to_string(),
        }
    }

    /// A reqwest client that trusts `ca_pem` and presents the admin identity.
    pub fn http_client(&self) -> Result<reqwest::Client> {
        let bad = |reason: String| self.err("CONNECT", "", reason);
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| bad(format!("bad CA PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| bad(format!("bad CA certificate: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?
            .with_root_certificates(roots);
        let mut tls = match &self.client_identity {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(format!("bad client certificate PEM: {e}")))?;
                let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                    .map_err(|e| bad(format!("bad client key PEM: {e}")))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| bad(e.to_string()))?
            }
            None => builder.with_no_client_auth(),
        };
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| bad(e.to_string()))
    }

    /// Sends one JSON request and returns the status and decoded body.
    pub async fn request(
        &self,
        client: &reqwest::Client,
        method: &'static str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, serde_json::Value)> {
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| self.err(method, path, e))?;
        let mut req = client
            .request(m, format!("{}{path}", self.server))
            .header("Accept", "application/json");
        if let Some(token) = &self.bearer_token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.err(method, path, error_chain(&e)))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| self.err(method, path, error_chain(&e)))?;
        let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(
                String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned(),
            )
        });
        Ok((status, value))
    }

    /// Like [`Access::request`], but a status outside 2xx is an error.
    pub async fn request_ok(
        &self,
        client: &reqwest::Client,
        method: &'static str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let (status, value) = self.request(client, method, path, body).await?;
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            Err(self.err(method, path, format!("HTTP {status}: {value}")))
        }
    }

    /// Creates a namespace with a fresh name starting with `prefix`.
    pub async fn create_namespace(&self, prefix: &str) -> Result<String> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let prefix: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        let name = format!(
            "{}-{}-{:x}",
            prefix.trim_matches('-'),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            (nanos ^ std::process::id()) & 0xfffff
        );
        let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        let client = self.http_client()?;
        self.request_ok(&client, "POST", "/api/v1/namespaces", Some(&body))
            .await?;
        Ok(name)
    }
}

/// An error and all its sources, joined with ": ".
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
