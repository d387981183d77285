//! Kubernetes client configuration: kubeconfig files and in-cluster
//! credentials, resolved into a [`Config`].
//!
//! A **kubeconfig** (`~/.kube/config`, or the files listed in `KUBECONFIG`)
//! holds three lists and a pointer:
//!
//! - **clusters**: how to reach an API server (URL, CA, proxy, ...),
//! - **users**: how to authenticate (token, token file, basic auth, client
//!   certificate, exec plugin, ...),
//! - **contexts**: a named pair of cluster and user, plus a default
//!   namespace,
//! - **current-context**: which context to use unless told otherwise.
//!
//! Using a kubeconfig takes three steps, each with its own type:
//!
//! 1. **Load**: [`KubeconfigLoader`] finds the files and merges them with
//!    kubectl's rules into a [`Kubeconfig`] (the file model, which
//!    round-trips), resolving relative paths against each file's directory.
//! 2. **Select**: [`KubeconfigOptions`] overrides the context, cluster, user
//!    and namespace like kubectl's `--context`, `--cluster`, `--user` and
//!    `--namespace`; [`Kubeconfig::select`] picks the entries.
//! 3. **Resolve**: [`Config::from_kubeconfig`] reads and checks certificates
//!    and token files and produces a [`Config`]: URL, TLS settings, [`Auth`],
//!    client [`ClientIdentity`] and [`Impersonation`].
//!
//! Inside a pod, [`Config::incluster`] reads the service account instead, and
//! [`Config::infer`] does what a client usually wants: kubeconfig if there is
//! one, else in-cluster.
//!
//! Nothing here does HTTP. A client calls [`Auth::current_credential`] before
//! each request to get the bearer token, basic credentials or exec-provided
//! certificate (token files are re-read when they change, exec plugins are
//! run when their credential expired), and [`Auth::invalidate`] after a 401.
//! Async clients call [`Auth::current_credential_async`], which awaits an
//! exec plugin without blocking a thread.
//!
//! The one write this crate does: after a client refreshed an
//! `auth-provider: oidc` ID token, [`OidcAuth::persist_refreshed`] writes
//! the new tokens back into the kubeconfig file the user came from, as
//! client-go does (on by default; [`Config::with_oidc_token_persisting`]
//! switches it off).
//!
//! # Exec plugin limits
//!
//! An exec plugin is an outside program, so its run is bounded (details in
//! [`ExecProvider`]):
//!
//! - it must finish within [`EXEC_DEFAULT_TIMEOUT`] (60 s; change it with
//!   [`Config::with_exec_timeout`]), else it is killed, with the processes it
//!   started, and reaped ([`Error::ExecTimeout`]);
//! - it may write at most [`EXEC_MAX_STDOUT`] (1 MiB) to stdout
//!   ([`Error::ExecOutputTooLarge`]); of stderr only the tail is kept, and an
//!   error shows its last 10 lines (at most 1 KiB);
//! - concurrent callers needing a fresh credential share one run, and callers
//!   with a valid cached credential never wait for a run.
//!
//! Secrets are wrapped in [`SecretString`] / [`SecretBytes`], whose `Debug`
//! prints `[redacted]`; no `Debug` output or error message in this crate
//! shows a token, password, key or exec output. A password in a URL's
//! userinfo (`https://user:password@host`) is shown as `REDACTED`
//! ([`redact_url`]); the URL used for connecting keeps it.
//!
//! # Example
//!
//! ```
//! use kube_config::{Config, Kubeconfig, KubeconfigOptions};
//!
//! let kubeconfig = Kubeconfig::from_yaml(r#"
//! apiVersion: v1
//! kind: Config
//! clusters:
//! - name: dev
//!   cluster:
//!     server: https://dev.example.com:6443
//! users:
//! - name: alice
//!   user:
//!     token: s3cr3t
//! contexts:
//! - name: dev
//!   context: {cluster: dev, user: alice, namespace: web}
//! current-context: dev
//! "#)?;
//!
//! let config = Config::from_kubeconfig(&kubeconfig, &KubeconfigOptions::default())?;
//! assert_eq!(config.cluster_url.as_str(), "https://dev.example.com:6443/");
//! assert_eq!(config.default_namespace, "web");
//!
//! // Per request: the current credential.
//! let credential = config.auth.current_credential()?.expect("a token");
//! assert_eq!(credential.authorization_header().unwrap().expose(), "Bearer s3cr3t");
//!
//! // Secrets never show in Debug output.
//! assert!(!format!("{config:?}").contains("s3cr3t"));
//!
//! // Override like `kubectl --namespace kube-system`.
//! let options = KubeconfigOptions { namespace: Some("kube-system".into()), ..Default::default() };
//! let config = Config::from_kubeconfig(&kubeconfig, &options)?;
//! println!("{} (namespace {})", config.cluster_url, config.default_namespace);
//! # Ok::<(), kube_config::Error>(())
//! ```

mod auth;
mod config;
mod error;
mod exec;
mod incluster;
mod kubeconfig;
mod loader;
mod oidc;
mod oidc_persist;
mod pem;
mod redact;
mod secret;
mod select;
mod time;
mod token;

pub use auth::{Auth, BasicAuth, Credential, Impersonation};
pub use config::Config;
pub use error::{Error, FileList};
pub use exec::{
    EXEC_API_V1, EXEC_API_V1BETA1, EXEC_DEFAULT_TIMEOUT, EXEC_MAX_STDOUT, ExecProvider,
    InteractiveMode,
};
pub use incluster::{InClusterEnv, SERVICE_ACCOUNT_DIR};
pub use kubeconfig::{
    AuthInfo, AuthProviderConfig, Cluster, Context, ExecConfig, ExecEnvVar, Kubeconfig,
    NamedAuthInfo, NamedCluster, NamedContext, NamedExtension,
};
pub use loader::KubeconfigLoader;
pub use oidc::{JwtError, OIDC_EXPIRY_MARGIN, OidcAuth, OidcProvider, jwt_expiry};
pub use oidc_persist::OidcTokensPersisted;
pub use pem::{ClientIdentity, KeyFormat};
pub use redact::{REDACTED, redact_url};
pub use secret::{SecretBytes, SecretString};
pub use select::{KubeconfigOptions, Selection};
pub use token::{TokenFile, TokenSource};
