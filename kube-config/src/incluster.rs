//! The in-cluster configuration of a pod's service account.
//!
//! Guarantees (client-go's `InClusterConfig`):
//!
//! - The server is `https://KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT`;
//!   both must be set and non-empty. An IPv6 host is bracketed
//!   (`https://[fd00::1]:443`).
//! - The token is `<dir>/token`, read now (missing or empty is an error) and
//!   re-read when it changes, because bound service-account tokens rotate
//!   (see [`TokenFile`](crate::TokenFile)).
//! - The CA is `<dir>/ca.crt`; if it is missing or unreadable a warning is
//!   logged and the platform roots are used, as in client-go.
//! - The namespace is `POD_NAMESPACE` if set, else `<dir>/namespace`
//!   (trimmed), else `default`.
//! - `<dir>` is `/var/run/secrets/kubernetes.io/serviceaccount`; it and the
//!   environment values are injectable through [`InClusterEnv`].

use std::path::PathBuf;

use url::Url;

use crate::pem::parse_cert_bundle;
use crate::token::{TokenFile, TokenSource};
use crate::{Auth, Config, Error};

/// Where a pod's service account files are mounted.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The inputs of the in-cluster configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InClusterEnv {
    /// `KUBERNETES_SERVICE_HOST`.
    pub service_host: Option<String>,
    /// `KUBERNETES_SERVICE_PORT`.
    pub service_port: Option<String>,
    /// `POD_NAMESPACE`.
    pub pod_namespace: Option<String>,
    /// The service account directory (holding `token`, `ca.crt`, `namespace`).
    pub service_account_dir: PathBuf,
}

impl Default for InClusterEnv {
    /// No environment values, the standard directory.
    fn default() -> Self {
        Self {
            service_host: None,
            service_port: None,
            pod_namespace: None,
            service_account_dir: PathBuf::from(SERVICE_ACCOUNT_DIR),
        }
    }
}

impl InClusterEnv {
    /// The process's environment values and the standard directory.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok();
        Self {
            service_host: var("KUBERNETES_SERVICE_HOST"),
            service_port: var("KUBERNETES_SERVICE_PORT"),
            pod_namespace: var("POD_NAMESPACE"),
            service_account_dir: PathBuf::from(SERVICE_ACCOUNT_DIR),
        }
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Config {
    /// The in-cluster configuration from the process environment.
    pub fn incluster() -> Result<Config, Error> {
        Self::incluster_with(&InClusterEnv::from_env())
    }

    /// The in-cluster configuration from explicit inputs.
    pub fn incluster_with(env: &InClusterEnv) -> Result<Config, Error> {
        let fail = |reason: String| Error::InCluster { reason };
        let host = non_empty(&env.service_host)
            .ok_or_else(|| fail("KUBERNETES_SERVICE_HOST is not set".to_owned()))?;
        let port = non_empty(&env.service_port)
            .ok_or_else(|| fail("KUBERNETES_SERVICE_PORT is not set".to_owned()))?;
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let raw = format!("https://{host}:{port}");
        let cluster_url =
            Url::parse(&raw).map_err(|e| fail(format!("invalid service address `{raw}`: {e}")))?;

        let dir = &env.service_account_dir;
        let token = TokenFile::new(dir.join("token")).map_err(|e| fail(e.to_string()))?;

        let ca_path = dir.join("ca.crt");
        let root_certs = match std::fs::read(&ca_path) {
            Ok(pem) => match parse_cert_bundle(
                &pem,
                "certificate authority",
                &format!("file {}", ca_path.display()),
            ) {
                Ok(certs) => Some(certs),
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring the in-cluster CA");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(path = %ca_path.display(), error = %e, "cannot read the in-cluster CA");
                None
            }
        };

        let default_namespace = match non_empty(&env.pod_namespace) {
            Some(ns) => ns.to_owned(),
            None => std::fs::read_to_string(dir.join("namespace"))
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "default".to_owned()),
        };

        Ok(Config {
            cluster_url,
            default_namespace,
            root_certs,
            accept_invalid_certs: false,
            tls_server_name: None,
            proxy_url: None,
            disable_compression: false,
            auth: Auth::Bearer(TokenSource::File(token)),
            identity: None,
            impersonate: None,
            connect_timeout: None,
            read_timeout: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(host: Option<&str>, port: Option<&str>, dir: &std::path::Path) -> InClusterEnv {
        InClusterEnv {
            service_host: host.map(Into::into),
            service_port: port.map(Into::into),
            pod_namespace: None,
            service_account_dir: dir.to_path_buf(),
        }
    }

    #[test]
    fn missing_env_and_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = |env: InClusterEnv| Config::incluster_with(&env).unwrap_err().to_string();
        assert_eq!(
            e(env(None, Some("443"), dir.path())),
            "in-cluster configuration: KUBERNETES_SERVICE_HOST is not set"
        );
        assert_eq!(
            e(env(Some("h"), Some(""), dir.path())),
            "in-cluster configuration: KUBERNETES_SERVICE_PORT is not set"
        );
        assert_eq!(
            e(env(Some("h"), Some("x y"), dir.path())),
            "in-cluster configuration: invalid service address `https://h:x y`: invalid port number"
        );
        let msg = e(env(Some("10.0.0.1"), Some("443"), dir.path()));
        assert!(
            msg.starts_with(&format!(
                "in-cluster configuration: cannot read token file {}/token: ",
                dir.path().display()
            )),
            "{msg}"
        );
    }
}
